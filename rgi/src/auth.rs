//! Traits for Rust code acting as Apache's authentication and authorisation.
//!
//! Providers (the mod_wsgi way) answer questions Apache asks while it runs its own
//! authentication modules:
//!
//! | trait | directive | Apache uses it as |
//! |---|---|---|
//! | [`UserProvider`] | `RGIAuthUserScript LIBRARY` | `AuthBasicProvider rgi`, `AuthDigestProvider rgi` |
//! | [`GroupProvider`] | `RGIAuthGroupScript LIBRARY` | `Require rgi-group NAME...` |
//! | [`AccessChecker`] | `RGIAccessScript LIBRARY` | a host access check, before authentication |
//!
//! Phase handlers (the mod_python way) run a phase themselves:
//!
//! | trait | directive | phase |
//! |---|---|---|
//! | [`AuthenHandler`] | `RGIAuthenHandler LIBRARY` | check_user_id: who is the user? |
//! | [`AuthzHandler`] | `RGIAuthzHandler LIBRARY` | auth_checker: may this user have it? |
//!
//! Export a type for its role with [`export!`](crate::export), e.g.
//! `rgi::export!(Users: user_provider)`; one type may play several roles
//! (`rgi::export!(Directory: user_provider, group_provider)`). `apache2 -t` refuses a library
//! named by a directive whose role it does not export.
//!
//! Every callback gets an [`AuthRequest`]: the request's environ without its body (so
//! `HTTP_AUTHORIZATION` is there whatever `RGIPassAuthorization` says), its `RGIOption`s and the
//! error log. Callbacks run in Apache's own child processes (embedded), from many threads at
//! once, even when the app itself runs in a daemon process group.
//!
//! **Fail closed**: an `Err` or a panic in any callback makes Apache answer 500 and logs why
//! with the request id; it never grants.

use std::cell::OnceCell;

use crate::abi::level;
use crate::app::Create;
use crate::environ::Environ;
use crate::error::{Error, HostError};
use crate::host::Host;

/// The request as an auth callback sees it.
///
/// ```no_run
/// fn is_admin(req: &rgi::auth::AuthRequest<'_>) -> bool {
///     req.environ().get("REMOTE_USER") == Some("admin")
/// }
/// ```
pub struct AuthRequest<'r> {
    host: Host<'r>,
    environ: OnceCell<Environ<'r>>,
}

impl<'r> AuthRequest<'r> {
    pub(crate) fn new(host: Host<'r>) -> Self {
        AuthRequest { host, environ: OnceCell::new() }
    }

    /// The environ, without the body: the CGI variables, `HTTP_*` headers and `rgi.*` keys as an
    /// app gets them, except that `HTTP_AUTHORIZATION` is always present when the client sent
    /// one. Built on first use.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { let _ = req.environ().get("REMOTE_ADDR"); }
    /// ```
    pub fn environ(&self) -> &Environ<'r> {
        self.environ.get_or_init(|| Environ::new(self.host.environ()))
    }

    /// A request header by its HTTP name.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { let _ = req.header("Authorization"); }
    /// ```
    pub fn header(&self, name: &str) -> Option<&'r str> {
        self.environ().header(name)
    }

    /// The user Apache has authenticated (`REMOTE_USER`), if any: set for
    /// [`GroupProvider`]s and [`AuthzHandler`]s, absent before authentication.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { let _ = req.user(); }
    /// ```
    pub fn user(&self) -> Option<&'r str> {
        self.environ().get("REMOTE_USER")
    }

    /// The `RGIOption NAME VALUE` in effect for this request (its `<Location>`, `<Directory>` or
    /// `<AuthnProviderAlias>`).
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { let _ = req.option("users.file"); }
    /// ```
    pub fn option(&self, name: &str) -> Option<&'r str> {
        self.host.option(name)
    }

    /// Logs `msg` to Apache's error log at warning level, tagged with this request.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::auth::AuthRequest<'_>) { req.log_warn("token expired"); }
    /// ```
    pub fn log_warn(&self, msg: &str) {
        self.host.log(level::WARN, msg);
    }

    /// Adds a header to the response Apache sends, also with an error status (a 401 or 403).
    /// Refused (and logged) when the name is not a token or the value holds CR, LF or NUL.
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

