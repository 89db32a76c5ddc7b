//! The peers: one self-contained Apache each (own ServerRoot, port and error log, identical MPM
//! settings), plus the hyper server behind the proxy peer; and what /proc says about them.

use std::fmt::Write as _;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Apache binary and module directory.
pub const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

/// A server a user could pick instead of mod_rgi (or mod_rgi itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A minimal C content handler (bench/c/mod_bench.c); also serves files statically.
    C,
    WsgiEmbedded,
    WsgiDaemon,
    /// Apache's mod_proxy_http in front of bench/hyper-hello.
    ProxyHyper,
    RgiEmbedded,
    /// `RGIDaemonProcess bench processes=1 threads=25`, as the mod_wsgi daemon peer.
    RgiDaemon,
}

impl Peer {
    pub const ALL: [Peer; 6] =
        [Peer::C, Peer::WsgiEmbedded, Peer::WsgiDaemon, Peer::ProxyHyper, Peer::RgiEmbedded, Peer::RgiDaemon];

    pub fn name(self) -> &'static str {
        match self {
            Peer::C => "C handler",
            Peer::WsgiEmbedded => "mod_wsgi embedded",
            Peer::WsgiDaemon => "mod_wsgi daemon",
            Peer::ProxyHyper => "mod_proxy → hyper",
            Peer::RgiEmbedded => "mod_rgi embedded",
            Peer::RgiDaemon => "mod_rgi daemon",
        }
    }

    /// Whether the app runs in daemon processes of its own.
    pub fn is_daemon(self) -> bool {
        matches!(self, Peer::WsgiDaemon | Peer::RgiDaemon)
    }

    pub fn dir(self) -> &'static str {
        match self {
            Peer::C => "c",
            Peer::WsgiEmbedded => "wsgi-embedded",
            Peer::WsgiDaemon => "wsgi-daemon",
            Peer::ProxyHyper => "proxy-hyper",
            Peer::RgiEmbedded => "rgi-embedded",
            Peer::RgiDaemon => "rgi-daemon",
        }
    }
}

/// What every server's configuration refers to.
pub struct Setup {
    /// The workspace's release directory (libmod_rgi.so, the examples, hyper-hello).
    pub release: PathBuf,
    /// bench/ in the source tree.
    pub bench: PathBuf,
    /// The run's scratch directory (server roots, data files).
    pub work: PathBuf,
    /// The C peer, built with apxs.
    pub c_module: PathBuf,
    /// The file both download peers send.
    pub big_file: PathBuf,
    /// Where bench/hyper-hello listens.
    pub hyper_port: u16,
}

/// Identical for every peer: event MPM, one child of 25 threads, unlimited keep-alive, no
/// .htaccess probing (as Debian's apache2.conf), sendfile on, no access log.
fn preamble(root: &Path, port: u16) -> String {
    let root = root.display();
    let mut conf = format!(
        "ServerRoot {root}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {root}/httpd.pid\n\
         DefaultRuntimeDir {root}\nErrorLog {root}/error.log\nLogLevel notice\n\
         LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
         StartServers 1\nServerLimit 1\nThreadLimit 25\nThreadsPerChild 25\nMaxRequestWorkers 25\n\
         MinSpareThreads 1\nMaxSpareThreads 25\nMaxConnectionsPerChild 0\n\
         KeepAlive On\nMaxKeepAliveRequests 0\nKeepAliveTimeout 5\nTimeout 60\nEnableSendfile On\n\
         LoadModule authz_core_module {MODULES}/mod_authz_core.so\n"
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        conf.push_str("User www-data\nGroup www-data\n");
    }
    let _ = write!(
        conf,
        "DocumentRoot {root}/htdocs\n<Directory />\n  AllowOverride None\n  Require all denied\n</Directory>\n\
         <Directory {root}/htdocs>\n  Require all granted\n</Directory>\n\
         <Directory {root}/apps>\n  Require all granted\n</Directory>\n"
    );
    conf
}

