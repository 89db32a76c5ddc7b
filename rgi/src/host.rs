//! Safe calls into the host's function table; the SDK's only unsafe code besides the trampolines.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::sync::OnceLock;

use crate::abi::{self, HostApi, HostRequest, RgiPair, RgiStatus, RgiStr, StrSink};
use crate::error::HostError;

/// The host table, set once by the entry function; valid for the life of the process.
static HOST_API: OnceLock<&'static HostApi> = OnceLock::new();

thread_local! {
    /// The request the current thread is serving, so a panic can be logged against it.
    static CURRENT_REQUEST: Cell<*mut HostRequest> = const { Cell::new(std::ptr::null_mut()) };
}

/// Records the host table; later calls (another app group of the same library) keep the first.
pub(crate) fn install(api: &'static HostApi) {
    let _ = HOST_API.set(api);
}

pub(crate) fn api() -> Option<&'static HostApi> {
    HOST_API.get().copied()
}

/// Whether the host has the function table field `$field` (it was added in a later minor).
macro_rules! host_has {
    ($api:expr, $field:ident) => {
        $api.has_field(std::mem::offset_of!(HostApi, $field) + size_of::<usize>())
    };
}

/// The request this thread is serving, or null.
#[cfg(feature = "tracing")]
pub(crate) fn current_request() -> *mut HostRequest {
    CURRENT_REQUEST.with(Cell::get)
}

/// The most verbose level Apache writes for the current request (or the server outside one).
/// A host without `log_level` filters by itself, so everything is passed to it.
#[cfg(feature = "tracing")]
pub(crate) fn log_level_current() -> u32 {
    match api() {
        // SAFETY: the table is valid for the process and has the field; the handle is null or the
        // request this thread is serving right now.
        Some(api) if host_has!(api, log_level) => unsafe { (api.log_level)(current_request()) },
        Some(_) => abi::level::TRACE,
        None => abi::level::WARN,
    }
}

/// Logs `msg` at `level` for the main server, not bound to any request (for threads that
/// serve none).
#[cfg(feature = "tracing")]
pub(crate) fn log_unbound(level: u32, msg: &str) {
    match api() {
        // SAFETY: the table is valid for the process; a null handle means no request.
        Some(api) => unsafe { (api.log)(std::ptr::null_mut(), level, RgiStr::new(msg.as_bytes())) },
        None => eprintln!("rgi: {msg}"),
    }
}

/// Logs `msg` through the host, against the current request if there is one.
pub(crate) fn log_current(level: u32, msg: &str) {
    let req = CURRENT_REQUEST.with(Cell::get);
    if let Some(api) = api() {
        // SAFETY: the host table is valid for the process; `req` is null or the handle of the
        // request this thread is serving right now.
        unsafe { (api.log)(req, level, RgiStr::new(msg.as_bytes())) }
    } else {
        eprintln!("rgi: {msg}");
    }
}

/// Marks the current thread as serving `req` until the guard drops.
pub(crate) struct CurrentRequest(*mut HostRequest);

impl CurrentRequest {
    pub(crate) fn enter(req: *mut HostRequest) -> Self {
        CurrentRequest(CURRENT_REQUEST.with(|c| c.replace(req)))
    }
}

impl Drop for CurrentRequest {
    fn drop(&mut self) {
        CURRENT_REQUEST.with(|c| c.set(self.0));
    }
}

/// The host's view of one request, valid for the callback `'r`.
#[derive(Clone, Copy)]
pub(crate) struct Host<'r> {
    api: &'static HostApi,
    req: *mut HostRequest,
    _callback: PhantomData<&'r ()>,
}

fn check(status: RgiStatus) -> Result<(), HostError> {
    match status {
        abi::status::OK => Ok(()),
        other => Err(HostError::from_status(other)),
    }
}

impl<'r> Host<'r> {
    /// # Safety
    /// `req` must be the handle the host passed to the running callback, used only on this thread
    /// and only until the callback returns (`'r`).
    pub(crate) unsafe fn new(req: *mut HostRequest) -> Option<Self> {
        Some(Host { api: api()?, req, _callback: PhantomData })
    }

    pub(crate) fn log(&self, level: u32, msg: &str) {
        // SAFETY: valid table and live request handle (see `new`).
        unsafe { (self.api.log)(self.req, level, RgiStr::new(msg.as_bytes())) }
    }

