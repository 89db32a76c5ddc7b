//! Rust code as Apache's authentication and authorisation.
//!
//! - [`directives`]: `RGIAuthUserScript`, `RGIAuthGroupScript`, `RGIAccessScript`,
//!   `RGIAuthenHandler`, `RGIAuthzHandler`; [`config`]: where they are recorded.
//! - `authn`: the authn provider `rgi` (Basic and Digest, `<AuthnProviderAlias>`).
//! - `authz`: the authz provider `rgi-group`.
//! - `access`: the host access check; `handlers`: the check_user_id and auth_checker phases.
//! - `script`: calling an auth library (or an `RGIDispatchScript`) for a request.
//!
//! Every path fails closed: a library that cannot be loaded, a callback that errs or panics, an
//! answer the host does not know — each is a 500 logged with the request id, never a grant.
//! Auth libraries run in Apache's own children (embedded mode), also when the app itself runs
//! in a daemon process group, as mod_wsgi's auth scripts do.

mod access;
mod authn;
mod authz;
pub mod config;
pub mod directives;
mod handlers;
pub(crate) mod script;

use crate::ffi::sys;

/// Registers the providers and hooks.
///
/// # Safety
/// `p` must be the pool Apache passes to register_hooks.
pub unsafe fn register_hooks(p: *mut sys::apr_pool_t) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        authn::register(p);
        authz::register(p);
    }
    access::register();
    handlers::register();
}