/// The peer's own part of the configuration. Handlers sit at the same depth for every peer: the
/// C handler's URLs map to (empty) files in htdocs/, the apps are in apps/.
fn body(peer: Peer, setup: &Setup, root: &Path) -> String {
    let root = root.display();
    let big = setup.big_file.display();
    match peer {
        Peer::C => format!(
            "LoadModule bench_module {}\n\
             <Location /hello>\n  SetHandler bench-hello\n</Location>\n\
             <Location /environ>\n  SetHandler bench-environ\n</Location>\n\
             <Location /blob>\n  SetHandler bench-blob\n</Location>\n\
             <Location /echo>\n  SetHandler bench-echo\n</Location>\n",
            setup.c_module.display()
        ),
        Peer::WsgiEmbedded | Peer::WsgiDaemon => {
            let mut conf = format!("LoadModule wsgi_module {MODULES}/mod_wsgi.so\nWSGISocketPrefix {root}/wsgi\n");
            if peer == Peer::WsgiDaemon {
                conf.push_str("WSGIDaemonProcess bench processes=1 threads=25\nWSGIProcessGroup bench\n");
            }
            for app in ["hello", "environ", "blob"] {
                let _ = writeln!(conf, "WSGIScriptAlias /{app} {root}/apps/{app}.wsgi");
            }
            conf
        }
        Peer::ProxyHyper => {
            let port = setup.hyper_port;
            format!(
                "LoadModule proxy_module {MODULES}/mod_proxy.so\n\
                 LoadModule proxy_http_module {MODULES}/mod_proxy_http.so\n\
                 ProxyPass /hello http://127.0.0.1:{port}/hello\n\
                 ProxyPass /blob http://127.0.0.1:{port}/blob\n"
            )
        }
        Peer::RgiEmbedded | Peer::RgiDaemon => {
            let mut conf = format!("LoadModule rgi_module {}/libmod_rgi.so\n", setup.release.display());
            let mut group = "";
            if peer == Peer::RgiDaemon {
                conf.push_str("RGIDaemonProcess bench processes=1 threads=25\n");
                group = " process-group=bench";
            }
            for app in ["hello", "environ", "blob", "echo", "download"] {
                let _ = writeln!(conf, "RGIScriptAlias /{app} {root}/apps/libexample_{app}.so{group}");
            }
            let _ = writeln!(conf, "<Location /download>\n  RGIOption download.file {big}\n</Location>");
            conf
        }
    }
}

/// Lays out a server root for `peer` and returns its configuration for `port`.
fn prepare_root(peer: Peer, setup: &Setup, root: &Path, port: u16) -> io::Result<String> {
    std::fs::create_dir_all(root.join("htdocs"))?;
    std::fs::create_dir_all(root.join("apps"))?;
    for name in ["hello", "environ", "blob", "echo"] {
        std::fs::write(root.join("htdocs").join(name), b"")?;
    }
    match peer {
        Peer::WsgiEmbedded | Peer::WsgiDaemon => {
            for app in ["hello", "environ", "blob"] {
                let file = format!("{app}.wsgi");
                std::fs::copy(setup.bench.join("wsgi").join(&file), root.join("apps").join(&file))?;
            }
        }
        Peer::RgiEmbedded | Peer::RgiDaemon => {
            for app in ["hello", "environ", "blob", "echo", "download"] {
                let lib = format!("libexample_{app}.so");
                std::fs::copy(setup.release.join(&lib), root.join("apps").join(&lib))?;
            }
        }
        Peer::C | Peer::ProxyHyper => {}
    }
    let conf = preamble(root, port) + &body(peer, setup, root);
    std::fs::write(root.join("httpd.conf"), &conf)?;
    Ok(conf)
}

/// Makes `path` belong to the user Apache's processes run as (www-data when started as root).
fn give_to_server_user(path: &Path) -> io::Result<()> {
    // SAFETY: geteuid and getpwnam have no preconditions; the name is a NUL-terminated literal.
    let user =
        unsafe { if libc::geteuid() == 0 { libc::getpwnam(c"www-data".as_ptr()) } else { std::ptr::null_mut() } };
    // SAFETY: getpwnam returned null or a valid entry.
    if let Some(user) = unsafe { user.as_ref() } {
        std::os::unix::fs::chown(path, Some(user.pw_uid), Some(user.pw_gid))?;
    }
    Ok(())
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind a free port")
}

/// How a server process is run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `apache2 -DFOREGROUND`: the parent and its child (and daemon processes).
    Normal,
    /// `valgrind --tool=callgrind apache2 -X`: one process, writing its counts to
    /// `callgrind/callgrind.out`.
    Callgrind,
    /// The whole server under callgrind (`--trace-children=yes`): the parent, its child and any
    /// daemon processes, each writing `callgrind/callgrind.out.PID`.
    CallgrindTree,
}

/// A running server (an Apache, and bench/hyper-hello for the proxy peer).
pub struct Server {
    pub peer: Peer,
    pub port: u16,
    pub root: PathBuf,
    apache: Option<Child>,
    backend: Option<Child>,
}

