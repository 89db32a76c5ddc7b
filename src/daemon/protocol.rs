//! The wire format between an Apache child and a daemon process: requests one after another on
//! a connection, each as a sequence of length-prefixed frames in each direction.
//!
//! ```text
//! frame   = kind:u8 length:u32le payload[length]
//! bytes   = length:u32le byte[length]
//! pairs   = count:u32le (name:bytes value:bytes)[count]
//! ```
//!
//! Apache child → daemon: [`ToDaemon`] — `Request` first (environ, options, which app), then
//! `BodyChunk`/`BodyError` only in answer to the daemon's `ReadBody`, so the body is pulled as the
//! app reads it, exactly as in embedded mode (Expect: 100-continue, LimitRequestBody).
//!
//! Daemon → Apache child: [`ToApache`] — `Accepted`, `Head`, `Body`, `Flush`, `File` (the open
//! file travels beside the frame as SCM_RIGHTS), `Log`, `ErrorHeader`, `ReadBody`, then `End` or
//! `Reject`.
//!
//! `End` and `Reject` close an exchange: with nothing left unread either way, the connection
//! carries the Apache child's next request (a new `Request`). Either side may close an idle
//! connection; no frame announces it.
//!
//! Decoding is strict: an unknown kind, a frame over its size limit, a field running past its
//! frame, bytes left over, or a value out of range is an error, never a guess. Nothing here does
//! I/O, so both directions are unit-tested (and fuzzable) on plain buffers.

use thiserror::Error;

/// Version of this format, carried in `Request`; a daemon refuses any other.
pub const VERSION: u16 = 1;
/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 5;
/// Largest payload of a `Body` or `BodyChunk` frame; bigger writes are split.
pub const MAX_BODY_CHUNK: usize = 1 << 20;
/// Largest payload of any other frame (a request's environ, a response head, a log line).
pub const MAX_FRAME: usize = 8 << 20;

/// `Request.flags`: the daemon answers `Accepted` as soon as it takes the request (queue-timeout).
pub const FLAG_ACK: u32 = 1;
/// `Request.flags`: the request does not count as activity for inactivity-timeout
/// (`RGIIgnoreActivity On`).
pub const FLAG_IGNORE_ACTIVITY: u32 = 2;

mod kind {
    pub const REQUEST: u8 = 1;
    pub const BODY_CHUNK: u8 = 2;
    pub const BODY_ERROR: u8 = 3;

    pub const ACCEPTED: u8 = 16;
    pub const READ_BODY: u8 = 17;
    pub const HEAD: u8 = 18;
    pub const BODY: u8 = 19;
    pub const FLUSH: u8 = 20;
    pub const FILE: u8 = 21;
    pub const LOG: u8 = 22;
    pub const ERROR_HEADER: u8 = 23;
    pub const END: u8 = 24;
    pub const REJECT: u8 = 25;
}

/// A whole frame found in a buffer: its kind, its payload and the bytes it takes.
pub type Frame<'a> = (u8, &'a [u8], usize);

/// A name/value pair borrowed from a frame.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// A list of pairs as it lies in a frame, checked whole when the frame was decoded and read
/// pair by pair only when needed: a daemon serving an app that never asks for its environ never
/// builds one.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Pairs<'a> {
    len: usize,
    /// The encoded pairs, after the count.
    bytes: &'a [u8],
}

impl<'a> Pairs<'a> {
    /// How many pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pairs, in order.
    pub fn iter(&self) -> PairsIter<'a> {
        PairsIter { left: self.len, rest: self.bytes }
    }

    /// The value of the first pair named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl std::fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The pairs of a [`Pairs`].
pub struct PairsIter<'a> {
    left: usize,
    rest: &'a [u8],
}

impl<'a> Iterator for PairsIter<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Pair<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Checked when the frame was decoded: every pair is whole.
        let (name, rest) = split_bytes(self.rest)?;
        let (value, rest) = split_bytes(rest)?;
        self.rest = rest;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PairsIter<'_> {}

