//! Any `tower::Service` as an app (feature `tower`), an `axum::Router` included.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! fn make_router(_config: &rgi::CreateContext<'_>) -> Router {
//!     Router::new().route("/", get(|| async { "Hello, World!" }))
//! }
//!
//! rgi::export_service!(|config| make_router(config));
//! ```
//!
//! # How requests run
//!
//! Each process that serves the app (an Apache child, or a daemon process) gets one tokio
//! runtime, made when the app's first instance is created there — after Apache forked the
//! process, never in Apache's parent. It is a multi-thread runtime with one worker per thread
//! that may serve requests in the process ([`CreateContext::threads`]: `ThreadsPerChild`, 1 under
//! prefork), so work the app spawns can run as much in parallel as Apache's own threads do.
//!
//! The Apache thread that received a request drives it to completion itself: it runs the
//! service's future with `Handle::block_on` (the future is polled on that thread, inside the
//! runtime's context, so `tokio::spawn`, timers and tokio I/O work), then writes the response
//! body as it is produced, and returns to Apache when the body ends. Apache's thread count
//! therefore stays the limit of concurrent requests, as for any other app, and the service's
//! future need not be `Send`.
//!
//! The request body can be read from any task: reads on the request's own thread go straight to
//! Apache; a task elsewhere gets each chunk fetched for it by the request's thread.
//!
//! The factory runs inside the runtime's context too, so it may spawn background tasks or build
//! clients that need a runtime. The service is cloned for every request (an axum `Router` clone
//! is cheap).

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

use crate::abi::{CallStatus, CreateContext as RawCreateContext, HostRequest, Instance, StrSink};
use crate::app::CreateContext;
use crate::error::{Error, HostError};
use crate::export::{self, Failure};
use crate::host::RequestLink;
use crate::http::Body;

/// A `tower::Service` mod_rgi can host: it takes `http::Request<rgi::http::Body>`, answers
/// `http::Response<B>` with any [`http_body::Body`] `B`, and is `Clone + Send + Sync`. Every such
/// service is one, an `axum::Router` among them.
///
/// ```
/// fn is_service(_: impl rgi::tower::HttpService) {}
/// is_service(axum::Router::new());
/// ```
pub trait HttpService:
    tower_service::Service<http::Request<Body>, Response = http::Response<Self::ResponseBody>, Error: Into<Error>>
    + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body type.
    type ResponseBody: http_body::Body<Error: Into<Error>>;
}

impl<S, B> HttpService for S
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    B: http_body::Body<Error: Into<Error>>,
{
    type ResponseBody = B;
}

/// The process's runtime (one per app library and process).
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime, made on first use with `threads` workers.
fn runtime(threads: usize) -> io::Result<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("rgi-tokio")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// What a body read elsewhere asks the request's thread for: up to `len` bytes, answered on
/// `reply`.
struct ReadRequest {
    len: usize,
    reply: oneshot::Sender<io::Result<Bytes>>,
}

/// The body's end of the pump: sends read requests to the request's thread.
pub(crate) struct PumpClient {
    requests: mpsc::UnboundedSender<ReadRequest>,
    pending: Option<oneshot::Receiver<io::Result<Bytes>>>,
}

impl PumpClient {
    /// Polls for the next chunk (empty at the end of the body).
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<Bytes>> {
        let pending = match &mut self.pending {
            Some(pending) => pending,
            None => {
                let (reply, answer) = oneshot::channel();
                if self.requests.send(ReadRequest { len, reply }).is_err() {
                    return Poll::Ready(Err(HostError::OffThread.into()));
                }
                self.pending.insert(answer)
            }
        };
        let answer = std::task::ready!(pin!(pending).poll(cx));
        self.pending = None;
        Poll::Ready(answer.unwrap_or_else(|_| Err(HostError::OffThread.into())))
    }
}

/// The request thread's end: reads from Apache for bodies polled on other threads, until the
/// response is sent (then it is dropped and those reads fail).
async fn pump(link: &RequestLink, mut requests: mpsc::UnboundedReceiver<ReadRequest>) {
    while let Some(ReadRequest { len, reply }) = requests.recv().await {
        let mut buf = BytesMut::zeroed(len);
        let read = link.read_body(&mut buf).map(|n| {
            buf.truncate(n);
            buf.freeze()
        });
        let _ = reply.send(read.map_err(io::Error::from));
    }
}

