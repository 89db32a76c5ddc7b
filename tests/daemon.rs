//! Daemon mode against a real Apache: the directives, supervision (crashes, recycling, timeouts,
//! overload, restarts under load), privileges, and what the app sees.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::http::{connect, parse, read_until, try_get};
use support::{Apache, Config, Mode, configtest, example};

/// `key=value` lines of the procinfo example (which process served, as whom).
fn info(apache: &Apache, path: &str) -> BTreeMap<String, String> {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r.environ()
}

fn pid(apache: &Apache) -> String {
    info(apache, "/info")["pid"].clone()
}

/// Waits for something the processes under test do on their own schedule (bounded, so a hung
/// test ends).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "{what} did not happen within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn daemon_config(options: &str, extra: &str) -> Config {
    Config::new(format!(
        "RGIDaemonProcess app {options}\n\
         RGIScriptAlias /info {info} process-group=app\n\
         RGIScriptAlias /panic {panic} process-group=app\n\
         RGIScriptAlias /stream {stream} process-group=app\n\
         RGIScriptAlias /hello {hello} process-group=app\n\
         RGIScriptAlias /embedded {info}\n{extra}",
        info = example("procinfo").display(),
        panic = example("panic").display(),
        stream = example("stream").display(),
        hello = example("hello").display(),
    ))
}

#[test]
fn configtest_rejects_bad_daemon_directives() {
    let hello = example("hello");
    let hello = hello.display();
    let cases = [
        ("RGIDaemonProcess".to_string(), "RGIDaemonProcess", "expected NAME"),
        ("RGIDaemonProcess a processes=0".into(), "RGIDaemonProcess", "processes=0"),
        ("RGIDaemonProcess a threads=many".into(), "RGIDaemonProcess", "threads=many"),
        ("RGIDaemonProcess a request-timeout=-5".into(), "RGIDaemonProcess", "request-timeout=-5"),
        ("RGIDaemonProcess a umask=999".into(), "RGIDaemonProcess", "umask=999"),
        ("RGIDaemonProcess a colour=red".into(), "RGIDaemonProcess", "unknown option 'colour'"),
        ("RGIDaemonProcess a user=no-such-user-here".into(), "RGIDaemonProcess", "no such user"),
        ("RGIDaemonProcess a group=no-such-group-here".into(), "RGIDaemonProcess", "no such group"),
        ("RGIDaemonProcess a/b".into(), "RGIDaemonProcess", "not a valid process group name"),
        ("RGIDaemonProcess a\nRGIDaemonProcess a".into(), "RGIDaemonProcess", "used twice"),
        ("RGIProcessGroup missing".into(), "RGIProcessGroup", "no RGIDaemonProcess named 'missing'"),
        ("RGIProcessGroup %{ENV:}".into(), "RGIProcessGroup", "names no variable"),
        ("RGIProcessGroup %{SERVER}".into(), "RGIProcessGroup", "not a process group"),
        ("RGIRestrictProcess".into(), "RGIRestrictProcess", "needs the names of the process groups"),
        ("RGIRestrictProcess %{GLOBAL} missing".into(), "RGIRestrictProcess", "no RGIDaemonProcess named 'missing'"),
        ("RGIRestrictProcess a/b".into(), "RGIRestrictProcess", "not a valid process group name"),
        (format!("RGIDispatchScript {hello}"), "RGIDispatchScript", "dispatcher"),
        ("RGIDispatchScript /no/such/lib.so".into(), "RGIDispatchScript", "/no/such/lib.so"),
        (
            format!("RGIDispatchScript {} process-group=x", example("dispatch").display()),
            "RGIDispatchScript",
            "only application-group=",
        ),
        (format!("RGIScriptAlias /x {hello} process-group=missing"), "RGIScriptAlias", "no RGIDaemonProcess"),
        (format!("RGIScriptAlias /x {hello} process-group=a/b"), "RGIScriptAlias", "not a valid process group"),
        (
            format!("RGIDaemonProcess a\nRGIRestrictEmbedded On\nRGIImportScript {hello} application-group=x"),
            "RGIImportScript",
            "RGIRestrictEmbedded On forbids",
        ),
        ("RGIRestrictEmbedded maybe".into(), "RGIRestrictEmbedded", "RGIRestrictEmbedded"),
        (
            "<VirtualHost *:80>\nRGISocketPrefix /tmp/x\n</VirtualHost>".into(),
            "RGISocketPrefix",
            "only allowed in the main server",
        ),
        (
            format!("RGISocketPrefix /tmp/{}\nRGIDaemonProcess a", "x".repeat(90)),
            "RGISocketPrefix",
            "longer than a UNIX socket address",
        ),
        (
            format!(
                "<VirtualHost *:80>\nRGIDaemonProcess v\n</VirtualHost>\n\
                 <VirtualHost *:81>\nRGIScriptAlias /x {hello} process-group=v\n</VirtualHost>"
            ),
            "RGIScriptAlias",
            "no RGIDaemonProcess named 'v'",
        ),
    ];
    for (conf, directive, expected) in cases {
        let (ok, output) = configtest(&Config::new(format!("{conf}\n")));
        assert!(!ok, "{conf} must fail apache2 -t");
        assert!(output.contains(expected), "{conf}: expected {expected:?} in:\n{output}");
        assert!(output.contains(directive), "{conf}: the message must name {directive}:\n{output}");
    }
    let (ok, output) = configtest(&daemon_config(
        "processes=2 threads=3 user=www-data group=www-data umask=0027 home=/ display-name=%{GROUP} \
         maximum-requests=10 inactivity-timeout=5 restart-interval=60 maximum-memory=1G cpu-time-limit=3600 script-reloading=on priority=0 stack-size=4M env=A=b request-timeout=5 queue-timeout=5 connect-timeout=5 \
         socket-timeout=5 graceful-timeout=5 shutdown-timeout=5 listen-backlog=10",
        "<Location /embedded>\n RGIProcessGroup %{GLOBAL}\n</Location>\n\
         <Location /chosen>\n RGIProcessGroup %{ENV:GROUP}\n RGIRestrictProcess app %{GLOBAL}\n</Location>\n",
    ));
    assert!(ok, "{output}");
}

