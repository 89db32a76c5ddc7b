//! The phase handlers (the mod_python way): `RGIAuthenHandler` runs check_user_id before
//! Apache's Basic and Digest modules, `RGIAuthzHandler` runs auth_checker before mod_authz_core.
//! Both only run where configured, and only for requests whose `Require` needs a user.

use std::ffi::c_int;

use rgi::abi;

use super::script;
use crate::ffi::{self, sys};

/// Registers the check_user_id and auth_checker hooks, first in their phases.
pub fn register() {
    // SAFETY: registering hook functions for the configuration being set up.
    unsafe {
        sys::ap_hook_check_authn(
            Some(check_user_id),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_FIRST,
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
        sys::ap_hook_check_authz(
            Some(auth_checker),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_FIRST,
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
    }
}

unsafe extern "C" fn check_user_id(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request.
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || unsafe {
        let Some(script) = script::dir_auth(r).and_then(|a| a.authen_handler.as_ref()) else { return sys::DECLINED };
        let answer =
            script::call(r, script, |descriptor, instance, req| Some(descriptor.authen_handler?(instance, req)));
        match answer.flatten() {
            Some(abi::authen::OK) if !(*r).user.is_null() => sys::OK,
            Some(abi::authen::DECLINED) => sys::DECLINED,
            Some(abi::authen::UNAUTHORIZED) => sys::HTTP_UNAUTHORIZED,
            Some(abi::authen::FORBIDDEN) => sys::HTTP_FORBIDDEN,
            Some(abi::authen::OK) => {
                script::log(r, sys::APLOG_ERR, &format!("'{}' authenticated nobody; answering 500", script.library));
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
            _ => {
                script::log(
                    r,
                    sys::APLOG_ERR,
                    &format!("the authentication handler '{}' failed; answering 500", script.library),
                );
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}

unsafe extern "C" fn auth_checker(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request.
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || unsafe {
        let Some(script) = script::dir_auth(r).and_then(|a| a.authz_handler.as_ref()) else { return sys::DECLINED };
        let answer =
            script::call(r, script, |descriptor, instance, req| Some(descriptor.authz_handler?(instance, req)));
        match answer.flatten() {
            Some(abi::decision::GRANTED) => sys::OK,
            Some(abi::decision::NO_OPINION) => sys::DECLINED,
            Some(abi::decision::DENIED) => {
                let user = ffi::text((*r).user);
                script::log(r, sys::APLOG_INFO, &format!("user {user} denied by RGIAuthzHandler '{}'", script.library));
                sys::HTTP_FORBIDDEN
            }
            _ => {
                script::log(
                    r,
                    sys::APLOG_ERR,
                    &format!("the authorisation handler '{}' failed; answering 500", script.library),
                );
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}
