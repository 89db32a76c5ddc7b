//! Daemon mode against a real Apache: the directives, supervision (crashes, recycling, timeouts,
//! overload, restarts under load), privileges, and what the app sees.

mod support;

use support::{Config, configtest, example};

fn daemon_config(options: &str, extra: &str) -> Config {
    Config::new(format!(
        "RGIDaemonProcess app {options}\n\
         RGIScriptAlias /info {info} process-group=app\n\
         RGIScriptAlias /panic {panic} process-group=app\n\
         RGIScriptAlias /stream {stream} process-group=app\n\
         RGIScriptAlias /hello {hello} process-group=app\n\
         RGIScriptAlias /embedded {info}\n{extra}",
        info = example("procinfo").display(),
        panic = example("panic").display(),
        stream = example("stream").display(),
        hello = example("hello").display(),
    ))
}

#[test]
fn configtest_rejects_bad_daemon_directives() {
    let hello = example("hello");
    let hello = hello.display();
    let cases = [
        ("RGIDaemonProcess".to_string(), "RGIDaemonProcess", "expected NAME"),
        ("RGIDaemonProcess a processes=0".into(), "RGIDaemonProcess", "processes=0"),
        ("RGIDaemonProcess a threads=many".into(), "RGIDaemonProcess", "threads=many"),
        ("RGIDaemonProcess a request-timeout=-5".into(), "RGIDaemonProcess", "request-timeout=-5"),
        ("RGIDaemonProcess a umask=999".into(), "RGIDaemonProcess", "umask=999"),
        ("RGIDaemonProcess a colour=red".into(), "RGIDaemonProcess", "unknown option 'colour'"),
        ("RGIDaemonProcess a user=no-such-user-here".into(), "RGIDaemonProcess", "no such user"),
        ("RGIDaemonProcess a group=no-such-group-here".into(), "RGIDaemonProcess", "no such group"),
        ("RGIDaemonProcess a/b".into(), "RGIDaemonProcess", "not a valid process group name"),
        ("RGIDaemonProcess a\nRGIDaemonProcess a".into(), "RGIDaemonProcess", "used twice"),
        ("RGIProcessGroup missing".into(), "RGIProcessGroup", "no RGIDaemonProcess named 'missing'"),
        (format!("RGIScriptAlias /x {hello} process-group=missing"), "RGIScriptAlias", "no RGIDaemonProcess"),
        (format!("RGIScriptAlias /x {hello} process-group=a/b"), "RGIScriptAlias", "not a valid process group"),
        (
            format!("RGIDaemonProcess a\nRGIRestrictEmbedded On\nRGIImportScript {hello} application-group=x"),
            "RGIImportScript",
            "RGIRestrictEmbedded On forbids",
        ),
        ("RGIRestrictEmbedded maybe".into(), "RGIRestrictEmbedded", "RGIRestrictEmbedded"),
        (
            "<VirtualHost *:80>\nRGISocketPrefix /tmp/x\n</VirtualHost>".into(),
            "RGISocketPrefix",
            "only allowed in the main server",
        ),
        (
            format!("RGISocketPrefix /tmp/{}\nRGIDaemonProcess a", "x".repeat(90)),
            "RGISocketPrefix",
            "longer than a UNIX socket address",
        ),
        (
            format!(
                "<VirtualHost *:80>\nRGIDaemonProcess v\n</VirtualHost>\n\
                 <VirtualHost *:81>\nRGIScriptAlias /x {hello} process-group=v\n</VirtualHost>"
            ),
            "RGIScriptAlias",
            "no RGIDaemonProcess named 'v'",
        ),
    ];
    for (conf, directive, expected) in cases {
        let (ok, output) = configtest(&Config::new(format!("{conf}\n")));
        assert!(!ok, "{conf} must fail apache2 -t");
        assert!(output.contains(expected), "{conf}: expected {expected:?} in:\n{output}");
        assert!(output.contains(directive), "{conf}: the message must name {directive}:\n{output}");
    }
    let (ok, output) = configtest(&daemon_config(
        "processes=2 threads=3 user=www-data group=www-data umask=0027 home=/ display-name=%{GROUP} \
         maximum-requests=10 inactivity-timeout=5 request-timeout=5 queue-timeout=5 connect-timeout=5 \
         socket-timeout=5 graceful-timeout=5 shutdown-timeout=5 listen-backlog=10",
        "<Location /embedded>\n RGIProcessGroup %{GLOBAL}\n</Location>\n",
    ));
    assert!(ok, "{output}");
}
