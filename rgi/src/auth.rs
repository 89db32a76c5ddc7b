//! Traits for Rust code acting as Apache's authentication and authorisation.
//!
//! Providers (the mod_wsgi way) answer Apache's questions: [`UserProvider`] behind
//! `AuthBasicProvider rgi` / `AuthDigestProvider rgi`, [`GroupProvider`] behind
//! `Require rgi-group`, [`AccessChecker`] for host access. Phase handlers (the mod_python way) run
//! the phase themselves: [`AuthenHandler`] as check_user_id, [`AuthzHandler`] as the authorisation
//! decision.
//!
//! Every callback gets the request's environ without its body. A panic or an `Err` in any of them
//! denies the request with a 500 (logged with the request id); it never grants.

use crate::app::Create;
use crate::environ::Environ;
use crate::error::{Error, HostError};
use crate::host::Host;

/// A password check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is right.
    Granted,
    /// The password is right and the user is to be known under another name (`REMOTE_USER`).
    GrantedAs(String),
    /// The password is wrong.
    Denied,
    /// The user is unknown here; Apache asks the next provider in `AuthBasicProvider`.
    UserNotFound,
}

/// An authentication provider, registered as `rgi` (`AuthBasicProvider rgi`,
/// `AuthDigestProvider rgi`) by `RGIAuthUserScript`.
///
/// ```
/// #[derive(Default)]
/// struct OneUser;
///
/// impl rgi::auth::UserProvider for OneUser {
///     fn check_password(&self, _env: &rgi::Environ<'_>, user: &str, password: &str)
///         -> Result<rgi::auth::PasswordCheck, rgi::Error> {
///         use rgi::auth::PasswordCheck::*;
///         Ok(match (user, password) {
///             ("alice", "secret") => Granted,
///             ("alice", _) => Denied,
///             _ => UserNotFound,
///         })
///     }
/// }
///
/// rgi::export!(OneUser: user_provider);
/// ```
pub trait UserProvider: Create {
    /// Checks `password` for `user` (Basic authentication).
    fn check_password(&self, env: &Environ<'_>, user: &str, password: &str) -> Result<PasswordCheck, Error>;

    /// The Digest hash MD5(`user:realm:password`) for `user`, or `None` when the user is unknown
    /// here. The default knows no users (Digest falls through to the next provider).
    fn get_realm_hash(&self, env: &Environ<'_>, user: &str, realm: &str) -> Result<Option<[u8; 16]>, Error> {
        let _ = (env, user, realm);
        Ok(None)
    }
}

/// A group provider for `Require rgi-group NAME...`, registered by `RGIAuthGroupScript`.
///
/// ```
/// #[derive(Default)]
/// struct Admins;
///
/// impl rgi::auth::GroupProvider for Admins {
///     fn groups_for_user(&self, _env: &rgi::Environ<'_>, user: &str) -> Result<Vec<String>, rgi::Error> {
///         Ok(if user == "alice" { vec!["admins".into()] } else { vec![] })
///     }
/// }
///
/// rgi::export!(Admins: group_provider);
/// ```
pub trait GroupProvider: Create {
    /// The groups `user` belongs to.
    fn groups_for_user(&self, env: &Environ<'_>, user: &str) -> Result<Vec<String>, Error>;
}

/// An access or authorisation decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Granted,
    /// Refuse it (403).
    Denied,
    /// Leave the decision to the rest of Apache's configuration.
    NoOpinion,
}

/// A host access check (`RGIAccessScript`), run before authentication.
///
/// ```
/// #[derive(Default)]
/// struct LocalOnly;
///
/// impl rgi::auth::AccessChecker for LocalOnly {
///     fn allow_access(&self, _env: &rgi::Environ<'_>, host: &str) -> Result<rgi::auth::Decision, rgi::Error> {
///         Ok(if host == "127.0.0.1" { rgi::auth::Decision::Granted } else { rgi::auth::Decision::Denied })
///     }
/// }
///
/// rgi::export!(LocalOnly: access_checker);
/// ```
pub trait AccessChecker: Create {
    /// Decides on the client `host` (its IP address, or name when `HostnameLookups` is on).
    fn allow_access(&self, env: &Environ<'_>, host: &str) -> Result<Decision, Error>;
}

/// The answer of an [`AuthenHandler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The user is `user`, authenticated by scheme `auth_type` (becomes `AUTH_TYPE`).
    Authenticated {
        /// The user name (becomes `REMOTE_USER` and the access log's `%u`).
        user: String,
        /// The scheme, e.g. `"Bearer"`.
        auth_type: String,
    },
    /// Not for this handler: Apache's other authentication modules decide.
    Declined,
    /// 401; `challenge` becomes the `WWW-Authenticate` header, e.g. `Bearer realm="api"`.
    Unauthorized {
        /// The `WWW-Authenticate` value.
        challenge: String,
    },
    /// 403.
    Forbidden,
}

/// The request as an auth phase handler sees it.
pub struct AuthRequest<'r> {
    host: Host<'r>,
    environ: Environ<'r>,
}

