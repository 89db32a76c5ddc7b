//! The `HostApi` apps get inside a daemon process: the same functions with the same answers as
//! in embedded mode (`crate::request`), carried over the connection to the Apache child that owns
//! the request. The checks an app can observe (status, headers, Content-Length, call order) run
//! here with the same rules (`crate::response`); the Apache child checks the head again before
//! anything reaches the client.

use std::ffi::c_int;
use std::os::fd::BorrowedFd;

use rgi::abi::{self, HostApi, HostRequest, RgiPair, RgiStatus, RgiStr, status};

use super::protocol::{self, MAX_BODY_CHUNK, Pair, Pairs, Request, ToApache, ToDaemon};
use super::socket::Conn;
use crate::app;
use crate::ffi::{self, sys};
use crate::response::{self, HeaderKind};

/// `BodyError` codes that are not HTTP statuses.
pub mod body_error {
    /// The client went away.
    pub const ABORTED: u16 = 0;
    /// Apache's input filters already answered the request (e.g. 413 for LimitRequestBody).
    pub const FILTER: u16 = 1;
}

/// A daemon process's state for one request, behind the app's `HostRequest` handle.
pub struct DaemonRequest<'a> {
    conn: &'a mut Conn,
    /// The environ as it came from the Apache child; turned into `environ` when the app first
    /// asks for it (an app that never does costs nothing).
    environ_frame: Pairs<'a>,
    environ: Option<Vec<RgiPair>>,
    /// The same for the request headers.
    headers_frame: Pairs<'a>,
    headers: Option<Vec<RgiPair>>,
    options: Vec<RgiPair>,
    flags: ProcessFlags,
    log_level: u8,
    /// The connection to the Apache child failed: nothing more can be sent or read.
    broken: bool,
    started: bool,
    sent: bool,
    ended: bool,
    declared_length: Option<u64>,
    written: u64,
    truncated: bool,
    input_eof: bool,
    input_error: Option<u16>,
}

/// What this process tells apps about itself (`rgi.multithread`, `rgi.multiprocess`).
#[derive(Clone, Copy)]
pub struct ProcessFlags {
    /// More than one request thread.
    pub multithread: bool,
    /// More than one process in the group.
    pub multiprocess: bool,
}

fn flag(b: bool) -> RgiStr {
    RgiStr::new(if b { b"true" } else { b"false" })
}

fn rgi_pair((name, value): Pair<'_>) -> RgiPair {
    RgiPair { name: RgiStr::new(name), value: RgiStr::new(value) }
}

/// Serves one decoded request on `conn`: finds the app instance, runs it, ends the exchange.
/// Returns whether the exchange ended cleanly (`End` or `Reject` sent), so that the connection
/// may carry the Apache child's next request.
pub fn serve(conn: &mut Conn, req: &Request<'_>, process_group: &str, flags: ProcessFlags) -> bool {
    let reject = |conn: &mut Conn, status: u16, reason: &str| {
        ToApache::Reject { status, reason: reason.as_bytes() }.encode(conn.out());
        conn.flush().is_ok()
    };
    let options: Vec<RgiPair> = req.options.iter().map(rgi_pair).collect();
    let instance = match app::instance(req.library, req.application_group, process_group, &options, &DAEMON_HOST) {
        Ok(instance) => instance,
        Err(why) => return reject(conn, 500, &why),
    };
    let Some(call) = instance.library.descriptor.call else {
        let library = String::from_utf8_lossy(req.library);
        return reject(conn, 500, &format!("'{library}' is not an app (it does not export the app role)"));
    };
    let mut ctx = DaemonRequest {
        conn,
        environ_frame: req.environ,
        environ: None,
        headers_frame: req.headers,
        headers: None,
        options,
        flags,
        log_level: req.log_level,
        broken: false,
        started: false,
        sent: false,
        ended: false,
        declared_length: None,
        written: 0,
        truncated: false,
        input_eof: false,
        input_error: None,
    };
    // SAFETY: the instance came from this library's `create`; the handle lives for the call.
    let outcome = unsafe { call(instance.raw, (&raw mut ctx).cast()) };
    // Whatever the app did, no session lock outlives its request.
    crate::session::end_request();
    if ctx.broken {
        return false;
    }
    ToApache::End { outcome }.encode(ctx.conn.out());
    ctx.conn.flush().is_ok()
}

