//! [`MemorySecretStore`]: secrets in a map, with versions and soft deletes like Vault KV v2.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use paved_core::{Error, Result, SecretMap, SecretRef, SecretStore};

use super::lock;

/// A secret store in memory. Paths are `/`-separated folders; every `put` makes a new version
/// (unless made with [`MemorySecretStore::unversioned`]); `delete` hides the latest version,
/// and older versions stay readable through pinned references.
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    /// Each path's versions, oldest first; `None` for a deleted version.
    secrets: Mutex<BTreeMap<String, Vec<Option<SecretMap>>>>,
    unversioned: bool,
}

impl MemorySecretStore {
    /// An empty store that keeps versions.
    pub fn new() -> Self {
        MemorySecretStore::default()
    }

    /// An empty store that keeps only the latest value of each secret (version 1 always).
    pub fn unversioned() -> Self {
        MemorySecretStore { unversioned: true, ..MemorySecretStore::default() }
    }

    fn not_found(path: &str, version: Option<u64>) -> Error {
        let what = match version {
            Some(v) => format!("version {v} of secret {path} in the memory store"),
            None => format!("secret {path} in the memory store"),
        };
        let folder = path.rsplit_once('/').map_or("", |(f, _)| f);
        Error::NotFound {
            what,
            hint: Some(format!("write it with put, or list the folder \"{folder}\" to see what exists")),
        }
    }

    fn read(&self, path: &str, version: Option<u64>) -> Result<SecretMap> {
        let path = clean(path)?;
        let secrets = lock(&self.secrets);
        let versions = secrets.get(&path).ok_or_else(|| Self::not_found(&path, version))?;
        let found = match version {
            Some(v) => usize::try_from(v).ok().and_then(|v| v.checked_sub(1)).and_then(|i| versions.get(i)),
            None => versions.last(),
        };
        found.cloned().flatten().ok_or_else(|| Self::not_found(&path, version))
    }
}

/// A path without leading or trailing `/`, or an error when it has empty or relative parts.
fn clean(path: &str) -> Result<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty()
        || trimmed.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "secret path",
            path,
            "has an empty or relative part, or whitespace",
            Some("write a path such as payments/db".to_string()),
        ));
    }
    Ok(trimmed.to_string())
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(&self, path: &str) -> Result<SecretMap> {
        self.read(path, None)
    }

    async fn put(&self, path: &str, data: SecretMap) -> Result<u64> {
        let path = clean(path)?;
        let mut secrets = lock(&self.secrets);
        let versions = secrets.entry(path).or_default();
        if self.unversioned {
            versions.clear();
        }
        versions.push(Some(data));
        Ok(versions.len() as u64)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(paved_core::secret::list_folder(lock(&self.secrets).keys().map(String::as_str), prefix))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let path = clean(path)?;
        if let Some(latest) = lock(&self.secrets).get_mut(&path).and_then(|v| v.last_mut()) {
            *latest = None;
        }
        Ok(())
    }

    /// Reads the reference's path, at its pinned version if it names one.
    async fn get_ref(&self, reference: &SecretRef) -> Result<SecretMap> {
        if self.unversioned && reference.version().is_some() {
            return Err(Error::invalid(
                "secret reference",
                reference.to_string(),
                "pins a version, and this store keeps none",
                Some("remove ?version=N from the reference".to_string()),
            ));
        }
        self.read(reference.path(), reference.version())
    }
}
