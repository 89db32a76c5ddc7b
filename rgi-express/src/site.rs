//! What a generated server serves and how, and the self-contained `httpd.conf` it becomes.
//!
//! Rendering is pure: everything it needs (paths already made absolute, whether an alias names a
//! directory) is decided before, so the configuration text can be unit-tested.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where the app code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In Apache's own children (`RGIScriptAlias` without a process group).
    Embedded,
    /// In supervised daemon processes (`RGIDaemonProcess`), Apache's children only proxying.
    Daemon,
}

/// The mode used unless `--embedded` is given: daemon mode, as with mod_wsgi-express.
pub const DEFAULT_MODE: Mode = Mode::Daemon;

/// The name of the daemon process group a generated server delegates to.
pub const PROCESS_GROUP: &str = "rgi-express";

/// One app: a library served at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The mount point (`SCRIPT_NAME`), starting with '/'.
    pub url: String,
    /// The app library, absolute.
    pub library: PathBuf,
}

/// `--url-alias URL PATH`: static files served by Apache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAlias {
    /// The URL, starting with '/'.
    pub url: String,
    /// A directory or a file, absolute.
    pub path: PathBuf,
    /// Whether `path` is a directory.
    pub is_dir: bool,
}

/// Apache's authentication scheme for `--auth-user-script`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthType {
    /// HTTP Basic (the provider's `check_password`).
    Basic,
    /// HTTP Digest (the provider's `get_realm_hash`).
    Digest,
}

impl AuthType {
    fn name(self) -> &'static str {
        match self {
            AuthType::Basic => "Basic",
            AuthType::Digest => "Digest",
        }
    }
}

/// `--auth-user-script` and friends: the whole site behind a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Basic or Digest.
    pub kind: AuthType,
    /// The library answering user/password questions (`RGIAuthUserScript`).
    pub user_script: PathBuf,
    /// The library answering group questions (`RGIAuthGroupScript`), if any.
    pub group_script: Option<PathBuf>,
    /// The group a user must be in when `group_script` is set.
    pub group: String,
}

/// Where the logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// Error (and access) log on the terminal instead of in the server root.
    pub to_terminal: bool,
    /// Write an access log.
    pub access_log: bool,
    /// Apache's `LogLevel`.
    pub level: String,
}

/// The Unix user and group Apache's children (and daemons) run as when started as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User name.
    pub user: String,
    /// Group name.
    pub group: String,
}

/// When daemon processes are replaced and how long a request may wait and run: the
/// `RGIDaemonProcess` options of the same names (times in seconds; 0 turns an optional one off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetimes {
    /// `maximum-requests`: requests after which a process is replaced.
    pub maximum_requests: u64,
    /// `restart-interval`: seconds after which a process is replaced.
    pub restart_interval: u64,
    /// `inactivity-timeout`: idle seconds after which a process is replaced.
    pub inactivity_timeout: u64,
    /// `maximum-memory`: the resident size (bytes, or with a K/M/G suffix) past which a process
    /// is replaced.
    pub maximum_memory: Option<String>,
    /// `cpu-time-limit`: CPU seconds after which a process is replaced.
    pub cpu_time_limit: u64,
    /// `request-timeout`: seconds a request may run before 504.
    pub request_timeout: u64,
    /// `queue-timeout`: seconds a request may wait for a daemon thread before 504.
    pub queue_timeout: u64,
    /// `graceful-timeout`: seconds requests get to finish when a process is replaced.
    pub graceful_timeout: u64,
    /// `shutdown-timeout`: seconds requests get when Apache stops.
    pub shutdown_timeout: u64,
}

impl Default for Lifetimes {
    /// mod_wsgi-express's defaults.
    fn default() -> Self {
        Lifetimes {
            maximum_requests: 0,
            restart_interval: 0,
            inactivity_timeout: 0,
            maximum_memory: None,
            cpu_time_limit: 0,
            request_timeout: 60,
            queue_timeout: 45,
            graceful_timeout: 15,
            shutdown_timeout: 5,
        }
    }
}

