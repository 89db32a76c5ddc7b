//! Server-side sessions (feature `sessions`), kept by mod_rgi in Apache's session cache
//! (`RGISessionCache`): shared by every process of one Apache, or by several Apaches through
//! Redis or memcache.
//!
//! The browser holds only a signed cookie naming the session: an id of 256 bits from the
//! operating system's random source, signed with HMAC-SHA256 and the configured secret. A cookie
//! that is tampered with, unknown to the store or expired gives a fresh session, never an error.
//!
//! While a [`Session`] is alive its request holds the host's lock for that session, so two
//! requests of one session on one host run their load–modify–save one after the other and
//! neither loses the other's writes. Across hosts sharing Redis nothing excludes them: the last
//! save wins (route a session's requests to one host where that matters).
//!
//! ```no_run
//! use rgi::session::SessionConfig;
//!
//! struct Counter { sessions: SessionConfig }
//!
//! impl rgi::Create for Counter {
//!     fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
//!         // RGIOption session.secret …, and optionally session.timeout, session.cookie-name, …
//!         Ok(Counter { sessions: SessionConfig::from_options(|name| ctx.option(name))? })
//!     }
//! }
//!
//! impl rgi::App for Counter {
//!     fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
//!         let mut session = self.sessions.load(&req)?;
//!         let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!         session.set("visits", &visits)?;
//!         session.save()?;
//!         Ok(rgi::Response::text(format!("visit {visits}")).with_session(&session))
//!     }
//! }
//! # rgi::export!(Counter);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::abi::SESSION_MAX_RECORD;
use crate::cookies::{Cookie, SameSite, SecretError, Signer};
use crate::error::HostError;
use crate::host::Host;
use crate::request::Request;
use crate::response::Response;

/// Why a session operation failed. Bad cookies are not errors (they give a fresh session).
///
/// ```
/// let e = rgi::session::SessionError::TooLarge(40_000);
/// assert!(e.to_string().contains("40000"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The host has no session store: mod_rgi older than ABI 1.2, or no session cache
    /// configured (the error log says which).
    #[error("sessions are not available from this host (mod_rgi with ABI 1.2 and a session cache are needed)")]
    Unavailable,
    /// The host's store failed (details in the error log).
    #[error("the session store failed: {0}")]
    Store(HostError),
    /// The saved session would exceed the store's limit.
    #[error("the session is {0} bytes when saved; the store takes at most {max}", max = SESSION_MAX_RECORD)]
    TooLarge(usize),
    /// A value could not be converted to or from its stored form.
    #[error("a session value could not be converted: {0}")]
    Value(#[from] serde_json::Error),
    /// The secret is unusable.
    #[error("session secret: {0}")]
    Secret(#[from] SecretError),
    /// A configuration option has a bad value.
    #[error("option {name}: {problem}")]
    Option {
        /// The option's name.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl From<HostError> for SessionError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Unsupported => SessionError::Unavailable,
            HostError::TooLarge => SessionError::TooLarge(SESSION_MAX_RECORD + 1),
            other => SessionError::Store(other),
        }
    }
}

/// How sessions are kept: the secret, the timeout and the cookie's attributes.
///
/// Build it once (in [`Create::create`](crate::Create)) and load sessions with it per request.
///
/// ```
/// use std::time::Duration;
/// use rgi::cookies::SameSite;
///
/// let config = rgi::session::SessionConfig::new("0123456789abcdef0123456789abcdef")?
///     .timeout(Duration::from_secs(3600))
///     .cookie_name("shop_session")
///     .cookie_path("/shop")
///     .same_site(SameSite::Strict)
///     .secure(true);
/// assert_eq!(config.get_timeout(), Duration::from_secs(3600));
/// # Ok::<(), rgi::session::SessionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionConfig {
    signer: Signer,
    timeout: Duration,
    cookie_name: String,
    cookie_path: String,
    cookie_domain: Option<String>,
    secure: Option<bool>,
    http_only: bool,
    same_site: SameSite,
}

impl SessionConfig {
    /// The default timeout: 30 minutes after the last save.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    /// The default cookie name.
    pub const DEFAULT_COOKIE_NAME: &'static str = "rgi_session";

