//! Rendering tests: reviewed golden files for representative releases, determinism, escape
//! hatches, and schema validation of every rendered set with `kubernetes-validate --strict`
//! for Kubernetes 1.29 and 1.37.
//!
//! Golden files live in `tests/golden/`. After an intended change, regenerate them with
//! `PAVED_UPDATE_GOLDEN=1 cargo test -p paved-kube --test render` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use paved_core::{
    Component, CpuQuantity, DeployRequest, Error, ManifestFile, Manifests, OrgConfig, Overrides, Renderer, ResolvedApp,
    Team,
};
use paved_kube::KubeRenderer;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn render(config: &OrgConfig, request: &DeployRequest) -> paved_core::Result<Manifests> {
    KubeRenderer.render(&ResolvedApp::resolve(config, request)?)
}

/// Representative releases: name, configuration, request.
fn scenarios() -> Vec<(&'static str, OrgConfig, DeployRequest)> {
    let default = OrgConfig::default();
    let production =
        DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production").unwrap().with_replicas(3);
    let dev = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "dev").unwrap();

    let mut hatches =
        DeployRequest::new("checkout", "registry.example.com:5000/shop/checkout:v2.0.0", "staging").unwrap();
    let mut o = Overrides::default();
    o.cpu_limit = Some(CpuQuantity::new("2000m").unwrap());
    o.disabled = vec![Component::Hpa, Component::Ingress];
    // Paths relative to the crate, so the recorded escape hatches are the same on every machine.
    let load = |name: &str| {
        let mut f = ManifestFile::load(fixture(name)).unwrap();
        f.path = PathBuf::from("tests/fixtures").join(name);
        f
    };
    o.custom_manifests = vec![load("overlay.yaml")];
    o.extra_manifests = vec![load("extra.yaml")];
    hatches = hatches.with_overrides(o).with_replicas(2).with_team(Team::new("shop").unwrap());
    hatches.secrets = vec!["DB_PASSWORD=k8s://checkout-db#password".parse().unwrap()];

    let shared = OrgConfig::parse(
        "paved.toml",
        r#"
domain = "apps.acme.io"
teams = ["payments"]
[app]
namespace = "{team}-{env}"
tls_issuer = "letsencrypt"
port = 9090
health_path = "/health"
[environments.prod]
replicas = 2
autoscaling = { enabled = false }
resources = { cpu_request = "500m", memory_request = "512Mi", memory_limit = "1Gi" }
monitoring = true
"#,
    )
    .unwrap();
    let mut shared_request = DeployRequest::new(
        "ledger",
        "ghcr.io/acme/ledger@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "prod",
    )
    .unwrap();
    shared_request.team = Some(Team::new("payments").unwrap());
    let mut shared_cfg = shared;
    shared_cfg.environments.get_mut("prod").unwrap().resources.cpu_limit = None;

    let mut agent = DeployRequest::new("billing", "ghcr.io/company/billing:v3.1.0", "production").unwrap();
    agent.secrets = vec![
        "DB_PASSWORD=vault://secret/payments/db#password".parse().unwrap(),
        "API_KEY=vault://kv/billing/api#api-key?version=2".parse().unwrap(),
    ];

    // The platform team lets billing (team platform) read these paths (issue 18: references
    // are checked against [secrets] team_paths).
    let mut agent_cfg = default.clone();
    agent_cfg.secrets.team_paths = vec!["vault://secret/payments/".into(), "vault://kv/{app}/".into()];

    let (observed_cfg, observed) = observed_scenario(OBSERVED_ISTIO);
    let (linkerd_cfg, linkerd) = observed_scenario(OBSERVED_LINKERD);
    vec![
        ("production", default.clone(), production),
        ("secrets-agent", agent_cfg, agent),
        ("dev", default, dev),
        ("escape-hatches", OrgConfig::default(), hatches),
        ("shared-namespace", shared_cfg, shared_request),
        ("observability-istio", observed_cfg, observed),
        ("observability-linkerd", linkerd_cfg, linkerd),
    ]
}

/// An environment with everything of monitoring, logging, tracing and an Istio mesh on.
const OBSERVED_ISTIO: &str = r#"
domain = "apps.acme.io"
[environments.production]
replicas = 3
monitoring = true
mesh = "istio"
autoscaling = { min = 3, max = 10 }
resources = { cpu_request = "250m", cpu_limit = "1", memory_request = "256Mi", memory_limit = "512Mi" }
[environments.production.dashboard]
enabled = true
folder = "Payments"
[environments.production.alerts]
enabled = true
error_ratio = 0.02
latency_quantile = 0.95
latency_seconds = 0.5
runbook_url = "https://runbooks.acme.io/{team}/{app}/{alert}"
labels = { release = "kube-prometheus-stack" }
[environments.production.tracing]
enabled = true
endpoint = "http://otel-collector.observability:4317"
protocol = "grpc"
namespace = "observability"
sample_ratio = 0.25
[environments.production.logging]
labels = { "logging.acme.io/collect" = "true" }
annotations = { "fluentbit.io/parser" = "json" }
"#;

/// Linkerd (the table form) in a namespace shared by the team's apps, no CPU limit, no
/// autoscaler, an image by digest, the dashboard's own label and tracing over HTTP.
const OBSERVED_LINKERD: &str = r#"
domain = "apps.acme.io"
[app]
namespace = "{team}-{env}"
http_metric = "http_request_duration_seconds"
http_status_label = "code"
[environments.production]
replicas = 2
monitoring = true
autoscaling = { enabled = false }
resources = { cpu_request = "250m", memory_request = "256Mi", memory_limit = "512Mi" }
[environments.production.mesh]
provider = "linkerd"
namespace = "linkerd"
[environments.production.dashboard]
enabled = true
label = "dashboards.acme.io/grafana"
label_value = "payments"
[environments.production.alerts]
enabled = true
severity = "critical"
[environments.production.tracing]
enabled = true
endpoint = "https://otel.acme.io:4318/"
"#;

