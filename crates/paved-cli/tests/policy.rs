//! `paved policy check|build|new|list` and policies in `paved deploy`, end to end with the
//! real binary and the plugins built by `scripts/build-plugins.sh`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn plugins() -> PathBuf {
    paved_testkit::workspace_root().join("plugins")
}

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("paved").unwrap();
    cmd.current_dir(dir)
        .env("PAVED_ACTOR", "tester")
        .env("PAVED_POLICY_CACHE", std::env::temp_dir().join("paved-policy-test-cache"))
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir))
        .env("PAVED_COMPONENTIZE_PY", paved_testkit::workspace_root().join(".venv/bin/componentize-py"))
        .env("PAVED_COMPONENTIZE_JS", plugins().join("node_modules/.bin/componentize-js"))
        .env_remove("PAVED_CONFIG")
        .env_remove("PAVED_STATE_DIR");
    cmd
}

const OBJECTS: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/company/web:latest
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
spec:
  schedule: '0 * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: ghcr.io/company/report:v1
";

#[test]
fn check_prints_per_object_and_policy_results_in_json_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("objects.yaml"), OBJECTS).unwrap();
    let out = paved(dir.path())
        .args(["--output", "json", "policy", "check", "--file", "objects.yaml", "--policy"])
        .arg(plugins().join("disallow-latest-tag"))
        .arg("--policy")
        .arg(plugins().join("restrict-service-types"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let rows: Vec<Value> = serde_json::from_slice(&out).unwrap();
    let result = |policy: &str, kind: &str| {
        rows.iter().find(|r| r["policy"] == policy && r["kind"] == kind).unwrap_or_else(|| panic!("{policy} {kind}"))
    };
    let fail = result("disallow-latest-tag", "Deployment");
    assert_eq!(fail["result"], "fail");
    assert_eq!(fail["name"], "web");
    assert_eq!(fail["namespace"], "shop");
    let v = &fail["violations"][0];
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "hint", "message", "path", "severity"]);
    assert_eq!(v["code"], "validate-image-tag");
    assert_eq!(v["path"], "spec.template.spec.containers[0].image");
    assert_eq!(v["severity"], "deny");
    assert_eq!(result("disallow-latest-tag", "CronJob")["result"], "pass");
    assert_eq!(result("disallow-latest-tag", "Service")["result"], "skip");
    // The Python policy, through the same command.
    assert_eq!(result("restrict-service-types", "Service")["result"], "fail");
    assert_eq!(result("restrict-service-types", "Deployment")["result"], "skip");
    let row_keys: Vec<&str> = fail.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(row_keys, ["kind", "name", "namespace", "policy", "result", "violations"]);
}

#[test]
fn check_with_settings_and_a_bare_component_passes_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("objects.yaml"),
        OBJECTS.replace("web:latest", "web:v1").replace("NodePort", "LoadBalancer"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("settings.yaml"),
        "restrict-service-types:\n  allowed_types: [ClusterIP, LoadBalancer]\n",
    )
    .unwrap();
    paved(dir.path())
        .args(["policy", "check", "--file", "objects.yaml", "--settings", "settings.yaml", "--policy"])
        .arg(plugins().join("disallow-latest-tag/policy.wasm"))
        .arg("--policy")
        .arg(plugins().join("restrict-service-types"))
        .assert()
        .success()
        .stdout(predicate::str::contains("✅ pass  disallow-latest-tag Deployment/web (shop)"))
        .stdout(predicate::str::contains("0 fail, 0 warn, 0 error"));
}

#[test]
fn check_reports_a_hostile_plugin_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("objects.yaml"), OBJECTS).unwrap();
    std::fs::write(dir.path().join("settings.yaml"), "attack: loop\n").unwrap();
    paved(dir.path())
        .args(["policy", "check", "--file", "objects.yaml", "--settings", "settings.yaml", "--policy"])
        .arg(plugins().join("testdata/hostile"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error hostile Deployment/web"))
        .stdout(predicate::str::contains("exceeded its time limit of 200 ms"));
}

#[test]
fn check_bad_input_exits_2_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("objects.yaml"), OBJECTS).unwrap();
    paved(dir.path())
        .args(["policy", "check", "--file", "objects.yaml", "--policy", "no-such-plugin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the policy manifest"))
        .stderr(predicate::str::contains("hint:"));
    // A component whose bytes do not match the pin is refused.
    let copy = dir.path().join("tampered");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(plugins().join("disallow-latest-tag/policy.toml"), copy.join("policy.toml")).unwrap();
    std::fs::copy(plugins().join("require-labels/policy.wasm"), copy.join("policy.wasm")).unwrap();
    paved(dir.path())
        .args(["policy", "check", "--file", "objects.yaml", "--policy", "tampered"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not match its pin"));
}

/// A paved.toml using two bundled policies.
fn config(dir: &Path, extra: &str) {
    let text = format!(
        "[[policies]]\npath = \"{}\"\n\n[[policies]]\npath = \"{}\"\nmode = \"warn\"\n{extra}",
        plugins().join("disallow-latest-tag").display(),
        plugins().join("production-min-replicas").display(),
    );
    std::fs::write(dir.join("paved.toml"), text).unwrap();
}

#[test]
fn deploy_is_denied_before_anything_is_written_and_warnings_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    let deploy = |image: &str, replicas: &str| {
        let mut cmd = paved(dir.path());
        cmd.args(["--state-dir", "state", "deploy", "--app", "my-service", "--env", "production", "--image", image])
            .args(["--replicas", replicas]);
        cmd
    };
    deploy("ghcr.io/company/my-service:latest", "3")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("❌ denied by policy (1 violations)"))
        .stderr(predicate::str::contains(
            "[disallow-latest-tag] validate-image-tag: container my-service uses the mutable tag `latest`",
        ))
        .stderr(predicate::str::contains("at Deployment/my-service spec.template.spec.containers[0].image"))
        .stderr(predicate::str::contains("hint: deploy an immutable version tag"));
    assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
    // production-min-replicas is in warn mode: the deploy goes on and says why.
    deploy("ghcr.io/company/my-service:v1.2.3", "1")
        .assert()
        .success()
        .stdout(predicate::str::contains("⚠️"))
        .stdout(predicate::str::contains("[production-min-replicas] min-replicas"))
        .stdout(predicate::str::contains("✅ my-service deployed to production"));
}

