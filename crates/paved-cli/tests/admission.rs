//! `paved admission install|audit` as a user of the CLI meets them: outputs, exit codes and
//! hints. (`serve` is run end to end with each language's scaffolded policy in `policy.rs`.)

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use paved_kube::testing::MockApiServer;
use predicates::prelude::*;
use serde_json::{Value, json};

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("paved").unwrap();
    cmd.current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("PAVED_CONFIG")
        .env_remove("PAVED_ORG_CONFIG")
        .env("HOME", dir)
        .env("PAVED_POLICY_CACHE", dir.join("cache"))
        .timeout(Duration::from_secs(60));
    cmd
}

#[test]
fn install_renders_manifests_and_refuses_bad_settings_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("paved.toml"), "[admission]\ntimeout_seconds = 5\n").unwrap();
    paved(dir.path())
        .args(["admission", "install", "--render"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kind: ValidatingWebhookConfiguration"))
        .stdout(predicate::str::contains("timeoutSeconds: 5"))
        .stdout(predicate::str::contains("cert-manager.io/inject-ca-from: paved-system/paved-admission"));
    let out = paved(dir.path())
        .args(["admission", "install", "--render", "--certificates", "generate", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list["items"].as_array().unwrap().iter().any(|o| o["kind"] == "Secret" && o["type"] == "kubernetes.io/tls")
    );
    // Only --render: paved never applies its own webhook.
    paved(dir.path()).args(["admission", "install"]).assert().code(2);
    // A typo in [admission]: exit 2, nothing printed on stdout, a did-you-mean.
    std::fs::write(dir.path().join("paved.toml"), "[admission]\ndefault_environment = \"prodution\"\n").unwrap();
    paved(dir.path())
        .args(["admission", "install", "--render"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("did you mean \"production\"?"));
}

#[test]
fn audit_reports_to_the_cluster_and_exits_1_on_a_failure() {
    let (url, server) = MockApiServer::listen();
    server.serve("wgpolicyk8s.io/v1alpha2", "policyreports", "PolicyReport", true);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = MockApiServer::write_kubeconfig(dir.path(), &url);
    server.insert(
        "/api/v1/namespaces/shop-production",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-production"}}),
    );
    server.insert(
        "/apis/apps/v1/namespaces/shop-production/deployments/web",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop-production"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "ghcr.io/company/web:latest"}]}}}}),
    );
    let audit = |extra: &[&str]| {
        paved(dir.path())
            .args(["admission", "audit", "--target", "kube", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .output()
            .unwrap()
    };
    // A dry run: the summary, no report.
    let out = audit(&["--dry-run", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["objects"], 1);
    assert_eq!(summary["policies"]["disallow-latest-tag"]["fail"], 1);
    assert!(server.get("/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop-production/policyreports/paved-audit").is_none());
    // For real: the report is in the cluster.
    let out = audit(&["--no-emoji"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("audited 1 objects:") && text.contains("disallow-latest-tag"), "{text}");
    let report =
        server.get("/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop-production/policyreports/paved-audit").unwrap();
    assert!(report["summary"]["fail"].as_u64().unwrap() >= 1, "{report}");
    // Not a cluster: exit 2 with the flag to use.
    paved(dir.path())
        .args(["admission", "audit"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use --target kube"));
}
