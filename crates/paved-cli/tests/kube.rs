//! `paved … --target kube` end to end, against a cluster address where nothing listens (no
//! Kubernetes API server can run here; the target's behaviour against an API server is tested
//! in `paved-kube/tests/live.rs` with the scripted mock server).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

const TOKEN: &str = "s3cr3t-token-never-printed";

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
contexts:
- name: dead-context
  context:
    cluster: dead
    user: someone
    namespace: default
current-context: dead-context
users:
- name: someone
  user:
    token: {TOKEN}
"
        ),
    )
    .expect("write the kubeconfig");
    path
}

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("paved").expect("the paved binary is built");
    cmd.current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("PAVED_CONFIG")
        .env("HOME", dir)
        .env("PAVED_ACTOR", "tester")
        .arg("--state-dir")
        .arg(dir.join(".paved"))
        // The bound on the whole run: a dead cluster must fail fast, not hang.
        .timeout(Duration::from_secs(15));
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn deploy_to_a_cluster_that_does_not_answer_fails_fast_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = kubeconfig(dir.path(), port);
    let out = paved(dir.path())
        .args([
            "deploy",
            "--app",
            "shop",
            "--image",
            "ghcr.io/company/shop:v1",
            "--env",
            "production",
            "--target",
            "kube",
        ])
        .arg("--kubeconfig")
        .arg(&config)
        .output()
        .expect("paved runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains(&format!("https://127.0.0.1:{port}")), "names the cluster address: {stderr}");
    assert!(stderr.contains("dead-context"), "names the context: {stderr}");
    assert!(stderr.contains("check the `--context`"), "suggests checking the context: {stderr}");
    assert!(!stdout.contains("deployed to") && !stderr.contains("deployed to"), "{stdout}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN), "the token never appears");
    // Nothing recorded as deployed: no GitOps release either.
    assert!(!dir.path().join(".paved/releases").exists());
    let history = paved(dir.path()).args(["history", "--app", "shop", "--env", "production"]).output().unwrap();
    assert_eq!(history.status.code(), Some(1), "no release (not found): {}", text(&history.stderr));
}

#[test]
fn status_history_rollback_and_destroy_reach_for_the_cluster_too() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = kubeconfig(dir.path(), port);
    for cmd in ["status", "history", "rollback", "destroy"] {
        let out = paved(dir.path())
            .args([cmd, "--app", "shop", "--env", "production", "--target", "kube", "--kubeconfig"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {stderr}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{cmd}: {stderr}");
    }
}

#[test]
fn an_unknown_context_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), free_port());
    let out = paved(dir.path())
        .args(["deploy", "--app", "shop", "--image", "ghcr.io/company/shop:v1", "--env", "production"])
        .args(["--target", "kube", "--context", "dead-contxt", "--kubeconfig"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a context") && stderr.contains("dead-context"), "{stderr}");
}

#[test]
fn bad_kube_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = ["deploy", "--app", "shop", "--image", "ghcr.io/company/shop:v1", "--env", "production"];
    for extra in [&["--target", "helm"][..], &["--timeout", "5 minutes"], &["--history-max", "0"]] {
        let out = paved(dir.path()).args(base).args(extra).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", text(&out.stderr));
    }
}

#[test]
fn destroy_on_the_gitops_target_removes_the_app_and_list_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = paved(dir.path())
        .args(["deploy", "--app", "shop", "--image", "ghcr.io/company/shop:v1", "--env", "dev"])
        .output()
        .unwrap();
    assert_eq!(deploy.status.code(), Some(0), "{}", text(&deploy.stderr));
    let list = paved(dir.path()).args(["list", "-o", "json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed["apps"][0]["app"], "shop");
    assert_eq!(listed["apps"][0]["status"], "in_sync");
    let out = paved(dir.path()).args(["destroy", "--app", "shop", "--env", "dev"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("shop removed from dev") && stdout.contains("Deployment/shop"), "{stdout}");
    assert!(!dir.path().join(".paved/gitops/dev/shop").exists());
    let status = paved(dir.path()).args(["status", "--app", "shop", "--env", "dev"]).output().unwrap();
    assert_eq!(status.status.code(), Some(1), "not found: {}", text(&status.stderr));
    let list = paved(dir.path()).args(["list"]).output().unwrap();
    assert!(text(&list.stdout).starts_with("no apps deployed yet"), "{}", text(&list.stdout));
}

#[test]
fn list_names_environments_whose_cluster_is_out_of_reach_and_lists_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), free_port());
    fs::write(
        dir.path().join("paved.toml"),
        "[environments.dev]\nreplicas = 1\n\n[environments.production]\ntarget = \"kube\"\n",
    )
    .unwrap();
    let deploy = paved(dir.path())
        .args(["deploy", "--app", "shop", "--image", "ghcr.io/company/shop:v1", "--env", "dev"])
        .output()
        .unwrap();
    assert_eq!(deploy.status.code(), Some(0), "{}", text(&deploy.stderr));
    let out = paved(dir.path()).env("KUBECONFIG", &config).arg("list").output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning: environment production not listed (kube target)"), "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("shop") && l.contains("dev")), "{stdout}");
    // One environment: only its target is asked.
    let out = paved(dir.path()).env("KUBECONFIG", &config).args(["list", "--env", "dev"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).contains("not listed"), "{}", text(&out.stderr));
    // --target kube on list redirects every environment: nothing is silently listed from gitops.
    let out =
        paved(dir.path()).env("KUBECONFIG", &config).args(["list", "--target", "kube", "-o", "json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["apps"], serde_json::json!([]), "{doc}");
    assert!(doc["unavailable"].as_array().is_some_and(|u| u.len() >= 2), "{doc}");
}

#[test]
fn kubeconfig_lists_in_kubeconfig_are_merged_and_bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let first = kubeconfig(dir.path(), free_port());
    let second_dir = dir.path().join("second");
    fs::create_dir(&second_dir).unwrap();
    let port = free_port();
    let second = kubeconfig(&second_dir, port);
    let text_of = |p: &Path| fs::read_to_string(p).unwrap();
    fs::write(
        &second,
        text_of(&second)
            .replace("dead-context", "other-context")
            .replace("name: dead\n", "name: other\n")
            .replace("cluster: dead", "cluster: other"),
    )
    .unwrap();
    // A listed file that does not exist is skipped, as client-go does.
    let missing = dir.path().join("gone/config");
    let list = format!("{}:{}:{}", missing.display(), first.display(), second.display());
    // The context of the second file is found: the error names its cluster address.
    let out = paved(dir.path())
        .env("KUBECONFIG", &list)
        .args(["status", "--app", "shop", "--env", "production", "--target", "kube", "--context", "other-context"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    // A kubeconfig that cannot be parsed is reported, not skipped.
    fs::write(&first, "clusters: [unterminated\n").unwrap();
    let out = paved(dir.path())
        .env("KUBECONFIG", &list)
        .args(["status", "--app", "shop", "--env", "production", "--target", "kube"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot read the kubeconfig {} (listed in KUBECONFIG)", first.display()))
            && err.contains("unclosed bracket"),
        "{err}"
    );
    // Only files that do not exist (and no cluster around): the error says so.
    let out = paved(dir.path())
        .env("KUBECONFIG", format!("{}:{}", missing.display(), dir.path().join("also-gone").display()))
        .args(["status", "--app", "shop", "--env", "production", "--target", "kube"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no kubeconfig found (the files KUBECONFIG=") && err.contains("do not exist"), "{err}");
}
