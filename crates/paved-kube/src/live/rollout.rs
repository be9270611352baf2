//! Rollout watching with the rules of `kubectl rollout status`.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use paved_core::{DeployContext, Step};
use tokio::time::Instant;

use super::retry::{self, RetryPolicy};

/// Where a Deployment's rollout stands, by the rules of `kubectl rollout status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Still rolling out.
    Progressing {
        /// What kubectl would print (`Waiting for rollout to finish: 2 of 3 updated replicas are available...`).
        message: String,
        /// `status.updatedReplicas`.
        updated: u64,
        /// `status.availableReplicas`.
        available: u64,
        /// `spec.replicas` (1 when unset).
        desired: u64,
    },
    /// Every replica runs the new template and is available.
    Complete {
        /// `spec.replicas` (1 when unset).
        desired: u64,
    },
    /// The Deployment's `Progressing` condition says `ProgressDeadlineExceeded`.
    Failed {
        /// The condition's message.
        message: String,
    },
}

/// The rollout state of a Deployment, exactly as `kubectl rollout status` decides it:
/// the controller must have observed the current generation; a `Progressing` condition with
/// reason `ProgressDeadlineExceeded` is a failure; then `updatedReplicas >= spec.replicas`,
/// `status.replicas <= updatedReplicas` (no old replicas left) and
/// `availableReplicas >= updatedReplicas`.
pub fn deployment_state(d: &Deployment) -> RolloutState {
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u64;
    let updated = status.updated_replicas.unwrap_or(0).max(0) as u64;
    let replicas = status.replicas.unwrap_or(0).max(0) as u64;
    let available = status.available_replicas.unwrap_or(0).max(0) as u64;
    let progressing = |message: String| RolloutState::Progressing { message, updated, available, desired };
    if generation > status.observed_generation.unwrap_or(0) {
        return progressing("Waiting for deployment spec update to be observed...".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        let seconds = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600);
        return RolloutState::Failed {
            message: format!(
                "deployment \"{name}\" made no progress for its progressDeadlineSeconds ({seconds}s): the Deployment controller reported ProgressDeadlineExceeded: {}",
                c.message.as_deref().unwrap_or("no message")
            ),
        };
    }
    if updated < desired {
        return progressing(format!(
            "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return progressing(format!(
            "Waiting for rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return progressing(format!(
            "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutState::Complete { desired }
}

/// Why a rollout did not complete.
#[derive(Debug)]
pub(crate) struct RolloutFailure {
    /// What happened (deadline exceeded, timed out).
    pub(crate) message: String,
    /// The last progress seen.
    pub(crate) last: Option<String>,
    /// The API server refused the watch (401 or 403): retrying cannot help, and nothing of the
    /// rollout can be seen.
    pub(crate) denied: Option<kube::Error>,
    /// The deadline passed before the rollout finished or failed.
    pub(crate) timed_out: bool,
}

/// The error of a watch the API server refused (401 Unauthorized, 403 Forbidden).
fn refused(e: watcher::Error) -> Option<kube::Error> {
    let refusal = |code| matches!(code, 401 | 403);
    match e {
        watcher::Error::InitialListFailed(k) | watcher::Error::WatchStartFailed(k) | watcher::Error::WatchFailed(k)
            if retry::code(&k).is_some_and(refusal) =>
        {
            Some(k)
        }
        watcher::Error::WatchError(s) if refusal(s.code) => Some(kube::Error::Api(s)),
        _ => None,
    }
}

/// Waits until the object `name` of `api` is ready by `rule` (a Deployment's rollout completes,
/// a Job completes, a claim is bound, …), fails, or `deadline` passes. `kind` names it in
/// messages (`deployment`). Driven by a kube-runtime watcher: a dropped watch is re-established
/// (resuming from the last resource version) and reported as progress.
pub(crate) async fn wait_for<K>(
    api: Api<K>,
    kind: &str,
    name: &str,
    rule: fn(&K) -> RolloutState,
    deadline: Instant,
    cx: &DeployContext,
) -> Result<(), RolloutFailure>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut last: Option<String> = None;
    let mut denied: Option<kube::Error> = None;
    let mut listed = false;
    let watch = async {
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(d) | watcher::Event::InitApply(d))) => {
                    listed = true;
                    match rule(&d) {
                        RolloutState::Complete { desired } => {
                            cx.report(
                                Step::Watch,
                                format!("{kind} {name}: {desired}/{desired} updated, {desired}/{desired} available"),
                                Some((desired, desired)),
                            );
                            return Ok(());
                        }
                        RolloutState::Failed { message } => return Err(message),
                        RolloutState::Progressing { message, updated, available, desired } => {
                            let line =
                                format!("{kind} {name}: {updated}/{desired} updated, {available}/{desired} available");
                            tracing::debug!(%message, "rollout progressing");
                            if last.as_deref() != Some(line.as_str()) {
                                cx.report(Step::Watch, line.clone(), Some((available.min(desired), desired)));
                            }
                            last = Some(line);
                        }
                    }
                }
                Ok(Some(watcher::Event::Delete(_))) => {
                    return Err(format!("{kind} {name} was deleted during the rollout"));
                }
                // A (re)list that did not find it: it is gone (as kube-runtime's `watch_object`
                // reads it), whether or not a delete event was seen.
                Ok(Some(watcher::Event::Init)) => listed = false,
                Ok(Some(watcher::Event::InitDone)) if !listed => {
                    return Err(format!("{kind} {name} was deleted during the rollout"));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("the watch of {kind} {name} ended")),
                Err(e) => {
                    let shown = e.to_string();
                    if let Some(refusal) = refused(e) {
                        // Forbidden stays forbidden: fail now, not at the deadline.
                        denied = Some(refusal);
                        return Err(format!("the API server refused to let paved watch {kind} {name}"));
                    }
                    // The watcher backs off and re-establishes the watch by itself.
                    cx.report(Step::Watch, format!("watch of {kind} {name} interrupted ({shown}); reconnecting"), None);
                }
            }
        }
    };
    match tokio::time::timeout_at(deadline, watch).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(RolloutFailure { message, last: last.clone(), denied, timed_out: false }),
        Err(_) => Err(RolloutFailure {
            message: format!("timed out waiting for the rollout of {kind} {name}"),
            last: last.clone(),
            denied: None,
            timed_out: true,
        }),
    }
}

