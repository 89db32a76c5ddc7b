//! The content handler: serves a request with the app of its `RGIScriptAlias`.

use std::ffi::{CStr, c_int};
use std::sync::Arc;

use rgi::abi;
use smallvec::SmallVec;

use crate::app;
use crate::config::{self, GroupSpec};
use crate::daemon::{
    self, DaemonGroup,
    select::{self, ProcessGroupSpec},
};
use crate::environ;
use crate::ffi::{self, sys};
use crate::logging::CurrentRequest;
use crate::request::{EMBEDDED_HOST, Phase, RequestContext};
use crate::translate::{self, HANDLER};

/// The handler hook: serves requests whose handler is `rgi-script`.
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe extern "C" fn handler(r: *mut sys::request_rec) -> c_int {
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: Apache passes a live request; the handler name is a C string.
        if unsafe { ffi::bytes((*r).handler) } != Some(HANDLER.to_bytes()) {
            return sys::DECLINED;
        }
        let _current = CurrentRequest::enter(r);
        // SAFETY: a live request on this thread.
        let watched = unsafe { crate::slow::watch(r) };
        // SAFETY: as above.
        let answer = unsafe { handle(r) };
        if let Some(watched) = watched {
            // SAFETY: as above.
            unsafe { watched.finish(r, answer) };
        }
        answer
    })
}

/// An application group name, built on the stack for the usual lengths (it is needed on every
/// request).
pub type GroupName = SmallVec<[u8; 128]>;

/// Appends `host[:port]` of the request's virtual host, the port left out when it is 80 or 443.
unsafe fn push_server_name(r: *const sys::request_rec, name: &mut GroupName) {
    // SAFETY: a live request and its server.
    unsafe {
        name.extend_from_slice(ffi::bytes((*(*r).server).server_hostname).unwrap_or_default());
        let port = sys::ap_get_server_port(r);
        if port != 80 && port != 443 {
            name.push(b':');
            name.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
        }
    }
}

/// The application group name for `r` under `spec` (mod_wsgi's expansions).
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn application_group(r: *const sys::request_rec, spec: &GroupSpec) -> GroupName {
    let mut name = GroupName::new();
    // SAFETY: a live request.
    unsafe {
        match spec {
            GroupSpec::Global => {}
            GroupSpec::Named(n) => name.extend_from_slice(n.as_bytes()),
            GroupSpec::Server => push_server_name(r, &mut name),
            GroupSpec::Resource => {
                push_server_name(r, &mut name);
                name.push(b'|');
                name.extend_from_slice(&environ::script_name_and_path_info(r).0);
            }
            GroupSpec::Env(var) => {
                let value = ffi::table_get((*r).subprocess_env, var).or_else(|| ffi::table_get((*r).notes, var));
                name.extend_from_slice(value.unwrap_or_default());
            }
        }
    }
    name
}

