//! One lock per session id, on one host: a fixed set of APR global mutexes (process and thread
//! mutexes, created in the parent before it forks), a session id picking one by its hash.
//!
//! A lock belongs to the thread that took it (mutexes must be released by their owner), is
//! re-entrant for that thread (two sessions hashing to one stripe must not deadlock a request
//! that holds both), and is released at the latest when the request ends ([`release_all`]).
//! Unrelated sessions that share a stripe wait for each other; `RGISessionLocks` sets how many
//! stripes there are.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi::{self, sys};

/// An APR global mutex created in the configuration pool.
pub struct GlobalMutex {
    /// Replaced by `child_init` in each process, before it serves requests.
    mutex: AtomicPtr<sys::apr_global_mutex_t>,
    /// The lock file, for mechanisms that re-open it in children (`fcntl`, `flock`).
    file: Option<CString>,
}

impl GlobalMutex {
    /// Creates a mutex of Apache mutex type `kind` (configurable with `Mutex kind …`).
    ///
    /// # Safety
    /// `pconf` must be the configuration pool, `s` a live server; in the parent.
    pub unsafe fn create(
        kind: &std::ffi::CStr,
        instance: Option<&str>,
        pconf: *mut sys::apr_pool_t,
        s: *mut sys::server_rec,
    ) -> Result<Self, String> {
        let mut mutex = std::ptr::null_mut();
        let mut name: *const c_char = std::ptr::null();
        let instance = instance.map(|i| CString::new(i).unwrap_or_default());
        let instance_ptr = instance.as_ref().map_or(std::ptr::null(), |i| i.as_ptr());
        // SAFETY: live pool and server; out-pointers to locals; the names are NUL-terminated.
        let rv =
            unsafe { sys::ap_global_mutex_create(&mut mutex, &mut name, kind.as_ptr(), instance_ptr, s, pconf, 0) };
        if rv != 0 {
            return Err(format!("cannot create the {} mutex (status {rv}, see the log)", kind.to_string_lossy()));
        }
        // SAFETY: null or a pool string.
        let file = unsafe { ffi::bytes(name) }.map(|n| CString::new(n).unwrap_or_default());
        Ok(GlobalMutex { mutex: AtomicPtr::new(mutex), file })
    }

    /// Re-attaches the mutex in a process forked from the parent.
    ///
    /// # Safety
    /// `pchild` must be a pool living as long as the process; before any thread uses the mutex.
    pub unsafe fn child_init(&self, pchild: *mut sys::apr_pool_t) -> Result<(), String> {
        let mut mutex = self.mutex.load(Ordering::Acquire);
        if mutex.is_null() {
            return Ok(()); // `Mutex … none`
        }
        let file = self.file.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
        // SAFETY: a mutex created in the parent, re-attached once in this process.
        let rv = unsafe { sys::apr_global_mutex_child_init(&mut mutex, file, pchild) };
        if rv != 0 {
            return Err(format!("cannot re-open a session mutex in this process (status {rv})"));
        }
        self.mutex.store(mutex, Ordering::Release);
        Ok(())
    }

    /// Blocks until the mutex is ours.
    pub fn lock(&self) -> Result<(), sys::apr_status_t> {
        let mutex = self.mutex.load(Ordering::Acquire);
        // SAFETY: a live mutex of the running configuration (null is `Mutex none`).
        if mutex.is_null() { Ok(()) } else { status(unsafe { sys::apr_global_mutex_lock(mutex) }) }
    }

    /// Releases the mutex taken by [`lock`](Self::lock) on this thread.
    pub fn unlock(&self) -> Result<(), sys::apr_status_t> {
        let mutex = self.mutex.load(Ordering::Acquire);
        // SAFETY: as in `lock`; this thread holds it.
        if mutex.is_null() { Ok(()) } else { status(unsafe { sys::apr_global_mutex_unlock(mutex) }) }
    }
}

fn status(rv: sys::apr_status_t) -> Result<(), sys::apr_status_t> {
    if rv == 0 { Ok(()) } else { Err(rv) }
}

