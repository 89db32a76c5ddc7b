//! The host side of the ABI for a request served inside an Apache child: what the app's calls
//! (`read_body`, `start_response`, `write_body`, `send_file`, …) do to the `request_rec`.
//!
//! [`RequestContext`] is what the opaque `HostRequest` handle points to; [`EMBEDDED_HOST`] is the
//! function table handed to every app loaded in an Apache child.

use std::ffi::{c_int, c_void};

use rgi::abi::{self, HostApi, HostRequest, RgiPair, RgiStatus, RgiStr, status};

use crate::environ::{self, EnvironContext};
use crate::ffi::{self, sys};
use crate::response::{self, HeaderKind};

/// Which phase the request is in: the content handler may send a response, auth phases may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The content handler (`RGIScriptAlias`).
    Handler,
    /// An authentication or authorisation callback.
    Auth,
}

/// The host's state for one request, behind the app's `HostRequest` handle.
pub struct RequestContext<'a> {
    r: *mut sys::request_rec,
    phase: Phase,
    application_group: &'a [u8],
    process_group: &'a [u8],
    pass_authorization: bool,
    options: &'a [RgiPair],
    environ: Option<Vec<RgiPair>>,
    input: *mut sys::apr_bucket_brigade,
    input_eof: bool,
    /// The HTTP status to answer with after the request body could not be read.
    pub input_error: Option<c_int>,
    started: bool,
    /// Whether anything has gone to Apache's output filters (the head can no longer change).
    pub sent: bool,
    ended: bool,
    declared_length: Option<u64>,
    written: u64,
    truncated: bool,
    /// A status decided by the host instead of the app (a failed precondition on a file).
    pub final_status: Option<c_int>,
}

impl<'a> RequestContext<'a> {
    /// A context for `r` in `phase`.
    pub fn new(
        r: *mut sys::request_rec,
        phase: Phase,
        application_group: &'a [u8],
        process_group: &'a [u8],
        pass_authorization: bool,
        options: &'a [RgiPair],
    ) -> Self {
        RequestContext {
            r,
            phase,
            application_group,
            process_group,
            pass_authorization,
            options,
            environ: None,
            input: std::ptr::null_mut(),
            input_eof: false,
            input_error: None,
            started: false,
            sent: false,
            ended: false,
            declared_length: None,
            written: 0,
            truncated: false,
            final_status: None,
        }
    }

    /// The handle to pass to app callbacks.
    pub fn handle(&mut self) -> *mut HostRequest {
        (self as *mut Self).cast()
    }

    /// Logs against this request, with its request id.
    pub fn log(&self, level: c_int, msg: &str) {
        // SAFETY: the context's request is live while the context is.
        unsafe { log_request(self.r, level, msg) };
    }

    /// Bytes the app declared with Content-Length but did not send, if any.
    pub fn missing_body(&self) -> Option<(u64, u64)> {
        // SAFETY: the live request of this context.
        let header_only = unsafe { (*self.r).header_only } != 0;
        match self.declared_length {
            Some(declared) if !header_only && !self.ended && self.written < declared => Some((declared, self.written)),
            _ => None,
        }
    }

    /// Ends a response that was started but cannot be completed: the client must see a cut-off
    /// body, never a complete-looking one (no last chunk; the connection is closed).
    pub fn abort_response(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        // SAFETY: the live request; the buckets are allocated from its connection's allocator.
        unsafe {
            let r = self.r;
            if (*(*r).connection).aborted != 0 {
                return;
            }
            let alloc = (*(*r).connection).bucket_alloc;
            let bb = sys::apr_brigade_create((*r).pool, alloc);
            let error = sys::ap_bucket_error_create(sys::HTTP_BAD_GATEWAY, std::ptr::null(), (*r).pool, alloc);
            insert_tail(bb, error);
            insert_tail(bb, sys::apr_bucket_eos_create(alloc));
            sys::ap_pass_brigade((*r).output_filters, bb);
        }
    }
}

