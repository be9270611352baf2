//! `paved admission install --render`: the manifests that run the webhook in a cluster.
//!
//! A namespace (Pod Security `restricted` enforced), a service account, the policies and
//! configuration in a ConfigMap (or baked into the image), a Deployment of two replicas
//! (restricted pod security, spread over nodes) with a PodDisruptionBudget, a Service, a
//! NetworkPolicy (only the webhook port in, nothing out), the serving certificate (cert-manager
//! with CA injection, or a CA generated here), and the `Validating`/`MutatingWebhookConfiguration`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use paved_core::{Error, FailurePolicy, Result};
use serde_json::{Value, json};

use crate::server::Policies;

/// The port the webhook listens on in the pod.
pub const PORT: u16 = 8443;
/// Where the ConfigMap of policies is mounted; `paved.toml` is read from here.
pub const CONFIG_DIR: &str = "/etc/paved";
/// Where the serving certificate is mounted.
pub const TLS_DIR: &str = "/etc/paved-tls";
/// The most a ConfigMap holds (the API server's limit on an object).
const CONFIGMAP_MAX: usize = 1 << 20;

/// Where the serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    /// cert-manager: a self-signed CA, an Issuer of it, the serving Certificate; cert-manager's
    /// CA injector fills in the webhook configurations' `caBundle`.
    CertManager,
    /// A CA and a serving certificate generated now: a TLS Secret, and the CA as `caBundle`.
    Generate,
}

/// What to render.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The image running `paved admission serve`.
    pub image: String,
    /// Where the certificate comes from.
    pub certificates: Certificates,
    /// The image already holds `/etc/paved/paved.toml` and the plugins: no ConfigMap.
    pub policies_in_image: bool,
    /// The address ranges (CIDRs) the webhook port is open to, e.g. the control plane's; empty:
    /// any source (the API server's address is often unknown in advance).
    pub allow_from: Vec<String>,
}

/// The objects, in apply order.
pub fn render(policies: &Policies, options: &InstallOptions) -> Result<Vec<Value>> {
    let s = &policies.settings;
    let (name, ns) = (s.name.as_str(), s.namespace.as_str());
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/component": "admission-webhook",
        "app.kubernetes.io/managed-by": "paved"});
    let selector = json!({"app.kubernetes.io/name": name});
    let meta = |object: &str| json!({"name": object, "namespace": ns, "labels": labels});
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
            "app.kubernetes.io/managed-by": "paved"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name), "automountServiceAccountToken": false}),
    ];

    let mut volumes = vec![
        json!({"name": "tls", "secret": {"secretName": format!("{name}-tls")}}),
        json!({"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}}),
    ];
    let mut mounts = vec![
        json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true}),
        json!({"name": "cache", "mountPath": "/var/cache/paved"}),
    ];
    if !options.policies_in_image {
        let (configmap, items) = bundle(policies, &meta(&format!("{name}-policies")))?;
        objects.push(configmap);
        volumes.push(json!({"name": "policies", "configMap": {"name": format!("{name}-policies"), "items": items}}));
        mounts.push(json!({"name": "policies", "mountPath": CONFIG_DIR, "readOnly": true}));
    }

    let probe = |path: &str| json!({"httpGet": {"path": path, "port": PORT, "scheme": "HTTPS"}, "periodSeconds": 10, "timeoutSeconds": 2});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}}],
                    "containers": [{
                        "name": "webhook",
                        "image": options.image,
                        "args": ["admission", "serve", "--listen", format!("0.0.0.0:{PORT}"),
                            "--cert", format!("{TLS_DIR}/tls.crt"), "--key", format!("{TLS_DIR}/tls.key")],
                        // The root file system is read-only: the compiled-component cache and
                        // its key (kept apart) live on the `cache` volume.
                        "env": [{"name": "PAVED_CONFIG", "value": format!("{CONFIG_DIR}/paved.toml")},
                            {"name": "HOME", "value": "/var/cache/paved"},
                            {"name": "PAVED_POLICY_CACHE", "value": "/var/cache/paved/policy"},
                            {"name": "PAVED_POLICY_CACHE_KEY", "value": "/var/cache/paved/key/policy-cache.key"}],
                        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
                        "readinessProbe": probe("/readyz"),
                        "livenessProbe": probe("/healthz"),
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"cpu": "1", "memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                }
            }
        }
    });
    objects.push(deployment);
    objects.push(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(name),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}}}));
    objects.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(name),
        "spec": {"selector": selector, "ports": [{"name": "https", "port": 443, "targetPort": PORT, "protocol": "TCP"}]}}));
    // The webhook port is open to `allow_from` (any source when the API server's address is
    // not known), and nothing goes out (the webhook calls nothing).
    let mut ingress = json!({"ports": [{"port": PORT, "protocol": "TCP"}]});
    if !options.allow_from.is_empty() {
        ingress["from"] = options.allow_from.iter().map(|cidr| json!({"ipBlock": {"cidr": cidr}})).collect();
    }
    objects.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(name),
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [ingress], "egress": []}}));

    let dns = vec![format!("{name}.{ns}.svc"), format!("{name}.{ns}.svc.cluster.local")];
    let (ca_bundle, annotations) = match options.certificates {
        Certificates::CertManager => {
            objects.extend(cert_manager(name, ns, &labels, &dns));
            (None, json!({"cert-manager.io/inject-ca-from": format!("{ns}/{name}")}))
        }
        Certificates::Generate => {
            let (secret, ca) = generated(name, ns, &labels, &dns)?;
            objects.push(secret);
            (Some(ca), json!({}))
        }
    };
    objects.extend(webhook_configurations(policies, &labels, &annotations, ca_bundle.as_deref()));
    Ok(objects)
}