/// The configuration `text` and a production request of team payments under it.
fn observed_scenario(text: &str) -> (OrgConfig, DeployRequest) {
    let mut config = OrgConfig::parse("paved.toml", text).unwrap();
    config.environments.get_mut("production").unwrap().resources.cpu_limit =
        if text.contains("cpu_limit") { Some(CpuQuantity::new("1").unwrap()) } else { None };
    let image = if text.contains("linkerd") {
        "ghcr.io/acme/payment-service@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    } else {
        "ghcr.io/acme/payment-service:v2.4.0"
    };
    let request =
        DeployRequest::new("payment-service", image, "production").unwrap().with_team(Team::new("payments").unwrap());
    (config, request)
}

/// Custom resources kubernetes-validate has no schema for: each is reported once per version.
const CUSTOM_KINDS: [&str; 4] = ["ServiceMonitor", "PrometheusRule", "PeerAuthentication", "SecretProviderClass"];

#[test]
fn golden_files() {
    let update = std::env::var_os("PAVED_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (name, config, request) in scenarios() {
        let yaml = render(&config, &request).unwrap().to_yaml();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.yaml"));
        if update {
            std::fs::write(&path, &yaml).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != yaml {
            failures
                .push(format!("{} differs (PAVED_UPDATE_GOLDEN=1 regenerates it; review the diff)", path.display()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn rendering_is_deterministic() {
    for (_, config, request) in scenarios() {
        let a = render(&config, &request).unwrap();
        let b = render(&config, &request).unwrap();
        assert_eq!(a.to_yaml(), b.to_yaml());
        assert_eq!(a.digest(), b.digest());
    }
}

#[test]
fn secure_defaults() {
    let (_, config, request) = scenarios().remove(0);
    let m = render(&config, &request).unwrap();
    let d = m.get("Deployment", "my-service").unwrap().value();
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
    }
    assert_eq!(c["resources"]["requests"]["cpu"], "250m");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "topology.kubernetes.io/zone");
    // The HPA owns the replica count.
    assert!(d["spec"].get("replicas").is_none());
    let hpa = m.get("HorizontalPodAutoscaler", "my-service").unwrap().value();
    assert_eq!((hpa["spec"]["minReplicas"].as_u64(), hpa["spec"]["maxReplicas"].as_u64()), (Some(3), Some(10)));
    let ns = m.get("Namespace", "my-service-production").unwrap().value();
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    for o in &m {
        let labels = &o.value()["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "paved", "{}", o.key());
        if o.kind() != "Namespace" {
            assert_eq!(o.namespace(), Some("my-service-production"), "{}", o.key());
        }
    }
    let ing = m.get("Ingress", "my-service").unwrap().value();
    assert_eq!(ing["spec"]["rules"][0]["host"], "my-service.production.example.com");
}

#[test]
fn escape_hatches_apply_last() {
    let (_, config, request) = scenarios().remove(3);
    let m = render(&config, &request).unwrap();
    assert!(m.get("HorizontalPodAutoscaler", "checkout").is_none());
    assert!(m.get("Ingress", "checkout").is_none());
    let d = m.get("Deployment", "checkout").unwrap().value();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(c["resources"]["limits"]["cpu"], "2000m");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi", "the overlay wins over the default");
    let env: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    // The overlay's items first, as kustomize orders a strategic merge.
    assert_eq!(env, ["LOG_LEVEL", "DB_PASSWORD"]);
    assert_eq!(c["env"][1]["valueFrom"]["secretKeyRef"]["name"], "checkout-db");
    assert_eq!(
        d["metadata"]["annotations"]["paved.dev/escape-hatches"],
        "cpu-limit=2000m,custom-manifest=tests/fixtures/overlay.yaml,extra-manifest=tests/fixtures/extra.yaml,no-hpa,no-ingress"
    );
    let svc = m.get("Service", "checkout").unwrap().value();
    assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 1);
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    let cm = m.get("ConfigMap", "checkout-settings").unwrap();
    assert_eq!(cm.namespace(), Some("checkout-staging"));
    assert_eq!(cm.value()["metadata"]["labels"]["paved.dev/team"], "shop");
}

fn overlay_error(text: &str) -> Error {
    let (_, config, mut request) = scenarios().remove(0);
    let mut o = Overrides::default();
    o.custom_manifests = vec![ManifestFile::parse("overlay.yaml", text).unwrap()];
    request = request.with_overrides(o);
    render(&config, &request).unwrap_err()
}

#[test]
fn overlays_must_target_rendered_objects() {
    let e = overlay_error("kind: Deployment\nmetadata:\n  name: my-servce\nspec: {}\n");
    assert!(e.to_string().contains("overlay.yaml:1: the overlay targets Deployment/my-servce"), "{e}");
    assert_eq!(e.hint(), Some("did you mean \"Deployment/my-service\"?"));
    assert!(e.is_user_error());
    let e = overlay_error("---\nkind: Service\nmetadata:\n  name: my-service\n---\nspec: {}\n");
    assert!(e.to_string().starts_with("overlay.yaml:6:"), "{e}");
    let e = overlay_error("kind: Service\nmetadata:\n  name: my-service\n$patch: replac\n");
    assert!(
        e.to_string().contains("overlay.yaml:4: Service/my-service: $patch: unknown $patch directive \"replac\""),
        "{e}"
    );
    assert_eq!(e.hint(), Some("did you mean \"replace\"?"));
    let e = overlay_error("apiVersion: v2\nkind: Service\nmetadata:\n  name: my-service\n");
    assert!(e.to_string().contains("apiVersion v2"), "{e}");
    let e = overlay_error("kind: Service\nmetadata:\n  name: null\n");
    assert!(e.to_string().contains("no kind or metadata.name"), "{e}");
}

#[test]
fn overlays_can_delete_objects() {
    let (_, config, request) = scenarios().remove(0);
    let mut o = Overrides::default();
    o.custom_manifests =
        vec![ManifestFile::parse("o.yaml", "kind: Service\nmetadata: {name: my-service}\n$patch: delete\n").unwrap()];
    let m = render(&config, &request.clone().with_overrides(o)).unwrap();
    assert!(m.get("Service", "my-service").is_none());
    assert_eq!(m.len(), 8);
    // A default object with a recorded way to turn it off is not deleted behind its back.
    let mut o = Overrides::default();
    o.custom_manifests = vec![
        ManifestFile::parse("o.yaml", "kind: PodDisruptionBudget\nmetadata: {name: my-service}\n$patch: delete\n")
            .unwrap(),
    ];
    let e = render(&config, &request.with_overrides(o)).unwrap_err();
    assert_eq!(e.hint(), Some("turn it off as a recorded escape hatch: `Component::Pdb` in `disabled`"));
}

#[test]
fn extra_manifests_cannot_shadow_rendered_objects() {
    let (_, config, request) = scenarios().remove(0);
    let mut o = Overrides::default();
    o.extra_manifests =
        vec![ManifestFile::parse("x.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: my-service}\n").unwrap()];
    let e = render(&config, &request.with_overrides(o)).unwrap_err();
    assert_eq!(e.hint(), Some("use `custom_manifests` to change a rendered object"));
    let mut o = Overrides::default();
    o.extra_manifests = vec![ManifestFile::parse("x.yaml", "kind: ConfigMap\nmetadata: {name: x}\n").unwrap()];
    let (_, config, request) = scenarios().remove(0);
    let e = render(&config, &request.clone().with_overrides(o)).unwrap_err();
    assert!(e.to_string().contains("x.yaml:1: ConfigMap/x has no apiVersion"), "{e}");
    // Extra manifests of built-in kinds are checked against the schema too.
    let extra = |text: &str| {
        let mut o = Overrides::default();
        o.extra_manifests = vec![ManifestFile::parse("x.yaml", text).unwrap()];
        render(&config, &request.clone().with_overrides(o)).unwrap_err()
    };
    let e = extra("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: x}\n");
    assert_eq!(e.to_string(), "x.yaml:1: Ingress/x: apiVersion: Ingress is not served as extensions/v1beta1");
    assert_eq!(e.hint(), Some("use apiVersion: networking.k8s.io/v1"));
    let e = extra("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: 1\n");
    assert_eq!(e.to_string(), "x.yaml:5: ConfigMap/x: data.a: is a number, but must be a string");
    assert_eq!(e.hint(), Some("quote the value"));
    let hpa_v1 = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec:\n  maxReplicas: 3\n  scaleTargetRef: {kind: Deployment, name: x}\n";
    let mut o = Overrides::default();
    o.extra_manifests = vec![ManifestFile::parse("x.yaml", hpa_v1).unwrap()];
    render(&config, &request.with_overrides(o)).unwrap();
}

/// Runs kubernetes-validate on files; returns (exit code, stdout lines).
fn kubernetes_validate(files: &[PathBuf]) -> Option<(i32, Vec<String>)> {
    let tool = paved_testkit::tool("kubernetes-validate", "pip install kubernetes-validate (into .venv)")?;
    let output =
        Command::new(tool).args(["-k", "1.29", "-k", "1.37", "--strict", "--quiet"]).args(files).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.stderr.is_empty(), "kubernetes-validate failed: {}", String::from_utf8_lossy(&output.stderr));
    Some((output.status.code().unwrap_or(-1), stdout.lines().map(str::to_string).collect()))
}

#[test]
fn every_rendered_set_passes_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, config, request) in scenarios() {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, render(&config, &request).unwrap().to_yaml()).unwrap();
        files.push(path);
    }
    let Some((code, lines)) = kubernetes_validate(&files) else { return };
    // ServiceMonitor, PrometheusRule and PeerAuthentication are CRDs (Prometheus operator,
    // Istio) without a schema in kubernetes-validate: they are the only objects allowed to be
    // reported, and only as "no schema". Their golden files are reviewed instead.
    let unexpected: Vec<&String> = lines
        .iter()
        .filter(|l| {
            !(l.starts_with("WARN ")
                && CUSTOM_KINDS.iter().any(|k| l.contains(&format!("Couldn't find schema for kind {k}"))))
        })
        .collect();
    assert!(unexpected.is_empty() && code == 0, "exit {code}: {unexpected:#?}");
    // Every custom resource is reported once per version; every core object passed.
    let custom: usize = scenarios()
        .iter()
        .map(|(_, config, request)| {
            render(config, request).unwrap().iter().filter(|o| CUSTOM_KINDS.contains(&o.kind())).count()
        })
        .sum();
    assert_eq!(custom, 4 + 3 + 2, "four ServiceMonitors, Istio's three custom resources, Linkerd's two");
    assert_eq!(lines.len(), custom * 2, "{lines:#?}");
}

