//! Releases: what a deploy target applies, and what it remembers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::manifest::Manifests;
use crate::names::AppName;
use crate::policy::PolicyReport;
use crate::request::EscapeHatch;
use crate::resolve::ResolvedApp;

/// A revision number of an app in an environment; the first release is revision 1.
pub type Revision = u64;

/// Which app in which environment: the key of a release history at a deploy target.
///
/// ```
/// use paved_core::{AppName, ReleaseKey};
/// let key = ReleaseKey::new(AppName::new("shop").unwrap(), "production");
/// assert_eq!(key.to_string(), "shop in production");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReleaseKey {
    /// The app.
    pub app: AppName,
    /// The environment.
    pub environment: String,
}

impl ReleaseKey {
    /// The key of `app` in `environment`.
    pub fn new(app: AppName, environment: impl Into<String>) -> Self {
        ReleaseKey { app, environment: environment.into() }
    }
}

/// `{app} in {environment}`, as messages name a release history.
impl std::fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.app, self.environment)
    }
}

/// Everything a [`Deployer`](crate::Deployer) needs to apply one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Release {
    /// The resolved app.
    pub app: ResolvedApp,
    /// The final objects (after escape hatches and mutating policies), in apply order.
    pub manifests: Manifests,
    /// [`Manifests::digest`] of `manifests`.
    pub digest: String,
    /// Who deploys it.
    pub actor: String,
    /// The policy verdict it passed.
    pub policy: PolicyReport,
    /// In `sync` secret mode: the values of the app's secret references by env var name, for
    /// the target to put into the Secret it applies. Never serialized; the manifests hold only
    /// redacted placeholders.
    #[serde(skip)]
    pub secret_values: SecretValues,
}

/// Secret values by env var name, for `sync` secret mode. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct SecretValues(pub std::collections::BTreeMap<String, secrecy::SecretString>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl PartialEq for SecretValues {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|((a, x), (b, y))| a == b && x.expose_secret() == y.expose_secret())
    }
}

impl Release {
    /// A release of these objects.
    pub fn new(app: ResolvedApp, manifests: Manifests, actor: impl Into<String>, policy: PolicyReport) -> Self {
        let digest = manifests.digest();
        Release { app, manifests, digest, actor: actor.into(), policy, secret_values: SecretValues::default() }
    }

    /// The app and environment this release is for.
    pub fn key(&self) -> ReleaseKey {
        ReleaseKey::new(self.app.app.clone(), self.app.environment.name.clone())
    }
}

/// The prefix of the placeholder that stands for a secret value in rendered objects
/// (`<redacted: vault://secret/payments/db#password>`).
pub const REDACTED_PREFIX: &str = "<redacted: ";

/// Why a revision exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ReleaseCause {
    /// A deployment.
    Deploy,
    /// A rollback that restored the objects of an earlier revision.
    Rollback {
        /// The revision whose objects were restored.
        to: Revision,
    },
}

/// Where a revision stands, for targets that watch rollouts (the kube target). Targets that
/// only write files leave it unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevisionState {
    /// Being applied or rolled out (or interrupted while it was).
    Pending,
    /// Rolled out successfully and current.
    Deployed,
    /// Rolled out successfully, then replaced by a later revision.
    Superseded,
    /// Its rollout failed or timed out.
    Failed,
}

impl RevisionState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionState::Pending => "pending",
            RevisionState::Deployed => "deployed",
            RevisionState::Superseded => "superseded",
            RevisionState::Failed => "failed",
        }
    }
}

