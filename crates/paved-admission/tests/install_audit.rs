//! `install --render` (strictly valid for Kubernetes 1.29 and 1.37; the cert-manager objects
//! against a reviewed golden file) and the audit against the scripted API server.

use std::path::Path;
use std::process::Command;

use paved_admission::Policies;
use paved_admission::audit::{AuditOptions, audit};
use paved_admission::install::{Certificates, InstallOptions, render};
use paved_core::OrgConfig;
use paved_kube::testing::MockApiServer;
use serde_json::{Value, json};

fn options(certificates: Certificates) -> InstallOptions {
    InstallOptions {
        image: "ghcr.io/paved-dev/paved:0.1.0".into(),
        certificates,
        policies_in_image: false,
        allow_from: vec!["10.0.0.0/24".into()],
    }
}

/// A configuration file with one bundled plugin (its ConfigMap carries the component).
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    std::fs::create_dir_all(dir.path().join("plugins/disallow-latest-tag")).unwrap();
    for file in ["policy.toml", "policy.wasm"] {
        std::fs::copy(
            plugins.join("disallow-latest-tag").join(file),
            dir.path().join("plugins/disallow-latest-tag").join(file),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("paved.toml"),
        "[[policies]]\npath = \"plugins/disallow-latest-tag\"\n[admission]\ntimeout_seconds = 5\n",
    )
    .unwrap();
    dir
}

#[test]
fn install_renders_strictly_valid_manifests() {
    let dir = config_dir();
    let policies = Policies::load(OrgConfig::load(dir.path().join("paved.toml")).unwrap()).unwrap();
    let mut core = Vec::new();
    for certificates in [Certificates::CertManager, Certificates::Generate] {
        let objects = render(&policies, &options(certificates)).unwrap();
        let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        for kind in [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "NetworkPolicy",
            "ValidatingWebhookConfiguration",
        ] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let webhook = objects.iter().find(|o| o["kind"] == "ValidatingWebhookConfiguration").unwrap();
        let hook = &webhook["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
        assert_eq!(
            hook["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(["kube-node-lease", "kube-public", "kube-system", "paved-system"])
        );
        let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(deployment["spec"]["replicas"], 2);
        // The ConfigMap holds paved.toml and the plugin, at the paths paved.toml names.
        let cm = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        assert!(cm["data"]["paved.toml"].as_str().unwrap().contains("disallow-latest-tag"));
        assert!(cm["binaryData"]["plugins__disallow-latest-tag__policy.wasm"].is_string());
        match certificates {
            Certificates::CertManager => {
                assert_eq!(
                    webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                    "paved-system/paved-admission"
                );
                let crds: Vec<&Value> = objects.iter().filter(|o| o["apiVersion"] == "cert-manager.io/v1").collect();
                let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/install-cert-manager.yaml");
                let text: String = crds.iter().map(|o| format!("---\n{}", paved_core::yaml::to_string(o))).collect();
                if std::env::var_os("PAVED_BLESS").is_some() {
                    std::fs::write(&golden, &text).unwrap();
                }
                assert_eq!(text, std::fs::read_to_string(&golden).unwrap(), "review, then PAVED_BLESS=1");
            }
            Certificates::Generate => {
                let ca = hook["clientConfig"]["caBundle"].as_str().unwrap();
                let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
                assert_eq!(secret["type"], "kubernetes.io/tls");
                assert_eq!(secret["data"]["ca.crt"].as_str(), Some(ca));
            }
        }
        core.extend(objects.into_iter().filter(|o| o["apiVersion"] != "cert-manager.io/v1"));
    }
    // kubernetes-validate, strict, for both versions.
    let Some(tool) = paved_testkit::tool("kubernetes-validate", "pip install kubernetes-validate (into .venv)") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, object) in core.iter().enumerate() {
        let path = out.path().join(format!("{i}.yaml"));
        std::fs::write(&path, paved_core::yaml::to_string(object)).unwrap();
        files.push(path);
    }
    let output =
        Command::new(tool).args(["-k", "1.29", "-k", "1.37", "--strict", "--quiet"]).args(&files).output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// DELETE and CONNECT reach the webhook only when a policy asks for them; CONNECT as the pod
/// subresources it comes for.
#[test]
fn operations_and_connect_subresources_follow_the_policies() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let plugin = dir.path().join("plugins/admission-context");
    std::fs::create_dir_all(&plugin).unwrap();
    for file in ["policy.toml", "policy.wasm"] {
        std::fs::copy(plugins.join("testdata/admission-context").join(file), plugin.join(file)).unwrap();
    }
    let manifest = std::fs::read_to_string(plugin.join("policy.toml")).unwrap();
    std::fs::write(plugin.join("policy.toml"), manifest.replace("\"DELETE\"]", "\"DELETE\", \"CONNECT\"]")).unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        "baseline = false\n[[policies]]\npath = \"plugins/admission-context\"\n",
    )
    .unwrap();
    let policies = Policies::load(OrgConfig::load(dir.path().join("paved.toml")).unwrap()).unwrap();
    let objects = render(&policies, &options(Certificates::CertManager)).unwrap();
    let hook = &objects.iter().find(|o| o["kind"] == "ValidatingWebhookConfiguration").unwrap()["webhooks"][0];
    assert_eq!(hook["rules"][0]["operations"], json!(["CREATE", "DELETE", "UPDATE"]));
    // A policy shown every kind: the kinds paved knows, never `*` (which would send Secrets).
    let resources = hook["rules"][0]["resources"].as_array().unwrap();
    assert!(resources.contains(&json!("deployments")) && !resources.iter().any(|r| r == "*" || r == "secrets"));
    assert_eq!(
        hook["rules"][1],
        json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"],
        "resources": ["pods/exec", "pods/attach", "pods/portforward"], "scope": "Namespaced"})
    );
    assert!(objects.iter().all(|o| o["kind"] != "MutatingWebhookConfiguration"), "no mutating policy");
    let np = objects.iter().find(|o| o["kind"] == "NetworkPolicy").unwrap();
    assert_eq!(np["spec"]["ingress"][0]["from"], json!([{"ipBlock": {"cidr": "10.0.0.0/24"}}]));
}

