//! Cookies: read the request's, set them with every attribute, and sign them with a secret
//! (feature `cookies`).
//!
//! Parsing and formatting are the [`cookie`](https://docs.rs/cookie) crate's, re-exported here;
//! signatures are HMAC-SHA256, checked in constant time.
//!
//! ```
//! use rgi::cookies::{Cookie, SameSite, Signer};
//!
//! let signer = Signer::new("a secret of at least sixteen bytes")?;
//! let theme = Cookie::build(("theme", "dark")).path("/").http_only(true).same_site(SameSite::Lax).build();
//! let response = rgi::Response::text("ok").with_signed_cookie(theme, &signer);
//! assert!(response.header("Set-Cookie").unwrap().starts_with("theme=dark."));
//! # Ok::<(), rgi::cookies::SecretError>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};

pub use cookie::time;
pub use cookie::{Cookie, CookieBuilder, Expiration, SameSite};

use crate::request::Request;
use crate::response::Response;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Length of an encoded signature (32 bytes of HMAC-SHA256, base64url without padding).
const SIGNATURE_LEN: usize = 43;

/// A secret too short to sign with.
///
/// ```
/// assert!(rgi::cookies::Signer::new("short").is_err());
/// ```
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the secret has {0} bytes; at least {min} are needed (e.g. 32 random bytes: openssl rand -hex 32)", min = Signer::MIN_SECRET_LEN)]
pub struct SecretError(pub usize);

/// Signs cookie values with a secret and checks them.
///
/// A signed value is `VALUE.SIGNATURE`, the signature covering the cookie's name and value, so a
/// value cannot be moved to another cookie or altered without the secret.
///
/// ```
/// let signer = rgi::cookies::Signer::new("0123456789abcdef0123456789abcdef")?;
/// let signed = signer.sign("user", "alice");
/// assert_eq!(signer.verify("user", &signed), Some("alice"));
/// assert_eq!(signer.verify("admin", &signed), None); // another cookie's name
/// assert_eq!(signer.verify("user", &signed.replace("alice", "mallory")), None);
/// # Ok::<(), rgi::cookies::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    /// The shortest secret accepted, in bytes.
    pub const MIN_SECRET_LEN: usize = 16;

    /// A signer with `secret` (at least [`MIN_SECRET_LEN`](Self::MIN_SECRET_LEN) bytes; use 32
    /// random ones).
    ///
    /// ```
    /// let signer = rgi::cookies::Signer::new(b"0123456789abcdef")?;
    /// # let _ = signer;
    /// # Ok::<(), rgi::cookies::SecretError>(())
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        let secret = secret.as_ref();
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(SecretError(secret.len()));
        }
        // HMAC takes keys of any length.
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| SecretError(secret.len()))?;
        Ok(Signer { mac })
    }

    fn mac_of(&self, name: &str, value: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        // Length-prefixed, so (name, value) pairs cannot be confused with one another.
        mac.update(b"rgi-cookie-v1");
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
        mac
    }

    /// `value` signed for cookie `name`: `value.signature`.
    ///
    /// ```
    /// let signer = rgi::cookies::Signer::new("0123456789abcdef")?;
    /// assert!(signer.sign("n", "v").starts_with("v."));
    /// # Ok::<(), rgi::cookies::SecretError>(())
    /// ```
    pub fn sign(&self, name: &str, value: &str) -> String {
        let tag = self.mac_of(name, value).finalize().into_bytes();
        format!("{value}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The value of a signed cookie `name`, or `None` when the signature is missing or wrong.
    /// The comparison takes the same time wherever the signature differs.
    ///
    /// ```
    /// let signer = rgi::cookies::Signer::new("0123456789abcdef")?;
    /// assert_eq!(signer.verify("n", "v.not-a-signature"), None);
    /// # Ok::<(), rgi::cookies::SecretError>(())
    /// ```
    pub fn verify<'v>(&self, name: &str, signed: &'v str) -> Option<&'v str> {
        let (value, signature) = signed.rsplit_once('.')?;
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac_of(name, value).verify_slice(&tag).ok().map(|()| value)
    }

    /// `cookie` with its value signed.
    ///
    /// ```
    /// use rgi::cookies::{Cookie, Signer};
    /// let signer = Signer::new("0123456789abcdef")?;
    /// let c = signer.sign_cookie(Cookie::new("cart", "3"));
    /// assert_eq!(signer.verify("cart", c.value()), Some("3"));
    /// # Ok::<(), rgi::cookies::SecretError>(())
    /// ```
    pub fn sign_cookie<'c>(&self, mut cookie: Cookie<'c>) -> Cookie<'c> {
        let signed = self.sign(cookie.name(), cookie.value());
        cookie.set_value(signed);
        cookie
    }
}

/// The cookies in the value of a `Cookie` header; malformed ones are skipped.
///
/// ```
/// let cookies: Vec<_> = rgi::cookies::parse_header("theme=dark; lang=en, x").collect();
/// assert_eq!(cookies.len(), 2);
/// assert_eq!((cookies[1].name(), cookies[1].value()), ("lang", "en"));
/// ```
pub fn parse_header(header: &str) -> impl Iterator<Item = Cookie<'_>> + '_ {
    // Apache joins repeated Cookie headers with ", "; browsers send one, joined with "; ".
    header.split(';').flat_map(|part| part.split(", ")).filter_map(|part| Cookie::parse(part.trim()).ok())
}

