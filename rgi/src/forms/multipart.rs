//! A streaming, strict `multipart/form-data` reader (RFC 7578 / RFC 2046) over any [`Read`].
//!
//! It holds at most one read chunk plus a delimiter's length in memory: part bodies are handed
//! to a sink as they arrive. Part headers are parsed by `httparse`, delimiters found by `memchr`.
//! Anything that does not follow the grammar is an error (400), never a guess.

use std::io::Read;

use memchr::memmem;

use super::FormError;

/// Bytes asked of the reader at a time.
const CHUNK: usize = 16 * 1024;
/// The most header bytes one part may have.
const MAX_HEAD: usize = 8 * 1024;
/// The most headers one part may have.
const MAX_HEADERS: usize = 16;
/// The most transport padding (spaces, tabs) allowed after a delimiter.
const MAX_PADDING: usize = 64;

/// The part headers that matter for a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// `name` of `Content-Disposition: form-data`.
    pub name: String,
    /// `filename` (or `filename*`), present for file inputs.
    pub file_name: Option<String>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Right after a delimiter's line: the part's headers come next.
    Head,
    /// Inside a part's body.
    Body,
    /// After the close delimiter.
    Done,
}

/// Reads the parts of one multipart body.
pub struct Multipart<R> {
    reader: R,
    /// `CRLF "--" boundary`.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    eof: bool,
    read: u64,
    max_size: u64,
    state: State,
}

fn malformed(why: &str) -> FormError {
    FormError::Malformed(format!("multipart body: {why}"))
}

/// Whether `boundary` is valid per RFC 2046 (1 to 70 characters of its set, no trailing space).
///
/// ```
/// assert!(rgi::forms::valid_boundary("----WebKitFormBoundary7MA4YWxkTrZu0gW"));
/// assert!(!rgi::forms::valid_boundary("no;semicolons"));
/// ```
pub fn valid_boundary(boundary: &str) -> bool {
    (1..=70).contains(&boundary.len())
        && !boundary.ends_with(' ')
        && boundary.bytes().all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
}

impl<R: Read> Multipart<R> {
    /// A reader of the body `reader` delimited by `boundary`, refusing bodies over `max_size`.
    pub fn new(reader: R, boundary: &str, max_size: u64) -> Result<Self, FormError> {
        if !valid_boundary(boundary) {
            return Err(malformed("invalid boundary"));
        }
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // The body's first delimiter has no CRLF before it: supply one.
        Ok(Multipart {
            reader,
            delimiter,
            buf: b"\r\n".to_vec(),
            eof: false,
            read: 0,
            max_size,
            state: State::Preamble,
        })
    }

