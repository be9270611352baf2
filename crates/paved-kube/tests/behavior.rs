//! The `Deployer` behaviour suite (`paved_testkit::behavior::deployer`) on every deploy target:
//! the GitOps directory, the live kube target against the scripted API server, and the
//! in-memory reference target. One suite, so the targets cannot drift apart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use paved_core::OrgConfig;
use paved_kube::live::{KubeTarget, RetryPolicy};
use paved_kube::testing::{MockApiServer, RolloutScript};
use paved_kube::{GitOpsTarget, KubeRenderer};
use paved_testkit::behavior::deployer::{self, ClusterScript, DeployerHarness};
use paved_testkit::memory::MemoryDeployer;

#[tokio::test]
async fn gitops_target_passes_the_deployer_suite() {
    let dir = tempfile::tempdir().unwrap();
    let target = GitOpsTarget::new(dir.path()).without_git();
    let report = deployer::run(&DeployerHarness::new(Arc::new(target), Arc::new(KubeRenderer))).await;
    // The GitOps target destroys (removes the app's directory and records): the refusal
    // scenario of targets without destroy is skipped, and those of a scripted cluster.
    assert_eq!(report.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(), skipped_without_a_cluster());
}

/// The scripted API server as the suite scripts a cluster.
struct Scripted {
    server: MockApiServer,
    failing: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn new(server: MockApiServer) -> Self {
        let failing: Arc<Mutex<Vec<String>>> = Arc::default();
        let tags = failing.clone();
        server.set_rollout(move |image| {
            if tags.lock().unwrap().iter().any(|t| image.ends_with(&format!(":{t}"))) {
                RolloutScript::DeadlineExceeded { reason: "CrashLoopBackOff".into(), message: "back-off".into() }
            } else {
                RolloutScript::Succeed
            }
        });
        Scripted { server, failing }
    }
}

fn deployment(namespace: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
}

impl ClusterScript for Scripted {
    fn fail_rollouts_of(&self, tag: &str) {
        self.failing.lock().unwrap().push(tag.to_string());
    }
    fn autoscale(&self, namespace: &str, name: &str, replicas: i64) {
        self.server.scale(&deployment(namespace, name), replicas);
    }
    fn replicas(&self, namespace: &str, name: &str) -> Option<i64> {
        self.server.get(&deployment(namespace, name))?["spec"]["replicas"].as_i64()
    }
    fn replica_history(&self, namespace: &str, name: &str) -> Vec<i64> {
        self.server.replica_history(&deployment(namespace, name))
    }
    fn has_autoscaler(&self, namespace: &str, name: &str) -> bool {
        self.server
            .get(&format!("/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}"))
            .is_some()
    }
    fn deny(&self, verb: &str, plural: &str) {
        self.server.deny(verb, plural, 403);
    }
    fn allow(&self, verb: &str, plural: &str) {
        self.server.allow(verb, plural);
    }
    fn add_resource_quota(&self, namespace: &str, name: &str) {
        self.server.insert(
            &format!("/api/v1/namespaces/{namespace}/resourcequotas/{name}"),
            serde_json::json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": namespace}}),
        );
    }
    fn has_namespace(&self, namespace: &str) -> bool {
        self.server.has_namespace(namespace)
    }
    fn has_object(&self, path: &str) -> bool {
        self.server.get(path).is_some()
    }
    fn secret_keys(&self, namespace: &str, name: &str) -> Vec<String> {
        let secret = self.server.get(&format!("/api/v1/namespaces/{namespace}/secrets/{name}"));
        let data = secret.as_ref().and_then(|s| s["data"].as_object().cloned()).unwrap_or_default();
        data.keys().cloned().collect()
    }
    fn serve(&self, group_version: &str, plural: &str, kind: &str, namespaced: bool) {
        self.server.serve(group_version, plural, kind, namespaced);
    }
    fn objects_in(&self, namespace: &str) -> Vec<String> {
        self.server.objects_in(namespace).into_iter().filter(|o| !o.starts_with("Secret/paved.")).collect()
    }
}

#[tokio::test(start_paused = true)]
async fn kube_target_passes_the_deployer_suite() {
    let (client, server) = MockApiServer::start();
    let target = KubeTarget::with_client(client, "mock cluster")
        .timeout(Duration::from_secs(60))
        .retry_policy(RetryPolicy::new(4, Duration::from_millis(100), Duration::from_secs(1)));
    let config = OrgConfig::parse("paved.toml", deployer::SCRIPTED_CLUSTER_CONFIG).unwrap();
    let harness = DeployerHarness::new(Arc::new(target), Arc::new(KubeRenderer))
        .with_config(config)
        .with_cluster(Arc::new(Scripted::new(server)));
    let report = deployer::run(&harness).await;
    // It destroys, and its cluster is scripted: only the refusal scenario is skipped.
    assert_eq!(
        report.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["destroy_is_refused_without_the_capability"]
    );
}

#[tokio::test]
async fn memory_target_passes_the_deployer_suite() {
    let harness =
        DeployerHarness::new(Arc::new(MemoryDeployer::new()), Arc::new(KubeRenderer)).with_config(OrgConfig::default());
    let report = deployer::run(&harness).await;
    // It can destroy, and has no cluster to script.
    assert_eq!(report.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(), skipped_without_a_cluster());
}

/// What a target that destroys and has no scripted cluster skips.
fn skipped_without_a_cluster() -> Vec<&'static str> {
    vec![
        "destroy_is_refused_without_the_capability",
        "the_autoscaler_switched_on_off_and_on_keeps_the_replicas",
        "a_rollback_crosses_an_autoscaler_switch",
        "a_crash_looping_statefulset_or_daemonset_fails_the_deploy_and_is_rolled_back",
        "a_forbidden_watch_fails_with_the_rbac_hint",
        "a_crd_and_its_resource_in_one_release",
        "a_cluster_scoped_custom_resource_is_applied_cluster_wide",
        "a_secret_key_the_app_stops_using_leaves_the_cluster",
        "a_failed_first_deploy_leaves_nothing_running",
        "destroy_keeps_a_namespace_with_a_resource_quota",
    ]
}
