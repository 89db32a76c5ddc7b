//! Rust code choosing, per request, which daemon process group and which application group
//! serve it (`RGIDispatchScript LIBRARY`, mod_wsgi's `WSGIDispatchScript`).
//!
//! A [`Dispatcher`] runs in the Apache child before the request is served (embedded, like the
//! auth callbacks), with the request's environ and `RGIOption`s. Its answer overrides
//! `process-group=`, `RGIProcessGroup`, `application-group=` and `RGIApplicationGroup`; each part
//! is read with the rules of the directive it overrides (`%{GLOBAL}`, `%{ENV:variable}`, and for
//! the application group `%{SERVER}` and `%{RESOURCE}`), and `RGIRestrictProcess` still applies.
//! `None` leaves the configured choice.
//!
//! **Fail closed**: an `Err` or a panic makes Apache answer 500 and logs why with the request
//! id; the request is not served with the configured groups instead.

use crate::app::Create;
use crate::auth::AuthRequest;
use crate::error::Error;

/// A dispatcher's answer; [`Dispatch::default`] leaves both groups as configured.
///
/// ```
/// let choice = rgi::dispatch::Dispatch { process_group: Some("tenant-a".into()), ..Default::default() };
/// assert_eq!(choice.application_group, None);
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The daemon process group, `%{GLOBAL}` for Apache's own children, or `%{ENV:variable}`.
    pub process_group: Option<String>,
    /// The application group: a name, `%{GLOBAL}`, `%{SERVER}`, `%{RESOURCE}` or `%{ENV:variable}`.
    pub application_group: Option<String>,
}

/// Chooses the groups of each request (`RGIDispatchScript LIBRARY`).
///
/// ```
/// #[derive(Default)]
/// struct ByTenant;
///
/// impl rgi::dispatch::Dispatcher for ByTenant {
///     fn dispatch(&self, req: &rgi::auth::AuthRequest<'_>) -> Result<rgi::dispatch::Dispatch, rgi::Error> {
///         let tenant = req.environ().get("SERVER_NAME").and_then(|host| host.split('.').next());
///         Ok(rgi::dispatch::Dispatch {
///             process_group: tenant.map(|t| format!("tenant-{t}")),
///             application_group: None,
///         })
///     }
/// }
///
/// rgi::export!(ByTenant: dispatcher);
/// ```
pub trait Dispatcher: Create {
    /// The groups for this request; called for every request the directive covers, from many
    /// threads at once.
    fn dispatch(&self, req: &AuthRequest<'_>) -> Result<Dispatch, Error>;
}
