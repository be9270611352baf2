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
//!    the lock between concurrent deploys), then server-side apply every other object in
//!    dependency order as field manager `paved` (force only with
//!    [`KubeTarget::force_conflicts`]);
//! 3. watch each Deployment until its rollout completes, fails (`ProgressDeadlineExceeded`)
//!    or the [timeout](KubeTarget::timeout) passes, reporting `2/3 updated, 1/3 available`;
//! 4. on success: delete what the previous revisions had and this one no longer renders
//!    (only objects labelled as the app's), mark the revision `deployed`, trim the history to
//!    [`KubeTarget::history_max`];
//! 5. on failure: collect the pods' last reasons (`ImagePullBackOff`, `CrashLoopBackOff`,
//!    failed probes, unschedulable), mark the revision `failed` and, unless
//!    [rollback is off](KubeTarget::auto_rollback), re-apply the previous revision as a new
//!    revision and wait for it; the error ([`paved_core::Error::Rollout`]) reports both.
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
pub mod connection;
pub mod history;
#[cfg(feature = "mock")]
pub mod mock;
pub mod prune;
pub mod retry;
pub mod rollout;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{
    AppName, DeployContext, DeployOutcome, Deployer, DestroyOutcome, Error, Manifest, Manifests, Release, ReleaseCause,
    ReleaseRecord, ReleaseStatus, Result, Revision, RevisionState, SecretValues, Step,
};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use apply::MissingKinds;
pub use connection::Connection;
pub use retry::RetryPolicy;
pub use rollout::{RolloutState, deployment_state};

use apply::{Applied, Target};
use connection::Connected;
use history::Stored;

/// The name of this target in configuration (`target = "kube"`).
pub const TARGET_NAME: &str = "kube";

/// The field manager of every server-side apply.
pub const MANAGER: &str = "paved";

/// Deploys releases to a live cluster. Cheap to clone; clones share the connection, the
/// per-app locks and the background recoveries. `Send + Sync`: one target deploys many apps
/// at once over one client.
#[derive(Clone)]
pub struct KubeTarget {
    conn: Connection,
    opts: Options,
    shared: Arc<Shared>,
}

#[derive(Debug, Clone)]
struct Options {
    timeout: Duration,
    auto_rollback: bool,
    force_conflicts: bool,
    history_max: usize,
    missing_kinds: MissingKinds,
    retry: RetryPolicy,
    namespace_template: String,
}

#[derive(Default)]
struct Shared {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    recoveries: Mutex<Vec<JoinHandle<String>>>,
}

impl fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeTarget").field("connection", &self.conn).field("options", &self.opts).finish()
    }
}