/// The last reasons of the app's pods that are not ready: waiting reasons
/// (`ImagePullBackOff`, `CrashLoopBackOff`), last termination reasons, unschedulable pods and
/// failed probes (from Warning events). Best effort: errors give an empty list.
pub(crate) async fn pod_reasons(client: &Client, namespace: &str, selector: &str, policy: &RetryPolicy) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(selector);
    let Ok(list) = retry::retry(policy, || pods.list(&lp)).await else { return Vec::new() };
    let mut reasons: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !reasons.contains(&s) {
            reasons.push(s);
        }
    };
    let mut unready: BTreeSet<String> = BTreeSet::new();
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(status) = &pod.status else { continue };
        let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            continue;
        }
        unready.insert(name.clone());
        for c in status.conditions.iter().flatten() {
            if c.type_ == "PodScheduled" && c.status == "False" {
                push(format!(
                    "pod {name}: {}: {}",
                    c.reason.as_deref().unwrap_or("Unschedulable"),
                    c.message.as_deref().unwrap_or_default()
                ));
            }
        }
        let containers =
            status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
        for cs in containers {
            if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref())
                && let Some(reason) = w.reason.as_deref()
                && reason != "ContainerCreating"
                && reason != "PodInitializing"
            {
                let mut line = format!("pod {name}: container {}: {reason}", cs.name);
                if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
                    line.push_str(&format!(" ({m})"));
                }
                if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                    line.push_str(&format!(
                        "; last exit: {} (code {})",
                        t.reason.as_deref().unwrap_or("terminated"),
                        t.exit_code
                    ));
                }
                push(line);
            }
        }
    }
    if !unready.is_empty() {
        let events: Api<Event> = Api::namespaced(client.clone(), namespace);
        let lp = ListParams::default().fields("type=Warning");
        if let Ok(list) = retry::retry(policy, || events.list(&lp)).await {
            for e in list.items {
                let involved = e.involved_object.name.clone().unwrap_or_default();
                if e.involved_object.kind.as_deref() == Some("Pod") && unready.contains(&involved) {
                    let reason = e.reason.clone().unwrap_or_default();
                    if matches!(reason.as_str(), "Unhealthy" | "FailedScheduling" | "FailedMount" | "Failed") {
                        push(format!("pod {involved}: {reason}: {}", e.message.clone().unwrap_or_default()));
                    }
                }
            }
        }
    }
    reasons.truncate(8);
    reasons
}

