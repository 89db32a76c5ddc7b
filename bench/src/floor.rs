//! The floor under any daemon mode: what one round trip between two processes costs on this
//! machine, with nothing else in it. A daemon-mode request adds exactly one such round trip to an
//! embedded one (the Apache thread sends the request and sleeps; a daemon thread wakes, answers,
//! and wakes it again), so this is what no daemon mode can go below, mod_rgi's or mod_proxy's.
//!
//! Two processes ping-pong over a Unix socket pair with the sizes of a hello exchange (a 1 KiB
//! request, a 100-byte answer), once pinned to one core and once to two different cores; the
//! figure is the CPU time of both (utime + stime) per round trip, as for the servers.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Bytes the Apache side sends for a hello request (environ, headers, names) and gets back.
const REQUEST: usize = 1024;
const ANSWER: usize = 100;

/// One placement's cost of a round trip.
#[derive(Clone, Copy)]
pub struct RoundTrip {
    /// CPU time of both processes per round trip, µs.
    pub cpu_us: f64,
    /// Wall-clock time per round trip, µs.
    pub wall_us: f64,
}

/// Round trips with both processes on CPU 0, then on CPUs 0 and 1 (`None` on a one-core machine).
pub fn measure(round_trips: u32) -> io::Result<(RoundTrip, Option<RoundTrip>)> {
    let same = ping_pong(round_trips, 0, 0)?;
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let across = if cpus >= 2 { Some(ping_pong(round_trips, 0, 1)?) } else { None };
    Ok((same, across))
}

fn pin(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (it is 0 or 1).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the given size.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn unpin() {
    // SAFETY: as in `pin`, with every CPU the set can name.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: `cpu` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: as in `pin`; CPUs that do not exist are ignored by the kernel.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
}

fn cpu_us(ru: &libc::rusage) -> f64 {
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn thread_cpu_us() -> f64 {
    // SAFETY: a zeroed rusage is valid output space.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with valid output space.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    cpu_us(&ru)
}

fn ping_pong(round_trips: u32, here: usize, there: usize) -> io::Result<RoundTrip> {
    let (mut near, mut far) = UnixStream::pair()?;
    // SAFETY: the child only calls async-signal-safe functions (sched_setaffinity, read, write,
    // _exit; std's read_exact and write_all allocate nothing) before it exits, so forking a
    // threaded process is sound.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        let ok = pin(there).is_ok() && {
            let (mut request, answer) = ([0u8; REQUEST], [1u8; ANSWER]);
            (0..round_trips).all(|_| far.read_exact(&mut request).is_ok() && far.write_all(&answer).is_ok())
        };
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(far);
    let result = pin(here).and_then(|()| {
        let (request, mut answer) = ([2u8; REQUEST], [0u8; ANSWER]);
        let (cpu, start) = (thread_cpu_us(), Instant::now());
        for _ in 0..round_trips {
            near.write_all(&request)
                .and_then(|()| near.read_exact(&mut answer))
                .map_err(|e| io::Error::other(format!("the ping-pong child stopped answering: {e}")))?;
        }
        Ok((thread_cpu_us() - cpu, start.elapsed()))
    });
    unpin();
    drop(near);
    // SAFETY: a zeroed rusage is valid output space; `child` is our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    // SAFETY: as above.
    if unsafe { libc::wait4(child, &mut status, 0, &mut ru) } != child || status != 0 {
        return Err(io::Error::other("the ping-pong child failed"));
    }
    let (parent_cpu, wall) = result?;
    let n = f64::from(round_trips);
    Ok(RoundTrip { cpu_us: (parent_cpu + cpu_us(&ru)) / n, wall_us: wall.as_secs_f64() * 1e6 / n })
}