/// Why a frame was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The kind byte is not one this direction uses.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The frame is bigger than its kind allows.
    #[error("frame kind {kind} of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The frame's kind.
        kind: u8,
        /// Its announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field runs past the end of its frame.
    #[error("frame kind {0} is truncated")]
    Truncated(u8),
    /// Bytes are left after the last field.
    #[error("frame kind {0} has trailing bytes")]
    Trailing(u8),
    /// A field holds a value out of its range.
    #[error("frame kind {kind}: {what}")]
    BadValue {
        /// The frame's kind.
        kind: u8,
        /// What is wrong.
        what: &'static str,
    },
}

/// What an Apache child sends first: everything the daemon needs to run the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// [`FLAG_ACK`] and [`FLAG_IGNORE_ACTIVITY`], or 0.
    pub flags: u32,
    /// When the Apache child queued the request (CLOCK_MONOTONIC, nanoseconds): the daemon drops a
    /// request that waited longer than its queue-timeout.
    pub queued_at_ns: u64,
    /// The app library.
    pub library: &'a [u8],
    /// The application group, already expanded.
    pub application_group: &'a [u8],
    /// The most verbose log level Apache writes for this request and module (`LogLevel rgi:…`).
    pub log_level: u8,
    /// The request's environ, built by the Apache child exactly as in embedded mode.
    pub environ: Pairs<'a>,
    /// The request headers as the client sent them (what the host's `request_headers` gives).
    pub headers: Pairs<'a>,
    /// The `RGIOption`s in effect.
    pub options: Pairs<'a>,
}

impl<'a> Request<'a> {
    /// The request as [`RequestParts`], for [`encode_request`].
    pub fn parts(
        &self,
    ) -> RequestParts<
        'a,
        impl ExactSizeIterator<Item = Pair<'a>> + '_,
        impl ExactSizeIterator<Item = Pair<'a>> + '_,
        impl ExactSizeIterator<Item = Pair<'a>> + '_,
    > {
        RequestParts {
            flags: self.flags,
            queued_at_ns: self.queued_at_ns,
            library: self.library,
            application_group: self.application_group,
            log_level: self.log_level,
            environ: self.environ.iter(),
            headers: self.headers.iter(),
            options: self.options.iter(),
        }
    }
}

/// Apache child → daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToDaemon<'a> {
    /// The request.
    Request(Request<'a>),
    /// Request body bytes answering `ReadBody`; empty means the end of the body.
    BodyChunk(&'a [u8]),
    /// Reading the body failed: the HTTP status Apache will answer with, or 0 if the client went away.
    BodyError(u16),
}

/// Daemon → Apache child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToApache<'a> {
    /// The daemon process `pid` has taken the request.
    Accepted {
        /// The daemon process.
        pid: u32,
    },
    /// The app wants up to `max` bytes of the request body.
    ReadBody {
        /// At most this many bytes (≤ [`MAX_BODY_CHUNK`]).
        max: u32,
    },
    /// The response status and headers, as the app gave them (the Apache child checks them).
    Head {
        /// The status.
        status: u16,
        /// The headers, in order.
        headers: Pairs<'a>,
    },
    /// Response body bytes.
    Body(&'a [u8]),
    /// Push what was sent so far to the client.
    Flush,
    /// Send part of the file passed beside this frame as the body.
    File {
        /// Where to start.
        offset: u64,
        /// How many bytes (`u64::MAX`: to the end).
        len: u64,
    },
    /// A line for the error log, against this request.
    Log {
        /// Apache log level (1..=15).
        level: u8,
        /// The message.
        message: &'a [u8],
    },
    /// A header for Apache's response, also on errors.
    ErrorHeader(Pair<'a>),
    /// The app finished; `outcome` is its [`rgi::abi::CallStatus`].
    End {
        /// The app's call status.
        outcome: i32,
    },
    /// The daemon did not run the app: answer `status`, logging `reason`.
    Reject {
        /// The HTTP status to answer.
        status: u16,
        /// Why (for the error log).
        reason: &'a [u8],
    },
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

fn put_pairs<'a>(out: &mut Vec<u8>, pairs: impl ExactSizeIterator<Item = Pair<'a>>) {
    put_u32(out, pairs.len() as u32);
    for (name, value) in pairs {
        put_bytes(out, name);
        put_bytes(out, value);
    }
}

/// Appends a frame: `kind`, then whatever `body` writes, with the length filled in after.
fn frame(out: &mut Vec<u8>, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.push(kind);
    put_u32(out, 0);
    body(out);
    let len = (out.len() - start - FRAME_HEADER) as u32;
    out[start + 1..start + FRAME_HEADER].copy_from_slice(&len.to_le_bytes());
}

/// The header of a body frame of `len` bytes, for writers that send the payload separately.
pub fn body_header(to_daemon: bool, len: usize) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    h[0] = if to_daemon { kind::BODY_CHUNK } else { kind::BODY };
    h[1..].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

impl ToDaemon<'_> {
    /// Appends this message as one frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ToDaemon::Request(r) => frame(out, kind::REQUEST, |o| {
                put_u16(o, VERSION);
                put_u32(o, r.flags);
                put_u64(o, r.queued_at_ns);
                put_bytes(o, r.library);
                put_bytes(o, r.application_group);
                o.push(r.log_level);
                put_pairs(o, r.environ.iter());
                put_pairs(o, r.headers.iter());
                put_pairs(o, r.options.iter());
            }),
            ToDaemon::BodyChunk(data) => frame(out, kind::BODY_CHUNK, |o| o.extend_from_slice(data)),
            ToDaemon::BodyError(status) => frame(out, kind::BODY_ERROR, |o| put_u16(o, *status)),
        }
    }
}

