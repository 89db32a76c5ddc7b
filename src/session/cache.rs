//! The socache instance holding session records (`ap_socache.h`).
//!
//! Providers are modules of their own (`mod_socache_shmcb`, `mod_socache_redis`, …) found by
//! name. Calls into providers that are not multi-process safe (shmcb, dbm) are serialised by a
//! global mutex; the network ones are safe as they are.

use std::ffi::{CString, c_char, c_uint};
use std::fmt;

use super::directives::CacheChoice;
use super::locks::GlobalMutex;
use crate::ffi::{self, sys};

/// The name the module's records are kept under in a provider (at most 16 characters).
const NAMESPACE: &std::ffi::CStr = c"rgi-session";

/// `RGISessionCache` when none is configured: shared memory, created when mod_socache_shmcb is
/// loaded (the path is only used where anonymous shared memory is not available).
pub const DEFAULT_PROVIDER: &str = "shmcb";
/// The default provider's argument: 8 MiB under the runtime directory.
pub const DEFAULT_ARGUMENT: &str = "rgi-sessions(8388608)";

/// A provider found by name, or `None` when its module is not loaded.
pub fn provider(name: &str) -> Option<*const sys::ap_socache_provider_t> {
    let name = CString::new(name).ok()?;
    // SAFETY: NUL-terminated group, name and version; the registry outlives the configuration.
    let p = unsafe {
        sys::ap_lookup_provider(
            sys::AP_SOCACHE_PROVIDER_GROUP.as_ptr().cast(),
            name.as_ptr(),
            sys::AP_SOCACHE_PROVIDER_VERSION.as_ptr().cast(),
        )
    };
    (!p.is_null()).then_some(p.cast())
}

/// Creates an instance of `provider` with `arg` in `pool`; the error is the provider's message.
///
/// # Safety
/// `provider` must come from [`provider`]; `pool` must be the configuration pool.
pub unsafe fn create(
    provider: *const sys::ap_socache_provider_t,
    arg: &str,
    pool: *mut sys::apr_pool_t,
) -> Result<*mut sys::ap_socache_instance_t, String> {
    let arg = CString::new(arg).map_err(|_| "the argument contains a NUL byte".to_string())?;
    let mut instance = std::ptr::null_mut();
    // SAFETY: a provider from the registry; the argument is copied into `pool` by the provider.
    unsafe {
        let create = (*provider).create.ok_or("the provider cannot create caches")?;
        let arg = ffi::pstrdup(pool, arg.as_bytes());
        let err = create(&mut instance, arg, pool, pool);
        match ffi::bytes(err) {
            Some(msg) => Err(String::from_utf8_lossy(msg).into_owned()),
            None if instance.is_null() => Err("the provider created no cache".into()),
            None => Ok(instance),
        }
    }
}

/// An initialised cache of the running configuration.
pub struct Cache {
    provider: *const sys::ap_socache_provider_t,
    instance: *mut sys::ap_socache_instance_t,
    server: *mut sys::server_rec,
    /// For providers that are not multi-process safe.
    mutex: Option<GlobalMutex>,
    description: String,
}

// SAFETY: the provider and instance live in the configuration pool for as long as the Cache;
// providers are thread-safe, or their calls are serialised by `mutex`.
unsafe impl Send for Cache {}
// SAFETY: as above.
unsafe impl Sync for Cache {}

impl fmt::Display for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// A pool for one call into a provider, destroyed after it.
struct TempPool(*mut sys::apr_pool_t);

impl TempPool {
    fn new() -> Option<Self> {
        let mut pool = std::ptr::null_mut();
        // SAFETY: an unmanaged pool with its own allocator, owned by this value.
        let rv = unsafe { sys::apr_pool_create_unmanaged_ex(&mut pool, None, std::ptr::null_mut()) };
        (rv == 0 && !pool.is_null()).then_some(TempPool(pool))
    }
}

impl Drop for TempPool {
    fn drop(&mut self) {
        // SAFETY: the pool created in `new`, destroyed once.
        unsafe { sys::apr_pool_destroy(self.0) };
    }
}

