//! `paved policy check|build|new|list` and policies in `paved deploy`, end to end with the
//! real binary and the plugins built by `scripts/build-plugins.sh`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn plugins() -> PathBuf {
    paved_testkit::workspace_root().join("plugins")
}

/// The organisation's policy file of these tests: the repository's plugins/ is a plugin root,
/// so a test's paved.toml may name the bundled plugins by their absolute paths.
fn org_file() -> &'static Path {
    static ORG: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = ORG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("plugin_roots = [{:?}]\n", plugins().display().to_string());
        std::fs::write(dir.path().join("org.toml"), text).unwrap();
        dir
    });
    Box::leak(dir.path().join("org.toml").into_boxed_path())
}

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("paved").unwrap();
    cmd.current_dir(dir)
        .env("PAVED_ORG_CONFIG", org_file())
        .env_remove("PAVED_ORG_CONFIG_SHA256")
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
    let doc: Value = serde_json::from_slice(&out).unwrap();
    let rows = doc["results"].as_array().expect("results");
    assert_eq!(
        doc["totals"],
        serde_json::json!({"pass": 1, "fail": 2, "warn": 0, "error": 0, "skip": 3, "objects": 3, "policies": 2})
    );
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
        .stdout(predicate::str::contains("pass  disallow-latest-tag Deployment/web (shop)"))
        .stdout(predicate::str::contains("4 pass, 0 fail, 0 warn, 0 error, 2 skipped (2 policies × 3 objects)"))
        .stdout(predicate::str::contains("skip  ").not());
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
        .stderr(predicate::str::contains("error: denied by policy (1 violation):"))
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
        .stderr(predicate::str::contains("warning: [production-min-replicas] min-replicas"))
        .stdout(predicate::str::contains("my-service deployed to production"));
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

/// Issue 22: the policy commands' documents, stdin, and the policies of paved.toml by default.
#[test]
fn policy_outputs_are_documents_and_check_reads_stdin_and_paved_toml() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    // Without --policy: the policies of paved.toml; `--file -` reads standard input.
    let out = paved(dir.path())
        .args(["policy", "check", "--file", "-", "-o", "json"])
        .write_stdin(OBJECTS)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), "policy_check", &String::from_utf8_lossy(&out));
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert!(doc["totals"]["policies"].as_u64().is_some_and(|n| n >= 2), "paved.toml's policies run: {doc:#}");
    assert!(
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["policy"] == "disallow-latest-tag" && r["result"] == "fail")
    );
    // A warn-mode policy's warning is in the deploy's JSON.
    let out = paved(dir.path())
        .args(["-o", "json", "--state-dir", "state", "deploy", "--app", "my-service", "--env", "production"])
        .args(["--image", "ghcr.io/company/my-service:v1.2.3", "--replicas", "1"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    let violations = doc["policy"]["violations"].as_array().expect("the policy report");
    assert!(violations.iter().any(|v| v["policy"] == "production-min-replicas" && v["severity"] == "warn"), "{doc:#}");
    // `policy list -o json`: kinds and environments are lists like actions.
    let out = paved(dir.path()).args(["policy", "list", "-o", "json"]).assert().success().get_output().stdout.clone();
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), "policy_list", &String::from_utf8_lossy(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out).unwrap();
    for row in &rows {
        assert!(row["kinds"].is_array() && row["environments"].is_array() && row["actions"].is_array(), "{row:#}");
    }
    // `policy new -o json`: a document, not text.
    let out = paved(dir.path())
        .args(["policy", "new", "team-label", "--lang", "rust", "-o", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), "policy_new", &String::from_utf8_lossy(&out));
    let doc: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!((doc["name"].clone(), doc["language"].clone()), (Value::from("team-label"), Value::from("rust")));
    // A missing input file: bad input, with a hint.
    paved(dir.path())
        .args(["policy", "check", "--file", "missing.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.yaml: cannot read the file"))
        .stderr(predicate::str::contains("hint: check the path"));
    // Nothing configured and no --policy: bad input with a hint.
    let empty = tempfile::tempdir().unwrap();
    paved(empty.path())
        .args(["policy", "check", "--file", "-"])
        .write_stdin(OBJECTS)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("add [[policies]]"));
}

