//! `paved … --target kube` against paved's scripted Kubernetes API server, served over HTTP
//! (`MockApiServer::listen`): the behaviours of the live target as a user of the CLI meets them,
//! with their exit codes and messages. (No real API server can run here; the `#[ignore]`d
//! end-to-end tests in `paved-kube/tests/e2e.rs` run the same transitions against one.)

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use paved_kube::testing::{MockApiServer, RolloutScript};
use serde_json::json;

const NS: &str = "shop-production";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop-production/deployments/shop";
const HPA: &str = "/apis/autoscaling/v2/namespaces/shop-production/horizontalpodautoscalers/shop";

/// A cluster (the scripted server) and a working directory whose kubeconfig points at it.
struct Cluster {
    server: MockApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    fn new() -> Cluster {
        let (url, server) = MockApiServer::listen();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = MockApiServer::write_kubeconfig(dir.path(), &url);
        Cluster { server, dir, kubeconfig }
    }

    /// `paved ARGS --target kube` (and the app, image and environment for `deploy`).
    fn paved(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::cargo_bin("paved").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            .env_remove("PAVED_CONFIG")
            .env("HOME", self.dir.path())
            .env("PAVED_ACTOR", "tester")
            .arg("--state-dir")
            .arg(self.dir.path().join(".paved"))
            .args(args)
            .args(["--target", "kube", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .timeout(Duration::from_secs(60));
        cmd.output().unwrap()
    }

    fn deploy(&self, tag: &str, extra: &[&str]) -> std::process::Output {
        let image = format!("ghcr.io/company/shop:{tag}");
        let mut args = vec!["deploy", "--app", "shop", "--image", &image, "--env", "production"];
        args.extend_from_slice(extra);
        self.paved(&args)
    }

    fn replicas(&self) -> i64 {
        self.server.get(DEPLOYMENT).unwrap()["spec"]["replicas"].as_i64().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_hpa_switched_on_and_off_and_a_rollback_across_it() {
    let c = Cluster::new();
    let out = c.deploy("v1", &["--no-hpa", "--replicas", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // On: the replicas stay (never reset to 1), handed to the autoscaler.
    let out = c.deploy("v2", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(c.replicas(), 5);
    assert!(text(&out.stderr).contains("handed spec.replicas of deployment shop over to its autoscaler at 5"));
    // The autoscaler scales; off again: its HPA goes first and paved takes the replicas back.
    c.server.scale(DEPLOYMENT, 8);
    let out = c.deploy("v3", &["--no-hpa", "--replicas", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(c.replicas(), 4);
    assert!(c.server.get(HPA).is_none());
    // Back to revision 2 (HPA on) across the switch.
    let out = c.paved(&["rollback", "--app", "shop", "--env", "production", "--to", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(c.server.get(HPA).is_some());
    assert!(c.server.replica_history(DEPLOYMENT).iter().all(|n| *n >= 3), "{:?}", c.server.replica_history(DEPLOYMENT));
}

#[test]
fn a_forbidden_watch_fails_at_once_with_the_rbac_hint() {
    let c = Cluster::new();
    c.server.deny("watch", "deployments", 403);
    let started = Instant::now();
    let out = c.deploy("v1", &["--no-hpa"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot watch resource \"deployments\""), "{stderr}");
    assert!(stderr.contains("ask your cluster admin"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

#[test]
fn a_failed_first_deploy_leaves_nothing_running() {
    let c = Cluster::new();
    c.server.set_rollout(|_| RolloutScript::DeadlineExceeded {
        reason: "CrashLoopBackOff".into(),
        message: "back-off".into(),
    });
    let out = c.deploy("v1", &["--no-hpa"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("its objects were removed"), "{stderr}");
    assert!(c.server.get(DEPLOYMENT).is_none());
    // With --no-rollback they stay.
    let c = Cluster::new();
    c.server.set_rollout(|_| RolloutScript::DeadlineExceeded {
        reason: "CrashLoopBackOff".into(),
        message: "back-off".into(),
    });
    let out = c.deploy("v1", &["--no-hpa", "--no-rollback"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(c.server.get(DEPLOYMENT).is_some());
}

/// A workload of an extra manifest that passes the baseline policies, running `db:{tag}`.
fn workload(kind: &str, tag: &str) -> String {
    let service_name = if kind == "StatefulSet" { "  serviceName: db\n  replicas: 2\n" } else { "" };
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: db\nspec:\n{service_name}  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      securityContext:\n        runAsNonRoot: true\n        seccompProfile:\n          type: RuntimeDefault\n      containers:\n        - name: db\n          image: ghcr.io/company/db:{tag}\n          securityContext:\n            allowPrivilegeEscalation: false\n            readOnlyRootFilesystem: true\n            capabilities:\n              drop: [\"ALL\"]\n          readinessProbe:\n            tcpSocket:\n              port: 5432\n          resources:\n            requests:\n              cpu: 100m\n              memory: 128Mi\n            limits:\n              cpu: 500m\n              memory: 256Mi\n"
    )
}

#[test]
fn a_crash_looping_statefulset_or_daemonset_of_an_extra_manifest_is_rolled_back() {
    for kind in ["StatefulSet", "DaemonSet"] {
        let c = Cluster::new();
        fs::write(c.dir.path().join("db.yaml"), workload(kind, "v1")).unwrap();
        let out = c.deploy("v1", &["--no-hpa", "--extra-manifest", "db.yaml"]);
        assert!(out.status.success(), "{kind}: {}", text(&out.stderr));
        c.server.set_rollout(|image| {
            if image.ends_with("db:v2") {
                RolloutScript::DeadlineExceeded { reason: "CrashLoopBackOff".into(), message: "back-off".into() }
            } else {
                RolloutScript::Succeed
            }
        });
        fs::write(c.dir.path().join("db.yaml"), workload(kind, "v2")).unwrap();
        let out = c.deploy("v2", &["--no-hpa", "--extra-manifest", "db.yaml", "--timeout", "3s"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let waited = format!("timed out waiting for the rollout of {} db after 3s", kind.to_lowercase());
        assert!(stderr.contains(&waited), "{stderr}");
        assert!(stderr.contains("CrashLoopBackOff"), "{stderr}");
        assert!(stderr.contains("rolled back to the objects of revision 1"), "{stderr}");
    }
}

#[test]
fn a_crd_with_its_resource_and_a_cluster_scoped_custom_resource() {
    let c = Cluster::new();
    fs::write(
        c.dir.path().join("paved.toml"),
        "[apps.shop]\nteam = \"platform\"\n[escape_hatches.grants]\nplatform = [\"CustomResourceDefinition\", \"ClusterIssuer\"]\n",
    )
    .unwrap();
    c.server.serve("cert-manager.io/v1", "clusterissuers", "ClusterIssuer", false);
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgetz.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names:\n    plural: widgetz\n    singular: widget\n    kind: Widget\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\nspec:\n  acme: {}\n";
    fs::write(c.dir.path().join("extra.yaml"), crd).unwrap();
    let out = c.deploy("v1", &["--no-hpa", "--extra-manifest", "extra.yaml"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("skipped"), "{stderr}");
    // At the plural discovery gives, after the CRD was established; the issuer cluster-wide.
    assert!(c.server.get(&format!("/apis/example.com/v1/namespaces/{NS}/widgetz/w")).is_some());
    let issuer = c.server.get("/apis/cert-manager.io/v1/clusterissuers/letsencrypt").expect("cluster-wide");
    assert!(issuer["metadata"].get("namespace").is_none());
}

#[test]
fn destroy_keeps_a_namespace_with_a_resource_quota() {
    let c = Cluster::new();
    let out = c.deploy("v1", &["--no-hpa"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c.server.insert(
        &format!("/api/v1/namespaces/{NS}/resourcequotas/compute"),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": NS}}),
    );
    let out = c.paved(&["destroy", "--app", "shop", "--env", "production"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("kept the namespace") && stderr.contains("ResourceQuota/compute"), "{stderr}");
    assert!(c.server.has_namespace(NS));
    assert!(c.server.get(DEPLOYMENT).is_none());
}
