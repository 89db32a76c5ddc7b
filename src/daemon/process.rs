//! A daemon process's own life, from the fork in Apache's parent to its exit: it sheds what it
//! inherited from Apache, drops to its user before any app code runs, creates its
//! `RGIImportScript` instances, then serves requests on its group's socket with `threads=`
//! worker threads while the main thread watches signals and timeouts.
//!
//! Apache's children keep their connections open between requests, so a process holds many
//! more connections than it has threads. No thread waits on a connection: idle ones sit in an
//! epoll set (one-shot each) beside the listening socket; a free thread takes whichever becomes
//! readable first, serves that one request, and parks the connection again. Only the threads
//! [`Admission`] lets in wait in epoll: as many as there are cores while requests are quick, more
//! when they block. Closing an idle connection is always allowed — the Apache child sees it
//! closed and uses a new one — so a process that stops (restart, maximum-requests, inactivity)
//! closes its idle connections at once.
//!
//! Signals: SIGUSR1 asks for a graceful stop (finish requests within graceful-timeout);
//! SIGTERM and SIGINT for a stop within shutdown-timeout (also sent when Apache's parent dies);
//! SIGHUP and SIGWINCH, which Apache may send to its whole process group, are ignored.

use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{Gid, Group as UnixGroup, Uid, User};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::DaemonGroup;
use super::admission::Admission;
use super::host::{self, ProcessFlags};
use super::protocol::{self, FLAG_ACK, FLAG_IGNORE_ACTIVITY, ToApache, ToDaemon};
use super::socket::{self, Conn};
use crate::app;
use crate::app::library::FileStamp;
use crate::ffi::{self, sys};
use crate::usage::Process;

/// Exit codes of a daemon process, which the parent reads to log why it ended (codes a signal
/// number could be confused with, 1..=31, are never used).
pub mod exit_code {
    /// Stopped as asked (restart, shutdown).
    pub const STOPPED: i32 = 0;
    /// Served `maximum-requests`.
    pub const MAXIMUM_REQUESTS: i32 = 64;
    /// Idle for `inactivity-timeout`.
    pub const INACTIVE: i32 = 65;
    /// A request ran past `request-timeout`.
    pub const REQUEST_TIMEOUT: i32 = 66;
    /// Could not become its user, or similar: see the log.
    pub const STARTUP_FAILED: i32 = 67;
    /// Apache's parent is gone.
    pub const PARENT_GONE: i32 = 68;
    /// Ran for `restart-interval`.
    pub const RESTART_INTERVAL: i32 = 69;
    /// Grew past `maximum-memory`.
    pub const MAXIMUM_MEMORY: i32 = 70;
    /// Used `cpu-time-limit`.
    pub const CPU_TIME_LIMIT: i32 = 71;
    /// An app library changed on disk (`script-reloading=on`).
    pub const LIBRARY_CHANGED: i32 = 72;
}

/// What the parent hands a new daemon process.
pub struct Startup {
    /// The group's configuration.
    pub config: Arc<DaemonGroup>,
    /// The group's listening socket (inherited).
    pub listener: RawFd,
    /// Other groups' listening sockets, to close.
    pub close: Vec<RawFd>,
    /// The Apache parent's pid.
    pub parent: u32,
    /// The main server (for logging and imports).
    pub main: *mut sys::server_rec,
    /// How much later than `restart-interval` this process is first replaced, so processes of a
    /// group started together are replaced one after another, not all at once.
    pub stagger: Duration,
    /// The process's place in its group (0 to processes − 1).
    pub slot: usize,
}

/// `user=`: a name or `#UID`.
pub fn resolve_user(user: &str) -> Result<(Uid, Gid, String, std::path::PathBuf), String> {
    let found = match user.strip_prefix('#') {
        Some(id) => {
            let uid = id.parse::<u32>().map_err(|_| format!("user={user} is not a user name or #UID"))?;
            User::from_uid(Uid::from_raw(uid))
        }
        None => User::from_name(user),
    };
    match found {
        Ok(Some(u)) => Ok((u.uid, u.gid, u.name, u.dir)),
        Ok(None) if user.starts_with('#') => {
            let uid = Uid::from_raw(user[1..].parse().unwrap_or_default());
            Ok((uid, Gid::from_raw(uid.as_raw()), user.to_string(), "/".into()))
        }
        _ => Err(format!("user={user}: no such user")),
    }
}

/// `group=`: a name or `#GID`.
pub fn resolve_group(group: &str) -> Result<Gid, String> {
    if let Some(id) = group.strip_prefix('#') {
        return id.parse::<u32>().map(Gid::from_raw).map_err(|_| format!("group={group} is not a group name or #GID"));
    }
    match UnixGroup::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        _ => Err(format!("group={group}: no such group")),
    }
}

