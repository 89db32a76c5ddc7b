//! A small HTTP/1.1 client over raw sockets, so tests control every byte they send.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A parsed response.
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether a chunked body ended with its last chunk, or a sized body was complete.
    pub complete: bool,
    /// Everything received.
    pub raw: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let shown: String = body.chars().take(300).collect();
        write!(
            f,
            "{} {} {:?} complete={} body({} bytes)={shown:?}",
            self.status,
            self.reason,
            self.headers,
            self.complete,
            self.body.len()
        )
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `KEY=VALUE` lines of the environ example, as a map.
    pub fn environ(&self) -> std::collections::BTreeMap<String, String> {
        self.text().lines().filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect()
    }
}

/// Connects with generous timeouts (tests never measure time; these only stop a hung test).
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to Apache");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads from `s` until what arrived contains `text` (a streamed chunk, say), and returns all of
/// it; panics, naming `text`, if the connection closes first.
pub fn read_until(s: &mut TcpStream, text: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(text) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed before {text:?} arrived");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Sends `raw` and reads one response until the connection closes.
pub fn request(port: u16, raw: &[u8]) -> Response {
    let mut s = connect(port);
    s.write_all(raw).expect("send request");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse(&buf, raw.starts_with(b"HEAD ")).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&buf)))
}

/// Like [`get`], but `None` when the connection fails or the answer is malformed.
pub fn try_get(port: u16, path: &str) -> Option<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    parse(&buf, false).ok()
}

/// `GET path` with `Connection: close`.
pub fn get(port: u16, path: &str) -> Response {
    request(port, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes())
}

/// Parses one response from `buf` (a whole connection's bytes).
pub fn parse(buf: &[u8], head_request: bool) -> Result<Response, String> {
    parse_one(buf, head_request).map(|(r, _)| r)
}

/// Parses one response; returns it and the bytes it used.
pub fn parse_one(buf: &[u8], head_request: bool) -> Result<(Response, usize), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf).map_err(|e| format!("bad response head: {e}"))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err("incomplete response head".into()),
    };
    let status = parsed.code.unwrap_or(0);
    let reason = parsed.reason.unwrap_or("").to_string();
    let headers: Vec<(String, String)> =
        parsed.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let rest = &buf[head_len..];
    let no_body = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    let (body, complete, used) = if no_body {
        (Vec::new(), true, 0)
    } else if find("Transfer-Encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("Content-Length").and_then(|l| l.parse::<usize>().ok()) {
        let n = len.min(rest.len());
        (rest[..n].to_vec(), n == len, n)
    } else {
        (rest.to_vec(), true, rest.len())
    };
    Ok((Response { status, reason, headers, body, complete, raw: buf.to_vec() }, head_len + used))
}

/// Decodes a chunked body; returns (body, ended with the last chunk, bytes used).
pub fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool, usize) {
    let start = data.len();
    let mut body = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else { return (body, false, start - data.len()) };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return (body, false, start - data.len());
        };
        data = &data[eol + 2..];
        if size == 0 {
            let end = data.windows(2).position(|w| w == b"\r\n").map(|p| p + 2).unwrap_or(data.len());
            return (body, true, start - data.len() + end);
        }
        if data.len() < size + 2 {
            body.extend_from_slice(&data[..size.min(data.len())]);
            return (body, false, start);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Reads one response from a connection that stays open (keep-alive): reads until the response
/// is complete, not until the connection closes.
pub fn read_response(s: &mut TcpStream, head_request: bool) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Ok((r, _)) = parse_one(&buf, head_request) {
            let sized = r.header("Content-Length").is_some() || r.header("Transfer-Encoding").is_some();
            if r.complete && (sized || head_request || r.status == 204 || r.status == 304) {
                return Ok(r);
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => return parse(&buf, head_request).map_err(|e| format!("closed early: {e}")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read failed: {e} after {} bytes", buf.len())),
        }
    }
}