/// The objects paved waits for after applying them, and how it tells they are ready: the
/// workloads by the rules of `kubectl rollout status`, the rest by Helm's `--wait` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// [`deployment_state`].
    Deployment,
    /// [`statefulset_state`].
    StatefulSet,
    /// [`daemonset_state`].
    DaemonSet,
    /// [`job_state`].
    Job,
    /// [`claim_state`].
    PersistentVolumeClaim,
    /// [`load_balancer_state`]: a Service of type `LoadBalancer`.
    LoadBalancer,
    /// [`crd_state`].
    CustomResourceDefinition,
}

impl Waited {
    /// What paved waits for in an object, if anything.
    pub(crate) fn of(m: &paved_core::Manifest) -> Option<Waited> {
        let (group, _) = super::apply::group_version(m.api_version());
        let load_balancer = m.value().pointer("/spec/type").and_then(serde_json::Value::as_str) == Some("LoadBalancer");
        Some(match (group, m.kind()) {
            ("apps", "Deployment") => Waited::Deployment,
            ("apps", "StatefulSet") => Waited::StatefulSet,
            ("apps", "DaemonSet") => Waited::DaemonSet,
            ("batch", "Job") => Waited::Job,
            ("", "PersistentVolumeClaim") => Waited::PersistentVolumeClaim,
            ("", "Service") if load_balancer => Waited::LoadBalancer,
            ("apiextensions.k8s.io", "CustomResourceDefinition") => Waited::CustomResourceDefinition,
            _ => return None,
        })
    }

    /// The word for it in messages.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Waited::Deployment => "deployment",
            Waited::StatefulSet => "statefulset",
            Waited::DaemonSet => "daemonset",
            Waited::Job => "job",
            Waited::PersistentVolumeClaim => "persistentvolumeclaim",
            Waited::LoadBalancer => "service",
            Waited::CustomResourceDefinition => "customresourcedefinition",
        }
    }

    /// Waits for the object `name` (in `namespace`, for the namespaced kinds).
    pub(crate) async fn wait(
        self,
        client: &Client,
        namespace: &str,
        name: &str,
        deadline: Instant,
        cx: &DeployContext,
    ) -> Result<(), RolloutFailure> {
        let kind = self.kind();
        let c = || client.clone();
        match self {
            Waited::Deployment => {
                wait_for(Api::namespaced(c(), namespace), kind, name, deployment_state, deadline, cx).await
            }
            Waited::StatefulSet => {
                wait_for(Api::namespaced(c(), namespace), kind, name, statefulset_state, deadline, cx).await
            }
            Waited::DaemonSet => {
                wait_for(Api::namespaced(c(), namespace), kind, name, daemonset_state, deadline, cx).await
            }
            Waited::Job => wait_for(Api::namespaced(c(), namespace), kind, name, job_state, deadline, cx).await,
            Waited::PersistentVolumeClaim => {
                wait_for(Api::namespaced(c(), namespace), kind, name, claim_state, deadline, cx).await
            }
            Waited::LoadBalancer => {
                wait_for(Api::namespaced(c(), namespace), kind, name, load_balancer_state, deadline, cx).await
            }
            Waited::CustomResourceDefinition => wait_for(Api::all(c()), kind, name, crd_state, deadline, cx).await,
        }
    }
}

/// Waits for every `(what, namespace, name)` at once against one deadline (objects without a
/// namespace of their own are in `namespace`); the first failure ends the wait and names its
/// object.
pub(crate) async fn wait_all(
    client: &Client,
    namespace: &str,
    objects: &[(Waited, Option<String>, String)],
    deadline: Instant,
    cx: &DeployContext,
) -> Result<(), (Waited, String, RolloutFailure)> {
    let waits = objects.iter().map(|(what, ns, name)| async move {
        let ns = ns.as_deref().unwrap_or(namespace);
        what.wait(client, ns, name, deadline, cx).await.map_err(|f| (*what, name.clone(), f))
    });
    futures::future::try_join_all(waits).await.map(drop)
}

