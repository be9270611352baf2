//! Deterministic rendering of the golden path's Kubernetes objects.

use paved_core::{
    Component, Manifest, Manifests, REDACTED_PREFIX, Renderer, ResolvedApp, Result, SecretMode, SecretScheme,
};
use serde_json::{Map, Value, json};

use crate::{observability, overlay};

/// The field manager and `app.kubernetes.io/managed-by` value of everything paved renders.
pub use paved_core::containment::MANAGED_BY;
/// Label keys paved sets (the ownership labels are defined with the escape-hatch bounds).
pub use paved_core::containment::labels;

/// The annotation that lists the escape hatches a release used.
pub use paved_core::containment::ESCAPE_HATCHES_ANNOTATION;

/// Renders Namespace, ServiceAccount, Deployment, Service, HorizontalPodAutoscaler,
/// PodDisruptionBudget, NetworkPolicy, Ingress and ServiceMonitor with secure defaults
/// (Pod Security Standards *restricted*, probes, requests/limits, topology spread), and what
/// the environment switches on of monitoring, logging, tracing and mesh (a Grafana dashboard's
/// ConfigMap, a PrometheusRule, Istio's PeerAuthentication: [`crate::observability`]), then
/// adds extra manifests and merges overlays.
///
/// ```
/// use paved_core::{DeployRequest, OrgConfig, Renderer, ResolvedApp};
/// let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production").unwrap();
/// let app = ResolvedApp::resolve(&OrgConfig::default(), &request).unwrap();
/// let objects = paved_kube::KubeRenderer.render(&app).unwrap();
/// let kinds: Vec<&str> = objects.iter().map(|o| o.kind()).collect();
/// assert_eq!(kinds, ["Namespace", "ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
///                    "PodDisruptionBudget", "NetworkPolicy", "Ingress", "ServiceMonitor"]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeRenderer;

impl Renderer for KubeRenderer {
    fn render(&self, app: &ResolvedApp) -> Result<Manifests> {
        let mut objects = render_defaults(app);
        crate::workload::apply(app, &mut objects)?;
        overlay::add_extra_manifests(app, &mut objects)?;
        overlay::apply_overlays(&app.custom_manifests, &mut objects)?;
        Ok(Manifests::new(objects))
    }
}

/// A label value from free text: at most 63 characters of `[A-Za-z0-9_.-]`, starting and
/// ending with an alphanumeric character.
pub fn label_value(s: &str) -> String {
    let cleaned: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).take(63).collect();
    cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// The labels that select the app's pods (stable across versions).
pub fn selector_labels(app: &ResolvedApp) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(labels::NAME.into(), app.app.as_str().into());
    m.insert(labels::INSTANCE.into(), instance(app).into());
    m
}

fn instance(app: &ResolvedApp) -> String {
    format!("{}-{}", app.app, app.environment.name)
}

/// The labels every object of the app carries (recommended labels plus team and environment).
pub fn common_labels(app: &ResolvedApp) -> Map<String, Value> {
    let mut m = selector_labels(app);
    m.insert(labels::VERSION.into(), label_value(app.image.version()).into());
    m.insert(labels::COMPONENT.into(), "server".into());
    m.insert(labels::PART_OF.into(), app.app.as_str().into());
    m.insert(labels::MANAGED_BY.into(), MANAGED_BY.into());
    m.insert(labels::TEAM.into(), app.team.as_str().into());
    m.insert(labels::ENVIRONMENT.into(), app.environment.name.as_str().into());
    m
}

/// What every object of one render shares, built once (labels are most of the allocations).
pub(crate) struct Cx<'a> {
    pub(crate) app: &'a ResolvedApp,
    selector: Value,
    pub(crate) labels: Value,
}

impl Cx<'_> {
    /// `{"matchLabels": selector}`.
    pub(crate) fn match_labels(&self) -> Value {
        let mut m = Map::new();
        m.insert("matchLabels".into(), self.selector.clone());
        Value::Object(m)
    }

    /// `metadata` of a namespaced object of the app.
    fn metadata(&self, name: &str) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        m.insert("namespace".into(), self.app.namespace.as_str().into());
        m.insert("labels".into(), self.labels.clone());
        Value::Object(m)
    }

    /// An object of the app: `apiVersion`, `kind`, `metadata`, plus `rest`.
    pub(crate) fn object(&self, api_version: &str, kind: &str, name: &str, rest: Value) -> Value {
        let mut m = match rest {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert("apiVersion".into(), api_version.into());
        m.insert("kind".into(), kind.into());
        m.insert("metadata".into(), self.metadata(name));
        Value::Object(m)
    }
}