fn log(level: i32, msg: &str) {
    // SAFETY: a null server logs to the main server (Apache's error log, inherited).
    unsafe { ffi::log_server(std::ptr::null(), level, 0, msg) };
}

/// Runs the daemon process; never returns.
pub fn run(startup: Startup) -> ! {
    let name = startup.config.name.clone();
    let code = ffi::guard(exit_code::STARTUP_FAILED, || match Daemon::start(startup) {
        Ok(daemon) => daemon.serve(),
        Err(why) => {
            log(
                sys::APLOG_ERR,
                &format!("daemon process {} of group '{name}' cannot start: {why}", std::process::id()),
            );
            exit_code::STARTUP_FAILED
        }
    });
    // _exit: nothing of Apache's (atexit handlers, pool cleanups) may run in this process.
    // SAFETY: ends the process.
    unsafe { libc::_exit(code) }
}

/// Why the process is stopping, and how long requests in flight get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// SIGUSR1 (a restart replaces us).
    Graceful,
    /// SIGTERM/SIGINT.
    Shutdown,
    MaximumRequests,
    Inactive,
    RestartInterval,
    MaximumMemory,
    CpuTimeLimit,
    LibraryChanged,
    RequestTimeout,
    ParentGone,
}

impl Stop {
    fn exit_code(self) -> i32 {
        match self {
            Stop::Graceful | Stop::Shutdown => exit_code::STOPPED,
            Stop::MaximumRequests => exit_code::MAXIMUM_REQUESTS,
            Stop::Inactive => exit_code::INACTIVE,
            Stop::RestartInterval => exit_code::RESTART_INTERVAL,
            Stop::MaximumMemory => exit_code::MAXIMUM_MEMORY,
            Stop::CpuTimeLimit => exit_code::CPU_TIME_LIMIT,
            Stop::LibraryChanged => exit_code::LIBRARY_CHANGED,
            Stop::RequestTimeout => exit_code::REQUEST_TIMEOUT,
            Stop::ParentGone => exit_code::PARENT_GONE,
        }
    }

    fn grace(self, config: &DaemonGroup) -> Duration {
        match self {
            Stop::Graceful
            | Stop::MaximumRequests
            | Stop::Inactive
            | Stop::RestartInterval
            | Stop::MaximumMemory
            | Stop::CpuTimeLimit
            | Stop::LibraryChanged => config.graceful_timeout,
            Stop::Shutdown | Stop::RequestTimeout | Stop::ParentGone => config.shutdown_timeout,
        }
    }
}

/// The epoll token of the listening socket.
const LISTENER: u64 = 0;
/// The epoll token of the stop pipe.
const STOP: u64 = 1;
/// Connections' epoll tokens count up from here (never reused, so a stale event finds nothing).
const FIRST_CONNECTION: u64 = 2;

/// A connection from an Apache child.
struct Client {
    conn: Conn,
    /// Its epoll token, the key in `Shared::idle`.
    token: u64,
    /// Whether it is in the epoll set already (then re-armed with EPOLL_CTL_MOD).
    registered: bool,
}

/// State shared by the worker threads and the main thread.
struct Shared {
    config: Arc<DaemonGroup>,
    listener: UnixListener,
    /// The listening socket, the stop pipe and every idle connection, waiting to be readable.
    epoll: Epoll,
    /// Idle connections parked in `epoll`, by token.
    idle: IdleConnections,
    /// Which threads take requests.
    admission: Admission,
    next_token: AtomicU64,
    /// Readable once the process stops accepting (kept open: it is watched in `epoll`).
    _stop_read: OwnedFd,
    stop_write: Mutex<Option<OwnedFd>>,
    stop: Mutex<Option<Stop>>,
    stopping: AtomicBool,
    /// Requests taken (maximum-requests).
    taken: AtomicU64,
    active: AtomicUsize,
    /// Per worker thread: when its request started (monotonic ns), 0 when idle.
    busy: Vec<AtomicU64>,
    last_activity: AtomicU64,
    /// When this process started serving.
    started: Instant,
    /// How long after `started` it is replaced (restart-interval and its stagger).
    restart_after: Option<Duration>,
    flags: ProcessFlags,
    socket_timeout: Duration,
    /// This process's pid (asked once, not per request).
    pid: u32,
}

impl Shared {
    /// Requests that have run longer than `limit` (request-timeout, and admission's watcher).
    fn running_longer(&self, limit: Duration) -> usize {
        let (now, limit) = (protocol::monotonic_ns(), limit.as_nanos() as u64);
        let started = self.busy.iter().map(|b| b.load(Ordering::SeqCst));
        started.filter(|&t| t != 0 && now.saturating_sub(t) > limit).count()
    }