impl KubeTarget {
    /// A target connecting with `connection`, with the defaults: timeout 5 minutes, automatic
    /// rollback on, no forced conflicts, 10 revisions of history, missing CRDs are warnings,
    /// 5 attempts per request, namespaces `{app}-{env}`.
    pub fn new(connection: Connection) -> Self {
        KubeTarget {
            conn: connection,
            opts: Options {
                timeout: Duration::from_secs(300),
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

    /// How long a rollout may take before it counts as failed (default 5 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.timeout = timeout;
        self
    }

    /// Whether a failed rollout re-applies the previous revision (default `true`).
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

    /// Waits for the background recoveries of deploys that were dropped half-way (see the
    /// module documentation) and returns what each did, e.g. `the deploy of revision 2 of shop
    /// in production was cancelled; rolled back to the objects of revision 1 (now revision 3,
    /// image …)`. Call it before the process exits (the CLI does after Ctrl-C).
    pub async fn settle(&self) -> Vec<String> {
        let handles: Vec<JoinHandle<String>> =
            std::mem::take(&mut *self.shared.recoveries.lock().expect("not poisoned"));
        let mut reports = Vec::with_capacity(handles.len());
        for h in handles {
            reports.push(h.await.unwrap_or_else(|e| format!("the recovery task failed: {e}")));
        }
        reports
    }

    async fn connected(&self) -> Result<&Connected> {
        self.conn.get().await
    }

    /// Serialises operations on one app in one environment within this process.
    async fn lock(&self, app: &str, env: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.shared.locks.lock().expect("not poisoned");
            locks.entry(format!("{env}/{app}")).or_default().clone()
        };
        m.lock_owned().await
    }

    fn namespace_of(&self, app: &str, env: &str) -> Option<String> {
        let t = &self.opts.namespace_template;
        (!t.contains("{team}")).then(|| t.replace("{app}", app).replace("{env}", env))
    }

    fn location(server: &str, namespace: &str) -> String {
        format!("{server}, namespace {namespace}")
    }

    /// Applies objects in dependency order; `namespaces`: only Namespaces, else all but them.
    /// Applies the objects (the Namespaces, or everything else). A Secret whose values are
    /// redacted placeholders (`sync` secret mode) is applied with `values` put in; without them
    /// (a rollback re-applying stored objects) it is left as it is in the cluster.
    async fn apply_objects(
        &self,
        conn: &Connected,
        manifests: &Manifests,
        namespaces: bool,
        values: &SecretValues,
        cx: &DeployContext,
    ) -> Result<usize> {
        let mut applied = 0;
        for m in apply::in_apply_order(manifests.objects()) {
            if (m.kind() == "Namespace") != namespaces {
                continue;
            }
            let filled;
            let m = if apply::has_redacted_values(m) {
                match apply::fill_redacted_values(m, values) {
                    Some(f) => {
                        filled = f;
                        &filled
                    }
                    None => {
                        cx.report(
                            Step::Apply,
                            format!(
                                "kept {} as it is (its values are read from the secret store at deploy time)",
                                m.key()
                            ),
                            None,
                        );
                        continue;
                    }
                }
            } else {
                m
            };
            match apply::apply_one(
                &conn.client,
                &conn.description,
                m,
                self.opts.force_conflicts,
                self.opts.missing_kinds,
                &self.opts.retry,
            )
            .await?
            {
                Applied::Done => applied += 1,
                Applied::Skipped(warning) => {
                    tracing::warn!("{warning}");
                    cx.report(Step::Apply, format!("⚠️  {warning}"), None);
                }
            }
        }
        Ok(applied)
    }

    /// Waits for every Deployment of `manifests`.
    async fn wait(
        &self,
        conn: &Connected,
        namespace: &str,
        manifests: &Manifests,
        cx: &DeployContext,
    ) -> Result<(), String> {
        let names: Vec<String> =
            manifests.iter().filter(|m| m.kind() == "Deployment").map(|m| m.name().to_string()).collect();
        if names.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.opts.timeout;
        match rollout::wait_all(&conn.client, namespace, &names, deadline, cx).await {
            Ok(()) => Ok(()),
            Err((name, failure)) => {
                let selector = manifests
                    .iter()
                    .find(|m| m.kind() == "Deployment" && m.name() == name)
                    .and_then(apply::match_labels_selector);
                let reasons = match selector {
                    Some(s) => rollout::pod_reasons(&conn.client, namespace, &s, &self.opts.retry).await,
                    None => Vec::new(),
                };
                let mut message = failure.message;
                if let Some(last) = failure.last {
                    message.push_str(&format!(" (last seen: {last})"));
                }
                if !reasons.is_empty() {
                    message.push_str(&format!("; {}", reasons.join("; ")));
                }
                Err(message)
            }
        }
    }

    /// Rolls out a new revision: namespace, pending record, objects, watch, then prune and
    /// record, or fail (and roll back).
    async fn run(
        &self,
        conn: &Connected,
        new: Stored,
        history: &[Stored],
        previous: Option<Stored>,
        values: &SecretValues,
        cx: &DeployContext,
    ) -> Result<DeployOutcome> {
        let server = conn.description.as_str();
        let (app, env, ns) = (new.record.app.clone(), new.record.environment.clone(), new.namespace.clone());
        let rev = new.record.revision;
        let namespaces = self.apply_objects(conn, &new.manifests, true, values, cx).await?;
        match history::create(&conn.client, server, &new, &self.opts.retry).await {
            Ok(()) => {}
            Err(history::CreateError::Exists) => {
                return Err(Error::backend(
                    TARGET_NAME,
                    format!("another deploy of {app} in {env} is under way: revision {rev} was recorded meanwhile"),
                    Some(format!("wait for it (paved status --app {app} --env {env}) and deploy again")),
                ));
            }
            Err(history::CreateError::Other(e)) => return Err(e),
        }
        let guard = Recovery {
            target: self.clone(),
            conn: conn.clone(),
            new: new.clone(),
            previous: previous.clone(),
            armed: true,
        };
        cx.report(Step::Apply, format!("recorded revision {rev} as pending in namespace {ns}"), None);
        let applied = match self.apply_objects(conn, &new.manifests, false, values, cx).await {
            Ok(n) => n,
            Err(e) => {
                return Err(self.fail(conn, &new, history, previous.as_ref(), Failure::Apply(e), guard, cx).await);
            }
        };
        cx.report(
            Step::Apply,
            format!("applied {} objects (server-side apply, field manager {MANAGER})", applied + namespaces),
            None,
        );
        if let Err(message) = self.wait(conn, &ns, &new.manifests, cx).await {
            return Err(self.fail(conn, &new, history, previous.as_ref(), Failure::Rollout(message), guard, cx).await);
        }
        // The rollout succeeded: from here on nothing may restore the previous release, even if
        // the bookkeeping below fails or the future is dropped.
        let mut guard = guard;
        guard.armed = false;
        drop(guard);
        self.finish(conn, &new, history, true, cx).await.map_err(|e| {
            Error::backend(
                TARGET_NAME,
                format!("revision {rev} rolled out in namespace {ns}, but recording it in the cluster failed: {e}"),
                Some(
                    "the new release is running; `paved status` shows it, and the next deploy records it again".into(),
                ),
            )
        })?;
        let mut record = new.record.clone();
        record.state = Some(RevisionState::Deployed);
        Ok(DeployOutcome::new(record, true, Self::location(server, &ns)))
    }

    /// After a successful rollout: prune, mark deployed (and the rest superseded), trim.
    async fn finish(
        &self,
        conn: &Connected,
        new: &Stored,
        history: &[Stored],
        trim: bool,
        cx: &DeployContext,
    ) -> Result<()> {
        let server = conn.description.as_str();
        let (app, env) = (new.record.app.as_str(), new.record.environment.as_str());
        let keep: BTreeSet<prune::Identity> = new.manifests.iter().map(prune::identity).collect();
        let candidates: Vec<Target> = history.iter().flat_map(|s| s.manifests.iter()).map(Target::of).collect();
        match prune::prune(&conn.client, server, candidates, &keep, app, env, &self.opts.retry).await {
            Ok(deleted) if !deleted.is_empty() => {
                cx.report(
                    Step::Apply,
                    format!("pruned {} objects no longer rendered: {}", deleted.len(), deleted.join(", ")),
                    None,
                );
            }
            Ok(_) => {}
            Err(e) => {
                // The release is live and healthy; a leftover object is reported, not fatal.
                tracing::warn!(error = %e, "pruning failed");
                cx.report(Step::Apply, format!("⚠️  pruning failed (the next deploy retries it): {e}"), None);
            }
        }
        history::set_state(&conn.client, server, new, RevisionState::Deployed, &self.opts.retry).await?;
        for old in
            history.iter().filter(|s| s.state() == RevisionState::Deployed && s.record.revision != new.record.revision)
        {
            history::set_state(&conn.client, server, old, RevisionState::Superseded, &self.opts.retry).await?;
        }
        if !trim {
            return Ok(());
        }
        let mut all: Vec<&Stored> = history.iter().filter(|s| s.record.revision != new.record.revision).collect();
        all.push(new);
        self.trim(conn, all).await
    }

    /// Deletes the records of all but the newest `history_max` revisions.
    async fn trim(&self, conn: &Connected, mut revisions: Vec<&Stored>) -> Result<()> {
        revisions.sort_by_key(|s| std::cmp::Reverse(s.record.revision));
        revisions.dedup_by_key(|s| s.record.revision);
        for old in revisions.into_iter().skip(self.opts.history_max.max(1)) {
            history::delete(&conn.client, conn.description.as_str(), old, &self.opts.retry).await?;
        }
        Ok(())
    }

    /// A revision failed: mark it, and restore `previous` (as a new revision) unless rollback
    /// is off. Returns the error to report.
    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &self,
        conn: &Connected,
        new: &Stored,
        history: &[Stored],
        previous: Option<&Stored>,
        failure: Failure,
        mut guard: Recovery,
        cx: &DeployContext,
    ) -> Error {
        guard.armed = false;
        drop(guard);
        let server = conn.description.as_str();
        let r = &new.record;
        if let Err(e) = history::set_state(&conn.client, server, new, RevisionState::Failed, &self.opts.retry).await {
            tracing::warn!(error = %e, "could not mark the failed revision");
        }
        let (what, hint, apply_error) = match failure {
            Failure::Apply(e) => {
                let hint = e.hint().map(str::to_string);
                (
                    format!("revision {} of {} in {} could not be applied: {e}", r.revision, r.app, r.environment),
                    hint,
                    Some(e),
                )
            }
            Failure::Rollout(message) => (
                format!(
                    "rollout of revision {} of {} in {} (image {}) failed: {message}",
                    r.revision, r.app, r.environment, r.image
                ),
                Some(format!(
                    "inspect the pods: kubectl -n {} describe pods -l app.kubernetes.io/instance={}-{}",
                    new.namespace, r.app, r.environment
                )),
                None,
            ),
            Failure::Cancelled => (
                format!("the deploy of revision {} of {} in {} was cancelled", r.revision, r.app, r.environment),
                None,
                None,
            ),
        };
        cx.report(Step::Watch, format!("❌ {what}"), None);
        let Some(previous) = previous.filter(|_| self.opts.auto_rollback) else {
            // The failed revision stays recorded; the history stays bounded.
            if let Err(e) = self.trim(conn, history.iter().chain([new]).collect()).await {
                tracing::warn!(error = %e, "could not trim the release history");
            }
            let why = if self.opts.auto_rollback {
                "there is no earlier revision to roll back to".to_string()
            } else {
                "automatic rollback is off (--no-rollback): the failed objects stay in place".to_string()
            };
            if let Some(e) = apply_error
                && previous.is_none()
            {
                return e;
            }
            return Error::Rollout {
                target: TARGET_NAME.into(),
                message: format!("{what}; revision {} is marked failed; {why}", r.revision),
                hint,
                restored: None,
            };
        };
        cx.report(Step::Apply, format!("rolling back to revision {}", previous.record.revision), None);
        match self.restore(conn, new, history, previous, cx).await {
            Ok(restored) => Error::Rollout {
                target: TARGET_NAME.into(),
                message: format!(
                    "{what}; rolled back to the objects of revision {} (now revision {restored}, image {})",
                    previous.record.revision, previous.record.image
                ),
                hint,
                restored: Some(restored),
            },
            Err(e) => Error::Rollout {
                target: TARGET_NAME.into(),
                message: format!(
                    "{what}; rolling back to revision {} failed too: {e}; the namespace {} may hold objects of both revisions",
                    previous.record.revision, new.namespace
                ),
                hint: hint.or_else(|| {
                    Some(format!(
                        "fix the cause, then deploy again or run paved rollback --app {} --env {}",
                        r.app, r.environment
                    ))
                }),
                restored: None,
            },
        }
    }