#[tokio::test]
async fn audit_pages_through_the_cluster_and_writes_policy_reports() {
    let (client, server) = MockApiServer::start();
    server.serve("wgpolicyk8s.io/v1alpha2", "policyreports", "PolicyReport", true);
    server.serve("wgpolicyk8s.io/v1alpha2", "clusterpolicyreports", "ClusterPolicyReport", false);
    let fixture = |name: &str| -> Value {
        let body: Value = serde_json::from_slice(
            &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap(),
        )
        .unwrap();
        body["request"]["object"].clone()
    };
    for ns in ["web-production", "kube-system"] {
        server.insert(
            &format!("/api/v1/namespaces/{ns}"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
    }
    let good = fixture("deployment-create.json");
    server.insert("/apis/apps/v1/namespaces/web-production/deployments/web", good.clone());
    let mut bad = good.clone();
    bad["metadata"]["name"] = json!("api");
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ghcr.io/company/api:latest");
    server.insert("/apis/apps/v1/namespaces/web-production/deployments/api", bad);
    let mut third = good.clone();
    third["metadata"]["name"] = json!("worker");
    server.insert("/apis/apps/v1/namespaces/web-production/deployments/worker", third);
    // A privileged Pod in kube-system (excluded) and one owned by a ReplicaSet (its owner is
    // audited): neither is evaluated.
    let mut pod = fixture("pod-create.json");
    pod["metadata"]["namespace"] = json!("kube-system");
    server.insert("/api/v1/namespaces/kube-system/pods/debug", pod.clone());
    pod["metadata"]["namespace"] = json!("web-production");
    pod["metadata"]["name"] = json!("web-abc");
    pod["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1", "controller": true}]);
    server.insert("/api/v1/namespaces/web-production/pods/web-abc", pod);

    let policies = Policies::load(OrgConfig::parse("paved.toml", "").unwrap()).unwrap();
    let summary = audit(client, &policies, &AuditOptions { page_size: 1, write: true }).await.unwrap();
    // The three Deployments: the baseline's kinds are pod-bearing ones (no Namespace).
    assert_eq!(summary.objects, 3, "{summary:?}");
    assert_eq!(summary.total.fail, 1, "{:?}", summary.policies);
    assert_eq!(summary.policies["disallow-latest-tag"].fail, 1);
    let report =
        server.get("/apis/wgpolicyk8s.io/v1alpha2/namespaces/web-production/policyreports/paved-audit").unwrap();
    assert_eq!(report["summary"]["fail"], 1);
    let fail = report["results"].as_array().unwrap().iter().find(|r| r["result"] == "fail").unwrap();
    assert_eq!(fail["policy"], "disallow-latest-tag");
    assert_eq!(fail["resources"][0]["name"], "api");
    assert_eq!(fail["properties"]["path"], "spec.template.spec.containers[0].image");
    assert!(fail["properties"]["hint"].as_str().unwrap().contains("immutable version tag"));
    assert_eq!(report["summary"]["pass"], 32, "11 policies × 3 Deployments, less the failure");
    assert!(
        server.get("/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/paved-audit").is_none(),
        "nothing cluster-scoped"
    );
    // The lists went page by page (limit and continue).
    let requests = server.requests();
    let deployment_pages = requests.iter().filter(|r| r.method == "GET" && r.path.ends_with("/deployments")).count();
    assert_eq!(deployment_pages, 3, "three Deployments, one per page");
    assert_eq!(
        requests.iter().filter(|r| r.query.contains_key("continue")).count(),
        2 + 1,
        "deployments twice, pods once"
    );
    assert!(
        requests.iter().filter(|r| r.method == "GET").all(|r| r.query.get("limit").map(String::as_str) == Some("1"))
    );
}
