//! The Apache child's side of a request delegated to a daemon process group.
//!
//! The child builds the environ exactly as in embedded mode, sends it, then replays what the
//! daemon's app does through the very host functions an embedded app calls ([`EMBEDDED_HOST`],
//! on a [`RequestContext`] of its own): the response head is checked there, bodies are held to
//! their Content-Length there, files go out with sendfile there. So one place decides what
//! reaches the client, whichever mode ran the app.
//!
//! Connections to the daemons are kept: each thread keeps the connections whose exchange ended
//! cleanly for its next requests ([`Kept`]), as mod_proxy keeps its backend connections. A kept
//! connection the daemon closed (restart, maximum-requests, a crash) reads as closed before it is
//! used and is replaced; one it closed just as the request went out fails with the kernel's
//! proof that the daemon never read the request (reset, broken pipe), and only then is the
//! request sent again, on a new connection — never when the daemon may have run the app.

use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rgi::abi::{self, HostRequest, RgiPair, RgiStatus, RgiStr, status};

use super::DaemonGroup;
use super::host::body_error;
use super::protocol::{self, FLAG_ACK, FLAG_IGNORE_ACTIVITY, ToApache, ToDaemon};
use super::socket::{self, Conn, ConnError, never_read};
use crate::ffi::sys;
use crate::handler::finish;
use crate::request::{EMBEDDED_HOST, Phase, RequestContext};

/// The embedded host functions, called for a request's context as an embedded app would.
struct Embedded(*mut HostRequest);

impl Embedded {
    /// The request's environ: it lives in the request pool, so for the whole request (`'r`).
    fn environ<'r>(&self) -> &'r [RgiPair] {
        let (mut ptr, mut len) = (std::ptr::null(), 0usize);
        // SAFETY: a live context's handle; the array lives in the request pool.
        let ok = unsafe { (EMBEDDED_HOST.environ)(self.0, &mut ptr, &mut len) } == status::OK;
        if !ok || ptr.is_null() {
            return &[];
        }
        // SAFETY: the host returned `len` pairs at `ptr`, alive for the request.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// The request headers as the client sent them, alive for the whole request (`'r`).
    fn request_headers<'r>(&self) -> &'r [RgiPair] {
        let (mut ptr, mut len) = (std::ptr::null(), 0usize);
        // SAFETY: a live context's handle; the array lives with the context, for the request.
        let ok = unsafe { (EMBEDDED_HOST.request_headers)(self.0, &mut ptr, &mut len) } == status::OK;
        if !ok || ptr.is_null() {
            return &[];
        }
        // SAFETY: the host returned `len` pairs at `ptr`.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    fn log_level(&self) -> u8 {
        // SAFETY: a live context's handle.
        unsafe { (EMBEDDED_HOST.log_level)(self.0) }.clamp(1, 15) as u8
    }

    fn read_body(&self, buf: &mut [u8]) -> (RgiStatus, usize) {
        let mut n = 0;
        // SAFETY: a live context's handle; `buf` is writable for its length.
        let status = unsafe { (EMBEDDED_HOST.read_body)(self.0, buf.as_mut_ptr(), buf.len(), &mut n) };
        (status, n.min(buf.len()))
    }

    fn start_response(&self, code: u16, headers: &[RgiPair]) -> RgiStatus {
        // SAFETY: a live context's handle; the pairs are valid for the call.
        unsafe { (EMBEDDED_HOST.start_response)(self.0, u32::from(code), headers.as_ptr(), headers.len()) }
    }

    fn write_body(&self, data: &[u8]) -> RgiStatus {
        // SAFETY: a live context's handle; `data` is readable for the call.
        unsafe { (EMBEDDED_HOST.write_body)(self.0, data.as_ptr(), data.len()) }
    }

    fn flush(&self) -> RgiStatus {
        // SAFETY: a live context's handle.
        unsafe { (EMBEDDED_HOST.flush)(self.0) }
    }

    fn send_file(&self, fd: i32, offset: u64, len: u64) -> RgiStatus {
        // SAFETY: a live context's handle; the host duplicates `fd`.
        unsafe { (EMBEDDED_HOST.send_file)(self.0, fd, offset, len) }
    }

    fn add_error_header(&self, name: &[u8], value: &[u8]) -> RgiStatus {
        // SAFETY: a live context's handle; the strings are valid for the call.
        unsafe { (EMBEDDED_HOST.add_error_header)(self.0, RgiStr::new(name), RgiStr::new(value)) }
    }
}

/// What the handler decided for a request that goes to a daemon.
pub struct Delegated<'a> {
    /// The process group.
    pub group: &'a Arc<DaemonGroup>,
    /// The app library.
    pub library: &'a [u8],
    /// The application group, expanded.
    pub application_group: &'a [u8],
    /// The `RGIOption`s in effect.
    pub options: &'a [RgiPair],
    /// Whether `Authorization` reaches the app.
    pub pass_authorization: bool,
    /// `RGIIgnoreActivity On`: the request does not count against inactivity-timeout.
    pub ignore_activity: bool,
}

