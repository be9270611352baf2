//! The GitOps-directory target: revisions, no-op redeploys, rollback, drift and recovery,
//! and that `kubectl kustomize` consumes what it writes.

use std::path::Path;
use std::process::Command;

use paved_core::{AppName, DeployRequest, Deployer, Error, OrgConfig, Platform, ReleaseCause, ReleaseKey};
use paved_kube::{GitOpsTarget, KubeRenderer};

fn platform(state: &Path) -> Platform {
    Platform::builder()
        .renderer(KubeRenderer)
        .deployer(GitOpsTarget::new(state).without_git())
        .config(OrgConfig::default())
        .actor("tester")
        .build()
        .unwrap()
}

fn request(image: &str) -> DeployRequest {
    DeployRequest::new("my-service", image, "production").unwrap().with_replicas(3)
}

fn app() -> AppName {
    AppName::new("my-service").unwrap()
}

#[tokio::test]
async fn revisions_no_ops_and_rollbacks() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let first = p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    assert!(first.changed);
    assert_eq!(first.record.revision, 1);
    assert_eq!(first.record.deployed_by, "tester");
    let again = p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    assert!(!again.changed);
    assert_eq!(again.record.revision, 1);
    let second = p.deploy(&request("ghcr.io/company/my-service:v2")).await.unwrap();
    assert_eq!(second.record.revision, 2);

    let back = p.rollback(&app(), "production", None).await.unwrap();
    assert_eq!(back.record.revision, 3);
    assert_eq!(back.record.cause, ReleaseCause::Rollback { to: 1 });
    assert_eq!(back.record.image, "ghcr.io/company/my-service:v1");
    assert_eq!(back.record.digest, first.record.digest);

    // Rolling back to what is already current is refused with a hint.
    let e = p.rollback(&app(), "production", Some(1)).await.unwrap_err();
    assert!(e.is_user_error() && e.hint().unwrap().contains("1, 2, 3"), "{e}: {:?}", e.hint());
    let e = p.rollback(&app(), "production", Some(9)).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");

    let history = p.history(&app(), "production").await.unwrap();
    assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), [3, 2, 1]);
    let status = p.status(&app(), "production").await.unwrap();
    assert!(status.in_sync);
    assert_eq!(status.current.revision, 3);
}

#[tokio::test]
async fn drift_is_detected_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    let app_dir = dir.path().join("gitops/production/my-service");
    std::fs::write(app_dir.join("03-deployment-my-service.yaml"), "edited by hand\n").unwrap();
    let status = p.status(&app(), "production").await.unwrap();
    assert!(!status.in_sync, "{}", status.detail);
    // A crash between the two renames of a directory swap leaves no directory at all.
    std::fs::remove_dir_all(&app_dir).unwrap();
    assert!(!p.status(&app(), "production").await.unwrap().in_sync);
    let redeploy = p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    assert!(!redeploy.changed, "the record is the source of truth: no new revision");
    assert!(p.status(&app(), "production").await.unwrap().in_sync);
    // A stray file in the directory is drift too.
    std::fs::write(app_dir.join("stray.yaml"), "x: 1\n").unwrap();
    assert!(!p.status(&app(), "production").await.unwrap().in_sync);
}

#[tokio::test]
async fn a_corrupt_record_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    std::fs::write(dir.path().join("releases/production/my-service/000001.json"), "{ truncated").unwrap();
    let e = p.history(&app(), "production").await.unwrap_err();
    assert!(e.to_string().contains("000001.json is corrupt"), "{e}");
    assert!(e.hint().is_some());
}

#[tokio::test]
async fn nothing_deployed_yet() {
    let dir = tempfile::tempdir().unwrap();
    let target = GitOpsTarget::new(dir.path());
    let key = ReleaseKey::new(app(), "production");
    assert!(target.history(&key).await.unwrap().is_empty());
    let e = target.status(&key).await.unwrap_err();
    assert!(e.hint().unwrap().contains("`Platform::deploy`"), "{e}");
}

#[tokio::test]
async fn destroy_is_refused_for_want_of_the_capability() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    assert!(!GitOpsTarget::new(dir.path()).capabilities().destroy);
    let e = p.destroy(&app(), "production").await.unwrap_err();
    assert!(e.to_string().contains("cannot destroy apps (my-service in production)"), "{e}");
    let hint = e.hint().unwrap();
    assert!(hint.contains("destroy capability") && hint.contains(r#"target = "kube""#), "{hint}");
    assert!(!hint.contains("--"), "a library hint names no CLI flag: {hint}");
    assert_eq!(p.history(&app(), "production").await.unwrap().len(), 1, "nothing was removed");
}

#[tokio::test]
async fn kubectl_kustomize_consumes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    let Some(kubectl) = paved_testkit::tool("kubectl", "install kubectl") else { return };
    let out =
        Command::new(kubectl).arg("kustomize").arg(dir.path().join("gitops/production/my-service")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    let objects = paved_core::Manifests::from_yaml(&yaml).unwrap();
    assert_eq!(objects.len(), 9);
    let d = objects.get("Deployment", "my-service").unwrap();
    assert_eq!(d.value()["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/company/my-service:v1");
}
