//! Apache's processes as /proc shows them: what the leak checks count (file descriptors, threads,
//! resident memory, processes).

use std::collections::{BTreeMap, HashSet};

/// One process and the resources it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// `R`, `S`, `Z`… from /proc/PID/stat.
    pub state: char,
    /// Start time in clock ticks since boot: with the pid, names the process even if the pid is
    /// reused later.
    pub start: u64,
    /// Open file descriptors (entries of /proc/PID/fd), less the kept daemon connections.
    pub fds: usize,
    /// Daemon-mode connections held open between requests (see [`kept_daemon_connections`]):
    /// a bounded cache that grows with the threads that served daemon requests, not a leak, so
    /// not in `fds`.
    pub kept_daemon_connections: usize,
    /// Threads (entries of /proc/PID/task).
    pub threads: usize,
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// The anonymous (heap and stack) part of it in KiB: what a leak grows. Shared memory (a
    /// session cache, mapped files) counts in every process's RSS, not here.
    pub anon_kib: u64,
}

/// Inodes of the connected UNIX stream sockets that daemon mode keeps between requests: an
/// Apache child's end has no address, a daemon's end carries its group's socket path (`….sock`).
fn kept_daemon_connections() -> HashSet<u64> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode [Path]
            let f: Vec<&str> = line.split_whitespace().collect();
            let stream_connected = f.get(4) == Some(&"0001") && f.get(5) == Some(&"03");
            let daemon_path = f.get(7).is_none_or(|path| path.ends_with(".sock"));
            (stream_connected && daemon_path).then(|| f.get(6)?.parse().ok())?
        })
        .collect()
}

/// How many of `pid`'s descriptors are among the `kept` connections.
fn count_kept(pid: u32, kept: &HashSet<u64>) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse::<u64>().ok())
        .filter(|inode| kept.contains(inode))
        .count()
}

fn read_proc(pid: u32) -> Option<Proc> {
    let dir = format!("/proc/{pid}");
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // pid (comm) state ppid pgrp … starttime is field 22; comm may contain spaces and ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let count = |sub: &str| std::fs::read_dir(format!("{dir}/{sub}")).map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Some(Proc {
        pid,
        ppid: num(1) as u32,
        pgid: num(2) as u32,
        state: f.first().and_then(|s| s.chars().next()).unwrap_or('?'),
        start: num(19),
        fds: count("fd"),
        kept_daemon_connections: 0,
        threads: count("task"),
        rss_kib: kib("VmRSS:"),
        anon_kib: kib("RssAnon:"),
    })
}

/// Every process in process group `pgid` (Apache's parent leads its own group, so this is the
/// parent, its children and any daemon processes it started).
pub fn group(pgid: u32) -> Vec<Proc> {
    let mut found = Vec::new();
    let kept = kept_daemon_connections();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Some(mut p) = read_proc(pid).filter(|p| p.pgid == pgid) {
            p.kept_daemon_connections = count_kept(pid, &kept);
            p.fds = p.fds.saturating_sub(p.kept_daemon_connections);
            found.push(p);
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// A summary of a process group that two idle moments of a healthy server share: the parent's
/// descriptors and threads, how many other processes run, and how many of them hold each
/// (descriptors, threads) shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    pub parent_fds: usize,
    pub parent_threads: usize,
    pub zombies: usize,
    /// (fds, threads) → how many non-parent processes have exactly that.
    pub others: BTreeMap<(usize, usize), usize>,
}

/// The footprint of Apache whose parent is `parent`.
pub fn footprint(parent: u32) -> Footprint {
    let procs = group(parent);
    let me = procs.iter().find(|p| p.pid == parent).cloned().expect("the Apache parent runs");
    let mut others = BTreeMap::new();
    for p in procs.iter().filter(|p| p.pid != parent && p.state != 'Z') {
        *others.entry((p.fds, p.threads)).or_insert(0) += 1;
    }
    Footprint {
        parent_fds: me.fds,
        parent_threads: me.threads,
        zombies: procs.iter().filter(|p| p.state == 'Z').count(),
        others,
    }
}

/// Resident memory (KiB) and open descriptors summed over the whole group.
pub fn totals(pgid: u32) -> (u64, usize) {
    group(pgid).iter().fold((0, 0), |(rss, fds), p| (rss + p.rss_kib, fds + p.fds))
}

/// What a process's descriptors point at, sockets with their TCP state and ports (for a leak
/// report).
pub fn describe_fds(pid: u32) -> Vec<String> {
    let mut tcp = std::collections::HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 {
                let port = |a: &str| a.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()).unwrap_or(0);
                let state = match f[3] {
                    "01" => "ESTABLISHED",
                    "06" => "TIME_WAIT",
                    "07" => "CLOSE",
                    "08" => "CLOSE_WAIT",
                    "0A" => "LISTEN",
                    "04" => "FIN_WAIT1",
                    "05" => "FIN_WAIT2",
                    "09" => "LAST_ACK",
                    "0B" => "CLOSING",
                    other => other,
                };
                tcp.insert(f[9].to_string(), format!("{state} :{}->:{}", port(f[1]), port(f[2])));
            }
        }
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        let target = std::fs::read_link(entry.path()).map(|t| t.display().to_string()).unwrap_or_default();
        let inode = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')).unwrap_or("");
        let extra = tcp.get(inode).cloned().unwrap_or_default();
        out.push(format!("{} -> {target} {extra}", entry.file_name().to_string_lossy()));
    }
    out.sort();
    out
}