    /// Re-applies `previous` as a new revision after `failed`, waits for it, prunes what only
    /// `failed` had, and records it. Returns the new revision.
    async fn restore(
        &self,
        conn: &Connected,
        failed: &Stored,
        history: &[Stored],
        previous: &Stored,
        cx: &DeployContext,
    ) -> Result<Revision> {
        let server = conn.description.as_str();
        let mut record = previous.record.clone();
        record.revision = failed.record.revision + 1;
        record.deployed_at = now();
        record.deployed_by = failed.record.deployed_by.clone();
        record.cause = ReleaseCause::Rollback { to: previous.record.revision };
        record.state = Some(RevisionState::Pending);
        let restore = Stored { record, manifests: previous.manifests.clone(), namespace: previous.namespace.clone() };
        match history::create(&conn.client, server, &restore, &self.opts.retry).await {
            Ok(()) => {}
            Err(history::CreateError::Exists) => {
                return Err(Error::backend(TARGET_NAME, "another deploy recorded a revision meanwhile", None));
            }
            Err(history::CreateError::Other(e)) => return Err(e),
        }
        let none = SecretValues::default();
        let applied = match self.apply_objects(conn, &restore.manifests, true, &none, cx).await {
            Ok(_) => self.apply_objects(conn, &restore.manifests, false, &none, cx).await,
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            let _ = history::set_state(&conn.client, server, &restore, RevisionState::Failed, &self.opts.retry).await;
            return Err(e);
        }
        if let Err(message) = self.wait(conn, &restore.namespace, &restore.manifests, cx).await {
            let _ = history::set_state(&conn.client, server, &restore, RevisionState::Failed, &self.opts.retry).await;
            return Err(Error::backend(
                TARGET_NAME,
                format!("the restored revision did not roll out: {message}"),
                None,
            ));
        }
        // Prune only what the failed revision added; then keep the history bounded.
        self.finish(conn, &restore, &[previous.clone(), failed.clone()], false, cx).await?;
        self.trim(conn, history.iter().chain([failed, &restore]).collect()).await?;
        Ok(restore.record.revision)
    }