    fn pairs(
        &self,
        f: unsafe extern "C" fn(*mut HostRequest, *mut *const RgiPair, *mut usize) -> RgiStatus,
    ) -> &'r [RgiPair] {
        let mut ptr = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: valid table and handle; the host fills ptr/len with an array that lives until
        // the callback returns.
        let status = unsafe { f(self.req, &mut ptr, &mut len) };
        if status != abi::status::OK || ptr.is_null() {
            return &[];
        }
        // SAFETY: the host guarantees `len` pairs at `ptr` for the callback's duration ('r).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    pub(crate) fn environ(&self) -> &'r [RgiPair] {
        self.pairs(self.api.environ)
    }

    pub(crate) fn options(&self) -> &'r [RgiPair] {
        self.pairs(self.api.options)
    }

    /// The value of the `RGIOption` `name` in effect for the request, when it is UTF-8.
    pub(crate) fn option(&self, name: &str) -> Option<&'r str> {
        self.options()
            .iter()
            .map(|p| {
                // SAFETY: the host keeps the options alive for the request ('r).
                unsafe { (p.name.as_bytes(), p.value.as_bytes()) }
            })
            .find(|(k, _)| *k == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The request headers as sent, or `None` from a host too old to give them.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn request_headers(&self) -> Option<&'r [RgiPair]> {
        host_has!(self.api, request_headers).then(|| self.pairs(self.api.request_headers))
    }

    pub(crate) fn read_body(&self, buf: &mut [u8]) -> Result<usize, HostError> {
        let mut n = 0usize;
        // SAFETY: buf is writable for buf.len() bytes; valid table and handle.
        check(unsafe { (self.api.read_body)(self.req, buf.as_mut_ptr(), buf.len(), &mut n) })?;
        Ok(n.min(buf.len()))
    }

    pub(crate) fn start_response(&self, status: u16, headers: &[RgiPair]) -> Result<(), HostError> {
        // SAFETY: headers borrow live strings for the duration of the call.
        check(unsafe { (self.api.start_response)(self.req, u32::from(status), headers.as_ptr(), headers.len()) })
    }

    pub(crate) fn write_body(&self, data: &[u8]) -> Result<(), HostError> {
        // SAFETY: data is readable for its length during the call.
        check(unsafe { (self.api.write_body)(self.req, data.as_ptr(), data.len()) })
    }

    pub(crate) fn flush(&self) -> Result<(), HostError> {
        // SAFETY: valid table and handle.
        check(unsafe { (self.api.flush)(self.req) })
    }

    pub(crate) fn send_file(&self, fd: i32, offset: u64, len: u64) -> Result<(), HostError> {
        // SAFETY: the host duplicates `fd` before returning; we keep ownership of ours.
        check(unsafe { (self.api.send_file)(self.req, fd, offset, len) })
    }

    pub(crate) fn set_user(&self, user: &str, auth_type: &str) -> Result<(), HostError> {
        // SAFETY: the strings are live for the call.
        check(unsafe { (self.api.set_user)(self.req, RgiStr::new(user.as_bytes()), RgiStr::new(auth_type.as_bytes())) })
    }

    pub(crate) fn add_error_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        // SAFETY: the strings are live for the call.
        check(unsafe {
            (self.api.add_error_header)(self.req, RgiStr::new(name.as_bytes()), RgiStr::new(value.as_bytes()))
        })
    }
}

/// A handle on the request a callback serves that may travel to other threads (inside an
/// `http::Request` body) but reaches Apache only on the callback's own thread and only until
/// the callback returns; anywhere else calls fail with [`HostError::OffThread`].
#[cfg(feature = "http")]
pub(crate) struct RequestLink {
    req: *mut HostRequest,
    thread: std::thread::ThreadId,
    live: std::sync::atomic::AtomicBool,
    /// Response bytes were written and not flushed yet.
    unflushed: std::sync::atomic::AtomicBool,
}

// SAFETY: the raw handle is only dereferenced through `host`, which checks that it runs on the
// thread that owns the request while the callback is still running (`live`, cleared by the owner
// thread before the callback returns).
#[cfg(feature = "http")]
unsafe impl Send for RequestLink {}
// SAFETY: as above; the flags are atomic and nothing else changes after creation.
#[cfg(feature = "http")]
unsafe impl Sync for RequestLink {}