/// The daemon process group that serves `r` (`None`: Apache's own children), or the status to
/// answer when `RGIRestrictProcess` refuses the group or no group of that name serves the server.
/// `dispatched` (`RGIDispatchScript`'s answer) overrides the alias's and the directory's choice.
///
/// # Safety
/// `r` must be a live request of the running configuration.
unsafe fn serving_group<'a>(
    r: *mut sys::request_rec,
    alias: Option<&'a config::Alias>,
    dir: Option<&'a config::DirConfig>,
    dispatched: Option<&'a ProcessGroupSpec>,
) -> Result<Option<&'a Arc<DaemonGroup>>, c_int> {
    // SAFETY: a live request: its tables live in the request pool, for the request.
    let env =
        |var: &CStr| unsafe { ffi::table_get((*r).subprocess_env, var).or_else(|| ffi::table_get((*r).notes, var)) };
    let (fixed, spec) = match dispatched {
        Some(spec) => (None, Some(spec)),
        None => (alias.and_then(|a| a.process_group.as_deref()), dir.and_then(|d| d.process_group.as_ref())),
    };
    let from = match (dispatched, fixed, spec) {
        (Some(_), ..) => " (from RGIDispatchScript)",
        (None, None, Some(ProcessGroupSpec::Env(_))) => " (from RGIProcessGroup %{ENV:...})",
        _ => "",
    };
    let name = select::request_group(fixed, spec, env);
    let restrict = dir.and_then(|d| d.restrict_process.as_deref());
    if !select::allowed(restrict, name.as_deref()) {
        let why = format!(
            "RGIRestrictProcess: process group '{}' may not serve this request (allowed here: {}); answering 500",
            name.as_deref().unwrap_or(daemon::GLOBAL),
            restrict.unwrap_or_default().join(" ")
        );
        // SAFETY: a live request.
        unsafe { crate::request::log_request(r, sys::APLOG_ERR, &why) };
        return Err(sys::HTTP_INTERNAL_SERVER_ERROR);
    }
    let Some(name) = name else { return Ok(None) };
    // SAFETY: a live request of the running configuration.
    match unsafe { daemon::find_group((*r).server, &name) } {
        Some(group) => Ok(Some(group)),
        None => {
            let why = format!("no RGIDaemonProcess named '{name}'{from} serves this server; answering 500");
            // SAFETY: a live request.
            unsafe { crate::request::log_request(r, sys::APLOG_ERR, &why) };
            Err(sys::HTTP_INTERNAL_SERVER_ERROR)
        }
    }
}

/// The status a request ended with: the one sent when the handler answered OK or DONE, else
/// the handler's answer.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn final_status(r: *const sys::request_rec, answer: c_int) -> c_int {
    // SAFETY: guaranteed by the caller.
    if answer == sys::OK || answer == sys::DONE { unsafe { (*r).status } } else { answer }
}