#[test]
fn every_rendered_set_passes_the_built_in_schema_check() {
    // The schema table overlays are checked against knows every field paved renders.
    for (name, config, request) in scenarios() {
        for object in render(&config, &request).unwrap().iter() {
            let problems = paved_kube::schema::check(object.value());
            assert!(problems.is_empty(), "{name}: {}: {problems:?}", object.key());
        }
    }
}

#[test]
fn a_bad_overlay_fails_at_plan_time_and_kubernetes_validate_agrees() {
    let (_, config, request) = scenarios().remove(0);
    let mut o = Overrides::default();
    o.custom_manifests = vec![
        ManifestFile::parse("o.yaml", "kind: Deployment\nmetadata: {name: my-service}\nspec:\n  replica: 3\n").unwrap(),
    ];
    let e = render(&config, &request.clone().with_overrides(o)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "o.yaml:4: the overlay leaves Deployment/my-service invalid: spec.replica: unknown field"
    );
    assert_eq!(e.hint(), Some("did you mean \"replicas\"?"));
    // The negative control of the schema check above: kubernetes-validate fails the same typo.
    let yaml = render(&config, &request).unwrap().to_yaml().replacen(
        "\n  progressDeadlineSeconds: ",
        "\n  replica: 3\n  progressDeadlineSeconds: ",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    let Some((code, lines)) = kubernetes_validate(&[path]) else { return };
    assert_eq!(code, 1);
    assert!(lines.iter().any(|l| l.starts_with("ERROR") && l.contains("'replica' was unexpected")), "{lines:#?}");
}

#[test]
fn vault_references_become_agent_injector_annotations_never_values() {
    let (_, config, request) = scenarios().remove(1);
    let m = render(&config, &request).unwrap();
    let d = m.get("Deployment", "billing").unwrap().value();
    let a = &d["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(a["vault.hashicorp.com/agent-inject"], "true");
    assert_eq!(a["vault.hashicorp.com/role"], "billing");
    assert_eq!(a["vault.hashicorp.com/agent-inject-secret-DB_PASSWORD"], "secret/data/payments/db");
    assert_eq!(
        a["vault.hashicorp.com/agent-inject-template-API_KEY"],
        r#"{{- with secret "kv/data/billing/api?version=2" -}}{{ index .Data.data "api-key" }}{{- end -}}"#
    );
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0], serde_json::json!({"name": "DB_PASSWORD_FILE", "value": "/vault/secrets/DB_PASSWORD"}));
    // The agent logs in with the pod's service-account token.
    assert_eq!(d["spec"]["template"]["spec"]["automountServiceAccountToken"], true);
    assert!(m.get("Secret", "billing-secrets").is_none(), "agent mode renders no Secret");
}