/// A password check's answer.
///
/// ```
/// let answer = if "secret" == "secret" { rgi::auth::PasswordCheck::Granted } else { rgi::auth::PasswordCheck::Denied };
/// assert_eq!(answer, rgi::auth::PasswordCheck::Granted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is right.
    Granted,
    /// The password is right and the user is to be known under another name (`REMOTE_USER`,
    /// the access log's `%u`), e.g. the canonical spelling of a name typed in another case.
    GrantedAs(String),
    /// The password is wrong: 401, and no other provider is asked.
    Denied,
    /// The user is unknown here: Apache asks the next provider of `AuthBasicProvider` (401 when
    /// none knows the user), exactly as with mod_authn_file.
    UserNotFound,
}

/// An authentication provider, registered with Apache as `rgi` (`AuthBasicProvider rgi`,
/// `AuthDigestProvider rgi`, `<AuthnProviderAlias rgi NAME>`) by
/// `RGIAuthUserScript LIBRARY [application-group=NAME]`.
///
/// Apache does the HTTP side (the challenge, decoding the credentials, Digest's nonces) and
/// asks the provider only about the user. A user name or password that is not UTF-8 never
/// reaches the provider: such a name counts as not found, such a password as wrong.
///
/// ```
/// #[derive(Default)]
/// struct OneUser;
///
/// impl rgi::auth::UserProvider for OneUser {
///     fn check_password(&self, _req: &rgi::auth::AuthRequest<'_>, user: &str, password: &str)
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
    /// Checks `password` for `user` (Basic authentication). Compare secrets in constant time
    /// (a password-hashing crate's `verify` does).
    fn check_password(&self, req: &AuthRequest<'_>, user: &str, password: &str) -> Result<PasswordCheck, Error>;

    /// The Digest hash MD5(`user:realm:password`) of `user` (the binary form of the hex hash in
    /// an `htdigest` file), or `None` when the user is unknown here. The default knows no users,
    /// so Digest falls through to the next provider.
    ///
    /// ```
    /// # #[derive(Default)] struct P;
    /// # impl rgi::auth::UserProvider for P {
    /// # fn check_password(&self, _: &rgi::auth::AuthRequest<'_>, _: &str, _: &str)
    /// #     -> Result<rgi::auth::PasswordCheck, rgi::Error> { Ok(rgi::auth::PasswordCheck::UserNotFound) }
    /// fn get_realm_hash(&self, _req: &rgi::auth::AuthRequest<'_>, user: &str, realm: &str)
    ///     -> Result<Option<[u8; 16]>, rgi::Error> {
    ///     // "alice:lab:secret", hashed once with MD5 when the account was made.
    ///     const ALICE: [u8; 16] = *b"\xa4\xb5\xbf\x6c\x08\xd4\xc0\x82\x2a\x5c\xdf\x05\x09\x6d\xf9\x74";
    ///     Ok((user == "alice" && realm == "lab").then_some(ALICE))
    /// }
    /// # }
    /// ```
    fn get_realm_hash(&self, req: &AuthRequest<'_>, user: &str, realm: &str) -> Result<Option<[u8; 16]>, Error> {
        let _ = (req, user, realm);
        Ok(None)
    }
}

/// A group provider for `Require rgi-group NAME...`, registered by
/// `RGIAuthGroupScript LIBRARY [application-group=NAME]`.
///
/// The requirement is met when one of the user's groups is one of the names (compared exactly).
/// It works inside `<RequireAll>`, `<RequireAny>` and `<RequireNone>` like any `Require`.
///
/// ```
/// #[derive(Default)]
/// struct Admins;
///
/// impl rgi::auth::GroupProvider for Admins {
///     fn groups_for_user(&self, _req: &rgi::auth::AuthRequest<'_>, user: &str) -> Result<Vec<String>, rgi::Error> {
///         Ok(if user == "alice" { vec!["admins".into()] } else { vec![] })
///     }
/// }
///
/// rgi::export!(Admins: group_provider);
/// ```
pub trait GroupProvider: Create {
    /// The groups `user` belongs to.
    fn groups_for_user(&self, req: &AuthRequest<'_>, user: &str) -> Result<Vec<String>, Error>;
}

/// An access or authorisation decision.
///
/// ```
/// let from_lan = "10.0.0.7".starts_with("10.");
/// let decision = if from_lan { rgi::auth::Decision::Granted } else { rgi::auth::Decision::NoOpinion };
/// assert_eq!(decision, rgi::auth::Decision::Granted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Granted,
    /// Refuse it (403).
    Denied,
    /// Leave the decision to the rest of Apache's configuration.
    NoOpinion,
}

