//! The Apache parent's side of daemon mode: it creates each group's listening socket, forks the
//! daemon processes, restarts them when they die, and replaces them on a restart.
//!
//! - Listening sockets belong to the parent and outlive configuration cycles (the module is
//!   linked with `-z nodelete`, so this file's state survives Apache's reloads): their paths
//!   never change while Apache runs, and a connection made while no daemon is accepting waits in
//!   the listen queue instead of failing.
//! - On a graceful (or hard) restart the new generation's processes start first; the old ones are
//!   then asked (SIGUSR1) to finish their requests and exit.
//! - Deaths reach us through `apr_proc_other_child_register`, from the MPM's maintenance loop;
//!   a SIGCHLD handler wakes that loop so a crashed daemon is replaced at once, not on its next
//!   one-second tick.

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid};
use parking_lot::Mutex;

use super::process::{self, exit_code};
use super::{DaemonGroup, all_groups, socket, socket_path, socket_prefix};
use crate::ffi::{self, sys};

/// Consecutive failed starts after which a group is retried from the monitor hook (about every
/// 10 seconds) instead of at once.
const MAX_QUICK_RESTARTS: u32 = 3;

static SUPERVISOR: Mutex<Option<Supervisor>> = Mutex::new(None);

struct Supervisor {
    /// The Apache parent's pid (state is only acted on in that process).
    parent: u32,
    /// The current configuration pool: registrations live in it.
    pconf: *mut sys::apr_pool_t,
    /// The current main server, for logging and for the daemons.
    main: *mut sys::server_rec,
    groups: Vec<Group>,
    /// Processes replaced by a restart, finishing their requests.
    retiring: Vec<(u32, String)>,
}

// SAFETY: the raw pointers are only used by the Apache parent's main thread, which runs every
// hook and maintenance callback that touches this state.
unsafe impl Send for Supervisor {}

struct Group {
    config: Arc<DaemonGroup>,
    path: PathBuf,
    listener: UnixListener,
    /// One per process of the group: the pid running in it and when it started.
    slots: Vec<Option<(u32, Instant)>>,
    /// Consecutive processes that failed while starting.
    failures: u32,
}

impl Group {
    fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().flatten().map(|(pid, _)| *pid)
    }
}

fn log(level: c_int, msg: &str) {
    // SAFETY: a null server logs to the main server.
    unsafe { ffi::log_server(std::ptr::null(), level, 0, msg) };
}

fn mpm_stopping() -> bool {
    let mut state = 0;
    // SAFETY: a plain query with a writable result.
    unsafe { sys::ap_mpm_query(sys::AP_MPMQ_MPM_STATE as c_int, &mut state) };
    state == sys::AP_MPMQ_STOPPING as c_int
}

fn send(pid: u32, sig: Signal) {
    let _ = signal::kill(Pid::from_raw(pid as i32), sig);
}

/// Apache's `User` and `Group`, when the parent runs as root (the sockets' owner).
fn apache_owner() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    // SAFETY: unixd's configuration is plain data set while reading the configuration.
    Some(unsafe { (sys::ap_unixd_config.user_id, sys::ap_unixd_config.group_id) })
}

extern "C" fn wake_maintenance_loop(_: c_int) {}

/// Makes a child's death interrupt the MPM's one-second sleep (only when nobody else handles
/// SIGCHLD in the parent).
fn install_sigchld_wakeup() {
    let wake = SigAction::new(
        SigHandler::Handler(wake_maintenance_loop),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, so it is async-signal-safe; the old disposition is put
    // back if it was not the default.
    unsafe {
        if let Ok(old) = signal::sigaction(Signal::SIGCHLD, &wake)
            && old.handler() != SigHandler::SigDfl
        {
            let _ = signal::sigaction(Signal::SIGCHLD, &old);
        }
    }
}

/// Puts SIGCHLD back to its default in processes forked from the parent.
pub fn reset_sigchld() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring the default disposition.
    unsafe {
        if let Ok(old) = signal::sigaction(Signal::SIGCHLD, &default)
            && old.handler() != SigHandler::Handler(wake_maintenance_loop)
        {
            let _ = signal::sigaction(Signal::SIGCHLD, &old);
        }
    }
}

