//! A group provider (`RGIAuthGroupScript`) over a group file in the format of Apache's
//! `AuthGroupFile`: `group: user user ...` lines, named by `RGIOption groups.file FILE` and read
//! on every request.
//!
//! ```apache
//! <Location /admin>
//!     RGIAuthGroupScript /srv/auth/libexample_groups.so
//!     RGIOption groups.file /srv/auth/groups
//!     Require rgi-group admins
//! </Location>
//! ```

use rgi::auth::{AuthRequest, GroupProvider};

#[derive(Default)]
struct GroupFile;

/// The groups `user` is listed in, from `group: user user ...` lines.
fn groups_of(text: &str, user: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .filter(|(_, members)| members.split_whitespace().any(|m| m == user))
        .map(|(group, _)| group.trim().to_string())
        .collect()
}

impl GroupProvider for GroupFile {
    fn groups_for_user(&self, req: &AuthRequest<'_>, user: &str) -> Result<Vec<String>, rgi::Error> {
        let path = req.option("groups.file").ok_or("RGIOption groups.file is not set")?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Ok(groups_of(&text, user))
    }
}

rgi::export!(GroupFile: group_provider);

#[cfg(test)]
mod tests {
    #[test]
    fn groups_list_their_members() {
        let text = "admins: alice\nstaff: alice bob\n# old: bob\nempty:\n";
        assert_eq!(super::groups_of(text, "alice"), ["admins", "staff"]);
        assert_eq!(super::groups_of(text, "bob"), ["staff"]);
        assert!(super::groups_of(text, "carol").is_empty());
        assert!(super::groups_of(text, "ali").is_empty());
    }
}
