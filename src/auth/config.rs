//! Where each auth directive's library is recorded: per directory, so `<Location>`,
//! `<Directory>` and `<AuthnProviderAlias>` sections can each name their own.

use crate::config::GroupSpec;

/// One `RGIAuthUserScript`, `RGIAuthGroupScript`, `RGIAccessScript`, `RGIAuthenHandler` or
/// `RGIAuthzHandler`: the library and the application group its instance belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthScript {
    /// The library, absolute.
    pub library: String,
    /// `application-group=`, `%{GLOBAL}` by default (as mod_wsgi's auth scripts).
    pub group: GroupSpec,
}

/// The auth libraries in effect for a directory; an inner section's replace an outer one's.
#[derive(Debug, Default, Clone)]
pub struct DirAuth {
    /// `RGIAuthUserScript`: the `rgi` authn provider.
    pub user_provider: Option<AuthScript>,
    /// `RGIAuthGroupScript`: the `rgi-group` authz provider.
    pub group_provider: Option<AuthScript>,
    /// `RGIAccessScript`: the host access check.
    pub access_checker: Option<AuthScript>,
    /// `RGIAuthenHandler`: the check_user_id phase.
    pub authen_handler: Option<AuthScript>,
    /// `RGIAuthzHandler`: the auth_checker phase.
    pub authz_handler: Option<AuthScript>,
}

impl DirAuth {
    /// `add` (the inner section) over `base`, field by field.
    pub fn merge(base: &DirAuth, add: &DirAuth) -> DirAuth {
        let pick = |a: &Option<AuthScript>, b: &Option<AuthScript>| a.clone().or_else(|| b.clone());
        DirAuth {
            user_provider: pick(&add.user_provider, &base.user_provider),
            group_provider: pick(&add.group_provider, &base.group_provider),
            access_checker: pick(&add.access_checker, &base.access_checker),
            authen_handler: pick(&add.authen_handler, &base.authen_handler),
            authz_handler: pick(&add.authz_handler, &base.authz_handler),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(library: &str) -> Option<AuthScript> {
        Some(AuthScript { library: library.into(), group: GroupSpec::Global })
    }

    #[test]
    fn inner_sections_replace_outer_ones_field_by_field() {
        let base = DirAuth { user_provider: script("/a.so"), group_provider: script("/g.so"), ..DirAuth::default() };
        let add = DirAuth { user_provider: script("/b.so"), ..DirAuth::default() };
        let merged = DirAuth::merge(&base, &add);
        assert_eq!(merged.user_provider, script("/b.so"));
        assert_eq!(merged.group_provider, script("/g.so"));
        assert_eq!(merged.access_checker, None);
    }
}