    /// A configuration with `secret` (at least 16 bytes; use 32 random ones, the same on every
    /// host sharing the sessions) and the defaults: 30 minutes, cookie `rgi_session` on path
    /// `/`, HttpOnly, SameSite=Lax, Secure when the request came over HTTPS.
    ///
    /// ```
    /// let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// # let _ = config;
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SessionError> {
        Ok(SessionConfig {
            signer: Signer::new(secret)?,
            timeout: Self::DEFAULT_TIMEOUT,
            cookie_name: Self::DEFAULT_COOKIE_NAME.into(),
            cookie_path: "/".into(),
            cookie_domain: None,
            secure: None,
            http_only: true,
            same_site: SameSite::Lax,
        })
    }

    /// A configuration from options (`RGIOption`s, through `lookup`):
    ///
    /// | option | value | default |
    /// |---|---|---|
    /// | `session.secret` | at least 16 bytes | required |
    /// | `session.timeout` | seconds | 1800 |
    /// | `session.cookie-name` | a cookie name | `rgi_session` |
    /// | `session.cookie-path` | a path | `/` |
    /// | `session.cookie-domain` | a domain | none (this host) |
    /// | `session.cookie-secure` | `On`/`Off` | On over HTTPS |
    /// | `session.cookie-httponly` | `On`/`Off` | On |
    /// | `session.cookie-samesite` | `Strict`/`Lax`/`None` | `Lax` |
    ///
    /// ```
    /// let options = [("session.secret", "0123456789abcdef"), ("session.timeout", "60")];
    /// let lookup = |name: &str| options.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    /// let config = rgi::session::SessionConfig::from_options(lookup)?;
    /// assert_eq!(config.get_timeout().as_secs(), 60);
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn from_options<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Self, SessionError> {
        let secret = lookup("session.secret")
            .ok_or(SessionError::Option { name: "session.secret", problem: "is required".into() })?;
        let mut config = Self::new(secret)?;
        if let Some(v) = lookup("session.timeout") {
            let secs = v.trim().parse::<u32>().ok().filter(|&s| s > 0).ok_or_else(|| SessionError::Option {
                name: "session.timeout",
                problem: format!("'{v}' is not a number of seconds above 0"),
            })?;
            config.timeout = Duration::from_secs(secs.into());
        }
        if let Some(v) = lookup("session.cookie-name") {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
                return Err(SessionError::Option {
                    name: "session.cookie-name",
                    problem: format!("'{v}' is not a cookie name"),
                });
            }
            config.cookie_name = v.into();
        }
        if let Some(v) = lookup("session.cookie-path") {
            config.cookie_path = v.into();
        }
        config.cookie_domain = lookup("session.cookie-domain").map(Into::into);
        let flag = |name: &'static str| -> Result<Option<bool>, SessionError> {
            lookup(name)
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    "on" | "true" | "1" => Ok(true),
                    "off" | "false" | "0" => Ok(false),
                    _ => Err(SessionError::Option { name, problem: format!("'{v}' is not On or Off") }),
                })
                .transpose()
        };
        config.secure = flag("session.cookie-secure")?;
        config.http_only = flag("session.cookie-httponly")?.unwrap_or(true);
        if let Some(v) = lookup("session.cookie-samesite") {
            config.same_site = match v.to_ascii_lowercase().as_str() {
                "strict" => SameSite::Strict,
                "lax" => SameSite::Lax,
                "none" => SameSite::None,
                _ => {
                    return Err(SessionError::Option {
                        name: "session.cookie-samesite",
                        problem: format!("'{v}' is not Strict, Lax or None"),
                    });
                }
            };
        }
        Ok(config)
    }

    /// Sets how long a session lives after its last save (rounded up to whole seconds).
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.timeout(std::time::Duration::from_secs(600));
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_secs(1));
        self
    }

    /// How long a session lives after its last save.
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// assert_eq!(config.get_timeout().as_secs(), 1800);
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the cookie's name.
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.cookie_name("sid");
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Sets the cookie's `Path`.
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.cookie_path("/app");
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie_path = path.into();
        self
    }

    /// Sets the cookie's `Domain` (by default the cookie goes back to this host only).
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.cookie_domain("example.org");
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// Sets `Secure` on or off (by default: on when the request came over HTTPS).
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.secure(true);
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = Some(secure);
        self
    }

    /// Sets `HttpOnly` (default on: scripts in the page cannot read the cookie).
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.http_only(true);
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets `SameSite` (default `Lax`).
    ///
    /// ```
    /// # let config = rgi::session::SessionConfig::new("0123456789abcdef")?;
    /// let config = config.same_site(rgi::cookies::SameSite::Strict);
    /// # Ok::<(), rgi::session::SessionError>(())
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The session of `req`: the stored one its cookie names, or a new one (tampered, unknown or
    /// expired cookies give a new one). Holds the session's lock until the session is dropped.
    ///
    /// ```no_run
    /// # fn f<'r>(config: &rgi::session::SessionConfig, req: rgi::Request<'r>) -> Result<(), rgi::Error> {
    /// let session = config.load(&req)?;
    /// if session.is_new() { /* first visit */ }
    /// # Ok(()) }
    /// ```
    pub fn load<'s, 'r: 's>(&'s self, req: &Request<'r>) -> Result<Session<'s>, SessionError> {
        let host: Host<'s> = req.host();
        let secure = self.secure.unwrap_or_else(|| is_https(req));
        let candidates = req
            .cookies()
            .filter(|c| c.name() == self.cookie_name)
            .filter_map(|c| c.value_raw())
            .filter_map(|v| self.signer.verify(&self.cookie_name, v.trim_matches('"')))
            .filter(|id| is_session_id(id));
        for id in candidates {
            host.session_lock(id)?;
            match self.stored(host, id) {
                Ok(Some(record)) => {
                    return Ok(Session::existing(self, host, id.to_string(), record, secure));
                }
                Ok(None) => {
                    host.session_unlock(id)?;
                    host.log(
                        crate::abi::level::INFO,
                        "rgi: the session cookie names a session the store no longer has (expired, \
                         forgotten by a full cache, or lost in a restart): starting a new session",
                    );
                }
                Err(e) => {
                    let _ = host.session_unlock(id);
                    return Err(e);
                }
            }
        }
        Session::fresh(self, host, secure)
    }

    /// The live record stored under `id`, or `None` (absent, unreadable or expired).
    fn stored(&self, host: Host<'_>, id: &str) -> Result<Option<Record>, SessionError> {
        let Some(bytes) = host.session_get(id)? else { return Ok(None) };
        let Some(record) = Record::decode(&bytes) else { return Ok(None) };
        let expired = now_secs().saturating_sub(record.accessed) > self.timeout.as_secs();
        Ok((!expired).then_some(record))
    }
}

