//! `tracing` into Apache's error log (feature `tracing`).
//!
//! With the feature on, the SDK installs [`ErrorLog`] as the global `tracing` subscriber when
//! Apache loads the app, so `tracing::info!` and friends need no setup:
//!
//! - each event becomes one error-log line at the matching Apache level (`ERROR` → `error`,
//!   `WARN` → `warn`, `INFO` → `info`, `DEBUG` → `debug`, `TRACE` → `trace1`), written through
//!   mod_rgi under the module name `rgi`, so `LogLevel rgi:debug` shows debug events and
//!   `LogLevel rgi:warn` hides them (also per `<Location>`); events Apache would drop are not even
//!   formatted;
//! - an event emitted while a request is served is tagged `[request <id>]` with Apache's request
//!   log id (`%L`, the environ's `rgi.request_id`), so one `grep` over error.log finds every line
//!   of one request. Off the request's thread (a task spawned by a tower app) the tag comes from
//!   the request's span: spawn with `.in_current_span()` (or `Instrument`) to keep it;
//! - spans add their name and fields in front of the message, as `tracing-subscriber`'s `fmt`
//!   does: `load{user=7}: cache miss`.
//!
//! ```
//! #[derive(Default)]
//! struct Hello;
//!
//! impl rgi::App for Hello {
//!     fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
//!         tracing::debug!(path = req.path_info(), "serving");
//!         Ok(rgi::Response::text("Hello, World!"))
//!     }
//! }
//!
//! rgi::export!(Hello);
//! ```

use std::fmt::{self, Write as _};

use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::subscriber::Interest;
use ::tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::abi::level;
use crate::host;

/// Name of the span the SDK opens around a request it drives on a runtime; its `id` field is
/// the request's log id.
pub(crate) const REQUEST_SPAN: &str = "rgi.request";

/// The layer that writes events to Apache's error log. [`init`] installs it (on a
/// `tracing_subscriber::Registry`) as the global subscriber; the SDK calls `init` itself when
/// Apache loads the app.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(rgi::tracing::ErrorLog::new());
/// # let _ = subscriber;
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct ErrorLog {
    _private: (),
}

impl ErrorLog {
    /// The layer.
    ///
    /// ```
    /// let layer = rgi::tracing::ErrorLog::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        ErrorLog { _private: () }
    }
}

/// The Apache level (an [`abi::level`](crate::abi::level) value) of a `tracing` level.
///
/// ```
/// assert_eq!(rgi::tracing::apache_level(&tracing::Level::WARN), rgi::abi::level::WARN);
/// ```
pub fn apache_level(l: &Level) -> u32 {
    match *l {
        Level::ERROR => level::ERROR,
        Level::WARN => level::WARN,
        Level::INFO => level::INFO,
        Level::DEBUG => level::DEBUG,
        Level::TRACE => level::TRACE,
    }
}

/// Installs `Registry + ErrorLog` as the global default subscriber; false when a global
/// subscriber was already set (by this app or another library in the process).
///
/// ```
/// let _ = rgi::tracing::init();
/// assert!(!rgi::tracing::init(), "the second call finds a subscriber already set");
/// ```
pub fn init() -> bool {
    ::tracing::subscriber::set_global_default(tracing_subscriber::registry().with(ErrorLog::new())).is_ok()
}

/// Fields written as ` name=value`, the `message` field first and bare; a span's `id` field is
/// kept apart when it is the request span.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    request_id: Option<String>,
    is_request_span: bool,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "id" if self.is_request_span => self.request_id = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// The fields of a span, formatted once when it is created or recorded.
struct SpanFields(String);
/// The log id of the request a span stands for.
struct RequestTag(String);

impl<S> Layer<S> for ErrorLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level Apache writes depends on the request (per-directory LogLevel): ask each time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        apache_level(metadata.level()) <= host::log_level_current()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields { is_request_span: attrs.metadata().name() == REQUEST_SPAN, ..Fields::default() };
        attrs.record(&mut fields);
        let mut extensions = span.extensions_mut();
        match fields.request_id {
            Some(request) => extensions.insert(RequestTag(request)),
            None => extensions.insert(SpanFields(fields.message + &fields.rest)),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(SpanFields(text)) = span.extensions_mut().get_mut::<SpanFields>() {
            text.push_str(&fields.message);
            text.push_str(&fields.rest);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = String::new();
        let mut request = None;
        for span in ctx.event_scope(event).into_iter().flat_map(|scope| scope.from_root()) {
            let extensions = span.extensions();
            if let Some(RequestTag(id)) = extensions.get::<RequestTag>() {
                request = Some(id.clone());
                continue;
            }
            line.push_str(span.name());
            if let Some(SpanFields(fields)) = extensions.get::<SpanFields>().filter(|f| !f.0.is_empty()) {
                let _ = write!(line, "{{{}}}", fields.trim_start());
            }
            line.push_str(": ");
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        line.push_str(&fields.message);
        line.push_str(&fields.rest);
        let level = apache_level(event.metadata().level());
        match request {
            // On another thread than the request's: tag the line the way the host does.
            Some(id) if host::current_request().is_null() => {
                host::log_unbound(level, &format!("[request {id}] {line}"))
            }
            _ => host::log_current(level, &line),
        }
    }
}
