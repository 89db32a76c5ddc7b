//! rgi-express and installation, against Debian's real Apache: serving, stopping, the errors a
//! person sees, setup-server's apachectl, `make install` and a2enmod.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use support::{artifacts, example, get, module};

fn express() -> PathBuf {
    artifacts().join("rgi-express")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// One process as /proc shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    ppid: u32,
    pgid: u32,
    /// Start time in clock ticks since boot: with the pid, names the process even if the pid is
    /// reused later.
    start: u64,
}

/// Every process, from /proc.
fn processes() -> Vec<Proc> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp … starttime is field 22; comm may contain spaces and ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        all.push(Proc { pid, ppid: num(1) as u32, pgid: num(2) as u32, start: num(19) });
    }
    all
}

/// The Apache parent `pid`, everything in its process group, and all their descendants.
fn apache_processes(pid: u32) -> Vec<Proc> {
    let all = processes();
    let mut found: Vec<Proc> = all.iter().filter(|p| p.pid == pid || p.pgid == pid).copied().collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i].pid;
        for p in &all {
            if p.ppid == parent && !found.contains(p) {
                found.push(*p);
            }
        }
        i += 1;
    }
    found
}

/// Which of `procs` still exist (same pid, same start time).
fn still_running(procs: &[Proc]) -> Vec<Proc> {
    let now = processes();
    procs.iter().filter(|p| now.contains(p)).copied().collect()
}

/// A running `rgi-express start-server`.
struct Express {
    child: Option<Child>,
    port: u16,
    apache_pid: u32,
    root: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
    output: Vec<String>,
}

impl Express {
    /// Starts `rgi-express start-server ARGS --port P --server-root R` and waits for its "serves"
    /// line (retrying on another port if the chosen one was taken meanwhile).
    fn start(args: &[&str]) -> Express {
        let mut last = String::new();
        for _attempt in 0..5 {
            let root = temp_dir("rgi-express-test-");
            let port = free_port();
            let mut child = Command::new(express())
                .arg("start-server")
                .args(args)
                .args(["--port", &port.to_string(), "--server-root"])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run rgi-express");
            let (tx, lines) = mpsc::channel();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut express = Express { child: Some(child), port, apache_pid: 0, root, lines, output: Vec::new() };
            match express.wait_for_line("serves http") {
                Some(line) => {
                    let pid = line.split("(pid ").nth(1).and_then(|s| s.split(')').next()).unwrap();
                    express.apache_pid = pid.parse().unwrap();
                    return express;
                }
                None => {
                    let mut stderr = String::new();
                    let mut child = express.child.take().unwrap();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                    let _ = child.wait();
                    last = format!("{}\n{stderr}", express.output.join("\n"));
                    if !stderr.contains("already in use") {
                        panic!("rgi-express did not start:\n{last}");
                    }
                }
            }
        }
        panic!("no free port for rgi-express:\n{last}");
    }

    /// Reads stdout until a line contains `needle` (None if rgi-express closed it first).
    fn wait_for_line(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        panic!("no line with {needle:?} within 60 s; so far:\n{}", self.output.join("\n"));
    }

    fn get(&self, path: &str) -> support::Response {
        get(self.port, path)
    }

    /// Sends `signal` to rgi-express and waits for it to exit; returns its exit code.
    fn stop_with(&mut self, signal: i32) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: kill with the pid of our own, not yet reaped, child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.output.push(line);
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("rgi-express did not stop within 60 s");
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("error_log")).unwrap_or_default()
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_with(libc::SIGTERM);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- rgi-express output ---\n{}\n--- error_log ---\n{}",
                self.output.join("\n"),
                self.error_log()
            );
        }
    }
}

