//! [`MemoryDeployer`]: a deploy target that keeps releases in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use paved_core::{
    DeployContext, DeployOutcome, Deployer, DeployerCapabilities, DestroyOutcome, Error, Manifests, Release,
    ReleaseKey, ReleaseRecord, ReleaseStatus, Result, Revision, bookkeeping,
};

use super::lock;

/// One revision: its record and its objects.
#[derive(Debug, Clone)]
struct Stored {
    record: ReleaseRecord,
    manifests: Manifests,
}

impl AsRef<ReleaseRecord> for Stored {
    fn as_ref(&self) -> &ReleaseRecord {
        &self.record
    }
}

/// A deploy target that keeps every revision in memory, numbered, skipped and rolled back by
/// the shared [`bookkeeping`] rules like the real targets. It accepts secret values and can
/// destroy. [`MemoryDeployer::fail_next`] makes the next deploy or rollback fail, for tests
/// of what the platform records and tells when a target fails.
#[derive(Debug, Default)]
pub struct MemoryDeployer {
    apps: Mutex<BTreeMap<(String, String), Vec<Stored>>>,
    fail_next: Mutex<Option<Error>>,
    secret_values_seen: Mutex<Vec<Vec<String>>>,
}

impl MemoryDeployer {
    /// An empty target.
    pub fn new() -> Self {
        MemoryDeployer::default()
    }

    /// The next deploy or rollback fails with `error` (and changes nothing).
    pub fn fail_next(&self, error: Error) {
        *lock(&self.fail_next) = Some(error);
    }

    /// The names of the secret values each deploy received, in order (never the values).
    pub fn secret_values_seen(&self) -> Vec<Vec<String>> {
        lock(&self.secret_values_seen).clone()
    }

    /// The objects of the current revision of `key`, if any.
    pub fn current_manifests(&self, key: &ReleaseKey) -> Option<Manifests> {
        let apps = lock(&self.apps);
        let history = apps.get(&Self::slot(key))?;
        bookkeeping::current(history).map(|s| s.manifests.clone())
    }

    fn slot(key: &ReleaseKey) -> (String, String) {
        (key.app.to_string(), key.environment.clone())
    }

    fn injected_failure(&self) -> Result<()> {
        match lock(&self.fail_next).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn location(key: &ReleaseKey) -> String {
        format!("memory:{}/{}", key.environment, key.app)
    }
}

#[async_trait]
impl Deployer for MemoryDeployer {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities::none().with_secret_values(true).with_destroy(true).with_history_in_target(true)
    }

    async fn deploy(&self, release: &Release, cx: &DeployContext) -> Result<DeployOutcome> {
        let _ = cx;
        self.injected_failure()?;
        lock(&self.secret_values_seen).push(release.secret_values.0.keys().cloned().collect());
        let key = release.key();
        let mut apps = lock(&self.apps);
        let history = apps.entry(Self::slot(&key)).or_default();
        if let Some(current) = bookkeeping::unchanged(history, &release.digest) {
            return Ok(DeployOutcome::new(current.record.clone(), false, Self::location(&key)));
        }
        let record = bookkeeping::new_record(history, release);
        history.push(Stored { record: record.clone(), manifests: release.manifests.clone() });
        Ok(DeployOutcome::new(record, true, Self::location(&key)))
    }

    async fn status(&self, key: &ReleaseKey) -> Result<ReleaseStatus> {
        let apps = lock(&self.apps);
        let current = apps
            .get(&Self::slot(key))
            .and_then(|h| bookkeeping::current(h))
            .ok_or_else(|| bookkeeping::not_deployed(key, None))?;
        Ok(ReleaseStatus::new(current.record.clone(), true, "in memory", Self::location(key)))
    }

    async fn history(&self, key: &ReleaseKey) -> Result<Vec<ReleaseRecord>> {
        let apps = lock(&self.apps);
        Ok(apps.get(&Self::slot(key)).map(|h| bookkeeping::newest_first(h)).unwrap_or_default())
    }

    async fn list(&self) -> Result<Vec<ReleaseRecord>> {
        let apps = lock(&self.apps);
        Ok(apps.values().filter_map(|h| bookkeeping::current(h)).map(|s| s.record.clone()).collect())
    }

    async fn rollback(
        &self,
        key: &ReleaseKey,
        to: Option<Revision>,
        actor: &str,
        cx: &DeployContext,
    ) -> Result<DeployOutcome> {
        let _ = cx;
        let mut apps = lock(&self.apps);
        let history = apps.entry(Self::slot(key)).or_default();
        let plan = bookkeeping::plan_rollback(key, history, to, actor, None)?;
        let (record, manifests) = (plan.record, plan.target.manifests.clone());
        drop(apps);
        self.injected_failure()?;
        let mut apps = lock(&self.apps);
        apps.entry(Self::slot(key)).or_default().push(Stored { record: record.clone(), manifests });
        Ok(DeployOutcome::new(record, true, Self::location(key)))
    }

    async fn destroy(&self, key: &ReleaseKey, cx: &DeployContext) -> Result<DestroyOutcome> {
        let _ = cx;
        let removed = lock(&self.apps).remove(&Self::slot(key)).ok_or_else(|| bookkeeping::not_deployed(key, None))?;
        let deleted = removed.iter().map(|s| format!("Revision/{}", s.record.revision)).collect();
        Ok(DestroyOutcome::new(key.app.to_string(), key.environment.clone(), deleted, Self::location(key)))
    }
}