#[test]
fn a_crash_mid_request_is_a_502_and_a_new_process_serves_the_next() {
    let apache = Apache::start(daemon_config("processes=1 threads=4", ""));
    let first = pid(&apache);
    let r = apache.get("/panic?where=abort");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(apache.wait_for_log(&format!("daemon process {first} of group 'app' died: killed by signal 6 (SIGABRT)")));
    assert!(apache.error_log().contains("closed the connection before finishing the response"));
    // The socket never went away: the next request waits for the new process instead of failing.
    let second = pid(&apache);
    assert_ne!(first, second);
    assert!(apache.error_log().contains(&format!("started daemon process {second} of group 'app'")));

    // A crash after the response started cuts the stream: it must not look complete.
    let mut s = connect(apache.port);
    s.write_all(b"GET /stream?n=5&ms=400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = read_until(&mut s, "chunk 1 of 5");
    unsafe_kill(&second, libc::SIGSEGV);
    s.read_to_end(&mut got).unwrap();
    let r = parse(&got, false).unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.complete, "a stream cut by a crash must not look complete: {:?}", r.text());
    assert!(
        apache.wait_for_log(&format!("daemon process {second} of group 'app' died: killed by signal 11 (SIGSEGV)"))
    );
    assert_ne!(pid(&apache), second);
}

/// Sends `signal` to a process of the test's Apache.
fn unsafe_kill(pid: &str, signal: i32) {
    let pid: i32 = pid.parse().unwrap();
    assert!(pid > 1);
    // SAFETY: kill with a daemon process's own pid.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// A process admits as many threads as the machine has cores while its requests are quick; an
/// app that blocks gets the others within milliseconds. Six requests that each sleep 8 s between
/// two chunks must all be running at once in a process of six threads: each one's first chunk
/// arrives long before any of them ends.
#[test]
fn an_app_that_blocks_gets_every_thread_of_its_process() {
    let apache = Apache::start(daemon_config("processes=1 threads=6", ""));
    let mut streams: Vec<_> = (0..6)
        .map(|_| {
            let mut s = connect(apache.port);
            s.write_all(b"GET /stream?n=2&ms=8000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    for (i, s) in streams.iter_mut().enumerate() {
        read_until(s, "chunk 1 of 2");
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "request {i} started only after another ended: the process did not run six at once"
        );
    }
    for mut s in streams {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(String::from_utf8_lossy(&rest).contains("chunk 2 of 2"));
    }
}

#[test]
fn an_app_panic_is_a_500_and_the_process_lives() {
    let apache = Apache::start(daemon_config("processes=1 threads=2", ""));
    let before = pid(&apache);
    let r = apache.get("/panic?where=call");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("panic in call"));
    assert!(apache.wait_for_log("panic in call, as asked"));
    let r = apache.get("/panic?where=body");
    assert!(!r.complete && r.text() == "partial body\n", "{r:?}");
    assert_eq!(pid(&apache), before, "the same process keeps serving");
    let log = apache.error_log();
    assert!(!log.contains("exit signal") && !log.contains("died"), "{log}");
}

#[test]
fn maximum_requests_recycles_without_failing_requests_in_flight() {
    let apache = Apache::start(daemon_config("processes=1 threads=4 maximum-requests=3", ""));
    let port = apache.port;
    // Three slow requests at once: the third is the process's last, all three finish.
    let slow: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || support::get(port, "/info?sleep=700")))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(slow.iter().all(|r| r.status == 200), "{slow:?}");
    let first = slow[0].environ()["pid"].clone();
    assert!(slow.iter().all(|r| r.environ()["pid"] == first), "one process took all three");
    assert!(
        apache.wait_for_log(&format!("daemon process {first} of group 'app' exited after serving maximum-requests"))
    );
    let next = pid(&apache);
    assert_ne!(next, first);
    // Recycling is not a failure: nothing was logged as an error for it.
    assert!(!apache.error_log().contains("died"), "{}", apache.error_log());
}