/// Runs rgi-express to completion.
fn run_express(args: &[&str]) -> Output {
    Command::new(express()).args(args).stdin(Stdio::null()).output().expect("run rgi-express")
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn start_server_serves_apps_under_a_mount_point() {
    let (environ, hello) = (example("environ"), example("hello"));
    let static_dir = temp_dir("rgi-express-static-");
    std::fs::set_permissions(static_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(static_dir.path().join("style.css"), "body {}").unwrap();
    let express = Express::start(&[
        environ.to_str().unwrap(),
        "--mount-point",
        "/app",
        "--app",
        "/app/hello",
        hello.to_str().unwrap(),
        "--setenv",
        "DEPLOYMENT",
        "test",
        "--url-alias",
        "/static",
        static_dir.path().to_str().unwrap(),
        "--access-log",
    ]);

    let r = express.get("/app/hello");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));

    let env = express.get("/app/some/path?x=1").environ();
    assert_eq!(env["SCRIPT_NAME"], "/app");
    assert_eq!(env["PATH_INFO"], "/some/path");
    assert_eq!(env["QUERY_STRING"], "x=1");
    assert_eq!(env["SERVER_PORT"], express.port.to_string());
    assert_eq!(env["DEPLOYMENT"], "test");
    assert_eq!(env["rgi.multithread"], "true");
    assert_eq!(env["rgi.process_group"], "rgi-express", "daemon mode by default");

    let env = express.get("/app").environ();
    assert_eq!((env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()), ("/app", ""));

    // Nothing is mounted at /: it lists what is.
    let index = express.get("/");
    assert_eq!(index.status, 200, "{index:?}");
    for link in ["<a href=\"/app\">", "<a href=\"/app/hello\">", "<a href=\"/static\">"] {
        assert!(index.text().contains(link), "{link} missing from {}", index.text());
    }
    assert_eq!(express.get("/application").status, 404, "/app matches whole segments only");

    let css = express.get("/static/style.css");
    assert_eq!((css.status, css.text().as_str()), (200, "body {}"));
    assert_eq!(css.header("Content-Type"), Some("text/css"));

    let access_log = express.root.path().join("access_log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&access_log).unwrap_or_default().contains("\"GET /static/style.css HTTP/1.1\" 200") {
        assert!(Instant::now() < deadline, "no access log line for the request");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_processes_are_recycled_as_asked() {
    let procinfo = example("procinfo");
    // The memory and CPU limits are far off: they only have to be accepted.
    let express = Express::start(&[
        procinfo.to_str().unwrap(),
        "--maximum-requests",
        "2",
        "--request-timeout",
        "1",
        "--maximum-memory",
        "1G",
        "--cpu-time-limit",
        "3600",
        "--env",
        "GREETING",
        "hello world",
    ]);
    let pid = |r: support::Response| r.environ()["pid"].clone();
    let first = pid(express.get("/"));
    assert_eq!(pid(express.get("/")), first, "the second request is the process's last");
    assert_ne!(pid(express.get("/")), first, "--maximum-requests 2 replaced the process");
    assert_eq!(express.get("/?env=GREETING").environ()["env"], "hello world");
    let r = express.get("/?sleep=3000");
    assert_eq!(r.status, 504, "--request-timeout 1: {r:?}");
}

#[test]
fn auth_scripts_put_the_site_behind_a_login() {
    let dir = temp_dir("rgi-express-auth-");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (users, groups) = (dir.path().join("users"), dir.path().join("groups"));
    for (user, password, create) in [("alice", "secret", true), ("bob", "hunter2", false)] {
        let mut htpasswd = Command::new("htpasswd");
        htpasswd.arg(if create { "-Bbc" } else { "-Bb" }).arg(&users).args([user, password]);
        assert!(htpasswd.output().expect("htpasswd (apache2-utils)").status.success());
    }
    std::fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&groups, "staff: alice\n").unwrap();
    let (environ, authfile, groupfile) = (example("environ"), example("authfile"), example("groups"));
    let express = Express::start(&[
        environ.to_str().unwrap(),
        "--auth-user-script",
        authfile.to_str().unwrap(),
        "--auth-group-script",
        groupfile.to_str().unwrap(),
        "--auth-group",
        "staff",
        "--option",
        "authfile.users",
        users.to_str().unwrap(),
        "--option",
        "groups.file",
        groups.to_str().unwrap(),
    ]);
    let port = express.port;
    let get_as = |credentials: Option<&str>| {
        let auth = credentials
            .map(|c| format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(c)))
            .unwrap_or_default();
        let raw = format!("GET /who HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n");
        support::request(port, raw.as_bytes())
    };

    let anonymous = get_as(None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("WWW-Authenticate"), Some(format!("Basic realm=\"127.0.0.1:{port}\"").as_str()));
    assert_eq!(get_as(Some("alice:wrong")).status, 401);
    assert_eq!(get_as(Some("nobody:secret")).status, 401);
    assert_eq!(get_as(Some("bob:hunter2")).status, 401, "bob is not in the staff group");
    let alice = get_as(Some("alice:secret"));
    assert_eq!(alice.status, 200, "{}", alice.text());
    let env = alice.environ();
    assert_eq!((env["REMOTE_USER"].as_str(), env["AUTH_TYPE"].as_str()), ("alice", "Basic"));
}

