//! Checks before Apache starts, so that the common mistakes get a plain answer instead of a
//! line in a log: the port, the server root, the user Apache's children run as.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{Error, Result};
use crate::site::RunAs;

/// Fails when `host:port` cannot be listened on, saying why.
pub fn check_port(host: &str, port: u16) -> Result<()> {
    let cannot = |reason: String| Error::CannotListen { host: host.into(), port, reason };
    match TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AddrInUse => Err(Error::PortInUse { host: host.into(), port }),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(cannot("ports below 1024 need root: choose a higher one with --port".into()))
        }
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => {
            Err(cannot(format!("{host} is not an address of this machine: choose another with --host")))
        }
        Err(e) => Err(cannot(e.to_string())),
    }
}

/// `$TMPDIR/rgi-express-HOST-PORT-UID`: the same directory for the same server, so its logs are
/// still there after it stops, and different ones for different users.
pub fn default_server_root(host: &str, port: u16) -> PathBuf {
    let host: String = host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    std::env::temp_dir().join(format!("rgi-express-{host}-{port}-{}", Uid::effective()))
}

/// Creates the server root (and its `htdocs`) if needed and checks that it is ours to write.
pub fn prepare_server_root(dir: &Path) -> Result<()> {
    let fail = |reason: String| Error::ServerRoot { path: dir.to_path_buf(), reason };
    fs::create_dir_all(dir).map_err(|e| fail(io_reason(&e)))?;
    let meta = fs::metadata(dir).map_err(|e| fail(io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(fail("it is not a directory".into()));
    }
    let me = Uid::effective();
    if meta.uid() != me.as_raw() {
        // Apache reads the configuration as root when started as root: a directory someone
        // else can write to would let them run anything.
        let owner = User::from_uid(Uid::from_raw(meta.uid())).ok().flatten().map(|u| u.name);
        let owner = owner.unwrap_or_else(|| format!("uid {}", meta.uid()));
        return Err(fail(format!("it belongs to {owner}, not to you")));
    }
    // Others (Apache's children) may look, not write.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| fail(io_reason(&e)))?;
    fs::create_dir_all(dir.join("htdocs")).map_err(|e| fail(io_reason(&e)))?;
    Ok(())
}

/// Writes one file of the server root.
pub fn write_file(server_root: &Path, path: &Path, contents: &str, mode: u32) -> Result<()> {
    let fail = |e: std::io::Error| Error::ServerRoot {
        path: server_root.to_path_buf(),
        reason: format!("cannot write {}: {}", path.display(), io_reason(&e)),
    };
    fs::write(path, contents).map_err(fail)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(fail)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied (you may not write there)".into(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".into(),
        ErrorKind::NotADirectory => "a part of the path is not a directory".into(),
        _ => e.to_string(),
    }
}

/// The user Apache's children run as: `None` unless rgi-express runs as root (then Apache
/// switches to `user`/`group`, by default www-data, or nobody where there is no www-data).
pub fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<RunAs>> {
    if !Uid::effective().is_root() {
        if user.is_some() || group.is_some() {
            return Err(Error::Usage(
                "--user and --group need rgi-express to run as root (only root can switch users); without them \
                 Apache runs as you"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let name = match user {
        Some(name) => name.to_string(),
        None if lookup_user("www-data").is_some() => "www-data".into(),
        None => "nobody".into(),
    };
    let account = lookup_user(&name).ok_or_else(|| Error::Usage(format!("there is no user '{name}' (--user)")))?;
    if account.uid.is_root() {
        return Err(Error::Usage(
            "Apache will not serve requests as root: choose another --user (the default is www-data)".into(),
        ));
    }
    let group = match group {
        Some(g) => {
            Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| Error::Usage(format!("there is no group '{g}' (--group)")))?;
            g.to_string()
        }
        None => Group::from_gid(account.gid).ok().flatten().map(|g| g.name).unwrap_or_else(|| name.clone()),
    };
    Ok(Some(RunAs { user: name, group }))
}

fn lookup_user(name: &str) -> Option<User> {
    User::from_name(name).ok().flatten()
}

/// Why `run_as` cannot read `path` (checking every directory on the way), or `None` when it can.
///
/// Only the permission bits are checked (not ACLs), so this is a warning, not an error.
pub fn unreachable_by(path: &Path, run_as: &RunAs, need_write: bool) -> Option<String> {
    let user = lookup_user(&run_as.user)?;
    let gid = Group::from_name(&run_as.group).ok().flatten().map(|g| g.gid).unwrap_or(user.gid);
    let mut groups = vec![gid, user.gid];
    if let Ok(name) = std::ffi::CString::new(run_as.user.as_str()) {
        groups.extend(nix::unistd::getgrouplist(&name, gid).unwrap_or_default());
    }
    let ancestors: Vec<&Path> = path.ancestors().collect();
    for (i, p) in ancestors.iter().rev().enumerate() {
        let meta = fs::metadata(p).ok()?;
        let last = i + 1 == ancestors.len();
        let (bit, verb) = match (last, meta.is_dir(), need_write) {
            (true, true, true) => (0o3, "write into"),
            (true, false, _) => (0o4, "read"),
            _ => (0o1, "enter"),
        };
        if !allowed(&meta, user.uid, &groups, bit) {
            return Some(format!(
                "{} cannot {verb} {} (mode {:o}, owner {})",
                run_as.user,
                p.display(),
                meta.mode() & 0o7777,
                User::from_uid(Uid::from_raw(meta.uid())).ok().flatten().map_or(meta.uid().to_string(), |u| u.name),
            ));
        }
    }
    None
}

/// Whether the permission `bits` (rwx as 4/2/1) are granted to `uid` in `groups` by `meta`.
fn allowed(meta: &fs::Metadata, uid: Uid, groups: &[Gid], bits: u32) -> bool {
    let mode = meta.mode();
    let granted = if uid.as_raw() == meta.uid() {
        mode >> 6
    } else if groups.iter().any(|g| g.as_raw() == meta.gid()) {
        mode >> 3
    } else {
        mode
    };
    uid.is_root() || granted & bits == bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_port("127.0.0.1", port).unwrap_err().to_string();
        assert!(err.contains(&format!("port {port} on 127.0.0.1 is already in use")), "{err}");
        drop(listener);
        assert!(check_port("127.0.0.1", port).is_ok());
    }

    #[test]
    fn a_foreign_address_is_named() {
        let err = check_port("192.0.2.1", 8000).unwrap_err().to_string();
        assert!(err.contains("not an address of this machine"), "{err}");
    }

    #[test]
    fn the_server_root_is_created_with_htdocs() {
        let tmp = std::env::temp_dir().join(format!("rgi-express-unit-{}", std::process::id()));
        let root = tmp.join("a/b");
        prepare_server_root(&root).unwrap();
        assert!(root.join("htdocs").is_dir());
        assert_eq!(fs::metadata(&root).unwrap().mode() & 0o777, 0o755);
        fs::write(tmp.join("file"), "").unwrap();
        let err = prepare_server_root(&tmp.join("file")).unwrap_err().to_string();
        assert!(err.contains("cannot use") && err.contains("--server-root"), "{err}");
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn default_server_roots_differ_by_port_and_host() {
        assert_ne!(default_server_root("127.0.0.1", 8000), default_server_root("127.0.0.1", 8001));
        assert!(!default_server_root("::1", 8000).to_string_lossy().contains(':'));
    }
}