    /// A `pending` latest revision means that another deploy is under way (on this or another
    /// machine) or that one was interrupted. Younger than twice the rollout timeout plus two
    /// minutes, it blocks this deploy; older, it is marked `failed` and superseded.
    async fn check_pending(&self, conn: &Connected, history: &[Stored]) -> Result<()> {
        let Some(last) = history.last().filter(|s| s.state() == RevisionState::Pending) else { return Ok(()) };
        let r = &last.record;
        let limit = self.opts.timeout.saturating_mul(2) + Duration::from_secs(120);
        let age = OffsetDateTime::now_utc() - r.deployed_at;
        if age < limit {
            return Err(Error::backend(
                TARGET_NAME,
                format!(
                    "another deploy of {} in {} is under way: revision {} (by {}) is pending since {}",
                    r.app,
                    r.environment,
                    r.revision,
                    r.deployed_by,
                    r.deployed_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                ),
                Some(format!(
                    "wait for it (paved status --app {} --env {}); if it was interrupted, deploy again after {} minutes and it counts as failed",
                    r.app,
                    r.environment,
                    limit.as_secs().div_ceil(60)
                )),
            ));
        }
        tracing::warn!(revision = r.revision, "marking an interrupted revision as failed");
        history::set_state(&conn.client, &conn.description, last, RevisionState::Failed, &self.opts.retry).await
    }

