//! The command line: subcommands, options and their help, and how options become a [`Site`].

use std::path::{Path, PathBuf};

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::apache;
use crate::error::{Error, Result};
use crate::preflight;
use crate::site::{self, App, Auth, AuthType, Lifetimes, Logging, Mode, Site, UrlAlias};

const ABOUT: &str = "Serve an RGI app under a private Apache httpd with one command";

const LONG_ABOUT: &str = "\
rgi-express serves apps built against the rgi crate (cdylib libraries) with a real Apache httpd and \
mod_rgi, without touching the system's Apache configuration: it writes a self-contained configuration \
into a server root directory and runs Apache from it.

start-server runs Apache in the foreground until Ctrl-C; setup-server only writes the configuration and \
an apachectl script to run it later (for a service manager); module-config prints the LoadModule line \
for adding mod_rgi to an Apache you configure yourself.";

const EXAMPLES: &str = "\
EXAMPLES:
    Serve an app at http://127.0.0.1:8000/:
        rgi-express start-server target/release/libmyapp.so

    Serve it under /app on all interfaces, port 8080, with static files, and restart on rebuilds:
        rgi-express start-server target/release/libmyapp.so --mount-point /app \\
            --host 0.0.0.0 --port 8080 --url-alias /static ./static --reload-on-changes

    Serve several apps at once:
        rgi-express start-server --app /shop libshop.so --app /blog libblog.so

    Prepare a server for a service manager, then run it:
        rgi-express setup-server target/release/libmyapp.so --server-root /srv/myapp/httpd
        /srv/myapp/httpd/apachectl start

    Add mod_rgi to the system Apache:
        rgi-express module-config > /etc/apache2/mods-available/rgi.load";

const START_AFTER: &str = "\
FILES (in the server root):
    httpd.conf      the generated configuration (rewritten on every start)
    error_log       Apache's and the apps' log lines (unless --log-to-terminal)
    access_log      one line per request (with --access-log)
    httpd.pid       the Apache parent's pid while it runs
    htdocs/         the document root for URLs that no app serves; its index.html, the page at /
                    when no app is mounted there, lists the apps (one of your own is kept)

SIGNALS:
    SIGINT (Ctrl-C), SIGTERM, SIGHUP   stop Apache cleanly; a second one stops it at once
    SIGUSR1                            restart Apache gracefully (requests in flight finish)

EXIT STATUS:
    Apache's exit status once it has stopped (0 after a clean stop), 1 when rgi-express could not
    start it, 128+N when signal N killed it.";

/// rgi-express: the command line.
#[derive(Debug, Parser)]
#[command(name = "rgi-express", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve apps with Apache in the foreground until Ctrl-C
    #[command(
        long_about = "Writes a self-contained Apache configuration into the server root, checks it with \
                      `apache2 -t` (which checks every app library without running it), and runs Apache in the \
                      foreground, printing the URL once it listens. Ctrl-C or SIGTERM stops Apache cleanly; \
                      rgi-express then exits with Apache's exit status, leaving no process behind.",
        after_long_help = START_AFTER
    )]
    StartServer(StartServer),
    /// Write the configuration and an apachectl script, without starting Apache
    #[command(long_about = "Writes the same configuration start-server would into --server-root, plus an `apachectl` \
                      script there (start, stop, restart, graceful, configtest, status), checks it with \
                      `apache2 -t`, and exits. Use it to run the server from a service manager or a container \
                      entry point: `DIR/apachectl start -DFOREGROUND`.")]
    SetupServer(SetupServer),
    /// Print the LoadModule line for mod_rgi
    #[command(
        long_about = "Prints the LoadModule line that loads the mod_rgi module this rgi-express would use (the one \
                      built next to it, else the installed one), for adding mod_rgi to an Apache configuration \
                      of your own."
    )]
    ModuleConfig(ModuleConfig),
}

/// `start-server`.
#[derive(Debug, Args)]
pub struct StartServer {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Directory for the configuration, logs and pid file [default: $TMPDIR/rgi-express-HOST-PORT-UID]
    ///
    /// Created if missing; it must belong to you. The default is the same directory every time the
    /// same server starts, so its logs are still there after it stops.
    #[arg(long, value_name = "DIR")]
    pub server_root: Option<PathBuf>,

    /// Restart the apps when a library is rebuilt
    ///
    /// Watches every app library; once a rebuilt one has been written completely and passes
    /// `apache2 -t`, Apache restarts gracefully: requests in flight finish on the old build and the
    /// next request is served by the new one. A broken build is reported and not served.
    #[arg(long)]
    pub reload_on_changes: bool,
}

