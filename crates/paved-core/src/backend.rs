//! The golden-path traits that backends implement.
//!
//! Every trait is object safe, `Send + Sync`, and async (via `async-trait`) except
//! [`Renderer`], which is pure.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::{PlatformEvent, Progress, ProgressSink, Step};
use crate::manifest::Manifests;
use crate::release::{DeployOutcome, Release, ReleaseKey, ReleaseRecord, ReleaseStatus, Revision};
use crate::request::DatabaseRequest;
use crate::resolve::ResolvedApp;
use crate::secret::SecretMap;

/// Turns a resolved app into objects. Pure: same input, same bytes.
pub trait Renderer: Send + Sync {
    /// Renders every object of the app, with the escape hatches applied last.
    fn render(&self, app: &ResolvedApp) -> Result<Manifests>;
}

/// A deploy target: applies releases and remembers them.
///
/// The revision bookkeeping (numbering, unchanged releases, rollback targets) follows
/// [`bookkeeping`](crate::bookkeeping), the same for every target.
#[async_trait]
pub trait Deployer: Send + Sync {
    /// The target's name as used in configuration (`gitops`, `kube`).
    fn name(&self) -> &str;

    /// What this target can do beyond deploying, rolling back and reporting.
    fn capabilities(&self) -> DeployerCapabilities;

    /// Applies a release, reporting progress (such as `2/3 updated, 1/3 available`) to `cx`.
    /// A release whose digest equals the current revision's changes nothing and creates no
    /// revision (`changed == false`).
    async fn deploy(&self, release: &Release, cx: &DeployContext) -> Result<DeployOutcome>;

    /// The current revision and what the target observes of it.
    async fn status(&self, key: &ReleaseKey) -> Result<ReleaseStatus>;

    /// Every remembered revision, newest first.
    async fn history(&self, key: &ReleaseKey) -> Result<Vec<ReleaseRecord>>;

    /// The objects of a stored revision, when this target keeps them, so that a rollback
    /// passes the same checks as a deploy before anything is applied. Default: `None`.
    async fn revision_objects(&self, key: &ReleaseKey, revision: Revision) -> Result<Option<Manifests>> {
        let _ = (key, revision);
        Ok(None)
    }

    /// Restores the objects of revision `to` (default: the one before the current) as a new
    /// revision released by `actor`, reporting progress to `cx`.
    async fn rollback(
        &self,
        key: &ReleaseKey,
        to: Option<Revision>,
        actor: &str,
        cx: &DeployContext,
    ) -> Result<DeployOutcome>;

    /// The current revision of every app the target holds (`paved list`), in no particular
    /// order; apps whose revisions all failed are left out.
    async fn list(&self) -> Result<Vec<ReleaseRecord>>;

    /// Removes everything the target created for an app in an environment (objects and
    /// history). Only targets whose [capabilities](Deployer::capabilities) include
    /// [`destroy`](DeployerCapabilities::destroy) implement it; the default refuses.
    async fn destroy(&self, key: &ReleaseKey, cx: &DeployContext) -> Result<DestroyOutcome> {
        let _ = cx;
        Err(cannot_destroy(self.name(), key))
    }
}

/// The error of a [`Deployer::destroy`] on a target without the `destroy` capability.
pub fn cannot_destroy(target: &str, key: &ReleaseKey) -> Error {
    Error::backend(
        target,
        format!("the {target} target cannot destroy apps ({key})"),
        Some(format!(
            "destroy needs a deploy target with the destroy capability (DeployerCapabilities::destroy), such as the kube target: set target = \"kube\" for environment {} in paved.toml",
            key.environment
        )),
    )
}

/// What a [`Deployer`] can do beyond deploying, rolling back and reporting. Build it from
/// [`DeployerCapabilities::none`] with the `with_*` methods; read the fields.
///
/// ```
/// use paved_core::DeployerCapabilities;
/// let caps = DeployerCapabilities::none().with_destroy(true);
/// assert!(caps.destroy && !caps.secret_values);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeployerCapabilities {
    /// The target applies to a cluster and may receive secret values
    /// ([`Release::secret_values`], `sync` secret mode). A target that writes files (a GitOps
    /// repository) must never hold secret values.
    pub secret_values: bool,
    /// [`Deployer::destroy`] removes an app's objects and history.
    pub destroy: bool,
    /// A deploy waits for the rollout and fails (rolling back where configured) when it does
    /// not complete; records carry a [`RevisionState`](crate::RevisionState).
    pub rollout_watched: bool,
    /// The history is kept in the target itself (e.g. in the cluster), so every machine
    /// deploying there sees the same history; otherwise it is local state (files).
    pub history_in_target: bool,
}

impl DeployerCapabilities {
    /// No capabilities.
    pub const fn none() -> Self {
        DeployerCapabilities { secret_values: false, destroy: false, rollout_watched: false, history_in_target: false }
    }

    /// Sets [`secret_values`](DeployerCapabilities::secret_values).
    pub const fn with_secret_values(mut self, on: bool) -> Self {
        self.secret_values = on;
        self
    }

    /// Sets [`destroy`](DeployerCapabilities::destroy).
    pub const fn with_destroy(mut self, on: bool) -> Self {
        self.destroy = on;
        self
    }

    /// Sets [`rollout_watched`](DeployerCapabilities::rollout_watched).
    pub const fn with_rollout_watched(mut self, on: bool) -> Self {
        self.rollout_watched = on;
        self
    }

    /// Sets [`history_in_target`](DeployerCapabilities::history_in_target).
    pub const fn with_history_in_target(mut self, on: bool) -> Self {
        self.history_in_target = on;
        self
    }
}