#[test]
fn list_shows_modes_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    paved(dir.path())
        .args(["policy", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "disallow-latest-tag 0.1.0  origin=repository mode=enforce failure_policy=fail",
        ))
        .stdout(predicate::str::contains("production-min-replicas 0.1.0  origin=repository mode=warn"))
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
    scaffold_at_admission(dir.path());
}

/// The scaffolded policy served by `paved admission serve`: the admission context reaches it
/// (its message names the operation and the user), and SIGTERM stops the server cleanly.
fn scaffold_at_admission(dir: &Path) {
    use std::io::{BufRead, Read, Write};
    std::fs::write(dir.join("paved.toml"), "[[policies]]\npath = \"require-owner\"\n").unwrap();
    let program = paved(dir).get_program().to_owned();
    let mut child = std::process::Command::new(program)
        .args(["admission", "serve", "--insecure-http", "--listen", "127.0.0.1:0", "--no-emoji"])
        .current_dir(dir)
        .env("PAVED_ORG_CONFIG", org_file())
        .env("PAVED_POLICY_CACHE", std::env::temp_dir().join("paved-policy-test-cache"))
        .env_remove("PAVED_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address = line.split("http://").nth(1).and_then(|rest| rest.split(':').nth(1).map(|p| p.to_string()));
    let port: u16 =
        address.and_then(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("no address in {line:?}")
        });
    let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": "settings", "namespace": "shop", "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}, "data": {}},
        "dryRun": false}})
    .to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{review}",
        review.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    let message = body["response"]["status"]["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(body["response"]["allowed"], false, "{answer}");
    assert!(message.contains("require-owner: the object has no `owner` label ("), "{message}");
    assert!(message.to_lowercase().contains("create by alice)"), "the admission context reached the plugin: {message}");
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("stopping: finishing the requests in flight"), "{rest}");
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
        .stderr(predicate::str::contains("error: denied by policy"))
        .stderr(predicate::str::contains("[database-size-by-environment] database-size"))
        .stderr(predicate::str::contains("127.0.0.1").not());
}

/// The repository's paved.toml: one `[[policies]]` entry for `plugin`, with `extra` lines.
fn repository_policy(dir: &Path, plugin: &Path, extra: &str) {
    let text = format!("[[policies]]\npath = {:?}\n{extra}", plugin.display().to_string());
    std::fs::write(dir.join("paved.toml"), text).unwrap();
}

/// An organisation policy file in its own directory (outside the repository).
fn org_policy(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("org.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn deploy(dir: &Path, org: &Path, image: &str) -> Command {
    let mut cmd = paved(dir);
    cmd.env("PAVED_ORG_CONFIG", org)
        .args(["--state-dir", "state", "deploy", "--app", "my-service", "--env", "production", "--image", image])
        .args(["--replicas", "3"]);
    cmd
}

#[test]
fn a_pull_request_cannot_weaken_or_drop_the_organisation_policy() {
    let dir = tempfile::tempdir().unwrap();
    let latest = plugins().join("disallow-latest-tag");
    let (_org, org) = org_policy(&format!(
        "[[policies]]\npath = {:?}\nmode = \"enforce\"\nfailure_policy = \"fail\"\nenvironments = [\"*\"]\n",
        latest.display().to_string()
    ));
    // No paved.toml at all, or one without [[policies]]: the organisation's policy still runs.
    deploy(dir.path(), &org, "ghcr.io/company/my-service:latest")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[disallow-latest-tag] validate-image-tag"));
    // The pull request's paved.toml switches it to audit, then ignores its failures, then
    // narrows it to another environment, then loosens its settings: each is refused, naming
    // the organisation's setting, and nothing is written.
    for weaken in [
        "mode = \"audit\"",
        "failure_policy = \"ignore\"",
        "environments = [\"dev\"]",
        "settings = { allow_latest = true }",
    ] {
        let key = weaken.split(' ').next().unwrap();
        repository_policy(dir.path(), &latest, &format!("{weaken}\n"));
        deploy(dir.path(), &org, "ghcr.io/company/my-service:latest")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("[[policies]] {key} = ")))
            .stderr(predicate::str::contains("would weaken the organisation's policy"))
            .stderr(predicate::str::contains(format!(
                "the organisation sets it in {} ([[policies]] {key})",
                org.display()
            )));
        assert!(!dir.path().join("state/gitops").exists(), "nothing was written ({weaken})");
    }
    // Making it stricter is fine, and `policy list` says whose it is.
    repository_policy(dir.path(), &latest, "mode = \"enforce\"\n");
    paved(dir.path())
        .env("PAVED_ORG_CONFIG", &org)
        .args(["policy", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("disallow-latest-tag 0.1.0  origin=organisation mode=enforce"));
    // The organisation's file inside the repository would be the repository's to edit.
    let inside = dir.path().join("org.toml");
    std::fs::copy(&org, &inside).unwrap();
    deploy(dir.path(), &inside, "ghcr.io/company/my-service:v1.2.3")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("lies inside the repository"));
    // A pinned file that changed is refused.
    deploy(dir.path(), &org, "ghcr.io/company/my-service:v1.2.3")
        .env("PAVED_ORG_CONFIG_SHA256", "0".repeat(64))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not the pinned"));
}