/// A host access check (`RGIAccessScript LIBRARY [application-group=NAME]`), run in Apache's
/// access phase before any authentication.
///
/// `Denied` answers 403 whatever else is configured. `Granted` and `NoOpinion` let the request
/// go on to Apache's `Require` rules (which still apply); they differ only under the legacy
/// `Satisfy Any`, where `Granted` skips authentication.
///
/// ```
/// #[derive(Default)]
/// struct LocalOnly;
///
/// impl rgi::auth::AccessChecker for LocalOnly {
///     fn allow_access(&self, _req: &rgi::auth::AuthRequest<'_>, host: &str) -> Result<rgi::auth::Decision, rgi::Error> {
///         Ok(if host == "127.0.0.1" { rgi::auth::Decision::Granted } else { rgi::auth::Decision::Denied })
///     }
/// }
///
/// rgi::export!(LocalOnly: access_checker);
/// ```
pub trait AccessChecker: Create {
    /// Decides on the client `host`: its IP address, or its name when `HostnameLookups` is on.
    fn allow_access(&self, req: &AuthRequest<'_>, host: &str) -> Result<Decision, Error>;
}

/// The answer of an [`AuthenHandler`].
///
/// ```
/// let answer = rgi::auth::Authentication::Authenticated { user: "ada".into(), auth_type: "Bearer".into() };
/// assert!(matches!(answer, rgi::auth::Authentication::Authenticated { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The user is `user`, authenticated by scheme `auth_type`.
    Authenticated {
        /// The user name: `REMOTE_USER` for the app, `%u` in the access log. Must be non-empty
        /// and free of control characters (else 500).
        user: String,
        /// The scheme, e.g. `"Bearer"`: `AUTH_TYPE` for the app.
        auth_type: String,
    },
    /// Not for this handler: Apache's other authentication modules decide (e.g. `AuthType
    /// Basic` with its providers). With none configured, Apache answers 500.
    Declined,
    /// 401 Unauthorized, with `challenge` as the `WWW-Authenticate` header, e.g.
    /// `Bearer realm="api"`.
    Unauthorized {
        /// The `WWW-Authenticate` value.
        challenge: String,
    },
    /// 403 Forbidden.
    Forbidden,
}

/// Runs the check_user_id phase (`RGIAuthenHandler LIBRARY [application-group=NAME]`), like
/// mod_python's `PythonAuthenHandler`: for custom schemes such as Bearer tokens or API keys.
///
/// Apache runs it only for requests whose `Require` needs a user (e.g. `Require valid-user`),
/// before its own Basic and Digest modules. No `AuthType` is needed.
///
/// | answer | Apache |
/// |---|---|
/// | `Authenticated { user, auth_type }` | the user is set; authorisation (`Require`) follows |
/// | `Declined` | asks the next authentication module |
/// | `Unauthorized { challenge }` | 401 with `WWW-Authenticate: challenge` |
/// | `Forbidden` | 403 |
/// | `Err`, panic | 500, logged with the request id |
///
/// ```
/// #[derive(Default)]
/// struct ApiKey;
///
/// impl rgi::auth::AuthenHandler for ApiKey {
///     fn authenticate(&self, req: &rgi::auth::AuthRequest<'_>) -> Result<rgi::auth::Authentication, rgi::Error> {
///         use rgi::auth::Authentication::*;
///         Ok(match req.header("X-Api-Key") {
///             Some(key) if Some(key) == req.option("api.key") => {
///                 Authenticated { user: "robot".into(), auth_type: "ApiKey".into() }
///             }
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

/// Makes the authorisation decision (`RGIAuthzHandler LIBRARY [application-group=NAME]`) for the
/// user Apache authenticated ([`AuthRequest::user`]), like mod_python's `PythonAuthzHandler`.
///
/// Apache runs it after authentication, so only for requests whose `Require` needs a user (e.g.
/// `Require valid-user`). `Granted` lets the request through without Apache's user-based
/// `Require` rules, `Denied` answers 403, `NoOpinion` leaves the decision to those rules.
///
/// ```
/// #[derive(Default)]
/// struct OnlyAlice;
///
/// impl rgi::auth::AuthzHandler for OnlyAlice {
///     fn authorize(&self, req: &rgi::auth::AuthRequest<'_>) -> Result<rgi::auth::Decision, rgi::Error> {
///         Ok(match req.user() {
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
