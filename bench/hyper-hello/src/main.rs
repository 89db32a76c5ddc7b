//! A standalone hyper 1.x server answering the benchmark's workloads, as a Rust user would run
//! one today behind Apache's mod_proxy_http: `/hello` (13 bytes) and `/blob` (64 KiB).
//!
//! Usage: `hyper-hello PORT [WORKER_THREADS]` (2 tokio workers unless told, one per core here).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

static BLOB: [u8; 64 * 1024] = [b'x'; 64 * 1024];

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/hello" => (StatusCode::OK, Bytes::from_static(b"Hello, World!")),
        "/blob" => (StatusCode::OK, Bytes::from_static(&BLOB)),
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found")),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("usage: hyper-hello PORT [WORKER_THREADS]");
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_io().build()?.block_on(async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)).await;
            });
        }
    })
}
