//! Sends `n` chunks (`?n=5&ms=100`), flushing each and waiting `ms` milliseconds between them,
//! to show that responses stream.

use std::io::Write;
use std::time::Duration;

#[derive(Default)]
struct Stream;

impl rgi::App for Stream {
    fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let n: u32 = req.query_param("n").and_then(|v| v.parse().ok()).unwrap_or(5).min(10_000);
        let ms: u64 = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(100).min(60_000);
        Ok(rgi::Response::text(rgi::Body::writer(move |out| {
            for i in 1..=n {
                writeln!(out, "chunk {i} of {n}")?;
                out.flush()?;
                if i < n {
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
            Ok(())
        })))
    }
}

rgi::export!(Stream);