#[test]
fn a_pull_request_cannot_load_a_plugin_from_outside_the_allowed_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (_org, org) = org_policy("");
    // The pull request adds "its own" policy, which is some other directory on the machine.
    for path in [plugins().join("add-default-labels").display().to_string(), "../../../../../../tmp".to_string()] {
        std::fs::write(dir.path().join("paved.toml"), format!("[[policies]]\npath = {path:?}\n")).unwrap();
        deploy(dir.path(), &org, "ghcr.io/company/my-service:v1.2.3")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("lies outside the allowed plugin roots"))
            .stderr(predicate::str::contains(format!(
                "keep the plugin inside the repository; {} lists no plugin_roots",
                org.display()
            )));
    }
    // The organisation may also forbid repository policies altogether.
    let (_org, org) =
        org_policy(&format!("repository_policies = false\nplugin_roots = [{:?}]\n", plugins().display().to_string()));
    repository_policy(dir.path(), &plugins().join("add-default-labels"), "");
    deploy(dir.path(), &org, "ghcr.io/company/my-service:v1.2.3")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("repository_policies = false"));
    assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
}

#[test]
fn the_organisation_caps_a_pull_requests_plugin() {
    let dir = tempfile::tempdir().unwrap();
    // The hostile test plugin asks for a 200 ms time limit; the organisation allows 50.
    let (_org, org) =
        org_policy(&format!("plugin_roots = [{:?}]\n[limits]\ntimeout_ms = 50\n", plugins().display().to_string()));
    repository_policy(dir.path(), &plugins().join("testdata/hostile"), "");
    deploy(dir.path(), &org, "ghcr.io/company/my-service:v1.2.3")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("limits.timeout_ms = 200 is above the organisation's cap of 50"))
        .stderr(predicate::str::contains(format!("[limits] timeout_ms in {}", org.display())));
}

