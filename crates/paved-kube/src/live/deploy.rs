//! The deploy state machine: apply, record the revision as pending, watch the rollout, then
//! prune and record it, or mark it failed and restore the previous revision. Rollbacks run the
//! same machine with stored objects.

use std::collections::BTreeSet;
use std::time::Duration;

use paved_core::bookkeeping;
use paved_core::{
    DeployContext, DeployOutcome, Error, Manifests, Release, ReleaseKey, Result, Revision, RevisionState, SecretValues,
    Step,
};
use tokio::time::Instant;

use super::KubeTarget;
use super::apply;
use super::connection::Connected;
use super::discovery::{Resolved, Resolver};
use super::history::{self, Stored};
use super::recovery::Recovery;
use super::{MANAGER, TARGET_NAME, handover, prune, retry, rollout};

/// Why a revision failed.
pub(super) enum Failure {
    /// Applying an object failed.
    Apply(Error),
    /// The rollout failed or timed out.
    Rollout(String),
    /// The API server refused to let paved watch the rollout (401/403): the objects are
    /// applied, and nothing says whether they run.
    Unwatchable(Error),
    /// The deploy future was dropped.
    Cancelled,
}

/// What one deploy (or rollback) learns while it applies: where objects go (discovery), and
/// which objects it created (a failed first deploy removes only those).
pub(super) struct Applying {
    /// The release's app and environment.
    owner: (String, String),
    resolver: Resolver,
    created: super::recovery::Created,
}

impl Applying {
    /// Before applying `manifests` of `app` in `env` on `conn`'s cluster.
    pub(super) fn new(conn: &Connected, manifests: &Manifests, app: &str, env: &str) -> Self {
        let mut resolver = Resolver::new(&conn.client, &conn.description);
        resolver.expect_defined(manifests);
        Applying { owner: (app.to_string(), env.to_string()), resolver, created: Default::default() }
    }
}

/// How long a release's CustomResourceDefinitions may take to be established.
const CRD_ESTABLISHED: Duration = Duration::from_secs(60);

/// Why [`KubeTarget::wait`] did not see a rollout finish.
pub(super) enum Unfinished {
    /// It failed or timed out (the message says which, with what was last seen).
    Rollout(String),
    /// The API server refused the watch (401/403).
    Denied(Error),
}

