//! Apache running in the foreground under rgi-express: started in its own process group,
//! watched until it is ready, stopped by Ctrl-C or SIGTERM, and swept up when it exits.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::apache::Httpd;
use crate::error::{Error, Result};

/// How often the parent is checked for having exited or become ready.
const POLL: Duration = Duration::from_millis(100);

/// The Apache parent process.
pub struct Server {
    pid: Pid,
    child: Mutex<Option<Child>>,
    stop_requested: AtomicBool,
}

impl Server {
    /// Starts Apache in the foreground with `conf`.
    pub fn start(httpd: &Httpd, conf: &Path) -> Result<Arc<Server>> {
        let child = httpd
            .foreground(conf)
            .spawn()
            .map_err(|source| Error::Run { program: httpd.binary.display().to_string(), source })?;
        let pid = Pid::from_raw(child.id() as i32);
        Ok(Arc::new(Server { pid, child: Mutex::new(Some(child)), stop_requested: AtomicBool::new(false) }))
    }

    /// The parent's pid.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Sends `signal` to the Apache parent, unless it has already been reaped (until then its
    /// pid cannot name another process). Returns whether it was sent.
    pub fn signal(&self, signal: Signal) -> bool {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.is_some() && kill(self.pid, signal).is_ok()
    }

    /// The Apache parent's child processes whose command line starts with `title` (daemon
    /// processes show their display-name there).
    pub fn children_titled(&self, title: &str) -> Vec<Pid> {
        let titled = |pid: &Pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| cmdline.starts_with(title.as_bytes()))
        };
        children_of(&self.pid.as_raw().to_string()).into_iter().filter(titled).collect()
    }

    /// Whether a stop was asked for (by a signal to rgi-express).
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Relaxed)
    }

    /// Kills every process left in Apache's process group.
    fn kill_group(&self) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child.is_some() {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
    }

    /// Whether the parent has exited, without reaping it (so its pid and process group stay
    /// reserved until [`Server::reap`]).
    fn has_exited(&self) -> bool {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.pid), flags) {
            Ok(status) => status.pid().is_some(),
            Err(_) => true,
        }
    }

    /// Waits until the parent exits; then sweeps its process group (a child it left behind
    /// after a crash) and reaps it.
    fn reap(&self) -> Option<ExitStatus> {
        while !self.has_exited() {
            std::thread::sleep(POLL);
        }
        let _ = killpg(self.pid, Signal::SIGKILL);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        child.wait().ok()
    }
}

/// What became of a start.
pub enum Started {
    /// Apache wrote its pid file: it listens.
    Ready,
    /// Apache exited first.
    Exited(Option<ExitStatus>),
}

/// Waits until Apache has written `pid_file` with its pid (it has opened its sockets by then)
/// or has exited. Prints a line now and then while it takes long.
pub fn wait_ready(server: &Server, pid_file: &Path) -> Started {
    let started = Instant::now();
    let mut told = false;
    loop {
        if server.has_exited() {
            return Started::Exited(server.reap());
        }
        let written = std::fs::read_to_string(pid_file).ok();
        if written.is_some_and(|text| text.trim() == server.pid().to_string()) {
            return Started::Ready;
        }
        if !told && started.elapsed() > Duration::from_secs(10) {
            println!("rgi-express: Apache is still starting (pid {})…", server.pid());
            told = true;
        }
        std::thread::sleep(POLL);
    }
}

/// Forwards the signals a person or a service manager sends rgi-express to Apache: SIGINT,
/// SIGTERM and SIGHUP stop it (twice: at once), SIGUSR1 restarts it gracefully.
pub struct SignalForwarder {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SignalForwarder {
    /// Starts forwarding to `server`.
    pub fn start(server: Arc<Server>) -> Result<SignalForwarder> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
            .map_err(|source| Error::Run { program: "signal handling".into(), source })?;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            let mut stops = 0;
            for signal in signals.forever() {
                if signal == SIGUSR1 {
                    if server.signal(Signal::SIGUSR1) {
                        println!("rgi-express: restarting Apache gracefully");
                    }
                    continue;
                }
                stops += 1;
                server.stop_requested.store(true, Ordering::Relaxed);
                if stops == 1 {
                    if server.signal(Signal::SIGTERM) {
                        println!("\nrgi-express: stopping Apache (again to stop at once)");
                    }
                } else {
                    println!("rgi-express: stopping Apache at once");
                    server.kill_group();
                }
            }
        });
        Ok(SignalForwarder { handle, thread: Some(thread) })
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Makes rgi-express the reaper of its orphaned descendants: a process Apache leaves behind when
/// it exits becomes our child, not init's, so [`sweep_orphans`] can end and reap it.
pub fn adopt_orphans() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Waits for Apache to exit and returns its status.
pub fn wait(server: &Server) -> Option<ExitStatus> {
    server.reap()
}

/// Ends and reaps every process left over from Apache (adopted by [`adopt_orphans`]). Call it
/// once Apache is reaped and nothing else of ours runs a child process.
pub fn sweep_orphans() {
    let me = nix::unistd::getpid().as_raw().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Reap whatever has exited.
        while let Ok(status) = nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            if status.pid().is_none() {
                break;
            }
        }
        let orphans = children_of(&me);
        if orphans.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in orphans {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes whose parent is `ppid`, from /proc.
fn children_of(ppid: &str) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid …: comm may contain anything, so read after its last ')'.
            (stat.rsplit_once(')')?.1.split_whitespace().nth(1)? == ppid).then(|| Pid::from_raw(pid))
        })
        .collect()
}

/// The exit code rgi-express passes on for Apache's `status` (128 + the signal that killed it).
pub fn exit_code(status: Option<ExitStatus>) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => code.clamp(0, 255) as u8,
            (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
            _ => 1,
        },
        None => 1,
    }
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}
