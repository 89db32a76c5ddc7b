//! Sends the file named by `RGIOption download.file PATH` through Apache's file path (sendfile),
//! with Range and conditional requests handled by Apache. `?offset=N&len=M` sends a part.

#[derive(Default)]
struct Download;

impl rgi::App for Download {
    fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let Some(path) = req.option("download.file") else {
            return Ok(rgi::Response::text("RGIOption download.file is not set").with_status(500));
        };
        let file = std::fs::File::open(path)?;
        let offset = req.query_param("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        let len = req.query_param("len").and_then(|v| v.parse().ok());
        let name = std::path::Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or("download");
        Ok(rgi::Response::ok()
            .with_header("Content-Type", "application/octet-stream")
            .with_header("Content-Disposition", format!("attachment; filename=\"{}\"", name.replace('"', "")))
            .with_body(rgi::Body::File { file, offset, len }))
    }
}

rgi::export!(Download);
