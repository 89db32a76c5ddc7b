//! Faults and load against a live Apache: restarts under a wrk load, a thousand slow connections,
//! app libraries replaced on disk. Each test counts Apache's processes, threads and descriptors
//! (/proc) before and after, so a leak fails it.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::http::{connect, parse, read_response, try_get};
use support::procs::{Footprint, footprint};
use support::wrk::Wrk;
use support::{Apache, Config, Mode, example};

const HELLO: &str = "Hello, World!";

/// Always exactly two serving children (spares pinned to MaxRequestWorkers), so two idle moments
/// have the same footprint; spare scoreboard slots let retiring generations finish their requests
/// while the new one serves.
const TWO_CHILDREN: &str = "StartServers 2\nServerLimit 16\nThreadLimit 8\nThreadsPerChild 8\n\
MaxRequestWorkers 16\nMinSpareThreads 16\nMaxSpareThreads 16\n";

/// `body` served in `mode` by exactly two Apache children (and, in daemon mode, one daemon
/// process of 8 threads).
fn two_children(mode: Mode, body: impl Into<String>) -> Config {
    mode.config(body).mpm_settings(TWO_CHILDREN)
}

/// Processes besides Apache's children that serve apps in `mode`.
fn daemons(mode: Mode) -> usize {
    if mode == Mode::Daemon { 1 } else { 0 }
}

fn apps() -> String {
    ["hello", "whoami", "environ", "echo"]
        .iter()
        .map(|name| format!("RGIScriptAlias /{name} {}\n", example(name).display()))
        .collect()
}

