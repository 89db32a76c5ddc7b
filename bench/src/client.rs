//! A minimal HTTP/1.1 keep-alive client: checks that every peer answers what it should, and sends
//! exact numbers of requests (callgrind runs, memory runs) where wrk only knows durations.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: status, headers (names lower-cased) and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection to 127.0.0.1:port.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Connection {
    pub fn open(port: u16) -> io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Connection { reader: BufReader::with_capacity(256 * 1024, stream) })
    }

    /// Sends one request and reads the whole response (the body is skipped for HEAD).
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: rgi-bench\r\n");
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Type: application/octet-stream\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        self.read_response(method == "HEAD")
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        Ok(line.trim_end().to_string())
    }

    fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let status_line = self.line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| invalid(format!("bad header {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if head_only || status == 304 || status == 204 {
            return Ok(response);
        }
        if response.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
            loop {
                let size_line = self.line()?;
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    while !self.line()?.is_empty() {}
                    break;
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                self.reader.read_exact(&mut response.body[start..])?;
                self.line()?;
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
            response.body.resize(length, 0);
            self.reader.read_exact(&mut response.body)?;
        } else {
            self.reader.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }
}

/// Sends one large request or fetches one large response, streaming: the body is written from a
/// second thread while the response is read (an echo answers while it reads), and the response
/// body is counted, not kept. Returns the response body's length.
pub fn transfer(port: u16, method: &str, path: &str, upload: u64) -> io::Result<u64> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if upload > 0 {
        head.push_str(&format!("Content-Type: application/octet-stream\r\nContent-Length: {upload}\r\n"));
    }
    head.push_str("\r\n");
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || -> io::Result<()> {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![b'x'; 256 * 1024];
        let mut left = upload;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            writer.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    if status_line.split(' ').nth(1) != Some("200") {
        return Err(invalid(format!("{method} {path} answered {status_line:?}")));
    }
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    // Connection: close, so the body ends where the stream does.
    let mut buf = vec![0u8; 1 << 20];
    let mut total = reader.buffer().len() as u64;
    reader.consume(reader.buffer().len());
    let mut stream = reader.into_inner();
    loop {
        match stream.read(&mut buf)? {
            0 => break,
            n => total += n as u64,
        }
    }
    sender.join().expect("upload thread")?;
    Ok(total)
}

/// Sends `count` GET requests for `path` over `connections` keep-alive connections at once.
pub fn hammer(port: u16, path: &str, count: u64, connections: u64) -> io::Result<()> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|i| {
                let share = count / connections + u64::from(i < count % connections);
                scope.spawn(move || -> io::Result<()> {
                    let mut conn = Connection::open(port)?;
                    for _ in 0..share {
                        let response = conn.request("GET", path, b"")?;
                        if response.status != 200 {
                            return Err(invalid(format!("GET {path} answered {}", response.status)));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("client thread"))
    })
}
