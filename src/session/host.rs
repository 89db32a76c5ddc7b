//! The session functions of the host table (ABI 1.2). They use only process-wide state (the
//! store of the running configuration and the calling thread's locks), so every host table —
//! Apache's children, daemon processes — can list them as they are.

use std::sync::atomic::{AtomicBool, Ordering};

use rgi::abi::{HostRequest, RgiStatus, RgiStr, SESSION_MAX_KEY, SESSION_MAX_RECORD, StrSink, status};

use super::cache::describe;
use super::locks::LockError;
use super::{Store, store};
use crate::ffi::{self, sys};

/// The store, or UNSUPPORTED (said once per process in the error log).
fn usable() -> Result<&'static Store, RgiStatus> {
    static TOLD: AtomicBool = AtomicBool::new(false);
    store().ok_or_else(|| {
        if !TOLD.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "an app asked for sessions, but there is no session cache: load mod_socache_shmcb \
                 (the default store) or set RGISessionCache"
            );
        }
        status::UNSUPPORTED
    })
}

/// # Safety
/// `key` must describe bytes live for the call.
unsafe fn key<'a>(key: RgiStr) -> Result<&'a [u8], RgiStatus> {
    // SAFETY: guaranteed by the caller.
    let key = unsafe { key.as_bytes() };
    if key.is_empty() || key.len() > SESSION_MAX_KEY {
        tracing::error!("a session key of {} bytes (1 to {SESSION_MAX_KEY} allowed)", key.len());
        return Err(status::INVALID);
    }
    Ok(key)
}

/// Runs a session call: panics become IO, early returns their status.
fn run(f: impl FnOnce() -> Result<RgiStatus, RgiStatus>) -> RgiStatus {
    ffi::guard(status::IO, || f().unwrap_or_else(|s| s))
}

fn io(what: &str, rv: sys::apr_status_t) -> RgiStatus {
    tracing::error!("the session cache failed to {what}: {}", describe(rv));
    status::IO
}

/// `HostApi::session_get`.
///
/// # Safety
/// Called by apps through the host table with arguments valid for the call.
pub unsafe extern "C" fn session_get(_req: *mut HostRequest, id: RgiStr, out: *mut StrSink) -> RgiStatus {
    run(|| {
        let store = usable()?;
        // SAFETY: the app passes a key valid for the call.
        let id = unsafe { key(id) }?;
        match store.cache.get(id, SESSION_MAX_RECORD) {
            Ok(Some(data)) => {
                // SAFETY: the app passes a valid sink (or null) for the call.
                if let Some(sink) = unsafe { out.as_ref() } {
                    // SAFETY: the sink's own function and context.
                    unsafe { (sink.push)(sink.ctx, RgiStr::new(&data)) };
                }
                Ok(status::OK)
            }
            Ok(None) => Ok(status::NOT_FOUND),
            Err(rv) => Ok(io("read a session", rv)),
        }
    })
}

/// `HostApi::session_put`.
///
/// # Safety
/// Called by apps through the host table with arguments valid for the call.
pub unsafe extern "C" fn session_put(_req: *mut HostRequest, id: RgiStr, data: RgiStr, ttl_seconds: u32) -> RgiStatus {
    run(|| {
        let store = usable()?;
        // SAFETY: the app passes a key and data valid for the call.
        let (id, data) = unsafe { (key(id)?, data.as_bytes()) };
        if data.len() > SESSION_MAX_RECORD {
            return Err(status::TOO_LARGE);
        }
        if ttl_seconds == 0 {
            return Err(status::INVALID);
        }
        // A second more than asked: providers that count whole seconds (Redis) would round a
        // remaining 0.99 s down to nothing. Apps check their own timeout on load.
        // SAFETY: apr_time_now has no preconditions.
        let expiry = unsafe { sys::apr_time_now() } + (i64::from(ttl_seconds) + 1) * 1_000_000;
        Ok(match store.cache.put(id, data, expiry) {
            Ok(()) => status::OK,
            Err(rv) => io("store a session", rv),
        })
    })
}

/// `HostApi::session_remove`.
///
/// # Safety
/// Called by apps through the host table with arguments valid for the call.
pub unsafe extern "C" fn session_remove(_req: *mut HostRequest, id: RgiStr) -> RgiStatus {
    run(|| {
        let store = usable()?;
        // SAFETY: the app passes a key valid for the call.
        let id = unsafe { key(id) }?;
        Ok(match store.cache.remove(id) {
            Ok(()) => status::OK,
            Err(rv) => io("remove a session", rv),
        })
    })
}

fn lock_status(result: Result<(), LockError>) -> RgiStatus {
    match result {
        Ok(()) => status::OK,
        Err(LockError::NotHeld) => status::STATE,
        Err(LockError::Mutex(rv)) => io("lock a session", rv),
    }
}

/// `HostApi::session_lock`.
///
/// # Safety
/// Called by apps through the host table with arguments valid for the call.
pub unsafe extern "C" fn session_lock(_req: *mut HostRequest, id: RgiStr) -> RgiStatus {
    run(|| {
        let store = usable()?;
        // SAFETY: the app passes a key valid for the call.
        let id = unsafe { key(id) }?;
        Ok(lock_status(store.locks.lock(id)))
    })
}

/// `HostApi::session_unlock`.
///
/// # Safety
/// Called by apps through the host table with arguments valid for the call.
pub unsafe extern "C" fn session_unlock(_req: *mut HostRequest, id: RgiStr) -> RgiStatus {
    run(|| {
        let store = usable()?;
        // SAFETY: the app passes a key valid for the call.
        let id = unsafe { key(id) }?;
        Ok(lock_status(store.locks.unlock(id)))
    })
}
