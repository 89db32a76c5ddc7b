//! Calling an auth library for a request: its instance, a request context in the auth phase,
//! and the host-side rules every auth answer goes through.

use std::ffi::{c_int, c_void};

use rgi::abi::{AppDescriptor, HostRequest, Instance, RgiStr, StrSink};

use super::config::{AuthScript, DirAuth};
use crate::app;
use crate::config;
use crate::ffi::{self, sys};
use crate::handler::application_group;
use crate::logging::CurrentRequest;
use crate::request::{EMBEDDED_HOST, Phase, RequestContext, log_request};

/// The auth libraries in effect for `r`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn dir_auth<'a>(r: *const sys::request_rec) -> Option<&'a DirAuth> {
    // SAFETY: guaranteed by the caller.
    unsafe { config::dir_config(r) }.map(|d| &d.auth)
}

/// Logs `msg` against `r`, with its request id.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn log(r: *mut sys::request_rec, level: c_int, msg: &str) {
    // SAFETY: guaranteed by the caller.
    unsafe { log_request(r, level, msg) }
}

/// Runs `f` with `script`'s instance and `r`'s handle in the auth phase. `None` when the
/// instance cannot be had (logged): the caller answers with its error status, never a grant.
///
/// # Safety
/// `r` must be a live request being processed on this thread.
pub unsafe fn call<R>(
    r: *mut sys::request_rec,
    script: &AuthScript,
    f: impl FnOnce(&'static AppDescriptor, Instance, *mut HostRequest) -> R,
) -> Option<R> {
    let _current = CurrentRequest::enter(r);
    // SAFETY: a live request of the running configuration.
    let options = unsafe { config::dir_config(r) }.map(|d| d.option_pairs()).unwrap_or_default();
    // SAFETY: a live request.
    let group = unsafe { application_group(r, &script.group) };
    let instance = match app::instance(script.library.as_bytes(), &group, "", options, &EMBEDDED_HOST) {
        Ok(instance) => instance,
        Err(why) => {
            // SAFETY: a live request.
            unsafe { log(r, sys::APLOG_ERR, &format!("{why}; answering 500")) };
            return None;
        }
    };
    let mut ctx = RequestContext::new(r, Phase::Auth, &group, b"", false, options);
    Some(f(instance.library.descriptor, instance.raw, ctx.handle()))
}

/// Strings an auth callback hands back (groups, a new user name), collected by a [`StrSink`].
#[derive(Default)]
pub struct Strings(pub Vec<Vec<u8>>);

unsafe extern "C" fn push(ctx: *mut c_void, s: RgiStr) {
    ffi::guard((), || {
        // SAFETY: `ctx` is the `Strings` of the sink made below; `s` is live for the call.
        let (out, bytes) = unsafe { (&mut *ctx.cast::<Strings>(), s.as_bytes()) };
        out.0.push(bytes.to_vec());
    })
}

impl Strings {
    /// A sink appending to these strings, valid while `self` is borrowed.
    pub fn sink(&mut self) -> StrSink {
        StrSink { ctx: (self as *mut Strings).cast(), push }
    }
}

/// Whether `name` may become `r->user`: non-empty, no control characters (the access log and
/// `REMOTE_USER` must not be forged into two lines or fields).
pub fn valid_user_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|&b| b < 0x20 || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_have_no_control_characters() {
        assert!(valid_user_name(b"alice"));
        assert!(valid_user_name("J\u{f6}rg M\u{fc}ller".as_bytes()));
        for bad in [&b""[..], b"a\nb", b"a\rb", b"a\0", b"\x7f", b"a\tb"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_sink_collects_every_string() {
        let mut strings = Strings::default();
        let sink = strings.sink();
        // SAFETY: the sink's own function and context, with live strings.
        unsafe {
            (sink.push)(sink.ctx, RgiStr::new(b"admins"));
            (sink.push)(sink.ctx, RgiStr::new(b"staff"));
        }
        assert_eq!(strings.0, vec![b"admins".to_vec(), b"staff".to_vec()]);
    }
}
