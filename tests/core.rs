//! The core: loading, serving, environ, streaming, files, faults — against a real Apache.

mod support;

use std::io::{Read, Write};

use support::http::{connect, parse, read_until};
use support::{Apache, Config, Mode, Mpm, configtest, example};

/// Every example under its own alias, plus a second alias of hello in the same group.
fn examples_config(mode: Mode) -> Config {
    let mut body = String::new();
    for name in ["hello", "environ", "echo", "stream", "download", "panic", "misbehave"] {
        body.push_str(&format!("RGIScriptAlias /{name} {}\n", example(name).display()));
    }
    body.push_str(&format!("RGIScriptAlias / {}\n", example("environ").display()));
    mode.config(body)
}

fn hello_is_served_in_every_mpm(mode: Mode) {
    for mpm in [Mpm::Event, Mpm::Worker, Mpm::Prefork] {
        let apache = Apache::start(examples_config(mode).mpm(mpm));
        let r = apache.get("/hello");
        assert_eq!(r.status, 200, "{mpm:?}");
        assert_eq!(r.text(), "Hello, World!", "{mpm:?}");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.header("Content-Length"), Some("13"));
        let env = apache.get("/environ").environ();
        // A daemon group has its own threads whatever Apache's MPM.
        let threaded = mpm != Mpm::Prefork || mode == Mode::Daemon;
        assert_eq!(env["rgi.multithread"], threaded.to_string(), "{mpm:?}");
    }
}

fn environ_splits_script_name_and_path_info_at_the_alias(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let cases = [
        ("/environ", "/environ", ""),
        ("/environ/", "/environ", "/"),
        ("/environ/a/b", "/environ", "/a/b"),
        ("/environ/a%20b/c%2Bd", "/environ", "/a b/c+d"),
        ("/", "", "/"),
        ("/other/path", "", "/other/path"),
        ("/environment", "", "/environment"),
    ];
    for (uri, script_name, path_info) in cases {
        let env = apache.get(uri).environ();
        assert_eq!(env["SCRIPT_NAME"], script_name, "SCRIPT_NAME of {uri}");
        assert_eq!(env["PATH_INFO"], path_info, "PATH_INFO of {uri}");
        assert_eq!(env["REQUEST_URI"], uri);
    }
}

fn environ_has_the_cgi_variables(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let raw = format!(
        "GET /environ/x?a=1&b=%20 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Custom-Header: one\r\nX-Custom-Header: two\r\n\
               X_Underscore: dropped\r\nProxy: http://evil\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\
               Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        apache.port
    );
    let env = apache.request(raw.as_bytes()).environ();
    assert_eq!(env["REQUEST_METHOD"], "GET");
    assert_eq!(env["QUERY_STRING"], "a=1&b=%20");
    assert_eq!(env["REQUEST_URI"], "/environ/x?a=1&b=%20");
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], apache.port.to_string());
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert!(env["SERVER_SOFTWARE"].starts_with("Apache"));
    assert_eq!(env["SERVER_ADDR"], "127.0.0.1");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert!(env["REMOTE_PORT"].parse::<u16>().unwrap() > 0);
    assert_eq!(env["REQUEST_SCHEME"], "http");
    assert_eq!(env["GATEWAY_INTERFACE"], "CGI/1.1");
    assert_eq!(env["CONTENT_TYPE"], "text/plain");
    assert_eq!(env["CONTENT_LENGTH"], "0");
    assert_eq!(env["HTTP_X_CUSTOM_HEADER"], "one, two");
    assert_eq!(env["HTTP_HOST"], format!("127.0.0.1:{}", apache.port));
    assert!(env.contains_key("DOCUMENT_ROOT"));
    assert!(!env.contains_key("HTTP_X_UNDERSCORE"), "header with '_' must be dropped");
    assert!(!env.contains_key("HTTP_PROXY"), "Proxy must be dropped (httpoxy)");
    assert!(!env.contains_key("HTTP_AUTHORIZATION"), "Authorization is not passed by default");
    assert!(!env.contains_key("HTTPS"));
    assert!(!env.contains_key("REMOTE_USER"));
    assert_eq!(env["rgi.version"], "1.0");
    assert_eq!(env["rgi.url_scheme"], "http");
    assert_eq!(env["rgi.multiprocess"], mode.multiprocess());
    assert_eq!(env["rgi.application_group"], format!("127.0.0.1:{}|/environ", apache.port));
    assert_eq!(env["rgi.process_group"], mode.process_group());
    assert!(!env["rgi.request_id"].is_empty());
}

