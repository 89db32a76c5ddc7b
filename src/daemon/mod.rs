//! Daemon mode: apps served by supervised processes of their own (`RGIDaemonProcess`), to which
//! Apache's children hand requests over a UNIX socket.
//!
//! - this file: the directives and the configuration they build ([`DaemonGroup`]);
//! - [`protocol`]: the wire format between an Apache child and a daemon process (pure);
//! - [`socket`]: the UNIX-socket plumbing (listeners, framed connections, passing files);
//! - [`supervisor`]: the Apache parent's side: starts, watches, restarts and replaces daemons;
//! - [`process`]: a daemon process's own life: privileges, apps, worker threads, timeouts;
//! - [`host`]: the `HostApi` apps get inside a daemon process;
//! - [`client`]: the Apache child's side of a delegated request;
//! - [`select`]: which group serves a request (`RGIProcessGroup`, `RGIRestrictProcess`).
//!
//! See `docs/daemon.md` for the directives, their defaults and an example.

pub mod admission;
pub mod client;
pub mod host;
pub mod process;
pub mod protocol;
pub mod select;
pub mod socket;
pub mod supervisor;

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cstr;
use crate::directives::{self, DIRECTORY, SERVER, command, directive, global_only, words};
use crate::ffi::{self, sys};
use select::ProcessGroupSpec;

/// The name that sends a request to Apache's own children (embedded mode).
pub const GLOBAL: &str = "%{GLOBAL}";

/// One `RGIDaemonProcess`: a named group of daemon processes and how they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonGroup {
    /// The group's name (`process-group=NAME`, `RGIProcessGroup NAME`).
    pub name: String,
    /// `processes=N` (default 1): how many processes serve the group.
    pub processes: u32,
    /// `threads=N` (default 15): request threads in each process.
    pub threads: u32,
    /// `user=NAME|#UID`: the user the processes run as when Apache starts as root
    /// (default: Apache's `User`).
    pub user: Option<String>,
    /// `group=NAME|#GID`: their group (default: the user's primary group, or Apache's `Group`).
    pub group: Option<String>,
    /// `umask=0NNN` (default: inherited from Apache).
    pub umask: Option<u32>,
    /// `home=DIR`: the working directory (default: the user's home directory, else `/`).
    pub home: Option<String>,
    /// `priority=N` (default: inherited): the processes' nice value, -20 (first) to 19 (last);
    /// below 0 only when Apache starts as root.
    pub priority: Option<i32>,
    /// `stack-size=SIZE` (default 8 MiB, as Apache's own threads get on Linux): each request
    /// thread's stack, so an app that recurses deeply behaves as it does embedded.
    pub stack_size: usize,
    /// `env=NAME=VALUE` (repeatable): environment variables of the processes, set before any app
    /// library is loaded (`RUST_LOG`, `DATABASE_URL`, …; Apache's own environment is inherited).
    pub env: Vec<(String, String)>,
    /// `display-name=NAME` or `%{GROUP}` (`(rgi:NAME)`): the process name `ps` shows
    /// (default: Apache's).
    pub display_name: Option<String>,
    /// `maximum-requests=N` (default 0, unlimited): requests after which a process is replaced.
    pub maximum_requests: u64,
    /// `inactivity-timeout=S` (default off): an idle process is replaced after S seconds.
    pub inactivity_timeout: Option<Duration>,
    /// `restart-interval=S` (default off): a process is replaced S seconds after it started.
    pub restart_interval: Option<Duration>,
    /// `maximum-memory=SIZE` (default off): a process whose resident memory grows past SIZE bytes
    /// is replaced.
    pub maximum_memory: Option<u64>,
    /// `cpu-time-limit=S` (default off): a process that has used S seconds of CPU is replaced.
    pub cpu_time_limit: Option<Duration>,
    /// `script-reloading=on|off` (default off): a process whose app library changed on disk is
    /// replaced, and its replacement loads the new build.
    pub script_reloading: bool,
    /// `request-timeout=S` (default off): a request running longer gets 504 and its process is
    /// replaced.
    pub request_timeout: Option<Duration>,
    /// `queue-timeout=S` (default off): a request not accepted by a daemon within S seconds gets 504.
    pub queue_timeout: Option<Duration>,
    /// `connect-timeout=S` (default 15): how long an Apache child tries to connect before 503.
    pub connect_timeout: Duration,
    /// `socket-timeout=S` (default: Apache's `Timeout`): each read or write between an Apache child
    /// and a daemon.
    pub socket_timeout: Option<Duration>,
    /// `graceful-timeout=S` (default 15): how long a process being replaced (a graceful restart or
    /// one of the limits above) waits for its requests to finish.
    pub graceful_timeout: Duration,
    /// `shutdown-timeout=S` (default 5): how long requests get when Apache stops or a process is
    /// replaced after a request-timeout.
    pub shutdown_timeout: Duration,
    /// `listen-backlog=N` (default 100): connections that may wait for a free daemon thread.
    pub listen_backlog: u32,
    /// Where the group's socket is, set when Apache starts the group (post_config); shared so
    /// that a thread's kept connections name it without a copy per request.
    pub socket_path: OnceLock<Arc<Path>>,
}

