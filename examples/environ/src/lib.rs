//! Shows the environ: one `KEY=VALUE` line per entry, sorted by key, newlines in values written
//! as `\n`. Bytes that are not UTF-8 are sent as they are.

#[derive(Default)]
struct Environ;

impl rgi::App for Environ {
    fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let mut entries: Vec<(&[u8], &[u8])> = req.environ().iter_bytes().collect();
        entries.sort();
        let mut body = Vec::with_capacity(4096);
        for (key, value) in entries {
            body.extend_from_slice(key);
            body.push(b'=');
            for &b in value {
                if b == b'\n' {
                    body.extend_from_slice(b"\\n");
                } else {
                    body.push(b);
                }
            }
            body.push(b'\n');
        }
        Ok(rgi::Response::ok().with_header("Content-Type", "text/plain").with_body(body))
    }
}

rgi::export!(Environ);
