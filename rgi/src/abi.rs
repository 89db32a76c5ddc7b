//! The C ABI between mod_rgi (the host) and an app library.
//!
//! Everything here is `#[repr(C)]` and append-only: a minor version may add fields at the end of a
//! struct (each struct that can grow carries its own `size`), a major version changes the entry
//! symbol's name. No Rust type with an unstable layout crosses the boundary; strings are pointer +
//! length pairs and collections are arrays or callbacks.
//!
//! App authors never touch this module: [`export!`](crate::export) writes the app side.
//!
//! # Loading
//! 1. At configuration time the host reads [`Manifest`] from the library *file* (the exported
//!    static [`MANIFEST_SYMBOL`]) without running any of its code, and rejects a library that is not
//!    an RGI app or speaks another ABI major version.
//! 2. In the process that serves requests the host `dlopen`s the library, calls [`ENTRY_SYMBOL`]
//!    with its [`HostApi`], and checks the returned [`AppDescriptor`]'s magic, major version and size.
//! 3. For each application group it calls `create` once, then `call` (or the auth callbacks) per
//!    request, possibly from many threads at once. The library is never unloaded.

use std::ffi::c_void;
use std::marker::PhantomData;

/// ABI major version: a library built for another major version is refused.
///
/// ```
/// let value = rgi::abi::ABI_MAJOR;
/// # let _ = value;
/// ```
pub const ABI_MAJOR: u32 = 1;
/// ABI minor version: fields appended since major 1.0.
///
/// - 1.1: [`HostApi::log_level`], [`HostApi::request_headers`], [`CreateContext::threads`].
/// - 1.2: the session store (`HostApi::session_*`, statuses `NOT_FOUND` and `TOO_LARGE`).
/// - 1.3: [`role::DISPATCHER`] and [`AppDescriptor::dispatch`].
///
/// ```
/// let value = rgi::abi::ABI_MINOR;
/// # let _ = value;
/// ```
pub const ABI_MINOR: u32 = 3;
/// First field of [`Manifest`] and [`AppDescriptor`]: `"RGI-APP\0"` read as a little-endian u64.
///
/// ```
/// let value = rgi::abi::MAGIC;
/// # let _ = value;
/// ```
pub const MAGIC: u64 = u64::from_le_bytes(*b"RGI-APP\0");
/// Name of the exported entry function (carries the major version).
///
/// ```
/// let value = rgi::abi::ENTRY_SYMBOL;
/// # let _ = value;
/// ```
pub const ENTRY_SYMBOL: &str = "rgi_app_v1";
/// Name of the exported static [`Manifest`] (carries the major version).
///
/// ```
/// let value = rgi::abi::MANIFEST_SYMBOL;
/// # let _ = value;
/// ```
pub const MANIFEST_SYMBOL: &str = "rgi_manifest_v1";
/// Prefix shared by manifest symbols of every major version, to name the version of a foreign one.
///
/// ```
/// let value = rgi::abi::MANIFEST_SYMBOL_PREFIX;
/// # let _ = value;
/// ```
pub const MANIFEST_SYMBOL_PREFIX: &str = "rgi_manifest_v";

