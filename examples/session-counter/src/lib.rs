//! A session counter for tests and load: every request of a session counts it up.
//!
//! - `GET /count`: counts the visit; answers `visits=N new=true|false pid=PID`.
//! - `GET /slow-count?ms=N`: the same, waiting N ms between reading and saving the count, so
//!   concurrent requests of one session would lose counts without the session lock.
//! - `GET /peek`: the count without counting (no cookie set for a new session).
//! - `GET /logout`: ends the session.
//! - `GET /pid`: the serving process.
//!
//! Configuration: the `session.*` options of `rgi::session::SessionConfig::from_options`.

use std::time::Duration;

use rgi::session::SessionConfig;
use rgi::{Request, Response};

struct Counter {
    sessions: SessionConfig,
}

impl rgi::Create for Counter {
    fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
        Ok(Counter { sessions: SessionConfig::from_options(|name| ctx.option(name))? })
    }
}

impl rgi::App for Counter {
    fn call<'r>(&self, req: Request<'r>) -> Result<Response<'r>, rgi::Error> {
        let pid = std::process::id();
        if req.path_info() == "/pid" {
            return Ok(Response::text(format!("pid={pid}")));
        }
        let mut session = self.sessions.load(&req)?;
        let visits = session.get::<u64>("visits")?.unwrap_or(0);
        let new = session.is_new();
        let visits = match req.path_info() {
            "/count" => visits + 1,
            "/slow-count" => {
                let ms = req.query_param("ms").and_then(|m| m.parse().ok()).unwrap_or(20);
                std::thread::sleep(Duration::from_millis(ms));
                visits + 1
            }
            "/peek" => return Ok(Response::text(format!("visits={visits} new={new} pid={pid}"))),
            "/logout" => {
                session.invalidate()?;
                return Ok(Response::text("logged out").with_session(&session));
            }
            _ => return Ok(Response::text("not found").with_status(404)),
        };
        session.set("visits", &visits)?;
        session.save()?;
        Ok(Response::text(format!("visits={visits} new={new} pid={pid}")).with_session(&session))
    }
}

rgi::export!(Counter);
