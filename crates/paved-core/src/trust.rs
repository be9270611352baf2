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

/// Checks `path` and every directory and symbolic link on the way to it, following each link
/// hop by hop. Fails with [`io::ErrorKind::PermissionDenied`] naming the first component that
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
        walk(&absolute)?;
    }
    #[cfg(not(unix))]
    let _ = (path, strictness);
    Ok(())
}

/// Resolves `path` one component at a time, as the kernel does, checking every directory it
/// passes through and every symbolic link it follows (a link's owner can retarget it), link
/// after link: nobody else may have been able to change where it leads.
#[cfg(unix)]
fn walk(path: &Path) -> io::Result<()> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    fn parts(path: &Path) -> VecDeque<Option<OsString>> {
        // `None` is `..`; the root and `.` need no step.
        path.components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(Some(name.to_os_string())),
                Component::ParentDir => Some(None),
                _ => None,
            })
            .collect()
    }
    let mut resolved = PathBuf::from("/");
    check_component(&resolved)?;
    let mut pending = parts(path);
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        let Some(name) = part else {
            resolved.pop();
            continue;
        };
        let next = resolved.join(&name);
        check_component(&next)?;
        if std::fs::symlink_metadata(&next)?.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return Err(untrusted(path, "it goes through more than 40 symbolic links"));
            }
            let target = std::fs::read_link(&next)?;
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            let mut spliced = parts(&target);
            spliced.extend(pending);
            pending = spliced;
        } else {
            resolved = next;
        }
    }
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
    fn every_link_of_a_chain_is_followed_and_judged() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("org.toml"), "").unwrap();
        // org.toml -> a/hop -> ../b/org.toml: the middle link lives in `a`.
        std::os::unix::fs::symlink("../b/org.toml", a.join("hop")).unwrap();
        std::os::unix::fs::symlink(a.join("hop"), dir.path().join("org.toml")).unwrap();
        check_path(&dir.path().join("org.toml"), Strictness::NotWritableByOthers).unwrap();
        // Anyone may write the directory of the middle link: they could retarget it.
        mode(&a, 0o777);
        let e = check_path(&dir.path().join("org.toml"), Strictness::NotWritableByOthers).unwrap_err();
        assert!(e.to_string().contains("/a cannot be trusted: others may write to it"), "{e}");
        mode(&a, 0o755);
        mode(&b, 0o777);
        let e = check_path(&dir.path().join("org.toml"), Strictness::NotWritableByOthers).unwrap_err();
        assert!(e.to_string().contains("/b cannot be trusted"), "{e}");
        // A loop ends.
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(check_path(&dir.path().join("loop"), Strictness::NotWritableByOthers).is_err());
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