/// The stripes.
pub struct Locks {
    stripes: Vec<GlobalMutex>,
}

/// Default number of stripes (`RGISessionLocks`).
pub const DEFAULT_STRIPES: u32 = 32;

thread_local! {
    /// Stripes this thread holds, with how many times each was taken.
    static HELD: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
}

/// FNV-1a: stable across processes and builds, so every process picks the same stripe.
pub fn stripe_of(key: &[u8], stripes: usize) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % stripes.max(1) as u64) as usize
}

/// What went wrong taking or releasing a lock.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    /// The mutex failed (APR status).
    #[error("the session mutex failed (status {0})")]
    Mutex(sys::apr_status_t),
    /// Unlock without a lock.
    #[error("this request does not hold that session's lock")]
    NotHeld,
}

impl Locks {
    /// Creates `count` mutexes.
    ///
    /// # Safety
    /// As [`GlobalMutex::create`].
    pub unsafe fn create(count: u32, pconf: *mut sys::apr_pool_t, s: *mut sys::server_rec) -> Result<Self, String> {
        let stripes = (0..count.max(1))
            // SAFETY: guaranteed by the caller.
            .map(|i| unsafe { GlobalMutex::create(super::MUTEX_TYPE, Some(&i.to_string()), pconf, s) })
            .collect::<Result<_, _>>()?;
        Ok(Locks { stripes })
    }

    /// See [`GlobalMutex::child_init`].
    ///
    /// # Safety
    /// As [`GlobalMutex::child_init`].
    pub unsafe fn child_init(&self, pchild: *mut sys::apr_pool_t) -> Result<(), String> {
        // SAFETY: guaranteed by the caller.
        self.stripes.iter().try_for_each(|m| unsafe { m.child_init(pchild) })
    }

    /// Takes the lock of `key` for this thread (again, if it holds it already).
    pub fn lock(&self, key: &[u8]) -> Result<(), LockError> {
        let stripe = stripe_of(key, self.stripes.len());
        let held = HELD.with(|h| h.borrow_mut().iter_mut().find(|(s, _)| *s == stripe).map(|(_, n)| *n += 1).is_some());
        if !held {
            self.stripes[stripe].lock().map_err(LockError::Mutex)?;
            HELD.with(|h| h.borrow_mut().push((stripe, 1)));
        }
        Ok(())
    }

    /// Releases one [`lock`](Self::lock) of `key` by this thread.
    pub fn unlock(&self, key: &[u8]) -> Result<(), LockError> {
        let stripe = stripe_of(key, self.stripes.len());
        let last = HELD.with(|h| {
            let mut held = h.borrow_mut();
            let i = held.iter().position(|(s, _)| *s == stripe).ok_or(LockError::NotHeld)?;
            held[i].1 -= 1;
            let last = held[i].1 == 0;
            if last {
                held.swap_remove(i);
            }
            Ok(last)
        })?;
        if last {
            self.stripes[stripe].unlock().map_err(LockError::Mutex)?;
        }
        Ok(())
    }
}

/// Releases every stripe this thread still holds (a request that ended without unlocking).
pub fn release_all() {
    let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
    if held.is_empty() {
        return;
    }
    if let Some(locks) = super::store().map(|s| &s.locks) {
        for (stripe, _) in held {
            if let Err(rv) = locks.stripes[stripe].unlock() {
                tracing::error!("releasing a session lock at the end of the request failed (status {rv})");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_are_stable_and_in_range() {
        assert_eq!(stripe_of(b"abc", 32), stripe_of(b"abc", 32));
        assert!((0..1000).all(|i| stripe_of(format!("id{i}").as_bytes(), 7) < 7));
        assert_eq!(stripe_of(b"anything", 0), 0);
        // Spread: 1000 keys over 8 stripes leave none empty.
        let mut seen = [false; 8];
        (0..1000).for_each(|i| seen[stripe_of(format!("k{i}").as_bytes(), 8)] = true);
        assert!(seen.iter().all(|&s| s));
    }
}
