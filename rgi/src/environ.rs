//! The environ: CGI variables and `rgi.*` keys, borrowed from the host without copying.

use std::fmt;

use crate::abi::RgiPair;

/// The request's environ, as mod_wsgi gives a WSGI app: `REQUEST_METHOD`, `SCRIPT_NAME`,
/// `PATH_INFO`, `QUERY_STRING`, `HTTP_*` headers, `REMOTE_USER`, variables from `SetEnv`, and the
/// `rgi.*` keys (`rgi.version`, `rgi.url_scheme`, `rgi.multithread`, `rgi.multiprocess`,
/// `rgi.application_group`, `rgi.process_group`, `rgi.request_id`).
///
/// Values are bytes exactly as Apache has them (a path may hold any byte); [`get`](Self::get)
/// gives them as text when they are UTF-8.
///
/// ```
/// # let env = rgi::Environ::for_tests(&[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/a")]);
/// assert_eq!(env.get("REQUEST_METHOD"), Some("GET"));
/// assert_eq!(env.get("QUERY_STRING"), None);
/// ```
#[derive(Clone, Copy)]
pub struct Environ<'r> {
    pairs: &'r [RgiPair],
}

impl<'r> Environ<'r> {
    pub(crate) fn new(pairs: &'r [RgiPair]) -> Self {
        Environ { pairs }
    }

    /// An environ over static strings, for unit tests of code that takes an `Environ`.
    ///
    /// ```
    /// let env = rgi::Environ::for_tests(&[("HTTP_HOST", "example.org")]);
    /// assert_eq!(env.header("Host"), Some("example.org"));
    /// ```
    pub fn for_tests(pairs: &[(&'static str, &'static str)]) -> Environ<'static> {
        let v: Vec<RgiPair> = pairs
            .iter()
            .map(|(k, v)| RgiPair {
                name: crate::abi::RgiStr::new(k.as_bytes()),
                value: crate::abi::RgiStr::new(v.as_bytes()),
            })
            .collect();
        Environ { pairs: Box::leak(v.into_boxed_slice()) }
    }

    /// The value of `key` as bytes.
    ///
    /// ```
    /// # let env = rgi::Environ::for_tests(&[("PATH_INFO", "/caf\u{e9}")]);
    /// assert_eq!(env.get_bytes("PATH_INFO"), Some("/caf\u{e9}".as_bytes()));
    /// ```
    pub fn get_bytes(&self, key: &str) -> Option<&'r [u8]> {
        self.iter_bytes().find(|(k, _)| *k == key.as_bytes()).map(|(_, v)| v)
    }

    /// The value of `key` as text; `None` when absent or not UTF-8.
    ///
    /// ```
    /// # let env = rgi::Environ::for_tests(&[("SERVER_PORT", "8080")]);
    /// assert_eq!(env.get("SERVER_PORT"), Some("8080"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&'r str> {
        self.get_bytes(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A request header by its HTTP name (`"Content-Type"`, `"X-Token"`), looked up as the
    /// environ key Apache made of it (`CONTENT_TYPE`, `HTTP_X_TOKEN`).
    ///
    /// ```
    /// # let env = rgi::Environ::for_tests(&[("HTTP_X_TOKEN", "t"), ("CONTENT_TYPE", "text/plain")]);
    /// assert_eq!(env.header("x-token"), Some("t"));
    /// assert_eq!(env.header("Content-Type"), Some("text/plain"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&'r str> {
        let mut key = String::with_capacity(name.len() + 5);
        if !name.eq_ignore_ascii_case("content-type") && !name.eq_ignore_ascii_case("content-length") {
            key.push_str("HTTP_");
        }
        key.extend(name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
        self.get(&key)
    }

    /// Every entry, in the host's order, as bytes.
    ///
    /// ```
    /// # let env = rgi::Environ::for_tests(&[("A", "1"), ("B", "2")]);
    /// assert_eq!(env.iter_bytes().count(), 2);
    /// ```
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&'r [u8], &'r [u8])> + 'r {
        self.pairs.iter().map(|p| {
            // SAFETY: the host guarantees the pairs' strings live as long as the environ ('r).
            unsafe { (p.name.as_bytes(), p.value.as_bytes()) }
        })
    }

    /// Every entry whose key and value are UTF-8, as text.
    ///
    /// ```
    /// # let env = rgi::Environ::for_tests(&[("A", "1")]);
    /// assert_eq!(env.iter().collect::<Vec<_>>(), vec![("A", "1")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'r str, &'r str)> + 'r {
        self.iter_bytes().filter_map(|(k, v)| Some((std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?)))
    }

    /// Number of entries.
    ///
    /// ```
    /// assert_eq!(rgi::Environ::for_tests(&[]).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no entries.
    ///
    /// ```
    /// assert!(rgi::Environ::for_tests(&[]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Debug for Environ<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter_bytes().map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))))
            .finish()
    }
}