#[test]
fn sync_mode_is_refused_on_the_gitops_target() {
    let (_, mut config, request) = scenarios().remove(1);
    config.secrets.mode = paved_core::SecretMode::Sync;
    let platform = paved_core::Platform::builder()
        .config(config)
        .renderer(KubeRenderer)
        .deployer(paved_kube::GitOpsTarget::new("/nonexistent"))
        .build()
        .unwrap();
    let e = platform.validate(&request).unwrap_err();
    assert!(e.is_user_error());
    assert!(e.hint().unwrap().contains("a git repository is no place for secret values"), "{e}: {:?}", e.hint());
}

#[test]
fn aws_secrets_manager_references_become_an_ascp_secret_provider_class_never_values() {
    let mut config = OrgConfig::default();
    config.secrets.aws_role_arn = Some("arn:aws:iam::123456789012:role/{team}-{app}".into());
    let mut request = DeployRequest::new("billing", "ghcr.io/company/billing:v3.1.0", "production").unwrap();
    request.team = Some(Team::new("payments").unwrap());
    request.secrets = vec![
        "DB_PASSWORD=aws-sm://payments/db#password".parse().unwrap(),
        "DB_USER=aws-sm://payments/db#user-name".parse().unwrap(),
        "API_TOKEN=aws-sm://payments/api#token?version=3".parse().unwrap(),
        "VAULT_KEY=vault://secret/payments/key#value".parse().unwrap(),
    ];
    let m = render(&config, &request).unwrap();
    let class = m.get("SecretProviderClass", "billing-aws-secrets").expect("a SecretProviderClass").value();
    assert_eq!(class["apiVersion"], "secrets-store.csi.x-k8s.io/v1");
    assert_eq!(class["metadata"]["namespace"], "billing-production");
    assert_eq!(class["spec"]["provider"], "aws");
    assert!(class["spec"]["parameters"].get("usePodIdentity").is_none());
    let objects: serde_json::Value =
        serde_yaml_ng::from_str(class["spec"]["parameters"]["objects"].as_str().unwrap()).unwrap();
    assert_eq!(
        objects,
        serde_json::json!([
            { "objectName": "payments/db", "objectType": "secretsmanager", "objectAlias": ".paved-secret-0",
              "jmesPath": [{ "path": "\"password\"", "objectAlias": "DB_PASSWORD" }, { "path": "\"user-name\"", "objectAlias": "DB_USER" }] },
            { "objectName": "payments/api", "objectType": "secretsmanager", "objectAlias": ".paved-secret-1",
              "objectVersion": "paved-v00000000000000000000000003",
              "jmesPath": [{ "path": "\"token\"", "objectAlias": "API_TOKEN" }] },
        ])
    );
    let d = m.get("Deployment", "billing").unwrap().value();
    let pod = &d["spec"]["template"]["spec"];
    let env = &pod["containers"][0]["env"];
    assert_eq!(env[0], serde_json::json!({"name": "DB_PASSWORD_FILE", "value": "/mnt/secrets-store/DB_PASSWORD"}));
    assert_eq!(env[2], serde_json::json!({"name": "API_TOKEN_FILE", "value": "/mnt/secrets-store/API_TOKEN"}));
    // The Vault reference beside them still goes through the agent injector.
    assert_eq!(env[3]["value"], "/vault/secrets/VAULT_KEY");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "aws-secrets").unwrap();
    assert_eq!(volume["csi"]["driver"], "secrets-store.csi.k8s.io");
    assert_eq!(volume["csi"]["volumeAttributes"]["secretProviderClass"], "billing-aws-secrets");
    let mount =
        pod["containers"][0]["volumeMounts"].as_array().unwrap().iter().find(|v| v["name"] == "aws-secrets").unwrap();
    assert_eq!((mount["mountPath"].as_str(), mount["readOnly"].as_bool()), (Some("/mnt/secrets-store"), Some(true)));
    let account = m.get("ServiceAccount", "billing").unwrap().value();
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/payments-billing"
    );
    assert!(
        !m.to_yaml().contains("Secret\n") || m.get("Secret", "billing-secrets").is_none(),
        "agent mode renders no Secret"
    );
    // Pod Identity instead of IRSA.
    config.secrets.aws_pod_identity = true;
    let m = render(&config, &request).unwrap();
    assert_eq!(
        m.get("SecretProviderClass", "billing-aws-secrets").unwrap().value()["spec"]["parameters"]["usePodIdentity"],
        "true"
    );
    // The core kinds stay strictly valid; the SecretProviderClass is a CRD without a schema.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ascp.yaml");
    std::fs::write(&path, m.to_yaml()).unwrap();
    let Some((code, lines)) = kubernetes_validate(&[path]) else { return };
    let unexpected: Vec<&String> = lines
        .iter()
        .filter(|l| {
            !(l.starts_with("WARN ") && (l.contains("kind SecretProviderClass") || l.contains("kind ServiceMonitor")))
        })
        .collect();
    assert!(unexpected.is_empty() && code == 0, "exit {code}: {unexpected:#?}");
    // Sync mode: no provider class, the values go into the app's Secret.
    config.secrets.mode = paved_core::SecretMode::Sync;
    let m = render(&config, &request).unwrap();
    assert!(m.get("SecretProviderClass", "billing-aws-secrets").is_none());
    assert!(m.get("Secret", "billing-secrets").is_some());
}

