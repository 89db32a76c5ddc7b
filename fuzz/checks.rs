//! What each fuzz target checks, shared by the fuzz targets (`fuzz_targets/`) and by the corpus
//! replay test (`tests/fuzz_corpus.rs`), so every input ever kept stays a regression test.

use mod_rgi::config::GroupSpec;
use mod_rgi::directives::{parse_alias_options, parse_on_off};
use mod_rgi::environ::{collapse_slashes, header_env_name};
use mod_rgi::response::{HeaderKind, check_header, check_status, parse_content_length};
use mod_rgi::translate::alias_match;

/// Any bytes as a library file give a manifest or an error, never a crash.
pub fn manifest(data: &[u8]) {
    if let Ok(manifest) = mod_rgi::app::library::read_manifest("fuzzed.so", data) {
        assert_eq!(manifest.magic, rgi::abi::MAGIC);
        assert_eq!(manifest.abi_major, rgi::abi::ABI_MAJOR);
    }
}

/// Directive arguments: options, application groups, On/Off.
pub fn directive_args(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_alias_options(text.split_whitespace());
    match GroupSpec::parse(text) {
        Ok(GroupSpec::Named(name)) => assert_eq!(name, text),
        Ok(_) => assert!(text.starts_with("%{")),
        Err(why) => assert!(!why.is_empty()),
    }
    if let Ok(on) = parse_on_off(text) {
        assert_eq!(on, text.eq_ignore_ascii_case("on"));
    }
}

/// A response head an app sends: whatever is accepted is safe to put on the wire.
pub fn response_head(status: u32, name: &[u8], value: &[u8]) {
    if let Ok(s) = check_status(status) {
        assert!((200..=599).contains(&s));
    }
    if let Ok(kind) = check_header(name, value) {
        assert!(!name.is_empty());
        assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
        assert!(!name.iter().any(|&b| b <= b' ' || b == b':' || b >= 0x7f));
        if let HeaderKind::ContentLength(n) = kind {
            assert_eq!(Some(n), parse_content_length(value));
        }
    }
    if let Some(n) = parse_content_length(value) {
        assert!(value.iter().all(u8::is_ascii_digit));
        assert_eq!(n, std::str::from_utf8(value).unwrap().parse::<u64>().unwrap());
    }
}

/// URI → alias matching and the environ's name and path rules.
pub fn uri_mapping(uri: &[u8], prefix: &[u8]) {
    if let Some(n) = alias_match(uri, prefix) {
        assert!(n <= uri.len());
    }
    if let Some(key) = header_env_name(uri) {
        assert!(key.starts_with(b"HTTP_"));
        assert!(key.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'));
    }
    let collapsed = collapse_slashes(uri);
    assert!(!collapsed.windows(2).any(|w| w == b"//"));
    assert!(collapsed.len() <= uri.len());
}