/// The parts of a `Request` frame, as iterators over the host's own arrays.
pub struct RequestParts<'a, E, H, O> {
    /// [`Request::flags`].
    pub flags: u32,
    /// [`Request::queued_at_ns`].
    pub queued_at_ns: u64,
    /// [`Request::library`].
    pub library: &'a [u8],
    /// [`Request::application_group`].
    pub application_group: &'a [u8],
    /// [`Request::log_level`].
    pub log_level: u8,
    /// [`Request::environ`].
    pub environ: E,
    /// [`Request::headers`].
    pub headers: H,
    /// [`Request::options`].
    pub options: O,
}

/// Encodes a `Request` frame straight from the host's arrays (no intermediate vectors).
pub fn encode_request<'a, E, H, O>(out: &mut Vec<u8>, parts: RequestParts<'_, E, H, O>)
where
    E: ExactSizeIterator<Item = Pair<'a>>,
    H: ExactSizeIterator<Item = Pair<'a>>,
    O: ExactSizeIterator<Item = Pair<'a>>,
{
    frame(out, kind::REQUEST, |o| {
        put_u16(o, VERSION);
        put_u32(o, parts.flags);
        put_u64(o, parts.queued_at_ns);
        put_bytes(o, parts.library);
        put_bytes(o, parts.application_group);
        o.push(parts.log_level);
        put_pairs(o, parts.environ);
        put_pairs(o, parts.headers);
        put_pairs(o, parts.options);
    });
}

/// Appends a [`ToApache::Head`] frame straight from the app's headers, with no list built first
/// (the daemon's hot path).
pub fn encode_head<'a>(out: &mut Vec<u8>, status: u16, headers: impl ExactSizeIterator<Item = Pair<'a>>) {
    frame(out, kind::HEAD, |o| {
        put_u16(o, status);
        put_pairs(o, headers);
    });
}

impl ToApache<'_> {
    /// Appends this message as one frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ToApache::Accepted { pid } => frame(out, kind::ACCEPTED, |o| put_u32(o, *pid)),
            ToApache::ReadBody { max } => frame(out, kind::READ_BODY, |o| put_u32(o, *max)),
            ToApache::Head { status, headers } => encode_head(out, *status, headers.iter()),
            ToApache::Body(data) => frame(out, kind::BODY, |o| o.extend_from_slice(data)),
            ToApache::Flush => frame(out, kind::FLUSH, |_| {}),
            ToApache::File { offset, len } => frame(out, kind::FILE, |o| {
                put_u64(o, *offset);
                put_u64(o, *len);
            }),
            ToApache::Log { level, message } => frame(out, kind::LOG, |o| {
                o.push(*level);
                o.extend_from_slice(message);
            }),
            ToApache::ErrorHeader((name, value)) => frame(out, kind::ERROR_HEADER, |o| {
                put_bytes(o, name);
                put_bytes(o, value);
            }),
            ToApache::End { outcome } => frame(out, kind::END, |o| o.extend_from_slice(&outcome.to_le_bytes())),
            ToApache::Reject { status, reason } => frame(out, kind::REJECT, |o| {
                put_u16(o, *status);
                o.extend_from_slice(reason);
            }),
        }
    }
}

