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

    vec![
        ("production", default.clone(), production),
        ("secrets-agent", agent_cfg, agent),
        ("dev", default, dev),
        ("escape-hatches", OrgConfig::default(), hatches),
        ("shared-namespace", shared_cfg, shared_request),
    ]
}

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
    // ServiceMonitor is a CRD (Prometheus operator) without a schema in kubernetes-validate:
    // it is the only object allowed to be reported, and only as "no schema".
    let unexpected: Vec<&String> = lines
        .iter()
        .filter(|l| !(l.starts_with("WARN ") && l.contains("Couldn't find schema for kind ServiceMonitor")))
        .collect();
    assert!(unexpected.is_empty() && code == 0, "exit {code}: {unexpected:#?}");
    // Four of the five scenarios render a ServiceMonitor; each is reported once per version.
    assert_eq!(lines.len(), 4 * 2, "{lines:#?}");
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
