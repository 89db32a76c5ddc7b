//! Sessions, forms and the session demo against a real Apache: the shmcb and Redis stores,
//! tampered and expired cookies, several processes and hosts, concurrent writes, and the demo
//! driven by a cookie-keeping client and by headless Chromium.

mod support;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::chromium::Chromium;
use support::client::{Client, Connection};
use support::{Apache, Config, Mpm, configtest, example};

const SECRET: &str = "test secret: 0123456789abcdef0123456789abcdef";

/// The counter at `/counter` and the demo at `/demo`, sharing the module's session store.
fn sessions_config(extra: &str) -> Config {
    Config::new(format!(
        "{extra}\n\
         RGIOption session.secret \"{SECRET}\"\n\
         RGIScriptAlias /counter {counter}\n\
         RGIScriptAlias /demo {demo}\n\
         RGIScriptAlias /forms {forms}\n",
        counter = example("session_counter").display(),
        demo = example("sessions").display(),
        forms = example("forms").display(),
    ))
    .module("socache_shmcb")
}

/// `visits=N new=B pid=P` of the counter.
fn counter(text: &str) -> (u64, bool, u32) {
    let field = |key: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {key} in {text:?}"))
            .to_string()
    };
    (field("visits").parse().unwrap(), field("new") == "true", field("pid").parse().unwrap())
}

