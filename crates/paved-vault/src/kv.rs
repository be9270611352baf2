//! [`VaultSecretStore`]: a [`SecretStore`] on the KV v2 secrets engine, sending its calls
//! through the crate's [`Client`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use paved_core::{SecretMap, SecretStore};
use serde::Serialize;

use crate::client::{Client, Idempotent, op};
use crate::config::VaultConfig;
use crate::error::{Error, Result};
use crate::wire::{ExposedMap, WireMap, into_secret_map};

/// The metadata of a KV v2 secret: its versions and when they were written or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SecretMetadata {
    /// The newest version.
    pub current_version: u64,
    /// The oldest version still kept.
    pub oldest_version: u64,
    /// How many versions are kept (0: the mount's default).
    pub max_versions: u64,
    /// When the first version was written (RFC 3339).
    pub created_time: String,
    /// When the newest version was written (RFC 3339).
    pub updated_time: String,
    /// Custom metadata (not secret).
    pub custom_metadata: BTreeMap<String, String>,
    /// Every kept version.
    pub versions: BTreeMap<u64, VersionMetadata>,
}

/// The state of one version of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VersionMetadata {
    /// When it was written (RFC 3339).
    pub created_time: String,
    /// When it was soft-deleted, if it was.
    pub deletion_time: Option<String>,
    /// Whether its data is destroyed for good.
    pub destroyed: bool,
}

/// A [`SecretStore`] on a Vault or OpenBao KV v2 mount.
///
/// Paths are relative to the mount ([`VaultConfig::mount`], default `secret`): the secret that
/// `bao kv get secret/payments/db` shows is `get("payments/db")`. Cloning is cheap and shares
/// the HTTP client (and its connections).
#[derive(Clone)]
pub struct VaultSecretStore {
    client: Client,
    mount: String,
}

