//! `paved deploy|render -f score.yaml`: a Score workload deployed unchanged through the golden
//! path; its database through paved's database path against a real OpenBao and PostgreSQL.

use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::new(cargo_bin("paved"));
    cmd.current_dir(dir)
        .env("PAVED_ACTOR", "tester")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir))
        .env_remove("PAVED_STATE_DIR")
        .env_remove("PAVED_CONFIG")
        .env_remove("PAVED_ORG_CONFIG")
        .env_remove("VAULT_ADDR")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("paved runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const WEB: &str = r#"apiVersion: score.dev/v1b1
metadata:
  name: web
containers:
  web:
    image: ghcr.io/company/web:v1.0.0
    variables:
      GREETING: hello from ${metadata.name}
    files:
      /etc/web/motd:
        source: motd.txt
    resources:
      limits: {cpu: 500m, memory: 256Mi}
    livenessProbe:
      httpGet: {port: 8080, path: /healthz}
    readinessProbe:
      httpGet: {port: 8080, path: /ready}
resources:
  dns:
    type: dns
  route:
    type: route
    params: {host: "${resources.dns.host}", path: /}
"#;

fn web_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("score.yaml"), WEB).unwrap();
    std::fs::write(dir.path().join("motd.txt"), "welcome\n").unwrap();
    dir
}

