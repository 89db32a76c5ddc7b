//! The request an app receives: environ, streamed input, error stream and options.

use std::cell::OnceCell;
use std::io::{self, Read, Write};

use crate::abi::level;
use crate::environ::Environ;
use crate::host::Host;

/// One HTTP request, as Apache hands it to an app.
///
/// The environ is built lazily by Apache the first time it is asked for, so an app that does not
/// look at it pays nothing for it.
///
/// ```no_run
/// fn describe(req: &rgi::Request<'_>) -> String {
///     format!("{} {}", req.method(), req.path_info())
/// }
/// ```
pub struct Request<'r> {
    host: Host<'r>,
    environ: OnceCell<Environ<'r>>,
    input: Input<'r>,
}

impl<'r> Request<'r> {
    pub(crate) fn new(host: Host<'r>) -> Self {
        Request { host, environ: OnceCell::new(), input: Input { host, eof: false } }
    }

    /// The host's handle for this request.
    #[cfg_attr(not(feature = "sessions"), allow(dead_code))]
    pub(crate) fn host(&self) -> Host<'r> {
        self.host
    }

    /// The environ (CGI variables and `rgi.*` keys).
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let method = req.environ().get("REQUEST_METHOD");
    /// # }
    /// ```
    pub fn environ(&self) -> &Environ<'r> {
        self.environ.get_or_init(|| Environ::new(self.host.environ()))
    }

    /// `REQUEST_METHOD`.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// if req.method() == "POST" { /* ... */ }
    /// # }
    /// ```
    pub fn method(&self) -> &'r str {
        self.environ().get("REQUEST_METHOD").unwrap_or("GET")
    }

    /// `PATH_INFO`: the path below the app's mount point, %-decoded.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let route = req.path_info();
    /// # }
    /// ```
    pub fn path_info(&self) -> &'r str {
        self.environ().get("PATH_INFO").unwrap_or("")
    }

    /// `QUERY_STRING`, still %-encoded.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let q = req.query_string();
    /// # }
    /// ```
    pub fn query_string(&self) -> &'r str {
        self.environ().get("QUERY_STRING").unwrap_or("")
    }

    /// The first value of query parameter `name`, %-decoded.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let n: usize = req.query_param("n").and_then(|v| v.parse().ok()).unwrap_or(5);
    /// # }
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query_string().as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// A request header by its HTTP name.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let agent = req.header("User-Agent");
    /// # }
    /// ```
    pub fn header(&self, name: &str) -> Option<&'r str> {
        self.environ().header(name)
    }

    /// The `RGIOption NAME VALUE` in effect for this request.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let root = req.option("download.file");
    /// # }
    /// ```
    pub fn option(&self, name: &str) -> Option<&'r str> {
        self.host.option(name)
    }

    /// The request body, streamed as it arrives ([`Read`]).
    ///
    /// ```no_run
    /// # fn f(req: &mut rgi::Request<'_>) -> std::io::Result<()> {
    /// use std::io::Read;
    /// let mut body = Vec::new();
    /// req.input().read_to_end(&mut body)?;
    /// # Ok(()) }
    /// ```
    pub fn input(&mut self) -> &mut Input<'r> {
        &mut self.input
    }

    /// Takes the body reader out of the request, to move it into a streamed response body.
    ///
    /// ```no_run
    /// # fn f(mut req: rgi::Request<'_>) -> rgi::Response<'_> {
    /// let mut input = req.take_input();
    /// rgi::Response::ok().with_body(rgi::Body::writer(move |out| std::io::copy(&mut input, out).map(drop)))
    /// # }
    /// ```
    pub fn take_input(&mut self) -> Input<'r> {
        std::mem::replace(&mut self.input, Input { host: self.host, eof: true })
    }

    /// The error stream: each line written lands in Apache's error log, tagged with this request.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// use std::io::Write;
    /// writeln!(req.errors(), "cache miss").ok();
    /// # }
    /// ```
    pub fn errors(&self) -> Errors<'r> {
        Errors { host: self.host, line: Vec::new() }
    }

    /// Logs `msg` to Apache's error log at warning level, tagged with this request.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// req.log_warn("slow backend");
    /// # }
    /// ```
    pub fn log_warn(&self, msg: &str) {
        self.host.log(level::WARN, msg);
    }
}

/// The request body as a [`Read`]er. Reads block until data arrives and return 0 at the end.
/// A chunked body arrives de-chunked. If Apache rejects the body (too large for
/// `LimitRequestBody`, bad framing, too slow) the read fails and Apache answers with that error.
///
/// ```no_run
/// use std::io::Read;
/// fn body_len(req: &mut rgi::Request<'_>) -> std::io::Result<usize> {
///     let mut body = Vec::new();
///     req.input().read_to_end(&mut body)
/// }
/// ```
pub struct Input<'r> {
    host: Host<'r>,
    eof: bool,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.eof || buf.is_empty() {
            return Ok(0);
        }
        let n = self.host.read_body(buf)?;
        self.eof = n == 0;
        Ok(n)
    }
}

/// Writes to Apache's error log, one log entry per line (like WSGI's `wsgi.errors`).
///
/// ```no_run
/// use std::io::Write;
/// fn note(req: &rgi::Request<'_>) {
///     writeln!(req.errors(), "cache miss for {}", req.path_info()).ok();
/// }
/// ```
pub struct Errors<'r> {
    host: Host<'r>,
    line: Vec<u8>,
}

impl Errors<'_> {
    fn emit(&mut self) {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            self.host.log(level::ERROR, text.trim_end_matches('\n'));
            self.line.clear();
        }
    }
}

impl Write for Errors<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for part in buf.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(part);
            if part.ends_with(b"\n") {
                self.emit();
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit();
        Ok(())
    }
}

impl Drop for Errors<'_> {
    fn drop(&mut self) {
        self.emit();
    }
}
