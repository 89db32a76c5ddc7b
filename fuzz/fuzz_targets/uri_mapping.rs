//! Fuzz target: see `checks::uri_mapping`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: (Vec<u8>, Vec<u8>)| checks::uri_mapping(&input.0, &input.1));
