//! An `RGIDispatchScript`: sends each customer's requests to the daemon process group named
//! after the customer's host name (`alpha.example.org` → `customer-alpha`), in an application
//! group of its own, and leaves other hosts to the configuration.
//!
//! ```apache
//! RGIDaemonProcess customer-alpha user=alpha
//! RGIDaemonProcess customer-beta user=beta
//! RGIDispatchScript /srv/dispatch/libexample_dispatch.so
//! RGIRestrictProcess customer-alpha customer-beta %{GLOBAL}
//! ```
//!
//! The request header `X-Dispatch: fail` makes it return an error and `X-Dispatch: panic` makes
//! it panic: both are a 500 (the integration tests use them).

use rgi::auth::AuthRequest;
use rgi::dispatch::{Dispatch, Dispatcher};

#[derive(Default)]
struct ByCustomer;

impl Dispatcher for ByCustomer {
    fn dispatch(&self, req: &AuthRequest<'_>) -> Result<Dispatch, rgi::Error> {
        match req.header("X-Dispatch") {
            Some("fail") => return Err("X-Dispatch: fail".into()),
            Some("panic") => panic!("X-Dispatch: panic"),
            _ => {}
        }
        let host = req.header("Host").unwrap_or_default();
        let customer = host.split(['.', ':']).next().unwrap_or_default();
        if !matches!(customer, "alpha" | "beta") {
            return Ok(Dispatch::default());
        }
        Ok(Dispatch {
            process_group: Some(format!("customer-{customer}")),
            application_group: Some(format!("customer {customer}")),
        })
    }
}

rgi::export!(ByCustomer: dispatcher);