/// Roles a library can play, as bits in [`Manifest::roles`] and [`AppDescriptor::roles`].
///
/// ```
/// let roles = rgi::abi::role::APP | rgi::abi::role::USER_PROVIDER;
/// assert_ne!(roles & rgi::abi::role::APP, 0);
/// ```
pub mod role {
    /// A WSGI-style application (`RGIScriptAlias`).
    ///
    /// ```
    /// let value = rgi::abi::role::APP;
    /// # let _ = value;
    /// ```
    pub const APP: u32 = 1 << 0;
    /// An authentication provider (`RGIAuthUserScript`): passwords and Digest realm hashes.
    ///
    /// ```
    /// let value = rgi::abi::role::USER_PROVIDER;
    /// # let _ = value;
    /// ```
    pub const USER_PROVIDER: u32 = 1 << 1;
    /// A group provider (`RGIAuthGroupScript`, `Require rgi-group`).
    ///
    /// ```
    /// let value = rgi::abi::role::GROUP_PROVIDER;
    /// # let _ = value;
    /// ```
    pub const GROUP_PROVIDER: u32 = 1 << 2;
    /// A host access checker (`RGIAccessScript`).
    ///
    /// ```
    /// let value = rgi::abi::role::ACCESS_CHECKER;
    /// # let _ = value;
    /// ```
    pub const ACCESS_CHECKER: u32 = 1 << 3;
    /// A check_user_id phase handler (`RGIAuthenHandler`).
    ///
    /// ```
    /// let value = rgi::abi::role::AUTHEN_HANDLER;
    /// # let _ = value;
    /// ```
    pub const AUTHEN_HANDLER: u32 = 1 << 4;
    /// An authorisation phase handler (`RGIAuthzHandler`).
    ///
    /// ```
    /// let value = rgi::abi::role::AUTHZ_HANDLER;
    /// # let _ = value;
    /// ```
    pub const AUTHZ_HANDLER: u32 = 1 << 5;
    /// A dispatcher (`RGIDispatchScript`): chooses a request's process and application group.
    ///
    /// ```
    /// let value = rgi::abi::role::DISPATCHER;
    /// # let _ = value;
    /// ```
    pub const DISPATCHER: u32 = 1 << 6;

    /// Human names of the role bits, for error messages.
    ///
    /// ```
    /// let value = rgi::abi::role::NAMES;
    /// # let _ = value;
    /// ```
    pub const NAMES: [(u32, &str); 7] = [
        (APP, "app"),
        (USER_PROVIDER, "user_provider"),
        (GROUP_PROVIDER, "group_provider"),
        (ACCESS_CHECKER, "access_checker"),
        (AUTHEN_HANDLER, "authen_handler"),
        (AUTHZ_HANDLER, "authz_handler"),
        (DISPATCHER, "dispatcher"),
    ];
}

/// Static data the host reads from the library file at configuration time.
///
/// It holds no pointers, so it can be read without relocating or running the library.
///
/// ```
/// let m = rgi::abi::Manifest::new(rgi::abi::role::APP);
/// assert_eq!(m.magic, rgi::abi::MAGIC);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// [`ABI_MAJOR`] the library was built with.
    pub abi_major: u32,
    /// [`ABI_MINOR`] the library was built with.
    pub abi_minor: u32,
    /// Bits from [`role`].
    pub roles: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The `rgi` SDK version, NUL-padded UTF-8.
    pub sdk_version: [u8; 32],
}

impl Manifest {
    /// The manifest for a library built with this SDK playing `roles`.
    ///
    /// ```
    /// assert_eq!(rgi::abi::Manifest::new(rgi::abi::role::APP).roles, rgi::abi::role::APP);
    /// ```
    pub const fn new(roles: u32) -> Self {
        let mut sdk_version = [0u8; 32];
        let v = env!("CARGO_PKG_VERSION").as_bytes();
        let mut i = 0;
        while i < v.len() && i < 32 {
            sdk_version[i] = v[i];
            i += 1;
        }
        Manifest { magic: MAGIC, abi_major: ABI_MAJOR, abi_minor: ABI_MINOR, roles, reserved: 0, sdk_version }
    }

    /// The SDK version as text.
    ///
    /// ```
    /// assert_eq!(rgi::abi::Manifest::new(0).sdk_version(), env!("CARGO_PKG_VERSION"));
    /// ```
    pub fn sdk_version(&self) -> &str {
        let end = self.sdk_version.iter().position(|&b| b == 0).unwrap_or(32);
        std::str::from_utf8(&self.sdk_version[..end]).unwrap_or("?")
    }
}