fn render_defaults(app: &ResolvedApp) -> Vec<Manifest> {
    let cx = Cx { app, selector: Value::Object(selector_labels(app)), labels: Value::Object(common_labels(app)) };
    let cx = &cx;
    let name = app.app.as_str();
    let mut out = Vec::with_capacity(10);
    out.push(namespace(app));
    let mut account = cx.object("v1", "ServiceAccount", name, json!({ "automountServiceAccountToken": false }));
    if let (Some(role), false) = (&app.aws_role_arn, aws_agent_secrets(app).is_empty()) {
        account["metadata"]["annotations"] = json!({ "eks.amazonaws.com/role-arn": role });
    }
    out.push(account);
    if let Some(secret) = synced_secret(cx) {
        out.push(secret);
    }
    if let Some(class) = secret_provider_class(cx) {
        out.push(class);
    }
    out.push(deployment(cx));
    let mut service = json!({
        "spec": {
            "type": "ClusterIP",
            "ports": [{ "name": "http", "port": 80, "targetPort": "http", "protocol": "TCP" }],
        },
    });
    service["spec"]["selector"] = cx.selector.clone();
    service["spec"]["ports"].as_array_mut().expect("the Service has ports").extend(observability::service_ports(app));
    out.push(cx.object("v1", "Service", name, service));
    if let Some(a) = app.autoscaling {
        out.push(cx.object("autoscaling/v2", "HorizontalPodAutoscaler", name, json!({
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
                "minReplicas": a.min,
                "maxReplicas": a.max,
                "metrics": [{
                    "type": "Resource",
                    "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": a.target_cpu_utilization } },
                }],
                "behavior": { "scaleDown": { "stabilizationWindowSeconds": 300 } },
            },
        })));
    }
    if app.renders(Component::Pdb) {
        let mut pdb = json!({ "spec": { "maxUnavailable": 1 } });
        pdb["spec"]["selector"] = cx.match_labels();
        out.push(cx.object("policy/v1", "PodDisruptionBudget", name, pdb));
    }
    if app.renders(Component::NetworkPolicy) {
        out.push(network_policy(cx));
    }
    if app.renders(Component::Ingress) {
        out.push(ingress(cx));
    }
    if app.renders(Component::ServiceMonitor) {
        let mut sm = json!({ "spec": { "endpoints": [observability::scrape_endpoint(app)] } });
        sm["spec"]["selector"] = cx.match_labels();
        out.push(cx.object("monitoring.coreos.com/v1", "ServiceMonitor", name, sm));
    }
    out.extend(observability::objects(cx));
    out.into_iter().map(Manifest::from_rendered).collect()
}

/// The name of the Secret that holds an app's synced secret values.
pub fn secrets_name(app: &ResolvedApp) -> String {
    format!("{}-secrets", app.app)
}

/// A Go template string literal: a JSON string is a valid Go interpreted string literal, and
/// the template lexer reads a quoted string whole, so `"` and `}}` inside stay text.
fn go_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The KV v2 API path of a `vault://MOUNT/PATH` reference (`MOUNT/data/PATH[?version=N]`).
fn vault_kv_path(r: &paved_core::SecretRef) -> String {
    let (mount, path) = r.path().split_once('/').unwrap_or((r.path(), ""));
    let version = r.version().map_or(String::new(), |v| format!("?version={v}"));
    format!("{mount}/data/{path}{version}")
}

/// Where the AWS Secrets and Configuration Provider mounts an app's `aws-sm://` secrets.
pub const AWS_SECRETS_DIR: &str = "/mnt/secrets-store";

/// The name of an app's `SecretProviderClass` (agent mode, `aws-sm://` references).
pub fn secret_provider_class_name(app: &ResolvedApp) -> String {
    format!("{}-aws-secrets", app.app)
}