#[test]
fn restart_interval_replaces_busy_processes_without_failing_requests() {
    let apache = Apache::start(daemon_config("processes=1 threads=4 restart-interval=1 graceful-timeout=10", ""));
    let port = apache.port;
    // Longer than the interval: its process must be replaced while it runs, and it still finishes.
    let slow = std::thread::spawn(move || support::get(port, "/info?sleep=2500"));
    let started = Instant::now();
    let mut pids = BTreeSet::new();
    while started.elapsed() < Duration::from_secs(3) {
        let r = apache.get("/info");
        assert_eq!(r.status, 200, "a request during the replacements: {r:?}");
        pids.insert(r.environ()["pid"].clone());
    }
    let slow = slow.join().unwrap();
    assert_eq!(slow.status, 200, "{slow:?}");
    let replaced = &slow.environ()["pid"];
    assert!(apache.wait_for_log(&format!("daemon process {replaced} of group 'app' ran for restart-interval=1s")));
    assert!(apache.wait_for_log(&format!("daemon process {replaced} of group 'app' exited after restart-interval")));
    assert!(pids.len() >= 2, "quick requests were served by {pids:?} only");
    assert!(!apache.error_log().contains("died"), "{}", apache.error_log());
}

/// A process past one of its limits (`option`, crossed by the request to `path`) answers that
/// request, then is replaced, logging `why` and `exited`; a replacement is not a crash.
fn replaced_after_crossing(option: &str, path: &str, why: &str, exited: &str) {
    let apache = Apache::start(daemon_config(&format!("processes=1 threads=2 {option}"), ""));
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{r:?}");
    let crossed = r.environ()["pid"].clone();
    assert!(apache.wait_for_log(&format!("daemon process {crossed} of group 'app' {why}")));
    assert!(apache.wait_for_log(&format!("daemon process {crossed} of group 'app' {exited}")));
    assert_ne!(pid(&apache), crossed);
    assert!(!apache.error_log().contains("died"), "{}", apache.error_log());
}

#[test]
fn a_process_past_maximum_memory_is_replaced_after_its_requests() {
    // A leak of 300 MiB in one request.
    replaced_after_crossing(
        "maximum-memory=200M",
        "/info?hold=300",
        "grew to",
        "exited after growing past maximum-memory",
    );
}

#[test]
fn a_process_past_cpu_time_limit_is_replaced_after_its_requests() {
    replaced_after_crossing("cpu-time-limit=1", "/info?spin=1500", "used", "exited after using cpu-time-limit");
}

#[test]
fn script_reloading_serves_a_library_renamed_over_or_touched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let library = dir.path().join("libswap.so");
    std::fs::copy(example("hello"), &library).unwrap();
    let apache = Apache::start(daemon_config(
        "processes=1 threads=2 script-reloading=on",
        &format!("RGIScriptAlias /swap {} process-group=app\n", library.display()),
    ));
    assert_eq!(apache.get("/swap").text(), "Hello, World!");
    let reloads = || apache.error_log().matches("exited to load a changed app library").count();
    let first = pid(&apache);

    // A new build renamed over the old one: the process is replaced and its successor loads it.
    let staged = dir.path().join(".libswap.so.new");
    std::fs::copy(example("environ"), &staged).unwrap();
    std::fs::rename(&staged, &library).unwrap();
    eventually("the new build answering", || apache.get("/swap").text().contains("SCRIPT_NAME=/swap"));
    assert!(
        apache
            .error_log()
            .contains(&format!("daemon process {first} of group 'app': {} changed on disk", library.display()))
    );
    eventually("the old process exiting", || reloads() == 1);
    let second = pid(&apache);
    assert_ne!(second, first);

    // Touched, as with mod_wsgi's script files: the same build, in a new process.
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    std::fs::File::options().write(true).open(&library).unwrap().set_modified(later).unwrap();
    eventually("a reload after touch", || reloads() == 2);
    assert_ne!(pid(&apache), second);

    // Nothing changed since: no more reloads.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reloads(), 2, "{}", apache.error_log());
    assert!(apache.get("/swap").text().contains("SCRIPT_NAME=/swap"));
}

#[test]
fn script_reloading_replaces_a_groups_processes_one_after_another() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let library = dir.path().join("libroll.so");
    std::fs::copy(example("procinfo"), &library).unwrap();
    // Imported at start, so both processes have the library loaded.
    let apache = Apache::start(daemon_config(
        "processes=2 threads=2 script-reloading=on",
        &format!(
            "RGIImportScript {lib} application-group=roll process-group=app
             RGIScriptAlias /roll {lib} process-group=app application-group=roll
",
            lib = library.display()
        ),
    ));
    assert_eq!(apache.get("/roll").status, 200);
    let reloads = || apache.error_log().matches("exited to load a changed app library").count();

    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    std::fs::File::options().write(true).open(&library).unwrap().set_modified(later).unwrap();
    // Requests keep being answered while the group is replaced.
    eventually("both processes replaced", || {
        let r = apache.get("/roll");
        assert_eq!(r.status, 200, "{r:?}");
        reloads() == 2
    });
    let log = apache.error_log();
    assert!(log.contains("changed on disk; replacing it in 2s"), "{log}");
    // The first process had exited before the second one began to stop.
    let stopping = "app library it loaded changed on disk (script-reloading=on); stopping";
    let second_stop = log.rmatch_indices(stopping).next().map(|(i, _)| i).unwrap();
    let first_exit = log.find("exited to load a changed app library").unwrap();
    assert_eq!(log.matches(stopping).count(), 2, "{log}");
    assert!(first_exit < second_stop, "{log}");
}

