//! What each fuzz target checks, shared by the fuzz targets (`fuzz_targets/`) and by the corpus
//! replay test (`tests/fuzz_corpus.rs`), so every input ever kept stays a regression test.

#![allow(dead_code)] // each fuzz target uses one of these checks

use mod_rgi::config::GroupSpec;
use mod_rgi::directives::{parse_alias_options, parse_on_off};
use mod_rgi::environ::{collapse_slashes, header_env_name};
use mod_rgi::response::{HeaderKind, check_header, check_status, parse_content_length};
use mod_rgi::translate::alias_match;

/// Any bytes as a library file give a manifest or an error, never a crash.
pub fn manifest(data: &[u8]) {
    if let Ok(manifest) = mod_rgi::app::library::read_manifest("fuzzed.so", data) {
        assert_eq!(manifest.magic, rgi::abi::MAGIC);
        assert_eq!(manifest.abi_major, rgi::abi::ABI_MAJOR);
    }
}

/// Directive arguments: options, application groups, On/Off.
pub fn directive_args(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_alias_options(text.split_whitespace());
    match GroupSpec::parse(text) {
        Ok(GroupSpec::Named(name)) => assert_eq!(name, text),
        Ok(_) => assert!(text.starts_with("%{")),
        Err(why) => assert!(!why.is_empty()),
    }
    if let Ok(on) = parse_on_off(text) {
        assert_eq!(on, text.eq_ignore_ascii_case("on"));
    }
}

/// A response head an app sends: whatever is accepted is safe to put on the wire.
pub fn response_head(status: u32, name: &[u8], value: &[u8]) {
    if let Ok(s) = check_status(status) {
        assert!((200..=599).contains(&s));
    }
    if let Ok(kind) = check_header(name, value) {
        assert!(!name.is_empty());
        assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
        assert!(!name.iter().any(|&b| b <= b' ' || b == b':' || b >= 0x7f));
        if let HeaderKind::ContentLength(n) = kind {
            assert_eq!(Some(n), parse_content_length(value));
        }
    }
    if let Some(n) = parse_content_length(value) {
        assert!(value.iter().all(u8::is_ascii_digit));
        assert_eq!(n, std::str::from_utf8(value).unwrap().parse::<u64>().unwrap());
    }
}

/// URI → alias matching and the environ's name and path rules.
pub fn uri_mapping(uri: &[u8], prefix: &[u8]) {
    if let Some(n) = alias_match(uri, prefix) {
        assert!(n <= uri.len());
    }
    if let Some(key) = header_env_name(uri) {
        assert!(key.starts_with(b"HTTP_"));
        assert!(key.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'));
    }
    let collapsed = collapse_slashes(uri);
    assert!(!collapsed.windows(2).any(|w| w == b"//"));
    assert!(collapsed.len() <= uri.len());
}

/// Frames in one direction of the daemon protocol: whatever decodes encodes back to exactly the
/// bytes it came from (the format has one spelling of each message), and framing never reads
/// past its buffer.
fn daemon_frames(data: &[u8], decode_and_encode: impl Fn(u8, &[u8]) -> Option<Vec<u8>>) {
    use mod_rgi::daemon::protocol::{FRAME_HEADER, needed, split_frame};
    let mut buf = data;
    loop {
        match split_frame(buf) {
            Ok(Some((_, payload, used))) => {
                assert!(used >= FRAME_HEADER && used <= buf.len() && used == FRAME_HEADER + payload.len());
                assert_eq!(needed(buf), used);
                if let Some(again) = decode_and_encode(buf[0], payload) {
                    assert_eq!(again, &buf[..used], "a decoded frame encodes to other bytes");
                }
                buf = &buf[used..];
            }
            Ok(None) => {
                assert!(buf.len() < needed(buf));
                return;
            }
            Err(_) => return,
        }
    }
}

/// Apache child → daemon frames (`ToDaemon`), including the request with its environ.
pub fn daemon_to_daemon(data: &[u8]) {
    use mod_rgi::daemon::protocol::{ToDaemon, encode_request};
    daemon_frames(data, |kind, payload| {
        let msg = ToDaemon::decode(kind, payload).ok()?;
        let mut out = Vec::new();
        msg.encode(&mut out);
        if let ToDaemon::Request(r) = &msg {
            // The host's direct encoder writes the same bytes as the message's.
            let mut direct = Vec::new();
            encode_request(&mut direct, r.parts());
            assert_eq!(direct, out);
        }
        Some(out)
    });
}

/// Daemon → Apache child frames (`ToApache`): the answers a daemon (or anything that took its
/// socket) can send.
pub fn daemon_to_apache(data: &[u8]) {
    use mod_rgi::daemon::protocol::{MAX_BODY_CHUNK, ToApache};
    daemon_frames(data, |kind, payload| {
        let msg = ToApache::decode(kind, payload).ok()?;
        match &msg {
            ToApache::ReadBody { max } => assert!(*max > 0 && *max as usize <= MAX_BODY_CHUNK),
            ToApache::Log { level, .. } => assert!((1..=15).contains(level)),
            ToApache::Reject { status, .. } => assert!((400..=599).contains(status)),
            _ => {}
        }
        let mut out = Vec::new();
        msg.encode(&mut out);
        Some(out)
    });
}

/// What a parsed form holds, comparable between two parses.
type FormSummary = Vec<(String, Option<String>, Option<String>, Vec<u8>)>;

fn summary(form: &rgi::forms::Form) -> FormSummary {
    let mut out: FormSummary =
        form.fields().iter().map(|(n, v)| (n.clone(), None, None, v.clone().into_bytes())).collect();
    for f in form.files() {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f.reader().unwrap(), &mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, f.size());
        out.push((f.field().to_string(), f.file_name().map(String::from), f.content_type().map(String::from), bytes));
    }
    out
}