impl DaemonRequest<'_> {
    /// The environ, with this process's own `rgi.multithread` and `rgi.multiprocess`.
    fn environ(&mut self) -> &[RgiPair] {
        let flags = self.flags;
        self.environ.get_or_insert_with(|| {
            let mut environ: Vec<RgiPair> = self.environ_frame.iter().map(rgi_pair).collect();
            for p in &mut environ {
                // SAFETY: the pairs point into the request frame, alive for the request.
                match unsafe { p.name.as_bytes() } {
                    b"rgi.multithread" => p.value = flag(flags.multithread),
                    b"rgi.multiprocess" => p.value = flag(flags.multiprocess),
                    _ => {}
                }
            }
            environ
        })
    }

    fn request_headers(&mut self) -> &[RgiPair] {
        self.headers.get_or_insert_with(|| self.headers_frame.iter().map(rgi_pair).collect())
    }

    /// Apache's log id of the request (`rgi.request_id`), for lines logged here.
    fn request_id(&self) -> &[u8] {
        self.environ_frame.get(b"rgi.request_id").unwrap_or_default()
    }

    /// A line for the error log, tagged with the request in the Apache child; logged here when the
    /// connection is gone.
    fn log(&mut self, level: c_int, msg: &str) {
        if !self.broken {
            ToApache::Log { level: level.clamp(1, 15) as u8, message: msg.as_bytes() }.encode(self.conn.out());
            if self.conn.flush().is_ok() {
                return;
            }
            self.broken = true;
        }
        // SAFETY: a null server logs to the main server.
        unsafe {
            ffi::log_server(
                std::ptr::null(),
                level,
                0,
                &format!("[request {}] {msg}", String::from_utf8_lossy(self.request_id())),
            )
        };
    }

    fn fail(&mut self) -> RgiStatus {
        self.broken = true;
        status::ABORTED
    }

    fn read_body(&mut self, buf: &mut [u8]) -> (RgiStatus, usize) {
        if self.broken {
            return (status::ABORTED, 0);
        }
        if let Some(code) = self.input_error {
            return (if code == body_error::ABORTED { status::ABORTED } else { status::BODY_ERROR }, 0);
        }
        if self.input_eof || buf.is_empty() {
            return (status::OK, 0);
        }
        let max = buf.len().min(MAX_BODY_CHUNK);
        ToApache::ReadBody { max: max as u32 }.encode(self.conn.out());
        if self.conn.flush().is_err() {
            return (self.fail(), 0);
        }
        let answer = self.conn.read_frame(None).ok().and_then(|(kind, payload)| ToDaemon::decode(kind, payload).ok());
        match answer {
            Some(ToDaemon::BodyChunk(data)) if data.len() <= max => {
                buf[..data.len()].copy_from_slice(data);
                self.input_eof = data.is_empty();
                (status::OK, data.len())
            }
            Some(ToDaemon::BodyError(code)) => {
                self.input_error = Some(code);
                (if code == body_error::ABORTED { status::ABORTED } else { status::BODY_ERROR }, 0)
            }
            _ => (self.fail(), 0),
        }
    }

    fn start_response(&mut self, code: u32, headers: &[RgiPair]) -> RgiStatus {
        if self.started || self.input_error == Some(body_error::FILTER) {
            return status::STATE;
        }
        let status_code = match response::check_status(code) {
            Ok(s) => s,
            Err(why) => {
                self.log(sys::APLOG_ERR, &format!("the app sent an {why}"));
                return status::INVALID;
            }
        };
        let mut declared = None;
        for h in headers {
            // SAFETY: the pairs' strings are valid for the call.
            let (name, value) = unsafe { (h.name.as_bytes(), h.value.as_bytes()) };
            match response::check_header(name, value) {
                Ok(HeaderKind::ContentLength(n)) => declared = Some(n),
                Ok(_) => {}
                Err(why) => {
                    self.log(sys::APLOG_ERR, &format!("the app sent an invalid response head: {why}; answering 500"));
                    return status::INVALID;
                }
            }
        }
        // SAFETY: as above.
        let pairs = headers.iter().map(|h| unsafe { (h.name.as_bytes(), h.value.as_bytes()) });
        protocol::encode_head(self.conn.out(), status_code, pairs);
        self.declared_length = declared;
        self.started = true;
        status::OK
    }

    fn write_body(&mut self, data: &[u8]) -> RgiStatus {
        if !self.started || self.ended {
            return status::STATE;
        }
        if self.broken {
            return status::ABORTED;
        }
        let data = match response::clip_to_length(self.declared_length, self.written, self.truncated, data) {
            response::Clip::Whole(data) => data,
            response::Clip::Cut(data) => {
                self.truncated = true;
                let declared = self.declared_length.unwrap_or_default();
                self.log(
                    sys::APLOG_ERR,
                    &format!("the app sent more than its Content-Length of {declared}; body truncated"),
                );
                data
            }
            response::Clip::Refused => return status::INVALID,
        };
        self.written += data.len() as u64;
        if data.is_empty() {
            return status::OK;
        }
        self.sent = true;
        for piece in data.chunks(MAX_BODY_CHUNK) {
            if self.conn.send_body(false, piece).is_err() {
                return self.fail();
            }
        }
        status::OK
    }

    fn flush(&mut self) -> RgiStatus {
        if !self.started || self.ended {
            return status::STATE;
        }
        if self.broken {
            return status::ABORTED;
        }
        self.sent = true;
        ToApache::Flush.encode(self.conn.out());
        if self.conn.flush().is_err() { self.fail() } else { status::OK }
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> RgiStatus {
        if !self.started || self.sent || self.ended {
            return status::STATE;
        }
        if self.broken {
            return status::ABORTED;
        }
        // SAFETY: the app's descriptor, open for the call.
        let file = unsafe { BorrowedFd::borrow_raw(fd) };
        let meta = match nix::sys::stat::fstat(file) {
            Ok(st) if (st.st_mode & libc::S_IFMT) == libc::S_IFREG => st,
            _ => {
                self.log(sys::APLOG_ERR, "send_file: the app's file descriptor is not an open regular file");
                return status::INVALID;
            }
        };
        let size = meta.st_size as u64;
        let len = if len == u64::MAX { size.saturating_sub(offset) } else { len };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            self.log(
                sys::APLOG_ERR,
                &format!("send_file: range {offset}+{len} is past the end of the file ({size} bytes)"),
            );
            return status::INVALID;
        }
        if let Some(declared) = self.declared_length
            && declared != len
        {
            self.log(
                sys::APLOG_ERR,
                &format!("send_file: the app's Content-Length {declared} does not match the {len} bytes sent"),
            );
            return status::INVALID;
        }
        // The Apache child sends it with sendfile: the file never passes through this process.
        ToApache::File { offset, len }.encode(self.conn.out());
        self.sent = true;
        self.ended = true;
        self.written = len;
        if self.conn.flush_with_file(file).is_err() { self.fail() } else { status::OK }
    }

    fn add_error_header(&mut self, name: &[u8], value: &[u8]) -> RgiStatus {
        if let Err(why) = response::check_header(name, value) {
            self.log(sys::APLOG_ERR, &format!("refused a response header: {why}"));
            return status::INVALID;
        }
        ToApache::ErrorHeader((name, value)).encode(self.conn.out());
        status::OK
    }
}