impl std::fmt::Debug for VaultSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSecretStore")
            .field("address", &self.client.address())
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl VaultSecretStore {
    /// A store authenticating with the token of `config`, without talking to the server yet
    /// (so without renewal: the token's TTL is unknown; [`VaultSecretStore::connect`] looks
    /// it up).
    ///
    /// Fails on a bad address or CA file, or when `config` uses AppRole or Kubernetes auth
    /// (which log in: use [`VaultSecretStore::connect`]).
    pub fn new(config: VaultConfig) -> Result<Self> {
        Ok(Self::on(Client::new(&config)?, &config.mount))
    }

    /// A store that has logged in (AppRole, Kubernetes) or looked its token up: a wrong
    /// address, a sealed server or a bad token fail here, with a hint.
    ///
    /// The token's TTL is remembered: before each request a renewable token is renewed when
    /// less than a third of its TTL is left; a token that cannot be renewed (any more) is
    /// replaced by a new login when the auth method allows it (AppRole, Kubernetes). A request
    /// denied because the token expired or was revoked logs in again and is sent once more
    /// (AppRole, Kubernetes), or fails with [`Error::TokenExpired`] (a plain token).
    pub async fn connect(config: VaultConfig) -> Result<Self> {
        Ok(Self::on(Client::connect(&config).await?, &config.mount))
    }

    /// The store on `mount` of the server `client` talks to.
    fn on(client: Client, mount: &str) -> Self {
        VaultSecretStore { client, mount: mount.trim_matches('/').to_string() }
    }

    /// The same server and login on another KV v2 mount (sharing the HTTP client).
    pub fn with_mount(&self, mount: impl Into<String>) -> Self {
        Self::on(self.client.clone(), &mount.into())
    }

    /// The client this store sends its calls through (for the other engines of the server).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The server address.
    pub fn address(&self) -> &str {
        self.client.address()
    }

    /// The KV v2 mount.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Reads the latest version of the secret at `path`.
    #[tracing::instrument(name = "vault.read", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn read(&self, path: &str) -> Result<SecretMap> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        let map: WireMap = self
            .client
            .call(&what, Idempotent::Yes, op!(|c| vaultrs::kv2::read(c, &self.mount, path)))
            .await
            .map_err(|e| self.not_found(e, path, None))?;
        tracing::debug!(keys = map.len(), "read secret");
        Ok(into_secret_map(map))
    }

    /// Reads version `version` of the secret at `path`.
    #[tracing::instrument(name = "vault.read_version", skip_all, fields(mount = %self.mount, path = %path, version))]
    pub async fn read_version(&self, path: &str, version: u64) -> Result<SecretMap> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        let map: WireMap = self
            .client
            .call(&what, Idempotent::Yes, op!(|c| vaultrs::kv2::read_version(c, &self.mount, path, version)))
            .await
            .map_err(|e| self.not_found(e, path, Some(version)))?;
        Ok(into_secret_map(map))
    }

    /// Writes `data` as a new version of the secret at `path`; returns the version.
    #[tracing::instrument(name = "vault.write", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn write(&self, path: &str, data: &SecretMap) -> Result<u64> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        let body = &ExposedMap(data);
        let meta =
            self.client.call(&what, Idempotent::No, op!(|c| vaultrs::kv2::set(c, &self.mount, path, &body))).await?;
        tracing::debug!(version = meta.version, keys = data.len(), "wrote secret");
        Ok(meta.version)
    }

    /// Lists the keys under `prefix` (sub-folders end in `/`); empty when nothing is there.
    #[tracing::instrument(name = "vault.list", skip_all, fields(mount = %self.mount, prefix = %prefix))]
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = if prefix.trim_matches('/').is_empty() { String::new() } else { clean_path(prefix)? };
        let what = self.what(&prefix);
        let prefix = prefix.as_str();
        match self.client.call(&what, Idempotent::Yes, op!(|c| vaultrs::kv2::list(c, &self.mount, prefix))).await {
            Ok(keys) => Ok(keys),
            Err(Error::Api { status: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Soft-deletes the latest version of the secret at `path` (its data can be undeleted).
    #[tracing::instrument(name = "vault.delete", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn soft_delete(&self, path: &str) -> Result<()> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        self.client.call(&what, Idempotent::Yes, op!(|c| vaultrs::kv2::delete_latest(c, &self.mount, path))).await
    }

    /// Soft-deletes the given versions.
    #[tracing::instrument(name = "vault.delete_versions", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn delete_versions(&self, path: &str, versions: &[u64]) -> Result<()> {
        self.on_versions(VersionOp::Delete, path, versions).await
    }

    /// Restores soft-deleted versions.
    #[tracing::instrument(name = "vault.undelete_versions", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn undelete_versions(&self, path: &str, versions: &[u64]) -> Result<()> {
        self.on_versions(VersionOp::Undelete, path, versions).await
    }

    /// Destroys the data of the given versions for good (their metadata stays).
    #[tracing::instrument(name = "vault.destroy_versions", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn destroy_versions(&self, path: &str, versions: &[u64]) -> Result<()> {
        self.on_versions(VersionOp::Destroy, path, versions).await
    }

    /// One of the version operations of KV v2 on `versions` of `path`.
    async fn on_versions(&self, operation: VersionOp, path: &str, versions: &[u64]) -> Result<()> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        let mount = self.mount.as_str();
        let call = op!(|c| async {
            let versions = versions.to_vec();
            match operation {
                VersionOp::Delete => vaultrs::kv2::delete_versions(c, mount, path, versions).await,
                VersionOp::Undelete => vaultrs::kv2::undelete_versions(c, mount, path, versions).await,
                VersionOp::Destroy => vaultrs::kv2::destroy_versions(c, mount, path, versions).await,
            }
        });
        self.client.call(&what, Idempotent::Yes, call).await
    }

    /// Removes the secret with every version and its metadata, for good.
    #[tracing::instrument(name = "vault.destroy_all", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn destroy_all(&self, path: &str) -> Result<()> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        self.client.call(&what, Idempotent::Yes, op!(|c| vaultrs::kv2::delete_metadata(c, &self.mount, path))).await
    }

    /// The metadata of the secret at `path`: versions, times, deletions.
    #[tracing::instrument(name = "vault.metadata", skip_all, fields(mount = %self.mount, path = %path))]
    pub async fn metadata(&self, path: &str) -> Result<SecretMetadata> {
        let path = clean_path(path)?;
        let path = path.as_str();
        let what = self.what(path);
        let m = self
            .client
            .call(&what, Idempotent::Yes, op!(|c| vaultrs::kv2::read_metadata(c, &self.mount, path)))
            .await
            .map_err(|e| self.not_found(e, path, None))?;
        let mut versions = BTreeMap::new();
        for (v, meta) in m.versions {
            let Ok(v) = v.parse::<u64>() else {
                return Err(Error::Protocol {
                    address: self.client.address().to_string(),
                    what,
                    reason: format!("version {v:?} is not a number"),
                });
            };
            let deletion_time = Some(meta.deletion_time).filter(|t| !t.is_empty());
            versions.insert(
                v,
                VersionMetadata { created_time: meta.created_time, deletion_time, destroyed: meta.destroyed },
            );
        }
        Ok(SecretMetadata {
            current_version: m.current_version,
            oldest_version: m.oldest_version,
            max_versions: m.max_versions,
            created_time: m.created_time,
            updated_time: m.updated_time,
            custom_metadata: m.custom_metadata.unwrap_or_default().into_iter().collect(),
            versions,
        })
    }

    fn what(&self, path: &str) -> String {
        format!("{}/{path}", self.mount)
    }

    /// A 404 on a secret path means the secret (version) is missing or deleted.
    fn not_found(&self, e: Error, path: &str, version: Option<u64>) -> Error {
        match e {
            Error::Api { status: 404, .. } => Error::NotFound {
                address: self.client.address().to_string(),
                mount: self.mount.clone(),
                path: path.to_string(),
                version,
            },
            other => other,
        }
    }
}