    async fn deploy_release(&self, release: &Release, cx: &DeployContext) -> Result<DeployOutcome> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let a = &release.app;
        let (app, env, ns) = (a.app.as_str(), a.environment.name.as_str(), a.namespace.as_str());
        let _lock = self.lock(app, env).await;
        let history = history::load(&conn.client, server, Some(ns), app, env, &self.opts.retry).await?;
        self.check_pending(conn, &history).await?;
        let current = history.iter().rev().find(|s| s.state() == RevisionState::Deployed).cloned();
        if let Some(cur) = &current
            && cur.record.digest == release.digest
        {
            cx.report(
                Step::Apply,
                format!("revision {} has the same objects: re-applying them", cur.record.revision),
                None,
            );
            self.apply_objects(conn, &release.manifests, true, &release.secret_values, cx).await?;
            self.apply_objects(conn, &release.manifests, false, &release.secret_values, cx).await?;
            if let Err(message) = self.wait(conn, ns, &release.manifests, cx).await {
                return Err(Error::Rollout {
                    target: TARGET_NAME.into(),
                    message: format!("revision {} of {app} in {env} is not healthy: {message}", cur.record.revision),
                    hint: Some(format!("inspect the pods: kubectl -n {ns} get pods")),
                    restored: None,
                });
            }
            let mut record = cur.record.clone();
            record.state = Some(RevisionState::Deployed);
            return Ok(DeployOutcome::new(record, false, Self::location(server, ns)));
        }
        let revision = history.last().map_or(1, |s| s.record.revision + 1);
        let mut record = ReleaseRecord::for_release(release, revision, now());
        record.state = Some(RevisionState::Pending);
        let new = Stored { record, manifests: release.manifests.clone(), namespace: ns.to_string() };
        self.run(conn, new, &history, current, &release.secret_values, cx).await
    }

    /// The app's history and namespace: from the namespace template, or by searching.
    async fn find(&self, conn: &Connected, app: &str, env: &str) -> Result<(Option<String>, Vec<Stored>)> {
        let ns = self.namespace_of(app, env);
        let history = history::load(&conn.client, &conn.description, ns.as_deref(), app, env, &self.opts.retry).await?;
        let ns = ns.or_else(|| history.last().map(|s| s.namespace.clone()));
        Ok((ns, history))
    }

    fn not_deployed(app: &str, env: &str, server: &str) -> Error {
        Error::NotFound {
            what: format!("release of {app} in {env} ({server})"),
            hint: Some(format!(
                "deploy it first: paved deploy --target kube --app {app} --env {env} --image IMAGE (or check --context)"
            )),
        }
    }
}