/// post_config: starts, keeps or replaces the daemon groups of the configuration just read.
///
/// # Safety
/// In Apache's parent, with the live configuration pool and main server.
pub unsafe fn post_config(pconf: *mut sys::apr_pool_t, main: *mut sys::server_rec) -> Result<(), String> {
    // Apache reads its configuration once and restarts at once: start nothing on that first pass.
    // SAFETY: a plain query.
    if unsafe { sys::ap_state_query(sys::AP_SQ_MAIN_STATE as c_int) } == sys::AP_SQ_MS_CREATE_PRE_CONFIG as c_int {
        return Ok(());
    }
    // SAFETY: the live main server.
    let groups = unsafe { all_groups(main) };
    let mut guard = SUPERVISOR.lock();
    if groups.is_empty() && guard.is_none() {
        return Ok(());
    }
    let sup = guard.get_or_insert_with(|| {
        install_sigchld_wakeup();
        // SAFETY: the process pool lives until the parent exits.
        unsafe {
            sys::apr_pool_cleanup_register(
                (*(*main).process).pool,
                std::ptr::null(),
                Some(parent_exit),
                Some(sys::apr_pool_cleanup_null),
            );
        }
        Supervisor { parent: std::process::id(), pconf, main, groups: Vec::new(), retiring: Vec::new() }
    });
    sup.pconf = pconf;
    sup.main = main;
    // SAFETY: a live pool.
    let prefix = unsafe { socket_prefix(pconf) };
    let owner = apache_owner();
    let mut old_groups = std::mem::take(&mut sup.groups);
    let mut replaced = Vec::new();
    for config in groups {
        let path = socket_path(&prefix, sup.parent, &config.name);
        let _ = config.socket_path.set(Arc::from(path.as_path()));
        let kept = old_groups.iter().position(|g| g.config.name == config.name && g.path == path);
        let listener = match kept {
            Some(i) => {
                let old = old_groups.swap_remove(i);
                replaced.extend(old.pids().map(|pid| (pid, old.config.name.clone())));
                let refresh = socket::set_backlog(&old.listener, config.listen_backlog).and_then(|()| match owner {
                    Some((uid, gid)) => std::os::unix::fs::chown(&path, Some(uid), Some(gid)),
                    None => Ok(()),
                });
                if let Err(why) = refresh {
                    log(
                        sys::APLOG_WARNING,
                        &format!("daemon group '{}': cannot update {}: {why}", config.name, path.display()),
                    );
                }
                old.listener
            }
            None => socket::listen(&path, config.listen_backlog, owner).map_err(|why| {
                format!("RGIDaemonProcess {}: cannot listen on {}: {why}", config.name, path.display())
            })?,
        };
        let slots = vec![None; config.processes as usize];
        sup.groups.push(Group { config, path, listener, slots, failures: 0 });
    }
    for gone in old_groups {
        replaced.extend(gone.pids().map(|pid| (pid, gone.config.name.clone())));
        let _ = std::fs::remove_file(&gone.path);
    }
    // Registrations end with the old configuration pool: renew those of processes still finishing.
    for (pid, _) in &sup.retiring {
        // SAFETY: the live configuration pool.
        unsafe { register(pconf, *pid) };
    }
    for index in 0..sup.groups.len() {
        for slot in 0..sup.groups[index].slots.len() {
            sup.start(index, slot, None);
        }
    }
    for (pid, group) in replaced {
        log(
            sys::APLOG_INFO,
            &format!("daemon process {pid} of group '{group}' is being replaced: it finishes its requests and exits"),
        );
        send(pid, Signal::SIGUSR1);
        // SAFETY: the live configuration pool.
        unsafe { register(pconf, pid) };
        sup.retiring.push((pid, group));
    }
    Ok(())
}

