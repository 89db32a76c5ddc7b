//! `RGISessionCache` and `RGISessionLocks`: where session records live and how many locks keep
//! requests of one session apart. Both are server-wide (main server only).

use std::ffi::{c_char, c_void};

use super::{cache, locks};
use crate::cstr;
use crate::directives::{SERVER, command, directive, server_config};
use crate::ffi::{self, sys};

/// Where sessions are stored.
#[derive(Debug, Clone, Default)]
pub enum CacheChoice {
    /// No `RGISessionCache`: shmcb shared memory when mod_socache_shmcb is loaded.
    #[default]
    Default,
    /// `RGISessionCache none`: sessions are off.
    Off,
    /// `RGISessionCache provider[:argument]`, created while the configuration was read.
    Configured {
        /// The provider (`ap_lookup_provider`).
        provider: *const sys::ap_socache_provider_t,
        /// Its instance, in the configuration pool.
        instance: *mut sys::ap_socache_instance_t,
        /// The directive's argument, for messages.
        spec: String,
    },
}

/// The session settings of the main server.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `RGISessionCache`.
    pub cache: CacheChoice,
    /// `RGISessionLocks`.
    pub locks: Option<u32>,
}

impl Settings {
    /// The number of lock stripes.
    pub fn lock_count(&self) -> u32 {
        self.locks.unwrap_or(locks::DEFAULT_STRIPES)
    }
}

/// Splits `provider[:argument]` (the provider's own syntax follows the first colon).
pub fn split_spec(spec: &str) -> Result<(&str, &str), String> {
    let (name, arg) = spec.split_once(':').unwrap_or((spec, ""));
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("'{spec}' is not PROVIDER[:ARGUMENT] (e.g. shmcb:/run/rgi(1048576) or redis:host:6379)"));
    }
    Ok((name, arg))
}

/// Parses the `RGISessionLocks` count.
pub fn parse_lock_count(arg: &str) -> Result<u32, String> {
    match arg.parse::<u32>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("'{arg}' is not a number of locks from 1 to 1024")),
    }
}

/// Fails unless the directive is in the main server's context.
unsafe fn global_only(cmd: *mut sys::cmd_parms) -> Result<(), String> {
    // SAFETY: a live command.
    let err = unsafe { sys::ap_check_cmd_context(cmd, sys::GLOBAL_ONLY as u32) };
    // SAFETY: null or a static/pool string.
    match unsafe { ffi::bytes(err) } {
        Some(msg) => Err(String::from_utf8_lossy(msg).trim_start_matches(' ').to_string()),
        None => Ok(()),
    }
}

unsafe extern "C" fn session_cache(cmd: *mut sys::cmd_parms, _: *mut c_void, arg: *const c_char) -> *const c_char {
    // SAFETY: Apache passes a live cmd and a NUL-terminated word.
    unsafe {
        directive(cmd, || {
            global_only(cmd)?;
            let spec = ffi::text(arg).into_owned();
            let choice = if spec.eq_ignore_ascii_case("none") {
                CacheChoice::Off
            } else {
                let (name, argument) = split_spec(&spec)?;
                let provider = cache::provider(name).ok_or_else(|| {
                    format!(
                        "the socache provider '{name}' is not available: load it first \
                         (LoadModule socache_{name}_module modules/mod_socache_{name}.so)"
                    )
                })?;
                let instance = cache::create(provider, argument, (*cmd).pool).map_err(|e| format!("'{spec}': {e}"))?;
                CacheChoice::Configured { provider, instance, spec }
            };
            server_config(cmd).sessions.cache = choice;
            Ok(())
        })
    }
}

unsafe extern "C" fn session_locks(cmd: *mut sys::cmd_parms, _: *mut c_void, arg: *const c_char) -> *const c_char {
    // SAFETY: Apache passes a live cmd and a NUL-terminated word.
    unsafe {
        directive(cmd, || {
            global_only(cmd)?;
            server_config(cmd).sessions.locks = Some(parse_lock_count(&ffi::text(arg))?);
            Ok(())
        })
    }
}

/// The session directives.
pub const SESSIONS: [sys::command_rec; 2] = [
    command(
        cstr!("RGISessionCache"),
        sys::cmd_func { take1: Some(session_cache) },
        SERVER,
        sys::cmd_how_TAKE1,
        cstr!(
            "none | PROVIDER[:ARGUMENT]: where sessions are stored (default shmcb shared memory), e.g. redis:host:6379"
        ),
    ),
    command(
        cstr!("RGISessionLocks"),
        sys::cmd_func { take1: Some(session_locks) },
        SERVER,
        sys::cmd_how_TAKE1,
        cstr!("N: how many locks keep concurrent requests of one session apart (default 32)"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_at_the_first_colon() {
        assert_eq!(split_spec("shmcb"), Ok(("shmcb", "")));
        assert_eq!(split_spec("shmcb:/run/s(1048576)"), Ok(("shmcb", "/run/s(1048576)")));
        assert_eq!(split_spec("redis:127.0.0.1:6379"), Ok(("redis", "127.0.0.1:6379")));
        assert!(split_spec(":x").unwrap_err().contains("PROVIDER"));
        assert!(split_spec("sh mcb").is_err());
    }

    #[test]
    fn lock_counts_are_bounded() {
        assert_eq!(parse_lock_count("32"), Ok(32));
        assert!(parse_lock_count("0").is_err());
        assert!(parse_lock_count("5000").unwrap_err().contains("1 to 1024"));
        assert!(parse_lock_count("many").is_err());
    }
}
