//! `--reload-on-changes`: when an app library is rebuilt, Apache restarts gracefully, so the next
//! request is served by the new build (requests in flight finish on the old one).
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

/// The watching thread; stops when dropped.
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Watches `libraries`; restarts `server` (checked with `conf`) when one changes, after
    /// refreshing its copy if it is served from one.
    pub fn start(
        server: Arc<Server>,
        httpd: Httpd,
        conf: PathBuf,
        libraries: Vec<PathBuf>,
        copies: Vec<stage::Copy>,
    ) -> Watcher {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut known: Vec<Fingerprint> = libraries.iter().map(|l| fingerprint(l)).collect();
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
                for copy in copies.iter().filter(|c| changed.contains(&&c.original)) {
                    if let Err(e) = copy.refresh() {
                        println!("rgi-express: cannot copy {}: {e}", copy.original.display());
                    }
                }
                if !changed.is_empty() {
                    restart(&server, &httpd, &conf, &changed);
                }
            }
        });
        Watcher { stop: Some(stop), thread: Some(thread) }
    }
}

fn restart(server: &Server, httpd: &Httpd, conf: &Path, changed: &[&PathBuf]) {
    let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
    match httpd.configtest(conf) {
        Ok(()) => {
            if server.signal(Signal::SIGUSR1) {
                println!("rgi-express: {} changed: restarting Apache gracefully", names.join(", "));
            }
        }
        Err(e) => println!(
            "rgi-express: {} changed, but the new build cannot be served; keeping the old one.\n{e}",
            names.join(", ")
        ),
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
