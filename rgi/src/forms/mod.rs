//! HTML forms (feature `forms`): `application/x-www-form-urlencoded` and `multipart/form-data`
//! request bodies, and query strings.
//!
//! Bodies are read as they arrive. An uploaded file is kept in memory up to
//! [`FormLimits::spool_threshold`] and written to a temporary file beyond it, so no upload is
//! ever held whole in memory. Limits on the body size, the number of fields and the size of a
//! field answer 413 or 400: returned from [`App::call`](crate::App::call) with `?`, a
//! [`FormError`] becomes that response rather than a 500.
//!
//! ```no_run
//! # fn f<'r>(mut req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
//! let mut form = req.form()?;
//! let title = form.get("title").unwrap_or("untitled").to_string();
//! for file in form.take_files() {
//!     println!("{} bytes from {:?}", file.size(), file.file_name());
//!     file.persist(format!("/srv/uploads/{title}"))?;
//! }
//! Ok(rgi::Response::text(format!("saved {title}")))
//! # }
//! ```
//!
//! Multipart bodies are parsed by the SDK's own small streaming reader: the maintained crates
//! for it are asynchronous, and an app's request body is a blocking reader.

mod multipart;

use std::fs::File;
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use crate::request::Request;
use crate::response::Response;

pub use multipart::valid_boundary;
use multipart::{Multipart, parse_parameters};

/// Why a form could not be read. Its [`status`](Self::status) is the HTTP answer.
///
/// ```
/// let e = rgi::forms::FormError::TooLarge { limit: 1024 };
/// assert_eq!(e.status(), 413);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The body is larger than [`FormLimits::max_size`] (413).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// A field (not a file) is larger than [`FormLimits::max_field_size`] (413).
    #[error("form field '{name}' is larger than {limit} bytes")]
    FieldTooLarge {
        /// The field's name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// More fields than [`FormLimits::max_fields`] (400).
    #[error("the form has more than {limit} fields")]
    TooManyFields {
        /// The limit.
        limit: usize,
    },
    /// The body does not follow its content type (400).
    #[error("malformed form: {0}")]
    Malformed(String),
    /// The body is not a form (415).
    #[error("the request body is {0}, not a form")]
    UnsupportedType(String),
    /// Reading the body failed (400; when Apache itself refused the body, it answers with its
    /// own status).
    #[error("reading the request body failed: {0}")]
    Body(io::Error),
    /// Writing an upload to its temporary file failed (500).
    #[error("spooling an upload to disk failed: {0}")]
    Spool(io::Error),
}

impl FormError {
    /// The HTTP status that answers this error.
    ///
    /// ```
    /// assert_eq!(rgi::forms::FormError::Malformed("x".into()).status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            FormError::TooLarge { .. } | FormError::FieldTooLarge { .. } => 413,
            FormError::TooManyFields { .. } | FormError::Malformed(_) | FormError::Body(_) => 400,
            FormError::UnsupportedType(_) => 415,
            FormError::Spool(_) => 500,
        }
    }

    /// The response for this error: its status and a short text.
    ///
    /// ```
    /// let r = rgi::forms::FormError::TooManyFields { limit: 10 }.response();
    /// assert_eq!(r.status(), 400);
    /// ```
    pub fn response(&self) -> Response<'static> {
        let text = if self.status() == 500 { "internal error".to_string() } else { self.to_string() };
        Response::text(text).with_status(self.status())
    }
}

/// How much of a form the app accepts.
///
/// ```
/// let limits = rgi::forms::FormLimits::default()
///     .max_size(50 << 20)
///     .max_fields(100)
///     .spool_dir("/var/tmp");
/// assert_eq!(limits.max_size, 50 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct FormLimits {
    /// The largest body, in bytes (default 10 MiB).
    pub max_size: u64,
    /// The most fields and files (default 1000).
    pub max_fields: usize,
    /// The largest field that is not a file (default 64 KiB).
    pub max_field_size: usize,
    /// Uploads larger than this go to a temporary file (default 64 KiB).
    pub spool_threshold: usize,
    /// Where temporary files go (default the system's temporary directory).
    pub spool_dir: Option<PathBuf>,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            max_size: 10 << 20,
            max_fields: 1000,
            max_field_size: 64 << 10,
            spool_threshold: 64 << 10,
            spool_dir: None,
        }
    }
}

