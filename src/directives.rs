//! The configuration directives and the table Apache reads them from.
//!
//! Handlers only record configuration and check it (libraries are inspected, never run): Apache
//! reads the configuration twice at start and again on every restart, in its root parent.

use std::ffi::{CString, c_char, c_int, c_void};

use rgi::abi::role;

use crate::app;
use crate::config::{Alias, AliasMatcher, DirConfig, GroupSpec, Import, Regex, ServerConfig};
use crate::cstr;
use crate::ffi::{self, sys};

/// `key=value` options after the fixed arguments of a directive.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AliasOptions {
    /// `application-group=`.
    pub application_group: Option<GroupSpec>,
    /// `process-group=`.
    pub process_group: Option<String>,
    /// `pass-authorization=On|Off`.
    pub pass_authorization: Option<bool>,
}

/// Parses `On`/`Off` (any case).
pub fn parse_on_off(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("'{value}' is not On or Off")),
    }
}

/// Parses the `key=value` options of RGIScriptAlias, RGIScriptAliasMatch and RGIImportScript.
pub fn parse_alias_options<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<AliasOptions, String> {
    let mut options = AliasOptions::default();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("unexpected argument '{arg}' (options are written key=value)"));
        };
        if value.is_empty() {
            return Err(format!("option {key}= has no value"));
        }
        match key {
            "application-group" => options.application_group = Some(GroupSpec::parse(value)?),
            "process-group" => {
                if value != crate::daemon::GLOBAL {
                    crate::daemon::check_group_name(value)?;
                }
                options.process_group = Some(value.to_string());
            }
            "pass-authorization" => options.pass_authorization = Some(parse_on_off(value)?),
            _ => {
                return Err(format!(
                    "unknown option '{key}' (expected application-group=, process-group= or pass-authorization=)"
                ));
            }
        }
    }
    Ok(options)
}

/// Runs a directive body, turning its error (or panic) into Apache's
/// "Syntax error …: DIRECTIVE: message".
///
/// # Safety
/// `cmd` must be the live command of a directive being read.
pub unsafe fn directive(cmd: *mut sys::cmd_parms, f: impl FnOnce() -> Result<(), String>) -> *const c_char {
    let result = ffi::guard(Err("internal error (panic) while reading the directive".into()), f);
    match result {
        Ok(()) => std::ptr::null(),
        Err(msg) => {
            // SAFETY: cmd and its command record are live while Apache reads the directive.
            unsafe {
                let name = ffi::text((*(*cmd).cmd).name);
                ffi::pstrdup((*cmd).pool, format!("{name}: {msg}").as_bytes())
            }
        }
    }
}

/// The directive's words.
///
/// # Safety
/// `argv` must hold `argc` NUL-terminated strings.
pub unsafe fn words<'a>(argc: c_int, argv: *const *mut c_char) -> Vec<std::borrow::Cow<'a, str>> {
    // SAFETY: Apache passes argc NUL-terminated words.
    (0..argc.max(0) as usize).map(|i| unsafe { ffi::text(*argv.add(i)) }).collect()
}

/// The server configuration the directive writes to.
///
/// # Safety
/// `cmd` must be the live command of a directive being read.
pub unsafe fn server_config<'a>(cmd: *mut sys::cmd_parms) -> &'a mut ServerConfig {
    // SAFETY: the slot holds the ServerConfig created for this server in this configuration.
    unsafe { &mut *ffi::module_config::<ServerConfig>((*(*cmd).server).module_config) }
}

/// `path` made absolute against ServerRoot.
///
/// # Safety
/// `cmd` must be the live command of a directive being read.
pub unsafe fn server_relative(cmd: *mut sys::cmd_parms, path: &str) -> Result<String, String> {
    let c = CString::new(path).map_err(|_| "the path contains a NUL byte".to_string())?;
    // SAFETY: live command pool; ap_server_root_relative returns a pool string or null.
    let full = unsafe { sys::ap_server_root_relative((*cmd).pool, c.as_ptr()) };
    if full.is_null() {
        return Err(format!("invalid file path '{path}'"));
    }
    // SAFETY: non-null pool string.
    Ok(unsafe { ffi::text(full) }.into_owned())
}

/// Records a `process-group=` for the check once the whole configuration is read (the group
/// may be declared later in the file).
///
/// # Safety
/// `cmd` must be the live command of a directive being read.
unsafe fn note_process_group(cmd: *mut sys::cmd_parms, directive: &'static str, group: &Option<String>) {
    if let Some(name) = group.as_ref().filter(|g| *g != crate::daemon::GLOBAL) {
        // SAFETY: guaranteed by the caller.
        unsafe { server_config(cmd) }.daemon.references.push((directive, name.clone()));
    }
}