/// Where a StatefulSet's rolling update stands, exactly as `kubectl rollout status` decides
/// it: the spec observed, every replica ready; then, with a rolling update (which the API
/// server defaults, partition 0), the pods from the partition up updated, else the current
/// revision equal to the update revision. `OnDelete` updates are not rolled out by the
/// controller: nothing to wait for.
pub fn statefulset_state(s: &k8s_openapi::api::apps::v1::StatefulSet) -> RolloutState {
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1).max(0) as u64;
    let ready = status.ready_replicas.unwrap_or(0).max(0) as u64;
    let updated = status.updated_replicas.unwrap_or(0).max(0) as u64;
    let progressing = |message: String| RolloutState::Progressing { message, updated, available: ready, desired };
    let strategy = spec.update_strategy.unwrap_or_default();
    if strategy.type_.as_deref() == Some("OnDelete") {
        return RolloutState::Complete { desired };
    }
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return progressing("Waiting for statefulset spec update to be observed...".into());
    }
    if ready < desired {
        return progressing(format!("Waiting for {} pods to be ready...", desired - ready));
    }
    if let Some(rolling) = strategy.rolling_update {
        if let Some(partition) = rolling.partition {
            let expected = desired.saturating_sub(partition.max(0) as u64);
            if updated < expected {
                return progressing(format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {expected} new pods have been updated..."
                ));
            }
        }
        return RolloutState::Complete { desired };
    }
    if status.update_revision != status.current_revision {
        return progressing(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {}...",
            status.update_revision.unwrap_or_default()
        ));
    }
    RolloutState::Complete { desired }
}

