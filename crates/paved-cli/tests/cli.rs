//! End-to-end tests of the `paved` binary.
//!
//! Every test runs the real binary in its own temporary directory (the working directory of
//! every command), with an explicit `--state-dir`, `PAVED_ACTOR=tester`, and neither
//! `PAVED_STATE_DIR` nor `PAVED_CONFIG` inherited from the environment. Git discovery is fenced
//! in with `GIT_CEILING_DIRECTORIES` so that a repository around the temporary directory can
//! never turn on paved's git commits by accident.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use predicates::prelude::*;
use serde_json::{Value, json};
use tempfile::TempDir;

const APP: &str = "my-service";
const ENV: &str = "production";
const IMAGE_V1: &str = "ghcr.io/company/my-service:v1.2.3";
const IMAGE_V2: &str = "ghcr.io/company/my-service:v2.0.0";
const URL: &str = "https://my-service.production.example.com";
const NAMESPACE: &str = "my-service-production";

/// The nine objects of the golden path, in apply order.
const GOLDEN_KINDS: [&str; 9] = [
    "Namespace",
    "ServiceAccount",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Ingress",
    "ServiceMonitor",
];

/// The file names of the golden path's objects in the GitOps directory.
const GOLDEN_FILES: [&str; 9] = [
    "01-namespace-my-service-production.yaml",
    "02-serviceaccount-my-service.yaml",
    "03-deployment-my-service.yaml",
    "04-service-my-service.yaml",
    "05-horizontalpodautoscaler-my-service.yaml",
    "06-poddisruptionbudget-my-service.yaml",
    "07-networkpolicy-my-service.yaml",
    "08-ingress-my-service.yaml",
    "09-servicemonitor-my-service.yaml",
];

const DEPLOYMENT_FILE: &str = "03-deployment-my-service.yaml";

