//! The response side of a request served in an Apache child: `start_response`, `write_body`,
//! `flush` and `send_file`, and how a request ends (complete, refused, or cut short).
//!
//! Body bytes collect in the request's own brigade and go to Apache's output filters only when
//! it fills up, on `flush`, or at the end together with EOS. So until then the module knows that
//! nothing has reached the client, and a failing app can still get a clean error page.

use std::ffi::{c_int, c_void};

use rgi::abi::{HostRequest, RgiPair, RgiStatus, status};

use crate::ffi::{self, sys};
use crate::request::{Phase, RequestContext, with_context};
use crate::response::{self, HeaderKind};

/// Where buffered body bytes go when the brigade is full (the `apr_brigade_write` callback).
struct Sink {
    r: *mut sys::request_rec,
    /// Whether anything has been passed to the output filters.
    passed: bool,
}

/// The state of the response of one request.
pub struct Output {
    sink: Sink,
    bb: *mut sys::apr_bucket_brigade,
    started: bool,
    ended: bool,
    declared_length: Option<u64>,
    written: u64,
    truncated: bool,
    /// A status decided by the host instead of the app (a failed precondition on a file).
    pub final_status: Option<c_int>,
}

impl Output {
    /// The response of request `r`, not started.
    pub fn new(r: *mut sys::request_rec) -> Self {
        Output {
            sink: Sink { r, passed: false },
            bb: std::ptr::null_mut(),
            started: false,
            ended: false,
            declared_length: None,
            written: 0,
            truncated: false,
            final_status: None,
        }
    }

    /// Whether anything has gone to Apache's output filters (the head can no longer change).
    pub fn sent(&self) -> bool {
        self.sink.passed
    }

    /// Whether the app has set the status and headers.
    pub fn started(&self) -> bool {
        self.started
    }

    fn r(&self) -> *mut sys::request_rec {
        self.sink.r
    }

    /// The brigade body bytes collect in, created with the response.
    fn brigade(&mut self) -> *mut sys::apr_bucket_brigade {
        if self.bb.is_null() {
            let r = self.r();
            // SAFETY: the live request; the brigade lives in its pool.
            self.bb = unsafe { sys::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc) };
        }
        self.bb
    }

    /// Passes what is buffered (plus `tail`, e.g. EOS or an error) to the output filters.
    fn pass(&mut self, tail: &[*mut sys::apr_bucket]) -> RgiStatus {
        let bb = self.brigade();
        // SAFETY: live brigade and request; the sink is ours.
        unsafe {
            for &bucket in tail {
                ffi::brigade_insert_tail(bb, bucket);
            }
            if pass_on(bb, (&raw mut self.sink).cast()) == 0 { status::OK } else { status::ABORTED }
        }
    }

    fn bucket_alloc(&self) -> *mut sys::apr_bucket_alloc_t {
        // SAFETY: the live request's connection.
        unsafe { (*(*self.r()).connection).bucket_alloc }
    }

    /// Bytes the app declared with Content-Length but did not send, if any.
    pub fn missing_body(&self) -> Option<(u64, u64)> {
        match self.declared_length {
            Some(declared) if !self.ended && self.written < declared => Some((declared, self.written)),
            _ => None,
        }
    }

    /// Ends a response the app completed: what is buffered goes out with EOS.
    pub fn complete(&mut self) {
        if !self.ended && self.started {
            self.ended = true;
            // SAFETY: an EOS bucket from the connection's allocator.
            let eos = unsafe { sys::apr_bucket_eos_create(self.bucket_alloc()) };
            self.pass(&[eos]);
        }
    }

    /// Drops a response nothing of which was sent, so Apache can answer with an error instead.
    pub fn discard(&mut self) {
        if !self.bb.is_null() {
            // SAFETY: our own live brigade.
            unsafe { sys::apr_brigade_cleanup(self.bb.cast()) };
        }
    }

    /// Ends a response that was started but cannot be completed: the client must see a cut-off
    /// body, never a complete-looking one. An error bucket with 502 makes Apache's chunking
    /// filter leave out the last chunk and close the connection.
    pub fn cut(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let r = self.r();
        // SAFETY: the live request; buckets come from its connection's allocator.
        unsafe {
            if (*(*r).connection).aborted != 0 {
                return;
            }
            let alloc = self.bucket_alloc();
            let error = sys::ap_bucket_error_create(sys::HTTP_BAD_GATEWAY, std::ptr::null(), (*r).pool, alloc);
            self.pass(&[error, sys::apr_bucket_eos_create(alloc)]);
        }
    }
}

