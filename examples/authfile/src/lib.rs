//! An authentication provider (`RGIAuthUserScript`) over the files Apache's own tools write, so
//! accounts are managed exactly as for mod_authn_file:
//!
//! - `RGIOption authfile.users FILE`: `user:hash` lines made by `htpasswd -B` (bcrypt, salted
//!   and slow on purpose). Other hash kinds are refused: that user's requests answer 500.
//! - `RGIOption authfile.digest FILE`: `user:realm:md5` lines made by `htdigest`, for
//!   `AuthDigestProvider rgi`.
//! - `RGIOption authfile.fold-case On`: a user name matches whatever its case, and the user is
//!   known by the spelling in the file (`REMOTE_USER`, the access log) — a renamed user.
//!
//! The files are read on every request, as mod_authn_file does, so changes apply at once.
//!
//! ```apache
//! <Location /private>
//!     AuthType Basic
//!     AuthName "private"
//!     AuthBasicProvider rgi
//!     RGIAuthUserScript /srv/auth/libexample_authfile.so
//!     RGIOption authfile.users /srv/auth/users.htpasswd
//!     Require valid-user
//! </Location>
//! ```

use rgi::auth::{AuthRequest, PasswordCheck, UserProvider};

#[derive(Default)]
struct AuthFile;

/// The file named by option `name`, read now.
fn read(req: &AuthRequest<'_>, name: &str) -> Result<String, rgi::Error> {
    let path = req.option(name).ok_or_else(|| format!("RGIOption {name} is not set"))?;
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path} ({name}): {e}").into())
}

/// The entry of `user` among `name:rest` lines (comments and blank lines skipped): its name as
/// written and the rest of its line. Exact matches win over case-folded ones.
fn find<'t>(text: &'t str, user: &str, fold_case: bool) -> Option<(&'t str, &'t str)> {
    let entries = || {
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
    };
    entries()
        .find(|(name, _)| *name == user)
        .or_else(|| fold_case.then(|| entries().find(|(name, _)| name.to_lowercase() == user.to_lowercase())).flatten())
}

fn fold_case(req: &AuthRequest<'_>) -> bool {
    req.option("authfile.fold-case").is_some_and(|v| v.eq_ignore_ascii_case("on"))
}

/// 32 hex digits as 16 bytes.
fn unhex(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl UserProvider for AuthFile {
    fn check_password(&self, req: &AuthRequest<'_>, user: &str, password: &str) -> Result<PasswordCheck, rgi::Error> {
        let users = read(req, "authfile.users")?;
        let Some((name, hash)) = find(&users, user, fold_case(req)) else { return Ok(PasswordCheck::UserNotFound) };
        if !hash.starts_with("$2") {
            return Err(format!("the hash of user {name} is not bcrypt (make it with htpasswd -B)").into());
        }
        Ok(match bcrypt::verify(password, hash)? {
            false => PasswordCheck::Denied,
            true if name == user => PasswordCheck::Granted,
            true => PasswordCheck::GrantedAs(name.to_string()),
        })
    }

    fn get_realm_hash(&self, req: &AuthRequest<'_>, user: &str, realm: &str) -> Result<Option<[u8; 16]>, rgi::Error> {
        let digests = read(req, "authfile.digest")?;
        let entry = digests.lines().filter_map(|l| l.trim_end().split_once(':')).find_map(|(name, rest)| {
            (name == user).then(|| rest.split_once(':')).flatten().filter(|(r, _)| *r == realm)
        });
        match entry {
            None => Ok(None),
            Some((_, hex)) => {
                Ok(Some(unhex(hex).ok_or_else(|| format!("the digest of user {user} is not 32 hex digits"))?))
            }
        }
    }
}

rgi::export!(AuthFile: user_provider);

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = "# accounts\nalice:$2y$05$x\n\nBob:$2y$05$y\n";

    #[test]
    fn users_are_found_exactly_or_case_folded() {
        assert_eq!(find(USERS, "alice", false), Some(("alice", "$2y$05$x")));
        assert_eq!(find(USERS, "bob", false), None);
        assert_eq!(find(USERS, "bob", true), Some(("Bob", "$2y$05$y")));
        assert_eq!(find(USERS, "# accounts", true), None);
        assert_eq!(find(USERS, "carol", true), None);
    }

    #[test]
    fn digests_are_hex() {
        assert_eq!(unhex("a4b5bf6c08d4c0822a5cdf05096df974").map(|h| h[0]), Some(0xa4));
        assert_eq!(unhex("a4b5"), None);
        assert_eq!(unhex("zzb5bf6c08d4c0822a5cdf05096df974"), None);
    }
}
