//! `spec.replicas` between paved and a HorizontalPodAutoscaler, handed over the way the
//! server-side apply documentation describes ("Transferring ownership"):
//!
//! - **Autoscaler on.** paved stops applying `spec.replicas`. A field its applier drops that no
//!   one else owns is reset to its default (1), so first a handover manager
//!   ([`HANDOVER_MANAGER`]) applies the current value, kept within the autoscaler's bounds; it
//!   keeps the field while the autoscaler's own writes (through the `scale` subresource) take
//!   over. A new Deployment is created at the autoscaler's minimum.
//! - **Autoscaler off.** paved deletes its autoscaler of the Deployment *before* applying it
//!   (otherwise the autoscaler would scale it back), then takes `spec.replicas` back: a conflict
//!   on that field alone with the autoscaler's writes or the handover manager is applied again
//!   with force. A conflict on any other field, or with any other manager, stays an error.
//!
//! Rollbacks re-apply stored objects through the same path, so they cross an autoscaler switch
//! in either direction.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use paved_core::{Manifest, Manifests, Result};
use serde_json::{Value, json};

use super::MANAGER;
use super::apply::{Target, owned_by};
use super::prune::{self, Deleted};
use super::retry::{self, RetryPolicy};

/// The field manager that holds `spec.replicas` while it passes from paved to the autoscaler.
pub const HANDOVER_MANAGER: &str = "paved-hpa-handover";

/// What to do about a Deployment's replicas before and while applying it.
#[derive(Debug, Default)]
pub(crate) struct Handover {
    /// The payload to apply instead of the rendered one (a new Deployment with an autoscaler:
    /// created at its minimum).
    pub(crate) payload: Option<Manifest>,
    /// A conflict on `spec.replicas` alone with the autoscaler's writes or the handover manager
    /// is taken over with force (no autoscaler targets the Deployment any more).
    pub(crate) take_replicas: bool,
    /// What was done, for the progress report.
    pub(crate) notes: Vec<String>,
}

/// `(minReplicas, maxReplicas)` of the autoscaler among `manifests` that scales `deployment`.
fn autoscaler_of(manifests: &Manifests, deployment: &Manifest) -> Option<(i64, i64)> {
    manifests.iter().find_map(|m| {
        let v = m.value();
        let targets = m.kind() == "HorizontalPodAutoscaler"
            && v.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str) == Some("Deployment")
            && v.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) == Some(deployment.name());
        let min = v.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1);
        let max = v.pointer("/spec/maxReplicas").and_then(Value::as_i64).unwrap_or(min);
        targets.then_some((min, max.max(min)))
    })
}

/// Whether the applier `manager` owns `spec.replicas` of a live Deployment.
fn owns_replicas(live: &Deployment, manager: &str) -> bool {
    live.managed_fields().iter().any(|e| {
        e.manager.as_deref() == Some(manager)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.as_deref().is_none_or(str::is_empty)
            && e.fields_v1.as_ref().is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
    })
}

