//! Runs wrk against one server and reads what it measured.

use std::io;
use std::process::Command;

/// What one wrk run measured.
pub struct Run {
    pub requests: u64,
    pub requests_per_second: f64,
    /// Socket errors wrk reported (connect, read, write, timeout), if any.
    pub socket_errors: Option<String>,
}

/// `wrk -t1 -c{connections} -d{seconds}` against `http://127.0.0.1:{port}{path}`.
pub fn run(port: u16, path: &str, connections: u32, seconds: f64) -> io::Result<Run> {
    let mut command = Command::new("wrk");
    command.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{}s", seconds.ceil().max(1.0) as u64),
        "--timeout",
        "60s",
    ]);
    let out = command.arg(format!("http://127.0.0.1:{port}{path}")).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(io::Error::other(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr))));
    }
    parse(&text).ok_or_else(|| io::Error::other(format!("cannot read wrk's output:\n{text}")))
}

fn parse(text: &str) -> Option<Run> {
    let mut run = Run { requests: 0, requests_per_second: 0.0, socket_errors: None };
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        if let Some((count, _)) = line.split_once(" requests in ") {
            run.requests = count.trim().parse().ok()?;
            seen = true;
        } else if let Some(rps) = line.strip_prefix("Requests/sec:") {
            run.requests_per_second = rps.trim().parse().ok()?;
        } else if line.starts_with("Socket errors:") {
            run.socket_errors = Some(line.to_string());
        } else if line.starts_with("Non-2xx or 3xx responses:") {
            return None;
        }
    }
    seen.then_some(run)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_wrk_output() {
        let text = "Running 1s test @ http://127.0.0.1:1/hello\n  1 threads and 16 connections\n\
                    \x20 43021 requests in 1.00s, 7.00MB read\nRequests/sec:  43012.55\nTransfer/sec:      7.00MB\n";
        let run = super::parse(text).unwrap();
        assert_eq!(run.requests, 43021);
        assert!((run.requests_per_second - 43012.55).abs() < 1e-6);
        assert!(super::parse("  10 requests in 1.00s\n  Non-2xx or 3xx responses: 10\n").is_none());
    }
}