/// Serves `r` through the daemon process group named in `d`.
///
/// # Safety
/// `r` must be a live request being handled on this thread.
pub unsafe fn handle(r: *mut sys::request_rec, d: &Delegated<'_>) -> c_int {
    let mut ctx = RequestContext::new(
        r,
        Phase::Handler,
        d.application_group,
        d.group.name.as_bytes(),
        d.pass_authorization,
        d.options,
    );
    let group = d.group;
    let Some(path) = group.socket_path.get() else {
        ctx.log(
            sys::APLOG_ERR,
            &format!("daemon process group '{}' is not running (Apache did not start it); answering 503", group.name),
        );
        return sys::HTTP_SERVICE_UNAVAILABLE;
    };
    let queued_at = protocol::monotonic_ns();
    let started = Instant::now();
    // SAFETY: the request's live server.
    let apache_timeout = Duration::from_micros(unsafe { (*(*r).server).timeout }.max(1_000_000) as u64);
    let socket_timeout = group.socket_timeout.unwrap_or(apache_timeout);
    let flags = if group.queue_timeout.is_some() { FLAG_ACK } else { 0 }
        | if d.ignore_activity { FLAG_IGNORE_ACTIVITY } else { 0 };
    let embedded = Embedded(ctx.handle());
    let (environ, headers, log_level) = (embedded.environ(), embedded.request_headers(), embedded.log_level());
    // SAFETY: the pairs point into the request pool and the configuration, alive for the request.
    let bytes = |p: &RgiPair| unsafe { (p.name.as_bytes(), p.value.as_bytes()) };
    let mut sends = 0;
    loop {
        let (mut conn, kept) = match Kept::take_or_connect(path, group, socket_timeout) {
            Ok(found) => found,
            Err((status, why)) => {
                ctx.log(sys::APLOG_ERR, &format!("{why}; answering {status}"));
                return status;
            }
        };
        let parts = protocol::RequestParts {
            flags,
            queued_at_ns: queued_at,
            library: d.library,
            application_group: d.application_group,
            log_level,
            environ: environ.iter().map(bytes),
            headers: headers.iter().map(bytes),
            options: d.options.iter().map(bytes),
        };
        protocol::encode_request(conn.out(), parts);
        if kept && c_int::from(log_level) >= sys::APLOG_TRACE1 {
            ctx.log(sys::APLOG_TRACE1, &format!("sending the request on a kept connection to {}", who(None, group)));
        }
        let never_read_by_daemon = match conn.flush() {
            Ok(()) => {
                let mut relay = Relay {
                    group,
                    conn,
                    started,
                    accepted: None,
                    acked: flags & FLAG_ACK == 0,
                    taken: started,
                    head: Head::Waiting,
                    ended: false,
                };
                // SAFETY: the live request `ctx` serves.
                match unsafe { relay.run(&mut ctx, r) } {
                    Exchange::Done(status) => {
                        if relay.ended {
                            Kept::keep(path, relay.conn);
                        }
                        return status;
                    }
                    Exchange::NeverRead(err) if sends < MAX_SENDS => err.to_string(),
                    Exchange::NeverRead(err) => return relay.failed(&mut ctx, err),
                }
            }
            Err(why) if never_read(&why) && sends < MAX_SENDS => why.to_string(),
            Err(why) => {
                ctx.log(
                    sys::APLOG_ERR,
                    &format!("cannot send the request to daemon process group '{}': {why}; answering 502", group.name),
                );
                return sys::HTTP_BAD_GATEWAY;
            }
        };
        // The daemon closed the connection with the request unread (it is stopping or was
        // replaced): nothing ran, so the request goes again, on a new connection. A new
        // connection can be closed unread too: during a restart a stopping process may have
        // accepted it just before it saw the stop.
        sends += 1;
        if c_int::from(log_level) >= sys::APLOG_DEBUG {
            ctx.log(
                sys::APLOG_DEBUG,
                &format!(
                    "{} closed the connection without reading the request ({never_read_by_daemon}); \
                     sending it again on a new connection",
                    who(None, group)
                ),
            );
        }
    }
}

