//! The request body of an `http` app, streamed from Apache as the app polls (or reads) it.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use crate::error::HostError;
use crate::host::RequestLink;

/// How much of the request body one read asks Apache for.
const CHUNK: usize = 32 * 1024;

/// The body of an [`http::Request`] handed to an app: the request body, read from Apache while
/// the app polls it ([`http_body::Body`]) or reads it ([`Read`]), never buffered whole.
///
/// It can also be built from bytes, so the same type serves as a response body (to echo a
/// request, return `Response::new(req.into_body())`).
///
/// Apache's input can only be read on the thread serving the request, while the app's call
/// runs. A `tower` app may still move the body to another task or thread: the SDK then fetches
/// each chunk on the request's thread for it. After the response is complete, reads fail.
///
/// ```
/// use http_body::Body as _;
///
/// let body = rgi::http::Body::from("hello");
/// assert_eq!(body.size_hint().exact(), Some(5));
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Request(RequestBody),
}

struct RequestBody {
    link: Arc<RequestLink>,
    /// Bytes still to come, when the request said (Content-Length).
    remaining: Option<u64>,
    done: bool,
    #[cfg(feature = "tower")]
    pump: Option<crate::tower::PumpClient>,
}

impl Body {
    /// An empty body.
    ///
    /// ```
    /// use http_body::Body as _;
    /// assert!(rgi::http::Body::empty().is_end_stream());
    /// ```
    pub fn empty() -> Self {
        Body { kind: Kind::Full(None) }
    }

    /// The request body of the request `link` serves; `length` from Content-Length.
    pub(crate) fn from_request(link: Arc<RequestLink>, length: Option<u64>) -> Self {
        Body {
            kind: Kind::Request(RequestBody {
                link,
                remaining: length,
                done: length == Some(0),
                #[cfg(feature = "tower")]
                pump: None,
            }),
        }
    }

    /// Lets the body be read from other threads through the request thread's pump.
    #[cfg(feature = "tower")]
    pub(crate) fn with_pump(mut self, pump: crate::tower::PumpClient) -> Self {
        if let Kind::Request(body) = &mut self.kind {
            body.pump = Some(pump);
        }
        self
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Full(bytes) => f.debug_tuple("Body").field(bytes).finish(),
            Kind::Request(body) => f.debug_struct("Body").field("remaining", &body.remaining).finish_non_exhaustive(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)) }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

impl RequestBody {
    /// Reads the next chunk from Apache on this thread (the request's).
    fn read_here(&mut self) -> io::Result<Option<Bytes>> {
        let mut buf = BytesMut::zeroed(self.chunk_len());
        let n = self.link.read_body(&mut buf)?;
        buf.truncate(n);
        Ok(self.took(buf.freeze()))
    }

    fn chunk_len(&self) -> usize {
        self.remaining.map_or(CHUNK, |r| r.clamp(1, CHUNK as u64) as usize)
    }

    /// Accounts for `n` bytes read (0: the end of the body).
    fn advance(&mut self, n: usize) {
        match &mut self.remaining {
            _ if n == 0 => self.done = true,
            Some(r) => {
                *r = r.saturating_sub(n as u64);
                self.done = *r == 0;
            }
            None => {}
        }
    }

    /// Accounts for a chunk read; `None` at the end of the body.
    fn took(&mut self, chunk: Bytes) -> Option<Bytes> {
        self.advance(chunk.len());
        (!chunk.is_empty()).then_some(chunk)
    }

    fn poll_chunk(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        if self.done {
            return Poll::Ready(Ok(None));
        }
        if self.link.reachable() {
            // On the request's thread a read blocks only this request, as in a synchronous app.
            return Poll::Ready(self.read_here());
        }
        #[cfg(feature = "tower")]
        let len = self.chunk_len();
        #[cfg(feature = "tower")]
        if let Some(pump) = &mut self.pump {
            return match pump.poll_read(_cx, len) {
                Poll::Ready(Ok(chunk)) => Poll::Ready(Ok(self.took(chunk))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
        }
        Poll::Ready(Err(HostError::OffThread.into()))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Request(body) => body.poll_chunk(cx).map(|r| r.transpose().map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Request(body) => body.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Request(RequestBody { done: true, .. }) => SizeHint::with_exact(0),
            Kind::Request(RequestBody { remaining: Some(r), .. }) => SizeHint::with_exact(*r),
            Kind::Request(_) => SizeHint::default(),
        }
    }
}

/// Reads the body synchronously, on the request's thread (in a `fn(Request) -> Response` app).
///
/// ```no_run
/// use std::io::Read;
/// fn handle(req: http::Request<rgi::http::Body>) -> http::Response<String> {
///     let mut text = String::new();
///     req.into_body().read_to_string(&mut text).unwrap();
///     http::Response::new(text)
/// }
/// ```
impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.kind {
            Kind::Full(None) => Ok(0),
            Kind::Full(Some(bytes)) => {
                let n = buf.len().min(bytes.len());
                buf[..n].copy_from_slice(&bytes.split_to(n));
                if bytes.is_empty() {
                    self.kind = Kind::Full(None);
                }
                Ok(n)
            }
            Kind::Request(body) if body.done => Ok(0),
            Kind::Request(body) => {
                let len = buf.len().min(body.chunk_len());
                let n = body.link.read_body(&mut buf[..len])?;
                body.advance(n);
                Ok(n)
            }
        }
    }
}
