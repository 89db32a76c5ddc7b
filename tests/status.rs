//! `SetHandler rgi-status`: counters shared by all of Apache's children, as HTML and in
//! Prometheus' text format; and `RGISlowRequests`, the error-log lines of slow requests.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};

use support::http::{connect, parse_one};
use support::{Apache, Config, Mpm, example};

fn config() -> Config {
    Config::new(format!(
        "RGIScriptAlias /http {}\nRGIScriptAlias /axum {}\nRGIScriptAlias /global {} application-group=%{{GLOBAL}}\n\
         <Location /rgi-status>\n  SetHandler rgi-status\n</Location>\n",
        example("http").display(),
        example("axum").display(),
        example("hello").display(),
    ))
}

/// Sends `count` GETs of `path` on one keep-alive connection; returns the bodies.
fn keep_alive(apache: &Apache, path: &str, count: usize) -> (std::net::TcpStream, Vec<String>) {
    let mut s = connect(apache.port);
    let mut bodies = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..count {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", apache.port).as_bytes()).unwrap();
        loop {
            if let Ok((r, used)) = parse_one(&buf, false)
                && r.complete
            {
                bodies.push(r.text());
                buf.drain(..used);
                break;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    (s, bodies)
}

/// The value of a Prometheus sample line `name{labels} value`.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn status_sums_every_prefork_child() {
    let apache = Apache::start(config().mpm(Mpm::Prefork));
    // Three connections held open at once: under prefork each one has a process to itself.
    let mut pids = BTreeSet::new();
    let mut open = Vec::new();
    for n in [5, 7, 9] {
        let (s, bodies) = keep_alive(&apache, "/http/pid", n);
        assert_eq!(bodies.len(), n);
        pids.extend(bodies);
        open.push(s);
    }
    assert!(pids.len() >= 2, "requests went to several children: {pids:?}");
    drop(open);
    assert_eq!(apache.get("/http/missing").status, 404);
    assert_eq!(apache.get("/axum/panic").status, 500);
    assert_eq!(apache.get("/global").status, 200);

    let r = apache.get("/rgi-status?format=prometheus");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    let http = format!("process_group=\"\",application_group=\"127.0.0.1:{}|/http\"", apache.port);
    assert_eq!(sample(&text, &format!("rgi_requests_total{{{http}}}")), Some(22.0), "5 + 7 + 9 + one 404:\n{text}");
    assert_eq!(sample(&text, &format!("rgi_responses_5xx_total{{{http}}}")), Some(0.0), "a 404 is no error");
    assert_eq!(sample(&text, &format!("rgi_requests_in_flight{{{http}}}")), Some(0.0));
    assert_eq!(sample(&text, &format!("rgi_request_duration_seconds_count{{{http}}}")), Some(22.0));
    assert_eq!(sample(&text, &format!("rgi_request_duration_seconds_bucket{{{http},le=\"+Inf\"}}")), Some(22.0));

    let axum = format!("process_group=\"\",application_group=\"127.0.0.1:{}|/axum\"", apache.port);
    assert_eq!(sample(&text, &format!("rgi_requests_total{{{axum}}}")), Some(1.0));
    assert_eq!(sample(&text, &format!("rgi_responses_5xx_total{{{axum}}}")), Some(1.0));
    assert_eq!(sample(&text, &format!("rgi_panics_total{{{axum}}}")), Some(1.0));
    let global = "process_group=\"\",application_group=\"\"";
    assert_eq!(sample(&text, &format!("rgi_requests_total{{{global}}}")), Some(1.0));

    let page = apache.get("/rgi-status");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("Content-Type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    let row =
        format!("<td>(embedded)</td><td>127.0.0.1:{}|/http</td><td>22</td><td>0</td><td>0</td><td>0</td>", apache.port);
    assert!(html.contains(&row), "{html}");
    assert!(html.contains("<td>(embedded)</td><td>%{GLOBAL}</td><td>1</td>"), "{html}");
}

#[test]
fn status_counts_go_on_across_a_graceful_restart() {
    let apache = Apache::start(config());
    for _ in 0..3 {
        assert_eq!(apache.get("/global").status, 200);
    }
    apache.signal(libc::SIGUSR1);
    // Apache says "resuming normal operations" once more when the new generation is up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while apache.error_log().matches("resuming normal operations").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no new generation after the graceful restart");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(apache.get("/global").status, 200);
    let text = apache.get("/rgi-status?format=prometheus").text();
    let global = "rgi_requests_total{process_group=\"\",application_group=\"\"}";
    assert_eq!(sample(&text, global), Some(4.0), "counted before and after:\n{text}");
}

#[test]
fn status_answers_only_get() {
    let apache = Apache::start(config());
    let r = apache.request(b"POST /rgi-status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    let text = apache.get("/rgi-status?format=prometheus").text();
    assert!(text.contains("# TYPE rgi_requests_total counter"));
    assert!(!text.contains("rgi_requests_total{"), "no group served yet:\n{text}");
}

#[test]
fn daemon_processes_and_their_groups_are_shown() {
    let config = Config::new(format!(
        "RGIDaemonProcess shop processes=1 threads=2\n\
         RGIScriptAlias /shop {} process-group=shop application-group=%{{GLOBAL}}\n\
         RGIScriptAlias /boom {} process-group=shop application-group=boom\n\
         <Location /rgi-status>\n  SetHandler rgi-status\n</Location>\n",
        example("whoami").display(),
        example("panic").display(),
    ));
    let apache = Apache::start(config);
    let pid_of = |body: String| body.lines().find_map(|l| l.strip_prefix("pid=").map(str::to_string)).unwrap();
    let first = pid_of(apache.get("/shop").text());
    for _ in 0..4 {
        assert_eq!(pid_of(apache.get("/shop").text()), first);
    }
    let metrics = apache.get("/rgi-status?format=prometheus").text();
    let requests = sample(&metrics, "rgi_requests_total{process_group=\"shop\",application_group=\"\"}");
    assert_eq!(requests, Some(5.0), "{metrics}");
    let served = metrics
        .lines()
        .find(|l| l.starts_with("rgi_daemon_process_requests_total") && l.contains(&format!("pid=\"{first}\"")))
        .unwrap_or_else(|| panic!("no row for daemon {first}:\n{metrics}"));
    assert!(served.ends_with(" 5"), "{served}");
    let value_of = |metric: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(metric) && l.contains(&format!("pid=\"{first}\"")));
        line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or_else(|| panic!("no {metric}:\n{metrics}"))
    };
    // What the kernel says the process uses: a live process holds megabytes, and has used some CPU.
    let rss = value_of("rgi_daemon_process_resident_memory_bytes");
    assert!((1e6..1e10).contains(&rss), "{rss}");
    assert!(value_of("rgi_daemon_process_cpu_seconds_total") >= 0.0);

    // A crash: the replacement takes the slot over, with the count of restarts and the reason.
    assert_eq!(apache.get("/boom?where=abort").status, 502);
    let second = pid_of(apache.get("/shop").text());
    assert_ne!(second, first);
    let metrics = apache.get("/rgi-status?format=prometheus").text();
    let restarts = metrics
        .lines()
        .find(|l| l.starts_with("rgi_daemon_process_restarts_total") && l.contains(&format!("pid=\"{second}\"")))
        .unwrap_or_else(|| panic!("no row for daemon {second}:\n{metrics}"));
    assert!(restarts.ends_with(" 1") && restarts.contains("SIGABRT"), "{restarts}");
    assert!(!metrics.contains(&format!("pid=\"{first}\"")), "the dead process is gone:\n{metrics}");
    let html = apache.get("/rgi-status").text();
    assert!(html.contains("shop") && html.contains(&second), "{html}");
}

#[test]
fn rgislowrequests_logs_a_request_while_it_runs_and_when_it_ends() {
    let info = example("procinfo");
    let apache = Apache::start(Config::new(format!(
        "RGISlowRequests 0.3\nRGIDaemonProcess slow threads=2\n\
         RGIScriptAlias /embedded {info}\nRGIScriptAlias /daemon {info} process-group=slow\n",
        info = info.display()
    )));
    assert_eq!(apache.get("/embedded").status, 200);
    for mode in ["embedded", "daemon"] {
        let port = apache.port;
        let path = format!("/{mode}?sleep=3000");
        let request = {
            let path = path.clone();
            std::thread::spawn(move || support::http::get(port, &path))
        };
        let running = format!("GET {path} HTTP/1.1 still running after 0.");
        assert!(apache.wait_for_log(&running), "{mode}: no line while it runs:\n{}", apache.error_log());
        assert!(!request.is_finished(), "{mode}: logged while it runs, not after");
        assert_eq!(request.join().unwrap().status, 200);
        let log = apache.error_log();
        let line = log.lines().find(|l| l.contains(&running)).unwrap();
        let id = line.split("[request ").nth(1).and_then(|rest| rest.split(']').next()).unwrap();
        let finished = format!("[request {id}] slow request finished after 3.");
        assert!(apache.wait_for_log(&finished), "{mode}: no line at its end:\n{}", apache.error_log());
        let log = apache.error_log();
        let end = log.lines().find(|l| l.contains(&finished)).unwrap();
        assert!(end.ends_with("s with status 200"), "{mode}: {end}");
    }
    let log = apache.error_log();
    assert!(!log.contains("GET /embedded HTTP/1.1 still running"), "a quick request is not slow:\n{log}");
}

#[test]
fn configtest_rejects_bad_rgislowrequests() {
    for (conf, expected) in [
        ("RGISlowRequests soon", "'soon' is not a number of seconds"),
        ("RGISlowRequests -2", "from 0 (off) to 86400"),
        ("<VirtualHost *:80>\nRGISlowRequests 2\n</VirtualHost>", "only allowed in the main server"),
    ] {
        let (ok, output) = support::configtest(&Config::new(format!("{conf}\n")));
        assert!(!ok, "{conf} must fail apache2 -t");
        assert!(output.contains("RGISlowRequests") && output.contains(expected), "{conf}:\n{output}");
    }
    let (ok, output) = support::configtest(&Config::new("RGISlowRequests 2.5\n"));
    assert!(ok, "{output}");
}
