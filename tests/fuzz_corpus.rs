//! Replays every input the fuzzers kept (fuzz/corpus/<target>/) through the same checks, so a
//! crash once found stays fixed. The fuzzers themselves run with `scripts/fuzz.sh`.

#[path = "../fuzz/checks.rs"]
mod checks;

use arbitrary::{Arbitrary, Unstructured};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let inputs: Vec<Vec<u8>> =
        std::fs::read_dir(&dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    assert!(!inputs.is_empty(), "{} has no corpus", dir.display());
    inputs
}

/// Decodes a typed input the way libfuzzer-sys does.
fn decode<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

#[test]
fn manifest_corpus() {
    corpus("manifest").iter().for_each(|d| checks::manifest(d));
}

#[test]
fn directive_args_corpus() {
    corpus("directive_args").iter().for_each(|d| checks::directive_args(d));
}

#[test]
fn response_head_corpus() {
    for data in corpus("response_head") {
        if let Some((status, name, value)) = decode::<(u32, Vec<u8>, Vec<u8>)>(&data) {
            checks::response_head(status, &name, &value);
        }
    }
}

#[test]
fn uri_mapping_corpus() {
    for data in corpus("uri_mapping") {
        if let Some((uri, prefix)) = decode::<(Vec<u8>, Vec<u8>)>(&data) {
            checks::uri_mapping(&uri, &prefix);
        }
    }
}

#[test]
fn daemon_to_daemon_corpus() {
    corpus("daemon_to_daemon").iter().for_each(|d| checks::daemon_to_daemon(d));
}

#[test]
fn daemon_to_apache_corpus() {
    corpus("daemon_to_apache").iter().for_each(|d| checks::daemon_to_apache(d));
}

#[test]
fn multipart_corpus() {
    corpus("multipart").iter().for_each(|d| checks::multipart(d));
}

#[test]
fn multipart_roundtrip_corpus() {
    for data in corpus("multipart_roundtrip") {
        if let Some((parts, sizes)) = decode::<(Vec<(String, Option<String>, Vec<u8>)>, Vec<u8>)>(&data) {
            checks::multipart_roundtrip(&parts, &sizes);
        }
    }
}

#[test]
fn urlencoded_corpus() {
    corpus("urlencoded").iter().for_each(|d| checks::urlencoded(d));
}

#[test]
fn cookies_corpus() {
    for data in corpus("cookies") {
        if let Some((header, secret, name, value)) = decode::<(String, Vec<u8>, String, String)>(&data) {
            checks::cookies(&header, &secret, &name, &value);
        }
    }
}
