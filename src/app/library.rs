//! Checking and loading app libraries.
//!
//! Configuration time reads the library *file* (its exported [`Manifest`] static) without running
//! any of its code, so `apache2 -t` refuses a missing, foreign or incompatible library, and no app
//! code ever runs in Apache's root parent process. The processes that serve requests then
//! `dlopen` it once and never `dlclose` it.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};
use parking_lot::Mutex;
use rgi::abi::{self, AppDescriptor, HostApi, Manifest};

/// Why a library cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryError {
    /// The file cannot be read.
    #[error("cannot read app library '{path}': {source}")]
    Unreadable {
        /// The library.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a shared library for this machine.
    #[error("'{path}' is not a shared library for this machine: {reason}")]
    NotSharedLibrary {
        /// The library.
        path: String,
        /// Why.
        reason: String,
    },
    /// No RGI manifest in the library.
    #[error("'{path}' is not an RGI app: it exports no {symbol} (build it as a cdylib with rgi::export!)", symbol = abi::MANIFEST_SYMBOL)]
    NotRgi {
        /// The library.
        path: String,
    },
    /// Built for another major ABI version.
    #[error("'{path}' was built for RGI ABI {found}, but this mod_rgi speaks ABI {ours}: rebuild it against a matching rgi crate", ours = abi::ABI_MAJOR)]
    WrongAbi {
        /// The library.
        path: String,
        /// Its ABI major version.
        found: String,
    },
    /// The manifest is unreadable or inconsistent.
    #[error("'{path}' has a damaged RGI manifest ({reason})")]
    BadManifest {
        /// The library.
        path: String,
        /// Why.
        reason: String,
    },
    /// The library does not play the role a directive needs.
    #[error("'{path}' does not implement {role} (export it with rgi::export!(Type: {role}))")]
    MissingRole {
        /// The library.
        path: String,
        /// The missing role's name.
        role: &'static str,
    },
    /// `dlopen` or the entry function failed.
    #[error("cannot load '{path}': {reason}")]
    Load {
        /// The library.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Reads and checks the manifest of the library at `path`; `required_roles` are [`abi::role`] bits
/// the library must implement.
pub fn inspect(path: &str, required_roles: u32) -> Result<Manifest, LibraryError> {
    let file = std::fs::File::open(path).map_err(|source| LibraryError::Unreadable { path: path.into(), source })?;
    // Only the parts the manifest needs are read (headers, dynamic symbols, a few bytes of one
    // section), not the whole file: libraries with debug info run to tens of megabytes, and
    // memory that size freed in Apache's parent stays in its heap and in every child it forks.
    let manifest = read_manifest(path, &object::ReadCache::new(file))?;
    for (bit, role) in abi::role::NAMES {
        if required_roles & bit != 0 && manifest.roles & bit == 0 {
            return Err(LibraryError::MissingRole { path: path.into(), role });
        }
    }
    Ok(manifest)
}

/// Reads the manifest out of a library file's bytes, in memory or read on demand (`path` only
/// names it in errors).
pub fn read_manifest<'d, R: object::ReadRef<'d>>(path: &str, data: R) -> Result<Manifest, LibraryError> {
    let not_lib = |reason: String| LibraryError::NotSharedLibrary { path: path.into(), reason };
    let file = object::File::parse(data).map_err(|e| not_lib(e.to_string()))?;
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(not_lib(format!("it is a {:?} object, not a shared library", file.kind())));
    }
    let ours = if cfg!(target_arch = "x86_64") {
        object::Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        object::Architecture::Aarch64
    } else {
        file.architecture()
    };
    if file.architecture() != ours {
        return Err(not_lib(format!("it is built for {:?}, Apache runs on {ours:?}", file.architecture())));
    }
    let symbol = file.dynamic_symbols().find(|s| s.name().is_ok_and(|n| n.starts_with(abi::MANIFEST_SYMBOL_PREFIX)));
    let Some(symbol) = symbol else { return Err(LibraryError::NotRgi { path: path.into() }) };
    let name = symbol.name().unwrap_or_default();
    if name != abi::MANIFEST_SYMBOL {
        let found = name.trim_start_matches(abi::MANIFEST_SYMBOL_PREFIX).to_string();
        return Err(LibraryError::WrongAbi { path: path.into(), found });
    }
    let bad = |reason: &str| LibraryError::BadManifest { path: path.into(), reason: reason.into() };
    let section =
        symbol.section_index().and_then(|i| file.section_by_index(i).ok()).ok_or_else(|| bad("no section"))?;
    let (offset, size) = section.file_range().ok_or_else(|| bad("its section has no data in the file"))?;
    let start = symbol.address().checked_sub(section.address()).ok_or_else(|| bad("address"))?;
    let len = size_of::<Manifest>() as u64;
    if start.checked_add(len).is_none_or(|end| end > size) {
        return Err(bad("truncated"));
    }
    let at = offset.checked_add(start).ok_or_else(|| bad("address"))?;
    let raw = data.read_bytes_at(at, len).map_err(|_| bad("truncated"))?;
    // SAFETY: `raw` holds exactly size_of::<Manifest>() bytes and Manifest is plain integers and
    // bytes, valid for any bit pattern; read_unaligned copes with any alignment.
    let manifest = unsafe { raw.as_ptr().cast::<Manifest>().read_unaligned() };
    if manifest.magic != abi::MAGIC {
        return Err(bad("wrong magic"));
    }
    if manifest.abi_major != abi::ABI_MAJOR {
        return Err(LibraryError::WrongAbi { path: path.into(), found: manifest.abi_major.to_string() });
    }
    Ok(manifest)
}

/// What tells one version of a library file from another: a file renamed over it, rewritten
/// or touched changes at least one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileStamp {
    /// The stamp of the file at `path` now (`None` while it is missing).
    pub fn of(path: &str) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp { dev: m.dev(), ino: m.ino(), size: m.size(), mtime: (m.mtime(), m.mtime_nsec()) })
    }
}

