//! One app instance per (library, application group) per process, created exactly once even when
//! the first requests arrive together on many threads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use once_cell::sync::OnceCell;
use parking_lot::RwLock;
use rgi::abi::{self, CreateContext, RgiPair, RgiStr, StrSink};
use rustc_hash::FxBuildHasher;

use super::library::{self, LoadedLibrary};

/// A live instance of an app library.
pub struct AppInstance {
    /// The library it came from.
    pub library: &'static LoadedLibrary,
    /// The application group it serves.
    pub application_group: String,
    /// The opaque instance pointer `create` returned.
    pub raw: abi::Instance,
    /// The daemon process group it runs in (`""` embedded).
    pub process_group: String,
    /// Its counters in the status table, claimed when it first serves a request.
    stats: OnceCell<Option<&'static crate::status::GroupStats>>,
}

impl AppInstance {
    /// The status counters of this instance's (process group, application group).
    pub fn stats(&self) -> Option<&'static crate::status::GroupStats> {
        *self
            .stats
            .get_or_init(|| crate::status::group(self.process_group.as_bytes(), self.application_group.as_bytes()))
    }
}

// SAFETY: `create` requires the app type to be Send + Sync (rgi::Create), and the pointer is only
// passed back to the library's own callbacks.
unsafe impl Send for AppInstance {}
// SAFETY: as above.
unsafe impl Sync for AppInstance {}

impl Drop for AppInstance {
    fn drop(&mut self) {
        // SAFETY: `raw` came from this library's `create` and is destroyed once, here; the
        // trampoline catches panics.
        unsafe { (self.library.descriptor.destroy)(self.raw) }
    }
}

/// How many threads of this process serve requests (set once the process knows: Apache's
/// `ThreadsPerChild` in a child, the group's threads in a daemon); told to every `create`.
pub static THREADS: AtomicUsize = AtomicUsize::new(1);

type Slot = Arc<OnceCell<Arc<AppInstance>>>;
/// Keys are bytes, hashed with FxHash: the lookup runs on every request.
type Map<V> = HashMap<Box<[u8]>, V, FxBuildHasher>;

/// library path → application group → instance.
static INSTANCES: RwLock<Option<Map<Map<Slot>>>> = RwLock::new(None);

/// Instances a thread used recently, with their keys. Most threads serve a few apps (an app and
/// its auth library, say) over and over, so this skips the lock and both map lookups on the hot
/// path.
struct Recent {
    library: Box<[u8]>,
    group: Box<[u8]>,
    instance: Arc<AppInstance>,
}

/// How many instances each thread remembers.
const RECENT: usize = 4;

thread_local! {
    static RECENTLY_USED: RefCell<Vec<Recent>> = const { RefCell::new(Vec::new()) };
}

fn recently_used(library: &[u8], group: &[u8]) -> Option<Arc<AppInstance>> {
    RECENTLY_USED.with_borrow(|recent| {
        recent.iter().find(|r| *r.library == *library && *r.group == *group).map(|r| r.instance.clone())
    })
}

fn remember(library: &[u8], group: &[u8], instance: &Arc<AppInstance>) {
    RECENTLY_USED.with_borrow_mut(|recent| {
        if recent.len() == RECENT {
            recent.pop();
        }
        recent.insert(0, Recent { library: library.into(), group: group.into(), instance: instance.clone() });
    });
}

fn slot(library: &[u8], group: &[u8]) -> Slot {
    if let Some(slot) = INSTANCES.read().as_ref().and_then(|m| m.get(library)?.get(group)) {
        return slot.clone();
    }
    let mut map = INSTANCES.write();
    let groups = map.get_or_insert_with(Map::default).entry(library.into()).or_default();
    groups.entry(group.into()).or_default().clone()
}

unsafe extern "C" fn push_string(ctx: *mut c_void, s: RgiStr) {
    crate::ffi::guard((), || {
        // SAFETY: `ctx` is the &mut String given to the sink below; `s` is live for the call.
        let (out, bytes) = unsafe { (&mut *ctx.cast::<String>(), s.as_bytes()) };
        out.push_str(&String::from_utf8_lossy(bytes));
    })
}

/// The instance of `library` for `group`, loading and creating it on first use.
///
/// `options` are the `RGIOption`s the instance is created with (those in effect for the first
/// request, or the server's for imports).
pub fn instance(
    library_path: &[u8],
    group: &[u8],
    process_group: &str,
    options: &[RgiPair],
    host: &'static abi::HostApi,
) -> Result<Arc<AppInstance>, String> {
    if let Some(instance) = recently_used(library_path, group) {
        return Ok(instance);
    }
    let slot = slot(library_path, group);
    if let Some(instance) = slot.get() {
        remember(library_path, group, instance);
        return Ok(instance.clone());
    }
    let path = String::from_utf8_lossy(library_path);
    let group = String::from_utf8_lossy(group);
    slot.get_or_try_init(|| {
        let library = library::load(&path, host).map_err(|e| e.to_string())?;
        let ctx = CreateContext {
            size: size_of::<CreateContext>(),
            library: RgiStr::new(path.as_bytes()),
            application_group: RgiStr::new(group.as_bytes()),
            process_group: RgiStr::new(process_group.as_bytes()),
            options: options.as_ptr(),
            options_len: options.len(),
            threads: THREADS.load(Ordering::Relaxed),
        };
        let mut message = String::new();
        let mut sink = StrSink { ctx: (&raw mut message).cast(), push: push_string };
        // SAFETY: the context and sink live for the call; the trampoline catches panics.
        let raw = unsafe { (library.descriptor.create)(&ctx, &mut sink) };
        if raw.is_null() {
            let why = if message.is_empty() { "no reason given".into() } else { message };
            return Err(format!("creating the app from '{path}' for application group '{group}' failed: {why}"));
        }
        Ok(Arc::new(AppInstance {
            library,
            application_group: group.to_string(),
            raw,
            process_group: process_group.to_string(),
            stats: OnceCell::new(),
        }))
    })
    .cloned()
}

/// Drops this process's instances (at process exit): each is destroyed once the last request
/// using it has finished.
pub fn clear() {
    INSTANCES.write().take();
}