/// How many times a request is sent again after the kernel proved a daemon never read it.
const MAX_SENDS: u32 = 3;

/// Idle connections kept by this thread, by the socket of their daemon process group.
struct Kept {
    socket: Arc<Path>,
    conn: Conn,
}

/// Most idle connections a thread keeps to one group (a request and a subrequest of it may each
/// hold one).
const KEPT_PER_GROUP: usize = 2;
/// Most idle connections a thread keeps in all.
const KEPT_IN_ALL: usize = 8;

thread_local! {
    /// This thread's kept connections, the most recently used last.
    static KEPT: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
}

impl Kept {
    /// Whether this connection goes to the group at `socket` (the group's own `Arc` in the
    /// usual case, so no path comparison).
    fn is_for(&self, socket: &Arc<Path>) -> bool {
        Arc::ptr_eq(&self.socket, socket) || self.socket == *socket
    }

    /// A kept connection to the group at `socket` that its daemon still holds open (true), else a
    /// new one (false); either with `timeout` set. The error is the status to answer and why.
    fn take_or_connect(
        socket: &Arc<Path>,
        group: &DaemonGroup,
        timeout: Duration,
    ) -> Result<(Conn, bool), (c_int, String)> {
        while let Some(mut conn) = Kept::take(socket) {
            if !conn.is_alive() {
                continue;
            }
            if conn.timeout() == Some(timeout) || conn.set_timeout(timeout).is_ok() {
                return Ok((conn, true));
            }
        }
        let stream = socket::connect(socket, group.connect_timeout).map_err(|why| {
            let why = format!("cannot connect to daemon process group '{}' at {}: {why}", group.name, socket.display());
            (sys::HTTP_SERVICE_UNAVAILABLE, why)
        })?;
        let conn = Conn::with_timeout(stream, timeout).map_err(|why| {
            (sys::HTTP_INTERNAL_SERVER_ERROR, format!("cannot set the daemon socket's timeouts: {why}"))
        })?;
        Ok((conn, false))
    }

    /// The most recently kept connection to `socket`.
    fn take(socket: &Arc<Path>) -> Option<Conn> {
        KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            let i = kept.iter().rposition(|k| k.is_for(socket))?;
            Some(kept.remove(i).conn)
        })
        .ok()
        .flatten()
    }

    /// Keeps a connection whose exchange ended cleanly, for this thread's next request; the
    /// oldest ones beyond the bounds are closed.
    fn keep(socket: &Arc<Path>, conn: Conn) {
        if !conn.is_idle() {
            return;
        }
        let closed = KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            kept.push(Kept { socket: socket.clone(), conn });
            let mut closed = Vec::new();
            if kept.iter().filter(|k| k.is_for(socket)).count() > KEPT_PER_GROUP
                && let Some(i) = kept.iter().position(|k| k.is_for(socket))
            {
                closed.push(kept.remove(i));
            }
            if kept.len() > KEPT_IN_ALL {
                closed.push(kept.remove(0));
            }
            closed
        });
        // Closed outside the borrow (a connection's drop uses other thread locals).
        drop(closed);
    }
}