/// The `apr_brigade_write` flush callback: passes the brigade down the output filters.
unsafe extern "C" fn pass_on(bb: *mut sys::apr_bucket_brigade, ctx: *mut c_void) -> sys::apr_status_t {
    ffi::guard(sys::APR_EGENERAL as sys::apr_status_t, || {
        // SAFETY: `ctx` is the Sink of the live request that owns `bb`.
        unsafe {
            let sink = &mut *ctx.cast::<Sink>();
            sink.passed = true;
            let rv = sys::ap_pass_brigade((*sink.r).output_filters, bb);
            sys::apr_brigade_cleanup(bb.cast());
            rv
        }
    })
}

fn handler_output<'c>(ctx: &'c mut RequestContext<'_>) -> Result<&'c mut Output, RgiStatus> {
    if ctx.phase != Phase::Handler {
        return Err(status::UNSUPPORTED);
    }
    Ok(&mut ctx.output)
}

pub(crate) unsafe extern "C" fn host_start_response(
    req: *mut HostRequest,
    code: u32,
    headers: *const RgiPair,
    count: usize,
) -> RgiStatus {
    with_context(req, |ctx| {
        // A body error Apache already answered (AP_FILTER_ERROR) leaves no room for a response.
        let answered = ctx.input_error == Some(sys::AP_FILTER_ERROR);
        let r = ctx.r;
        let headers = if count == 0 || headers.is_null() {
            &[][..]
        } else {
            // SAFETY: the app passes `count` pairs valid for the call.
            unsafe { std::slice::from_raw_parts(headers, count) }
        };
        let checked = check_head(code, headers).map_err(|why| {
            let msg = format!("the app sent an invalid response head: {why}; answering 500");
            // SAFETY: the live request.
            unsafe { crate::request::log_request(r, sys::APLOG_ERR, &msg) };
            status::INVALID
        });
        let out = match handler_output(ctx) {
            Ok(out) => out,
            Err(s) => return s,
        };
        if out.started || answered {
            return status::STATE;
        }
        let (code, kinds) = match checked {
            Ok(checked) => checked,
            Err(s) => return s,
        };
        // SAFETY: the live request; the pairs are valid for the call.
        unsafe { apply_head(out, code, headers, &kinds) };
        status::OK
    })
}

type Kinds = smallvec::SmallVec<[HeaderKind; 16]>;

/// Validates a whole head before anything of it touches the request, so a refused head leaves no
/// trace.
fn check_head(code: u32, headers: &[RgiPair]) -> Result<(u16, Kinds), String> {
    let code = response::check_status(code)?;
    let kinds = headers
        .iter()
        .map(|h| {
            // SAFETY: the pairs' strings are valid for the call.
            let (name, value) = unsafe { (h.name.as_bytes(), h.value.as_bytes()) };
            response::check_header(name, value)
        })
        .collect::<Result<Kinds, String>>()?;
    Ok((code, kinds))
}

