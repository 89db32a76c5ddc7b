//! # mod_rgi — the Rust Gateway Interface for Apache httpd 2.4
//!
//! Apache module that serves apps built against the `rgi` SDK, as mod_wsgi serves Python apps.
//!
//! Where things are:
//! - [`ffi`]: the unsafe boundary (bindings and the helpers around them).
//! - [`directives`] and [`config`]: the configuration directives and their storage.
//! - [`translate`]: URI → app library (translate_name phase).
//! - [`handler`]: the content handler; [`request`]: what app calls do to the request and
//!   [`output`]: to its response;
//!   [`environ`]: the CGI/WSGI environ; [`response`]: what an app may send.
//! - [`app`]: checking, loading and instantiating app libraries.
//! - [`auth`]: Rust libraries as Apache's authentication and authorisation.
//! - [`daemon`]: daemon mode (`RGIDaemonProcess`): supervised processes serving apps.
//! - [`dispatch`]: `RGIDispatchScript`, Rust code choosing a request's groups.
//! - [`logging`]: `tracing` and panics into the error log.
//! - [`session`]: the session store apps reach through the host table.
//! - [`slow`]: `RGISlowRequests`, requests logged while they run too long.

pub mod app;
pub mod auth;
pub mod config;
pub mod daemon;
pub mod directives;
pub mod dispatch;
pub mod environ;
pub mod ffi;
pub mod handler;
pub mod logging;
pub mod output;
pub mod request;
pub mod response;
pub mod session;
pub mod slow;
pub mod status;
pub mod translate;
pub mod usage;

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use ffi::sys;

/// Every directive of the module; each feature contributes its own list.
static COMMANDS: directives::Commands<
    {
        directives::CORE.len()
            + auth::directives::AUTH.len()
            + daemon::DIRECTIVES.len()
            + dispatch::DIRECTIVES.len()
            + session::directives::SESSIONS.len()
            + 1
    },
> = directives::join(&[
    &directives::CORE,
    &auth::directives::AUTH,
    &daemon::DIRECTIVES,
    &dispatch::DIRECTIVES,
    &session::directives::SESSIONS,
]);

/// The module record Apache loads (`LoadModule rgi_module …`); Apache writes into it.
#[unsafe(no_mangle)]
pub static mut rgi_module: sys::module = sys::module {
    version: sys::MODULE_MAGIC_NUMBER_MAJOR,
    minor_version: sys::MODULE_MAGIC_NUMBER_MINOR,
    module_index: -1,
    name: cstr!("mod_rgi.c"),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: sys::MODULE_MAGIC_COOKIE as std::ffi::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(config::create_dir_config),
    merge_dir_config: Some(config::merge_dir_config),
    create_server_config: Some(config::create_server_config),
    merge_server_config: Some(config::merge_server_config),
    cmds: COMMANDS.0.as_ptr(),
    register_hooks: Some(register_hooks),
    flags: 0,
};

/// This module's index in Apache's config vectors.
pub fn module_index() -> usize {
    let module = &raw const rgi_module;
    // SAFETY: Apache sets module_index when it loads the module, before any hook or directive runs.
    unsafe { (*module).module_index.max(0) as usize }
}

/// A NULL-terminated list of module names for hook ordering. Apache keeps the pointer (it does
/// not copy the list), so lists must be static.
struct ModuleNames<const N: usize>([*const std::ffi::c_char; N]);

// SAFETY: immutable static data (pointers to string literals).
unsafe impl<const N: usize> Sync for ModuleNames<N> {}

static AFTER_ALIAS: ModuleNames<2> = ModuleNames([cstr!("mod_alias.c"), std::ptr::null()]);
static BEFORE_USERDIR: ModuleNames<3> =
    ModuleNames([cstr!("mod_userdir.c"), cstr!("mod_vhost_alias.c"), std::ptr::null()]);