#[test]
fn sigterm_stops_apache_and_leaves_no_process_behind() {
    let mut express = Express::start(&[example("hello").to_str().unwrap()]);
    assert_eq!(express.get("/").status, 200);
    let pgid = express.apache_pid;
    let procs = apache_processes(pgid);
    assert!(procs.iter().any(|p| p.pid == pgid && p.pgid == pgid), "Apache leads its own process group: {procs:?}");
    assert!(procs.len() >= 3, "the parent, a child and a daemon run: {procs:?}");
    let title = |p: &Proc| std::fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
    assert!(procs.iter().any(|p| title(p).starts_with(b"(rgi-express:")), "a daemon process runs: {procs:?}");
    // SAFETY: getpgrp has no preconditions.
    let own_group = unsafe { libc::getpgrp() } as u32;
    assert_ne!(own_group, pgid, "Apache must not share the caller's process group");

    assert_eq!(express.stop_with(libc::SIGTERM), Some(0), "rgi-express passes on Apache's clean exit");
    assert!(express.output.iter().any(|l| l.contains("Apache stopped")), "{:?}", express.output);
    assert_eq!(still_running(&procs), vec![], "processes left behind");
    let left: Vec<String> = processes()
        .iter()
        .filter(|p| p.pgid == pgid)
        .map(|p| format!("{p:?} {:?}", std::fs::read_to_string(format!("/proc/{}/stat", p.pid))))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "nothing left in Apache's group");
    assert!(express.error_log().contains("caught SIGTERM, shutting down"));
}

#[test]
fn ctrl_c_stops_apache_too_and_embedded_mode_is_one_flag_away() {
    let mut express = Express::start(&[example("environ").to_str().unwrap(), "--embedded"]);
    assert_eq!(express.get("/").environ()["rgi.process_group"], "", "served by Apache's own children");
    let procs = apache_processes(express.apache_pid);
    assert_eq!(express.stop_with(libc::SIGINT), Some(0));
    assert_eq!(still_running(&procs), vec![], "processes left behind");
}

