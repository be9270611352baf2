//! The CLI as kubectl, helm and gh users expect it (issue 22): each test runs the commands the
//! issue quotes. Results on stdout, progress and warnings on stderr, one exit-code table, flags
//! that do nothing refused, diff/list/destroy on the default target, completions, man pages,
//! and every `-o json` document valid against `schemas/paved-cli.schema.json`.

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use serde_json::{Value, json};

const IMAGE: &str = "ghcr.io/company/my-service:v1.2.3";
const IMAGE_V2: &str = "ghcr.io/company/my-service:v1.2.4";

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("paved").expect("the paved binary is built");
    cmd.current_dir(dir)
        .env_remove("PAVED_CONFIG")
        .env_remove("PAVED_STATE_DIR")
        .env_remove("PAVED_ORG_CONFIG")
        .env_remove("PAVED_LOG")
        .env_remove("RUST_LOG")
        .env("PAVED_ACTOR", "tester")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir));
    cmd
}

fn deploy_args(image: &str) -> Vec<String> {
    ["deploy", "--app", "my-service", "--image", image, "--env", "production", "--replicas", "3"]
        .map(String::from)
        .to_vec()
}

/// Runs a command: (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("paved runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Checks `doc` against `$defs/<def>` of `schemas/paved-cli.schema.json`.
fn assert_schema(def: &str, doc: &str) {
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), def, doc);
}

#[test]
fn flags_of_another_target_are_refused_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(paved(dir.path()).args(deploy_args(IMAGE)).args([
        "--context",
        "kind-dev",
        "--kubeconfig",
        "/nonexistent",
        "--force-conflicts",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid flag \"--context\": applies to the kube target only, and environment production deploys to the gitops target"),
        "{err}"
    );
    assert!(err.contains("hint: leave --context out, or deploy to a cluster with --target kube"), "{err}");
    assert!(!out.contains("deployed") && !dir.path().join(".paved").exists(), "nothing written");
    // status and history take no rollout flags at all.
    for flag in ["--no-rollback", "--history-max=3", "--timeout=5m"] {
        for command in ["status", "history"] {
            let (code, _, err) =
                run(paved(dir.path()).args([command, "--app", "my-service", "--env", "production", flag]));
            assert_eq!(code, 2, "{command} {flag}: {err}");
            assert!(err.contains("unexpected argument"), "{err}");
        }
    }
}