/// An isolated working directory with its own state directory (`<tmp>/state`, not created).
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    fn app_dir(&self) -> PathBuf {
        self.state().join("gitops").join(ENV).join(APP)
    }

    fn releases_dir(&self) -> PathBuf {
        self.state().join("releases").join(ENV).join(APP)
    }

    /// Writes `contents` to `name` (relative to the sandbox), creating parent directories.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("create parent");
        fs::write(&path, contents).expect("write file");
        path
    }

    /// `paved --state-dir <state> …` with the sandbox as the working directory.
    fn cmd(&self) -> Command {
        self.cmd_in(self.path())
    }

    /// `paved --state-dir <state> …` with `cwd` as the working directory.
    fn cmd_in(&self, cwd: &Path) -> Command {
        let mut cmd = Command::cargo_bin("paved").expect("the paved binary is built");
        configure_env(&mut cmd, self.path());
        cmd.current_dir(cwd).arg("--state-dir").arg(self.state());
        cmd
    }

    /// `paved deploy --app my-service --env production --image IMAGE --replicas 3 EXTRA…`.
    fn deploy(&self, image: &str, extra: &[&str]) -> Assert {
        self.cmd().args(deploy_args(image)).args(extra).assert()
    }

    fn target(&self, subcommand: &str) -> Command {
        let mut cmd = self.cmd();
        cmd.args([subcommand, "--app", APP, "--env", ENV]);
        cmd
    }

    /// `paved history --output json`, parsed; asserts exit 0.
    fn history_json(&self) -> Vec<Value> {
        let out = self.target("history").args(["--output", "json"]).assert().success().get_output().stdout.clone();
        let value: Value =
            serde_json::from_slice(&out).unwrap_or_else(|e| panic!("history is not JSON ({e}): {}", text(&out)));
        value.as_array().unwrap_or_else(|| panic!("history is not a JSON array: {value}")).clone()
    }

    /// The stored release record `<state>/releases/production/my-service/<rev>.json`.
    fn release(&self, revision: u64) -> Value {
        let path = self.releases_dir().join(format!("{revision:06}.json"));
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("release records are JSON")
    }

    fn read_app_file(&self, name: &str) -> String {
        let path = self.app_dir().join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// Environment every `paved` process of a test gets, for commands of both flavours.
trait EnvSetter {
    fn set(&mut self, key: &str, value: &std::ffi::OsStr);
    fn unset(&mut self, key: &str);
}

impl EnvSetter for Command {
    fn set(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
    fn unset(&mut self, key: &str) {
        self.env_remove(key);
    }
}

impl EnvSetter for std::process::Command {
    fn set(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
    fn unset(&mut self, key: &str) {
        self.env_remove(key);
    }
}

fn configure_env(cmd: &mut impl EnvSetter, sandbox: &Path) {
    for key in ["PAVED_STATE_DIR", "PAVED_CONFIG", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"] {
        cmd.unset(key);
    }
    cmd.set("PAVED_ACTOR", "tester".as_ref());
    // Git never looks above the sandbox, and ignores the user's and the system's configuration.
    let ceiling = sandbox.parent().expect("the sandbox has a parent");
    cmd.set("GIT_CEILING_DIRECTORIES", ceiling.as_os_str());
    cmd.set("GIT_CONFIG_NOSYSTEM", "1".as_ref());
    cmd.set("GIT_CONFIG_GLOBAL", "/dev/null".as_ref());
}

fn deploy_args(image: &str) -> Vec<&str> {
    vec!["deploy", "--app", APP, "--image", image, "--env", ENV, "--replicas", "3"]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn stdout_of(assert: &Assert) -> String {
    text(&assert.get_output().stdout)
}

fn stderr_of(assert: &Assert) -> String {
    text(&assert.get_output().stderr)
}

/// The sorted file names of a directory.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The rendered objects of a stored release record.
fn objects(release: &Value) -> &Vec<Value> {
    release["manifests"].as_array().unwrap_or_else(|| panic!("the release has no manifests: {release}"))
}

fn object<'a>(release: &'a Value, kind: &str, name: &str) -> &'a Value {
    objects(release)
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the release has no {kind}/{name}"))
}

fn revisions(history: &[Value]) -> Vec<u64> {
    history.iter().map(|r| r["revision"].as_u64().expect("revision is a number")).collect()
}

/// Golden path: one call gives nine objects, a kustomization, a release record and a URL.
#[test]
fn golden_path_deploy_writes_objects_record_and_url() {
    let sb = Sandbox::new();
    let assert = sb.deploy(IMAGE_V1, &[]).success();
    let stdout = stdout_of(&assert);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 2, "stdout too short:\n{stdout}");
    assert_eq!(
        lines[lines.len() - 2..],
        ["my-service deployed to production", "url: https://my-service.production.example.com"],
        "stdout:\n{stdout}"
    );
    assert!(stdout.contains("revision 1 written to"), "stdout:\n{stdout}");
    assert!(!stdout.contains('✅'), "no emoji when stdout is not a terminal:\n{stdout}");

    // The GitOps directory: exactly the nine object files and the kustomization.
    let mut expected: Vec<String> = GOLDEN_FILES.iter().map(ToString::to_string).collect();
    expected.push("kustomization.yaml".into());
    expected.sort();
    assert_eq!(file_names(&sb.app_dir()), expected);
    let kustomization = sb.read_app_file("kustomization.yaml");
    assert!(kustomization.contains("kind: Kustomization"), "{kustomization}");
    for f in GOLDEN_FILES {
        assert!(kustomization.contains(&format!("- {f}\n")), "kustomization does not list {f}:\n{kustomization}");
    }
    let deployment = sb.read_app_file(DEPLOYMENT_FILE);
    assert!(deployment.contains("kind: Deployment"), "{deployment}");
    assert!(deployment.contains(&format!("image: {IMAGE_V1}")), "{deployment}");
    assert!(deployment.contains(&format!("namespace: {NAMESPACE}")), "{deployment}");
    // No staging or backup directories are left beside the app's directory.
    assert_eq!(file_names(&sb.state().join("gitops").join(ENV)), [APP]);

    // The release record.
    assert_eq!(file_names(&sb.releases_dir()), ["000001.json"]);
    let release = sb.release(1);
    let record = &release["record"];
    assert_eq!(record["revision"], 1);
    assert_eq!(record["app"], APP);
    assert_eq!(record["environment"], ENV);
    assert_eq!(record["image"], IMAGE_V1);
    assert_eq!(record["replicas"], 3);
    assert_eq!(record["deployed_by"], "tester");
    assert_eq!(record["url"], URL);
    assert_eq!(record["objects"], 9);
    assert_eq!(record["cause"], json!({ "type": "deploy" }));
    let kinds: Vec<&str> = objects(&release).iter().map(|o| o["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, GOLDEN_KINDS);
}

/// deploy → unchanged redeploy → new image → rollback → rollback --to → status → history.
#[test]
fn deploy_redeploy_rollback_history_lifecycle() {
    let sb = Sandbox::new();
    sb.deploy(IMAGE_V1, &[]).success();

    let history = sb.target("history").assert().success();
    let history_text = stdout_of(&history);
    let rows: Vec<&str> = history_text.lines().collect();
    assert_eq!(rows.len(), 2, "header and one row expected:\n{history_text}");
    assert!(rows[0].starts_with("REVISION"), "{history_text}");
    assert!(rows[1].starts_with("1 ") && rows[1].contains(IMAGE_V1) && rows[1].contains("tester"), "{history_text}");

    // The same request again: no new revision.
    let again = sb.deploy(IMAGE_V1, &[]).success();
    let again_out = stdout_of(&again);
    assert!(again_out.contains("already up to date"), "stdout:\n{again_out}");
    assert!(!again_out.contains("written to"), "no revision may be written:\n{again_out}");
    let rows_after = stdout_of(&sb.target("history").assert().success()).lines().count();
    assert_eq!(rows_after, 2, "still one revision");
    assert_eq!(sb.history_json().len(), 1);
    assert_eq!(file_names(&sb.releases_dir()), ["000001.json"]);

    // A new image: revision 2.
    let v2 = sb.deploy(IMAGE_V2, &[]).success();
    assert!(stdout_of(&v2).contains("revision 2 written to"), "{}", stdout_of(&v2));
    assert!(sb.read_app_file(DEPLOYMENT_FILE).contains(&format!("image: {IMAGE_V2}")));

    // Rollback to the previous revision: revision 3 with the objects of revision 1.
    let back = sb.target("rollback").assert().success();
    let back_out = stdout_of(&back);
    assert!(
        back_out.contains(&format!("rolled back to the objects of revision 1 (now revision 3, image {IMAGE_V1})")),
        "stdout:\n{back_out}"
    );
    assert!(back_out.contains(URL), "stdout:\n{back_out}");
    assert!(sb.read_app_file(DEPLOYMENT_FILE).contains(&format!("image: {IMAGE_V1}")));

    // Rollback to an explicit revision: revision 4 with the objects of revision 2.
    let to2 = sb.target("rollback").args(["--to", "2"]).assert().success();
    let to2_out = stdout_of(&to2);
    assert!(
        to2_out.contains(&format!("rolled back to the objects of revision 2 (now revision 4, image {IMAGE_V2})")),
        "stdout:\n{to2_out}"
    );
    assert!(sb.read_app_file(DEPLOYMENT_FILE).contains(&format!("image: {IMAGE_V2}")));

    // Status: in sync at revision 4.
    let status = sb.target("status").assert().code(0);
    let status_out = stdout_of(&status);
    assert!(status_out.contains("revision 4 (in sync)"), "stdout:\n{status_out}");
    assert!(status_out.contains(IMAGE_V2) && status_out.contains("by tester"), "stdout:\n{status_out}");
    let status_json: Value =
        serde_json::from_slice(&sb.target("status").args(["--output", "json"]).assert().code(0).get_output().stdout)
            .expect("status JSON");
    assert_eq!(status_json["in_sync"], true);
    assert_eq!(status_json["current"]["revision"], 4);

    // History, newest first.
    let history = sb.history_json();
    assert_eq!(revisions(&history), [4, 3, 2, 1]);
    let causes: Vec<&Value> = history.iter().map(|r| &r["cause"]).collect();
    assert_eq!(
        causes,
        [
            &json!({ "type": "rollback", "to": 2 }),
            &json!({ "type": "rollback", "to": 1 }),
            &json!({ "type": "deploy" }),
            &json!({ "type": "deploy" }),
        ]
    );
    let images: Vec<&str> = history.iter().map(|r| r["image"].as_str().expect("image")).collect();
    assert_eq!(images, [IMAGE_V2, IMAGE_V1, IMAGE_V2, IMAGE_V1]);
    assert!(history.iter().all(|r| r["deployed_by"] == "tester"), "{history:#?}");
    // A rollback restores the exact objects of its target.
    assert_eq!(history[0]["digest"], history[2]["digest"]);
    assert_eq!(history[1]["digest"], history[3]["digest"]);
    assert_ne!(history[0]["digest"], history[1]["digest"]);
    assert_eq!(file_names(&sb.releases_dir()), ["000001.json", "000002.json", "000003.json", "000004.json"]);
}

/// A hand edit in the GitOps directory is drift; redeploying the same request repairs it.
#[test]
fn status_detects_hand_edits_and_deploy_restores_them() {
    let sb = Sandbox::new();
    sb.deploy(IMAGE_V1, &[]).success();
    sb.target("status").assert().code(0).stdout(predicate::str::contains("in sync"));

    let path = sb.app_dir().join(DEPLOYMENT_FILE);
    let original = fs::read_to_string(&path).expect("deployment file");
    fs::write(&path, original.replace("replicas", "replicaz") + "# edited by hand\n").expect("hand edit");
    let drifted = sb.target("status").assert().code(1);
    let drifted_out = stdout_of(&drifted);
    assert!(drifted_out.contains("DRIFTED"), "stdout:\n{drifted_out}");
    assert!(!drifted_out.contains("in sync"), "stdout:\n{drifted_out}");

    sb.deploy(IMAGE_V1, &[]).success();
    sb.target("status").assert().code(0).stdout(predicate::str::contains("revision 1 (in sync)"));
    assert_eq!(fs::read_to_string(&path).expect("deployment file"), original);
    assert_eq!(sb.history_json().len(), 1, "restoring drift is not a new revision");

    // A stray file in the directory is drift too, and is removed by the next deploy.
    sb.write("state/gitops/production/my-service/stray.yaml", "kind: ConfigMap\n");
    sb.target("status").assert().code(1).stdout(predicate::str::contains("DRIFTED"));
    sb.deploy(IMAGE_V1, &[]).success();
    sb.target("status").assert().code(0);
    assert!(!sb.app_dir().join("stray.yaml").exists());
}

/// `render` prints the objects and writes nothing.
#[test]
fn render_prints_yaml_or_json_and_writes_nothing() {
    let sb = Sandbox::new();
    let args = ["render", "--app", APP, "--image", IMAGE_V1, "--env", ENV, "--replicas", "3"];

    let yaml = sb.cmd().args(args).assert().success();
    let out = stdout_of(&yaml);
    assert!(out.starts_with("---\n"), "stdout:\n{out}");
    assert_eq!(out.lines().filter(|l| *l == "---").count(), 9, "nine documents expected:\n{out}");
    for kind in GOLDEN_KINDS {
        assert!(out.contains(&format!("kind: {kind}\n")), "no {kind} in:\n{out}");
    }
    assert!(out.contains(&format!("image: {IMAGE_V1}")), "stdout:\n{out}");
    assert!(!out.contains('✓'), "render prints no progress:\n{out}");
    assert!(!sb.state().exists(), "render must not create the state directory");

    let json_out = sb.cmd().args(args).args(["--output", "json"]).assert().success();
    let value: Value = serde_json::from_slice(&json_out.get_output().stdout).expect("render --output json is JSON");
    let objects = value.as_array().expect("a JSON array");
    assert_eq!(objects.len(), 9);
    let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, GOLDEN_KINDS);
    assert!(!sb.state().exists(), "render must not create the state directory");
}

/// `deploy --dry-run` plans and writes nothing.
#[test]
fn dry_run_writes_nothing() {
    let sb = Sandbox::new();
    let assert = sb.deploy(IMAGE_V1, &["--dry-run"]).success();
    let out = stdout_of(&assert);
    assert!(out.contains("dry run: revision 1 would be written to gitops; nothing was written\n"), "stdout:\n{out}");
    assert!(!out.contains("deployed to"), "stdout:\n{out}");
    assert!(!sb.state().exists(), "a dry run must not create the state directory");

    // The dry run's JSON has the shape of a deploy's result.
    let dry: Value =
        serde_json::from_slice(&sb.deploy(IMAGE_V1, &["--dry-run", "-o", "json"]).success().get_output().stdout)
            .expect("JSON");
    assert!(!sb.state().exists(), "a dry run must not create the state directory");
    let real: Value =
        serde_json::from_slice(&sb.deploy(IMAGE_V1, &["-o", "json"]).success().get_output().stdout).expect("JSON");
    let keys = |v: &Value| v.as_object().expect("an object").keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&dry), keys(&real));
    assert_eq!((dry["dry_run"].clone(), real["dry_run"].clone()), (json!(true), json!(false)));
    assert_eq!((dry["changed"].clone(), dry["record"]["revision"].clone()), (json!(true), json!(1)));
    assert_eq!(dry["record"]["image"], real["record"]["image"]);
    assert_eq!(dry["record"]["digest"], real["record"]["digest"], "the dry run names the objects the deploy wrote");
    assert!(real["policy"]["baseline"].as_array().is_some_and(|b| !b.is_empty()), "{real:#}");
    // And once deployed, a dry run of the same request changes nothing.
    let again: Value =
        serde_json::from_slice(&sb.deploy(IMAGE_V1, &["--dry-run", "-o", "json"]).success().get_output().stdout)
            .expect("JSON");
    assert_eq!((again["changed"].clone(), again["record"]["revision"].clone()), (json!(false), json!(1)));
}

