//! Everything that can stop rgi-express, each worded for the person at the terminal: what is
//! wrong and what to do about it.

use std::path::PathBuf;

/// Why rgi-express cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No Apache binary.
    #[error("Apache httpd is not installed ({} does not exist).\n  Install it with: {install}", path.display())]
    ApacheMissing {
        /// The binary looked for.
        path: PathBuf,
        /// The command that installs it.
        install: String,
    },
    /// No mod_rgi module.
    #[error(
        "the mod_rgi module was not found; looked for:\n{tried}\n  Build it with `cargo build --release`, install it \
         with `make install`, or name it with --module PATH."
    )]
    ModuleMissing {
        /// The paths looked at, one per line.
        tried: String,
    },
    /// Something already listens on the port.
    #[error("port {port} on {host} is already in use (another server is listening there): choose another with --port")]
    PortInUse {
        /// The address.
        host: String,
        /// The port.
        port: u16,
    },
    /// The address cannot be listened on for another reason.
    #[error("cannot listen on {host} port {port}: {reason}")]
    CannotListen {
        /// The address.
        host: String,
        /// The port.
        port: u16,
        /// Why, with what to do.
        reason: String,
    },
    /// The server root cannot be created or written.
    #[error("cannot use {} as the server root: {reason}\n  Choose another directory with --server-root DIR.", path.display())]
    ServerRoot {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `apache2 -t` refused the generated configuration.
    #[error("Apache refused the configuration:\n{message}\n  (the configuration is {})", conf.display())]
    ConfigRefused {
        /// Apache's (and mod_rgi's) own words.
        message: String,
        /// The generated configuration.
        conf: PathBuf,
    },
    /// Apache exited while starting.
    #[error("Apache stopped while starting ({status}):\n{log}")]
    StartFailed {
        /// How it exited.
        status: String,
        /// The end of its error log.
        log: String,
    },
    /// A program could not be run.
    #[error("cannot run {program}: {source}")]
    Run {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
}

/// The result of anything rgi-express does.
pub type Result<T, E = Error> = std::result::Result<T, E>;