impl KubeTarget {
    /// A deploy: re-apply unchanged objects, or roll out a new revision.
    pub(super) async fn deploy_release(&self, release: &Release, cx: &DeployContext) -> Result<DeployOutcome> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let a = &release.app;
        let (app, env, ns) = (a.app.as_str(), a.environment.name.as_str(), a.namespace.as_str());
        let _lock = self.lock(app, env).await;
        let history = history::load(&conn.client, server, Some(ns), app, env, &self.opts.retry).await?;
        self.check_pending(conn, &history).await?;
        if let Some(cur) = bookkeeping::unchanged(&history, &release.digest) {
            cx.report(
                Step::Apply,
                format!("revision {} has the same objects: re-applying them", cur.record.revision),
                None,
            );
            let mut applying = Applying::new(conn, &release.manifests, app, env);
            let (manifests, values) = (&release.manifests, &release.secret_values);
            self.apply_objects(conn, manifests, true, values, &mut applying, cx).await?;
            self.apply_objects(conn, manifests, false, values, &mut applying, cx).await?;
            if let Err(unfinished) = self.wait(conn, ns, &release.manifests, cx).await {
                let message = match unfinished {
                    Unfinished::Denied(e) => return Err(e),
                    Unfinished::Rollout(message) => message,
                };
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
        let mut record = bookkeeping::new_record(&history, release);
        record.state = Some(RevisionState::Pending);
        let new = Stored { record, manifests: release.manifests.clone(), namespace: ns.to_string() };
        let current = bookkeeping::current(&history).cloned();
        self.run(conn, new, &history, current, &release.secret_values, cx).await
    }

    /// A rollback: restore the objects of a revision that rolled out as a new revision.
    pub(super) async fn rollback_release(
        &self,
        key: &ReleaseKey,
        to: Option<Revision>,
        actor: &str,
        cx: &DeployContext,
    ) -> Result<DeployOutcome> {
        let conn = self.connected().await?;
        let _lock = self.lock(key.app.as_str(), &key.environment).await;
        let (_, history) = self.find(conn, key.app.as_str(), &key.environment).await?;
        self.check_pending(conn, &history).await?;
        let plan = bookkeeping::plan_rollback(key, &history, to, actor, Some(&conn.description))?;
        let mut record = plan.record;
        record.state = Some(RevisionState::Pending);
        let new = Stored { record, manifests: plan.target.manifests.clone(), namespace: plan.target.namespace.clone() };
        let current = plan.current.clone();
        self.run(conn, new, &history, Some(current), &SecretValues::default(), cx).await
    }

    /// Applies objects in dependency order; `namespaces`: only Namespaces, else all but them.
    /// Applies the objects (the Namespaces, or everything else). A Secret whose values are
    /// redacted placeholders (`sync` secret mode) is applied with `values` put in; without them
    /// (a rollback re-applying stored objects) it is left as it is in the cluster. A Deployment's
    /// replicas pass to or from its autoscaler first ([`handover`]).
    async fn apply_objects(
        &self,
        conn: &Connected,
        manifests: &Manifests,
        namespaces: bool,
        values: &SecretValues,
        applying: &mut Applying,
        cx: &DeployContext,
    ) -> Result<usize> {
        let ordered = apply::in_apply_order(manifests.objects());
        let chosen = |crds: bool| {
            ordered.iter().copied().filter(move |m| {
                (m.kind() == "Namespace") == namespaces && (m.kind() == "CustomResourceDefinition") == crds
            })
        };
        // CustomResourceDefinitions first, and established, before any object can be of
        // their kinds; discovery is asked again afterwards.
        let mut applied = 0;
        let mut crds = Vec::new();
        for m in chosen(true) {
            applied += self.apply_object(conn, manifests, m, values, applying, cx).await?;
            crds.push((rollout::Waited::CustomResourceDefinition, None, m.name().to_string()));
        }
        if !crds.is_empty() {
            let deadline = Instant::now() + CRD_ESTABLISHED;
            if let Err((_, name, failure)) = rollout::wait_all(&conn.client, "", &crds, deadline, cx).await {
                return Err(Error::backend(
                    TARGET_NAME,
                    format!("the CustomResourceDefinition {name} was not established: {}", failure.message),
                    Some(format!("check it: kubectl get customresourcedefinition {name} -o yaml")),
                ));
            }
            applying.resolver.forget();
        }
        // A StatefulSet stuck on a revision that failed (a rollback, or a deploy after
        // `--no-rollback`): its pods that never got ready go once its template is replaced.
        let stuck = if namespaces {
            Vec::new()
        } else {
            rollout::stuck_statefulsets(&conn.client, manifests, &self.opts.retry).await
        };
        for m in chosen(false) {
            applied += self.apply_object(conn, manifests, m, values, applying, cx).await?;
        }
        self.force_statefulset_rollback(conn, &stuck, cx).await;
        Ok(applied)
    }

    /// Deletes the pods that never got ready of StatefulSets `stuck` on a revision their new
    /// template replaces ([`rollout::delete_unready_pods`]), and says so.
    async fn force_statefulset_rollback(
        &self,
        conn: &Connected,
        stuck: &[rollout::StuckStatefulSet],
        cx: &DeployContext,
    ) {
        let (deleted, warnings) = rollout::delete_unready_pods(&conn.client, stuck, &self.opts.retry).await;
        for warning in warnings {
            tracing::warn!("{warning}");
            cx.report(Step::Apply, format!("⚠️  {warning}"), None);
        }
        if !deleted.is_empty() {
            let line = format!(
                "deleted the pods of a failed revision that never got ready: {} (a StatefulSet's forced rollback)",
                deleted.join(", ")
            );
            cx.report(Step::Apply, line, None);
        }
    }

    /// Refuses, before anything is applied, an object the cluster serves cluster-scoped that
    /// containment took for namespaced ([`apply::cluster_scoped_by_discovery`]). The scope of
    /// a kind the release's own CRDs define comes from its CRD (it is not served yet).
    async fn preflight(&self, conn: &Connected, manifests: &Manifests, applying: &mut Applying) -> Result<()> {
        let defined: Vec<(&str, &str, bool)> = super::discovery::defined_kinds(manifests).collect();
        for m in manifests.iter() {
            let (group, _) = apply::group_version(m.api_version());
            if let Some((_, _, cluster)) = defined.iter().find(|(g, k, _)| *g == group && *k == m.kind()) {
                if *cluster && let Some(refused) = apply::cluster_scoped_by_discovery(m, &conn.description) {
                    return Err(refused);
                }
                continue;
            }
            if let Resolved::Target(t) = applying.resolver.resolve(m, &self.opts.retry).await?
                && t.namespace.is_none()
                && let Some(refused) = apply::cluster_scoped_by_discovery(m, &conn.description)
            {
                return Err(refused);
            }
        }
        Ok(())
    }

    /// Applies one object of `manifests` (see [`KubeTarget::apply_objects`]): 1 when applied,
    /// 0 when skipped.
    #[allow(clippy::too_many_arguments)]
    async fn apply_object(
        &self,
        conn: &Connected,
        manifests: &Manifests,
        m: &paved_core::Manifest,
        values: &SecretValues,
        applying: &mut Applying,
        cx: &DeployContext,
    ) -> Result<usize> {
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
                        format!("kept {} as it is (its values are read from the secret store at deploy time)", m.key()),
                        None,
                    );
                    return Ok(0);
                }
            }
        } else {
            m
        };
        let target = match applying.resolver.resolve(m, &self.opts.retry).await? {
            Resolved::Target(t) => t,
            Resolved::NotServed(why) => {
                let warning = apply::not_served(m, &why, &conn.description, self.opts.missing_kinds)?;
                tracing::warn!("{warning}");
                cx.report(Step::Apply, format!("⚠️  {warning}"), None);
                return Ok(0);
            }
        };
        if target.namespace.is_none()
            && let Some(refused) = apply::cluster_scoped_by_discovery(m, &conn.description)
        {
            return Err(refused);
        }
        let (app, env) = (applying.owner.0.as_str(), applying.owner.1.as_str());
        let prepared =
            handover::prepare(&conn.client, &conn.description, manifests, m, app, env, &self.opts.retry).await?;
        for note in &prepared.notes {
            cx.report(Step::Apply, note.clone(), None);
        }
        let m = prepared.payload.as_ref().unwrap_or(m);
        let force = apply::Force { all: self.opts.force_conflicts, replicas: prepared.take_replicas };
        if apply::apply_one(&conn.client, &conn.description, m, &target, force, &self.opts.retry).await? {
            applying.created.lock().expect("not poisoned").insert(prune::identity(m));
        }
        Ok(1)
    }

    /// Waits for what `manifests` roll out: Deployments, StatefulSets and DaemonSets by the rules
    /// of `kubectl rollout status`, Jobs to complete, claims to be bound, `LoadBalancer` Services
    /// to get an address and CRDs to be established (Helm's `--wait` checks), all at once.
    async fn wait(
        &self,
        conn: &Connected,
        namespace: &str,
        manifests: &Manifests,
        cx: &DeployContext,
    ) -> Result<(), Unfinished> {
        let waited: Vec<(rollout::Waited, Option<String>, String)> = manifests
            .iter()
            .filter_map(|m| {
                let what = rollout::Waited::of(m)?;
                Some((what, m.namespace().map(str::to_string), m.name().to_string()))
            })
            .collect();
        if waited.is_empty() {
            return Ok(());
        }
        let (timeout, progress_deadline) = super::target::rollout_timeout(self.opts.timeout, manifests);
        if timeout < progress_deadline {
            cx.report(
                Step::Watch,
                format!(
                    "⚠️  the `timeout` ({}) is shorter than the Deployments' progressDeadlineSeconds ({}s): a slow rollout is reported as timed out, not as ProgressDeadlineExceeded",
                    human(timeout),
                    progress_deadline.as_secs()
                ),
                None,
            );
        }
        let deadline = Instant::now() + timeout;
        match rollout::wait_all(&conn.client, namespace, &waited, deadline, cx).await {
            Ok(()) => Ok(()),
            Err((what, name, failure)) => {
                if let Some(refusal) = failure.denied {
                    let doing = format!("watching the rollout of {} {name} in {namespace}", what.kind());
                    return Err(Unfinished::Denied(retry::to_error(&conn.description, &doing, refusal)));
                }
                let selector = manifests
                    .iter()
                    .find(|m| rollout::Waited::of(m) == Some(what) && m.name() == name)
                    .and_then(apply::match_labels_selector);
                let reasons = match selector {
                    Some(s) => rollout::pod_reasons(&conn.client, namespace, &s, &self.opts.retry).await,
                    None => Vec::new(),
                };
                let mut message = failure.message;
                if failure.timed_out {
                    // Which limit fired: paved's timeout, before or after the controller's.
                    message.push_str(&if self.opts.timeout.is_some() {
                        format!(" after {}, the `timeout`", human(timeout))
                    } else if what != rollout::Waited::Deployment {
                        format!(" after {}", human(timeout))
                    } else {
                        format!(
                            " after {}, a minute past its progressDeadlineSeconds ({}s), without the Deployment controller reporting ProgressDeadlineExceeded",
                            human(timeout),
                            progress_deadline.as_secs()
                        )
                    });
                }
                if let Some(last) = failure.last {
                    message.push_str(&format!(" (last seen: {last})"));
                }
                if !reasons.is_empty() {
                    message.push_str(&format!("; {}", reasons.join("; ")));
                }
                Err(Unfinished::Rollout(message))
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
        let mut applying = Applying::new(conn, &new.manifests, &app, &env);
        self.preflight(conn, &new.manifests, &mut applying).await?;
        let namespaces = self.apply_objects(conn, &new.manifests, true, values, &mut applying, cx).await?;
        match history::create(&conn.client, server, &new, &self.opts.retry).await {
            Ok(()) => {}
            Err(history::CreateError::Exists) => {
                return Err(Error::backend(
                    TARGET_NAME,
                    format!("another deploy of {app} in {env} is under way: revision {rev} was recorded meanwhile"),
                    Some(format!("wait for it (`Platform::status` of {app} in {env}) and deploy again")),
                ));
            }
            Err(history::CreateError::Other(e)) => return Err(e),
        }
        let guard = Recovery {
            target: self.clone(),
            conn: conn.clone(),
            new: new.clone(),
            previous: previous.clone(),
            created: applying.created.clone(),
            armed: true,
        };
        cx.report(Step::Apply, format!("recorded revision {rev} as pending in namespace {ns}"), None);
        let applied = match self.apply_objects(conn, &new.manifests, false, values, &mut applying, cx).await {
            Ok(n) => n,
            Err(e) => {
                let failure = Failure::Apply(e);
                let created = applying.created.lock().expect("not poisoned").clone();
                return Err(self
                    .fail(conn, &new, history, previous.as_ref(), failure, guard, Some(&created), cx)
                    .await);
            }
        };
        cx.report(
            Step::Apply,
            format!("applied {} objects (server-side apply, field manager {MANAGER})", applied + namespaces),
            None,
        );
        if let Err(unfinished) = self.wait(conn, &ns, &new.manifests, cx).await {
            let failure = match unfinished {
                Unfinished::Rollout(message) => Failure::Rollout(message),
                Unfinished::Denied(e) => Failure::Unwatchable(e),
            };
            let created = applying.created.lock().expect("not poisoned").clone();
            return Err(self.fail(conn, &new, history, previous.as_ref(), failure, guard, Some(&created), cx).await);
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
                    "the new release is running; `Platform::status` shows it, and the next deploy records it again"
                        .into(),
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
        let mut resolver = Resolver::new(&conn.client, server);
        let all: Vec<&paved_core::Manifest> = history.iter().flat_map(|s| s.manifests.iter()).collect();
        let pruned = match resolver.targets(&all, &self.opts.retry).await {
            Ok(candidates) => prune::prune(&conn.client, server, candidates, &keep, app, env, &self.opts.retry).await,
            Err(e) => Err(e),
        };
        match pruned {
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
    pub(super) async fn fail(
        &self,
        conn: &Connected,
        new: &Stored,
        history: &[Stored],
        previous: Option<&Stored>,
        failure: Failure,
        mut guard: Recovery,
        created: Option<&BTreeSet<prune::Identity>>,
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
            Failure::Unwatchable(e) => {
                // No rollback: it could not be watched either, and the objects may well run.
                let hint = e.hint().map(str::to_string);
                let what = format!(
                    "revision {} of {} in {} is applied, but its rollout cannot be verified: {e}",
                    r.revision, r.app, r.environment
                );
                cx.report(Step::Watch, format!("❌ {what}"), None);
                if let Err(e) = self.trim(conn, history.iter().chain([new]).collect()).await {
                    tracing::warn!(error = %e, "could not trim the release history");
                }
                return Error::Rollout {
                    target: TARGET_NAME.into(),
                    message: format!(
                        "{what}; revision {} is marked failed and left in place (a rollback could not be watched either)",
                        r.revision
                    ),
                    hint,
                    restored: None,
                };
            }
        };
        cx.report(Step::Watch, format!("❌ {what}"), None);
        let Some(previous) = previous.filter(|_| self.opts.auto_rollback) else {
            // The failed revision stays recorded; the history stays bounded.
            if let Err(e) = self.trim(conn, history.iter().chain([new]).collect()).await {
                tracing::warn!(error = %e, "could not trim the release history");
            }
            let why = if !self.opts.auto_rollback {
                "automatic rollback is off (`auto_rollback` false): the failed objects stay in place".to_string()
            } else {
                // As `helm install --atomic`: a release that never succeeded leaves nothing
                // running. The namespace (holding the failed record) stays, and so do the
                // objects that existed before (adopted, not created) and CRDs (deleting one
                // deletes every object of its kind, everywhere).
                let objects: Vec<&paved_core::Manifest> = new
                    .manifests
                    .iter()
                    .filter(|m| !matches!(m.kind(), "Namespace" | "CustomResourceDefinition"))
                    .filter(|m| created.is_none_or(|c| c.contains(&prune::identity(m))))
                    .collect();
                let mut resolver = Resolver::new(&conn.client, server);
                let keep = BTreeSet::new();
                let removed = match resolver.targets(&objects, &self.opts.retry).await {
                    Ok(candidates) => {
                        let (app, env) = (&r.app, &r.environment);
                        prune::prune(&conn.client, server, candidates, &keep, app, env, &self.opts.retry).await
                    }
                    Err(e) => Err(e),
                };
                match removed {
                    Ok(removed) => {
                        let line = format!(
                            "removed the objects of revision {} ({}): no revision of {} in {} ever succeeded",
                            r.revision,
                            if removed.is_empty() { "none were created".to_string() } else { removed.join(", ") },
                            r.app,
                            r.environment
                        );
                        cx.report(Step::Apply, line, None);
                        "no revision ever succeeded, so its objects were removed (the namespace and the failed record stay; `auto_rollback` false keeps them)".to_string()
                    }
                    Err(e) => format!("no revision ever succeeded, and removing its objects failed: {e}"),
                }
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
                        "fix the cause, then deploy again or roll back (`Platform::rollback` of {} in {})",
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
        let mut record =
            previous.record.restored_as(failed.record.revision + 1, &failed.record.deployed_by, bookkeeping::now());
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
        let (app, env) = (restore.record.app.as_str(), restore.record.environment.as_str());
        let mut applying = Applying::new(conn, &restore.manifests, app, env);
        let applied = match self.apply_objects(conn, &restore.manifests, true, &none, &mut applying, cx).await {
            Ok(_) => self.apply_objects(conn, &restore.manifests, false, &none, &mut applying, cx).await,
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            let _ = history::set_state(&conn.client, server, &restore, RevisionState::Failed, &self.opts.retry).await;
            return Err(e);
        }
        if let Err(unfinished) = self.wait(conn, &restore.namespace, &restore.manifests, cx).await {
            let _ = history::set_state(&conn.client, server, &restore, RevisionState::Failed, &self.opts.retry).await;
            return Err(match unfinished {
                Unfinished::Denied(e) => e,
                Unfinished::Rollout(message) => {
                    Error::backend(TARGET_NAME, format!("the restored revision did not roll out: {message}"), None)
                }
            });
        }
        // Prune only what the failed revision added; then keep the history bounded.
        self.finish(conn, &restore, &[previous.clone(), failed.clone()], false, cx).await?;
        self.trim(conn, history.iter().chain([failed, &restore]).collect()).await?;
        Ok(restore.record.revision)
    }
}

/// A duration as `--timeout` takes it: `90s`, `5m`, `11m`, `1h30m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}