fn observed_render(text: &str, disabled: &[Component]) -> Manifests {
    let (config, request) = observed_scenario(text);
    let mut o = Overrides::default();
    o.disabled = disabled.to_vec();
    render(&config, &request.with_overrides(o)).unwrap()
}

fn env_names(d: &serde_json::Value) -> Vec<String> {
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    env.as_array().map(|e| e.iter().map(|v| v["name"].as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// The TCP ports of every ingress (or egress) rule of the app's NetworkPolicy.
fn policy_ports(m: &Manifests, direction: &str) -> Vec<Vec<String>> {
    let np = m.get("NetworkPolicy", "payment-service").unwrap().value();
    np["spec"][direction]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["ports"].as_array().unwrap().iter().map(|p| p["port"].to_string().replace('"', "")).collect())
        .collect()
}

#[test]
fn monitoring_tracing_logging_and_istio_render_as_configured() {
    let m = observed_render(OBSERVED_ISTIO, &[]);
    let kinds: Vec<&str> = m.iter().map(|o| o.kind()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "Ingress",
            "ServiceMonitor",
            "ConfigMap",
            "PrometheusRule",
            "PeerAuthentication"
        ]
    );
    // The dashboard: the sidecar's label, the folder, and JSON whose every query is the app's.
    let cm = m.get("ConfigMap", "payment-service-dashboard").unwrap().value();
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Payments");
    let dashboard: serde_json::Value =
        serde_json::from_str(cm["data"]["payment-service.json"].as_str().unwrap()).unwrap();
    let titles: Vec<&str> =
        dashboard["panels"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Request rate", "Error ratio", "Latency", "CPU and memory", "Replicas"]);
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap()))
        .collect();
    assert_eq!(exprs.len(), 1 + 1 + 3 + 2 + 3);
    for e in &exprs {
        assert!(e.contains("namespace=\"payment-service-production\""), "{e}");
    }
    for q in ["0.5", "0.95", "0.99"] {
        assert!(exprs.iter().any(|e| e.starts_with(&format!("histogram_quantile({q}, "))), "p{q}");
    }
    assert!(exprs.iter().any(|e| e.contains("kube_pod_container_resource_limits") && e.contains("resource=\"cpu\"")));
    assert!(exprs.iter().any(|e| e.contains("kube_horizontalpodautoscaler_spec_max_replicas")));
    // The alerts.
    let rule = m.get("PrometheusRule", "payment-service").unwrap().value();
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(names, ["HTTPErrorRatioHigh", "HTTPLatencyHigh", "ContainerRestarting", "AutoscalerAtMaxReplicas"]);
    assert!(rules[0]["expr"].as_str().unwrap().ends_with(" > 0.02"));
    assert!(rules[1]["expr"].as_str().unwrap().starts_with("histogram_quantile(0.95, "));
    assert!(rules[1]["annotations"]["summary"].as_str().unwrap().starts_with("p95 latency"));
    for r in rules {
        assert_eq!(r["labels"], serde_json::json!({ "severity": "warning", "team": "payments" }));
        assert_eq!(
            r["annotations"]["runbook_url"],
            format!("https://runbooks.acme.io/payments/payment-service/{}", r["alert"].as_str().unwrap())
        );
    }
    // OpenTelemetry.
    let d = m.get("Deployment", "payment-service").unwrap().value();
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    let value = |name: &str| env.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()["value"].clone();
    assert_eq!(value("OTEL_SERVICE_NAME"), "payment-service");
    assert_eq!(
        value("OTEL_RESOURCE_ATTRIBUTES"),
        "service.namespace=payments,deployment.environment.name=production,service.version=v2.4.0"
    );
    assert_eq!(value("OTEL_EXPORTER_OTLP_ENDPOINT"), "http://otel-collector.observability:4317");
    assert_eq!(value("OTEL_EXPORTER_OTLP_PROTOCOL"), "grpc");
    assert_eq!(value("OTEL_TRACES_SAMPLER_ARG"), "0.25");
    // A variable the app sets itself (here from a Kubernetes secret) is not set twice.
    let (config, mut request) = observed_scenario(OBSERVED_ISTIO);
    request.secrets = vec!["OTEL_EXPORTER_OTLP_ENDPOINT=k8s://otel#endpoint".parse().unwrap()];
    let own = render(&config, &request).unwrap();
    let names = env_names(own.get("Deployment", "payment-service").unwrap().value());
    assert_eq!(names.iter().filter(|n| *n == "OTEL_EXPORTER_OTLP_ENDPOINT").count(), 1, "{names:?}");
    assert_eq!(names[0], "OTEL_EXPORTER_OTLP_ENDPOINT");
    // Logging: on the pods, not in the selector.
    let pod = &d["spec"]["template"]["metadata"];
    assert_eq!(pod["labels"]["logging.acme.io/collect"], "true");
    assert_eq!(pod["annotations"]["fluentbit.io/parser"], "json");
    assert!(d["spec"]["selector"]["matchLabels"].get("logging.acme.io/collect").is_none());
    // Istio: injection, STRICT mutual TLS for the app's pods, merged metrics for Prometheus.
    let ns = m.get("Namespace", "payment-service-production").unwrap().value();
    assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
    let pa = m.get("PeerAuthentication", "payment-service").unwrap().value();
    assert_eq!(pa["apiVersion"], "security.istio.io/v1");
    assert_eq!(pa["spec"]["mtls"]["mode"], "STRICT");
    assert_eq!(pa["spec"]["selector"], d["spec"]["selector"]);
    assert_eq!(pod["annotations"]["prometheus.io/port"], "8080");
    let sm = m.get("ServiceMonitor", "payment-service").unwrap().value();
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "istio-metrics");
    let svc = m.get("Service", "payment-service").unwrap().value();
    assert_eq!(svc["spec"]["ports"][1]["port"], 15020);
    // The NetworkPolicy: HBONE beside the app's port, Prometheus to the metrics ports only,
    // the collector in its namespace, istiod's xDS.
    assert_eq!(policy_ports(&m, "ingress"), [vec!["http", "15008"], vec!["15020", "15090"]]);
    assert_eq!(policy_ports(&m, "egress"), [vec!["53", "53"], vec!["443"], vec!["4317"], vec!["15012"]]);
    let np = m.get("NetworkPolicy", "payment-service").unwrap().value();
    assert_eq!(
        np["spec"]["egress"][2]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "observability"
    );
    assert_eq!(
        np["spec"]["egress"][3]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "istio-system"
    );
}

