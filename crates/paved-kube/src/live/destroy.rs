//! Destroying an app: its objects (the namespace only when nothing else lives in it) and its
//! history records.

use std::collections::BTreeSet;

use paved_core::{DeployContext, DestroyOutcome, Error, Manifest, ReleaseKey, Result, Step};

use super::{KubeTarget, history, prune};

impl KubeTarget {
    /// Removes an app's objects and history (see
    /// [`Deployer::destroy`](paved_core::Deployer::destroy)).
    pub(super) async fn destroy_app(&self, key: &ReleaseKey, cx: &DeployContext) -> Result<DestroyOutcome> {
        let conn = self.connected().await?;
        let server = conn.description.as_str();
        let (app, env) = (key.app.as_str(), key.environment.as_str());
        let _lock = self.lock(app, env).await;
        let (ns, history) = self.find(conn, app, env).await?;
        let mut resolver = super::discovery::Resolver::new(&conn.client, server);
        let all: Vec<&Manifest> = history.iter().flat_map(|s| s.manifests.iter()).collect();
        let mut candidates = resolver.targets(&all, &self.opts.retry).await?;
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
                hint: Some(
                    "check the cluster context and the environment; the app's history lists what paved deployed".into(),
                ),
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