impl Lifetimes {
    /// The `RGIDaemonProcess` options; the optional ones only when set.
    fn options(&self) -> Vec<String> {
        let optional = [
            ("maximum-requests", self.maximum_requests),
            ("restart-interval", self.restart_interval),
            ("inactivity-timeout", self.inactivity_timeout),
            ("cpu-time-limit", self.cpu_time_limit),
        ];
        let always = [
            ("request-timeout", self.request_timeout),
            ("queue-timeout", self.queue_timeout),
            ("connect-timeout", 15),
            ("socket-timeout", 60),
            ("graceful-timeout", self.graceful_timeout),
            ("shutdown-timeout", self.shutdown_timeout),
        ];
        let set = optional.into_iter().filter(|&(_, value)| value > 0);
        let mut options: Vec<String> = set.chain(always).map(|(name, value)| format!("{name}={value}")).collect();
        options.extend(self.maximum_memory.iter().map(|size| format!("maximum-memory={size}")));
        options
    }
}

/// Everything a generated server is made of.
#[derive(Debug, Clone)]
pub struct Site {
    /// The directory holding the configuration, logs, pid file and runtime files.
    pub server_root: PathBuf,
    /// The address to listen on.
    pub host: String,
    /// The port to listen on.
    pub port: u16,
    /// The apps, in the order given.
    pub apps: Vec<App>,
    /// Static files.
    pub url_aliases: Vec<UrlAlias>,
    /// Embedded or daemon mode.
    pub mode: Mode,
    /// Processes serving the apps.
    pub processes: u32,
    /// Threads in each of them.
    pub threads: u32,
    /// Recycling and timeouts of the daemon processes.
    pub lifetimes: Lifetimes,
    /// The apps' current directory (daemon mode; Apache's children run in `/`); `None` leaves
    /// it to mod_rgi (the user's home directory).
    pub working_directory: Option<PathBuf>,
    /// User and group for the children, when Apache starts as root.
    pub run_as: Option<RunAs>,
    /// Authentication for the whole site.
    pub auth: Option<Auth>,
    /// `SetEnv NAME VALUE` lines: variables in every request's environ.
    pub setenv: Vec<(String, String)>,
    /// `env=NAME=VALUE` options of the daemon process group: its processes' environment.
    pub env: Vec<(String, String)>,
    /// `RGIOption NAME VALUE` lines, server-wide.
    pub options: Vec<(String, String)>,
    /// Logs.
    pub logging: Logging,
    /// The mod_rgi module to load.
    pub module: PathBuf,
    /// Where Apache's own modules are (`apxs -q LIBEXECDIR`).
    pub modules_dir: PathBuf,
}

/// Seconds Apache waits for a client to send or receive anything (`Timeout`).
pub const SOCKET_TIMEOUT: u32 = 60;
/// Seconds an idle keep-alive connection is held (`KeepAliveTimeout`).
pub const KEEP_ALIVE_TIMEOUT: u32 = 2;
/// Seconds a graceful stop waits for requests in flight (`GracefulShutdownTimeout`).
pub const GRACEFUL_TIMEOUT: u32 = 15;

impl Site {
    /// The configuration file.
    pub fn conf_path(&self) -> PathBuf {
        self.server_root.join("httpd.conf")
    }

    /// The pid file of the Apache parent.
    pub fn pid_path(&self) -> PathBuf {
        self.server_root.join("httpd.pid")
    }

    /// The error log file (unused with `--log-to-terminal`).
    pub fn error_log_path(&self) -> PathBuf {
        self.server_root.join("error_log")
    }

    /// The access log file.
    pub fn access_log_path(&self) -> PathBuf {
        self.server_root.join("access_log")
    }

    /// The document root for URLs no app or alias serves: [`Site::index_page`] and nothing else.
    pub fn document_root(&self) -> PathBuf {
        self.server_root.join("htdocs")
    }