    /// Reads more into the buffer; false at the end of the body.
    fn fill(&mut self) -> Result<bool, FormError> {
        if self.eof {
            return Ok(false);
        }
        let start = self.buf.len();
        self.buf.resize(start + CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(FormError::Body(e));
                }
            }
        };
        self.buf.truncate(start + n);
        self.read += n as u64;
        if self.read > self.max_size {
            return Err(FormError::TooLarge { limit: self.max_size });
        }
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Reads until the buffer holds at least `n` bytes; false if the body ends first.
    fn want(&mut self, n: usize) -> Result<bool, FormError> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Consumes what follows a delimiter: `--` (the end) or padding and CRLF (another part).
    fn after_delimiter(&mut self) -> Result<(), FormError> {
        if !self.want(2)? {
            return Err(malformed("the body ends after a delimiter"));
        }
        if self.buf.starts_with(b"--") {
            self.state = State::Done; // the epilogue, if any, is ignored
            return Ok(());
        }
        loop {
            let padding = self.buf.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            if padding > MAX_PADDING {
                return Err(malformed("too much padding after a delimiter"));
            }
            if self.buf.len() >= padding + 2 {
                if &self.buf[padding..padding + 2] != b"\r\n" {
                    return Err(malformed("a delimiter is not followed by CRLF"));
                }
                self.buf.drain(..padding + 2);
                self.state = State::Head;
                return Ok(());
            }
            if !self.fill()? {
                return Err(malformed("the body ends after a delimiter"));
            }
        }
    }

    /// Moves to the next part and returns its headers, or `None` after the last part. An unread
    /// body of the current part is skipped.
    pub fn next_part(&mut self) -> Result<Option<PartHead>, FormError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Preamble | State::Body => self.copy_body(&mut |_| Ok(()))?,
                State::Head => return self.head().map(Some),
            }
        }
    }

    fn head(&mut self) -> Result<PartHead, FormError> {
        let end = loop {
            // An empty header block is a bare CRLF.
            if self.buf.starts_with(b"\r\n") {
                break 0;
            }
            if let Some(i) = memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 2;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(malformed("part headers are too long"));
            }
            if !self.fill()? {
                return Err(malformed("the body ends inside part headers"));
            }
        };
        if end > MAX_HEAD {
            return Err(malformed("part headers are too long"));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let head = match httparse::parse_headers(&self.buf[..end + 2], &mut headers) {
            Ok(httparse::Status::Complete((_, headers))) => parse_head(headers)?,
            Ok(httparse::Status::Partial) => return Err(malformed("incomplete part headers")),
            Err(httparse::Error::TooManyHeaders) => return Err(malformed("too many part headers")),
            Err(e) => return Err(malformed(&format!("bad part headers ({e})"))),
        };
        self.buf.drain(..end + 2);
        self.state = State::Body;
        Ok(head)
    }

    /// Hands the rest of the current part's body (or the preamble) to `sink`, chunk by chunk.
    pub fn copy_body(&mut self, sink: &mut dyn FnMut(&[u8]) -> Result<(), FormError>) -> Result<(), FormError> {
        if !matches!(self.state, State::Body | State::Preamble) {
            return Ok(());
        }
        let preamble = self.state == State::Preamble;
        loop {
            if let Some(i) = memmem::find(&self.buf, &self.delimiter) {
                if !preamble {
                    sink(&self.buf[..i])?;
                }
                self.buf.drain(..i + self.delimiter.len());
                return self.after_delimiter();
            }
            // Keep what could be the start of a delimiter cut by the chunk's end.
            let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
            if !preamble {
                sink(&self.buf[..safe])?;
            }
            self.buf.drain(..safe);
            if !self.fill()? {
                return Err(malformed(if preamble { "no boundary found" } else { "the body ends inside a part" }));
            }
        }
    }
}

fn parse_head(headers: &[httparse::Header<'_>]) -> Result<PartHead, FormError> {
    let text = |h: &httparse::Header<'_>| String::from_utf8_lossy(h.value).trim().to_string();
    let mut disposition = None;
    let mut content_type = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-disposition") {
            if disposition.is_some() {
                return Err(malformed("a part has two Content-Disposition headers"));
            }
            disposition = Some(text(h));
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(text(h));
        }
    }
    let disposition = disposition.ok_or_else(|| malformed("a part has no Content-Disposition"))?;
    let (kind, params) = parse_parameters(&disposition).ok_or_else(|| malformed("bad Content-Disposition"))?;
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(malformed("a part's Content-Disposition is not form-data"));
    }
    let param = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
    let name = param("name").ok_or_else(|| malformed("a part has no name"))?;
    let file_name = param("filename*").and_then(|v| decode_ext_value(&v)).or_else(|| param("filename"));
    Ok(PartHead { name, file_name, content_type })
}