/// One bad-input case: files to write into the working directory, the full argument list, and
/// what stderr must contain.
struct BadInput {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: Vec<String>,
    stderr: Vec<String>,
}

fn bad(
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: Vec<String>,
    stderr: &[&str],
) -> BadInput {
    BadInput { name, files, args, stderr: stderr.iter().map(ToString::to_string).collect() }
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

/// `deploy --app my-service --image IMAGE_V1 --env production` plus `extra`.
fn with_defaults(extra: &[&str]) -> Vec<String> {
    [argv(&["deploy", "--app", APP, "--image", IMAGE_V1, "--env", ENV]), argv(extra)].concat()
}

const BAD_YAML: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service: oops\n";
const OVERLAY_OTHER: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\nspec:\n  replicas: 5\n";
const TYPO_CONFIG: &str = "domian = \"x.io\"\n";

/// An overlay whose container list lost its dash.
const OVERLAY_NO_DASH: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n      containers:\n        name: my-service\n        image: ghcr.io/company/my-service:v1.2.4\n";

/// An overlay that adds a spread constraint (a new one: whenUnsatisfiable differs) without maxSkew.
const OVERLAY_NO_MAX_SKEW: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n      topologySpreadConstraints:\n      - topologyKey: kubernetes.io/hostname\n        whenUnsatisfiable: DoNotSchedule\n";

/// Bad input exits 2, names the bad value, gives a hint, and writes nothing.
#[test]
fn bad_input_is_rejected_with_a_hint_and_writes_nothing() {
    let long_app = "a".repeat(64);
    let cases = [
        bad(
            "uppercase app",
            &[],
            argv(&["deploy", "--app", "My_Service", "--image", IMAGE_V1, "--env", ENV]),
            &["My_Service", "use \"my-service\""],
        ),
        bad(
            "long app",
            &[],
            argv(&["deploy", "--app", &long_app, "--image", IMAGE_V1, "--env", ENV]),
            &[&long_app, "64 characters"],
        ),
        bad(
            "image with a space",
            &[],
            argv(&["deploy", "--app", APP, "--image", "ghcr.io/company/my service:v1", "--env", ENV]),
            &["ghcr.io/company/my service:v1", "spaces", "did you mean"],
        ),
        bad(
            "uppercase image",
            &[],
            argv(&["deploy", "--app", APP, "--image", "ghcr.io/Company/App:v1", "--env", ENV]),
            &["ghcr.io/Company/App:v1", "repository names are lowercase", "ghcr.io/company/app:v1"],
        ),
        bad(
            "unknown environment",
            &[],
            argv(&["deploy", "--app", APP, "--image", IMAGE_V1, "--env", "prod"]),
            &["\"prod\"", "did you mean \"production\"?"],
        ),
        bad("zero replicas", &[], with_defaults(&["--replicas", "0"]), &["\"0\"", "set `--replicas` to 1 or more"]),
        bad("too many replicas", &[], with_defaults(&["--replicas", "51"]), &["\"51\"", "maximum of 50"]),
        bad("cpu in cores", &[], with_defaults(&["--cpu-limit", "2 cores"]), &["2 cores", "\"2\""]),
        bad("memory in mb", &[], with_defaults(&["--memory-limit", "512mb"]), &["512mb", "did you mean \"512Mi\"?"]),
        bad(
            "limit below request",
            &[],
            with_defaults(&["--cpu-request", "2", "--cpu-limit", "1"]),
            &["cpu-limit \"1\"", "below"],
        ),
        bad("missing overlay", &[], with_defaults(&["--custom-manifest", "missing.yaml"]), &["missing.yaml"]),
        bad(
            "malformed overlay",
            &[("bad.yaml", BAD_YAML)],
            with_defaults(&["--custom-manifest", "bad.yaml"]),
            &["bad.yaml:4:", "malformed"],
        ),
        bad(
            "overlay of a missing object",
            &[("overlay.yaml", OVERLAY_OTHER)],
            with_defaults(&["--custom-manifest", "overlay.yaml"]),
            &["overlay.yaml:1:", "Deployment/other", "does not contain", "Deployment/my-service"],
        ),
        bad(
            "overlay list without its dash",
            &[("overlay.yaml", OVERLAY_NO_DASH)],
            with_defaults(&["--custom-manifest", "overlay.yaml"]),
            &[
                "overlay.yaml:8: Deployment/my-service: spec.template.spec.containers: is a mapping, but this field is a list",
                "start each item of the list with `- `",
            ],
        ),
        bad(
            "overlay that leaves a constraint without maxSkew",
            &[("overlay.yaml", OVERLAY_NO_MAX_SKEW)],
            with_defaults(&["--custom-manifest", "overlay.yaml"]),
            &["overlay.yaml:9: the overlay leaves Deployment/my-service invalid", "maxSkew is required"],
        ),
        bad(
            "typo in discovered paved.toml",
            &[("paved.toml", TYPO_CONFIG)],
            with_defaults(&[]),
            &["paved.toml:1:", "domian", "did you mean \"domain\"?"],
        ),
        bad(
            "typo in --config file",
            &[("conf/org.toml", TYPO_CONFIG)],
            [argv(&["--config", "conf/org.toml"]), with_defaults(&[])].concat(),
            &["conf/org.toml:1:", "domian", "did you mean \"domain\"?"],
        ),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let sb = Sandbox::new();
        for (name, contents) in case.files {
            sb.write(name, contents);
        }
        let output = sb.cmd().args(&case.args).output().expect("paved runs");
        let stderr = text(&output.stderr);
        let stdout = text(&output.stdout);
        let mut problems = Vec::new();
        if output.status.code() != Some(2) {
            problems.push(format!("exit code {:?}, expected 2", output.status.code()));
        }
        for expected in &case.stderr {
            if !stderr.contains(expected.as_str()) {
                problems.push(format!("stderr lacks {expected:?}"));
            }
        }
        if !stderr.contains("  hint: ") {
            problems.push("stderr has no hint line".into());
        }
        if sb.state().exists() {
            problems.push("the state directory was created".into());
        }
        if stdout.contains("deployed to") {
            problems.push("stdout claims a deploy".into());
        }
        if !problems.is_empty() {
            failures.push(format!("[{}] {}\n  stdout: {stdout}\n  stderr: {stderr}", case.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Escape hatches change the objects and are recorded in the release and on the Deployment.
#[test]
fn escape_hatches_are_applied_and_recorded() {
    let sb = Sandbox::new();
    sb.write(
        "overlay.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        env:\n        - name: FOO\n          value: bar\n",
    );
    let assert =
        sb.deploy(IMAGE_V1, &["--cpu-limit", "2000m", "--no-hpa", "--custom-manifest", "overlay.yaml"]).code(0);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        err.contains("warning: escape hatches used (recorded): cpu-limit=2000m, custom-manifest=overlay.yaml, no-hpa"),
        "a warning, on stderr:\n{err}"
    );

    let deployment = sb.read_app_file(DEPLOYMENT_FILE);
    for needle in ["cpu: 2000m", "FOO", "value: bar", "replicas: 3", "paved.dev/escape-hatches", "readinessProbe"] {
        assert!(deployment.contains(needle), "the Deployment lacks {needle:?}:\n{deployment}");
    }
    let names = file_names(&sb.app_dir());
    assert_eq!(names.len(), 9, "8 objects and the kustomization: {names:?}");
    assert!(!names.iter().any(|n| n.contains("horizontalpodautoscaler")), "{names:?}");
    assert!(!sb.read_app_file("kustomization.yaml").contains("horizontalpodautoscaler"));

    // The stored Deployment: the overlay merged into the container (not replacing it).
    let release = sb.release(1);
    let d = object(&release, "Deployment", APP);
    assert_eq!(
        d["metadata"]["annotations"]["paved.dev/escape-hatches"],
        "cpu-limit=2000m,custom-manifest=overlay.yaml,no-hpa"
    );
    assert_eq!(d["spec"]["replicas"], 3);
    let containers = d["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{containers:#?}");
    let c = &containers[0];
    assert_eq!(c["name"], APP);
    assert_eq!(c["image"], IMAGE_V1);
    assert_eq!(c["env"], json!([{ "name": "FOO", "value": "bar" }]));
    assert_eq!(c["resources"]["limits"]["cpu"], "2000m");
    assert!(objects(&release).iter().all(|o| o["kind"] != "HorizontalPodAutoscaler"));

    let history = sb.history_json();
    assert_eq!(history.len(), 1);
    let hatches: Vec<&str> = history[0]["escape_hatches"]
        .as_array()
        .expect("escape_hatches")
        .iter()
        .map(|h| h["name"].as_str().expect("name"))
        .collect();
    assert_eq!(hatches, ["cpu-limit", "custom-manifest", "no-hpa"]);
    assert_eq!(
        history[0]["escape_hatches"],
        json!([
            { "name": "cpu-limit", "value": "2000m" },
            { "name": "custom-manifest", "value": "overlay.yaml" },
            { "name": "no-hpa" },
        ])
    );
    sb.target("history")
        .assert()
        .success()
        .stdout(predicate::str::contains("cpu-limit=2000m,custom-manifest=overlay.yaml,no-hpa"));
}

/// `--extra-manifest` objects join the release in the app's namespace with paved's labels.
#[test]
fn extra_manifest_gets_namespace_and_labels() {
    let sb = Sandbox::new();
    sb.write(
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: my-config\ndata:\n  greeting: hello\n",
    );
    sb.deploy(IMAGE_V1, &["--extra-manifest", "config.yaml"]).success();

    let file = "10-configmap-my-config.yaml";
    let names = file_names(&sb.app_dir());
    assert!(names.contains(&file.to_string()), "{names:?}");
    assert_eq!(names.len(), 11, "{names:?}");
    let contents = sb.read_app_file(file);
    for needle in [
        "kind: ConfigMap",
        &format!("namespace: {NAMESPACE}"),
        "app.kubernetes.io/managed-by: paved",
        "greeting: hello",
    ] {
        assert!(contents.contains(needle), "the ConfigMap lacks {needle:?}:\n{contents}");
    }
    assert!(sb.read_app_file("kustomization.yaml").contains(&format!("- {file}\n")));
    let release = sb.release(1);
    let cm = object(&release, "ConfigMap", "my-config");
    assert_eq!(cm["metadata"]["namespace"], NAMESPACE);
    assert_eq!(cm["metadata"]["labels"]["app.kubernetes.io/managed-by"], "paved");
    assert_eq!(sb.history_json()[0]["escape_hatches"], json!([{ "name": "extra-manifest", "value": "config.yaml" }]));
}

/// Rollback errors: nothing deployed, and an unknown revision (not found: exit 1, with hints).
#[test]
fn rollback_errors_have_hints() {
    let sb = Sandbox::new();
    let nothing = sb.target("rollback").assert().code(1);
    let err = stderr_of(&nothing);
    assert!(err.contains("release of my-service in production not found"), "stderr:\n{err}");
    assert!(err.contains("hint: deploy it first with `paved deploy` (my-service to production)"), "stderr:\n{err}");
    assert!(!sb.releases_dir().exists(), "a failed rollback records nothing");

    sb.target("history").assert().code(1).stderr(predicate::str::contains("paved deploy"));
    sb.target("status").assert().code(1).stderr(predicate::str::contains("paved deploy"));

    sb.deploy(IMAGE_V1, &[]).success();
    sb.deploy(IMAGE_V2, &[]).success();
    let unknown = sb.target("rollback").args(["--to", "9"]).assert().code(1);
    let err = stderr_of(&unknown);
    assert!(err.contains("revision 9 of my-service in production not found"), "stderr:\n{err}");
    assert!(err.contains("hint: revisions to roll back to: 1"), "the current revision is not offered:\n{err}");
    assert_eq!(revisions(&sb.history_json()), [2, 1], "a failed rollback adds no revision");

    // Rolling back to the current objects is refused too.
    let same = sb.target("rollback").args(["--to", "2"]).assert().code(2);
    assert!(stderr_of(&same).contains("same objects"), "stderr:\n{}", stderr_of(&same));
    assert!(stderr_of(&same).contains("pick another revision: 1\n"), "not 2 again:\n{}", stderr_of(&same));
    assert_eq!(revisions(&sb.history_json()), [2, 1]);
}

/// A `paved.toml` is found from the working directory upwards.
#[test]
fn paved_toml_is_discovered_from_the_working_directory_and_its_ancestors() {
    for subdir in [None, Some("services/my-service")] {
        let sb = Sandbox::new();
        sb.write("paved.toml", "domain = \"apps.acme.io\"\n");
        let cwd = match subdir {
            Some(s) => {
                let p = sb.path().join(s);
                fs::create_dir_all(&p).expect("create subdirectory");
                p
            }
            None => sb.path().to_path_buf(),
        };
        let assert = sb.cmd_in(&cwd).args(deploy_args(IMAGE_V1)).assert().success();
        let out = stdout_of(&assert);
        assert_eq!(
            out.lines().last(),
            Some("url: https://my-service.production.apps.acme.io"),
            "cwd {subdir:?}, stdout:\n{out}"
        );
        assert_eq!(sb.release(1)["record"]["url"], "https://my-service.production.apps.acme.io");
        assert!(sb.read_app_file("08-ingress-my-service.yaml").contains("my-service.production.apps.acme.io"));
    }
}

fn git_available() -> bool {
    std::process::Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// A sandbox that is a git work tree with an identity and no signing; `None` (skip) when git
/// is not installed, outside CI (in CI a missing git fails the test).
fn git_sandbox(test: &str) -> Option<Sandbox> {
    if !git_available() {
        assert!(!paved_testkit::in_ci(), "{test}: git is required in CI");
        eprintln!("skipping {test}: `git --version` does not run, git is not installed");
        return None;
    }
    let sb = Sandbox::new();
    for args in [
        &["init", "--quiet", "."][..],
        &["config", "user.name", "Test User"],
        &["config", "user.email", "test@example.com"],
        &["config", "commit.gpgsign", "false"],
    ] {
        git(&sb, args);
    }
    Some(sb)
}

fn git(sb: &Sandbox, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("git");
    configure_env(&mut cmd, sb.path());
    let output = cmd.current_dir(sb.path()).args(args).output().expect("git runs");
    assert!(output.status.success(), "git {args:?} failed: {}", text(&output.stderr));
    text(&output.stdout)
}

fn commit_count(sb: &Sandbox) -> u32 {
    git(sb, &["rev-list", "--count", "HEAD"]).trim().parse().expect("a count")
}

/// Issue 14, item 4: local state (the ledger, lock files) never shows up in git; only releases
/// are committed.
#[test]
fn local_state_stays_out_of_git() {
    let Some(sb) = git_sandbox("local_state_stays_out_of_git") else { return };
    sb.deploy(IMAGE_V1, &[]).success();
    assert!(sb.state().join("ledger.sqlite").is_file(), "the deploy was recorded in the ledger");
    assert!(sb.state().join(".locks").is_dir());
    let status = git(&sb, &["status", "--porcelain", "--untracked-files=all", "--ignored=no"]);
    assert_eq!(status, "", "untracked or changed files after a deploy");
    let files = git(&sb, &["ls-files"]);
    assert!(files.lines().all(|l| l.starts_with("state/releases/") || l.starts_with("state/gitops/")), "{files}");
    // A .gitignore of the user's own is left alone.
    std::fs::write(sb.state().join(".gitignore"), "# mine\n").unwrap();
    sb.deploy(IMAGE_V2, &[]).success();
    assert_eq!(std::fs::read_to_string(sb.state().join(".gitignore")).unwrap(), "# mine\n");
}

/// Inside a git work tree every new revision is exactly one commit, and only of paved's files.
#[test]
fn git_work_tree_gets_one_commit_per_revision() {
    let Some(sb) = git_sandbox("git_work_tree_gets_one_commit_per_revision") else { return };
    // Something the user staged must not be swept into paved's commits.
    sb.write("README.md", "hello\n");
    git(&sb, &["add", "README.md"]);

    sb.deploy(IMAGE_V1, &[]).success();
    assert_eq!(commit_count(&sb), 1);
    let subject = git(&sb, &["log", "-1", "--format=%s"]);
    assert!(subject.starts_with("paved: deploy my-service"), "subject: {subject}");
    assert!(subject.contains(IMAGE_V1) && subject.contains("(revision 1)"), "subject: {subject}");
    let body = git(&sb, &["log", "-1", "--format=%b"]);
    assert!(body.contains("deployed-by: tester"), "body: {body}");
    let files = git(&sb, &["show", "--name-only", "--format=", "HEAD"]);
    assert!(files.lines().filter(|l| !l.is_empty()).all(|l| l.starts_with("state/")), "committed files: {files}");
    assert!(files.contains("state/releases/production/my-service/000001.json"), "committed files: {files}");
    assert!(git(&sb, &["status", "--porcelain", "--", "README.md"]).starts_with("A "), "README.md stays staged");

    // An unchanged redeploy: no commit.
    sb.deploy(IMAGE_V1, &[]).success();
    assert_eq!(commit_count(&sb), 1);

    sb.deploy(IMAGE_V2, &[]).success();
    assert_eq!(commit_count(&sb), 2);
    let subject = git(&sb, &["log", "-1", "--format=%s"]);
    assert!(subject.starts_with("paved: deploy my-service"), "subject: {subject}");

    sb.target("rollback").assert().success();
    assert_eq!(commit_count(&sb), 3);
    let subject = git(&sb, &["log", "-1", "--format=%s"]);
    assert!(subject.starts_with("paved: roll back my-service in production to revision 1"), "subject: {subject}");
    let dirty = git(&sb, &["status", "--porcelain", "--", "state/gitops", "state/releases"]);
    assert!(dirty.is_empty(), "everything paved wrote is committed: {dirty}");
}

fn spawn_deploy(sb: &Sandbox, image: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("paved"));
    configure_env(&mut cmd, sb.path());
    cmd.current_dir(sb.path())
        .arg("--state-dir")
        .arg(sb.state())
        .args(deploy_args(image))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paved starts")
}

/// Concurrent deploys of one app are serialised: every one gets its own revision.
#[test]
fn concurrent_deploys_of_one_app_lose_no_revision() {
    let sb = Sandbox::new();
    let images: Vec<String> = (1..=4).map(|i| format!("ghcr.io/company/my-service:v{i}.0.0")).collect();
    let children: Vec<_> = images.iter().map(|image| spawn_deploy(&sb, image)).collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().expect("paved finishes")).collect();

    let mut written = BTreeSet::new();
    for (image, output) in images.iter().zip(&outputs) {
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "deploy of {image} failed: {}\n{stdout}", text(&output.stderr));
        let revision = stdout
            .lines()
            .find_map(|l| l.strip_prefix("revision ")?.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("deploy of {image} wrote no revision:\n{stdout}"));
        written.insert(revision);
    }
    assert_eq!(written, BTreeSet::from([1, 2, 3, 4]), "each deploy wrote its own revision");

    let history = sb.history_json();
    assert_eq!(revisions(&history), [4, 3, 2, 1]);
    let recorded: BTreeSet<&str> = history.iter().map(|r| r["image"].as_str().expect("image")).collect();
    let expected: BTreeSet<&str> = images.iter().map(String::as_str).collect();
    assert_eq!(recorded, expected, "every image is recorded once");
    assert_eq!(file_names(&sb.releases_dir()), ["000001.json", "000002.json", "000003.json", "000004.json"]);

    // The directory holds the newest revision, intact.
    let status = sb.target("status").assert().code(0);
    assert!(stdout_of(&status).contains("revision 4 (in sync)"), "{}", stdout_of(&status));
    let newest = history[0]["image"].as_str().expect("image");
    assert!(sb.read_app_file(DEPLOYMENT_FILE).contains(&format!("image: {newest}")));
    assert_eq!(file_names(&sb.state().join("gitops").join(ENV)), [APP], "no staging directories are left");
}

// Regression tests for product bugs found while writing this suite.

/// A rollback that fails because nothing is deployed (not found: exit 1) must write nothing.
#[test]
fn rollback_of_nothing_writes_nothing() {
    let sb = Sandbox::new();
    sb.target("rollback").assert().code(1);
    assert!(!sb.state().exists(), "a rejected rollback created {}", sb.state().display());
}

/// Deploys of different apps into one git work tree at the same time must all succeed.
#[test]
fn concurrent_deploys_of_different_apps_in_git_all_succeed() {
    let Some(sb) = git_sandbox("concurrent_deploys_of_different_apps_in_git_all_succeed") else { return };
    let apps: Vec<String> = (1..=8).map(|i| format!("svc{i}")).collect();
    let children: Vec<_> = apps
        .iter()
        .map(|app| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("paved"));
            configure_env(&mut cmd, sb.path());
            cmd.current_dir(sb.path())
                .arg("--state-dir")
                .arg(sb.state())
                .args(["deploy", "--app", app, "--image", IMAGE_V1, "--env", ENV])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("paved starts")
        })
        .collect();
    for (app, child) in apps.iter().zip(children) {
        let output = child.wait_with_output().expect("paved finishes");
        assert!(output.status.success(), "deploy of {app} failed: {}", text(&output.stderr));
    }
    assert_eq!(commit_count(&sb), 8);
}

/// A closed stdout (`paved deploy … | head -1`) must not make paved panic.
#[test]
fn closed_stdout_does_not_panic() {
    let sb = Sandbox::new();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("paved"));
    configure_env(&mut cmd, sb.path());
    let output = cmd
        .current_dir(sb.path())
        .arg("--state-dir")
        .arg(sb.state())
        .args(deploy_args(IMAGE_V1))
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("paved runs");
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
    assert_ne!(output.status.code(), Some(101), "stderr:\n{stderr}");
}