    /// The page at `/` when no app is mounted there: what this server serves, with links.
    pub fn index_page(&self) -> String {
        let mut page = format!(
            "<!DOCTYPE html>\n{INDEX_MARK}\n<html><head><meta charset=\"utf-8\"><title>rgi-express on {host}</title></head>\n\
             <body>\n<h1>rgi-express on {host}</h1>\n<h2>Apps</h2>\n<ul>\n",
            host = escape_html(&self.authority())
        );
        for app in &self.apps {
            let name = app.library.file_name().map_or_else(|| app.library.to_string_lossy(), |n| n.to_string_lossy());
            let _ = writeln!(
                page,
                "<li><a href=\"{url}\">{url}</a>: {name}</li>",
                url = escape_html(&app.url),
                name = escape_html(&name)
            );
        }
        page.push_str("</ul>\n");
        if !self.url_aliases.is_empty() {
            page.push_str("<h2>Static files</h2>\n<ul>\n");
            for alias in &self.url_aliases {
                let _ = writeln!(page, "<li><a href=\"{url}\">{url}</a></li>", url = escape_html(&alias.url));
            }
            page.push_str("</ul>\n");
        }
        page.push_str("</body></html>\n");
        page
    }

    /// `host:port` as written in a URL or a `Listen` line.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL of the app at `mount`.
    pub fn url(&self, mount: &str) -> String {
        format!("http://{}{mount}", self.authority())
    }

    /// The name `ps` shows for the daemon processes.
    pub fn daemon_title(&self) -> String {
        format!("(rgi-express:{})", self.port)
    }

    /// Every library the server loads: apps and auth scripts.
    pub fn libraries(&self) -> Vec<&Path> {
        let mut libs: Vec<&Path> = self.apps.iter().map(|a| a.library.as_path()).collect();
        if let Some(auth) = &self.auth {
            libs.push(&auth.user_script);
            libs.extend(auth.group_script.as_deref());
        }
        libs.sort();
        libs.dedup();
        libs
    }