#[test]
fn a_new_visitor_returns_with_its_session() {
    let apache = Apache::start(sessions_config(""));
    let mut client = Client::new(apache.port);
    let first = client.get("/counter/count");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(counter(&first.text()).0, 1);
    assert!(counter(&first.text()).1, "the first visit is new");
    let set_cookie = first.header("Set-Cookie").expect("a new session sets its cookie");
    for attribute in ["rgi_session=", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no Secure over plain HTTP: {set_cookie}");

    let second = client.get("/counter/count");
    assert_eq!(counter(&second.text()).0, 2);
    assert!(!counter(&second.text()).1, "the second visit returns");
    assert_eq!(second.header("Set-Cookie"), None, "a known session needs no new cookie");
    assert_eq!(counter(&client.get("/counter/count").text()).0, 3);

    // Another visitor has a session of its own.
    let mut other = Client::new(apache.port);
    assert_eq!(counter(&other.get("/counter/count").text()).0, 1);
    assert_ne!(other.jar["rgi_session"], client.jar["rgi_session"]);
}

#[test]
fn tampered_or_foreign_cookies_give_a_fresh_session() {
    let apache = Apache::start(sessions_config(""));
    let mut client = Client::new(apache.port);
    client.get("/counter/count");
    client.get("/counter/count");
    let good = client.jar["rgi_session"].clone();
    let (id, signature) = good.rsplit_once('.').unwrap();
    let flip = |s: &str, i: usize| {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let forged_id = format!("{}.{signature}", flip(id, 5));
    let forged_signature = format!("{id}.{}", flip(signature, 10));
    let unsigned = id.to_string();
    let garbage = "%%%.==x".to_string();
    for bad in [forged_id, forged_signature, unsigned, garbage, String::new()] {
        let mut attacker = Client::new(apache.port);
        attacker.jar.insert("rgi_session".into(), bad.clone());
        let r = attacker.get("/counter/count");
        assert_eq!(r.status, 200, "cookie {bad:?}: {}", r.text());
        let (visits, new, _) = counter(&r.text());
        assert_eq!((visits, new), (1, true), "cookie {bad:?} must not reach the session");
        assert_ne!(attacker.jar["rgi_session"], good);
    }
    // The real session is untouched.
    assert_eq!(counter(&client.get("/counter/count").text()).0, 3);
}

#[test]
fn sessions_expire_after_their_timeout() {
    let apache = Apache::start(sessions_config("RGIOption session.timeout 1"));
    let mut client = Client::new(apache.port);
    assert_eq!(counter(&client.get("/counter/count").text()).0, 1);
    let old = client.jar["rgi_session"].clone();
    // Well past the timeout (and the store's own expiry, a second later).
    std::thread::sleep(Duration::from_millis(3500));
    let r = client.get("/counter/count");
    assert_eq!(r.status, 200);
    assert_eq!(counter(&r.text()).0, 1, "an expired session starts again: {}", r.text());
    assert!(counter(&r.text()).1);
    assert_ne!(client.jar["rgi_session"], old, "with a new id");
    let log = apache.error_log();
    assert!(log.contains("names a session the store no longer has"), "the app logs why: {log}");
}

/// shmcb is a ring per part of its memory (128 parts by default), and a session id always lands
/// in the same part: a session not saved for a while is forgotten once its part has taken as
/// many newer records as it holds. The default cache must keep an idle session while thousands
/// of others are saved by many users, as on a real site (1 MiB sized for 512-byte records kept
/// only about 120 per part, so a busy site logged its quiet users out). The saves come from 500
/// users, 10 each: a few users saving hundreds of times each could all land in the idle
/// session's part by chance and fill it alone.
#[test]
fn an_idle_session_outlives_thousands_of_saves_of_others() {
    let apache = Apache::start(sessions_config(""));
    let mut idle = Client::new(apache.port);
    let (visits, new, _) = counter(&idle.get("/counter/count").text());
    assert_eq!((visits, new), (1, true));
    for _ in 0..500 {
        let mut busy = Client::new(apache.port);
        for visit in 1..=10 {
            assert_eq!(counter(&busy.get("/counter/count").text()).0, visit);
        }
    }
    let (visits, new, _) = counter(&idle.get("/counter/count").text());
    assert_eq!((visits, new), (2, false), "the idle session is still known after 5,000 saves of others");
}

#[test]
fn logout_removes_the_session_and_its_cookie() {
    let apache = Apache::start(sessions_config(""));
    let mut client = Client::new(apache.port);
    client.get("/counter/count");
    let old = client.jar["rgi_session"].clone();
    let r = client.get("/counter/logout");
    let set_cookie = r.header("Set-Cookie").expect("logout deletes the cookie");
    assert!(set_cookie.contains("Max-Age=0"), "{set_cookie}");
    assert!(!client.jar.contains_key("rgi_session"));
    // Even a client that keeps the old cookie finds no session behind it.
    let mut stubborn = Client::new(apache.port);
    stubborn.jar.insert("rgi_session".into(), old);
    assert_eq!(counter(&stubborn.get("/counter/peek").text()).0, 0);
}

#[test]
fn prefork_children_share_shmcb_sessions() {
    // Enough children up front, and kept-alive connections that stay open for the whole test.
    let apache =
        Apache::start(sessions_config("StartServers 4\nMinSpareServers 4\nKeepAliveTimeout 60").mpm(Mpm::Prefork));
    let mut client = Client::new(apache.port);
    counter(&client.get("/counter/count").text());
    let cookie = format!("rgi_session={}", client.jar["rgi_session"]);
    let request = format!("GET /counter/count HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n");

    // A kept-alive connection occupies its prefork child, so each new connection opened while
    // the others stay open is served by another child.
    let mut connections = Vec::new();
    let mut pids = Vec::new();
    for expected in 2..=4 {
        let mut connection = Connection::open(apache.port);
        let (visits, new, pid) = counter(&connection.request(request.as_bytes()).text());
        assert_eq!((visits, new), (expected, false), "on child {pid}");
        pids.push(pid);
        connections.push(connection);
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "each kept-alive connection holds a child of its own: {pids:?}");
}

/// Starts `threads` clients that each count `per_thread` times, slowly, in one session, through
/// the counters at `mounts` in turn.
fn count_concurrently(apache: &Apache, mounts: &[&str], threads: usize, per_thread: usize) -> u64 {
    let mut client = Client::new(apache.port);
    assert_eq!(counter(&client.get(&format!("{}/count", mounts[0])).text()).0, 1);
    let jar = client.jar.clone();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let mut c = Client { port: apache.port, jar: jar.clone() };
            let mounts: Vec<String> = mounts.iter().map(|m| m.to_string()).collect();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let r = c.get(&format!("{}/slow-count?ms=25", mounts[(t + i) % mounts.len()]));
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    counter(&client.get(&format!("{}/peek", mounts[0])).text()).0
}

#[test]
fn concurrent_writes_to_one_session_are_not_lost() {
    for mpm in [Mpm::Event, Mpm::Prefork] {
        let apache = Apache::start(sessions_config("").mpm(mpm));
        let total = count_concurrently(&apache, &["/counter"], 4, 5);
        assert_eq!(total, 1 + 4 * 5, "{mpm:?}: every count survives");
    }
}

#[test]
fn daemon_processes_share_sessions_with_apache_children() {
    let apache = Apache::start(sessions_config(&format!(
        "RGIDaemonProcess counters processes=2 threads=4\n\
         RGIScriptAlias /daemon-counter {} process-group=counters",
        example("session_counter").display()
    )));
    let mut client = Client::new(apache.port);
    let (_, _, child) = counter(&client.get("/counter/count").text());
    let (visits, new, daemon) = counter(&client.get("/daemon-counter/count").text());
    assert_eq!((visits, new), (2, false), "the daemon process knows the session");
    assert_ne!(child, daemon, "served by a daemon process");
    assert_eq!(counter(&client.get("/counter/count").text()).0, 3, "and the child sees its save");
    // Concurrent writes through both kinds of process, one set of session locks for all.
    let total = count_concurrently(&apache, &["/daemon-counter", "/counter"], 4, 5);
    assert_eq!(total, 1 + 4 * 5);
}

#[test]
fn sessions_without_a_cache_fail_clearly() {
    let apache = Apache::start(sessions_config("RGISessionCache none"));
    let r = apache.get("/counter/count");
    assert_eq!(r.status, 500);
    assert!(apache.wait_for_log("there is no session cache"), "{}", apache.error_log());
    // Apps that do not use sessions are unaffected.
    assert_eq!(apache.get("/counter/pid").status, 200);
}

#[test]
fn bad_session_directives_fail_configtest() {
    let cases = [
        ("RGISessionCache nosuch:x", "RGISessionCache: the socache provider 'nosuch' is not available"),
        ("RGISessionCache shmcb:/tmp/x(100)", "size has to be >= 8192 bytes"),
        ("RGISessionCache ':x'", "is not PROVIDER[:ARGUMENT]"),
        ("RGISessionLocks 0", "RGISessionLocks: '0' is not a number of locks from 1 to 1024"),
        ("<VirtualHost *:80>\nRGISessionLocks 8\n</VirtualHost>", "cannot occur within <VirtualHost>"),
    ];
    for (directive, message) in cases {
        let (ok, output) = configtest(&sessions_config(directive));
        assert!(!ok, "{directive} must be refused");
        assert!(output.contains(message), "{directive}: expected {message:?} in\n{output}");
    }
    let (ok, output) = configtest(&sessions_config("RGISessionCache shmcb:rgi-test(65536)\nRGISessionLocks 4"));
    assert!(ok, "{output}");
}

/// A session store server from Debian (redis-server or memcached) on a free loopback port,
/// stopped on drop.
struct StoreServer {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl StoreServer {
    fn redis() -> StoreServer {
        Self::start("/usr/bin/redis-server", "redis-server", |port, dir| {
            let mut args: Vec<String> = ["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(["--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"].map(String::from));
            args.extend(["--dir".to_string(), dir.display().to_string()]);
            args
        })
    }

    fn memcached() -> StoreServer {
        Self::start("/usr/bin/memcached", "memcached", |port, _| {
            // -U 0: no UDP; -u: the user to run as when started as root.
            ["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-u", "nobody", "-m", "16"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
    }

    fn start(binary: &str, package: &str, args: impl Fn(u16, &std::path::Path) -> Vec<String>) -> StoreServer {
        assert!(
            std::path::Path::new(binary).exists(),
            "{binary} is missing: install Debian's {package} (scripts/setup-debian.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new(binary)
                .args(args(port, dir.path()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {binary}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return StoreServer { port, child, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{binary} did not start");
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two Apaches with `RGISessionCache PROVIDER:127.0.0.1:PORT` recognise each other's sessions.
fn two_apaches_share_sessions(provider: &str, server: &StoreServer) {
    let config = || {
        sessions_config(&format!("RGISessionCache {provider}:127.0.0.1:{}", server.port))
            .module(&format!("socache_{provider}"))
    };
    let (a, b) = (Apache::start(config()), Apache::start(config()));
    let mut client = Client::new(a.port);
    let on_a = counter(&client.get("/counter/count").text());
    assert_eq!((on_a.0, on_a.1), (1, true), "{provider}");
    client.port = b.port;
    let on_b = counter(&client.get("/counter/count").text());
    assert_eq!((on_b.0, on_b.1), (2, false), "{provider}: the second Apache knows the session");
    client.port = a.port;
    assert_eq!(counter(&client.get("/counter/count").text()).0, 3, "{provider}: and the first sees its save");
    client.get("/counter/logout");
    client.port = b.port;
    let after = counter(&client.get("/counter/peek").text());
    assert_eq!((after.0, after.1), (0, true), "{provider}: a logout on one Apache ends the session on both");
}

#[test]
fn two_apaches_share_sessions_through_redis() {
    two_apaches_share_sessions("redis", &StoreServer::redis());
}

#[test]
fn two_apaches_share_sessions_through_memcache() {
    two_apaches_share_sessions("memcache", &StoreServer::memcached());
}

#[test]
fn the_demo_logs_in_counts_visits_and_logs_out() {
    let apache = Apache::start(sessions_config(""));
    let mut client = Client::new(apache.port);
    let login = client.get("/demo/");
    assert_eq!(login.status, 200);
    assert_eq!(login.header("Content-Type"), Some("text/html; charset=utf-8"));
    let page = login.text();
    assert!(page.contains("Session name") && page.contains("Create Session"), "{page}");
    // MiniJinja escapes '/' in values as &#x2f;, which browsers read back as '/'.
    assert!(page.replace("&#x2f;", "/").contains(r#"action="/demo/login""#), "{page}");
    assert_eq!(login.header("Set-Cookie"), None, "no session until one is named");

    let created = client.post_form("/demo/login", &[("name", "Ada <script>")]);
    assert_eq!(created.status, 303, "{}", created.text());
    assert_eq!(created.header("Location"), Some("/demo/"));
    assert!(client.jar.contains_key("rgi_session"));

    let first = client.get("/demo/").text();
    assert!(first.contains("Hello, for the first time"), "{first}");
    assert!(first.contains("Ada &lt;script&gt;"), "the name is escaped: {first}");
    assert!(!first.contains("<script>"));
    assert!(first.contains(r#"<dd id="visits">1</dd>"#), "{first}");
    assert!(first.contains(" UTC</dd>"), "{first}");

    let again = client.get("/demo/").text();
    assert!(again.contains("Hello again"), "{again}");
    assert!(again.contains(r#"<dd id="visits">2</dd>"#), "{again}");

    let out = client.post_form("/demo/logout", &[]);
    assert_eq!(out.status, 303);
    assert!(!client.jar.contains_key("rgi_session"), "the cookie is deleted");
    let back = client.get("/demo/").text();
    assert!(back.contains("Create Session"), "{back}");

    // A bad name answers the form again with 400; a non-form body 415.
    let bad = client.post_form("/demo/login", &[("name", "")]);
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("1 to 64 characters"));
    let not_a_form = client.send("POST", "/demo/login", &[("Content-Type", "text/plain")], b"name=x");
    assert_eq!(not_a_form.status, 415, "{}", not_a_form.text());
}

#[test]
fn a_browser_logs_in_and_returns() {
    let apache = Apache::start(sessions_config(""));
    let mut chromium = Chromium::start();
    let page = chromium.open(&format!("http://127.0.0.1:{}/demo/", apache.port));
    chromium.wait_for_text(&page, "Create Session");
    chromium.eval(&page, "document.getElementById('name').focus()");
    chromium.type_text(&page, "Browser tab");
    chromium.eval(&page, "document.querySelector('button[type=submit]').click()");
    let text = chromium.wait_for_text(&page, "Hello, for the first time");
    assert!(text.contains("Browser tab"), "{text}");
    if let Some(dir) = std::env::var_os("RGI_SCREENSHOTS") {
        chromium.screenshot(&page, &std::path::Path::new(&dir).join("sessions-demo.png"));
    }
    chromium.reload(&page);
    chromium.wait_for_text(&page, "Hello again");
    assert_eq!(chromium.eval(&page, "document.getElementById('visits').innerText"), "2");
    chromium.eval(&page, "document.querySelector('form button').click()");
    chromium.wait_for_text(&page, "Create Session");
}

#[test]
fn forms_parse_fields_and_spool_large_uploads() {
    let apache = Apache::start(sessions_config(
        "<Location /forms>\nRGIOption forms.spool-threshold 1000\nRGIOption forms.max-size 3000000\n</Location>",
    ));
    let upload: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let fnv = upload.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut body = b"--XX\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nr\xc3\xa9sum\xc3\xa9\r\n".to_vec();
    body.extend_from_slice(b"--XX\r\nContent-Disposition: form-data; name=\"small\"; filename=\"s.txt\"\r\n\r\nhi\r\n");
    body.extend_from_slice(b"--XX\r\nContent-Disposition: form-data; name=\"big\"; filename=\"big.bin\"\r\n");
    body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(&upload);
    body.extend_from_slice(b"\r\n--XX--\r\n");
    let mut client = Client::new(apache.port);
    let r = client.send("POST", "/forms?page=2", &[("Content-Type", "multipart/form-data; boundary=XX")], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("query page=2\n"), "{text}");
    assert!(text.contains("field title=résumé\n"), "{text}");
    assert!(text.contains("file small name=s.txt size=2 spooled=false"), "{text}");
    assert!(text.contains(&format!("file big name=big.bin size=2000000 spooled=true fnv={fnv:016x}")), "{text}");

    // Chunked (no Content-Length): streamed the same way.
    let mut chunked = format!(
        "POST /forms HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\
         Content-Type: multipart/form-data; boundary=XX\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = apache.request(&chunked);
    assert!(r.text().contains("spooled=true"), "{}", r.text());

    let urlencoded = client.post_form("/forms", &[("a", "1 2"), ("b", "&=")]);
    assert_eq!(urlencoded.text(), "field a=1 2\nfield b=&=\n");
}

#[test]
fn forms_over_their_limits_answer_413_and_400() {
    let apache = Apache::start(sessions_config(
        "<Location /forms>\nRGIOption forms.max-size 10000\nRGIOption forms.max-fields 3\n\
         RGIOption forms.max-field-size 100\n</Location>",
    ));
    let mut client = Client::new(apache.port);
    let big = "x".repeat(20_000);
    let r = client.post_form("/forms", &[("a", &big)]);
    assert_eq!(r.status, 413, "declared too large: {}", r.text());

    let mut chunked = b"POST /forms HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\
        Content-Type: application/x-www-form-urlencoded\r\n\r\n4e20\r\n"
        .to_vec();
    chunked.extend_from_slice(format!("a={}", &big[2..]).as_bytes());
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(apache.request(&chunked).status, 413, "too large while streaming");

    let r = client.post_form("/forms", &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
    assert_eq!(r.status, 400, "too many fields: {}", r.text());
    assert!(r.text().contains("more than 3 fields"));
    let r = client.post_form("/forms", &[("a", &"y".repeat(101))]);
    assert_eq!(r.status, 413, "field too large: {}", r.text());
    let r = client.send("POST", "/forms", &[("Content-Type", "multipart/form-data; boundary=B")], b"no parts here");
    assert_eq!(r.status, 400, "malformed: {}", r.text());
    assert!(apache.error_log().contains("answering 400"), "logged at info");
}

#[test]
fn sessions_work_across_a_graceful_restart() {
    let redis = StoreServer::redis();
    for (name, config) in [
        ("shmcb", sessions_config("")),
        ("redis", sessions_config(&format!("RGISessionCache redis:127.0.0.1:{}", redis.port)).module("socache_redis")),
    ] {
        let apache = Apache::start(config);
        let mut client = Client::new(apache.port);
        assert_eq!(counter(&client.get("/counter/count").text()).0, 1);
        apache.signal(libc::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while apache.error_log().matches("resuming normal operations").count() < 2 {
            assert!(Instant::now() < deadline, "{name}: no graceful restart\n{}", apache.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let (visits, new, _) = counter(&client.get("/counter/count").text());
        if name == "redis" {
            assert_eq!((visits, new), (2, false), "Redis keeps sessions across restarts");
        } else {
            // Shared memory is made anew with the new configuration: sessions start again.
            assert!(visits >= 1, "{name}: {visits}");
        }
        let (next, new, _) = counter(&client.get("/counter/count").text());
        assert_eq!((next, new), (visits + 1, false), "{name}: sessions work in the new generation");
    }
}
