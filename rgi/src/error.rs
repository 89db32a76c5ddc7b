//! Error types of the SDK.

use crate::abi::status;

/// The error type app callbacks return: any error, boxed. `?` converts every
/// `std::error::Error + Send + Sync` into it.
///
/// An error returned from [`App::call`](crate::App::call) makes the answer a 500 (logged), except
/// the SDK's errors that are the client's fault, such as a form over its limits
/// (`forms::FormError`), which answer with their own 4xx status.
///
/// ```
/// fn parse(n: &str) -> Result<u32, rgi::Error> {
///     Ok(n.parse::<u32>()?)
/// }
/// assert!(parse("x").is_err());
/// ```
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed call into Apache.
///
/// ```
/// let e = rgi::HostError::Aborted;
/// assert_eq!(e.to_string(), "the client closed the connection");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The client went away.
    #[error("the client closed the connection")]
    Aborted,
    /// The host refused an argument (for example a header value with CR or LF); it logged why.
    #[error("the host refused an invalid argument (see the error log)")]
    Invalid,
    /// The call came at the wrong time, e.g. body bytes before `start_response`.
    #[error("the call is not allowed in this state of the response")]
    State,
    /// The request body could not be read (bad framing, too large, timed out); Apache answers
    /// the request with the matching HTTP error.
    #[error("the request body could not be read")]
    BodyError,
    /// An I/O error in the host.
    #[error("an I/O error in the host")]
    Io,
    /// The host does not support the call here.
    #[error("not supported by the host in this phase")]
    Unsupported,
    /// A request function was called from another thread than the one serving the request, or
    /// after the request's callback returned.
    #[error("the request is not reachable from this thread (or has ended)")]
    OffThread,
    /// Nothing is stored under that key.
    #[error("not found in the host's store")]
    NotFound,
    /// The value is larger than the host accepts.
    #[error("too large for the host")]
    TooLarge,
    /// The library was not loaded by an RGI host.
    #[error("not running inside an RGI host")]
    NoHost,
    /// A status code this SDK does not know.
    #[error("host status {0}")]
    Other(i32),
}

impl HostError {
    pub(crate) fn from_status(code: i32) -> Self {
        match code {
            status::ABORTED => HostError::Aborted,
            status::INVALID => HostError::Invalid,
            status::STATE => HostError::State,
            status::BODY_ERROR => HostError::BodyError,
            status::IO => HostError::Io,
            status::UNSUPPORTED => HostError::Unsupported,
            status::NOT_FOUND => HostError::NotFound,
            status::TOO_LARGE => HostError::TooLarge,
            other => HostError::Other(other),
        }
    }
}

/// The response for an app error that is the client's fault, if `err` is one.
pub(crate) fn client_error_response(
    err: &(dyn std::error::Error + Send + Sync + 'static),
) -> Option<crate::Response<'static>> {
    #[cfg(feature = "forms")]
    if let Some(e) = err.downcast_ref::<crate::forms::FormError>()
        && e.status() < 500
    {
        return Some(e.response());
    }
    let _ = err;
    None
}
