//! Live status shared by all of Apache's processes: per (process group, application group)
//! request counters and latency histograms, and the daemon processes, in one shared memory table
//! made in the parent at post_config and inherited by every child it forks.
//!
//! Recording a request costs a few relaxed atomic increments on the group's slot; nothing is
//! locked. A group claims a free slot the first time a process serves it (a compare-and-swap);
//! two processes claiming the same new group at once may each get one, and the status page adds
//! such twins up. `SetHandler rgi-status` shows the table ([`handler`]).

mod page;

use std::cell::UnsafeCell;
use std::ffi::c_int;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::ffi::{self, sys};

pub use page::handler;

/// Upper bounds of the latency histogram's buckets, in microseconds (the last bucket is +Inf).
pub const BUCKETS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Longest group key kept (process group + application group); longer names are cut.
const KEY_LEN: usize = 240;
/// Group slots. Slot 0 counts the groups that found the table full.
const GROUPS: usize = 512;
/// Daemon process slots.
const DAEMONS: usize = 256;
const REASON_LEN: usize = 64;

const FREE: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;

/// The counters of one (process group, application group).
#[repr(C)]
pub struct GroupStats {
    state: AtomicU32,
    process_group_len: AtomicU32,
    application_group_len: AtomicU32,
    key: UnsafeCell<[u8; KEY_LEN]>,
    requests: AtomicU64,
    in_flight: AtomicI64,
    errors: AtomicU64,
    panics: AtomicU64,
    latency_sum_us: AtomicU64,
    latency: [AtomicU64; BUCKETS_US.len() + 1],
}

/// One daemon process, as its supervisor reports it.
#[repr(C)]
struct DaemonSlot {
    state: AtomicU32,
    pid: AtomicU32,
    group_len: AtomicU32,
    group: UnsafeCell<[u8; KEY_LEN]>,
    started: AtomicU64,
    requests: AtomicU64,
    connections: AtomicU64,
    restarts: AtomicU64,
    reason_len: AtomicU32,
    reason: UnsafeCell<[u8; REASON_LEN]>,
}

#[repr(C)]
struct Table {
    groups: [GroupStats; GROUPS],
    daemons: [DaemonSlot; DAEMONS],
}

// SAFETY: every field is atomic except the name bytes, which one process writes while it alone
// holds the slot in state CLAIMING and nobody changes once the slot is READY (published with a
// Release store, read after an Acquire load).
unsafe impl Sync for Table {}

static TABLE: OnceLock<&'static Table> = OnceLock::new();

/// Makes the shared table, once per Apache parent (the module is pinned, so the table outlives
/// configuration reloads and the counters go on across graceful restarts). Called in
/// post_config, before any child is forked.
pub fn init() {
    if TABLE.get().is_some() {
        return;
    }
    match ffi::shared_anonymous_mapping(size_of::<Table>()) {
        Some(memory) => {
            // SAFETY: a fresh zeroed shared mapping of the table's size, page aligned, never
            // unmapped; all-zero bytes are a valid Table (every slot FREE, every counter 0).
            let _ = TABLE.set(unsafe { &*memory.cast::<Table>() });
        }
        None => crate::logging::log(sys::APLOG_ERR, "rgi-status: no shared memory for the status table"),
    }
}

fn table() -> Option<&'static Table> {
    TABLE.get().copied()
}

/// Copies `parts` into `key` (cut at its size); returns each part's stored length.
fn write_key(key: &mut [u8; KEY_LEN], parts: [&[u8]; 2]) -> [u32; 2] {
    let mut at = 0;
    parts.map(|part| {
        let n = part.len().min(KEY_LEN - at);
        key[at..at + n].copy_from_slice(&part[..n]);
        at += n;
        n as u32
    })
}

impl GroupStats {
    /// (process group, application group).
    fn names(&self) -> (&[u8], &[u8]) {
        // SAFETY: READY slots' names never change (see Table's Sync).
        let key = unsafe { &*self.key.get() };
        let p = (self.process_group_len.load(Relaxed) as usize).min(KEY_LEN);
        let a = (self.application_group_len.load(Relaxed) as usize).min(KEY_LEN - p);
        (&key[..p], &key[p..p + a])
    }

