//! An app written with the `http` crate: a plain function from request to response, running on
//! Apache's thread (no async runtime).

use std::io::Read;

use http::{Request, Response, StatusCode};
use rgi::http::{Body, Environ};

fn handle(req: Request<Body>) -> Response<Body> {
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/") => Response::new(Body::from("Hello from http!\n")),
        ("GET", "/pid") => Response::new(Body::from(std::process::id().to_string())),
        // The request body streamed back: its chunks are written as they are read.
        ("POST", "/echo") => Response::new(req.into_body()),
        // The whole body read first, then its length.
        ("POST", "/count") => {
            let mut bytes = Vec::new();
            match req.into_body().read_to_end(&mut bytes) {
                Ok(n) => Response::new(Body::from(format!("{n}\n"))),
                Err(e) => status(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        ("GET", "/uri") => {
            let env = req.extensions().get::<Environ>().expect("served by mod_rgi");
            let script_name = env.get("SCRIPT_NAME").unwrap_or_default();
            let agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
            Response::new(Body::from(format!("{script_name} {} {agent}\n", req.uri())))
        }
        _ => status(StatusCode::NOT_FOUND, "not found"),
    }
}

fn status(code: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{message}\n")));
    *response.status_mut() = code;
    response
}

rgi::export_http!(|_config| handle);