impl Supervisor {
    /// Forks the process for `slot` of group `index`; `replaced` is the process it replaces and
    /// why that one ended (for the status page).
    fn start(&mut self, index: usize, slot: usize, replaced: Option<(u32, &str)>) {
        let group = &self.groups[index];
        let others: Vec<RawFd> =
            self.groups.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, g)| g.listener.as_raw_fd()).collect();
        // Processes started together (the group's start, a restart) spread their restart-interval
        // over one interval; a replacement is on its own schedule already.
        let stagger = match (replaced, group.config.restart_interval) {
            (None, Some(interval)) => interval * slot as u32 / group.config.processes.max(1),
            _ => Duration::ZERO,
        };
        let startup = process::Startup {
            config: group.config.clone(),
            listener: group.listener.as_raw_fd(),
            close: others,
            parent: self.parent,
            main: self.main,
            stagger,
            slot,
        };
        // SAFETY: Apache's parent forks from its main thread; the child only runs the daemon's
        // main loop and never returns into Apache (it ends with _exit).
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => process::run(startup),
            Ok(ForkResult::Parent { child }) => {
                let pid = child.as_raw() as u32;
                let name = group.config.name.clone();
                self.groups[index].slots[slot] = Some((pid, Instant::now()));
                // SAFETY: the live configuration pool.
                unsafe { register(self.pconf, pid) };
                log(sys::APLOG_INFO, &format!("started daemon process {pid} of group '{name}'"));
                crate::status::daemon::started(&name, pid, replaced);
            }
            Err(why) => log(
                sys::APLOG_ERR,
                &format!("cannot start a daemon process for group '{}': {why}; retrying later", group.config.name),
            ),
        }
    }

    /// A registered process has died (the MPM reaped it).
    fn died(&mut self, pid: u32, status: c_int) {
        if let Some(i) = self.retiring.iter().position(|(p, _)| *p == pid) {
            let (_, group) = self.retiring.swap_remove(i);
            crate::status::daemon::stopped(pid);
            log(sys::APLOG_INFO, &format!("replaced daemon process {pid} of group '{group}' {}", describe(status)));
            return;
        }
        let found =
            self.groups.iter().enumerate().find_map(|(g, group)| {
                group.slots.iter().position(|s| s.is_some_and(|(p, _)| p == pid)).map(|s| (g, s))
            });
        let Some((index, slot)) = found else { return };
        let group = &mut self.groups[index];
        group.slots[slot] = None;
        let why = describe(status);
        let name = group.config.name.clone();
        if mpm_stopping() {
            log(sys::APLOG_INFO, &format!("daemon process {pid} of group '{name}' {why}"));
            crate::status::daemon::stopped(pid);
            return;
        }
        group.failures = if status == exit_code::STARTUP_FAILED { group.failures + 1 } else { 0 };
        if group.failures >= MAX_QUICK_RESTARTS {
            log(
                sys::APLOG_ERR,
                &format!(
                    "daemon process {pid} of group '{name}' {why}; the group failed to start {} times in a row, \
                     retrying in about 10 seconds",
                    group.failures
                ),
            );
            crate::status::daemon::stopped(pid);
            return;
        }
        let level = if planned(status) { sys::APLOG_INFO } else { sys::APLOG_ERR };
        log(level, &format!("daemon process {pid} of group '{name}' {why}; starting a new one"));
        self.start(index, slot, Some((pid, &why)));
    }
}

/// Whether a daemon exited on purpose (a recycle, not a crash).
fn planned(status: c_int) -> bool {
    matches!(
        status,
        exit_code::STOPPED
            | exit_code::MAXIMUM_REQUESTS
            | exit_code::INACTIVE
            | exit_code::RESTART_INTERVAL
            | exit_code::MAXIMUM_MEMORY
            | exit_code::CPU_TIME_LIMIT
            | exit_code::LIBRARY_CHANGED
            | exit_code::REQUEST_TIMEOUT
    )
}

/// Why a daemon ended, from what the MPM passes on (the exit code, or the signal number when a
/// signal killed it: Apache does not say which, but daemons only exit with 0 or codes ≥ 64).
fn describe(status: c_int) -> String {
    match status {
        exit_code::STOPPED => "exited".into(),
        exit_code::MAXIMUM_REQUESTS => "exited after serving maximum-requests".into(),
        exit_code::INACTIVE => "exited after inactivity-timeout".into(),
        exit_code::RESTART_INTERVAL => "exited after restart-interval".into(),
        exit_code::MAXIMUM_MEMORY => "exited after growing past maximum-memory".into(),
        exit_code::CPU_TIME_LIMIT => "exited after using cpu-time-limit".into(),
        exit_code::LIBRARY_CHANGED => "exited to load a changed app library".into(),
        exit_code::REQUEST_TIMEOUT => "exited after a request exceeded request-timeout".into(),
        exit_code::STARTUP_FAILED => "failed to start (see the lines above)".into(),
        exit_code::PARENT_GONE => "exited because Apache's parent went away".into(),
        1..=31 => {
            let name = Signal::try_from(status).map(|s| s.as_str()).unwrap_or("unknown signal");
            format!("died: killed by signal {status} ({name}), or exited with code {status}")
        }
        other => format!("died: exited with code {other}"),
    }
}

