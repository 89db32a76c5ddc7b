//! Copies of libraries Apache's children could not read where they are.
//!
//! Started as root, Apache serves as www-data, who often cannot enter the directory a project
//! was built in (`/root/project`, mode 700). Rather than 500 on every request, such a library is
//! served from a copy in the server root, made again when the original changes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::preflight;
use crate::site::Site;

/// One staged library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The library as given.
    pub original: PathBuf,
    /// Where Apache loads it from.
    pub copy: PathBuf,
}

impl Copy {
    /// Copies the original into place (atomically: processes that loaded the previous copy keep it).
    pub fn refresh(&self) -> std::io::Result<()> {
        let tmp = self.copy.with_extension("so.new");
        fs::copy(&self.original, &tmp)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
        fs::rename(&tmp, &self.copy)
    }
}

/// Serves every library of `site` that its run user cannot read from a copy in the server root
/// (under `apps/`), and says so. Returns the copies.
pub fn stage_unreachable(site: &mut Site) -> Result<Vec<Copy>> {
    let Some(run_as) = site.run_as.clone() else { return Ok(Vec::new()) };
    let dir = site.server_root.join("apps");
    let mut copies: Vec<Copy> = Vec::new();
    let mut paths: Vec<&mut PathBuf> = site.apps.iter_mut().map(|a| &mut a.library).collect();
    if let Some(auth) = site.auth.as_mut() {
        paths.push(&mut auth.user_script);
        paths.extend(auth.group_script.as_mut());
    }
    for path in paths {
        if let Some(known) = copies.iter().find(|c| c.original == *path) {
            *path = known.copy.clone();
            continue;
        }
        let Some(why) = preflight::unreachable_by(path, &run_as, false) else { continue };
        let fail = |e: std::io::Error| Error::ServerRoot {
            path: site.server_root.clone(),
            reason: format!("cannot copy {} into it: {e}", path.display()),
        };
        fs::create_dir_all(&dir).map_err(fail)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(fail)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let copy = Copy { original: path.clone(), copy: dir.join(format!("{}-{name}", copies.len() + 1)) };
        copy.refresh().map_err(fail)?;
        println!("rgi-express: {why}; serving a copy of {} from {}", path.display(), copy.copy.display());
        *path = copy.copy.clone();
        copies.push(copy);
    }
    Ok(copies)
}

/// The library as given for `path`, which may be a copy.
pub fn original<'a>(copies: &'a [Copy], path: &'a Path) -> &'a Path {
    copies.iter().find(|c| c.copy == path).map_or(path, |c| c.original.as_path())
}