#[test]
fn env_options_set_the_daemons_environment_only() {
    let apache = Apache::start(daemon_config(
        "processes=1 threads=2 env=RUST_LOG=warn,app=debug \"env=GREETING=hello world\"",
        "",
    ));
    assert_eq!(info(&apache, "/info?env=GREETING")["env"], "hello world");
    assert_eq!(info(&apache, "/info?env=RUST_LOG")["env"], "warn,app=debug");
    assert_eq!(info(&apache, "/embedded?env=GREETING")["env"], "", "Apache's children are left alone");
}

#[test]
fn request_threads_have_the_stack_of_apaches_threads_unless_told_otherwise() {
    // 4 MiB of recursion: more than a Rust thread's default 2 MiB, within Apache's 8 MiB.
    let apache = Apache::start(daemon_config(
        "processes=1 threads=2",
        &format!(
            "RGIDaemonProcess small threads=2 stack-size=1M\nRGIScriptAlias /small {} process-group=small\n",
            example("procinfo").display()
        ),
    ));
    for path in ["/embedded?stack=4096", "/info?stack=4096"] {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    // A smaller stack-size is what the threads get: the same recursion overflows it.
    assert_eq!(apache.get("/small?stack=4096").status, 502);
    assert_eq!(apache.get("/small?stack=64").status, 200, "its replacement serves");
}

#[test]
fn request_timeout_is_a_504_and_replaces_the_stuck_process() {
    let apache = Apache::start(daemon_config("processes=1 threads=2 request-timeout=1 shutdown-timeout=1", ""));
    let stuck = pid(&apache);
    let r = apache.get("/info?sleep=30000");
    assert_eq!(r.status, 504, "{r:?}");
    assert!(apache.wait_for_log("sent no response within request-timeout"));
    assert!(apache.wait_for_log("a request ran longer than request-timeout=1s"));
    assert!(apache.wait_for_log(&format!(
        "daemon process {stuck} of group 'app' exited after a request exceeded request-timeout"
    )));
    assert_ne!(pid(&apache), stuck);
}

#[test]
fn request_timeout_runs_from_when_a_thread_takes_the_request() {
    // One thread: the second request waits 1.5 s for the first, then runs 1 s. 2.5 s after it
    // was sent, but 1 s after a thread took it: within request-timeout=2.
    let apache = Apache::start(daemon_config("processes=1 threads=1 request-timeout=2 queue-timeout=10", ""));
    let port = apache.port;
    let first = std::thread::spawn(move || support::get(port, "/info?sleep=1500"));
    std::thread::sleep(Duration::from_millis(200));
    let queued = apache.get("/info?sleep=1000");
    assert_eq!((first.join().unwrap().status, queued.status), (200, 200), "{queued:?}\n{}", apache.error_log());
    assert!(!apache.error_log().contains("request-timeout"), "{}", apache.error_log());
}

#[test]
fn overload_is_answered_503_or_504_while_the_app_is_still_busy() {
    let apache =
        Apache::start(daemon_config("processes=1 threads=1 listen-backlog=1 queue-timeout=1 connect-timeout=1", ""));
    let port = apache.port;
    let busy_done = Arc::new(AtomicBool::new(false));
    let busy = {
        let done = busy_done.clone();
        std::thread::spawn(move || {
            let r = support::get(port, "/info?sleep=15000");
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    eventually("the slow request to start", || apache.error_log().contains("started daemon process"));
    std::thread::sleep(Duration::from_millis(300));
    let overload: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || support::get(port, "/hello").status))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    // Every overflowing request got its answer before the busy one finished: nothing piled up.
    assert!(!busy_done.load(Ordering::SeqCst), "the overload answers must not wait for the busy request");
    assert!(overload.iter().all(|s| *s == 503 || *s == 504), "{overload:?}");
    assert!(overload.contains(&504), "some waited in the queue past queue-timeout: {overload:?}");
    assert!(overload.contains(&503), "some could not even queue (connect-timeout): {overload:?}");
    assert_eq!(busy.join().unwrap().status, 200);
    let log = apache.error_log();
    assert!(log.contains("queue-timeout") && log.contains("connect-timeout"), "{log}");
}

#[test]
fn inactivity_timeout_replaces_an_idle_process() {
    let apache = Apache::start(daemon_config("processes=1 threads=2 inactivity-timeout=1", ""));
    let first = pid(&apache);
    assert!(apache.wait_for_log(&format!("daemon process {first} of group 'app' exited after inactivity-timeout")));
    assert_ne!(pid(&apache), first);
}

#[test]
fn restart_interval_replaces_a_groups_processes_one_after_another() {
    let apache = Apache::start(daemon_config("processes=2 threads=2 restart-interval=2", ""));
    let announced = "of group 'app' ran for restart-interval=2s";
    eventually("both first processes replaced", || apache.error_log().matches(announced).count() >= 2);
    // Seconds since midnight of an error-log line ("[Mon Nov 23 23:50:21.123456 2026] ...").
    let seconds = |line: &str| -> f64 {
        let time = line.split_whitespace().nth(3).unwrap_or_default();
        time.split(':').fold(0.0, |total, part| total * 60.0 + part.parse::<f64>().unwrap_or(f64::NAN))
    };
    let log = apache.error_log();
    let times: Vec<f64> = log.lines().filter(|l| l.contains(announced)).take(2).map(seconds).collect();
    assert!((times[1] - times[0]).abs() >= 0.7, "started together, replaced together:\n{log}");
}

#[test]
fn requests_under_ignore_activity_let_a_process_go_idle() {
    let apache = Apache::start(daemon_config(
        "processes=1 threads=2 inactivity-timeout=2",
        "<Location /hello>\n RGIIgnoreActivity On\n</Location>\n",
    ));
    let busy = pid(&apache);
    let exited = format!("daemon process {busy} of group 'app' exited after inactivity-timeout");
    // Requests more often than the timeout keep the process (a margin of 1.8 s for a busy CI)...
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        assert_eq!(pid(&apache), busy);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!apache.error_log().contains(&exited), "{}", apache.error_log());
    // ...unless they are ones RGIIgnoreActivity leaves out (health checks), still served by it.
    let (port, stop) = (apache.port, Arc::new(AtomicBool::new(false)));
    let checks = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut statuses = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                statuses.insert(try_get(port, "/hello").map(|r| r.status));
                std::thread::sleep(Duration::from_millis(200));
            }
            statuses
        }
    });
    let went_idle = apache.wait_for_log(&exited);
    stop.store(true, Ordering::Relaxed);
    assert!(went_idle, "{}", apache.error_log());
    assert_eq!(checks.join().unwrap(), BTreeSet::from([Some(200)]));
}