#[test]
fn observability_escape_hatches_switch_each_part_off_and_are_recorded() {
    let all = [Component::Dashboard, Component::Alerts, Component::Tracing, Component::Mesh];
    let m = observed_render(OBSERVED_ISTIO, &all);
    for kind in ["ConfigMap", "PrometheusRule", "PeerAuthentication"] {
        assert!(m.iter().all(|o| o.kind() != kind), "{kind} is switched off");
    }
    let d = m.get("Deployment", "payment-service").unwrap().value();
    assert!(env_names(d).is_empty(), "{:?}", env_names(d));
    assert_eq!(d["metadata"]["annotations"]["paved.dev/escape-hatches"], "no-dashboard,no-alerts,no-tracing,no-mesh");
    // Out of the mesh: the pods opt out, the app's own namespace is not injected, Prometheus
    // scrapes the app's port again, and no mesh port is open.
    let pod = &d["spec"]["template"]["metadata"];
    assert_eq!(pod["labels"]["sidecar.istio.io/inject"], "false");
    assert!(pod["annotations"].get("prometheus.io/scrape").is_none());
    let ns = m.get("Namespace", "payment-service-production").unwrap().value();
    assert!(ns["metadata"]["labels"].get("istio-injection").is_none());
    assert_eq!(m.get("ServiceMonitor", "payment-service").unwrap().value()["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(m.get("Service", "payment-service").unwrap().value()["spec"]["ports"].as_array().unwrap().len(), 1);
    assert_eq!(policy_ports(&m, "ingress"), [vec!["http"], vec!["http"]]);
    assert_eq!(policy_ports(&m, "egress"), [vec!["53", "53"], vec!["443"]]);
    // Logging is not an object: it stays.
    assert_eq!(pod["labels"]["logging.acme.io/collect"], "true");

    // Each part alone.
    let m = observed_render(OBSERVED_ISTIO, &[Component::Alerts]);
    assert!(m.get("PrometheusRule", "payment-service").is_none());
    assert!(m.get("ConfigMap", "payment-service-dashboard").is_some());
    let m = observed_render(OBSERVED_ISTIO, &[Component::Tracing]);
    let d = m.get("Deployment", "payment-service").unwrap().value();
    assert!(env_names(d).is_empty());
    assert_eq!(policy_ports(&m, "egress"), [vec!["53", "53"], vec!["443"], vec!["15012"]]);

    // A namespace shared by the team's apps keeps the environment's injection switch, so that
    // every app renders the same Namespace; the app's pods opt out themselves.
    let m = observed_render(OBSERVED_LINKERD, &[Component::Mesh]);
    let ns = m.get("Namespace", "payments-production").unwrap().value();
    assert_eq!(ns["metadata"]["annotations"]["linkerd.io/inject"], "enabled");
    let pod = &m.get("Deployment", "payment-service").unwrap().value()["spec"]["template"]["metadata"];
    assert_eq!(pod["annotations"]["linkerd.io/inject"], "disabled");
    assert!(pod["annotations"].get("config.linkerd.io/default-inbound-policy").is_none());
}

#[test]
fn linkerd_and_permissive_mutual_tls() {
    let m = observed_render(OBSERVED_LINKERD, &[]);
    assert!(m.get("PeerAuthentication", "payment-service").is_none(), "Istio's kind only");
    let d = m.get("Deployment", "payment-service").unwrap().value();
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["config.linkerd.io/default-inbound-policy"],
        "all-authenticated"
    );
    assert_eq!(policy_ports(&m, "ingress"), [vec!["http", "4143"], vec!["http", "4143", "4191"]]);
    assert_eq!(policy_ports(&m, "egress"), [vec!["53", "53"], vec!["443"], vec!["4318"], vec!["8080", "8086", "8090"]]);
    let cm = m.get("ConfigMap", "payment-service-dashboard").unwrap().value();
    assert_eq!(cm["metadata"]["labels"]["dashboards.acme.io/grafana"], "payments");
    assert!(cm["metadata"].get("annotations").is_none(), "no folder");
    // No autoscaler: no alert on it, and CPU is measured against requests (no CPU limit).
    let rule = m.get("PrometheusRule", "payment-service").unwrap().value();
    assert_eq!(rule["spec"]["groups"][0]["rules"].as_array().unwrap().len(), 3);
    let json = cm["data"]["payment-service.json"].as_str().unwrap();
    assert!(json.contains("kube_pod_container_resource_requests") && !json.contains("horizontalpodautoscaler"));

    let permissive = |text: &str| {
        let (mut config, request) = observed_scenario(text);
        config.environments.get_mut("production").unwrap().mesh.as_mut().unwrap().mtls =
            paved_core::observability::MtlsMode::Permissive;
        render(&config, &request).unwrap()
    };
    let m = permissive(OBSERVED_ISTIO);
    assert_eq!(m.get("PeerAuthentication", "payment-service").unwrap().value()["spec"]["mtls"]["mode"], "PERMISSIVE");
    let m = permissive(OBSERVED_LINKERD);
    let d = m.get("Deployment", "payment-service").unwrap().value();
    assert!(d["spec"]["template"]["metadata"].get("annotations").is_none());
}

#[test]
fn overlays_cannot_delete_observability_objects_behind_their_escape_hatch() {
    let (config, request) = observed_scenario(OBSERVED_ISTIO);
    for (kind, name, hint) in [
        ("PrometheusRule", "payment-service", "`Component::Alerts` in `disabled`"),
        ("PeerAuthentication", "payment-service", "`Component::Mesh` in `disabled`"),
        ("ConfigMap", "payment-service-dashboard", "`Component::Dashboard` in `disabled`"),
    ] {
        let mut o = Overrides::default();
        let text = format!("kind: {kind}\nmetadata: {{name: {name}}}\n$patch: delete\n");
        o.custom_manifests = vec![ManifestFile::parse("o.yaml", &text).unwrap()];
        let e = render(&config, &request.clone().with_overrides(o)).unwrap_err();
        assert!(e.hint().unwrap().ends_with(hint), "{kind}: {:?}", e.hint());
    }
}

/// The PrometheusRule's groups as a Prometheus rule file.
fn rule_file(m: &Manifests) -> String {
    let rule = m.get("PrometheusRule", "payment-service").unwrap().value();
    serde_yaml_ng::to_string(&serde_json::json!({ "groups": rule["spec"]["groups"] })).unwrap()
}

fn promtool(dir: &Path, args: &[&str]) -> Option<(bool, String)> {
    let tool = paved_testkit::tool("promtool", "apt-get install -y --no-install-recommends prometheus")?;
    let out = Command::new(tool).current_dir(dir).args(args).output().unwrap();
    Some((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

#[test]
fn alert_rules_are_valid_promql_and_fire_when_they_should() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("istio.yaml", OBSERVED_ISTIO), ("linkerd.yaml", OBSERVED_LINKERD)] {
        std::fs::write(dir.path().join(name), rule_file(&observed_render(text, &[]))).unwrap();
        let Some((ok, out)) = promtool(dir.path(), &["check", "rules", name]) else { return };
        assert!(ok, "{name}: {out}");
        assert!(out.contains(&format!("SUCCESS: {} rules found", if name == "istio.yaml" { 4 } else { 3 })), "{out}");
    }
    // The dashboard's queries are valid PromQL too (Grafana's `$__rate_interval` as 5m), checked
    // as recording rules.
    for (name, text) in [("dashboard-istio.yaml", OBSERVED_ISTIO), ("dashboard-linkerd.yaml", OBSERVED_LINKERD)] {
        let m = observed_render(text, &[]);
        let cm = m.get("ConfigMap", "payment-service-dashboard").unwrap().value();
        let dashboard: serde_json::Value =
            serde_json::from_str(cm["data"]["payment-service.json"].as_str().unwrap()).unwrap();
        let rules: Vec<serde_json::Value> = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["targets"].as_array().unwrap().clone())
            .enumerate()
            .map(|(i, t)| {
                let expr = t["expr"].as_str().unwrap().replace("$__rate_interval", "5m");
                serde_json::json!({ "record": format!("dashboard:query{i}"), "expr": expr })
            })
            .collect();
        let file = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
        std::fs::write(dir.path().join(name), serde_yaml_ng::to_string(&file).unwrap()).unwrap();
        let (ok, out) = promtool(dir.path(), &["check", "rules", name]).unwrap();
        assert!(ok && out.contains(&format!("SUCCESS: {} rules found", rules.len())), "{name}: {out}");
    }
    // The negative control: promtool refuses a broken expression.
    let broken = rule_file(&observed_render(OBSERVED_ISTIO, &[])).replacen("sum by (le) (", "sum by (le) ((", 1);
    std::fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    let (ok, out) = promtool(dir.path(), &["check", "rules", "broken.yaml"]).unwrap();
    assert!(!ok, "{out}");

    // Behaviour: with 10% errors, every request between 0.1s and 2.5s (p95 = 0.1 + 0.95 × 2.4
    // = 2.38s by linear interpolation in the bucket), a restarting container and the
    // autoscaler at 10 of 10, every alert fires with the app's labels; with healthy series,
    // none does.
    let ns = "payment-service-production";
    let (http, sel) =
        ("http_server_request_duration_seconds", format!("namespace=\"{ns}\",service=\"payment-service\""));
    let series = |errors: u32, slow: bool, restarts: u32, replicas: u32| {
        let bucket = |le: &str, per_minute: u32| {
            format!("  - series: '{http}_bucket{{{sel},le=\"{le}\"}}'\n    values: '0+{per_minute}x40'\n")
        };
        let fast = if slow { 0 } else { 100 };
        [
            format!("  - series: '{http}_count{{{sel},http_response_status_code=\"500\"}}'\n    values: '0+{errors}x40'\n"),
            format!("  - series: '{http}_count{{{sel},http_response_status_code=\"200\"}}'\n    values: '0+{}x40'\n", 100 - errors),
            bucket("0.1", fast),
            bucket("2.5", 100),
            bucket("+Inf", 100),
            format!("  - series: 'kube_pod_container_status_restarts_total{{namespace=\"{ns}\",pod=\"payment-service-5d8f7c9b4-x2x7q\",container=\"payment-service\"}}'\n    values: '0+{restarts}x40'\n"),
            format!("  - series: 'kube_horizontalpodautoscaler_status_current_replicas{{namespace=\"{ns}\",horizontalpodautoscaler=\"payment-service\"}}'\n    values: '{replicas}x40'\n"),
            format!("  - series: 'kube_horizontalpodautoscaler_spec_max_replicas{{namespace=\"{ns}\",horizontalpodautoscaler=\"payment-service\"}}'\n    values: '10x40'\n"),
        ]
        .concat()
    };
    let labels = "severity: warning\n        team: payments\n";
    let tests = format!(
        r#"rule_files: [istio.yaml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
{failing}  alert_rule_test:
  - eval_time: 30m
    alertname: HTTPErrorRatioHigh
    exp_alerts:
    - exp_labels:
        {labels}      exp_annotations:
        summary: 10% of the requests to payment-service in production fail with 5xx (threshold 2%)
        runbook_url: https://runbooks.acme.io/payments/payment-service/HTTPErrorRatioHigh
  - eval_time: 30m
    alertname: HTTPLatencyHigh
    exp_alerts:
    - exp_labels:
        {labels}      exp_annotations:
        summary: p95 latency of payment-service in production is 2.38s (threshold 0.5s)
        runbook_url: https://runbooks.acme.io/payments/payment-service/HTTPLatencyHigh
  - eval_time: 30m
    alertname: ContainerRestarting
    exp_alerts:
    - exp_labels:
        {labels}        namespace: {ns}
        pod: payment-service-5d8f7c9b4-x2x7q
        container: payment-service
      exp_annotations:
        summary: container payment-service of pod payment-service-5d8f7c9b4-x2x7q in production restarted 15 times in 15 minutes
        runbook_url: https://runbooks.acme.io/payments/payment-service/ContainerRestarting
  - eval_time: 30m
    alertname: AutoscalerAtMaxReplicas
    exp_alerts:
    - exp_labels:
        {labels}        namespace: {ns}
        horizontalpodautoscaler: payment-service
      exp_annotations:
        summary: payment-service in production runs at its autoscaler's maximum of 10 replicas
        runbook_url: https://runbooks.acme.io/payments/payment-service/AutoscalerAtMaxReplicas
- interval: 1m
  input_series:
{healthy}  alert_rule_test:
  - {{eval_time: 30m, alertname: HTTPErrorRatioHigh}}
  - {{eval_time: 30m, alertname: HTTPLatencyHigh}}
  - {{eval_time: 30m, alertname: ContainerRestarting}}
  - {{eval_time: 30m, alertname: AutoscalerAtMaxReplicas}}
"#,
        failing = series(10, true, 1, 10),
        healthy = series(1, false, 0, 4),
    );
    std::fs::write(dir.path().join("tests.yaml"), &tests).unwrap();
    let (ok, out) = promtool(dir.path(), &["test", "rules", "tests.yaml"]).unwrap();
    assert!(ok, "{out}\n{tests}");
}
