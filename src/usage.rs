//! What a process uses, as the kernel counts it in `/proc`: resident memory and CPU time. A daemon
//! process reads its own (maximum-memory, cpu-time-limit); the status page reads its daemons'.

use std::time::Duration;

use nix::unistd::{SysconfVar, sysconf};

/// Which process: this one or another by pid.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// The calling process.
    Current,
    /// Another process (its `/proc` files are readable by every user).
    Pid(u32),
}

impl Process {
    fn file(self, name: &str) -> Option<String> {
        let path = match self {
            Process::Current => format!("/proc/self/{name}"),
            Process::Pid(pid) => format!("/proc/{pid}/{name}"),
        };
        std::fs::read_to_string(path).ok()
    }

    /// Resident memory in bytes (RSS, what `ps` shows).
    pub fn resident_bytes(self) -> Option<u64> {
        let pages: u64 = self.file("statm")?.split_whitespace().nth(1)?.parse().ok()?;
        let page = sysconf(SysconfVar::PAGE_SIZE).ok()??;
        Some(pages * page as u64)
    }

    /// CPU time used, all threads, user and system.
    pub fn cpu_time(self) -> Option<Duration> {
        let stat = self.file("stat")?;
        // The name in parentheses may hold spaces and ')': fields are counted after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); the first after ')' is field 3.
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let per_second = sysconf(SysconfVar::CLK_TCK).ok()??.max(1) as u64;
        Some(Duration::from_millis(ticks * 1000 / per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn memory_and_cpu_time_follow_what_the_process_does() {
        let me = Process::Current;
        let before = (me.resident_bytes().unwrap(), me.cpu_time().unwrap());
        let held = vec![1u8; 32 << 20];
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            std::hint::black_box(&held);
        }
        let after = (me.resident_bytes().unwrap(), me.cpu_time().unwrap());
        assert!(after.0 >= before.0 + (30 << 20), "{before:?} -> {after:?}");
        assert!(after.1 >= before.1 + Duration::from_millis(60), "{before:?} -> {after:?}");
        drop(held);
        let by_pid = Process::Pid(std::process::id());
        assert!(by_pid.cpu_time().unwrap() >= after.1);
        assert!(by_pid.resident_bytes().unwrap() > 0);
        assert_eq!(Process::Pid(u32::MAX).resident_bytes(), None);
    }
}
