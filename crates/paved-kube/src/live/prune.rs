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

use super::apply::{KINDS, Target, group_version, owned_by, owner_selector};
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

/// Every namespaced resource the cluster lists (discovery: the core group and each group's
/// preferred version), but events and metrics, which are not objects anyone deploys. The
/// second list names the group versions that could not be read.
async fn listable_resources(
    client: &Client,
    server: &str,
    policy: &RetryPolicy,
) -> Result<(Vec<(String, ApiResource)>, Vec<String>)> {
    let mut lists = Vec::new();
    let mut unreadable = Vec::new();
    match retry::retry(policy, || client.list_core_api_resources("v1")).await {
        Ok(l) => lists.push(l),
        Err(e) => return Err(retry::to_error(server, "discovering the core resources", e)),
    }
    let groups = retry::retry(policy, || client.list_api_groups())
        .await
        .map_err(|e| retry::to_error(server, "discovering the API groups", e))?;
    for g in groups.groups {
        let Some(gv) = g
            .preferred_version
            .map(|v| v.group_version)
            .or_else(|| g.versions.first().map(|v| v.group_version.clone()))
        else {
            continue;
        };
        if matches!(g.name.as_str(), "metrics.k8s.io" | "events.k8s.io") {
            continue;
        }
        // One broken aggregated API must not hide the rest: it is named instead.
        match retry::retry(policy, || client.list_api_group_resources(&gv)).await {
            Ok(l) => lists.push(l),
            Err(e) => {
                tracing::warn!(group_version = %gv, error = %e, "cannot list the resources of a group");
                unreadable.push(gv);
            }
        }
    }
    let mut out = Vec::new();
    for list in lists {
        let (group, version) = group_version(&list.group_version);
        for r in list.resources {
            let listable = r.namespaced && !r.name.contains('/') && r.verbs.iter().any(|v| v == "list");
            if !listable || (group.is_empty() && r.name == "events") {
                continue;
            }
            let gvk = GroupVersionKind::gvk(group, version, &r.kind);
            out.push((r.kind.clone(), ApiResource::from_gvk_with_plural(&gvk, &r.name)));
        }
    }
    Ok((out, unreadable))
}

/// One object found in a namespace: its kind, resource, and metadata.
type Found = (String, ApiResource, kube::api::ObjectMeta);

/// Lists the objects of every namespaced resource the cluster serves in `namespace` (metadata
/// only) that no other object owns. Also returns the group versions that could not be read.
async fn list_namespaced(
    client: &Client,
    server: &str,
    namespace: &str,
    lp: &ListParams,
    policy: &RetryPolicy,
) -> Result<(Vec<Found>, Vec<String>)> {
    let (resources, mut unreadable) = listable_resources(client, server, policy).await?;
    let mut out = Vec::new();
    for (kind, resource) in resources {
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), namespace, &resource);
        let list = match retry::retry(policy, || api.list_metadata(lp)).await {
            Ok(l) => l,
            Err(e) if matches!(retry::code(&e), Some(404 | 405)) => continue,
            Err(e) if matches!(retry::code(&e), Some(401 | 403)) => {
                // Not allowed to look: cannot tell what is there.
                unreadable.push(format!("{} ({})", resource.plural, resource.api_version));
                continue;
            }
            Err(e) => return Err(retry::to_error(server, &format!("listing {} in {namespace}", resource.plural), e)),
        };
        // What a controller made (a Deployment's ReplicaSets and their Pods) goes with its
        // owner; a bare Pod, a quota or a limit range is an object of its own.
        let standalone =
            list.items.into_iter().filter(|i| i.metadata.owner_references.as_ref().is_none_or(Vec::is_empty));
        out.extend(standalone.map(|item| (kind.clone(), resource.clone(), item.metadata)));
    }
    Ok((out, unreadable))
}

/// Every object in `namespace`, of any kind the cluster serves, that carries the app's
/// ownership labels (what `destroy` sweeps besides the objects its history lists).
pub(crate) async fn owned_in_namespace(
    client: &Client,
    server: &str,
    namespace: &str,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Vec<Target>> {
    let lp = ListParams::default().labels(&owner_selector(app, env));
    let (items, _) = list_namespaced(client, server, namespace, &lp, policy).await?;
    Ok(items
        .into_iter()
        .filter_map(|(kind, resource, meta)| {
            let rank = rank_of(&resource.group, &kind);
            Some(Target { resource, namespace: Some(namespace.to_string()), name: meta.name?, rank })
        })
        .collect())
}

/// Objects in `namespace`, of any kind the cluster serves, that paved does not own for this
/// app and environment (besides the ones every namespace has: the `default` ServiceAccount,
/// `kube-root-ca.crt`, token Secrets), as `Kind/name`, and resources that could not be listed
/// (`cannot list …`). `destroy` keeps a namespace when there is any: deleting it would delete
/// them.
pub(crate) async fn unowned_in_namespace(
    client: &Client,
    server: &str,
    namespace: &str,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Vec<String>> {
    let (items, unreadable) = list_namespaced(client, server, namespace, &ListParams::default(), policy).await?;
    let mut out: Vec<String> = items
        .into_iter()
        .filter_map(|(kind, _, meta)| {
            let name = meta.name?;
            let built_in = matches!(
                (kind.as_str(), name.as_str()),
                ("ServiceAccount", "default") | ("ConfigMap", "kube-root-ca.crt")
            ) || (kind == "Secret" && name.starts_with("default-token-"));
            (!built_in && !owned_by(meta.labels.as_ref(), app, env)).then(|| format!("{kind}/{name}"))
        })
        .collect();
    out.extend(unreadable.into_iter().map(|what| format!("cannot list {what}")));
    Ok(out)
}

/// The apply rank of a kind (see [`KINDS`]).
fn rank_of(group: &str, kind: &str) -> u8 {
    KINDS.iter().find(|k| k.group == group && k.kind == kind).map_or(super::apply::UNKNOWN_RANK, |k| k.rank)
}
