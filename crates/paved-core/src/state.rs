//! The state directory (`.paved` by default), shared by the deploy target and the metrics
//! ledger: releases and the GitOps directory are committed when it lies in a git work tree;
//! everything else in it (the ledger, lock files) is local state that git must not see.

use std::io::Write;
use std::path::Path;

/// The name of the ignore file paved writes into the state directory.
pub const GITIGNORE_FILE: &str = ".gitignore";

/// What the state directory's `.gitignore` says: everything but `releases/` and `gitops/`
/// (itself included, so it never shows up as untracked either).
pub const GITIGNORE: &str = "\
# Written by paved: only releases/ and gitops/ are committed; the ledger and the lock files
# are local state.
/*
!/releases/
!/gitops/
";

/// Writes the state directory's `.gitignore` ([`GITIGNORE`]) when it has none; an existing
/// one is the user's and is left as it is. The directory must exist.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// paved_core::state::ignore_local_state(dir.path()).unwrap();
/// let text = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
/// assert!(text.contains("!/releases/"));
/// ```
pub fn ignore_local_state(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(GITIGNORE_FILE);
    // `create_new` is `O_CREAT | O_EXCL`: it never follows a symbolic link, not even a dangling one.
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut file) => file.write_all(GITIGNORE.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
