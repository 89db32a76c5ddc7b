//! Test harness: starts Debian's Apache with a generated, self-contained configuration on a free
//! 127.0.0.1 port, speaks HTTP to it over raw sockets, and stops it with SIGTERM. On failure the
//! server's error log is printed.

#![allow(dead_code)]

pub mod chromium;
pub mod client;
pub mod http;
pub mod procs;
pub mod wrk;

use std::fmt::Write as _;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub use http::{Response, get, request};

/// The Apache binary the tests run.
pub const APACHE: &str = "/usr/sbin/apache2";
/// Debian's module directory.
pub const MODULES: &str = "/usr/lib/apache2/modules";

/// The workspace's release artifacts (built once per test binary unless RGI_SKIP_BUILD is set).
/// `RGI_ARTIFACTS=DIR` serves the module and examples from DIR instead, unbuilt (scripts/asan.sh
/// points it at an instrumented build).
pub fn artifacts() -> PathBuf {
    if let Some(dir) = std::env::var_os("RGI_ARTIFACTS") {
        return PathBuf::from(dir);
    }
    static BUILD: Once = Once::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    BUILD.call_once(|| {
        if std::env::var_os("RGI_SKIP_BUILD").is_none() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--workspace", "--quiet"])
                .current_dir(root)
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build --release --workspace failed");
        }
    });
    target.join("release")
}

/// Path of an example app library, e.g. `example("hello")`.
pub fn example(name: &str) -> PathBuf {
    artifacts().join(format!("libexample_{name}.so"))
}

/// The module library.
pub fn module() -> PathBuf {
    artifacts().join("libmod_rgi.so")
}

/// Apache's multi-processing modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    fn directives(self, settings: Option<&str>) -> String {
        let (name, settings_default) = match self {
            Mpm::Event => (
                "event",
                "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16\nThreadLimit 8\n",
            ),
            Mpm::Worker => (
                "worker",
                "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16\nThreadLimit 8\n",
            ),
            Mpm::Prefork => (
                "prefork",
                "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\nServerLimit 8\nMaxRequestWorkers 8\n",
            ),
        };
        let settings = settings.unwrap_or(settings_default);
        format!("LoadModule mpm_{name}_module {MODULES}/mod_mpm_{name}.so\n{settings}")
    }
}

/// A configuration to start Apache with.
pub struct Config {
    pub mpm: Mpm,
    /// Extra modules by Debian name (`"auth_basic"` loads mod_auth_basic.so).
    pub modules: Vec<String>,
    /// Configuration text appended after the generated preamble. `{port}` and `{root}` (the server
    /// root) are replaced.
    pub body: String,
    pub log_level: String,
    /// The MPM's capacity directives, replacing the small defaults.
    pub mpm_settings: Option<String>,
}

impl Config {
    pub fn new(body: impl Into<String>) -> Self {
        Config {
            mpm: Mpm::Event,
            modules: Vec::new(),
            body: body.into(),
            log_level: "info rgi:debug".into(),
            mpm_settings: None,
        }
    }

    pub fn mpm(mut self, mpm: Mpm) -> Self {
        self.mpm = mpm;
        self
    }

    /// Replaces the MPM's capacity directives (`StartServers`, `ServerLimit`, …).
    pub fn mpm_settings(mut self, settings: &str) -> Self {
        self.mpm_settings = Some(settings.into());
        self
    }

    pub fn module(mut self, name: &str) -> Self {
        self.modules.push(name.into());
        self
    }

    fn render(&self, root: &Path, port: u16) -> String {
        let mut conf = String::new();
        let root_s = root.display();
        let _ = writeln!(conf, "ServerRoot {root_s}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}");
        let _ = writeln!(conf, "PidFile {root_s}/httpd.pid\nDefaultRuntimeDir {root_s}\nErrorLog {root_s}/error.log");
        let _ =
            writeln!(conf, "LogLevel {}\nTimeout 30\nKeepAliveTimeout 2\nGracefulShutdownTimeout 5", self.log_level);
        conf.push_str(&self.mpm.directives(self.mpm_settings.as_deref()));
        let mut modules = vec!["authz_core".to_string()];
        modules.extend(self.modules.iter().cloned());
        modules.dedup();
        for m in modules {
            let _ = writeln!(conf, "LoadModule {m}_module {MODULES}/mod_{m}.so");
        }
        let _ = writeln!(conf, "LoadModule rgi_module {}", module().display());
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            conf.push_str("User www-data\nGroup www-data\n");
        }
        let _ = writeln!(conf, "DocumentRoot {root_s}/htdocs");
        let _ = writeln!(conf, "<Directory {}>\n  Require all granted\n</Directory>", artifacts().display());
        let _ = writeln!(conf, "<Directory {root_s}/htdocs>\n  Require all granted\n</Directory>");
        let body = self.body.replace("{port}", &port.to_string()).replace("{root}", &root_s.to_string());
        let body = body.replace("{examples}", &artifacts().display().to_string());
        conf.push_str(&body);
        conf
    }
}

/// Where apps run: in Apache's own children, or in a daemon process group (`RGIDaemonProcess`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Daemon,
}

/// The daemon process group the core suite's daemon mode uses.
pub const DAEMON_GROUP: &str = "core";