/// Splits `value; key=value; key="quoted value"` into the value and its parameters.
pub fn parse_parameters(header: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut chars = header.chars().peekable();
    let mut first = String::new();
    while let Some(&c) = chars.peek() {
        if c == ';' {
            break;
        }
        first.push(c);
        chars.next();
    }
    let mut params = Vec::new();
    while chars.next() == Some(';') {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let key = key.trim().to_string();
        if key.is_empty() && chars.peek().is_none() {
            break; // a trailing ';'
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    // Only `\"` and `\\` are escapes: browsers send other backslashes as they are.
                    '\\' if matches!(chars.peek(), Some('"' | '\\')) => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            if chars.peek().is_some_and(|c| *c != ';') {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.push((key, value));
    }
    Some((first.trim().to_string(), params))
}

/// Decodes an RFC 8187 `charset'language'percent-encoded` value (UTF-8 only).
fn decode_ext_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let (charset, _language, encoded) = (parts.next()?, parts.next()?, parts.next()?);
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    percent_encoding::percent_decode_str(encoded).decode_utf8().ok().map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at most `step` bytes per call, to cut the body at every possible place.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    type Parts = Vec<(PartHead, Vec<u8>)>;

    fn parse(body: &[u8], boundary: &str, step: usize) -> Result<Parts, FormError> {
        let mut mp = Multipart::new(Trickle { data: body, step }, boundary, 1 << 20)?;
        let mut parts = Vec::new();
        while let Some(head) = mp.next_part()? {
            let mut data = Vec::new();
            mp.copy_body(&mut |chunk| {
                data.extend_from_slice(chunk);
                Ok(())
            })?;
            parts.push((head, data));
        }
        Ok(parts)
    }

    const BODY: &[u8] = b"preamble to ignore\r\n\
        --XyZ\r\n\
        Content-Disposition: form-data; name=\"title\"\r\n\
        \r\n\
        Hello\r\n--Xy near miss\r\n\
        --XyZ\r\n\
        Content-Disposition: form-data; name=\"upload\"; filename=\"a b.txt\"\r\n\
        Content-Type: text/plain\r\n\
        \r\n\
        line 1\r\nline 2\r\n\
        --XyZ  \r\n\
        content-disposition: form-data; name=empty\r\n\
        \r\n\
        \r\n\
        --XyZ--\r\n\
        epilogue";

    fn expected() -> Parts {
        let head = |name: &str, file: Option<&str>, ct: Option<&str>| PartHead {
            name: name.into(),
            file_name: file.map(Into::into),
            content_type: ct.map(Into::into),
        };
        vec![
            (head("title", None, None), b"Hello\r\n--Xy near miss".to_vec()),
            (head("upload", Some("a b.txt"), Some("text/plain")), b"line 1\r\nline 2".to_vec()),
            (head("empty", None, None), b"".to_vec()),
        ]
    }

    #[test]
    fn parts_are_read_at_every_chunking() {
        for step in 1..=BODY.len() {
            assert_eq!(parse(BODY, "XyZ", step).unwrap(), expected(), "read step {step}");
        }
    }

    #[test]
    fn the_body_may_start_with_the_delimiter_and_parts_may_be_skipped() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b\r\n\
            Content-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--b--";
        let mut mp = Multipart::new(&body[..], "b", 1 << 20).unwrap();
        assert_eq!(mp.next_part().unwrap().unwrap().name, "a");
        assert_eq!(mp.next_part().unwrap().unwrap().name, "b"); // a's body skipped
        assert_eq!(mp.next_part().unwrap(), None);
        assert_eq!(mp.next_part().unwrap(), None);
    }

    #[test]
    fn large_bodies_stream_through_a_small_buffer() {
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n".to_vec();
        body.extend_from_slice(&payload);
        body.extend_from_slice(b"\r\n--B--\r\n");
        let mut mp = Multipart::new(&body[..], "B", 1 << 20).unwrap();
        mp.next_part().unwrap().unwrap();
        let (mut got, mut largest) = (Vec::new(), 0);
        mp.copy_body(&mut |c| {
            largest = largest.max(c.len());
            got.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, payload);
        assert!(largest <= CHUNK + 8, "chunks stay small ({largest})");
        assert!(mp.buf.capacity() < 4 * CHUNK, "the buffer stays small ({})", mp.buf.capacity());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let cd = "Content-Disposition: form-data; name=\"a\"";
        for (body, why) in [
            ("no delimiter at all".to_string(), "no boundary"),
            (format!("--b\r\n{cd}\r\n\r\nvalue without end"), "ends inside a part"),
            (format!("--b\r\n{cd}\r\n"), "inside part headers"),
            ("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--".to_string(), "no Content-Disposition"),
            ("--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--".into(), "not form-data"),
            ("--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--".into(), "no name"),
            (format!("--b\r\n{cd}\r\n{cd}\r\n\r\nx\r\n--b--"), "two Content-Disposition"),
            (format!("--bX\r\n{cd}\r\n\r\nx\r\n--b--"), "not followed by CRLF"),
            (format!("--b\r\n{cd}\r\nBad Header\r\n\r\nx\r\n--b--"), "bad part headers"),
            (format!("--b\r\n{cd}\r\n\r\nx\r\n--b"), "ends after a delimiter"),
            (format!("--b\r\n{}{cd}\r\n\r\nx\r\n--b--", "X-A: 1\r\n".repeat(20)), "too many part headers"),
            (format!("--b\r\nX: {}\r\n{cd}\r\n\r\nx\r\n--b--", "v".repeat(9000)), "too long"),
        ] {
            for step in [1, 7, 4096] {
                let err = parse(body.as_bytes(), "b", step).unwrap_err();
                assert!(matches!(&err, FormError::Malformed(m) if m.contains(why)), "{body:?} step {step}: {err}");
            }
        }
    }

    #[test]
    fn the_size_limit_holds_while_streaming() {
        let body = format!("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n{}\r\n--b--", "x".repeat(5000));
        let mut mp = Multipart::new(body.as_bytes(), "b", 1000).unwrap();
        let err = (|| {
            mp.next_part()?;
            mp.copy_body(&mut |_| Ok(()))
        })()
        .unwrap_err();
        assert!(matches!(err, FormError::TooLarge { limit: 1000 }), "{err}");
    }

    #[test]
    fn boundaries_follow_rfc_2046() {
        assert!(valid_boundary("----WebKitFormBoundary7MA4YWxkTrZu0gW"));
        assert!(valid_boundary("a'()+_,-./:=? b"));
        assert!(!valid_boundary(""));
        assert!(!valid_boundary("trailing "));
        assert!(!valid_boundary(&"x".repeat(71)));
        assert!(!valid_boundary("semi;colon"));
        assert!(Multipart::new(&b""[..], "bad\r\n", 10).is_err());
    }

    #[test]
    fn disposition_parameters_are_unquoted() {
        let (kind, params) =
            parse_parameters(r#"form-data; name="a \"q\" b"; filename=C:\dir\f.txt ; x="a;b";"#).unwrap();
        assert_eq!(kind, "form-data");
        assert_eq!(
            params,
            vec![
                ("name".into(), "a \"q\" b".into()),
                ("filename".into(), r"C:\dir\f.txt".into()),
                ("x".into(), "a;b".into())
            ]
        );
        assert_eq!(parse_parameters(r#"form-data; name="unterminated"#), None);
        assert_eq!(parse_parameters(r#"form-data; name"#), None);
        assert_eq!(parse_parameters(r#"form-data; name="a"junk"#), None);
        let (_, p) = parse_parameters("form-data; name=f; filename*=UTF-8''%E2%82%AC%20rates.txt").unwrap();
        assert_eq!(decode_ext_value(&p[1].1).as_deref(), Some("€ rates.txt"));
        assert_eq!(decode_ext_value("latin1''x"), None);
    }

    #[test]
    fn filename_star_wins() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"plain.txt\"; \
                    filename*=UTF-8''%C3%A9t%C3%A9.txt\r\n\r\nx\r\n--b--";
        let parts = parse(body.as_bytes(), "b", 4096).unwrap();
        assert_eq!(parts[0].0.file_name.as_deref(), Some("été.txt"));
    }
}
