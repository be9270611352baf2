//! The `Deployer` behaviour suite (`paved_testkit::behavior::deployer`) on every deploy target:
//! the GitOps directory, the live kube target against the scripted API server, and the
//! in-memory reference target. One suite, so the targets cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use paved_core::OrgConfig;
use paved_kube::live::{KubeTarget, RetryPolicy};
use paved_kube::testing::MockApiServer;
use paved_kube::{GitOpsTarget, KubeRenderer};
use paved_testkit::behavior::deployer::{self, DeployerHarness};
use paved_testkit::memory::MemoryDeployer;

#[tokio::test]
async fn gitops_target_passes_the_deployer_suite() {
    let dir = tempfile::tempdir().unwrap();
    let target = GitOpsTarget::new(dir.path()).without_git();
    let report = deployer::run(&DeployerHarness::new(Arc::new(target), Arc::new(KubeRenderer))).await;
    // The GitOps target destroys (removes the app's directory and records): only the
    // refusal scenario of targets without destroy is skipped.
    assert_eq!(
        report.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["destroy_is_refused_without_the_capability"]
    );
}

#[tokio::test(start_paused = true)]
async fn kube_target_passes_the_deployer_suite() {
    let (client, _server) = MockApiServer::start();
    let target = KubeTarget::with_client(client, "mock cluster")
        .timeout(Duration::from_secs(60))
        .retry_policy(RetryPolicy::new(4, Duration::from_millis(100), Duration::from_secs(1)));
    let report = deployer::run(&DeployerHarness::new(Arc::new(target), Arc::new(KubeRenderer))).await;
    // Both can destroy: only the refusal scenario is skipped.
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
    // Both can destroy: only the refusal scenario is skipped.
    assert_eq!(
        report.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["destroy_is_refused_without_the_capability"]
    );
}