/// What a [`Deployer`] may use while it works: where progress goes.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct DeployContext {
    /// Where progress reports go, if anywhere.
    pub progress: Option<ProgressSink>,
}

impl std::fmt::Debug for DeployContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployContext").field("progress", &self.progress.is_some()).finish()
    }
}

impl DeployContext {
    /// A context that reports nothing.
    pub fn new() -> Self {
        DeployContext::default()
    }

    /// Reports progress to `sink`.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Reports one step; `done` is `(n, of)` when the step can tell how far it is.
    pub fn report(&self, step: Step, message: impl Into<String>, done: Option<(u64, u64)>) {
        if let Some(sink) = &self.progress {
            sink(&Progress { step, message: message.into(), done });
        }
    }
}

/// The result of [`Deployer::destroy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestroyOutcome {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The objects deleted, as `Kind/name` (history records included).
    pub deleted: Vec<String>,
    /// Where they were (a cluster context and namespace), for humans.
    pub location: String,
}

impl DestroyOutcome {
    /// A destroy outcome.
    pub fn new(
        app: impl Into<String>,
        environment: impl Into<String>,
        deleted: Vec<String>,
        location: impl Into<String>,
    ) -> Self {
        DestroyOutcome { app: app.into(), environment: environment.into(), deleted, location: location.into() }
    }
}

/// A secret store (Vault KV, AWS Secrets Manager, …). Values are only ever
/// [`SecretString`](secrecy::SecretString)s.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The store's name (`vault`, `aws-sm`).
    fn name(&self) -> &str;

    /// Reads the latest version of the secret at `path`.
    async fn get(&self, path: &str) -> Result<SecretMap>;

    /// Writes `data` as a new version of the secret at `path`, returning the version.
    async fn put(&self, path: &str, data: SecretMap) -> Result<u64>;

    /// Lists the keys (secrets and sub-folders ending in `/`) under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Deletes the secret at `path` (soft-deletes where the store keeps versions).
    async fn delete(&self, path: &str) -> Result<()>;

    /// Reads the secret a reference points to (its path as written after the scheme, e.g.
    /// `secret/payments/db` for `vault://secret/payments/db#password`, and its pinned version).
    /// The default reads `get(reference.path())`; stores whose paths carry a mount override it.
    async fn get_ref(&self, reference: &crate::SecretRef) -> Result<SecretMap> {
        self.get(reference.path()).await
    }
}

/// The lifecycle state of a provisioned database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DatabaseState {
    /// Being created.
    Creating,
    /// Ready for connections.
    Available,
    /// Being changed (resize, maintenance).
    Modifying,
    /// Being deleted.
    Deleting,
    /// Does not exist.
    Absent,
    /// Failed; see the backend for details.
    Failed,
}

/// What a [`DbProvisioner`] reports about a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatabaseInfo {
    /// The lifecycle state.
    pub state: DatabaseState,
    /// Host and port, once known.
    pub endpoint: Option<(String, u16)>,
    /// The database name.
    pub database: String,
    /// The user the app connects as, when the provisioner names one (cloud databases; Vault
    /// issues a new user with every lease).
    pub username: Option<String>,
    /// Where the app gets credentials (a Vault creds path or a secret name); never a password.
    pub credentials_path: Option<String>,
    /// Where the connection info was written for the app.
    pub connection_info_path: Option<String>,
}

impl DatabaseInfo {
    /// A report with only the state and database name.
    pub fn new(state: DatabaseState, database: impl Into<String>) -> Self {
        DatabaseInfo {
            state,
            endpoint: None,
            database: database.into(),
            username: None,
            credentials_path: None,
            connection_info_path: None,
        }
    }
}

/// Self-service databases.
#[async_trait]
pub trait DbProvisioner: Send + Sync {
    /// The provisioner's name (`vault`, `aws-rds`).
    fn name(&self) -> &str;

    /// Creates the database if it does not exist; re-running the same request changes
    /// nothing and returns the same answer.
    async fn provision(&self, request: &DatabaseRequest) -> Result<DatabaseInfo>;

    /// The state of the database of this request.
    async fn status(&self, request: &DatabaseRequest) -> Result<DatabaseInfo>;

    /// Removes access (and with `drop_data` the data) of the database of this request.
    async fn deprovision(&self, request: &DatabaseRequest, drop_data: bool) -> Result<()>;

    /// Removes the database of this request as `options` say. The default honours
    /// `drop_data` and ignores `force` (for backends without deletion protection).
    async fn deprovision_with(&self, request: &DatabaseRequest, options: &DeprovisionOptions) -> Result<()> {
        self.deprovision(request, options.drop_data).await
    }
}

/// How a database is removed ([`DbProvisioner::deprovision_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeprovisionOptions {
    /// Drop the data too (cloud backends: no final snapshot, no retained backups).
    pub drop_data: bool,
    /// Remove it even when deletion protection is on (the backend turns the protection off
    /// first); without it such a database is refused.
    pub force: bool,
}

impl DeprovisionOptions {
    /// Keep the data, respect deletion protection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drop the data too.
    pub fn drop_data(mut self, on: bool) -> Self {
        self.drop_data = on;
        self
    }

    /// Override deletion protection.
    pub fn force(mut self, on: bool) -> Self {
        self.force = on;
        self
    }
}

/// Where platform events go (a ledger, Prometheus, a log).
#[async_trait]
pub trait Metrics: Send + Sync {
    /// Records one event.
    async fn record(&self, event: &PlatformEvent) -> Result<()>;
}

/// A [`Metrics`] sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

#[async_trait]
impl Metrics for NoMetrics {
    async fn record(&self, _event: &PlatformEvent) -> Result<()> {
        Ok(())
    }
}