/// Prepares the apply of a Deployment of `manifests` (release of `app` in `env`): the handover
/// of its replicas to or from an autoscaler. Anything but a Deployment needs nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn prepare(
    client: &Client,
    server: &str,
    manifests: &Manifests,
    m: &Manifest,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Handover> {
    if m.kind() != "Deployment" {
        return Ok(Handover::default());
    }
    let Some(namespace) = m.namespace() else { return Ok(Handover::default()) };
    let name = m.name();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live = retry::retry(policy, || deployments.get_opt(name))
        .await
        .map_err(|e| retry::to_error(server, &format!("reading Deployment/{name}"), e))?;
    let mut handover = Handover::default();
    let rendered_hpa = autoscaler_of(manifests, m);
    // A Deployment that sets its replicas itself (an extra manifest beside its own HPA) keeps
    // them: nothing is handed over, and nothing taken back.
    let sets_replicas = m.value().pointer("/spec/replicas").is_some();
    match (rendered_hpa, live) {
        (Some(_), _) if sets_replicas => handover.notes.push(format!(
            "⚠️  deployment {name} sets spec.replicas and an autoscaler of the release scales it: they will conflict; leave replicas out of it"
        )),
        (Some((min, _)), None) => {
            // New: at the autoscaler's minimum, not the default of 1.
            let mut v = m.value().clone();
            v["spec"]["replicas"] = json!(min);
            handover.payload = Some(Manifest::from_rendered(v));
        }
        (Some((min, max)), Some(live)) => {
            let current = live.spec.as_ref().and_then(|s| s.replicas).map_or(1, i64::from);
            let replicas = current.clamp(min, max);
            // While paved's applier still holds the field (it is about to drop it), or when the
            // replicas are outside the autoscaler's bounds (its minimum was raised).
            if owns_replicas(&live, MANAGER) || replicas != current {
                let patch = json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"replicas": replicas},
                });
                // Forced: the field passes from paved's applier, which is about to drop it.
                let params = PatchParams::apply(HANDOVER_MANAGER).force();
                let patch = Patch::Apply(&patch);
                retry::retry(policy, || deployments.patch(name, &params, &patch)).await.map_err(|e| {
                    retry::to_error(server, &format!("handing the replicas of Deployment/{name} over"), e)
                })?;
                handover.notes.push(format!(
                    "handed spec.replicas of deployment {name} over to its autoscaler at {replicas} (field manager {HANDOVER_MANAGER})"
                ));
            }
        }
        (None, None) => {}
        (None, Some(_)) => {
            // Autoscalers of this Deployment: paved's own go first; anyone else's stays, and
            // then paved does not take the replicas from it.
            let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
            let lp = ListParams::default();
            let list = match retry::retry(policy, || hpas.list(&lp)).await {
                Ok(l) => l.items,
                Err(e) if retry::code(&e) == Some(404) => Vec::new(),
                Err(e) if matches!(retry::code(&e), Some(401 | 403)) => {
                    // Not allowed to look: nothing is deleted, and nothing taken back.
                    handover.notes.push(format!(
                        "⚠️  cannot list the autoscalers in {namespace} (forbidden): spec.replicas of deployment {name} is applied without taking it back from one"
                    ));
                    return Ok(handover);
                }
                Err(e) => return Err(retry::to_error(server, &format!("listing the autoscalers in {namespace}"), e)),
            };
            let mut foreign = false;
            for hpa in list.iter().filter(|h| {
                h.spec
                    .as_ref()
                    .is_some_and(|s| s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == name)
            }) {
                if !owned_by(hpa.metadata.labels.as_ref(), app, env) {
                    foreign = true;
                    continue;
                }
                let object = Manifest::from_rendered(json!({
                    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": hpa.name_any(), "namespace": namespace},
                }));
                match prune::delete_owned(client, server, &Target::of(&object), app, env, policy).await? {
                    Deleted::Yes => {
                        handover.notes.push(format!(
                            "deleted HorizontalPodAutoscaler/{} before taking spec.replicas of deployment {name} back",
                            hpa.name_any()
                        ));
                    }
                    Deleted::NotOwned => foreign = true,
                    Deleted::Gone => {}
                }
            }
            // Not from someone else's autoscaler; and a scale by hand (`kubectl scale`) stays a
            // conflict for the user to see ([`only_replicas_from_the_autoscaler`]).
            handover.take_replicas = !foreign;
        }
    }
    Ok(handover)
}

/// `true` when a server-side apply conflict is on `spec.replicas` alone, with an autoscaler's
/// writes through the `scale` subresource (the HPA controller is `kube-controller-manager`,
/// or another name in some distributions) or the handover manager; never with `kubectl`
/// (`kubectl scale` by hand).
pub(crate) fn only_replicas_from_the_autoscaler(s: &kube::core::Status) -> bool {
    let causes: Vec<_> = s.details.iter().flat_map(|d| d.causes.iter()).collect();
    !causes.is_empty()
        && causes.iter().all(|c| {
            let scale = c.message.contains("with subresource \"scale\"") && !c.message.contains("with \"kubectl");
            c.field == ".spec.replicas" && (scale || c.message.contains(&format!("\"{HANDOVER_MANAGER}\"")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(causes: &[(&str, &str)]) -> kube::core::Status {
        serde_json::from_value(json!({"status": "Failure", "code": 409, "reason": "Conflict", "message": "",
            "details": {"causes": causes.iter().map(|(f, m)| json!({"field": f, "message": m})).collect::<Vec<_>>()}}))
        .unwrap()
    }

    #[test]
    fn only_the_autoscalers_hold_on_replicas_is_taken_over() {
        let scale = "conflict with \"kube-controller-manager\" with subresource \"scale\" using apps/v1";
        assert!(only_replicas_from_the_autoscaler(&status(&[(".spec.replicas", scale)])));
        let handover = "conflict with \"paved-hpa-handover\"";
        assert!(only_replicas_from_the_autoscaler(&status(&[(".spec.replicas", handover)])));
        // Someone's `kubectl edit` or `kubectl scale`, or another field: an error, as before.
        let edit = "conflict with \"kubectl-edit\" using apps/v1";
        assert!(!only_replicas_from_the_autoscaler(&status(&[(".spec.replicas", edit)])));
        let by_hand = "conflict with \"kubectl\" with subresource \"scale\" using apps/v1";
        assert!(!only_replicas_from_the_autoscaler(&status(&[(".spec.replicas", by_hand)])));
        assert!(!only_replicas_from_the_autoscaler(&status(&[(".spec.replicas", scale), (".spec.paused", scale)])));
        assert!(!only_replicas_from_the_autoscaler(&status(&[])));
    }

    #[test]
    fn the_autoscaler_of_a_deployment_is_found_by_its_target() {
        let d = Manifest::from_rendered(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"}}),
        );
        let hpa = |target: &str| {
            Manifest::from_rendered(json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "x"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": target},
                "minReplicas": 3, "maxReplicas": 10}}))
        };
        assert_eq!(autoscaler_of(&Manifests::new(vec![d.clone(), hpa("shop")]), &d), Some((3, 10)));
        assert_eq!(autoscaler_of(&Manifests::new(vec![d.clone(), hpa("cart")]), &d), None);
    }
}
