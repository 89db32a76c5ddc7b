//! The response an app returns: status, headers and a body that is bytes, streamed chunks, a
//! writer or a file.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

use crate::abi::RgiPair;
use crate::error::HostError;
use crate::host::Host;

/// A header name or value: borrowed when static, owned otherwise (no allocation for constants).
///
/// ```
/// let fixed: rgi::HeaderText = "no-store".into();
/// let built: rgi::HeaderText = format!("max-age={}", 60).into();
/// assert!(matches!(fixed, std::borrow::Cow::Borrowed(_)) && matches!(built, std::borrow::Cow::Owned(_)));
/// ```
pub type HeaderText = Cow<'static, str>;

/// An HTTP response.
///
/// Apache validates what it sends: a status outside 200..=599 or a header name or value holding
/// CR, LF or NUL makes the request a 500 (logged) and nothing of it reaches the client. A body
/// longer than the app's own `Content-Length` is cut at that length (logged).
///
/// ```
/// let resp = rgi::Response::text("Hello, World!").with_header("Cache-Control", "no-store");
/// assert_eq!(resp.status(), 200);
/// ```
pub struct Response<'r> {
    status: u16,
    headers: Vec<(HeaderText, HeaderText)>,
    body: Body<'r>,
}

/// The function behind [`Body::Writer`].
///
/// ```
/// use std::io::Write;
/// let write: rgi::WriteBody<'static> = Box::new(|out| out.write_all(b"hello"));
/// let body = rgi::Body::Writer(write);
/// # let _ = body;
/// ```
pub type WriteBody<'r> = Box<dyn FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + 'r>;

/// A response body.
///
/// ```
/// let body: rgi::Body<'_> = "Hello, World!".into();
/// assert!(matches!(body, rgi::Body::Bytes(_)));
/// ```
pub enum Body<'r> {
    /// No body.
    Empty,
    /// The whole body at once (Content-Length is set for you).
    Bytes(Cow<'static, [u8]>),
    /// Chunks sent as they are produced, each flushed to the client before the next is asked for
    /// (WSGI's iterable). An error ends the response early (the client sees a truncated body).
    Chunks(Box<dyn Iterator<Item = io::Result<Vec<u8>>> + 'r>),
    /// A function writing the body; it can flush between writes. An error ends the response
    /// early, as with `Chunks`.
    Writer(WriteBody<'r>),
    /// A file (or part of one), sent by Apache with sendfile; Content-Length, Last-Modified and
    /// ETag come from the file unless set by the app; Range and conditional requests are handled
    /// by Apache.
    File {
        /// The open file.
        file: File,
        /// First byte to send.
        offset: u64,
        /// Number of bytes, or `None` for "to the end".
        len: Option<u64>,
    },
}

impl<'r> Body<'r> {
    /// A body of chunks from an iterator.
    ///
    /// ```
    /// let body = rgi::Body::chunks((0..3).map(|i| Ok(format!("chunk {i}\n").into_bytes())));
    /// # let _ = body;
    /// ```
    pub fn chunks<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = io::Result<Vec<u8>>>,
        I::IntoIter: 'r,
    {
        Body::Chunks(Box::new(iter.into_iter()))
    }

    /// A body produced by a writer function.
    ///
    /// ```
    /// use std::io::Write;
    /// let body = rgi::Body::writer(|out| {
    ///     out.write_all(b"first\n")?;
    ///     out.flush()?;
    ///     out.write_all(b"second\n")
    /// });
    /// # let _ = body;
    /// ```
    pub fn writer(f: impl FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + 'r) -> Self {
        Body::Writer(Box::new(f))
    }

    /// A whole file.
    ///
    /// ```no_run
    /// let body = rgi::Body::file(std::fs::File::open("/etc/hostname")?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file(file: File) -> Self {
        Body::File { file, offset: 0, len: None }
    }
}

impl From<Vec<u8>> for Body<'_> {
    fn from(v: Vec<u8>) -> Self {
        Body::Bytes(Cow::Owned(v))
    }
}

impl From<String> for Body<'_> {
    fn from(s: String) -> Self {
        Body::Bytes(Cow::Owned(s.into_bytes()))
    }
}

impl From<&'static str> for Body<'_> {
    fn from(s: &'static str) -> Self {
        Body::Bytes(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body<'_> {
    fn from(s: &'static [u8]) -> Self {
        Body::Bytes(Cow::Borrowed(s))
    }
}

impl<'r> Response<'r> {
    /// A response with `status`, no headers and no body.
    ///
    /// ```
    /// assert_eq!(rgi::Response::new(204).status(), 204);
    /// ```
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Body::Empty }
    }