/// How an exchange with a daemon ended.
enum Exchange {
    /// The request was answered (or failed) with this status.
    Done(c_int),
    /// The connection failed before the daemon sent anything, with proof that it never read the
    /// request: it may be sent again.
    NeverRead(ConnError),
}

/// The client went away while the response was being relayed.
///
/// # Safety
/// `r` must be the live request `ctx` serves.
unsafe fn client_gone(ctx: &mut RequestContext<'_>, r: *mut sys::request_rec) -> c_int {
    // SAFETY: guaranteed by the caller.
    unsafe { finish(ctx, r, abi::call::ERROR) }
}

/// Names the daemon process (when known) for log lines.
fn who(accepted: Option<u32>, group: &DaemonGroup) -> String {
    match accepted {
        Some(pid) => format!("daemon process {pid} of group '{}'", group.name),
        None => format!("daemon process group '{}'", group.name),
    }
}

/// Where the response head stands.
#[derive(PartialEq, Eq)]
enum Head {
    Waiting,
    Sent,
    /// The daemon sent a head the Apache child refused: the request ends in a 500.
    Refused,
}

struct Relay<'g> {
    group: &'g DaemonGroup,
    conn: Conn,
    started: Instant,
    /// The daemon process that took the request.
    accepted: Option<u32>,
    /// Whether the daemon has acknowledged the request (or no acknowledgement was asked for).
    acked: bool,
    /// When a daemon thread took the request, as far as this child knows: the acknowledgement's
    /// arrival (queue-timeout), else when the request was sent. request-timeout runs from here.
    taken: Instant,
    head: Head,
    /// Whether the exchange reached its last frame (`End` or `Reject`): only then may the
    /// connection carry another request.
    ended: bool,
}