#[test]
fn results_go_to_stdout_progress_and_warnings_to_stderr_and_json_carries_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    // Piped stderr, and TERM=dumb: the step lines are there, on stderr.
    let (code, out, err) = run(paved(dir.path()).env("TERM", "dumb").args(deploy_args(IMAGE)));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("✓ validated my-service for production") && err.contains("✓ rendered 9 objects"), "{err}");
    assert!(err.contains("… applying to gitops"), "a step that starts is not marked done: {err}");
    assert!(!out.contains("validated"), "no progress on stdout: {out}");
    // -o json: the policy report in the result; progress still on stderr.
    let (code, out, err) = run(paved(dir.path()).args(deploy_args(IMAGE_V2)).args(["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["dry_run"], false);
    assert!(doc["policy"]["baseline"].as_array().is_some_and(|b| b.len() == 11), "{doc:#}");
    assert_schema("deploy", &out);
    assert!(err.contains("recorded revision 2"), "{err}");
    // A denial with -o json: a JSON error document on stdout, exit 1.
    let (code, out, err) =
        run(paved(dir.path()).args(deploy_args("ghcr.io/company/my-service:latest")).args(["-o", "json"]));
    assert_eq!(code, 1, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("a JSON error document");
    assert_eq!(doc["error"]["kind"], "denied");
    assert_eq!(doc["error"]["violations"][0]["policy"], "disallow-latest-tag");
    assert_schema("error", &out);
    assert!(err.contains("denied by policy (1 violation)"), "{err}");
    let (_, out, _) = run(paved(dir.path()).args([
        "render",
        "--app",
        "my-service",
        "--image",
        IMAGE,
        "--env",
        "production",
        "-o",
        "json",
    ]));
    assert_schema("render", &out);
    // -q: no progress lines.
    let (code, _, err) = run(paved(dir.path()).args(["-q"]).args(deploy_args(IMAGE)));
    assert_eq!(code, 0);
    assert!(!err.contains("validated"), "quiet: {err}");
}

#[test]
fn diff_and_deploy_diff_mark_added_changed_and_removed_objects() {
    let dir = tempfile::tempdir().unwrap();
    let diff = |extra: &[&str]| {
        run(paved(dir.path())
            .args(["diff", "--app", "my-service", "--image", IMAGE, "--env", "production"])
            .args(extra))
    };
    // Nothing deployed: every object is added.
    let (code, out, _) = diff(&[]);
    assert_eq!(code, 1, "changes: exit 1");
    assert!(out.contains("+ Deployment/my-service (added)") && out.contains("9 added, 0 changed"), "{out}");
    assert!(!dir.path().join(".paved").exists(), "diff writes nothing");
    run(paved(dir.path()).args(["deploy", "--app", "my-service", "--image", IMAGE, "--env", "production"]));
    let (code, out, _) = diff(&[]);
    assert_eq!(code, 0, "no changes: exit 0: {out}");
    assert!(out.contains("my-service in production: no changes (9 objects unchanged)"), "{out}");
    // --no-hpa says the HPA goes, and what changes in the Deployment.
    let (code, out, _) = diff(&["--no-hpa"]);
    assert_eq!(code, 1);
    assert!(out.contains("- HorizontalPodAutoscaler/my-service (removed)"), "{out}");
    assert!(out.contains("~ Deployment/my-service (changed)") && out.contains("+  replicas:"), "{out}");
    let (code, out, _) = diff(&["--no-hpa", "-o", "json"]);
    assert_eq!(code, 1);
    assert_schema("diff", &out);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["current_revision"], 1);
    // deploy --diff shows the diff, then deploys.
    let (code, out, _) = run(paved(dir.path()).args([
        "deploy",
        "--app",
        "my-service",
        "--image",
        IMAGE_V2,
        "--env",
        "production",
        "--diff",
    ]));
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with('+') && l.contains(&format!("image: {IMAGE_V2}"))), "{out}");
    assert!(out.lines().any(|l| l.starts_with('-') && l.contains(&format!("image: {IMAGE}"))), "{out}");
    assert!(out.contains("revision 2 written to"), "{out}");
    // Against the current revision (2), not the first: nothing left to change.
    let (code, out, _) =
        run(paved(dir.path()).args(["diff", "--app", "my-service", "--image", IMAGE_V2, "--env", "production"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no changes"), "{out}");
    // A bad input to diff is 2; a failure would be 3 (1 means changes).
    let (code, _, _) = run(paved(dir.path()).args(["diff", "--app", "my-service", "--image", IMAGE, "--env", "prod"]));
    assert_eq!(code, 2);
}

#[test]
fn status_names_the_files_that_drifted_and_list_and_history_show_status() {
    let dir = tempfile::tempdir().unwrap();
    run(paved(dir.path()).args(deploy_args(IMAGE)));
    run(paved(dir.path()).args(deploy_args(IMAGE_V2)));
    let file = dir.path().join(".paved/gitops/production/my-service/04-service-my-service.yaml");
    std::fs::write(&file, "edited: by hand\n").unwrap();
    let (code, out, _) = run(paved(dir.path()).args(["status", "--app", "my-service", "--env", "production"]));
    assert_eq!(code, 1, "drifted: exit 1");
    assert!(out.contains("(04-service-my-service.yaml changed)"), "{out}");
    let (code, out, _) = run(paved(dir.path()).args(["list"]));
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("APP") && rows[0].contains("STATUS") && rows[0].ends_with("AGE"), "{out}");
    assert!(rows[1].starts_with("my-service") && rows[1].contains("DRIFTED") && rows[1].contains(IMAGE_V2), "{out}");
    let (_, out, _) = run(paved(dir.path()).args(["list", "-o", "json"]));
    assert_schema("list", &out);
    let (code, out, _) =
        run(paved(dir.path()).args(["history", "--app", "my-service", "--env", "production", "--max", "1"]));
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 2, "header and one row: {out}");
    assert!(rows[0].starts_with("REVISION  STATUS"), "{out}");
    assert_eq!(rows[1].split_whitespace().take(2).collect::<Vec<_>>(), ["2", "deployed"], "{out}");
    let (_, out, _) =
        run(paved(dir.path()).args(["history", "--app", "my-service", "--env", "production", "-o", "json"]));
    assert_schema("history", &out);
    let (_, out, _) =
        run(paved(dir.path()).args(["status", "--app", "my-service", "--env", "production", "-o", "json"]));
    assert_schema("status", &out);
    let (code, out, _) =
        run(paved(dir.path()).args(["destroy", "--app", "my-service", "--env", "production", "-o", "json"]));
    assert_eq!(code, 0);
    assert_schema("destroy", &out);
    let (code, out, _) = run(paved(dir.path()).args(["rollback", "--app", "my-service", "--env", "production"]));
    assert_eq!(code, 1, "not found after destroy: {out}");
}

#[test]
fn typos_suggest_the_nearest_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(paved(dir.path()).arg("depoly"));
    assert_eq!(code, 2);
    assert!(err.contains("a similar subcommand exists: 'deploy'"), "{err}");
    assert!(!err.contains("destroy") && !err.contains("policy'"), "only the nearest: {err}");
    let (_, _, err) = run(paved(dir.path()).arg("histroy"));
    assert!(err.contains("a similar subcommand exists: 'history'") && !err.contains("destroy"), "{err}");
    let (_, _, err) = run(paved(dir.path()).args(["metrics", "dorra"]));
    assert!(err.contains("'dora'"), "nested commands too: {err}");
    let (code, _, err) = run(paved(dir.path()).arg("zzzzzz"));
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand 'zzzzzz'") && !err.contains("similar"), "no empty tip: {err}");
    // A usage error with -o json is a document too.
    let (code, out, _) = run(paved(dir.path()).args(["-o", "json", "deploy", "--bogus"]));
    assert_eq!(code, 2);
    assert_schema("error", &out);
    assert!(out.contains("--bogus"), "{out}");
}

