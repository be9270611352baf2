//! Server-side apply of a release's objects, in dependency order.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use paved_core::{Error, Manifest, Result};
use serde_json::Value;

use super::retry::{self, RetryPolicy};
use super::{MANAGER, TARGET_NAME};

/// What to do with an object whose kind the cluster does not serve (a CRD that is not
/// installed, e.g. a ServiceMonitor without the Prometheus operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingKinds {
    /// Skip the object and report a warning (the default).
    #[default]
    Warn,
    /// Fail the deploy.
    Error,
}

/// What paved knows about a kind: where it is served and when it is applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KindInfo {
    pub(crate) group: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) namespaced: bool,
    /// Apply order: lower first. Deletion runs in reverse.
    pub(crate) rank: u8,
}

const fn k(group: &'static str, kind: &'static str, plural: &'static str, namespaced: bool, rank: u8) -> KindInfo {
    KindInfo { group, kind, plural, namespaced, rank }
}

/// The kinds paved renders or commonly sees as extra manifests, ranked in Helm's install order
/// (`InstallOrder` of helm/pkg/releaseutil/kind_sorter.go): priority classes and namespaces,
/// network policies, quotas and PDBs before anything runs; accounts, secrets and config;
/// storage; CRDs and cluster RBAC before namespaced RBAC; Services before workloads; ingress;
/// then the custom resources paved knows, unknown kinds, and API services and webhooks last.
pub(crate) const KINDS: &[KindInfo] = &[
    k("scheduling.k8s.io", "PriorityClass", "priorityclasses", false, 0),
    k("", "Namespace", "namespaces", false, 1),
    k("networking.k8s.io", "NetworkPolicy", "networkpolicies", true, 2),
    k("", "ResourceQuota", "resourcequotas", true, 3),
    k("", "LimitRange", "limitranges", true, 4),
    k("policy", "PodDisruptionBudget", "poddisruptionbudgets", true, 5),
    k("", "ServiceAccount", "serviceaccounts", true, 6),
    k("", "Secret", "secrets", true, 7),
    k("", "ConfigMap", "configmaps", true, 8),
    k("storage.k8s.io", "StorageClass", "storageclasses", false, 9),
    k("", "PersistentVolume", "persistentvolumes", false, 10),
    k("", "PersistentVolumeClaim", "persistentvolumeclaims", true, 11),
    k("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false, 12),
    k("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false, 13),
    k("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false, 14),
    k("rbac.authorization.k8s.io", "Role", "roles", true, 15),
    k("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true, 16),
    k("", "Service", "services", true, 17),
    k("apps", "DaemonSet", "daemonsets", true, 18),
    k("", "Pod", "pods", true, 19),
    k("apps", "ReplicaSet", "replicasets", true, 20),
    k("apps", "Deployment", "deployments", true, 21),
    k("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, 22),
    k("apps", "StatefulSet", "statefulsets", true, 23),
    k("batch", "Job", "jobs", true, 24),
    k("batch", "CronJob", "cronjobs", true, 25),
    k("networking.k8s.io", "IngressClass", "ingressclasses", false, 26),
    k("networking.k8s.io", "Ingress", "ingresses", true, 27),
    k("gateway.networking.k8s.io", "HTTPRoute", "httproutes", true, 28),
    k("monitoring.coreos.com", "ServiceMonitor", "servicemonitors", true, 29),
    k("monitoring.coreos.com", "PodMonitor", "podmonitors", true, 29),
    k("monitoring.coreos.com", "PrometheusRule", "prometheusrules", true, 29),
    k("security.istio.io", "PeerAuthentication", "peerauthentications", true, 29),
    k("apiregistration.k8s.io", "APIService", "apiservices", false, UNKNOWN_RANK + 1),
    k(
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        UNKNOWN_RANK + 2,
    ),
    k(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        UNKNOWN_RANK + 2,
    ),
];

/// The rank of kinds paved does not know (custom resources): after every known kind but API
/// services and webhooks. (Helm applies them after webhooks too; paved applies a release's
/// webhooks last, so that they cannot refuse the release's own objects before they run.)
pub(crate) const UNKNOWN_RANK: u8 = 30;

/// `(group, version)` of an `apiVersion`.
pub(crate) fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// How to reach one object: its resource, namespace and name.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) resource: ApiResource,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) rank: u8,
}

impl Target {
    /// The target of a manifest. Unknown kinds get the conventional plural and are
    /// namespaced when the manifest names a namespace.
    pub(crate) fn of(m: &Manifest) -> Self {
        let (group, version) = group_version(m.api_version());
        let gvk = GroupVersionKind::gvk(group, version, m.kind());
        let known = KINDS.iter().find(|k| k.group == group && k.kind == m.kind());
        let (resource, namespaced, rank) = match known {
            Some(k) => (ApiResource::from_gvk_with_plural(&gvk, k.plural), k.namespaced, k.rank),
            None => (ApiResource::from_gvk(&gvk), m.namespace().is_some(), UNKNOWN_RANK),
        };
        let namespace = namespaced.then(|| m.namespace().unwrap_or_default().to_string());
        Target { resource, namespace, name: m.name().to_string(), rank }
    }

    /// `Kind/name`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.resource.kind, self.name)
    }

    /// The dynamic API of this object's resource.
    pub(crate) fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }
}

/// The objects in apply order (a stable sort by kind rank: the renderer's order is kept
/// within a rank).
pub(crate) fn in_apply_order(objects: &[Manifest]) -> Vec<&Manifest> {
    let mut v: Vec<&Manifest> = objects.iter().collect();
    v.sort_by_key(|m| Target::of(m).rank);
    v
}

/// Which conflicts an apply takes over.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Force {
    /// Every field (`force_conflicts`).
    pub(crate) all: bool,
    /// `spec.replicas` alone, from the autoscaler or the handover manager (see
    /// [`super::handover`]).
    pub(crate) replicas: bool,
}

/// Server-side applies one object as field manager `paved`, at `target` (resolved by
/// [`super::discovery::Resolver`]). The payload is the rendered object as is: only the fields
/// paved sets, no defaulted empty fields (a cluster-scoped object's payload has no namespace).
/// Returns whether paved created it (now, or in an earlier attempt): its managed fields name
/// paved's managers and controllers only, as opposed to an object someone else made that paved
/// now shares.
pub(crate) async fn apply_one(
    client: &Client,
    server: &str,
    m: &Manifest,
    target: &Target,
    force: Force,
    policy: &RetryPolicy,
) -> Result<bool> {
    let api = target.api(client);
    let mut params = PatchParams::apply(MANAGER);
    if force.all {
        params = params.force();
    }
    let mut payload = secret_as_data(m)?;
    if target.namespace.is_none() && m.namespace().is_some() {
        let mut v = payload.take().unwrap_or_else(|| m.value().clone());
        if let Some(meta) = v["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        payload = Some(v);
    }
    let patch = Patch::Apply(payload.as_ref().unwrap_or(m.value()));
    let mut result = retry::retry(policy, || api.patch(&target.name, &params, &patch)).await;
    if force.replicas
        && let Err(kube::Error::Api(s)) = &result
        && s.code == 409
        && super::handover::only_replicas_from_the_autoscaler(s)
    {
        // The autoscaler is gone: its hold on spec.replicas goes with it.
        let forced = params.clone().force();
        result = retry::retry(policy, || api.patch(&target.name, &forced, &patch)).await;
    }
    match result {
        Ok(applied) => Ok(applied.metadata.managed_fields.iter().flatten().all(|e| {
            // Controllers write status (a subresource), the autoscaler `scale`, and the
            // Deployment controller its revision annotation: none of them made the object.
            matches!(
                e.manager.as_deref(),
                Some(MANAGER | super::handover::HANDOVER_MANAGER | "kube-controller-manager")
            ) || e.subresource.as_deref().is_some_and(|s| !s.is_empty())
        })),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "Conflict" => Err(conflict_error(target, &s)),
        Err(e) => Err(retry::to_error(server, &format!("applying {}", target.key()), e)),
    }
}

/// What to do about an object whose kind the cluster does not serve (`why`): skip it (with the
/// warning returned), or fail, as `missing` says.
pub(crate) fn not_served(m: &Manifest, why: &str, server: &str, missing: MissingKinds) -> Result<String> {
    let (group, _) = group_version(m.api_version());
    let key = format!("{}/{}", m.kind(), m.name());
    let what = format!(
        "{} ({}) is not served by the cluster ({server}): its CustomResourceDefinition is not installed ({why})",
        m.kind(),
        m.api_version()
    );
    let hint = match group {
        "monitoring.coreos.com" if m.kind() == "PrometheusRule" => "install the Prometheus operator, or turn the alerts off (disable the `alerts` component, or [environments.NAME.alerts] enabled = false)".to_string(),
        "monitoring.coreos.com" => "install the Prometheus operator, or turn monitoring off (disable the `service-monitor` component, or monitoring = false for the environment)".to_string(),
        "security.istio.io" => "install Istio, or take the app out of the mesh (disable the `mesh` component, or remove the environment's `mesh`)".to_string(),
        "gateway.networking.k8s.io" => "install the Gateway API CRDs, or use an Ingress".to_string(),
        _ => format!("install the CRD of {}, or remove the object from the release", m.kind()),
    };
    match missing {
        MissingKinds::Warn => Ok(format!("skipped {key}: {what}; {hint}")),
        MissingKinds::Error => Err(Error::backend(TARGET_NAME, format!("cannot apply {key}: {what}"), Some(hint))),
    }
}

/// A namespaced object (as containment saw it) whose kind the cluster serves cluster-scoped:
/// applying it would reach outside the app's namespace without the grant a cluster-scoped kind
/// needs, so it is refused.
pub(crate) fn cluster_scoped_by_discovery(m: &Manifest, server: &str) -> Option<Error> {
    let kind = m.kind();
    (m.namespace().is_some() && !paved_core::containment::is_cluster_scoped(kind)).then(|| {
        Error::backend(
            TARGET_NAME,
            format!(
                "cannot apply {kind}/{}: the cluster ({server}) serves {kind} ({}) cluster-scoped, outside the app's namespace",
                m.name(),
                m.api_version()
            ),
            Some(format!(
                "leave {kind} to the platform team, or remove it from the release: paved applies cluster-scoped kinds only with a grant, and it learns this one's scope only from the cluster"
            )),
        )
    })
}

/// A 409 from server-side apply: another field manager owns fields paved sets to different
/// values. The error names the managers and the fields.
fn conflict_error(target: &Target, s: &kube::core::Status) -> Error {
    let mut managers: Vec<String> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for cause in s.details.iter().flat_map(|d| d.causes.iter()) {
        if let Some(m) = quoted(&cause.message)
            && !managers.contains(&m)
        {
            managers.push(m);
        }
        if !cause.field.is_empty() && !fields.contains(&cause.field) {
            fields.push(cause.field.clone());
        }
    }
    if managers.is_empty()
        && let Some(m) = quoted(&s.message)
    {
        managers.push(m);
    }
    let who = if managers.is_empty() {
        "another field manager".to_string()
    } else {
        managers.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ")
    };
    let what = if fields.is_empty() { s.message.clone() } else { fields.join(", ") };
    Error::backend(
        TARGET_NAME,
        format!("conflict applying {}: {who} also manages {what}", target.key()),
        Some(format!(
            "someone changed these fields outside paved (field manager {who}); make the change through paved, or deploy again with `force_conflicts` to take the fields over"
        )),
    )
}

/// The first `"quoted"` word of a message (`conflict with "kubectl-edit" using apps/v1`).
fn quoted(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(message[start..start + len].to_string())
}

/// `true` when a live object carries the ownership labels of this app in this environment.
pub(crate) fn owned_by(labels: Option<&std::collections::BTreeMap<String, String>>, app: &str, env: &str) -> bool {
    let Some(l) = labels else { return false };
    let is = |k: &str, v: &str| l.get(k).map(String::as_str) == Some(v);
    is(crate::render::labels::MANAGED_BY, crate::render::MANAGED_BY)
        && is(crate::render::labels::NAME, app)
        && is(crate::render::labels::ENVIRONMENT, env)
}

/// The label selector of everything paved created for an app in an environment.
pub(crate) fn owner_selector(app: &str, env: &str) -> String {
    format!(
        "{}={},{}={app},{}={env}",
        crate::render::labels::MANAGED_BY,
        crate::render::MANAGED_BY,
        crate::render::labels::NAME,
        crate::render::labels::ENVIRONMENT
    )
}

/// The `spec.selector.matchLabels` of a workload manifest, as a label selector string.
pub(crate) fn match_labels_selector(m: &Manifest) -> Option<String> {
    let labels = m.value().pointer("/spec/selector/matchLabels")?.as_object()?;
    let parts: Vec<String> = labels.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The image of the first container of a workload manifest.
pub(crate) fn first_image(v: &Value) -> Option<&str> {
    v.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str)
}

/// A Secret's payload with its `stringData` moved into `data` (base64), or `None` for any other
/// object. `stringData` is write-only: with server-side apply a key removed from it is never
/// removed from `data` (kubernetes#108008), so a value the app no longer uses would stay in
/// the cluster. Applied as `data`, paved owns each key, and a key it stops applying goes.
///
/// A value that is not a string is refused, as the API server refuses it.
pub(crate) fn secret_as_data(m: &Manifest) -> Result<Option<Value>> {
    if m.kind() != "Secret" {
        return Ok(None);
    }
    let mut v = m.value().clone();
    let Some(Value::Object(plain)) = v.as_object_mut().and_then(|o| o.remove("stringData")) else { return Ok(None) };
    for (key, value) in plain {
        let Some(text) = value.as_str() else {
            return Err(Error::invalid(
                "stringData",
                format!("{key}: {value}"),
                format!("is not a string in Secret/{}", m.name()),
                Some("quote the value (stringData holds strings), e.g. PORT: \"5432\"".to_string()),
            ));
        };
        let bytes = k8s_openapi::ByteString(text.as_bytes().to_vec());
        // `stringData` wins over `data`, as the API server merges them.
        v["data"][key] = serde_json::to_value(bytes).expect("bytes serialize as base64");
    }
    Ok(Some(v))
}

/// `true` for a Secret whose `stringData` holds redacted placeholders (`sync` secret mode).
pub(crate) fn has_redacted_values(m: &Manifest) -> bool {
    m.kind() == "Secret"
        && m.value()
            .get("stringData")
            .and_then(Value::as_object)
            .is_some_and(|d| d.values().any(|v| v.as_str().is_some_and(|s| s.starts_with(paved_core::REDACTED_PREFIX))))
}

/// The Secret with its placeholders replaced by `values` (by key), or `None` when a value is
/// missing.
pub(crate) fn fill_redacted_values(m: &Manifest, values: &paved_core::SecretValues) -> Option<Manifest> {
    use secrecy::ExposeSecret;
    let mut v = m.value().clone();
    let data = v.get_mut("stringData")?.as_object_mut()?;
    for (key, value) in data.iter_mut() {
        if value.as_str().is_some_and(|s| s.starts_with(paved_core::REDACTED_PREFIX)) {
            *value = Value::String(values.0.get(key)?.expose_secret().to_string());
        }
    }
    Some(Manifest::from_rendered(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(api: &str, kind: &str) -> Manifest {
        Manifest::new(json!({"apiVersion": api, "kind": kind, "metadata": {"name": "a", "namespace": "ns"}})).unwrap()
    }

    #[test]
    fn a_secret_is_applied_as_data_and_a_value_that_is_not_a_string_refused() {
        let secret = |data: serde_json::Value| {
            Manifest::new(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
                "data": {"OLD": "b2xk"}, "stringData": data}))
            .unwrap()
        };
        let v = secret_as_data(&secret(json!({"A": "hunter2", "OLD": "new"}))).unwrap().unwrap();
        assert!(v.get("stringData").is_none());
        assert_eq!(v["data"], json!({"A": "aHVudGVyMg==", "OLD": "bmV3"}), "stringData wins over data");
        let e = secret_as_data(&secret(json!({"PORT": 5432}))).unwrap_err();
        assert!(e.to_string().contains("PORT: 5432") && e.hint().unwrap().contains("quote"), "{e}");
        assert!(secret_as_data(&m("v1", "ConfigMap")).unwrap().is_none());
    }

    #[test]
    fn dependency_order() {
        let objects = vec![
            m("monitoring.coreos.com/v1", "ServiceMonitor"),
            m("networking.k8s.io/v1", "Ingress"),
            m("example.com/v1", "Widget"),
            m("apps/v1", "Deployment"),
            m("v1", "Service"),
            m("autoscaling/v2", "HorizontalPodAutoscaler"),
            m("v1", "ConfigMap"),
            m("v1", "ServiceAccount"),
            m("v1", "Namespace"),
            m("policy/v1", "PodDisruptionBudget"),
        ];
        let kinds: Vec<&str> = in_apply_order(&objects).into_iter().map(Manifest::kind).collect();
        // Helm's install order.
        assert_eq!(
            kinds,
            [
                "Namespace",
                "PodDisruptionBudget",
                "ServiceAccount",
                "ConfigMap",
                "Service",
                "Deployment",
                "HorizontalPodAutoscaler",
                "Ingress",
                "ServiceMonitor",
                "Widget"
            ]
        );
        let cluster = vec![
            m("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            m("rbac.authorization.k8s.io/v1", "RoleBinding"),
            m("example.com/v1", "Widget"),
            m("apps/v1", "StatefulSet"),
            m("rbac.authorization.k8s.io/v1", "ClusterRole"),
            m("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            m("v1", "PersistentVolumeClaim"),
            m("networking.k8s.io/v1", "NetworkPolicy"),
            m("v1", "ResourceQuota"),
        ];
        let kinds: Vec<&str> = in_apply_order(&cluster).into_iter().map(Manifest::kind).collect();
        assert_eq!(
            kinds,
            [
                "NetworkPolicy",
                "ResourceQuota",
                "PersistentVolumeClaim",
                "CustomResourceDefinition",
                "ClusterRole",
                "RoleBinding",
                "StatefulSet",
                "Widget",
                "ValidatingWebhookConfiguration"
            ]
        );
        let t = Target::of(&m("example.com/v1", "Widget"));
        assert_eq!(t.resource.plural, "widgets");
        assert_eq!(t.namespace.as_deref(), Some("ns"));
        assert_eq!(Target::of(&m("v1", "Namespace")).namespace, None);
    }

    #[test]
    fn conflict_names_manager_and_fields() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"a\"].image",
            "reason": "Conflict",
            "details": {"name": "a", "group": "apps", "kind": "deployments", "causes": [
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.replicas"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.template.spec.containers[name=\"a\"].image"}
            ]},
            "code": 409
        }))
        .unwrap();
        let e = conflict_error(&Target::of(&m("apps/v1", "Deployment")), &status);
        let text = e.to_string();
        assert!(text.contains("\"kubectl-edit\"") && text.contains(".spec.replicas"), "{text}");
        assert!(e.hint().unwrap().contains("`force_conflicts`"));
    }
}
