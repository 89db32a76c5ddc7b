//! Reads a form (urlencoded or multipart) and describes it, one line per field or file:
//! `field NAME=VALUE` and `file NAME name=FILENAME size=N spooled=true|false fnv=HASH`.
//!
//! Limits come from options: `forms.max-size`, `forms.max-fields`, `forms.max-field-size`,
//! `forms.spool-threshold` (bytes or counts); a form over them answers 413 or 400. Uploads are
//! spooled to `forms.spool-dir` (default: the system's temporary directory).

use std::fmt::Write as _;
use std::io::Read;

use rgi::forms::FormLimits;
use rgi::{Request, Response};

#[derive(Default)]
struct Forms;

/// FNV-1a of a reader's bytes, so a client can check an upload arrived intact.
fn fnv(mut reader: impl Read) -> std::io::Result<u64> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hash);
        }
        hash = buf[..n].iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    }
}

fn limits(req: &Request<'_>) -> Result<FormLimits, rgi::Error> {
    let option = |name: &str| req.option(name).map(str::parse::<u64>).transpose();
    let mut limits = FormLimits::default();
    if let Some(n) = option("forms.max-size")? {
        limits = limits.max_size(n);
    }
    if let Some(n) = option("forms.max-fields")? {
        limits = limits.max_fields(n as usize);
    }
    if let Some(n) = option("forms.max-field-size")? {
        limits = limits.max_field_size(n as usize);
    }
    if let Some(n) = option("forms.spool-threshold")? {
        limits = limits.spool_threshold(n as usize);
    }
    if let Some(dir) = req.option("forms.spool-dir") {
        limits = limits.spool_dir(dir);
    }
    Ok(limits)
}

impl rgi::App for Forms {
    fn call<'r>(&self, mut req: Request<'r>) -> Result<Response<'r>, rgi::Error> {
        let limits = limits(&req)?;
        let query = req.query()?;
        let form = req.form_with(&limits)?;
        let mut out = String::new();
        for (name, value) in query.fields() {
            writeln!(out, "query {name}={value}")?;
        }
        for (name, value) in form.fields() {
            writeln!(out, "field {name}={value}")?;
        }
        for file in form.files() {
            let name = file.file_name().unwrap_or("");
            let spooled = file.spooled_path().is_some_and(|p| p.exists());
            let hash = fnv(file.reader()?)?;
            writeln!(out, "file {} name={name} size={} spooled={spooled} fnv={hash:016x}", file.field(), file.size())?;
        }
        Ok(Response::text(out))
    }
}

rgi::export!(Forms);
