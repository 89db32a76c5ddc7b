//! The benchmark: mod_rgi against the servers a user would otherwise pick, in one run on one
//! machine. Run it with `bench/run` (it installs the Debian packages it needs and builds the
//! workspace first); `bench/run --smoke` is the few-seconds check CI runs.
//!
//! Every peer is its own Apache with identical MPM settings, all running at once. Rounds are
//! interleaved (A B C … A B C …) after a warm-up, and each figure is the median over the rounds:
//! wrk's requests per second and the servers' CPU time per request (utime + stime of every
//! process of the server, daemon processes and the proxy's backend included). Instructions per
//! request come from callgrind (over `apache2 -X`, or over the whole server in daemon mode);
//! memory from an Apache child's RSS after 10k and 1M requests.

mod callgrind;
mod client;
mod floor;
mod report;
mod servers;
mod wrk;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use report::{Report, Row, Section};
use servers::{Mode, Peer, Server, Setup};

/// How long and how often to measure.
struct Options {
    smoke: bool,
    rounds: usize,
    /// Seconds per wrk run for the small responses (the large transfers get twice as long).
    seconds: f64,
    warmup: f64,
    big_file: u64,
    upload: u64,
    callgrind: Option<(u64, u64)>,
    memory: Option<(u64, u64)>,
    /// Round trips of the process ping-pong ([`floor`]).
    floor: u32,
    out: Option<PathBuf>,
    /// Parts to run (workload names, `callgrind`, `memory`); all when empty.
    only: Vec<String>,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut o = Options {
            smoke: false,
            rounds: 5,
            seconds: 5.0,
            warmup: 2.0,
            big_file: 1 << 30,
            upload: 100 << 20,
            callgrind: Some((1000, 3000)),
            memory: Some((10_000, 1_000_000)),
            floor: 100_000,
            out: None,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--smoke" => {
                    o = Options {
                        smoke: true,
                        rounds: 1,
                        seconds: 1.0,
                        warmup: 0.0,
                        big_file: 8 << 20,
                        upload: 1 << 20,
                        callgrind: Some((2, 5)),
                        memory: Some((100, 300)),
                        floor: 2_000,
                        out: o.out,
                        only: o.only,
                    }
                }
                "--rounds" => o.rounds = value("--rounds")?.parse().map_err(|e| format!("--rounds: {e}"))?,
                "--seconds" => o.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
                "--no-callgrind" => o.callgrind = None,
                "--no-memory" => o.memory = None,
                "--out" => o.out = Some(value("--out")?.into()),
                "--only" => o.only = value("--only")?.split(',').map(str::to_string).collect(),
                "-h" | "--help" => {
                    return Err("usage: bench/run [--smoke] [--rounds N] [--seconds S] [--no-callgrind] \
                                [--no-memory] [--out FILE] [--only PART,...]\n(parts: hello, environ, blob, download, \
                                upload, callgrind, memory, floor) (default: 5 rounds of 5 s, results in \
                                bench/results/latest.md; --smoke and --only write nowhere unless --out is given)"
                        .into());
                }
                other => return Err(format!("unknown argument {other:?} (see --help)")),
            }
        }
        Ok(o)
    }

    fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

/// One server answering one workload.
struct Target {
    name: &'static str,
    peer: Peer,
    path: &'static str,
}