/// Splits a length-prefixed byte string off the front of `b`.
fn split_bytes(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    rest.split_at_checked(u32::from_le_bytes(*len) as usize)
}

/// Reads fields off a frame's payload, failing on anything that does not fit.
struct Fields<'a> {
    kind: u8,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.rest.len() < n {
            return Err(ProtocolError::Truncated(self.kind));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// Checks a list of pairs whole, without building it.
    fn pairs(&mut self) -> Result<Pairs<'a>, ProtocolError> {
        let len = self.u32()? as usize;
        let start = self.rest;
        let mut rest = start;
        for _ in 0..len {
            let (_, after) = split_bytes(rest).ok_or(ProtocolError::Truncated(self.kind))?;
            let (_, after) = split_bytes(after).ok_or(ProtocolError::Truncated(self.kind))?;
            rest = after;
        }
        self.rest = rest;
        Ok(Pairs { len, bytes: &start[..start.len() - rest.len()] })
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn end(self) -> Result<(), ProtocolError> {
        if self.rest.is_empty() { Ok(()) } else { Err(ProtocolError::Trailing(self.kind)) }
    }
}

/// Splits the first whole frame off `buf`: `Ok(None)` when more bytes are needed, else the kind,
/// the payload and the bytes used. Sizes are checked from the header, before the payload arrives.
pub fn split_frame(buf: &[u8]) -> Result<Option<Frame<'_>>, ProtocolError> {
    if buf.len() < FRAME_HEADER {
        return Ok(None);
    }
    let kind = buf[0];
    let len = u32::from_le_bytes(buf[1..FRAME_HEADER].try_into().expect("4 bytes")) as usize;
    let max = match kind {
        kind::BODY | kind::BODY_CHUNK => MAX_BODY_CHUNK,
        kind::REQUEST..=kind::BODY_ERROR | kind::ACCEPTED..=kind::REJECT => MAX_FRAME,
        other => return Err(ProtocolError::UnknownKind(other)),
    };
    if len > max {
        return Err(ProtocolError::TooLarge { kind, len, max });
    }
    if buf.len() < FRAME_HEADER + len {
        return Ok(None);
    }
    Ok(Some((kind, &buf[FRAME_HEADER..FRAME_HEADER + len], FRAME_HEADER + len)))
}

/// The frame size `split_frame` needs to see a whole frame starting at `buf` (at least the header).
pub fn needed(buf: &[u8]) -> usize {
    if buf.len() < FRAME_HEADER {
        return FRAME_HEADER;
    }
    FRAME_HEADER + u32::from_le_bytes(buf[1..FRAME_HEADER].try_into().expect("4 bytes")) as usize
}

impl<'a> ToDaemon<'a> {
    /// Decodes one frame's payload sent to a daemon.
    pub fn decode(kind: u8, payload: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut f = Fields { kind, rest: payload };
        let msg = match kind {
            kind::REQUEST => {
                if f.u16()? != VERSION {
                    return Err(ProtocolError::BadValue { kind, what: "protocol version differs" });
                }
                ToDaemon::Request(Request {
                    flags: f.u32()?,
                    queued_at_ns: f.u64()?,
                    library: f.bytes()?,
                    application_group: f.bytes()?,
                    log_level: f.u8()?,
                    environ: f.pairs()?,
                    headers: f.pairs()?,
                    options: f.pairs()?,
                })
            }
            kind::BODY_CHUNK => ToDaemon::BodyChunk(f.rest()),
            kind::BODY_ERROR => ToDaemon::BodyError(f.u16()?),
            other => return Err(ProtocolError::UnknownKind(other)),
        };
        f.end()?;
        Ok(msg)
    }
}

