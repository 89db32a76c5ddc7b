//! Sends 64 KiB of `x` from a static buffer: a larger response than `hello`, without the cost of
//! producing it (the benchmark's 64 KiB workload).

/// The body: 64 KiB, built at compile time.
static BLOB: [u8; 64 * 1024] = [b'x'; 64 * 1024];

#[derive(Default)]
struct Blob;

impl rgi::App for Blob {
    fn call<'r>(&self, _req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        Ok(rgi::Response::ok().with_header("Content-Type", "text/plain").with_body(&BLOB[..]))
    }
}

rgi::export!(Blob);