    /// "embedded (1 process × 5 threads)".
    pub fn capacity(&self) -> String {
        let mode = match self.mode {
            Mode::Embedded => "embedded",
            Mode::Daemon => "daemon",
        };
        let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "es" });
        format!("{mode} ({} × {} threads)", plural(self.processes, "process"), self.threads)
    }

    /// The complete `httpd.conf`.
    pub fn httpd_conf(&self) -> Result<String, Error> {
        let mut c = Conf::default();
        let root = &self.server_root;
        c.line("# Written by rgi-express; rewritten on every start, edit the command line instead.");
        c.directive("ServerRoot", [q(root)?]);
        c.directive("ServerName", [self.server_name()]);
        c.directive("Listen", [self.authority()]);
        c.directive("PidFile", [q(self.pid_path())?]);
        c.directive("DefaultRuntimeDir", [q(root)?]);
        c.line("ServerTokens ProductOnly\nServerSignature Off\nHostnameLookups Off");
        c.blank();

        self.modules(&mut c)?;
        c.blank();
        if let Some(run_as) = &self.run_as {
            c.directive("User", [q(&run_as.user)?]);
            c.directive("Group", [q(&run_as.group)?]);
            c.blank();
        }
        self.mpm(&mut c);
        c.blank();

        c.line("# Timeouts");
        c.directive("Timeout", [SOCKET_TIMEOUT.to_string()]);
        c.line("KeepAlive On");
        c.directive("KeepAliveTimeout", [KEEP_ALIVE_TIMEOUT.to_string()]);
        c.line("RequestReadTimeout header=15-30,MinRate=500 body=15,MinRate=500");
        c.directive("GracefulShutdownTimeout", [GRACEFUL_TIMEOUT.to_string()]);
        c.blank();

        c.line("# Logs");
        let error_log = if self.logging.to_terminal { "/dev/stderr".to_string() } else { q(self.error_log_path())? };
        c.directive("ErrorLog", [error_log]);
        c.directive("LogLevel", [self.logging.level.clone()]);
        if self.logging.access_log {
            c.line(r#"LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"" combined"#);
            let access_log =
                if self.logging.to_terminal { "/dev/stdout".to_string() } else { q(self.access_log_path())? };
            c.directive("CustomLog", [access_log, "combined".into()]);
        }
        c.blank();

        c.line("# Nothing is served unless granted below");
        c.line("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>");
        c.directive("DocumentRoot", [q(self.document_root())?]);
        grant_directory(&mut c, &self.document_root())?;
        c.line("DirectoryIndex index.html");
        c.blank();

        self.app_directives(&mut c)?;
        self.static_files(&mut c)?;
        self.authentication(&mut c)?;
        Ok(c.text)
    }

    fn server_name(&self) -> String {
        match self.host.as_str() {
            "0.0.0.0" | "::" | "" => "localhost".into(),
            host if host.contains(':') => format!("[{host}]"),
            host => host.into(),
        }
    }

    fn modules(&self, c: &mut Conf) -> Result<(), Error> {
        // socache_shmcb: the shared memory apps' sessions live in (rgi::session).
        // dir: the index page at / (and directory indexes of static aliases).
        let mut modules = vec!["mpm_event", "authz_core", "reqtimeout", "socache_shmcb", "dir"];
        if !self.url_aliases.is_empty() {
            modules.extend(["alias", "mime"]);
        }
        if !self.setenv.is_empty() {
            modules.push("env");
        }
        if let Some(auth) = &self.auth {
            modules.extend(["authn_core", "authz_user"]);
            modules.push(match auth.kind {
                AuthType::Basic => "auth_basic",
                AuthType::Digest => "auth_digest",
            });
        }
        for name in modules {
            let path = self.modules_dir.join(format!("mod_{name}.so"));
            c.directive("LoadModule", [format!("{name}_module"), q(path)?]);
        }
        c.directive("LoadModule", ["rgi_module".into(), q(&self.module)?]);
        Ok(())
    }

    /// The event MPM sized to the requested capacity.
    fn mpm(&self, c: &mut Conf) {
        // In embedded mode Apache's children are the app's processes and threads. In daemon mode
        // they only proxy, so they get a pool larger than the daemons' capacity.
        let (processes, threads) = match self.mode {
            Mode::Embedded => (self.processes, self.threads),
            Mode::Daemon => (1, (self.processes * self.threads * 3 / 2).max(10) + 10),
        };
        let workers = processes * threads;
        c.line("# One MPM, sized to the requested capacity");
        c.directive("StartServers", [processes.to_string()]);
        // Twice the processes: children finishing their requests across a graceful restart
        // (--reload-on-changes) keep their slots while the new ones start.
        c.directive("ServerLimit", [(processes * 2).to_string()]);
        c.directive("ThreadLimit", [threads.to_string()]);
        c.directive("ThreadsPerChild", [threads.to_string()]);
        c.directive("MaxRequestWorkers", [workers.to_string()]);
        c.directive("MinSpareThreads", [threads.to_string()]);
        c.directive("MaxSpareThreads", [(workers + threads).to_string()]);
        c.line("MaxConnectionsPerChild 0");
    }

    fn app_directives(&self, c: &mut Conf) -> Result<(), Error> {
        c.line("# The apps");
        if self.mode == Mode::Daemon {
            let mut words = vec![
                PROCESS_GROUP.to_string(),
                format!("processes={}", self.processes),
                format!("threads={}", self.threads),
                q(format!("display-name={}", self.daemon_title()))?,
            ];
            if let Some(dir) = &self.working_directory {
                words.push(q(format!("home={}", dir.display()))?);
            }
            if let Some(run_as) = &self.run_as {
                words.push(q(format!("user={}", run_as.user))?);
                words.push(q(format!("group={}", run_as.group))?);
            }
            words.extend(self.lifetimes.options());
            for (name, value) in &self.env {
                words.push(q(format!("env={name}={value}"))?);
            }
            c.directive("RGIDaemonProcess", words);
            // Nothing of the apps may run in Apache's own children.
            c.line("RGIRestrictEmbedded On");
        }
        // The longest mount point first: an app at "/" must not hide one at "/api".
        let mut apps: Vec<&App> = self.apps.iter().collect();
        apps.sort_by_key(|a| std::cmp::Reverse(a.url.trim_end_matches('/').len()));
        for app in apps {
            let mut words = vec![q(&app.url)?, q(&app.library)?];
            if self.mode == Mode::Daemon {
                words.push(format!("process-group={PROCESS_GROUP}"));
            }
            c.directive("RGIScriptAlias", words);
        }
        let mut dirs: Vec<&Path> = self.libraries().into_iter().filter_map(Path::parent).collect();
        dirs.dedup();
        for dir in dirs {
            grant_directory(c, dir)?;
        }
        for (name, value) in &self.setenv {
            c.directive("SetEnv", [q(name)?, q(value)?]);
        }
        for (name, value) in &self.options {
            c.directive("RGIOption", [q(name)?, q(value)?]);
        }
        c.blank();
        Ok(())
    }

    fn static_files(&self, c: &mut Conf) -> Result<(), Error> {
        if self.url_aliases.is_empty() {
            return Ok(());
        }
        c.line("# Static files");
        if Path::new("/etc/mime.types").exists() {
            c.line("TypesConfig /etc/mime.types");
        }
        for alias in &self.url_aliases {
            c.directive("Alias", [q(&alias.url)?, q(&alias.path)?]);
            if alias.is_dir {
                grant_directory(c, &alias.path)?;
            } else if let (Some(dir), Some(name)) = (alias.path.parent(), alias.path.file_name()) {
                let name = name.to_string_lossy();
                c.line(&format!(
                    "<Directory {}>\n    <Files {}>\n        Require all granted\n    </Files>\n</Directory>",
                    q(dir)?,
                    q(name.as_ref())?
                ));
            }
        }
        c.blank();
        Ok(())
    }

    fn authentication(&self, c: &mut Conf) -> Result<(), Error> {
        let Some(auth) = &self.auth else { return Ok(()) };
        c.line("# Every URL needs a login");
        c.line("<Location \"/\">");
        c.directive("    AuthType", [auth.kind.name().to_string()]);
        c.directive("    AuthName", [q(self.authority())?]);
        c.directive(&format!("    Auth{}Provider", auth.kind.name()), ["rgi".to_string()]);
        c.directive("    RGIAuthUserScript", [q(&auth.user_script)?]);
        if let Some(group_script) = &auth.group_script {
            c.directive("    RGIAuthGroupScript", [q(group_script)?]);
            c.line("    <RequireAll>\n        Require valid-user");
            c.directive("        Require rgi-group", [q(&auth.group)?]);
            c.line("    </RequireAll>");
        } else {
            c.line("    Require valid-user");
        }
        c.line("</Location>");
        Ok(())
    }
}

