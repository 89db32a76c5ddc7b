//! `RGISlowRequests SECONDS` (mod_wsgi's `WSGISlowRequests`, to the error log): a request still
//! running after SECONDS is logged while it runs — so a stuck one shows before it ends, or
//! without ever ending — and again when it finishes, with its time and status.
//!
//! Every app request passes through an Apache child's content handler, embedded or relayed to a
//! daemon, so the child watches both: the handler registers each request here, and a thread of
//! the child looks at them a few times per threshold. Off (the default), nothing is registered.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use parking_lot::Mutex;

use crate::ffi::{self, sys};

/// Parses the directive's argument: seconds, fractions allowed (`0.5`), 0 for off.
pub fn parse_threshold(arg: &str) -> Result<Option<Duration>, String> {
    let seconds: f64 = arg.parse().map_err(|_| format!("'{arg}' is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("'{arg}' is not a number of seconds from 0 (off) to 86400"));
    }
    Ok(Some(Duration::from_secs_f64(seconds)).filter(|d| !d.is_zero()))
}

/// A request being watched.
struct Running {
    started: Instant,
    /// The request line and id, for the line logged while it runs.
    what: String,
    /// Whether it was logged as slow (then its end is logged too).
    reported: bool,
}

struct Watch {
    threshold: Duration,
    /// Requests in flight in this child; a freed slot is reused.
    running: Mutex<Vec<Option<Running>>>,
}

/// This child's watch, when `RGISlowRequests` is set.
static WATCH: OnceLock<Watch> = OnceLock::new();

/// Starts watching in an Apache child (`child_init`): the thread ends with the process.
pub fn child_init(threshold: Option<Duration>) {
    let Some(threshold) = threshold else { return };
    if WATCH.set(Watch { threshold, running: Mutex::new(Vec::new()) }).is_err() {
        return;
    }
    let every = (threshold / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    // Signals sent to the child are Apache's to handle on its own threads: the watcher is born
    // with all of them blocked.
    let mut mask = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut mask));
    let spawned = std::thread::Builder::new().name("rgi-slow".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            ffi::guard((), report_slow);
        }
    });
    if blocked.is_ok() {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
    }
    if let Err(e) = spawned {
        // SAFETY: a null server logs to the main server.
        unsafe { ffi::log_server(std::ptr::null(), sys::APLOG_ERR, 0, &format!("RGISlowRequests: no watcher: {e}")) };
    }
}

/// Logs the requests that have just crossed the threshold.
fn report_slow() {
    let Some(watch) = WATCH.get() else { return };
    let mut crossed = Vec::new();
    for running in watch.running.lock().iter_mut().flatten() {
        let elapsed = running.started.elapsed();
        if !running.reported && elapsed >= watch.threshold {
            running.reported = true;
            crossed.push(format!(
                "{} still running after {:.1} s (RGISlowRequests {})",
                running.what,
                elapsed.as_secs_f64(),
                watch.threshold.as_secs_f64()
            ));
        }
    }
    for line in crossed {
        // SAFETY: a null server logs to the main server.
        unsafe { ffi::log_server(std::ptr::null(), sys::APLOG_WARNING, 0, &line) };
    }
}

/// A request registered with the watch; dropping it (also when the app panics) unregisters it.
pub struct Watched {
    /// Its slot, until it is unregistered.
    slot: Option<usize>,
}

/// Registers `r` when `RGISlowRequests` is set.
///
/// # Safety
/// `r` must be a live request.
#[inline]
pub unsafe fn watch(r: *mut sys::request_rec) -> Option<Watched> {
    let watch = WATCH.get()?;
    // SAFETY: guaranteed by the caller.
    Some(unsafe { register(watch, r) })
}

/// # Safety
/// `r` must be a live request.
#[cold]
unsafe fn register(watch: &Watch, r: *mut sys::request_rec) -> Watched {
    // SAFETY: a live request.
    let (line, id, client) =
        unsafe { (ffi::bytes((*r).the_request), ffi::request_log_id(r), ffi::bytes((*r).useragent_ip)) };
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let what = format!("[client {}] [request {}] {}", text(client), text(Some(id)), text(line));
    let running = Some(Running { started: Instant::now(), what, reported: false });
    let mut slots = watch.running.lock();
    let slot = match slots.iter().position(Option::is_none) {
        Some(free) => {
            slots[free] = running;
            free
        }
        None => {
            slots.push(running);
            slots.len() - 1
        }
    };
    Watched { slot: Some(slot) }
}

impl Watched {
    /// Unregisters the request; one that was logged as slow is logged again with how it ended.
    ///
    /// # Safety
    /// `r` must be the live request this was made for.
    pub unsafe fn finish(mut self, r: *mut sys::request_rec, answer: i32) {
        let Some(running) = self.take() else { return };
        if running.reported {
            // SAFETY: guaranteed by the caller.
            let status = unsafe { crate::handler::final_status(r, answer) };
            let elapsed = running.started.elapsed().as_secs_f64();
            let msg = format!("slow request finished after {elapsed:.1} s with status {status}");
            // SAFETY: guaranteed by the caller.
            unsafe { crate::request::log_request(r, sys::APLOG_WARNING, &msg) };
        }
    }

    /// Empties its slot (once: the slot may serve another request right after).
    fn take(&mut self) -> Option<Running> {
        let slot = self.slot.take()?;
        WATCH.get()?.running.lock().get_mut(slot)?.take()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold("2").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(parse_threshold("0.25").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(parse_threshold("0").unwrap(), None);
        for bad in ["-1", "soon", "", "1e9", "NaN"] {
            assert!(parse_threshold(bad).is_err(), "{bad:?}");
        }
    }
}
