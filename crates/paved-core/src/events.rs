//! Progress events (for spinners, logs, Python callbacks) and platform events (for metrics).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::policy::Action;
use crate::release::Revision;
use crate::request::{Commit, EscapeHatch};

/// A step of the golden path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Step {
    /// Checking the request against the configuration.
    Validate,
    /// Rendering the objects.
    Render,
    /// Evaluating policy.
    Policy,
    /// Resolving secret references.
    Secrets,
    /// Applying to the target.
    Apply,
    /// Waiting for the rollout.
    Watch,
    /// Recording the outcome.
    Record,
}

impl Step {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Render => "render",
            Step::Policy => "policy",
            Step::Secrets => "secrets",
            Step::Apply => "apply",
            Step::Watch => "watch",
            Step::Record => "record",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One progress report: a step and a human message (`rendered 9 objects`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The step.
    pub step: Step,
    /// What happened, for humans.
    pub message: String,
    /// Fraction done within the step (`(2, 3)` = 2 of 3), when the step can tell.
    pub done: Option<(u64, u64)>,
}

/// A callback that receives progress reports; must be cheap and must not block.
pub type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeploymentResult {
    /// A new revision is live.
    Success,
    /// The objects were unchanged; no new revision.
    Unchanged,
    /// The deployment failed.
    Failure,
    /// The deployment failed and the previous revision was restored.
    RolledBack,
    /// Applied, but the rollout never became ready and nothing was restored: the new revision
    /// is live and failing (automatic rollback off, or it failed too).
    RolloutFailed,
    /// Policy denied it; nothing was applied.
    Denied,
}

/// Something the platform did, recorded through [`Metrics`](crate::Metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlatformEvent {
    /// A deployment (or rollback) started.
    DeploymentStarted {
        /// Unique id of this deployment.
        id: String,
        /// The app.
        service: String,
        /// The team.
        team: String,
        /// The environment.
        environment: String,
        /// The image.
        image: String,
        /// Deploy or rollback.
        action: Action,
        /// When it started.
        #[serde(with = "time::serde::rfc3339")]
        started_at: OffsetDateTime,
    },
    /// A deployment (or rollback) finished.
    DeploymentFinished {
        /// Unique id of this deployment (as in `DeploymentStarted`).
        id: String,
        /// The app.
        service: String,
        /// The team.
        team: String,
        /// The environment.
        environment: String,
        /// The image.
        image: String,
        /// Deploy or rollback.
        action: Action,
        /// How it ended.
        result: DeploymentResult,
        /// The revision now current, if any.
        revision: Option<Revision>,
        /// When it started.
        #[serde(with = "time::serde::rfc3339")]
        started_at: OffsetDateTime,
        /// When it finished.
        #[serde(with = "time::serde::rfc3339")]
        finished_at: OffsetDateTime,
        /// The escape hatches used.
        escape_hatches: Vec<EscapeHatch>,
        /// The commits shipped.
        commits: Vec<Commit>,
        /// The error, when it failed.
        error: Option<String>,
    },
    /// Policy was evaluated on an action.
    PolicyDecision {
        /// The action.
        action: Action,
        /// The app or service.
        service: String,
        /// The team.
        team: String,
        /// The environment.
        environment: String,
        /// Whether the action may go on.
        allowed: bool,
        /// Number of denying violations.
        denials: usize,
        /// Number of warnings.
        warnings: usize,
        /// The policies evaluated.
        policies: Vec<String>,
        /// How long the evaluation took.
        duration_seconds: f64,
    },
    /// A self-service database was provisioned (or found already provisioned).
    DatabaseProvisioned {
        /// The service that uses it.
        service: String,
        /// The owning team.
        team: String,
        /// The environment.
        environment: String,
        /// The engine (`postgres`, `mysql`, …).
        engine: String,
        /// The size (`small`, `medium`, `large`).
        size: String,
        /// The database name.
        database: String,
        /// The database server of the configuration (`[databases.NAME]`).
        server: String,
        /// The provisioner that created it (`vault`, `aws-rds`).
        backend: String,
    },
    /// The access (and with `drop_data` the data) of a self-service database was removed.
    DatabaseDeprovisioned {
        /// The service that used it.
        service: String,
        /// The owning team.
        team: String,
        /// The environment.
        environment: String,
        /// The engine.
        engine: String,
        /// The database server of the configuration.
        server: String,
        /// Whether the data was dropped too.
        drop_data: bool,
    },
    /// A notification of the owning team failed or timed out; the action went on.
    NotificationFailed {
        /// The app or service it was about.
        service: String,
        /// The team that was to be told.
        team: String,
        /// The environment.
        environment: String,
        /// The notifier (`slack`, `webhook`).
        notifier: String,
        /// Why it failed (never a webhook URL or other secret).
        reason: String,
    },
}

/// A unique id for a deployment: `{app}-{env}-{unix nanoseconds in hex}-{pid}`.
pub fn deployment_id(app: &str, env: &str, at: OffsetDateTime) -> String {
    format!("{app}-{env}-{:x}-{}", at.unix_timestamp_nanos(), std::process::id())
}