fn grant_directory(c: &mut Conf, dir: &Path) -> Result<(), Error> {
    c.line(&format!("<Directory {}>\n    Require all granted\n</Directory>", q(dir)?));
    Ok(())
}

/// The configuration text being written.
#[derive(Default)]
struct Conf {
    text: String,
}

impl Conf {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    fn directive<I: IntoIterator<Item = String>>(&mut self, name: &str, args: I) {
        let _ = write!(self.text, "{name}");
        for arg in args {
            let _ = write!(self.text, " {arg}");
        }
        self.text.push('\n');
    }
}

/// Marks an index page rgi-express wrote (and may rewrite); a page of the user's own is kept.
pub const INDEX_MARK: &str = "<!-- written by rgi-express; rewritten on every start -->";

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One argument of a directive, double-quoted as Apache reads it (a quote inside is escaped
/// with a backslash). Line breaks cannot be written in a directive and are refused.
pub fn q(value: impl AsRef<Path>) -> Result<String, Error> {
    let value = value.as_ref();
    let text = value.to_str().ok_or_else(|| Error::Usage(format!("'{}' is not valid UTF-8", value.display())))?;
    if text.contains(['\n', '\r', '\0']) {
        return Err(Error::Usage(format!("{text:?} contains a line break, which Apache's configuration cannot hold")));
    }
    if text.ends_with('\\') {
        return Err(Error::Usage(format!("{text:?} ends with a backslash, which Apache would read as an escape")));
    }
    Ok(format!("\"{}\"", text.replace('"', "\\\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            server_root: "/tmp/root".into(),
            host: "127.0.0.1".into(),
            port: 8000,
            apps: vec![
                App { url: "/".into(), library: "/srv/a/liba.so".into() },
                App { url: "/api".into(), library: "/srv/b/libb.so".into() },
            ],
            url_aliases: vec![],
            mode: Mode::Embedded,
            processes: 1,
            threads: 5,
            lifetimes: Lifetimes::default(),
            working_directory: Some("/srv/work".into()),
            run_as: None,
            auth: None,
            setenv: vec![],
            env: vec![],
            options: vec![],
            logging: Logging { to_terminal: false, access_log: false, level: "warn".into() },
            module: "/m/libmod_rgi.so".into(),
            modules_dir: "/usr/lib/apache2/modules".into(),
        }
    }

    #[test]
    fn the_index_page_links_every_app() {
        let mut s = site();
        s.apps.push(App { url: "/a<b>".into(), library: "/srv/c/libc.so".into() });
        let page = s.index_page();
        assert!(page.contains("<li><a href=\"/api\">/api</a>: libb.so</li>"), "{page}");
        assert!(page.contains("<li><a href=\"/\">/</a>: liba.so</li>"), "{page}");
        assert!(page.contains("/a&lt;b&gt;") && !page.contains("/a<b>"), "{page}");
        assert!(page.contains(INDEX_MARK) && page.contains("rgi-express on 127.0.0.1:8000"));
        assert!(s.httpd_conf().unwrap().contains("DirectoryIndex index.html\n"));
    }

    #[test]
    fn quoting_escapes_quotes_and_refuses_line_breaks() {
        assert_eq!(q("/a b/c").unwrap(), "\"/a b/c\"");
        assert_eq!(q("say \"hi\"").unwrap(), "\"say \\\"hi\\\"\"");
        assert!(q("a\nb").unwrap_err().to_string().contains("line break"));
        assert!(q("a\\").is_err());
    }

    #[test]
    fn longer_mount_points_come_first() {
        let conf = site().httpd_conf().unwrap();
        let api = conf.find("RGIScriptAlias \"/api\" \"/srv/b/libb.so\"").unwrap();
        let root = conf.find("RGIScriptAlias \"/\" \"/srv/a/liba.so\"").unwrap();
        assert!(api < root, "{conf}");
        assert!(conf.contains("<Directory \"/srv/a\">\n    Require all granted"));
        assert!(conf.contains("<Directory \"/srv/b\">"));
    }

    #[test]
    fn the_essentials_of_a_self_contained_config() {
        let conf = site().httpd_conf().unwrap();
        for line in [
            "ServerRoot \"/tmp/root\"",
            "ServerName 127.0.0.1",
            "Listen 127.0.0.1:8000",
            "PidFile \"/tmp/root/httpd.pid\"",
            "LoadModule authz_core_module \"/usr/lib/apache2/modules/mod_authz_core.so\"",
            "LoadModule socache_shmcb_module \"/usr/lib/apache2/modules/mod_socache_shmcb.so\"",
            "LoadModule rgi_module \"/m/libmod_rgi.so\"",
            "ErrorLog \"/tmp/root/error_log\"",
            "ThreadsPerChild 5",
            "MaxRequestWorkers 5",
        ] {
            assert!(conf.lines().any(|l| l == line), "missing {line:?} in\n{conf}");
        }
        assert!(!conf.contains("CustomLog"));
        assert!(!conf.contains("RGIDaemonProcess"));
        assert!(!conf.contains("User "));
    }

    #[test]
    fn capacity_follows_processes_and_threads() {
        let mut s = site();
        (s.processes, s.threads) = (3, 4);
        let conf = s.httpd_conf().unwrap();
        assert!(
            conf.contains("StartServers 3\nServerLimit 6\nThreadLimit 4\nThreadsPerChild 4\nMaxRequestWorkers 12\n")
        );
        assert_eq!(s.capacity(), "embedded (3 processes × 4 threads)");
    }

    #[test]
    fn daemon_mode_delegates_every_app() {
        let mut s = site();
        s.mode = Mode::Daemon;
        s.run_as = Some(RunAs { user: "www-data".into(), group: "www-data".into() });
        let conf = s.httpd_conf().unwrap();
        assert!(conf.contains("RGIDaemonProcess rgi-express processes=1 threads=5"), "{conf}");
        assert!(conf.contains("\"user=www-data\" \"group=www-data\""), "{conf}");
        assert!(conf.contains("\"home=/srv/work\""), "{conf}");
        assert!(conf.contains("RGIScriptAlias \"/api\" \"/srv/b/libb.so\" process-group=rgi-express"));
        assert!(
            conf.contains(
                " request-timeout=60 queue-timeout=45 connect-timeout=15 socket-timeout=60 graceful-timeout=15 \
                 shutdown-timeout=5\n"
            ),
            "mod_wsgi-express's timeouts: {conf}"
        );
        assert!(!conf.contains("maximum-requests") && !conf.contains("restart-interval"), "{conf}");
        s.env = vec![("GREETING".into(), "hello \"world\"".into())];
        let conf = s.httpd_conf().unwrap();
        assert!(conf.contains(" \"env=GREETING=hello \\\"world\\\"\"\n"), "{conf}");
    }

    #[test]
    fn daemon_lifetimes_reach_the_process_group() {
        let mut s = site();
        s.mode = Mode::Daemon;
        s.lifetimes = Lifetimes {
            maximum_requests: 1000,
            restart_interval: 3600,
            inactivity_timeout: 300,
            maximum_memory: Some("512M".into()),
            cpu_time_limit: 600,
            request_timeout: 0,
            queue_timeout: 10,
            graceful_timeout: 30,
            shutdown_timeout: 2,
        };
        let conf = s.httpd_conf().unwrap();
        let line = conf.lines().find(|l| l.starts_with("RGIDaemonProcess")).unwrap();
        for option in [
            " maximum-requests=1000 ",
            " restart-interval=3600 ",
            " inactivity-timeout=300 ",
            " request-timeout=0 ",
            " queue-timeout=10 ",
            " graceful-timeout=30 ",
            " shutdown-timeout=2 ",
            " maximum-memory=512M",
            " cpu-time-limit=600 ",
        ] {
            assert!(line.contains(option), "{option:?} missing from {line}");
        }
    }

    #[test]
    fn logs_can_go_to_the_terminal() {
        let mut s = site();
        s.logging = Logging { to_terminal: true, access_log: true, level: "info".into() };
        let conf = s.httpd_conf().unwrap();
        assert!(conf.contains("ErrorLog /dev/stderr\nLogLevel info\n"));
        assert!(conf.contains("CustomLog /dev/stdout combined"));
    }

    #[test]
    fn auth_scripts_protect_the_whole_site() {
        let mut s = site();
        s.auth = Some(Auth {
            kind: AuthType::Basic,
            user_script: "/srv/auth/libusers.so".into(),
            group_script: Some("/srv/auth/libgroups.so".into()),
            group: "staff".into(),
        });
        let conf = s.httpd_conf().unwrap();
        for needle in [
            "LoadModule auth_basic_module",
            "AuthBasicProvider rgi",
            "RGIAuthUserScript \"/srv/auth/libusers.so\"",
            "RGIAuthGroupScript \"/srv/auth/libgroups.so\"",
            "Require rgi-group \"staff\"",
            "<Directory \"/srv/auth\">",
        ] {
            assert!(conf.contains(needle), "missing {needle:?} in\n{conf}");
        }
        assert!(!site().httpd_conf().unwrap().contains("RGIAuth"));
    }

    #[test]
    fn url_aliases_serve_files_and_directories() {
        let mut s = site();
        s.url_aliases = vec![
            UrlAlias { url: "/static".into(), path: "/srv/static".into(), is_dir: true },
            UrlAlias { url: "/favicon.ico".into(), path: "/srv/icons/fav.ico".into(), is_dir: false },
        ];
        let conf = s.httpd_conf().unwrap();
        assert!(conf.contains("LoadModule alias_module"));
        assert!(conf.contains("Alias \"/static\" \"/srv/static\"\n<Directory \"/srv/static\">"));
        assert!(conf.contains("<Directory \"/srv/icons\">\n    <Files \"fav.ico\">"));
    }

    #[test]
    fn urls_bracket_ipv6_hosts() {
        let mut s = site();
        assert_eq!(s.url("/app"), "http://127.0.0.1:8000/app");
        s.host = "::1".into();
        assert_eq!(s.url("/"), "http://[::1]:8000/");
        assert!(s.httpd_conf().unwrap().contains("Listen [::1]:8000\n"));
    }
}