/// Records an `RGIScriptAlias` (`REGEX == false`) or `RGIScriptAliasMatch` (`REGEX == true`).
unsafe fn add_alias<const REGEX: bool>(
    cmd: *mut sys::cmd_parms,
    args: &[std::borrow::Cow<'_, str>],
) -> Result<(), String> {
    let (what, name) = if REGEX { ("REGEX", "RGIScriptAliasMatch") } else { ("URL-PATH", "RGIScriptAlias") };
    let [pattern, library, rest @ ..] = args else {
        return Err(format!("expected {what} LIBRARY [application-group=NAME] [process-group=NAME]"));
    };
    let options = parse_alias_options(rest.iter().map(|s| s.as_ref()))?;
    let matcher = if REGEX {
        let c_pattern = CString::new(pattern.as_ref()).map_err(|_| "NUL in pattern")?;
        // SAFETY: the live command pool; the pattern is NUL-terminated.
        let regex = unsafe { sys::ap_pregcomp((*cmd).pool, c_pattern.as_ptr(), sys::AP_REG_EXTENDED as c_int) };
        if regex.is_null() {
            return Err(format!("'{pattern}' is not a valid regular expression"));
        }
        AliasMatcher::Regex(Regex(regex))
    } else {
        if !pattern.starts_with('/') {
            return Err(format!("the URL path '{pattern}' must start with '/'"));
        }
        AliasMatcher::Prefix(pattern.to_string())
    };
    // SAFETY: the live command of the directive being read.
    let library = unsafe { server_relative(cmd, library) }?;
    // A library named by the match ($1…) can only be checked when a request names it.
    if !(REGEX && library.contains('$')) {
        app::inspect(&library, role::APP).map_err(|e| e.to_string())?;
    }
    // SAFETY: as above.
    unsafe {
        note_process_group(cmd, name, &options.process_group);
        server_config(cmd).aliases.push(Alias {
            matcher,
            library: CString::new(library).map_err(|_| "NUL in path")?,
            application_group: options.application_group,
            process_group: options.process_group,
            pass_authorization: options.pass_authorization,
        });
    }
    Ok(())
}

/// `RGIScriptAlias` and `RGIScriptAliasMatch`.
unsafe extern "C" fn script_alias<const REGEX: bool>(
    cmd: *mut sys::cmd_parms,
    _: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd and argc words.
    unsafe { directive(cmd, || add_alias::<REGEX>(cmd, &words(argc, argv))) }
}

unsafe extern "C" fn import_script(
    cmd: *mut sys::cmd_parms,
    _: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd and argc words.
    unsafe {
        directive(cmd, || {
            let args = words(argc, argv);
            let [library, rest @ ..] = &args[..] else {
                return Err("expected LIBRARY application-group=NAME [process-group=NAME]".into());
            };
            let options = parse_alias_options(rest.iter().map(|s| s.as_ref()))?;
            let application_group = match options.application_group {
                Some(GroupSpec::Named(name)) => name,
                Some(GroupSpec::Global) => String::new(),
                Some(_) => {
                    return Err("application-group= must be a name or %{GLOBAL} (no per-request expansions)".into());
                }
                None => return Err("application-group= is required".into()),
            };
            let library = server_relative(cmd, library)?;
            app::inspect(&library, role::APP).map_err(|e| e.to_string())?;
            note_process_group(cmd, "RGIImportScript", &options.process_group);
            server_config(cmd).imports.push(Import {
                library,
                application_group,
                process_group: options.process_group,
            });
            Ok(())
        })
    }
}

unsafe extern "C" fn application_group(
    cmd: *mut sys::cmd_parms,
    conf: *mut c_void,
    arg: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd, our DirConfig and a NUL-terminated word.
    unsafe {
        directive(cmd, || {
            (*conf.cast::<DirConfig>()).application_group = Some(GroupSpec::parse(&ffi::text(arg))?);
            Ok(())
        })
    }
}

unsafe extern "C" fn option(
    cmd: *mut sys::cmd_parms,
    conf: *mut c_void,
    name: *const c_char,
    value: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd, our DirConfig and one or two words (the second may be null).
    unsafe {
        directive(cmd, || {
            let name = ffi::text(name);
            if name.is_empty() {
                return Err("the option name is empty".into());
            }
            let value = (!value.is_null()).then(|| ffi::text(value));
            (*conf.cast::<DirConfig>()).set_option(&name, value.as_deref());
            Ok(())
        })
    }
}

unsafe extern "C" fn pass_authorization(cmd: *mut sys::cmd_parms, conf: *mut c_void, on: c_int) -> *const c_char {
    // SAFETY: Apache passes a live cmd and our DirConfig.
    unsafe {
        directive(cmd, || {
            (*conf.cast::<DirConfig>()).pass_authorization = Some(on != 0);
            Ok(())
        })
    }
}

/// The directive table (`module.cmds`): every feature's directives, terminated by a zeroed entry.
#[repr(transparent)]
pub struct Commands<const N: usize>(pub [sys::command_rec; N]);

// SAFETY: the table is immutable static data Apache only reads.
unsafe impl<const N: usize> Sync for Commands<N> {}

/// The zeroed entry that ends a directive table.
pub const END: sys::command_rec = command(std::ptr::null(), sys::cmd_func { no_args: None }, 0, 0, std::ptr::null());

/// Joins the directive lists of every feature into one table ending with [`END`]; `N` must be
/// the total length plus one.
pub const fn join<const N: usize>(parts: &[&[sys::command_rec]]) -> Commands<N> {
    let mut table = [END; N];
    let (mut i, mut k) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            table[k] = parts[i][j];
            (j, k) = (j + 1, k + 1);
        }
        i += 1;
    }
    assert!(k + 1 == N, "the directive table's length must be the sum of its parts plus one");
    Commands(table)
}