#[test]
fn graceful_restarts_under_steady_load_fail_no_request() {
    let apache = Apache::start(daemon_config("processes=2 threads=4 graceful-timeout=10", ""));
    let port = apache.port;
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    // One client streams (a request in flight across each restart), two hammer.
                    let (path, expected) = if i == 0 {
                        ("/stream?n=3&ms=100", "chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n")
                    } else {
                        ("/hello", "Hello, World!")
                    };
                    match try_get(port, path) {
                        Some(r) if r.status == 200 && r.complete && r.text() == expected => ok += 1,
                        other => failed.push(format!("{path}: {other:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let pids_before = pid(&apache);
    for round in 1..=10 {
        apache.signal(libc::SIGUSR1);
        eventually("a graceful restart", || apache.error_log().matches("resuming normal operations").count() > round);
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.into_iter().map(|t| t.join().unwrap()).fold((0, Vec::new()), |mut a, b| {
        a.1.extend(b.1);
        (a.0 + b.0, a.1)
    });
    assert!(
        ok > 0 && failed.is_empty(),
        "{ok} succeeded; {} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert_ne!(pid(&apache), pids_before, "the processes were replaced");
    let log = apache.error_log();
    assert!(log.contains("is being replaced: it finishes its requests and exits"), "{log}");
    assert!(!log.contains("exit signal") && !log.contains("died") && !log.contains("answering 50"), "{log}");
}

#[test]
fn daemons_run_as_their_user_with_their_settings() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping to another user needs Apache to start as root");
        return;
    }
    let apache = Apache::start(daemon_config(
        "processes=1 threads=2 user=nobody group=nogroup umask=0027 home=/tmp display-name=%{GROUP} priority=5",
        "",
    ));
    let daemon = info(&apache, "/info");
    assert_eq!(daemon["uid"], "65534");
    assert_eq!(daemon["gid"], "65534");
    assert_eq!(daemon["umask"], "0027");
    assert_eq!(daemon["cwd"], "/tmp");
    assert_eq!(daemon["title"], "(rgi:app)");
    assert_eq!(daemon["nice"], "5");
    let embedded = info(&apache, "/embedded");
    assert_eq!(embedded["uid"], "33", "Apache's children stay www-data");
    assert_eq!(embedded["nice"], "0");
    assert_ne!(embedded["pid"], daemon["pid"]);
    // The socket: Apache's User only.
    let socket = std::fs::read_dir(apache.root.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the group's socket in DefaultRuntimeDir");
    let meta = std::fs::metadata(&socket).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (33, 0o600), "{}", socket.display());
}

/// The environ of the same request in both modes, with what legitimately differs taken out.
fn environ_in(mode: Mode, htpasswd: &std::path::Path) -> BTreeMap<String, String> {
    let config = mode
        .config(format!(
            "RGIScriptAlias /env {}\n<Location /env>\n AuthType Basic\n AuthName test\n \
             AuthUserFile {}\n Require valid-user\n</Location>\nSetEnv FROM_SETENV yes\n",
            example("environ").display(),
            htpasswd.display()
        ))
        .module("env")
        .module("authn_core")
        .module("authn_file")
        .module("auth_basic")
        .module("authz_user");
    let apache = Apache::start(config);
    let raw = "POST /env/a%20b/c?x=1&y=%FF HTTP/1.1\r\nHost: example.test\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\
               X-Repeated: one\r\nX-Repeated: two\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\
               Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let r = apache.request(raw.as_bytes());
    assert_eq!(r.status, 200, "{mode:?}: {r:?}");
    let port = apache.port.to_string();
    r.environ()
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "REMOTE_PORT" | "rgi.request_id" | "rgi.process_group"))
        .map(|(k, v)| (k, v.replace(&port, "PORT").replace(&apache.root.path().display().to_string(), "ROOT")))
        .collect()
}

#[test]
fn the_environ_is_the_same_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("users");
    let status = std::process::Command::new("htpasswd").args(["-bc"]).arg(&htpasswd).args(["alice", "secret"]).status();
    assert!(status.is_ok_and(|s| s.success()), "htpasswd (apache2-utils) is needed");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&htpasswd, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let embedded = environ_in(Mode::Embedded, &htpasswd);
    let mut daemon = environ_in(Mode::Daemon, &htpasswd);
    assert_eq!(embedded["REMOTE_USER"], "alice");
    assert_eq!(embedded["AUTH_TYPE"], "Basic");
    assert_eq!(embedded["PATH_INFO"], "/a b/c");
    // The daemon group has one process; Apache's MPM several.
    assert_eq!(daemon.remove("rgi.multiprocess").as_deref(), Some("false"));
    daemon.insert("rgi.multiprocess".into(), embedded["rgi.multiprocess"].clone());
    assert_eq!(embedded, daemon);
}