/// Why a revision failed.
enum Failure {
    Apply(Error),
    Rollout(String),
    Cancelled,
}

/// Restores the previous revision when a deploy future is dropped after its revision was
/// recorded (and before it finished).
struct Recovery {
    target: KubeTarget,
    conn: Connected,
    new: Stored,
    previous: Option<Stored>,
    armed: bool,
}

impl Drop for Recovery {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                revision = self.new.record.revision,
                "deploy dropped outside a runtime: revision left pending"
            );
            return;
        };
        let (target, conn, new, previous) =
            (self.target.clone(), self.conn.clone(), self.new.clone(), self.previous.clone());
        let shared = self.target.shared.clone();
        let task = handle.spawn(async move {
            let _lock = target.lock(&new.record.app, &new.record.environment).await;
            let disarmed =
                Recovery { target: target.clone(), conn: conn.clone(), new: new.clone(), previous: None, armed: false };
            let e =
                // The full history is not at hand here: the next deploy trims it.
                target.fail(&conn, &new, previous.as_slice(), previous.as_ref(), Failure::Cancelled, disarmed, &DeployContext::new()).await;
            tracing::warn!("{e}");
            match e {
                Error::Rollout { message, .. } => message,
                other => other.to_string(),
            }
        });
        shared.recoveries.lock().expect("not poisoned").push(task);
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 is a valid nanosecond")
}

#[async_trait]
impl Deployer for KubeTarget {
    fn name(&self) -> &str {
        TARGET_NAME
    }

    fn accepts_secret_values(&self) -> bool {
        true
    }

    async fn deploy(&self, release: &Release) -> Result<DeployOutcome> {
        self.deploy_release(release, &DeployContext::new()).await
    }

    async fn deploy_with(&self, release: &Release, cx: &DeployContext) -> Result<DeployOutcome> {
        self.deploy_release(release, cx).await
    }