/// Appends `bucket` to `bb` (APR_BRIGADE_INSERT_TAIL).
///
/// # Safety
/// Both must be live, and `bucket` not in any brigade.
unsafe fn insert_tail(bb: *mut sys::apr_bucket_brigade, bucket: *mut sys::apr_bucket) {
    // SAFETY: the APR ring macro, spelled out: the brigade's list head is a sentinel element.
    unsafe {
        let sentinel = (&raw mut (*bb).list).cast::<sys::apr_bucket>();
        let last = (*bb).list.prev;
        (*bucket).link.next = sentinel;
        (*bucket).link.prev = last;
        (*last).link.next = bucket;
        (*bb).list.prev = bucket;
    }
}

/// Logs `msg` against request `r` with its request id.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn log_request(r: *mut sys::request_rec, level: c_int, msg: &str) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let id = String::from_utf8_lossy(ffi::request_log_id(r));
        ffi::log_request(r, level, &format!("[request {id}] {msg}"));
    }
}

/// # Safety
/// `req` must be a handle made by [`RequestContext::handle`] that is still alive.
unsafe fn context<'c>(req: *mut HostRequest) -> Option<&'c mut RequestContext<'c>> {
    // SAFETY: guaranteed by the caller.
    unsafe { req.cast::<RequestContext<'c>>().as_mut() }
}