/// The `aws-sm://` bindings the AWS provider mounts (agent mode).
fn aws_agent_secrets(app: &ResolvedApp) -> Vec<&paved_core::secret::SecretBinding> {
    match app.secret_mode {
        SecretMode::Sync => Vec::new(),
        _ => app.secrets.iter().filter(|b| b.reference.scheme() == SecretScheme::AwsSecretsManager).collect(),
    }
}

/// In agent mode with `aws-sm://` references, the `SecretProviderClass` of the AWS Secrets and
/// Configuration Provider (secrets-store CSI driver): one object per secret (and pinned
/// version), each referenced key mounted as a file named after its env var.
fn secret_provider_class(cx: &Cx<'_>) -> Option<Value> {
    let app = cx.app;
    let bindings = aws_agent_secrets(app);
    if bindings.is_empty() {
        return None;
    }
    // Grouped by secret and version, in the order first referenced.
    let mut objects: Vec<(String, Option<u64>, Vec<Value>)> = Vec::new();
    for b in bindings {
        let r = &b.reference;
        // A JMESPath identifier, quoted (keys may hold `-` and other characters).
        let path = serde_json::to_string(r.key().unwrap_or(b.env.as_str())).expect("a string serializes");
        let alias = json!({ "path": path, "objectAlias": b.env });
        match objects.iter_mut().find(|(n, v, _)| n == r.path() && *v == r.version()) {
            Some((_, _, paths)) => paths.push(alias),
            None => objects.push((r.path().to_string(), r.version(), vec![alias])),
        }
    }
    let objects: Vec<Value> = objects
        .into_iter()
        .enumerate()
        .map(|(i, (name, version, paths))| {
            let mut o = json!({
                "objectName": name,
                "objectType": "secretsmanager",
                // The whole secret's own file; the keys are the aliases below.
                "objectAlias": format!(".paved-secret-{i}"),
                "jmesPath": paths,
            });
            if let Some(v) = version {
                // The version ids paved's Secrets Manager store gives (`paved-v` and the number).
                o["objectVersion"] = format!("paved-v{v:026}").into();
            }
            o
        })
        .collect();
    let objects = serde_yaml_ng::to_string(&objects).expect("objects serialize");
    let mut parameters = json!({ "objects": objects });
    if app.aws_pod_identity {
        parameters["usePodIdentity"] = "true".into();
    }
    Some(cx.object(
        "secrets-store.csi.x-k8s.io/v1",
        "SecretProviderClass",
        &secret_provider_class_name(app),
        json!({ "spec": { "provider": "aws", "parameters": parameters } }),
    ))
}

/// In `sync` mode, the app's Secret with a redacted placeholder naming the reference for each
/// value: the target that applies it substitutes the values, nothing else ever sees them.
fn synced_secret(cx: &Cx<'_>) -> Option<Value> {
    let app = cx.app;
    if app.secret_mode != SecretMode::Sync {
        return None;
    }
    let data: Map<String, Value> = app
        .secrets
        .iter()
        .filter(|b| b.reference.scheme() != SecretScheme::Kubernetes)
        .map(|b| (b.env.clone(), format!("{REDACTED_PREFIX}{}>", b.reference).into()))
        .collect();
    (!data.is_empty()).then(|| {
        cx.object("v1", "Secret", &secrets_name(app), json!({ "type": "Opaque", "stringData": Value::Object(data) }))
    })
}

fn namespace(app: &ResolvedApp) -> Value {
    // A namespace shared by several apps (e.g. "{team}-{env}") carries no app labels.
    let mut labels = if app.defaults.namespace.contains("{app}") { common_labels(app) } else { Map::new() };
    labels.insert(labels::MANAGED_BY.into(), MANAGED_BY.into());
    labels.insert(labels::TEAM.into(), app.team.as_str().into());
    labels.insert(labels::ENVIRONMENT.into(), app.environment.name.as_str().into());
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(format!("pod-security.kubernetes.io/{mode}"), "restricted".into());
    }
    let mut annotations = Map::new();
    observability::namespace_metadata(app, &mut labels, &mut annotations);
    let mut ns =
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": app.namespace, "labels": labels } });
    if !annotations.is_empty() {
        ns["metadata"]["annotations"] = Value::Object(annotations);
    }
    ns
}

