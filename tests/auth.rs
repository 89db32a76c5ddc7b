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

#[test]
fn provider_aliases_give_each_location_its_own_library_and_options() {
    let accounts = Accounts::new();
    let dir = accounts.dir.path();
    let (authfile, answers, env) = (lib("authfile"), lib("authanswers"), lib("environ"));
    let body = format!(
        "<AuthnProviderAlias rgi team-a>\nRGIAuthUserScript {authfile}\nRGIOption authfile.users {dir}/users.htpasswd\n\
         </AuthnProviderAlias>\n\
         <AuthnProviderAlias rgi team-b>\nRGIAuthUserScript {authfile} application-group=b\n\
         RGIOption authfile.users {dir}/other.htpasswd\n</AuthnProviderAlias>\n\
         <AuthnProviderAlias rgi robots>\nRGIAuthUserScript {answers}\nRGIOption answer.check_password granted-as:robot\n\
         </AuthnProviderAlias>\n\
         RGIScriptAlias /both {env}\nRGIScriptAlias /b {env}\nRGIScriptAlias /robots {env}\n\
         <Location /both>\nAuthType Basic\nAuthName lab\nAuthBasicProvider team-a team-b\nRequire valid-user\n</Location>\n\
         <Location /b>\nAuthType Basic\nAuthName lab\nAuthBasicProvider team-b\nRequire valid-user\n</Location>\n\
         <Location /robots>\nAuthType Basic\nAuthName lab\nAuthBasicProvider robots\nRequire valid-user\n</Location>\n",
        dir = dir.display()
    );
    let apache = Apache::start(config(body));
    assert_eq!(outcome(&get_basic(&apache, "/both", "alice", "secret")), ok("alice", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/both", "dave", "letmein")), ok("dave", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/b", "dave", "letmein")), ok("dave", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/b", "alice", "secret")), challenged("Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/b", "alice", "other")), ok("alice", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/robots", "anyone", "x")), ok("robot", "Basic"));
}

/// `/g/*` authenticate with Basic over `users.htpasswd` and `other.htpasswd`, then authorise
/// with `Require rgi-group` (`/g/rgi-*`) or mod_authz_groupfile (`/g/file-*`) over one group file.
fn group_config(accounts: &Accounts) -> Config {
    let dir = accounts.dir.path().display();
    let mut body = format!(
        "RGIScriptAlias /g {env}\n<Location /g>\nAuthType Basic\nAuthName lab\nAuthBasicProvider rgi file\n\
         RGIAuthUserScript {authfile}\nRGIOption authfile.users {dir}/users.htpasswd\nAuthUserFile {dir}/other.htpasswd\n\
         RGIAuthGroupScript {groups}\nRGIOption groups.file {dir}/groups\nAuthGroupFile {dir}/groups\n</Location>\n",
        env = lib("environ"),
        authfile = lib("authfile"),
        groups = lib("groups"),
    );
    for (name, rgi) in [
        ("admins", "Require rgi-group admins"),
        ("staff-or-guests", "Require rgi-group nobody staff guests"),
        ("staff-not-admins", "<RequireAll>\nRequire rgi-group staff\nRequire not rgi-group admins\n</RequireAll>"),
        ("admins-or-dave", "<RequireAny>\nRequire rgi-group admins\nRequire user dave\n</RequireAny>"),
        ("quoted", "Require rgi-group \"no such group\" admins"),
    ] {
        let file = rgi.replace("rgi-group", "group").replace("\"no such group\"", "nosuchgroup");
        body.push_str(&format!(
            "<Location /g/rgi-{name}>\n{rgi}\n</Location>\n<Location /g/file-{name}>\n{file}\n</Location>\n"
        ));
    }
    // An alias with its own library: everyone is a guest there.
    body.push_str(&format!(
        "<AuthzProviderAlias rgi-group all-guests guests>\nRGIAuthGroupScript {answers}\nRGIOption answer.groups guests\n\
         </AuthzProviderAlias>\n<Location /g/alias>\nRequire all-guests\n</Location>\n\
         <Location /g/plain>\nRequire rgi-group guests\n</Location>\n",
        answers = lib("authanswers")
    ));
    config(body)
}