/// One directive-table entry.
pub const fn command(
    name: *const c_char,
    func: sys::cmd_func,
    req_override: i32,
    args_how: sys::cmd_how,
    errmsg: *const c_char,
) -> sys::command_rec {
    sys::command_rec { name, func, cmd_data: std::ptr::null_mut(), req_override, args_how, errmsg }
}

/// Directives allowed in server and virtual-host context.
pub const SERVER: i32 = sys::RSRC_CONF;
/// Directives allowed there and in `<Directory>`/`<Location>` sections.
pub const DIRECTORY: i32 = sys::RSRC_CONF | sys::ACCESS_CONF;

/// Fails unless the directive is in the main server (not a virtual host or section).
///
/// # Safety
/// `cmd` must be the live command of a directive being read.
pub unsafe fn global_only(cmd: *mut sys::cmd_parms) -> Result<(), String> {
    // SAFETY: guaranteed by the caller.
    let err = unsafe { sys::ap_check_cmd_context(cmd, sys::GLOBAL_ONLY as u32) };
    if err.is_null() {
        Ok(())
    } else {
        Err("is only allowed in the main server configuration, not in a virtual host or section".into())
    }
}

unsafe extern "C" fn slow_requests(cmd: *mut sys::cmd_parms, _: *mut c_void, arg: *const c_char) -> *const c_char {
    // SAFETY: Apache passes a live cmd and a word.
    unsafe {
        directive(cmd, || {
            global_only(cmd)?;
            server_config(cmd).slow_requests = crate::slow::parse_threshold(&ffi::text(arg))?;
            Ok(())
        })
    }
}

/// The core directives: aliases, groups, imports, options, slow-request logging.
pub const CORE: [sys::command_rec; 7] = [
    command(
        cstr!("RGIScriptAlias"),
        sys::cmd_func { take_argv: Some(script_alias::<false>) },
        SERVER,
        sys::cmd_how_TAKE_ARGV,
        cstr!("URL-PATH LIBRARY [application-group=NAME] [process-group=NAME]: serve an RGI app at a URL"),
    ),
    command(
        cstr!("RGIScriptAliasMatch"),
        sys::cmd_func { take_argv: Some(script_alias::<true>) },
        SERVER,
        sys::cmd_how_TAKE_ARGV,
        cstr!("REGEX LIBRARY [options]: serve RGI apps at URLs matching REGEX ($1… in LIBRARY)"),
    ),
    command(
        cstr!("RGIImportScript"),
        sys::cmd_func { take_argv: Some(import_script) },
        SERVER,
        sys::cmd_how_TAKE_ARGV,
        cstr!("LIBRARY application-group=NAME [process-group=NAME]: create the app when a process starts"),
    ),
    command(
        cstr!("RGIApplicationGroup"),
        sys::cmd_func { take1: Some(application_group) },
        DIRECTORY,
        sys::cmd_how_TAKE1,
        cstr!("%{GLOBAL} | %{SERVER} | %{RESOURCE} | %{ENV:variable} | NAME"),
    ),
    command(
        cstr!("RGIOption"),
        sys::cmd_func { take2: Some(option) },
        DIRECTORY,
        sys::cmd_how_TAKE12,
        cstr!("NAME [VALUE]: an option the app can read (no VALUE removes it)"),
    ),
    command(
        cstr!("RGIPassAuthorization"),
        sys::cmd_func { flag: Some(pass_authorization) },
        DIRECTORY,
        sys::cmd_how_FLAG,
        cstr!("On|Off: pass the Authorization header to apps as HTTP_AUTHORIZATION (default Off)"),
    ),
    command(
        cstr!("RGISlowRequests"),
        sys::cmd_func { take1: Some(slow_requests) },
        SERVER,
        sys::cmd_how_TAKE1,
        cstr!("SECONDS: log requests still running after SECONDS, and again when they end (default 0: off)"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_options_parse() {
        let o = parse_alias_options(["application-group=%{GLOBAL}", "process-group=shop", "pass-authorization=on"])
            .unwrap();
        assert_eq!(o.application_group, Some(GroupSpec::Global));
        assert_eq!(o.process_group.as_deref(), Some("shop"));
        assert_eq!(o.pass_authorization, Some(true));
    }

    #[test]
    fn bad_alias_options_name_the_problem() {
        assert!(parse_alias_options(["colour=red"]).unwrap_err().contains("unknown option 'colour'"));
        assert!(parse_alias_options(["stray"]).unwrap_err().contains("'stray'"));
        assert!(parse_alias_options(["process-group="]).unwrap_err().contains("no value"));
        assert!(parse_alias_options(["pass-authorization=maybe"]).unwrap_err().contains("'maybe'"));
        assert!(parse_alias_options(["application-group=%{NOPE}"]).unwrap_err().contains("%{NOPE}"));
    }
}