/// Runs a host function for `req`, catching panics (reported as an I/O error).
fn with_context(req: *mut HostRequest, f: impl FnOnce(&mut RequestContext<'_>) -> RgiStatus) -> RgiStatus {
    ffi::guard(status::IO, || {
        // SAFETY: apps only pass back the handle they were given, during the callback.
        match unsafe { context(req) } {
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
        // SAFETY: null or a live handle from the running callback.
        match unsafe { context(req) } {
            Some(ctx) => ctx.log(level, &msg),
            // SAFETY: a null server logs to the main server.
            None => unsafe { ffi::log_server(std::ptr::null(), level, 0, &msg) },
        }
    })
}

unsafe extern "C" fn host_environ(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus {
    with_context(req, |ctx| {
        if ctx.environ.is_none() {
            let env_ctx = EnvironContext {
                application_group: ctx.application_group,
                process_group: ctx.process_group,
                pass_authorization: ctx.pass_authorization || ctx.phase == Phase::Auth,
            };
            // SAFETY: the live request this context serves, on its own thread.
            ctx.environ = Some(unsafe { environ::build(ctx.r, &env_ctx) });
        }
        let env = ctx.environ.as_deref().unwrap_or_default();
        // SAFETY: the app passes writable out-pointers.
        unsafe {
            *out = env.as_ptr();
            *out_len = env.len();
        }
        status::OK
    })
}

unsafe extern "C" fn host_options(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus {
    with_context(req, |ctx| {
        // SAFETY: the app passes writable out-pointers.
        unsafe {
            *out = ctx.options.as_ptr();
            *out_len = ctx.options.len();
        }
        status::OK
    })
}

unsafe extern "C" fn host_read_body(req: *mut HostRequest, buf: *mut u8, len: usize, out_n: *mut usize) -> RgiStatus {
    with_context(req, |ctx| {
        // SAFETY: the app passes a writable counter.
        unsafe { *out_n = 0 };
        if ctx.phase != Phase::Handler {
            return status::UNSUPPORTED;
        }
        if ctx.input_error.is_some() {
            return status::BODY_ERROR;
        }
        if ctx.input_eof || len == 0 {
            return status::OK;
        }
        // SAFETY: the live request; buf has `len` writable bytes.
        unsafe { read_body(ctx, buf, len, out_n) }
    })
}

/// Reads what the input filters have, at most `len` bytes, blocking until something arrives.
unsafe fn read_body(ctx: &mut RequestContext<'_>, buf: *mut u8, len: usize, out_n: *mut usize) -> RgiStatus {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let r = ctx.r;
        if ctx.input.is_null() {
            ctx.input = sys::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc);
        }
        loop {
            let rv = sys::ap_get_brigade(
                (*r).input_filters,
                ctx.input,
                sys::ap_input_mode_t_AP_MODE_READBYTES,
                sys::apr_read_type_e_APR_BLOCK_READ,
                len as sys::apr_off_t,
            );
            if rv != 0 {
                ctx.input_error = Some(sys::ap_map_http_request_error(rv, sys::HTTP_BAD_REQUEST));
                (*(*r).connection).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE;
                sys::apr_brigade_cleanup(ctx.input.cast());
                return status::BODY_ERROR;
            }
            let sentinel = (&raw mut (*ctx.input).list).cast::<sys::apr_bucket>();
            let last = (*ctx.input).list.prev;
            ctx.input_eof = last != sentinel && (*last).type_ == &raw const sys::apr_bucket_type_eos;
            let mut n = len as sys::apr_size_t;
            let rv = sys::apr_brigade_flatten(ctx.input, buf.cast(), &mut n);
            sys::apr_brigade_cleanup(ctx.input.cast());
            if rv != 0 {
                ctx.input_error = Some(sys::HTTP_BAD_REQUEST);
                return status::BODY_ERROR;
            }
            if n > 0 || ctx.input_eof {
                *out_n = n;
                return status::OK;
            }
        }
    }
}

unsafe extern "C" fn host_start_response(
    req: *mut HostRequest,
    code: u32,
    headers: *const RgiPair,
    count: usize,
) -> RgiStatus {
    with_context(req, |ctx| {
        if ctx.phase != Phase::Handler {
            return status::UNSUPPORTED;
        }
        if ctx.started || ctx.input_error == Some(sys::AP_FILTER_ERROR) {
            return status::STATE;
        }
        let headers = if count == 0 || headers.is_null() {
            &[][..]
        } else {
            // SAFETY: the app passes `count` pairs valid for the call.
            unsafe { std::slice::from_raw_parts(headers, count) }
        };
        // SAFETY: the live request; the pairs are valid for the call.
        unsafe { start_response(ctx, code, headers) }
    })
}

unsafe fn start_response(ctx: &mut RequestContext<'_>, code: u32, headers: &[RgiPair]) -> RgiStatus {
    let status_code = match response::check_status(code) {
        Ok(s) => s,
        Err(why) => {
            ctx.log(sys::APLOG_ERR, &format!("the app sent an {why}"));
            return status::INVALID;
        }
    };
    // Validate everything before touching the request, so a refused head leaves no trace.
    let mut kinds = smallvec::SmallVec::<[HeaderKind; 16]>::new();
    for h in headers {
        // SAFETY: the pairs' strings are valid for the call.
        let (name, value) = unsafe { (h.name.as_bytes(), h.value.as_bytes()) };
        match response::check_header(name, value) {
            Ok(kind) => kinds.push(kind),
            Err(why) => {
                ctx.log(sys::APLOG_ERR, &format!("the app sent an invalid response head: {why}; answering 500"));
                return status::INVALID;
            }
        }
    }
    // SAFETY: the live request; copies go into its pool.
    unsafe {
        let r = ctx.r;
        let pool = (*r).pool;
        (*r).status = c_int::from(status_code);
        for (h, kind) in headers.iter().zip(kinds) {
            let (name, value) = (h.name.as_bytes(), h.value.as_bytes());
            match kind {
                HeaderKind::ContentType => sys::ap_set_content_type(r, ffi::pstrdup(pool, value)),
                HeaderKind::ContentLength(n) => {
                    // ap_set_content_length, without formatting the number again.
                    ctx.declared_length = Some(n);
                    (*r).clength = n as sys::apr_off_t;
                    sys::apr_table_setn((*r).headers_out, c"Content-Length".as_ptr(), ffi::pstrdup(pool, value));
                }
                HeaderKind::Dropped => ctx.log(
                    sys::APLOG_WARNING,
                    &format!("dropped the app's {} header: Apache manages it", String::from_utf8_lossy(name)),
                ),
                HeaderKind::Other => {
                    sys::apr_table_addn((*r).headers_out, ffi::pstrdup(pool, name), ffi::pstrdup(pool, value));
                }
            }
        }
    }
    ctx.started = true;
    status::OK
}

unsafe extern "C" fn host_write_body(req: *mut HostRequest, data: *const u8, len: usize) -> RgiStatus {
    with_context(req, |ctx| {
        if !ctx.started || ctx.ended {
            return status::STATE;
        }
        // SAFETY: the app passes `len` readable bytes.
        let mut data = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(data, len) } };
        if let Some(declared) = ctx.declared_length {
            let room = declared.saturating_sub(ctx.written);
            if data.len() as u64 > room {
                // The write that crosses the length is cut and succeeds; writes past it fail.
                if room == 0 && ctx.truncated {
                    return status::INVALID;
                }
                data = &data[..room as usize];
                ctx.truncated = true;
                ctx.log(
                    sys::APLOG_ERR,
                    &format!("the app sent more than its Content-Length of {declared}; body truncated"),
                );
            }
        }
        ctx.written += data.len() as u64;
        // SAFETY: the live request.
        if data.is_empty() || unsafe { (*ctx.r).header_only } != 0 {
            return status::OK;
        }
        ctx.sent = true;
        // SAFETY: the live request; data is readable.
        if unsafe { sys::ap_rwrite(data.as_ptr().cast(), data.len() as c_int, ctx.r) } < 0 {
            return status::ABORTED;
        }
        status::OK
    })
}

