//! Hostile input against a live Apache running mod_rgi: framing, paths, headers, smuggling and
//! downloads. Each case asserts Apache's exact answer and, where the app runs, what it saw.

mod support;

use std::io::{Read, Write};
use std::net::Shutdown;

use support::http::{connect, parse, parse_one};
use support::{Apache, Config, Mode, example};

/// The apps every case can reach, served in `mode`.
fn config(mode: Mode, extra: &str) -> Config {
    let mut body = String::new();
    for name in ["hello", "environ", "echo", "stream", "misbehave", "panic"] {
        body.push_str(&format!("RGIScriptAlias /{name} {}\n", example(name).display()));
    }
    body.push_str(extra);
    mode.config(body)
}

/// Sends `raw`, optionally half-closing, and returns everything the server sent.
fn exchange(apache: &Apache, raw: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = connect(apache.port);
    s.write_all(raw).unwrap();
    if half_close {
        s.shutdown(Shutdown::Write).unwrap();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn status_of(apache: &Apache, raw: &[u8]) -> u16 {
    let out = exchange(apache, raw, false);
    parse(&out, false).map(|r| r.status).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out)))
}

/// (name, request, expected status): cases Apache must answer exactly so with mod_rgi loaded.
fn status_cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    let c = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            "duplicate Content-Length",
            c(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
            ),
            400,
        ),
        (
            "repeated equal Content-Length",
            c(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            ),
            400,
        ),
        (
            "negative Content-Length",
            c("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            "Content-Length overflow",
            c("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            "unknown Transfer-Encoding",
            c("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            "bad chunk size",
            c(
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            ),
            400,
        ),
        (
            "chunk size overflow",
            c(
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
            ),
            413,
        ),
        ("%00 in the path", c("GET /environ/a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 404),
        (
            "%2F with AllowEncodedSlashes Off",
            c("GET /environ/a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            404,
        ),
        (
            "overlong URI",
            [
                b"GET /environ/".to_vec(),
                vec![b'a'; 9000],
                b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            ]
            .concat(),
            414,
        ),
        (
            "overlong header",
            [
                b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec(),
                vec![b'a'; 9000],
                b"\r\nConnection: close\r\n\r\n".to_vec(),
            ]
            .concat(),
            400,
        ),
        (
            "too many headers",
            [
                b"GET /environ HTTP/1.1\r\nHost: x\r\n".to_vec(),
                (0..120).flat_map(|i| format!("X-H{i}: v\r\n").into_bytes()).collect(),
                b"Connection: close\r\n\r\n".to_vec(),
            ]
            .concat(),
            400,
        ),
        ("space in a header name", c("GET /environ HTTP/1.1\r\nHost: x\r\nX Bad: v\r\nConnection: close\r\n\r\n"), 400),
        (
            "NUL in a header value",
            b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\nConnection: close\r\n\r\n".to_vec(),
            400,
        ),
        ("HTTP/1.1 without Host", c("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"), 400),
        ("two Host headers", c("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"), 400),
        ("invalid Host", c("GET /hello HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n"), 400),
        ("bare LF line ends", c("GET /hello HTTP/1.1\nHost: x\nConnection: close\n\n"), 400),
        ("control byte in the method", b"G\x01T /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 400),
        ("space in the target", c("GET /hello world HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400),
        ("traversal above the root", c("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400),
        (
            "unknown Expect",
            c(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: something\r\nConnection: close\r\n\r\nabc",
            ),
            417,
        ),
        ("OPTIONS *", c("OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 200),
    ]
}

fn malformed_requests_get_the_right_4xx(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let cases = status_cases();
    assert!(cases.len() >= 20);
    for (name, raw, expected) in cases {
        assert_eq!(status_of(&apache, &raw), expected, "{name}");
    }
    assert_eq!(apache.get("/hello").status, 200, "still serving");
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
}

fn content_length_with_transfer_encoding_uses_the_chunks_and_closes(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let r = parse(&exchange(&apache, raw, false), false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "abc"));
    assert_eq!(r.header("Connection"), Some("close"), "a smuggling attempt must not keep the connection");
}

fn truncated_bodies_are_answered_400(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let fixed = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\nabc";
    let chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\nabc";
    for raw in [&fixed[..], &chunked[..]] {
        let r = parse(&exchange(&apache, raw, true), false).unwrap();
        assert_eq!(r.status, 400, "{r:?}");
        assert!(!r.text().contains("abc"), "no partial echo in an error page");
    }
}

fn pipelined_and_byte_by_byte_requests(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let two =
        b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /environ/second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let out = exchange(&apache, two, false);
    let (first, used) = parse_one(&out, false).unwrap();
    assert_eq!(first.text(), "Hello, World!");
    let second = parse(&out[used..], false).unwrap();
    assert_eq!(second.environ()["PATH_INFO"], "/second");

    let mut s = connect(apache.port);
    for b in b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow!" {
        s.write_all(&[*b]).unwrap();
        s.flush().unwrap();
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(parse(&out, false).unwrap().text(), "slow!");
}

fn slow_bodies_time_out_with_408(mode: Mode) {
    let config = config(mode, "RequestReadTimeout header=5 body=1\n").module("reqtimeout");
    let apache = Apache::start(config);
    let mut s = connect(apache.port);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nab").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert_eq!(parse(&out, false).unwrap().status, 408);
}

fn expect_100_continue_without_a_body(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let raw =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    let out = exchange(&apache, raw, false);
    let r = parse(&out, false).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert!(!String::from_utf8_lossy(&out).contains("100 Continue"), "no 100 when no body is read");
}

fn paths_are_normalised_before_the_app_sees_them(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let env = |target: &str| {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        parse(&exchange(&apache, raw.as_bytes(), false), false).unwrap()
    };
    assert_eq!(env("/environ/../hello").text(), "Hello, World!", "dot-dot leaves the alias");
    assert_eq!(env("/environ/%2e%2e/hello").text(), "Hello, World!", "encoded dot-dot too");
    let e = env("/environ/a/./b/../c").environ();
    assert_eq!(e["PATH_INFO"], "/a/c");
    let e = env("//environ//x//y").environ();
    assert_eq!((e["SCRIPT_NAME"].as_str(), e["PATH_INFO"].as_str()), ("/environ", "/x/y"));
    let e = env("http://example.org/environ/abs?q=1").environ();
    assert_eq!(
        (e["SCRIPT_NAME"].as_str(), e["PATH_INFO"].as_str(), e["QUERY_STRING"].as_str()),
        ("/environ", "/abs", "q=1")
    );
}

fn encoded_slashes_follow_allow_encoded_slashes(mode: Mode) {
    let on = Apache::start(config(mode, "AllowEncodedSlashes On\n"));
    assert_eq!(on.get("/environ/a%2Fb").environ()["PATH_INFO"], "/a/b");
    let nodecode = Apache::start(config(mode, "AllowEncodedSlashes NoDecode\n"));
    let e = nodecode.get("/environ/a%2Fb").environ();
    assert_eq!(e["PATH_INFO"], "/a%2Fb");
}

fn http_1_0_without_host_is_served(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let r = parse(&exchange(&apache, b"GET /environ HTTP/1.0\r\n\r\n", false), false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.environ()["SERVER_PROTOCOL"], "HTTP/1.0");
    assert_eq!(r.environ()["rgi.process_group"], mode.process_group(), "served in the mode under test");
}

fn the_largest_head_apache_accepts_reaches_the_app_whole(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    // 90 headers of 8 KB: under LimitRequestFields (100) and LimitRequestFieldSize (8190).
    let value = |i: usize| -> String { (0..8000).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect() };
    let mut raw = b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
    for i in 0..90 {
        raw.extend_from_slice(format!("X-Big-{i}: {}\r\n", value(i)).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let r = parse(&exchange(&apache, &raw, false), false).unwrap();
    assert_eq!(r.status, 200);
    let env = r.environ();
    for i in 0..90 {
        assert_eq!(env[&format!("HTTP_X_BIG_{i}")], value(i), "header {i}");
    }
}

fn one_byte_chunks_and_trailers_arrive_as_the_body(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for b in &body {
        raw.extend_from_slice(b"1;ext=v\r\n");
        raw.push(*b);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let r = parse(&exchange(&apache, &raw, false), false).unwrap();
    assert_eq!((r.status, r.complete), (200, true));
    assert_eq!(r.body, body);
}

fn a_pipelined_body_never_leaks_into_the_next_request(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    // The first body looks like a request line; it must stay the first request's body.
    let smuggled = "GET /environ/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let raw = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{smuggled}GET /environ/second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        smuggled.len()
    );
    let out = exchange(&apache, raw.as_bytes(), false);
    let (first, used) = parse_one(&out, false).unwrap();
    assert_eq!(first.text(), smuggled);
    let second = parse(&out[used..], false).unwrap();
    assert_eq!(second.environ()["PATH_INFO"], "/second");
    assert!(!String::from_utf8_lossy(&out).contains("PATH_INFO=/smuggled"));
}

fn obs_fold_reaches_the_app_unfolded(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let raw = b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n";
    let r = parse(&exchange(&apache, raw, false), false).unwrap();
    assert_eq!(r.status, 200);
    let value = &r.environ()["HTTP_X_FOLD"];
    assert!(
        !value.contains('\r') && !value.contains('\n') && value.starts_with('a') && value.ends_with('b'),
        "{value:?}"
    );
}

fn clients_cannot_smuggle_identity_or_proxies(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    let raw =
        b"GET /environ HTTP/1.1\r\nHost: x\r\nRemote-User: admin\r\nRemote_User: admin\r\nX-Remote-User: admin\r\n\
REMOTE_USER: admin\r\nAuth-Type: Basic\r\nAuth_Type: Basic\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\
Proxy: http://evil:8080\r\nProxy-Authorization: Basic eA==\r\nHTTP_PROXY: x\r\nConnection: close\r\n\r\n";
    let e = parse(&exchange(&apache, raw, false), false).unwrap().environ();
    for forbidden in [
        "REMOTE_USER",
        "AUTH_TYPE",
        "HTTP_AUTHORIZATION",
        "HTTP_PROXY",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_REMOTE_USER_",
    ] {
        assert!(!e.contains_key(forbidden), "{forbidden} must not be settable by a client: {e:?}");
    }
    assert_eq!(e["HTTP_REMOTE_USER"], "admin", "the dash spelling is an ordinary header");
    assert_eq!(e["HTTP_X_REMOTE_USER"], "admin");
    assert_eq!(e["HTTP_AUTH_TYPE"], "Basic");
    assert_eq!(e.keys().filter(|k| k.contains("REMOTE_USER")).count(), 2, "only the HTTP_ spellings: {e:?}");
}

fn pass_authorization_on_passes_it(mode: Mode) {
    let apache = Apache::start(config(mode, "<Location /environ>\n RGIPassAuthorization On\n</Location>\n"));
    let raw = b"GET /environ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k3n\r\nConnection: close\r\n\r\n";
    let e = parse(&exchange(&apache, raw, false), false).unwrap().environ();
    assert_eq!(e["HTTP_AUTHORIZATION"], "Bearer t0k3n");
    assert!(!e.contains_key("REMOTE_USER"));
}

fn app_mistakes_never_reach_the_client(mode: Mode) {
    let apache = Apache::start(config(mode, ""));
    for (case, status) in [
        ("crlf-value", 500),
        ("lf-value", 500),
        ("nul-value", 500),
        ("crlf-name", 500),
        ("space-name", 500),
        ("status-99", 500),
        ("status-1000", 500),
        ("status-0", 500),
        ("bad-length", 500),
        ("error-before", 500),
        ("short-body", 500),
    ] {
        let r = apache.get(&format!("/misbehave?case={case}"));
        assert_eq!(r.status, status, "{case}");
        let raw = String::from_utf8_lossy(&r.raw);
        assert!(
            !raw.contains("stolen") && !raw.contains("X-Injected") && !raw.contains("refused to answer"),
            "{case}: {raw}"
        );
    }
    let r = apache.get("/misbehave?case=write-after-end");
    assert_eq!(r.text(), "body more");
    for place in ["call", "drop"] {
        assert_eq!(apache.get(&format!("/panic?where={place}")).status, 500);
    }
    let r = apache.get("/panic?where=body");
    assert!(!r.complete && r.text() == "partial body\n", "{r:?}");
    assert_eq!(apache.get("/hello").status, 200);
}

/// A server whose /download sends a 1 MiB file of known bytes.
fn download_server(mode: Mode) -> (Apache, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.bin");
    let data: Vec<u8> = (0..1_048_576u32).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = format!(
        "RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file {}\n</Location>\n",
        example("download").display(),
        path.display()
    );
    (Apache::start(config(mode, &extra)), data, dir)
}

fn range_requests_on_file_responses(mode: Mode) {
    let (apache, data, _dir) = download_server(mode);
    let ask = |range: &str| {
        let raw = format!("GET /download HTTP/1.1\r\nHost: x\r\nRange: {range}\r\nConnection: close\r\n\r\n");
        parse(&exchange(&apache, raw.as_bytes(), false), false).unwrap()
    };
    let r = ask("bytes=0-99");
    assert_eq!((r.status, r.body.as_slice()), (206, &data[..100]));
    assert_eq!(r.header("Content-Range"), Some("bytes 0-99/1048576"));
    let r = ask("bytes=-10");
    assert_eq!((r.status, r.body.as_slice()), (206, &data[data.len() - 10..]));
    let r = ask("bytes=0-9,100-109");
    assert_eq!(r.status, 206);
    let content_type = r.header("Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/byteranges"), "{content_type}");
    let body = &r.body;
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(has(&data[..10]) && has(&data[100..110]));
    assert_eq!(ask("bytes=2000000-3000000").status, 416);
    assert_eq!(ask("bytes=5-1").status, 200, "a syntactically invalid range is ignored");
    assert_eq!(ask("chars=0-1").status, 200);
}

fn head_and_conditional_requests_on_file_responses(mode: Mode) {
    let (apache, data, _dir) = download_server(mode);
    let head =
        parse(&exchange(&apache, b"HEAD /download HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false), true)
            .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some(data.len().to_string().as_str()));
    let head_end = head.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(head.raw.len(), head_end, "HEAD sends no body");
    let last_modified = head.header("Last-Modified").unwrap().to_string();
    let ask = |header: String| {
        let raw = format!("GET /download HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n");
        parse(&exchange(&apache, raw.as_bytes(), false), false).unwrap().status
    };
    assert_eq!(ask(format!("If-Modified-Since: {last_modified}")), 304);
    assert_eq!(ask("If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT".into()), 200);
    assert_eq!(ask("If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT".into()), 412);
}

fn clients_aborting_downloads_cost_nothing(mode: Mode) {
    let (apache, data, _dir) = download_server(mode);
    for _ in 0..20 {
        let mut s = connect(apache.port);
        s.write_all(b"GET /download HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = [0u8; 1024];
        let _ = s.read(&mut first).unwrap();
        drop(s);
    }
    let r = apache.get("/download");
    assert_eq!(r.body, data);
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
}

// Every case above runs twice: apps in Apache's children, and apps in a daemon process group.
crate::in_both_modes!(
    malformed_requests_get_the_right_4xx,
    content_length_with_transfer_encoding_uses_the_chunks_and_closes,
    truncated_bodies_are_answered_400,
    pipelined_and_byte_by_byte_requests,
    slow_bodies_time_out_with_408,
    expect_100_continue_without_a_body,
    paths_are_normalised_before_the_app_sees_them,
    encoded_slashes_follow_allow_encoded_slashes,
    http_1_0_without_host_is_served,
    obs_fold_reaches_the_app_unfolded,
    clients_cannot_smuggle_identity_or_proxies,
    pass_authorization_on_passes_it,
    app_mistakes_never_reach_the_client,
    range_requests_on_file_responses,
    head_and_conditional_requests_on_file_responses,
    clients_aborting_downloads_cost_nothing,
    the_largest_head_apache_accepts_reaches_the_app_whole,
    one_byte_chunks_and_trailers_arrive_as_the_body,
    a_pipelined_body_never_leaks_into_the_next_request,
);
