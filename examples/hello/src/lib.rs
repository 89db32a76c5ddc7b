//! The smallest RGI app: `Hello, World!` as text/plain.

#[derive(Default)]
struct Hello;

impl rgi::App for Hello {
    fn call<'r>(&self, _req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        Ok(rgi::Response::ok().with_header("Content-Type", "text/plain").with_body("Hello, World!"))
    }
}

rgi::export!(Hello);