impl<'a> ToApache<'a> {
    /// Decodes one frame's payload sent to an Apache child.
    pub fn decode(kind: u8, payload: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut f = Fields { kind, rest: payload };
        let msg = match kind {
            kind::ACCEPTED => ToApache::Accepted { pid: f.u32()? },
            kind::READ_BODY => {
                let max = f.u32()?;
                if max == 0 || max as usize > MAX_BODY_CHUNK {
                    return Err(ProtocolError::BadValue { kind, what: "read size out of range" });
                }
                ToApache::ReadBody { max }
            }
            kind::HEAD => ToApache::Head { status: f.u16()?, headers: f.pairs()? },
            kind::BODY => ToApache::Body(f.rest()),
            kind::FLUSH => ToApache::Flush,
            kind::FILE => ToApache::File { offset: f.u64()?, len: f.u64()? },
            kind::LOG => {
                let level = f.u8()?;
                if !(1..=15).contains(&level) {
                    return Err(ProtocolError::BadValue { kind, what: "log level out of range" });
                }
                ToApache::Log { level, message: f.rest() }
            }
            kind::ERROR_HEADER => ToApache::ErrorHeader((f.bytes()?, f.bytes()?)),
            kind::END => ToApache::End { outcome: i32::from_le_bytes(f.take(4)?.try_into().expect("4 bytes")) },
            kind::REJECT => {
                let status = f.u16()?;
                if !(400..=599).contains(&status) {
                    return Err(ProtocolError::BadValue { kind, what: "reject status out of range" });
                }
                ToApache::Reject { status, reason: f.rest() }
            }
            other => return Err(ProtocolError::UnknownKind(other)),
        };
        f.end()?;
        Ok(msg)
    }
}

/// Now on CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|now| (now.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(now.tv_nsec() as u64))
        .unwrap_or_default()
}

