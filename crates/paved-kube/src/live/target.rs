//! The [`KubeTarget`] and its builder: connection, options, per-app locks, and the
//! [`Deployer`] implementation that hands each operation to its module.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{
    DeployContext, DeployOutcome, Deployer, DeployerCapabilities, DestroyOutcome, Manifests, Release, ReleaseKey,
    ReleaseRecord, ReleaseStatus, Result, Revision,
};
use tokio::task::JoinHandle;

use super::apply::MissingKinds;
use super::connection::{Connected, Connection};
use super::history::{self, Stored};
use super::retry::RetryPolicy;

/// The name of this target in configuration (`target = "kube"`).
pub const TARGET_NAME: &str = "kube";

/// The field manager of every server-side apply.
pub const MANAGER: &str = "paved";

/// Deploys releases to a live cluster. Cheap to clone; clones share the connection, the
/// per-app locks and the background recoveries. `Send + Sync`: one target deploys many apps
/// at once over one client.
#[derive(Clone)]
pub struct KubeTarget {
    pub(super) conn: Connection,
    pub(super) opts: Options,
    pub(super) shared: Arc<Shared>,
}

#[derive(Debug, Clone)]
pub(super) struct Options {
    /// `None`: the Deployments' progress deadline plus a minute ([`rollout_timeout`]).
    pub(super) timeout: Option<Duration>,
    pub(super) auto_rollback: bool,
    pub(super) force_conflicts: bool,
    pub(super) history_max: usize,
    pub(super) missing_kinds: MissingKinds,
    pub(super) retry: RetryPolicy,
    pub(super) namespace_template: String,
}

#[derive(Default)]
pub(super) struct Shared {
    pub(super) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The background recoveries of dropped deploys (see [`KubeTarget::settle`]).
    pub(super) recoveries: Mutex<Vec<JoinHandle<String>>>,
}

impl fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeTarget").field("connection", &self.conn).field("options", &self.opts).finish()
    }
}

/// The progress deadline of a Deployment without `progressDeadlineSeconds` (Kubernetes'
/// default, and what paved renders).
pub(super) const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// How much longer than the progress deadline the default rollout timeout is: time for the
/// controller to report `ProgressDeadlineExceeded` and for the watch to see it.
pub(super) const DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// The rollout timeout: the one set, else the largest progress deadline of `manifests`'
/// Deployments plus [`DEADLINE_MARGIN`]. Also returns that progress deadline.
pub(super) fn rollout_timeout(set: Option<Duration>, manifests: &paved_core::Manifests) -> (Duration, Duration) {
    let deadline = manifests
        .iter()
        .filter(|m| m.kind() == "Deployment")
        .map(|m| {
            m.value()
                .pointer("/spec/progressDeadlineSeconds")
                .and_then(serde_json::Value::as_u64)
                .map_or(DEFAULT_PROGRESS_DEADLINE, Duration::from_secs)
        })
        .max()
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE);
    (set.unwrap_or(deadline + DEADLINE_MARGIN), deadline)
}

impl KubeTarget {
    /// A target connecting with `connection`, with the defaults: the rollout timeout a minute
    /// longer than the Deployments' progress deadline (11 minutes with paved's 600 s), automatic
    /// rollback on, no forced conflicts, 10 revisions of history, missing CRDs are warnings,
    /// 5 attempts per request, namespaces `{app}-{env}`.
    pub fn new(connection: Connection) -> Self {
        KubeTarget {
            conn: connection,
            opts: Options {
                timeout: None,
                auto_rollback: true,
                force_conflicts: false,
                history_max: 10,
                missing_kinds: MissingKinds::Warn,
                retry: RetryPolicy::default(),
                namespace_template: "{app}-{env}".into(),
            },
            shared: Arc::new(Shared::default()),
        }
    }

    /// A target using a kubeconfig (default `$KUBECONFIG`, else `~/.kube/config`, else the
    /// in-cluster service account) and a context (default: the current one). Nothing is read
    /// until the first operation.
    pub fn from_kubeconfig(path: Option<PathBuf>, context: Option<String>) -> Self {
        Self::new(Connection::kubeconfig(path, context))
    }

    /// A target using the pod's service account.
    pub fn in_cluster() -> Self {
        Self::new(Connection::in_cluster())
    }

    /// A target using a client built by the embedding service; `description` names the
    /// cluster in messages.
    pub fn with_client(client: kube::Client, description: impl Into<String>) -> Self {
        Self::new(Connection::client(client, description))
    }

