//! Fuzz target: see `checks::daemon_to_daemon`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::daemon_to_daemon(data));
