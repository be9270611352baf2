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

/// Waits until the Deployment `name` completes its rollout, fails, or `deadline` passes.
/// Driven by a kube-runtime watcher: a dropped watch is re-established (resuming from the last
/// resource version) and reported as progress.
pub(crate) async fn wait_for_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: Instant,
    cx: &DeployContext,
) -> Result<(), RolloutFailure> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut last: Option<String> = None;
    let mut denied: Option<kube::Error> = None;
    let watch = async {
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(d) | watcher::Event::InitApply(d))) => match deployment_state(&d) {
                    RolloutState::Complete { desired } => {
                        cx.report(
                            Step::Watch,
                            format!("deployment {name}: {desired}/{desired} updated, {desired}/{desired} available"),
                            Some((desired, desired)),
                        );
                        return Ok(());
                    }
                    RolloutState::Failed { message } => return Err(message),
                    RolloutState::Progressing { message, updated, available, desired } => {
                        let line =
                            format!("deployment {name}: {updated}/{desired} updated, {available}/{desired} available");
                        tracing::debug!(%message, "rollout progressing");
                        if last.as_deref() != Some(line.as_str()) {
                            cx.report(Step::Watch, line.clone(), Some((available.min(desired), desired)));
                        }
                        last = Some(line);
                    }
                },
                Ok(Some(watcher::Event::Delete(_))) => {
                    return Err(format!("deployment {name} was deleted during the rollout"));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("the watch of deployment {name} ended")),
                Err(e) => {
                    let shown = e.to_string();
                    if let Some(refusal) = refused(e) {
                        // Forbidden stays forbidden: fail now, not at the deadline.
                        denied = Some(refusal);
                        return Err(format!("the API server refused to let paved watch deployment {name}"));
                    }
                    // The watcher backs off and re-establishes the watch by itself.
                    cx.report(
                        Step::Watch,
                        format!("watch of deployment {name} interrupted ({shown}); reconnecting"),
                        None,
                    );
                }
            }
        }
    };
    match tokio::time::timeout_at(deadline, watch).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(RolloutFailure { message, last: last.clone(), denied, timed_out: false }),
        Err(_) => Err(RolloutFailure {
            message: format!("timed out waiting for the rollout of deployment {name}"),
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

/// Watches several Deployments one after the other against one deadline.
pub(crate) async fn wait_all(
    client: &Client,
    namespace: &str,
    names: &[String],
    deadline: Instant,
    cx: &DeployContext,
) -> Result<(), (String, RolloutFailure)> {
    for name in names {
        wait_for_deployment(client, namespace, name, deadline, cx).await.map_err(|f| (name.clone(), f))?;
    }
    Ok(())
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
