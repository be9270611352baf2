//! `paved deploy --secret NAME=vault://…` against a real OpenBao: agent-mode annotations in
//! the GitOps directory, values never written anywhere, references checked before anything is
//! written, and sync mode refused on the GitOps target.

use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;

const VALUE: &str = "pa55-w0rd-never-written";

fn paved(dir: &Path, bao: &paved_testkit::OpenBao) -> Command {
    let mut cmd = Command::new(cargo_bin("paved"));
    cmd.current_dir(dir)
        .env_remove("PAVED_STATE_DIR")
        .env_remove("PAVED_CONFIG")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.token())
        .env("PAVED_ACTOR", "tester")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

/// `paved deploy` of billing, an app of team payments, with one `--secret`.
fn deploy(secret: &str) -> [&str; 12] {
    [
        "deploy",
        "--app",
        "billing",
        "--team",
        "payments",
        "--image",
        "ghcr.io/company/billing:v1",
        "--env",
        "production",
        "--replicas",
        "3",
        secret,
    ]
}

/// Every file under `dir`, read as text.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in walk(dir) {
        out.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap_or_default()));
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

#[test]
fn vault_references_deploy_as_agent_annotations_and_values_go_nowhere() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let put = bao.command().args(["kv", "put", "secret/payments/db", &format!("password={VALUE}")]).output().unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let dir = tempfile::tempdir().unwrap();
    let flag = "--secret=DB_PASSWORD=vault://secret/payments/db#password";

    let render = paved(dir.path(), &bao)
        .args(["render", "--app", "billing", "--team", "payments", "--image", "ghcr.io/company/billing:v1"])
        .args(["--env", "production", flag])
        .output()
        .unwrap();
    assert!(render.status.success(), "{}", String::from_utf8_lossy(&render.stderr));
    let yaml = String::from_utf8_lossy(&render.stdout);
    assert!(yaml.contains("vault.hashicorp.com/agent-inject-secret-DB_PASSWORD: secret/data/payments/db"), "{yaml}");
    assert!(!yaml.contains(VALUE));

    let out = paved(dir.path(), &bao).args(deploy(flag)).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("resolved 1 secret references"), "progress is on stderr: {stderr}");
    let written = all_text(&dir.path().join("state"));
    assert!(written.contains("vault.hashicorp.com/role: billing"), "the GitOps directory has the annotations");
    assert!(
        !written.contains(VALUE) && !stdout.contains(VALUE) && !stderr.contains(VALUE),
        "the value was written somewhere"
    );

    // A reference to a missing key or path fails before anything is written, naming it.
    for (bad, expected) in [
        (
            "--secret=DB_PASSWORD=vault://secret/payments/db#passwd",
            "key \"passwd\" of secret vault://secret/payments/db#passwd not found",
        ),
        ("--secret=DB_PASSWORD=vault://secret/payments/nope#password", "vault://secret/payments/nope#password"),
    ] {
        let out = paved(dir.path(), &bao)
            .args(["deploy", "--app", "other", "--team", "payments", "--image", "ghcr.io/company/other:v1"])
            .args(["--env", "production", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A secret or key that does not exist is "not found" (exit 1), with the hint.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!dir.path().join("state/gitops/production/other").exists(), "nothing is written for {bad}");
    }
}

#[test]
fn sync_mode_is_refused_for_the_gitops_directory() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("paved.toml"), "[secrets]\nmode = \"sync\"\n").unwrap();
    let out = paved(dir.path(), &bao)
        .args(deploy("--secret=DB_PASSWORD=vault://secret/payments/db#password"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a git repository is no place for secret values"), "{stderr}");
    assert!(!dir.path().join("state").exists());
}

/// Issue 18, hole 5, through the CLI against OpenBao: team search cannot have paved read the
/// payments team's secret (nor learn its keys), in either secret mode; nothing is written.
#[test]
fn a_team_cannot_reference_another_teams_secret() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let put = bao.command().args(["kv", "put", "secret/payments/db", &format!("password={VALUE}")]).output().unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let dir = tempfile::tempdir().unwrap();
    for config in ["", "[secrets]\nmode = \"sync\"\n"] {
        std::fs::write(dir.path().join("paved.toml"), config).unwrap();
        for reference in ["vault://secret/payments/db#password", "vault://secret/payments/db#pasword"] {
            let out = paved(dir.path(), &bao)
                .args(["deploy", "--app", "search-api", "--team", "search", "--image", "ghcr.io/company/s:v1"])
                .args(["--env", "production", &format!("--secret=DB_PASSWORD={reference}")])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("outside the secret paths of team search"), "{stderr}");
            assert!(stderr.contains("vault://secret/search/"), "names the team's own paths: {stderr}");
            assert!(!stderr.contains("did you mean"), "no key of another team's secret is suggested: {stderr}");
            assert!(!stderr.contains(VALUE));
            assert!(!dir.path().join("state/gitops").exists(), "nothing is written");
        }
    }
}

/// Issue 18, hole 4 through the CLI: a reference whose key would end the Vault Agent's
/// template and read another secret is refused before anything is read or written.
#[test]
fn a_template_payload_in_a_reference_is_refused() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let payload = r#"--secret=DB=vault://secret/payments/db#k" }}{{ with secret "secret/data/search/db" }}{{ .Data.data }}{{ end }}{{ ""#;
    let out = paved(dir.path(), &bao).args(deploy(payload)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("may contain only"), "{stderr}");
    assert!(!dir.path().join("state").exists(), "nothing is written");
}