/// What a target remembers of one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReleaseRecord {
    /// The revision.
    pub revision: Revision,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The owning team.
    pub team: String,
    /// The image.
    pub image: String,
    /// Replicas (HPA minimum when autoscaling is on).
    pub replicas: u32,
    /// The digest of the objects.
    pub digest: String,
    /// When it was released.
    #[serde(with = "time::serde::rfc3339")]
    pub deployed_at: OffsetDateTime,
    /// Who released it.
    pub deployed_by: String,
    /// The escape hatches it used.
    pub escape_hatches: Vec<EscapeHatch>,
    /// Why it exists.
    pub cause: ReleaseCause,
    /// The public URL, when it has one.
    pub url: Option<String>,
    /// The namespace of its objects.
    pub namespace: String,
    /// How many objects it has.
    pub objects: usize,
    /// Where the revision stands (set by targets that watch rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RevisionState>,
    /// The file the request came from (e.g. `score:score.yaml`), when not from flags alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl ReleaseRecord {
    /// The record of `release` as revision `revision`, released now by its actor.
    pub fn for_release(release: &Release, revision: Revision, deployed_at: OffsetDateTime) -> Self {
        let a = &release.app;
        ReleaseRecord {
            revision,
            app: a.app.to_string(),
            environment: a.environment.name.clone(),
            team: a.team.to_string(),
            image: a.image.to_string(),
            replicas: a.replicas,
            digest: release.digest.clone(),
            deployed_at,
            deployed_by: release.actor.clone(),
            escape_hatches: a.escape_hatches.clone(),
            cause: ReleaseCause::Deploy,
            url: a.url(),
            namespace: a.namespace.clone(),
            objects: release.manifests.len(),
            state: None,
            source: a.workload.as_ref().map(|w| w.source.clone()),
        }
    }
}

impl ReleaseRecord {
    /// The record of a rollback that restores this revision's objects as revision `revision`,
    /// released at `at` by `actor`. Its [state](ReleaseRecord::state) is unset: the new
    /// revision has not rolled out yet.
    pub fn restored_as(&self, revision: Revision, actor: &str, at: OffsetDateTime) -> ReleaseRecord {
        let mut record = self.clone();
        record.revision = revision;
        record.deployed_at = at;
        record.deployed_by = actor.to_string();
        record.cause = ReleaseCause::Rollback { to: self.revision };
        record.state = None;
        record
    }
}

impl AsRef<ReleaseRecord> for ReleaseRecord {
    fn as_ref(&self) -> &ReleaseRecord {
        self
    }
}

/// The result of a deploy or rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeployOutcome {
    /// The revision now current.
    pub record: ReleaseRecord,
    /// `false` when the objects were identical to the current revision's, so nothing changed
    /// and no revision was created.
    pub changed: bool,
    /// Where the target put the release (a directory, a cluster context), for humans.
    pub location: String,
    /// `true` when the target's copy of the current revision had drifted (edited by hand,
    /// an interrupted write) and was restored.
    pub restored: bool,
    /// The policy verdict on the release (warnings, audited violations, what ran); set by
    /// [`crate::Platform`], empty from a target.
    #[serde(default)]
    pub policy: crate::PolicyReport,
}

impl DeployOutcome {
    /// A deploy outcome.
    pub fn new(record: ReleaseRecord, changed: bool, location: impl Into<String>) -> Self {
        DeployOutcome { record, changed, location: location.into(), restored: false, policy: Default::default() }
    }

    /// Marks the outcome as having restored a drifted copy.
    pub fn with_restored(mut self, restored: bool) -> Self {
        self.restored = restored;
        self
    }
}

/// What a target observes of the current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReleaseStatus {
    /// The current revision.
    pub current: ReleaseRecord,
    /// `true` when what the target holds matches the revision (no drift).
    pub in_sync: bool,
    /// A one-line human description (e.g. `3/3 replicas ready`, `directory in sync`).
    pub detail: String,
    /// Where the release lives.
    pub location: String,
}

impl ReleaseStatus {
    /// A status.
    pub fn new(current: ReleaseRecord, in_sync: bool, detail: impl Into<String>, location: impl Into<String>) -> Self {
        ReleaseStatus { current, in_sync, detail: detail.into(), location: location.into() }
    }
}