#[test]
fn exit_codes_follow_one_table() {
    let dir = tempfile::tempdir().unwrap();
    // Missing input files: bad input (2), the cause once, with a hint.
    for args in [vec!["events", "import", "missing.jsonl"], vec!["metrics", "adoption", "--catalog", "missing.yaml"]] {
        let (code, _, err) = run(paved(dir.path()).args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("missing.") && err.contains("hint: check the path"), "{args:?}: {err}");
        assert_eq!(err.matches("No such file").count(), 1, "the cause is printed once: {err}");
    }
    // --strict with bad lines: nothing imported, bad input.
    std::fs::write(dir.path().join("bad.jsonl"), "{oops\n").unwrap();
    let (code, _, err) = run(paved(dir.path()).args(["events", "import", "bad.jsonl", "--strict"]));
    assert_eq!(code, 2, "{err}");
    // An unknown app: not found (1); an unknown environment: bad input (2).
    let (code, _, _) = run(paved(dir.path()).args(["status", "--app", "nope", "--env", "production"]));
    assert_eq!(code, 1);
    let (code, _, err) = run(paved(dir.path()).args(["status", "--app", "nope", "--env", "prod"]));
    assert_eq!(code, 2);
    assert!(err.contains("did you mean \"production\"?"), "{err}");
}