/// A reader that hands out the body in pieces of the given sizes (cycled), to cut delimiters and
/// headers at every place a network read could.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = match self.sizes {
            [] => buf.len(),
            sizes => usize::from(sizes[self.turn % sizes.len()]).max(1),
        };
        self.turn += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn form_limits() -> rgi::forms::FormLimits {
    rgi::forms::FormLimits::default().max_size(64 << 10).max_fields(64).max_field_size(4096).spool_threshold(1 << 20)
}

/// Any multipart body: parsed the same however the reads cut it, within the limits, never a
/// panic. The input is a boundary selector byte, a count byte, that many read sizes, the body.
pub fn multipart(data: &[u8]) {
    const BOUNDARIES: [&str; 4] = ["AaB03x", "B", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a'()+_,-./:=? z"];
    let [selector, count, rest @ ..] = data else { return };
    let n = usize::from(*count % 8).min(rest.len());
    let (sizes, body) = rest.split_at(n);
    multipart_body(BOUNDARIES[usize::from(*selector) % BOUNDARIES.len()], body, sizes);
}

fn multipart_body(boundary: &str, body: &[u8], sizes: &[u8]) {
    let limits = form_limits();
    let whole = rgi::forms::Form::from_multipart(body, boundary, &limits);
    let cut = rgi::forms::Form::from_multipart(Pieces { data: body, sizes, turn: 0 }, boundary, &limits);
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => {
            assert_eq!(summary(a), summary(b));
            assert!(a.fields().len() + a.files().len() <= limits.max_fields);
            let bytes: u64 = a.files().iter().map(|f| f.size()).sum();
            assert!(bytes <= body.len() as u64);
            assert!(rgi::forms::valid_boundary(boundary));
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("the same body parsed differently when cut: {whole:?} / {cut:?}"),
    }
}

/// Parts an app could have been sent: encoded as a browser does, they parse back unchanged.
pub fn multipart_roundtrip(parts: &[(String, Option<String>, Vec<u8>)], sizes: &[u8]) {
    const BOUNDARY: &str = "----rgi-fuzz-7e3f1a";
    let quotable = |s: &str| !s.chars().any(|c| c.is_control());
    let mut body = Vec::new();
    let mut expected: FormSummary = Vec::new();
    let mut files: FormSummary = Vec::new();
    for (name, file_name, data) in parts {
        if !quotable(name) || !file_name.as_deref().is_none_or(quotable) {
            return;
        }
        if data.windows(BOUNDARY.len()).any(|w| w == BOUNDARY.as_bytes()) {
            return;
        }
        let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"", quote(name)).as_bytes(),
        );
        match file_name {
            Some(f) => {
                body.extend_from_slice(
                    format!("; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n", quote(f)).as_bytes(),
                );
                if !(f.is_empty() && data.is_empty()) {
                    files.push((name.clone(), Some(f.clone()), Some("application/octet-stream".into()), data.clone()));
                }
            }
            None => {
                body.extend_from_slice(b"\r\n\r\n");
                expected.push((name.clone(), None, None, String::from_utf8_lossy(data).into_owned().into_bytes()));
            }
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    expected.extend(files);
    let limits = rgi::forms::FormLimits::default()
        .max_size(u64::MAX)
        .max_fields(usize::MAX)
        .max_field_size(usize::MAX)
        .spool_threshold(1 << 20);
    let form = rgi::forms::Form::from_multipart(Pieces { data: &body, sizes, turn: 0 }, BOUNDARY, &limits)
        .unwrap_or_else(|e| panic!("a well-formed body was refused: {e}\n{:?}", String::from_utf8_lossy(&body)));
    assert_eq!(summary(&form), expected);
}

/// An urlencoded body within the limits gives fields within the limits.
pub fn urlencoded(body: &[u8]) {
    let limits = form_limits();
    if let Ok(form) = rgi::forms::Form::from_urlencoded(body, &limits) {
        assert!(form.fields().len() <= limits.max_fields);
        assert!(form.fields().iter().all(|(_, v)| v.len() <= limits.max_field_size));
    }
}

/// Cookie headers and signed cookies: parsed cookies are well formed; only a value this signer
/// signed for this name verifies, in exactly its one spelling.
pub fn cookies(header: &str, secret: &[u8], name: &str, value: &str) {
    for c in rgi::cookies::parse_header(header) {
        assert!(!c.name().is_empty() && !c.name().contains(';') && !c.value().contains(';'));
    }
    let Ok(signer) = rgi::cookies::Signer::new(secret) else {
        assert!(secret.len() < rgi::cookies::Signer::MIN_SECRET_LEN);
        return;
    };
    let signed = signer.sign(name, value);
    assert_eq!(signer.verify(name, &signed), Some(value));
    // The header, taken as a forged signed value for any name: it verifies only if it is exactly
    // what the signer would write.
    for forged in [header, value] {
        if let Some(v) = signer.verify(name, forged) {
            assert_eq!(signer.sign(name, v), forged, "a second spelling of a signed value verified");
        }
    }
    if name != value {
        assert_eq!(signer.verify(value, &signed), None, "a signature moved to another cookie verified");
    }
    // Any one byte changed breaks the signature.
    let mut bytes = signed.clone().into_bytes();
    if let Some(i) = header.len().checked_rem(bytes.len()) {
        bytes[i] ^= 1;
        if let Ok(changed) = String::from_utf8(bytes) {
            assert_eq!(signer.verify(name, &changed), None, "a changed signed value verified");
        }
    }
}