/// Where a DaemonSet's rollout stands, exactly as `kubectl rollout status` decides it: the
/// spec observed, every scheduled pod updated, then available. `OnDelete`: nothing to wait for.
pub fn daemonset_state(d: &k8s_openapi::api::apps::v1::DaemonSet) -> RolloutState {
    let status = d.status.clone().unwrap_or_default();
    let desired = status.desired_number_scheduled.max(0) as u64;
    let updated = status.updated_number_scheduled.unwrap_or(0).max(0) as u64;
    let available = status.number_available.unwrap_or(0).max(0) as u64;
    let progressing = |message: String| RolloutState::Progressing { message, updated, available, desired };
    let strategy = d.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.type_.as_deref());
    if strategy == Some("OnDelete") {
        return RolloutState::Complete { desired };
    }
    let name = d.metadata.name.as_deref().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return progressing("Waiting for daemon set spec update to be observed...".into());
    }
    if updated < desired {
        return progressing(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return progressing(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    RolloutState::Complete { desired }
}

/// A Job is ready when it completed (condition `Complete`) and failed when its `Failed`
/// condition is true (Helm's `--wait` rule).
pub fn job_state(j: &k8s_openapi::api::batch::v1::Job) -> RolloutState {
    let status = j.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let holds = |type_: &str| conditions.iter().find(|c| c.type_ == type_ && c.status == "True");
    let name = j.metadata.name.as_deref().unwrap_or_default();
    if let Some(failed) = holds("Failed") {
        let why = failed.message.clone().or_else(|| failed.reason.clone()).unwrap_or_else(|| "no message".into());
        return RolloutState::Failed { message: format!("job \"{name}\" failed: {why}") };
    }
    if holds("Complete").is_some() {
        return RolloutState::Complete { desired: 1 };
    }
    let done = status.succeeded.unwrap_or(0).max(0) as u64;
    let message = format!("Waiting for job \"{name}\" to complete...");
    RolloutState::Progressing { message, updated: done, available: done, desired: 1 }
}

/// A claim is ready when it is `Bound`.
pub fn claim_state(c: &k8s_openapi::api::core::v1::PersistentVolumeClaim) -> RolloutState {
    let phase = c.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
    if phase == "Bound" {
        return RolloutState::Complete { desired: 1 };
    }
    let message = format!("Waiting for the claim to be bound ({phase})...");
    RolloutState::Progressing { message, updated: 0, available: 0, desired: 1 }
}

/// A `LoadBalancer` Service is ready when it has an address (or external IPs), as Helm's
/// `--wait` decides.
pub fn load_balancer_state(s: &k8s_openapi::api::core::v1::Service) -> RolloutState {
    let external = s.spec.as_ref().and_then(|s| s.external_ips.as_ref()).is_some_and(|ips| !ips.is_empty());
    let ingress = s
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_some_and(|i| !i.is_empty());
    if external || ingress {
        return RolloutState::Complete { desired: 1 };
    }
    let message = "Waiting for the load balancer's address...".to_string();
    RolloutState::Progressing { message, updated: 0, available: 0, desired: 1 }
}

/// A CustomResourceDefinition is ready when it is `Established` (its kind is served); its
/// names being refused (`NamesAccepted` false) is a failure.
pub fn crd_state(
    c: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> RolloutState {
    let conditions = c.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    if let Some(refused) = conditions.iter().find(|c| c.type_ == "NamesAccepted" && c.status == "False") {
        return RolloutState::Failed {
            message: format!("its names were not accepted: {}", refused.message.clone().unwrap_or_default()),
        };
    }
    if conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
        return RolloutState::Complete { desired: 1 };
    }
    let message = "Waiting for the definition to be established...".to_string();
    RolloutState::Progressing { message, updated: 0, available: 0, desired: 1 }
}

/// A StatefulSet whose rolling update is stuck on a new revision: `OrderedReady`, rolling
/// update without a partition, `updateRevision` not the current one yet.
#[derive(Debug, Clone)]
pub(crate) struct StuckStatefulSet {
    namespace: String,
    name: String,
    selector: String,
    revision: String,
    generation: i64,
}

/// The StatefulSets of `manifests` whose rolling update is stuck on a new revision (best
/// effort: one that cannot be read is left out). `OnDelete` updates, partitions and `Parallel`
/// pod management never count: their revisions differ by design, and their controllers do not
/// wait for a pod.
pub(crate) async fn stuck_statefulsets(
    client: &Client,
    manifests: &paved_core::Manifests,
    policy: &RetryPolicy,
) -> Vec<StuckStatefulSet> {
    let mut out = Vec::new();
    for m in manifests.iter().filter(|m| Waited::of(m) == Some(Waited::StatefulSet)) {
        let Some(ns) = m.namespace().map(str::to_string) else { continue };
        let api: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), &ns);
        let Ok(Some(live)) = retry::retry(policy, || api.get_opt(m.name())).await else { continue };
        let (Some(spec), Some(status)) = (live.spec, live.status) else { continue };
        let strategy = spec.update_strategy.unwrap_or_default();
        let rolling = strategy.type_.as_deref().is_none_or(|t| t == "RollingUpdate");
        let partitioned = strategy.rolling_update.and_then(|r| r.partition).is_some_and(|p| p > 0);
        let ordered = spec.pod_management_policy.as_deref().is_none_or(|p| p == "OrderedReady");
        let (Some(update), Some(selector)) = (status.update_revision, super::apply::match_labels_selector(m)) else {
            continue;
        };
        if rolling && !partitioned && ordered && status.current_revision.as_ref() != Some(&update) {
            let generation = live.metadata.generation.unwrap_or(0);
            out.push(StuckStatefulSet {
                namespace: ns,
                name: m.name().to_string(),
                selector,
                revision: update,
                generation,
            });
        }
    }
    out
}

/// How long the forced rollback waits for a StatefulSet's controller to see its new template.
const OBSERVED: std::time::Duration = std::time::Duration::from_secs(30);

