//! The auth directives. Each names a library playing one role, checked at configuration time
//! (it must exist and export that role) without running any of its code:
//!
//! | directive | role | Apache sees |
//! |---|---|---|
//! | `RGIAuthUserScript LIBRARY [application-group=NAME]` | `user_provider` | authn provider `rgi` |
//! | `RGIAuthGroupScript LIBRARY [application-group=NAME]` | `group_provider` | `Require rgi-group` |
//! | `RGIAccessScript LIBRARY [application-group=NAME]` | `access_checker` | access phase |
//! | `RGIAuthenHandler LIBRARY [application-group=NAME]` | `authen_handler` | check_user_id phase |
//! | `RGIAuthzHandler LIBRARY [application-group=NAME]` | `authz_handler` | auth_checker phase |
//!
//! All are allowed in the server, virtual hosts, `<Directory>`/`<Location>` sections,
//! `<AuthnProviderAlias>` and `<AuthzProviderAlias>`, not in `.htaccess` files (that would let their authors load code into
//! Apache).

use std::ffi::{c_char, c_int, c_void};

use rgi::abi::role;

use super::config::{AuthScript, DirAuth};
use crate::app;
use crate::config::{DirConfig, GroupSpec};
use crate::cstr;
use crate::directives::{DIRECTORY, command, directive, parse_alias_options, server_relative, words};
use crate::ffi::sys;

/// The `DirAuth` field a role's directive sets.
fn slot(auth: &mut DirAuth, role_bit: u32) -> &mut Option<AuthScript> {
    match role_bit {
        role::USER_PROVIDER => &mut auth.user_provider,
        role::GROUP_PROVIDER => &mut auth.group_provider,
        role::ACCESS_CHECKER => &mut auth.access_checker,
        role::AUTHEN_HANDLER => &mut auth.authen_handler,
        _ => &mut auth.authz_handler,
    }
}

/// Parses `LIBRARY [application-group=NAME]` (the library still relative).
pub fn parse_script_args<'a>(args: &'a [std::borrow::Cow<'a, str>]) -> Result<(&'a str, GroupSpec), String> {
    let [library, rest @ ..] = args else { return Err("expected LIBRARY [application-group=NAME]".into()) };
    let options = parse_alias_options(rest.iter().map(|s| s.as_ref()))?;
    if options.process_group.is_some() || options.pass_authorization.is_some() {
        return Err("only application-group= is accepted: these libraries run in Apache's own processes".into());
    }
    Ok((library, options.application_group.unwrap_or(GroupSpec::Global)))
}

/// Reads `LIBRARY [application-group=NAME]` of a directive whose library must export `role`
/// (also `RGIDispatchScript`'s).
///
/// # Safety
/// `cmd` must be the live command of the directive, `argv` its `argc` words.
pub unsafe fn read_script(
    cmd: *mut sys::cmd_parms,
    argc: c_int,
    argv: *const *mut c_char,
    role: u32,
) -> Result<AuthScript, String> {
    // SAFETY: guaranteed by the caller.
    let args = unsafe { words(argc, argv) };
    let (library, group) = parse_script_args(&args)?;
    // SAFETY: as above.
    let library = unsafe { server_relative(cmd, library) }?;
    app::inspect(&library, role).map_err(|e| e.to_string())?;
    Ok(AuthScript { library, group })
}

/// One handler for the five directives; `ROLE` is the role bit the library must export.
unsafe extern "C" fn script<const ROLE: u32>(
    cmd: *mut sys::cmd_parms,
    conf: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd, our DirConfig and argc words.
    unsafe {
        directive(cmd, || {
            *slot(&mut (*conf.cast::<DirConfig>()).auth, ROLE) = Some(read_script(cmd, argc, argv, ROLE)?);
            Ok(())
        })
    }
}

/// The auth directives.
pub const AUTH: [sys::command_rec; 5] = [
    command(
        cstr!("RGIAuthUserScript"),
        sys::cmd_func { take_argv: Some(script::<{ role::USER_PROVIDER }>) },
        DIRECTORY,
        sys::cmd_how_TAKE_ARGV,
        cstr!("LIBRARY [application-group=NAME]: the authn provider 'rgi' (AuthBasicProvider/AuthDigestProvider rgi)"),
    ),
    command(
        cstr!("RGIAuthGroupScript"),
        sys::cmd_func { take_argv: Some(script::<{ role::GROUP_PROVIDER }>) },
        DIRECTORY,
        sys::cmd_how_TAKE_ARGV,
        cstr!("LIBRARY [application-group=NAME]: the groups of 'Require rgi-group NAME...'"),
    ),
    command(
        cstr!("RGIAccessScript"),
        sys::cmd_func { take_argv: Some(script::<{ role::ACCESS_CHECKER }>) },
        DIRECTORY,
        sys::cmd_how_TAKE_ARGV,
        cstr!("LIBRARY [application-group=NAME]: allow or deny clients by host before authentication"),
    ),
    command(
        cstr!("RGIAuthenHandler"),
        sys::cmd_func { take_argv: Some(script::<{ role::AUTHEN_HANDLER }>) },
        DIRECTORY,
        sys::cmd_how_TAKE_ARGV,
        cstr!("LIBRARY [application-group=NAME]: identify the user (check_user_id phase)"),
    ),
    command(
        cstr!("RGIAuthzHandler"),
        sys::cmd_func { take_argv: Some(script::<{ role::AUTHZ_HANDLER }>) },
        DIRECTORY,
        sys::cmd_how_TAKE_ARGV,
        cstr!("LIBRARY [application-group=NAME]: authorise the authenticated user (auth_checker phase)"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&'static str]) -> Vec<std::borrow::Cow<'static, str>> {
        words.iter().map(|w| std::borrow::Cow::Borrowed(*w)).collect()
    }

    #[test]
    fn the_group_defaults_to_global() {
        let a = args(&["lib.so"]);
        assert_eq!(parse_script_args(&a), Ok(("lib.so", GroupSpec::Global)));
        let a = args(&["lib.so", "application-group=auth"]);
        assert_eq!(parse_script_args(&a), Ok(("lib.so", GroupSpec::Named("auth".into()))));
    }

    #[test]
    fn daemon_options_and_missing_libraries_are_refused() {
        assert!(parse_script_args(&args(&[])).unwrap_err().contains("expected LIBRARY"));
        let err = parse_script_args(&args(&["lib.so", "process-group=d"])).unwrap_err();
        assert!(err.contains("only application-group="), "{err}");
        assert!(parse_script_args(&args(&["lib.so", "x=y"])).unwrap_err().contains("unknown option 'x'"));
    }
}
