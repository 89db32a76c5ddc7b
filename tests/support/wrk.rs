//! Load from Debian's `wrk`, with every response's status and body checked by a Lua script.

use std::io::Read;
use std::process::{Child, Command, Stdio};

/// Counts answers that are not `200` with exactly the expected body; prints the count at the end.
const CHECK_SCRIPT: &str = r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) expected = args[1]; bad = 0; first_bad = "" end
function response(status, headers, body)
  if status ~= 200 or body ~= expected then
    if bad == 0 then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local total, first = 0, ""
  for _, t in ipairs(threads) do
    local b = t:get("bad")
    total = total + b
    if b > 0 and first == "" then first = t:get("first_bad") end
  end
  io.write(string.format("bad_answers=%d\nfirst_bad=%s\n", total, first))
end
"#;

/// A running wrk.
pub struct Wrk {
    child: Child,
    _dir: tempfile::TempDir,
}

/// What wrk counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WrkResult {
    pub requests: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub timeouts: u64,
    /// Non-200 answers or bodies other than the expected one (checked by the Lua script).
    pub bad_answers: u64,
    pub first_bad: String,
    pub output: String,
}

impl WrkResult {
    /// Every kind of failure wrk can see.
    pub fn failures(&self) -> u64 {
        self.connect_errors + self.read_errors + self.write_errors + self.timeouts + self.bad_answers
    }
}

impl Wrk {
    /// Starts `wrk` against `http://127.0.0.1:PORT{path}` with `connections` connections, until
    /// [`stop`](Self::stop). `close` sends `Connection: close` (a new connection per request).
    pub fn start(port: u16, path: &str, connections: u32, close: bool, expected_body: &str) -> Wrk {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("check.lua");
        std::fs::write(&script, CHECK_SCRIPT).unwrap();
        let mut cmd = Command::new("wrk");
        cmd.args(["-t", "1", "-c", &connections.to_string(), "-d", "1h", "--timeout", "30s", "-s"]).arg(&script);
        if close {
            cmd.args(["-H", "Connection: close"]);
        }
        cmd.arg(format!("http://127.0.0.1:{port}{path}")).args(["--", expected_body]);
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run wrk (apt-get install wrk)");
        Wrk { child, _dir: dir }
    }

    /// Stops wrk (SIGINT makes it print its summary) and reads what it counted.
    pub fn stop(mut self) -> WrkResult {
        // SAFETY: kill with our own running child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut output = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut output).unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        self.child.wait().unwrap();
        output.push_str(&err);
        parse(output)
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(output: String) -> WrkResult {
    let mut r = WrkResult::default();
    let number = |s: &str| s.trim().trim_end_matches(',').parse::<u64>().unwrap_or(0);
    for line in output.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            r.requests = number(n);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            for pair in words.chunks(2) {
                let value = pair.get(1).map(|v| number(v)).unwrap_or(0);
                match pair[0] {
                    "connect" => r.connect_errors = value,
                    "read" => r.read_errors = value,
                    "write" => r.write_errors = value,
                    "timeout" => r.timeouts = value,
                    _ => {}
                }
            }
        } else if let Some(n) = line.strip_prefix("bad_answers=") {
            r.bad_answers = number(n);
        } else if let Some(s) = line.strip_prefix("first_bad=") {
            r.first_bad = s.to_string();
        }
    }
    assert!(output.contains("bad_answers="), "wrk did not run its check script:\n{output}");
    r.output = output;
    r
}
