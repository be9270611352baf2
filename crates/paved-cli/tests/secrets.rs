//! `paved secrets` end to end against a real OpenBao dev server: masking, --field/--reveal,
//! KEY=- from stdin, --from-file, versions, list, delete, JSON output, interop with the `bao`
//! CLI, and clear errors.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use paved_testkit::OpenBao;
use serde_json::{Value, json};

const VALUE: &str = "s3cr3t-canary-91c4";

fn paved(dir: &Path, addr: &str, token: &str) -> Command {
    let mut cmd = Command::new(cargo_bin("paved"));
    cmd.current_dir(dir).env_remove("PAVED_STATE_DIR").env_remove("PAVED_CONFIG");
    for var in
        ["VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN", "VAULT_NAMESPACE", "BAO_NAMESPACE", "VAULT_CACERT"]
    {
        cmd.env_remove(var);
    }
    cmd.env("VAULT_ADDR", addr).env("VAULT_TOKEN", token);
    cmd.arg("--state-dir").arg(dir.join("state"));
    cmd
}

/// Runs with `stdin` as standard input: (exit code, stdout, stderr).
fn run(cmd: &mut Command, stdin: &str) -> (i32, String, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Checks a document against the CLI's published schema.
fn schema(def: &str, doc: &str) {
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), def, doc);
}

#[test]
fn put_get_list_delete_with_masking_and_interop() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str], stdin: &str| run(paved(dir.path(), &bao.addr(), bao.token()).args(args), stdin);
    std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERT-----\nabc\n").unwrap();

    // The password comes from stdin (one trailing newline dropped), the cert from a file.
    let (code, out, err) = cli(
        &["secrets", "put", "secret/payments/db", "user=app", "password=-", "--from-file", "cert=ca.pem"],
        &format!("{VALUE}\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "✓ wrote secret/payments/db version 1 (keys: cert, password, user)\n");

    // Masked by default, in text and JSON.
    let (code, out, err) = cli(&["secrets", "get", "secret/payments/db"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "cert      ********\npassword  ********\nuser      ********\n");
    let (_, out, _) = cli(&["secrets", "get", "secret/payments/db", "--output", "json"], "");
    schema("secrets_get", &out);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["masked"], true);
    assert_eq!(v["data"], json!({"cert": "********", "password": "********", "user": "********"}));

    // --field and --reveal show values.
    let (code, out, _) = cli(&["secrets", "get", "secret/payments/db", "--field", "password"], "");
    assert_eq!((code, out.as_str()), (0, format!("{VALUE}\n").as_str()));
    let (_, out, _) = cli(&["secrets", "get", "secret/payments/db", "--reveal", "-o", "json"], "");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"], json!({"cert": "-----BEGIN CERT-----\nabc\n", "password": VALUE, "user": "app"}));

    // Interop: bao reads what paved wrote, paved reads what bao wrote.
    let out = bao.command().args(["kv", "get", "-format=json", "secret/payments/db"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["data"]["password"], VALUE);
    let out = bao.command().args(["kv", "put", "secret/payments/api", "key=from-bao"]).output().unwrap();
    assert!(out.status.success());
    let (_, out, _) = cli(&["secrets", "get", "secret/payments/api", "--field", "key"], "");
    assert_eq!(out, "from-bao\n");

    // Versions.
    let (code, out, _) = cli(&["secrets", "put", "secret/payments/db", "password=second", "-o", "json"], "");
    assert_eq!(code, 0);
    schema("secrets_put", &out);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"path": "secret/payments/db", "version": 2, "keys": ["password"]})
    );
    let (_, out, _) = cli(&["secrets", "get", "secret/payments/db", "--version", "1", "--field", "user"], "");
    assert_eq!(out, "app\n");
    let (_, out, _) = cli(&["secrets", "get", "payments/db", "--mount", "secret", "--field", "password"], "");
    assert_eq!(out, "second\n");

    // List.
    let (_, out, _) = cli(&["secrets", "list", "secret/payments"], "");
    assert_eq!(out, "api\ndb\n");
    let (_, out, _) = cli(&["secrets", "list", "secret", "-o", "json"], "");
    schema("secrets_list", &out);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!({"prefix": "secret/", "keys": ["payments/"]}));

    // Delete (soft): gone for get, a clear not-found with a hint (exit 1).
    let (code, out, _) = cli(&["secrets", "delete", "secret/payments/db"], "");
    assert_eq!(code, 0);
    assert!(out.contains("deleted the latest version of secret/payments/db"), "{out}");
    let (code, _, err) = cli(&["secrets", "get", "secret/payments/db"], "");
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("ERROR"), "library logs stay quiet by default: {err}");
    assert!(err.contains("secret secret/payments/db") && err.contains("not found") && err.contains("hint:"), "{err}");
}