/// What every target of a workload must answer (checked before measuring).
enum Expect {
    Body(&'static [u8]),
    Contains(&'static str),
    Length(u64),
    /// A HEAD whose Content-Length is the file's size.
    FileOf(u64),
    /// A POST echoed back.
    Echo,
}

struct Workload {
    key: &'static str,
    title: String,
    /// wrk's connections; 0 for the large transfers, sent one at a time by [`client::transfer`]
    /// (wrk reads 8 KiB at a time and counts whole requests only: too coarse for 1 GiB).
    connections: u32,
    seconds: f64,
    /// Payload bytes per request, for MB/s.
    payload: Option<u64>,
    expect: Expect,
    targets: Vec<Target>,
}

fn target(name: &'static str, peer: Peer, path: &'static str) -> Target {
    Target { name, peer, path }
}

fn workloads(o: &Options) -> Vec<Workload> {
    let small = |path: &'static str, with_proxy: bool| {
        let mut t = vec![
            target(Peer::C.name(), Peer::C, path),
            target(Peer::WsgiEmbedded.name(), Peer::WsgiEmbedded, path),
            target(Peer::WsgiDaemon.name(), Peer::WsgiDaemon, path),
        ];
        if with_proxy {
            t.push(target(Peer::ProxyHyper.name(), Peer::ProxyHyper, path));
        }
        t.push(target(Peer::RgiEmbedded.name(), Peer::RgiEmbedded, path));
        t.push(target(Peer::RgiDaemon.name(), Peer::RgiDaemon, path));
        t
    };
    let mib = |n: u64| format!("{} MiB", n >> 20);
    vec![
        Workload {
            key: "hello",
            title: "hello: 13 bytes".into(),
            connections: 16,
            seconds: o.seconds,
            payload: None,
            expect: Expect::Body(b"Hello, World!"),
            targets: small("/hello", true),
        },
        Workload {
            key: "environ",
            title: "environ: the full environ, sorted and printed".into(),
            connections: 16,
            seconds: o.seconds,
            payload: None,
            expect: Expect::Contains("REQUEST_METHOD=GET"),
            targets: small("/environ", false),
        },
        Workload {
            key: "blob",
            title: "blob: a 64 KiB response".into(),
            connections: 16,
            seconds: o.seconds,
            payload: Some(64 << 10),
            expect: Expect::Length(64 << 10),
            targets: small("/blob", true),
        },
        Workload {
            key: "download",
            title: format!("download: a {} file (sendfile)", mib(o.big_file)),
            connections: 0,
            seconds: if o.smoke { o.seconds } else { 2.0 * o.seconds },
            payload: Some(o.big_file),
            expect: Expect::FileOf(o.big_file),
            targets: vec![
                target("Apache static file", Peer::C, "/big.bin"),
                target("mod_rgi embedded (examples/download)", Peer::RgiEmbedded, "/download"),
            ],
        },
        Workload {
            key: "upload",
            title: format!("upload: {} POSTed and echoed back", mib(o.upload)),
            connections: 0,
            seconds: if o.smoke { o.seconds } else { 2.0 * o.seconds },
            payload: Some(o.upload),
            expect: Expect::Echo,
            targets: vec![
                target("C handler echo", Peer::C, "/echo"),
                target("mod_rgi embedded (examples/echo)", Peer::RgiEmbedded, "/echo"),
            ],
        },
    ]
}

fn check(server: &Server, path: &str, expect: &Expect) -> io::Result<()> {
    let mut conn = client::Connection::open(server.port)?;
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let response = match expect {
        Expect::FileOf(_) => conn.request("HEAD", path, b"")?,
        Expect::Echo => conn.request("POST", path, &payload)?,
        _ => conn.request("GET", path, b"")?,
    };
    let ok = response.status == 200
        && match expect {
            Expect::Body(body) => response.body == *body,
            Expect::Contains(text) => String::from_utf8_lossy(&response.body).contains(text),
            Expect::Length(n) => response.body.len() as u64 == *n,
            Expect::FileOf(n) => response.header("content-length") == Some(&n.to_string()),
            Expect::Echo => response.body == payload,
        };
    if ok {
        Ok(())
    } else {
        let head = String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned();
        Err(io::Error::other(format!(
            "{} answered {path} wrongly: status {}, {} bytes: {head:?}",
            server.peer.name(),
            response.status,
            response.body.len()
        )))
    }
}

/// One measured run of one server.
struct Sample {
    rps: f64,
    /// Server CPU µs per request.
    cpu_us: f64,
    /// Server context switches per request.
    switches: f64,
}

/// One measured run: requests per second, server CPU µs and context switches per request.
fn measure(server: &Server, target: &Target, workload: &Workload, seconds: f64) -> io::Result<Sample> {
    let (ticks_before, switches_before) = (server.cpu_ticks(), server.context_switches());
    let (requests, rps) = if workload.connections > 0 {
        let run = wrk::run(server.port, target.path, workload.connections, seconds)?;
        if let Some(errors) = &run.socket_errors {
            eprintln!("  note: {} {}: {errors}", target.name, target.path);
        }
        (run.requests, run.requests_per_second)
    } else {
        transfers(server, target, workload, seconds)?
    };
    let ticks = server.cpu_ticks().saturating_sub(ticks_before);
    let switches = server.context_switches().saturating_sub(switches_before);
    let per_request = |v: f64| v / requests.max(1) as f64;
    Ok(Sample {
        rps,
        cpu_us: per_request(ticks as f64 / servers::ticks_per_second() * 1e6),
        switches: per_request(switches as f64),
    })
}

/// Large transfers one after another for at least `seconds`.
fn transfers(server: &Server, target: &Target, workload: &Workload, seconds: f64) -> io::Result<(u64, f64)> {
    let (method, upload) = match workload.expect {
        Expect::Echo => ("POST", workload.payload.unwrap_or(0)),
        _ => ("GET", 0),
    };
    let expected = workload.payload.unwrap_or(0);
    let start = std::time::Instant::now();
    let mut requests = 0;
    while requests == 0 || start.elapsed().as_secs_f64() < seconds {
        let got = client::transfer(server.port, method, target.path, upload)?;
        if got != expected {
            return Err(io::Error::other(format!("{}: {got} bytes instead of {expected}", target.name)));
        }
        requests += 1;
    }
    Ok((requests, requests as f64 / start.elapsed().as_secs_f64()))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Builds the C peer with apxs in `dir` (a copy of the source: apxs writes beside it).
fn build_c_module(bench: &Path, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    std::fs::copy(bench.join("c/mod_bench.c"), dir.join("mod_bench.c"))?;
    let out = Command::new("apxs").args(["-c", "mod_bench.c"]).current_dir(dir).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "apxs -c mod_bench.c failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(dir.join(".libs/mod_bench.so"))
}

fn run(o: &Options) -> io::Result<Report> {
    let release = std::env::current_exe()?.parent().map(Path::to_path_buf).unwrap_or_default();
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let repo = bench.parent().unwrap_or(&bench).to_path_buf();
    let scratch = tempfile::Builder::new().prefix("rgi-bench-").tempdir()?;
    let work = scratch.path().to_path_buf();
    // RGI_BENCH_KEEP=1 keeps the server roots and logs for a look afterwards.
    let _scratch = if std::env::var_os("RGI_BENCH_KEEP").is_some() {
        eprintln!("keeping {}", work.display());
        drop(scratch.keep());
        None
    } else {
        Some(scratch)
    };
    // Apache's children (www-data) must reach the server roots and the data file.
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    let mut report = Report {
        command: if o.smoke { "bench/run --smoke".into() } else { "bench/run".into() },
        commit: command_output("git", &["rev-parse", "--short", "HEAD"], &repo),
        date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"], &repo),
        load_before: load_average(),
        load_after: String::new(),
        settings: format!(
            "{} rounds of {} s per server (large transfers {} s), interleaved, after a {} s warm-up; wrk -t1 \
             on loopback; every Apache: event MPM, 1 child × 25 threads, KeepAlive unlimited, \
             AllowOverride None, EnableSendfile On, no access log",
            o.rounds,
            o.seconds,
            2.0 * o.seconds,
            o.warmup
        ),
        sections: Vec::new(),
        callgrind_workloads: Vec::new(),
        callgrind: Vec::new(),
        memory: None,
        floor: None,
    };

    eprintln!("building the C peer with apxs");
    let c_module = build_c_module(&bench, &work.join("c-build"))?;
    let big_file = work.join("data/big.bin");
    std::fs::create_dir_all(big_file.parent().unwrap_or(&work))?;
    // Sparse: no disk needed; both download peers read the same (cached) pages.
    std::fs::File::create(&big_file)?.set_len(o.big_file)?;
    let (hyper, hyper_port) = servers::start_hyper(&release)?;
    let setup = Setup { release, bench, work: work.clone(), c_module, big_file, hyper_port };

    let mut running: Vec<Server> = Vec::new();
    let mut hyper = Some(hyper);
    for peer in Peer::ALL {
        eprintln!("starting {}", peer.name());
        let mut server = match Server::start(peer, &setup, &work.join(peer.dir()), Mode::Normal) {
            Err(why) if peer == Peer::RgiDaemon && why.to_string().contains("Invalid command 'RGIDaemonProcess'") => {
                eprintln!("  skipped: this build of mod_rgi has no daemon mode");
                continue;
            }
            other => other?,
        };
        if peer == Peer::ProxyHyper {
            server = server.with_backend(hyper.take().expect("one backend"));
        }
        running.push(server);
    }
    // The static peer's file is in the C server's document root.
    let c_root = running[0].root.clone();
    std::fs::hard_link(&setup.big_file, c_root.join("htdocs/big.bin"))?;
    let server = |peer: Peer| running.iter().find(|s| s.peer == peer).expect("every peer runs");

    for mut workload in workloads(o).into_iter().filter(|w| o.runs(w.key)) {
        workload.targets.retain(|t| running.iter().any(|s| s.peer == t.peer));
        eprintln!("{}", workload.title);
        for t in &workload.targets {
            check(server(t.peer), t.path, &workload.expect)?;
            if o.warmup > 0.0 {
                measure(server(t.peer), t, &workload, o.warmup)?;
            }
        }
        let mut samples: Vec<[Vec<f64>; 3]> = vec![Default::default(); workload.targets.len()];
        for round in 0..o.rounds {
            for (t, [rps, cpu, switches]) in workload.targets.iter().zip(samples.iter_mut()) {
                let s = measure(server(t.peer), t, &workload, workload.seconds)?;
                eprintln!(
                    "  round {}: {:<40} {:>10.0} req/s {:>8.1} µs CPU/req {:>6.2} switches/req",
                    round + 1,
                    t.name,
                    s.rps,
                    s.cpu_us,
                    s.switches
                );
                rps.push(s.rps);
                cpu.push(s.cpu_us);
                switches.push(s.switches);
            }
        }
        let rows = workload
            .targets
            .iter()
            .zip(samples.iter_mut())
            .map(|(t, [rps, cpu, switches])| {
                let rps = median(rps);
                Row {
                    name: t.name.into(),
                    rps,
                    cpu_us: median(cpu),
                    switches: median(switches),
                    mb_per_s: workload.payload.map(|b| rps * b as f64 / 1e6),
                }
            })
            .collect();
        let note = matches!(workload.expect, Expect::Contains(_)).then(|| {
            "The C handler builds its environ as a C module does (ap_add_common_vars + ap_add_cgi_vars into \
             subprocess_env) and prints it sorted like examples/environ; mod_wsgi prints its WSGI environ \
             the same way in Python."
                .to_string()
        });
        report.sections.push(Section {
            title: format!(
                "{} ({}, median of {} × {} s)",
                workload.title,
                match workload.connections {
                    0 => "one request at a time, 1 MiB reads".to_string(),
                    c => format!("wrk -c{c}"),
                },
                o.rounds,
                workload.seconds
            ),
            note,
            rows,
        });
    }
    let running_peers: Vec<Peer> = running.iter().map(|s| s.peer).collect();
    drop(running);

    if let Some((n1, n2)) = o.callgrind.filter(|_| o.runs("callgrind")) {
        // The smoke run only checks that counting works. mod_wsgi is left out: under valgrind its
        // `apache2 -X` does not exit on SIGTERM, so callgrind never writes its counts.
        let (peers, paths): (&[Peer], &[&str]) = if o.smoke {
            (&[Peer::C, Peer::RgiEmbedded], &["/hello"])
        } else {
            (&[Peer::C, Peer::RgiEmbedded, Peer::RgiDaemon], &["/hello", "/environ", "/blob"])
        };
        report.callgrind_workloads = paths.iter().map(|p| p.trim_start_matches('/').to_string()).collect();
        for &peer in peers.iter().filter(|p| running_peers.contains(p)) {
            let mut counts = Vec::new();
            for path in paths {
                eprintln!("callgrind: {} {path} ({n1} and {n2} requests)", peer.name());
                counts.push(callgrind::per_request(peer, &setup, path, n1, n2)?);
            }
            report.callgrind.push((peer.name().to_string(), counts));
        }
    }

    if let Some((early, late)) = o.memory.filter(|_| o.runs("memory")) {
        eprintln!("memory: {} /environ, {early} then {late} requests", Peer::RgiEmbedded.name());
        let server = Server::start(Peer::RgiEmbedded, &setup, &work.join("memory"), Mode::Normal)?;
        client::hammer(server.port, "/environ", early, 16)?;
        let first = server.children_rss_kib().into_iter().max().unwrap_or(0);
        client::hammer(server.port, "/environ", late - early, 16)?;
        let second = server.children_rss_kib().into_iter().max().unwrap_or(0);
        report.memory = Some((early, first, late, second));
    }
    if o.runs("floor") {
        eprintln!("floor: {} round trips between two processes, on one core and across two", o.floor);
        report.floor = Some(floor::measure(o.floor)?);
    }
    report.load_after = load_average();
    Ok(report)
}

/// Replaces what is between the benchmark markers of the README with `summary`.
fn update_readme(readme: &Path, summary: &str) -> io::Result<()> {
    const BEGIN: &str = "<!-- bench:begin -->\n";
    const END: &str = "<!-- bench:end -->";
    let text = std::fs::read_to_string(readme)?;
    let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        return Err(io::Error::other("no <!-- bench:begin --> / <!-- bench:end --> markers"));
    };
    let updated = format!("{}{summary}{}", &text[..start + BEGIN.len()], &text[end..]);
    std::fs::write(readme, updated)
}

fn main() {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(why) => {
            eprintln!("{why}");
            std::process::exit(2);
        }
    };
    let report = match run(&options) {
        Ok(report) => report,
        Err(why) => {
            eprintln!("rgi-bench: {why}");
            std::process::exit(1);
        }
    };
    let text = report.render();
    println!("{text}");
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A full run is the project's latest result: bench/results/latest.md and the README's table.
    let full = !options.smoke && options.only.is_empty() && options.out.is_none();
    let out = options.out.clone().or_else(|| full.then(|| bench.join("results/latest.md")));
    if let Some(out) = out {
        if let Err(why) = std::fs::write(&out, &text) {
            eprintln!("rgi-bench: cannot write {}: {why}", out.display());
            std::process::exit(1);
        }
        eprintln!("written to {}", out.display());
    }
    if full {
        let readme = bench.join("../README.md");
        match update_readme(&readme, &report.summary()) {
            Ok(()) => eprintln!("updated the table in {}", readme.display()),
            Err(why) => eprintln!("rgi-bench: README.md not updated: {why}"),
        }
    }
    if options.smoke {
        let failed = report.sanity_failures();
        if !failed.is_empty() {
            eprintln!("rgi-bench --smoke: {}", failed.join("; "));
            std::process::exit(1);
        }
        eprintln!("rgi-bench --smoke: every peer answered and was measured");
    }
}