#[test]
fn dry_run_json_shows_the_mutation_patch() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &format!("\n[[policies]]\npath = \"{}\"\n", plugins().join("add-default-labels").display()));
    let out = paved(dir.path())
        .args(["--output", "json", "--state-dir", "state", "deploy", "--dry-run", "--app", "my-service"])
        .args(["--env", "production", "--image", "ghcr.io/company/my-service:v1.2.3", "--replicas", "3"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: Value = serde_json::from_slice(&out).unwrap();
    let patch = plan["policy"]["patch"].as_array().expect("an RFC 6902 patch");
    assert!(patch.iter().all(|op| op["op"] == "add"), "{patch:?}");
    assert!(patch.iter().any(|op| op["path"].as_str().unwrap().contains("paved.dev~1managed-by")));
}

#[test]
fn list_shows_modes_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    paved(dir.path())
        .args(["policy", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("disallow-latest-tag 0.1.0  mode=enforce failure_policy=fail"))
        .stdout(predicate::str::contains("production-min-replicas 0.1.0  mode=warn"))
        .stdout(predicate::str::contains("timeout=100ms memory=32MiB"));
}

/// `paved policy new` + `build` + `check`, and the scaffold's own test, for one language.
fn scaffold_round_trip(lang: &str, own_test: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    paved(dir.path()).args(["policy", "new", "require-owner", "--lang", lang]).assert().success();
    let plugin = dir.path().join("require-owner");
    paved(dir.path())
        .args(["policy", "build", "require-owner"])
        .assert()
        .success()
        .stdout(predicate::str::contains("pin updated"));
    let manifest = std::fs::read_to_string(plugin.join("policy.toml")).unwrap();
    assert!(!manifest.contains("sha256 = \"\""), "pinned: {manifest}");
    paved(dir.path())
        .args(["policy", "check", "--policy", "require-owner", "--file", "require-owner/tests/pass.yaml"])
        .assert()
        .success();
    paved(dir.path())
        .args(["policy", "check", "--policy", "require-owner", "--file", "require-owner/tests/fail.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("missing-label"));
    let status = std::process::Command::new(own_test[0]).args(&own_test[1..]).current_dir(&plugin).status().unwrap();
    assert!(status.success(), "the scaffold's own test ({own_test:?})");
}

#[test]
fn new_rust_policy_builds_checks_and_tests() {
    scaffold_round_trip("rust", &["cargo", "test", "--quiet"]);
}

#[test]
fn new_python_policy_builds_checks_and_tests() {
    let python = paved_testkit::workspace_root().join(".venv/bin/python");
    scaffold_round_trip("python", &[python.to_str().unwrap(), "-m", "unittest", "-q", "test_rules"]);
}

#[test]
fn new_javascript_policy_builds_checks_and_tests() {
    scaffold_round_trip("js", &["node", "--test"]);
}

#[test]
fn database_provisioning_is_denied_by_policy_before_vault_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    // Vault points at a port where nothing listens: a denial must come first.
    let port = paved_testkit::free_port();
    std::fs::write(
        dir.path().join("paved.toml"),
        format!(
            "[vault]\naddress = \"http://127.0.0.1:{port}\"\n\n[databases.main]\nengine = \"postgres\"\nhost = \"127.0.0.1\"\n\
             admin_username = \"postgres\"\nadmin_password = \"vault://secret/x#password\"\n\n[[policies]]\npath = \"{}\"\n",
            plugins().join("database-size-by-environment").display()
        ),
    )
    .unwrap();
    paved(dir.path())
        .env("VAULT_TOKEN", "root")
        .args(["--state-dir", "state", "db", "provision", "--team", "payments", "--service", "ledger"])
        .args(["--engine", "postgres", "--env", "dev", "--size", "large"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("❌ denied by policy"))
        .stderr(predicate::str::contains("[database-size-by-environment] database-size"))
        .stderr(predicate::str::contains("127.0.0.1").not());
}
