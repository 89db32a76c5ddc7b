//! Fuzz target: see `checks::multipart_roundtrip`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: (Vec<(String, Option<String>, Vec<u8>)>, Vec<u8>)| {
    checks::multipart_roundtrip(&input.0, &input.1)
});