unsafe fn apply_head(out: &mut Output, code: u16, headers: &[RgiPair], kinds: &[HeaderKind]) {
    let r = out.r();
    // SAFETY: the live request; copies go into its pool.
    unsafe {
        let pool = (*r).pool;
        (*r).status = c_int::from(code);
        for (h, kind) in headers.iter().zip(kinds) {
            let (name, value) = (h.name.as_bytes(), h.value.as_bytes());
            match kind {
                HeaderKind::ContentType => sys::ap_set_content_type(r, ffi::pstrdup(pool, value)),
                HeaderKind::ContentLength(n) => {
                    // ap_set_content_length, without formatting the number again.
                    out.declared_length = Some(*n);
                    (*r).clength = *n as sys::apr_off_t;
                    sys::apr_table_setn((*r).headers_out, c"Content-Length".as_ptr(), ffi::pstrdup(pool, value));
                }
                HeaderKind::Dropped => crate::request::log_request(
                    r,
                    sys::APLOG_WARNING,
                    &format!("dropped the app's {} header: Apache manages it", String::from_utf8_lossy(name)),
                ),
                HeaderKind::Other => {
                    sys::apr_table_addn((*r).headers_out, ffi::pstrdup(pool, name), ffi::pstrdup(pool, value));
                }
            }
        }
    }
    out.started = true;
}

pub(crate) unsafe extern "C" fn host_write_body(req: *mut HostRequest, data: *const u8, len: usize) -> RgiStatus {
    with_context(req, |ctx| {
        let r = ctx.r;
        let mut overrun = None;
        let out = match handler_output(ctx) {
            Ok(out) => out,
            Err(s) => return s,
        };
        if !out.started || out.ended {
            return status::STATE;
        }
        // SAFETY: the app passes `len` readable bytes.
        let mut data = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(data, len) } };
        if let Some(declared) = out.declared_length {
            let room = declared.saturating_sub(out.written);
            if data.len() as u64 > room {
                // The write that crosses the length is cut and succeeds; writes past it fail.
                if room == 0 && out.truncated {
                    return status::INVALID;
                }
                data = &data[..room as usize];
                out.truncated = true;
                overrun = Some(declared);
            }
        }
        out.written += data.len() as u64;
        let result = if data.is_empty() {
            status::OK
        } else {
            let bb = out.brigade();
            let sink = (&raw mut out.sink).cast();
            // SAFETY: our live brigade; `pass_on` gets our sink; data is readable for the call.
            let rv = unsafe { sys::apr_brigade_write(bb, Some(pass_on), sink, data.as_ptr().cast(), data.len()) };
            if rv == 0 { status::OK } else { status::ABORTED }
        };
        if let Some(declared) = overrun {
            let msg = format!("the app sent more than its Content-Length of {declared}; body truncated");
            // SAFETY: the live request.
            unsafe { crate::request::log_request(r, sys::APLOG_ERR, &msg) };
        }
        result
    })
}

pub(crate) unsafe extern "C" fn host_flush(req: *mut HostRequest) -> RgiStatus {
    with_context(req, |ctx| {
        let out = match handler_output(ctx) {
            Ok(out) => out,
            Err(s) => return s,
        };
        if !out.started || out.ended {
            return status::STATE;
        }
        // SAFETY: a flush bucket from the connection's allocator.
        let flush = unsafe { sys::apr_bucket_flush_create(out.bucket_alloc()) };
        out.pass(&[flush])
    })
}

pub(crate) unsafe extern "C" fn host_send_file(req: *mut HostRequest, fd: i32, offset: u64, len: u64) -> RgiStatus {
    with_context(req, |ctx| {
        let r = ctx.r;
        let out = match handler_output(ctx) {
            Ok(out) => out,
            Err(s) => return s,
        };
        if !out.started || out.written > 0 || out.ended {
            return status::STATE;
        }
        // SAFETY: the live request; `fd` is the app's open file, which we duplicate.
        match unsafe { send_file(out, fd, offset, len) } {
            Ok(s) => s,
            Err(why) => {
                // SAFETY: the live request.
                unsafe { crate::request::log_request(r, sys::APLOG_ERR, &format!("send_file: {why}")) };
                status::INVALID
            }
        }
    })
}