#[test]
fn restrict_embedded_refuses_what_is_not_delegated() {
    let apache = Apache::start(daemon_config(
        "processes=1 threads=2",
        &format!(
            "RGIRestrictEmbedded On\nRGIScriptAlias /global {} process-group=%{{GLOBAL}}\n",
            example("hello").display()
        ),
    ));
    assert_eq!(apache.get("/info").status, 200, "delegated requests are served");
    for path in ["/embedded", "/global"] {
        assert_eq!(apache.get(path).status, 500, "{path}");
    }
    assert!(apache.wait_for_log("RGIRestrictEmbedded On: this request is not delegated to a daemon process group"));
}

#[test]
fn a_request_variable_chooses_the_process_group_within_rgirestrictprocess() {
    let environ = example("environ");
    let apache = Apache::start(
        Config::new(format!(
            "RGIDaemonProcess alpha processes=1 threads=2\n\
             RGIDaemonProcess beta processes=1 threads=2\n\
             SetEnvIf X-Group \"^(.+)$\" PROCESS_GROUP=$1\n\
             RGIScriptAlias /any {environ}\n\
             RGIScriptAlias /alpha-only {environ}\n\
             RGIProcessGroup %{{ENV:PROCESS_GROUP}}\n\
             <Location /alpha-only>\n  RGIRestrictProcess alpha\n</Location>\n",
            environ = environ.display()
        ))
        .module("setenvif"),
    );
    let get = |path: &str, group: Option<&str>| {
        let header = group.map(|g| format!("X-Group: {g}\r\n")).unwrap_or_default();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}Connection: close\r\n\r\n");
        apache.request(raw.as_bytes())
    };
    let served_by = |path: &str, group: Option<&str>| {
        let r = get(path, group);
        assert_eq!(r.status, 200, "{path} as {group:?}: {r:?}");
        r.environ()["rgi.process_group"].clone()
    };
    assert_eq!(served_by("/any", Some("alpha")), "alpha");
    assert_eq!(served_by("/any", Some("beta")), "beta");
    // Unset: Apache's own children, as %{GLOBAL}.
    assert_eq!(served_by("/any", None), "");
    let r = get("/any", Some("nosuch"));
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        apache.wait_for_log("no RGIDaemonProcess named 'nosuch' (from RGIProcessGroup %{ENV:...}) serves this server")
    );

    assert_eq!(served_by("/alpha-only", Some("alpha")), "alpha");
    assert_eq!(get("/alpha-only", Some("beta")).status, 500);
    assert!(
        apache
            .wait_for_log("RGIRestrictProcess: process group 'beta' may not serve this request (allowed here: alpha)")
    );
    // The restriction covers embedded too, unless it lists %{GLOBAL}.
    assert_eq!(get("/alpha-only", None).status, 500);
    assert!(apache.wait_for_log("RGIRestrictProcess: process group '%{GLOBAL}' may not serve this request"));
}

