//! HTTP clients that keep state between requests: a cookie-keeping client (what a browser does
//! with cookies) and a keep-alive connection (to pin requests to one Apache process).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use super::http::{Response, connect, parse_one};

/// Sends requests with the cookies earlier responses set, like a browser.
pub struct Client {
    pub port: u16,
    /// Cookie name → value.
    pub jar: BTreeMap<String, String>,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Client { port, jar: BTreeMap::new() }
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, &[], b"")
    }

    /// `POST path` with an urlencoded form.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = form_urlencoded(fields);
        self.send("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
    }

    /// Sends one request (Connection: close) with the jar's cookies, then keeps what the
    /// response's `Set-Cookie` headers say.
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n", self.port);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            raw.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        let response = super::http::request(self.port, &bytes);
        self.keep_cookies(&response);
        response
    }

    fn keep_cookies(&mut self, response: &Response) {
        for (name, value) in &response.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let mut attrs = value.split(';').map(str::trim);
            let Some((cookie, val)) = attrs.next().and_then(|nv| nv.split_once('=')) else { continue };
            if attrs.any(|a| a.eq_ignore_ascii_case("max-age=0")) {
                self.jar.remove(cookie);
            } else {
                self.jar.insert(cookie.to_string(), val.to_string());
            }
        }
    }
}

/// `a=1&b=x+y` from pairs.
pub fn form_urlencoded(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// One kept-alive connection: its requests are all served by the same Apache process.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub fn open(port: u16) -> Self {
        Connection { stream: connect(port), buf: Vec::new() }
    }

    /// Sends `raw` (which must not ask to close) and reads one response.
    pub fn request(&mut self, raw: &[u8]) -> Response {
        self.stream.write_all(raw).expect("send request");
        loop {
            if let Ok((response, used)) = parse_one(&self.buf, raw.starts_with(b"HEAD "))
                && response.complete
            {
                self.buf.drain(..used);
                return response;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).expect("read response");
            assert!(n > 0, "the server closed a kept-alive connection: {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