#[test]
fn authz_provider_aliases_have_their_own_group_library() {
    let accounts = Accounts::new();
    let apache = Apache::start(group_config(&accounts));
    for (user, password) in [("alice", "secret"), ("dave", "letmein")] {
        assert_eq!(outcome(&get_basic(&apache, "/g/alias/", user, password)), ok(user, "Basic"));
    }
    assert_eq!(get_basic(&apache, "/g/plain/", "alice", "secret").status, 401);
    assert_eq!(get_basic(&apache, "/g/plain/", "dave", "letmein").status, 200);
}

#[test]
fn require_rgi_group_matches_mod_authz_groupfile() {
    let accounts = Accounts::new();
    let apache = Apache::start(group_config(&accounts));
    let users = [("alice", "secret"), ("bob", "hunter2"), ("dave", "letmein"), ("carol", "pa:ss")];
    // Who gets in, per location (everyone else is refused after authenticating: 401, Apache's
    // answer for an AuthType Basic location).
    let expected: [(&str, &[&str]); 5] = [
        ("admins", &["alice"]),
        ("staff-or-guests", &["alice", "bob", "dave"]),
        ("staff-not-admins", &["bob"]),
        ("admins-or-dave", &["alice", "dave"]),
        ("quoted", &["alice"]),
    ];
    for (name, allowed) in expected {
        for (user, password) in users {
            let rust = outcome(&get_basic(&apache, &format!("/g/rgi-{name}/"), user, password));
            let file = outcome(&get_basic(&apache, &format!("/g/file-{name}/"), user, password));
            assert_eq!((rust.status, &rust.user), (file.status, &file.user), "{name}, {user}: as mod_authz_groupfile");
            let status = if allowed.contains(&user) { 200 } else { 401 };
            assert_eq!(rust.status, status, "{name}, {user}");
        }
        assert_eq!(get(&apache, &format!("/g/rgi-{name}/"), &[]).status, 401, "{name} without credentials");
    }
    assert!(apache.error_log().contains("not in any of the groups of 'Require rgi-group admins'"));
}

#[test]
fn access_scripts_deny_with_403_before_authentication() {
    let (answers, env) = (lib("authanswers"), lib("environ"));
    let mut body = String::new();
    for answer in ["granted", "denied", "no-opinion"] {
        body.push_str(&format!(
            "RGIScriptAlias /{answer} {env}\n<Location /{answer}>\nRGIAccessScript {answers}\n\
             RGIOption answer.access {answer}\n</Location>\n\
             RGIScriptAlias /private-{answer} {env}\n<Location /private-{answer}>\nRGIAccessScript {answers}\n\
             RGIOption answer.access {answer}\nAuthType Basic\nAuthName lab\nAuthBasicProvider rgi\n\
             RGIAuthUserScript {answers}\nRGIOption answer.check_password granted\nRequire valid-user\n</Location>\n"
        ));
    }
    let apache = Apache::start(config(body));
    assert_eq!(get(&apache, "/granted", &[]).status, 200);
    assert_eq!(get(&apache, "/no-opinion", &[]).status, 200);
    assert_eq!(get(&apache, "/denied", &[]).status, 403);
    // A denial comes before authentication: even valid credentials get 403, and no challenge.
    let r = get_basic(&apache, "/private-denied", "alice", "x");
    assert_eq!((r.status, r.header("WWW-Authenticate")), (403, None));
    // Otherwise Apache's Require rules still apply.
    assert_eq!(get(&apache, "/private-granted", &[]).status, 401);
    assert_eq!(outcome(&get_basic(&apache, "/private-granted", "alice", "x")), ok("alice", "Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/private-no-opinion", "alice", "x")), ok("alice", "Basic"));
    assert!(apache.error_log().contains("client 127.0.0.1 denied by RGIAccessScript"));
}