impl DaemonGroup {
    /// A group with every option at its default.
    pub fn new(name: &str) -> Self {
        DaemonGroup {
            name: name.to_string(),
            processes: 1,
            threads: 15,
            user: None,
            group: None,
            umask: None,
            home: None,
            priority: None,
            env: Vec::new(),
            stack_size: 8 << 20,
            display_name: None,
            maximum_requests: 0,
            inactivity_timeout: None,
            restart_interval: None,
            maximum_memory: None,
            cpu_time_limit: None,
            script_reloading: false,
            request_timeout: None,
            queue_timeout: None,
            connect_timeout: Duration::from_secs(15),
            socket_timeout: None,
            graceful_timeout: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(5),
            listen_backlog: 100,
            socket_path: OnceLock::new(),
        }
    }

    /// Parses `NAME [option=value]...`; the error names the bad option and what it accepts.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let name = args.next().ok_or("expected NAME [option=value]...")?;
        check_group_name(name)?;
        let mut group = DaemonGroup::new(name);
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(format!("unexpected argument '{arg}' (options are written key=value)"));
            };
            if value.is_empty() {
                return Err(format!("option {key}= has no value"));
            }
            match key {
                "processes" => group.processes = number(key, value, 1, 1024)? as u32,
                "threads" => group.threads = number(key, value, 1, 10_000)? as u32,
                "user" => group.user = Some(value.to_string()),
                "group" => group.group = Some(value.to_string()),
                "umask" => group.umask = Some(octal_umask(value)?),
                "home" => {
                    if !value.starts_with('/') {
                        return Err(format!("home={value} must be an absolute path"));
                    }
                    group.home = Some(value.to_string());
                }
                "display-name" => group.display_name = Some(value.to_string()),
                "env" => {
                    let (name, value) =
                        value.split_once('=').filter(|(name, _)| is_variable_name(name)).ok_or_else(|| {
                            format!("env={value} is not NAME=VALUE with a NAME of letters, digits and '_'")
                        })?;
                    group.env.push((name.to_string(), value.to_string()));
                }
                "priority" => match value.parse::<i32>() {
                    Ok(n) if (-20..=19).contains(&n) => group.priority = Some(n),
                    _ => return Err(format!("priority={value} is not a nice value from -20 to 19")),
                },
                "stack-size" => match size(key, value)? {
                    n if (64 << 10..=1 << 30).contains(&n) => group.stack_size = n as usize,
                    _ => return Err(format!("stack-size={value} is not from 64K to 1G")),
                },
                "maximum-requests" => group.maximum_requests = number(key, value, 0, u64::MAX >> 1)?,
                "inactivity-timeout" => group.inactivity_timeout = optional_seconds(key, value)?,
                "restart-interval" => group.restart_interval = optional_seconds(key, value)?,
                "maximum-memory" => group.maximum_memory = Some(size(key, value)?).filter(|&n| n > 0),
                "cpu-time-limit" => group.cpu_time_limit = optional_seconds(key, value)?,
                "script-reloading" => {
                    group.script_reloading =
                        directives::parse_on_off(value).map_err(|why| format!("script-reloading={value}: {why}"))?
                }
                "request-timeout" => group.request_timeout = optional_seconds(key, value)?,
                "queue-timeout" => group.queue_timeout = optional_seconds(key, value)?,
                "connect-timeout" => group.connect_timeout = seconds(key, value, 1)?,
                "socket-timeout" => group.socket_timeout = Some(seconds(key, value, 1)?),
                "graceful-timeout" => group.graceful_timeout = seconds(key, value, 0)?,
                "shutdown-timeout" => group.shutdown_timeout = seconds(key, value, 0)?,
                "listen-backlog" => group.listen_backlog = number(key, value, 1, 65_535)? as u32,
                _ => return Err(format!("unknown option '{key}' (see docs/daemon.md for the options)")),
            }
        }
        Ok(group)
    }

    /// The name `ps` shows for the group's processes, if one was asked for.
    pub fn process_title(&self) -> Option<String> {
        match self.display_name.as_deref()? {
            "%{GROUP}" => Some(format!("(rgi:{})", self.name)),
            name => Some(name.to_string()),
        }
    }
}