impl FormLimits {
    /// Sets [`max_size`](Self::max_size).
    ///
    /// ```
    /// let limits = rgi::forms::FormLimits::default().max_size(1 << 20);
    /// # let _ = limits;
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// Sets [`max_fields`](Self::max_fields).
    ///
    /// ```
    /// let limits = rgi::forms::FormLimits::default().max_fields(20);
    /// # let _ = limits;
    /// ```
    pub fn max_fields(mut self, fields: usize) -> Self {
        self.max_fields = fields;
        self
    }

    /// Sets [`max_field_size`](Self::max_field_size).
    ///
    /// ```
    /// let limits = rgi::forms::FormLimits::default().max_field_size(4096);
    /// # let _ = limits;
    /// ```
    pub fn max_field_size(mut self, bytes: usize) -> Self {
        self.max_field_size = bytes;
        self
    }

    /// Sets [`spool_threshold`](Self::spool_threshold).
    ///
    /// ```
    /// let limits = rgi::forms::FormLimits::default().spool_threshold(0); // every upload to disk
    /// # let _ = limits;
    /// ```
    pub fn spool_threshold(mut self, bytes: usize) -> Self {
        self.spool_threshold = bytes;
        self
    }

    /// Sets [`spool_dir`](Self::spool_dir).
    ///
    /// ```
    /// let limits = rgi::forms::FormLimits::default().spool_dir("/var/tmp");
    /// # let _ = limits;
    /// ```
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }
}

/// Where an upload's bytes are.
#[derive(Debug)]
enum Stored {
    Memory(Vec<u8>),
    Spooled(tempfile::NamedTempFile),
}

/// A file sent with a multipart form. A spooled file is deleted when this value is dropped,
/// unless [`persist`](Self::persist)ed.
#[derive(Debug)]
pub struct UploadedFile {
    field: String,
    file_name: Option<String>,
    content_type: Option<String>,
    size: u64,
    stored: Stored,
}

impl UploadedFile {
    /// The form field it was sent as.
    ///
    /// ```no_run
    /// # fn f(file: &rgi::forms::UploadedFile) { let _ = file.field(); }
    /// ```
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The file name the client gave (the browser's base name; never trust it as a path).
    ///
    /// ```no_run
    /// # fn f(file: &rgi::forms::UploadedFile) { let _ = file.file_name(); }
    /// ```
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// The `Content-Type` the client gave.
    ///
    /// ```no_run
    /// # fn f(file: &rgi::forms::UploadedFile) { let _ = file.content_type(); }
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The size in bytes.
    ///
    /// ```no_run
    /// # fn f(file: &rgi::forms::UploadedFile) { let _ = file.size(); }
    /// ```
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file holding it, when it was larger than the spool threshold.
    ///
    /// ```no_run
    /// # fn f(file: &rgi::forms::UploadedFile) { let on_disk = file.spooled_path().is_some(); }
    /// ```
    pub fn spooled_path(&self) -> Option<&Path> {
        match &self.stored {
            Stored::Memory(_) => None,
            Stored::Spooled(file) => Some(file.path()),
        }
    }

    /// Reads the content from its start.
    ///
    /// ```no_run
    /// # fn f(file: &rgi::forms::UploadedFile) -> std::io::Result<()> {
    /// let mut digest = 0u64;
    /// for byte in std::io::Read::bytes(file.reader()?) { digest = digest.wrapping_add(u64::from(byte?)); }
    /// # Ok(()) }
    /// ```
    pub fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match &self.stored {
            Stored::Memory(bytes) => Box::new(Cursor::new(bytes.as_slice())),
            Stored::Spooled(file) => Box::new(file.reopen()?),
        })
    }

    /// Moves (or writes) the content to `path`.
    ///
    /// ```no_run
    /// # fn f(file: rgi::forms::UploadedFile) -> std::io::Result<()> {
    /// file.persist("/srv/uploads/report.pdf")?;
    /// # Ok(()) }
    /// ```
    pub fn persist(self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        match self.stored {
            Stored::Memory(bytes) => std::fs::write(path, bytes),
            Stored::Spooled(file) => match file.persist(path) {
                Ok(_) => Ok(()),
                // Another file system: copy instead of renaming.
                Err(e) => io::copy(&mut e.file.reopen()?, &mut File::create(path)?).map(drop),
            },
        }
    }
}