/// Issue 18: git (and what it runs: hooks, helpers) never gets paved's Vault or AWS credentials.
#[test]
fn git_never_gets_the_vault_token() {
    let Some(sb) = git_sandbox("git_never_gets_the_vault_token") else { return };
    // A `git` first on PATH that writes down its environment, then runs the real one.
    let real =
        String::from_utf8(std::process::Command::new("sh").args(["-c", "command -v git"]).output().unwrap().stdout)
            .unwrap();
    let bin = sb.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let dump = sb.path().join("git-env.txt");
    let wrapper = bin.join("git");
    std::fs::write(&wrapper, format!("#!/bin/sh\nenv >> '{}'\nexec '{}' \"$@\"\n", dump.display(), real.trim()))
        .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    sb.cmd()
        .args(deploy_args(IMAGE_V1))
        .env("PATH", path)
        .env("VAULT_TOKEN", "canary-vault-token-5e1f")
        .env("AWS_SECRET_ACCESS_KEY", "canary-aws-secret-5e1f")
        .assert()
        .success();
    assert_eq!(commit_count(&sb), 1);
    let env = std::fs::read_to_string(&dump).expect("paved ran git through the wrapper");
    assert!(env.contains("PATH="), "the wrapper saw an environment");
    assert!(!env.contains("canary"), "git got a credential:\n{env}");
}

