//! Sending an `http::Response<B>` through Apache: the head, then each body frame as it comes.

use std::future::poll_fn;
use std::io;
use std::pin::pin;
use std::task::Poll;

use bytes::Buf;
use http::header::CONTENT_LENGTH;
use http_body::Body as HttpBody;

use crate::abi::RgiPair;
use crate::error::Error;
use crate::host::{Host, RequestLink};
use crate::response::format_u64;

/// What the body gave next.
enum Next<D> {
    Data(D),
    Other,
    End,
}

/// Sends `response`. Body frames are written as they come; whenever the body has nothing ready
/// (it would wait), what was written is flushed to the client first, so a streamed response
/// reaches the client as it is produced while a body that is all ready goes out in one write.
/// Trailers are dropped (Apache does not send them). Content-Length is set from the body's exact
/// size when the app did not set one.
pub(crate) async fn send<B>(host: Host<'_>, link: &RequestLink, response: http::Response<B>) -> Result<(), Error>
where
    B: HttpBody,
    B::Error: Into<Error>,
{
    let (parts, body) = response.into_parts();
    let mut body = pin!(body);
    let mut digits = [0u8; 20];
    let length = match body.size_hint().exact() {
        Some(n) if !parts.headers.contains_key(CONTENT_LENGTH) => Some(format_u64(n, &mut digits)),
        _ => None,
    };
    let mut head: Vec<RgiPair> = Vec::with_capacity(parts.headers.len() + 1);
    head.extend(parts.headers.iter().map(|(n, v)| RgiPair::new(n.as_str().as_bytes(), v.as_bytes())));
    head.extend(length.map(|l| RgiPair::new(b"Content-Length", l)));
    host.start_response(parts.status.as_u16(), &head).map_err(io::Error::from)?;

    loop {
        let next = poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Pending => match link.flush() {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(io::Error::from(e).into())),
            },
            Poll::Ready(None) => Poll::Ready(Ok(Next::End)),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e.into())),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Ok(frame.into_data().map_or(Next::Other, Next::Data))),
        })
        .await?;
        match next {
            Next::Data(mut data) => {
                while data.has_remaining() {
                    let chunk = data.chunk();
                    link.write_body(chunk).map_err(io::Error::from)?;
                    let n = chunk.len();
                    data.advance(n);
                }
            }
            Next::Other => {}
            Next::End => return Ok(()),
        }
    }
}