/// `setup-server`.
#[derive(Debug, Args)]
pub struct SetupServer {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Directory to write the configuration, apachectl and (later) logs into
    #[arg(long, value_name = "DIR", required = true)]
    pub server_root: PathBuf,
}

/// `module-config`.
#[derive(Debug, Args)]
pub struct ModuleConfig {
    /// The mod_rgi module to name [default: next to rgi-express, else `apxs -q LIBEXECDIR`/mod_rgi.so]
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
}

/// What to serve and how: shared by start-server and setup-server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The app library to serve at --mount-point (a cdylib built with rgi::export!)
    #[arg(value_name = "LIBRARY", required_unless_present = "app")]
    pub library: Option<PathBuf>,

    /// Also serve the app LIBRARY at URL (repeatable)
    ///
    /// Serves several apps from one server. Longer URLs are matched first, so an app at / does not
    /// hide one at /api.
    #[arg(long, num_args = 2, value_names = ["URL", "LIBRARY"], action = ArgAction::Append)]
    pub app: Vec<String>,

    /// The URL path LIBRARY is served at (its SCRIPT_NAME)
    #[arg(long, value_name = "URL-PATH", default_value = "/")]
    pub mount_point: String,

    /// The port to listen on
    #[arg(long, value_name = "NUMBER", default_value_t = 8000)]
    pub port: u16,

    /// The address to listen on (0.0.0.0 for every IPv4 interface)
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1")]
    pub host: String,

    /// Serve the file or directory PATH at URL as static files (repeatable)
    #[arg(long, num_args = 2, value_names = ["URL", "PATH"], action = ArgAction::Append)]
    pub url_alias: Vec<String>,

    /// How many processes serve the apps
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub processes: u32,

    /// How many threads each process serves requests on
    #[arg(long, value_name = "M", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub threads: u32,

    /// Replace a daemon process after it has served N requests (0: never)
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "embedded")]
    pub maximum_requests: u64,

    /// Replace a daemon process SECONDS after it started (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 0, value_parser = seconds(), conflicts_with = "embedded")]
    pub restart_interval: u64,

    /// Replace a daemon process idle for SECONDS (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 0, value_parser = seconds(), conflicts_with = "embedded")]
    pub inactivity_timeout: u64,

    /// Replace a daemon process whose resident memory grows past SIZE (bytes, or with K, M or G)
    #[arg(long, value_name = "SIZE", value_parser = size, conflicts_with = "embedded")]
    pub maximum_memory: Option<String>,

    /// Replace a daemon process once it has used SECONDS of CPU (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 0, value_parser = seconds(), conflicts_with = "embedded")]
    pub cpu_time_limit: u64,

    /// Answer 504 for a request still running after SECONDS, and replace its process (0: no limit)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = seconds(), conflicts_with = "embedded")]
    pub request_timeout: u64,

    /// Answer 504 for a request no daemon thread took within SECONDS (0: no limit)
    #[arg(long, value_name = "SECONDS", default_value_t = 45, value_parser = seconds(), conflicts_with = "embedded")]
    pub queue_timeout: u64,

    /// How long requests in flight get to finish when a daemon process is replaced
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = seconds(), conflicts_with = "embedded")]
    pub graceful_timeout: u64,

    /// How long requests in flight get when Apache stops
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = seconds(), conflicts_with = "embedded")]
    pub shutdown_timeout: u64,

    /// The apps' current directory in daemon mode [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,

    /// Run the apps inside Apache's own children instead of daemon processes
    ///
    /// By default the apps run in daemon processes of their own (RGIDaemonProcess), which Apache
    /// supervises and replaces when one crashes or a library is rebuilt; Apache's children only
    /// relay requests to them. Embedded mode saves that relay; a crashing app takes an Apache child
    /// with it.
    #[arg(long)]
    pub embedded: bool,

    /// When started as root: the user the apps run as [default: www-data]
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// When started as root: the group the apps run as [default: the user's group]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Require a login for every URL, checked by this library (an rgi auth provider)
    ///
    /// Adds RGIAuthUserScript with Apache's Basic (or --auth-type digest) authentication and
    /// `Require valid-user` for the whole site.
    #[arg(long, value_name = "LIBRARY")]
    pub auth_user_script: Option<PathBuf>,

    /// Also require membership of --auth-group, answered by this library (an rgi group provider)
    #[arg(long, value_name = "LIBRARY", requires = "auth_user_script")]
    pub auth_group_script: Option<PathBuf>,

    /// The group users must belong to with --auth-group-script
    #[arg(long, value_name = "NAME", default_value = "rgi")]
    pub auth_group: String,

    /// The authentication scheme for --auth-user-script
    #[arg(long, value_name = "TYPE", value_enum, default_value = "basic")]
    pub auth_type: AuthType,

    /// Add NAME=VALUE to every request's environ (SetEnv; repeatable)
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append)]
    pub setenv: Vec<String>,

    /// Set NAME=VALUE in the daemon processes' environment (RGIDaemonProcess env=; repeatable)
    ///
    /// For what apps read from their process environment (RUST_LOG, DATABASE_URL), where a
    /// service manager starts Apache with an environment of its own.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append, conflicts_with = "embedded")]
    pub env: Vec<String>,

    /// Give the apps the option NAME=VALUE (RGIOption; repeatable)
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append)]
    pub option: Vec<String>,

    /// Write the error log to the terminal (stderr) and the access log to stdout
    #[arg(long)]
    pub log_to_terminal: bool,

    /// Write an access log (combined format)
    #[arg(long)]
    pub access_log: bool,

    /// Apache's LogLevel (emerg … debug, trace1 … trace8; per module as `warn rgi:debug`)
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,

    /// The mod_rgi module to load [default: next to rgi-express, else `apxs -q LIBEXECDIR`/mod_rgi.so]
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// The Apache binary
    #[arg(long, value_name = "PATH", default_value = apache::DEFAULT_HTTPD)]
    pub httpd: PathBuf,

    /// Where Apache's own modules are [default: `apxs -q LIBEXECDIR`, else /usr/lib/apache2/modules]
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,
}

