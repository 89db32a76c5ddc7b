//! The translate_name phase: maps URIs under an `RGIScriptAlias` to the app library.
//!
//! Like mod_alias's `ScriptAlias`, the filename becomes the library followed by the rest of the
//! URI; Apache's directory walk then splits that rest off as PATH_INFO and applies `<Directory>`
//! sections for the library's directory (which must grant access, as for any script).

use std::ffi::{CStr, c_char, c_int};

use crate::config::{self, Alias, AliasMatcher};
use crate::ffi::{self, sys};

/// The handler name Apache dispatches to mod_rgi (also usable with `SetHandler`).
pub const HANDLER: &CStr = c"rgi-script";

/// What translate_name decided for a request, kept in its `request_config`.
#[derive(Clone, Copy)]
pub struct Route {
    /// The alias that matched.
    pub alias: *const Alias,
    /// The library path (with `$N` substituted for regex aliases), NUL-terminated, in the
    /// configuration or request pool.
    pub library: *const c_char,
}

impl Route {
    /// The library path.
    ///
    /// # Safety
    /// The route must belong to a live request.
    pub unsafe fn library<'a>(&self) -> &'a [u8] {
        // SAFETY: a NUL-terminated string living as long as the request.
        unsafe { ffi::bytes(self.library).unwrap_or_default() }
    }
}

/// How many bytes of `uri` an alias `prefix` matches, mod_alias's way: runs of '/' in either
/// match each other, and the match ends at a segment boundary. `None` when it does not match.
pub fn alias_match(uri: &[u8], prefix: &[u8]) -> Option<usize> {
    let (mut a, mut u) = (0, 0);
    while a < prefix.len() {
        if prefix[a] == b'/' {
            if uri.get(u) != Some(&b'/') {
                return None;
            }
            while prefix.get(a) == Some(&b'/') {
                a += 1;
            }
            while uri.get(u) == Some(&b'/') {
                u += 1;
            }
        } else {
            if uri.get(u) != Some(&prefix[a]) {
                return None;
            }
            a += 1;
            u += 1;
        }
    }
    let ends_with_slash = prefix.last() == Some(&b'/');
    if !ends_with_slash && u < uri.len() && uri[u] != b'/' {
        return None;
    }
    Some(u)
}

/// The route of a request translated by mod_rgi.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn route<'a>(r: *const sys::request_rec) -> Option<&'a Route> {
    // SAFETY: the slot is null or a Route in the request pool.
    unsafe { ffi::module_config::<Route>((*r).request_config).as_ref() }
}

/// The translate_name hook.
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe extern "C" fn translate_name(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request.
    ffi::guard(sys::DECLINED, || unsafe { translate(r) })
}

unsafe fn translate(r: *mut sys::request_rec) -> c_int {
    // SAFETY: a live request of the running configuration.
    unsafe {
        let uri = ffi::bytes((*r).uri).unwrap_or_default();
        if uri.first() != Some(&b'/') {
            return sys::DECLINED;
        }
        let server = config::server_config((*r).server);
        for alias in &server.aliases {
            let pool = (*r).pool;
            let (matched, library) = match &alias.matcher {
                AliasMatcher::Prefix(prefix) => match alias_match(uri, prefix.as_bytes()) {
                    Some(n) => (n, alias.library.as_ptr()),
                    None => continue,
                },
                AliasMatcher::Regex(regex) => {
                    let mut m = [sys::ap_regmatch_t { rm_so: -1, rm_eo: -1 }; 10];
                    if sys::ap_regexec(regex.0, (*r).uri, m.len(), m.as_mut_ptr(), 0) != 0 {
                        continue;
                    }
                    let library = sys::ap_pregsub(pool, alias.library.as_ptr(), (*r).uri, m.len(), m.as_mut_ptr());
                    if library.is_null() {
                        continue;
                    }
                    (m[0].rm_eo.max(0) as usize, library.cast_const())
                }
            };
            let rest =
                if matches!(&alias.matcher, AliasMatcher::Prefix(p) if p == "/") { uri } else { &uri[matched..] };
            (*r).filename = ffi::pstrcat(pool, ffi::bytes(library).unwrap_or_default(), rest);
            (*r).handler = HANDLER.as_ptr();
            sys::apr_table_setn((*r).notes, c"alias-forced-type".as_ptr(), HANDLER.as_ptr());
            let route = ffi::palloc_copy(pool, Route { alias, library });
            ffi::set_module_config((*r).request_config, route);
            return sys::OK;
        }
        sys::DECLINED
    }
}

#[cfg(test)]
mod tests {
    use super::alias_match;

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        assert_eq!(alias_match(b"/app", b"/app"), Some(4));
        assert_eq!(alias_match(b"/app/", b"/app"), Some(4));
        assert_eq!(alias_match(b"/app/x/y", b"/app"), Some(4));
        assert_eq!(alias_match(b"/apple", b"/app"), None);
        assert_eq!(alias_match(b"/ap", b"/app"), None);
    }

    #[test]
    fn slashes_match_any_run_of_slashes() {
        assert_eq!(alias_match(b"//app//x", b"/app"), Some(5));
        assert_eq!(alias_match(b"/a//b/c", b"/a/b"), Some(5));
    }

    #[test]
    fn root_and_trailing_slash_aliases() {
        assert_eq!(alias_match(b"/", b"/"), Some(1));
        assert_eq!(alias_match(b"/anything", b"/"), Some(1));
        assert_eq!(alias_match(b"/app/x", b"/app/"), Some(5));
        assert_eq!(alias_match(b"/app", b"/app/"), None);
    }
}