/// The fields and files of a form, in the order they came.
///
/// ```
/// let form = rgi::forms::Form::from_urlencoded(b"a=1&b=x%20y&a=2", &Default::default())?;
/// assert_eq!(form.get("b"), Some("x y"));
/// assert_eq!(form.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
/// # Ok::<(), rgi::forms::FormError>(())
/// ```
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
    files: Vec<UploadedFile>,
}

impl Form {
    /// Parses `application/x-www-form-urlencoded` bytes (a body or a query string).
    ///
    /// ```
    /// let form = rgi::forms::Form::from_urlencoded(b"q=rust", &Default::default())?;
    /// assert_eq!(form.get("q"), Some("rust"));
    /// # Ok::<(), rgi::forms::FormError>(())
    /// ```
    pub fn from_urlencoded(bytes: &[u8], limits: &FormLimits) -> Result<Form, FormError> {
        let mut form = Form::default();
        for (name, value) in form_urlencoded::parse(bytes) {
            if form.fields.len() == limits.max_fields {
                return Err(FormError::TooManyFields { limit: limits.max_fields });
            }
            if value.len() > limits.max_field_size {
                return Err(FormError::FieldTooLarge { name: name.into_owned(), limit: limits.max_field_size });
            }
            form.fields.push((name.into_owned(), value.into_owned()));
        }
        Ok(form)
    }

    /// Reads a `multipart/form-data` body with `boundary` from `body`.
    ///
    /// ```
    /// let body = b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n";
    /// let form = rgi::forms::Form::from_multipart(&body[..], "x", &Default::default())?;
    /// assert_eq!(form.get("a"), Some("1"));
    /// # Ok::<(), rgi::forms::FormError>(())
    /// ```
    pub fn from_multipart(body: impl Read, boundary: &str, limits: &FormLimits) -> Result<Form, FormError> {
        let mut parts = Multipart::new(body, boundary, limits.max_size)?;
        let mut form = Form::default();
        while let Some(head) = parts.next_part()? {
            if form.fields.len() + form.files.len() == limits.max_fields {
                return Err(FormError::TooManyFields { limit: limits.max_fields });
            }
            match head.file_name {
                Some(file_name) => {
                    let mut spool = Spool::new(limits);
                    parts.copy_body(&mut |chunk| spool.write(chunk))?;
                    // A file input left empty sends a nameless, empty part.
                    if file_name.is_empty() && spool.size == 0 {
                        continue;
                    }
                    form.files.push(UploadedFile {
                        field: head.name,
                        file_name: Some(file_name),
                        content_type: head.content_type,
                        size: spool.size,
                        stored: spool.finish()?,
                    });
                }
                None => {
                    let mut value = Vec::new();
                    let limit = limits.max_field_size;
                    parts.copy_body(&mut |chunk| {
                        if value.len() + chunk.len() > limit {
                            return Err(FormError::FieldTooLarge { name: head.name.clone(), limit });
                        }
                        value.extend_from_slice(chunk);
                        Ok(())
                    })?;
                    form.fields.push((head.name, String::from_utf8_lossy(&value).into_owned()));
                }
            }
        }
        Ok(form)
    }

    /// The first value of field `name`.
    ///
    /// ```
    /// # let form = rgi::forms::Form::from_urlencoded(b"a=1", &Default::default())?;
    /// assert_eq!(form.get("a"), Some("1"));
    /// # Ok::<(), rgi::forms::FormError>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of field `name` (checkboxes, multiple selects).
    ///
    /// ```
    /// # let form = rgi::forms::Form::from_urlencoded(b"t=a&t=b", &Default::default())?;
    /// assert_eq!(form.get_all("t").count(), 2);
    /// # Ok::<(), rgi::forms::FormError>(())
    /// ```
    pub fn get_all<'f>(&'f self, name: &'f str) -> impl Iterator<Item = &'f str> + 'f {
        self.fields.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every field, in order.
    ///
    /// ```
    /// # let form = rgi::forms::Form::from_urlencoded(b"a=1", &Default::default())?;
    /// assert_eq!(form.fields()[0], ("a".to_string(), "1".to_string()));
    /// # Ok::<(), rgi::forms::FormError>(())
    /// ```
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The first file sent as field `name`.
    ///
    /// ```
    /// # let form = rgi::forms::Form::default();
    /// assert!(form.file("upload").is_none());
    /// ```
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.field == name)
    }

    /// Every uploaded file, in order.
    ///
    /// ```
    /// # let form = rgi::forms::Form::default();
    /// assert!(form.files().is_empty());
    /// ```
    pub fn files(&self) -> &[UploadedFile] {
        &self.files
    }

    /// Takes the uploaded files out of the form (to [`persist`](UploadedFile::persist) them).
    ///
    /// ```
    /// # let mut form = rgi::forms::Form::default();
    /// for file in form.take_files() { let _ = file.size(); }
    /// ```
    pub fn take_files(&mut self) -> Vec<UploadedFile> {
        std::mem::take(&mut self.files)
    }
}

