//! Says which process and which app instance served the request, to show how instances are
//! shared: one per application group per process, created once.
//!
//! Answers `pid=…`, `instances=…` (instances created in this process), `instance=…` (this
//! instance's number), `served=…` (requests this instance served), `group=…`.

use std::sync::atomic::{AtomicU64, Ordering};

static CREATED: AtomicU64 = AtomicU64::new(0);

struct WhoAmI {
    number: u64,
    group: String,
    served: AtomicU64,
}

impl rgi::Create for WhoAmI {
    fn create(ctx: &rgi::CreateContext<'_>) -> Result<Self, rgi::Error> {
        // Slow creation makes concurrent first requests overlap, which is what tests need.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let number = CREATED.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(WhoAmI { number, group: ctx.application_group().to_string(), served: AtomicU64::new(0) })
    }
}

impl rgi::App for WhoAmI {
    fn call<'r>(&self, _req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        let served = self.served.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(rgi::Response::text(format!(
            "pid={}\ninstances={}\ninstance={}\nserved={served}\ngroup={}\n",
            std::process::id(),
            CREATED.load(Ordering::SeqCst),
            self.number,
            self.group
        )))
    }
}

rgi::export!(WhoAmI);