fn is_https(req: &Request<'_>) -> bool {
    let env = req.environ();
    env.get("HTTPS").is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1")
        || env.get("rgi.url_scheme").is_some_and(|s| s == "https")
        || env.get("REQUEST_SCHEME").is_some_and(|s| s == "https")
}

/// Length of an id: 32 random bytes, base64url without padding.
const ID_LEN: usize = 43;

fn is_session_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_id() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SessionError::Store(HostError::Io))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What is stored: times in seconds since the epoch, and the values.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    created: u64,
    accessed: u64,
    values: Map<String, Value>,
}

impl Record {
    fn new() -> Self {
        let now = now_secs();
        Record { created: now, accessed: now, values: Map::new() }
    }

    fn encode(&self) -> Result<Vec<u8>, SessionError> {
        let doc =
            serde_json::json!({ "v": 1, "created": self.created, "accessed": self.accessed, "values": self.values });
        Ok(serde_json::to_vec(&doc)?)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let Value::Object(mut doc) = serde_json::from_slice(bytes).ok()? else { return None };
        if doc.get("v")?.as_u64()? != 1 {
            return None;
        }
        let Value::Object(values) = doc.remove("values")? else { return None };
        Some(Record { created: doc.get("created")?.as_u64()?, accessed: doc.get("accessed")?.as_u64()?, values })
    }
}

/// What the response must say about the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieChange {
    None,
    Set,
    Remove,
}

/// One visitor's session, for the length of a request.
///
/// Values are anything serde can serialise, stored as JSON. Changes reach the store on
/// [`save`](Self::save); the response carries the cookie with
/// [`Response::with_session`]. Dropping the session releases its lock.
pub struct Session<'s> {
    config: &'s SessionConfig,
    host: Host<'s>,
    id: String,
    new: bool,
    locked: bool,
    secure: bool,
    /// When the session was last saved before this request (`None` for a new one).
    previous_access: Option<u64>,
    record: Record,
    cookie: CookieChange,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("new", &self.new).field("values", &self.record.values).finish_non_exhaustive()
    }
}

impl<'s> Session<'s> {
    fn existing(config: &'s SessionConfig, host: Host<'s>, id: String, record: Record, secure: bool) -> Self {
        let previous_access = Some(record.accessed);
        Session {
            config,
            host,
            id,
            new: false,
            locked: true,
            secure,
            previous_access,
            record,
            cookie: CookieChange::None,
        }
    }