/// Kubernetes' forced rollback of a StatefulSet: once a new template replaced the one it is
/// stuck on (its generation grew) and the controller has seen it (`observedGeneration`, and an
/// `updateRevision` that is no longer the stuck one), the pods of the stuck revision that are
/// not ready are deleted; with `OrderedReady` the controller would otherwise wait for them to
/// become ready, for ever. A StatefulSet whose template did not change is left alone. Returns
/// what it deleted (`statefulset/pod`) and what it could not do (warnings).
pub(crate) async fn delete_unready_pods(
    client: &Client,
    stuck: &[StuckStatefulSet],
    policy: &RetryPolicy,
) -> (Vec<String>, Vec<String>) {
    use kube::api::{DeleteParams, Preconditions};
    let (mut deleted, mut warnings) = (Vec::new(), Vec::new());
    for s in stuck {
        let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), &s.namespace);
        let deadline = Instant::now() + OBSERVED;
        let replaced = loop {
            let Ok(Some(live)) = retry::retry(policy, || sets.get_opt(&s.name)).await else { break false };
            let generation = live.metadata.generation.unwrap_or(0);
            if generation <= s.generation {
                break false;
            }
            let status = live.status.unwrap_or_default();
            let seen = status.observed_generation.unwrap_or(0) >= generation;
            if seen && status.update_revision.as_deref() != Some(s.revision.as_str()) {
                break true;
            }
            if Instant::now() >= deadline {
                warnings.push(format!(
                    "statefulset {}: its controller did not take the new template within {}s; its pods of revision {} were left",
                    s.name,
                    OBSERVED.as_secs(),
                    s.revision
                ));
                break false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        if !replaced {
            continue;
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), &s.namespace);
        let lp = ListParams::default().labels(&format!("{},controller-revision-hash={}", s.selector, s.revision));
        let list = match retry::retry(policy, || pods.list(&lp)).await {
            Ok(list) => list,
            Err(e) => {
                warnings.push(format!("statefulset {}: cannot list its pods of revision {}: {e}", s.name, s.revision));
                continue;
            }
        };
        for pod in list.items {
            let ready = pod
                .status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let (Some(name), false) = (pod.metadata.name.clone(), ready) else { continue };
            let dp = DeleteParams {
                preconditions: pod
                    .metadata
                    .uid
                    .clone()
                    .map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
                ..DeleteParams::default()
            };
            match retry::retry(policy, || pods.delete(&name, &dp)).await {
                Ok(_) => deleted.push(format!("{}/{name}", s.name)),
                Err(e) => warnings.push(format!("statefulset {}: cannot delete pod {name}: {e}", s.name)),
            }
        }
    }
    (deleted, warnings)
}

