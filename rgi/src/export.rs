//! The app side of the ABI: the generic `extern "C"` trampolines [`export!`](crate::export) fills
//! the descriptor with. Each catches panics, so no unwind ever crosses into Apache.

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::abi::{
    self, AppDescriptor, CallStatus, CreateContext as RawCreateContext, HostApi, HostRequest, Instance, RgiStr, StrSink,
};
use crate::app::{App, Create, CreateContext};
use crate::auth::{
    AccessChecker, AuthRequest, AuthenHandler, Authentication, AuthzHandler, Decision, GroupProvider, PasswordCheck,
    UserProvider,
};
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::host::{self, CurrentRequest, Host};

/// Role bits by the names `export!` accepts.
pub mod roles {
    pub use crate::abi::role::ACCESS_CHECKER as access_checker;
    pub use crate::abi::role::APP as app;
    pub use crate::abi::role::AUTHEN_HANDLER as authen_handler;
    pub use crate::abi::role::AUTHZ_HANDLER as authz_handler;
    pub use crate::abi::role::DISPATCHER as dispatcher;
    pub use crate::abi::role::GROUP_PROVIDER as group_provider;
    pub use crate::abi::role::USER_PROVIDER as user_provider;
}

const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The descriptor with the callbacks every exported type has.
pub const fn descriptor<T: Create>(roles: u32) -> AppDescriptor {
    descriptor_with(roles, create::<T>, destroy::<T>)
}

/// The descriptor of an app whose type only the macro's own functions can name (a factory's
/// `impl Trait`): `export_http!`, `export_service!`.
pub const fn factory_descriptor(
    create: unsafe extern "C" fn(*const RawCreateContext, *mut StrSink) -> Instance,
    destroy: unsafe extern "C" fn(Instance),
    call: unsafe extern "C" fn(Instance, *mut HostRequest) -> CallStatus,
) -> AppDescriptor {
    let mut d = descriptor_with(abi::role::APP, create, destroy);
    d.call = Some(call);
    d
}

const fn descriptor_with(
    roles: u32,
    create: unsafe extern "C" fn(*const RawCreateContext, *mut StrSink) -> Instance,
    destroy: unsafe extern "C" fn(Instance),
) -> AppDescriptor {
    AppDescriptor {
        magic: abi::MAGIC,
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        size: size_of::<AppDescriptor>(),
        sdk_version: RgiStr::new(SDK_VERSION.as_bytes()),
        roles,
        create,
        destroy,
        call: None,
        check_password: None,
        get_realm_hash: None,
        groups_for_user: None,
        allow_access: None,
        authen_handler: None,
        authz_handler: None,
        dispatch: None,
    }
}

/// Adds the [`App`] callbacks.
pub const fn app<T: App>(d: &mut AppDescriptor) {
    d.call = Some(call::<T>);
}

/// Adds the [`UserProvider`] callbacks.
pub const fn user_provider<T: UserProvider>(d: &mut AppDescriptor) {
    d.check_password = Some(check_password::<T>);
    d.get_realm_hash = Some(get_realm_hash::<T>);
}

/// Adds the [`GroupProvider`] callback.
pub const fn group_provider<T: GroupProvider>(d: &mut AppDescriptor) {
    d.groups_for_user = Some(groups_for_user::<T>);
}

/// Adds the [`AccessChecker`] callback.
pub const fn access_checker<T: AccessChecker>(d: &mut AppDescriptor) {
    d.allow_access = Some(allow_access::<T>);
}

/// Adds the [`AuthenHandler`] callback.
pub const fn authen_handler<T: AuthenHandler>(d: &mut AppDescriptor) {
    d.authen_handler = Some(authen::<T>);
}

/// Adds the [`AuthzHandler`] callback.
pub const fn authz_handler<T: AuthzHandler>(d: &mut AppDescriptor) {
    d.authz_handler = Some(authz::<T>);
}

/// Adds the [`Dispatcher`] callback.
pub const fn dispatcher<T: Dispatcher>(d: &mut AppDescriptor) {
    d.dispatch = Some(dispatch::<T>);
}