/// The ConfigMap of `paved.toml` and every plugin's manifest and component, by their paths
/// relative to `paved.toml`'s directory, and its volume's items.
fn bundle(policies: &Policies, meta: &Value) -> Result<(Value, Vec<Value>)> {
    let config = policies.config.source.clone().ok_or_else(|| {
        Error::invalid(
            "config",
            "(built-in defaults)",
            "is not a file the webhook can be given",
            Some("run it where paved.toml is, or give the path of the configuration file".into()),
        )
    })?;
    let root = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = std::fs::canonicalize(if root.as_os_str().is_empty() { Path::new(".") } else { &root })
        .map_err(|e| Error::io(&root, e))?;
    let mut files: Vec<(String, PathBuf)> = vec![("paved.toml".into(), config.clone())];
    if policies.config.org_policy.is_some() {
        return Err(Error::invalid(
            "org policy",
            "present",
            "is the organisation's file, which a ConfigMap rendered from a repository must not carry",
            Some("bake paved.toml, the organisation's policy file and the plugins into the image, and pass --policies-in-image".into()),
        ));
    }
    for policy in policies.set.policies() {
        let Some(plugin) = policy.plugin() else { continue };
        let m = plugin.manifest();
        for path in [m.dir.join(paved_policy::MANIFEST_FILE), m.component_path()] {
            let real = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
            let rel = real.strip_prefix(&root).map_err(|_| {
                Error::invalid(
                    "policy",
                    m.name.as_str(),
                    format!("lies outside {} ({})", root.display(), real.display()),
                    Some(
                        "keep plugins under paved.toml's directory, or bake them into the image (--policies-in-image)"
                            .into(),
                    ),
                )
            })?;
            files.push((rel.to_string_lossy().into_owned(), real));
        }
    }
    let mut data = BTreeMap::new();
    let mut binary = BTreeMap::new();
    let mut items = Vec::new();
    let mut size = 0;
    for (rel, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        size += bytes.len();
        let key = rel.replace('/', "__");
        items.push(json!({"key": key, "path": rel}));
        match String::from_utf8(bytes) {
            Ok(text) => data.insert(key, Value::String(text)),
            Err(e) => binary.insert(key, Value::String(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))),
        };
    }
    if size > CONFIGMAP_MAX * 3 / 4 {
        return Err(Error::invalid(
            "policies",
            format!("{} KiB", size / 1024),
            "are too large for a ConfigMap (at most 1 MiB, base64 included)",
            Some("bake paved.toml and the plugins into the image at /etc/paved and pass --policies-in-image".into()),
        ));
    }
    let mut configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data});
    if !binary.is_empty() {
        configmap["binaryData"] = json!(binary);
    }
    Ok((configmap, items))
}

fn cert_manager(name: &str, ns: &str, labels: &Value, dns: &[String]) -> Vec<Value> {
    let meta = |object: String| json!({"name": object, "namespace": ns, "labels": labels});
    vec![
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta(format!("{name}-selfsigned")),
            "spec": {"selfSigned": {}}}),
        // The CA lives ten years: renewing it changes the caBundle cert-manager injects.
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta(format!("{name}-ca")),
            "spec": {"isCA": true, "commonName": format!("{name} CA"), "secretName": format!("{name}-ca"),
                "duration": "87600h", "renewBefore": "720h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
                "issuerRef": {"name": format!("{name}-selfsigned"), "kind": "Issuer"}}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta(format!("{name}-ca")),
            "spec": {"ca": {"secretName": format!("{name}-ca")}}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta(name.to_string()),
            "spec": {"secretName": format!("{name}-tls"), "dnsNames": dns, "duration": "2160h", "renewBefore": "360h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": format!("{name}-ca"), "kind": "Issuer"}}}),
    ]
}

