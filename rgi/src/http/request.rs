//! Building the `http::Request` an app receives from what Apache has.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri, Version};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::{Body, Environ};
use crate::environ::Environ as Borrowed;
use crate::error::Error;
use crate::host::{Host, RequestLink};

/// Bytes of a decoded path that must be encoded again in a URI: everything but RFC 3986's
/// unreserved characters, sub-delims, ':', '@' and '/'.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/');

/// Bytes a query string (still encoded, as the client sent it) may not hold in a URI.
const QUERY: &AsciiSet = &PATH.remove(b'%').remove(b'?');

/// The request's URI as the app sees it: PATH_INFO (below the mount point, like a WSGI app) and
/// the query string. An app mounted at `/app` sees `/app/users/7?x=1` as `/users/7?x=1`.
pub(crate) fn uri(path_info: &[u8], query: &[u8]) -> Result<Uri, http::Error> {
    let mut uri = String::with_capacity(path_info.len() + query.len() + 2);
    if !path_info.starts_with(b"/") {
        uri.push('/');
    }
    // PATH_INFO is decoded bytes (maybe not UTF-8); encode each byte that needs it.
    uri.extend(percent_encoding::percent_encode(path_info, PATH));
    if !query.is_empty() {
        uri.push('?');
        uri.extend(percent_encoding::percent_encode(query, QUERY));
    }
    Ok(Uri::try_from(uri)?)
}

/// The protocol version of `SERVER_PROTOCOL`.
fn version(protocol: Option<&str>) -> Version {
    match protocol {
        Some("HTTP/1.0") => Version::HTTP_10,
        Some("HTTP/0.9") => Version::HTTP_09,
        Some("HTTP/2.0" | "HTTP/2") => Version::HTTP_2,
        _ => Version::HTTP_11,
    }
}

/// The `http::Request` for the request `host` serves, its body read through `link`.
pub(crate) fn build(host: Host<'_>, link: &Arc<RequestLink>) -> Result<http::Request<Body>, Error> {
    let env = Borrowed::new(host.environ());
    let method = Method::from_bytes(env.get_bytes("REQUEST_METHOD").unwrap_or(b"GET"))?;
    let uri = uri(env.get_bytes("PATH_INFO").unwrap_or_default(), env.get_bytes("QUERY_STRING").unwrap_or_default())?;
    let mut request = http::Request::builder().method(method).uri(uri).version(version(env.get("SERVER_PROTOCOL")));
    let headers = request.headers_mut().expect("a valid request so far");
    match host.request_headers() {
        Some(pairs) => {
            for pair in pairs {
                // SAFETY: the host keeps the headers alive for the callback.
                let (name, value) = unsafe { (pair.name.as_bytes(), pair.value.as_bytes()) };
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                    headers.append(name, value);
                }
            }
        }
        None => environ_headers(&env, headers),
    }
    let length = env.get("CONTENT_LENGTH").and_then(|l| l.parse().ok());
    let request = request.extension(Environ::copy(&env)).body(Body::from_request(link.clone(), length))?;
    Ok(request)
}

/// Request headers rebuilt from the environ, for a host too old to give them as sent.
fn environ_headers(env: &Borrowed<'_>, headers: &mut http::HeaderMap) {
    for (key, value) in env.iter_bytes() {
        let name = match key {
            b"CONTENT_TYPE" => "content-type".to_string(),
            b"CONTENT_LENGTH" => "content-length".to_string(),
            _ => match key.strip_prefix(b"HTTP_") {
                Some(rest) => String::from_utf8_lossy(rest).to_ascii_lowercase().replace('_', "-"),
                None => continue,
            },
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_path_info_encoded_again_with_the_query() {
        assert_eq!(uri(b"/users/7", b"").unwrap(), "/users/7");
        assert_eq!(uri(b"", b"").unwrap(), "/");
        assert_eq!(uri(b"/a b/caf\xc3\xa9", b"q=%FF&x=1").unwrap(), "/a%20b/caf%C3%A9?q=%FF&x=1");
        assert_eq!(uri(b"/100%/x?y#z", b"").unwrap(), "/100%25/x%3Fy%23z");
        assert_eq!(uri(b"/\xff", b"a={b}").unwrap(), "/%FF?a=%7Bb%7D");
    }

    #[test]
    fn versions() {
        assert_eq!(version(Some("HTTP/1.0")), Version::HTTP_10);
        assert_eq!(version(Some("HTTP/2.0")), Version::HTTP_2);
        assert_eq!(version(None), Version::HTTP_11);
    }

    #[test]
    fn headers_from_the_environ() {
        let env = Borrowed::for_tests(&[("HTTP_X_TOKEN", "t"), ("CONTENT_TYPE", "text/plain"), ("PATH_INFO", "/")]);
        let mut headers = http::HeaderMap::new();
        environ_headers(&env, &mut headers);
        assert_eq!(headers["x-token"], "t");
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers.len(), 2);
    }
}
