//! What the cluster holds of an app's current revision: rollouts, images, missing objects and
//! interrupted revisions.

use paved_core::bookkeeping::{self, not_deployed};
use paved_core::{ReleaseKey, ReleaseStatus, Result, RevisionState};

use super::apply::{self, MissingKinds};
use super::discovery::{Resolved, Resolver};
use super::rollout::{self, RolloutState, deployment_state};
use super::{KubeTarget, retry};

impl KubeTarget {
    /// The status of the current revision (see [`Deployer::status`](paved_core::Deployer::status)).
    pub(super) async fn status_of(&self, key: &ReleaseKey) -> Result<ReleaseStatus> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let (ns, history) = self.find(conn, key.app.as_str(), &key.environment).await?;
        let current = bookkeeping::current(&history).ok_or_else(|| not_deployed(key, Some(server)))?;
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
        let mut resolver = Resolver::new(&conn.client, server);
        for m in current.manifests.iter().filter(|m| m.kind() != "Deployment") {
            let t = match resolver.resolve(m, &self.opts.retry).await? {
                Resolved::Target(t) => t,
                Resolved::NotServed(_) => {
                    not_served.push(format!("{}/{}", m.kind(), m.name()));
                    continue;
                }
            };
            let api = t.api(&conn.client);
            match retry::retry(&self.opts.retry, || api.get_opt(&t.name)).await {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(t.key()),
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
                "revision {} was interrupted while it was applied (state pending): the cluster may hold some of its objects; deploy again or roll back (`Platform::rollback`)",
                p.record.revision
            ));
        }
        let mut record = current.record.clone();
        record.state = Some(RevisionState::Deployed);
        Ok(ReleaseStatus::new(record, healthy, notes.join("; "), Self::location(server, &ns)))
    }
}