#[test]
fn a_port_in_use_is_reported_before_starting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let root = temp_dir("rgi-express-test-");
    let hello = example("hello");
    let out = run_express(&[
        "start-server",
        hello.to_str().unwrap(),
        "--port",
        &port,
        "--server-root",
        root.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(text.contains(&format!("port {port} on 127.0.0.1 is already in use")), "{text}");
    assert!(text.contains("--port"), "says what to do: {text}");
    assert!(!root.path().join("httpd.pid").exists(), "Apache was not started");
}

#[test]
fn a_missing_library_or_a_foreign_one_gets_the_module_message() {
    let root = temp_dir("rgi-express-test-");
    let port = free_port().to_string();
    let base = ["start-server", "--port", &port, "--server-root", root.path().to_str().unwrap()];

    let out = run_express(&[&base[..], &["/nonexistent/libmissing.so"]].concat());
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(text.contains("Apache refused the configuration"), "{text}");
    assert!(text.contains("RGIScriptAlias: cannot read app library '/nonexistent/libmissing.so'"), "{text}");
    assert!(!text.contains("Syntax error on line"), "only the module's words: {text}");

    let not_an_app = module();
    let out = run_express(&[&base[..], &[not_an_app.to_str().unwrap()]].concat());
    assert!(!out.status.success());
    let foreign = output_text(&out);
    assert!(foreign.contains("is not an RGI app"), "{foreign}");
}

#[test]
fn a_missing_apache_says_how_to_install_it() {
    let hello = example("hello");
    let out = run_express(&["start-server", hello.to_str().unwrap(), "--httpd", "/nonexistent/apache2"]);
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(text.contains("Apache httpd is not installed (/nonexistent/apache2 does not exist)"), "{text}");
    assert!(text.contains("apt-get install apache2"), "{text}");
}

#[test]
fn a_server_root_that_is_not_ours_is_refused() {
    let parent = temp_dir("rgi-express-test-");
    let root = parent.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // SAFETY: geteuid has no preconditions.
    let expected = if unsafe { libc::geteuid() } == 0 {
        // Root can write anywhere, but a server root someone else owns could be used to make root
        // load anything: rgi-express refuses it.
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
        "not to you"
    } else {
        std::fs::set_permissions(parent.path(), std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        "permission denied"
    };
    let target = if expected == "not to you" { root.clone() } else { root.join("sub") };
    let hello = example("hello");
    let port = free_port().to_string();
    let out = run_express(&[
        "start-server",
        hello.to_str().unwrap(),
        "--port",
        &port,
        "--server-root",
        target.to_str().unwrap(),
    ]);
    std::fs::set_permissions(parent.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(text.contains(&format!("cannot use {} as the server root", target.display())), "{text}");
    assert!(text.contains(expected), "{text}");
    assert!(text.contains("--server-root"), "says what to do: {text}");
}

/// Replaces `library` with the environ example the way a build does (a new file renamed into
/// place) and waits until the server answers with it. Returns rgi-express's line about it.
fn rebuild_and_wait(express: &mut Express, library: &Path) -> String {
    let staged = library.with_extension("so.new");
    std::fs::copy(example("environ"), &staged).unwrap();
    std::fs::rename(&staged, library).unwrap();
    let line = express.wait_for_line("changed: restarting").expect("the change is noticed");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = express.get("/x");
        if r.status == 200 && r.environ().get("PATH_INFO").map(String::as_str) == Some("/x") {
            break;
        }
        assert!(Instant::now() < deadline, "the new build is not served: {}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    line
}

#[test]
fn a_rebuilt_library_is_served_after_reload_on_changes() {
    let dir = temp_dir("rgi-express-app-");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let library = dir.path().join("libapp.so");
    std::fs::copy(example("hello"), &library).unwrap();
    let mut express = Express::start(&[library.to_str().unwrap(), "--reload-on-changes"]);
    assert_eq!(express.get("/").text(), "Hello, World!");

    // A build writes a new file and renames it into place, as cargo does.
    let line = rebuild_and_wait(&mut express, &library);
    assert!(line.contains("restarting the daemon processes"), "{line}");
    assert!(!express.error_log().contains("graceful restart"), "only the daemons restart");

    // In embedded mode, Apache restarts gracefully.
    drop(express);
    std::fs::copy(example("hello"), &library).unwrap();
    let mut express = Express::start(&[library.to_str().unwrap(), "--reload-on-changes", "--embedded"]);
    assert_eq!(express.get("/").text(), "Hello, World!");
    let line = rebuild_and_wait(&mut express, &library);
    assert!(line.contains("restarting Apache gracefully"), "{line}");
}

#[test]
fn a_library_apaches_user_cannot_read_is_served_from_a_copy() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root starts Apache's children as another user");
        return;
    }
    let private = temp_dir("rgi-express-private-");
    std::fs::set_permissions(private.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let library = private.path().join("libapp.so");
    std::fs::copy(example("hello"), &library).unwrap();
    let mut express = Express::start(&[
        library.to_str().unwrap(),
        "--reload-on-changes",
        "--working-directory",
        private.path().to_str().unwrap(),
    ]);
    let said = |needle: &str| express.output.iter().any(|l| l.contains("www-data cannot enter") && l.contains(needle));
    assert!(said("serving a copy"), "{:?}", express.output);
    assert!(said("start in www-data's home directory instead"), "{:?}", express.output);
    assert_eq!(express.get("/").text(), "Hello, World!");
    rebuild_and_wait(&mut express, &library);
}

#[test]
fn setup_server_writes_a_config_and_a_working_apachectl() {
    let root = temp_dir("rgi-express-setup-");
    let port = free_port();
    let hello = example("hello");
    let out = run_express(&[
        "setup-server",
        hello.to_str().unwrap(),
        "--mount-point",
        "/hello",
        "--server-root",
        root.path().to_str().unwrap(),
        "--port",
        &port.to_string(),
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(output_text(&out).contains("apachectl start"), "{}", output_text(&out));
    let conf = std::fs::read_to_string(root.path().join("httpd.conf")).unwrap();
    assert!(conf.contains(&format!("Listen 127.0.0.1:{port}")), "{conf}");
    assert!(conf.contains(&format!("RGIScriptAlias \"/hello\" \"{}\"", hello.display())), "{conf}");
    assert!(!root.path().join("httpd.pid").exists(), "setup-server starts nothing");

    let apachectl = root.path().join("apachectl");
    let ctl = |arg: &str| Command::new(&apachectl).arg(arg).output().unwrap();
    assert!(ctl("configtest").status.success());
    let started = ctl("start");
    assert!(started.status.success(), "{}", output_text(&started));
    let stop = Stopper(&apachectl);
    let pid_file = root.path().join("httpd.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "apachectl start did not start Apache");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let r = get(port, "/hello");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    assert!(String::from_utf8_lossy(&ctl("status").stdout).contains(&format!("running (pid {pid})")));
    drop(stop);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "apachectl stop did not stop Apache");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ctl("status").status.code(), Some(3));
}

/// Stops an apachectl-started Apache when dropped (also when the test fails).
struct Stopper<'a>(&'a Path);

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.0).arg("stop").output();
    }
}

