//! Per-server and per-directory configuration, and how Apache merges them.
//!
//! Both live in Apache's configuration pool as Rust values (see `ffi::pool_box`), so they are
//! dropped when Apache throws a configuration away on restart.

use std::ffi::{CString, c_char, c_void};

use rgi::abi::{RgiPair, RgiStr};

use crate::ffi::{self, sys};

/// How the application group of a request is chosen (`RGIApplicationGroup`, mod_wsgi's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSpec {
    /// `%{GLOBAL}`: the group named `""`, shared by everything in the process.
    Global,
    /// `%{SERVER}`: one group per virtual host (`name[:port]`).
    Server,
    /// `%{RESOURCE}`: one group per virtual host and mount point (`name[:port]|SCRIPT_NAME`).
    Resource,
    /// `%{ENV:variable}`: named by an environment variable of the request.
    Env(CString),
    /// A fixed name.
    Named(String),
}

impl GroupSpec {
    /// Parses a directive argument; the error says what is accepted.
    pub fn parse(arg: &str) -> Result<Self, String> {
        Ok(match arg {
            "" => return Err("the application group name is empty".into()),
            "%{GLOBAL}" => GroupSpec::Global,
            "%{SERVER}" => GroupSpec::Server,
            "%{RESOURCE}" => GroupSpec::Resource,
            _ if arg.starts_with("%{ENV:") && arg.ends_with('}') && arg.len() > 7 => {
                let var = &arg[6..arg.len() - 1];
                GroupSpec::Env(CString::new(var).map_err(|_| "NUL in the variable name".to_string())?)
            }
            _ if arg.contains("%{") => {
                return Err(format!(
                    "'{arg}' is not a valid application group: use %{{GLOBAL}}, %{{SERVER}}, %{{RESOURCE}}, \
                     %{{ENV:variable}} or a plain name"
                ));
            }
            _ => GroupSpec::Named(arg.to_string()),
        })
    }
}

/// The compiled pattern of an `RGIScriptAliasMatch` (lives in the configuration pool).
#[derive(Debug, Clone, Copy)]
pub struct Regex(pub *mut sys::ap_regex_t);

/// How an alias matches request URIs.
#[derive(Debug, Clone)]
pub enum AliasMatcher {
    /// `RGIScriptAlias`: a URL-path prefix, matched at segment boundaries.
    Prefix(String),
    /// `RGIScriptAliasMatch`: a regular expression; `$1`… are substituted into the library path.
    Regex(Regex),
}

/// One `RGIScriptAlias` or `RGIScriptAliasMatch`.
#[derive(Debug, Clone)]
pub struct Alias {
    /// What URIs it serves.
    pub matcher: AliasMatcher,
    /// The library (absolute; a template with `$N` for regex aliases), NUL-terminated.
    pub library: CString,
    /// `application-group=`.
    pub application_group: Option<GroupSpec>,
    /// `process-group=`.
    pub process_group: Option<String>,
    /// `pass-authorization=`.
    pub pass_authorization: Option<bool>,
}

/// `RGIImportScript LIBRARY application-group=NAME [process-group=NAME]`.
#[derive(Debug, Clone)]
pub struct Import {
    /// The library, absolute.
    pub library: String,
    /// The group whose instance is created at process start.
    pub application_group: String,
    /// The daemon process group, or `None` for Apache's children.
    pub process_group: Option<String>,
}

/// Server (virtual host) configuration.
#[derive(Debug, Default, Clone)]
pub struct ServerConfig {
    /// Aliases in the order they were declared; a virtual host's come before the main server's.
    pub aliases: Vec<Alias>,
    /// Instances to create when a process starts.
    pub imports: Vec<Import>,
    /// Daemon mode: process groups and global daemon settings.
    pub daemon: crate::daemon::ServerDaemonConfig,
    /// `RGISessionCache`, `RGISessionLocks` (read from the main server only).
    pub sessions: crate::session::Settings,
    /// `RGISlowRequests` (main server only): log requests still running after this long.
    pub slow_requests: Option<std::time::Duration>,
}