    fn request_stop(&self, why: Stop) {
        {
            let mut stop = self.stop.lock();
            if stop.is_none() {
                *stop = Some(why);
            }
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.admission.stop();
        // Closing the write end makes the pipe readable for every thread at once.
        self.stop_write.lock().take();
        // Idle connections are closed now: their Apache children use new ones, which another
        // process (or this one's replacement) accepts.
        self.idle.close_all();
    }
}

/// Idle connections by token, in shards: every request takes one out and puts it back, and
/// with one lock the daemon's threads queued for it.
#[derive(Default)]
struct IdleConnections {
    // Keyed by our own sequential tokens: no untrusted keys, so Fx over SipHash (every request
    // parks and takes its connection once).
    shards: [Mutex<FxHashMap<u64, Client>>; 16],
}

impl IdleConnections {
    fn shard(&self, token: u64) -> parking_lot::MutexGuard<'_, FxHashMap<u64, Client>> {
        self.shards[token as usize % self.shards.len()].lock()
    }

    /// Closes them all (a stopping process).
    fn close_all(&self) {
        for shard in &self.shards {
            let idle = std::mem::take(&mut *shard.lock());
            drop(idle);
        }
    }
}

struct Daemon {
    shared: Arc<Shared>,
    signals: SignalFd,
    parent: u32,
    slot: usize,
}

/// The signals the main thread handles through a signalfd.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1, Signal::SIGHUP, Signal::SIGWINCH] {
        set.add(s);
    }
    set
}

/// Undoes Apache's signal handlers (they would run the parent's restart logic here).
fn reset_signals() -> nix::Result<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing default or ignore dispositions in a single-threaded process.
    unsafe {
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGCHLD,
            Signal::SIGALRM,
            Signal::SIGXCPU,
            Signal::SIGXFSZ,
        ] {
            signal::sigaction(s, &default)?;
        }
        signal::sigaction(Signal::SIGPIPE, &ignore)?;
    }
    // Blocked here, so every thread inherits the mask and only the signalfd sees them.
    signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&handled_signals()), None)
}

/// Replaces the command line `ps` shows (the argv area Apache was started with) and the thread
/// name `top` shows.
///
/// # Safety
/// `main` must be the main server; nothing else may be using the argv strings.
unsafe fn set_process_title(main: *mut sys::server_rec, title: &str) {
    if let Ok(c) = CString::new(title.as_bytes().iter().copied().take(15).collect::<Vec<u8>>()) {
        let _ = nix::sys::prctl::set_name(&c);
    }
    // SAFETY: process->argv holds argc NUL-terminated strings laid out one after another by the
    // kernel; we write only within that area.
    unsafe {
        let process = (*main).process;
        if process.is_null() || (*process).argv.is_null() || (*process).argc < 1 {
            return;
        }
        let argv = (*process).argv;
        let first = *argv as *mut u8;
        let last = *argv.add((*process).argc as usize - 1);
        let end = last.add(libc::strlen(last)) as *mut u8;
        let room = end.offset_from(first) as usize;
        let area = std::slice::from_raw_parts_mut(first, room + 1);
        area.fill(0);
        let n = title.len().min(room);
        area[..n].copy_from_slice(&title.as_bytes()[..n]);
    }
}

/// Becomes the group's user (when Apache starts as root), before any app code is loaded.
fn drop_privileges(config: &DaemonGroup) -> Result<Option<std::path::PathBuf>, String> {
    // SAFETY: unixd's configuration is plain data, set while reading the configuration.
    let (apache_uid, apache_gid) = unsafe { (sys::ap_unixd_config.user_id, sys::ap_unixd_config.group_id) };
    let (uid, user_gid, user_name, home) = match &config.user {
        Some(user) => resolve_user(user)?,
        None => {
            let uid = Uid::from_raw(apache_uid);
            let user = User::from_uid(uid).ok().flatten();
            let name = user.as_ref().map(|u| u.name.clone()).unwrap_or_else(|| format!("#{uid}"));
            (uid, Gid::from_raw(apache_gid), name, user.map(|u| u.dir).unwrap_or_else(|| "/".into()))
        }
    };
    let gid = match &config.group {
        Some(group) => resolve_group(group)?,
        None if config.user.is_some() => user_gid,
        None => Gid::from_raw(apache_gid),
    };
    if !nix::unistd::geteuid().is_root() {
        if config.user.is_some() || config.group.is_some() {
            log(
                sys::APLOG_WARNING,
                &format!("daemon group '{}': user=/group= ignored, Apache does not run as root", config.name),
            );
        }
        return Ok(None);
    }
    if uid.is_root() {
        return Err(
            "refusing to run apps as root: set User in Apache's configuration or user= on RGIDaemonProcess".into()
        );
    }
    let c_name = CString::new(user_name.clone()).map_err(|_| "the user name contains a NUL byte".to_string())?;
    nix::unistd::initgroups(&c_name, gid)
        .or_else(|_| nix::unistd::setgroups(&[gid]))
        .map_err(|e| format!("cannot set the groups of {user_name}: {e}"))?;
    nix::unistd::setgid(gid).map_err(|e| format!("cannot become group {gid}: {e}"))?;
    nix::unistd::setuid(uid).map_err(|e| format!("cannot become user {user_name}: {e}"))?;
    Ok(Some(home))
}

