//! Apps written with the `http` crate (feature `http`): a function from
//! `http::Request<rgi::http::Body>` to `http::Response<B>`, where `B` is any
//! [`http_body::Body`].
//!
//! ```
//! use std::io::Read;
//!
//! fn handle(req: http::Request<rgi::http::Body>) -> http::Response<String> {
//!     match req.uri().path() {
//!         "/" => http::Response::new("Hello, World!".to_string()),
//!         "/echo" => {
//!             let mut text = String::new();
//!             req.into_body().read_to_string(&mut text).ok();
//!             http::Response::new(text)
//!         }
//!         _ => http::Response::builder().status(404).body("not found".into()).unwrap(),
//!     }
//! }
//!
//! rgi::export_http!(|_config| handle);
//! ```
//!
//! What the app sees:
//! - the URI is the path below the mount point (`PATH_INFO`, percent-encoded again) and the
//!   query string: an app at `RGIScriptAlias /app …` sees `/app/users/7?x=1` as
//!   `/users/7?x=1`, so its routes do not depend on where it is mounted;
//! - the headers as the client sent them (`Authorization` only with `RGIPassAuthorization On`);
//! - the body streams from Apache as the app reads it ([`Body`]);
//! - the whole environ is in the request's extensions ([`Environ`]).
//!
//! The response's head goes out when the function returns; its body frames are written as the
//! body yields them and flushed whenever it has nothing more ready. A body with an exact size
//! hint gets a Content-Length. The function runs on the Apache thread serving the request, like
//! [`App::call`](crate::App::call); a body that needs an async runtime calls for the `tower`
//! feature.

mod body;
mod environ;
mod request;
mod response;

use std::sync::Arc;

pub use body::Body;
pub use environ::Environ;

use crate::abi::{CallStatus, CreateContext as RawCreateContext, HostRequest, Instance, StrSink};
use crate::app::CreateContext;
use crate::error::Error;
use crate::export::{self, Failure};
use crate::host::{Host, RequestLink};

/// A function from `http::Request<Body>` to `http::Response<B>`, shared by all of Apache's
/// threads. Every `Fn(http::Request<Body>) -> http::Response<B> + Send + Sync + 'static` is one.
///
/// ```
/// fn hello(_: http::Request<rgi::http::Body>) -> http::Response<String> {
///     http::Response::new("Hello, World!".into())
/// }
/// fn is_handler(_: impl rgi::http::Handler) {}
/// is_handler(hello);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// The response body type.
    type ResponseBody: http_body::Body<Error: Into<Error>>;

    /// Serves one request.
    fn call(&self, request: http::Request<Body>) -> http::Response<Self::ResponseBody>;
}

impl<F, B> Handler for F
where
    F: Fn(http::Request<Body>) -> http::Response<B> + Send + Sync + 'static,
    B: http_body::Body<Error: Into<Error>>,
{
    type ResponseBody = B;

    fn call(&self, request: http::Request<Body>) -> http::Response<B> {
        self(request)
    }
}

impl Failure {
    /// A failure of the response's body: the client going away, or the app's own error.
    fn of_body(err: Error) -> Self {
        match err.downcast::<std::io::Error>() {
            Ok(io) => Failure::Send(*io),
            Err(other) => Failure::App(other),
        }
    }
}

/// Serves one request with `respond`: builds the `http::Request`, lets `respond` answer and
/// send it (`send` is the response module's), and ends the body link when the callback returns.
pub(crate) fn serve_request(
    host: Host<'_>,
    respond: impl FnOnce(Arc<RequestLink>, http::Request<Body>) -> Result<(), Error>,
) -> Result<(), Failure> {
    let link = Arc::new(RequestLink::new(host));
    let request = match request::build(host, &link) {
        Ok(request) => request,
        Err(why) => {
            host.log(crate::abi::level::INFO, &format!("rgi: cannot make an http::Request of this request: {why}"));
            let bad = http::Response::builder().status(400).body(Body::from("Bad Request\n")).map_err(Error::from);
            let sent = bad.map_err(Failure::App)?;
            return pollster::block_on(send(host, &link, sent)).map_err(Failure::of_body);
        }
    };
    let result = respond(link.clone(), request);
    link.end();
    result.map_err(Failure::of_body)
}

pub(crate) use response::send;

/// The trampolines `export_http!` fills its descriptor with.
#[doc(hidden)]
pub mod trampolines {
    use super::*;

