//! Says which process serves the request (`pid`, `ppid`, `uid`, `gid`, `umask`, `nice`, `cwd`,
//! `title`, and with `?env=NAME` that variable of its environment)
//! as `key=value` lines, after sleeping `?sleep=MS` milliseconds: the daemon-mode tests use it to
//! see processes being replaced, users being dropped to, and requests being slow. `?spin=MS`
//! keeps a core busy until the thread has used MS milliseconds of CPU (however long a loaded
//! machine makes that take, up to a minute) and `?hold=MIB` keeps MIB more memory for the process's
//! life: a leaky or CPU-hungry app, for the limits that replace such processes. `?stack=KIB`
//! recurses through KIB of stack, as a deeply recursive app does.

use std::time::{Duration, Instant};

#[derive(Default)]
struct ProcInfo;

/// Uses about `kib` KiB of stack, one KiB per call.
fn recurse(kib: usize) -> u8 {
    let frame = std::hint::black_box([kib as u8; 1024]);
    if kib <= 1 { frame[0] } else { recurse(kib - 1).wrapping_add(frame[1023]) }
}

/// Fields of a /proc stat file after the command name's ')' (field 3 onwards).
fn stat_fields(path: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().map(str::to_string).collect()
}

/// The nice value, field 19 of /proc/self/stat.
fn nice() -> String {
    stat_fields("/proc/self/stat").get(16).cloned().unwrap_or_else(|| "?".into())
}

/// CPU time this thread has used (utime + stime, fields 14 and 15, in clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let fields = stat_fields("/proc/thread-self/stat");
    let ticks: u64 = fields.get(11..13).into_iter().flatten().filter_map(|f| f.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// A field of /proc/self/status (its first number for Uid/Gid).
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

impl rgi::App for ProcInfo {
    fn call<'r>(&self, req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
        if let Some(ms) = req.query_param("sleep").and_then(|v| v.parse::<u64>().ok()) {
            std::thread::sleep(Duration::from_millis(ms.min(600_000)));
        }
        if let Some(ms) = req.query_param("spin").and_then(|v| v.parse::<u64>().ok()) {
            let (wanted, give_up) =
                (thread_cpu() + Duration::from_millis(ms.min(60_000)), Instant::now() + Duration::from_secs(60));
            let mut x = 0u64;
            while thread_cpu() < wanted && Instant::now() < give_up {
                for _ in 0..1_000_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
        }
        if let Some(kib) = req.query_param("stack").and_then(|v| v.parse::<usize>().ok()) {
            std::hint::black_box(recurse(kib.min(1 << 20)));
        }
        if let Some(mib) = req.query_param("hold").and_then(|v| v.parse::<usize>().ok()) {
            // Written, so resident: a leak as the kernel counts it.
            Vec::leak(vec![1u8; mib.min(4096) << 20]);
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
        let title = String::from_utf8_lossy(cmdline.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
        let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        let body = format!(
            "pid={}\nppid={}\nuid={}\ngid={}\numask={}\nnice={}\ncwd={cwd}\ntitle={title}\n",
            std::process::id(),
            status_field(&status, "PPid:"),
            status_field(&status, "Uid:"),
            status_field(&status, "Gid:"),
            status_field(&status, "Umask:"),
            nice(),
        );
        let body = match req.query_param("env") {
            Some(name) => format!("{body}env={}\n", std::env::var(name).unwrap_or_default()),
            None => body,
        };
        Ok(rgi::Response::text(body))
    }
}

rgi::export!(ProcInfo);
