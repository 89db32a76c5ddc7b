//! Builds a request's environ: the CGI variables mod_wsgi gives a WSGI app, plus `rgi.*` keys.
//!
//! Values point into Apache's own strings wherever they exist (method, URI, headers, addresses);
//! only derived strings (`HTTP_*` names, numbers, SCRIPT_NAME) are allocated, in the request pool.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use rgi::abi::{RgiPair, RgiStr};
use smallvec::SmallVec;

use crate::ffi::{self, sys};

/// Whether this process serves requests on several threads / in several processes
/// (`rgi.multithread`, `rgi.multiprocess`), found once per process in child_init.
pub static MULTITHREAD: AtomicBool = AtomicBool::new(true);
/// See [`MULTITHREAD`].
pub static MULTIPROCESS: AtomicBool = AtomicBool::new(true);

/// What the environ needs beyond the request itself.
pub struct EnvironContext<'a> {
    /// `rgi.application_group`.
    pub application_group: &'a [u8],
    /// `rgi.process_group` (`""` when embedded).
    pub process_group: &'a [u8],
    /// Whether `Authorization` reaches the app as `HTTP_AUTHORIZATION`.
    pub pass_authorization: bool,
}

/// Keys that only Apache's authentication sets (from `r->user` and the auth type), never a
/// `SetEnvIf` copying a client's header: an app trusts `REMOTE_USER`.
const AUTH_ONLY: [&[u8]; 3] = [b"REMOTE_USER", b"AUTH_TYPE", b"REDIRECT_REMOTE_USER"];

/// `HTTP_*` name of a request header, or `None` when the name has characters other than letters,
/// digits and '-' (Apache drops those for CGI too: `X_User` must not pass for `X-User`).
pub fn header_env_name(name: &[u8]) -> Option<SmallVec<[u8; 64]>> {
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return None;
    }
    // On the stack for any usual name: this runs for every header of every request.
    let mut key: SmallVec<[u8; 64]> = SmallVec::with_capacity(name.len() + 5);
    key.extend_from_slice(b"HTTP_");
    key.extend_from_slice(name);
    for b in &mut key[5..] {
        *b = if *b == b'-' { b'_' } else { b.to_ascii_uppercase() };
    }
    Some(key)
}

/// Whether a request header carries credentials (passed to apps only with
/// `RGIPassAuthorization On`).
pub fn is_authorization(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"Authorization") || name.eq_ignore_ascii_case(b"Proxy-Authorization")
}

/// Collapses runs of '/' into one (mod_wsgi does this for SCRIPT_NAME and PATH_INFO).
pub fn collapse_slashes(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !s.windows(2).any(|w| w == b"//") {
        return s.into();
    }
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    out.into()
}

/// SCRIPT_NAME and PATH_INFO of a request: the decoded URI split where its path info starts.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn script_name_and_path_info<'a>(r: *const sys::request_rec) -> (std::borrow::Cow<'a, [u8]>, &'a [u8]) {
    // SAFETY: uri and path_info are NUL-terminated strings of the live request.
    unsafe {
        let uri = ffi::bytes((*r).uri).unwrap_or_default();
        let path_info = ffi::bytes((*r).path_info).unwrap_or_default();
        if path_info.is_empty() {
            return (collapse_slashes(uri), path_info);
        }
        let start = sys::ap_find_path_info((*r).uri, (*r).path_info).clamp(0, uri.len() as i32) as usize;
        (collapse_slashes(&uri[..start]), path_info)
    }
}

struct Builder {
    pool: *mut sys::apr_pool_t,
    pairs: Vec<RgiPair>,
}

impl Builder {
    fn add(&mut self, key: &'static [u8], value: RgiStr) {
        self.pairs.push(RgiPair { name: RgiStr::new(key), value });
    }

    /// # Safety
    /// `value` must be null or a NUL-terminated string outliving the request.
    unsafe fn add_c(&mut self, key: &'static [u8], value: *const c_char) {
        // SAFETY: guaranteed by the caller.
        if let Some(v) = unsafe { ffi::bytes(value) } {
            self.add(key, RgiStr::new(v));
        }
    }

    /// Copies `value` into the request pool.
    fn add_copy(&mut self, key: &'static [u8], value: &[u8]) {
        let v = self.copy(value);
        self.add(key, v);
    }

    fn copy(&self, value: &[u8]) -> RgiStr {
        // SAFETY: the request pool is live for as long as the environ is used.
        let p = unsafe { ffi::pstrdup(self.pool, value) };
        RgiStr { ptr: p.cast(), len: value.len() }
    }

    fn has(&self, key: &[u8]) -> bool {
        // SAFETY: every pair points at strings alive for the request.
        self.pairs.iter().any(|p| unsafe { p.name.as_bytes() } == key)
    }
}

fn flag(b: bool) -> RgiStr {
    RgiStr::new(if b { b"true" } else { b"false" })
}

