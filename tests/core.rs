//! The core: loading, serving, environ, streaming, files, faults — against a real Apache.

mod support;

use support::{Apache, Config, Mpm, configtest, example};

fn hello_config() -> Config {
    Config::new(format!("RGIScriptAlias /hello {}\n", example("hello").display()))
}

#[test]
fn hello_is_served() {
    let apache = Apache::start(hello_config());
    let r = apache.get("/hello");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello, World!");
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("Content-Length"), Some("13"));
}