unsafe extern "C" fn host_flush(req: *mut HostRequest) -> RgiStatus {
    with_context(req, |ctx| {
        if !ctx.started || ctx.ended {
            return status::STATE;
        }
        ctx.sent = true;
        // SAFETY: the live request.
        if unsafe { sys::ap_rflush(ctx.r) } < 0 { status::ABORTED } else { status::OK }
    })
}

unsafe extern "C" fn host_send_file(req: *mut HostRequest, fd: i32, offset: u64, len: u64) -> RgiStatus {
    with_context(req, |ctx| {
        if !ctx.started || ctx.sent || ctx.ended {
            return status::STATE;
        }
        // SAFETY: the live request; `fd` is the app's open file, which we duplicate.
        unsafe { send_file(ctx, fd, offset, len) }
    })
}

unsafe extern "C" fn close_file(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: registered below with the apr_file_t we made; closed once, by this cleanup.
    unsafe { sys::apr_file_close(data.cast()) }
}

/// Sends `len` bytes of `fd` from `offset` as the whole body, as Apache's own file handler does:
/// Content-Length and Last-Modified from the file, conditional requests answered (304), and the
/// file buckets followed by EOS in one brigade so Range requests work.
unsafe fn send_file(ctx: &mut RequestContext<'_>, fd: i32, offset: u64, len: u64) -> RgiStatus {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let r = ctx.r;
        let pool = (*r).pool;
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            ctx.log(sys::APLOG_ERR, "send_file: the app's file descriptor is not an open regular file");
            return status::INVALID;
        }
        let size = st.st_size as u64;
        let len = if len == u64::MAX { size.saturating_sub(offset) } else { len };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            ctx.log(
                sys::APLOG_ERR,
                &format!("send_file: range {offset}+{len} is past the end of the file ({size} bytes)"),
            );
            return status::INVALID;
        }
        if let Some(declared) = ctx.declared_length
            && declared != len
        {
            ctx.log(
                sys::APLOG_ERR,
                &format!("send_file: the app's Content-Length {declared} does not match the {len} bytes sent"),
            );
            return status::INVALID;
        }
        let dup = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0);
        if dup < 0 {
            return status::IO;
        }
        let mut file: *mut sys::apr_file_t = std::ptr::null_mut();
        let mut os_fd: sys::apr_os_file_t = dup;
        if sys::apr_os_file_put(&mut file, &mut os_fd, sys::APR_FOPEN_READ | sys::APR_FOPEN_SENDFILE_ENABLED, pool) != 0
        {
            libc::close(dup);
            return status::IO;
        }
        sys::apr_pool_cleanup_register(pool, file.cast(), Some(close_file), Some(sys::apr_pool_cleanup_null));

        ctx.declared_length = Some(len);
        sys::ap_set_content_length(r, len as sys::apr_off_t);
        if sys::apr_table_get((*r).headers_out, c"Last-Modified".as_ptr()).is_null() {
            sys::ap_update_mtime(r, st.st_mtime * 1_000_000 + st.st_mtime_nsec / 1000);
            sys::ap_set_last_modified(r);
        }
        if (*r).status == sys::HTTP_OK {
            match sys::ap_meets_conditions(r) {
                sys::OK => {}
                sys::HTTP_NOT_MODIFIED => {
                    (*r).status = sys::HTTP_NOT_MODIFIED;
                    len_done(ctx, len);
                    return finish_with_eos(ctx, std::ptr::null_mut(), 0, 0);
                }
                other => {
                    ctx.final_status = Some(other);
                    ctx.ended = true;
                    return status::OK;
                }
            }
        }
        len_done(ctx, len);
        finish_with_eos(ctx, file, offset, len)
    }
}

