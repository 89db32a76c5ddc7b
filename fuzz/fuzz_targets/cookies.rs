//! Fuzz target: see `checks::cookies`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: (String, Vec<u8>, String, String)| {
    checks::cookies(&input.0, &input.1, &input.2, &input.3)
});
