//! Seeing files change: a fingerprint (size and modification time, symlinks followed, as a
//! mounted ConfigMap or Secret swaps them) of the files a webhook was loaded from.

use std::path::PathBuf;
use std::time::SystemTime;

/// The state of a set of files: for each, its size and modification time (`None`: missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, Option<(u64, SystemTime)>)>);

impl Fingerprint {
    /// The fingerprint of `paths` now.
    pub fn of(paths: &[PathBuf]) -> Fingerprint {
        Fingerprint(
            paths
                .iter()
                .map(|p| {
                    let meta = std::fs::metadata(p).ok();
                    (p.clone(), meta.map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH))))
                })
                .collect(),
        )
    }
}