/// A duplicate of the app's `fd` as an `apr_file_t` that `pool` closes. It must be a file APR
/// owns (made by `apr_file_dup`, not wrapped by `apr_os_file_put`): when a slow client makes
/// Apache set the file bucket aside for write completion, APR moves the file and its cleanup to
/// the connection's pool, and only a file with APR's own cleanup is closed there.
unsafe fn owned_copy(fd: i32, pool: *mut sys::apr_pool_t) -> Result<*mut sys::apr_file_t, i32> {
    // SAFETY: `fd` is open for the duration of the call (the caller's contract); the wrapper is
    // marked NOCLEANUP by APR, so it never closes the app's descriptor.
    unsafe {
        let mut borrowed: *mut sys::apr_file_t = std::ptr::null_mut();
        let mut os_fd: sys::apr_os_file_t = fd;
        let flags = sys::APR_FOPEN_READ | sys::APR_FOPEN_SENDFILE_ENABLED;
        let rv = sys::apr_os_file_put(&mut borrowed, &mut os_fd, flags as sys::apr_int32_t, pool);
        if rv != 0 {
            return Err(rv as i32);
        }
        let mut file: *mut sys::apr_file_t = std::ptr::null_mut();
        let rv = sys::apr_file_dup(&mut file, borrowed, pool);
        if rv != 0 {
            return Err(rv as i32);
        }
        // apr_file_dup leaves the copy inheritable; nothing Apache's children exec may get it.
        let mut copy: sys::apr_os_file_t = -1;
        sys::apr_os_file_get(&mut copy, file);
        libc::fcntl(copy, libc::F_SETFD, libc::FD_CLOEXEC);
        Ok(file)
    }
}

/// Sends `len` bytes of `fd` from `offset` as the whole body, as Apache's own file handler does:
/// Content-Length and Last-Modified from the file, conditional requests answered (304), and the
/// file buckets followed by EOS in one brigade so Range requests work.
unsafe fn send_file(out: &mut Output, fd: i32, offset: u64, len: u64) -> Result<RgiStatus, String> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let r = out.r();
        let pool = (*r).pool;
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return Err("the app's file descriptor is not an open regular file".into());
        }
        let size = st.st_size as u64;
        let len = if len == u64::MAX { size.saturating_sub(offset) } else { len };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(format!("range {offset}+{len} is past the end of the file ({size} bytes)"));
        }
        if let Some(declared) = out.declared_length
            && declared != len
        {
            return Err(format!("the app's Content-Length {declared} does not match the {len} bytes sent"));
        }
        let file = match owned_copy(fd, pool) {
            Ok(file) => file,
            Err(status) => {
                let why = std::io::Error::from_raw_os_error(status);
                crate::request::log_request(r, sys::APLOG_ERR, &format!("cannot duplicate the app's file: {why}"));
                return Ok(status::IO);
            }
        };

        out.declared_length = Some(len);
        out.written = len;
        sys::ap_set_content_length(r, len as sys::apr_off_t);
        if sys::apr_table_get((*r).headers_out, c"Last-Modified".as_ptr()).is_null() {
            sys::ap_update_mtime(r, st.st_mtime * 1_000_000 + st.st_mtime_nsec / 1000);
            sys::ap_set_last_modified(r);
        }
        let alloc = out.bucket_alloc();
        if (*r).status == sys::HTTP_OK {
            match sys::ap_meets_conditions(r) {
                sys::OK => {}
                sys::HTTP_NOT_MODIFIED => {
                    (*r).status = sys::HTTP_NOT_MODIFIED;
                    out.ended = true;
                    return Ok(out.pass(&[sys::apr_bucket_eos_create(alloc)]));
                }
                other => {
                    out.final_status = Some(other);
                    out.ended = true;
                    return Ok(status::OK);
                }
            }
        }
        let bb = out.brigade();
        if len > 0 {
            sys::apr_brigade_insert_file(bb, file, offset as sys::apr_off_t, len as sys::apr_off_t, pool);
        }
        out.ended = true;
        Ok(out.pass(&[sys::apr_bucket_eos_create(alloc)]))
    }
}
