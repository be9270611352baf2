//! The connection info of an AWS database in a secret store, kept by the provisioner (as the
//! Vault provisioner does), and the checks of a request's names.

use std::sync::Arc;

use paved_core::secrecy::ExposeSecret;
use paved_core::{DatabaseInfo, DatabaseRequest, Error, ErrorKind, Result, SecretStore};

/// Where a provisioner keeps connection info, if it was given a store.
#[derive(Clone, Default)]
pub(crate) struct InfoStore(pub(crate) Option<Arc<dyn SecretStore>>);

impl InfoStore {
    /// Writes the connection info of `request` (only when it changed: provisioning again
    /// makes no new version) and records where in `info`.
    pub(crate) async fn keep(&self, request: &DatabaseRequest, info: &mut DatabaseInfo) -> Result<()> {
        let Some(store) = &self.0 else { return Ok(()) };
        let path = paved_core::connection_info_path(request);
        let data = paved_core::connection_info(request, info);
        let same = match store.get(&path).await {
            Ok(old) => {
                old.len() == data.len()
                    && old.iter().all(|(k, v)| data.get(k).is_some_and(|n| n.expose_secret() == v.expose_secret()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if !same {
            store.put(&path, data).await?;
        }
        info.connection_info_path = Some(path);
        Ok(())
    }

    /// Records where the connection info is (status).
    pub(crate) fn locate(&self, request: &DatabaseRequest, info: &mut DatabaseInfo) {
        if self.0.is_some() {
            info.connection_info_path = Some(paved_core::connection_info_path(request));
        }
    }

    /// Removes the connection info of `request` (none is fine).
    pub(crate) async fn remove(&self, request: &DatabaseRequest) -> Result<()> {
        let Some(store) = &self.0 else { return Ok(()) };
        match store.delete(&paved_core::connection_info_path(request)).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Refuses an environment name that is not a DNS label (team and service names are checked
/// when the request is made).
pub(crate) fn check_names(request: &DatabaseRequest) -> Result<()> {
    let env = request.environment.as_str();
    let ok = !env.is_empty()
        && env.len() <= 63
        && env.starts_with(|c: char| c.is_ascii_lowercase())
        && !env.ends_with('-')
        && env.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(Error::invalid(
            "environment",
            env,
            "is not a valid environment name",
            Some("use lowercase letters, digits and `-`, starting with a letter (e.g. staging)".into()),
        ));
    }
    Ok(())
}