impl Daemon {
    fn start(startup: Startup) -> Result<Daemon, String> {
        let Startup { config, listener, close, parent, main, stagger, slot } = startup;
        reset_signals().map_err(|e| format!("cannot reset signal handlers: {e}"))?;
        // Apache's listening sockets and the other groups' are not ours to hold.
        // SAFETY: closing inherited descriptors this process does not use.
        unsafe {
            sys::ap_close_listeners();
            for fd in close {
                libc::close(fd);
            }
        }
        if let Some(title) = config.process_title() {
            // SAFETY: the main server; this process is single-threaded.
            unsafe { set_process_title(main, &title) };
        }
        if let Some(mask) = config.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        // Before dropping privileges: only root may raise it. Without root, as with user=, the
        // process still serves.
        if let Some(nice) = config.priority {
            // SAFETY: setpriority on this process; it reads and writes no memory of ours.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
                let why = std::io::Error::last_os_error();
                if nix::unistd::geteuid().is_root() {
                    return Err(format!("cannot set priority={nice}: {why}"));
                }
                log(
                    sys::APLOG_WARNING,
                    &format!(
                        "daemon group '{}': priority={nice} ignored ({why}): Apache does not run as root",
                        config.name
                    ),
                );
            }
        }
        let home = drop_privileges(&config)?;
        // The parent's death signal is cleared by setuid, so it is set after.
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
            .map_err(|e| format!("cannot set the parent death signal: {e}"))?;
        if nix::unistd::getppid().as_raw() as u32 != parent {
            return Err("Apache's parent went away while the process started".into());
        }
        let dir = config.home.clone().map(std::path::PathBuf::from).or(home);
        if let Some(dir) = dir {
            if let Err(e) = nix::unistd::chdir(&dir) {
                if config.home.is_some() {
                    return Err(format!("cannot change to home={}: {e}", dir.display()));
                }
                let _ = nix::unistd::chdir("/");
            } else {
                // SAFETY: still single-threaded: nothing reads the environment concurrently.
                unsafe { std::env::set_var("HOME", &dir) };
            }
        }
        for (name, value) in &config.env {
            // SAFETY: as above; the names were checked when the configuration was read.
            unsafe { std::env::set_var(name, value) };
        }
        // SAFETY: the group's listening socket, inherited from the parent and owned by us now.
        let listener = unsafe { UnixListener::from(OwnedFd::from_raw_fd(listener)) };
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
        let signals = SignalFd::with_flags(&handled_signals(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("cannot watch signals: {e}"))?;
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("cannot create an epoll set: {e}"))?;
        epoll
            .add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))
            .and_then(|()| epoll.add(&stop_read, EpollEvent::new(EpollFlags::EPOLLIN, STOP)))
            .map_err(|e| format!("cannot watch the group's socket: {e}"))?;
        // SAFETY: the main server's timeout, plain data.
        let apache_timeout = Duration::from_micros(unsafe { (*main).timeout }.max(1_000_000) as u64);
        let restart_after = config.restart_interval.map(|interval| interval + stagger);
        let shared = Arc::new(Shared {
            flags: ProcessFlags { multithread: config.threads > 1, multiprocess: config.processes > 1 },
            socket_timeout: config.socket_timeout.unwrap_or(apache_timeout),
            busy: (0..config.threads).map(|_| AtomicU64::new(0)).collect(),
            admission: Admission::new(
                config.threads as usize,
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
            config,
            listener,
            epoll,
            idle: IdleConnections::default(),
            next_token: AtomicU64::new(FIRST_CONNECTION),
            _stop_read: stop_read,
            stop_write: Mutex::new(Some(stop_write)),
            stop: Mutex::new(None),
            stopping: AtomicBool::new(false),
            taken: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            last_activity: AtomicU64::new(0),
            started: Instant::now(),
            restart_after,
            pid: std::process::id(),
        });
        // Apps size their thread pools by this (CreateContext.threads).
        crate::app::registry::THREADS
            .store(shared.config.threads.max(1) as usize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the main server of the configuration this process was forked with, and the
        // process pool, which lives as long as this process.
        unsafe {
            crate::session::child_init((*(*main).process).pool, main);
            import_scripts(main, &shared.config.name);
        }
        Ok(Daemon { shared, signals, parent, slot })
    }

    /// Serves until told to stop; returns the exit code.
    fn serve(self) -> i32 {
        let shared = &self.shared;
        let config = &shared.config;
        log(
            sys::APLOG_DEBUG,
            &format!(
                "daemon process {} of group '{}' serving with {} threads",
                std::process::id(),
                config.name,
                config.threads
            ),
        );
        crate::status::daemon::wait_until_registered(shared.pid);
        for index in 0..config.threads as usize {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("rgi-{index}"))
                .stack_size(config.stack_size)
                .spawn(move || worker(&shared, index));
            if let Err(e) = spawned {
                log(sys::APLOG_ERR, &format!("daemon group '{}': cannot start a request thread: {e}", config.name));
                if index == 0 {
                    return exit_code::STARTUP_FAILED;
                }
                break;
            }
        }
        let watcher = shared.admission.has_spares().then(|| {
            let shared = self.shared.clone();
            std::thread::Builder::new().name("rgi-admission".into()).spawn(move || {
                let epoll = shared.epoll.0.as_fd();
                let work_waiting = || {
                    let mut fds = [PollFd::new(epoll, PollFlags::POLLIN)];
                    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
                };
                shared.admission.watch(work_waiting, |limit| shared.running_longer(limit), &shared.active);
            })
        });
        if let Some(Err(e)) = watcher {
            // Without it the process still serves, on its first threads only.
            log(sys::APLOG_ERR, &format!("daemon group '{}': cannot start the admission thread: {e}", config.name));
        }
        let tick = Duration::from_millis(100);
        let mut deadline = None;
        // The group's processes are replaced one after another, so the others serve meanwhile.
        let mut reloading = config.script_reloading.then(|| LibraryWatch::new(LibraryWatch::ROLL * self.slot as u32));
        loop {
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::try_from(tick).unwrap_or(PollTimeout::NONE));
            while let Ok(Some(info)) = self.signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGUSR1) => shared.request_stop(Stop::Graceful),
                    Ok(Signal::SIGTERM | Signal::SIGINT) => shared.request_stop(Stop::Shutdown),
                    _ => {}
                }
            }
            if nix::unistd::getppid().as_raw() as u32 != self.parent {
                shared.request_stop(Stop::ParentGone);
            }
            self.check_limits();
            let watching = reloading.as_mut().filter(|_| !shared.stopping.load(Ordering::SeqCst));
            match watching.map(LibraryWatch::look) {
                Some(Look::Changed { path, wait }) => {
                    let when = if wait.is_zero() { String::new() } else { format!("; replacing it in {wait:?}") };
                    log(
                        sys::APLOG_INFO,
                        &format!(
                            "daemon process {} of group '{}': {path} changed on disk{when}",
                            shared.pid, config.name
                        ),
                    );
                }
                Some(Look::Due) => shared.request_stop(Stop::LibraryChanged),
                Some(Look::Nothing) | None => {}
            }
            let Some(stop) = *shared.stop.lock() else { continue };
            let now = Instant::now();
            let deadline = *deadline.get_or_insert_with(|| {
                self.announce(stop);
                now + stop.grace(config)
            });
            let running = self.running(stop);
            if running == 0 {
                if shared.active.load(Ordering::SeqCst) == 0 {
                    // Every request is done: instances are dropped as in Apache's children.
                    app::registry::clear();
                }
                return stop.exit_code();
            }
            if now >= deadline {
                log(
                    sys::APLOG_WARNING,
                    &format!(
                        "daemon process {} of group '{}': {running} requests still running after {:?}; exiting anyway",
                        std::process::id(),
                        config.name,
                        stop.grace(config)
                    ),
                );
                return stop.exit_code();
            }
        }
    }

    fn announce(&self, stop: Stop) {
        let config = &self.shared.config;
        let why = match stop {
            Stop::Graceful => "asked to stop gracefully".to_string(),
            Stop::Shutdown => "asked to stop".to_string(),
            Stop::MaximumRequests => format!("served maximum-requests={}", config.maximum_requests),
            Stop::Inactive => {
                format!("idle for inactivity-timeout={}s", config.inactivity_timeout.unwrap_or_default().as_secs())
            }
            Stop::RestartInterval => {
                format!("ran for restart-interval={}s", config.restart_interval.unwrap_or_default().as_secs())
            }
            Stop::MaximumMemory => format!(
                "grew to {} MiB resident, past maximum-memory={} MiB",
                Process::Current.resident_bytes().unwrap_or_default() >> 20,
                config.maximum_memory.unwrap_or_default() >> 20
            ),
            Stop::CpuTimeLimit => format!(
                "used {:.1} s of CPU, cpu-time-limit={}s",
                Process::Current.cpu_time().unwrap_or_default().as_secs_f64(),
                config.cpu_time_limit.unwrap_or_default().as_secs()
            ),
            Stop::LibraryChanged => "an app library it loaded changed on disk (script-reloading=on)".to_string(),
            Stop::RequestTimeout => {
                format!(
                    "a request ran longer than request-timeout={}s",
                    config.request_timeout.unwrap_or_default().as_secs()
                )
            }
            Stop::ParentGone => "Apache's parent went away".to_string(),
        };
        let level = if stop == Stop::RequestTimeout { sys::APLOG_ERR } else { sys::APLOG_INFO };
        log(level, &format!("daemon process {} of group '{}' {why}; stopping", std::process::id(), config.name));
    }

    /// Requests still to wait for: after a request-timeout the stuck ones are not waited for.
    fn running(&self, stop: Stop) -> usize {
        let shared = &self.shared;
        match (stop, shared.config.request_timeout) {
            (Stop::RequestTimeout, Some(limit)) => {
                let now = protocol::monotonic_ns();
                let limit = limit.as_nanos() as u64;
                shared.busy.iter().map(|b| b.load(Ordering::SeqCst)).filter(|&t| t != 0 && now - t <= limit).count()
            }
            _ => shared.active.load(Ordering::SeqCst),
        }
    }

    /// Asks for a stop when the process reaches one of its group's limits: request-timeout,
    /// inactivity-timeout, restart-interval, maximum-memory or cpu-time-limit.
    fn check_limits(&self) {
        let shared = &self.shared;
        // Stopping already (the first reason stands): nothing to measure.
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let config = &shared.config;
        let now = protocol::monotonic_ns();
        if let Some(limit) = config.request_timeout
            && shared.running_longer(limit) > 0
        {
            shared.request_stop(Stop::RequestTimeout);
        }
        // Armed by the first request: a process nobody has used yet holds nothing to give back.
        let last = shared.last_activity.load(Ordering::SeqCst);
        if let Some(idle) = config.inactivity_timeout
            && last != 0
            && shared.active.load(Ordering::SeqCst) == 0
            && now.saturating_sub(last) > idle.as_nanos() as u64
        {
            shared.request_stop(Stop::Inactive);
        }
        if shared.restart_after.is_some_and(|after| shared.started.elapsed() >= after) {
            shared.request_stop(Stop::RestartInterval);
        }
        if config.maximum_memory.is_some_and(|limit| Process::Current.resident_bytes().is_some_and(|rss| rss > limit)) {
            shared.request_stop(Stop::MaximumMemory);
        }
        if config.cpu_time_limit.is_some_and(|limit| Process::Current.cpu_time().is_some_and(|used| used >= limit)) {
            shared.request_stop(Stop::CpuTimeLimit);
        }
    }
}