    /// `200 OK` with no body yet.
    ///
    /// ```
    /// assert_eq!(rgi::Response::ok().status(), 200);
    /// ```
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    ///
    /// ```
    /// let r = rgi::Response::text("hi");
    /// assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn text(body: impl Into<Body<'r>>) -> Self {
        Self::ok().with_header("Content-Type", "text/plain; charset=utf-8").with_body(body)
    }

    /// `200 OK` with a `text/html; charset=utf-8` body.
    ///
    /// ```
    /// let r = rgi::Response::html("<p>hi</p>");
    /// assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    /// ```
    pub fn html(body: impl Into<Body<'r>>) -> Self {
        Self::ok().with_header("Content-Type", "text/html; charset=utf-8").with_body(body)
    }

    /// A redirect (`303 See Other` unless another 3xx status is set later) to `location`.
    ///
    /// ```
    /// let r = rgi::Response::redirect("/login");
    /// assert_eq!((r.status(), r.header("Location")), (303, Some("/login")));
    /// ```
    pub fn redirect(location: impl Into<HeaderText>) -> Self {
        Self::new(303).with_header("Location", location)
    }

    /// Sets the status.
    ///
    /// ```
    /// assert_eq!(rgi::Response::text("gone").with_status(410).status(), 410);
    /// ```
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header (repeat a name to send it several times, e.g. `Set-Cookie`).
    /// Names and values are checked by Apache when the response is sent.
    ///
    /// ```
    /// let r = rgi::Response::ok().with_header("X-One", "1");
    /// assert_eq!(r.header("x-one"), Some("1"));
    /// ```
    pub fn with_header(mut self, name: impl Into<HeaderText>, value: impl Into<HeaderText>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// let r = rgi::Response::ok().with_body("done");
    /// # let _ = r;
    /// ```
    pub fn with_body(mut self, body: impl Into<Body<'r>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    ///
    /// ```
    /// assert_eq!(rgi::Response::new(404).status(), 404);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (case-insensitive).
    ///
    /// ```
    /// assert_eq!(rgi::Response::ok().header("Location"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }

    /// All headers, in order.
    ///
    /// ```
    /// assert_eq!(rgi::Response::text("x").headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &[(HeaderText, HeaderText)] {
        &self.headers
    }

    /// The body.
    ///
    /// ```
    /// assert!(matches!(rgi::Response::ok().body(), rgi::Body::Empty));
    /// ```
    pub fn body(&self) -> &Body<'r> {
        &self.body
    }

    /// Sends the response through the host.
    pub(crate) fn send(self, host: Host<'_>) -> io::Result<()> {
        let Response { status, headers, body } = self;
        let has_length = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        match body {
            Body::Empty => start(host, status, &headers, None).map_err(Into::into),
            Body::Bytes(bytes) => {
                let length = (!has_length).then_some(bytes.len() as u64);
                start(host, status, &headers, length)?;
                host.write_body(&bytes).map_err(Into::into)
            }
            Body::Chunks(chunks) => {
                start(host, status, &headers, None)?;
                for chunk in chunks {
                    let chunk = chunk?;
                    if !chunk.is_empty() {
                        host.write_body(&chunk)?;
                        host.flush()?;
                    }
                }
                Ok(())
            }
            Body::Writer(write) => {
                start(host, status, &headers, None)?;
                let mut out = BodyWriter { host };
                write(&mut out)
            }
            Body::File { file, offset, len } => {
                start(host, status, &headers, None)?;
                host.send_file(file.as_raw_fd(), offset, len.unwrap_or(u64::MAX)).map_err(Into::into)
            }
        }
    }
}

/// Passes the head to the host; `content_length` is added unless the app set one. Pairs are
/// built on the stack for up to 16 headers (every response passes here).
fn start(
    host: Host<'_>,
    status: u16,
    headers: &[(HeaderText, HeaderText)],
    content_length: Option<u64>,
) -> Result<(), HostError> {
    const INLINE: usize = 16;
    let mut digits = [0u8; 20];
    let length = content_length.map(|n| format_u64(n, &mut digits));
    let extra = usize::from(length.is_some());
    let pair = |(n, v): &(HeaderText, HeaderText)| RgiPair::new(n.as_bytes(), v.as_bytes());
    if headers.len() + extra <= INLINE {
        let mut pairs = [RgiPair::EMPTY; INLINE];
        for (slot, header) in pairs.iter_mut().zip(headers) {
            *slot = pair(header);
        }
        if let Some(length) = length {
            pairs[headers.len()] = RgiPair::new(b"Content-Length", length);
        }
        host.start_response(status, &pairs[..headers.len() + extra])
    } else {
        let mut pairs: Vec<RgiPair> = headers.iter().map(pair).collect();
        pairs.extend(length.map(|l| RgiPair::new(b"Content-Length", l)));
        host.start_response(status, &pairs)
    }
}

/// Writes `n` in decimal into `buf`, returning the digits.
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Writes a streamed body to the client. `flush` pushes what was written so far out of Apache.
/// Writes fail with [`io::ErrorKind::ConnectionAborted`] once the client has gone.
///
/// ```
/// use std::io::Write;
/// let body = rgi::Body::writer(|out: &mut rgi::BodyWriter<'_>| {
///     out.write_all(b"partial")?;
///     out.flush()
/// });
/// # let _ = body;
/// ```
pub struct BodyWriter<'h> {
    host: Host<'h>,
}

impl Write for BodyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.host.write_body(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.host.write_body(buf).map_err(Into::into)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.host.flush().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_formatting() {
        let mut buf = [0u8; 20];
        assert_eq!(super::format_u64(0, &mut buf), b"0");
        assert_eq!(super::format_u64(13, &mut buf), b"13");
        assert_eq!(super::format_u64(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
    }
}
