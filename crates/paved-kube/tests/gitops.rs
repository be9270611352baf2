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
    assert!(e.is_user_error(), "{e}");
    assert_eq!(e.hint(), Some("pick another revision: 2"), "revisions with the current objects are not offered");
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
    assert!(
        status.detail.contains("(03-deployment-my-service.yaml changed)"),
        "the files are named: {}",
        status.detail
    );
    // A crash between the two renames of a directory swap (or a hand) leaves no directory.
    std::fs::remove_dir_all(&app_dir).unwrap();
    let status = p.status(&app(), "production").await.unwrap();
    assert!(!status.in_sync);
    assert!(status.detail.contains("is gone") && status.detail.contains("`Platform::destroy`"), "{}", status.detail);
    let redeploy = p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    assert!(!redeploy.changed, "the record is the source of truth: no new revision");
    assert!(p.status(&app(), "production").await.unwrap().in_sync);
    // A stray file in the directory is drift too, and so is a missing one.
    std::fs::write(app_dir.join("stray.yaml"), "x: 1\n").unwrap();
    std::fs::remove_file(app_dir.join("04-service-my-service.yaml")).unwrap();
    let status = p.status(&app(), "production").await.unwrap();
    assert!(!status.in_sync);
    assert!(status.detail.contains("(04-service-my-service.yaml missing, stray.yaml added)"), "{}", status.detail);
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
async fn destroy_removes_the_directory_and_records_as_one_commit_and_list_forgets_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "--quiet"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    let state = dir.path().join(".paved");
    let p = Platform::builder()
        .renderer(KubeRenderer)
        .deployer(GitOpsTarget::new(&state))
        .config(OrgConfig::default())
        .actor("tester")
        .build()
        .unwrap();
    p.deploy(&request("ghcr.io/company/my-service:v1")).await.unwrap();
    p.deploy(&DeployRequest::new("other", "ghcr.io/company/other:v1", "staging").unwrap()).await.unwrap();
    assert!(GitOpsTarget::new(&state).capabilities().destroy);
    let listed: Vec<(String, String)> = p
        .list(None)
        .await
        .unwrap()
        .apps
        .iter()
        .map(|s| (s.current.app.to_string(), s.current.environment.clone()))
        .collect();
    assert_eq!(listed, [("my-service".to_string(), "production".to_string()), ("other".into(), "staging".into())]);

    let out = p.destroy(&app(), "production").await.unwrap();
    assert!(out.deleted.contains(&"Deployment/my-service".to_string()), "{:?}", out.deleted);
    assert!(out.deleted.contains(&"Revision/1".to_string()), "{:?}", out.deleted);
    assert!(!state.join("gitops/production/my-service").exists());
    assert!(!state.join("releases/production/my-service").exists());
    assert!(state.join("gitops/staging/other").exists(), "another app is untouched");
    assert!(git(&["log", "-1", "--format=%s"]).starts_with("paved: destroy my-service in production"));
    assert_eq!(git(&["status", "--porcelain", "--", ".paved/gitops", ".paved/releases"]), "", "all committed");
    assert!(matches!(p.status(&app(), "production").await.unwrap_err(), Error::NotFound { .. }));
    let listed: Vec<String> = p.list(None).await.unwrap().apps.iter().map(|s| s.current.app.to_string()).collect();
    assert_eq!(listed, ["other"]);
    // Nothing left to destroy.
    assert!(matches!(p.destroy(&app(), "production").await.unwrap_err(), Error::NotFound { .. }));
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