fn environ_values_keep_raw_bytes(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let raw = b"GET /environ/caf%C3%A9/%FF?q=%FF%00 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bytes: \xe9t\xe9\r\nConnection: close\r\n\r\n";
    let r = apache.request(raw);
    assert_eq!(r.status, 200);
    let body = &r.body;
    let find = |key: &[u8]| -> Vec<u8> {
        let line = body.split(|&b| b == b'\n').find(|l| l.starts_with(key)).expect("key present");
        line[key.len()..].to_vec()
    };
    assert_eq!(find(b"PATH_INFO="), b"/caf\xc3\xa9/\xff");
    assert_eq!(find(b"QUERY_STRING="), b"q=%FF%00");
    assert_eq!(find(b"HTTP_X_BYTES="), b"\xe9t\xe9");
}

fn setenv_variables_reach_the_environ_but_not_over_cgi_ones(mode: Mode) {
    let config = mode
        .config(format!(
            "RGIScriptAlias /environ {}\nSetEnv FROM_SETENV yes\nSetEnv REQUEST_METHOD forged\n",
            example("environ").display()
        ))
        .module("env");
    let apache = Apache::start(config);
    let env = apache.get("/environ").environ();
    assert_eq!(env["FROM_SETENV"], "yes");
    assert_eq!(env["REQUEST_METHOD"], "GET");
}