/// The KV v2 operations on versions of a secret.
#[derive(Clone, Copy)]
enum VersionOp {
    Delete,
    Undelete,
    Destroy,
}

/// Trims slashes and rejects empty, relative or whitespace-bearing paths.
fn clean_path(path: &str) -> Result<String> {
    let trimmed = path.trim_matches('/');
    let reason = if trimmed.is_empty() {
        Some("is empty")
    } else if trimmed.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        Some("has an empty, `.` or `..` component")
    } else if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace")
    } else {
        None
    };
    match reason {
        Some(r) => Err(Error::InvalidPath { path: path.to_string(), reason: r.into() }),
        None => Ok(trimmed.to_string()),
    }
}

#[async_trait]
impl SecretStore for VaultSecretStore {
    fn name(&self) -> &str {
        "vault"
    }

    async fn get(&self, path: &str) -> paved_core::Result<SecretMap> {
        Ok(self.read(path).await?)
    }

    async fn put(&self, path: &str, data: SecretMap) -> paved_core::Result<u64> {
        Ok(self.write(path, &data).await?)
    }

    async fn list(&self, prefix: &str) -> paved_core::Result<Vec<String>> {
        Ok(self.keys(prefix).await?)
    }

    async fn delete(&self, path: &str) -> paved_core::Result<()> {
        Ok(self.soft_delete(path).await?)
    }

    /// `vault://MOUNT/PATH#KEY[?version=N]`: the first path component is the KV mount.
    async fn get_ref(&self, reference: &paved_core::SecretRef) -> paved_core::Result<SecretMap> {
        let Some((mount, path)) = reference.path().split_once('/') else {
            return Err(paved_core::Error::invalid(
                "secret reference",
                reference.to_string(),
                "names no KV mount",
                Some("write vault://MOUNT/PATH#KEY, e.g. vault://secret/payments/db#password".into()),
            ));
        };
        let store = self.with_mount(mount);
        Ok(match reference.version() {
            Some(v) => store.read_version(path, v).await?,
            None => store.read(path).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_rejected() {
        assert_eq!(clean_path("/payments/db/").unwrap(), "payments/db");
        for bad in ["", "/", "a//b", "a/../b", "a b", "./a"] {
            assert!(matches!(clean_path(bad), Err(Error::InvalidPath { .. })), "{bad}");
        }
    }
}