#[test]
fn a_score_file_deploys_unchanged_and_the_release_records_it() {
    let dir = web_dir();
    let (code, out, err) =
        run(paved(dir.path()).args(["deploy", "-f", "score.yaml", "--env", "staging", "-o", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), "deploy", &out);
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["record"]["url"], "https://web.staging.example.com");
    assert_eq!(result["record"]["source"], "score:score.yaml");
    let history = run(paved(dir.path()).args(["history", "--app", "web", "--env", "staging", "-o", "json"]));
    let history: Value = serde_json::from_str(&history.1).unwrap();
    assert_eq!(history[0]["source"], "score:score.yaml", "{history}");
    // The GitOps directory holds the golden path plus the file's ConfigMap.
    let app_dir = dir.path().join("state/gitops/staging/web");
    let deployment = std::fs::read_to_string(app_dir.join("04-deployment-web.yaml")).unwrap();
    assert!(deployment.contains("value: hello from web"), "{deployment}");
    assert!(deployment.contains("subPath: web-0"), "{deployment}");
    assert!(deployment.contains("cpu: 500m"), "{deployment}");
    let cm = std::fs::read_to_string(app_dir.join("03-configmap-web-files.yaml")).unwrap();
    assert!(cm.contains("welcome"), "{cm}");
    // Flags override the file: the image and an escape hatch.
    let (code, out, err) = run(paved(dir.path()).args([
        "deploy",
        "-f",
        "score.yaml",
        "--env",
        "staging",
        "--image",
        "ghcr.io/company/web:v1.1.0",
        "--cpu-limit",
        "750m",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let deployment = std::fs::read_to_string(app_dir.join("04-deployment-web.yaml")).unwrap();
    assert!(
        deployment.contains("image: ghcr.io/company/web:v1.1.0") && deployment.contains("cpu: 750m"),
        "{deployment}"
    );
}

#[test]
fn bad_score_input_exits_2_and_writes_nothing() {
    let dir = web_dir();
    let cases: &[(&str, &str, &str)] = &[
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {web: {image: nginx:1.27}}\nresources:\n  queue: {type: amqp}\n",
            "bad.yaml:5: resources.queue.type: no provisioner for resource type \"amqp\"",
            "[[provisioners]]\ntype = \"amqp\"",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {web: {imag: nginx:1.27}}\n",
            "containers.web.imag: is not a field of containers.web",
            "did you mean \"image\"?",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {web: {image: .}}\n",
            "`.` means the image given on the command line",
            "add `--image`, e.g. ghcr.io/company/my-service:v1.2.3",
        ),
    ];
    for (text, message, hint) in cases {
        std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
        for command in ["deploy", "render"] {
            let (code, out, err) = run(paved(dir.path()).args([command, "-f", "bad.yaml", "--env", "staging"]));
            assert_eq!(code, 2, "{command}: {out}{err}");
            assert!(err.contains(message) && err.contains(hint), "{command}: {err}");
            assert!(!dir.path().join("state").exists(), "{command} wrote state");
        }
    }
    // --app must agree with the file.
    let (code, _, err) =
        run(paved(dir.path()).args(["deploy", "-f", "score.yaml", "--app", "other", "--env", "staging"]));
    assert_eq!(code, 2);
    assert!(err.contains("the Score file score.yaml describes web"), "{err}");
    // Without -f, --app and --image are required.
    let (code, _, err) = run(paved(dir.path()).args(["deploy", "--env", "staging"]));
    assert_eq!(code, 2, "{err}");
}

/// A postgres resource goes through paved's database path: provisioned in the real database
/// server through Vault before the deploy applies, the app given references only, and the
/// credentials object pointing at the Vault role that really issues them.
#[test]
fn a_postgres_resource_is_provisioned_through_vault() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let Some(pg) = paved_testkit::Postgres::start() else { return };
    let dir = db_dir(&bao, &pg);
    std::fs::write(
        dir.path().join("score.yaml"),
        "apiVersion: score.dev/v1b1\nmetadata: {name: orders}\ncontainers:\n  orders:\n    image: ghcr.io/company/orders:v3.1.0\n    variables:\n      DB_HOST: ${resources.db.host}\n      DB_PASSWORD: ${resources.db.password}\n    livenessProbe: {httpGet: {port: 8080, path: /healthz}}\n    readinessProbe: {httpGet: {port: 8080, path: /ready}}\nresources:\n  db: {type: postgres}\n",
    )
    .unwrap();
    let cmd = |args: &[&str]| {
        let mut c = paved(dir.path());
        c.env("VAULT_TOKEN", bao.token()).args(args);
        run(&mut c)
    };
    // A deploy refused for a missing secret creates no database first.
    let (code, out, err) =
        cmd(&["deploy", "-f", "score.yaml", "--env", "staging", "--secret", "TOKEN=vault://secret/platform/missing#k"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("secret vault://secret/platform/missing#k not found"), "{err}");
    assert!(
        !bao.command()
            .args(["kv", "get", "secret/database/platform/orders/staging"])
            .output()
            .unwrap()
            .status
            .success()
    );
    // A dry run provisions nothing.
    let (code, out, err) = cmd(&["deploy", "-f", "score.yaml", "--env", "staging", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !bao.command()
            .args(["kv", "get", "secret/database/platform/orders/staging"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let (code, out, err) = cmd(&["deploy", "-f", "score.yaml", "--env", "staging"]);
    assert_eq!(code, 0, "{out}{err}");
    // The connection info is in Vault where the references point.
    let info =
        bao.command().args(["kv", "get", "-format=json", "secret/database/platform/orders/staging"]).output().unwrap();
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["data"]["data"]["host"], "127.0.0.1");
    // The objects hold references and the creds path, never a value.
    let app_dir = dir.path().join("state/gitops/staging/orders");
    let mut all = String::new();
    for entry in std::fs::read_dir(&app_dir).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(all.contains("agent-inject-template-DB_HOST") && all.contains("index .Data.data \"host\""), "{all}");
    assert!(all.contains("kind: VaultDynamicSecret") && all.contains("path: creds/platform_orders_staging"), "{all}");
    assert!(all.contains("name: orders-db-credentials") && all.contains("key: password"), "{all}");
    assert!(!all.contains(paved_testkit::Postgres::PASSWORD));
    // The role the credentials object names issues working credentials.
    let creds =
        bao.command().args(["read", "-format=json", "database/creds/platform_orders_staging"]).output().unwrap();
    assert!(creds.status.success(), "{}", String::from_utf8_lossy(&creds.stderr));
    // Deploying again changes nothing and provisions nothing new.
    let (code, out, err) = cmd(&["deploy", "-f", "score.yaml", "--env", "staging", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["changed"], false, "{out}");
}

/// `.platform.yaml`'s `databases` go through the same path as a Score file's.
#[test]
fn platform_yaml_databases_are_provisioned_on_deploy() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let Some(pg) = paved_testkit::Postgres::start() else { return };
    let dir = db_dir(&bao, &pg);
    std::fs::write(dir.path().join(".platform.yaml"), "pipeline: nodejs-service\ntests: npm test\ndeploy_to: [staging]\napp: billing\ndatabases:\n  - {engine: postgres, size: small}\n").unwrap();
    let mut c = paved(dir.path());
    c.env("VAULT_TOKEN", bao.token()).args(["deploy", "--image", "ghcr.io/company/billing:v1.0.0", "--env", "staging"]);
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{out}{err}");
    let info = bao.command().args(["kv", "get", "secret/database/platform/billing/staging"]).output().unwrap();
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
}

/// A `--secret` wins over the Score file's variable of the same name.
#[test]
fn a_secret_flag_overrides_a_score_variable() {
    let dir = web_dir();
    let (code, out, err) = run(paved(dir.path()).args([
        "render",
        "-f",
        "score.yaml",
        "--env",
        "staging",
        "--secret",
        "GREETING=k8s://web-greeting#text",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let objects: Value = serde_json::from_str(&out).unwrap();
    let deployment = objects.as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    let greeting: Vec<&Value> = env.iter().filter(|e| e["name"] == "GREETING").collect();
    assert_eq!(greeting.len(), 1, "{env:?}");
    assert_eq!(greeting[0]["valueFrom"]["secretKeyRef"]["name"], "web-greeting", "{env:?}");
}

/// A directory whose paved.toml registers the PostgreSQL server `main` through Vault (its
/// admin password stored in OpenBao).
fn db_dir(bao: &paved_testkit::OpenBao, pg: &paved_testkit::Postgres) -> tempfile::TempDir {
    let password = format!("password={}", paved_testkit::Postgres::PASSWORD);
    let put = bao.command().args(["kv", "put", "secret/platform/db-admin", &password]).output();
    assert!(put.unwrap().status.success());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[vault]\naddress = \"{}\"\n\n[databases.main]\nengine = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\nadmin_username = \"postgres\"\nadmin_password = \"vault://secret/platform/db-admin#password\"\nallow_plaintext = true\n",
        bao.addr(),
        pg.port()
    );
    std::fs::write(dir.path().join("paved.toml"), toml).unwrap();
    dir
}
