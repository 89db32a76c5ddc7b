//! App libraries: checking them at configuration time, loading them in the processes that serve
//! requests, and the one instance per (library, application group) each process keeps.

pub mod library;
pub mod registry;

pub use library::{LibraryError, LoadedLibrary, inspect, load};
pub use registry::{AppInstance, instance};
