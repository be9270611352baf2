//! The live Kubernetes deploy target (`target = "kube"`): server-side apply, rollout watching
//! with the rules of `kubectl rollout status`, automatic rollback, release history in the
//! cluster, pruning, and retries.
//!
//! A deploy, step by step:
//!
//! 1. read the app's history from the cluster (one Secret per revision, see [`history`]);
//!    objects identical to the current revision's are re-applied (drift is repaired) and no
//!    revision is created;
//! 2. apply the Namespace, then record the new revision as `pending` (creating its Secret is
//!    the lock between concurrent deploys), then apply the release's CustomResourceDefinitions
//!    and wait until they are established, then server-side apply every other object in
//!    Helm's install order as field manager `paved` (force only with
//!    [`KubeTarget::force_conflicts`]); kinds outside the built-in groups are resolved through
//!    API discovery, and a Deployment's `spec.replicas` is handed to or taken back from its
//!    autoscaler first ([`HANDOVER_MANAGER`]);
//! 3. watch what rolls out, all at once: Deployments, StatefulSets and DaemonSets by the rules
//!    of `kubectl rollout status`, Jobs, claims, load balancers by Helm's `--wait` checks,
//!    until they are ready, fail (`ProgressDeadlineExceeded`, a failed Job) or the
//!    [timeout](KubeTarget::timeout) passes (a 401/403 on the watch fails at once), reporting
//!    `2/3 updated, 1/3 available`;
//! 4. on success: delete what the previous revisions had and this one no longer renders
//!    (only objects labelled as the app's), mark the revision `deployed`, trim the history to
//!    [`KubeTarget::history_max`];
//! 5. on failure: collect the pods' last reasons (`ImagePullBackOff`, `CrashLoopBackOff`,
//!    failed probes, unschedulable), mark the revision `failed` and, unless
//!    [rollback is off](KubeTarget::auto_rollback), re-apply the previous revision as a new
//!    revision and wait for it (a release that never succeeded has its objects removed
//!    instead); the error ([`paved_core::Error::Rollout`]) reports both.
//!
//! A deploy future dropped half-way (Ctrl-C, a cancelled task) restores the previous
//! revision in a background task (see [`KubeTarget::settle`]); a process killed half-way
//! leaves a `pending` revision that `status` reports and the next deploy supersedes.
//!
//! ```no_run
//! # async fn run() -> paved_core::Result<()> {
//! use paved_core::{DeployRequest, OrgConfig, Platform};
//! use paved_kube::{KubeRenderer, live::KubeTarget};
//!
//! let config = OrgConfig::default();
//! let target = KubeTarget::from_kubeconfig(None, Some("kind-dev".into()))
//!     .namespace_template(&config.app.namespace)
//!     .timeout(std::time::Duration::from_secs(120));
//! let platform = Platform::builder().config(config).renderer(KubeRenderer).deployer(target).build()?;
//! # Ok(()) }
//! ```

pub mod apply;
pub mod bearer;
pub mod connection;
mod deploy;
mod destroy;
mod discovery;
mod handover;
pub mod history;
pub mod prune;
mod recovery;
pub mod retry;
pub mod rollout;
mod status;
mod target;

pub use apply::MissingKinds;
pub use bearer::{ExecReplacement, TokenSource};
pub use connection::Connection;
pub use handover::HANDOVER_MANAGER;
pub use retry::RetryPolicy;
pub use rollout::{RolloutState, deployment_state};
pub use target::{KubeTarget, MANAGER, TARGET_NAME};
