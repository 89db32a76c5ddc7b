//! `RGIDispatchScript LIBRARY [application-group=NAME]` (mod_wsgi's `WSGIDispatchScript`): a
//! library playing the `dispatcher` role chooses each request's process group and application
//! group, before the content handler serves it. It is called like the auth libraries: in the
//! Apache child, with the request's environ and no body, and it fails closed (500).

use std::ffi::{c_char, c_int, c_void};

use rgi::abi::{self, role};

use crate::auth::config::AuthScript;
use crate::auth::directives::read_script;
use crate::auth::script::{self, Strings};
use crate::config::{DirConfig, GroupSpec};
use crate::cstr;
use crate::daemon::select::ProcessGroupSpec;
use crate::directives::{DIRECTORY, command, directive};
use crate::ffi::sys;

/// What the dispatcher chose; `None` leaves the configured group.
#[derive(Debug)]
pub struct Choice {
    /// Overrides `process-group=` and `RGIProcessGroup`.
    pub process_group: Option<ProcessGroupSpec>,
    /// Overrides `application-group=` and `RGIApplicationGroup`.
    pub application_group: Option<GroupSpec>,
}

/// Reads one group a dispatcher answered: none, or one name parsed as its directive would.
fn one<T>(what: &str, answered: Strings, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    match answered.0.as_slice() {
        [] => Ok(None),
        [name] => {
            let name = std::str::from_utf8(name).map_err(|_| format!("its {what} is not UTF-8"))?;
            parse(name).map(Some).map_err(|why| format!("its {what} '{name}': {why}"))
        }
        more => Err(format!("it answered {} names for the {what}", more.len())),
    }
}

/// Asks `dispatcher` (the `RGIDispatchScript` in effect for `r`) for its groups; the error is the
/// status to answer (logged).
///
/// # Safety
/// `r` must be a live request being processed on this thread.
#[inline(never)]
pub unsafe fn choose(r: *mut sys::request_rec, dispatcher: &AuthScript) -> Result<Choice, c_int> {
    let (mut process_group, mut application_group) = (Strings::default(), Strings::default());
    // SAFETY: guaranteed by the caller.
    let answer = unsafe {
        script::call(r, dispatcher, |descriptor, instance, req| {
            // A library of an older SDK has no such field (its manifest cannot claim the role).
            if descriptor.size < crate::descriptor_field_end!(dispatch) {
                return None;
            }
            let (mut p, mut a) = (process_group.sink(), application_group.sink());
            Some(descriptor.dispatch?(instance, req, &mut p, &mut a))
        })
    };
    let library = &dispatcher.library;
    let choice = match answer.flatten() {
        Some(abi::call::OK) => one("process group", process_group, ProcessGroupSpec::parse).and_then(|process_group| {
            let application_group = one("application group", application_group, GroupSpec::parse)?;
            Ok(Choice { process_group, application_group })
        }),
        Some(_) => Err("it failed".to_string()),
        None => Err("it has no dispatch callback".to_string()),
    };
    choice.map_err(|why| {
        // SAFETY: a live request.
        unsafe { script::log(r, sys::APLOG_ERR, &format!("RGIDispatchScript '{library}': {why}; answering 500")) };
        sys::HTTP_INTERNAL_SERVER_ERROR
    })
}

unsafe extern "C" fn dispatch_script(
    cmd: *mut sys::cmd_parms,
    conf: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd, our DirConfig and argc words.
    unsafe {
        directive(cmd, || {
            (*conf.cast::<DirConfig>()).dispatch = Some(read_script(cmd, argc, argv, role::DISPATCHER)?);
            Ok(())
        })
    }
}

/// The dispatch directive.
pub const DIRECTIVES: [sys::command_rec; 1] = [command(
    cstr!("RGIDispatchScript"),
    sys::cmd_func { take_argv: Some(dispatch_script) },
    DIRECTORY,
    sys::cmd_how_TAKE_ARGV,
    cstr!("LIBRARY [application-group=NAME]: Rust code choosing each request's process and application group"),
)];

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(names: &[&str]) -> Strings {
        Strings(names.iter().map(|n| n.as_bytes().to_vec()).collect())
    }

    #[test]
    fn answers_are_read_as_their_directives_read_them() {
        let none = one("process group", answered(&[]), ProcessGroupSpec::parse).unwrap();
        assert_eq!(none, None);
        let named = one("process group", answered(&["shop"]), ProcessGroupSpec::parse).unwrap();
        assert_eq!(named, Some(ProcessGroupSpec::Named("shop".into())));
        let server = one("application group", answered(&["%{SERVER}"]), GroupSpec::parse).unwrap();
        assert_eq!(server, Some(GroupSpec::Server));
        let bad = one("process group", answered(&["a/b"]), ProcessGroupSpec::parse).unwrap_err();
        assert!(bad.contains("its process group 'a/b'") && bad.contains("not a valid process group name"), "{bad}");
        let two = one("process group", answered(&["a", "b"]), ProcessGroupSpec::parse).unwrap_err();
        assert!(two.contains("2 names"), "{two}");
        let not_utf8 = one("process group", Strings(vec![vec![0xff]]), ProcessGroupSpec::parse).unwrap_err();
        assert!(not_utf8.contains("not UTF-8"), "{not_utf8}");
    }
}