    /// `create`: runs the factory.
    ///
    /// # Safety
    /// As the `create` callback of the ABI.
    pub unsafe fn create<H: Handler>(
        ctx: *const RawCreateContext,
        error: *mut StrSink,
        make: impl FnOnce(&CreateContext<'_>) -> H,
    ) -> Instance {
        // SAFETY: forwarded from the host's call.
        unsafe { export::create_with(ctx, error, |ctx| Ok(make(ctx))) }
    }

    /// `destroy`.
    ///
    /// # Safety
    /// As the `destroy` callback of the ABI, for an instance made by `create::<H>`.
    pub unsafe fn destroy<H: Handler>(instance: Instance, _make: impl FnOnce(&CreateContext<'_>) -> H) {
        // SAFETY: forwarded from the host's call.
        unsafe { export::destroy::<H>(instance) }
    }

    /// `call`: the handler answers on this thread; its body is polled here until it ends.
    ///
    /// # Safety
    /// As the `call` callback of the ABI, for an instance made by `create::<H>`.
    pub unsafe fn call<H: Handler>(
        instance: Instance,
        req: *mut HostRequest,
        _make: impl FnOnce(&CreateContext<'_>) -> H,
    ) -> CallStatus {
        export::serve(req, |host| {
            // SAFETY: the host passes an instance `create::<H>` made.
            let handler = unsafe { export::instance::<H>(instance) };
            serve_request(host, |link, request| pollster::block_on(send(host, &link, handler.call(request))))
        })
    }
}

/// Exports an `http` app: `rgi::export_http!(|config| handler)`. The factory runs once per
/// application group and process, when the first request needs it, with the group's
/// [`CreateContext`](crate::CreateContext) (options, application group, …); it returns the
/// [`Handler`](crate::http::Handler) (a function or closure) that serves every request.
///
/// ```
/// fn hello(_: http::Request<rgi::http::Body>) -> http::Response<String> {
///     http::Response::new("Hello, World!".into())
/// }
/// rgi::export_http!(|_config| hello);
/// ```
///
/// With state built from the configuration:
///
/// ```
/// rgi::export_http!(|config: &rgi::CreateContext<'_>| {
///     let greeting = config.option("greeting").unwrap_or("Hello").to_string();
///     move |_req: http::Request<rgi::http::Body>| http::Response::new(format!("{greeting}, World!"))
/// });
/// ```
#[macro_export]
macro_rules! export_http {
    ($make:expr) => {
        $crate::__export_factory!(http, $crate::http::Handler, $make);
    };
}

/// Writes the manifest and entry function of an app built by a factory (`export_http!`,
/// `export_service!`): the app's type is the factory's `impl Trait`, which only functions in
/// this expansion can name, so they are the trampolines.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_factory {
    ($kind:ident, $bound:path, $make:expr) => {
        /// RGI manifest, read by mod_rgi from the library file at configuration time.
        #[unsafe(no_mangle)]
        #[used]
        #[allow(non_upper_case_globals)]
        pub static rgi_manifest_v1: $crate::abi::Manifest = $crate::abi::Manifest::new($crate::abi::role::APP);

        /// RGI entry point, called by mod_rgi after loading the library.
        ///
        /// # Safety
        /// `host` must be null or a host table valid for the rest of the process.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rgi_app_v1(host: *const $crate::abi::HostApi) -> *const $crate::abi::AppDescriptor {
            fn make(config: &$crate::CreateContext<'_>) -> impl $bound + use<> {
                ($make)(config)
            }
            unsafe extern "C" fn create(
                ctx: *const $crate::abi::CreateContext,
                error: *mut $crate::abi::StrSink,
            ) -> $crate::abi::Instance {
                // SAFETY: forwarded from the host's call.
                unsafe { $crate::__private::$kind::create(ctx, error, make) }
            }
            unsafe extern "C" fn destroy(instance: $crate::abi::Instance) {
                // SAFETY: forwarded from the host's call.
                unsafe { $crate::__private::$kind::destroy(instance, make) }
            }
            unsafe extern "C" fn call(
                instance: $crate::abi::Instance,
                req: *mut $crate::abi::HostRequest,
            ) -> $crate::abi::CallStatus {
                // SAFETY: forwarded from the host's call.
                unsafe { $crate::__private::$kind::call(instance, req, make) }
            }
            static DESCRIPTOR: $crate::abi::AppDescriptor =
                $crate::__private::factory_descriptor(create, destroy, call);
            // SAFETY: forwarded from our own caller's contract.
            unsafe { $crate::__private::enter(host, &DESCRIPTOR) }
        }
    };
}