/// Group names end up in socket file names: letters, digits, '.', '_' and '-' only.
pub fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("'{name}' is not a valid process group name (1 to 64 characters)"));
    }
    if name == GLOBAL {
        return Err(format!("{GLOBAL} is reserved: it names Apache's own processes"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) || name.starts_with('.') {
        return Err(format!("'{name}' is not a valid process group name (use letters, digits, '.', '_' and '-')"));
    }
    Ok(())
}

fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{key}={value} is not a whole number from {min} to {max}")),
    }
}

fn seconds(key: &str, value: &str, min: u64) -> Result<Duration, String> {
    number(key, value, min, 31_536_000)
        .map(Duration::from_secs)
        .map_err(|_| format!("{key}={value} is not a whole number of seconds from {min} to 31536000"))
}

/// Seconds, with 0 meaning "off".
fn optional_seconds(key: &str, value: &str) -> Result<Option<Duration>, String> {
    Ok(Some(seconds(key, value, 0)?).filter(|d| !d.is_zero()))
}

/// An environment variable name as shells accept it.
fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A size in bytes, with an optional K, M or G (binary) suffix.
fn size(key: &str, value: &str) -> Result<u64, String> {
    let (digits, unit) = match value.char_indices().last() {
        Some((i, 'K' | 'k')) => (&value[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&value[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&value[..i], 1 << 30),
        _ => (value, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{key}={value} is not a size in bytes (a whole number, optionally with K, M or G)"))
}

fn octal_umask(value: &str) -> Result<u32, String> {
    match u32::from_str_radix(value, 8) {
        Ok(mask) if mask <= 0o777 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(mask),
        _ => Err(format!("umask={value} is not an octal mask from 0000 to 0777")),
    }
}

/// The daemon-mode part of a server's configuration.
#[derive(Debug, Default, Clone)]
pub struct ServerDaemonConfig {
    /// The groups declared in this server (a virtual host's own, or the main server's).
    pub groups: Vec<Arc<DaemonGroup>>,
    /// `RGIRestrictEmbedded` (main server only).
    pub restrict_embedded: Option<bool>,
    /// `RGISocketPrefix` (main server only), made absolute against ServerRoot.
    pub socket_prefix: Option<String>,
    /// Every process group this server's directives name: (directive, group), checked once the
    /// whole configuration is read.
    pub references: Vec<(&'static str, String)>,
}

impl ServerDaemonConfig {
    /// A virtual host keeps only what it declares itself; the main server's groups stay visible
    /// through [`find_group`].
    pub fn merge(_base: &Self, add: &Self) -> Self {
        ServerDaemonConfig {
            groups: add.groups.clone(),
            restrict_embedded: None,
            socket_prefix: None,
            references: add.references.clone(),
        }
    }
}

/// The main server (global settings and groups live there).
pub fn main_server() -> *mut sys::server_rec {
    // SAFETY: Apache sets ap_server_conf before any hook runs; reading a pointer-sized global.
    unsafe { sys::ap_server_conf }
}

/// The group called `name` as seen from server `s`: its own groups first, then the main server's.
///
/// # Safety
/// `s` must be a live server of the running configuration.
pub unsafe fn find_group<'a>(s: *const sys::server_rec, name: &str) -> Option<&'a Arc<DaemonGroup>> {
    // SAFETY: live servers of the running configuration.
    let (own, main) =
        unsafe { (&crate::config::server_config(s).daemon, &crate::config::server_config(main_server()).daemon) };
    own.groups.iter().chain(&main.groups).find(|g| g.name == name)
}

/// Whether requests not delegated to a daemon must be refused (`RGIRestrictEmbedded On`).
pub fn restrict_embedded() -> bool {
    // SAFETY: the main server of the running configuration.
    unsafe { crate::config::server_config(main_server()) }.daemon.restrict_embedded.unwrap_or(false)
}

/// Every group of the configuration (main server and virtual hosts).
///
/// # Safety
/// `main` must be the live main server.
pub unsafe fn all_groups(main: *const sys::server_rec) -> Vec<Arc<DaemonGroup>> {
    let mut groups: Vec<Arc<DaemonGroup>> = Vec::new();
    let mut s = main;
    while !s.is_null() {
        // SAFETY: walking the live server list.
        let conf = unsafe { crate::config::server_config(s) };
        for g in &conf.daemon.groups {
            if !groups.iter().any(|known| Arc::ptr_eq(known, g)) {
                groups.push(g.clone());
            }
        }
        // SAFETY: as above.
        s = unsafe { (*s).next };
    }
    groups
}

/// Whether a `process-group=` (of an alias or an import) keeps the app in Apache's own children.
pub fn is_embedded(process_group: Option<&str>) -> bool {
    process_group.is_none_or(|g| g == GLOBAL)
}

/// Checks the whole configuration once it is read (`check_config`): every process group named
/// exists where it is used, group names are unique, sockets fit in a UNIX socket address.
///
/// # Safety
/// `main` must be the live main server; `pool` a live pool.
pub unsafe fn check_config(main: *mut sys::server_rec, pool: *mut sys::apr_pool_t) -> Result<(), String> {
    // SAFETY: live servers of the configuration being checked.
    let main_conf = unsafe { &crate::config::server_config(main).daemon };
    let mut names: Vec<&str> = Vec::new();
    let mut s = main;
    while !s.is_null() {
        // SAFETY: walking the live server list.
        let conf = unsafe { &crate::config::server_config(s).daemon };
        if !std::ptr::eq(s, main) {
            for g in &conf.groups {
                if names.contains(&g.name.as_str()) && !main_conf.groups.iter().any(|m| Arc::ptr_eq(m, g)) {
                    return Err(format!("RGIDaemonProcess: the process group name '{}' is used twice", g.name));
                }
            }
        }
        for g in &conf.groups {
            if !names.contains(&g.name.as_str()) {
                names.push(&g.name);
            }
        }
        for (directive, name) in &conf.references {
            let known = conf.groups.iter().chain(&main_conf.groups).any(|g| &g.name == name);
            if !known {
                return Err(format!(
                    "{directive}: no RGIDaemonProcess named '{name}' is defined for this server \
                     (define it in the same virtual host or in the main server)"
                ));
            }
        }
        // SAFETY: as above.
        s = unsafe { (*s).next };
    }
    if main_conf.restrict_embedded == Some(true) {
        let mut s = main;
        while !s.is_null() {
            // SAFETY: walking the live server list.
            let imports = unsafe { &crate::config::server_config(s).imports };
            if let Some(import) = imports.iter().find(|i| is_embedded(i.process_group.as_deref())) {
                return Err(format!(
                    "RGIImportScript {}: RGIRestrictEmbedded On forbids apps in Apache's own processes \
                     (add process-group=NAME)",
                    import.library
                ));
            }
            // SAFETY: as above.
            s = unsafe { (*s).next };
        }
    }
    // SAFETY: a live pool.
    let prefix = unsafe { socket_prefix(pool) };
    for name in names {
        let longest = socket_path(&prefix, u32::MAX, name);
        if longest.as_os_str().len() >= 108 {
            return Err(format!(
                "RGISocketPrefix: the socket path for group '{name}' ({}) is longer than a UNIX socket \
                 address allows (107 bytes); choose a shorter RGISocketPrefix or group name",
                longest.display()
            ));
        }
    }
    Ok(())
}

/// The socket prefix in effect: `RGISocketPrefix`, or `rgi` in Apache's runtime directory.
///
/// # Safety
/// `pool` must be a live pool.
pub unsafe fn socket_prefix(pool: *mut sys::apr_pool_t) -> String {
    // SAFETY: the main server of the configuration.
    if let Some(prefix) = unsafe { crate::config::server_config(main_server()) }.daemon.socket_prefix.clone() {
        return prefix;
    }
    // SAFETY: a live pool and a literal.
    unsafe { ffi::text(sys::ap_runtime_dir_relative(pool, cstr!("rgi"))) }.into_owned()
}

/// `PREFIX.PID.GROUP.sock`: stable for the life of the Apache parent, so graceful restarts keep it.
pub fn socket_path(prefix: &str, parent_pid: u32, group: &str) -> PathBuf {
    PathBuf::from(format!("{prefix}.{parent_pid}.{group}.sock"))
}

/// The daemon part of the server configuration a directive writes to.
///
/// # Safety
/// `cmd` must be the live command of a directive being read.
unsafe fn daemon_config<'a>(cmd: *mut sys::cmd_parms) -> &'a mut ServerDaemonConfig {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut directives::server_config(cmd).daemon }
}

/// Checks `user=`/`group=` name real accounts (numeric `#ID`s are taken as they are).
fn check_identity(group: &DaemonGroup) -> Result<(), String> {
    if let Some(user) = &group.user {
        process::resolve_user(user)?;
    }
    if let Some(name) = &group.group {
        process::resolve_group(name)?;
    }
    Ok(())
}

unsafe extern "C" fn daemon_process(
    cmd: *mut sys::cmd_parms,
    _: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd and argc words.
    unsafe {
        directive(cmd, || {
            let args = words(argc, argv);
            let group = DaemonGroup::parse(args.iter().map(|a| a.as_ref()))?;
            check_identity(&group)?;
            let conf = daemon_config(cmd);
            if conf.groups.iter().any(|g| g.name == group.name) {
                return Err(format!("the process group name '{}' is used twice", group.name));
            }
            conf.groups.push(Arc::new(group));
            Ok(())
        })
    }
}

unsafe extern "C" fn process_group(cmd: *mut sys::cmd_parms, conf: *mut c_void, arg: *const c_char) -> *const c_char {
    // SAFETY: Apache passes a live cmd, our DirConfig and a word.
    unsafe {
        directive(cmd, || {
            let spec = ProcessGroupSpec::parse(&ffi::text(arg))?;
            if let Some(name) = spec.fixed_name() {
                daemon_config(cmd).references.push(("RGIProcessGroup", name.to_string()));
            }
            (*conf.cast::<crate::config::DirConfig>()).process_group = Some(spec);
            Ok(())
        })
    }
}

unsafe extern "C" fn restrict_process(
    cmd: *mut sys::cmd_parms,
    conf: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd, our DirConfig and argc words.
    unsafe {
        directive(cmd, || {
            let names = select::parse_restriction(&words(argc, argv))?;
            let references = &mut daemon_config(cmd).references;
            references.extend(names.iter().filter(|n| *n != GLOBAL).map(|n| ("RGIRestrictProcess", n.clone())));
            (*conf.cast::<crate::config::DirConfig>()).restrict_process = Some(names);
            Ok(())
        })
    }
}

unsafe extern "C" fn ignore_activity(cmd: *mut sys::cmd_parms, conf: *mut c_void, on: c_int) -> *const c_char {
    // SAFETY: Apache passes a live cmd and our DirConfig.
    unsafe {
        directive(cmd, || {
            (*conf.cast::<crate::config::DirConfig>()).ignore_activity = Some(on != 0);
            Ok(())
        })
    }
}

unsafe extern "C" fn restrict_embedded_directive(cmd: *mut sys::cmd_parms, _: *mut c_void, on: c_int) -> *const c_char {
    // SAFETY: Apache passes a live cmd.
    unsafe {
        directive(cmd, || {
            global_only(cmd)?;
            daemon_config(cmd).restrict_embedded = Some(on != 0);
            Ok(())
        })
    }
}

unsafe extern "C" fn socket_prefix_directive(
    cmd: *mut sys::cmd_parms,
    _: *mut c_void,
    arg: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd and a word.
    unsafe {
        directive(cmd, || {
            global_only(cmd)?;
            let prefix = directives::server_relative(cmd, &ffi::text(arg))?;
            if prefix.ends_with('/') {
                return Err(format!("'{prefix}' names a directory; the prefix is the start of a file name"));
            }
            daemon_config(cmd).socket_prefix = Some(prefix);
            Ok(())
        })
    }
}

/// The daemon-mode directives.
pub const DIRECTIVES: [sys::command_rec; 6] = [
    command(
        cstr!("RGIDaemonProcess"),
        sys::cmd_func { take_argv: Some(daemon_process) },
        SERVER,
        sys::cmd_how_TAKE_ARGV,
        cstr!("NAME [processes=N] [threads=N] [user=U] [group=G] [...]: a group of daemon processes"),
    ),
    command(
        cstr!("RGIProcessGroup"),
        sys::cmd_func { take1: Some(process_group) },
        DIRECTORY,
        sys::cmd_how_TAKE1,
        cstr!("NAME | %{GLOBAL} | %{ENV:variable}: the daemon process group that serves requests here"),
    ),
    command(
        cstr!("RGIRestrictProcess"),
        sys::cmd_func { take_argv: Some(restrict_process) },
        DIRECTORY,
        sys::cmd_how_TAKE_ARGV,
        cstr!("NAME|%{GLOBAL} ...: the only process groups requests here may be served by"),
    ),
    command(
        cstr!("RGIIgnoreActivity"),
        sys::cmd_func { flag: Some(ignore_activity) },
        DIRECTORY,
        sys::cmd_how_FLAG,
        cstr!("On|Off: requests here do not count as activity for a daemon's inactivity-timeout (default Off)"),
    ),
    command(
        cstr!("RGIRestrictEmbedded"),
        sys::cmd_func { flag: Some(restrict_embedded_directive) },
        SERVER,
        sys::cmd_how_FLAG,
        cstr!("On|Off: refuse (500) requests not delegated to a daemon process group (default Off)"),
    ),
    command(
        cstr!("RGISocketPrefix"),
        sys::cmd_func { take1: Some(socket_prefix_directive) },
        SERVER,
        sys::cmd_how_TAKE1,
        cstr!("PATH: start of the daemon sockets' file names (default: DefaultRuntimeDir/rgi)"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let g = DaemonGroup::parse(["shop"]).unwrap();
        assert_eq!((g.processes, g.threads, g.listen_backlog), (1, 15, 100));
        assert_eq!(g.connect_timeout, Duration::from_secs(15));
        assert_eq!((g.graceful_timeout, g.shutdown_timeout), (Duration::from_secs(15), Duration::from_secs(5)));
        assert_eq!(
            (g.request_timeout, g.queue_timeout, g.inactivity_timeout, g.restart_interval, g.socket_timeout),
            (None, None, None, None, None)
        );
        assert_eq!((g.maximum_memory, g.cpu_time_limit, g.script_reloading), (None, None, false));
        assert_eq!((g.priority, g.stack_size), (None, 8 << 20));
        assert!(g.env.is_empty());
        assert_eq!(g.maximum_requests, 0);
        assert_eq!(g.process_title(), None);
    }

    #[test]
    fn every_option_parses() {
        let g = DaemonGroup::parse([
            "shop",
            "processes=3",
            "threads=4",
            "user=www-data",
            "group=www-data",
            "umask=0027",
            "home=/srv",
            "display-name=%{GROUP}",
            "maximum-requests=1000",
            "inactivity-timeout=60",
            "restart-interval=3600",
            "maximum-memory=512M",
            "cpu-time-limit=600",
            "script-reloading=On",
            "priority=-5",
            "stack-size=16M",
            "env=RUST_LOG=info,shop=debug",
            "env=EMPTY=",
            "request-timeout=30",
            "queue-timeout=5",
            "connect-timeout=2",
            "socket-timeout=10",
            "graceful-timeout=7",
            "shutdown-timeout=0",
            "listen-backlog=50",
        ])
        .unwrap();
        assert_eq!((g.processes, g.threads, g.umask), (3, 4, Some(0o027)));
        assert_eq!(g.process_title().as_deref(), Some("(rgi:shop)"));
        assert_eq!(g.request_timeout, Some(Duration::from_secs(30)));
        assert_eq!(g.restart_interval, Some(Duration::from_secs(3600)));
        assert_eq!((g.maximum_memory, g.cpu_time_limit), (Some(512 << 20), Some(Duration::from_secs(600))));
        assert!(g.script_reloading);
        assert_eq!((g.priority, g.stack_size), (Some(-5), 16 << 20));
        let env: Vec<(&str, &str)> = g.env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(env, [("RUST_LOG", "info,shop=debug"), ("EMPTY", "")]);
        for (value, bytes) in [("1048576", 1 << 20), ("64k", 64 << 10), ("2G", 2 << 30), ("0", 0)] {
            let g = DaemonGroup::parse(["a", &format!("maximum-memory={value}")]).unwrap();
            assert_eq!(g.maximum_memory, Some(bytes).filter(|&n| n > 0), "{value}");
        }
        assert_eq!(g.shutdown_timeout, Duration::ZERO);
        assert_eq!(g.listen_backlog, 50);
        assert_eq!(DaemonGroup::parse(["a", "request-timeout=0"]).unwrap().request_timeout, None);
    }

    #[test]
    fn bad_values_name_the_option() {
        for (arg, expected) in [
            ("processes=0", "processes=0"),
            ("threads=x", "threads=x"),
            ("umask=0999", "umask=0999"),
            ("home=relative", "absolute"),
            ("connect-timeout=0", "connect-timeout=0"),
            ("request-timeout=-1", "request-timeout=-1"),
            ("restart-interval=1h", "restart-interval=1h"),
            ("maximum-memory=1T", "maximum-memory=1T"),
            ("maximum-memory=M", "maximum-memory=M"),
            ("maximum-memory=99999999999999999G", "not a size in bytes"),
            ("cpu-time-limit=-5", "cpu-time-limit=-5"),
            ("script-reloading=yes", "script-reloading=yes"),
            ("priority=20", "priority=20"),
            ("priority=high", "priority=high"),
            ("stack-size=4K", "stack-size=4K"),
            ("stack-size=lots", "stack-size=lots"),
            ("env=NOVALUE", "env=NOVALUE"),
            ("env=1X=y", "env=1X=y"),
            ("env==y", "env==y"),
            ("colour=red", "unknown option 'colour'"),
            ("stray", "'stray'"),
            ("threads=", "no value"),
        ] {
            let err = DaemonGroup::parse(["g", arg]).unwrap_err();
            assert!(err.contains(expected), "{arg}: {err}");
        }
        assert!(DaemonGroup::parse(Vec::<&str>::new()).is_err());
        for bad in ["", "%{GLOBAL}", "a/b", ".hidden", "sp ace"] {
            assert!(check_group_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn global_means_embedded() {
        assert!(is_embedded(None));
        assert!(is_embedded(Some(GLOBAL)));
        assert!(!is_embedded(Some("shop")));
    }

    #[test]
    fn socket_paths_are_stable_per_parent() {
        assert_eq!(socket_path("/run/apache2/rgi", 42, "shop"), PathBuf::from("/run/apache2/rgi.42.shop.sock"));
    }
}