/// Waits (up to a minute) until the server is idle with exactly the footprint `want`.
fn settles_to(apache: &Apache, want: &Footprint) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = footprint(apache.pid());
        if &now == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            let fds: Vec<String> = support::procs::group(apache.pid())
                .iter()
                .map(|p| format!("{p:?}\n  {}", support::procs::describe_fds(p.pid).join("\n  ")))
                .collect();
            return Err(format!("before: {want:?}\nafter:  {now:?}\n{}", fds.join("\n")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The footprint once it holds still for a second: the server after warm-up.
fn steady_footprint(apache: &Apache) -> Footprint {
    let mut last = footprint(apache.pid());
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        let now = footprint(apache.pid());
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("Apache never settled: {last:?}");
}

/// Restarts Apache with `sig` and waits until a child of the new generation (a process that did
/// not run before) answers; returns the processes of the old generation.
fn restart_and_serve(apache: &Apache, sig: i32) -> Vec<u32> {
    let old: Vec<u32> = support::procs::group(apache.pid()).iter().map(|p| p.pid).collect();
    apache.restart(sig);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pid = try_get(apache.port, "/whoami").and_then(|r| r.environ().get("pid")?.parse::<u32>().ok());
        if pid.is_some_and(|pid| !old.contains(&pid)) {
            return old;
        }
        assert!(Instant::now() < deadline, "no child of the new generation answered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A warmed-up server in `mode`, its footprint, and a wrk load on /hello: a new connection per
/// request (Connection: close) and keep-alive connections.
fn under_load(mode: Mode) -> (Apache, Footprint, Wrk, Wrk) {
    let apache = Apache::start(two_children(mode, apps()));
    for _ in 0..20 {
        assert_eq!(apache.get("/hello").text(), HELLO);
    }
    let before = steady_footprint(&apache);
    let fresh = Wrk::start(apache.port, "/hello", 8, true, HELLO);
    let kept = Wrk::start(apache.port, "/hello", 4, false, HELLO);
    (apache, before, fresh, kept)
}

fn twenty_graceful_restarts_under_load_lose_no_request(mode: Mode) {
    let (apache, before, fresh, kept) = under_load(mode);
    assert_eq!((before.parent_threads, before.others.values().sum::<usize>()), (1, 2 + daemons(mode)), "{before:?}");
    for _ in 0..20 {
        restart_and_serve(&apache, libc::SIGUSR1);
    }
    let (fresh, kept) = (fresh.stop(), kept.stop());
    println!("graceful restarts: new connections {fresh:?}\nkeep-alive {kept:?}");
    assert!(fresh.requests > 100, "{}", fresh.output);
    assert_eq!(fresh.failures(), 0, "{}\nfirst bad answer: {}", fresh.output, fresh.first_bad);
    // A keep-alive connection Apache closes on a restart may race with the client's next request
    // (HTTP's keep-alive race); wrong answers there would still be ours.
    assert_eq!((kept.bad_answers, kept.timeouts, kept.connect_errors), (0, 0, 0), "{}", kept.output);

    settles_to(&apache, &before).unwrap_or_else(|e| panic!("leak after 20 graceful restarts:\n{e}"));
    let log = apache.error_log();
    assert_eq!(log.matches("SIGUSR1 received").count(), 20, "{log}");
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
}

fn five_hard_restarts_under_load_recover_cleanly(mode: Mode) {
    let (apache, before, fresh, kept) = under_load(mode);
    let port = apache.port;
    let mut killed = Vec::new();
    for _ in 0..5 {
        killed.extend(restart_and_serve(&apache, libc::SIGHUP));
    }
    let (fresh, kept) = (fresh.stop(), kept.stop());
    println!("hard restarts: new connections {fresh:?}\nkeep-alive {kept:?}");
    // Requests in flight when the children are killed fail; every answer given is right.
    assert_eq!((fresh.bad_answers, kept.bad_answers), (0, 0), "{}\n{}", fresh.first_bad, kept.first_bad);
    assert!(fresh.requests > 100 && kept.requests > 100);

    // Recovered: a fresh load runs without a single failure, and nothing leaked.
    let after = Wrk::start(port, "/hello", 8, true, HELLO);
    for _ in 0..200 {
        assert_eq!(apache.get("/hello").text(), HELLO);
    }
    let after = after.stop();
    assert!(after.requests > 0 && after.failures() == 0, "{}", after.output);
    settles_to(&apache, &before).unwrap_or_else(|e| panic!("leak after 5 hard restarts:\n{e}"));
    let log = apache.error_log();
    assert_eq!(log.matches("SIGHUP received").count(), 5, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // A hard restart kills the old generation mid-flight; Apache's event MPM itself occasionally
    // faults in a child it is killing (seen in core dumps: the child's main thread in
    // mod_mpm_event while its workers exit). Only those may die of a signal.
    for line in log.lines().filter(|l| l.contains("exit signal")) {
        let pid = line.split("child pid ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
        assert!(killed.iter().any(|k| k.to_string() == pid), "a process that was not being killed crashed: {line}");
    }
}

/// Room for a thousand connections: four children of 25 threads, each child holding many more
/// idle keep-alive connections than threads (event MPM); mod_reqtimeout for slow senders.
const THOUSAND: &str = "StartServers 4\nServerLimit 4\nThreadLimit 25\nThreadsPerChild 25\n\
MaxRequestWorkers 100\nMinSpareThreads 100\nMaxSpareThreads 100\nAsyncRequestWorkerFactor 100\n";

/// Raises this process's descriptor limit to its hard limit (Apache, started by us, inherits it).
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    assert!(lim.rlim_cur >= 4096, "need at least 4096 descriptors, have {}", lim.rlim_cur);
}

fn a_thousand_slow_connections_do_not_stop_other_clients(mode: Mode) {
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let body = format!(
        "{}RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file {}\n</Location>\n\
         Timeout 300\nKeepAliveTimeout 300\nMaxKeepAliveRequests 0\nRequestReadTimeout header=10-20,MinRate=500 body=10,MinRate=500\n",
        apps(),
        example("download").display(),
        file.display()
    );
    // A daemon group needs threads for the slow uploads and the other clients too.
    let mut config = mode.config(body).module("reqtimeout").mpm_settings(THOUSAND);
    config.body = config.body.replace("processes=1 threads=8", "processes=2 threads=50");
    let apache = Apache::start(config);
    let port = apache.port;
    let before = steady_footprint(&apache);

    let started = Instant::now();
    // 910 idle keep-alive connections, each after one answered request.
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..910 {
        let mut s = connect(port);
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s, false).unwrap().text(), HELLO);
        idle.push(s);
    }
    // 30 downloads of 8 MiB nobody reads, 30 request heads and 30 request bodies (to an app)
    // trickling in a byte at a time.
    let mut readers = Vec::new();
    for _ in 0..30 {
        let s = connect_with_small_window(port);
        (&s).write_all(b"GET /download HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        readers.push(s);
    }
    let mut heads = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..30 {
        let mut h = connect(port);
        h.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n").unwrap();
        heads.push(h);
        let mut b = connect(port);
        b.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nConnection: close\r\n\r\nab")
            .unwrap();
        bodies.push(b);
    }
    assert_eq!(idle.len() + readers.len() + heads.len() + bodies.len(), 1000);
    println!("1000 connections open after {:?}", started.elapsed());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        let mut slow: Vec<TcpStream> = heads.iter().chain(&bodies).map(|s| s.try_clone().unwrap()).collect();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write_all(b"x");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    // Meanwhile other clients are answered, and answered right.
    let mut answered = 0;

    for i in 0..300 {
        match i % 3 {
            0 => assert_eq!(apache.get("/hello").text(), HELLO),
            1 => assert_eq!(apache.get(&format!("/environ/n{i}")).environ()["PATH_INFO"], format!("/n{i}")),
            _ => {
                let body = format!("body {i}");
                let raw = format!(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                assert_eq!(apache.request(raw.as_bytes()).text(), body);
            }
        }
        answered += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickle.join().unwrap();
    assert_eq!(answered, 300);
    println!("300 other requests answered after {:?}", started.elapsed());

    // The slow ones: senders too slow for mod_reqtimeout get 408, downloads arrive whole once
    // read, and every idle keep-alive connection still works.
    for s in heads.iter_mut().chain(bodies.iter_mut()) {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert_eq!(parse(&out, false).map(|r| r.status).unwrap_or(0), 408, "{:?}", String::from_utf8_lossy(&out));
    }
    println!("408s after {:?}", started.elapsed());
    for mut s in readers {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let r = parse(&out, false).unwrap();
        assert!(r.status == 200 && r.body == data, "download of {} bytes", r.body.len());
    }
    // A child whose workers were all taken closes its idle keep-alive connections (event MPM), so
    // their clients reconnect to another; the rest are still served. Either way: no wrong answer.
    let mut closed = 0;
    for s in &mut idle {
        let sent = s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut first = [0u8; 1];
        match sent.and_then(|()| s.peek(&mut first)) {
            Ok(0) | Err(_) => closed += 1,
            Ok(_) => assert_eq!(read_response(s, false).unwrap().text(), HELLO),
        }
    }
    println!("{closed} of {} idle keep-alive connections were closed by the server", idle.len());
    println!("all checked after {:?}", started.elapsed());
    drop((idle, heads, bodies));
    settles_to(&apache, &before).unwrap_or_else(|e| panic!("leak after a thousand connections:\n{e}"));
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
}

/// A connection with a 4 KiB receive buffer, set before connecting so the TCP window is small
/// from the start: an unread download backs up into the server instead of the client's kernel.
fn connect_with_small_window(port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let bytes: i32 = 4096;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: a new socket, an int option and a sockaddr_in of the right size; the descriptor is
    // handed to the TcpStream, which owns it from then on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size = std::mem::size_of::<i32>() as libc::socklen_t;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&bytes as *const i32).cast(), size);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::connect(fd, (&addr as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        let s = TcpStream::from_raw_fd(fd);
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }
}

/// A big file served to clients slower than the server: Apache sets the file aside for write
/// completion, and the file must still be closed when the response is done.
fn files_sent_to_slow_readers_are_closed_afterwards(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let body = format!(
        "RGIScriptAlias /download {}\n<Location /download>\n RGIOption download.file {}\n</Location>\n",
        example("download").display(),
        file.display()
    );
    let apache = Apache::start(two_children(mode, body));
    let before = steady_footprint(&apache);
    let readers: Vec<TcpStream> = (0..6)
        .map(|_| {
            let s = connect_with_small_window(apache.port);
            (&s).write_all(b"GET /download HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for mut s in readers {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(parse(&out, false).unwrap().body == data);
    }
    settles_to(&apache, &before).unwrap_or_else(|e| panic!("descriptors left open:\n{e}"));
}

/// Asks until `path` answers with `want` twice in a row (children of a retiring generation may
/// answer the first requests after a restart).
fn answers_settle_to(port: u16, path: &str, want: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut in_a_row = 0;
    while in_a_row < 2 {
        assert!(Instant::now() < deadline, "{path} never answered as expected");
        match try_get(port, path) {
            Some(r) if r.status == 200 && want(&r.text()) => in_a_row += 1,
            _ => in_a_row = 0,
        }
    }
}

/// Waits until every process that serves apps in `mode` (both children, or the daemon) has
/// started and loaded `library` (RGIImportScript does it at process start), so none loads it
/// after the test replaces it.
fn every_server_maps(apache: &Apache, mode: Mode, library: &std::path::Path) {
    let servers = if mode == Mode::Daemon { 1 } else { 2 };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mapped = support::procs::group(apache.pid())
            .iter()
            .filter(|p| {
                let maps = std::fs::read_to_string(format!("/proc/{}/maps", p.pid)).unwrap_or_default();
                maps.contains(&library.display().to_string())
            })
            .count();
        if mapped == servers {
            return;
        }
        assert!(Instant::now() < deadline, "{mapped} of {servers} processes loaded {}", library.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn an_app_library_replaced_on_disk(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let library = dir.path().join("libswap.so");
    std::fs::copy(example("hello"), &library).unwrap();
    let body = format!(
        "RGIImportScript {lib} application-group=swap\nRGIScriptAlias /swap {lib} application-group=swap\n",
        lib = library.display()
    );
    let apache = Apache::start(two_children(mode, body));
    let (port, parent) = (apache.port, apache.pid());
    every_server_maps(&apache, mode, &library);
    assert_eq!(apache.get("/swap").text(), HELLO);
    let is_environ = |text: &str| text.contains("SCRIPT_NAME=/swap");

    // Replaced the safe way (a new file renamed over the old one): every running process keeps
    // the library it loaded, until a restart gives new processes, which load the new file.
    let staged = dir.path().join(".libswap.so.new");
    std::fs::copy(example("environ"), &staged).unwrap();
    std::fs::rename(&staged, &library).unwrap();
    for _ in 0..20 {
        assert_eq!(apache.get("/swap").text(), HELLO, "running processes keep the library they loaded");
    }
    apache.restart(libc::SIGUSR1);
    answers_settle_to(port, "/swap", is_environ);
    for _ in 0..20 {
        assert!(is_environ(&apache.get("/swap").text()));
    }
    let log = apache.error_log();
    assert!(!log.contains("exit signal"), "{log}");

    // Overwritten in place (cp onto the loaded file): what running processes do with their
    // mapping's pages changing under them is undefined, so only the server's recovery is
    // asserted: the parent, which never maps app libraries, stays up, and a restart serves the
    // new contents.
    std::fs::write(&library, std::fs::read(example("hello")).unwrap()).unwrap();
    let during: Vec<Option<u16>> = (0..20).map(|_| try_get(port, "/swap").map(|r| r.status)).collect();
    println!("answers right after the in-place overwrite: {during:?}");
    apache.restart(libc::SIGUSR1);
    answers_settle_to(port, "/swap", |text| text == HELLO);
    for _ in 0..20 {
        assert_eq!(apache.get("/swap").text(), HELLO);
    }
    assert_eq!(apache.pid(), parent);
    let crashes = apache.error_log().matches("exit signal").count();
    println!("children that died of the in-place overwrite: {crashes}");
}

/// A tmpfs of `size` mounted at `dir` while it lives (a disk that fills up), if this machine lets
/// us mount one.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0777"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// FNV-1a, as the forms example reports an upload's bytes.
fn fnv(data: &[u8]) -> String {
    format!(
        "{:016x}",
        data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    )
}

fn upload(apache: &Apache, path: &str, data: &[u8]) -> support::Response {
    let mut body = b"--XX\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nreport\r\n".to_vec();
    body.extend_from_slice(b"--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n\r\n");
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--XX--\r\n");
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    apache.request(&raw)
}

/// Uploads spooled to a directory the app cannot write, or to a disk that fills up mid-upload:
/// a plain 500 with the reason in the error log (not in the answer), no partial file left
/// behind, and the next upload that fits is stored whole.
fn uploads_that_cannot_be_spooled_answer_500_and_leave_nothing(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    let small = dir.path().join("small");
    let disk = SmallDisk::mount(&small, "256k");
    let forms = example("forms");
    let location = |url: &str, spool: &std::path::Path| {
        format!(
            "RGIScriptAlias {url} {}\n<Location {url}>\n RGIOption forms.spool-threshold 1000\n \
             RGIOption forms.max-size 10000000\n RGIOption forms.spool-dir {}\n</Location>\n",
            forms.display(),
            spool.display()
        )
    };
    let body = location("/locked", &locked) + &location("/small", &small);
    let apache = Apache::start(two_children(mode, body));
    let data: Vec<u8> = (0..2 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();

    let r = upload(&apache, "/locked", &data);
    assert_eq!(r.status, 500, "{r:?}");
    assert!(!r.text().contains("locked") && !r.text().contains("denied"), "no detail for the client: {r:?}");
    assert!(apache.wait_for_log("spooling an upload to disk failed"), "{}", apache.error_log());
    assert!(apache.error_log().contains("Permission denied"));

    match disk {
        Ok(_disk) => {
            let r = upload(&apache, "/small", &data);
            assert_eq!(r.status, 500, "{r:?}");
            assert!(apache.wait_for_log("No space left on device"), "{}", apache.error_log());
            let left: Vec<_> = std::fs::read_dir(&small).unwrap().collect();
            assert!(left.is_empty(), "the partial upload must be removed: {left:?}");
            // The disk has room again: an upload that fits arrives whole.
            let fits = &data[..100_000];
            let r = upload(&apache, "/small", fits);
            assert_eq!(r.status, 200, "{r:?}");
            let want = format!("file f name=big.bin size={} spooled=true fnv={}", fits.len(), fnv(fits));
            assert!(r.text().contains(&want), "{}", r.text());
        }
        Err(why) => println!("disk-full case skipped: cannot mount a tmpfs here ({why})"),
    }
    assert_eq!(apache.get("/small?x=1").status, 200, "still serving");
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("panicked"), "{log}");
}

// Every case above runs twice: apps in Apache's children, and apps in a daemon process group.
crate::in_both_modes!(
    twenty_graceful_restarts_under_load_lose_no_request,
    five_hard_restarts_under_load_recover_cleanly,
    a_thousand_slow_connections_do_not_stop_other_clients,
    files_sent_to_slow_readers_are_closed_afterwards,
    an_app_library_replaced_on_disk,
    uploads_that_cannot_be_spooled_answer_500_and_leave_nothing,
);
