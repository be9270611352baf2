//! The policy hook: every golden-path action passes through a [`PolicyEngine`] before
//! anything is applied.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::manifest::Manifests;
use crate::request::EscapeHatch;

/// The golden-path action a policy is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Deploying a release.
    Deploy,
    /// Rolling back to an earlier release.
    Rollback,
    /// Provisioning a database.
    ProvisionDatabase,
    /// Removing a database's access (and with `drop_data` its data). Plugins see it only when
    /// their manifest lists `deprovision-database` (as `deprovision-database` since WIT 0.2.0;
    /// a plugin built against 0.1.0 is shown `provision-database` with the same database input).
    DeprovisionDatabase,
}

impl Action {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::ProvisionDatabase => "provision-database",
            Action::DeprovisionDatabase => "deprovision-database",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The database of a `provision-database` action, as policies see it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DatabaseInput<'a> {
    /// The engine, e.g. `postgres`.
    pub engine: &'a str,
    /// The size class, e.g. `small`.
    pub size: &'a str,
}

/// What a policy sees: the request's metadata and the final objects (after every escape hatch).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInput<'a> {
    /// The action.
    pub action: Action,
    /// The app (or service, for databases).
    pub app: &'a str,
    /// The owning team.
    pub team: &'a str,
    /// The environment.
    pub environment: &'a str,
    /// The image, for deployments.
    pub image: Option<&'a str>,
    /// The replica count, for deployments.
    pub replicas: Option<u32>,
    /// The escape hatches used.
    pub escape_hatches: &'a [EscapeHatch],
    /// The database, for [`Action::ProvisionDatabase`].
    pub database: Option<DatabaseInput<'a>>,
    /// The objects to be applied (empty for database provisioning).
    pub objects: &'a Manifests,
}

/// What a policy's violations do (`mode` in a policy's manifest or `paved.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Denying violations stop the action.
    #[default]
    Enforce,
    /// Denying violations are reported as warnings; the action continues.
    Warn,
    /// Violations are only recorded (events, `--output json`); nothing is printed.
    Audit,
}

/// What a plugin failure (trap, timeout, limit, error) does, like a Kubernetes webhook's
/// `failurePolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// The action is denied (fail closed).
    #[default]
    Fail,
    /// The failure is reported as a warning and the action continues.
    Ignore,
}

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The action is denied.
    Deny,
    /// The action continues; the violation is reported.
    Warn,
}

/// One rule a policy found broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The policy that reported it.
    pub policy: String,
    /// A stable code, e.g. `latest-tag`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The offending object, `Kind/name`.
    pub object: Option<String>,
    /// The JSON path of the offending field, e.g. `spec.template.spec.containers[0].image`.
    pub path: Option<String>,
    /// Deny or warn.
    pub severity: Severity,
}

impl fmt::Display for Violation {
    /// `[policy] code: message at Kind/name path (hint: …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.policy, self.code, self.message)?;
        match (&self.object, &self.path) {
            (Some(o), Some(p)) => write!(f, " at {o} {p}")?,
            (Some(o), None) => write!(f, " at {o}")?,
            (None, Some(p)) => write!(f, " at {p}")?,
            (None, None) => {}
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// The combined verdict of every policy on one action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyReport {
    /// Every violation, denying and warning, in evaluation order.
    pub violations: Vec<Violation>,
    /// The objects after mutating policies, when any mutated them.
    pub mutated: Option<Manifests>,
    /// The RFC 6902 patch from the rendered to the mutated objects, when there is one.
    pub patch: Option<serde_json::Value>,
    /// The policies that were evaluated.
    pub evaluated: Vec<String>,
    /// Violations of policies in `audit` mode: recorded, never printed, never denying.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audited: Vec<Violation>,
    /// Of `evaluated`, the members of the built-in baseline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
}

impl PolicyReport {
    /// The denying violations.
    pub fn denials(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.severity == Severity::Deny)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.severity == Severity::Warn)
    }
}

/// Evaluates the organisation's policies on an action.
#[async_trait]
pub trait PolicyEngine: Send + Sync {
    /// Evaluates every applicable policy. An `Err` means the engine itself failed (which
    /// stops the action: fail closed); denials are violations in the report.
    async fn evaluate(&self, input: &PolicyInput<'_>) -> Result<PolicyReport>;
}

/// The default policy engine: allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl PolicyEngine for AllowAll {
    async fn evaluate(&self, _input: &PolicyInput<'_>) -> Result<PolicyReport> {
        Ok(PolicyReport::default())
    }
}