impl<'r> AuthRequest<'r> {
    pub(crate) fn new(host: Host<'r>) -> Self {
        AuthRequest { host, environ: Environ::new(host.environ()) }
    }

    /// The environ (without the body). `HTTP_AUTHORIZATION` is always present here when the
    /// client sent one, whatever `RGIPassAuthorization` says.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { let _ = req.environ().get("REMOTE_ADDR"); }
    /// ```
    pub fn environ(&self) -> &Environ<'r> {
        &self.environ
    }

    /// A request header by its HTTP name.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { let _ = req.header("Authorization"); }
    /// ```
    pub fn header(&self, name: &str) -> Option<&'r str> {
        self.environ.header(name)
    }

    /// Adds a header to the response Apache sends, also with an error status.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { req.add_response_header("X-Reason", "expired").ok(); }
    /// ```
    pub fn add_response_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.host.add_error_header(name, value)
    }

    pub(crate) fn host(&self) -> Host<'r> {
        self.host
    }
}

/// Runs the check_user_id phase (`RGIAuthenHandler`), like mod_python's `PythonAuthenHandler`.
///
/// Return [`Authentication::Authenticated`] to set the user, `Declined` to let Apache's other
/// modules (e.g. `AuthType Basic`) try, `Unauthorized` for a 401 with your own challenge, or
/// `Forbidden` for a 403.
///
/// ```
/// #[derive(Default)]
/// struct ApiKey;
///
/// impl rgi::auth::AuthenHandler for ApiKey {
///     fn authenticate(&self, req: &rgi::auth::AuthRequest<'_>) -> Result<rgi::auth::Authentication, rgi::Error> {
///         use rgi::auth::Authentication::*;
///         Ok(match req.header("X-Api-Key") {
///             Some("k1") => Authenticated { user: "robot".into(), auth_type: "ApiKey".into() },
///             _ => Unauthorized { challenge: "ApiKey".into() },
///         })
///     }
/// }
///
/// rgi::export!(ApiKey: authen_handler);
/// ```
pub trait AuthenHandler: Create {
    /// Identifies the user of the request.
    fn authenticate(&self, req: &AuthRequest<'_>) -> Result<Authentication, Error>;
}

/// Makes the authorisation decision (`RGIAuthzHandler`) for the user Apache authenticated
/// (`REMOTE_USER` in the environ).
///
/// ```
/// #[derive(Default)]
/// struct OnlyAlice;
///
/// impl rgi::auth::AuthzHandler for OnlyAlice {
///     fn authorize(&self, req: &rgi::auth::AuthRequest<'_>) -> Result<rgi::auth::Decision, rgi::Error> {
///         Ok(match req.environ().get("REMOTE_USER") {
///             Some("alice") => rgi::auth::Decision::Granted,
///             _ => rgi::auth::Decision::Denied,
///         })
///     }
/// }
///
/// rgi::export!(OnlyAlice: authz_handler);
/// ```
pub trait AuthzHandler: Create {
    /// Grants, denies (403) or leaves the decision to Apache.
    fn authorize(&self, req: &AuthRequest<'_>) -> Result<Decision, Error>;
}
