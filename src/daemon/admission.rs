//! Which of a daemon process's threads take requests.
//!
//! A thread asleep in epoll costs a wake-up — two context switches, often an interrupt to another
//! core — for every request it takes. When requests are short, a few busy threads that find the
//! next request already waiting serve it without one, so a process admits only as many threads
//! as it has cores (`base`); the others are spares, parked. When no admitted thread is free and
//! a request is left waiting, a watcher admits one more thread each [`TICK`] while either every
//! admitted thread has been on its request for a tick (all of them blocked: I/O, a sleep,
//! another service), or there are fewer than `base` threads besides the requests running longer
//! than [`SLOW`] (some blocked, the rest busy with quick ones), up to `threads=`. A thread merely
//! preempted for a few milliseconds on a loaded machine is not counted slow. Admitted threads
//! left idle for a while are given back, one a second. So a quick app runs on few threads and a
//! blocking one gets all of them within milliseconds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

/// How often the watcher looks, while the process has requests.
pub const TICK: Duration = Duration::from_millis(2);
/// A request running this long holds its thread for good, as far as admission goes.
pub const SLOW: Duration = Duration::from_millis(50);
/// Ticks with two or more admitted threads idle before one is given back (a second).
const SHRINK_AFTER: u32 = 500;
/// Ticks without a request before the watcher sleeps until the next one (0.1 s).
const SLEEP_AFTER: u32 = 50;

/// The admission state of one daemon process.
pub struct Admission {
    /// Threads admitted when nothing is waiting: the cores this process may run on.
    base: usize,
    /// The process's `threads=`.
    threads: usize,
    /// Threads that may take requests now.
    limit: AtomicUsize,
    /// Threads admitted (waiting for a request or serving one).
    admitted: AtomicUsize,
    /// Admitted threads waiting in epoll for a request.
    waiting: AtomicUsize,
    /// Set while the watcher sleeps until the next request.
    watcher_asleep: AtomicBool,
    parking: Mutex<Parking>,
    /// Spares wait here to be admitted.
    spares: Condvar,
    /// The watcher waits here between ticks, and while the process has no requests.
    watcher: Condvar,
}

struct Parking {
    parked: usize,
    stopping: bool,
}

impl Admission {
    /// Admission for a process of `threads` threads on `cores` cores.
    pub fn new(threads: usize, cores: usize) -> Admission {
        let threads = threads.max(1);
        let base = cores.clamp(1, threads);
        Admission {
            base,
            threads,
            limit: AtomicUsize::new(base),
            admitted: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            watcher_asleep: AtomicBool::new(false),
            parking: Mutex::new(Parking { parked: 0, stopping: false }),
            spares: Condvar::new(),
            watcher: Condvar::new(),
        }
    }

    /// Whether any thread is a spare (else the watcher has nothing to do).
    pub fn has_spares(&self) -> bool {
        self.base < self.threads
    }

    /// Called by a thread before it waits for a request: it goes on at once when admitted and
    /// within the limit, else parks until admitted. `admitted` is the thread's own record. False
    /// once the process stops.
    pub fn take_turn(&self, admitted: &mut bool) -> bool {
        if *admitted && self.admitted.load(Ordering::SeqCst) <= self.limit.load(Ordering::SeqCst) {
            return true;
        }
        let mut parking = self.parking.lock();
        if *admitted {
            if self.admitted.load(Ordering::SeqCst) <= self.limit.load(Ordering::SeqCst) {
                return true;
            }
            // Over the limit (it shrank): this thread becomes a spare.
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            *admitted = false;
        }
        loop {
            if parking.stopping {
                return false;
            }
            if self.admitted.load(Ordering::SeqCst) < self.limit.load(Ordering::SeqCst) {
                self.admitted.fetch_add(1, Ordering::SeqCst);
                *admitted = true;
                return true;
            }
            parking.parked += 1;
            self.spares.wait(&mut parking);
            parking.parked -= 1;
        }
    }