impl Mode {
    /// A configuration serving `body` in this mode: in daemon mode every app of the server goes
    /// to one daemon process group, and imports are made there.
    pub fn config(self, body: impl Into<String>) -> Config {
        let body = body.into();
        match self {
            Mode::Embedded => Config::new(body),
            Mode::Daemon => {
                let mut daemon =
                    format!("RGIDaemonProcess {DAEMON_GROUP} processes=1 threads=8\nRGIProcessGroup {DAEMON_GROUP}\n");
                for line in body.lines() {
                    daemon.push_str(line);
                    if line.trim_start().starts_with("RGIImportScript") {
                        daemon.push_str(&format!(" process-group={DAEMON_GROUP}"));
                    }
                    daemon.push('\n');
                }
                Config::new(daemon)
            }
        }
    }

    /// `rgi.process_group` in this mode.
    pub fn process_group(self) -> &'static str {
        match self {
            Mode::Embedded => "",
            Mode::Daemon => DAEMON_GROUP,
        }
    }

    /// `rgi.multiprocess` in this mode (the test MPMs run up to 2 children; the group 1 process).
    pub fn multiprocess(self) -> &'static str {
        match self {
            Mode::Embedded => "true",
            Mode::Daemon => "false",
        }
    }
}

/// Runs each named `fn case(mode: Mode)` as two tests, `embedded::case` and `daemon::case`.
#[macro_export]
macro_rules! in_both_modes {
    ($($case:ident),+ $(,)?) => {
        mod embedded {
            $(#[test] fn $case() { super::$case($crate::support::Mode::Embedded) })+
        }
        mod daemon {
            $(#[test] fn $case() { super::$case($crate::support::Mode::Daemon) })+
        }
    };
}

/// A running Apache.
pub struct Apache {
    pub port: u16,
    pub root: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().unwrap().port()
}

fn server_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("rgi-test-").tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("htdocs")).unwrap();
    // Apache's children (www-data) write nothing here, but must be able to traverse it.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// Apache's whole environment: PATH, and for an instrumented build (scripts/asan.sh) the sanitizer
/// runtime to preload (`RGI_APACHE_LD_PRELOAD`) and its options.
fn apache_env() -> Vec<(String, String)> {
    let mut env = vec![("PATH".to_string(), "/usr/sbin:/usr/bin:/bin".to_string())];
    if let Ok(preload) = std::env::var("RGI_APACHE_LD_PRELOAD") {
        env.push(("LD_PRELOAD".into(), preload));
    }
    for name in ["ASAN_OPTIONS", "LSAN_OPTIONS"] {
        if let Ok(value) = std::env::var(name) {
            env.push((name.into(), value));
        }
    }
    env
}

/// Runs `apache2 -t` on a configuration; returns (success, output).
pub fn configtest(config: &Config) -> (bool, String) {
    let root = server_root();
    let conf = config.render(root.path(), free_port());
    let path = root.path().join("httpd.conf");
    std::fs::write(&path, conf).unwrap();
    let out = Command::new(APACHE)
        .args(["-t", "-f"])
        .arg(&path)
        .env_clear()
        .envs(apache_env())
        .output()
        .expect("run apache2 -t");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

impl Apache {
    /// Starts Apache and waits until it answers.
    pub fn start(config: Config) -> Apache {
        for _attempt in 0..5 {
            let root = server_root();
            let port = free_port();
            let conf = config.render(root.path(), port);
            std::fs::write(root.path().join("httpd.conf"), &conf).unwrap();
            let mut apache = Apache { port, root, child: None };
            apache.spawn();
            match apache.wait_ready() {
                Ok(()) => return apache,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("Apache did not start:\n{log}\n--- config ---\n{conf}"),
            }
        }
        panic!("no free port found for Apache");
    }

    fn spawn(&mut self) {
        // Apache's parent signals its whole process group on shutdown (killpg), so it must not
        // share ours.
        let child = Command::new(APACHE)
            .process_group(0)
            .args(["-f"])
            .arg(self.root.path().join("httpd.conf"))
            .arg("-DFOREGROUND")
            .env_clear()
            .envs(apache_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start apache2");
        self.child = Some(child);
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.as_mut().unwrap().stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                self.child = None;
                return Err(format!("apache2 exited with {status}\n{stderr}\n{}", self.error_log()));
            }
            // Ready once *this* server says so: a connection alone could reach another server
            // that took the port first.
            if self.error_log().contains("resuming normal operations") {
                TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("cannot connect: {e}"))?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("apache2 did not listen within 20 s\n{}", self.error_log()))
    }

    /// The PID of the Apache parent.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("Apache is running")
    }

    /// Sends a signal to the Apache parent (SIGUSR1 = graceful, SIGHUP = restart).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with our own running child's pid (never 0, which would be our group).
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Sends `sig` (SIGUSR1 = graceful, SIGHUP = restart) and waits until the parent has read its
    /// configuration again and is starting the new generation of children.
    pub fn restart(&self, sig: i32) {
        let done = |log: &str| log.matches("resuming normal operations").count();
        let before = done(&self.error_log());
        self.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(60);
        while done(&self.error_log()) <= before {
            assert!(Instant::now() < deadline, "no restart after signal {sig}:\n{}", self.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("error.log")).unwrap_or_default()
    }

    /// Waits until the error log contains `needle` (up to 10 s); returns whether it did.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.error_log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Response {
        get(self.port, path)
    }

    /// Sends raw bytes and reads the response.
    pub fn request(&self, raw: &[u8]) -> Response {
        request(self.port, raw)
    }

    /// Stops Apache with SIGTERM and waits; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill with our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- error.log of the failed test's Apache ---\n{}", self.error_log());
        }
    }
}