/// Collects one upload: memory first, a temporary file past the threshold.
struct Spool<'l> {
    limits: &'l FormLimits,
    memory: Vec<u8>,
    file: Option<tempfile::NamedTempFile>,
    size: u64,
}

impl<'l> Spool<'l> {
    fn new(limits: &'l FormLimits) -> Self {
        Spool { limits, memory: Vec::new(), file: None, size: 0 }
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), FormError> {
        self.size += chunk.len() as u64;
        if self.file.is_none() && self.memory.len() + chunk.len() > self.limits.spool_threshold {
            let mut builder = tempfile::Builder::new();
            builder.prefix("rgi-upload-");
            let mut file = match &self.limits.spool_dir {
                Some(dir) => builder.tempfile_in(dir),
                None => builder.tempfile(),
            }
            .map_err(FormError::Spool)?;
            file.write_all(&std::mem::take(&mut self.memory)).map_err(FormError::Spool)?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(chunk).map_err(FormError::Spool),
            None => {
                self.memory.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<Stored, FormError> {
        match self.file {
            Some(mut file) => {
                file.flush().map_err(FormError::Spool)?;
                Ok(Stored::Spooled(file))
            }
            None => Ok(Stored::Memory(self.memory)),
        }
    }
}

/// Reads at most `limit` bytes; more is [`FormError::TooLarge`].
fn read_limited(reader: impl Read, limit: u64) -> Result<Vec<u8>, FormError> {
    let mut bytes = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(FormError::Body)?;
    if bytes.len() as u64 > limit {
        return Err(FormError::TooLarge { limit });
    }
    Ok(bytes)
}

impl<'r> Request<'r> {
    /// The form in the request body, with the default [`FormLimits`]. A request without a body
    /// gives an empty form.
    ///
    /// ```no_run
    /// # fn f<'r>(mut req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
    /// let form = req.form()?; // a 400/413/415 answer when it is not an acceptable form
    /// Ok(rgi::Response::text(format!("hello {}", form.get("name").unwrap_or("?"))))
    /// # }
    /// ```
    pub fn form(&mut self) -> Result<Form, FormError> {
        self.form_with(&FormLimits::default())
    }

    /// The form in the request body, within `limits`.
    ///
    /// ```no_run
    /// # fn f(mut req: rgi::Request<'_>) -> Result<(), rgi::forms::FormError> {
    /// let form = req.form_with(&rgi::forms::FormLimits::default().max_size(100 << 20))?;
    /// # Ok(()) }
    /// ```
    pub fn form_with(&mut self, limits: &FormLimits) -> Result<Form, FormError> {
        let content_type = self.environ().get("CONTENT_TYPE").unwrap_or("");
        let declared = self.environ().get("CONTENT_LENGTH").and_then(|l| l.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limits.max_size) {
            return Err(FormError::TooLarge { limit: limits.max_size });
        }
        let (media_type, params) =
            parse_parameters(content_type).ok_or_else(|| FormError::Malformed("bad Content-Type".into()))?;
        match media_type.to_ascii_lowercase().as_str() {
            "application/x-www-form-urlencoded" => {
                let body = read_limited(self.input(), limits.max_size)?;
                Form::from_urlencoded(&body, limits)
            }
            "multipart/form-data" => {
                let boundary = params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| FormError::Malformed("multipart/form-data without a boundary".into()))?;
                Form::from_multipart(self.input(), &boundary, limits)
            }
            "" if declared.unwrap_or(0) == 0 && self.header("Transfer-Encoding").is_none() => Ok(Form::default()),
            "" => Err(FormError::UnsupportedType("without a Content-Type".into())),
            other => Err(FormError::UnsupportedType(other.to_string())),
        }
    }

    /// The fields of the query string (`?a=1&b=2`).
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) -> Result<(), rgi::forms::FormError> {
    /// let page: usize = req.query()?.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    /// # Ok(()) }
    /// ```
    pub fn query(&self) -> Result<Form, FormError> {
        Form::from_urlencoded(self.query_string().as_bytes(), &FormLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, file, data) in parts {
            body.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=\"");
            body.extend_from_slice(name.as_bytes());
            body.push(b'"');
            if let Some(file) = file {
                body.extend_from_slice(
                    format!("; filename=\"{file}\"\r\nContent-Type: application/octet-stream").as_bytes(),
                );
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--B--\r\n");
        body
    }

    #[test]
    fn small_uploads_stay_in_memory_and_large_ones_are_spooled() {
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let body =
            multipart(&[("title", None, b"report"), ("small", Some("s.bin"), b"tiny"), ("big", Some("b.bin"), &big)]);
        let form = Form::from_multipart(&body[..], "B", &FormLimits::default()).unwrap();
        assert_eq!(form.get("title"), Some("report"));
        let small = form.file("small").unwrap();
        assert_eq!((small.size(), small.spooled_path()), (4, None));
        let large = form.file("big").unwrap();
        assert_eq!(large.size(), big.len() as u64);
        assert_eq!(large.file_name(), Some("b.bin"));
        assert_eq!(large.content_type(), Some("application/octet-stream"));
        let path = large.spooled_path().expect("spooled").to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), big.len() as u64);
        let mut back = Vec::new();
        large.reader().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, big);
        drop(form);
        assert!(!path.exists(), "the temporary file is removed with the form");
    }

