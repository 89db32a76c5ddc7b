//! Streams the request body back as it arrives (fixed-length or chunked, any size).

use std::io::{Read, Write};

#[derive(Default)]
struct Echo;

impl rgi::App for Echo {
    fn call<'r>(&self, mut req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let content_type = req.header("Content-Type").unwrap_or("application/octet-stream");
        let mut response = rgi::Response::ok().with_header("Content-Type", content_type.to_string());
        // A known length is passed on, so the client gets Content-Length instead of chunks.
        if let Some(length) = req.environ().get("CONTENT_LENGTH") {
            response = response.with_header("Content-Length", length.to_string());
        }
        let mut input = req.take_input();
        Ok(response.with_body(rgi::Body::writer(move |out| {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                out.write_all(&buf[..n])?;
            }
        })))
    }
}

rgi::export!(Echo);
