//! The environ of an `http` app's request, owned so it can live in the request's extensions.

use std::sync::Arc;

use crate::abi::{RgiPair, RgiStr};

/// The request's environ (CGI variables and `rgi.*` keys, see [`crate::Environ`]), copied out of
/// Apache into the request's extensions, so an `http` or `tower` app reaches everything a plain
/// RGI app sees: `REMOTE_ADDR`, `REMOTE_USER`, `SCRIPT_NAME`, `rgi.request_id`, `SetEnv`
/// variables, mod_ssl's variables…
///
/// ```
/// fn handle(req: http::Request<rgi::http::Body>) -> http::Response<String> {
///     let env = req.extensions().get::<rgi::http::Environ>().expect("served by mod_rgi");
///     http::Response::new(format!("Hello, {}!", env.get("REMOTE_USER").unwrap_or("stranger")))
/// }
/// ```
///
/// In axum, take it with `Extension<rgi::http::Environ>`.
#[derive(Clone)]
pub struct Environ(Arc<Owned>);

/// The bytes of every entry, and pairs pointing into them.
struct Owned {
    _bytes: Box<[u8]>,
    pairs: Box<[RgiPair]>,
}

// SAFETY: the pairs point into `_bytes`, which this value owns and never changes or moves (a
// boxed slice); sharing them between threads is sharing immutable bytes.
unsafe impl Send for Owned {}
// SAFETY: as above.
unsafe impl Sync for Owned {}

impl Environ {
    /// Copies `env`.
    ///
    /// ```
    /// let env = rgi::http::Environ::copy(&rgi::Environ::for_tests(&[("PATH_INFO", "/a")]));
    /// assert_eq!(env.get("PATH_INFO"), Some("/a"));
    /// ```
    pub fn copy(env: &crate::Environ<'_>) -> Self {
        let mut bytes = Vec::with_capacity(env.iter_bytes().map(|(k, v)| k.len() + v.len()).sum());
        let mut spans = Vec::with_capacity(env.len());
        for (k, v) in env.iter_bytes() {
            let start = bytes.len();
            bytes.extend_from_slice(k);
            bytes.extend_from_slice(v);
            spans.push((start, k.len(), v.len()));
        }
        let bytes = bytes.into_boxed_slice();
        let pairs = spans
            .into_iter()
            .map(|(start, k, v)| RgiPair {
                name: RgiStr::new(&bytes[start..start + k]),
                value: RgiStr::new(&bytes[start + k..start + k + v]),
            })
            .collect();
        Environ(Arc::new(Owned { _bytes: bytes, pairs }))
    }

    /// The environ, with all of [`crate::Environ`]'s lookups.
    ///
    /// ```
    /// # let env = rgi::http::Environ::copy(&rgi::Environ::for_tests(&[("HTTP_X_TOKEN", "t")]));
    /// assert_eq!(env.view().header("X-Token"), Some("t"));
    /// ```
    pub fn view(&self) -> crate::Environ<'_> {
        crate::Environ::new(&self.0.pairs)
    }

    /// The value of `key` as text; `None` when absent or not UTF-8.
    ///
    /// ```
    /// # let env = rgi::http::Environ::copy(&rgi::Environ::for_tests(&[("REMOTE_ADDR", "10.0.0.1")]));
    /// assert_eq!(env.get("REMOTE_ADDR"), Some("10.0.0.1"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.view().get(key)
    }

    /// The value of `key` as bytes.
    ///
    /// ```
    /// # let env = rgi::http::Environ::copy(&rgi::Environ::for_tests(&[("PATH_INFO", "/x")]));
    /// assert_eq!(env.get_bytes("PATH_INFO"), Some(&b"/x"[..]));
    /// ```
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.view().get_bytes(key)
    }
}

impl std::fmt::Debug for Environ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.view().fmt(f)
    }
}