/// Runs `serve` to its end while answering the body's reads from other threads.
async fn with_pump<T>(serve: impl Future<Output = T>, pump: impl Future<Output = ()>) -> T {
    let (mut serve, mut pump) = (pin!(serve), pin!(pump));
    let mut pumping = true;
    poll_fn(|cx| {
        if let Poll::Ready(out) = serve.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if pumping && pump.as_mut().poll(cx).is_ready() {
            pumping = false;
        }
        Poll::Pending
    })
    .await
}

/// The trampolines `export_service!` fills its descriptor with.
#[doc(hidden)]
pub mod trampolines {
    use super::*;

    /// `create`: makes the process's runtime if needed, then runs the factory in its context.
    ///
    /// # Safety
    /// As the `create` callback of the ABI.
    pub unsafe fn create<S: HttpService>(
        ctx: *const RawCreateContext,
        error: *mut StrSink,
        make: impl FnOnce(&CreateContext<'_>) -> S,
    ) -> Instance {
        // SAFETY: forwarded from the host's call.
        unsafe {
            export::create_with(ctx, error, |ctx| {
                let runtime = runtime(ctx.threads()).map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
                let _context = runtime.enter();
                Ok(make(ctx))
            })
        }
    }

    /// `destroy`.
    ///
    /// # Safety
    /// As the `destroy` callback of the ABI, for an instance made by `create::<S>`.
    pub unsafe fn destroy<S: HttpService>(instance: Instance, _make: impl FnOnce(&CreateContext<'_>) -> S) {
        let _context = RUNTIME.get().map(Runtime::enter);
        // SAFETY: forwarded from the host's call.
        unsafe { export::destroy::<S>(instance) }
    }

    /// `call`: this thread drives the service's future and the response body to their end.
    ///
    /// # Safety
    /// As the `call` callback of the ABI, for an instance made by `create::<S>`.
    pub unsafe fn call<S: HttpService>(
        instance: Instance,
        req: *mut HostRequest,
        _make: impl FnOnce(&CreateContext<'_>) -> S,
    ) -> CallStatus {
        export::serve(req, |host| {
            // SAFETY: the host passes an instance `create::<S>` made.
            let mut service = unsafe { export::instance::<S>(instance) }.clone();
            let runtime = RUNTIME.get().ok_or_else(|| Failure::App("no tokio runtime in this process".into()))?;
            crate::http::serve_request(host, |link, request| {
                let (requests, pending) = mpsc::unbounded_channel();
                let request = request.map(|body| body.with_pump(PumpClient { requests, pending: None }));
                #[cfg(feature = "tracing")]
                let span = request_span(&request);
                let serve = async {
                    poll_fn(|cx| service.poll_ready(cx)).await.map_err(Into::into)?;
                    let response = service.call(request).await.map_err(Into::into)?;
                    crate::http::send(host, &link, response).await
                };
                #[cfg(feature = "tracing")]
                let serve = ::tracing::Instrument::instrument(serve, span);
                runtime.block_on(with_pump(serve, pump(&link, pending)))
            })
        })
    }

    /// The span that tags the request's events on other threads with its log id.
    #[cfg(feature = "tracing")]
    fn request_span(request: &http::Request<Body>) -> ::tracing::Span {
        let id = request.extensions().get::<crate::http::Environ>().and_then(|e| e.get("rgi.request_id"));
        ::tracing::error_span!(target: "rgi", "rgi.request", id = id.unwrap_or(""))
    }
}

/// Exports a `tower::Service` as an app: `rgi::export_service!(|config| make_router(config))`.
/// The factory runs once per application group and process, when the first request needs it,
/// inside the process's tokio runtime, with the group's
/// [`CreateContext`](crate::CreateContext); the [`HttpService`](crate::tower::HttpService) it
/// returns is cloned for every request.
///
/// ```no_run
/// use axum::{Router, routing::get};
///
/// fn make_router(config: &rgi::CreateContext<'_>) -> Router {
///     let name = config.option("name").unwrap_or("World").to_string();
///     Router::new().route("/", get(move || async move { format!("Hello, {name}!") }))
/// }
///
/// rgi::export_service!(|config| make_router(config));
/// ```
#[macro_export]
macro_rules! export_service {
    ($make:expr) => {
        $crate::__export_factory!(tower, $crate::tower::HttpService, $make);
    };
}