/// A library loaded into this process (never unloaded).
pub struct LoadedLibrary {
    /// Its path.
    pub path: String,
    /// Its descriptor (static data inside the library).
    pub descriptor: &'static AppDescriptor,
    /// Its file when it was loaded (taken just before: a change in between reads as a change).
    pub stamp: Option<FileStamp>,
}

// SAFETY: the descriptor is immutable static data of a library that is never unloaded.
unsafe impl Send for LoadedLibrary {}
// SAFETY: as above.
unsafe impl Sync for LoadedLibrary {}

impl LoadedLibrary {
    /// Whether the descriptor (built by an SDK of any 1.x minor version) has the field ending at
    /// `end` bytes: append-only structs grow, so a newer host must not read past an older app's.
    pub fn has_field(&self, end: usize) -> bool {
        self.descriptor.size >= end
    }

    /// Whether the library plays all of `roles`.
    pub fn plays(&self, roles: u32) -> bool {
        self.descriptor.roles & roles == roles
    }
}

/// Where a descriptor field ends, for [`LoadedLibrary::has_field`]. Every field after the
/// header is one pointer wide (a function pointer or an `Option` of one).
#[macro_export]
macro_rules! descriptor_field_end {
    ($field:ident) => {
        std::mem::offset_of!(rgi::abi::AppDescriptor, $field) + std::mem::size_of::<*const ()>()
    };
}

static LOADED: Mutex<Option<HashMap<String, &'static LoadedLibrary>>> = Mutex::new(None);

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message owned by libc.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
    }
}

/// Loads the library at `path` into this process (once) and hands it `host`.
pub fn load(path: &str, host: &'static HostApi) -> Result<&'static LoadedLibrary, LibraryError> {
    let mut loaded = LOADED.lock();
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(lib) = loaded.get(path) {
        return Ok(lib);
    }
    let fail = |reason: String| LibraryError::Load { path: path.into(), reason };
    let stamp = FileStamp::of(path);
    inspect(path, 0)?;
    let c_path = CString::new(path).map_err(|_| fail("the path contains a NUL byte".into()))?;
    // SAFETY: dlopen with a valid C string; the handle is deliberately never closed.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(fail(dlerror()));
    }
    let entry_name = CString::new(abi::ENTRY_SYMBOL).expect("no NUL");
    // SAFETY: a live handle and a valid symbol name.
    let entry = unsafe { libc::dlsym(handle, entry_name.as_ptr()) };
    if entry.is_null() {
        return Err(fail(format!("it exports no {}", abi::ENTRY_SYMBOL)));
    }
    // SAFETY: the symbol is the SDK's entry function, whose type is abi::EntryFn.
    let entry: abi::EntryFn = unsafe { std::mem::transmute::<*mut libc::c_void, abi::EntryFn>(entry) };
    // SAFETY: the entry function catches its own panics; `host` lives for the process.
    let descriptor =
        unsafe { entry(host).as_ref() }.ok_or_else(|| fail("its entry function refused the host".into()))?;
    if descriptor.magic != abi::MAGIC || descriptor.abi_major != abi::ABI_MAJOR {
        return Err(fail("its descriptor has the wrong magic or ABI version".into()));
    }
    if descriptor.size < descriptor_field_end!(destroy) {
        return Err(fail(format!("its descriptor is too small ({} bytes)", descriptor.size)));
    }
    let lib: &'static LoadedLibrary = Box::leak(Box::new(LoadedLibrary { path: path.into(), descriptor, stamp }));
    loaded.insert(path.into(), lib);
    Ok(lib)
}

/// The libraries loaded into this process whose file on disk is no longer the one loaded, with
/// the file's stamp now (a missing file is not counted: it may be on its way back).
pub fn changed_on_disk() -> Vec<(String, FileStamp)> {
    // The files are looked at without the lock: a request thread loading a library waits for
    // no stat.
    let libraries: Vec<&'static LoadedLibrary> = LOADED.lock().iter().flat_map(|map| map.values().copied()).collect();
    libraries
        .into_iter()
        .filter_map(|lib| {
            let now = FileStamp::of(&lib.path)?;
            (Some(now) != lib.stamp).then(|| (lib.path.clone(), now))
        })
        .collect()
}

/// Whether `path` looks like an absolute path (libraries are resolved against ServerRoot first).
pub fn is_absolute(path: &str) -> bool {
    Path::new(path).is_absolute()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_path() {
        let err = inspect("/nonexistent/libnothing.so", 0).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/libnothing.so"), "{err}");
        assert!(matches!(err, LibraryError::Unreadable { .. }));
    }

    #[test]
    fn a_text_file_is_not_a_library() {
        let dir = std::env::temp_dir().join(format!("rgi-lib-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("libfake.so");
        std::fs::write(&path, "not an ELF file").unwrap();
        let err = inspect(path.to_str().unwrap(), 0).unwrap_err();
        assert!(matches!(err, LibraryError::NotSharedLibrary { .. }), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