fn deployment(cx: &Cx<'_>) -> Value {
    let app = cx.app;
    let name = app.app.as_str();
    let d = &app.defaults;
    let r = &app.resources;
    let mut limits = Map::new();
    if let Some(cpu) = &r.cpu_limit {
        limits.insert("cpu".into(), cpu.as_str().into());
    }
    limits.insert("memory".into(), r.memory_limit.as_str().into());
    let probe = |period: u32, failures: u32| {
        json!({
            "httpGet": { "path": d.health_path, "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        })
    };
    let mut container = json!({
        "name": name,
        "image": app.image.as_str(),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{ "name": "http", "containerPort": d.port, "protocol": "TCP" }],
        "resources": {
            "requests": { "cpu": r.cpu_request.as_str(), "memory": r.memory_request.as_str() },
            "limits": limits,
        },
        "startupProbe": probe(5, 30),
        "readinessProbe": probe(10, 3),
        "livenessProbe": probe(10, 3),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "privileged": false,
            "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }],
    });
    let mut agent_annotations = Map::new();
    let mut env: Vec<Value> = app
        .secrets
        .iter()
        .map(|b| {
            let r = &b.reference;
            if r.scheme() == SecretScheme::Kubernetes {
                return json!({ "name": b.env, "valueFrom": { "secretKeyRef": { "name": r.path(), "key": r.key() } } });
            }
            match app.secret_mode {
                // agent, aws-sm://: the AWS provider mounts the key at /mnt/secrets-store/NAME.
                SecretMode::Agent if r.scheme() == SecretScheme::AwsSecretsManager => {
                    json!({ "name": format!("{}_FILE", b.env), "value": format!("{AWS_SECRETS_DIR}/{}", b.env) })
                }
                // sync: paved puts the value into the app's Secret when it applies it.
                SecretMode::Sync => json!({
                    "name": b.env,
                    "valueFrom": { "secretKeyRef": { "name": secrets_name(app), "key": b.env } },
                }),
                // agent: the Vault Agent Injector writes the value to /vault/secrets/NAME.
                _ => {
                    let kv_path = vault_kv_path(r);
                    let key = r.key().unwrap_or(b.env.as_str());
                    agent_annotations
                        .insert(format!("vault.hashicorp.com/agent-inject-secret-{}", b.env), kv_path.clone().into());
                    agent_annotations.insert(
                        format!("vault.hashicorp.com/agent-inject-template-{}", b.env),
                        // Quoted as Go string literals too (a JSON string is one), so even a
                        // reference that got past parsing could not end the template.
                        format!(
                            "{{{{- with secret {} -}}}}{{{{ index .Data.data {} }}}}{{{{- end -}}}}",
                            go_string(&kv_path),
                            go_string(key)
                        )
                        .into(),
                    );
                    json!({ "name": format!("{}_FILE", b.env), "value": format!("/vault/secrets/{}", b.env) })
                }
            }
        })
        .collect();
    observability::add_container_env(app, &mut env);
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    if !agent_annotations.is_empty() {
        agent_annotations.insert("vault.hashicorp.com/agent-inject".into(), "true".into());
        agent_annotations.insert("vault.hashicorp.com/role".into(), app.vault_role.as_str().into());
    }
    let spread = |key: &str| {
        let mut c = json!({ "maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway" });
        c["labelSelector"] = cx.match_labels();
        c
    };
    let mut meta = cx.metadata(name);
    if !app.escape_hatches.is_empty() {
        let list: Vec<String> = app.escape_hatches.iter().map(ToString::to_string).collect();
        meta["annotations"] = json!({ ESCAPE_HATCHES_ANNOTATION: list.join(",") });
    }
    let mut spec = Map::new();
    // With an HPA the autoscaler owns spec.replicas; setting it too would fight it on every apply.
    if app.autoscaling.is_none() {
        spec.insert("replicas".into(), app.replicas.into());
    }
    spec.insert("revisionHistoryLimit".into(), 10.into());
    spec.insert("progressDeadlineSeconds".into(), 600.into());
    spec.insert("selector".into(), cx.match_labels());
    spec.insert(
        "strategy".into(),
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": 0 } }),
    );
    let mut template = json!({
            "spec": {
                "serviceAccountName": name,
                "automountServiceAccountToken": false,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": d.run_as_user,
                    "runAsGroup": d.run_as_user,
                    "fsGroup": d.run_as_user,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "terminationGracePeriodSeconds": 30,
                "volumes": [{ "name": "tmp", "emptyDir": { "sizeLimit": "64Mi" } }],
            },
    });
    template["spec"]["topologySpreadConstraints"] =
        Value::Array(vec![spread("topology.kubernetes.io/zone"), spread("kubernetes.io/hostname")]);
    if !aws_agent_secrets(app).is_empty() {
        container["volumeMounts"]
            .as_array_mut()
            .expect("the container has mounts")
            .push(json!({ "name": "aws-secrets", "mountPath": AWS_SECRETS_DIR, "readOnly": true }));
        template["spec"]["volumes"].as_array_mut().expect("the pod has volumes").push(json!({
            "name": "aws-secrets",
            "csi": {
                "driver": "secrets-store.csi.k8s.io",
                "readOnly": true,
                "volumeAttributes": { "secretProviderClass": secret_provider_class_name(app) },
            },
        }));
    }
    template["spec"]["containers"] = Value::Array(vec![container]);
    template["metadata"] = json!({});
    template["metadata"]["labels"] = cx.labels.clone();
    if !agent_annotations.is_empty() {
        template["metadata"]["annotations"] = Value::Object(agent_annotations);
        // The agent logs in to Vault with the pod's service-account token.
        template["spec"]["automountServiceAccountToken"] = true.into();
    }
    observability::pod_metadata(app, &mut template["metadata"]);
    spec.insert("template".into(), template);
    let mut d = Map::new();
    d.insert("apiVersion".into(), "apps/v1".into());
    d.insert("kind".into(), "Deployment".into());
    d.insert("metadata".into(), meta);
    d.insert("spec".into(), Value::Object(spec));
    Value::Object(d)
}

fn network_policy(cx: &Cx<'_>) -> Value {
    let app = cx.app;
    let d = &app.defaults;
    let from_namespace =
        |ns: &str| json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } } });
    let mut ingress = Vec::new();
    if app.renders(Component::Ingress) {
        ingress.push(
            json!({ "from": [from_namespace(&d.ingress_namespace)], "ports": [{ "port": "http", "protocol": "TCP" }] }),
        );
    }
    if app.renders(Component::ServiceMonitor) {
        ingress.push(json!({ "from": [from_namespace(&d.monitoring_namespace)], "ports": [{ "port": "http", "protocol": "TCP" }] }));
    }
    let dns = json!({
        "to": [{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
        }],
        "ports": [{ "port": 53, "protocol": "UDP" }, { "port": 53, "protocol": "TCP" }],
    });
    let https = json!({ "ports": [{ "port": 443, "protocol": "TCP" }] });
    let mut egress = vec![dns, https];
    observability::network_policy_rules(app, &mut ingress, &mut egress);
    let mut np = json!({ "spec": { "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress } });
    np["spec"]["podSelector"] = cx.match_labels();
    cx.object("networking.k8s.io/v1", "NetworkPolicy", app.app.as_str(), np)
}

fn ingress(cx: &Cx<'_>) -> Value {
    let app = cx.app;
    let name = app.app.as_str();
    let mut ing = cx.object("networking.k8s.io/v1", "Ingress", name, json!({}));
    if let Some(issuer) = &app.defaults.tls_issuer {
        ing["metadata"]["annotations"] = json!({ "cert-manager.io/cluster-issuer": issuer });
    }
    ing["spec"] = json!({
            "ingressClassName": app.defaults.ingress_class,
            "tls": [{ "hosts": [app.host], "secretName": format!("{name}-tls") }],
            "rules": [{
                "host": app.host,
                "http": { "paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": { "service": { "name": name, "port": { "name": "http" } } },
                }] },
            }],
    });
    ing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_strings_keep_template_delimiters_as_text() {
        assert_eq!(go_string("secret/data/payments/db"), "\"secret/data/payments/db\"");
        assert_eq!(go_string(r#"k" }}{{ .Data }}"#), r#""k\" }}{{ .Data }}""#);
    }

    #[test]
    fn label_values_are_sanitised() {
        assert_eq!(label_value("v1.2.3"), "v1.2.3");
        assert_eq!(label_value("-x+y-"), "x_y");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }
}