/// `script-reloading=on`: looks once a second for a loaded app library whose file changed, and
/// reports it once the new file has stayed the same for a whole look (a file still being written
/// is not loaded half-done); the process is due for replacement `delay` later.
struct LibraryWatch {
    last_look: Instant,
    /// What the last look found changed.
    changed: Vec<(String, FileStamp)>,
    delay: Duration,
    /// When a settled change makes this process due for replacement.
    due: Option<Instant>,
}

/// What a [`LibraryWatch::look`] found.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    Nothing,
    /// A library's new file settled: the process is due `wait` from now.
    Changed {
        path: String,
        wait: Duration,
    },
    /// The process is due for replacement.
    Due,
}

impl LibraryWatch {
    const EVERY: Duration = Duration::from_secs(1);
    /// How much later each process of a group is replaced than the one before it.
    const ROLL: Duration = Duration::from_secs(2);

    fn new(delay: Duration) -> Self {
        LibraryWatch { last_look: Instant::now(), changed: Vec::new(), delay, due: None }
    }

    fn look(&mut self) -> Look {
        if let Some(due) = self.due {
            return if Instant::now() >= due { Look::Due } else { Look::Nothing };
        }
        if self.last_look.elapsed() < Self::EVERY {
            return Look::Nothing;
        }
        self.last_look = Instant::now();
        let changed = app::library::changed_on_disk();
        let settled = changed.iter().find(|now| self.changed.contains(now)).map(|(path, _)| path.clone());
        self.changed = changed;
        match settled {
            Some(path) => {
                self.due = Some(Instant::now() + self.delay);
                Look::Changed { path, wait: self.delay }
            }
            None => Look::Nothing,
        }
    }
}

