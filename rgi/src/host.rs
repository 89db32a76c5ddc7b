//! Safe calls into the host's function table; the SDK's only unsafe code besides the trampolines.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::sync::OnceLock;

use crate::abi::{self, HostApi, HostRequest, RgiPair, RgiStatus, RgiStr};
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