impl<'r> Request<'r> {
    /// The request's cookies (from its `Cookie` headers); malformed ones are skipped.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// for cookie in req.cookies() {
    ///     println!("{} = {}", cookie.name(), cookie.value());
    /// }
    /// # }
    /// ```
    pub fn cookies(&self) -> impl Iterator<Item = Cookie<'r>> + 'r {
        parse_header(self.header("Cookie").unwrap_or(""))
    }

    /// The value of cookie `name` (the first one, when the browser sends several).
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>) {
    /// let theme = req.cookie("theme").unwrap_or("light");
    /// # }
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&'r str> {
        self.cookies().find(|c| c.name() == name).and_then(|c| c.value_raw()).map(|v| v.trim_matches('"'))
    }

    /// The value of signed cookie `name`, when one of that name carries a valid signature.
    ///
    /// ```no_run
    /// # fn f(req: &rgi::Request<'_>, signer: &rgi::cookies::Signer) {
    /// let user = req.signed_cookie("user", signer);
    /// # }
    /// ```
    pub fn signed_cookie(&self, name: &str, signer: &Signer) -> Option<&'r str> {
        self.cookies()
            .filter(|c| c.name() == name)
            .filter_map(|c| c.value_raw())
            .find_map(|v| signer.verify(name, v.trim_matches('"')))
    }
}

impl<'r> Response<'r> {
    /// Adds a `Set-Cookie` header for `cookie`, with all its attributes.
    ///
    /// ```
    /// use rgi::cookies::{Cookie, SameSite, time::Duration};
    /// let c = Cookie::build(("lang", "fr")).path("/").max_age(Duration::days(30)).same_site(SameSite::Strict);
    /// let r = rgi::Response::ok().with_cookie(c);
    /// assert_eq!(r.header("Set-Cookie"), Some("lang=fr; SameSite=Strict; Path=/; Max-Age=2592000"));
    /// ```
    pub fn with_cookie<'c>(self, cookie: impl Into<Cookie<'c>>) -> Self {
        self.with_header("Set-Cookie", cookie.into().to_string())
    }

    /// Adds a `Set-Cookie` header for `cookie` with its value signed by `signer`.
    ///
    /// ```
    /// use rgi::cookies::{Cookie, Signer};
    /// let signer = Signer::new("0123456789abcdef")?;
    /// let r = rgi::Response::ok().with_signed_cookie(Cookie::new("id", "7"), &signer);
    /// assert!(r.header("Set-Cookie").unwrap().starts_with("id=7."));
    /// # Ok::<(), rgi::cookies::SecretError>(())
    /// ```
    pub fn with_signed_cookie<'c>(self, cookie: impl Into<Cookie<'c>>, signer: &Signer) -> Self {
        self.with_cookie(signer.sign_cookie(cookie.into()))
    }

    /// Adds a `Set-Cookie` header that makes the browser forget cookie `name` set for `path`.
    ///
    /// ```
    /// let r = rgi::Response::ok().with_removed_cookie("theme", "/");
    /// assert!(r.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    /// ```
    pub fn with_removed_cookie(self, name: &str, path: &str) -> Self {
        let mut cookie = Cookie::build((name.to_string(), "")).path(path.to_string()).build();
        cookie.make_removal();
        self.with_cookie(cookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn signatures_round_trip_and_bind_name_and_value() {
        let s = signer();
        let signed = s.sign("session", "abc");
        assert_eq!(s.verify("session", &signed), Some("abc"));
        assert_eq!(s.verify("Session", &signed), None);
        assert_eq!(s.verify("session", &format!("abd{}", &signed[3..])), None);
        // Every single-character change of the signature is refused.
        let dot = signed.rfind('.').unwrap();
        for i in dot + 1..signed.len() {
            let mut bytes = signed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(s.verify("session", std::str::from_utf8(&bytes).unwrap()), None, "position {i}");
        }
    }

    #[test]
    fn values_may_contain_dots() {
        let s = signer();
        assert_eq!(s.verify("v", &s.sign("v", "1.2.3")), Some("1.2.3"));
    }

    #[test]
    fn other_secrets_and_malformed_values_are_refused() {
        let other = Signer::new("another secret, also long enough").unwrap();
        assert_eq!(other.verify("n", &signer().sign("n", "v")), None);
        for bad in ["", "v", "v.", ".x", "v.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"] {
            assert_eq!(signer().verify("n", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(Signer::new("x".repeat(15)).unwrap_err(), SecretError(15));
        assert!(SecretError(3).to_string().contains("at least 16"));
    }

    #[test]
    fn set_cookie_carries_every_attribute() {
        let c = Cookie::build(("a", "b"))
            .path("/app")
            .domain("example.org")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::None)
            .max_age(time::Duration::minutes(30))
            .build();
        let r = Response::ok().with_cookie(c);
        let v = r.header("set-cookie").unwrap();
        for part in ["a=b", "HttpOnly", "SameSite=None", "Secure", "Path=/app", "Domain=example.org", "Max-Age=1800"] {
            assert!(v.contains(part), "{part} missing from {v}");
        }
    }
}
