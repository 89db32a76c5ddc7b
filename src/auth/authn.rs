//! The authn provider `rgi` (`RGIAuthUserScript`): mod_auth_basic and mod_auth_digest ask it
//! about users exactly as they ask mod_authn_file, so `AuthBasicProvider rgi file` falls through
//! to the next provider on "user not found" and stops on a wrong password.

use std::ffi::{c_char, c_void};
use std::fmt::Write as _;

use rgi::abi::{self, RgiStr};

use super::script::{self, Strings, valid_user_name};
use crate::cstr;
use crate::ffi::{self, sys};

const GENERAL_ERROR: sys::authn_status = sys::authn_status_AUTH_GENERAL_ERROR;

static PROVIDER: sys::authn_provider =
    sys::authn_provider { check_password: Some(check_password), get_realm_hash: Some(get_realm_hash) };

/// Registers the provider (in register_hooks, before the configuration is read).
///
/// # Safety
/// `p` must be the pool Apache passes to register_hooks.
pub unsafe fn register(p: *mut sys::apr_pool_t) {
    // SAFETY: a static provider record and NUL-terminated names Apache keeps pointers to.
    unsafe {
        sys::ap_register_auth_provider(
            p,
            sys::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
            cstr!("rgi"),
            sys::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
            (&raw const PROVIDER).cast::<c_void>(),
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
    }
}

/// The `RGIAuthUserScript` of `r`, or `None` (logged: `AuthBasicProvider rgi` without a library
/// is a configuration error, answered 500).
unsafe fn user_script<'a>(r: *mut sys::request_rec) -> Option<&'a super::config::AuthScript> {
    // SAFETY: guaranteed by the caller.
    let found = unsafe { script::dir_auth(r) }.and_then(|a| a.user_provider.as_ref());
    if found.is_none() {
        // SAFETY: a live request.
        unsafe {
            script::log(
                r,
                sys::APLOG_ERR,
                "the authn provider 'rgi' is used here but no RGIAuthUserScript applies; answering 500",
            )
        };
    }
    found
}

unsafe extern "C" fn check_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> sys::authn_status {
    // SAFETY: Apache passes a live request and NUL-terminated user and password.
    ffi::guard(GENERAL_ERROR, || unsafe {
        let Some(script) = user_script(r) else { return GENERAL_ERROR };
        let (user, password) = (ffi::bytes(user).unwrap_or_default(), ffi::bytes(password).unwrap_or_default());
        let mut renamed = Strings::default();
        let answer = script::call(r, script, |descriptor, instance, req| {
            let check = descriptor.check_password?;
            let mut sink = renamed.sink();
            Some(check(instance, req, RgiStr::new(user), RgiStr::new(password), &mut sink))
        });
        let answer = match answer {
            None => return GENERAL_ERROR,
            Some(None) => {
                script::log(r, sys::APLOG_ERR, &format!("'{}' has no check_password; answering 500", script.library));
                return GENERAL_ERROR;
            }
            Some(Some(answer)) => answer,
        };
        match answer {
            abi::password::GRANTED => sys::authn_status_AUTH_GRANTED,
            abi::password::DENIED => sys::authn_status_AUTH_DENIED,
            abi::password::USER_NOT_FOUND => sys::authn_status_AUTH_USER_NOT_FOUND,
            abi::password::GRANTED_AS => match renamed.0.first() {
                Some(name) if valid_user_name(name) => {
                    (*r).user = ffi::pstrdup((*r).pool, name);
                    sys::authn_status_AUTH_GRANTED
                }
                _ => {
                    script::log(
                        r,
                        sys::APLOG_ERR,
                        "check_password granted as an empty or invalid user name; answering 500",
                    );
                    GENERAL_ERROR
                }
            },
            _ => {
                script::log(
                    r,
                    sys::APLOG_ERR,
                    &format!("check_password of '{}' failed; answering 500", script.library),
                );
                GENERAL_ERROR
            }
        }
    })
}

/// `hash` as the lower-case hex Apache compares Digest responses with.
pub fn hex(hash: &[u8; 16]) -> String {
    hash.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

unsafe extern "C" fn get_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> sys::authn_status {
    // SAFETY: Apache passes a live request, NUL-terminated strings and a place for the hash.
    ffi::guard(GENERAL_ERROR, || unsafe {
        let Some(script) = user_script(r) else { return GENERAL_ERROR };
        let (user, realm) = (ffi::bytes(user).unwrap_or_default(), ffi::bytes(realm).unwrap_or_default());
        let mut hash = [0u8; 16];
        let answer = script::call(r, script, |descriptor, instance, req| {
            let get = descriptor.get_realm_hash?;
            Some(get(instance, req, RgiStr::new(user), RgiStr::new(realm), &mut hash))
        });
        match answer.flatten() {
            Some(abi::realm_hash::FOUND) => {
                *rethash = ffi::pstrdup((*r).pool, hex(&hash).as_bytes());
                sys::authn_status_AUTH_USER_FOUND
            }
            Some(abi::realm_hash::USER_NOT_FOUND) => sys::authn_status_AUTH_USER_NOT_FOUND,
            _ => {
                script::log(
                    r,
                    sys::APLOG_ERR,
                    &format!("get_realm_hash of '{}' failed; answering 500", script.library),
                );
                GENERAL_ERROR
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_lower_case_hex() {
        let hash = *b"\xa4\xb5\xbf\x6c\x08\xd4\xc0\x82\x2a\x5c\xdf\x05\x09\x6d\xf9\x74";
        assert_eq!(super::hex(&hash), "a4b5bf6c08d4c0822a5cdf05096df974");
    }
}