/// Reads one Deployment's current rollout state (for `status`).
pub(crate) async fn current_state(
    client: &Client,
    namespace: &str,
    name: &str,
    policy: &RetryPolicy,
) -> Result<Option<Deployment>, kube::Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    retry::retry(policy, || api.get_opt(name)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    fn of<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn done(s: &RolloutState) -> bool {
        matches!(s, RolloutState::Complete { .. })
    }

    #[test]
    fn statefulset_rules_are_kubectls() {
        let sts = |generation: i64, spec: serde_json::Value, status: serde_json::Value| {
            let mut spec = spec;
            spec["selector"] = json!({});
            spec["template"] = json!({});
            spec["serviceName"] = json!("db");
            statefulset_state(&of(
                json!({"metadata": {"name": "db", "generation": generation}, "spec": spec, "status": status}),
            ))
        };
        let three = json!({"replicas": 3});
        let s = sts(2, three.clone(), json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3}));
        assert!(matches!(&s, RolloutState::Progressing { message, .. } if message.contains("observed")), "{s:?}");
        let s = sts(2, three.clone(), json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 1}));
        assert!(
            matches!(&s, RolloutState::Progressing { message, .. } if message == "Waiting for 2 pods to be ready..."),
            "{s:?}"
        );
        let s = sts(
            2,
            three.clone(),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1,
            "currentRevision": "db-1", "updateRevision": "db-2"}),
        );
        assert!(matches!(&s, RolloutState::Progressing { message, .. } if message.contains("revision db-2")), "{s:?}");
        assert!(done(&sts(
            2,
            three.clone(),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
            "updatedReplicas": 3, "currentRevision": "db-2", "updateRevision": "db-2"})
        )));
        // A partition: the pods at or above it are updated, the rest stay.
        let partitioned =
            json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}});
        let s = sts(
            2,
            partitioned.clone(),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 0}),
        );
        assert!(
            matches!(&s, RolloutState::Progressing { message, .. } if message.contains("0 out of 1 new pods")),
            "{s:?}"
        );
        assert!(done(&sts(
            2,
            partitioned,
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1})
        )));
        // The rolling update the API server defaults (partition 0): the updated pods count,
        // not the revisions (as in kubectl).
        let defaulted =
            json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}});
        assert!(done(&sts(
            2,
            defaulted.clone(),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
            "updatedReplicas": 3, "currentRevision": "db-1", "updateRevision": "db-2"})
        )));
        let s = sts(
            2,
            defaulted,
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2}),
        );
        assert!(
            matches!(&s, RolloutState::Progressing { message, .. } if message.contains("2 out of 3 new pods")),
            "{s:?}"
        );
        // OnDelete: the controller does not roll it out.
        assert!(done(&sts(2, json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}), json!({}))));
    }

    #[test]
    fn daemonset_job_claim_service_and_crd_rules() {
        let ds = |status: serde_json::Value| {
            daemonset_state(&of(json!({"metadata": {"name": "agent", "generation": 2},
                "spec": {"selector": {}, "template": {}}, "status": status})))
        };
        let base = json!({"observedGeneration": 2, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 0});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let s = ds(with(json!({"updatedNumberScheduled": 1})));
        assert!(
            matches!(&s, RolloutState::Progressing { message, .. } if message.contains("1 out of 2 new pods")),
            "{s:?}"
        );
        let s = ds(with(json!({"updatedNumberScheduled": 2, "numberAvailable": 1})));
        assert!(
            matches!(&s, RolloutState::Progressing { message, .. } if message.contains("1 of 2 updated pods are available")),
            "{s:?}"
        );
        assert!(done(&ds(with(json!({"updatedNumberScheduled": 2, "numberAvailable": 2})))));

        let job =
            |status: serde_json::Value| job_state(&of(json!({"metadata": {"name": "migrate"}, "status": status})));
        assert!(matches!(job(json!({"active": 1})), RolloutState::Progressing { .. }));
        assert!(done(&job(json!({"conditions": [{"type": "Complete", "status": "True"}]}))));
        let s = job(json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}));
        assert!(
            matches!(&s, RolloutState::Failed { message } if message == "job \"migrate\" failed: BackoffLimitExceeded"),
            "{s:?}"
        );

        assert!(done(&claim_state(&of(json!({"status": {"phase": "Bound"}})))));
        assert!(matches!(claim_state(&of(json!({}))), RolloutState::Progressing { .. }));

        assert!(!done(&load_balancer_state(&of(
            json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}})
        ))));
        let lb = json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}});
        assert!(done(&load_balancer_state(&of(lb))));
        assert!(done(&load_balancer_state(&of(json!({"spec": {"externalIPs": ["192.0.2.1"]}})))));

        let crd = |conditions: serde_json::Value| {
            crd_state(&of(json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget"}, "scope": "Namespaced", "versions": []},
                "status": {"conditions": conditions}})))
        };
        assert!(matches!(crd(json!([])), RolloutState::Progressing { .. }));
        assert!(done(&crd(json!([{"type": "Established", "status": "True"}]))));
        assert!(matches!(
            crd(json!([{"type": "NamesAccepted", "status": "False", "message": "taken"}])),
            RolloutState::Failed { .. }
        ));
    }

    #[test]
    fn kubectl_rules() {
        let base = |generation: i64, status: serde_json::Value| {
            d(
                json!({"metadata": {"name": "a", "generation": generation}, "spec": {"replicas": 3, "selector": {}, "template": {}}, "status": status}),
            )
        };
        // Not yet observed: progressing even though the counts look complete.
        let s = deployment_state(&base(
            2,
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        ));
        assert!(matches!(s, RolloutState::Progressing { ref message, .. } if message.contains("observed")), "{s:?}");
        let s = deployment_state(&base(
            2,
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2, "availableReplicas": 3}),
        ));
        assert!(matches!(s, RolloutState::Progressing { updated: 2, desired: 3, .. }), "{s:?}");
        let s = deployment_state(&base(
            2,
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
        ));
        assert!(
            matches!(s, RolloutState::Progressing { ref message, .. } if message.contains("1 old replicas")),
            "{s:?}"
        );
        let s = deployment_state(&base(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
        ));
        assert!(
            matches!(s, RolloutState::Progressing { ref message, .. } if message.contains("2 of 3 updated")),
            "{s:?}"
        );
        let s = deployment_state(&base(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        ));
        assert_eq!(s, RolloutState::Complete { desired: 3 });
        let s = deployment_state(&base(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"a-1\" has timed out progressing."}]}),
        ));
        assert!(
            matches!(s, RolloutState::Failed { ref message } if message.contains("ProgressDeadlineExceeded")),
            "{s:?}"
        );
    }
}