impl ServerArgs {
    /// The site these options describe, served from `server_root`.
    pub fn site(&self, server_root: &Path, module: PathBuf) -> Result<Site> {
        let mut apps = Vec::new();
        if let Some(library) = &self.library {
            apps.push(App { url: url_path(&self.mount_point, "--mount-point")?, library: absolute(library) });
        }
        for pair in self.app.chunks(2) {
            apps.push(App { url: url_path(&pair[0], "--app")?, library: absolute(Path::new(&pair[1])) });
        }
        if let Some(twice) = apps.iter().enumerate().find_map(|(i, a)| apps[..i].iter().find(|b| b.url == a.url)) {
            return Err(Error::Usage(format!("two apps are mounted at {}", twice.url)));
        }
        let mut url_aliases = Vec::new();
        for pair in self.url_alias.chunks(2) {
            let path = absolute(Path::new(&pair[1]));
            let meta = std::fs::metadata(&path)
                .map_err(|e| Error::Usage(format!("--url-alias {} {}: {e}", pair[0], path.display())))?;
            url_aliases.push(UrlAlias { url: url_path(&pair[0], "--url-alias")?, path, is_dir: meta.is_dir() });
        }
        let auth = self.auth_user_script.as_ref().map(|user_script| Auth {
            kind: self.auth_type,
            user_script: absolute(user_script),
            group_script: self.auth_group_script.as_deref().map(absolute),
            group: self.auth_group.clone(),
        });
        Ok(Site {
            server_root: absolute(server_root),
            host: self.host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: self.port,
            apps,
            url_aliases,
            mode: if self.embedded { Mode::Embedded } else { site::DEFAULT_MODE },
            processes: self.processes,
            threads: self.threads,
            lifetimes: Lifetimes {
                maximum_requests: self.maximum_requests,
                restart_interval: self.restart_interval,
                inactivity_timeout: self.inactivity_timeout,
                maximum_memory: self.maximum_memory.clone(),
                cpu_time_limit: self.cpu_time_limit,
                request_timeout: self.request_timeout,
                queue_timeout: self.queue_timeout,
                graceful_timeout: self.graceful_timeout,
                shutdown_timeout: self.shutdown_timeout,
            },
            working_directory: match &self.working_directory {
                Some(dir) => Some(absolute(dir)),
                None => std::env::current_dir().ok(),
            },
            run_as: preflight::run_as(self.user.as_deref(), self.group.as_deref())?,
            auth,
            setenv: pairs(&self.setenv),
            env: pairs(&self.env),
            options: pairs(&self.option),
            logging: Logging {
                to_terminal: self.log_to_terminal,
                access_log: self.access_log,
                level: self.log_level.clone(),
            },
            module,
            modules_dir: self.modules_directory.clone().unwrap_or_else(apache::modules_dir),
        })
    }
}

/// Whole seconds as mod_rgi takes them (up to a year).
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=31_536_000)
}

/// A size as `maximum-memory=` takes it: digits with an optional K, M or G.
fn size(value: &str) -> std::result::Result<String, String> {
    let digits = value.strip_suffix(['K', 'M', 'G', 'k', 'm', 'g']).unwrap_or(value);
    match digits.parse::<u64>() {
        Ok(_) => Ok(value.to_string()),
        Err(_) => Err("a size in bytes, optionally with K, M or G (512M)".into()),
    }
}