    /// Counts a request that started at `start` and ended with HTTP `status`.
    pub fn record(&self, start: Instant, status: c_int, panicked: bool) {
        let us = start.elapsed().as_micros().min(u64::MAX as u128) as u64;
        let bucket = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(BUCKETS_US.len());
        self.latency[bucket].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Relaxed);
        }
        if panicked {
            self.panics.fetch_add(1, Relaxed);
        }
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// Counts a request as in flight until [`record`](Self::record).
    pub fn begin(&self) -> Instant {
        self.in_flight.fetch_add(1, Relaxed);
        Instant::now()
    }
}

/// The slot of (process group, application group), claimed on first use; the overflow slot
/// when the table is full; `None` without a table.
pub fn group(process_group: &[u8], application_group: &[u8]) -> Option<&'static GroupStats> {
    let table = table()?;
    let mut key = [0u8; KEY_LEN];
    let lens = write_key(&mut key, [process_group, application_group]);
    let wanted = (&key[..lens[0] as usize], &key[lens[0] as usize..(lens[0] + lens[1]) as usize]);
    for slot in &table.groups[1..] {
        match slot.state.load(Acquire) {
            READY if slot.names() == wanted => return Some(slot),
            FREE if slot.state.compare_exchange(FREE, CLAIMING, Acquire, Relaxed).is_ok() => {
                // SAFETY: this process alone holds the slot while it is CLAIMING.
                unsafe { *slot.key.get() = key };
                slot.process_group_len.store(lens[0], Relaxed);
                slot.application_group_len.store(lens[1], Relaxed);
                slot.state.store(READY, Release);
                return Some(slot);
            }
            _ => {}
        }
    }
    Some(&table.groups[0])
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Hooks for the daemon supervisor: it reports each daemon process it starts and why it
/// replaced one, and each daemon process counts the requests it serves.
pub mod daemon {
    use super::*;