/// `list` as a [`Pairs`] (encoded into a buffer that lives for the test run).
#[cfg(test)]
pub fn pairs(list: &[Pair<'_>]) -> Pairs<'static> {
    let mut bytes = Vec::new();
    put_pairs(&mut bytes, list.iter().copied());
    let bytes: &'static [u8] = Vec::leak(bytes);
    Fields { kind: kind::HEAD, rest: bytes }.pairs().expect("well formed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_read_back_in_order() {
        let list = [(&b"A"[..], &b"1"[..]), (b"", b""), (b"A", b"2"), (b"B\0", b"\xff")];
        let p = pairs(&list);
        assert_eq!(p.len(), 4);
        assert_eq!(p.iter().len(), 4);
        assert_eq!(p.iter().collect::<Vec<_>>(), list);
        assert_eq!(p.get(b"A"), Some(&b"1"[..]));
        assert_eq!(p.get(b"C"), None);
        assert!(pairs(&[]).is_empty());
        assert_eq!(format!("{:?}", pairs(&[(b"k", b"v")])), "[([107], [118])]");
    }

    fn roundtrip_daemon(msg: ToDaemon<'_>) {
        let mut buf = Vec::new();
        msg.encode(&mut buf);
        let (kind, payload, used) = split_frame(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(needed(&buf), buf.len());
        assert_eq!(ToDaemon::decode(kind, payload).unwrap(), msg);
    }

    fn roundtrip_apache(msg: ToApache<'_>) {
        let mut buf = Vec::new();
        msg.encode(&mut buf);
        let (kind, payload, used) = split_frame(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(ToApache::decode(kind, payload).unwrap(), msg);
    }

    fn request() -> Request<'static> {
        let environ = [(&b"REQUEST_METHOD"[..], &b"GET"[..]), (b"HTTP_X", b"\xff\x00\r\n")];
        Request {
            flags: FLAG_ACK,
            queued_at_ns: 123_456_789,
            library: b"/srv/app/libapp.so",
            application_group: b"",
            log_level: 7,
            environ: pairs(&environ),
            headers: pairs(&[(b"X", b"\xff\x00\r\n")]),
            options: pairs(&[(b"opt", b"")]),
        }
    }

    #[test]
    fn messages_to_the_daemon_roundtrip() {
        roundtrip_daemon(ToDaemon::Request(request()));
        roundtrip_daemon(ToDaemon::BodyChunk(b"some body"));
        roundtrip_daemon(ToDaemon::BodyChunk(b""));
        roundtrip_daemon(ToDaemon::BodyError(413));
    }

    #[test]
    fn messages_to_apache_roundtrip() {
        roundtrip_apache(ToApache::Accepted { pid: 4242 });
        roundtrip_apache(ToApache::ReadBody { max: 65536 });
        roundtrip_apache(ToApache::Head { status: 200, headers: pairs(&[(b"Content-Type", b"text/plain")]) });
        roundtrip_apache(ToApache::Head { status: 204, headers: pairs(&[]) });
        roundtrip_apache(ToApache::Body(b"\x00binary\xff"));
        roundtrip_apache(ToApache::Flush);
        roundtrip_apache(ToApache::File { offset: 10, len: u64::MAX });
        roundtrip_apache(ToApache::Log { level: 3, message: b"oops" });
        roundtrip_apache(ToApache::ErrorHeader((b"WWW-Authenticate", b"Basic")));
        roundtrip_apache(ToApache::End { outcome: -7 });
        roundtrip_apache(ToApache::Reject { status: 504, reason: b"queue-timeout" });
    }

    #[test]
    fn encode_request_matches_the_message_encoding() {
        let r = request();
        let mut a = Vec::new();
        ToDaemon::Request(r.clone()).encode(&mut a);
        let mut b = Vec::new();
        encode_request(&mut b, r.parts());
        assert_eq!(a, b);
        let mut c = body_header(false, 3).to_vec();
        c.extend_from_slice(b"abc");
        let mut d = Vec::new();
        ToApache::Body(b"abc").encode(&mut d);
        assert_eq!(c, d);
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let mut buf = Vec::new();
        ToApache::Body(b"hello").encode(&mut buf);
        for n in 0..buf.len() {
            assert_eq!(split_frame(&buf[..n]).unwrap(), None, "{n} bytes");
        }
        // Two frames in one buffer come out one at a time.
        ToApache::Flush.encode(&mut buf);
        let (_, _, used) = split_frame(&buf).unwrap().unwrap();
        let (kind, payload, _) = split_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!(ToApache::decode(kind, payload).unwrap(), ToApache::Flush);
    }

    #[test]
    fn oversized_and_unknown_frames_are_refused_from_the_header() {
        let mut huge = vec![kind::BODY];
        huge.extend_from_slice(&((MAX_BODY_CHUNK + 1) as u32).to_le_bytes());
        assert!(matches!(split_frame(&huge), Err(ProtocolError::TooLarge { .. })));
        let mut huge = vec![kind::HEAD];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(split_frame(&huge), Err(ProtocolError::TooLarge { .. })));
        assert_eq!(split_frame(&[0, 0, 0, 0, 0]), Err(ProtocolError::UnknownKind(0)));
        assert_eq!(split_frame(&[200, 0, 0, 0, 0]), Err(ProtocolError::UnknownKind(200)));
    }

    #[test]
    fn kinds_belong_to_one_direction() {
        assert_eq!(ToApache::decode(kind::REQUEST, b""), Err(ProtocolError::UnknownKind(kind::REQUEST)));
        assert_eq!(ToDaemon::decode(kind::HEAD, b""), Err(ProtocolError::UnknownKind(kind::HEAD)));
    }

    #[test]
    fn truncated_trailing_and_bad_values_are_errors() {
        let mut buf = Vec::new();
        ToApache::Head { status: 200, headers: pairs(&[(b"A", b"b")]) }.encode(&mut buf);
        let payload = &buf[FRAME_HEADER..];
        for cut in 0..payload.len() {
            assert!(ToApache::decode(kind::HEAD, &payload[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = payload.to_vec();
        long.push(0);
        assert_eq!(ToApache::decode(kind::HEAD, &long), Err(ProtocolError::Trailing(kind::HEAD)));
        // A pair count that the payload cannot hold is refused before allocating.
        let mut lying = 200u16.to_le_bytes().to_vec();
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ToApache::decode(kind::HEAD, &lying), Err(ProtocolError::Truncated(kind::HEAD)));
        assert!(ToApache::decode(kind::READ_BODY, &0u32.to_le_bytes()).is_err());
        assert!(ToApache::decode(kind::LOG, &[0, b'x']).is_err());
        assert!(ToApache::decode(kind::REJECT, &200u16.to_le_bytes()).is_err());
        assert!(ToApache::decode(kind::FLUSH, b"x").is_err());
        let mut wrong_version = Vec::new();
        ToDaemon::Request(request()).encode(&mut wrong_version);
        wrong_version[FRAME_HEADER] = 99;
        assert!(matches!(
            ToDaemon::decode(kind::REQUEST, &wrong_version[FRAME_HEADER..]),
            Err(ProtocolError::BadValue { .. })
        ));
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