fn echo_streams_fixed_and_chunked_bodies_back(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut raw = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = apache.request(&raw);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/x-test"));
    assert_eq!(r.body, body);

    let mut raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for part in body.chunks(7777) {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = apache.request(&raw);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert!(r.complete);
    assert_eq!(r.body, body);
}

fn echo_handles_expect_100_continue(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let mut s = connect(apache.port);
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let r = parse(&rest, false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
}

fn limit_request_body_answers_413(mode: Mode) {
    let config = mode.config(format!("RGIScriptAlias /echo {}\nLimitRequestBody 1000\n", example("echo").display()));
    let apache = Apache::start(config);
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(apache.request(&raw).status, 413);
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..5 {
        raw.extend_from_slice(b"3e8\r\n");
        raw.extend(std::iter::repeat_n(b'a', 1000));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(apache.request(&raw).status, 413);
}

fn stream_sends_each_chunk_before_the_next_is_made(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let mut s = connect(apache.port);
    s.write_all(b"GET /stream?n=3&ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = read_until(&mut s, "chunk 1 of 3");
    assert!(!String::from_utf8_lossy(&got).contains("chunk 2 of 3"), "chunks were buffered");
    s.read_to_end(&mut got).unwrap();
    let r = parse(&got, false).unwrap();
    assert_eq!(r.text(), "chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n");
    assert!(r.complete);
}

fn head_sends_no_body(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let r = apache.request(b"HEAD /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    let head_end = r.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(r.raw.len(), head_end, "no body bytes after the head");
    let r = apache.request(b"HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("Content-Length"), Some("13"));
}

fn panics_give_500_and_the_child_keeps_serving(mode: Mode) {
    let apache = Apache::start(examples_config(mode).mpm(Mpm::Prefork));
    let r = apache.get("/panic?where=call");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("panic in call"), "the panic message must not reach the client");
    assert!(apache.wait_for_log("app panicked"));
    assert!(apache.error_log().contains("panic in call, as asked"));
    let r = apache.get("/panic?where=drop");
    assert_eq!(r.status, 500);
    let r = apache.get("/panic?where=body");
    assert_eq!(r.status, 200);
    assert!(!r.complete, "a body cut by a panic must not look complete");
    assert_eq!(r.text(), "partial body\n");
    for _ in 0..20 {
        assert_eq!(apache.get("/hello").status, 200);
    }
    assert!(!apache.error_log().contains("exit signal"), "no child may crash:\n{}", apache.error_log());
}

fn panic_in_create_gives_500_with_a_log_line(mode: Mode) {
    let config = mode.config(format!(
        "RGIScriptAlias /panic {}\n<Location /panic>\n RGIOption panic.create on\n</Location>\n",
        example("panic").display()
    ));
    let apache = Apache::start(config);
    assert_eq!(apache.get("/panic?where=none").status, 500);
    assert!(apache.wait_for_log("panic while creating the app instance"));
    assert!(apache.error_log().contains("creating the app from"));
}

fn bad_response_heads_never_reach_the_client(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    for case in [
        "crlf-value",
        "lf-value",
        "nul-value",
        "crlf-name",
        "space-name",
        "status-99",
        "status-1000",
        "status-0",
        "bad-length",
    ] {
        let r = apache.get(&format!("/misbehave?case={case}"));
        assert_eq!(r.status, 500, "{case}");
        assert!(r.header("X-Injected").is_none() && r.header("Set-Cookie").is_none(), "{case}");
        assert!(!String::from_utf8_lossy(&r.raw).contains("stolen"), "{case}");
    }
    assert!(apache.error_log().contains("invalid response"));
}

fn bodies_are_held_to_their_content_length(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let r = apache.get("/misbehave?case=long-body");
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.text(), "01234");
    // Nothing of it had reached the client yet, so it becomes a clean 500.
    let r = apache.get("/misbehave?case=short-body");
    assert_eq!(r.status, 500, "{r:?}");
    assert!(apache.wait_for_log("of its Content-Length of 10"));
    assert!(apache.error_log().contains("more than its Content-Length of 5"));
}

fn a_failing_body_is_cut_not_completed(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let r = apache.get("/misbehave?case=fail-midway");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "first chunk\n");
    assert!(!r.complete);
    assert!(apache.wait_for_log("the database went away"));
    let r = apache.get("/misbehave?case=error-before");
    assert_eq!(r.status, 500);
    assert!(apache.wait_for_log("the app refused to answer"));
    let r = apache.get("/misbehave?case=transfer-encoding");
    assert_eq!((r.status, r.text().as_str()), (200, "well formed\n"));
}

fn download_sends_files_with_ranges_and_conditions(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = mode.config(format!(
        "RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file {}\n</Location>\n",
        example("download").display(),
        path.display()
    ));
    let apache = Apache::start(config);
    let r = apache.get("/download");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("200000"));
    assert_eq!(r.body, data);
    let last_modified = r.header("Last-Modified").expect("Last-Modified").to_string();

    let r = apache.request(b"GET /download HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);
    let r = apache.request(b"GET /download HTTP/1.1\r\nHost: x\r\nRange: bytes=300000-\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 416);
    let r = apache.request(
        format!("GET /download HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {last_modified}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 304);
    let r = apache.get("/download?offset=100&len=50");
    assert_eq!(r.body, &data[100..150]);
}

fn one_instance_per_group_shared_by_aliases(mode: Mode) {
    let config = mode.config(format!(
        "RGIScriptAlias /a {env} application-group=shared\nRGIScriptAlias /b {env} application-group=shared\n\
         RGIScriptAlias /c {env}\n<Location /d>\n RGIApplicationGroup %{{GLOBAL}}\n</Location>\nRGIScriptAlias /d {env}\n\
         RGIScriptAlias /e {env}\n<Location /e>\n RGIApplicationGroup %{{SERVER}}\n</Location>\n",
        env = example("environ").display()
    ));
    let apache = Apache::start(config);
    assert_eq!(apache.get("/a").environ()["rgi.application_group"], "shared");
    assert_eq!(apache.get("/b").environ()["rgi.application_group"], "shared");
    assert_eq!(apache.get("/c").environ()["rgi.application_group"], format!("127.0.0.1:{}|/c", apache.port));
    assert_eq!(apache.get("/d").environ()["rgi.application_group"], "");
    assert_eq!(apache.get("/e").environ()["rgi.application_group"], format!("127.0.0.1:{}", apache.port));
}

#[test]
fn configtest_rejects_bad_libraries_and_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("libtext.so");
    std::fs::write(&text_file, "hello").unwrap();
    let cases = [
        (format!("RGIScriptAlias /x {}/missing.so", dir.path().display()), "cannot read app library"),
        (format!("RGIScriptAlias /x {}", text_file.display()), "is not a shared library"),
        (format!("RGIScriptAlias /x {}", support::module().display()), "is not an RGI app"),
        (format!("RGIScriptAlias x {}", example("hello").display()), "must start with '/'"),
        (format!("RGIScriptAlias /x {} colour=red", example("hello").display()), "unknown option 'colour'"),
        ("RGIScriptAlias /x".to_string(), "expected URL-PATH LIBRARY"),
        (format!("RGIScriptAliasMatch ^/(x {}", example("hello").display()), "not a valid regular expression"),
        ("RGIApplicationGroup %{NOPE}".to_string(), "%{NOPE}"),
        ("RGIPassAuthorization maybe".to_string(), "RGIPassAuthorization"),
        (format!("RGIImportScript {}", example("hello").display()), "application-group= is required"),
    ];
    for (line, expected) in cases {
        let (ok, output) = configtest(&Config::new(format!("{line}\n")));
        assert!(!ok, "{line} must fail apache2 -t");
        assert!(output.contains(expected), "{line}: expected {expected:?} in:\n{output}");
        let directive = line.split_whitespace().next().unwrap();
        assert!(output.contains(directive), "{line}: the message must name {directive}:\n{output}");
    }
    let (ok, output) = configtest(&examples_config(Mode::Embedded));
    assert!(ok, "{output}");
}

fn script_alias_match_substitutes_the_library(mode: Mode) {
    let config = mode
        .config(format!("RGIScriptAliasMatch ^/apps/([a-z]+) {}/libexample_$1.so\n", support::artifacts().display()));
    let apache = Apache::start(config);
    assert_eq!(apache.get("/apps/hello").text(), "Hello, World!");
    let env = apache.get("/apps/environ/more").environ();
    assert_eq!((env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()), ("/apps/environ", "/more"));
    assert_eq!(apache.get("/apps/nosuchapp").status, 500);
    assert!(apache.error_log().contains("libexample_nosuchapp.so"));
}

fn import_script_creates_the_instance_at_child_start(mode: Mode) {
    let config = mode.config(format!(
        "RGIImportScript {p} application-group=early\nRGIScriptAlias /p {p} application-group=early\n\
         <Location /p>\n RGIOption panic.create on\n</Location>\n",
        p = example("panic").display()
    ));
    // The import creates the instance without the option, so the request's option never matters.
    let apache = Apache::start(config);
    assert_eq!(apache.get("/p?where=none").text(), "no panic");
}

fn options_reach_the_app(mode: Mode) {
    let config = mode.config(format!(
        "RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file /nonexistent/file\n</Location>\n",
        example("download").display()
    ));
    let apache = Apache::start(config);
    assert_eq!(apache.get("/download").status, 500);
    assert!(apache.wait_for_log("/nonexistent") || apache.error_log().contains("No such file"));
}

fn concurrent_first_requests_create_one_instance(mode: Mode) {
    let config = mode.config(format!(
        "RGIScriptAlias /a {w} application-group=one\nRGIScriptAlias /b {w} application-group=one\n\
         RGIScriptAlias /c {w} application-group=two\n",
        w = example("whoami").display()
    ));
    let apache = Apache::start(config);
    let port = apache.port;
    let answers: Vec<_> = (0..8)
        .map(|i| std::thread::spawn(move || support::get(port, if i % 2 == 0 { "/a" } else { "/b" }).environ()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let pid = &answers[0]["pid"];
    assert!(answers.iter().all(|a| &a["pid"] == pid), "one child serves all (event MPM, 1 process)");
    assert!(answers.iter().all(|a| a["instance"] == "1" && a["group"] == "one"), "{answers:?}");
    let c = apache.get("/c").environ();
    assert_eq!((c["instance"].as_str(), c["instances"].as_str(), c["group"].as_str()), ("2", "2", "two"));
}

fn client_disconnect_mid_response_frees_everything(mode: Mode) {
    let apache = Apache::start(examples_config(mode).mpm(Mpm::Prefork));
    for _ in 0..5 {
        let mut s = connect(apache.port);
        s.write_all(b"GET /stream?n=50&ms=20 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).unwrap();
        drop(s);
    }
    // The abandoned streams end on their own; the children keep serving.
    for _ in 0..10 {
        assert_eq!(apache.get("/hello").status, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(apache.get("/hello").text(), "Hello, World!");
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
}

fn files_past_4_gib_are_sent_with_the_right_offsets(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let size: u64 = 5 * 1024 * 1024 * 1024 + 123;
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(size).unwrap(); // sparse: costs no disk
    let marker = b"the end of a very large file";
    std::os::unix::fs::FileExt::write_at(&file, marker, size - marker.len() as u64).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = mode.config(format!(
        "RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file {}\n</Location>\n",
        example("download").display(),
        path.display()
    ));
    let apache = Apache::start(config);
    let r = apache.request(b"HEAD /download HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("Content-Length"), Some(size.to_string().as_str()));
    let range = format!("bytes={}-", size - marker.len() as u64);
    let r = apache.request(
        format!("GET /download HTTP/1.1\r\nHost: x\r\nRange: {range}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, marker);
    let r = apache.get(&format!("/download?offset={}&len={}", size - marker.len() as u64, marker.len()));
    assert_eq!(r.body, marker);
}

fn a_whole_2_gib_file_streams_through(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two-gib.bin");
    let size: u64 = 2 * 1024 * 1024 * 1024 + 1;
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(size).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"Z", size - 1).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = mode.config(format!(
        "RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file {}\n</Location>\n",
        example("download").display(),
        path.display()
    ));
    let apache = Apache::start(config);
    let mut s = connect(apache.port);
    s.write_all(b"GET /download HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut last) = (0u64, 0u8);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        last = buf[n - 1];
    }
    let head = format!("Content-Length: {size}");
    assert!(total > size, "head + {size} body bytes expected, got {total} ({head})");
    assert_eq!(last, b'Z');
}

fn graceful_and_hard_restarts_under_load(mode: Mode) {
    let apache = Apache::start(examples_config(mode));
    let port = apache.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match support::http::try_get(port, "/hello") {
                        Some(r) if r.text() == "Hello, World!" => ok += 1,
                        other => failed.push(format!("{other:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for _ in 0..5 {
        apache.signal(libc::SIGUSR1);
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.into_iter().map(|t| t.join().unwrap()).fold((0, Vec::new()), |mut a, b| {
        a.1.extend(b.1);
        (a.0 + b.0, a.1)
    });
    assert!(ok > 0 && failed.is_empty(), "{ok} succeeded; failed: {:?}", &failed[..failed.len().min(3)]);
    for _ in 0..2 {
        apache.signal(libc::SIGHUP);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while support::http::try_get(port, "/hello").map(|r| r.status) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "no answer after restarts");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", apache.pid())).unwrap().count();
    assert_eq!(threads, 1, "the Apache parent must run no threads of ours");
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
    assert!(log.matches("Doing graceful restart").count() >= 3, "{log}");
}

fn virtual_hosts_have_their_own_aliases_and_inherit_the_main_servers(mode: Mode) {
    let config = mode.config(format!(
        "RGIScriptAlias /main {env}\n\
         <VirtualHost 127.0.0.1:{{port}}>\n ServerName one.test\n RGIScriptAlias /app {hello}\n</VirtualHost>\n\
         <VirtualHost 127.0.0.1:{{port}}>\n ServerName two.test\n RGIScriptAlias /app {env}\n</VirtualHost>\n",
        env = example("environ").display(),
        hello = example("hello").display()
    ));
    let apache = Apache::start(config);
    let ask = |host: &str, path: &str| {
        apache.request(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
    };
    assert_eq!(ask("one.test", "/app").text(), "Hello, World!");
    let two = ask("two.test", "/app").environ();
    assert_eq!(two["SERVER_NAME"], "two.test");
    assert_eq!(two["rgi.application_group"], "two.test|/app");
    assert_eq!(ask("one.test", "/main").environ()["SCRIPT_NAME"], "/main");
    assert_eq!(ask("two.test", "/main").environ()["rgi.application_group"], "two.test|/main");
}

/// Builds a shared library from C source with gcc, for libraries no RGI SDK would produce.
fn c_library(dir: &std::path::Path, name: &str, source: &str) -> std::path::PathBuf {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("lib{name}.so"));
    std::fs::write(&c, source).unwrap();
    let status = std::process::Command::new("gcc").args(["-shared", "-fPIC", "-o"]).arg(&so).arg(&c).status().unwrap();
    assert!(status.success(), "gcc failed");
    so
}

#[test]
fn configtest_rejects_libraries_of_another_abi_or_with_a_damaged_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = |name: &str, magic: &str, major: u32| {
        format!(
            "struct m {{ unsigned long long magic; unsigned major, minor, roles, reserved; char v[32]; }};\n\
             const struct m {name} = {{ {magic}ULL, {major}, 0, 1, 0, \"9.9.9\" }};\n"
        )
    };
    let magic = format!("{}", u64::from_le_bytes(*b"RGI-APP\0"));
    let v2 = c_library(dir.path(), "abi2", &manifest("rgi_manifest_v2", &magic, 2));
    let bad_magic = c_library(dir.path(), "badmagic", &manifest("rgi_manifest_v1", "42", 1));
    let lying = c_library(dir.path(), "lying", &manifest("rgi_manifest_v1", &magic, 7));
    let cases = [
        (v2, "was built for RGI ABI 2, but this mod_rgi speaks ABI 1"),
        (bad_magic, "damaged RGI manifest (wrong magic)"),
        (lying, "was built for RGI ABI 7"),
    ];
    for (library, expected) in cases {
        let (ok, output) = configtest(&Config::new(format!("RGIScriptAlias /x {}\n", library.display())));
        assert!(!ok && output.contains(expected) && output.contains("RGIScriptAlias"), "{expected}:\n{output}");
    }
}

#[test]
fn a_library_without_the_app_role_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let magic = format!("{}", u64::from_le_bytes(*b"RGI-APP\0"));
    let auth_only = c_library(
        dir.path(),
        "authonly",
        &format!(
            "struct m {{ unsigned long long magic; unsigned major, minor, roles, reserved; char v[32]; }};\n\
             const struct m rgi_manifest_v1 = {{ {magic}ULL, 1, 0, 2, 0, \"0.1.0\" }};\n"
        ),
    );
    let (ok, output) = configtest(&Config::new(format!("RGIScriptAlias /x {}\n", auth_only.display())));
    assert!(!ok && output.contains("does not implement app"), "{output}");
}

// Every case above runs twice: apps in Apache's children, and apps in a daemon process group.
crate::in_both_modes!(
    hello_is_served_in_every_mpm,
    environ_splits_script_name_and_path_info_at_the_alias,
    environ_has_the_cgi_variables,
    environ_values_keep_raw_bytes,
    setenv_variables_reach_the_environ_but_not_over_cgi_ones,
    echo_streams_fixed_and_chunked_bodies_back,
    echo_handles_expect_100_continue,
    limit_request_body_answers_413,
    stream_sends_each_chunk_before_the_next_is_made,
    head_sends_no_body,
    panics_give_500_and_the_child_keeps_serving,
    panic_in_create_gives_500_with_a_log_line,
    bad_response_heads_never_reach_the_client,
    bodies_are_held_to_their_content_length,
    a_failing_body_is_cut_not_completed,
    download_sends_files_with_ranges_and_conditions,
    one_instance_per_group_shared_by_aliases,
    script_alias_match_substitutes_the_library,
    import_script_creates_the_instance_at_child_start,
    options_reach_the_app,
    concurrent_first_requests_create_one_instance,
    client_disconnect_mid_response_frees_everything,
    files_past_4_gib_are_sent_with_the_right_offsets,
    a_whole_2_gib_file_streams_through,
    graceful_and_hard_restarts_under_load,
    virtual_hosts_have_their_own_aliases_and_inherit_the_main_servers,
);
