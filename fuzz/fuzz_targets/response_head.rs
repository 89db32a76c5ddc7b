//! Fuzz target: see `checks::response_head`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: (u32, Vec<u8>, Vec<u8>)| checks::response_head(input.0, &input.1, &input.2));