/// Creates the `RGIImportScript` instances of this group.
///
/// # Safety
/// `main` must be the main server of the configuration.
unsafe fn import_scripts(main: *mut sys::server_rec, group: &str) {
    let mut s = main;
    while !s.is_null() {
        // SAFETY: walking the server list of this process's configuration.
        let conf = unsafe { crate::config::server_config(s) };
        for import in conf.imports.iter().filter(|i| i.process_group.as_deref() == Some(group)) {
            if let Err(why) = app::instance(
                import.library.as_bytes(),
                import.application_group.as_bytes(),
                group,
                &[],
                &host::DAEMON_HOST,
            ) {
                log(sys::APLOG_ERR, &format!("RGIImportScript in daemon group '{group}': {why}"));
            }
        }
        // SAFETY: as above.
        s = unsafe { (*s).next };
    }
}

/// Request frames grown past this (huge headers) are not kept for the thread's next request.
const KEPT_FRAME: usize = 64 * 1024;

/// A request thread: takes one request at a time, from whichever connection has one.
fn worker(shared: &Shared, index: usize) {
    let mut admitted = false;
    let mut frame = Vec::new();
    while let Some(mut client) = next_request(shared, &mut admitted) {
        shared.busy[index].store(protocol::monotonic_ns(), Ordering::SeqCst);
        let reusable = ffi::guard(false, || serve_request(shared, &mut client.conn, &mut frame));
        if frame.capacity() > KEPT_FRAME {
            frame = Vec::new();
        }
        shared.busy[index].store(0, Ordering::SeqCst);
        if reusable {
            park(shared, client);
        }
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits for the next request — on a new connection or an idle one — and counts it as active;
/// `None` once the process stops taking requests.
fn next_request(shared: &Shared, admitted: &mut bool) -> Option<Client> {
    // Every free admitted thread waits in epoll itself: the kernel wakes one waiter per event,
    // and an idle connection is one-shot, so no two threads get the same one (the listener and
    // the stop pipe are level-triggered: a second thread finding the listener empty just waits
    // again, and every thread sees the stop).
    let mut events = [EpollEvent::empty()];
    loop {
        if shared.stopping.load(Ordering::SeqCst) || !shared.admission.take_turn(admitted) {
            return None;
        }
        shared.admission.waiting(true);
        let woken = shared.epoll.wait(&mut events, EpollTimeout::NONE);
        shared.admission.waiting(false);
        match woken {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                log(sys::APLOG_ERR, &format!("daemon group '{}': epoll_wait failed: {e}", shared.config.name));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let client = match events[0].data() {
            STOP => return None,
            LISTENER => match accept(shared) {
                Some(client) => client,
                None => continue,
            },
            token => {
                let Some(client) = shared.idle.shard(token).remove(&token) else { continue };
                if events[0].events().intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLERR) {
                    // The Apache child closed its idle connection (it exited, or gave it up).
                    continue;
                }
                client
            }
        };
        // Counted before the last look at `stopping`, so a stop either sees this request
        // running or this thread sees the stop (and closes the connection unread: the Apache
        // child sends the request again on a new connection).
        shared.active.fetch_add(1, Ordering::SeqCst);
        if shared.stopping.load(Ordering::SeqCst) {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        shared.admission.request_started();
        let taken = shared.taken.fetch_add(1, Ordering::SeqCst) + 1;
        let max = shared.config.maximum_requests;
        if max > 0 && taken >= max {
            shared.request_stop(Stop::MaximumRequests);
        }
        return Some(client);
    }
}

/// Accepts a new connection (the listening socket is readable), setting its options once for
/// its life.
fn accept(shared: &Shared) -> Option<Client> {
    match shared.listener.accept() {
        Ok((stream, _)) => {
            crate::status::daemon::connection_accepted(shared.pid);
            match Conn::with_timeout(stream, shared.socket_timeout) {
                Ok(conn) => {
                    let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
                    Some(Client { conn, token, registered: false })
                }
                Err(e) => {
                    log(
                        sys::APLOG_ERR,
                        &format!("daemon group '{}': cannot set up a connection: {e}", shared.config.name),
                    );
                    None
                }
            }
        }
        // Another process took it.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => None,
        Err(e) => {
            log(sys::APLOG_ERR, &format!("daemon group '{}': accept failed: {e}", shared.config.name));
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    }
}

/// Parks a connection whose exchange ended cleanly until its next request; a stopping process
/// closes it instead.
fn park(shared: &Shared, mut client: Client) {
    client.conn.release_buffers();
    let mut idle = shared.idle.shard(client.token);
    // Under the lock `request_stop` empties: a connection is either closed by it or not parked.
    if shared.stopping.load(Ordering::SeqCst) {
        return;
    }
    let interest = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT;
    let mut event = EpollEvent::new(interest, client.token);
    let armed = if client.registered {
        shared.epoll.modify(client.conn.stream(), &mut event)
    } else {
        shared.epoll.add(client.conn.stream(), event)
    };
    match armed {
        Ok(()) => {
            client.registered = true;
            idle.insert(client.token, client);
        }
        Err(e) => {
            log(sys::APLOG_DEBUG, &format!("daemon group '{}': cannot park a connection: {e}", shared.config.name))
        }
    }
}

/// Reads the next request of a connection into `frame` (the thread's, reused: the request must
/// outlive the reads of its body on the same connection) and serves it; returns whether the
/// connection may carry another one.
fn serve_request(shared: &Shared, conn: &mut Conn, frame: &mut Vec<u8>) -> bool {
    let kind = match conn.read_frame(None) {
        Ok((kind, payload)) => {
            frame.clear();
            frame.extend_from_slice(payload);
            kind
        }
        Err(socket::ConnError::Closed) => return false,
        Err(e) => {
            log(sys::APLOG_DEBUG, &format!("daemon group '{}': no request on a connection: {e}", shared.config.name));
            return false;
        }
    };
    let request = match ToDaemon::decode(kind, frame) {
        Ok(ToDaemon::Request(request)) => request,
        Ok(_) => {
            log(sys::APLOG_ERR, "a daemon connection sent something other than a request");
            return false;
        }
        Err(e) => {
            log(sys::APLOG_ERR, &format!("a daemon connection sent a bad request: {e}"));
            return false;
        }
    };
    // Accepted goes out at once when the Apache child waits for it (queue-timeout), else with the
    // first flush (it names this process in the child's log lines).
    ToApache::Accepted { pid: shared.pid }.encode(conn.out());
    if request.flags & FLAG_ACK != 0 && conn.flush().is_err() {
        return false;
    }
    if let Some(limit) = shared.config.queue_timeout {
        let waited = Duration::from_nanos(protocol::monotonic_ns().saturating_sub(request.queued_at_ns));
        if waited > limit {
            let reason =
                format!("the request waited {:.1} s for a daemon thread, over queue-timeout", waited.as_secs_f64());
            ToApache::Reject { status: 504, reason: reason.as_bytes() }.encode(conn.out());
            return conn.flush().is_ok() && conn.is_idle();
        }
    }
    let clean = host::serve(conn, &request, &shared.config.name, shared.flags);
    crate::status::daemon::request_served(shared.pid);
    if request.flags & FLAG_IGNORE_ACTIVITY == 0 {
        shared.last_activity.store(protocol::monotonic_ns(), Ordering::SeqCst);
    }
    // Anything the Apache child sent beyond what was asked puts the connection out of step.
    clean && conn.is_idle()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_resolve() {
        assert_eq!(resolve_user("root").unwrap().0, Uid::from_raw(0));
        assert_eq!(resolve_user("#0").unwrap().0, Uid::from_raw(0));
        assert!(resolve_user("no-such-user-here").unwrap_err().contains("no such user"));
        assert!(resolve_user("#x").is_err());
        assert_eq!(resolve_group("#5").unwrap(), Gid::from_raw(5));
        assert!(resolve_group("no-such-group-here").is_err());
    }

    #[test]
    fn stops_keep_their_exit_codes_and_grace() {
        let config = DaemonGroup::parse(["g", "graceful-timeout=9", "shutdown-timeout=2"]).unwrap();
        assert_eq!(Stop::MaximumRequests.grace(&config), Duration::from_secs(9));
        assert_eq!(Stop::RequestTimeout.grace(&config), Duration::from_secs(2));
        assert_eq!(Stop::Shutdown.exit_code(), exit_code::STOPPED);
        assert_eq!(Stop::Inactive.exit_code(), exit_code::INACTIVE);
        assert_eq!(Stop::RestartInterval.grace(&config), Duration::from_secs(9));
        assert_eq!(Stop::RestartInterval.exit_code(), exit_code::RESTART_INTERVAL);
        assert_eq!(Stop::MaximumMemory.grace(&config), Duration::from_secs(9));
        assert_eq!(Stop::CpuTimeLimit.exit_code(), exit_code::CPU_TIME_LIMIT);
    }
}