/// One `RGIOption`: a name and its value (`None` removes an inherited option).
pub type OptionEntry = (Box<[u8]>, Option<Box<[u8]>>);

/// Directory (`<Location>`, `<Directory>`, server-wide) configuration.
#[derive(Debug, Default)]
pub struct DirConfig {
    /// `RGIApplicationGroup`.
    pub application_group: Option<GroupSpec>,
    /// `RGIPassAuthorization`.
    pub pass_authorization: Option<bool>,
    /// `RGIProcessGroup`: the daemon process group (or `%{GLOBAL}`) serving requests here.
    pub process_group: Option<crate::daemon::select::ProcessGroupSpec>,
    /// `RGIRestrictProcess`: the only process groups (`%{GLOBAL}`: embedded) allowed here.
    pub restrict_process: Option<Vec<String>>,
    /// `RGIIgnoreActivity`: requests here do not keep a daemon process from its inactivity-timeout.
    pub ignore_activity: Option<bool>,
    /// `RGIOption NAME VALUE`, in order; a later name replaces an earlier one.
    pub options: Vec<OptionEntry>,
    /// `options` as ABI pairs (pointing into `options`), rebuilt after every change.
    option_pairs: Vec<RgiPair>,
    /// The auth libraries (`RGIAuthUserScript`, …).
    pub auth: crate::auth::config::DirAuth,
    /// `RGIDispatchScript`: the library choosing each request's groups.
    pub dispatch: Option<crate::auth::config::AuthScript>,
}

impl DirConfig {
    /// Sets (or with `None`, removes) an option.
    pub fn set_option(&mut self, name: &str, value: Option<&str>) {
        self.options.retain(|(n, _)| &**n != name.as_bytes());
        self.options.push((name.as_bytes().into(), value.map(|v| v.as_bytes().into())));
        self.rebuild_pairs();
    }

    fn rebuild_pairs(&mut self) {
        self.option_pairs = self
            .options
            .iter()
            .filter_map(|(n, v)| Some(RgiPair { name: RgiStr::new(n), value: RgiStr::new(v.as_deref()?) }))
            .collect();
    }

    /// The options as ABI pairs (valid while this config lives).
    pub fn option_pairs(&self) -> &[RgiPair] {
        &self.option_pairs
    }

    /// The value of option `name`.
    pub fn option(&self, name: &str) -> Option<&[u8]> {
        self.options.iter().rev().find(|(n, _)| &**n == name.as_bytes()).and_then(|(_, v)| v.as_deref())
    }

    fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        let mut merged = DirConfig {
            application_group: add.application_group.clone().or_else(|| base.application_group.clone()),
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            process_group: add.process_group.clone().or_else(|| base.process_group.clone()),
            restrict_process: add.restrict_process.clone().or_else(|| base.restrict_process.clone()),
            ignore_activity: add.ignore_activity.or(base.ignore_activity),
            options: base.options.clone(),
            option_pairs: Vec::new(),
            auth: crate::auth::config::DirAuth::merge(&base.auth, &add.auth),
            dispatch: add.dispatch.clone().or_else(|| base.dispatch.clone()),
        };
        for (name, value) in &add.options {
            merged.options.retain(|(n, _)| n != name);
            merged.options.push((name.clone(), value.clone()));
        }
        merged.rebuild_pairs();
        merged
    }
}

/// The server configuration of `s`.
///
/// # Safety
/// `s` must be a live server of the running configuration.
pub unsafe fn server_config<'a>(s: *const sys::server_rec) -> &'a ServerConfig {
    // SAFETY: the slot was filled by create_server_config/merge_server_config for this config.
    unsafe { &*ffi::module_config::<ServerConfig>((*s).module_config) }
}

