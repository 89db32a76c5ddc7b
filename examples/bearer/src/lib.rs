//! An authentication handler (`RGIAuthenHandler`) for `Authorization: Bearer <JWT>`, the modern
//! form of "authenticate against another service": the service signs tokens, Apache checks them.
//!
//! - `RGIOption bearer.key SECRET`: the HS256 key the tokens are signed with (required).
//! - `RGIOption bearer.realm NAME`: the realm of the challenge (default `api`).
//!
//! A valid, unexpired token authenticates its `sub` claim as the user (`REMOTE_USER`,
//! `AUTH_TYPE=Bearer`). Without a token the answer is 401 with `WWW-Authenticate: Bearer
//! realm="api"`; with a bad one, 401 with `error="invalid_token"` (RFC 6750).
//!
//! ```apache
//! <Location /api>
//!     RGIAuthenHandler /srv/auth/libexample_bearer.so
//!     RGIOption bearer.key "a long random secret"
//!     Require valid-user
//! </Location>
//! ```

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rgi::auth::{AuthRequest, AuthenHandler, Authentication};

struct Bearer;

impl rgi::Create for Bearer {
    fn create(_: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
        // The only backend compiled in; installing it keeps the choice explicit.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        Ok(Bearer)
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl AuthenHandler for Bearer {
    fn authenticate(&self, req: &AuthRequest<'_>) -> Result<Authentication, rgi::Error> {
        let key = req.option("bearer.key").ok_or("RGIOption bearer.key is not set")?;
        let realm = req.option("bearer.realm").unwrap_or("api");
        let Some(token) = req.header("Authorization").and_then(bearer_token) else {
            return Ok(Authentication::Unauthorized { challenge: format!("Bearer realm=\"{realm}\"") });
        };
        let validation = Validation::new(Algorithm::HS256);
        let why = match jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key.as_bytes()), &validation) {
            Ok(data) if !data.claims.sub.is_empty() => {
                return Ok(Authentication::Authenticated { user: data.claims.sub, auth_type: "Bearer".into() });
            }
            Ok(_) => "the token has no subject",
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => "the token has expired",
            Err(_) => "the token is invalid",
        };
        req.log_warn(&format!("bearer: {why}"));
        Ok(Authentication::Unauthorized {
            challenge: format!("Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{why}\""),
        })
    }
}

rgi::export!(Bearer: authen_handler);

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn only_bearer_tokens_are_taken() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic YWxpY2U6c2VjcmV0"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