#[test]
fn bad_input_and_server_errors_are_clear() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| run(paved(dir.path(), &bao.addr(), bao.token()).args(args), "");

    // A pair without '=' is refused without echoing it (it may be a value).
    let (code, _, err) = cli(&["secrets", "put", "secret/x", VALUE]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("KEY=VALUE") && !err.contains(VALUE), "{err}");
    let (code, _, err) = cli(&["secrets", "put", "secret/x"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(&["secrets", "put", "secret/x", "a=1", "a=2"]);
    assert!(code == 2 && err.contains("twice"), "{err}");
    let (code, _, err) = cli(&["secrets", "get", "secret"]);
    assert!(code == 2 && err.contains("MOUNT/PATH"), "{err}");

    // A missing key names the keys there are.
    assert_eq!(cli(&["secrets", "put", "secret/x", &format!("a={VALUE}")]).0, 0);
    let (code, out, err) = cli(&["secrets", "get", "secret/x", "--field", "b"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the secret has the keys: a"), "{err}");
    assert!(!out.contains(VALUE) && !err.contains(VALUE));

    // A missing mount.
    let (code, _, err) = cli(&["secrets", "get", "kv-missing/x"]);
    assert_eq!(code, 1);
    assert!(err.contains("no secrets engine is mounted at kv-missing/") && err.contains("bao secrets enable"), "{err}");

    // A bad token.
    let (code, _, err) = run(paved(dir.path(), &bao.addr(), "bad-token").args(["secrets", "get", "secret/x"]), "");
    assert_eq!(code, 1);
    assert!(
        err.contains("does not accept the token (invalid, expired or revoked)") && err.contains("VAULT_TOKEN"),
        "{err}"
    );

    // OpenBao's own variable names work too.
    let mut cmd = paved(dir.path(), "", "");
    cmd.env_remove("VAULT_ADDR").env_remove("VAULT_TOKEN").env("BAO_ADDR", bao.addr()).env("BAO_TOKEN", bao.token());
    let (code, out, err) = run(cmd.args(["secrets", "get", "secret/x", "--field", "a"]), "");
    assert_eq!((code, out.as_str()), (0, format!("{VALUE}\n").as_str()), "{err}");

    // No address configured.
    let mut cmd = paved(dir.path(), "", "");
    cmd.env_remove("VAULT_ADDR");
    let (code, _, err) = run(cmd.args(["secrets", "list", "secret"]), "");
    assert_eq!(code, 2, "a configuration error is bad input");
    assert!(err.contains("VAULT_ADDR") && err.contains("hint:"), "{err}");
}

#[test]
fn unreachable_server_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("http://127.0.0.1:{}", paved_testkit::free_port());
    let (code, _, err) = run(paved(dir.path(), &addr, "t").args(["secrets", "get", "secret/x"]), "");
    assert_eq!(code, 1);
    assert!(err.contains(&format!("vault: {addr} is unreachable")), "{err}");
    assert!(err.contains("hint:") && err.contains("VAULT_ADDR"), "{err}");
}

/// Issue 18, hole 7, through the CLI: a `paved.toml` whose `[vault] address` differs from
/// `VAULT_ADDR` (a pull request redirecting CI's token) and a plain `http://` address to another
/// host are both refused before anything is sent, exit 2, the token never shown.
#[test]
fn the_vault_address_cannot_be_redirected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("paved.toml"), "[vault]\naddress = \"https://attacker.example.net:8200\"\n")
        .unwrap();
    let (code, out, err) = run(
        paved(dir.path(), "https://vault.corp.example:8200", "canary-ci-token").args(["secrets", "get", "secret/x"]),
        "",
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("differs from VAULT_ADDR") && err.contains("remove [vault] address"), "{err}");
    assert!(!err.contains("canary-ci-token") && !out.contains("canary-ci-token"));

    std::fs::remove_file(dir.path().join("paved.toml")).unwrap();
    let (code, out, err) = run(
        paved(dir.path(), "http://vault.corp.example:8200", "canary-ci-token").args(["secrets", "get", "secret/x"]),
        "",
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("clear text") && err.contains("PAVED_VAULT_ALLOW_HTTP"), "{err}");
    assert!(!err.contains("canary-ci-token"));
}