#[test]
fn metrics_outputs_and_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(paved(dir.path()).args(["metrics", "dora", "--env", "prod"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean \"production\"?"), "{err}");
    let (code, _, err) = run(paved(dir.path()).args(["metrics", "dora", "--window", "1m"]));
    assert_eq!(code, 2);
    assert!(err.contains("shorter than an hour") && err.contains("12h, 30d, 2w"), "{err}");
    let (code, out, _) = run(paved(dir.path()).args(["metrics", "dora", "-o", "json"]));
    assert_eq!(code, 0);
    assert_schema("dora", &out);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["window_days"], json!(30));
    let (_, out, _) = run(paved(dir.path()).args(["metrics", "adoption", "-o", "json"]));
    assert_schema("adoption", &out);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["window_days"], json!(30), "30, as in dora, not 30.0");
    let (_, out, _) = run(paved(dir.path()).args(["metrics", "dora", "--by", "team", "-o", "json"]));
    assert_schema("dora_by", &out);
    assert!(serde_json::from_str::<Value>(&out).unwrap().is_object(), "--by keeps an object");
    // events record: errors name flags, not JSON fields.
    let (code, _, err) = run(paved(dir.path()).args([
        "events",
        "record",
        "--type",
        "deployment",
        "--id",
        "d1",
        "--service",
        "s",
        "--team",
        "t",
        "--status",
        "success",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--started-at") && !err.contains("started_at"), "{err}");
    let (code, out, _) = run(paved(dir.path()).args([
        "events",
        "record",
        "--type",
        "incident",
        "--id",
        "i1",
        "--service",
        "s",
        "--team",
        "t",
        "--opened-at",
        "2026-11-01T10:00:00Z",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0);
    assert_schema("events_record", &out);
    std::fs::write(dir.path().join("e.jsonl"), "").unwrap();
    let (_, out, _) = run(paved(dir.path()).args(["events", "import", "e.jsonl", "-o", "json"]));
    assert_schema("events_import", &out);
    let (_, out, _) = run(paved(dir.path()).args(["events", "import", "e.jsonl"]));
    assert!(out.contains("imported 0 deployments and 0 incidents"), "{out}");
}

#[test]
fn metrics_serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = paved_testkit::free_port();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("paved"))
        .current_dir(dir.path())
        .args(["metrics", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it answers.
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "the server listens");
    let pid = child.id().to_string();
    assert!(StdCommand::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM ends it with 0, not 143");
}

#[test]
fn conventions_help_completions_man_emoji_and_config_variable() {
    let dir = tempfile::tempdir().unwrap();
    // `paved` alone: short help on stdout, exit 0, the first command.
    let (code, out, _) = run(&mut paved(dir.path()));
    assert_eq!(code, 0);
    assert!(out.contains("Usage: paved") && out.contains("Start with:\n  paved deploy --app my-service"), "{out}");
    // Global flags in their own section; PAVED_ACTOR documented; examples.
    let (_, out, _) = run(paved(dir.path()).arg("--help"));
    assert!(out.contains("Global options:") && out.contains("PAVED_ACTOR") && out.contains("Examples:"), "{out}");
    let (_, out, _) = run(paved(dir.path()).args(["deploy", "--help"]));
    assert!(out.contains("Examples:\n  paved deploy --app my-service"), "{out}");
    assert!(out.contains("kube target: how long a rollout may take"), "kube-only flags say so: {out}");
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = run(paved(dir.path()).args(["completion", shell]));
        assert_eq!(code, 0);
        assert!(out.contains("deploy") && out.contains("rollback"), "{shell}: {out}");
    }
    let (code, out, _) = run(paved(dir.path()).arg("man"));
    assert_eq!(code, 0);
    assert!(out.starts_with(".ie") || out.contains(".TH paved"), "roff: {}", &out[..out.len().min(200)]);
    let (code, _, _) = run(paved(dir.path()).args(["man", "--dir", "man1"]));
    assert_eq!(code, 0);
    assert!(dir.path().join("man1/paved-deploy.1").is_file() && dir.path().join("man1/paved-metrics-dora.1").is_file());
    // Emoji: off when stdout is not a terminal, on with --emoji.
    let (_, out, _) = run(paved(dir.path()).args(deploy_args(IMAGE)));
    assert!(!out.contains('✅') && out.contains("my-service deployed to production"), "{out}");
    let (_, out, _) = run(paved(dir.path()).arg("--emoji").args(deploy_args(IMAGE_V2)));
    assert!(out.contains("✅ my-service deployed to production"), "{out}");
    // PAVED_CONFIG: the hint names the variable it came from.
    let (code, _, err) = run(paved(dir.path()).env("PAVED_CONFIG", "/nonexistent/org.toml").arg("list"));
    assert_eq!(code, 2);
    assert!(err.contains("check the PAVED_CONFIG path (set in the environment)") && !err.contains("--config"), "{err}");
    let (_, _, err) = run(paved(dir.path()).args(["--config", "/nonexistent/org.toml", "list"]));
    assert!(err.contains("check the `--config` path"), "{err}");
    // db offers only the engines it serves.
    let (_, out, _) = run(paved(dir.path()).args(["db", "provision", "--help"]));
    assert!(out.contains("postgres or mysql") && !out.contains("mongodb"), "{out}");
    let (code, _, err) = run(paved(dir.path()).args([
        "db",
        "provision",
        "--team",
        "t",
        "--service",
        "s",
        "--engine",
        "mongodb",
        "--env",
        "dev",
        "--size",
        "small",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("[possible values: postgres, mysql]"), "{err}");
    // -v logs paved's own crates at debug; PAVED_LOG sets the level; by default, nothing.
    let (code, _, err) = run(paved(dir.path()).arg("-v").args(deploy_args(IMAGE)));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("DEBUG") && err.contains("validated my-service for production"), "{err}");
    let (_, _, err) = run(paved(dir.path()).env("PAVED_LOG", "debug").args(deploy_args(IMAGE)));
    assert!(err.contains("DEBUG"), "{err}");
    let (_, _, err) = run(paved(dir.path()).args(deploy_args(IMAGE)));
    assert!(!err.contains("DEBUG"), "{err}");
    // --no-emoji wins over a terminal; -q keeps only results and warnings.
    let (_, out, _) = run(paved(dir.path()).arg("--no-emoji").args(deploy_args(IMAGE)));
    assert!(!out.contains('✅'), "{out}");
}

#[test]
fn the_actor_falls_back_to_the_git_user() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| StdCommand::new("git").current_dir(dir.path()).args(args).output().unwrap();
    git(&["init", "--quiet"]);
    git(&["config", "user.email", "dev@example.com"]);
    git(&["config", "user.name", "Dev"]);
    let (code, _, err) = run(paved(dir.path()).env_remove("PAVED_ACTOR").args(deploy_args(IMAGE)));
    assert_eq!(code, 0, "{err}");
    let (_, out, _) =
        run(paved(dir.path()).args(["history", "--app", "my-service", "--env", "production", "-o", "json"]));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()[0]["deployed_by"], "dev@example.com");
}

/// The README's reference is of the full CLI (every feature, as CI builds it).
#[cfg(all(feature = "vault", feature = "policy"))]
#[test]
fn the_readme_cli_reference_is_generated_from_clap() {
    let dir = tempfile::tempdir().unwrap();
    let (code, reference, _) = run(paved(dir.path()).arg("reference"));
    assert_eq!(code, 0);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = "<!-- cli-reference:start -->\n";
    let end = "<!-- cli-reference:end -->";
    let inside = readme
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(inside, _)| inside)
        .expect("README has the CLI reference markers");
    assert!(
        inside == reference,
        "the README's CLI reference is out of date: replace what is between the markers with `paved reference`"
    );
}