#[test]
fn rgidispatchscript_chooses_the_groups_of_each_request() {
    let (environ, dispatch) = (example("environ"), example("dispatch"));
    let apache = Apache::start(Config::new(format!(
        "RGIDaemonProcess customer-alpha processes=1 threads=2\n\
         RGIDaemonProcess customer-beta processes=1 threads=2\n\
         RGIDaemonProcess other processes=1 threads=2\n\
         RGIScriptAlias /any {environ} process-group=other application-group=configured\n\
         RGIScriptAlias /fenced {environ} process-group=other\n\
         RGIDispatchScript {dispatch}\n\
         <Location /fenced>\n  RGIRestrictProcess customer-alpha other\n</Location>\n",
        environ = environ.display(),
        dispatch = dispatch.display(),
    )));
    let get = |path: &str, host: &str, dispatch: Option<&str>| {
        let extra = dispatch.map(|d| format!("X-Dispatch: {d}\r\n")).unwrap_or_default();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
        apache.request(raw.as_bytes())
    };
    let groups = |path: &str, host: &str| {
        let r = get(path, host, None);
        assert_eq!(r.status, 200, "{path} for {host}: {r:?}");
        let environ = r.environ();
        (environ["rgi.process_group"].clone(), environ["rgi.application_group"].clone())
    };
    let named = |p: &str, a: &str| (p.to_string(), a.to_string());
    assert_eq!(groups("/any", "alpha.example.org"), named("customer-alpha", "customer alpha"));
    assert_eq!(groups("/any", "beta.example.org:8080"), named("customer-beta", "customer beta"));
    // No answer: the alias's own groups.
    assert_eq!(groups("/any", "127.0.0.1"), named("other", "configured"));
    // RGIRestrictProcess fences what the dispatcher chooses too.
    assert_eq!(groups("/fenced", "alpha.example.org").0, "customer-alpha");
    assert_eq!(get("/fenced", "beta.example.org", None).status, 500);
    assert!(apache.wait_for_log("RGIRestrictProcess: process group 'customer-beta' may not serve this request"));
    // Fail closed: an error or a panic is a 500, never the configured groups; the child goes on.
    assert_eq!(get("/any", "alpha.example.org", Some("fail")).status, 500);
    assert!(apache.wait_for_log("dispatch failed: X-Dispatch: fail"), "{}", apache.error_log());
    assert!(apache.wait_for_log("RGIDispatchScript '") && apache.error_log().contains("': it failed; answering 500"));
    assert_eq!(get("/any", "alpha.example.org", Some("panic")).status, 500);
    assert!(apache.wait_for_log("app panicked"), "{}", apache.error_log());
    assert_eq!(groups("/any", "alpha.example.org").0, "customer-alpha");
}

/// Whether a process is gone (or a zombie nobody has reaped yet).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

#[test]
fn daemons_exit_when_apaches_parent_dies() {
    let apache = Apache::start(daemon_config("processes=2 threads=2 shutdown-timeout=1", ""));
    let daemon = pid(&apache);
    let group = apache.pid() as i32;
    apache.signal(libc::SIGKILL);
    eventually("the daemon process to exit after Apache's parent was killed", || gone(&daemon));
    // Apache's own orphaned children are not ours to wait for: end them with their process group.
    // SAFETY: the test's Apache runs in a process group of its own, led by its (dead) parent.
    unsafe { libc::kill(-group, libc::SIGKILL) };
}

/// One Apache child with `threads` worker threads: which thread (and so which kept daemon
/// connections) serves a request is then bounded, or known with one thread.
fn apache_threads(config: Config, threads: u32) -> Config {
    config.mpm_settings(&format!(
        "StartServers 1\nServerLimit 1\nThreadLimit {threads}\nThreadsPerChild {threads}\n\
         MaxRequestWorkers {threads}\nMinSpareThreads 1\nMaxSpareThreads {threads}\n"
    ))
}

const STATUS: &str = "<Location /rgi-status>\n SetHandler rgi-status\n</Location>\n";

/// Each daemon process's (requests served, connections accepted), from the status page.
fn daemon_counts(apache: &Apache) -> BTreeMap<u32, (u64, u64)> {
    let r = apache.get("/rgi-status?format=prometheus");
    assert_eq!(r.status, 200, "{r:?}");
    let mut rows: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for line in r.text().lines() {
        let Some((metric, rest)) = line.split_once('{') else { continue };
        let Some(pid) = rest.split("pid=\"").nth(1).and_then(|p| p.split('"').next()?.parse().ok()) else { continue };
        let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()) else { continue };
        let row = rows.entry(pid).or_default();
        match metric {
            "rgi_daemon_process_requests_total" => row.0 = value,
            "rgi_daemon_process_connections_total" => row.1 = value,
            _ => {}
        }
    }
    rows
}