#[test]
fn check_loads_an_unpinned_plugin_only_as_a_wasm_file_named_directly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("objects.yaml"), OBJECTS).unwrap();
    let unpinned = dir.path().join("unpinned");
    std::fs::create_dir(&unpinned).unwrap();
    let manifest = std::fs::read_to_string(plugins().join("disallow-latest-tag/policy.toml")).unwrap();
    let manifest: String = manifest.lines().filter(|l| !l.starts_with("sha256")).map(|l| format!("{l}\n")).collect();
    std::fs::write(unpinned.join("policy.toml"), manifest).unwrap();
    std::fs::copy(plugins().join("disallow-latest-tag/policy.wasm"), unpinned.join("policy.wasm")).unwrap();
    paved(dir.path())
        .args(["policy", "check", "--file", "objects.yaml", "--policy", "unpinned"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("policy.toml has no sha256 pin"));
    paved(dir.path())
        .args(["policy", "check", "--file", "objects.yaml", "--policy", "unpinned/policy.wasm"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("fail  disallow-latest-tag Deployment/web"));
}

/// A cache entry of `artifact` at `entry`, proven with `key` the way the cache proves its own.
fn forge(entry: &Path, key: &[u8], artifact: &[u8]) {
    let mut mac = blake3::Hasher::new_keyed(key.try_into().unwrap());
    mac.update(entry.file_name().unwrap().as_encoded_bytes());
    mac.update(&[0]);
    mac.update(artifact);
    let mut bytes = mac.finalize().as_bytes().to_vec();
    bytes.extend_from_slice(artifact);
    std::fs::write(entry, bytes).unwrap();
}

#[test]
fn a_restored_cache_with_its_key_and_a_forged_entry_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("objects.yaml"), OBJECTS).unwrap();
    let (cache, key) = (dir.path().join("restored/cache"), dir.path().join("restored/cache-key"));
    let check = |policy: &str, key: &Path| {
        let mut cmd = paved(dir.path());
        cmd.env("PAVED_POLICY_CACHE", &cache)
            .env("PAVED_POLICY_CACHE_KEY", key)
            .args(["policy", "check", "--file", "objects.yaml", "--policy"])
            .arg(plugins().join(policy));
        cmd
    };
    // The attacker's cache: require-labels precompiled under the attacker's key...
    check("require-labels", &key).assert().code(1);
    let entry_of = |sha: &str| {
        std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(sha))
    };
    let pin = |policy: &str| {
        let m = std::fs::read_to_string(plugins().join(policy).join("policy.toml")).unwrap();
        m.lines().find_map(|l| l.strip_prefix("sha256 = \"")).unwrap().trim_end_matches('"').to_string()
    };
    let own = entry_of(&pin("require-labels")).expect("an entry was written");
    let artifact = std::fs::read(&own).unwrap()[32..].to_vec();
    // ... and stored as disallow-latest-tag's entry, with the key copied in as old caches had it.
    let name = own.file_name().unwrap().to_string_lossy().replace(&pin("require-labels"), &pin("disallow-latest-tag"));
    let forged = cache.join(name);
    let key_bytes = std::fs::read(&key).unwrap();
    forge(&forged, &key_bytes, &artifact);
    std::fs::write(cache.join("cache.key"), &key_bytes).unwrap();
    // Control: with the attacker's key the forgery verifies, and the wrong code is loaded.
    check("disallow-latest-tag", &key)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the component says it is \"require-labels\""));
    // On the victim's machine the key is its own: the entry is recompiled, the policy denies.
    check("disallow-latest-tag", &dir.path().join("victim-state/policy-cache.key"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("fail  disallow-latest-tag Deployment/web"));
    assert_ne!(std::fs::read(&forged).unwrap()[32..], artifact[..], "the forged entry was replaced");
}

// Issue 14, item 6: four sandbox holes, through the CLI (each reproduced in the issue with
// `paved policy check --policy DIR --file deployment.yaml --output json`).

/// A copy of the hostile test plugin (manifest, pinned component, granted `data/`) at
/// `dir/name`, with `edit` applied to its policy.toml.
fn hostile_copy(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let source = plugins().join("testdata/hostile");
    let copy = dir.join(name);
    std::fs::create_dir_all(copy.join("data")).unwrap();
    std::fs::copy(source.join("policy.wasm"), copy.join("policy.wasm")).unwrap();
    std::fs::copy(source.join("data/allowed.txt"), copy.join("data/allowed.txt")).unwrap();
    let text = std::fs::read_to_string(source.join("policy.toml")).unwrap();
    std::fs::write(copy.join("policy.toml"), edit(text)).unwrap();
    copy
}

/// `paved --output json policy check --policy POLICY --file objects.yaml` with `settings`
/// (YAML); its exit code, rows and stderr. It must never die of a panic (exit 101).
fn check_json(dir: &Path, policy: &Path, settings: &str) -> (i32, Vec<Value>, String) {
    std::fs::write(dir.join("objects.yaml"), OBJECTS).unwrap();
    std::fs::write(dir.join("settings.yaml"), settings).unwrap();
    let out = paved(dir)
        .args(["--output", "json", "policy", "check", "--file", "objects.yaml", "--settings", "settings.yaml"])
        .arg("--policy")
        .arg(policy)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1 || code == 2, "exit {code}: {stderr}");
    assert!(!stderr.contains("Cannot start a runtime"), "{stderr}");
    let rows = match code {
        2 => Vec::new(),
        _ => serde_json::from_slice::<Value>(&out.stdout).unwrap()["results"].as_array().cloned().unwrap_or_default(),
    };
    (code, rows, stderr)
}