/// Issue 19, finding 5: a repository's hooks (a husky-style `core.hooksPath` into the tree, as
/// a pull request can change them) never run when paved commits, and an actor name cannot add
/// lines (forged trailers) to the commit message.
#[test]
fn git_runs_no_hooks_and_commit_messages_keep_their_shape() {
    let Some(sb) = git_sandbox("git_runs_no_hooks_and_commit_messages_keep_their_shape") else { return };
    git(&sb, &["config", "core.hooksPath", ".husky"]);
    let ran = sb.path().join("hook-ran");
    for hook in ["pre-commit", "commit-msg", "post-commit", "prepare-commit-msg"] {
        let path = sb.write(&format!(".husky/{hook}"), &format!("#!/bin/sh\necho {hook} >> '{}'\n", ran.display()));
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    sb.cmd()
        .args(deploy_args(IMAGE_V1))
        .env("PAVED_ACTOR", "mallory\n\nSigned-off-by: Trusted Maintainer <boss@example.com>")
        .assert()
        .success();
    assert_eq!(commit_count(&sb), 1);
    assert!(!ran.exists(), "a hook ran: {}", std::fs::read_to_string(&ran).unwrap_or_default());
    let body = git(&sb, &["log", "-1", "--format=%B"]);
    assert!(!body.lines().any(|l| l.starts_with("Signed-off-by")), "a forged trailer:\n{body}");
    assert!(body.contains("deployed-by: mallory  Signed-off-by: Trusted Maintainer"), "{body}");
}

/// Issue 19, finding 4: an object name with a newline or a `/` (here in an extra manifest) is
/// refused before a release record is saved: nothing is written, no revision is left behind.
#[test]
fn object_names_that_would_escape_the_gitops_directory_are_refused() {
    let sb = Sandbox::new();
    for name in ["\"a\\n- ../../../home/ci/.ssh\"", "../escaped", "a/b"] {
        sb.write("extra.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {{}}\n"));
        let out = sb.cmd().args(deploy_args(IMAGE_V1)).args(["--extra-manifest", "extra.yaml"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("not a Kubernetes name"), "{name}: {}", text(&out.stderr));
        assert!(!sb.releases_dir().exists() && !sb.app_dir().exists(), "{name}: something was written");
    }
}

/// Issue 19, finding 2: a committed release record whose app names a path outside the state
/// directory (a pull request can change it) makes `paved rollback` refuse, writing nothing.
#[test]
fn a_forged_release_record_cannot_send_a_rollback_outside_the_state_directory() {
    let sb = Sandbox::new();
    sb.deploy(IMAGE_V1, &[]).success();
    sb.deploy(IMAGE_V2, &[]).success();
    let record = sb.releases_dir().join("000001.json");
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let victim = sb.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("id_rsa"), "secret key").unwrap();
    forged["record"]["app"] = Value::String(format!("../../../../../../../../..{}", victim.display()));
    std::fs::write(&record, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let out = sb.target("rollback").output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("forged"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(victim.join("id_rsa")).unwrap(), "secret key", "the victim is untouched");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
}

/// Issue 19, finding 2: a symbolic link in the state directory (`gitops/production -> /home/ci`,
/// committed by a pull request) never makes paved write outside it.
#[test]
fn a_symlink_in_the_state_directory_is_never_followed_for_writing() {
    let sb = Sandbox::new();
    let victim = sb.path().join("home-ci");
    std::fs::create_dir_all(victim.join("my-service")).unwrap();
    std::fs::write(victim.join("my-service/.bashrc"), "mine").unwrap();
    for link in ["gitops/production", "releases/production"] {
        let at = sb.state().join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &at).unwrap();
        let out = sb.cmd().args(deploy_args(IMAGE_V1)).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{link}: {}", text(&out.stdout));
        assert!(text(&out.stderr).contains("symbolic link"), "{link}: {}", text(&out.stderr));
        assert_eq!(std::fs::read_to_string(victim.join("my-service/.bashrc")).unwrap(), "mine");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1, "{link}: something was written outside");
        assert_eq!(std::fs::read_dir(victim.join("my-service")).unwrap().count(), 1, "{link}: written outside");
        std::fs::remove_file(&at).unwrap();
    }
    sb.deploy(IMAGE_V1, &[]).success();
}

/// Issue 19, finding 6: a lock file that is a symbolic link is never followed.
#[test]
fn a_symlinked_lock_file_is_never_followed() {
    let sb = Sandbox::new();
    let target = sb.path().join("elsewhere.txt");
    let locks = sb.state().join(".locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::os::unix::fs::symlink(&target, locks.join("production--my-service.lock")).unwrap();
    let out = sb.cmd().args(deploy_args(IMAGE_V1)).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("symbolic link"), "{}", text(&out.stderr));
    assert!(!target.exists(), "the link was followed: a file was created outside");
}