fn pairs(flat: &[String]) -> Vec<(String, String)> {
    flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

/// `path` against the current directory (Apache would take it against the server root).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A URL path for a mount point or alias: starts with '/', no trailing '/' except for "/" itself.
fn url_path(url: &str, option: &str) -> Result<String> {
    if !url.starts_with('/') {
        return Err(Error::Usage(format!("{option} {url}: a URL path starts with '/'")));
    }
    let trimmed = url.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".into() } else { trimmed.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rgi-express").chain(args.iter().copied()))
    }

    fn start(args: &[&str]) -> StartServer {
        match parse(&[&["start-server"], args].concat()).unwrap().command {
            Command::StartServer(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_mod_wsgi_express() {
        let s = start(&["lib.so"]);
        assert_eq!((s.server.port, s.server.host.as_str(), s.server.mount_point.as_str()), (8000, "127.0.0.1", "/"));
        assert_eq!((s.server.processes, s.server.threads), (1, 5));
        let site = s.server.site(Path::new("/tmp/r"), "/m.so".into()).unwrap();
        assert_eq!(site.apps, vec![App { url: "/".into(), library: absolute(Path::new("lib.so")) }]);
        assert_eq!(site.logging.level, "warn");
        assert_eq!(site.lifetimes, Lifetimes::default());
    }

    #[test]
    fn daemon_lifetimes_are_options() {
        let s = start(&[
            "lib.so",
            "--maximum-requests",
            "500",
            "--restart-interval",
            "86400",
            "--request-timeout",
            "0",
            "--maximum-memory",
            "2G",
        ]);
        let lifetimes = s.server.site(Path::new("/r"), "/m".into()).unwrap().lifetimes;
        assert_eq!(
            (lifetimes.maximum_requests, lifetimes.restart_interval, lifetimes.request_timeout),
            (500, 86400, 0)
        );
        assert_eq!(lifetimes.maximum_memory.as_deref(), Some("2G"));
        assert_eq!(lifetimes.graceful_timeout, Lifetimes::default().graceful_timeout);
    }

    #[test]
    fn pairs_and_several_apps() {
        let s = start(&[
            "--app",
            "/a/",
            "/x/liba.so",
            "--app",
            "/b",
            "/x/libb.so",
            "--setenv",
            "K",
            "V",
            "--option",
            "o",
            "1",
            "--mount-point",
            "/app",
            "/x/libmain.so",
        ]);
        let site = s.server.site(Path::new("/tmp/r"), "/m.so".into()).unwrap();
        let urls: Vec<&str> = site.apps.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(urls, ["/app", "/a", "/b"]);
        assert_eq!(site.setenv, [("K".to_string(), "V".to_string())]);
        assert!(site.env.is_empty());
        assert_eq!(site.options, [("o".to_string(), "1".to_string())]);
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(parse(&["start-server"]).is_err(), "a library or --app is required");
        assert!(parse(&["start-server", "lib.so", "--threads", "0"]).is_err());
        assert!(parse(&["start-server", "lib.so", "--auth-group-script", "g.so"]).is_err());
        assert!(parse(&["setup-server", "lib.so"]).is_err(), "--server-root is required");
        assert!(parse(&["start-server", "lib.so", "--embedded", "--maximum-requests", "5"]).is_err());
        assert!(parse(&["start-server", "lib.so", "--embedded"]).is_ok());
        assert!(parse(&["start-server", "lib.so", "--embedded", "--env", "A", "b"]).is_err());
        assert!(parse(&["start-server", "lib.so", "--restart-interval", "1h"]).is_err());
        assert!(parse(&["start-server", "lib.so", "--maximum-memory", "lots"]).is_err());
        assert!(parse(&["start-server", "lib.so", "--maximum-memory", "1T"]).is_err());
        let err = start(&["lib.so", "--mount-point", "app"]).server.site(Path::new("/r"), "/m".into()).unwrap_err();
        assert!(err.to_string().contains("starts with '/'"));
        let err = start(&["--app", "/a", "x.so", "--app", "/a/", "y.so"])
            .server
            .site(Path::new("/r"), "/m".into())
            .unwrap_err();
        assert!(err.to_string().contains("two apps are mounted at /a"));
    }

    #[test]
    fn help_reads_like_a_man_page() {
        let help = Cli::command().find_subcommand_mut("start-server").unwrap().render_long_help().to_string();
        for section in ["--mount-point", "--reload-on-changes", "FILES", "SIGNALS", "EXIT STATUS"] {
            assert!(help.contains(section), "{section} missing from\n{help}");
        }
    }
}
