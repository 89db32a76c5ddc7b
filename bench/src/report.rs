//! The results as Markdown: a table per workload with ratios to its first row (the C handler or
//! Apache itself) and between every pair of servers, instructions per request, memory, and the
//! issue's targets.

use std::fmt::Write as _;

use crate::floor::RoundTrip;

/// One server's medians for one workload.
pub struct Row {
    pub name: String,
    pub rps: f64,
    pub cpu_us: f64,
    /// Context switches of the server's threads per request.
    pub switches: f64,
    pub mb_per_s: Option<f64>,
}

/// One workload.
pub struct Section {
    pub title: String,
    pub note: Option<String>,
    /// The first row is the reference (the C handler, or Apache serving the file itself).
    pub rows: Vec<Row>,
}

impl Section {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

pub struct Report {
    pub command: String,
    pub commit: String,
    pub date: String,
    pub load_before: String,
    pub load_after: String,
    pub settings: String,
    pub sections: Vec<Section>,
    /// The workloads callgrind counted (`hello`, `environ`, …).
    pub callgrind_workloads: Vec<String>,
    /// (server, instructions per request of each of `callgrind_workloads`).
    pub callgrind: Vec<(String, Vec<f64>)>,
    /// (requests, RSS KiB, requests, RSS KiB) of an Apache child serving the environ app.
    pub memory: Option<(u64, u64, u64, u64)>,
    /// The process round trip on one core and across two ([`crate::floor`]).
    pub floor: Option<(RoundTrip, Option<RoundTrip>)>,
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() { format!("{:.2}", a / b) } else { "–".into() }
}

fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One of the targets: what was measured against what was asked.
struct Goal {
    what: String,
    measured: Option<f64>,
    /// `true`: measured must be at least `bound`; `false`: at most.
    at_least: bool,
    bound: f64,
}

impl Report {
    fn section(&self, prefix: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.title.starts_with(prefix))
    }

    fn ratio_of(&self, section: &str, a: &str, b: &str, cpu: bool) -> Option<f64> {
        let s = self.section(section)?;
        let (a, b) = (s.row(a)?, s.row(b)?);
        Some(if cpu { a.cpu_us / b.cpu_us } else { a.rps / b.rps })
    }

    fn goals(&self) -> Vec<Goal> {
        let (c, rgi, rgi_daemon) = ("C handler", "mod_rgi embedded", "mod_rgi daemon");
        let mut goals = Vec::new();
        let mut goal = |what: &str, measured: Option<f64>, at_least: bool, bound: f64| {
            goals.push(Goal { what: what.into(), measured, at_least, bound })
        };
        for w in ["hello", "environ"] {
            goal(&format!("{w}: embedded req/s ÷ C"), self.ratio_of(w, rgi, c, false), true, 0.95);
            goal(&format!("{w}: embedded CPU/request ÷ C"), self.ratio_of(w, rgi, c, true), false, 1.10);
        }
        let instructions =
            |name: &str| self.callgrind.iter().find(|(n, _)| n == name).and_then(|(_, counts)| counts.first().copied());
        let hello_instr = instructions(rgi).zip(instructions(c)).map(|(a, b)| a / b);
        goal("hello: embedded instructions/request ÷ C", hello_instr, false, 1.10);
        goal(
            "hello: daemon req/s ÷ mod_wsgi daemon",
            self.ratio_of("hello", rgi_daemon, "mod_wsgi daemon", false),
            true,
            1.5,
        );
        goal(
            "hello: daemon req/s ÷ mod_proxy → hyper",
            self.ratio_of("hello", rgi_daemon, "mod_proxy → hyper", false),
            true,
            1.2,
        );
        goal("hello: daemon CPU/request ÷ C", self.ratio_of("hello", rgi_daemon, c, true), false, 1.6);
        let vs_first = |prefix: &str| {
            let s = self.section(prefix)?;
            Some(s.rows.get(1)?.rps / s.rows.first()?.rps)
        };
        goal("download: mod_rgi ÷ Apache static", vs_first("download"), true, 0.9);
        let upload = self.section("upload");
        let upload_ratio = vs_first("upload");
        let upload_mb = upload.and_then(|s| s.rows.get(1)?.mb_per_s);
        // Either bound meets the target; report the ratio, or the rate when the ratio misses.
        if upload_ratio.is_some_and(|r| r >= 0.9) || upload_mb.is_none() {
            goal("upload echo: mod_rgi ÷ C echo", upload_ratio, true, 0.9);
        } else {
            goal("upload echo: mod_rgi MB/s (or ≥ 0.9 × C echo)", upload_mb, true, 500.0);
        }
        let growth = self.memory.map(|(_, a, _, b)| b as f64 / a as f64);
        goal("environ: RSS after the late count ÷ after the early count", growth, false, 1.05);
        goals
    }

