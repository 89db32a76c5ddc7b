//! Panics on purpose, to show that a panicking app costs one request, not a process:
//! `?where=call` (default) in `call`, `?where=body` while producing the body, `?where=drop` when
//! the body is dropped, `?where=abort` aborts the whole process (for daemon-mode crash tests).
//! With `RGIOption panic.create on` the instance panics while being created.

use std::io::Write;

struct Panic;

impl rgi::Create for Panic {
    fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
        if ctx.option("panic.create") == Some("on") {
            panic!("panic while creating the app instance");
        }
        Ok(Panic)
    }
}

struct PanicOnDrop;

impl Iterator for PanicOnDrop {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("panic while dropping the body");
    }
}

impl rgi::App for Panic {
    fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        match req.query_param("where").as_deref().unwrap_or("call") {
            "body" => Ok(rgi::Response::text(rgi::Body::writer(|out| {
                out.write_all(b"partial body\n")?;
                out.flush()?;
                panic!("panic while producing the body");
            }))),
            "drop" => Ok(rgi::Response::text(rgi::Body::chunks(PanicOnDrop))),
            "abort" => std::process::abort(),
            "none" => Ok(rgi::Response::text("no panic")),
            _ => panic!("panic in call, as asked"),
        }
    }
}

rgi::export!(Panic);
