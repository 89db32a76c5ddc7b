//! Every auth role at once, each answer chosen by an `RGIOption`: shows (and lets the tests
//! check) what Apache does with each answer, panics and errors included.
//!
//! | option | values (default first) |
//! |---|---|
//! | `answer.check_password` | `not-found`, `granted`, `denied`, `granted-as:NAME`, `panic`, `error` |
//! | `answer.realm_hash` | `not-found`, `hash:HEX32`, `panic`, `error` |
//! | `answer.groups` | `a,b,...` (default none), `panic`, `error` |
//! | `answer.access` | `no-opinion`, `granted`, `denied`, `panic`, `error` |
//! | `answer.authen` | `declined`, `user:NAME`, `unauthorized:CHALLENGE`, `forbidden`, `panic`, `error` |
//! | `answer.authz` | `no-opinion`, `granted`, `denied`, `panic`, `error` |

use rgi::auth::{
    AccessChecker, AuthRequest, AuthenHandler, Authentication, AuthzHandler, Decision, GroupProvider, PasswordCheck,
    UserProvider,
};

#[derive(Default)]
struct Answers;

/// The answer configured for `callback`, after acting out `panic` and `error`.
fn answer<'r>(req: &AuthRequest<'r>, callback: &str, default: &'r str) -> Result<&'r str, rgi::Error> {
    match req.option(&format!("answer.{callback}")).unwrap_or(default) {
        "panic" => panic!("{callback} panicked, as asked"),
        "error" => Err(format!("{callback} failed, as asked").into()),
        other => Ok(other),
    }
}

fn decision(value: &str) -> Result<Decision, rgi::Error> {
    match value {
        "granted" => Ok(Decision::Granted),
        "denied" => Ok(Decision::Denied),
        "no-opinion" => Ok(Decision::NoOpinion),
        other => Err(format!("unknown decision '{other}'").into()),
    }
}

impl UserProvider for Answers {
    fn check_password(&self, req: &AuthRequest<'_>, _user: &str, _password: &str) -> Result<PasswordCheck, rgi::Error> {
        Ok(match answer(req, "check_password", "not-found")? {
            "granted" => PasswordCheck::Granted,
            "denied" => PasswordCheck::Denied,
            "not-found" => PasswordCheck::UserNotFound,
            other => match other.strip_prefix("granted-as:") {
                Some(name) => PasswordCheck::GrantedAs(name.replace("\\n", "\n")),
                None => return Err(format!("unknown answer '{other}'").into()),
            },
        })
    }

    fn get_realm_hash(&self, req: &AuthRequest<'_>, _user: &str, _realm: &str) -> Result<Option<[u8; 16]>, rgi::Error> {
        let value = answer(req, "realm_hash", "not-found")?;
        let Some(hex) = value.strip_prefix("hash:") else { return Ok(None) };
        let mut hash = [0u8; 16];
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or("short hash")?, 16)?;
        }
        Ok(Some(hash))
    }
}

impl GroupProvider for Answers {
    fn groups_for_user(&self, req: &AuthRequest<'_>, _user: &str) -> Result<Vec<String>, rgi::Error> {
        Ok(answer(req, "groups", "")?.split(',').filter(|g| !g.is_empty()).map(String::from).collect())
    }
}

impl AccessChecker for Answers {
    fn allow_access(&self, req: &AuthRequest<'_>, _host: &str) -> Result<Decision, rgi::Error> {
        decision(answer(req, "access", "no-opinion")?)
    }
}

impl AuthenHandler for Answers {
    fn authenticate(&self, req: &AuthRequest<'_>) -> Result<Authentication, rgi::Error> {
        let value = answer(req, "authen", "declined")?;
        Ok(match value.split_once(':') {
            _ if value == "declined" => Authentication::Declined,
            _ if value == "forbidden" => Authentication::Forbidden,
            Some(("user", name)) => {
                Authentication::Authenticated { user: name.replace("\\n", "\n"), auth_type: "Answer".into() }
            }
            Some(("unauthorized", challenge)) => {
                Authentication::Unauthorized { challenge: challenge.replace("\\r\\n", "\r\n") }
            }
            _ => return Err(format!("unknown answer '{value}'").into()),
        })
    }
}

impl AuthzHandler for Answers {
    fn authorize(&self, req: &AuthRequest<'_>) -> Result<Decision, rgi::Error> {
        decision(answer(req, "authz", "no-opinion")?)
    }
}

rgi::export!(Answers: user_provider, group_provider, access_checker, authen_handler, authz_handler);
