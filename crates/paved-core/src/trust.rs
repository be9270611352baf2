//! Whether a file can be trusted: nobody but this user and root can have written it, its
//! directories, or the symlinks on the way to it.
//!
//! paved trusts two kinds of file it did not just write itself: the organisation's policy file
//! ([`crate::OrgPolicy`]), and the key of the precompiled-component cache. Both are checked
//! along their whole path, because a directory another user can write lets them swap any
//! file below it. A directory that everyone may write to with the sticky bit set (`/tmp`) is
//! accepted: others cannot rename or delete what this user put there.

use std::io;
use std::path::{Component, Path, PathBuf};

/// How strictly [`check_path`] judges the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// The file or directory and its ancestors may be written only by this user or root.
    NotWritableByOthers,
    /// As [`NotWritableByOthers`](Self::NotWritableByOthers), and the last component belongs
    /// to this user, is not a symlink, and gives group and others no access at all (a key).
    Private,
}

/// Checks `path` and every directory and symlink on the way to it (as written and as
/// resolved). Fails with [`io::ErrorKind::PermissionDenied`] naming the first component that
/// another user owns or could write, and how.
///
/// ```
/// use paved_core::trust::{Strictness, check_path};
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("org.toml");
/// std::fs::write(&file, "").unwrap();
/// check_path(&file, Strictness::NotWritableByOthers).unwrap();
/// #[cfg(unix)]
/// {
///     use std::os::unix::fs::PermissionsExt;
///     std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
///     let e = check_path(&file, Strictness::NotWritableByOthers).unwrap_err();
///     assert!(e.to_string().contains("others may write to it"), "{e}");
/// }
/// ```
pub fn check_path(path: &Path, strictness: Strictness) -> io::Result<()> {
    #[cfg(unix)]
    {
        let absolute = std::path::absolute(path)?;
        if strictness == Strictness::Private {
            check_private_leaf(&absolute)?;
        }
        // As written: every prefix, symlinks included (a symlink's owner can retarget it).
        let mut prefix = PathBuf::new();
        for component in absolute.components() {
            if component == Component::ParentDir {
                prefix.pop();
                continue;
            }
            prefix.push(component);
            check_component(&prefix)?;
        }
        // As resolved: the directories the path really goes through.
        let resolved = std::fs::canonicalize(&absolute)?;
        for ancestor in resolved.ancestors() {
            check_component(ancestor)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, strictness);
    Ok(())
}

#[cfg(unix)]
fn check_private_leaf(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let me = rustix::process::geteuid().as_raw();
    let reason = if meta.file_type().is_symlink() {
        Some("it is a symlink".to_string())
    } else if meta.uid() != me {
        Some(format!("it belongs to uid {}, not to this user (uid {me})", meta.uid()))
    } else if meta.mode() & 0o077 != 0 {
        Some(format!("its mode {:o} gives group or others access (chmod go= it)", meta.mode() & 0o7777))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(untrusted(path, &reason)),
        None => Ok(()),
    }
}

#[cfg(unix)]
fn check_component(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(untrusted(
            path,
            &format!("it belongs to uid {}, neither this user (uid {me}) nor root", meta.uid()),
        ));
    }
    // A symlink's own mode means nothing; its owner (checked above) is who can retarget it.
    let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
    if !meta.file_type().is_symlink() && meta.mode() & 0o022 != 0 && !sticky_dir {
        return Err(untrusted(path, &format!("others may write to it (mode {:o})", meta.mode() & 0o7777)));
    }
    Ok(())
}

#[cfg(unix)]
fn untrusted(path: &Path, reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("{} cannot be trusted: {reason}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_key_must_be_private_and_its_directories_not_shared() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        std::fs::create_dir(&sub).unwrap();
        let key = sub.join("key");
        std::fs::write(&key, [0u8; 32]).unwrap();
        mode(&key, 0o600);
        check_path(&key, Strictness::Private).unwrap();
        mode(&key, 0o640);
        let e = check_path(&key, Strictness::Private).unwrap_err();
        assert!(e.to_string().contains("gives group or others access"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        mode(&key, 0o600);
        // A directory anyone may write to anywhere on the way: someone could swap the key.
        mode(&sub, 0o777);
        let e = check_path(&key, Strictness::Private).unwrap_err();
        assert!(e.to_string().contains("others may write to it (mode 777)"), "{e}");
        // ... unless it is sticky, like /tmp.
        mode(&sub, 0o1777);
        check_path(&key, Strictness::Private).unwrap();
    }

    #[test]
    fn a_symlink_on_the_way_is_judged_by_its_target_and_a_private_leaf_may_not_be_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("key"), [0u8; 32]).unwrap();
        mode(&real.join("key"), 0o600);
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        check_path(&dir.path().join("link/key"), Strictness::Private).unwrap();
        mode(&real, 0o777);
        let e = check_path(&dir.path().join("link/key"), Strictness::Private).unwrap_err();
        assert!(e.to_string().contains("others may write to it"), "{e}");
        mode(&real, 0o700);
        std::os::unix::fs::symlink(real.join("key"), dir.path().join("key-link")).unwrap();
        let e = check_path(&dir.path().join("key-link"), Strictness::Private).unwrap_err();
        assert!(e.to_string().contains("it is a symlink"), "{e}");
    }
}