/// The hostile plugin's row for the Deployment, and the message of its first violation.
fn deployment_row(rows: &[Value]) -> (String, String) {
    let row = rows.iter().find(|r| r["kind"] == "Deployment").expect("a Deployment row");
    (row["result"].as_str().unwrap().to_string(), row["violations"][0]["message"].as_str().unwrap_or("").to_string())
}

/// A paved.toml with one policy (its path and TOML settings) and the deploy, plan
/// (`deploy --dry-run`) and render commands of these tests.
fn with_policy(dir: &Path, path: &Path, settings: &str) {
    repository_policy(dir, path, &format!("settings = {settings}\n"));
}

fn golden_path(dir: &Path, command: &str) -> Command {
    let mut cmd = paved(dir);
    cmd.args(["--state-dir", "state"]);
    match command {
        "render" => cmd.arg("render"),
        "plan" => cmd.args(["deploy", "--dry-run"]),
        _ => cmd.arg("deploy"),
    };
    cmd.args(["--app", "my-service", "--env", "production", "--image", "ghcr.io/company/my-service:v1.2.3"])
        .args(["--replicas", "3"])
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

/// "The host aborts": a plugin that writes to stderr (as every panic message does), opens a
/// file, makes a socket or sleeps is reported as its outcome by `policy check`, as a
/// validating and as a mutating policy; it used to exit 101 ("Cannot start a runtime from
/// within a runtime").
#[test]
fn check_contains_plugins_that_make_blocking_wasi_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mutating = hostile_copy(dir.path(), "mutating", |t| t.replace("mutating = false", "mutating = true"));
    for policy in [plugins().join("testdata/hostile"), mutating] {
        for (attack, result, message) in [
            ("stderr", "pass", ""),
            ("panic", "error", "hostile panic"),
            ("read-file", "error", "returned an error: read /etc/passwd:"),
            ("socket", "error", "tcp connect"),
            ("sleep", "error", "exceeded its time limit of 200 ms"),
            ("stdout-flood", "error", "output limit of 64 KiB"),
        ] {
            let (code, rows, stderr) = check_json(dir.path(), &policy, &format!("attack: {attack}\nsize_mib: 1\n"));
            let at = format!("{attack} ({})", policy.display());
            assert_eq!(code, if result == "pass" { 0 } else { 1 }, "{at}: {stderr}");
            let (got, text) = deployment_row(&rows);
            assert_eq!(got, result, "{at}: {rows:?}");
            assert!(text.contains(message), "{at}: {text}");
        }
    }
}

/// "The host aborts", at load: `metadata()` runs when every command loads the policies
/// (`policy check`, `deploy`, `deploy --dry-run`, `render`), and the hostile plugin opens a
/// file in it. One that also writes to stderr loads; one that panics is a load error (exit 2)
/// naming the crash, and nothing is written.
#[test]
fn every_command_survives_a_plugin_whose_metadata_makes_blocking_wasi_calls() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = hostile_copy(dir.path(), "hostile", |t| t);
    with_policy(dir.path(), &plugin, "{}");
    std::fs::write(plugin.join("data/metadata-attack"), "stderr").unwrap();
    let (code, rows, stderr) = check_json(dir.path(), &plugin, "attack: stderr\n");
    assert_eq!((code, deployment_row(&rows).0.as_str()), (0, "pass"), "{stderr}");
    for command in ["render", "plan"] {
        golden_path(dir.path(), command).assert().success();
    }
    std::fs::write(plugin.join("data/metadata-attack"), "panic").unwrap();
    let (code, _, stderr) = check_json(dir.path(), &plugin, "{}\n");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("metadata() failed: crashed") && stderr.contains("hostile metadata panic"), "{stderr}");
    for command in ["render", "plan", "deploy"] {
        golden_path(dir.path(), command)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("metadata() failed: crashed"))
            .stderr(predicate::str::contains("hostile metadata panic"));
    }
    assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
    // Without the attack file it deploys.
    std::fs::remove_file(plugin.join("data/metadata-attack")).unwrap();
    golden_path(dir.path(), "deploy").assert().success();
}