impl Server {
    /// Starts `peer` under `root` (created) and waits until it answers.
    pub fn start(peer: Peer, setup: &Setup, root: &Path, mode: Mode) -> io::Result<Server> {
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let _ = std::fs::remove_dir_all(root);
            prepare_root(peer, setup, root, port)?;
            let mut command = match mode {
                Mode::Normal => Command::new(APACHE),
                Mode::Callgrind => {
                    let out = root.join("callgrind");
                    std::fs::create_dir_all(&out)?;
                    // The server drops to www-data before callgrind writes its counts at exit.
                    let file = out.join("callgrind.out");
                    std::fs::write(&file, b"")?;
                    give_to_server_user(&file)?;
                    let mut c = Command::new("valgrind");
                    c.args(["--tool=callgrind", "--vgdb=no"])
                        .arg(format!("--callgrind-out-file={}", file.display()))
                        .arg(APACHE)
                        .arg("-X");
                    c
                }
                Mode::CallgrindTree => {
                    let out = root.join("callgrind");
                    std::fs::create_dir_all(&out)?;
                    // Each process writes its own file, as whichever user it has become by then.
                    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
                    let mut c = Command::new("valgrind");
                    c.args(["--tool=callgrind", "--vgdb=no", "--trace-children=yes"])
                        .arg(format!("--callgrind-out-file={}/callgrind.out.%p", out.display()))
                        .arg(APACHE);
                    c
                }
            };
            // Apache's parent signals its whole process group on shutdown: give it its own.
            let child = command
                .process_group(0)
                .arg("-f")
                .arg(root.join("httpd.conf"))
                .arg("-DFOREGROUND")
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/bin")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("stderr.log"))?)
                .spawn()?;
            let mut server = Server { peer, port, root: root.to_path_buf(), apache: Some(child), backend: None };
            let limit = if mode == Mode::Normal { 30 } else { 120 };
            match server.wait_ready(Duration::from_secs(limit), mode) {
                Ok(()) => return Ok(server),
                Err(log) if log.contains("Address already in use") => last_error = log,
                Err(log) => return Err(io::Error::other(format!("{} did not start:\n{log}", peer.name()))),
            }
        }
        Err(io::Error::other(format!("{} found no free port:\n{last_error}", peer.name())))
    }

    /// Adds the proxy's backend, whose CPU counts as the server's.
    pub fn with_backend(mut self, backend: Child) -> Self {
        self.backend = Some(backend);
        self
    }

    fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.root.join(name)).unwrap_or_default();
        read("error.log") + &read("stderr.log")
    }

    fn wait_ready(&mut self, limit: Duration, mode: Mode) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.apache.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.apache = None;
                return Err(format!("apache2 exited with {status}\n{}", self.log()));
            }
            // This server's own log line, not just a connection (another server may have the port);
            // `apache2 -X` writes no such line.
            let started = mode == Mode::Callgrind || self.log().contains("resuming normal operations");
            if started && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("no answer within {limit:?}\n{}", self.log()))
    }

    /// The Apache parent's process id (the server's process group).
    pub fn pid(&self) -> i32 {
        self.apache.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Every process of the server: its process group and every descendant (daemon processes),
    /// and the proxy's backend.
    fn family(&self, all: &[Process]) -> Vec<i32> {
        let mut family: Vec<i32> = all.iter().filter(|p| p.pgrp == self.pid()).map(|p| p.pid).collect();
        family.extend(self.backend.as_ref().map(|c| c.id() as i32));
        loop {
            let known = family.len();
            for p in all {
                if family.contains(&p.ppid) && !family.contains(&p.pid) {
                    family.push(p.pid);
                }
            }
            if family.len() == known {
                break;
            }
        }
        family
    }

    /// CPU time (user + system) of every process of the server so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let all = processes();
        let family = self.family(&all);
        all.iter().filter(|p| family.contains(&p.pid)).map(|p| p.utime + p.stime + p.cutime + p.cstime).sum()
    }

    /// Context switches (voluntary and not) of every thread of every process of the server so
    /// far: each is a thread put to sleep or off its core, the main cost of a request on these
    /// virtual machines after the work itself.
    pub fn context_switches(&self) -> u64 {
        let family = self.family(&processes());
        let mut sum = 0;
        for pid in family {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            for task in tasks.flatten() {
                let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
                sum += status
                    .lines()
                    .filter(|l| {
                        l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:")
                    })
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum::<u64>();
            }
        }
        sum
    }

    /// Resident memory of the Apache children (not daemon processes), in KiB.
    pub fn children_rss_kib(&self) -> Vec<u64> {
        processes().iter().filter(|p| p.ppid == self.pid()).map(|p| p.rss_kib).collect()
    }

    /// Stops the server (SIGTERM, then SIGKILL to its group) and waits for it.
    pub fn stop(&mut self) {
        for mut child in [self.apache.take(), self.backend.take()].into_iter().flatten() {
            let pid = child.id() as i32;
            // SAFETY: signalling our own child by its pid (never 0 or -1).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: our child's own process group (it was started with process_group(0)).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts bench/hyper-hello on a free port with 2 tokio workers.
pub fn start_hyper(release: &Path) -> io::Result<(Child, u16)> {
    let port = free_port();
    let child = Command::new(release.join("hyper-hello"))
        .process_group(0)
        .args([port.to_string(), "2".into()])
        .stdin(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(io::Error::other("hyper-hello did not listen"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, port))
}

/// One process, from /proc/PID/stat.
struct Process {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
    rss_kib: u64,
}

fn processes() -> Vec<Process> {
    // SAFETY: sysconf has no preconditions.
    let page_kib = (unsafe { libc::sysconf(libc::_SC_PAGESIZE) } / 1024).max(1) as u64;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        out.push(Process {
            pid,
            ppid: num(1) as i32,
            pgrp: num(2) as i32,
            utime: num(11) as u64,
            stime: num(12) as u64,
            cutime: num(13) as u64,
            cstime: num(14) as u64,
            rss_kib: num(21) as u64 * page_kib,
        });
    }
    out
}

/// Clock ticks per second (for [`Server::cpu_ticks`]).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}