/// The body of the exported entry function: records the host table and installs the panic hook.
///
/// # Safety
/// `host` must be null or point to a host table valid for the rest of the process.
pub unsafe fn enter(host: *const HostApi, descriptor: &'static AppDescriptor) -> *const AppDescriptor {
    let installed = panic::catch_unwind(|| {
        // SAFETY: the caller guarantees a null or process-lifetime pointer.
        let Some(api) = (unsafe { host.as_ref() }) else { return false };
        if api.size < size_of::<usize>() + size_of::<u32>() {
            return false;
        }
        host::install(api);
        install_panic_hook();
        #[cfg(feature = "tracing")]
        crate::tracing::init();
        true
    });
    if matches!(installed, Ok(true)) { descriptor } else { std::ptr::null() }
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let message = panic_message(info.payload());
            host::log_current(abi::level::ERROR, &format!("rgi: app panicked{location}: {message}"));
        }));
    });
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs `f` for request `req`, turning a panic into `on_panic` (the hook has logged it).
fn guarded<R>(req: *mut HostRequest, on_panic: R, f: impl FnOnce() -> R) -> R {
    let _current = CurrentRequest::enter(req);
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

fn log_error(host: Host<'_>, what: &str, err: &dyn std::fmt::Display) {
    host.log(abi::level::ERROR, &format!("rgi: {what} failed: {err}"));
}

/// # Safety
/// `instance` must come from the `create` trampoline of the same type.
pub(crate) unsafe fn instance<'a, T>(instance: Instance) -> &'a T {
    // SAFETY: the host passes back the pointer `create` returned, alive until `destroy`.
    unsafe { &*instance.cast::<T>() }
}

/// The body of a `create` trampoline: runs `f` and boxes its value as the instance, or passes
/// its error (or panic) to the host.
///
/// # Safety
/// `ctx` and `error` must be what the host passed to `create`.
pub(crate) unsafe fn create_with<T: Send + Sync + 'static>(
    ctx: *const RawCreateContext,
    error: *mut StrSink,
    f: impl FnOnce(&CreateContext<'_>) -> Result<T, Error>,
) -> Instance {
    let result = guarded(std::ptr::null_mut(), Err("panicked (see the log)".into()), || {
        // SAFETY: the host passes a valid context for the duration of the call.
        let raw = unsafe { ctx.as_ref() }.ok_or_else(|| Error::from("no create context"))?;
        f(&CreateContext::new(raw))
    });
    match result {
        Ok(value) => Box::into_raw(Box::new(value)).cast(),
        Err(err) => {
            // SAFETY: the host passes a valid sink (or null) for the duration of the call.
            unsafe { push(error, &err.to_string()) };
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn create<T: Create>(ctx: *const RawCreateContext, error: *mut StrSink) -> Instance {
    // SAFETY: forwarded from the host's call.
    unsafe { create_with(ctx, error, T::create) }
}

/// The `destroy` trampoline of instances of `T`.
///
/// # Safety
/// `instance` must be null or come from the `create` trampoline of `T`, destroyed once.
pub(crate) unsafe extern "C" fn destroy<T: 'static>(instance: Instance) {
    guarded(std::ptr::null_mut(), (), || {
        if !instance.is_null() {
            // SAFETY: the pointer came from Box::into_raw in `create_with` and is destroyed once.
            drop(unsafe { Box::from_raw(instance.cast::<T>()) });
        }
    })
}

/// The body of a `call` trampoline: runs `f` with the request's host handle; an error is logged
/// as `what` failing (unless the client went away) and a panic caught.
pub(crate) fn serve(req: *mut HostRequest, f: impl FnOnce(Host<'_>) -> Result<(), Failure>) -> CallStatus {
    guarded(req, abi::call::PANIC, || {
        // SAFETY: the host passes the live handle of the request this thread serves.
        let Some(host) = (unsafe { Host::new(req) }) else { return abi::call::ERROR };
        match f(host) {
            Ok(()) => abi::call::OK,
            Err(Failure::Send(err)) if err.kind() == io::ErrorKind::ConnectionAborted => abi::call::ERROR,
            Err(Failure::Send(err)) => {
                log_error(host, "sending the response", &err);
                abi::call::ERROR
            }
            Err(Failure::App(err)) => {
                log_error(host, "the app's call", &err);
                abi::call::ERROR
            }
        }
    })
}

/// Why a request callback failed.
pub(crate) enum Failure {
    /// The app returned an error.
    App(Error),
    /// The response could not be sent.
    Send(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Send(e)
    }
}

unsafe extern "C" fn call<T: App>(inst: Instance, req: *mut HostRequest) -> CallStatus {
    serve(req, |host| {
        // SAFETY: `inst` came from `create::<T>`.
        let app = unsafe { instance::<T>(inst) };
        let response = match app.call(crate::request::Request::new(host)) {
            Ok(response) => response,
            Err(err) => match crate::error::client_error_response(&*err) {
                // The client's fault (e.g. a form over the limits): answered, not an app failure.
                Some(response) => {
                    host.log(abi::level::INFO, &format!("rgi: answering {}: {err}", response.status()));
                    response
                }
                None => return Err(Failure::App(err)),
            },
        };
        Ok(response.send(host)?)
    })
}

/// Runs an auth callback with its [`AuthRequest`], mapping `Err` (logged) and panics (logged by
/// the hook) to `error`: an auth callback that fails never grants.
fn auth_call<R: Copy>(
    req: *mut HostRequest,
    error: R,
    what: &str,
    f: impl FnOnce(&AuthRequest<'_>) -> Result<R, Error>,
) -> R {
    guarded(req, error, || {
        // SAFETY: the host passes the live handle of the request this thread serves.
        let Some(host) = (unsafe { Host::new(req) }) else { return error };
        f(&AuthRequest::new(host)).unwrap_or_else(|err| {
            log_error(host, what, &err);
            error
        })
    })
}

/// The text of `s`, or `None` when it is not UTF-8 (a name or password the client sent in
/// another encoding: no provider can know it).
///
/// # Safety
/// `s` must describe live bytes for the call.
unsafe fn text<'a>(s: RgiStr) -> Option<&'a str> {
    // SAFETY: guaranteed by the caller.
    std::str::from_utf8(unsafe { s.as_bytes() }).ok()
}

/// # Safety
/// `sink` must be null or a valid sink for the call.
unsafe fn push(sink: *mut StrSink, s: &str) {
    // SAFETY: guaranteed by the caller.
    if let Some(sink) = unsafe { sink.as_ref() } {
        // SAFETY: the sink's own function with its own context.
        unsafe { (sink.push)(sink.ctx, RgiStr::new(s.as_bytes())) }
    }
}

unsafe extern "C" fn check_password<T: UserProvider>(
    inst: Instance,
    req: *mut HostRequest,
    user: RgiStr,
    password: RgiStr,
    rename: *mut StrSink,
) -> i32 {
    use abi::password::*;
    auth_call(req, ERROR, "check_password", |auth| {
        // SAFETY: `inst` came from `create::<T>`; the strings live for the call.
        let (provider, user, password) = unsafe { (instance::<T>(inst), text(user), text(password)) };
        // A name that is not UTF-8 is nobody here (the next provider may know it); a password
        // that is not UTF-8 cannot be anyone's.
        let Some(user) = user else { return Ok(USER_NOT_FOUND) };
        let Some(password) = password else { return Ok(DENIED) };
        Ok(match provider.check_password(auth, user, password)? {
            PasswordCheck::Granted => GRANTED,
            PasswordCheck::Denied => DENIED,
            PasswordCheck::UserNotFound => USER_NOT_FOUND,
            PasswordCheck::GrantedAs(name) => {
                // SAFETY: the host passes a valid sink.
                unsafe { push(rename, &name) };
                GRANTED_AS
            }
        })
    })
}

unsafe extern "C" fn get_realm_hash<T: UserProvider>(
    inst: Instance,
    req: *mut HostRequest,
    user: RgiStr,
    realm: RgiStr,
    hash: *mut [u8; 16],
) -> i32 {
    use abi::realm_hash::*;
    auth_call(req, ERROR, "get_realm_hash", |auth| {
        // SAFETY: `inst` came from `create::<T>`; the strings live for the call.
        let (provider, user, realm) = unsafe { (instance::<T>(inst), text(user), text(realm)) };
        let (Some(user), Some(realm)) = (user, realm) else { return Ok(USER_NOT_FOUND) };
        Ok(match provider.get_realm_hash(auth, user, realm)? {
            Some(h) => {
                // SAFETY: the host passes 16 writable bytes.
                unsafe { hash.write(h) };
                FOUND
            }
            None => USER_NOT_FOUND,
        })
    })
}

unsafe extern "C" fn groups_for_user<T: GroupProvider>(
    inst: Instance,
    req: *mut HostRequest,
    user: RgiStr,
    groups: *mut StrSink,
) -> CallStatus {
    auth_call(req, abi::call::ERROR, "groups_for_user", |auth| {
        // SAFETY: `inst` came from `create::<T>`; the string lives for the call.
        let (provider, user) = unsafe { (instance::<T>(inst), text(user)) };
        // A user name that is not UTF-8 is in no group here.
        let Some(user) = user else { return Ok(abi::call::OK) };
        for group in provider.groups_for_user(auth, user)? {
            // SAFETY: the host passes a valid sink.
            unsafe { push(groups, &group) };
        }
        Ok(abi::call::OK)
    })
}

fn decision(d: Decision) -> i32 {
    match d {
        Decision::Granted => abi::decision::GRANTED,
        Decision::Denied => abi::decision::DENIED,
        Decision::NoOpinion => abi::decision::NO_OPINION,
    }
}

unsafe extern "C" fn allow_access<T: AccessChecker>(inst: Instance, req: *mut HostRequest, client: RgiStr) -> i32 {
    auth_call(req, abi::decision::ERROR, "allow_access", |auth| {
        // SAFETY: `inst` came from `create::<T>`; the string lives for the call.
        let (checker, client) = unsafe { (instance::<T>(inst), text(client)) };
        let client = client.ok_or("the client host name is not UTF-8")?;
        Ok(decision(checker.allow_access(auth, client)?))
    })
}

unsafe extern "C" fn authen<T: AuthenHandler>(inst: Instance, req: *mut HostRequest) -> i32 {
    use abi::authen::*;
    auth_call(req, ERROR, "the authentication handler", |auth| {
        // SAFETY: `inst` came from `create::<T>`.
        let handler = unsafe { instance::<T>(inst) };
        Ok(match handler.authenticate(auth)? {
            Authentication::Authenticated { user, auth_type } => {
                auth.host().set_user(&user, &auth_type)?;
                OK
            }
            Authentication::Declined => DECLINED,
            Authentication::Unauthorized { challenge } => {
                auth.add_response_header("WWW-Authenticate", &challenge)?;
                UNAUTHORIZED
            }
            Authentication::Forbidden => FORBIDDEN,
        })
    })
}

unsafe extern "C" fn authz<T: AuthzHandler>(inst: Instance, req: *mut HostRequest) -> i32 {
    auth_call(req, abi::decision::ERROR, "the authorisation handler", |auth| {
        // SAFETY: `inst` came from `create::<T>`.
        let handler = unsafe { instance::<T>(inst) };
        Ok(decision(handler.authorize(auth)?))
    })
}

unsafe extern "C" fn dispatch<T: Dispatcher>(
    inst: Instance,
    req: *mut HostRequest,
    process_group: *mut StrSink,
    application_group: *mut StrSink,
) -> CallStatus {
    auth_call(req, abi::call::ERROR, "dispatch", |auth| {
        // SAFETY: `inst` came from `create::<T>`.
        let dispatcher = unsafe { instance::<T>(inst) };
        let choice = dispatcher.dispatch(auth)?;
        // SAFETY: the host passes valid sinks.
        unsafe {
            if let Some(group) = &choice.process_group {
                push(process_group, group);
            }
            if let Some(group) = &choice.application_group {
                push(application_group, group);
            }
        }
        Ok(abi::call::OK)
    })
}

/// Exports a type as an RGI library: writes the manifest static and the versioned entry function.
///
/// `rgi::export!(MyApp)` exports an [`App`](crate::App). List roles to export other traits the
/// type implements: `app`, `user_provider`, `group_provider`, `access_checker`, `authen_handler`,
/// `authz_handler`, `dispatcher`.
///
/// ```
/// #[derive(Default)]
/// struct Hello;
/// impl rgi::App for Hello {
///     fn call<'r>(&self, _req: rgi::Request<'r>) -> Result<rgi::Response<'r>, rgi::Error> {
///         Ok(rgi::Response::text("Hello, World!"))
///     }
/// }
/// rgi::export!(Hello);
/// ```
///
/// With several roles:
///
/// ```ignore
/// rgi::export!(Directory: user_provider, group_provider);
/// ```
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        $crate::export!($ty: app);
    };
    ($ty:ty : $($role:ident),+ $(,)?) => {
        /// RGI manifest, read by mod_rgi from the library file at configuration time.
        #[unsafe(no_mangle)]
        #[used]
        #[allow(non_upper_case_globals)]
        pub static rgi_manifest_v1: $crate::abi::Manifest =
            $crate::abi::Manifest::new(0 $(| $crate::__private::roles::$role)+);

        /// RGI entry point, called by mod_rgi after loading the library.
        ///
        /// # Safety
        /// `host` must be null or a host table valid for the rest of the process.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rgi_app_v1(host: *const $crate::abi::HostApi) -> *const $crate::abi::AppDescriptor {
            static DESCRIPTOR: $crate::abi::AppDescriptor = {
                let mut d = $crate::__private::descriptor::<$ty>(0 $(| $crate::__private::roles::$role)+);
                $( $crate::__private::$role::<$ty>(&mut d); )+
                d
            };
            // SAFETY: forwarded from our own caller's contract.
            unsafe { $crate::__private::enter(host, &DESCRIPTOR) }
        }
    };
}