    async fn status(&self, app: &AppName, environment: &str) -> Result<ReleaseStatus> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let (ns, history) = self.find(conn, app.as_str(), environment).await?;
        let current = history
            .iter()
            .rev()
            .find(|s| s.state() == RevisionState::Deployed)
            .ok_or_else(|| Self::not_deployed(app.as_str(), environment, server))?;
        let ns = ns.unwrap_or_else(|| current.namespace.clone());
        let mut notes: Vec<String> = Vec::new();
        let mut healthy = true;
        for m in current.manifests.iter().filter(|m| m.kind() == "Deployment") {
            match rollout::current_state(&conn.client, &ns, m.name(), &self.opts.retry).await {
                Ok(Some(d)) => {
                    let live = serde_json::to_value(&d).unwrap_or_default();
                    let image = apply::first_image(&live).unwrap_or("?").to_string();
                    let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
                    match deployment_state(&d) {
                        RolloutState::Complete { desired } => {
                            notes.push(format!("deployment {}: {ready}/{desired} pods ready, image {image}", m.name()));
                        }
                        RolloutState::Progressing { updated, available, desired, .. } => {
                            healthy = false;
                            notes.push(format!(
                                "deployment {}: rolling out, {updated}/{desired} updated, {available}/{desired} available, {ready} ready, image {image}",
                                m.name()
                            ));
                        }
                        RolloutState::Failed { message } => {
                            healthy = false;
                            notes.push(message);
                        }
                    }
                    if apply::first_image(m.value()).is_some_and(|want| want != image) {
                        healthy = false;
                        notes.push(format!("image drifted: desired {}, running {image}", current.record.image));
                    }
                }
                Ok(None) => {
                    healthy = false;
                    notes.push(format!("deployment {} is missing", m.name()));
                }
                Err(e) => return Err(retry::to_error(server, "reading the deployment", e)),
            }
        }
        let mut missing = Vec::new();
        let mut not_served = Vec::new();
        for m in current.manifests.iter().filter(|m| m.kind() != "Deployment") {
            let t = Target::of(m);
            let api = t.api(&conn.client);
            match retry::retry(&self.opts.retry, || api.get_opt(&t.name)).await {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(t.key()),
                Err(e) if retry::code(&e) == Some(404) => not_served.push(t.key()),
                Err(e) => return Err(retry::to_error(server, &format!("reading {}", t.key()), e)),
            }
        }
        // A kind the cluster does not serve (a CRD that is not installed) was skipped with a
        // warning when applied; it is only unhealthy when such kinds are configured as errors.
        if !not_served.is_empty() {
            if self.opts.missing_kinds == MissingKinds::Error {
                healthy = false;
            }
            notes.push(format!("kind not served by the cluster (skipped): {}", not_served.join(", ")));
        }
        let present = current.manifests.len() - missing.len() - not_served.len();
        if missing.is_empty() {
            notes.push(format!("{present}/{} objects present", current.manifests.len()));
        } else {
            healthy = false;
            notes.push(format!("missing: {}", missing.join(", ")));
        }
        if let Some(p) = history
            .iter()
            .rev()
            .find(|s| s.record.revision > current.record.revision && s.state() == RevisionState::Pending)
        {
            healthy = false;
            notes.push(format!(
                "revision {} was interrupted while it was applied (state pending): the cluster may hold some of its objects; deploy again or run paved rollback",
                p.record.revision
            ));
        }
        let mut record = current.record.clone();
        record.state = Some(RevisionState::Deployed);
        Ok(ReleaseStatus::new(record, healthy, notes.join("; "), Self::location(server, &ns)))
    }

    async fn history(&self, app: &AppName, environment: &str) -> Result<Vec<ReleaseRecord>> {
        let conn = self.connected().await?;
        let (_, history) = self.find(conn, app.as_str(), environment).await?;
        Ok(history.into_iter().rev().map(|s| s.record).collect())
    }

    async fn rollback(
        &self,
        app: &AppName,
        environment: &str,
        to: Option<Revision>,
        actor: &str,
    ) -> Result<DeployOutcome> {
        self.rollback_with(app, environment, to, actor, &DeployContext::new()).await
    }

    async fn rollback_with(
        &self,
        app: &AppName,
        environment: &str,
        to: Option<Revision>,
        actor: &str,
        cx: &DeployContext,
    ) -> Result<DeployOutcome> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let (app, env) = (app.as_str(), environment);
        let _lock = self.lock(app, env).await;
        let (_, history) = self.find(conn, app, env).await?;
        self.check_pending(conn, &history).await?;
        let current = history
            .iter()
            .rev()
            .find(|s| s.state() == RevisionState::Deployed)
            .cloned()
            .ok_or_else(|| Self::not_deployed(app, env, server))?;
        let good = |s: &&Stored| matches!(s.state(), RevisionState::Deployed | RevisionState::Superseded);
        let revisions =
            || history.iter().filter(good).map(|s| s.record.revision.to_string()).collect::<Vec<_>>().join(", ");
        let target = match to {
            Some(rev) => {
                history.iter().filter(good).find(|s| s.record.revision == rev).ok_or_else(|| Error::NotFound {
                    what: format!("revision {rev} of {app} in {env} that rolled out successfully"),
                    hint: Some(format!(
                        "revisions to roll back to: {}; see paved history --app {app} --env {env}",
                        revisions()
                    )),
                })?
            }
            None => history.iter().rev().filter(good).find(|s| s.record.digest != current.record.digest).ok_or_else(
                || Error::NotFound {
                    what: format!("an earlier revision of {app} in {env}"),
                    hint: Some("there is nothing to roll back to yet".into()),
                },
            )?,
        };
        target.record.check_rollback_from(&current.record, &revisions())?;
        let mut record = target.record.restored_as(history.last().map_or(1, |s| s.record.revision + 1), actor, now());
        record.state = Some(RevisionState::Pending);
        let new = Stored { record, manifests: target.manifests.clone(), namespace: target.namespace.clone() };
        self.run(conn, new, &history, Some(current), &SecretValues::default(), cx).await
    }

    async fn destroy(&self, app: &AppName, environment: &str, cx: &DeployContext) -> Result<DestroyOutcome> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let (app, env) = (app.as_str(), environment);
        let _lock = self.lock(app, env).await;
        let (ns, history) = self.find(conn, app, env).await?;
        let mut candidates: Vec<Target> = history.iter().flat_map(|s| s.manifests.iter()).map(Target::of).collect();
        if let Some(ns) = &ns {
            candidates.extend(prune::owned_in_namespace(&conn.client, server, ns, app, env, &self.opts.retry).await?);
        }
        let namespace_objects: Vec<Manifest> =
            history.iter().flat_map(|s| s.manifests.iter()).filter(|m| m.kind() == "Namespace").cloned().collect();
        // Deleting a namespace deletes everything in it: keep one that holds objects paved
        // does not own for this app.
        let mut unowned = Vec::new();
        if let Some(ns) = &ns {
            unowned = prune::unowned_in_namespace(&conn.client, server, ns, app, env, &self.opts.retry).await?;
            if !unowned.is_empty() {
                candidates.retain(|t| t.resource.kind != "Namespace");
            }
        }
        if candidates.is_empty() {
            return Err(Error::NotFound {
                what: format!("anything of {app} in {env} ({server})"),
                hint: Some("check --context and --env; paved history lists what paved deployed".into()),
            });
        }
        let mut deleted =
            prune::prune(&conn.client, server, candidates, &BTreeSet::new(), app, env, &self.opts.retry).await?;
        for s in &history {
            history::delete(&conn.client, server, s, &self.opts.retry).await?;
        }
        if !unowned.is_empty() {
            let shown: Vec<&str> = unowned.iter().take(5).map(String::as_str).collect();
            cx.report(
                Step::Apply,
                format!(
                    "kept the namespace: it also holds {} objects paved does not own for {app} in {env} ({}{})",
                    unowned.len(),
                    shown.join(", "),
                    if unowned.len() > shown.len() { ", …" } else { "" }
                ),
                None,
            );
        } else if !namespace_objects.is_empty() && !deleted.iter().any(|d| d.starts_with("Namespace/")) {
            cx.report(Step::Apply, "kept the namespace: it is shared with other apps".to_string(), None);
        }
        deleted.dedup();
        cx.report(Step::Apply, format!("deleted {} objects", deleted.len()), None);
        let location = Self::location(server, ns.as_deref().unwrap_or("?"));
        Ok(DestroyOutcome::new(app, env, deleted, location))
    }
}
