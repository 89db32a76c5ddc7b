//! http and tower apps inside Apache: an axum Router served unchanged (examples/axum), a plain
//! `fn(http::Request) -> http::Response` app (examples/http), and `tracing` into the error log.

mod support;

use std::io::{Read, Write};

use support::http::{connect, parse, parse_one};
use support::{Apache, Config, Mpm, example};

fn config() -> Config {
    Config::new(format!(
        "RGIScriptAlias /axum {}\nRGIScriptAlias /http {}\nRGIOption greeting Bonjour\n",
        example("axum").display(),
        example("http").display()
    ))
}

fn post(apache: &Apache, path: &str, content_type: &str, body: &[u8]) -> support::Response {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    apache.request(&raw)
}

#[test]
fn axum_routes_answer_through_apache() {
    let apache = Apache::start(config());

    let r = apache.get("/axum/");
    assert_eq!((r.status, r.text().as_str()), (200, "Bonjour, World!"), "state built from RGIOption");
    assert_eq!(apache.get("/axum").text(), "Bonjour, World!", "the mount point itself is the app's /");

    let r = apache.get("/axum/users");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.text(), r#"[{"id":1,"name":"Ada"}]"#);

    let r = apache.get("/axum/users/1");
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"id":1,"name":"Ada"}"#), "path parameter");
    let r = apache.get("/axum/users/99");
    assert_eq!((r.status, r.text().as_str()), (404, r#"{"error":"no user 99"}"#));
    assert_eq!(apache.get("/axum/users/x").status, 400, "a path parameter that is not a number");
    assert_eq!(apache.get("/axum/nowhere").status, 404);
    assert_eq!(post(&apache, "/axum/", "text/plain", b"").status, 405, "GET only");

    let r = post(&apache, "/axum/users", "application/json", br#"{"name":"Grace"}"#);
    assert_eq!(r.status, 201);
    let created = r.text();
    assert!(created.ends_with(r#","name":"Grace"}"#), "{created}");
    assert_eq!(post(&apache, "/axum/users", "application/json", b"{nope").status, 400, "bad JSON");
    assert_eq!(post(&apache, "/axum/users", "text/plain", br#"{"name":"X"}"#).status, 415, "not JSON");
}

#[test]
fn axum_state_lives_across_requests_of_a_process() {
    let apache = Apache::start(config());
    // Three requests on one connection reach one process and its one Router.
    let mut s = connect(apache.port);
    let request = "POST /axum/visits HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    let last = "POST /axum/visits HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    s.write_all(format!("{request}{request}{last}").as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let mut counts = Vec::new();
    let mut rest = &buf[..];
    for _ in 0..3 {
        let (r, used) = parse_one(rest, false).unwrap();
        counts.push(r.text());
        rest = &rest[used..];
    }
    assert_eq!(counts, ["1", "2", "3"]);
}

#[test]
fn axum_sees_the_path_below_its_mount_point_and_the_environ() {
    let apache = Apache::start(config());
    let r = apache.get("/axum/environ");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains(r#""SCRIPT_NAME":"/axum""#), "{text}");
    assert!(text.contains(r#""PATH_INFO":"/environ""#), "{text}");
    assert!(text.contains(r#""REMOTE_ADDR":"127.0.0.1""#), "{text}");
    assert!(text.contains(r#""rgi.request_id":""#), "{text}");
}

#[test]
fn axum_streams_a_response_produced_over_time() {
    let apache = Apache::start(config());
    let r = apache.get("/axum/ticks?n=5");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"), "no length known in advance");
    assert!(r.complete);
    assert_eq!(r.text(), "tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n");
}

/// A chunked upload echoed back chunk by chunk: each chunk must come back before the client
/// sends the next, so both bodies stream (nothing waits for the whole request).
fn duplex_echo(apache: &Apache, path: &str) {
    let mut s = connect(apache.port);
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut received = Vec::new();
    for word in ["first ", "second ", "third"] {
        s.write_all(format!("{:x}\r\n{word}\r\n", word.len()).as_bytes()).unwrap();
        // Read until this word came back (the head arrives with the first).
        while !String::from_utf8_lossy(&received).contains(word) {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed before '{word}' came back: {:?}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&buf[..n]);
        }
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    s.read_to_end(&mut received).unwrap();
    let r = parse(&received, false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.text(), "first second third");
}

#[test]
fn axum_echo_streams_both_ways() {
    let apache = Apache::start(config());
    duplex_echo(&apache, "/axum/echo");
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = post(&apache, "/axum/echo", "application/octet-stream", &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("3000000"), "the request's length carries over");
    assert!(r.body == body, "3 MB echoed intact");
}

#[test]
fn axum_panic_is_a_500_and_the_process_keeps_serving() {
    let apache = Apache::start(config().mpm(Mpm::Prefork));
    let r = apache.get("/axum/panic");
    assert_eq!(r.status, 500);
    assert!(apache.wait_for_log("the panic route panicked"));
    let line = apache.error_log().lines().find(|l| l.contains("the panic route panicked")).unwrap().to_string();
    assert!(line.contains("[request "), "the panic is logged with the request id: {line}");
    for _ in 0..4 {
        assert_eq!(apache.get("/axum/").status, 200);
    }
}

#[test]
fn http_fn_app_serves_and_streams() {
    let apache = Apache::start(config());
    let r = apache.get("/http/");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello from http!\n"));
    assert_eq!(r.header("Content-Length"), Some("17"), "exact size → Content-Length");
    assert_eq!(apache.get("/http/nope").status, 404);

    let raw = b"GET /http/uri?a=%20b&c HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: probe/1\r\nConnection: close\r\n\r\n";
    assert_eq!(apache.request(raw).text(), "/http /uri?a=%20b&c probe/1\n");
    let raw = b"GET /http/caf%C3%A9%20au%20lait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(apache.request(raw).status, 404, "a decoded path is encoded again and routed");

    let body = vec![b'x'; 1_000_000];
    assert_eq!(post(&apache, "/http/count", "text/plain", &body).text(), "1000000\n");
    let r = post(&apache, "/http/echo", "text/plain", b"echo me");
    assert_eq!(r.text(), "echo me");
    duplex_echo(&apache, "/http/echo");

    // A chunked upload read whole.
    let raw = b"POST /http/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    let r = apache.request(raw);
    assert_eq!(r.text(), "7\n");
}

/// The lines of the error log tagged with request `id`.
fn lines_of_request(apache: &Apache, id: &str) -> Vec<String> {
    let tag = format!("[request {id}]");
    apache.error_log().lines().filter(|l| l.contains(&tag)).map(str::to_string).collect()
}

#[test]
fn tracing_events_reach_the_error_log_tagged_with_the_request() {
    let apache = Apache::start(config());
    let r = apache.get("/axum/log");
    assert_eq!(r.status, 200);
    let id = r.text();
    assert!(!id.is_empty());
    assert!(apache.wait_for_log("a warning from a spawned task"));
    let lines = lines_of_request(&apache, &id);
    let find = |needle: &str| lines.iter().find(|l| l.contains(needle)).cloned();
    let debug = find("a debug event").unwrap_or_else(|| panic!("debug event of request {id}: {lines:#?}"));
    assert!(debug.contains("[rgi:debug]"), "{debug}");
    let info = find("an info event").expect("info event");
    assert!(info.contains("[rgi:info]") && info.contains("answer=42"), "{info}");
    assert!(find("a warning").expect("warning").contains("[rgi:warn]"));
    let spawned = find("a warning from a spawned task").expect("the spawned task's event is tagged too");
    assert!(spawned.contains("[rgi:warn]"), "{spawned}");
}

#[test]
fn tracing_follows_apache_log_level() {
    let mut config = config();
    config.log_level = "info rgi:warn".into();
    let apache = Apache::start(config);
    let id = apache.get("/axum/log").text();
    assert!(apache.wait_for_log("a warning from a spawned task"));
    let lines = lines_of_request(&apache, &id);
    assert!(lines.iter().any(|l| l.contains("a warning")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("a debug event") || l.contains("an info event")), "{lines:#?}");
}
