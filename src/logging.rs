//! Logging: `tracing` events and panics of the module go to Apache's error log, tagged with the
//! request the thread is serving when there is one.

use std::cell::Cell;
use std::ffi::c_int;
use std::fmt::Write as _;
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::ffi::{self, sys};

thread_local! {
    static CURRENT: Cell<*mut sys::request_rec> = const { Cell::new(std::ptr::null_mut()) };
}

/// Marks the thread as serving `r` until dropped.
pub struct CurrentRequest(*mut sys::request_rec);

impl CurrentRequest {
    /// Enters request `r`.
    pub fn enter(r: *mut sys::request_rec) -> Self {
        CurrentRequest(CURRENT.with(|c| c.replace(r)))
    }
}

impl Drop for CurrentRequest {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Logs `msg` at `level` against the current request, or the main server outside requests.
pub fn log(level: c_int, msg: &str) {
    let r = CURRENT.with(Cell::get);
    if r.is_null() {
        // SAFETY: a null server logs to the main server.
        unsafe { ffi::log_server(std::ptr::null(), level, 0, msg) }
    } else {
        // SAFETY: CURRENT is only set while the request is being served on this thread.
        unsafe { crate::request::log_request(r, level, msg) };
    }
}

struct ApacheErrorLog;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for ApacheErrorLog {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        // Apache filters by `LogLevel rgi:…` itself.
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = match *event.metadata().level() {
            Level::ERROR => sys::APLOG_ERR,
            Level::WARN => sys::APLOG_WARNING,
            Level::INFO => sys::APLOG_INFO,
            Level::DEBUG => sys::APLOG_DEBUG,
            Level::TRACE => sys::APLOG_TRACE1,
        };
        log(level, &message.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Routes `tracing` and panics to the error log (once per process image; the module stays
/// loaded across Apache's configuration reloads).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing::subscriber::set_global_default(ApacheErrorLog);
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            log(sys::APLOG_CRIT, &format!("mod_rgi panicked{location}: {message}"));
        }));
    });
}