#[test]
fn apache_children_keep_their_daemon_connections() {
    let apache = Apache::start(apache_threads(daemon_config("processes=1 threads=2", STATUS), 4));
    let port = apache.port;
    // Four clients at once, each with new HTTP connections: whichever of the four Apache threads
    // serves a request, it finds its own connection to the daemon from before.
    let clients: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || (0..30).map(|_| support::get(port, "/hello")).collect::<Vec<_>>()))
        .collect();
    for client in clients {
        for r in client.join().unwrap() {
            assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"), "{r:?}");
        }
    }
    let counts = daemon_counts(&apache);
    assert_eq!(counts.len(), 1, "{counts:?}");
    let (requests, connections) = counts.into_values().next().unwrap();
    assert_eq!(requests, 120, "every request reached the daemon once");
    // At most two kept connections per Apache thread (a request and a subrequest).
    assert!((1..=8).contains(&connections), "{connections} connections for {requests} requests");
}

#[test]
fn a_daemon_killed_or_restarted_between_requests_costs_no_request() {
    let apache = Apache::start(apache_threads(daemon_config("processes=1 threads=2", STATUS), 1));
    let mut pids = vec![pid(&apache)];
    for round in 0..6 {
        // The one Apache thread keeps its connection to the process about to go.
        let last = pids.last().unwrap().clone();
        unsafe_kill(&last, if round % 2 == 0 { libc::SIGKILL } else { libc::SIGUSR1 });
        // At once, and again once the process is surely gone: either way the kept connection
        // is found closed (or fails unread) and a new one reaches the replacement.
        let now = pid(&apache);
        eventually("the signalled daemon process to exit", || gone(&last));
        let after = pid(&apache);
        assert_ne!(after, last, "round {round}: the replacement serves");
        pids.extend([now, after]);
    }
    let log = apache.error_log();
    assert!(!log.contains("answering 50") && !log.contains("cut short"), "{log}");
    assert_eq!(log.matches("killed by signal 9 (SIGKILL)").count(), 3, "{log}");
}

#[test]
fn maximum_requests_recycles_processes_whose_connections_are_kept() {
    let apache = Apache::start(apache_threads(daemon_config("processes=1 threads=2 maximum-requests=3", STATUS), 1));
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..12 {
        *served.entry(pid(&apache)).or_default() += 1;
    }
    // Each process served exactly its three requests on the one kept connection, closed it
    // after the third, and the next request reached its replacement on a new connection.
    assert_eq!(served.len(), 4, "{served:?}");
    assert!(served.values().all(|&n| n == 3), "{served:?}");
    for pid in served.keys().take(3) {
        assert!(
            apache.wait_for_log(&format!("daemon process {pid} of group 'app' exited after serving maximum-requests"))
        );
    }
    let log = apache.error_log();
    assert!(!log.contains("answering 50") && !log.contains("died"), "{log}");
}

#[test]
fn a_request_on_a_stale_kept_connection_runs_exactly_once() {
    let mut config = apache_threads(
        daemon_config(
            "processes=1 threads=2",
            &format!("{STATUS}RGIScriptAlias /echo {} process-group=app\n", example("echo").display()),
        ),
        1,
    );
    config.log_level = "info rgi:trace1".into();
    let apache = Apache::start(config);
    let post = |path: &str, body: &str| {
        apache.request(
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    assert_eq!(post("/echo", "warm up").text(), "warm up");
    let stopped = pid(&apache);

    // The daemon stops (SIGSTOP) with the Apache thread's connection kept: it still looks open.
    // The POST goes out on it; then the daemon dies with the request unread.
    unsafe_kill(&stopped, libc::SIGSTOP);
    // A stop takes effect when each thread next runs: wait until every one of them is stopped.
    eventually("the daemon's threads to stop", || {
        let tasks = std::fs::read_dir(format!("/proc/{stopped}/task")).unwrap();
        tasks.flatten().all(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    });
    let sending = "sending the request on a kept connection";
    let before = apache.error_log().matches(sending).count();
    let port = apache.port;
    let body = "a body that must arrive exactly once";
    let request =
        format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let client = std::thread::spawn(move || support::http::request(port, request.as_bytes()));
    eventually("the POST to go out on the kept connection", || apache.error_log().matches(sending).count() > before);
    unsafe_kill(&stopped, libc::SIGKILL);
    let r = client.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, body), "{r:?}");
    assert!(apache.wait_for_log("closed the connection without reading the request"));
    // A daemon counts a request once its answer is sent: wait for the count, then check it.
    let mut counts = daemon_counts(&apache);
    eventually("the replacement to count its request", || {
        counts = daemon_counts(&apache);
        counts.values().any(|&(requests, _)| requests > 0)
    });
    assert_eq!(counts.len(), 1, "{counts:?}");
    let (&replacement, &(requests, _)) = counts.iter().next().unwrap();
    assert_ne!(replacement.to_string(), stopped);
    assert_eq!(requests, 1, "the replacement ran the POST once (and the stopped process could not)");

    // A daemon that took the request and died is not sent it again: the app may have run.
    let r = post("/panic?where=abort", "not twice");
    assert_eq!(r.status, 502, "{r:?}");
    let next = pid(&apache);
    assert!(apache.error_log().contains(&format!("started daemon process {next} of group 'app'")));
    assert_eq!(apache.error_log().matches("killed by signal 6 (SIGABRT)").count(), 1, "{}", apache.error_log());
}
