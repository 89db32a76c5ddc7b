//! The host side of the ABI for a request served inside an Apache child: what the app's calls
//! (`read_body`, `start_response`, `write_body`, `send_file`, …) do to the `request_rec`.
//!
//! [`RequestContext`] is what the opaque `HostRequest` handle points to; [`EMBEDDED_HOST`] is the
//! function table handed to every app loaded in an Apache child.

use std::ffi::c_int;

use rgi::abi::{self, HostApi, HostRequest, RgiPair, RgiStatus, RgiStr, status};

use crate::environ::{self, EnvironContext};
use crate::ffi::{self, sys};
use crate::output::{self, Output};
use crate::response;
use crate::session;

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
    pub(crate) r: *mut sys::request_rec,
    pub(crate) phase: Phase,
    application_group: &'a [u8],
    process_group: &'a [u8],
    pass_authorization: bool,
    options: &'a [RgiPair],
    environ: Option<Vec<RgiPair>>,
    headers: Option<Vec<RgiPair>>,
    input: *mut sys::apr_bucket_brigade,
    input_eof: bool,
    /// The HTTP status to answer with after the request body could not be read.
    pub input_error: Option<c_int>,
    /// The response being sent (see `output`).
    pub(crate) output: Output,
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
            headers: None,
            input: std::ptr::null_mut(),
            input_eof: false,
            input_error: None,
            output: Output::new(r),
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
}

impl Drop for RequestContext<'_> {
    fn drop(&mut self) {
        // Whatever the app did, no session lock outlives its request.
        session::end_request();
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
pub(crate) fn with_context(req: *mut HostRequest, f: impl FnOnce(&mut RequestContext<'_>) -> RgiStatus) -> RgiStatus {
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
            // SAFETY: the main server of the running configuration (null before it is read,
            // which logs to the main server too).
            None => unsafe { ffi::log_server(sys::ap_server_conf, level, 0, &msg) },
        }
    })
}

unsafe extern "C" fn host_log_level(req: *mut HostRequest) -> u32 {
    ffi::guard(abi::level::WARN, || {
        let index = crate::module_index() as c_int;
        // SAFETY: null or a live handle from the running callback; the main server is live
        // while requests are served.
        let level = unsafe {
            match context(req) {
                Some(ctx) => sys::ap_get_request_module_loglevel(ctx.r, index),
                None if sys::ap_server_conf.is_null() => sys::APLOG_WARNING,
                None => sys::ap_get_server_module_loglevel(sys::ap_server_conf, index),
            }
        };
        level.max(0) as u32
    })
}

unsafe extern "C" fn host_request_headers(
    req: *mut HostRequest,
    out: *mut *const RgiPair,
    out_len: *mut usize,
) -> RgiStatus {
    with_context(req, |ctx| {
        let pass_authorization = ctx.pass_authorization || ctx.phase == Phase::Auth;
        // SAFETY: the live request this context serves; the strings live in its pool.
        let headers = ctx.headers.get_or_insert_with(|| unsafe {
            ffi::table_entries((*ctx.r).headers_in)
                .iter()
                .filter_map(|h| Some((ffi::bytes(h.key)?, ffi::bytes(h.val)?)))
                .filter(|(name, _)| pass_authorization || !environ::is_authorization(name))
                .map(|(name, value)| RgiPair { name: RgiStr::new(name), value: RgiStr::new(value) })
                .collect()
        });
        // SAFETY: the app passes writable out-pointers.
        unsafe {
            *out = headers.as_ptr();
            *out_len = headers.len();
        }
        status::OK
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
            ctx.input_eof = ffi::brigade_ends_with_eos(ctx.input);
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
    start_response: output::host_start_response,
    write_body: output::host_write_body,
    flush: output::host_flush,
    send_file: output::host_send_file,
    set_user: host_set_user,
    add_error_header: host_add_error_header,
    log_level: host_log_level,
    request_headers: host_request_headers,
    session_get: session::host::session_get,
    session_put: session::host::session_put,
    session_remove: session::host::session_remove,
    session_lock: session::host::session_lock,
    session_unlock: session::host::session_unlock,
};