impl Cache {
    /// Opens the configured cache: `Ok(None)` when sessions are off.
    ///
    /// # Safety
    /// post_config in the parent, with the configuration pool and the main server.
    pub unsafe fn open(
        choice: &CacheChoice,
        pconf: *mut sys::apr_pool_t,
        s: *mut sys::server_rec,
    ) -> Result<Option<Cache>, String> {
        let (provider, instance, description) = match choice {
            CacheChoice::Off => return Ok(None),
            CacheChoice::Default => {
                let Some(provider) = provider(DEFAULT_PROVIDER) else {
                    // SAFETY: a live server.
                    unsafe {
                        ffi::log_server(
                            s,
                            sys::APLOG_INFO,
                            0,
                            "sessions are off: no RGISessionCache, and mod_socache_shmcb (the default) is not loaded",
                        )
                    };
                    return Ok(None);
                };
                // SAFETY: a registered provider and the configuration pool.
                let instance = unsafe { create(provider, DEFAULT_ARGUMENT, pconf) }
                    .map_err(|e| format!("the default session cache: {e}"))?;
                (provider, instance, format!("{DEFAULT_PROVIDER}:{DEFAULT_ARGUMENT}"))
            }
            CacheChoice::Configured { provider, instance, spec } => (*provider, *instance, spec.clone()),
        };
        // SAFETY: a registered provider, its instance, the configuration pool and main server.
        unsafe {
            let mutex = if (*provider).flags & sys::AP_SOCACHE_FLAG_NOTMPSAFE as c_uint != 0 {
                Some(GlobalMutex::create(super::CACHE_MUTEX_TYPE, None, pconf, s)?)
            } else {
                None
            };
            // shmcb sizes its index from these: a typical record (a few values as JSON) is nearer
            // 200 bytes than 512, and every index slot is a record it can keep before it forgets
            // the oldest one of that part of the cache.
            let hints = sys::ap_socache_hints { avg_id_len: 43, avg_obj_size: 200, expiry_interval: 60_000_000 };
            let init = (*provider).init.ok_or("the provider cannot initialise caches")?;
            let rv = init(instance, NAMESPACE.as_ptr(), &hints, s, pconf);
            if rv != 0 {
                return Err(format!("cannot initialise the session cache {description} (status {rv}, see the log)"));
            }
            Ok(Some(Cache { provider, instance, server: s, mutex, description }))
        }
    }

    /// Re-attaches the mutex in a forked process.
    ///
    /// # Safety
    /// As [`GlobalMutex::child_init`].
    pub unsafe fn child_init(&self, pchild: *mut sys::apr_pool_t) -> Result<(), String> {
        match &self.mutex {
            // SAFETY: guaranteed by the caller.
            Some(m) => unsafe { m.child_init(pchild) },
            None => Ok(()),
        }
    }

    /// Runs a provider call with a temporary pool, under the mutex when the provider needs it.
    fn call(&self, f: impl FnOnce(*mut sys::apr_pool_t) -> sys::apr_status_t) -> sys::apr_status_t {
        let Some(pool) = TempPool::new() else { return sys::APR_ENOMEM };
        if let Some(m) = &self.mutex {
            if let Err(rv) = m.lock() {
                return rv;
            }
            let rv = f(pool.0);
            let _ = m.unlock();
            rv
        } else {
            f(pool.0)
        }
    }

    /// The record under `key`, or `None`.
    pub fn get(&self, key: &[u8], max: usize) -> Result<Option<Vec<u8>>, sys::apr_status_t> {
        let mut buf = vec![0u8; max];
        let mut len = max as c_uint;
        let rv = self.call(|pool| {
            // SAFETY: the provider's retrieve with a live instance, `len` writable bytes and a
            // temporary pool.
            unsafe {
                match (*self.provider).retrieve {
                    Some(retrieve) => retrieve(
                        self.instance,
                        self.server,
                        key.as_ptr(),
                        key.len() as c_uint,
                        buf.as_mut_ptr(),
                        &mut len,
                        pool,
                    ),
                    None => sys::APR_ENOTIMPL,
                }
            }
        });
        match rv {
            0 => {
                buf.truncate((len as usize).min(max));
                Ok(Some(buf))
            }
            sys::APR_NOTFOUND => Ok(None),
            other => Err(other),
        }
    }

    /// Stores `data` under `key` until `expiry` (µs since the epoch).
    pub fn put(&self, key: &[u8], data: &[u8], expiry: sys::apr_time_t) -> Result<(), sys::apr_status_t> {
        let mut copy = data.to_vec(); // providers take a mutable pointer
        let rv = self.call(|pool| {
            // SAFETY: the provider's store with a live instance and readable buffers.
            unsafe {
                match (*self.provider).store {
                    Some(store) => store(
                        self.instance,
                        self.server,
                        key.as_ptr(),
                        key.len() as c_uint,
                        expiry,
                        copy.as_mut_ptr(),
                        copy.len() as c_uint,
                        pool,
                    ),
                    None => sys::APR_ENOTIMPL,
                }
            }
        });
        if rv == 0 { Ok(()) } else { Err(rv) }
    }

    /// Removes the record under `key` (absent is fine).
    pub fn remove(&self, key: &[u8]) -> Result<(), sys::apr_status_t> {
        let rv = self.call(|pool| {
            // SAFETY: the provider's remove with a live instance.
            unsafe {
                match (*self.provider).remove {
                    Some(remove) => remove(self.instance, self.server, key.as_ptr(), key.len() as c_uint, pool),
                    None => sys::APR_ENOTIMPL,
                }
            }
        });
        if rv == 0 || rv == sys::APR_NOTFOUND { Ok(()) } else { Err(rv) }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        // SAFETY: the configuration pool is being cleared: nothing uses the instance any more.
        unsafe {
            if let Some(destroy) = (*self.provider).destroy {
                destroy(self.instance, self.server);
            }
        }
    }
}

/// Describes an APR status for a log line.
pub fn describe(rv: sys::apr_status_t) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: apr_strerror writes a NUL-terminated message into the buffer.
    let text = unsafe { ffi::text(sys::apr_strerror(rv, buf.as_mut_ptr(), buf.len())) }.into_owned();
    format!("{text} (status {rv})")
}
