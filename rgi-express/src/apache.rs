//! Finding Apache and mod_rgi, checking a configuration with `apache2 -t`, and the command that
//! runs Apache in the foreground.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Debian's Apache binary.
pub const DEFAULT_HTTPD: &str = "/usr/sbin/apache2";
/// Debian's module directory, used when `apxs` (from apache2-dev) is not installed.
pub const DEFAULT_MODULES_DIR: &str = "/usr/lib/apache2/modules";
/// The file name of the built module, next to the rgi-express binary in `target/release`.
pub const BUILT_MODULE: &str = "libmod_rgi.so";
/// The file name of the installed module.
pub const INSTALLED_MODULE: &str = "mod_rgi.so";

/// An Apache binary that exists.
#[derive(Debug, Clone)]
pub struct Httpd {
    /// The binary.
    pub binary: PathBuf,
}

impl Httpd {
    /// The Apache at `binary`, or how to install it.
    pub fn locate(binary: &Path) -> Result<Httpd> {
        if binary.is_file() {
            return Ok(Httpd { binary: binary.to_path_buf() });
        }
        let sudo = if nix::unistd::geteuid().is_root() { "" } else { "sudo " };
        Err(Error::ApacheMissing {
            path: binary.to_path_buf(),
            install: format!("{sudo}apt-get install apache2   (or name another binary with --httpd PATH)"),
        })
    }

    /// Runs `apache2 -t` on `conf`: Ok, or Apache's (and mod_rgi's) own words for what is wrong.
    pub fn configtest(&self, conf: &Path) -> Result<()> {
        let out = Command::new(&self.binary)
            .arg("-t")
            .arg("-f")
            .arg(conf)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Run { program: self.binary.display().to_string(), source })?;
        if out.status.success() {
            return Ok(());
        }
        let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        Err(Error::ConfigRefused { message: refusal(&text), conf: conf.to_path_buf() })
    }

    /// The command that runs Apache in the foreground with `conf`, in its own process group
    /// (Apache's parent signals its whole group when it stops, which must not include us), and
    /// stopped by the kernel should rgi-express die without stopping it.
    pub fn foreground(&self, conf: &Path) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-DFOREGROUND").arg("-f").arg(conf).stdin(Stdio::null()).process_group(0);
        let stop_with_parent =
            || nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from);
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
        // is async-signal-safe; it allocates nothing and takes no lock.
        unsafe { cmd.pre_exec(stop_with_parent) };
        cmd
    }
}

/// Apache's answer to `-t`, without the lines that only point into the generated file.
pub fn refusal(output: &str) -> String {
    let lines: Vec<String> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.contains("Syntax error on line") && !l.starts_with("Action '-t' failed"))
        .filter(|l| !l.starts_with("The Apache error log may have more information"))
        .map(|l| format!("  {l}"))
        .collect();
    if lines.is_empty() { format!("  {}", output.trim()) } else { lines.join("\n") }
}

/// Apache's module directory: `apxs -q LIBEXECDIR`, or Debian's when apxs is not installed.
pub fn modules_dir() -> PathBuf {
    let apxs = Command::new("apxs").args(["-q", "LIBEXECDIR"]).stderr(Stdio::null()).output();
    match apxs {
        Ok(out) if out.status.success() && !out.stdout.trim_ascii().is_empty() => {
            PathBuf::from(String::from_utf8_lossy(out.stdout.trim_ascii()).into_owned())
        }
        _ => PathBuf::from(DEFAULT_MODULES_DIR),
    }
}

/// The mod_rgi module: `explicit` if given, else the one built next to this binary, else the
/// installed one.
pub fn find_module(explicit: Option<&Path>) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    match explicit {
        Some(path) => candidates.push(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
        None => {
            if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
                candidates.push(dir.join(BUILT_MODULE));
            }
            candidates.push(modules_dir().join(INSTALLED_MODULE));
            candidates.push(Path::new(DEFAULT_MODULES_DIR).join(INSTALLED_MODULE));
            candidates.dedup();
        }
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::ModuleMissing {
        tried: candidates.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"),
    })
}

/// The `apachectl` script `setup-server` writes: start, stop and restart that server.
pub fn apachectl_script(httpd: &Path, conf: &Path, pid_file: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Controls the Apache httpd that rgi-express set up in this directory.
#   apachectl start [-DFOREGROUND]   start it (in the background unless -DFOREGROUND)
#   apachectl stop | graceful-stop   stop it (at once | after requests in flight)
#   apachectl restart | graceful     re-read the configuration (at once | after requests in flight)
#   apachectl configtest             check the configuration
#   apachectl status                 say whether it runs
HTTPD={httpd}
CONF={conf}
PIDFILE={pid}
command=$1
[ $# -gt 0 ] && shift
case "$command" in
    start|stop|restart|graceful|graceful-stop)
        exec "$HTTPD" -f "$CONF" -k "$command" "$@" ;;
    configtest)
        exec "$HTTPD" -f "$CONF" -t "$@" ;;
    status)
        if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "running (pid $(cat "$PIDFILE"))"
        else
            echo "not running"; exit 3
        fi ;;
    *)
        echo "usage: $0 start|stop|restart|graceful|graceful-stop|configtest|status" >&2; exit 2 ;;
esac
"#,
        httpd = shell_quote(httpd),
        conf = shell_quote(conf),
        pid = shell_quote(pid_file),
    )
}

/// `path` in single quotes for sh.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_keeps_the_module_words_and_drops_the_noise() {
        let out = "AH00526: Syntax error on line 31 of /tmp/r/httpd.conf:\nRGIScriptAlias: cannot read app library \
                   '/x.so': No such file or directory (os error 2)\n";
        assert_eq!(
            refusal(out),
            "  RGIScriptAlias: cannot read app library '/x.so': No such file or directory (os error 2)"
        );
        assert_eq!(refusal("weird\n"), "  weird");
    }

    #[test]
    fn apachectl_quotes_paths_for_sh() {
        let script =
            apachectl_script(Path::new("/usr/sbin/apache2"), Path::new("/tmp/it's/httpd.conf"), Path::new("/p"));
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains("CONF='/tmp/it'\\''s/httpd.conf'\n"));
        assert!(script.contains("exec \"$HTTPD\" -f \"$CONF\" -k \"$command\""));
    }

    #[test]
    fn an_explicit_module_that_is_missing_is_named() {
        let err = find_module(Some(Path::new("/nonexistent/mod_rgi.so"))).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/mod_rgi.so"), "{err}");
        assert!(err.contains("--module"), "{err}");
    }

    #[test]
    fn a_missing_apache_says_how_to_install_it() {
        let err = Httpd::locate(Path::new("/nonexistent/apache2")).unwrap_err().to_string();
        assert!(err.contains("apt-get install apache2"), "{err}");
    }
}
