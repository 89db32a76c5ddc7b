//! Makes the mistakes an app can make in a response (`?case=…`), to show that Apache refuses
//! them: header values or names with CR/LF/NUL, invalid statuses, bodies longer or shorter than
//! their Content-Length, a body that fails half way, framing headers.

use std::io::{self, Write};

#[derive(Default)]
struct Misbehave;

impl rgi::App for Misbehave {
    fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let ok = rgi::Response::text("well formed\n");
        Ok(match req.query_param("case").as_deref().unwrap_or("") {
            "crlf-value" => ok.with_header("X-Injected", "a\r\nSet-Cookie: stolen=1"),
            "lf-value" => ok.with_header("X-Injected", "a\nb"),
            "nul-value" => ok.with_header("X-Injected", "a\0b"),
            "crlf-name" => ok.with_header("X-Bad\r\nName", "v"),
            "space-name" => ok.with_header("X Bad", "v"),
            "status-99" => ok.with_status(99),
            "status-1000" => ok.with_status(1000),
            "status-0" => ok.with_status(0),
            "long-body" => rgi::Response::ok().with_header("Content-Length", "5").with_body("0123456789"),
            "short-body" => rgi::Response::ok()
                .with_header("Content-Length", "10")
                .with_body(rgi::Body::writer(|out| out.write_all(b"01234"))),
            "bad-length" => rgi::Response::ok().with_header("Content-Length", "-1").with_body("x"),
            "fail-midway" => rgi::Response::text(rgi::Body::chunks(vec![
                Ok(b"first chunk\n".to_vec()),
                Err(io::Error::other("the database went away")),
            ])),
            "error-before" => return Err("the app refused to answer".into()),
            "transfer-encoding" => ok.with_header("Transfer-Encoding", "chunked"),
            "write-after-end" => rgi::Response::ok().with_body(rgi::Body::writer(|out| {
                out.write_all(b"body")?;
                out.flush()?;
                // Writing more after flushing is allowed; this case checks repeated flushes work.
                out.flush()?;
                out.write_all(b" more")
            })),
            _ => ok,
        })
    }
}

rgi::export!(Misbehave);
