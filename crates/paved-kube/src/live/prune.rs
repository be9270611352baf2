//! Pruning and destroying: deleting objects paved owns, and nothing else.
//!
//! An object is deleted only when its live copy carries the app's ownership labels
//! (`app.kubernetes.io/managed-by=paved`, `app.kubernetes.io/name=<app>`,
//! `paved.dev/environment=<env>`), and the delete is made conditional on the UID that was
//! checked, so an object re-created by someone else in between is never touched.

use std::collections::BTreeSet;

use kube::Client;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Preconditions, PropagationPolicy,
};
use paved_core::{Manifest, Result};

use super::apply::{KINDS, Target, owned_by, owner_selector};
use super::retry::{self, RetryPolicy};

/// Identity of an object across releases: group, kind, namespace, name.
pub(crate) type Identity = (String, String, Option<String>, String);

/// The identity of a manifest.
pub(crate) fn identity(m: &Manifest) -> Identity {
    let t = Target::of(m);
    (t.resource.group.clone(), t.resource.kind.clone(), t.namespace.clone(), t.name.clone())
}

/// How deleting one object went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// Deleted.
    Yes,
    /// Already gone (or its kind is not served).
    Gone,
    /// Not paved's (labels do not match) or replaced meanwhile: left alone.
    NotOwned,
}

/// Deletes the live object of `target` when paved owns it for `app` in `env`.
pub(crate) async fn delete_owned(
    client: &Client,
    server: &str,
    target: &Target,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Deleted> {
    let api = target.api(client);
    let live: Option<DynamicObject> = match retry::retry(policy, || api.get_opt(&target.name)).await {
        Ok(o) => o,
        Err(e) if retry::code(&e) == Some(404) => None,
        Err(e) => return Err(retry::to_error(server, &format!("reading {}", target.key()), e)),
    };
    let Some(live) = live else { return Ok(Deleted::Gone) };
    if !owned_by(live.metadata.labels.as_ref(), app, env) {
        tracing::info!(object = %target.key(), "not deleting an object paved does not own");
        return Ok(Deleted::NotOwned);
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: live.metadata.uid.clone().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
        ..DeleteParams::default()
    };
    match retry::retry(policy, || api.delete(&target.name, &dp)).await {
        Ok(_) => Ok(Deleted::Yes),
        Err(e) if retry::code(&e) == Some(404) => Ok(Deleted::Gone),
        Err(e) if retry::code(&e) == Some(409) => Ok(Deleted::NotOwned),
        Err(e) => Err(retry::to_error(server, &format!("deleting {}", target.key()), e)),
    }
}

/// Deletes `candidates` (in reverse apply order) that `keep` does not contain and paved owns.
/// Returns the `Kind/name` of every object deleted.
pub(crate) async fn prune(
    client: &Client,
    server: &str,
    candidates: Vec<Target>,
    keep: &BTreeSet<Identity>,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut targets: Vec<Target> = candidates
        .into_iter()
        .filter(|t| {
            let id = (t.resource.group.clone(), t.resource.kind.clone(), t.namespace.clone(), t.name.clone());
            !keep.contains(&id) && seen.insert(id)
        })
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.rank));
    let mut deleted = Vec::new();
    for t in &targets {
        if delete_owned(client, server, t, app, env, policy).await? == Deleted::Yes {
            deleted.push(t.key());
        }
    }
    Ok(deleted)
}

/// Lists the objects of every namespaced kind paved knows in `namespace` (metadata only) that
/// no other object owns, skipping kinds the cluster does not serve: `(kind, resource,
/// metadata)` per object.
async fn list_namespaced(
    client: &Client,
    server: &str,
    namespace: &str,
    lp: &ListParams,
    policy: &RetryPolicy,
) -> Result<Vec<(&'static super::apply::KindInfo, ApiResource, kube::api::ObjectMeta)>> {
    let mut out = Vec::new();
    for k in KINDS.iter().filter(|k| k.namespaced) {
        let version = default_version(k.group);
        let gvk = GroupVersionKind::gvk(k.group, version, k.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, k.plural);
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), namespace, &resource);
        let list = match retry::retry(policy, || api.list_metadata(lp)).await {
            Ok(l) => l,
            Err(e) if retry::code(&e) == Some(404) => continue,
            Err(e) => return Err(retry::to_error(server, &format!("listing {} in {namespace}", k.plural), e)),
        };
        // What a controller made (a Deployment's ReplicaSets and their Pods) goes with its
        // owner; a bare Pod, a quota or a limit range is an object of its own.
        let standalone =
            list.items.into_iter().filter(|i| i.metadata.owner_references.as_ref().is_none_or(Vec::is_empty));
        out.extend(standalone.map(|item| (k, resource.clone(), item.metadata)));
    }
    Ok(out)
}

/// Every object in `namespace` of a kind paved knows that carries the app's ownership labels
/// (what `destroy` sweeps besides the objects its history lists). Kinds the cluster does not
/// serve are skipped.
pub(crate) async fn owned_in_namespace(
    client: &Client,
    server: &str,
    namespace: &str,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Vec<Target>> {
    let lp = ListParams::default().labels(&owner_selector(app, env));
    let items = list_namespaced(client, server, namespace, &lp, policy).await?;
    Ok(items
        .into_iter()
        .filter_map(|(k, resource, meta)| {
            Some(Target { resource, namespace: Some(namespace.to_string()), name: meta.name?, rank: k.rank })
        })
        .collect())
}

/// Objects in `namespace` that paved does not own for this app and environment (besides the
/// ones every namespace has: the `default` ServiceAccount, `kube-root-ca.crt`, token Secrets),
/// as `Kind/name`. `destroy` keeps a namespace that holds any: deleting it would delete them.
pub(crate) async fn unowned_in_namespace(
    client: &Client,
    server: &str,
    namespace: &str,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Vec<String>> {
    let items = list_namespaced(client, server, namespace, &ListParams::default(), policy).await?;
    Ok(items
        .into_iter()
        .filter_map(|(k, _, meta)| {
            let name = meta.name?;
            let built_in =
                matches!((k.kind, name.as_str()), ("ServiceAccount", "default") | ("ConfigMap", "kube-root-ca.crt"))
                    || (k.kind == "Secret" && name.starts_with("default-token-"));
            (!built_in && !owned_by(meta.labels.as_ref(), app, env)).then(|| format!("{}/{name}", k.kind))
        })
        .collect())
}

fn default_version(group: &str) -> &'static str {
    match group {
        "autoscaling" => "v2",
        "policy"
        | "networking.k8s.io"
        | "rbac.authorization.k8s.io"
        | "apps"
        | "batch"
        | "gateway.networking.k8s.io"
        | "monitoring.coreos.com"
        | "" => "v1",
        _ => "v1",
    }
}