unsafe fn handle(r: *mut sys::request_rec) -> c_int {
    // SAFETY: a live request of the running configuration, on this thread.
    unsafe {
        let route = translate::route(r);
        let alias = route.and_then(|route| route.alias.as_ref());
        let library = match route {
            Some(route) => route.library(),
            None => ffi::bytes((*r).filename).unwrap_or_default(),
        };
        if route.is_none() && (*r).finfo.filetype != sys::apr_filetype_e_APR_REG {
            return sys::HTTP_NOT_FOUND;
        }
        let dir = config::dir_config(r);
        // Only with an RGIDispatchScript: most requests pay one branch for it.
        let choice = match dir.and_then(|d| d.dispatch.as_ref()) {
            Some(dispatcher) => match crate::dispatch::choose(r, dispatcher) {
                Ok(choice) => Some(choice),
                Err(status) => return status,
            },
            None => None,
        };
        let default_group = GroupSpec::Resource;
        let spec = choice
            .as_ref()
            .and_then(|c| c.application_group.as_ref())
            .or_else(|| alias.and_then(|a| a.application_group.as_ref()))
            .or_else(|| dir.and_then(|d| d.application_group.as_ref()))
            .unwrap_or(&default_group);
        let group = application_group(r, spec);
        let options = dir.map(|d| d.option_pairs()).unwrap_or_default();
        let pass_authorization = alias
            .and_then(|a| a.pass_authorization)
            .or_else(|| dir.and_then(|d| d.pass_authorization))
            .unwrap_or(false);

        let daemon_group = match serving_group(r, alias, dir, choice.as_ref().and_then(|c| c.process_group.as_ref())) {
            Ok(group) => group,
            Err(status) => return status,
        };
        if let Some(daemon_group) = daemon_group {
            let process_group = daemon_group.name.as_str();
            let request = daemon::client::Delegated {
                group: daemon_group,
                library,
                application_group: &group,
                options,
                pass_authorization,
                ignore_activity: dir.and_then(|d| d.ignore_activity).unwrap_or(false),
            };
            let stats = crate::status::group(process_group.as_bytes(), &group);
            let start = stats.map(|s| s.begin());
            let answer = daemon::client::handle(r, &request);
            if let (Some(stats), Some(start)) = (stats, start) {
                let status = final_status(r, answer);
                stats.record(start, status, false);
            }
            return answer;
        }
        if daemon::restrict_embedded() {
            crate::request::log_request(
                r,
                sys::APLOG_ERR,
                "RGIRestrictEmbedded On: this request is not delegated to a daemon process group \
                 (set RGIProcessGroup or process-group=); answering 500",
            );
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
        let instance = match app::instance(library, &group, "", options, &EMBEDDED_HOST) {
            Ok(instance) => instance,
            Err(why) => {
                crate::request::log_request(r, sys::APLOG_ERR, &why);
                if let Some(stats) = crate::status::group(b"", &group) {
                    stats.record(stats.begin(), sys::HTTP_INTERNAL_SERVER_ERROR, false);
                }
                return sys::HTTP_INTERNAL_SERVER_ERROR;
            }
        };
        let Some(call) = instance.library.descriptor.call else {
            crate::request::log_request(
                r,
                sys::APLOG_ERR,
                &format!(
                    "'{}' is not an app (it does not export the app role), answering 500",
                    String::from_utf8_lossy(library)
                ),
            );
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        };

        let mut ctx = RequestContext::new(r, Phase::Handler, &group, b"", pass_authorization, options);
        let stats = instance.stats();
        let start = stats.map(|s| s.begin());
        let outcome = call(instance.raw, ctx.handle());
        let answer = finish(&mut ctx, r, outcome);
        if let (Some(stats), Some(start)) = (stats, start) {
            let status = final_status(r, answer);
            stats.record(start, status, outcome == abi::call::PANIC);
        }
        answer
    }
}

/// Turns what the app did into Apache's answer (embedded, or relayed from a daemon process).
///
/// # Safety
/// `r` must be the live request `ctx` serves.
pub unsafe fn finish(ctx: &mut RequestContext<'_>, r: *mut sys::request_rec, outcome: abi::CallStatus) -> c_int {
    // SAFETY: the live request the context serves.
    let aborted = unsafe { (*(*r).connection).aborted } != 0;
    let failed = match outcome {
        abi::call::OK => None,
        abi::call::PANIC => Some("panicked"),
        _ => Some("failed"),
    };
    let input_error = ctx.input_error;
    let out = &mut ctx.output;
    if !out.sent() {
        // Nothing reached the client: Apache can still answer with a clean error page.
        let refusal = if let Some(status) = input_error {
            Some((status, None))
        } else if let Some(what) = failed {
            Some((sys::HTTP_INTERNAL_SERVER_ERROR, Some(format!("the app {what} before sending a response"))))
        } else if !out.started() {
            Some((sys::HTTP_INTERNAL_SERVER_ERROR, Some("the app returned without starting a response".into())))
        } else if let Some((declared, written)) = out.missing_body() {
            let why = format!("the app sent {written} bytes of its Content-Length of {declared}");
            Some((sys::HTTP_INTERNAL_SERVER_ERROR, Some(why)))
        } else {
            out.final_status.map(|status| (status, None))
        };
        if let Some((status, why)) = refusal {
            out.discard();
            if aborted {
                return sys::DONE;
            }
            if let Some(why) = why {
                ctx.log(sys::APLOG_ERR, &format!("{why}; answering {status}"));
            }
            return status;
        }
        out.complete();
        return sys::OK;
    }
    let why = match (failed, out.missing_body()) {
        (Some(what), _) => Some(format!("the app {what} while sending the body")),
        (None, Some((declared, written))) => {
            Some(format!("the app sent {written} bytes of its Content-Length of {declared}"))
        }
        (None, None) => None,
    };
    match why {
        Some(why) => {
            if !aborted {
                ctx.log(sys::APLOG_ERR, &format!("{why}; the response was cut short"));
            }
            ctx.output.cut();
        }
        None => out.complete(),
    }
    sys::OK
}