/// The directory configuration in effect for request `r`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn dir_config<'a>(r: *const sys::request_rec) -> Option<&'a DirConfig> {
    // SAFETY: the slot holds a DirConfig from create/merge_dir_config, or null.
    unsafe { ffi::module_config::<DirConfig>((*r).per_dir_config).as_ref() }
}

/// Apache callback (module record).
/// # Safety
/// Called by Apache with live pointers of the configuration being built.
pub unsafe extern "C" fn create_server_config(p: *mut sys::apr_pool_t, _s: *mut sys::server_rec) -> *mut c_void {
    // SAFETY: Apache passes the live configuration pool.
    ffi::guard(std::ptr::null_mut(), || unsafe { ffi::pool_box(p, ServerConfig::default()) }.cast())
}

/// Apache callback (module record).
/// # Safety
/// Called by Apache with live pointers of the configuration being built.
pub unsafe extern "C" fn merge_server_config(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    ffi::guard(std::ptr::null_mut(), || {
        // SAFETY: both come from create_server_config and live in the configuration pool.
        let (base, add) = unsafe { (&*base.cast::<ServerConfig>(), &*add.cast::<ServerConfig>()) };
        let merged = ServerConfig {
            aliases: add.aliases.iter().chain(&base.aliases).cloned().collect(),
            imports: add.imports.clone(),
            daemon: crate::daemon::ServerDaemonConfig::merge(&base.daemon, &add.daemon),
            sessions: add.sessions.clone(),
            slow_requests: add.slow_requests.or(base.slow_requests),
        };
        // SAFETY: the live configuration pool.
        unsafe { ffi::pool_box(p, merged) }.cast()
    })
}

/// Apache callback (module record).
/// # Safety
/// Called by Apache with live pointers of the configuration being built.
pub unsafe extern "C" fn create_dir_config(p: *mut sys::apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    // SAFETY: Apache passes a live pool.
    ffi::guard(std::ptr::null_mut(), || unsafe { ffi::pool_box(p, DirConfig::default()) }.cast())
}

/// Apache callback (module record).
/// # Safety
/// Called by Apache with live pointers of the configuration being built.
pub unsafe extern "C" fn merge_dir_config(p: *mut sys::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    ffi::guard(std::ptr::null_mut(), || {
        // SAFETY: both come from create_dir_config/merge_dir_config and outlive the merge.
        let (base, add) = unsafe { (&*base.cast::<DirConfig>(), &*add.cast::<DirConfig>()) };
        // SAFETY: a live pool (the request's, when merging per request).
        unsafe { ffi::pool_box(p, DirConfig::merge(base, add)) }.cast()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_specs_follow_mod_wsgi() {
        assert_eq!(GroupSpec::parse("%{GLOBAL}"), Ok(GroupSpec::Global));
        assert_eq!(GroupSpec::parse("%{RESOURCE}"), Ok(GroupSpec::Resource));
        assert_eq!(GroupSpec::parse("%{ENV:APP}"), Ok(GroupSpec::Env(c"APP".into())));
        assert_eq!(GroupSpec::parse("shop"), Ok(GroupSpec::Named("shop".into())));
        assert!(GroupSpec::parse("%{HOST}").unwrap_err().contains("%{HOST}"));
        assert!(GroupSpec::parse("").is_err());
        assert!(GroupSpec::parse("%{ENV:}").is_err());
    }

    #[test]
    fn later_options_replace_earlier_and_none_removes() {
        let mut base = DirConfig::default();
        base.set_option("a", Some("1"));
        base.set_option("b", Some("2"));
        let mut add = DirConfig::default();
        add.set_option("a", Some("3"));
        add.set_option("b", None);
        let merged = DirConfig::merge(&base, &add);
        assert_eq!(merged.option("a"), Some(&b"3"[..]));
        assert_eq!(merged.option("b"), None);
        assert_eq!(merged.option_pairs().len(), 1);
    }
}