#[test]
fn module_config_names_the_built_module() {
    let out = run_express(&["module-config"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("LoadModule rgi_module \"{}\"\n", module().display()));
}

#[test]
fn help_reads_like_a_man_page() {
    let out = run_express(&["start-server", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in
        ["Usage: rgi-express start-server", "--mount-point <URL-PATH>", "[default: 8000]", "SIGNALS:", "EXIT STATUS:"]
    {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}

/// Whether a command exists on PATH.
fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn make_install_then_a2enmod_and_configtest_in_the_system_layout() {
    for program in ["make", "a2enmod", "apache2ctl"] {
        assert!(have(program), "{program} is needed (scripts/setup-debian.sh installs it)");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dest = temp_dir("rgi-destdir-");
    let d = dest.path();
    let libexec = String::from_utf8(Command::new("apxs").args(["-q", "LIBEXECDIR"]).output().unwrap().stdout).unwrap();
    let libexec = libexec.trim();

    // The system layout: a copy of Debian's /etc/apache2 under DESTDIR.
    std::fs::create_dir_all(d.join("etc")).unwrap();
    let cp = Command::new("cp").arg("-a").arg("/etc/apache2").arg(d.join("etc")).status().unwrap();
    assert!(cp.success());

    let out = Command::new("make")
        .current_dir(repo)
        .arg("install")
        .arg(format!("DESTDIR={}", d.display()))
        .arg(format!("RELEASE_DIR={}", artifacts().display()))
        .arg("BINDIR=/usr/local/bin")
        .arg("CARGO=false") // never build here: the test uses what the harness built
        .output()
        .unwrap();
    assert!(out.status.success(), "make install failed:\n{}", output_text(&out));

    let installed = d.join(libexec.trim_start_matches('/')).join("mod_rgi.so");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(module()).unwrap(), "the module, as built");
    assert!(d.join("usr/local/bin/rgi-express").is_file());
    let mods = d.join("etc/apache2/mods-available");
    let load = std::fs::read_to_string(mods.join("rgi.load")).unwrap();
    assert!(load.contains(&format!("LoadModule rgi_module {libexec}/mod_rgi.so")), "{load}");
    assert!(mods.join("rgi.conf").is_file());

    // The module is in DESTDIR, not yet in LIBEXECDIR: point the staged .load file at it.
    std::fs::write(mods.join("rgi.load"), load.replace(&format!("{libexec}/mod_rgi.so"), installed.to_str().unwrap()))
        .unwrap();
    // README's virtual host (the Trac layout), with the hello example as the app.
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let vhost = readme
        .split("```apache\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("<VirtualHost *:80>") && block.contains("RGIScriptAlias"))
        .expect("README shows a virtual host with RGIScriptAlias");
    let vhost = vhost
        .replace("/srv/trac/target/release/libtrac.so", example("hello").to_str().unwrap())
        .replace("/srv/trac/target/release", artifacts().to_str().unwrap());
    assert!(vhost.contains("<LocationMatch") && vhost.contains("AuthType Basic"), "{vhost}");
    std::fs::write(d.join("etc/apache2/sites-available/trac.conf"), vhost).unwrap();
    let sites = d.join("etc/apache2/sites-enabled");
    std::os::unix::fs::symlink("../sites-available/trac.conf", sites.join("trac.conf")).unwrap();

    let confdir = d.join("etc/apache2");
    let env = |cmd: &mut Command| {
        cmd.env("APACHE_CONFDIR", &confdir).env("APACHE_STATE_DIRECTORY", d.join("var/lib/apache2"));
    };
    let mut configtest = Command::new("apache2ctl");
    configtest.arg("configtest");
    env(&mut configtest);
    let before = configtest.output().unwrap();
    assert!(!before.status.success(), "RGIScriptAlias is unknown before a2enmod rgi");
    assert!(output_text(&before).contains("RGIScriptAlias"), "{}", output_text(&before));

    let mut a2enmod = Command::new("a2enmod");
    a2enmod.arg("rgi");
    env(&mut a2enmod);
    let out = a2enmod.output().unwrap();
    assert!(out.status.success(), "a2enmod rgi failed:\n{}", output_text(&out));
    assert!(confdir.join("mods-enabled/rgi.load").exists());
    assert!(confdir.join("mods-enabled/rgi.conf").exists());

    let after = configtest.output().unwrap();
    assert!(after.status.success(), "apache2ctl configtest failed after a2enmod rgi:\n{}", output_text(&after));
    assert!(output_text(&after).contains("Syntax OK"));
}