fn len_done(ctx: &mut RequestContext<'_>, len: u64) {
    ctx.written = len;
}

/// Passes `[file part, EOS]` (or just EOS) and marks the response ended.
unsafe fn finish_with_eos(
    ctx: &mut RequestContext<'_>,
    file: *mut sys::apr_file_t,
    offset: u64,
    len: u64,
) -> RgiStatus {
    // SAFETY: the live request; buckets come from its connection's allocator.
    unsafe {
        let r = ctx.r;
        let alloc = (*(*r).connection).bucket_alloc;
        let bb = sys::apr_brigade_create((*r).pool, alloc);
        if !file.is_null() && len > 0 && (*r).header_only == 0 {
            sys::apr_brigade_insert_file(bb, file, offset as sys::apr_off_t, len as sys::apr_off_t, (*r).pool);
        }
        insert_tail(bb, sys::apr_bucket_eos_create(alloc));
        ctx.sent = true;
        ctx.ended = true;
        let rv = sys::ap_pass_brigade((*r).output_filters, bb);
        if rv != 0 && (*(*r).connection).aborted != 0 { status::ABORTED } else { status::OK }
    }
}

unsafe extern "C" fn host_set_user(req: *mut HostRequest, user: RgiStr, auth_type: RgiStr) -> RgiStatus {
    with_context(req, |ctx| {
        if ctx.phase != Phase::Auth {
            return status::UNSUPPORTED;
        }
        // SAFETY: the strings are valid for the call.
        let (user, auth_type) = unsafe { (user.as_bytes(), auth_type.as_bytes()) };
        if user.is_empty()
            || user.iter().any(|&b| b < 0x20 || b == 0x7f)
            || auth_type.iter().any(|&b| b < 0x20 || b == 0x7f)
        {
            ctx.log(sys::APLOG_ERR, "the authentication handler set an empty user or one with control characters");
            return status::INVALID;
        }
        // SAFETY: the live request; copies go into its pool.
        unsafe {
            (*ctx.r).user = ffi::pstrdup((*ctx.r).pool, user);
            if !auth_type.is_empty() {
                (*ctx.r).ap_auth_type = ffi::pstrdup((*ctx.r).pool, auth_type);
            }
        }
        status::OK
    })
}

unsafe extern "C" fn host_add_error_header(req: *mut HostRequest, name: RgiStr, value: RgiStr) -> RgiStatus {
    with_context(req, |ctx| {
        // SAFETY: the strings are valid for the call.
        let (name, value) = unsafe { (name.as_bytes(), value.as_bytes()) };
        if let Err(why) = response::check_header(name, value) {
            ctx.log(sys::APLOG_ERR, &format!("refused a response header: {why}"));
            return status::INVALID;
        }
        // SAFETY: the live request; copies go into its pool.
        unsafe {
            let pool = (*ctx.r).pool;
            sys::apr_table_addn((*ctx.r).err_headers_out, ffi::pstrdup(pool, name), ffi::pstrdup(pool, value));
        }
        status::OK
    })
}

/// The host table given to apps loaded in Apache's children.
pub static EMBEDDED_HOST: HostApi = HostApi {
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
};