/// Issue 18, hole 8 through the CLI: a token without the `default` policy reading a path its
/// policies deny gets "permission denied", not "the token expired".
#[test]
fn a_policy_denial_is_not_reported_as_an_expired_token() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("apps.hcl");
    std::fs::write(&policy, "path \"secret/data/apps/*\" { capabilities = [\"read\"] }\n").unwrap();
    assert!(bao.command().args(["policy", "write", "apps"]).arg(&policy).output().unwrap().status.success());
    let token =
        bao.command().args(["token", "create", "-field=token", "-no-default-policy", "-policy=apps"]).output().unwrap();
    let token = String::from_utf8(token.stdout).unwrap();
    let (code, out, err) =
        run(paved(dir.path(), &bao.addr(), token.trim()).args(["secrets", "get", "secret/payments/db"]), "");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(!err.contains("expired"), "{err}");
}

/// Issue 22: a malformed argument is reported before a missing Vault address.
#[test]
fn a_malformed_argument_comes_before_a_missing_vault_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = paved(dir.path(), "unused", "unused");
    cmd.env_remove("VAULT_ADDR").env_remove("VAULT_TOKEN");
    let (code, _, err) = run(cmd.args(["secrets", "put", "secret/x", "user"]), "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not KEY=VALUE") && !err.contains("VAULT_ADDR"), "{err}");
}

/// `paved deploy --target kube` with secrets synced from OpenBao into the cluster (the scripted
/// API server over HTTP): a key the app no longer references leaves the cluster's Secret.
#[test]
fn a_secret_key_the_app_stops_using_leaves_the_cluster() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = paved_kube::testing::MockApiServer::listen();
    let kubeconfig = paved_kube::testing::MockApiServer::write_kubeconfig(dir.path(), &url);
    std::fs::write(
        dir.path().join("paved.toml"),
        "[secrets]\nmode = \"sync\"\nteam_paths = [\"vault://secret/payments/\"]\n",
    )
    .unwrap();
    let cli = |args: &[&str]| run(paved(dir.path(), &bao.addr(), bao.token()).args(args), "");
    let (code, _, err) = cli(&["secrets", "put", "secret/payments/db", &format!("password={VALUE}")]);
    assert_eq!(code, 0, "{err}");
    let deploy = |tag: &str, secrets: &[&str]| {
        let image = format!("ghcr.io/company/shop:{tag}");
        let mut args = vec!["deploy", "--app", "shop", "--image", &image, "--env", "production", "--no-hpa"];
        for s in secrets {
            args.extend(["--secret", s]);
        }
        args.extend(["--target", "kube", "--kubeconfig", kubeconfig.to_str().unwrap()]);
        cli(&args)
    };
    let password = "DB_PASSWORD=vault://secret/payments/db#password";
    let old = "OLD_PASSWORD=vault://secret/payments/db#password";
    let (code, out, err) = deploy("v1", &[password, old]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(VALUE) && !err.contains(VALUE), "the value is never printed");
    let secret = || server.get("/api/v1/namespaces/shop-production/secrets/shop-secrets").expect("the Secret");
    assert!(secret()["data"].get("OLD_PASSWORD").is_some(), "{}", secret());
    let (code, _, err) = deploy("v2", &[password]);
    assert_eq!(code, 0, "{err}");
    assert!(secret()["data"].get("OLD_PASSWORD").is_none(), "{}", secret());
    assert!(secret()["data"].get("DB_PASSWORD").is_some());
    assert!(secret().get("stringData").is_none());
}
