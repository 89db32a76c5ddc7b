//! # rgi — write apps for mod_rgi, the Rust Gateway Interface for Apache httpd
//!
//! An RGI app is a `cdylib` crate that depends on this crate and exports a type with
//! [`export!`]. Apache loads it with `RGIScriptAlias /app /path/to/libapp.so` and calls it for
//! every request, in Apache's own processes (embedded) or in daemon processes
//! (`RGIDaemonProcess`), the way mod_wsgi runs Python apps.
//!
//! ```
//! use std::io::Write;
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl rgi::App for Hello {
//!     fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
//!         match req.path_info() {
//!             // The whole body at once.
//!             "" | "/" => Ok(rgi::Response::text("Hello, World!")),
//!             // Streamed, flushed as it is written.
//!             "/count" => Ok(rgi::Response::text(rgi::Body::writer(|out| {
//!                 for i in 1..=3 {
//!                     writeln!(out, "{i}")?;
//!                     out.flush()?;
//!                 }
//!                 Ok(())
//!             }))),
//!             _ => Ok(rgi::Response::text("not found").with_status(404)),
//!         }
//!     }
//! }
//!
//! rgi::export!(Hello);
//! ```
//!
//! `Cargo.toml` of the app:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! rgi = "0.1"
//! ```
//!
//! The [`abi`] module is the C contract with mod_rgi; apps never use it directly. Besides apps,
//! a library can be Apache's authentication and authorisation ([`auth`]) or choose which
//! process and application group serve each request ([`dispatch`]).
//!
//! # Optional building blocks
//!
//! Cargo features add what web apps need beyond the request and the response, so an app that
//! does not use them does not build them:
//!
//! | feature | module | what |
//! |---|---|---|
//! | `cookies` | [`cookies`] | read, set (every attribute) and sign cookies |
//! | `sessions` | [`session`] | server-side sessions in Apache's session cache (implies `cookies`) |
//! | `forms` | [`forms`] | urlencoded and multipart forms, uploads spooled to disk, size limits |
//! | `templates` | [`templates`] | HTML templates (MiniJinja) with auto-escaping |
//! | `http` | `http` | apps written against the `http` crate's request and response |
//! | `tower` | `tower` | any `tower::Service` (an axum `Router`) as an app |
//! | `tracing` | `tracing` | a `tracing` subscriber writing to Apache's error log |
//!
//! `full` turns on the first four; pick what you use:
//! `rgi = { version = "0.1", features = ["sessions", "forms"] }`.

#![deny(missing_docs)]

pub mod abi;
mod app;
pub mod auth;
#[cfg(feature = "cookies")]
pub mod cookies;
pub mod dispatch;
mod environ;
mod error;
mod export;
#[cfg(feature = "forms")]
pub mod forms;
mod host;
#[cfg(feature = "http")]
pub mod http;
mod request;
mod response;
#[cfg(feature = "sessions")]
pub mod session;
#[cfg(feature = "templates")]
pub mod templates;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "tracing")]
pub mod tracing;

pub use app::{App, Create, CreateContext};
pub use environ::Environ;
pub use error::{Error, HostError};
pub use request::{Errors, Input, Request};
pub use response::{Body, BodyWriter, HeaderText, Response, WriteBody};

/// Used by [`export!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::*;
    #[cfg(feature = "http")]
    pub use crate::http::trampolines as http;
    #[cfg(feature = "tower")]
    pub use crate::tower::trampolines as tower;
}