    /// Counts an admitted thread into (true) or out of (false) the wait for a request.
    pub fn waiting(&self, waits: bool) {
        if waits {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        } else {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Called when a request starts, after it is counted active: wakes the watcher if it sleeps.
    pub fn request_started(&self) {
        if self.watcher_asleep.load(Ordering::SeqCst) {
            let _parking = self.parking.lock();
            self.watcher.notify_one();
        }
    }

    /// Releases every spare and the watcher: the process is stopping.
    pub fn stop(&self) {
        let mut parking = self.parking.lock();
        parking.stopping = true;
        self.spares.notify_all();
        self.watcher.notify_all();
    }

    /// The watcher's loop, until the process stops. `work_waiting` tells whether a request (or
    /// a connection) is ready with nobody to take it; `running_longer` counts the requests that
    /// have run longer than the given time; `active` counts requests being served.
    pub fn watch(
        &self,
        work_waiting: impl Fn() -> bool,
        running_longer: impl Fn(Duration) -> usize,
        active: &AtomicUsize,
    ) {
        let (mut idle_surplus, mut quiet) = (0u32, 0u32);
        let mut parking = self.parking.lock();
        while !parking.stopping {
            self.watcher.wait_for(&mut parking, TICK);
            if parking.stopping {
                break;
            }
            let waiting = self.waiting.load(Ordering::SeqCst);
            let limit = self.limit.load(Ordering::SeqCst);
            let admitted = self.admitted.load(Ordering::SeqCst);
            let stalled = || running_longer(TICK) >= admitted;
            let short = || limit < self.base.saturating_add(running_longer(SLOW));
            if waiting == 0 && parking.parked > 0 && limit < self.threads && (stalled() || short()) {
                if MutexGuard::unlocked(&mut parking, &work_waiting) {
                    self.limit.store(limit + 1, Ordering::SeqCst);
                    self.spares.notify_one();
                }
                idle_surplus = 0;
            } else if waiting >= 2 && limit > self.base {
                idle_surplus += 1;
                if idle_surplus >= SHRINK_AFTER {
                    self.limit.store(limit - 1, Ordering::SeqCst);
                    idle_surplus = 0;
                }
            } else {
                idle_surplus = 0;
            }
            quiet = if active.load(Ordering::SeqCst) == 0 { quiet + 1 } else { 0 };
            if quiet >= SLEEP_AFTER {
                // A request that starts after the flag is set sees it and wakes the watcher (it
                // takes the lock held here until the wait); one that started before shows in
                // `active`, checked again after the flag.
                self.watcher_asleep.store(true, Ordering::SeqCst);
                if active.load(Ordering::SeqCst) == 0 && !parking.stopping {
                    self.watcher.wait(&mut parking);
                }
                self.watcher_asleep.store(false, Ordering::SeqCst);
                quiet = 0;
            }
        }
    }

    #[cfg(test)]
    fn limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Instant;

    /// A thread asking for a turn; it ends with whether it got one.
    fn spare(admission: &Arc<Admission>) -> JoinHandle<bool> {
        let admission = admission.clone();
        std::thread::spawn(move || {
            let mut admitted = false;
            admission.take_turn(&mut admitted)
        })
    }

    /// The watcher of `admission`, with work waiting or not, and request ages from `running_longer`.
    fn watcher(
        admission: &Arc<Admission>,
        active: &Arc<AtomicUsize>,
        work_waiting: bool,
        running_longer: impl Fn(Duration) -> usize + Send + 'static,
    ) -> JoinHandle<()> {
        let (admission, active) = (admission.clone(), active.clone());
        std::thread::spawn(move || admission.watch(|| work_waiting, running_longer, &active))
    }

    /// Waits (ten seconds at most) for a spare to be admitted or released.
    fn wait_for(spare: &JoinHandle<bool>) {
        let start = Instant::now();
        while !spare.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(10), "the spare was never admitted");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_base_is_the_cores_within_the_threads() {
        assert_eq!(Admission::new(15, 2).limit(), 2);
        assert_eq!(Admission::new(1, 8).limit(), 1);
        assert_eq!(Admission::new(4, 0).limit(), 1);
    }

    /// `threads` threads take turns; each holds its turn (a blocked request) until released.
    #[test]
    fn spares_are_admitted_when_work_waits_and_released_at_stop() {
        let admission = Arc::new(Admission::new(4, 1));
        let active = Arc::new(AtomicUsize::new(1));
        let turns = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..4 {
            let (admission, turns) = (admission.clone(), turns.clone());
            handles.push(std::thread::spawn(move || {
                let mut admitted = false;
                let took = admission.take_turn(&mut admitted);
                if took {
                    turns.fetch_add(1, Ordering::SeqCst);
                }
                // Hold the turn (a request that blocks) until the process stops.
                while took && !admission.parking.lock().stopping {
                    std::thread::sleep(Duration::from_millis(1));
                }
                took
            }));
        }
        let watcher = watcher(&admission, &active, true, |_| 100);
        // Nobody waits in epoll and work waits: one more thread per tick, up to all four.
        let start = Instant::now();
        while turns.load(Ordering::SeqCst) < 4 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "only {} threads admitted",
                turns.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(admission.limit(), 4);
        admission.stop();
        watcher.join().unwrap();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    }

    #[test]
    fn without_waiting_work_only_the_base_is_admitted() {
        let admission = Arc::new(Admission::new(3, 1));
        let active = Arc::new(AtomicUsize::new(1));
        let mut first = false;
        assert!(admission.take_turn(&mut first));
        let spare = spare(&admission);
        let watcher = watcher(&admission, &active, false, |_| 100);
        std::thread::sleep(TICK * 20);
        assert_eq!(admission.limit(), 1, "nothing waited, yet the limit grew");
        assert!(!spare.is_finished(), "the spare was admitted with nothing waiting");
        admission.stop();
        assert!(!spare.join().unwrap(), "a spare released by the stop must not take a turn");
        watcher.join().unwrap();
    }

    #[test]
    fn quick_requests_get_no_help_and_slow_ones_do() {
        let admission = Arc::new(Admission::new(3, 1));
        let active = Arc::new(AtomicUsize::new(1));
        let mut first = false;
        assert!(admission.take_turn(&mut first));
        let spare = spare(&admission);
        // Work always waits, but no request has run longer than a tick.
        let slow = Arc::new(AtomicUsize::new(0));
        let watcher = {
            let slow = slow.clone();
            watcher(&admission, &active, true, move |_| slow.load(Ordering::SeqCst))
        };
        std::thread::sleep(TICK * 20);
        assert_eq!(admission.limit(), 1, "quick requests were given help");
        assert!(!spare.is_finished());
        // The admitted thread's request turns slow: the spare is admitted beside it.
        slow.store(1, Ordering::SeqCst);
        wait_for(&spare);
        assert!(spare.join().unwrap());
        assert_eq!(admission.limit(), 2, "one slow request wants one more thread, no more");
        std::thread::sleep(TICK * 20);
        assert_eq!(admission.limit(), 2);
        admission.stop();
        watcher.join().unwrap();
    }

    /// Two admitted threads: one on a request for a while, the other starting quick ones.
    #[test]
    fn a_preempted_thread_gets_no_help_and_a_blocked_one_does() {
        let admission = Arc::new(Admission::new(4, 2));
        let active = Arc::new(AtomicUsize::new(2));
        let (mut a, mut b) = (false, false);
        assert!(admission.take_turn(&mut a) && admission.take_turn(&mut b));
        let spare = spare(&admission);
        // The one request has run longer than a tick but not `SLOW`: preempted, not blocked.
        let blocked = Arc::new(AtomicBool::new(false));
        let watcher = {
            let blocked = blocked.clone();
            let running_longer = move |limit: Duration| usize::from(limit < SLOW || blocked.load(Ordering::SeqCst));
            watcher(&admission, &active, true, running_longer)
        };
        std::thread::sleep(TICK * 20);
        assert_eq!(admission.limit(), 2, "a thread preempted for a few ticks was counted slow");
        // Past `SLOW`: it holds its thread, and the spare takes its place beside the busy one.
        blocked.store(true, Ordering::SeqCst);
        wait_for(&spare);
        assert!(spare.join().unwrap());
        std::thread::sleep(TICK * 20);
        assert_eq!(admission.limit(), 3, "one blocked request wants one more thread, no more");
        admission.stop();
        watcher.join().unwrap();
    }

    #[test]
    fn a_sleeping_watcher_wakes_for_the_next_request() {
        let admission = Arc::new(Admission::new(2, 1));
        let active = Arc::new(AtomicUsize::new(0));
        let watcher = watcher(&admission, &active, true, |_| 0);
        let start = Instant::now();
        while !admission.watcher_asleep.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(10), "the watcher never slept");
            std::thread::sleep(Duration::from_millis(5));
        }
        active.store(1, Ordering::SeqCst);
        admission.request_started();
        let start = Instant::now();
        while admission.watcher_asleep.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(10), "the watcher slept through a request");
            std::thread::sleep(Duration::from_millis(1));
        }
        admission.stop();
        watcher.join().unwrap();
    }
}
