//! Rules for what an app may put in a response head. Apache trusts nothing an app sends: a bad
//! status, a header name that is not a token, or a value with CR, LF or NUL (response splitting)
//! is refused before anything reaches the client.

/// Response header names Apache owns: the framing of the connection and the message.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "status"];

/// What the host does with one header an app sends.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderKind {
    /// `Content-Type`: set through `ap_set_content_type` so filters see it.
    ContentType,
    /// `Content-Length`: recorded, and the body held to it.
    ContentLength(u64),
    /// A header Apache manages itself (hop-by-hop framing); dropped with a warning.
    Dropped,
    /// Anything else: added to the response as is.
    Other,
}

/// Checks a status code: only final statuses 200..=599 are accepted from apps.
pub fn check_status(status: u32) -> Result<u16, String> {
    if (200..=599).contains(&status) {
        Ok(status as u16)
    } else {
        Err(format!("invalid response status {status} (must be 200..599)"))
    }
}

/// Byte classes, looked up per byte of every header (a table beats branching here).
const TOKEN: u8 = 1;
const VALUE: u8 = 2;
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            )
        {
            table[b] |= TOKEN;
        }
        if !((c < 0x20 && c != b'\t') || c == 0x7f) {
            table[b] |= VALUE;
        }
        b += 1;
    }
    table
};

fn is_tchar(b: u8) -> bool {
    BYTE_CLASS[b as usize] & TOKEN != 0
}

/// Checks one header and says how to treat it (runs for every header of every response, so it
/// allocates only to explain a refusal).
pub fn check_header(name: &[u8], value: &[u8]) -> Result<HeaderKind, String> {
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(format!("invalid response header name {:?}", String::from_utf8_lossy(name)));
    }
    if let Some(bad) = value.iter().find(|&&b| BYTE_CLASS[b as usize] & VALUE == 0) {
        let name = String::from_utf8_lossy(name);
        return Err(format!("response header {name} has a control character (0x{bad:02x}) in its value"));
    }
    Ok(if name.eq_ignore_ascii_case(b"content-type") {
        HeaderKind::ContentType
    } else if name.eq_ignore_ascii_case(b"content-length") {
        let length = parse_content_length(value);
        HeaderKind::ContentLength(
            length.ok_or_else(|| format!("invalid Content-Length {:?}", String::from_utf8_lossy(value)))?,
        )
    } else if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes())) {
        HeaderKind::Dropped
    } else {
        HeaderKind::Other
    })
}

/// A Content-Length value: ASCII digits only, no sign, no spaces, fits in 63 bits.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// What may be sent of a body write once a Content-Length is declared.
#[derive(Debug, PartialEq, Eq)]
pub enum Clip<'a> {
    /// All of it.
    Whole(&'a [u8]),
    /// The part up to the declared length: the write that crosses it is cut and succeeds.
    Cut(&'a [u8]),
    /// Nothing: the length was already reached by a cut write, so this one fails.
    Refused,
}

/// Holds a write of `data` to the body's declared length, given what was `written` so far and
/// whether an earlier write was already cut.
pub fn clip_to_length(declared: Option<u64>, written: u64, truncated: bool, data: &[u8]) -> Clip<'_> {
    let Some(declared) = declared else { return Clip::Whole(data) };
    let room = declared.saturating_sub(written);
    if data.len() as u64 <= room {
        Clip::Whole(data)
    } else if room == 0 && truncated {
        Clip::Refused
    } else {
        Clip::Cut(&data[..room as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_outside_the_final_range_are_refused() {
        assert_eq!(check_status(200), Ok(200));
        assert_eq!(check_status(599), Ok(599));
        for bad in [0, 99, 100, 199, 600, 1000, u32::MAX] {
            assert!(check_status(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_splitting_is_refused() {
        for value in [&b"a\r\nSet-Cookie: x=1"[..], b"a\nb", b"a\rb", b"a\0b", b"\x7f"] {
            assert!(check_header(b"X-Test", value).is_err(), "{value:?}");
        }
        for name in [&b"X-Te st"[..], b"X:Y", b"", b"X\r\nY", b"\xc3\xa9"] {
            assert!(check_header(name, b"v").is_err(), "{name:?}");
        }
        assert_eq!(check_header(b"X-Ok", b"tab\there \xc3\xa9"), Ok(HeaderKind::Other));
    }

    #[test]
    fn framing_headers_are_apaches() {
        assert_eq!(check_header(b"Transfer-Encoding", b"chunked"), Ok(HeaderKind::Dropped));
        assert_eq!(check_header(b"connection", b"close"), Ok(HeaderKind::Dropped));
        assert_eq!(check_header(b"Content-Type", b"text/plain"), Ok(HeaderKind::ContentType));
        assert_eq!(check_header(b"content-length", b"42"), Ok(HeaderKind::ContentLength(42)));
    }

    #[test]
    fn bodies_are_cut_at_their_length() {
        assert_eq!(clip_to_length(None, 10, false, b"abc"), Clip::Whole(b"abc"));
        assert_eq!(clip_to_length(Some(5), 2, false, b"abc"), Clip::Whole(b"abc"));
        assert_eq!(clip_to_length(Some(5), 3, false, b"abc"), Clip::Cut(b"ab"));
        assert_eq!(clip_to_length(Some(5), 5, false, b"abc"), Clip::Cut(b""));
        assert_eq!(clip_to_length(Some(5), 5, true, b"abc"), Clip::Refused);
    }

    #[test]
    fn content_length_is_strict() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        for bad in [&b""[..], b"-1", b"+1", b" 1", b"1 ", b"1,1", b"0x10", b"99999999999999999999"] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }
}
