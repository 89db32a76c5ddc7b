//! The traits an app implements.

use crate::abi::{CreateContext as RawCreateContext, RgiPair};
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;

/// Builds an instance of an exported type. mod_rgi creates one instance per application group per
/// process, exactly once, before the first callback of that group.
///
/// Types that implement [`Default`] get this for free.
///
/// ```
/// struct Greeter { greeting: String }
///
/// impl rgi::Create for Greeter {
///     fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
///         let greeting = ctx.option("greeting").unwrap_or("Hello").to_string();
///         Ok(Greeter { greeting })
///     }
/// }
/// ```
pub trait Create: Sized + Send + Sync + 'static {
    /// Creates the instance. An error is logged and the request that needed it answered with 500;
    /// the next request tries again.
    fn create(ctx: &CreateContext<'_>) -> Result<Self, Error>;
}

impl<T: Default + Send + Sync + 'static> Create for T {
    fn create(_: &CreateContext<'_>) -> Result<Self, Error> {
        Ok(T::default())
    }
}

/// A WSGI-style application: one call per request, from many threads at once.
///
/// The app answers with a [`Response`]; its body may borrow the request (for example stream the
/// request body back). A panic anywhere in `call` or while the body is produced is caught: the
/// client gets a 500 (or, if the headers were already sent, a cut-off response), the panic is
/// logged with the request id, and the Apache process keeps serving.
///
/// ```
/// #[derive(Default)]
/// struct Hello;
///
/// impl rgi::App for Hello {
///     fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
///         let who = req.environ().get("REMOTE_USER").unwrap_or("World");
///         Ok(rgi::Response::text(format!("Hello, {who}!")))
///     }
/// }
///
/// rgi::export!(Hello);
/// ```
pub trait App: Create {
    /// Serves one request.
    fn call<'r>(&self, req: Request<'r>) -> Result<Response<'r>, Error>;
}

/// What `create` is told: the library, its application and process group, and the options.
///
/// ```
/// struct Pool { size: usize }
/// impl rgi::Create for Pool {
///     fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
///         Ok(Pool { size: ctx.threads() })
///     }
/// }
/// ```
#[derive(Clone, Copy)]
pub struct CreateContext<'a> {
    raw: &'a RawCreateContext,
}

impl<'a> CreateContext<'a> {
    pub(crate) fn new(raw: &'a RawCreateContext) -> Self {
        CreateContext { raw }
    }

    fn text(s: crate::abi::RgiStr) -> &'a str {
        // SAFETY: the host keeps the context's strings alive during `create` ('a).
        std::str::from_utf8(unsafe { s.as_bytes() }).unwrap_or("")
    }

    /// The path of the app library.
    ///
    /// ```no_run
    /// # fn f(ctx: &rgi::CreateContext<'_>) { let _ = ctx.library(); }
    /// ```
    pub fn library(&self) -> &'a str {
        Self::text(self.raw.library)
    }

    /// The application group (`""` for `%{GLOBAL}`).
    ///
    /// ```no_run
    /// # fn f(ctx: &rgi::CreateContext<'_>) { let _ = ctx.application_group(); }
    /// ```
    pub fn application_group(&self) -> &'a str {
        Self::text(self.raw.application_group)
    }

    /// The daemon process group, or `""` when embedded in Apache's children.
    ///
    /// ```no_run
    /// # fn f(ctx: &rgi::CreateContext<'_>) { let _ = ctx.process_group(); }
    /// ```
    pub fn process_group(&self) -> &'a str {
        Self::text(self.raw.process_group)
    }

    /// How many threads of this process may call the instance at once: Apache's
    /// `ThreadsPerChild` (1 under prefork), or the daemon process group's threads. `1` from a
    /// host too old to say.
    ///
    /// ```no_run
    /// # fn f(ctx: &rgi::CreateContext<'_>) {
    /// let pool_size = ctx.threads().max(4);
    /// # }
    /// ```
    pub fn threads(&self) -> usize {
        let end = std::mem::offset_of!(RawCreateContext, threads) + size_of::<usize>();
        if self.raw.size >= end { self.raw.threads.max(1) } else { 1 }
    }

    /// A server-wide `RGIOption`.
    ///
    /// ```no_run
    /// # fn f(ctx: &rgi::CreateContext<'_>) { let _ = ctx.option("secret"); }
    /// ```
    pub fn option(&self, name: &str) -> Option<&'a str> {
        let pairs: &[RgiPair] = if self.raw.options.is_null() {
            &[]
        } else {
            // SAFETY: the host passes `options_len` pairs alive during `create`.
            unsafe { std::slice::from_raw_parts(self.raw.options, self.raw.options_len) }
        };
        pairs.iter().find_map(|p| {
            // SAFETY: as above.
            let (k, v) = unsafe { (p.name.as_bytes(), p.value.as_bytes()) };
            (k == name.as_bytes()).then(|| std::str::from_utf8(v).ok()).flatten()
        })
    }
}