/// A borrowed byte string: pointer and length. Not NUL-terminated.
///
/// ```
/// let s = rgi::abi::RgiStr::new(b"hi");
/// // SAFETY: the bytes are a live literal.
/// assert_eq!(unsafe { s.as_bytes() }, b"hi");
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RgiStr {
    /// Start of the bytes (may be dangling when `len` is 0).
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl RgiStr {
    /// The empty string.
    ///
    /// ```
    /// assert_eq!(rgi::abi::RgiStr::EMPTY.len, 0);
    /// ```
    pub const EMPTY: RgiStr = RgiStr { ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(), len: 0 };

    /// Borrows `bytes` for the duration of a call.
    ///
    /// ```
    /// assert_eq!(rgi::abi::RgiStr::new(b"abc").len, 3);
    /// ```
    pub const fn new(bytes: &[u8]) -> Self {
        RgiStr { ptr: bytes.as_ptr(), len: bytes.len() }
    }

    /// Views the bytes.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a`.
    ///
    /// ```
    /// let s = rgi::abi::RgiStr::new(b"abc");
    /// // SAFETY: a live literal.
    /// assert_eq!(unsafe { s.as_bytes() }, b"abc");
    /// ```
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller guarantees ptr/len describe live bytes for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// One `name`/`value` pair: an environ entry, an option or a response header.
///
/// ```
/// let p = rgi::abi::RgiPair::new(b"Content-Type", b"text/plain");
/// assert_eq!(p.value.len, 10);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RgiPair {
    /// The name (environ key, option name or header name).
    pub name: RgiStr,
    /// The value.
    pub value: RgiStr,
}

impl RgiPair {
    /// The pair of two empty strings.
    ///
    /// ```
    /// assert_eq!(rgi::abi::RgiPair::EMPTY.name.len, 0);
    /// ```
    pub const EMPTY: RgiPair = RgiPair { name: RgiStr::EMPTY, value: RgiStr::EMPTY };

    /// Borrows `name` and `value` for the duration of a call.
    ///
    /// ```
    /// assert_eq!(rgi::abi::RgiPair::new(b"a", b"bc").value.len, 2);
    /// ```
    pub const fn new(name: &[u8], value: &[u8]) -> Self {
        RgiPair { name: RgiStr::new(name), value: RgiStr::new(value) }
    }
}

/// A place to put strings: the callee calls `push` once per string. Used for error messages,
/// group lists and renamed users, so no allocation crosses the boundary.
///
/// ```
/// unsafe extern "C" fn ignore(_: *mut std::ffi::c_void, _: rgi::abi::RgiStr) {}
/// let sink = rgi::abi::StrSink { ctx: std::ptr::null_mut(), push: ignore };
/// # let _ = sink;
/// ```
#[repr(C)]
pub struct StrSink {
    /// Opaque state of the sink's owner.
    pub ctx: *mut c_void,
    /// Appends one string.
    pub push: unsafe extern "C" fn(ctx: *mut c_void, s: RgiStr),
}

/// Status of a host function. `0` is success; the others are the `status::*` constants.
///
/// ```
/// let status: rgi::abi::RgiStatus = rgi::abi::status::OK;
/// assert_eq!(status, 0);
/// ```
pub type RgiStatus = i32;

/// Values of [`RgiStatus`].
///
/// ```
/// let ok = rgi::abi::status::OK;
/// # let _ = ok;
/// ```
pub mod status {
    /// Success.
    ///
    /// ```
    /// let value = rgi::abi::status::OK;
    /// # let _ = value;
    /// ```
    pub const OK: i32 = 0;
    /// The client went away; nothing more can be sent or read.
    ///
    /// ```
    /// let value = rgi::abi::status::ABORTED;
    /// # let _ = value;
    /// ```
    pub const ABORTED: i32 = -1;
    /// An argument was invalid (a header with CR/LF/NUL, a bad status, ...). Details are logged.
    ///
    /// ```
    /// let value = rgi::abi::status::INVALID;
    /// # let _ = value;
    /// ```
    pub const INVALID: i32 = -2;
    /// The call is not allowed now (write before start_response, start_response twice, ...).
    ///
    /// ```
    /// let value = rgi::abi::status::STATE;
    /// # let _ = value;
    /// ```
    pub const STATE: i32 = -3;
    /// Reading the request body failed with an HTTP error (bad framing, too large, timed out);
    /// the host answers the request with that error once the app returns.
    ///
    /// ```
    /// let value = rgi::abi::status::BODY_ERROR;
    /// # let _ = value;
    /// ```
    pub const BODY_ERROR: i32 = -4;
    /// An I/O error on the host's side.
    ///
    /// ```
    /// let value = rgi::abi::status::IO;
    /// # let _ = value;
    /// ```
    pub const IO: i32 = -5;
    /// The operation is not supported by this host or in this phase.
    ///
    /// ```
    /// let value = rgi::abi::status::UNSUPPORTED;
    /// # let _ = value;
    /// ```
    pub const UNSUPPORTED: i32 = -6;
    /// (1.2) Nothing is stored under that key (never stored, expired or removed).
    ///
    /// ```
    /// let value = rgi::abi::status::NOT_FOUND;
    /// # let _ = value;
    /// ```
    pub const NOT_FOUND: i32 = -7;
    /// (1.2) The value is larger than the store accepts.
    ///
    /// ```
    /// let value = rgi::abi::status::TOO_LARGE;
    /// # let _ = value;
    /// ```
    pub const TOO_LARGE: i32 = -8;
}

/// Apache log levels, as the host's `log` function takes them.
///
/// ```
/// assert!(rgi::abi::level::DEBUG > rgi::abi::level::WARN);
/// ```
pub mod level {
    /// `APLOG_ERR`.
    ///
    /// ```
    /// let value = rgi::abi::level::ERROR;
    /// # let _ = value;
    /// ```
    pub const ERROR: u32 = 3;
    /// `APLOG_WARNING`.
    ///
    /// ```
    /// let value = rgi::abi::level::WARN;
    /// # let _ = value;
    /// ```
    pub const WARN: u32 = 4;
    /// `APLOG_NOTICE`.
    ///
    /// ```
    /// let value = rgi::abi::level::NOTICE;
    /// # let _ = value;
    /// ```
    pub const NOTICE: u32 = 5;
    /// `APLOG_INFO`.
    ///
    /// ```
    /// let value = rgi::abi::level::INFO;
    /// # let _ = value;
    /// ```
    pub const INFO: u32 = 6;
    /// `APLOG_DEBUG`.
    ///
    /// ```
    /// let value = rgi::abi::level::DEBUG;
    /// # let _ = value;
    /// ```
    pub const DEBUG: u32 = 7;
    /// `APLOG_TRACE1`.
    ///
    /// ```
    /// let value = rgi::abi::level::TRACE;
    /// # let _ = value;
    /// ```
    pub const TRACE: u32 = 8;
}

/// Opaque handle of the host's per-request state.
///
/// ```
/// let handle: *mut rgi::abi::HostRequest = std::ptr::null_mut();
/// assert!(handle.is_null());
/// ```
#[repr(C)]
pub struct HostRequest {
    _private: [u8; 0],
    _not_send: PhantomData<*mut u8>,
}

/// Functions the host offers an app. Passed to the entry function; valid for the process lifetime.
///
/// Request functions take the `HostRequest` handle the host passed to the callback and may only be
/// called on the thread running that callback, before it returns.
///
/// ```
/// let minor_1_1 = std::mem::offset_of!(rgi::abi::HostApi, request_headers);
/// assert!(minor_1_1 > std::mem::offset_of!(rgi::abi::HostApi, log));
/// ```
#[repr(C)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host built it; fields past it are absent.
    pub size: usize,
    /// The host's [`ABI_MINOR`].
    pub abi_minor: u32,
    /// Writes `msg` to Apache's error log at `level`; with a request handle, tagged with the
    /// request (client and request id). The handle may be null.
    pub log: unsafe extern "C" fn(req: *mut HostRequest, level: u32, msg: RgiStr),
    /// The request's environ: `*out` receives an array of `*out_len` pairs valid until the
    /// callback returns.
    pub environ:
        unsafe extern "C" fn(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus,
    /// The `RGIOption` values in effect for the request, like `environ`.
    pub options:
        unsafe extern "C" fn(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus,
    /// Reads up to `len` bytes of the request body into `buf`, blocking until at least one byte
    /// arrives; `*out_n == 0` means the end of the body.
    pub read_body:
        unsafe extern "C" fn(req: *mut HostRequest, buf: *mut u8, len: usize, out_n: *mut usize) -> RgiStatus,
    /// Sets the status and headers. Must come before any body and only once. The host validates
    /// every name and value and refuses (INVALID) a status outside 200..=599 or a header with
    /// CR, LF or NUL.
    pub start_response:
        unsafe extern "C" fn(req: *mut HostRequest, status: u32, headers: *const RgiPair, count: usize) -> RgiStatus,
    /// Sends body bytes (buffered by Apache until `flush` or the end).
    pub write_body: unsafe extern "C" fn(req: *mut HostRequest, data: *const u8, len: usize) -> RgiStatus,
    /// Pushes everything written so far to the client.
    pub flush: unsafe extern "C" fn(req: *mut HostRequest) -> RgiStatus,
    /// Sends `len` bytes of the open file `fd` from `offset` as the body (with sendfile where the
    /// platform has it). The host duplicates `fd`; the caller keeps ownership of its own.
    /// `len == u64::MAX` means "to the end of the file". Sets Content-Length, and Last-Modified and
    /// ETag from the file unless the app set them.
    pub send_file: unsafe extern "C" fn(req: *mut HostRequest, fd: i32, offset: u64, len: u64) -> RgiStatus,
    /// Authentication phase: sets the request's user and authentication type (`AUTH_TYPE`).
    pub set_user: unsafe extern "C" fn(req: *mut HostRequest, user: RgiStr, auth_type: RgiStr) -> RgiStatus,
    /// Adds a header to the response Apache sends for this request, also on errors (e.g. a
    /// `WWW-Authenticate` challenge with a 401). Validated like `start_response`.
    pub add_error_header: unsafe extern "C" fn(req: *mut HostRequest, name: RgiStr, value: RgiStr) -> RgiStatus,
    // ---- 1.1 ----
    /// The most verbose [`level`] Apache writes for this module (`LogLevel rgi:…`): for the request
    /// when `req` is not null (per-directory `LogLevel` applies), else for the main server. Lets
    /// an app skip formatting messages Apache would drop.
    pub log_level: unsafe extern "C" fn(req: *mut HostRequest) -> u32,
    /// The request headers as the client sent them (names in their case, repeated headers as
    /// separate pairs), like `environ`. `Authorization` and `Proxy-Authorization` are left out
    /// unless passed to the app (`RGIPassAuthorization`), as in the environ.
    pub request_headers:
        unsafe extern "C" fn(req: *mut HostRequest, out: *mut *const RgiPair, out_len: *mut usize) -> RgiStatus,

    // ---- 1.2: the session store. Callers check `size` first (`HostApi::has_field`). ----
    //
    // Records live in the host's cache (`RGISessionCache`: shared memory for every process of one
    // Apache, or Redis/memcache for several hosts) under a key the app chooses (the session id).
    // The functions work in every phase and every process the host runs apps in; `req` may be
    // null (outside a request). UNSUPPORTED means the host has no session cache (logged).
    /// (1.2) Reads the record stored under `key`: pushes it into `out` once and returns OK, or
    /// returns NOT_FOUND.
    pub session_get: unsafe extern "C" fn(req: *mut HostRequest, key: RgiStr, out: *mut StrSink) -> RgiStatus,
    /// (1.2) Stores `data` under `key` for `ttl_seconds` (at least 1), replacing any record.
    /// TOO_LARGE when the record exceeds the host's limit ([`SESSION_MAX_RECORD`]).
    pub session_put:
        unsafe extern "C" fn(req: *mut HostRequest, key: RgiStr, data: RgiStr, ttl_seconds: u32) -> RgiStatus,
    /// (1.2) Removes the record stored under `key` (OK when there was none).
    pub session_remove: unsafe extern "C" fn(req: *mut HostRequest, key: RgiStr) -> RgiStatus,
    /// (1.2) Takes this host's lock for `key`, waiting while another request holds it. Locks
    /// belong to the calling thread, are re-entrant, and are all released when the request ends.
    /// They exclude requests on one host (all its processes), not across hosts.
    pub session_lock: unsafe extern "C" fn(req: *mut HostRequest, key: RgiStr) -> RgiStatus,
    /// (1.2) Releases one `session_lock` of `key` by this thread (STATE if it holds none).
    pub session_unlock: unsafe extern "C" fn(req: *mut HostRequest, key: RgiStr) -> RgiStatus,
}

/// The largest record `session_put` accepts, in bytes.
///
/// ```
/// assert_eq!(rgi::abi::SESSION_MAX_RECORD, 32 * 1024);
/// ```
pub const SESSION_MAX_RECORD: usize = 32 * 1024;

/// The longest key the session functions accept, in bytes.
///
/// ```
/// let value = rgi::abi::SESSION_MAX_KEY;
/// # let _ = value;
/// ```
pub const SESSION_MAX_KEY: usize = 100;

impl HostApi {
    /// Whether the host's table has the field that ends `end` bytes into the struct (a host of an
    /// older minor version lacks the newer functions).
    ///
    /// ```
    /// use rgi::abi::HostApi;
    /// let end = std::mem::offset_of!(HostApi, log_level) + size_of::<usize>();
    /// # let _ = end;
    /// ```
    pub fn has_field(&self, end: usize) -> bool {
        self.size >= end
    }
}

/// What the host tells `create` about the instance it wants.
///
/// ```
/// assert!(std::mem::offset_of!(rgi::abi::CreateContext, threads) > std::mem::offset_of!(rgi::abi::CreateContext, options_len));
/// ```
#[repr(C)]
pub struct CreateContext {
    /// `size_of::<CreateContext>()` as the host built it.
    pub size: usize,
    /// Path of the library being instantiated.
    pub library: RgiStr,
    /// The application group this instance serves (`""` is `%{GLOBAL}`).
    pub application_group: RgiStr,
    /// The daemon process group, or `""` when embedded in an Apache child.
    pub process_group: RgiStr,
    /// Server-wide `RGIOption`s known when the instance is created.
    pub options: *const RgiPair,
    /// Number of `options`.
    pub options_len: usize,
    // ---- 1.1 ----
    /// How many threads of this process may call the instance at once (Apache's
    /// `ThreadsPerChild`, 1 under prefork, or the daemon group's `threads=`).
    pub threads: usize,
}

/// What an app callback ended with.
///
/// ```
/// let status: rgi::abi::CallStatus = rgi::abi::call::PANIC;
/// assert_ne!(status, rgi::abi::call::OK);
/// ```
pub type CallStatus = i32;

/// Values of [`CallStatus`].
///
/// ```
/// let first = rgi::abi::call::ERROR;
/// # let _ = first;
/// ```
pub mod call {
    /// The callback finished normally.
    ///
    /// ```
    /// let value = rgi::abi::call::OK;
    /// # let _ = value;
    /// ```
    pub const OK: i32 = 0;
    /// The app returned an error (already logged by the app side).
    ///
    /// ```
    /// let value = rgi::abi::call::ERROR;
    /// # let _ = value;
    /// ```
    pub const ERROR: i32 = 1;
    /// The app panicked (already logged by the app side).
    ///
    /// ```
    /// let value = rgi::abi::call::PANIC;
    /// # let _ = value;
    /// ```
    pub const PANIC: i32 = 2;
}

/// Answer of `check_password`.
///
/// ```
/// let first = rgi::abi::password::ERROR;
/// # let _ = first;
/// ```
pub mod password {
    /// The password is right.
    ///
    /// ```
    /// let value = rgi::abi::password::GRANTED;
    /// # let _ = value;
    /// ```
    pub const GRANTED: i32 = 0;
    /// The password is wrong.
    ///
    /// ```
    /// let value = rgi::abi::password::DENIED;
    /// # let _ = value;
    /// ```
    pub const DENIED: i32 = 1;
    /// No such user here: Apache asks the next provider.
    ///
    /// ```
    /// let value = rgi::abi::password::USER_NOT_FOUND;
    /// # let _ = value;
    /// ```
    pub const USER_NOT_FOUND: i32 = 2;
    /// Right, and the user is known under another name (pushed into the rename sink).
    ///
    /// ```
    /// let value = rgi::abi::password::GRANTED_AS;
    /// # let _ = value;
    /// ```
    pub const GRANTED_AS: i32 = 3;
    /// The provider could not decide (logged); Apache answers 500.
    ///
    /// ```
    /// let value = rgi::abi::password::ERROR;
    /// # let _ = value;
    /// ```
    pub const ERROR: i32 = 4;
}

/// Answer of `get_realm_hash`.
///
/// ```
/// let first = rgi::abi::realm_hash::ERROR;
/// # let _ = first;
/// ```
pub mod realm_hash {
    /// The 16-byte MD5(user:realm:password) was written.
    ///
    /// ```
    /// let value = rgi::abi::realm_hash::FOUND;
    /// # let _ = value;
    /// ```
    pub const FOUND: i32 = 0;
    /// No such user here: Apache asks the next provider.
    ///
    /// ```
    /// let value = rgi::abi::realm_hash::USER_NOT_FOUND;
    /// # let _ = value;
    /// ```
    pub const USER_NOT_FOUND: i32 = 2;
    /// The provider could not decide (logged); Apache answers 500.
    ///
    /// ```
    /// let value = rgi::abi::realm_hash::ERROR;
    /// # let _ = value;
    /// ```
    pub const ERROR: i32 = 4;
}

/// Answer of `allow_access` and `authz_handler`.
///
/// ```
/// let first = rgi::abi::decision::ERROR;
/// # let _ = first;
/// ```
pub mod decision {
    /// Access is granted.
    ///
    /// ```
    /// let value = rgi::abi::decision::GRANTED;
    /// # let _ = value;
    /// ```
    pub const GRANTED: i32 = 0;
    /// Access is denied (403).
    ///
    /// ```
    /// let value = rgi::abi::decision::DENIED;
    /// # let _ = value;
    /// ```
    pub const DENIED: i32 = 1;
    /// No opinion: the rest of Apache's configuration decides.
    ///
    /// ```
    /// let value = rgi::abi::decision::NO_OPINION;
    /// # let _ = value;
    /// ```
    pub const NO_OPINION: i32 = 2;
    /// The callback failed (logged); Apache answers 500.
    ///
    /// ```
    /// let value = rgi::abi::decision::ERROR;
    /// # let _ = value;
    /// ```
    pub const ERROR: i32 = 4;
}

/// Answer of `authen_handler`.
///
/// ```
/// let first = rgi::abi::authen::ERROR;
/// # let _ = first;
/// ```
pub mod authen {
    /// The user was identified (`set_user` was called).
    ///
    /// ```
    /// let value = rgi::abi::authen::OK;
    /// # let _ = value;
    /// ```
    pub const OK: i32 = 0;
    /// Not handled here: Apache's other authentication modules decide.
    ///
    /// ```
    /// let value = rgi::abi::authen::DECLINED;
    /// # let _ = value;
    /// ```
    pub const DECLINED: i32 = 1;
    /// Credentials missing or wrong: 401 (with the challenge added by `add_error_header`).
    ///
    /// ```
    /// let value = rgi::abi::authen::UNAUTHORIZED;
    /// # let _ = value;
    /// ```
    pub const UNAUTHORIZED: i32 = 2;
    /// Refused outright: 403.
    ///
    /// ```
    /// let value = rgi::abi::authen::FORBIDDEN;
    /// # let _ = value;
    /// ```
    pub const FORBIDDEN: i32 = 3;
    /// The handler failed (logged); Apache answers 500.
    ///
    /// ```
    /// let value = rgi::abi::authen::ERROR;
    /// # let _ = value;
    /// ```
    pub const ERROR: i32 = 4;
}

/// An app instance, opaque to the host.
///
/// ```
/// let none: rgi::abi::Instance = std::ptr::null_mut();
/// assert!(none.is_null());
/// ```
pub type Instance = *mut c_void;

/// What the entry function returns: the library's capabilities.
///
/// ```
/// assert_eq!(std::mem::offset_of!(rgi::abi::AppDescriptor, magic), 0);
/// ```
#[repr(C)]
pub struct AppDescriptor {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// [`ABI_MAJOR`] of the library.
    pub abi_major: u32,
    /// [`ABI_MINOR`] of the library.
    pub abi_minor: u32,
    /// `size_of::<AppDescriptor>()` as the library built it.
    pub size: usize,
    /// The SDK version (static UTF-8).
    pub sdk_version: RgiStr,
    /// Bits from [`role`].
    pub roles: u32,
    /// Creates an instance; on failure returns null after pushing a message into `error`.
    pub create: unsafe extern "C" fn(ctx: *const CreateContext, error: *mut StrSink) -> Instance,
    /// Destroys an instance.
    pub destroy: unsafe extern "C" fn(instance: Instance),
    /// [`role::APP`]: serves one request.
    pub call: Option<unsafe extern "C" fn(instance: Instance, req: *mut HostRequest) -> CallStatus>,
    /// [`role::USER_PROVIDER`]: checks a password; returns a [`password`] value.
    pub check_password: Option<
        unsafe extern "C" fn(
            instance: Instance,
            req: *mut HostRequest,
            user: RgiStr,
            password: RgiStr,
            rename: *mut StrSink,
        ) -> i32,
    >,
    /// [`role::USER_PROVIDER`]: writes MD5(user:realm:password) into `hash`; returns a
    /// [`realm_hash`] value.
    pub get_realm_hash: Option<
        unsafe extern "C" fn(
            instance: Instance,
            req: *mut HostRequest,
            user: RgiStr,
            realm: RgiStr,
            hash: *mut [u8; 16],
        ) -> i32,
    >,
    /// [`role::GROUP_PROVIDER`]: pushes the user's groups into `groups`; returns a [`call`] value.
    pub groups_for_user: Option<
        unsafe extern "C" fn(
            instance: Instance,
            req: *mut HostRequest,
            user: RgiStr,
            groups: *mut StrSink,
        ) -> CallStatus,
    >,
    /// [`role::ACCESS_CHECKER`]: decides on the client host; returns a [`decision`] value.
    pub allow_access: Option<unsafe extern "C" fn(instance: Instance, req: *mut HostRequest, host: RgiStr) -> i32>,
    /// [`role::AUTHEN_HANDLER`]: runs check_user_id; returns an [`authen`] value.
    pub authen_handler: Option<unsafe extern "C" fn(instance: Instance, req: *mut HostRequest) -> i32>,
    /// [`role::AUTHZ_HANDLER`]: decides authorisation for the authenticated user; returns a
    /// [`decision`] value.
    pub authz_handler: Option<unsafe extern "C" fn(instance: Instance, req: *mut HostRequest) -> i32>,
    /// [`role::DISPATCHER`] (ABI 1.3): pushes at most one name into each sink (none leaves the
    /// configured group); returns a [`call`] value.
    pub dispatch: Option<
        unsafe extern "C" fn(
            instance: Instance,
            req: *mut HostRequest,
            process_group: *mut StrSink,
            application_group: *mut StrSink,
        ) -> CallStatus,
    >,
}

// SAFETY: a descriptor is immutable static data; its pointers are to static strings and to
// functions, which are safe to share between threads.
unsafe impl Sync for AppDescriptor {}

/// The entry function's type: `rgi_app_v1(host) -> descriptor`.
///
/// ```
/// unsafe extern "C" fn entry(_: *const rgi::abi::HostApi) -> *const rgi::abi::AppDescriptor { std::ptr::null() }
/// let f: rgi::abi::EntryFn = entry;
/// # let _ = f;
/// ```
pub type EntryFn = unsafe extern "C" fn(host: *const HostApi) -> *const AppDescriptor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_carries_the_sdk_version_and_roles() {
        let m = Manifest::new(role::APP | role::USER_PROVIDER);
        assert_eq!(m.magic, MAGIC);
        assert_eq!(m.abi_major, ABI_MAJOR);
        assert_eq!(m.sdk_version(), env!("CARGO_PKG_VERSION"));
        assert_eq!(m.roles & role::GROUP_PROVIDER, 0);
    }

    #[test]
    fn magic_spells_its_name() {
        assert_eq!(&MAGIC.to_le_bytes(), b"RGI-APP\0");
    }

    #[test]
    fn entry_and_manifest_names_carry_the_major_version() {
        assert!(ENTRY_SYMBOL.ends_with(&format!("v{ABI_MAJOR}")));
        assert_eq!(MANIFEST_SYMBOL, format!("{MANIFEST_SYMBOL_PREFIX}{ABI_MAJOR}"));
    }
}
