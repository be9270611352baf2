//! Where an object lives on the cluster (its resource's plural and scope), from API discovery
//! for every kind that is not a built-in one paved knows: nothing is guessed.
//!
//! A kind the cluster does not serve (its group version is not served, or the version does not
//! list it) is told apart from any other 404: only the former is "the CRD is not installed".

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::api::{ApiResource, GroupVersionKind};
use paved_core::{Manifest, Result};

use super::apply::{KINDS, Target, group_version};
use super::retry::{self, RetryPolicy};

/// The API groups built into Kubernetes: their kinds in [`KINDS`] are served by every cluster
/// paved supports, at the scope [`KINDS`] gives.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "admissionregistration.k8s.io",
];

/// Where an object goes, or why it cannot.
#[derive(Debug, Clone)]
pub(crate) enum Resolved {
    /// Its resource, namespace (for a namespaced resource) and name.
    Target(Target),
    /// The cluster does not serve its kind: what it lacks.
    NotServed(String),
}

/// Resolves objects' resources through discovery, caching each group version's resource list
/// for the operation (a new resolver sees CRDs established since).
pub(crate) struct Resolver {
    client: Client,
    server: String,
    lists: HashMap<String, Option<APIResourceList>>,
    /// `(group, kind)` of the kinds the release's CRDs define.
    defined: Vec<(String, String)>,
}

/// The kinds `manifests`' CustomResourceDefinitions define: `(group, kind, cluster-scoped)`.
pub(crate) fn defined_kinds(manifests: &paved_core::Manifests) -> impl Iterator<Item = (&str, &str, bool)> {
    manifests.iter().filter(|m| m.kind() == "CustomResourceDefinition").filter_map(|m| {
        let spec = m.value().get("spec")?;
        let cluster = spec.get("scope").and_then(serde_json::Value::as_str) == Some("Cluster");
        Some((spec.get("group")?.as_str()?, spec.pointer("/names/kind")?.as_str()?, cluster))
    })
}

/// How long discovery may lag behind a CRD's `Established` condition.
const DISCOVERY_CATCHES_UP: Duration = Duration::from_secs(30);

impl Resolver {
    /// A resolver asking `client`'s cluster (`server` names it in errors).
    pub(crate) fn new(client: &Client, server: &str) -> Self {
        Resolver { client: client.clone(), server: server.to_string(), lists: HashMap::new(), defined: Vec::new() }
    }

    /// Forgets what discovery said (after CRDs were established).
    pub(crate) fn forget(&mut self) {
        self.lists.clear();
    }

    /// The kinds `manifests`' CustomResourceDefinitions define must be served once they are
    /// established: [`Resolver::resolve`] waits for discovery to catch up with them (an API
    /// server may still answer "not served" for a moment after `Established`) and fails if it
    /// never does, instead of skipping their objects.
    pub(crate) fn expect_defined(&mut self, manifests: &paved_core::Manifests) {
        self.defined = defined_kinds(manifests).map(|(group, kind, _)| (group.to_string(), kind.to_string())).collect();
    }

    /// Where `m` goes.
    pub(crate) async fn resolve(&mut self, m: &Manifest, policy: &RetryPolicy) -> Result<Resolved> {
        let resolved = self.resolve_once(m, policy).await?;
        let (group, _) = group_version(m.api_version());
        if !matches!(resolved, Resolved::NotServed(_)) || !self.defined.iter().any(|(g, k)| g == group && k == m.kind())
        {
            return Ok(resolved);
        }
        let deadline = tokio::time::Instant::now() + DISCOVERY_CATCHES_UP;
        let mut delay = Duration::from_millis(200);
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
            self.lists.remove(m.api_version());
            match self.resolve_once(m, policy).await? {
                Resolved::NotServed(why) if tokio::time::Instant::now() >= deadline => {
                    return Err(paved_core::Error::backend(
                        super::TARGET_NAME,
                        format!(
                            "cannot apply {}/{}: its CustomResourceDefinition is established, but after {}s the cluster ({}) still does not serve it ({why})",
                            m.kind(),
                            m.name(),
                            DISCOVERY_CATCHES_UP.as_secs(),
                            self.server
                        ),
                        Some("check the CRD's served versions and the API server's health, then deploy again".into()),
                    ));
                }
                Resolved::NotServed(_) => {}
                served => return Ok(served),
            }
        }
    }

    async fn resolve_once(&mut self, m: &Manifest, policy: &RetryPolicy) -> Result<Resolved> {
        let (group, version) = group_version(m.api_version());
        let known = Target::of(m);
        let built_in = BUILT_IN_GROUPS.contains(&group) && KINDS.iter().any(|k| k.group == group && k.kind == m.kind());
        if built_in {
            return Ok(Resolved::Target(known));
        }
        let gv = m.api_version().to_string();
        if !self.lists.contains_key(&gv) {
            let client = &self.client;
            let listed = retry::retry(policy, || async {
                if group.is_empty() {
                    client.list_core_api_resources(version).await
                } else {
                    client.list_api_group_resources(&gv).await
                }
            })
            .await;
            let list = match listed {
                Ok(list) => Some(list),
                Err(e) if retry::code(&e) == Some(404) => None,
                Err(e) => return Err(retry::to_error(&self.server, &format!("discovering the resources of {gv}"), e)),
            };
            self.lists.insert(gv.clone(), list);
        }
        let Some(list) = self.lists.get(&gv).and_then(Option::as_ref) else {
            return Ok(Resolved::NotServed(format!("the cluster does not serve {gv}")));
        };
        let Some(resource) = list.resources.iter().find(|r| r.kind == m.kind() && !r.name.contains('/')) else {
            return Ok(Resolved::NotServed(format!("the cluster serves {gv}, but not its kind {}", m.kind())));
        };
        let gvk = GroupVersionKind::gvk(group, version, m.kind());
        let namespace = resource.namespaced.then(|| m.namespace().unwrap_or_default().to_string());
        Ok(Resolved::Target(Target {
            resource: ApiResource::from_gvk_with_plural(&gvk, &resource.name),
            namespace,
            name: m.name().to_string(),
            rank: known.rank,
        }))
    }

    /// The targets of `manifests` whose kinds the cluster serves (an object of a kind it does
    /// not serve cannot be there), for deleting them.
    pub(crate) async fn targets(&mut self, manifests: &[&Manifest], policy: &RetryPolicy) -> Result<Vec<Target>> {
        let mut out = Vec::new();
        for m in manifests {
            if let Resolved::Target(t) = self.resolve(m, policy).await? {
                out.push(t);
            }
        }
        Ok(out)
    }
}
