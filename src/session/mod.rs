//! The session store apps reach through the host ABI (1.2, `HostApi::session_*`).
//!
//! Records live in one of Apache's socache providers ([`cache`]), chosen by `RGISessionCache`
//! ([`directives`]): `shmcb` shared memory by default — one store for every Apache child and
//! every daemon process of one host — or `redis`/`memcache` to share sessions between hosts.
//! Two requests of one session are kept apart by striped global mutexes ([`locks`]): on one host
//! they run one after the other; across hosts nothing excludes them and the last save wins.
//!
//! Lifecycle, as socache providers require it: the instance is created while the configuration
//! is read (so `apache2 -t` reports a bad argument), initialised with the mutexes in post_config
//! in the parent, and every process forked after that (Apache's children, daemon processes)
//! calls [`child_init`] before serving and [`end_request`] after each request.

pub mod cache;
pub mod directives;
pub mod host;
pub mod locks;

use std::ffi::c_int;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi::{self, sys};

pub use directives::{CacheChoice, Settings};

/// What post_config set up for the running configuration.
pub struct Store {
    /// The cache holding the records.
    pub cache: cache::Cache,
    /// The per-session locks.
    pub locks: locks::Locks,
}

/// The store of the running configuration (null when sessions are off or not yet set up). It
/// lives in the configuration pool, whose cleanup resets this pointer before dropping it.
static STORE: AtomicPtr<Store> = AtomicPtr::new(std::ptr::null_mut());

/// The store, when the running configuration has one.
pub fn store() -> Option<&'static Store> {
    // SAFETY: the pointer is null or points into the configuration pool, which outlives every
    // request of this process (it is reset before the pool drops the store).
    unsafe { STORE.load(Ordering::Acquire).as_ref() }
}

/// Mutex types (`Mutex` directive names) of the module.
pub const MUTEX_TYPE: &std::ffi::CStr = c"rgi-session";
/// Mutex type serialising calls into caches that are not multi-process safe.
pub const CACHE_MUTEX_TYPE: &std::ffi::CStr = c"rgi-session-cache";

/// pre_config: registers the mutex types, so `Mutex` can configure them.
///
/// # Safety
/// Apache's pre_config hook, with the live configuration pool.
pub unsafe fn pre_config(pconf: *mut sys::apr_pool_t) {
    for name in [MUTEX_TYPE, CACHE_MUTEX_TYPE] {
        // SAFETY: a live pool and a static name.
        unsafe {
            sys::ap_mutex_register(pconf, name.as_ptr(), std::ptr::null(), sys::apr_lockmech_e_APR_LOCK_DEFAULT, 0)
        };
    }
}

unsafe extern "C" fn forget_store(_: *mut std::ffi::c_void) -> sys::apr_status_t {
    STORE.store(std::ptr::null_mut(), Ordering::Release);
    0
}

/// post_config (in the parent): creates the mutexes and initialises the cache.
///
/// # Safety
/// Apache's post_config hook, with the live configuration pool and main server.
pub unsafe fn post_config(pconf: *mut sys::apr_pool_t, s: *mut sys::server_rec) -> Result<(), String> {
    // SAFETY: post_config runs with the live configuration of the main server.
    unsafe {
        // The first pass at start-up is thrown away at once: do not create shared memory for it.
        if sys::ap_state_query(sys::AP_SQ_MAIN_STATE) == sys::AP_SQ_MS_CREATE_PRE_CONFIG {
            return Ok(());
        }
        let settings = &crate::config::server_config(s).sessions;
        let Some(cache) = cache::Cache::open(&settings.cache, pconf, s)? else {
            return Ok(());
        };
        let locks = locks::Locks::create(settings.lock_count(), pconf, s)?;
        let store = ffi::pool_box(pconf, Store { cache, locks });
        // Registered after the box, so it runs first: the pointer is gone before the store.
        sys::apr_pool_cleanup_register(pconf, std::ptr::null(), Some(forget_store), Some(sys::apr_pool_cleanup_null));
        STORE.store(store, Ordering::Release);
        ffi::log_server(s, sys::APLOG_DEBUG as c_int, 0, &format!("sessions stored in {}", (*store).cache));
        Ok(())
    }
}

/// In every process forked from the parent after post_config that runs apps (an Apache child,
/// a daemon process): re-attaches the mutexes. Call it once per process, before serving.
///
/// # Safety
/// `pchild` must be a pool living as long as the process serves requests; `s` the main server.
pub unsafe fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    if let Some(store) = store() {
        // SAFETY: guaranteed by the caller.
        unsafe {
            if let Err(why) = store.cache.child_init(pchild).and_then(|()| store.locks.child_init(pchild)) {
                ffi::log_server(s, sys::APLOG_CRIT as c_int, 0, &format!("sessions: {why}"));
            }
        }
    }
}

/// After every request: releases the session locks the request's thread still holds.
pub fn end_request() {
    locks::release_all();
}