    fn find(pid: u32) -> Option<&'static DaemonSlot> {
        table()?.daemons.iter().find(|d| d.state.load(Acquire) == READY && d.pid.load(Relaxed) == pid)
    }

    /// Index + 1 of this daemon process's own slot, once found (0: not yet).
    static OWN_SLOT: AtomicUsize = AtomicUsize::new(0);

    /// This daemon process's slot: looked up once, then checked (the supervisor may register the
    /// process only after it started).
    fn own(pid: u32) -> Option<&'static DaemonSlot> {
        let table = table()?;
        if let Some(slot) = OWN_SLOT.load(Relaxed).checked_sub(1).map(|i| &table.daemons[i])
            && slot.state.load(Acquire) == READY
            && slot.pid.load(Relaxed) == pid
        {
            return Some(slot);
        }
        let (i, slot) = table
            .daemons
            .iter()
            .enumerate()
            .find(|(_, d)| d.state.load(Acquire) == READY && d.pid.load(Relaxed) == pid)?;
        OWN_SLOT.store(i + 1, Relaxed);
        Some(slot)
    }

    /// A daemon process `pid` of `group` started; `replaced` is the process it replaces, with
    /// why that one ended (`"maximum-requests"`, `"killed by signal 9"`, …), whose slot it
    /// takes over (its restart count goes on).
    pub fn started(group: &str, pid: u32, replaced: Option<(u32, &str)>) {
        let Some(table) = table() else { return };
        let (slot, restarts) = match replaced.and_then(|(old, _)| find(old)) {
            Some(slot) => (slot, slot.restarts.load(Relaxed) + 1),
            None => {
                let free =
                    table.daemons.iter().find(|d| d.state.compare_exchange(FREE, CLAIMING, Acquire, Relaxed).is_ok());
                let Some(slot) = free else { return };
                (slot, 0)
            }
        };
        slot.state.store(CLAIMING, Relaxed);
        let mut name = [0u8; KEY_LEN];
        let [len, _] = write_key(&mut name, [group.as_bytes(), b""]);
        let mut reason = [0u8; REASON_LEN];
        let why = replaced.map_or("", |(_, why)| why).as_bytes();
        let why = &why[..why.len().min(REASON_LEN)];
        reason[..why.len()].copy_from_slice(why);
        // SAFETY: the supervisor alone writes the slot while it is CLAIMING.
        unsafe {
            *slot.group.get() = name;
            *slot.reason.get() = reason;
        }
        slot.group_len.store(len, Relaxed);
        slot.reason_len.store(why.len() as u32, Relaxed);
        slot.pid.store(pid, Relaxed);
        slot.started.store(now_unix(), Relaxed);
        slot.requests.store(0, Relaxed);
        slot.connections.store(0, Relaxed);
        slot.restarts.store(restarts, Relaxed);
        slot.state.store(READY, Release);
    }

    /// Daemon process `pid` ended for good (its group was stopped).
    pub fn stopped(pid: u32) {
        if let Some(slot) = find(pid) {
            slot.state.store(FREE, Release);
        }
    }

    /// Waits (a moment at most) until the parent has registered daemon process `pid`, which it
    /// does right after the fork: requests served before that would not be counted.
    pub fn wait_until_registered(pid: u32) {
        if table().is_none() {
            return;
        }
        for _ in 0..1000 {
            if own(pid).is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Counts a request served by daemon process `pid` (called in that process).
    pub fn request_served(pid: u32) {
        if let Some(slot) = own(pid) {
            slot.requests.fetch_add(1, Relaxed);
        }
    }

    /// Counts a connection from an Apache child accepted by daemon process `pid` (called in that
    /// process). Connections carry many requests: far fewer connections than requests means
    /// Apache's children reuse them.
    pub fn connection_accepted(pid: u32) {
        if let Some(slot) = own(pid) {
            slot.connections.fetch_add(1, Relaxed);
        }
    }
}

/// A snapshot of one group, for the page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSnapshot {
    /// Process group (`""` embedded).
    pub process_group: String,
    /// Application group (`""` is %{GLOBAL}).
    pub application_group: String,
    /// Requests served.
    pub requests: u64,
    /// Requests being served now.
    pub in_flight: i64,
    /// Responses with a 5xx status.
    pub errors: u64,
    /// Requests whose app panicked.
    pub panics: u64,
    /// Total latency, µs.
    pub latency_sum_us: u64,
    /// Requests per latency bucket ([`BUCKETS_US`], then +Inf).
    pub latency: Vec<u64>,
}

impl GroupSnapshot {
    fn add(&mut self, other: &GroupSnapshot) {
        self.requests += other.requests;
        self.in_flight += other.in_flight;
        self.errors += other.errors;
        self.panics += other.panics;
        self.latency_sum_us += other.latency_sum_us;
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }

    /// The `q` quantile (0..=1) of the latency in µs, interpolated within its bucket; `None`
    /// before any request.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut seen = 0u64;
        for (i, &n) in self.latency.iter().enumerate() {
            if n > 0 && (seen + n) as f64 >= rank {
                let low = if i == 0 { 0 } else { BUCKETS_US[i - 1] } as f64;
                let Some(&high) = BUCKETS_US.get(i) else { return Some(low) };
                return Some(low + (high as f64 - low) * ((rank - seen as f64) / n as f64).clamp(0.0, 1.0));
            }
            seen += n;
        }
        None
    }
}

/// A daemon process, for the page.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSnapshot {
    /// Its process group.
    pub group: String,
    /// Its pid.
    pub pid: u32,
    /// Start time, seconds since the epoch.
    pub started: u64,
    /// Requests it served.
    pub requests: u64,
    /// Connections from Apache's children it accepted.
    pub connections: u64,
    /// How many processes its slot had before it.
    pub restarts: u64,
    /// Why the previous one ended.
    pub last_restart_reason: String,
    /// Its resident memory, bytes (`None` if /proc would not say).
    pub resident_bytes: Option<u64>,
    /// The CPU time it used, seconds.
    pub cpu_seconds: Option<f64>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every group with its twins added up, sorted by name; the overflow slot last when used.
