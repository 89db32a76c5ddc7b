//! Which process group serves a request: `process-group=` of its alias, else `RGIProcessGroup`
//! (a name, or `%{ENV:variable}` read per request), checked against `RGIRestrictProcess`.

use std::borrow::Cow;
use std::ffi::{CStr, CString};

use super::{GLOBAL, check_group_name};

/// What `RGIProcessGroup` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessGroupSpec {
    /// A declared group, or `%{GLOBAL}` (Apache's own children).
    Named(String),
    /// `%{ENV:variable}`: the request's variable (set by `SetEnv`, `SetEnvIf`, `RewriteRule
    /// [E=…]`) names the group; unset or empty means `%{GLOBAL}`, as in mod_wsgi.
    Env(CString),
}

impl ProcessGroupSpec {
    /// Parses `RGIProcessGroup`'s argument; the error says what is accepted.
    pub fn parse(arg: &str) -> Result<Self, String> {
        if arg == GLOBAL {
            return Ok(ProcessGroupSpec::Named(arg.to_string()));
        }
        if let Some(var) = arg.strip_prefix("%{ENV:").and_then(|rest| rest.strip_suffix('}')) {
            if var.is_empty() || var.contains(['{', '}']) {
                return Err(format!("'{arg}' names no variable: use %{{ENV:NAME}}"));
            }
            return CString::new(var).map(ProcessGroupSpec::Env).map_err(|_| "NUL in the variable name".to_string());
        }
        if arg.contains("%{") {
            return Err(format!(
                "'{arg}' is not a process group: use a group's name, %{{GLOBAL}} or %{{ENV:variable}}"
            ));
        }
        check_group_name(arg)?;
        Ok(ProcessGroupSpec::Named(arg.to_string()))
    }

    /// The group named at configuration time (for `apache2 -t` to check it is declared).
    pub fn fixed_name(&self) -> Option<&str> {
        match self {
            ProcessGroupSpec::Named(name) if name != GLOBAL => Some(name),
            _ => None,
        }
    }
}

/// The process group a request goes to; `None` is Apache's own children (embedded). `env` looks
/// up a request variable for `%{ENV:…}`.
#[inline]
pub fn request_group<'a>(
    alias: Option<&'a str>,
    dir: Option<&'a ProcessGroupSpec>,
    env: impl FnOnce(&CStr) -> Option<&'a [u8]>,
) -> Option<Cow<'a, str>> {
    let name = match (alias, dir) {
        (Some(name), _) => Cow::Borrowed(name),
        (None, Some(ProcessGroupSpec::Named(name))) => Cow::Borrowed(name.as_str()),
        (None, Some(ProcessGroupSpec::Env(var))) => String::from_utf8_lossy(env(var)?),
        (None, None) => return None,
    };
    (!name.is_empty() && name != GLOBAL).then_some(name)
}

/// Whether `RGIRestrictProcess` (`restrict`, when set) lets `group` (`None`: embedded, listed as
/// `%{GLOBAL}`) serve the request.
pub fn allowed(restrict: Option<&[String]>, group: Option<&str>) -> bool {
    let group = group.unwrap_or(GLOBAL);
    restrict.is_none_or(|names| names.iter().any(|n| n == group))
}

/// Parses `RGIRestrictProcess`'s arguments: group names and `%{GLOBAL}`, at least one.
pub fn parse_restriction(args: &[Cow<'_, str>]) -> Result<Vec<String>, String> {
    if args.is_empty() {
        return Err("needs the names of the process groups allowed here (or %{GLOBAL})".into());
    }
    args.iter()
        .map(|name| {
            if name != GLOBAL {
                check_group_name(name)?;
            }
            Ok(name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env<'a>(_: &CStr) -> Option<&'a [u8]> {
        None
    }

    /// A request whose `PROCESS_GROUP` is `value`.
    fn env<'a>(value: &'a [u8]) -> impl FnOnce(&CStr) -> Option<&'a [u8]> {
        move |var: &CStr| {
            assert_eq!(var, c"PROCESS_GROUP");
            Some(value)
        }
    }

    #[test]
    fn global_means_embedded() {
        let b = ProcessGroupSpec::Named("b".into());
        let global = ProcessGroupSpec::Named(GLOBAL.into());
        assert_eq!(request_group(Some("a"), Some(&b), no_env).as_deref(), Some("a"));
        assert_eq!(request_group(None, Some(&b), no_env).as_deref(), Some("b"));
        assert_eq!(request_group(Some(GLOBAL), Some(&b), no_env), None);
        assert_eq!(request_group(None, Some(&global), no_env), None);
        assert_eq!(request_group(None, None, no_env), None);
    }

    #[test]
    fn a_variable_names_the_group_per_request() {
        let spec = ProcessGroupSpec::parse("%{ENV:PROCESS_GROUP}").unwrap();
        assert_eq!(spec, ProcessGroupSpec::Env(c"PROCESS_GROUP".into()));
        assert_eq!(spec.fixed_name(), None);
        assert_eq!(request_group(None, Some(&spec), env(b"shop")).as_deref(), Some("shop"));
        assert_eq!(request_group(None, Some(&spec), env(b"")), None);
        assert_eq!(request_group(None, Some(&spec), env(b"%{GLOBAL}")), None);
        assert_eq!(request_group(None, Some(&spec), no_env), None);
        // Not a group name, so no group matches it (the request is refused, not misrouted).
        assert_eq!(request_group(None, Some(&spec), env(b"\xff")).as_deref(), Some("\u{fffd}"));
        // process-group= of the alias wins over the variable.
        assert_eq!(request_group(Some("a"), Some(&spec), env(b"shop")).as_deref(), Some("a"));
    }

    #[test]
    fn bad_specs_say_what_is_accepted() {
        assert_eq!(ProcessGroupSpec::parse("shop").unwrap().fixed_name(), Some("shop"));
        assert_eq!(ProcessGroupSpec::parse(GLOBAL).unwrap().fixed_name(), None);
        for (bad, expected) in [
            ("%{ENV:}", "names no variable"),
            ("%{ENV:A}}", "names no variable"),
            ("%{SERVER}", "not a process group"),
            ("%{ENV:A", "not a process group"),
            ("a/b", "not a valid process group name"),
        ] {
            let err = ProcessGroupSpec::parse(bad).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn a_restriction_covers_embedded_unless_it_lists_global() {
        let names = parse_restriction(&["a".into(), "b".into()]).unwrap();
        assert!(allowed(None, Some("x")));
        assert!(allowed(None, None));
        assert!(allowed(Some(&names), Some("a")));
        assert!(!allowed(Some(&names), Some("c")));
        assert!(!allowed(Some(&names), None));
        let with_global = parse_restriction(&["a".into(), GLOBAL.into()]).unwrap();
        assert!(allowed(Some(&with_global), None));
        assert!(parse_restriction(&[]).is_err());
        assert!(parse_restriction(&["a/b".into()]).unwrap_err().contains("not a valid process group name"));
    }
}
