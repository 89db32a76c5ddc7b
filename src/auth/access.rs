//! The host access check (`RGIAccessScript`), in Apache's access phase before authentication:
//! a denial is a 403 whatever else is configured; otherwise Apache's `Require` rules decide.

use std::ffi::c_int;

use rgi::abi::{self, RgiStr};

use super::script;
use crate::ffi::{self, sys};

/// Registers the access_checker hook.
pub fn register() {
    // SAFETY: registering a hook function for the configuration being set up.
    unsafe {
        sys::ap_hook_check_access(
            Some(access_checker),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_MIDDLE,
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
    }
}

unsafe extern "C" fn access_checker(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request.
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || unsafe {
        let Some(script) = script::dir_auth(r).and_then(|a| a.access_checker.as_ref()) else { return sys::DECLINED };
        // The client's name when HostnameLookups is on, else its address.
        let host =
            ffi::bytes(sys::ap_get_useragent_host(r, sys::REMOTE_NAME, std::ptr::null_mut())).unwrap_or_default();
        let answer = script::call(r, script, |descriptor, instance, req| {
            Some(descriptor.allow_access?(instance, req, RgiStr::new(host)))
        });
        match answer.flatten() {
            Some(abi::decision::GRANTED) => sys::OK,
            Some(abi::decision::NO_OPINION) => sys::DECLINED,
            Some(abi::decision::DENIED) => {
                let client = String::from_utf8_lossy(host);
                script::log(
                    r,
                    sys::APLOG_INFO,
                    &format!("client {client} denied by RGIAccessScript '{}'", script.library),
                );
                sys::HTTP_FORBIDDEN
            }
            _ => {
                script::log(r, sys::APLOG_ERR, &format!("allow_access of '{}' failed; answering 500", script.library));
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}