/// # Safety
/// `req` must be null or the handle `serve` passed to the running call.
unsafe fn request<'c>(req: *mut HostRequest) -> Option<&'c mut DaemonRequest<'c>> {
    // SAFETY: guaranteed by the caller.
    unsafe { req.cast::<DaemonRequest<'c>>().as_mut() }
}

fn with_request(req: *mut HostRequest, f: impl FnOnce(&mut DaemonRequest<'_>) -> RgiStatus) -> RgiStatus {
    ffi::guard(status::IO, || {
        // SAFETY: apps only pass back the handle they were given, during the call.
        match unsafe { request(req) } {
            Some(ctx) => f(ctx),
            None => status::INVALID,
        }
    })
}

unsafe extern "C" fn host_log(req: *mut HostRequest, level: u32, msg: RgiStr) {
    ffi::guard((), || {
        // SAFETY: the app passes a message valid for the call.
        let msg = String::from_utf8_lossy(unsafe { msg.as_bytes() });
        let level = level.clamp(1, 15) as c_int;
        // SAFETY: null or the live handle of the running call.
        match unsafe { request(req) } {
            Some(ctx) => ctx.log(level, &msg),
            // SAFETY: a null server logs to the main server.
            None => unsafe { ffi::log_server(std::ptr::null(), level, 0, &msg) },
        }
    })
}

/// Hands out one of the request's pair arrays.
///
/// # Safety
/// `out` and `out_len` must be writable.
unsafe fn give(pairs: &[RgiPair], out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus {
    // SAFETY: guaranteed by the caller.
    unsafe {
        *out = pairs.as_ptr();
        *out_len = pairs.len();
    }
    status::OK
}

unsafe extern "C" fn host_environ(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus {
    // SAFETY: the app passes writable out-pointers.
    with_request(req, |ctx| unsafe { give(ctx.environ(), out, out_len) })
}

unsafe extern "C" fn host_request_headers(
    req: *mut HostRequest,
    out: *mut *const RgiPair,
    out_len: *mut usize,
) -> RgiStatus {
    // SAFETY: the app passes writable out-pointers.
    with_request(req, |ctx| unsafe { give(ctx.request_headers(), out, out_len) })
}

unsafe extern "C" fn host_log_level(req: *mut HostRequest) -> u32 {
    ffi::guard(abi::level::WARN, || {
        // SAFETY: null or the live handle of the running call.
        match unsafe { request(req) } {
            Some(ctx) => u32::from(ctx.log_level),
            None => {
                let index = crate::module_index() as c_int;
                // SAFETY: the main server of this process's configuration.
                unsafe { sys::ap_get_server_module_loglevel(sys::ap_server_conf, index) }.max(0) as u32
            }
        }
    })
}

unsafe extern "C" fn host_options(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus {
    // SAFETY: the app passes writable out-pointers.
    with_request(req, |ctx| unsafe { give(&ctx.options, out, out_len) })
}

unsafe extern "C" fn host_read_body(req: *mut HostRequest, buf: *mut u8, len: usize, out_n: *mut usize) -> RgiStatus {
    with_request(req, |ctx| {
        // SAFETY: the app passes a writable counter and `len` writable bytes at `buf`.
        let (out_n, buf) = unsafe {
            *out_n = 0;
            (
                &mut *out_n,
                if len == 0 || buf.is_null() { &mut [][..] } else { std::slice::from_raw_parts_mut(buf, len) },
            )
        };
        let (status, n) = ctx.read_body(buf);
        *out_n = n;
        status
    })
}

unsafe extern "C" fn host_start_response(
    req: *mut HostRequest,
    code: u32,
    headers: *const RgiPair,
    count: usize,
) -> RgiStatus {
    with_request(req, |ctx| {
        let headers = if count == 0 || headers.is_null() {
            &[][..]
        } else {
            // SAFETY: the app passes `count` pairs valid for the call.
            unsafe { std::slice::from_raw_parts(headers, count) }
        };
        ctx.start_response(code, headers)
    })
}

unsafe extern "C" fn host_write_body(req: *mut HostRequest, data: *const u8, len: usize) -> RgiStatus {
    with_request(req, |ctx| {
        // SAFETY: the app passes `len` readable bytes.
        let data = if len == 0 || data.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(data, len) } };
        ctx.write_body(data)
    })
}

unsafe extern "C" fn host_flush(req: *mut HostRequest) -> RgiStatus {
    with_request(req, |ctx| ctx.flush())
}

unsafe extern "C" fn host_send_file(req: *mut HostRequest, fd: i32, offset: u64, len: u64) -> RgiStatus {
    with_request(req, |ctx| ctx.send_file(fd, offset, len))
}

unsafe extern "C" fn host_set_user(req: *mut HostRequest, _user: RgiStr, _auth_type: RgiStr) -> RgiStatus {
    // Authentication phases run in Apache's children; a daemon only serves content.
    with_request(req, |_| status::UNSUPPORTED)
}

unsafe extern "C" fn host_add_error_header(req: *mut HostRequest, name: RgiStr, value: RgiStr) -> RgiStatus {
    with_request(req, |ctx| {
        // SAFETY: the strings are valid for the call.
        let (name, value) = unsafe { (name.as_bytes(), value.as_bytes()) };
        ctx.add_error_header(name, value)
    })
}

/// The host table given to apps loaded in a daemon process.
pub static DAEMON_HOST: HostApi = HostApi {
    size: size_of::<HostApi>(),
    abi_minor: abi::ABI_MINOR,
    log: host_log,
    environ: host_environ,
    options: host_options,
    read_body: host_read_body,
    start_response: host_start_response,
    write_body: host_write_body,
    flush: host_flush,
    send_file: host_send_file,
    set_user: host_set_user,
    add_error_header: host_add_error_header,
    log_level: host_log_level,
    request_headers: host_request_headers,
    // The session store is shared with Apache's children (shared memory or the network).
    session_get: crate::session::host::session_get,
    session_put: crate::session::host::session_put,
    session_remove: crate::session::host::session_remove,
    session_lock: crate::session::host::session_lock,
    session_unlock: crate::session::host::session_unlock,
};