pub fn groups() -> Vec<GroupSnapshot> {
    let Some(table) = table() else { return Vec::new() };
    let mut out: Vec<GroupSnapshot> = Vec::new();
    for (i, slot) in table.groups.iter().enumerate() {
        let names = match (i, slot.state.load(Acquire)) {
            (0, _) if slot.requests.load(Relaxed) == 0 && slot.in_flight.load(Relaxed) == 0 => continue,
            (0, _) => (String::new(), "(groups past the status table's size)".to_string()),
            (_, READY) => (text(slot.names().0), text(slot.names().1)),
            _ => continue,
        };
        let snapshot = GroupSnapshot {
            process_group: names.0,
            application_group: names.1,
            requests: slot.requests.load(Relaxed),
            in_flight: slot.in_flight.load(Relaxed),
            errors: slot.errors.load(Relaxed),
            panics: slot.panics.load(Relaxed),
            latency_sum_us: slot.latency_sum_us.load(Relaxed),
            latency: slot.latency.iter().map(|b| b.load(Relaxed)).collect(),
        };
        match out.iter_mut().find(|g| {
            (&g.process_group, &g.application_group) == (&snapshot.process_group, &snapshot.application_group)
        }) {
            Some(twin) => twin.add(&snapshot),
            None => out.push(snapshot),
        }
    }
    out.sort_by(|a, b| (&a.process_group, &a.application_group).cmp(&(&b.process_group, &b.application_group)));
    out
}

/// Every daemon process, by group and pid.
pub fn daemons() -> Vec<DaemonSnapshot> {
    let Some(table) = table() else { return Vec::new() };
    let mut out: Vec<DaemonSnapshot> = table
        .daemons
        .iter()
        .filter(|d| d.state.load(Acquire) == READY)
        .map(|d| {
            // SAFETY: READY slots' names never change (see Table's Sync).
            let (group, reason) = unsafe { (&*d.group.get(), &*d.reason.get()) };
            let process = crate::usage::Process::Pid(d.pid.load(Relaxed));
            DaemonSnapshot {
                group: text(&group[..(d.group_len.load(Relaxed) as usize).min(KEY_LEN)]),
                pid: d.pid.load(Relaxed),
                started: d.started.load(Relaxed),
                requests: d.requests.load(Relaxed),
                connections: d.connections.load(Relaxed),
                restarts: d.restarts.load(Relaxed),
                last_restart_reason: text(&reason[..(d.reason_len.load(Relaxed) as usize).min(REASON_LEN)]),
                resident_bytes: process.resident_bytes(),
                cpu_seconds: process.cpu_time().map(|t| t.as_secs_f64()),
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.group, a.pid).cmp(&(&b.group, b.pid)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(latency: &[(usize, u64)]) -> GroupSnapshot {
        let mut s = GroupSnapshot { latency: vec![0; BUCKETS_US.len() + 1], ..Default::default() };
        for &(i, n) in latency {
            s.latency[i] = n;
        }
        s
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        assert_eq!(snapshot(&[]).quantile_us(0.5), None);
        // 100 requests in (100, 250] µs: the median is halfway.
        assert_eq!(snapshot(&[(1, 100)]).quantile_us(0.5), Some(175.0));
        let s = snapshot(&[(0, 90), (5, 10)]);
        assert!(s.quantile_us(0.5).unwrap() <= 100.0);
        let p99 = s.quantile_us(0.99).unwrap();
        assert!((2_500.0..=5_000.0).contains(&p99), "{p99}");
        assert_eq!(snapshot(&[(BUCKETS_US.len(), 1)]).quantile_us(0.5), Some(60_000_000.0));
    }

    #[test]
    fn keys_are_cut_to_the_slot() {
        let mut key = [0u8; KEY_LEN];
        assert_eq!(write_key(&mut key, [b"pg", b"app"]), [2, 3]);
        assert_eq!(&key[..5], b"pgapp");
        let long = [b'x'; 300];
        assert_eq!(write_key(&mut key, [b"pg", &long]), [2, KEY_LEN as u32 - 2]);
    }
}
