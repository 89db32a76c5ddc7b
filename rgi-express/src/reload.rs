//! `--reload-on-changes`: when an app library is rebuilt, the processes serving it are replaced,
//! so the next request is served by the new build (requests in flight finish on the old one). In
//! daemon mode those are the daemon processes (SIGUSR1 to each); otherwise, or when an auth
//! library changed (auth runs in Apache's children), Apache restarts gracefully.
//!
//! A thread polls each library's identity (inode, size, modification time) once a second. A
//! change is acted on only once the file has stayed the same for one more poll (the linker may
//! still be writing it), and only if `apache2 -t` accepts the configuration with the new file:
//! a broken build is reported and the running server keeps serving the old one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::apache::Httpd;
use crate::server::Server;
use crate::stage;

const POLL: Duration = Duration::from_secs(1);

/// What identifies one build of a file.
type Fingerprint = Option<(u64, u64, i64, i64)>;

fn fingerprint(path: &Path) -> Fingerprint {
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// What to watch, and how to restart.
pub struct Watch {
    /// The configuration `apache2 -t` checks before any restart.
    conf: PathBuf,
    /// Every library, as given (the originals of copies).
    libraries: Vec<PathBuf>,
    /// The libraries' builds when the watch was made.
    known: Vec<Fingerprint>,
    /// Libraries served from copies, refreshed before a restart.
    copies: Vec<stage::Copy>,
    /// In daemon mode: the daemon processes' title and the app libraries they serve.
    daemons: Option<(String, Vec<PathBuf>)>,
}

impl Watch {
    /// Notes the current build of every library: make it before Apache starts, so that a build
    /// finishing while it starts is still seen as a change.
    pub fn new(
        conf: PathBuf,
        libraries: Vec<PathBuf>,
        copies: Vec<stage::Copy>,
        daemons: Option<(String, Vec<PathBuf>)>,
    ) -> Watch {
        let known = libraries.iter().map(|l| fingerprint(l)).collect();
        Watch { conf, libraries, known, copies, daemons }
    }
}

/// The watching thread; stops when dropped.
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Watches `watch.libraries` and restarts what serves a library that changed.
    pub fn start(server: Arc<Server>, httpd: Httpd, watch: Watch) -> Watcher {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let libraries = &watch.libraries;
            let mut known = watch.known.clone();
            let mut pending: Vec<Option<Fingerprint>> = vec![None; libraries.len()];
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                let mut changed = Vec::new();
                for (i, lib) in libraries.iter().enumerate() {
                    let now = fingerprint(lib);
                    if now == known[i] {
                        pending[i] = None;
                    } else if now.is_some() && pending[i] == Some(now) {
                        // Unchanged for a whole poll: the build is done.
                        known[i] = now;
                        pending[i] = None;
                        changed.push(lib);
                    } else {
                        pending[i] = Some(now);
                    }
                }
                for copy in watch.copies.iter().filter(|c| changed.contains(&&c.original)) {
                    if let Err(e) = copy.refresh() {
                        println!("rgi-express: cannot copy {}: {e}", copy.original.display());
                    }
                }
                if !changed.is_empty() {
                    restart(&server, &httpd, &watch, &changed);
                }
            }
        });
        Watcher { stop: Some(stop), thread: Some(thread) }
    }
}

fn restart(server: &Server, httpd: &Httpd, watch: &Watch, changed: &[&PathBuf]) {
    let names = changed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    if let Err(e) = httpd.configtest(&watch.conf) {
        println!("rgi-express: {names} changed, but the new build cannot be served; keeping the old one.\n{e}");
        return;
    }
    let daemons = match &watch.daemons {
        Some((title, served)) if changed.iter().all(|c| served.contains(c)) => server.children_titled(title),
        _ => Vec::new(),
    };
    if !daemons.is_empty() {
        for pid in &daemons {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGUSR1);
        }
        println!("rgi-express: {names} changed: restarting the daemon processes");
        return;
    }
    if server.signal(Signal::SIGUSR1) {
        println!("rgi-express: {names} changed: restarting Apache gracefully");
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