/// `deploy` and `deploy --dry-run` deny a plugin that crashes (enforce mode, failure policy
/// `fail`), as `policy check` reports it.
#[test]
fn deploy_and_plan_deny_a_plugin_that_crashes_through_a_blocking_call() {
    let dir = tempfile::tempdir().unwrap();
    for (policy, mutating) in [(plugins().join("testdata/hostile"), false), (dir.path().join("mutating"), true)] {
        if mutating {
            hostile_copy(dir.path(), "mutating", |t| t.replace("mutating = false", "mutating = true"));
        }
        with_policy(dir.path(), &policy, "{ attack = \"panic\" }");
        for command in ["plan", "deploy"] {
            golden_path(dir.path(), command)
                .assert()
                .code(1)
                .stderr(predicate::str::contains("error: denied by policy"))
                .stderr(predicate::str::contains("[hostile] policy-failure"))
                .stderr(predicate::str::contains("hostile panic"));
        }
        assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
    }
}

/// "A plugin that sleeps past its deadline and then returns allow is accepted": it is a
/// timeout for `policy check` (an error row, exit 1) and denies `deploy` (enforce mode,
/// failure policy `fail`); it used to pass and deploy.
#[test]
fn an_answer_after_the_deadline_is_a_timeout_for_check_and_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = plugins().join("testdata/hostile");
    let (code, rows, stderr) = check_json(dir.path(), &policy, "attack: sleep-then-allow\n");
    assert_eq!(code, 1, "{stderr}");
    let (result, message) = deployment_row(&rows);
    assert_eq!(result, "error", "{rows:?}");
    assert!(message.contains("exceeded its time limit of 200 ms"), "{message}");
    with_policy(dir.path(), &policy, "{ attack = \"sleep-then-allow\" }");
    golden_path(dir.path(), "deploy")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[hostile] policy-failure"))
        .stderr(predicate::str::contains("exceeded its time limit of 200 ms"));
    assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
    // Control: a short sleep passes and deploys.
    with_policy(dir.path(), &policy, "{ attack = \"sleep-then-allow\", sleep_ms = 1 }");
    golden_path(dir.path(), "deploy").assert().success();
}

/// "`read_only_dirs` can be a symlink out of the plugin directory": refused by `policy check`
/// and `deploy` (exit 2, naming the entry), and the files it leads to never show.
#[test]
#[cfg(unix)]
fn a_read_only_dir_symlinked_out_of_the_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("allowed.txt"), "SECRET-OUTSIDE-THE-PLUGIN").unwrap();
    let plugin = hostile_copy(dir.path(), "hostile", |t| t);
    std::fs::remove_dir_all(plugin.join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), plugin.join("data")).unwrap();
    let (code, rows, stderr) = check_json(dir.path(), &plugin, "attack: write-outside\n");
    assert_eq!(code, 2, "{rows:?} {stderr}");
    assert!(stderr.contains("read_only_dirs \"/data\" = \"data\" resolves to"), "{stderr}");
    assert!(stderr.contains("outside the plugin's directory"), "{stderr}");
    assert!(stderr.contains("hint: grant a directory inside the plugin's directory"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
    with_policy(dir.path(), &plugin, "{ attack = \"write-outside\" }");
    golden_path(dir.path(), "deploy")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("outside the plugin's directory"))
        .stderr(predicate::str::contains("SECRET").not());
    assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
}

/// `paved` under a 4 GiB data limit (`prlimit`, when there is one) and a time limit: should
/// the component read ever be unbounded again, reading `/dev/zero` fails the test with an
/// out-of-memory error instead of exhausting the machine.
fn bounded(dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("paved");
    let prlimit = Path::new("/usr/bin/prlimit");
    let mut cmd = if prlimit.exists() {
        let mut c = Command::new(prlimit);
        c.arg(format!("--data={}", 4u64 << 30)).arg("--").arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.current_dir(dir)
        .env("PAVED_ORG_CONFIG", org_file())
        .env_remove("PAVED_ORG_CONFIG_SHA256")
        .env("PAVED_ACTOR", "tester")
        .env("PAVED_POLICY_CACHE", std::env::temp_dir().join("paved-policy-test-cache"))
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir))
        .env_remove("PAVED_CONFIG")
        .env_remove("PAVED_STATE_DIR")
        .args(args)
        .timeout(std::time::Duration::from_secs(60));
    cmd.output().unwrap()
}