    /// How long a rollout may take before it counts as failed. By default a minute longer
    /// than the largest `progressDeadlineSeconds` of the release's Deployments (600 s when
    /// unset, as paved renders it), so that the Deployment controller's own verdict,
    /// `ProgressDeadlineExceeded`, is what a stuck rollout reports. A shorter timeout fires
    /// first, and its error says so.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.timeout = Some(timeout);
        self
    }

    /// Whether a failed rollout re-applies the previous revision (default `true`). With it on, a
    /// release that never succeeded (a failed first deploy) has its objects removed instead, as
    /// `helm install --atomic` does; off, the failed objects stay in place.
    pub fn auto_rollback(mut self, on: bool) -> Self {
        self.opts.auto_rollback = on;
        self
    }

    /// Whether server-side apply takes over fields another manager owns (default `false`:
    /// such a conflict is an error naming the manager and the fields).
    pub fn force_conflicts(mut self, on: bool) -> Self {
        self.opts.force_conflicts = on;
        self
    }

    /// How many revisions the cluster keeps per app and environment (default 10, at least 1;
    /// the current revision is always kept).
    pub fn history_max(mut self, max: usize) -> Self {
        self.opts.history_max = max.max(1);
        self
    }

    /// What to do with objects whose kind the cluster does not serve (default: warn and skip).
    pub fn missing_kinds(mut self, missing: MissingKinds) -> Self {
        self.opts.missing_kinds = missing;
        self
    }

    /// How requests are retried (default: 5 attempts, 200 ms doubling to at most 5 s, jittered).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.opts.retry = policy;
        self
    }

    /// The namespace template of the organisation (`app.namespace` in `paved.toml`, default
    /// `{app}-{env}`), so that `status`, `history`, `rollback` and `destroy` find an app's
    /// namespace. With `{team}` in it they search every namespace for the app's history.
    pub fn namespace_template(mut self, template: &str) -> Self {
        self.opts.namespace_template = template.to_string();
        self
    }

    pub(super) async fn connected(&self) -> Result<&Connected> {
        self.conn.get().await
    }

    /// Serialises operations on one app in one environment within this process.
    pub(super) async fn lock(&self, app: &str, env: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.shared.locks.lock().expect("not poisoned");
            locks.entry(format!("{env}/{app}")).or_default().clone()
        };
        m.lock_owned().await
    }

    pub(super) fn namespace_of(&self, app: &str, env: &str) -> Option<String> {
        let t = &self.opts.namespace_template;
        (!t.contains("{team}")).then(|| t.replace("{app}", app).replace("{env}", env))
    }

    pub(super) fn location(server: &str, namespace: &str) -> String {
        format!("{server}, namespace {namespace}")
    }

    /// The app's history and namespace: from the namespace template, or by searching.
    pub(super) async fn find(&self, conn: &Connected, app: &str, env: &str) -> Result<(Option<String>, Vec<Stored>)> {
        let ns = self.namespace_of(app, env);
        let history = history::load(&conn.client, &conn.description, ns.as_deref(), app, env, &self.opts.retry).await?;
        let ns = ns.or_else(|| history.last().map(|s| s.namespace.clone()));
        Ok((ns, history))
    }
}

#[async_trait]
impl Deployer for KubeTarget {
    fn name(&self) -> &str {
        TARGET_NAME
    }

    /// Applies to a cluster (secret values accepted), destroys, watches rollouts, and keeps
    /// the history in the cluster.
    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities::none()
            .with_secret_values(true)
            .with_destroy(true)
            .with_rollout_watched(true)
            .with_history_in_target(true)
    }

    async fn deploy(&self, release: &Release, cx: &DeployContext) -> Result<DeployOutcome> {
        self.deploy_release(release, cx).await
    }

    async fn status(&self, key: &ReleaseKey) -> Result<ReleaseStatus> {
        self.status_of(key).await
    }

    async fn history(&self, key: &ReleaseKey) -> Result<Vec<ReleaseRecord>> {
        let conn = self.connected().await?;
        let (_, history) = self.find(conn, key.app.as_str(), &key.environment).await?;
        Ok(paved_core::bookkeeping::newest_first(&history))
    }

    /// The current revision of every app whose history is in the cluster (every namespace).
    async fn list(&self) -> Result<Vec<ReleaseRecord>> {
        let conn = self.connected().await?;
        let all = history::load_current(&conn.client, &conn.description, &self.opts.retry).await?;
        let mut by_app: std::collections::BTreeMap<(String, String), Vec<Stored>> = Default::default();
        for stored in all {
            by_app.entry((stored.record.app.clone(), stored.record.environment.clone())).or_default().push(stored);
        }
        Ok(by_app.values().filter_map(|h| paved_core::bookkeeping::current(h)).map(|s| s.record.clone()).collect())
    }

    /// The objects of a stored revision (the history in the cluster keeps them).
    async fn revision_objects(&self, key: &ReleaseKey, revision: Revision) -> Result<Option<Manifests>> {
        let conn = self.connected().await?;
        let (_, history) = self.find(conn, key.app.as_str(), &key.environment).await?;
        Ok(history.into_iter().find(|s| s.record.revision == revision).map(|s| s.manifests))
    }

    async fn rollback(
        &self,
        key: &ReleaseKey,
        to: Option<Revision>,
        actor: &str,
        cx: &DeployContext,
    ) -> Result<DeployOutcome> {
        self.rollback_release(key, to, actor, cx).await
    }

    async fn destroy(&self, key: &ReleaseKey, cx: &DeployContext) -> Result<DestroyOutcome> {
        self.destroy_app(key, cx).await
    }
}

#[cfg(test)]
mod tests {
    use paved_core::{Manifest, Manifests};
    use serde_json::json;

    use super::*;

    fn deployment(deadline: Option<u64>) -> Manifest {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {}});
        if let Some(s) = deadline {
            d["spec"]["progressDeadlineSeconds"] = json!(s);
        }
        Manifest::new(d).unwrap()
    }

    #[test]
    fn the_default_timeout_is_a_minute_past_the_largest_progress_deadline() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let none = Manifests::new(vec![]);
        assert_eq!(rollout_timeout(None, &none), (minutes(11), minutes(10)));
        let two = Manifests::new(vec![deployment(Some(120)), deployment(None), deployment(Some(1200))]);
        assert_eq!(rollout_timeout(None, &two), (minutes(21), minutes(20)));
        let short = Manifests::new(vec![deployment(Some(120))]);
        assert_eq!(rollout_timeout(None, &short), (minutes(3), minutes(2)));
        // A timeout that is set wins, whatever the deadlines.
        assert_eq!(rollout_timeout(Some(minutes(1)), &two), (minutes(1), minutes(20)));
    }
}