    fn fresh(config: &'s SessionConfig, host: Host<'s>, secure: bool) -> Result<Self, SessionError> {
        // A new id is known to nobody else yet: no lock needed.
        Ok(Session {
            config,
            host,
            id: new_id()?,
            new: true,
            locked: false,
            secure,
            previous_access: None,
            record: Record::new(),
            cookie: CookieChange::None,
        })
    }

    /// The session id (256 random bits, base64url). Not secret from the visitor, but never
    /// trust an id that did not come from [`SessionConfig::load`].
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) { let _ = s.id(); }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the session was created by this request (no valid cookie named a live session).
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) {
    /// let greeting = if s.is_new() { "Hello, for the first time" } else { "Hello again" };
    /// # }
    /// ```
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// When the session was created.
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) { let _ = s.created(); }
    /// ```
    pub fn created(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.record.created)
    }

    /// When the session was last saved before this request (`None` for a new session).
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) { let _ = s.last_accessed(); }
    /// ```
    pub fn last_accessed(&self) -> Option<SystemTime> {
        self.previous_access.map(|t| UNIX_EPOCH + Duration::from_secs(t))
    }

    /// The session's timeout.
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) { assert!(s.timeout().as_secs() > 0); }
    /// ```
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// The value stored under `key`, converted to `T`; `None` when there is none.
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) -> Result<(), rgi::session::SessionError> {
    /// let name: Option<String> = s.get("name")?;
    /// # Ok(()) }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.record.values.get(key).map(|v| T::deserialize(v).map_err(SessionError::from)).transpose()
    }

    /// Whether a value is stored under `key`.
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) { let logged_in = s.contains("user"); }
    /// ```
    pub fn contains(&self, key: &str) -> bool {
        self.record.values.contains_key(key)
    }

    /// The keys of the stored values.
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) { for key in s.keys() { println!("{key}"); } }
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.record.values.keys().map(String::as_str)
    }

    /// Stores `value` under `key` (until [`save`](Self::save), only in this request).
    ///
    /// ```no_run
    /// # fn f(s: &mut rgi::session::Session<'_>) -> Result<(), rgi::session::SessionError> {
    /// s.set("cart", &vec!["apple", "pear"])?;
    /// # Ok(()) }
    /// ```
    pub fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), SessionError> {
        self.record.values.insert(key.to_string(), serde_json::to_value(value)?);
        Ok(())
    }

    /// Removes the value under `key`; returns whether there was one.
    ///
    /// ```no_run
    /// # fn f(s: &mut rgi::session::Session<'_>) { s.remove("cart"); }
    /// ```
    pub fn remove(&mut self, key: &str) -> bool {
        self.record.values.remove(key).is_some()
    }

    /// Writes the session to the store, restarting its timeout. A new session gets its cookie
    /// from here on ([`Response::with_session`]).
    ///
    /// ```no_run
    /// # fn f(s: &mut rgi::session::Session<'_>) -> Result<(), rgi::session::SessionError> {
    /// s.set("visits", &1)?;
    /// s.save()?;
    /// # Ok(()) }
    /// ```
    pub fn save(&mut self) -> Result<(), SessionError> {
        let mut record = self.record.clone();
        record.accessed = now_secs();
        let data = record.encode()?;
        if data.len() > SESSION_MAX_RECORD {
            return Err(SessionError::TooLarge(data.len()));
        }
        let ttl = u32::try_from(self.config.timeout.as_secs()).unwrap_or(u32::MAX).max(1);
        self.host.session_put(&self.id, &data, ttl).map_err(|e| match e {
            HostError::TooLarge => SessionError::TooLarge(data.len()),
            other => other.into(),
        })?;
        self.record = record;
        if self.new || self.cookie == CookieChange::Remove {
            self.cookie = CookieChange::Set;
        }
        Ok(())
    }

    /// Ends the session: removes it from the store and has the response delete the cookie. The
    /// values are cleared and the session gets a new id, so saving it again starts a new one (do
    /// this at login too, so an id given out before cannot follow the user in).
    ///
    /// ```no_run
    /// # fn f(s: &mut rgi::session::Session<'_>) -> Result<(), rgi::session::SessionError> {
    /// s.invalidate()?; // log out
    /// # Ok(()) }
    /// ```
    pub fn invalidate(&mut self) -> Result<(), SessionError> {
        if !self.new {
            self.host.session_remove(&self.id)?;
        }
        self.release();
        self.id = new_id()?;
        self.new = true;
        self.previous_access = None;
        self.record = Record::new();
        self.cookie = CookieChange::Remove;
        Ok(())
    }

    /// The `Set-Cookie` this response must carry, if any: the session's cookie after a new
    /// session was saved, a deleting one after [`invalidate`](Self::invalidate).
    ///
    /// ```no_run
    /// # fn f(s: &rgi::session::Session<'_>) {
    /// if let Some(cookie) = s.cookie() { println!("Set-Cookie: {cookie}"); }
    /// # }
    /// ```
    pub fn cookie(&self) -> Option<Cookie<'static>> {
        let config = self.config;
        let value = match self.cookie {
            CookieChange::None => return None,
            CookieChange::Set => config.signer.sign(&config.cookie_name, &self.id),
            CookieChange::Remove => String::new(),
        };
        let mut builder = Cookie::build((config.cookie_name.clone(), value))
            .path(config.cookie_path.clone())
            .secure(self.secure)
            .http_only(config.http_only)
            .same_site(config.same_site);
        if let Some(domain) = &config.cookie_domain {
            builder = builder.domain(domain.clone());
        }
        let mut cookie = builder.build();
        if self.cookie == CookieChange::Remove {
            cookie.make_removal();
        }
        Some(cookie)
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.locked)
            && let Err(e) = self.host.session_unlock(&self.id)
        {
            self.host.log(crate::abi::level::ERROR, &format!("rgi: releasing the session lock failed: {e}"));
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<'r> Response<'r> {
    /// Adds the session's `Set-Cookie` header when it needs one (see [`Session::cookie`]).
    ///
    /// ```no_run
    /// # fn f<'r>(session: &rgi::session::Session<'_>) -> rgi::Response<'r> {
    /// rgi::Response::redirect("/").with_session(session)
    /// # }
    /// ```
    pub fn with_session(self, session: &Session<'_>) -> Self {
        match session.cookie() {
            Some(cookie) => self.with_cookie(cookie),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut r = Record::new();
        r.values.insert("name".into(), Value::from("ada"));
        r.values.insert("visits".into(), Value::from(3));
        assert_eq!(Record::decode(&r.encode().unwrap()), Some(r));
    }

    #[test]
    fn unreadable_records_are_no_records() {
        for bad in [&b""[..], b"null", b"{}", b"{\"v\":2,\"created\":1,\"accessed\":1,\"values\":{}}", b"\xff\xfe"] {
            assert_eq!(Record::decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(Record::decode(b"{\"v\":1,\"created\":1,\"accessed\":2,\"values\":{}}").is_some());
    }

    #[test]
    fn ids_are_256_random_bits() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_ne!(a, b);
        assert!(is_session_id(&a) && is_session_id(&b));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(!is_session_id("short"));
        assert!(!is_session_id(&format!("{}!", &a[..42])));
    }

    #[test]
    fn options_configure_everything_and_bad_values_are_named() {
        let opts = [
            ("session.secret", "0123456789abcdef"),
            ("session.timeout", "90"),
            ("session.cookie-name", "sid"),
            ("session.cookie-path", "/app"),
            ("session.cookie-domain", "example.org"),
            ("session.cookie-secure", "On"),
            ("session.cookie-httponly", "off"),
            ("session.cookie-samesite", "Strict"),
        ];
        let c = SessionConfig::from_options(|n| opts.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(90));
        assert_eq!((c.cookie_name.as_str(), c.cookie_path.as_str()), ("sid", "/app"));
        assert_eq!(c.cookie_domain.as_deref(), Some("example.org"));
        assert_eq!((c.secure, c.http_only, c.same_site), (Some(true), false, SameSite::Strict));

        let only = |k: &'static str, v: &'static str| {
            move |n: &str| match n {
                "session.secret" => Some("0123456789abcdef"),
                _ if n == k => Some(v),
                _ => None,
            }
        };
        for (k, v) in [
            ("session.timeout", "0"),
            ("session.timeout", "soon"),
            ("session.cookie-name", "a b"),
            ("session.cookie-secure", "maybe"),
            ("session.cookie-samesite", "loose"),
        ] {
            let err = SessionConfig::from_options(only(k, v)).unwrap_err().to_string();
            assert!(err.contains(k) && err.contains(v), "{err}");
        }
        assert!(SessionConfig::from_options(|_| None).unwrap_err().to_string().contains("session.secret"));
        assert!(matches!(SessionConfig::from_options(only("x", "y")), Ok(c) if c.http_only && c.secure.is_none()));
    }
}