    /// Problems that make a smoke run fail: a missing or zero measurement.
    pub fn sanity_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for s in &self.sections {
            for r in &s.rows {
                if r.rps.is_nan() || r.rps <= 0.0 {
                    failures.push(format!("{}: {} measured no requests", s.title, r.name));
                }
            }
        }
        for (name, counts) in &self.callgrind {
            if counts.iter().any(|c| c.is_nan() || *c <= 0.0) {
                failures.push(format!("callgrind counted nothing for {name}"));
            }
        }
        if let Some((_, 0, _, _) | (_, _, _, 0)) = self.memory {
            failures.push("no RSS read for the Apache child".into());
        }
        failures
    }

    /// The headline: one line per workload (req/s and the ratio to the C handler or Apache), the
    /// instruction counts and the targets. The README shows this.
    pub fn summary(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "`{}` at {} on {}; load average {} before, {} after (2 cores shared with the client).\n",
            self.command, self.commit, self.date, self.load_before, self.load_after
        );
        let mut servers: Vec<&str> = Vec::new();
        let small: Vec<&Section> = self.sections.iter().filter(|s| s.rows.len() > 2).collect();
        for s in &small {
            for r in &s.rows {
                if !servers.contains(&r.name.as_str()) {
                    servers.push(&r.name);
                }
            }
        }
        if !small.is_empty() {
            let _ = writeln!(md, "| req/s (× C handler) | {} |", servers.join(" | "));
            let _ = writeln!(md, "|---|{}", "--:|".repeat(servers.len()));
            for s in &small {
                let _ = write!(md, "| {} |", s.title.split(':').next().unwrap_or_default());
                for name in &servers {
                    let cell = s.row(name).map(|r| format!("{} ({})", thousands(r.rps), ratio(r.rps, s.rows[0].rps)));
                    let _ = write!(md, " {} |", cell.unwrap_or_else(|| "–".into()));
                }
                let _ = writeln!(md);
            }
            let _ = writeln!(md);
        }
        let large: Vec<&Section> = self.sections.iter().filter(|s| s.rows.len() == 2).collect();
        if !large.is_empty() {
            let _ =
                writeln!(md, "| transfer | Apache / C | MB/s | mod_rgi | MB/s | ratio |\n|---|---|--:|---|--:|--:|");
            for s in large {
                let (a, b) = (&s.rows[0], &s.rows[1]);
                let mb = |r: &Row| r.mb_per_s.map(thousands).unwrap_or_default();
                let what = s.title.split(" (").next().unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| {what} | {} | {} | {} | {} | {} |",
                    a.name,
                    mb(a),
                    b.name,
                    mb(b),
                    ratio(b.rps, a.rps)
                );
            }
            let _ = writeln!(md);
        }
        if let Some((_, base)) = self.callgrind.first() {
            for (name, counts) in &self.callgrind[1..] {
                let each: Vec<String> = (self.callgrind_workloads.iter().zip(counts.iter().zip(base)))
                    .map(|(w, (n, c))| format!("{w} {} ({} vs {})", ratio(*n, *c), thousands(*n), thousands(*c)))
                    .collect();
                let _ =
                    writeln!(md, "Instructions per request, {name} ÷ C handler (callgrind): {}.\n", each.join(", "));
            }
        }
        if let Some(floor) = self.floor_line() {
            let _ = writeln!(md, "{floor}\n");
        }
        if let Some(switches) = self.switches_line() {
            let _ = writeln!(md, "{switches}\n");
        }
        let _ = writeln!(md, "| target (issue 6) | measured | goal | met |\n|---|--:|--:|:-:|");
        for g in self.goals() {
            let (measured, met) = match g.measured {
                Some(m) if m.is_finite() => {
                    let met = if g.at_least { m >= g.bound } else { m <= g.bound };
                    (format!("{m:.2}"), if met { "yes" } else { "**no**" })
                }
                _ => ("–".into(), "not measured"),
            };
            let _ = writeln!(
                md,
                "| {} | {measured} | {} {} | {met} |",
                g.what,
                if g.at_least { "≥" } else { "≤" },
                g.bound
            );
        }
        md
    }

    /// The floor under daemon mode beside what daemon mode costs over embedded in this run, and
    /// what the CPU target leaves for it.
    fn floor_line(&self) -> Option<String> {
        let (same, across) = self.floor?;
        let mut line = format!(
            "The floor under any daemon mode, one round trip between two processes over a Unix socket (1 KiB \
             there, 100 bytes back, nothing else): {:.1} µs CPU on one core",
            same.cpu_us
        );
        if let Some(across) = across {
            let _ = write!(line, ", {:.1} µs across two cores ({:.1} µs wall)", across.cpu_us, across.wall_us);
        }
        line.push('.');
        let hello = self.section("hello");
        let row = |name: &str| hello.and_then(|s| s.row(name)).map(|r| r.cpu_us);
        if let (Some(c), Some(embedded), Some(daemon)) =
            (row("C handler"), row("mod_rgi embedded"), row("mod_rgi daemon"))
        {
            let _ = write!(
                line,
                " mod_rgi daemon hello spends {:.1} µs CPU per request more than embedded; the CPU target \
                 (≤ 1.6 × C) leaves {:.1} µs over the C handler.",
                daemon - embedded,
                0.6 * c
            );
        }
        Some(line)
    }

    /// The context switches of each server per hello request: what daemon mode adds beside its
    /// instructions.
    fn switches_line(&self) -> Option<String> {
        let hello = self.section("hello")?;
        let each: Vec<String> = hello.rows.iter().map(|r| format!("{} {:.2}", r.name, r.switches)).collect();
        Some(format!(
            "Context switches of the servers' threads per hello request (each a thread put to sleep and woken, \
             or taken off its core): {}.",
            each.join(", ")
        ))
    }

    pub fn render(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# mod_rgi benchmark\n");
        md.push_str(&self.summary());
        let _ = writeln!(md, "\n{}. Ratios are to the first row of each table.\n", self.settings);
        for s in &self.sections {
            let base = &s.rows[0];
            let _ = writeln!(md, "## {}\n", s.title);
            if let Some(note) = &s.note {
                let _ = writeln!(md, "{note}\n");
            }
            let mb = s.rows.iter().any(|r| r.mb_per_s.is_some());
            let _ = write!(
                md,
                "| server | req/s | × {0} | server CPU µs/request | × {0} | context switches/request |",
                base.name
            );
            let _ = writeln!(md, "{}", if mb { " MB/s |" } else { "" });
            let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|{}", if mb { "--:|" } else { "" });
            for r in &s.rows {
                let _ = write!(
                    md,
                    "| {} | {} | {} | {:.1} | {} | {:.2} |",
                    r.name,
                    if r.rps < 100.0 { format!("{:.2}", r.rps) } else { thousands(r.rps) },
                    ratio(r.rps, base.rps),
                    r.cpu_us,
                    ratio(r.cpu_us, base.cpu_us),
                    r.switches
                );
                let _ = writeln!(md, "{}", r.mb_per_s.map(|v| format!(" {} |", thousands(v))).unwrap_or_default());
            }
            if s.rows.len() > 2 {
                let _ = writeln!(md, "\nreq/s of the row ÷ req/s of the column:\n");
                let _ = write!(md, "| |");
                for c in &s.rows {
                    let _ = write!(md, " {} |", c.name);
                }
                let _ = writeln!(md, "\n|---|{}", "--:|".repeat(s.rows.len()));
                for r in &s.rows {
                    let _ = write!(md, "| {} |", r.name);
                    for c in &s.rows {
                        let _ = write!(md, " {} |", ratio(r.rps, c.rps));
                    }
                    let _ = writeln!(md);
                }
            }
            let _ = writeln!(md);
        }
        if !self.callgrind.is_empty() {
            let _ = writeln!(
                md,
                "## Instructions per request (callgrind, (N2 − N1) requests)\n\nEmbedded: `apache2 -X`; \
                 daemon mode: the whole server (`--trace-children=yes`), Apache's child and the daemon \
                 process together.\n"
            );
            let base = &self.callgrind[0].1;
            let _ = write!(md, "| server |");
            for w in &self.callgrind_workloads {
                let _ = write!(md, " {w} | × C |");
            }
            let _ = writeln!(md, "\n|---|{}", "--:|--:|".repeat(self.callgrind_workloads.len()));
            for (name, counts) in &self.callgrind {
                let _ = write!(md, "| {name} |");
                for (n, c) in counts.iter().zip(base) {
                    let _ = write!(md, " {} | {} |", thousands(*n), ratio(*n, *c));
                }
                let _ = writeln!(md);
            }
            let _ = writeln!(md);
        }
        if let Some((early, a, late, b)) = self.memory {
            let _ = writeln!(md, "## Memory (mod_rgi embedded, environ app, RSS of the Apache child)\n");
            let _ = writeln!(
                md,
                "| after {} requests | after {} requests | growth |\n|--:|--:|--:|\n| {} KiB | {} KiB | {:+.1} % |\n",
                thousands(early as f64),
                thousands(late as f64),
                thousands(a as f64),
                thousands(b as f64),
                (b as f64 / a as f64 - 1.0) * 100.0
            );
        }
        md
    }
}
