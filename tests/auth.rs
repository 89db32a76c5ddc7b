//! Rust code as Apache's authentication and authorisation, against a real Apache: the Basic and
//! Digest matrix (each case answered exactly as mod_authn_file answers it), fall-through, provider
//! aliases, `Require rgi-group`, access scripts, phase handlers, Bearer tokens, spoofed headers,
//! failing libraries, RGIPassAuthorization and the access log.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use support::{Apache, Config, Response, configtest, example};

const AUTH_MODULES: [&str; 7] =
    ["authn_core", "auth_basic", "auth_digest", "authn_file", "authz_user", "authz_groupfile", "setenvif"];

fn config(body: impl Into<String>) -> Config {
    AUTH_MODULES.iter().fold(Config::new(body), |c, m| c.module(m))
}

fn lib(name: &str) -> String {
    example(name).display().to_string()
}

/// Accounts in the files Apache's own tools read: users (bcrypt, `htpasswd -B`), Digest hashes
/// (`htdigest`'s format) and groups (`AuthGroupFile`'s format).
struct Accounts {
    dir: tempfile::TempDir,
}

/// The users of `users.htpasswd`; carol's password has a colon in it.
const USERS: [(&str, &str); 3] = [("alice", "secret"), ("bob", "hunter2"), ("carol", "pa:ss")];

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn htpasswd(file: &Path, users: &[(&str, &str)]) {
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = Command::new("htpasswd");
        cmd.args(if i == 0 { ["-B", "-C", "5", "-b", "-c"].as_slice() } else { ["-B", "-C", "5", "-b"].as_slice() });
        let out = cmd.arg(file).arg(user).arg(password).output().expect("run htpasswd (apache2-utils)");
        assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn htdigest_lines(realm: &str, users: &[(&str, &str)]) -> String {
    users.iter().map(|(u, p)| format!("{u}:{realm}:{}\n", md5_hex(format!("{u}:{realm}:{p}").as_bytes()))).collect()
}

impl Accounts {
    fn new() -> Accounts {
        let dir = tempfile::tempdir().unwrap();
        htpasswd(&dir.path().join("users.htpasswd"), &USERS);
        // Known only to the second provider; alice there has another password.
        htpasswd(&dir.path().join("other.htpasswd"), &[("dave", "letmein"), ("alice", "other")]);
        std::fs::write(dir.path().join("lab.digest"), htdigest_lines("lab", &USERS)).unwrap();
        std::fs::write(dir.path().join("other.digest"), htdigest_lines("lab", &[("dave", "letmein")])).unwrap();
        std::fs::write(dir.path().join("groups"), "admins: alice\nstaff: alice bob\nguests: dave\n").unwrap();
        // Apache's children (www-data) read these files.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::set_permissions(entry.unwrap().path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
        }
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Accounts { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn basic(user: &[u8], password: &[u8]) -> String {
    let mut both = user.to_vec();
    both.push(b':');
    both.extend_from_slice(password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(both))
}

/// GET `path` with extra request headers.
fn get(apache: &Apache, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    apache.request(raw.as_bytes())
}

fn get_basic(apache: &Apache, path: &str, user: &str, password: &str) -> Response {
    get(apache, path, &[("Authorization", &basic(user.as_bytes(), password.as_bytes()))])
}

/// The `key="value"` (or `key=value`) parameters of a challenge.
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut params = Vec::new();
    let mut s = rest.trim();
    while let Some((key, after)) = s.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.push((key.trim().to_string(), value.to_string()));
        s = next.trim_start_matches([',', ' ']);
    }
    params
}

/// GET `path` with Digest credentials (RFC 2617, MD5, qop=auth): asks for a nonce first.
fn get_digest(apache: &Apache, path: &str, user: &str, password: &str) -> Response {
    let first = get(apache, path, &[]);
    assert_eq!(first.status, 401, "the first Digest request must be challenged");
    let challenge = first.header("WWW-Authenticate").expect("a Digest challenge");
    assert!(challenge.starts_with("Digest "), "{challenge}");
    let params = challenge_params(challenge);
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let (realm, nonce) = (param("realm"), param("nonce"));
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let ha1 = md5_hex(format!("{user}:{realm}:{password}").as_bytes());
    let ha2 = md5_hex(format!("GET:{path}").as_bytes());
    let response = md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
    let mut value = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", algorithm=MD5, \
         response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    );
    if !param("opaque").is_empty() {
        value.push_str(&format!(", opaque=\"{}\"", param("opaque")));
    }
    get(apache, path, &[("Authorization", &value)])
}

/// What a client can tell of an authentication answer.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    user: Option<String>,
    auth_type: Option<String>,
    /// The challenge's scheme and realm (the nonce differs from request to request).
    challenge: Option<String>,
}