/// Builds the environ of `r`.
///
/// # Safety
/// `r` must be a live request being handled on this thread; the result points into its pool and
/// must not outlive it.
pub unsafe fn build(r: *mut sys::request_rec, ctx: &EnvironContext<'_>) -> Vec<RgiPair> {
    // SAFETY: every pointer read below belongs to the live request, its connection or server.
    unsafe {
        let c = (*r).connection;
        let s = (*r).server;
        let headers = ffi::table_entries((*r).headers_in);
        let env = ffi::table_entries((*r).subprocess_env);
        let mut b = Builder { pool: (*r).pool, pairs: Vec::with_capacity(40 + headers.len() + env.len()) };

        b.add_c(b"REQUEST_METHOD", (*r).method);
        let (script_name, path_info) = script_name_and_path_info(r);
        b.add_copy(b"SCRIPT_NAME", &script_name);
        let path_info = collapse_slashes(path_info);
        b.add_copy(b"PATH_INFO", &path_info);
        b.add(b"QUERY_STRING", RgiStr::new(ffi::bytes((*r).args).unwrap_or_default()));
        let mut first = r;
        while !(*first).prev.is_null() {
            first = (*first).prev;
        }
        b.add_c(b"REQUEST_URI", (*first).unparsed_uri);
        b.add_c(b"SERVER_PROTOCOL", (*r).protocol);
        b.add_c(b"SERVER_SOFTWARE", sys::ap_get_server_banner());
        b.add_c(b"SERVER_NAME", sys::ap_get_server_name_for_url(r));
        let mut digits = itoa::Buffer::new();
        b.add_copy(b"SERVER_PORT", digits.format(sys::ap_get_server_port(r)).as_bytes());
        b.add_c(b"SERVER_ADDR", (*c).local_ip);
        b.add_c(b"REMOTE_ADDR", (*r).useragent_ip);
        if !(*c).client_addr.is_null() {
            b.add_copy(b"REMOTE_PORT", digits.format((*(*c).client_addr).port).as_bytes());
        }
        let scheme = sys::ap_run_http_scheme(r);
        b.add_c(b"REQUEST_SCHEME", scheme);
        let https = sys::ap_ssl_conn_is_ssl(c) != 0;
        if https {
            b.add(b"HTTPS", RgiStr::new(b"1"));
        }
        b.add_c(b"DOCUMENT_ROOT", sys::ap_document_root(r));
        b.add_c(b"CONTEXT_PREFIX", sys::ap_context_prefix(r));
        b.add_c(b"CONTEXT_DOCUMENT_ROOT", sys::ap_context_document_root(r));
        b.add_c(b"SERVER_ADMIN", (*s).server_admin);
        b.add_c(b"SCRIPT_FILENAME", (*r).filename);
        b.add(b"GATEWAY_INTERFACE", RgiStr::new(b"CGI/1.1"));
        b.add_c(b"REMOTE_USER", (*r).user);
        b.add_c(b"AUTH_TYPE", (*r).ap_auth_type);
        if !(*r).prev.is_null() {
            b.add_c(b"REDIRECT_URL", (*(*r).prev).uri);
            b.add_c(b"REDIRECT_QUERY_STRING", (*(*r).prev).args);
            let mut back = (*r).prev;
            while (*r).user.is_null() && !back.is_null() {
                if !(*back).user.is_null() {
                    b.add_c(b"REDIRECT_REMOTE_USER", (*back).user);
                    break;
                }
                back = (*back).prev;
            }
        }

        for h in headers {
            let (Some(name), Some(value)) = (ffi::bytes(h.key), ffi::bytes(h.val)) else { continue };
            if name.eq_ignore_ascii_case(b"Content-Type") {
                b.add(b"CONTENT_TYPE", RgiStr::new(value));
            } else if name.eq_ignore_ascii_case(b"Content-Length") {
                b.add(b"CONTENT_LENGTH", RgiStr::new(value));
            } else if name.eq_ignore_ascii_case(b"Proxy") {
                // httpoxy: never let a client set HTTP_PROXY.
            } else if is_authorization(name) && !ctx.pass_authorization {
            } else if let Some(key) = header_env_name(name) {
                let key = b.copy(&key);
                b.pairs.push(RgiPair { name: key, value: RgiStr::new(value) });
            }
        }

        b.add(b"rgi.version", RgiStr::new(b"1.0"));
        b.add(b"rgi.url_scheme", RgiStr::new(if https { b"https" } else { b"http" }));
        b.add(b"rgi.multithread", flag(MULTITHREAD.load(Ordering::Relaxed)));
        b.add(b"rgi.multiprocess", flag(MULTIPROCESS.load(Ordering::Relaxed)));
        b.add(b"rgi.input_terminated", flag(true));
        b.add_copy(b"rgi.application_group", ctx.application_group);
        b.add_copy(b"rgi.process_group", ctx.process_group);
        b.add(b"rgi.request_id", RgiStr::new(ffi::request_log_id(r)));

        // SetEnv, SetEnvIf, mod_ssl's and mod_unique_id's variables; the values above win, and
        // the user only ever comes from Apache's authentication (see AUTH_ONLY).
        for e in env {
            let (Some(name), Some(value)) = (ffi::bytes(e.key), ffi::bytes(e.val)) else { continue };
            if !b.has(name) && !AUTH_ONLY.iter().any(|k| name.eq_ignore_ascii_case(k)) {
                b.pairs.push(RgiPair { name: RgiStr::new(name), value: RgiStr::new(value) });
            }
        }
        b.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_become_http_keys() {
        assert_eq!(header_env_name(b"X-Forwarded-For").as_deref(), Some(&b"HTTP_X_FORWARDED_FOR"[..]));
        assert_eq!(header_env_name(b"accept").as_deref(), Some(&b"HTTP_ACCEPT"[..]));
    }

    #[test]
    fn header_names_with_other_characters_are_dropped() {
        for bad in [&b"Remote_User"[..], b"X User", b"X.Y", b"", b"X\0Y", "Caf\u{e9}".as_bytes()] {
            assert_eq!(header_env_name(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn slashes_collapse() {
        assert_eq!(&*collapse_slashes(b"//a///b/"), b"/a/b/");
        assert_eq!(&*collapse_slashes(b"/a/b"), b"/a/b");
        assert_eq!(&*collapse_slashes(b""), b"");
    }
}