unsafe extern "C" fn register_hooks(pool: *mut sys::apr_pool_t) {
    ffi::guard((), || {
        let (after_alias, before_userdir) = (&AFTER_ALIAS.0, &BEFORE_USERDIR.0);
        // SAFETY: registering hook functions with static NULL-terminated module lists.
        unsafe {
            sys::ap_hook_translate_name(
                Some(translate::translate_name),
                after_alias.as_ptr(),
                before_userdir.as_ptr(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_handler(Some(handler::handler), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_handler(Some(status::handler), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_pre_config(Some(pre_config), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_post_config(Some(post_config), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            auth::register_hooks(pool);
            sys::ap_hook_check_config(Some(check_config), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_monitor(
                Some(daemon::supervisor::monitor),
                std::ptr::null(),
                std::ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
        }
    })
}

unsafe extern "C" fn check_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> c_int {
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: Apache passes the configuration's main server and pool.
        match unsafe { daemon::check_config(s, pconf) } {
            Ok(()) => sys::OK,
            Err(why) => {
                // SAFETY: a live server; STARTUP makes the line reach the console of `apache2 -t`.
                unsafe { ffi::log_server(s, sys::APLOG_STARTUP as c_int | sys::APLOG_EMERG, 0, &why) };
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}

unsafe extern "C" fn pre_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
) -> c_int {
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: Apache's pre_config with the live configuration pool.
        unsafe { session::pre_config(pconf) };
        sys::OK
    })
}

unsafe extern "C" fn post_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> c_int {
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        logging::init();
        status::init();
        // Sessions first: daemon processes forked by the supervisor inherit the store.
        // SAFETY: Apache's post_config with the live configuration pool and main server.
        if let Err(why) = unsafe { session::post_config(pconf, s) } {
            // SAFETY: a live server.
            unsafe { ffi::log_server(s, sys::APLOG_CRIT, 0, &format!("sessions: {why}")) };
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
        // SAFETY: Apache passes the live configuration pool and main server, in the parent.
        match unsafe { daemon::supervisor::post_config(pconf, s) } {
            Ok(()) => sys::OK,
            Err(why) => {
                // SAFETY: a live server.
                unsafe { ffi::log_server(s, sys::APLOG_EMERG, 0, &why) };
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}

unsafe extern "C" fn cleanup_instances(_: *mut std::ffi::c_void) -> sys::apr_status_t {
    ffi::guard((), app::registry::clear);
    0
}

unsafe extern "C" fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    ffi::guard((), || {
        logging::init();
        daemon::supervisor::child_init();
        // SAFETY: MPM queries and pool cleanups with live pointers, in the child after fork.
        unsafe {
            let (mut threaded, mut threads, mut daemons) = (0, 0, 0);
            sys::ap_mpm_query(sys::AP_MPMQ_IS_THREADED, &mut threaded);
            sys::ap_mpm_query(sys::AP_MPMQ_MAX_THREADS, &mut threads);
            sys::ap_mpm_query(sys::AP_MPMQ_MAX_DAEMONS, &mut daemons);
            environ::MULTITHREAD.store(threaded != sys::AP_MPMQ_NOT_SUPPORTED && threads > 1, Ordering::Relaxed);
            environ::MULTIPROCESS.store(daemons > 1, Ordering::Relaxed);
            app::registry::THREADS.store(threads.max(1) as usize, Ordering::Relaxed);
            sys::apr_pool_cleanup_register(
                pchild,
                std::ptr::null(),
                Some(cleanup_instances),
                Some(sys::apr_pool_cleanup_null),
            );
            session::child_init(pchild, s);
            slow::child_init(config::server_config(s).slow_requests);
            import_scripts(s);
        }
    })
}

/// Creates the `RGIImportScript` instances of every server for Apache's children.
unsafe fn import_scripts(main: *mut sys::server_rec) {
    let mut s = main;
    while !s.is_null() {
        // SAFETY: walking the live server list of the running configuration.
        let conf = unsafe { config::server_config(s) };
        for import in conf.imports.iter().filter(|i| daemon::is_embedded(i.process_group.as_deref())) {
            if let Err(why) = app::instance(
                import.library.as_bytes(),
                import.application_group.as_bytes(),
                "",
                &[],
                &request::EMBEDDED_HOST,
            ) {
                // SAFETY: a live server.
                unsafe { ffi::log_server(s, sys::APLOG_ERR, 0, &format!("RGIImportScript: {why}")) };
            }
        }
        // SAFETY: as above.
        s = unsafe { (*s).next };
    }
}