fn outcome(r: &Response) -> Outcome {
    let env = if r.status == 200 { r.environ() } else { Default::default() };
    let challenge = r.header("WWW-Authenticate").map(|c| {
        let scheme = c.split(' ').next().unwrap_or("");
        let realm = challenge_params(c).into_iter().find(|(k, _)| k == "realm").map(|(_, v)| v).unwrap_or_default();
        format!("{scheme} realm={realm}")
    });
    Outcome {
        status: r.status,
        user: env.get("REMOTE_USER").cloned(),
        auth_type: env.get("AUTH_TYPE").cloned(),
        challenge,
    }
}

fn ok(user: &str, auth_type: &str) -> Outcome {
    Outcome { status: 200, user: Some(user.into()), auth_type: Some(auth_type.into()), challenge: None }
}

fn challenged(scheme: &str) -> Outcome {
    Outcome { status: 401, user: None, auth_type: None, challenge: Some(format!("{scheme} realm=lab")) }
}

/// Waits until the access log has `n` lines (Apache writes each after its response).
fn access_log(apache: &Apache, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(apache.root.path().join("access.log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/rgi-*` authenticate with the Rust provider, `/file-*` with mod_authn_file, over the same
/// files; `/renamed` folds the case of user names; `/chain` asks rgi, then an htpasswd file.
fn provider_config(accounts: &Accounts) -> Config {
    let (users, digest) = (accounts.path("users.htpasswd"), accounts.path("lab.digest"));
    let (other, other_digest) = (accounts.path("other.htpasswd"), accounts.path("other.digest"));
    let env = lib("environ");
    let authfile = lib("authfile");
    let mut body = String::from("LogFormat \"%u %>s %U\" auth\nCustomLog {root}/access.log auth\n");
    for (path, scheme, provider) in [
        ("/rgi-basic", "Basic", format!("AuthBasicProvider rgi\nRGIOption authfile.users {}", users.display())),
        ("/file-basic", "Basic", format!("AuthBasicProvider file\nAuthUserFile {}", users.display())),
        ("/rgi-digest", "Digest", format!("AuthDigestProvider rgi\nRGIOption authfile.digest {}", digest.display())),
        ("/file-digest", "Digest", format!("AuthDigestProvider file\nAuthUserFile {}", digest.display())),
        (
            "/renamed",
            "Basic",
            format!(
                "AuthBasicProvider rgi\nRGIOption authfile.users {}\nRGIOption authfile.fold-case On",
                users.display()
            ),
        ),
        (
            "/chain-basic",
            "Basic",
            format!(
                "AuthBasicProvider rgi file\nRGIOption authfile.users {}\nAuthUserFile {}",
                users.display(),
                other.display()
            ),
        ),
        (
            "/chain-digest",
            "Digest",
            format!(
                "AuthDigestProvider rgi file\nRGIOption authfile.digest {}\nAuthUserFile {}",
                digest.display(),
                other_digest.display()
            ),
        ),
    ] {
        body.push_str(&format!(
            "RGIScriptAlias {path} {env}\n<Location {path}>\nAuthType {scheme}\nAuthName lab\n{provider}\n\
             RGIAuthUserScript {authfile}\nRequire valid-user\n</Location>\n"
        ));
    }
    config(body)
}

#[test]
fn basic_matrix_matches_mod_authn_file() {
    let accounts = Accounts::new();
    let apache = Apache::start(provider_config(&accounts));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // (case, Authorization header, expected answer; None: malformed, any 4xx as long as both agree)
    let cases: [(&str, Option<String>, Option<Outcome>); 15] = [
        ("no credentials", None, Some(challenged("Basic"))),
        ("right password", Some(basic(b"alice", b"secret")), Some(ok("alice", "Basic"))),
        ("another user", Some(basic(b"bob", b"hunter2")), Some(ok("bob", "Basic"))),
        ("colon in the password", Some(basic(b"carol", b"pa:ss")), Some(ok("carol", "Basic"))),
        ("wrong password", Some(basic(b"alice", b"wrong")), Some(challenged("Basic"))),
        ("another user's password", Some(basic(b"alice", b"hunter2")), Some(challenged("Basic"))),
        ("empty password", Some(basic(b"alice", b"")), Some(challenged("Basic"))),
        ("unknown user", Some(basic(b"mallory", b"secret")), Some(challenged("Basic"))),
        ("empty user", Some(basic(b"", b"secret")), Some(challenged("Basic"))),
        ("user in another case", Some(basic(b"ALICE", b"secret")), Some(challenged("Basic"))),
        ("user not UTF-8", Some(basic(b"al\xefce", b"secret")), Some(challenged("Basic"))),
        ("password not UTF-8", Some(basic(b"alice", b"s\xe9cret")), Some(challenged("Basic"))),
        ("no colon", Some(format!("Basic {}", b64("alice"))), None),
        ("not base64", Some("Basic !!!".into()), None),
        ("another scheme", Some("Bearer abc".into()), Some(challenged("Basic"))),
    ];
    for (name, header, expected) in cases {
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Authorization", h.as_str())).collect();
        let rust = outcome(&get(&apache, "/rgi-basic", &headers));
        let file = outcome(&get(&apache, "/file-basic", &headers));
        assert_eq!(rust, file, "{name}: the Rust provider must answer as mod_authn_file");
        match expected {
            Some(expected) => assert_eq!(rust, expected, "{name}"),
            None => assert!((400..500).contains(&rust.status), "{name}: {rust:?}"),
        }
    }
    assert!(!apache.error_log().contains("answering 500"), "{}", apache.error_log());
}

#[test]
fn digest_matrix_matches_mod_authn_file() {
    let accounts = Accounts::new();
    let apache = Apache::start(provider_config(&accounts));
    for path in ["/rgi-digest", "/file-digest"] {
        assert_eq!(outcome(&get(&apache, path, &[])), challenged("Digest"), "{path}: no credentials");
        assert_eq!(outcome(&get_digest(&apache, path, "alice", "secret")), ok("alice", "Digest"), "{path}");
        assert_eq!(outcome(&get_digest(&apache, path, "carol", "pa:ss")), ok("carol", "Digest"), "{path}");
        for (user, password) in [("alice", "wrong"), ("alice", ""), ("mallory", "secret"), ("ALICE", "secret")] {
            let r = get_digest(&apache, path, user, password);
            assert_eq!(outcome(&r), challenged("Digest"), "{path}: {user}/{password}");
        }
    }
    assert!(!apache.error_log().contains("answering 500"), "{}", apache.error_log());
}

#[test]
fn unknown_users_fall_through_to_the_next_provider() {
    let accounts = Accounts::new();
    let apache = Apache::start(provider_config(&accounts));
    // dave is only in the htpasswd file the second provider reads.
    assert_eq!(outcome(&get_basic(&apache, "/chain-basic", "dave", "letmein")), ok("dave", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/chain-basic", "alice", "secret")), ok("alice", "Basic"));
    // A wrong password is final: the second provider's alice/other is never tried.
    assert_eq!(outcome(&get_basic(&apache, "/chain-basic", "alice", "other")), challenged("Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/chain-basic", "dave", "wrong")), challenged("Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/chain-basic", "nobody", "x")), challenged("Basic"));
    assert_eq!(outcome(&get_digest(&apache, "/chain-digest", "dave", "letmein")), ok("dave", "Digest"));
    assert_eq!(outcome(&get_digest(&apache, "/chain-digest", "alice", "secret")), ok("alice", "Digest"));
    assert_eq!(outcome(&get_digest(&apache, "/chain-digest", "dave", "nope")), challenged("Digest"));
}

#[test]
fn a_renamed_user_is_known_by_the_new_name_everywhere() {
    let accounts = Accounts::new();
    let apache = Apache::start(provider_config(&accounts));
    assert_eq!(outcome(&get_basic(&apache, "/renamed", "ALICE", "secret")), ok("alice", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/renamed", "Bob", "hunter2")), ok("bob", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/renamed", "ALICE", "wrong")), challenged("Basic"));
    let log = access_log(&apache, 3);
    assert_eq!(log[..3], ["alice 200 /renamed", "bob 200 /renamed", "ALICE 401 /renamed"], "{log:?}");
}