/// "`component = "/dev/zero"` is read without limit": a component path out of the plugin's
/// directory, a device named directly (through a `.wasm` link) and a component over the
/// 64 MiB maximum are each refused (exit 2) without being read, by `policy check` and `deploy`.
#[test]
#[cfg(unix)]
fn a_component_that_is_a_device_outside_or_too_large_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("objects.yaml"), OBJECTS).unwrap();
    hostile_copy(dir.path(), "zero", |t| t.replace("component = \"policy.wasm\"", "component = \"/dev/zero\""));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.wasm")).unwrap();
    std::fs::File::create(dir.path().join("big.wasm")).unwrap().set_len(65 << 20).unwrap();
    for (policy, message) in [
        ("zero", "component \"/dev/zero\" leaves the plugin's directory"),
        ("zero.wasm", "component zero.wasm is a character device, not a regular file, and was not read"),
        ("big.wasm", "is larger than the maximum of 64 MiB (65 MiB) and was not read"),
    ] {
        let out = bounded(dir.path(), &["policy", "check", "--file", "objects.yaml", "--policy", policy]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{policy}: {stderr}");
        assert!(stderr.contains(message), "{policy}: {stderr}");
    }
    with_policy(dir.path(), &dir.path().join("zero"), "{}");
    let out = bounded(
        dir.path(),
        &["--state-dir", "state", "deploy", "--app", "my-service", "--env", "production", "--image", "nginx:1.27"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("component \"/dev/zero\" leaves the plugin's directory"), "{stderr}");
    assert!(!dir.path().join("state/gitops").exists(), "nothing was written");
}

// Issue 14, item 3: toolchain errors.

/// `paved policy build` of a new plugin with `env` set; exit 2 with the install command and
/// without a build tool's error output.
fn build_without(lang: &str, env: &[(&str, &Path)], install: &str) {
    let dir = tempfile::tempdir().unwrap();
    paved(dir.path()).args(["policy", "new", "require-owner", "--lang", lang]).assert().success();
    let mut cmd = paved(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out =
        cmd.args(["policy", "build", "require-owner"]).timeout(std::time::Duration::from_secs(120)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{lang}: {stderr}");
    assert!(stderr.contains("is not installed"), "{lang}: {stderr}");
    assert!(stderr.contains(&format!("hint: install it with `{install}`")), "{lang}: {stderr}");
    assert!(
        !stderr.contains("error[") && !stderr.contains("can't find crate") && !stderr.contains("failed ("),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 3, "{lang}: a wall of output: {stderr}");
    assert!(!dir.path().join("require-owner/policy.wasm").exists());
}

#[test]
#[cfg(unix)]
fn build_without_the_wasm_target_prints_the_rustup_command_and_exits_2() {
    use std::os::unix::fs::PermissionsExt;
    // A rustc whose sysroot has no wasm32-wasip2 (cargo would use it too: $RUSTC).
    let tools = tempfile::tempdir().unwrap();
    let sysroot = tools.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu")).unwrap();
    let rustc = tools.path().join("rustc");
    std::fs::write(&rustc, format!("#!/bin/sh\necho {}\n", sysroot.display())).unwrap();
    std::fs::set_permissions(&rustc, std::fs::Permissions::from_mode(0o755)).unwrap();
    build_without("rust", &[("RUSTC", &rustc)], "rustup target add wasm32-wasip2");
    // No rustc at all.
    let rustup = "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh";
    build_without("rust", &[("RUSTC", &tools.path().join("no-such-rustc"))], rustup);
}

#[test]
fn build_without_componentize_py_prints_the_pip_command_and_exits_2() {
    let missing = Path::new("/nonexistent/componentize-py");
    build_without("python", &[("PAVED_COMPONENTIZE_PY", missing)], "pip install componentize-py==0.25.1");
}

#[test]
fn build_without_componentize_js_prints_the_npm_command_and_exits_2() {
    let missing = Path::new("/nonexistent/componentize-js");
    build_without("js", &[("PAVED_COMPONENTIZE_JS", missing)], "npm install @bytecodealliance/componentize-js");
}