#[cfg(feature = "http")]
impl RequestLink {
    /// A link to the request `host` serves; valid until [`end`](Self::end).
    pub(crate) fn new(host: Host<'_>) -> Self {
        RequestLink { req: host.req, thread: std::thread::current().id(), live: true.into(), unflushed: false.into() }
    }

    /// Whether Apache can be reached from here, now.
    pub(crate) fn reachable(&self) -> bool {
        self.live.load(std::sync::atomic::Ordering::Acquire) && std::thread::current().id() == self.thread
    }

    fn host(&self) -> Result<Host<'_>, HostError> {
        if !self.reachable() {
            return Err(HostError::OffThread);
        }
        // SAFETY: on the owner thread while the callback runs (checked above), the handle is live.
        unsafe { Host::new(self.req) }.ok_or(HostError::NoHost)
    }

    /// Reads request body bytes. What the response wrote so far is flushed first: the client
    /// may be waiting for it before it sends more (a streaming echo).
    pub(crate) fn read_body(&self, buf: &mut [u8]) -> Result<usize, HostError> {
        let host = self.host()?;
        self.flush()?;
        host.read_body(buf)
    }

    /// Writes response body bytes.
    pub(crate) fn write_body(&self, data: &[u8]) -> Result<(), HostError> {
        self.host()?.write_body(data)?;
        self.unflushed.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Pushes what was written to the client, if anything was.
    pub(crate) fn flush(&self) -> Result<(), HostError> {
        if self.unflushed.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.host()?.flush()?;
        }
        Ok(())
    }

    /// Marks the callback as returned: every later call fails.
    pub(crate) fn end(&self) {
        self.live.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// The session functions (ABI 1.2), present when the host's table reaches them.
#[cfg_attr(not(feature = "sessions"), allow(dead_code))]
impl<'r> Host<'r> {
    fn has_sessions(&self) -> Result<(), HostError> {
        if host_has!(self.api, session_unlock) { Ok(()) } else { Err(HostError::Unsupported) }
    }

    /// The record stored under `key`, or `None`.
    pub(crate) fn session_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.has_sessions()?;
        unsafe extern "C" fn push(ctx: *mut std::ffi::c_void, s: RgiStr) {
            // SAFETY: `ctx` is the Vec below, alive for the call; `s` is valid for this push.
            unsafe { (*ctx.cast::<Vec<u8>>()).extend_from_slice(s.as_bytes()) }
        }
        let mut data = Vec::new();
        let mut sink = StrSink { ctx: (&raw mut data).cast(), push };
        // SAFETY: the table reaches the field (checked); the key and sink live for the call.
        match unsafe { (self.api.session_get)(self.req, RgiStr::new(key.as_bytes()), &mut sink) } {
            abi::status::NOT_FOUND => Ok(None),
            status => check(status).map(|()| Some(data)),
        }
    }

    /// Stores `data` under `key` for `ttl_seconds`.
    pub(crate) fn session_put(&self, key: &str, data: &[u8], ttl_seconds: u32) -> Result<(), HostError> {
        self.has_sessions()?;
        // SAFETY: the table reaches the field (checked); the strings live for the call.
        check(unsafe { (self.api.session_put)(self.req, RgiStr::new(key.as_bytes()), RgiStr::new(data), ttl_seconds) })
    }

    /// Removes the record under `key`.
    pub(crate) fn session_remove(&self, key: &str) -> Result<(), HostError> {
        self.has_sessions()?;
        // SAFETY: the table reaches the field (checked); the key lives for the call.
        check(unsafe { (self.api.session_remove)(self.req, RgiStr::new(key.as_bytes())) })
    }

    /// Takes the host's lock for `key` (blocking).
    pub(crate) fn session_lock(&self, key: &str) -> Result<(), HostError> {
        self.has_sessions()?;
        // SAFETY: the table reaches the field (checked); the key lives for the call.
        check(unsafe { (self.api.session_lock)(self.req, RgiStr::new(key.as_bytes())) })
    }

    /// Releases the host's lock for `key`.
    pub(crate) fn session_unlock(&self, key: &str) -> Result<(), HostError> {
        self.has_sessions()?;
        // SAFETY: the table reaches the field (checked); the key lives for the call.
        check(unsafe { (self.api.session_unlock)(self.req, RgiStr::new(key.as_bytes())) })
    }
}