fn jwt(key: &str, claims: serde_json::Value) -> String {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn bearer_tokens_authenticate_with_their_own_challenge() {
    let (bearer, env) = (lib("bearer"), lib("environ"));
    let apache = Apache::start(config(format!(
        "RGIScriptAlias /api {env}\n<Location /api>\nRGIAuthenHandler {bearer}\nRGIOption bearer.key k3y\n\
         Require valid-user\n</Location>\n<Location /api/alice-only>\nRequire user alice\n</Location>\n\
         <Location /api/passed>\nRGIPassAuthorization On\n</Location>\n"
    )));
    let token = |sub: &str, exp: u64| jwt("k3y", serde_json::json!({ "sub": sub, "exp": exp }));
    let bearer_header = |t: &str| format!("Bearer {t}");

    let r = get(&apache, "/api", &[]);
    assert_eq!((r.status, r.header("WWW-Authenticate")), (401, Some("Bearer realm=\"api\"")));
    let r = get(&apache, "/api", &[("Authorization", &basic(b"alice", b"secret"))]);
    assert_eq!((r.status, r.header("WWW-Authenticate")), (401, Some("Bearer realm=\"api\"")));

    let good = token("alice", now() + 600);
    let r = get(&apache, "/api/x", &[("Authorization", &bearer_header(&good))]);
    assert_eq!(outcome(&r), ok("alice", "Bearer"));
    let env = r.environ();
    assert!(!env.contains_key("HTTP_AUTHORIZATION"), "RGIPassAuthorization is Off by default");
    let r = get(&apache, "/api/passed", &[("Authorization", &bearer_header(&good))]);
    assert_eq!(r.environ().get("HTTP_AUTHORIZATION"), Some(&bearer_header(&good)));

    let invalid = |r: &Response, why: &str| {
        assert_eq!(r.status, 401, "{why}");
        let challenge = r.header("WWW-Authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""), "{why}: {challenge}");
        assert!(challenge.contains(why), "{challenge}");
    };
    invalid(
        &get(
            &apache,
            "/api",
            &[(
                "Authorization",
                &bearer_header(&jwt("wrong", serde_json::json!({"sub": "alice", "exp": now() + 600}))),
            )],
        ),
        "invalid",
    );
    invalid(&get(&apache, "/api", &[("Authorization", &bearer_header(&token("alice", now() - 3600)))]), "expired");
    invalid(&get(&apache, "/api", &[("Authorization", "Bearer not.a.jwt")]), "invalid");
    invalid(
        &get(&apache, "/api", &[("Authorization", &bearer_header(&jwt("k3y", serde_json::json!({"sub": "alice"}))))]),
        "invalid",
    );

    // Authenticated but not authorised: no AuthType, so 403 rather than a new challenge.
    assert_eq!(
        get(&apache, "/api/alice-only", &[("Authorization", &bearer_header(&token("bob", now() + 600)))]).status,
        403
    );
    assert_eq!(get(&apache, "/api/alice-only", &[("Authorization", &bearer_header(&good))]).status, 200);
}

#[test]
fn authen_handler_answers_reach_the_client() {
    let (answers, env) = (lib("authanswers"), lib("environ"));
    let accounts = Accounts::new();
    let mut body = format!(
        "RGIScriptAlias /h {env}\n<Location /h>\nRGIAuthenHandler {answers}\nRequire valid-user\n</Location>\n"
    );
    for (name, answer) in
        [("user", "user:robot"), ("unauthorized", "unauthorized:ApiKey realm=\"keys\""), ("forbidden", "forbidden")]
    {
        body.push_str(&format!("<Location /h/{name}>\nRGIOption answer.authen '{answer}'\n</Location>\n"));
    }
    // Declined: Apache's Basic module takes over.
    body.push_str(&format!(
        "<Location /h/declined>\nAuthType Basic\nAuthName lab\nAuthBasicProvider file\nAuthUserFile {}\n</Location>\n",
        accounts.path("users.htpasswd").display()
    ));
    let apache = Apache::start(config(body));
    assert_eq!(outcome(&get(&apache, "/h/user", &[])), ok("robot", "Answer"));
    let r = get(&apache, "/h/unauthorized", &[]);
    assert_eq!((r.status, r.header("WWW-Authenticate")), (401, Some("ApiKey realm=\"keys\"")));
    assert_eq!(get(&apache, "/h/forbidden", &[]).status, 403);
    assert_eq!(outcome(&get(&apache, "/h/declined", &[])), challenged("Basic"));
    assert_eq!(outcome(&get_basic(&apache, "/h/declined", "bob", "hunter2")), ok("bob", "Basic"));
}

#[test]
fn authz_handler_grants_denies_or_leaves_it_to_require() {
    let (answers, env) = (lib("authanswers"), lib("environ"));
    let mut body = format!(
        "RGIScriptAlias /z {env}\n<Location /z>\nAuthType Basic\nAuthName lab\nAuthBasicProvider rgi\n\
         RGIAuthUserScript {answers}\nRGIOption answer.check_password granted\nRGIAuthzHandler {answers}\n\
         Require user alice\n</Location>\n"
    );
    for answer in ["granted", "denied", "no-opinion"] {
        body.push_str(&format!("<Location /z/{answer}>\nRGIOption answer.authz {answer}\n</Location>\n"));
    }
    let apache = Apache::start(config(body));
    // Granted overrides `Require user alice`; denied is a 403 even for alice.
    assert_eq!(outcome(&get_basic(&apache, "/z/granted", "bob", "x")), ok("bob", "Basic"));
    assert_eq!(get_basic(&apache, "/z/denied", "alice", "x").status, 403);
    assert_eq!(get_basic(&apache, "/z/no-opinion", "alice", "x").status, 200);
    assert_eq!(get_basic(&apache, "/z/no-opinion", "bob", "x").status, 401);
    // Only after authentication.
    assert_eq!(outcome(&get(&apache, "/z/granted", &[])), challenged("Basic"));
    assert!(apache.error_log().contains("user alice denied by RGIAuthzHandler"));
}

#[test]
fn clients_cannot_set_the_user_through_headers() {
    let accounts = Accounts::new();
    let env = lib("environ");
    let apache = Apache::start(config(format!(
        "LogFormat \"%u %>s %U\" auth\nCustomLog {{root}}/access.log auth\n\
         SetEnvIf Remote-User (.+) REMOTE_USER=$1\nSetEnvIf X-Auth-Type (.+) AUTH_TYPE=$1\n\
         RGIScriptAlias /open {env}\nRGIScriptAlias /private {env}\n\
         <Location /private>\nAuthType Basic\nAuthName lab\nAuthBasicProvider rgi\nRGIAuthUserScript {authfile}\n\
         RGIOption authfile.users {users}\nRequire valid-user\n</Location>\n",
        authfile = lib("authfile"),
        users = accounts.path("users.htpasswd").display(),
    )));
    let spoofed = [
        ("Remote-User", "admin"),
        ("X-Remote-User", "admin"),
        ("Remote_User", "admin"),
        ("REMOTE_USER", "admin"),
        ("Remote-User ", "admin"),
        ("X-Forwarded-User", "admin"),
        ("Auth-Type", "Basic"),
        ("AUTH_TYPE", "Basic"),
        ("X-Auth-Type", "Basic"),
    ];
    for (name, value) in spoofed {
        let env = get(&apache, "/open", &[(name, value)]).environ();
        for key in ["REMOTE_USER", "AUTH_TYPE", "REDIRECT_REMOTE_USER"] {
            assert!(!env.contains_key(key), "{name}: {key} must not be set: {env:?}");
        }
        // (Apache refuses a header name with a space outright: 400.)
        let status = get(&apache, "/private", &[(name, value)]).status;
        assert!(status == 401 || status == 400, "{name}: {status}");
    }
    let all: Vec<(&str, &str)> = spoofed.iter().copied().filter(|(n, _)| !n.ends_with(' ')).collect();
    let mut headers = all.clone();
    let credentials = basic(b"alice", b"secret");
    headers.push(("Authorization", &credentials));
    assert_eq!(outcome(&get(&apache, "/private", &headers)), ok("alice", "Basic"));
    let log = access_log(&apache, 2 * spoofed.len() + 1);
    // %u is "-" unless Apache authenticated someone (on a 401 it is the name the client tried).
    assert!(log.iter().filter(|l| l.ends_with("/open")).all(|l| l.starts_with("- ")), "{log:?}");
    assert!(log.iter().filter(|l| !l.ends_with("/open")).all(|l| !l.contains(" 200 ") || l.starts_with("alice ")));
    assert_eq!(log.last().map(String::as_str), Some("alice 200 /private"), "{log:?}");
}

#[test]
fn failing_auth_libraries_fail_closed() {
    let (answers, env, authfile) = (lib("authanswers"), lib("environ"), lib("authfile"));
    let accounts = Accounts::new();
    let basic_rgi =
        format!("AuthType Basic\nAuthName lab\nAuthBasicProvider rgi\nRGIAuthUserScript {answers}\nRequire valid-user");
    let basic_alice = format!(
        "AuthType Basic\nAuthName lab\nAuthBasicProvider rgi\nRGIAuthUserScript {authfile}\n\
         RGIOption authfile.users {}",
        accounts.path("users.htpasswd").display()
    );
    let cases: Vec<(&str, String)> = vec![
        ("check-panic", format!("{basic_rgi}\nRGIOption answer.check_password panic")),
        ("check-error", format!("{basic_rgi}\nRGIOption answer.check_password error")),
        ("check-bad-name", format!("{basic_rgi}\nRGIOption answer.check_password granted-as:eve\\nroot")),
        ("check-empty-name", format!("{basic_rgi}\nRGIOption answer.check_password granted-as:")),
        (
            "digest-panic",
            format!(
                "AuthType Digest\nAuthName lab\nAuthDigestProvider rgi\nRGIAuthUserScript {answers}\nRGIOption answer.realm_hash panic\nRequire valid-user"
            ),
        ),
        (
            "digest-error",
            format!(
                "AuthType Digest\nAuthName lab\nAuthDigestProvider rgi\nRGIAuthUserScript {answers}\nRGIOption answer.realm_hash error\nRequire valid-user"
            ),
        ),
        (
            "groups-panic",
            format!(
                "{basic_alice}\nRGIAuthGroupScript {answers}\nRGIOption answer.groups panic\nRequire rgi-group admins"
            ),
        ),
        (
            "groups-error",
            format!(
                "{basic_alice}\nRGIAuthGroupScript {answers}\nRGIOption answer.groups error\nRequire rgi-group admins"
            ),
        ),
        (
            "groups-any",
            format!(
                "{basic_alice}\nRGIAuthGroupScript {answers}\nRGIOption answer.groups panic\n<RequireAny>\nRequire user nobody\nRequire rgi-group admins\n</RequireAny>"
            ),
        ),
        ("access-panic", format!("RGIAccessScript {answers}\nRGIOption answer.access panic")),
        ("access-error", format!("RGIAccessScript {answers}\nRGIOption answer.access error")),
        ("authen-panic", format!("RGIAuthenHandler {answers}\nRGIOption answer.authen panic\nRequire valid-user")),
        ("authen-error", format!("RGIAuthenHandler {answers}\nRGIOption answer.authen error\nRequire valid-user")),
        ("authen-empty-user", format!("RGIAuthenHandler {answers}\nRGIOption answer.authen user:\nRequire valid-user")),
        (
            "authen-bad-user",
            format!("RGIAuthenHandler {answers}\nRGIOption answer.authen user:eve\\nroot\nRequire valid-user"),
        ),
        (
            "authen-bad-challenge",
            format!(
                "RGIAuthenHandler {answers}\nRGIOption answer.authen \"unauthorized:Basic\\r\\nSet-Cookie: stolen=1\"\nRequire valid-user"
            ),
        ),
        (
            "authz-panic",
            format!("{basic_alice}\nRGIAuthzHandler {answers}\nRGIOption answer.authz panic\nRequire valid-user"),
        ),
        (
            "authz-error",
            format!("{basic_alice}\nRGIAuthzHandler {answers}\nRGIOption answer.authz error\nRequire valid-user"),
        ),
        ("no-user-script", "AuthType Basic\nAuthName lab\nAuthBasicProvider rgi\nRequire valid-user".into()),
        ("no-group-script", format!("{basic_alice}\nRequire rgi-group admins")),
    ];
    let mut body = format!("RGIScriptAlias /f {env}\n");
    for (name, directives) in &cases {
        body.push_str(&format!("<Location /f/{name}>\n{directives}\n</Location>\n"));
    }
    let apache = Apache::start(config(body));
    for (name, _) in &cases {
        let path = format!("/f/{name}");
        let r = if name.starts_with("digest") {
            get_digest(&apache, &path, "alice", "secret")
        } else {
            get_basic(&apache, &path, "alice", "secret")
        };
        assert_eq!(r.status, 500, "{name}");
        assert!(r.header("Set-Cookie").is_none() && !String::from_utf8_lossy(&r.raw).contains("stolen"), "{name}");
        assert!(!r.text().contains("as asked"), "{name}: the failure must not reach the client");
    }
    assert!(apache.wait_for_log("answering 500"));
    let log = apache.error_log();
    for (callback, what) in [
        ("check_password", "panicked"),
        ("check_password", "failed, as asked"),
        ("realm_hash", "panicked"),
        ("groups", "panicked"),
        ("access", "panicked"),
        ("authen", "panicked"),
        ("authz", "failed, as asked"),
    ] {
        let needle = format!("{callback} {what}");
        let line = log.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("{needle} not logged:\n{log}"));
        assert!(line.contains("[request "), "logged with the request id: {line}");
    }
    assert!(log.contains("no RGIAuthUserScript applies") && log.contains("no RGIAuthGroupScript applies"));
    assert!(log.contains("refused a response header"), "{log}");
    // The children survived every failure.
    assert!(!log.contains("exit signal"), "{log}");
    for _ in 0..10 {
        assert_eq!(get(&apache, "/f", &[]).status, 200);
    }
}

#[test]
fn pass_authorization_decides_whether_apps_see_the_header() {
    let accounts = Accounts::new();
    let env = lib("environ");
    let protect = format!(
        "AuthType Basic\nAuthName lab\nAuthBasicProvider rgi\nRGIAuthUserScript {}\nRGIOption authfile.users {}\n\
         Require valid-user",
        lib("authfile"),
        accounts.path("users.htpasswd").display()
    );
    let apache = Apache::start(config(format!(
        "RGIScriptAlias /off {env}\nRGIScriptAlias /on {env}\nRGIScriptAlias /alias-on {env} pass-authorization=On\n\
         RGIScriptAlias /open {env}\n\
         <Location /off>\n{protect}\n</Location>\n<Location /on>\n{protect}\nRGIPassAuthorization On\n</Location>\n\
         <Location /alias-on>\n{protect}\n</Location>\n<Location /open>\nRGIPassAuthorization On\n</Location>\n"
    )));
    let credentials = basic(b"alice", b"secret");
    let auth = [("Authorization", credentials.as_str())];
    let off = get(&apache, "/off", &auth).environ();
    assert_eq!(off.get("REMOTE_USER").map(String::as_str), Some("alice"));
    assert!(!off.contains_key("HTTP_AUTHORIZATION"), "{off:?}");
    for path in ["/on", "/alias-on", "/open"] {
        let env = get(&apache, path, &auth).environ();
        assert_eq!(env.get("HTTP_AUTHORIZATION"), Some(&credentials), "{path}");
    }
    // Passing the header authenticates nobody by itself.
    assert!(!get(&apache, "/open", &auth).environ().contains_key("REMOTE_USER"));
}

#[test]
fn configtest_checks_auth_libraries_and_their_roles() {
    let cases = [
        (format!("RGIAuthUserScript {}", lib("hello")), "RGIAuthUserScript", "does not implement user_provider"),
        (format!("RGIAuthGroupScript {}", lib("authfile")), "RGIAuthGroupScript", "does not implement group_provider"),
        (format!("RGIAccessScript {}", lib("groups")), "RGIAccessScript", "does not implement access_checker"),
        (format!("RGIAuthenHandler {}", lib("authfile")), "RGIAuthenHandler", "does not implement authen_handler"),
        (format!("RGIAuthzHandler {}", lib("bearer")), "RGIAuthzHandler", "does not implement authz_handler"),
        (
            format!("RGIAuthUserScript {} process-group=d", lib("authfile")),
            "RGIAuthUserScript",
            "only application-group=",
        ),
        ("RGIAuthUserScript /nonexistent/libauth.so".into(), "RGIAuthUserScript", "cannot read app library"),
        ("RGIAuthenHandler".into(), "RGIAuthenHandler", "expected LIBRARY"),
        ("<Location /x>\nRequire rgi-group\n</Location>".into(), "Require rgi-group", "at least one group name"),
    ];
    for (line, directive, expected) in cases {
        let (ok, output) = configtest(&config(format!("{line}\n")));
        assert!(!ok, "{line} must fail apache2 -t");
        assert!(
            output.contains(expected) && output.contains(directive),
            "{line}: expected {directive}: {expected} in:\n{output}"
        );
    }
    let good = format!(
        "<AuthnProviderAlias rgi users>\nRGIAuthUserScript {authfile} application-group=users\n</AuthnProviderAlias>\n\
         <Location /x>\nRGIAuthUserScript {answers}\nRGIAuthGroupScript {answers}\nRGIAccessScript {answers}\n\
         RGIAuthenHandler {answers}\nRGIAuthzHandler {answers}\nAuthBasicProvider users rgi\nRequire rgi-group a \"b c\"\n</Location>\n",
        authfile = lib("authfile"),
        answers = lib("authanswers")
    );
    let (ok, output) = configtest(&config(good));
    assert!(ok, "{output}");
}

#[test]
fn the_trac_example_protects_only_the_login_pages() {
    let accounts = Accounts::new();
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("apache/trac-auth.conf");
    let apache = Apache::start(config(format!(
        "Define TRAC_APP {}\nDefine AUTHFILE {}\nDefine TRAC_USERS {}\nInclude {}\n",
        lib("environ"),
        lib("authfile"),
        accounts.path("users.htpasswd").display(),
        conf.display()
    )));
    for path in ["/trac", "/trac/", "/trac/alpha/wiki", "/trac/beta/timeline", "/trac/alpha/logout"] {
        assert_eq!(get(&apache, path, &[]).status, 200, "{path} is public");
    }
    for project in ["alpha", "beta"] {
        let path = format!("/trac/{project}/login");
        assert_eq!(outcome(&get(&apache, &path, &[])).challenge.as_deref(), Some("Basic realm=Trac"), "{path}");
        assert_eq!(get_basic(&apache, &path, "alice", "wrong").status, 401, "{path}");
        let r = get_basic(&apache, &path, "bob", "hunter2");
        let env = r.environ();
        assert_eq!((r.status, env["REMOTE_USER"].as_str()), (200, "bob"), "{path}");
        assert_eq!(
            (env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()),
            ("/trac", path.trim_start_matches("/trac"))
        );
    }
}