/// Registers `pid` with the MPM's maintenance loop, for as long as `pool` lives.
///
/// # Safety
/// `pool` must be the live configuration pool.
unsafe fn register(pool: *mut sys::apr_pool_t, pid: u32) {
    // SAFETY: APR keeps the proc pointer until unregistered, so it lives in the pool too.
    unsafe {
        let proc_ = sys::apr_palloc(pool, size_of::<sys::apr_proc_t>()).cast::<sys::apr_proc_t>();
        proc_.write(sys::apr_proc_t { pid: pid as i32, ..Default::default() });
        sys::apr_proc_other_child_register(
            proc_,
            Some(maintenance),
            pid as usize as *mut c_void,
            std::ptr::null_mut(),
            pool,
        );
    }
}

/// What the MPM tells us about a registered process.
unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    ffi::guard((), || {
        let pid = data as usize as u32;
        match reason {
            sys::APR_OC_REASON_DEATH | sys::APR_OC_REASON_LOST => {
                // SAFETY: `data` is this registration's key; unregistering calls us back with
                // UNREGISTER, which touches nothing.
                unsafe { sys::apr_proc_other_child_unregister(data) };
                if let Some(sup) = SUPERVISOR.lock().as_mut() {
                    sup.died(pid, status);
                }
            }
            // Apache is stopping (or, at the start of a hard restart, reclaiming the old
            // generation): stop within shutdown-timeout.
            sys::APR_OC_REASON_RESTART => {
                let sup = SUPERVISOR.lock();
                let retiring = sup.as_ref().is_some_and(|s| s.retiring.iter().any(|(p, _)| *p == pid));
                if mpm_stopping() || retiring {
                    send(pid, Signal::SIGTERM);
                }
            }
            // UNREGISTER: the configuration pool is going; post_config registers again.
            _ => {}
        }
    })
}

/// The monitor hook (about every 10 seconds in the parent): restarts processes whose quick
/// restarts were exhausted or whose fork failed.
///
/// # Safety
/// Called by Apache in the parent.
pub unsafe extern "C" fn monitor(_p: *mut sys::apr_pool_t, _s: *mut sys::server_rec) -> c_int {
    ffi::guard(sys::DECLINED, || {
        let mut guard = SUPERVISOR.lock();
        let Some(sup) = guard.as_mut().filter(|s| s.parent == std::process::id()) else { return sys::DECLINED };
        if mpm_stopping() {
            return sys::DECLINED;
        }
        sup.retiring.retain(|(pid, _)| signal::kill(Pid::from_raw(*pid as i32), None).is_ok());
        for index in 0..sup.groups.len() {
            for slot in 0..sup.groups[index].slots.len() {
                if sup.groups[index].slots[slot].is_none() {
                    sup.start(index, slot, None);
                }
            }
        }
        sys::OK
    })
}

/// child_init: Apache's children need none of the parent's daemon sockets (keeping a listening
/// socket would let a child accept requests meant for a daemon).
pub fn child_init() {
    // SAFETY: a plain query of the command line's defines.
    if unsafe { sys::ap_exists_config_define(crate::cstr!("ONE_PROCESS")) } != 0 {
        return;
    }
    reset_sigchld();
    SUPERVISOR.lock().take();
}

/// The parent is exiting: stop the daemons and remove the sockets.
unsafe extern "C" fn parent_exit(_: *mut c_void) -> sys::apr_status_t {
    ffi::guard((), || {
        let mut guard = SUPERVISOR.lock();
        if guard.as_ref().is_none_or(|s| s.parent != std::process::id()) {
            return;
        }
        if let Some(sup) = guard.take() {
            for group in &sup.groups {
                group.pids().for_each(|pid| send(pid, Signal::SIGTERM));
                let _ = std::fs::remove_file(&group.path);
            }
            sup.retiring.iter().for_each(|(pid, _)| send(*pid, Signal::SIGTERM));
        }
    });
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaths_are_described() {
        assert_eq!(describe(exit_code::MAXIMUM_REQUESTS), "exited after serving maximum-requests");
        assert!(describe(6).contains("SIGABRT"), "{}", describe(6));
        assert!(describe(11).contains("SIGSEGV"));
        assert!(describe(200).contains("code 200"));
        assert_eq!(describe(exit_code::RESTART_INTERVAL), "exited after restart-interval");
        assert!(planned(exit_code::RESTART_INTERVAL) && planned(exit_code::MAXIMUM_MEMORY));
        assert_eq!(describe(exit_code::CPU_TIME_LIMIT), "exited after using cpu-time-limit");
        assert!(planned(exit_code::INACTIVE) && !planned(6) && !planned(exit_code::STARTUP_FAILED));
    }
}
