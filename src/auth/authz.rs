//! The authz provider `rgi-group` (`RGIAuthGroupScript`): `Require rgi-group NAME...` is met
//! when one of the authenticated user's groups is one of the names. Being an ordinary authz
//! provider, it combines with every other `Require` in `<RequireAll>`, `<RequireAny>` and
//! `<RequireNone>`.

use std::ffi::{c_char, c_void};

use rgi::abi::{self, RgiStr};

use super::script::{self, Strings};
use crate::cstr;
use crate::ffi::{self, sys};

static PROVIDER: sys::authz_provider = sys::authz_provider {
    check_authorization: Some(check_authorization),
    parse_require_line: Some(parse_require_line),
};

/// Registers the provider (in register_hooks, before the configuration is read).
///
/// # Safety
/// `p` must be the pool Apache passes to register_hooks.
pub unsafe fn register(p: *mut sys::apr_pool_t) {
    // SAFETY: a static provider record and NUL-terminated names Apache keeps pointers to.
    unsafe {
        sys::ap_register_auth_provider(
            p,
            sys::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
            cstr!("rgi-group"),
            sys::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
            (&raw const PROVIDER).cast::<c_void>(),
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
    }
}

/// The group names of a require line, split as Apache splits directive arguments (quotes
/// group words).
///
/// # Safety
/// `pool` must be live and `line` NUL-terminated.
unsafe fn group_names(pool: *mut sys::apr_pool_t, line: *const c_char) -> Vec<Box<[u8]>> {
    let mut names = Vec::new();
    let mut rest = line;
    // SAFETY: ap_getword_conf advances `rest` through the NUL-terminated line, returning words
    // allocated in `pool`; an empty word means the end.
    unsafe {
        while !rest.is_null() && *rest != 0 {
            let word = ffi::bytes(sys::ap_getword_conf(pool, &mut rest)).unwrap_or_default();
            if word.is_empty() {
                break;
            }
            names.push(word.into());
        }
    }
    names
}

unsafe extern "C" fn parse_require_line(
    cmd: *mut sys::cmd_parms,
    require_line: *const c_char,
    parsed: *mut *const c_void,
) -> *const c_char {
    ffi::guard(cstr!("Require rgi-group: internal error"), || {
        // SAFETY: Apache passes a live cmd, the NUL-terminated arguments and a place for ours.
        unsafe {
            let names = group_names((*cmd).pool, require_line);
            if names.is_empty() {
                return cstr!("Require rgi-group needs at least one group name");
            }
            *parsed = ffi::pool_box((*cmd).pool, names).cast_const().cast();
        }
        std::ptr::null()
    })
}

unsafe extern "C" fn check_authorization(
    r: *mut sys::request_rec,
    require_line: *const c_char,
    parsed: *const c_void,
) -> sys::authz_status {
    const ERROR: sys::authz_status = sys::authz_status_AUTHZ_GENERAL_ERROR;
    // SAFETY: Apache passes a live request, the require line and what parse_require_line made.
    ffi::guard(ERROR, || unsafe {
        let Some(user) = ffi::bytes((*r).user) else { return sys::authz_status_AUTHZ_DENIED_NO_USER };
        let Some(script) = script::dir_auth(r).and_then(|a| a.group_provider.as_ref()) else {
            script::log(
                r,
                sys::APLOG_ERR,
                "Require rgi-group is used here but no RGIAuthGroupScript applies; answering 500",
            );
            return ERROR;
        };
        let mut groups = Strings::default();
        let answer = script::call(r, script, |descriptor, instance, req| {
            let groups_for_user = descriptor.groups_for_user?;
            let mut sink = groups.sink();
            Some(groups_for_user(instance, req, RgiStr::new(user), &mut sink))
        });
        if answer.flatten() != Some(abi::call::OK) {
            script::log(r, sys::APLOG_ERR, &format!("groups_for_user of '{}' failed; answering 500", script.library));
            return ERROR;
        }
        let parsed_here;
        let wanted = match parsed.cast::<Vec<Box<[u8]>>>().as_ref() {
            Some(names) => names,
            None => {
                parsed_here = group_names((*r).pool, require_line);
                &parsed_here
            }
        };
        if groups.0.iter().any(|g| wanted.iter().any(|w| **w == **g)) {
            return sys::authz_status_AUTHZ_GRANTED;
        }
        script::log(
            r,
            sys::APLOG_INFO,
            &format!(
                "user {}: not in any of the groups of 'Require rgi-group {}'",
                String::from_utf8_lossy(user),
                ffi::text(require_line)
            ),
        );
        sys::authz_status_AUTHZ_DENIED
    })
}