    #[test]
    fn persist_moves_or_writes_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let limits = FormLimits::default().spool_threshold(3).spool_dir(dir.path());
        let body = multipart(&[("a", Some("a"), b"spooled"), ("b", Some("b"), b"in")]);
        let mut form = Form::from_multipart(&body[..], "B", &limits).unwrap();
        for (i, file) in form.take_files().into_iter().enumerate() {
            file.persist(dir.path().join(format!("kept{i}"))).unwrap();
        }
        assert_eq!(std::fs::read(dir.path().join("kept0")).unwrap(), b"spooled");
        assert_eq!(std::fs::read(dir.path().join("kept1")).unwrap(), b"in");
    }

    #[test]
    fn limits_answer_413_and_400() {
        let body = multipart(&[("a", None, b"1"), ("b", None, b"2"), ("c", None, b"3")]);
        let err = Form::from_multipart(&body[..], "B", &FormLimits::default().max_fields(2)).unwrap_err();
        assert!(matches!(err, FormError::TooManyFields { limit: 2 }) && err.status() == 400);

        let body = multipart(&[("long", None, &[b'x'; 100])]);
        let err = Form::from_multipart(&body[..], "B", &FormLimits::default().max_field_size(99)).unwrap_err();
        assert!(matches!(&err, FormError::FieldTooLarge { name, .. } if name == "long") && err.status() == 413);

        let err = Form::from_multipart(&body[..], "B", &FormLimits::default().max_size(50)).unwrap_err();
        assert_eq!(err.status(), 413);

        let err = Form::from_urlencoded(b"a=1&b=2&c=3", &FormLimits::default().max_fields(2)).unwrap_err();
        assert_eq!(err.status(), 400);
        let err = Form::from_urlencoded(b"a=12345", &FormLimits::default().max_field_size(4)).unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(matches!(read_limited(&b"12345"[..], 4), Err(FormError::TooLarge { limit: 4 })));
        assert_eq!(read_limited(&b"1234"[..], 4).unwrap(), b"1234");
    }

    #[test]
    fn empty_file_inputs_are_skipped() {
        let body = multipart(&[("f", Some(""), b""), ("g", None, b"")]);
        let form = Form::from_multipart(&body[..], "B", &FormLimits::default()).unwrap();
        assert!(form.files().is_empty());
        assert_eq!(form.get("g"), Some(""));
    }

    #[test]
    fn urlencoded_decodes_plus_and_percent() {
        let form =
            Form::from_urlencoded(b"name=Ada+Lovelace&note=50%25%20off&empty=&flag", &FormLimits::default()).unwrap();
        assert_eq!(form.get("name"), Some("Ada Lovelace"));
        assert_eq!(form.get("note"), Some("50% off"));
        assert_eq!(form.get("empty"), Some(""));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn errors_become_responses() {
        assert_eq!(FormError::UnsupportedType("text/plain".into()).response().status(), 415);
        assert_eq!(FormError::Spool(io::Error::other("disk full")).response().status(), 500);
        assert_eq!(FormError::Body(io::Error::other("reset")).status(), 400);
    }
}