/// A CA and a serving certificate for `dns`, signed by it: the TLS Secret and the CA's PEM.
fn generated(name: &str, ns: &str, labels: &Value, dns: &[String]) -> Result<(Value, String)> {
    let err = |e: rcgen::Error| Error::backend("admission", format!("cannot generate the certificate: {e}"), None);
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} CA"));
    ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().map_err(err)?).map_err(err)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(dns.to_vec()).map_err(err)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, dns[0].clone());
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    let cert = params.signed_by(&key, &ca).map_err(err)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": format!("{name}-tls"), "namespace": ns, "labels": labels},
        "data": {"tls.crt": b64(&cert.pem()), "tls.key": b64(&key.serialize_pem()), "ca.crt": b64(&ca.pem())}});
    Ok((secret, b64(&ca.pem())))
}

/// The webhook configurations: the operations and kinds the policies ask for, the failure
/// policy and timeout of `[admission]`, never the excluded namespaces.
fn webhook_configurations(
    policies: &Policies,
    labels: &Value,
    annotations: &Value,
    ca_bundle: Option<&str>,
) -> Vec<Value> {
    let s = &policies.settings;
    let mut excluded = s.exclude_namespaces.clone();
    excluded.push(s.namespace.clone());
    excluded.sort();
    excluded.dedup();
    let failure = match s.failure_policy {
        FailurePolicy::Fail => "Fail",
        FailurePolicy::Ignore => "Ignore",
    };
    // A webhook of the operations and kinds `set`'s policies check; none when they check none.
    let webhook = |path: &str, set: &paved_policy::PolicySet| -> Option<Value> {
        let mut operations: Vec<&str> = set
            .policies()
            .iter()
            .filter(|p| p.manifest().actions.contains(&paved_core::Action::Deploy))
            .flat_map(|p| p.manifest().admission_operations.iter().map(|o| o.as_str()))
            .collect();
        operations.sort();
        operations.dedup();
        let connect = operations.contains(&"CONNECT");
        operations.retain(|o| *o != "CONNECT");
        let mut rules = Vec::new();
        if !operations.is_empty() {
            rules.push(json!({"apiGroups": ["*"], "apiVersions": ["*"], "operations": operations,
                "resources": resources(set), "scope": "*"}));
        }
        // CONNECT comes for subresources, which `*` does not match.
        if connect {
            rules.push(json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"],
                "resources": ["pods/exec", "pods/attach", "pods/portforward"], "scope": "Namespaced"}));
        }
        if rules.is_empty() {
            return None;
        }
        let mut client = json!({"service": {"name": s.name, "namespace": s.namespace, "path": path, "port": 443}});
        if let Some(ca) = ca_bundle {
            client["caBundle"] = json!(ca);
        }
        Some(json!({
            "name": format!("{}.{}.paved.dev", &path[1..], s.name),
            "admissionReviewVersions": ["v1"],
            "clientConfig": client,
            "failurePolicy": failure,
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "timeoutSeconds": s.timeout_seconds,
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}]},
            "rules": rules,
        }))
    };
    let meta =
        |suffix: &str| json!({"name": format!("{}{suffix}", s.name), "labels": labels, "annotations": annotations});
    let mut out = Vec::new();
    if let Some(mut hook) = webhook("/mutate", &policies.mutating) {
        hook["reinvocationPolicy"] = json!("IfNeeded");
        out.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": meta(""), "webhooks": [hook]}));
    }
    if let Some(hook) = webhook("/validate", &policies.validating) {
        out.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": meta(""), "webhooks": [hook]}));
    }
    out
}

/// The resources the policies' kinds name (`deployments`…). A policy shown every kind gets
/// every kind the audit knows ([`KINDS`](crate::audit::KINDS)): never `*`, which would send
/// Secrets (their values) to the webhook.
fn resources(set: &paved_policy::PolicySet) -> Vec<String> {
    let mut out = Vec::new();
    for p in set.policies() {
        let kinds = &p.manifest().kinds;
        if kinds.is_empty() {
            out.extend(crate::audit::KINDS.iter().map(|k| k.3.to_string()));
        } else {
            out.extend(kinds.iter().map(|k| plural(k)));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The resource name of a kind, as the API server forms it (`Ingress` → `ingresses`,
/// `NetworkPolicy` → `networkpolicies`).
pub fn plural(kind: &str) -> String {
    if let Some(known) = crate::audit::KINDS.iter().find(|k| k.0 == kind) {
        return known.3.to_string();
    }
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        return lower;
    }
    if lower.ends_with('s') || lower.ends_with("ch") || lower.ends_with("sh") || lower.ends_with('x') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u'])) {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn plurals_follow_the_api_server() {
        for (kind, resource) in [
            ("Deployment", "deployments"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("CronJob", "cronjobs"),
            ("Gateway", "gateways"),
            ("Pod", "pods"),
            ("Endpoints", "endpoints"),
            ("HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        ] {
            assert_eq!(plural(kind), resource);
        }
    }
}
