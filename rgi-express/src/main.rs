//! rgi-express: serve an RGI app under a private Apache httpd with one command.
//!
//! `start-server` writes a self-contained configuration into a server root, checks it with
//! `apache2 -t`, and runs Apache in the foreground until Ctrl-C; `setup-server` writes the same
//! configuration and an `apachectl` script; `module-config` prints the LoadModule line.

mod apache;
mod cli;
mod error;
mod preflight;
mod reload;
mod server;
mod site;
mod stage;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::apache::Httpd;
use crate::cli::{Cli, Command, ModuleConfig, SetupServer, StartServer};
use crate::error::{Error, Result};
use crate::server::{Server, SignalForwarder, Started};
use crate::site::{Mode, Site};

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::StartServer(args) => start_server(args),
        Command::SetupServer(args) => setup_server(args),
        Command::ModuleConfig(args) => module_config(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rgi-express: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn module_config(args: ModuleConfig) -> Result<u8> {
    let module = apache::find_module(args.module.as_deref())?;
    println!("LoadModule rgi_module {}", site::q(&module)?);
    Ok(0)
}

/// Writes the server root's files for `site` (serving copies of libraries its user cannot read)
/// and checks them with `apache2 -t`. Returns the copies.
fn write_server(httpd: &Httpd, site: &mut Site, with_apachectl: bool) -> Result<Vec<stage::Copy>> {
    preflight::prepare_server_root(&site.server_root)?;
    let copies = stage::stage_unreachable(site)?;
    if let (Some(run_as), Some(dir)) = (&site.run_as, &site.working_directory)
        && site.mode == Mode::Daemon
        && preflight::unreachable_by(dir, run_as, false).is_some()
    {
        let user = &run_as.user;
        println!(
            "rgi-express: {user} cannot enter {}; the daemon processes start in {user}'s home directory instead",
            dir.display()
        );
        site.working_directory = None;
    }
    preflight::write_file(&site.server_root, &site.conf_path(), &site.httpd_conf()?, 0o644)?;
    let index = site.document_root().join("index.html");
    if std::fs::read_to_string(&index).map_or(true, |page| page.contains(site::INDEX_MARK)) {
        preflight::write_file(&site.server_root, &index, &site.index_page(), 0o644)?;
    }
    if with_apachectl {
        let script = apache::apachectl_script(&httpd.binary, &site.conf_path(), &site.pid_path());
        preflight::write_file(&site.server_root, &site.server_root.join("apachectl"), &script, 0o755)?;
    }
    if let Some(why) = site.run_as.as_ref().and_then(|r| preflight::unreachable_by(&site.server_root, r, false)) {
        println!("rgi-express: warning: Apache's children run as {why}");
    }
    println!("rgi-express: checking the configuration (apache2 -t)");
    httpd.configtest(&site.conf_path()).map_err(|e| match e {
        Error::ConfigRefused { mut message, conf } => {
            for copy in &copies {
                message = message.replace(&copy.copy.display().to_string(), &copy.original.display().to_string());
            }
            Error::ConfigRefused { message, conf }
        }
        other => other,
    })?;
    Ok(copies)
}

fn describe(site: &Site) {
    let line = |what: &str, value: &dyn std::fmt::Display| println!("  {what:<14} {value}");
    for app in &site.apps {
        line("App", &format!("{} at {}", app.library.display(), site.url(&app.url)));
    }
    line("Server root", &site.server_root.display());
    line("Configuration", &site.conf_path().display());
    let error_log =
        if site.logging.to_terminal { "the terminal".into() } else { site.error_log_path().display().to_string() };
    line("Error log", &format!("{error_log} (level {})", site.logging.level));
    if site.logging.access_log {
        let access =
            if site.logging.to_terminal { "the terminal".into() } else { site.access_log_path().display().to_string() };
        line("Access log", &access);
    }
    line("Module", &site.module.display());
    line("Mode", &site.capacity());
    if let Some(run_as) = &site.run_as {
        line("Runs as", &format!("{}:{}", run_as.user, run_as.group));
    }
}

fn start_server(args: StartServer) -> Result<u8> {
    let httpd = Httpd::locate(&args.server.httpd)?;
    let module = apache::find_module(args.server.module.as_deref())?;
    let server_root =
        args.server_root.clone().unwrap_or_else(|| preflight::default_server_root(&args.server.host, args.server.port));
    let mut site = args.server.site(&server_root, module)?;
    preflight::check_port(&site.host, site.port)?;
    describe(&site);
    let copies = write_server(&httpd, &mut site, false)?;
    let _ = std::fs::remove_file(site.pid_path());

    let watch = args.reload_on_changes.then(|| {
        let original = |l: &Path| stage::original(&copies, l).to_path_buf();
        let daemons = (site.mode == Mode::Daemon)
            .then(|| (site.daemon_title(), site.apps.iter().map(|a| original(&a.library)).collect()));
        let libraries = site.libraries().into_iter().map(original).collect();
        reload::Watch::new(site.conf_path(), libraries, copies.clone(), daemons)
    });
    println!("rgi-express: starting Apache");
    server::adopt_orphans();
    let server = Server::start(&httpd, &site.conf_path())?;
    let _forwarder = SignalForwarder::start(server.clone())?;
    match server::wait_ready(&server, &site.pid_path()) {
        Started::Ready => {}
        Started::Exited(status) if server.stop_requested() => {
            server::sweep_orphans();
            println!("rgi-express: Apache stopped before it was ready");
            return Ok(server::exit_code(status));
        }
        Started::Exited(status) => {
            server::sweep_orphans();
            let log = if site.logging.to_terminal {
                "  (see its log above)".to_string()
            } else {
                server::log_tail(&site.error_log_path(), 20)
            };
            if log.contains("Address already in use") {
                return Err(Error::PortInUse { host: site.host.clone(), port: site.port });
            }
            let status = status.map_or("unknown status".into(), |s| s.to_string());
            return Err(Error::StartFailed { status, log });
        }
    }
    let serves = match &site.apps[..] {
        [app] => site.url(&app.url),
        apps => format!("{} ({})", site.url("/"), apps.iter().map(|a| a.url.as_str()).collect::<Vec<_>>().join(", ")),
    };
    println!("rgi-express: Apache (pid {}) serves {serves} (Ctrl-C stops it)", server.pid());
    let watcher = watch.map(|watch| reload::Watcher::start(server.clone(), httpd.clone(), watch));
    let status = server::wait(&server);
    drop(watcher);
    server::sweep_orphans();
    println!("rgi-express: Apache stopped ({})", status.map_or("unknown status".into(), |s| s.to_string()));
    Ok(server::exit_code(status))
}

fn setup_server(args: SetupServer) -> Result<u8> {
    let httpd = Httpd::locate(&args.server.httpd)?;
    let module = apache::find_module(args.server.module.as_deref())?;
    let mut site = args.server.site(&args.server_root, module)?;
    describe(&site);
    if !write_server(&httpd, &mut site, true)?.is_empty() {
        println!("rgi-express: run setup-server again after rebuilding to update the copies");
    }
    let apachectl = site.server_root.join("apachectl");
    println!(
        "rgi-express: ready; start it with `{} start` (add -DFOREGROUND to keep it in the foreground)",
        apachectl.display()
    );
    Ok(0)
}