impl Relay<'_> {
    fn who(&self) -> String {
        who(self.accepted, self.group)
    }

    /// When the next read must give up sooner than socket-timeout: queue-timeout until the daemon
    /// takes the request, request-timeout (from then) until the head arrives.
    fn deadline(&self) -> Option<Instant> {
        let queue = (!self.acked).then(|| self.group.queue_timeout.map(|t| self.started + t)).flatten();
        let request =
            (self.head == Head::Waiting).then(|| self.group.request_timeout.map(|t| self.taken + t)).flatten();
        match (queue, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    unsafe fn run(&mut self, ctx: &mut RequestContext<'_>, r: *mut sys::request_rec) -> Exchange {
        let mut body = Vec::new();
        let mut received = false;
        loop {
            let frame = self
                .conn
                .read_frame(self.deadline())
                .and_then(|(kind, payload)| ToApache::decode(kind, payload).map_err(ConnError::from));
            let msg = match frame {
                Ok(msg) => msg,
                Err(ConnError::Io(e)) if !received && never_read(&e) => return Exchange::NeverRead(ConnError::Io(e)),
                Err(err) => return Exchange::Done(self.failed(ctx, err)),
            };
            received = true;
            match msg {
                ToApache::Accepted { pid } => {
                    self.accepted = Some(pid);
                    if !self.acked {
                        self.acked = true;
                        self.taken = Instant::now();
                    }
                }
                ToApache::ReadBody { max } => {
                    body.resize(max as usize, 0);
                    let (status, n) = Embedded(ctx.handle()).read_body(&mut body);
                    let sent = match status {
                        status::OK => self.conn.send_body(true, &body[..n]),
                        status::BODY_ERROR => {
                            let code = match ctx.input_error {
                                Some(sys::AP_FILTER_ERROR) => body_error::FILTER,
                                other => u16::try_from(other.unwrap_or(sys::HTTP_BAD_REQUEST)).unwrap_or(400),
                            };
                            ToDaemon::BodyError(code).encode(self.conn.out());
                            Ok(())
                        }
                        _ => {
                            ToDaemon::BodyError(body_error::ABORTED).encode(self.conn.out());
                            Ok(())
                        }
                    };
                    // A daemon that went away shows at the next read.
                    let _ = sent.and_then(|()| self.conn.flush());
                }
                ToApache::Head { status, headers } => {
                    // SAFETY: the slices live in the connection's buffer until the next read.
                    let pairs: Vec<RgiPair> =
                        headers.iter().map(|(n, v)| RgiPair { name: RgiStr::new(n), value: RgiStr::new(v) }).collect();
                    self.head = match Embedded(ctx.handle()).start_response(status, &pairs) {
                        status::OK => Head::Sent,
                        _ => Head::Refused,
                    };
                }
                ToApache::Body(data) => {
                    if Embedded(ctx.handle()).write_body(data) == status::ABORTED {
                        // SAFETY: the live request.
                        return Exchange::Done(unsafe { client_gone(ctx, r) });
                    }
                }
                ToApache::Flush => {
                    if Embedded(ctx.handle()).flush() == status::ABORTED {
                        // SAFETY: the live request.
                        return Exchange::Done(unsafe { client_gone(ctx, r) });
                    }
                }
                ToApache::File { offset, len } => {
                    let Some(file) = self.conn.take_file() else {
                        let err = ConnError::Io(std::io::Error::other("a File message came without its file"));
                        return Exchange::Done(self.failed(ctx, err));
                    };
                    if Embedded(ctx.handle()).send_file(file.as_raw_fd(), offset, len) == status::ABORTED {
                        // SAFETY: the live request.
                        return Exchange::Done(unsafe { client_gone(ctx, r) });
                    }
                }
                ToApache::Log { level, message } => ctx.log(c_int::from(level), &String::from_utf8_lossy(message)),
                ToApache::ErrorHeader((name, value)) => {
                    Embedded(ctx.handle()).add_error_header(name, value);
                }
                ToApache::End { outcome } => {
                    let outcome = if self.head == Head::Refused { abi::call::ERROR } else { outcome };
                    self.ended = true;
                    // SAFETY: the live request.
                    return Exchange::Done(unsafe { finish(ctx, r, outcome) });
                }
                ToApache::Reject { status, reason } => {
                    let why = String::from_utf8_lossy(reason);
                    let who = who(self.accepted, self.group);
                    ctx.log(sys::APLOG_ERR, &format!("{who} refused the request: {why}; answering {status}"));
                    self.ended = true;
                    if ctx.output.sent() {
                        ctx.output.cut();
                        return Exchange::Done(sys::OK);
                    }
                    return Exchange::Done(c_int::from(status));
                }
            }
        }
    }

    /// The daemon connection failed before `End`: 504 on a timeout, 502 otherwise, or a cut
    /// response once something was sent.
    fn failed(&mut self, ctx: &mut RequestContext<'_>, err: ConnError) -> c_int {
        let who = self.who();
        let waited = self.started.elapsed().as_secs();
        let (status, why) = match &err {
            ConnError::TimedOut if !self.acked => (
                sys::HTTP_GATEWAY_TIME_OUT,
                format!("no daemon process took the request within queue-timeout ({waited} s)"),
            ),
            ConnError::TimedOut if self.head == Head::Waiting && self.group.request_timeout.is_some() => {
                let ran = self.taken.elapsed().as_secs();
                (sys::HTTP_GATEWAY_TIME_OUT, format!("{who} sent no response within request-timeout ({ran} s)"))
            }
            ConnError::TimedOut => (sys::HTTP_GATEWAY_TIME_OUT, format!("{who} went silent for socket-timeout")),
            ConnError::Closed | ConnError::Truncated => (
                sys::HTTP_BAD_GATEWAY,
                format!("{who} closed the connection before finishing the response (did it crash? see the log)"),
            ),
            other => (sys::HTTP_BAD_GATEWAY, format!("{who}: {other}")),
        };
        if ctx.output.sent() {
            ctx.log(sys::APLOG_ERR, &format!("{why}; the response was cut short"));
            ctx.output.cut();
            return sys::OK;
        }
        ctx.output.discard();
        if let Some(input) = ctx.input_error {
            return input;
        }
        ctx.log(sys::APLOG_ERR, &format!("{why}; answering {status}"));
        status
    }
}