impl From<HostError> for io::Error {
    fn from(e: HostError) -> Self {
        let kind = match e {
            HostError::Aborted => io::ErrorKind::ConnectionAborted,
            HostError::Invalid => io::ErrorKind::InvalidInput,
            HostError::BodyError => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    static CALLED: AtomicBool = AtomicBool::new(false);

    unsafe extern "C" fn log(_: *mut HostRequest, _: u32, _: RgiStr) {}
    unsafe extern "C" fn pairs(_: *mut HostRequest, _: *mut *const RgiPair, _: *mut usize) -> RgiStatus {
        0
    }
    unsafe extern "C" fn read(_: *mut HostRequest, _: *mut u8, _: usize, _: *mut usize) -> RgiStatus {
        0
    }
    unsafe extern "C" fn start(_: *mut HostRequest, _: u32, _: *const RgiPair, _: usize) -> RgiStatus {
        0
    }
    unsafe extern "C" fn write(_: *mut HostRequest, _: *const u8, _: usize) -> RgiStatus {
        0
    }
    unsafe extern "C" fn flush(_: *mut HostRequest) -> RgiStatus {
        0
    }
    unsafe extern "C" fn file(_: *mut HostRequest, _: i32, _: u64, _: u64) -> RgiStatus {
        0
    }
    unsafe extern "C" fn two(_: *mut HostRequest, _: RgiStr, _: RgiStr) -> RgiStatus {
        0
    }
    unsafe extern "C" fn level(_: *mut HostRequest) -> u32 {
        abi::level::DEBUG
    }
    unsafe extern "C" fn get(_: *mut HostRequest, _: RgiStr, out: *mut StrSink) -> RgiStatus {
        CALLED.store(true, Ordering::Relaxed);
        // SAFETY: the SDK passes a live sink.
        unsafe { ((*out).push)((*out).ctx, RgiStr::new(b"record")) };
        0
    }
    unsafe extern "C" fn put(_: *mut HostRequest, _: RgiStr, _: RgiStr, _: u32) -> RgiStatus {
        CALLED.store(true, Ordering::Relaxed);
        0
    }
    unsafe extern "C" fn one(_: *mut HostRequest, _: RgiStr) -> RgiStatus {
        CALLED.store(true, Ordering::Relaxed);
        abi::status::NOT_FOUND
    }

    const fn table(size: usize) -> HostApi {
        HostApi {
            size,
            abi_minor: 0,
            log,
            environ: pairs,
            options: pairs,
            read_body: read,
            start_response: start,
            write_body: write,
            flush,
            send_file: file,
            set_user: two,
            add_error_header: two,
            log_level: level,
            request_headers: pairs,
            session_get: get,
            session_put: put,
            session_remove: one,
            session_lock: one,
            session_unlock: one,
        }
    }

    /// A host built before ABI 1.2: its table ends before the session functions.
    static OLD_HOST: HostApi = table(std::mem::offset_of!(HostApi, session_get));
    static NEW_HOST: HostApi = table(size_of::<HostApi>());

    fn host(api: &'static HostApi) -> Host<'static> {
        Host { api, req: std::ptr::null_mut(), _callback: PhantomData }
    }

    #[test]
    fn an_older_host_is_never_asked_for_sessions_and_a_current_one_is() {
        let old = host(&OLD_HOST);
        assert_eq!(old.session_get("k"), Err(HostError::Unsupported));
        assert_eq!(old.session_put("k", b"v", 1), Err(HostError::Unsupported));
        assert_eq!(old.session_lock("k"), Err(HostError::Unsupported));
        assert!(!CALLED.load(Ordering::Relaxed), "no function past the host's table was called");

        let new = host(&NEW_HOST);
        assert_eq!(new.session_get("k"), Ok(Some(b"record".to_vec())));
        assert_eq!(new.session_remove("k"), Err(HostError::NotFound));
        assert!(host_has!(NEW_HOST, session_unlock));
        assert!(!host_has!(OLD_HOST, session_get));
        assert!(host_has!(OLD_HOST, request_headers));
    }
}
