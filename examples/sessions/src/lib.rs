//! The session demo: a visitor names a session on a login form, then sees whether this is the
//! first visit or a return, how many visits there were and when the session began; a button
//! ends it.
//!
//! Routes below the mount point: `GET /` (the login page without a session, the session page
//! with one), `POST /login` (form field `name`), `POST /logout`.
//!
//! Configuration: `RGIOption session.secret <32 random bytes>` (required) and any other
//! `session.*` option of `rgi::session::SessionConfig::from_options`.

use std::time::{SystemTime, UNIX_EPOCH};

use rgi::session::{Session, SessionConfig};
use rgi::templates::{Templates, context};
use rgi::{Request, Response};

/// The longest session name accepted.
const MAX_NAME: usize = 64;

struct Demo {
    sessions: SessionConfig,
    templates: Templates,
}

impl rgi::Create for Demo {
    fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
        let templates = Templates::new()
            .with("base.html", include_str!("../templates/base.html"))?
            .with("login.html", include_str!("../templates/login.html"))?
            .with("session.html", include_str!("../templates/session.html"))?;
        Ok(Demo { sessions: SessionConfig::from_options(|name| ctx.option(name))?, templates })
    }
}

impl rgi::App for Demo {
    fn call<'r>(&self, mut req: Request<'r>) -> Result<Response<'r>, rgi::Error> {
        let base = req.environ().get("SCRIPT_NAME").unwrap_or("");
        let mut session = self.sessions.load(&req)?;
        match (req.method(), req.path_info()) {
            ("GET" | "HEAD", "" | "/") => self.show(&mut session, base),
            ("POST", "/login") => {
                let form = req.form()?;
                let name = form.get("name").unwrap_or("").trim();
                if name.is_empty() || name.chars().count() > MAX_NAME {
                    let error = format!("A session name has 1 to {MAX_NAME} characters.");
                    let page = self.templates.html("login.html", context! { base, error, max_name => MAX_NAME })?;
                    return Ok(page.with_status(400));
                }
                // A fresh id at login: an id handed out before cannot be carried into the session.
                session.invalidate()?;
                session.set("name", name)?;
                session.set("visits", &0u64)?;
                session.save()?;
                Ok(Response::redirect(format!("{base}/")).with_session(&session))
            }
            ("POST", "/logout") => {
                session.invalidate()?;
                Ok(Response::redirect(format!("{base}/")).with_session(&session))
            }
            (_, "" | "/" | "/login" | "/logout") => {
                Ok(Response::text("method not allowed").with_status(405).with_header("Allow", "GET, POST"))
            }
            _ => Ok(Response::text("not found").with_status(404)),
        }
    }
}

impl Demo {
    fn show<'r>(&self, session: &mut Session<'_>, base: &str) -> Result<Response<'r>, rgi::Error> {
        let Some(name) = session.get::<String>("name")? else {
            return Ok(self.templates.html("login.html", context! { base, max_name => MAX_NAME })?);
        };
        let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
        session.set("visits", &visits)?;
        session.save()?;
        let created = utc(session.created());
        let page = context! { base, name, visits, created, first => visits == 1 };
        Ok(self.templates.html("session.html", page)?.with_header("Cache-Control", "no-store"))
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

rgi::export!(Demo);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(1_767_225_599)), "2025-12-31 23:59:59 UTC");
    }
}
