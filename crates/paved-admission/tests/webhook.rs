//! The webhook through its real parts: AdmissionReviews in the shapes the Kubernetes
//! documentation gives, the bundled plugins (built components) and the baseline, HTTPS with a
//! test CA, hot reloads under load, hostile plugins, and the same verdicts as plan time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use paved_admission::{Admission, CertificateFiles, Endpoint, Loader, Policies};
use paved_core::{DeployRequest, Error, OrgConfig, Platform};
use paved_policy::{ActionInput, ConfiguredPolicy, HostOptions, PolicyHost, PolicyManifest, PolicySet};
use serde_json::{Value, json};

fn plugins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn host() -> Arc<PolicyHost> {
    Arc::new(PolicyHost::new(HostOptions { cache_dir: None, ..HostOptions::default() }).unwrap())
}

/// A set of bundled plugins (built components), each with settings.
fn set_of(host: &Arc<PolicyHost>, plugins_and_settings: &[(&str, Value)]) -> PolicySet {
    let mut set = PolicySet::new(host.clone());
    for (rel, settings) in plugins_and_settings {
        let manifest = PolicyManifest::load(plugins().join(rel)).unwrap();
        let plugin = host.load(manifest).unwrap_or_else(|e| panic!("{rel}: {e} (run scripts/build-plugins.sh)"));
        let mut config = paved_core::config::PolicyConfig::new(plugins().join(rel));
        config.settings = settings.as_object().cloned().unwrap_or_default();
        set.push(ConfiguredPolicy::with(plugin, &config));
    }
    set
}

fn admission_with(config: &str, set: PolicySet) -> Arc<Admission> {
    let config = OrgConfig::parse("paved.toml", config).unwrap();
    Admission::new(Policies::with_set(config, set).unwrap(), None)
}

/// The baseline alone (built-ins: no component needed).
fn baseline() -> Arc<Admission> {
    Admission::new(Policies::load(OrgConfig::parse("paved.toml", "").unwrap()).unwrap(), None)
}

async fn review(a: &Admission, endpoint: Endpoint, body: &[u8]) -> Value {
    a.review(endpoint, body).await.unwrap()["response"].clone()
}

/// An AdmissionReview of `object` (CREATE, or UPDATE/DELETE with `old`).
fn wrap(operation: &str, object: Option<&Value>, old: Option<&Value>, namespace: &str, dry_run: bool) -> Vec<u8> {
    let subject = object.or(old).unwrap();
    let api_version = subject["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c4e0e-0000-4000-8000-000000000001",
            "kind": {"group": group, "version": version, "kind": subject["kind"]},
            "resource": {"group": group, "version": version, "resource": "x"},
            "name": subject.pointer("/metadata/name").cloned().unwrap_or(json!("")),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "uid": "1", "groups": ["system:authenticated"]},
            "object": object, "oldObject": old, "dryRun": dry_run,
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn documented_review_shapes_get_the_baseline_verdicts() {
    let a = baseline();
    // A privileged Pod: denied, each violation with its policy, field and hint.
    let r = review(&a, Endpoint::Validate, &fixture("pod-create.json")).await;
    assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("denied by the organisation's policies ("), "{message}");
    assert!(
        message.contains(
            "disallow-privileged-containers: container shell runs privileged (privileged: true) \
             (at spec.containers[0].securityContext.privileged; hint: remove securityContext.privileged"
        ),
        "{message}"
    );
    // A Deployment that meets the restricted profile: allowed.
    let r = review(&a, Endpoint::Validate, &fixture("deployment-create.json")).await;
    assert_eq!((r["uid"].as_str(), r["allowed"].as_bool()), (Some("a4d1c0b2-0001"), Some(true)), "{r}");
    // An UPDATE to `latest` (with the old object): denied.
    let r = review(&a, Endpoint::Validate, &fixture("deployment-update.json")).await;
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("disallow-latest-tag: container app uses the mutable tag `latest`")
    );
    // A CronJob without a tag, in a staging namespace (`{app}-{env}`): denied.
    let r = review(&a, Endpoint::Validate, &fixture("cronjob-create.json")).await;
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"].as_str().unwrap().contains("uses image \"ghcr.io/company/report\" without a tag"),
        "{r}"
    );
    // Deleting the privileged Pod: allowed (no policy asks for DELETE; a bad object can go).
    let r = review(&a, Endpoint::Validate, &fixture("pod-delete.json")).await;
    assert_eq!((r["uid"].as_str(), r["allowed"].as_bool()), (Some("d0a1-0004"), Some(true)));
    // A CONNECT (`kubectl exec`): its object is the options; no policy of the baseline asks
    // for CONNECT, so it is allowed, uid echoed.
    let exec = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "c0nn-0006", "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": "exec",
        "requestKind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
        "name": "debug", "namespace": "web-production", "operation": "CONNECT",
        "userInfo": {"username": "alice"},
        "object": {"kind": "PodExecOptions", "apiVersion": "v1", "stdin": true, "tty": true, "container": "shell",
            "command": ["sh"]},
        "oldObject": null, "dryRun": false}});
    let r = review(&a, Endpoint::Validate, &serde_json::to_vec(&exec).unwrap()).await;
    assert_eq!((r["uid"].as_str(), r["allowed"].as_bool()), (Some("c0nn-0006"), Some(true)), "{r}");
    // A dry run gets the verdict the real request would.
    let r = review(&a, Endpoint::Validate, &fixture("deployment-create-dry-run.json")).await;
    assert_eq!((r["uid"].as_str(), r["allowed"].as_bool()), (Some("e0a1-0005"), Some(false)));
    let metrics = a.metrics().encode();
    assert!(
        metrics.contains(r#"paved_admission_requests_total{endpoint="validate",operation="CREATE",dry_run="true"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"paved_admission_decisions_total{endpoint="validate",decision="denied"} 4"#),
        "{metrics}"
    );
    // The mutating webhook has no mutating policy in the baseline: allowed, no patch.
    let r = review(&a, Endpoint::Mutate, &fixture("deployment-create.json")).await;
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none());
}

#[tokio::test]
async fn excluded_namespaces_are_allowed_unevaluated() {
    let a = baseline();
    let pod = serde_json::from_slice::<Value>(&fixture("pod-create.json")).unwrap()["request"]["object"].clone();
    for ns in ["kube-system", "paved-system"] {
        let r = review(&a, Endpoint::Validate, &wrap("CREATE", Some(&pod), None, ns, false)).await;
        assert_eq!(r["allowed"], true, "{ns}");
    }
    let r = review(&a, Endpoint::Validate, &wrap("CREATE", Some(&pod), None, "default", false)).await;
    assert_eq!(r["allowed"], false);
}

/// Every bundled plugin's own test objects (`tests/pass.yaml`, `tests/fail.yaml`), wrapped as
/// AdmissionReviews, get the verdict plan time gives them, with the same messages; the
/// passing fixtures pass.
#[tokio::test]
async fn bundled_policies_give_the_same_verdicts_at_admission_as_at_plan_time() {
    let host = host();
    let mut compared = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(plugins())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("policy.toml").is_file() && p.join("tests").is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "{dirs:?}");
    for dir in dirs {
        let rel = dir.file_name().unwrap().to_str().unwrap().to_string();
        let set = set_of(&host, &[(&rel, json!({}))]);
        if !set.policies()[0].manifest().actions.contains(&paved_core::Action::Deploy) {
            continue;
        }
        let a = admission_with("", set.clone());
        for file in ["pass.yaml", "fail.yaml"] {
            let Ok(text) = std::fs::read_to_string(dir.join("tests").join(file)) else { continue };
            for doc in text.split("\n---") {
                // Documents with request overrides (another action, team or environment)
                // describe plan-time requests only.
                if doc.contains("# request:") {
                    continue;
                }
                for object in paved_core::Manifests::from_yaml(doc).unwrap().iter().map(|m| m.value().clone()) {
                    // Plan time as `paved deploy` sees a rendered object: its team is the
                    // request's (the `paved.dev/team` label the renderer writes).
                    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                    let input = paved_admission::review::plan_input(object.clone(), "production".into(), name);
                    let plan = set.evaluate(&input).report();
                    let expected = paved_admission::Verdict::of_report(&plan);
                    let got =
                        review(&a, Endpoint::Validate, &wrap("CREATE", Some(&object), None, "web-production", false))
                            .await;
                    assert_eq!(got["allowed"].as_bool(), Some(expected.allowed), "{rel}/{file}: {object}\n{got}");
                    assert_eq!(got["status"]["message"].as_str(), expected.message.as_deref(), "{rel}/{file}");
                    if file == "pass.yaml" {
                        assert_eq!(got["allowed"], true, "{rel}: its own passing fixture passes at admission");
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 60, "{compared} objects compared");
}

/// The JSONPatch of `/mutate`, applied to the object, gives exactly what plan-time mutation
/// gives (the JavaScript `add-default-labels`).
#[tokio::test]
async fn the_mutation_patch_gives_the_plan_time_object() {
    let host = host();
    let set = set_of(&host, &[("add-default-labels", json!({"labels": {"owner": "platform", "cost-center": "cc-7"}}))]);
    let a = admission_with("", set.clone());
    let deployment =
        serde_json::from_slice::<Value>(&fixture("deployment-create.json")).unwrap()["request"]["object"].clone();
    let plan = set.evaluate(&ActionInput::objects("production", vec![deployment.clone()]));
    assert_ne!(plan.objects[0], deployment, "the plugin adds labels");
    let r = review(&a, Endpoint::Mutate, &wrap("CREATE", Some(&deployment), None, "web-production", false)).await;
    assert_eq!((r["allowed"].as_bool(), r["patchType"].as_str()), (Some(true), Some("JSONPatch")), "{r}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(r["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut patched = deployment.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(patched, plan.objects[0]);
    // An object that already has the labels gets no patch.
    let r = review(&a, Endpoint::Mutate, &wrap("CREATE", Some(&patched), None, "web-production", false)).await;
    assert!(r.get("patch").is_none(), "{r}");
}

/// The admission context reaches a 0.2.0 plugin; a plugin built against 0.1.0 keeps working
/// beside it (and never sees the context).
#[tokio::test]
async fn the_admission_context_reaches_plugins_and_0_1_plugins_keep_working() {
    let host = host();
    let set = set_of(&host, &[("testdata/admission-context", json!({})), ("testdata/contract-0-1", json!({}))]);
    assert_eq!(set.policies().iter().map(|p| p.plugin().unwrap().contract()).collect::<Vec<_>>(), ["0.2.0", "0.1.0"]);
    let a = admission_with("", set.clone());
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "labels": {"immutable-owner": "team-a", "protected": "true"}}, "data": {}});
    let r = review(&a, Endpoint::Validate, &wrap("CREATE", Some(&cm), None, "team-a", true)).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["warnings"],
        json!(["admission-context: context: CREATE v1/ConfigMap settings by alice in team-a, dry run"])
    );
    let old = cm.clone();
    cm["metadata"]["labels"]["immutable-owner"] = json!("team-b");
    let r = review(&a, Endpoint::Validate, &wrap("UPDATE", Some(&cm), Some(&old), "team-a", false)).await;
    assert_eq!(r["allowed"], false);
    assert!(r["status"]["message"].as_str().unwrap().contains(
        "admission-context: the label immutable-owner cannot be changed (at metadata.labels.immutable-owner; hint: create a new object instead)"
    ));
    // DELETE reaches the policies that ask for it, with the object being deleted.
    let r = review(&a, Endpoint::Validate, &wrap("DELETE", None, Some(&old), "team-a", false)).await;
    assert!(r["status"]["message"].as_str().unwrap().contains("protected=true cannot be deleted"), "{r}");
    // The 0.1.0 plugin denies by its label, at admission and at plan time alike.
    cm["metadata"]["labels"] = json!({"contract-test": "deny"});
    let r = review(&a, Endpoint::Validate, &wrap("CREATE", Some(&cm), None, "team-a", false)).await;
    assert!(r["status"]["message"].as_str().unwrap().contains("contract-0-1: labelled contract-test=deny"), "{r}");
    let plan = set.evaluate(&ActionInput::objects("production", vec![cm])).report();
    assert!(plan.violations.iter().any(|v| v.policy == "contract-0-1" && v.code == "contract-test"));
    // Deprovisioning reaches it as `provision-database` (its contract has no other case).
    let mut input = ActionInput::objects("production", vec![]);
    input.action = paved_core::Action::DeprovisionDatabase;
    input.database = Some(("postgres".into(), "small".into()));
    let report = set.evaluate(&input).report();
    assert!(report.violations.iter().any(|v| v.message == "database action seen as provision-database"), "{report:?}");
}

/// An object that breaks a rule can always be deleted: its DELETE, and the UPDATEs that remove
/// its finalizers once it is being deleted, pass.
#[tokio::test]
async fn deleting_a_non_compliant_object_is_never_blocked() {
    let a = baseline();
    let pod = serde_json::from_slice::<Value>(&fixture("pod-create.json")).unwrap()["request"]["object"].clone();
    let mut finishing = pod.clone();
    finishing["metadata"]["deletionTimestamp"] = json!("2026-12-07T10:00:00Z");
    finishing["metadata"]["finalizers"] = json!([]);
    let mut old = finishing.clone();
    old["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let r =
        review(&a, Endpoint::Validate, &wrap("UPDATE", Some(&finishing), Some(&old), "web-production", false)).await;
    assert_eq!(r["allowed"], true, "{r}");
    // The same UPDATE of a live object is checked.
    let r = review(&a, Endpoint::Validate, &wrap("UPDATE", Some(&pod), Some(&pod), "web-production", false)).await;
    assert_eq!(r["allowed"], false);
}

/// CONNECT reaches a policy that asks for it (`admission_operations`), with its subresource.
#[tokio::test]
async fn connect_reaches_the_policies_that_ask_for_it() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["policy.toml", "policy.wasm"] {
        std::fs::copy(plugins().join("testdata/admission-context").join(file), dir.path().join(file)).unwrap();
    }
    let manifest = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    std::fs::write(dir.path().join("policy.toml"), manifest.replace("\"DELETE\"]", "\"DELETE\", \"CONNECT\"]"))
        .unwrap();
    let host = host();
    let mut set = PolicySet::new(host.clone());
    set.push(ConfiguredPolicy::new(host.load(PolicyManifest::load(dir.path()).unwrap()).unwrap()));
    let a = admission_with("", set);
    let options = json!({"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"], "stdin": true});
    let mut body: Value = serde_json::from_slice(&wrap("CONNECT", Some(&options), None, "team-a", false)).unwrap();
    body["request"]["name"] = json!("debug");
    body["request"]["subResource"] = json!("exec");
    let r = review(&a, Endpoint::Validate, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["warnings"],
        json!(["admission-context: context: CONNECT v1/PodExecOptions debug by alice in team-a"])
    );
}

/// A Secret reaches the policies with its keys but never its values.
#[test]
fn secret_values_never_reach_the_policies() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
        "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "s3cr3t"}});
    let review = paved_admission::Review::parse(&wrap("CREATE", Some(&secret), None, "team-a", false)).unwrap();
    let input = review.action_input("production".into());
    let text = serde_json::to_string(&input.objects).unwrap();
    assert!(!text.contains("aHVudGVyMg==") && !text.contains("s3cr3t"), "{text}");
    assert_eq!(input.objects[0]["data"]["password"], "(redacted)");
}

/// A plugin built against 0.1.0 cannot see the operation: asking it to check DELETE is refused.
#[test]
fn a_0_1_plugin_asking_for_delete_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["policy.toml", "policy.wasm"] {
        std::fs::copy(plugins().join("testdata/contract-0-1").join(file), dir.path().join(file)).unwrap();
    }
    let manifest = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        manifest.replace("kinds = []", "kinds = []\nadmission_operations = [\"CREATE\", \"DELETE\"]"),
    )
    .unwrap();
    let host = host();
    let mut set = PolicySet::new(host.clone());
    set.push(ConfiguredPolicy::new(host.load(PolicyManifest::load(dir.path()).unwrap()).unwrap()));
    let e = Policies::with_set(OrgConfig::default(), set).unwrap_err();
    assert_eq!(e.kind(), paved_core::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("built against paved:policy@0.1.0"), "{e}");
    assert!(e.hint().unwrap().contains("rebuild the plugin against paved:policy@0.2.0"));
}

/// "Done when": a plugin written once denies the same Deployment at `paved deploy` and at
/// admission, with the same message and hint.
#[tokio::test]
async fn a_plugin_denies_the_same_deployment_at_deploy_and_at_admission() {
    let host = host();
    let set = set_of(&host, &[("disallow-latest-tag", json!({}))]);
    let dir = tempfile::tempdir().unwrap();
    let config = OrgConfig::default();
    let request = DeployRequest::new("web", "ghcr.io/company/web:latest", "production").unwrap();
    let platform = Platform::builder()
        .config(config.clone())
        .renderer(paved_kube::KubeRenderer)
        .deployer(paved_kube::GitOpsTarget::new(dir.path()))
        .policy(set.clone())
        .build()
        .unwrap();
    let Err(Error::PolicyDenied { violations }) = platform.deploy(&request).await else { panic!("not denied") };
    let v = violations.iter().find(|v| v.policy == "disallow-latest-tag").unwrap();
    // The same Deployment, as it would reach the API server.
    let unchecked = Platform::builder()
        .config(config)
        .renderer(paved_kube::KubeRenderer)
        .deployer(paved_kube::GitOpsTarget::new(dir.path()))
        .build()
        .unwrap();
    let plan = unchecked.plan(&request).await.unwrap();
    let deployment = plan.manifests.iter().find(|m| m.kind() == "Deployment").unwrap().value().clone();
    let ns = deployment.pointer("/metadata/namespace").and_then(Value::as_str).unwrap().to_string();
    let a = admission_with("", set);
    let r = review(&a, Endpoint::Validate, &wrap("CREATE", Some(&deployment), None, &ns, false)).await;
    let message = r["status"]["message"].as_str().unwrap();
    let line = format!(
        "disallow-latest-tag: {} (at {}; hint: {})",
        v.message,
        v.path.as_deref().unwrap(),
        v.hint.as_deref().unwrap()
    );
    assert!(message.contains(&line), "{message}\n  vs {line}");
}

#[tokio::test]
async fn malformed_reviews_get_400_and_the_server_keeps_answering() {
    let a = baseline();
    let (url, _server) = serve_http(&a).await;
    let client = reqwest::Client::new();
    for body in [
        &b"{"[..],
        b"null",
        b"{\"kind\":\"AdmissionReview\"}",
        &[0xff, 0xfe, 0x00],
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"x\"}}",
    ] {
        let r = client.post(format!("{url}/validate")).body(body.to_vec()).send().await.unwrap();
        assert_eq!(r.status(), 400, "{}", String::from_utf8_lossy(body));
    }
    let r = client.post(format!("{url}/validate")).body(fixture("deployment-create.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client.get(format!("{url}/healthz")).send().await.unwrap().status(), 200);
    let metrics = client.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("paved_admission_malformed_total 5"), "{metrics}");
    assert!(metrics.contains("paved_admission_request_duration_seconds_bucket"), "{metrics}");
}

/// Every hostile plugin of the policy tests, served at admission: each request gets an answer
/// (by the failure policy), and the server answers the next one.
#[tokio::test]
async fn hostile_plugins_leave_the_server_answering() {
    let host = host();
    let a_good = review(&baseline(), Endpoint::Validate, &fixture("deployment-create.json")).await;
    assert_eq!(a_good["allowed"], true);
    // Attacks that make the plugin fail (the others are contained and answer normally).
    let failing = ["loop", "sleep", "memory", "recursion", "big-output", "stdout-flood", "panic", "trap", "mutate"];
    for attack in failing.iter().chain(&["read-file", "env", "write-outside", "socket"]) {
        let attack = *attack;
        let set = set_of(&host, &[("testdata/hostile", json!({"attack": attack}))]);
        let a = admission_with("", set);
        let (url, _server) = serve_http(&a).await;
        let client = reqwest::Client::new();
        let r: Value = client
            .post(format!("{url}/validate"))
            .body(fixture("deployment-create.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["response"]["uid"], "a4d1c0b2-0001", "{attack}: {r}");
        assert!(r["response"]["allowed"].is_boolean(), "{attack}: {r}");
        assert_eq!(client.get(format!("{url}/healthz")).send().await.unwrap().status(), 200, "{attack}");
        if failing.contains(&attack) {
            assert_eq!(r["response"]["allowed"], false, "{attack}: fails closed: {r}");
            assert!(
                a.metrics().encode().contains("paved_admission_plugin_failures_total{policy=\"hostile\""),
                "{attack}"
            );
        }
    }
}

/// Past the deadline and over the concurrency limit, a request follows `failure_policy`.
#[tokio::test]
async fn undecided_requests_follow_the_failure_policy() {
    // The hostile plugin with a 2 s time limit, sleeping 1 s then allowing; one evaluation at
    // a time; a 1 s webhook timeout (a deadline of 750 ms).
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(plugins().join("testdata/hostile")).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    std::fs::write(dir.path().join("policy.toml"), manifest.replace("timeout_ms = 200", "timeout_ms = 2000")).unwrap();
    let host = host();
    let mut set = PolicySet::new(host.clone());
    let mut config = paved_core::config::PolicyConfig::new(dir.path());
    config.settings = json!({"attack": "sleep-then-allow", "sleep_ms": 1000}).as_object().cloned().unwrap();
    set.push(ConfiguredPolicy::with(host.load(PolicyManifest::load(dir.path()).unwrap()).unwrap(), &config));
    for (policy, allowed) in [("fail", false), ("ignore", true)] {
        let config = format!("[admission]\nmax_concurrent = 1\ntimeout_seconds = 1\nfailure_policy = \"{policy}\"\n");
        let a = admission_with(&config, set.clone());
        let body = fixture("deployment-create.json");
        let (first, second) = tokio::join!(a.review(Endpoint::Validate, &body), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            a.review(Endpoint::Validate, &body).await
        });
        for (r, why) in [
            (first.unwrap()["response"].clone(), "no decision within the deadline of 750 ms"),
            (second.unwrap()["response"].clone(), "1 evaluations were running and none finished within 750 ms"),
        ] {
            assert_eq!(r["allowed"], allowed, "{policy}: {r}");
            let said = if allowed { r["warnings"][0].as_str() } else { r["status"]["message"].as_str() };
            assert!(said.unwrap().contains(&format!("could not decide: {why}")), "{r}");
        }
        let metrics = a.metrics().encode();
        assert!(metrics.contains("paved_admission_undecided_total{reason=\"over-limit\"} 1"), "{metrics}");
        assert!(metrics.contains("paved_admission_undecided_total{reason=\"deadline\"} 1"), "{metrics}");
        // The slot frees when the plugin ends: the webhook decides again.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Policies are reloaded while 1,000 requests are served: none is lost, and the verdict
/// changes with the files. A reload whose pin does not match keeps the previous policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_reload_during_1000_requests_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugins/disallow-latest-tag");
    std::fs::create_dir_all(&plugin).unwrap();
    for file in ["policy.toml", "policy.wasm"] {
        std::fs::copy(plugins().join("disallow-latest-tag").join(file), plugin.join(file)).unwrap();
    }
    let config = dir.path().join("paved.toml");
    let write_config = |mode: &str| {
        std::fs::write(
            &config,
            format!("baseline = false\n[[policies]]\npath = \"plugins/disallow-latest-tag\"\nmode = \"{mode}\"\n"),
        )
        .unwrap()
    };
    write_config("enforce");
    let path = config.clone();
    let loader: Loader = Arc::new(move || {
        let config = OrgConfig::load(&path)?;
        let set = PolicySet::from_config(&config, HostOptions { cache_dir: None, ..HostOptions::default() })?;
        Policies::with_set(config, set)
    });
    let a = Admission::from_loader(loader).unwrap();
    let (url, _server) = serve_http(&a).await;
    let _watch = a.watch(Duration::from_millis(10), None);
    let body = fixture("deployment-update.json"); // the image is :latest
    let client = reqwest::Client::new();
    let verdicts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, url, body, verdicts, sent) =
            (client.clone(), url.clone(), body.clone(), verdicts.clone(), sent.clone());
        workers.push(tokio::spawn(async move {
            while sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 1000 {
                let r = client.post(format!("{url}/validate")).body(body.clone()).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let r: Value = r.json().await.unwrap();
                verdicts.lock().unwrap().push(r["response"]["allowed"].as_bool().unwrap());
            }
        }));
    }
    // Half-way, the policy turns to warn.
    while verdicts.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    write_config("warn");
    for w in workers {
        w.await.unwrap();
    }
    let verdicts = verdicts.lock().unwrap().clone();
    assert_eq!(verdicts.len(), 1000, "every request answered");
    let first_allowed = verdicts.iter().position(|allowed| *allowed).expect("allowed after the reload");
    assert!(first_allowed >= 300, "denied before the reload: {first_allowed}");
    // A review keeps the policies it started with: only the ≤ 16 in flight at the reload
    // may still answer with the old ones.
    let late = verdicts[first_allowed..].iter().filter(|allowed| !**allowed).count();
    assert!(late <= 16, "{late} denials after the first allow");
    assert!(a.metrics().encode().contains("paved_admission_reloads_total{what=\"policies\",result=\"ok\"} 1"));

    // A component that no longer matches its pin: the reload fails, the policies stay.
    std::fs::write(plugin.join("policy.wasm"), b"\0asm tampered").unwrap();
    assert!(a.reload_if_changed().await.is_err());
    let r = review(&a, Endpoint::Validate, &body).await;
    assert_eq!((r["allowed"].as_bool(), r["warnings"].as_array().map(Vec::len)), (Some(true), Some(1)));
}

/// Policies mounted from a ConfigMap, as the kubelet writes one (files behind `..data`, a
/// symlink to a timestamped directory, swapped atomically on an update): they load, and an
/// update of the ConfigMap reloads them.
#[tokio::test]
async fn policies_mounted_from_a_configmap_load_and_reload_on_update() {
    use std::os::unix::fs::symlink;
    let mount = tempfile::tempdir().unwrap();
    let write_version = |stamp: &str, mode: &str| {
        let dir = mount.path().join(stamp);
        std::fs::create_dir_all(dir.join("plugins/disallow-latest-tag")).unwrap();
        for file in ["policy.toml", "policy.wasm"] {
            std::fs::copy(
                plugins().join("disallow-latest-tag").join(file),
                dir.join("plugins/disallow-latest-tag").join(file),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("paved.toml"),
            format!("[[policies]]\npath = \"plugins/disallow-latest-tag\"\nmode = \"{mode}\"\n"),
        )
        .unwrap();
        // The kubelet's atomic writer: a new `..data` link, renamed over the old one.
        let tmp = mount.path().join("..data_tmp");
        symlink(stamp, &tmp).unwrap();
        std::fs::rename(&tmp, mount.path().join("..data")).unwrap();
    };
    write_version("..2026_12_07_10_00_00.000000001", "enforce");
    symlink("..data/paved.toml", mount.path().join("paved.toml")).unwrap();
    symlink("..data/plugins", mount.path().join("plugins")).unwrap();
    let config = mount.path().join("paved.toml");
    let loader: Loader = Arc::new(move || {
        let config = OrgConfig::load(&config)?;
        let set = PolicySet::from_config(&config, HostOptions { cache_dir: None, ..HostOptions::default() })?;
        Policies::with_set(config, set)
    });
    let a = Admission::from_loader(loader).unwrap();
    let body = fixture("deployment-update.json"); // the image is :latest
    assert_eq!(review(&a, Endpoint::Validate, &body).await["allowed"], false);
    assert!(!a.reload_if_changed().await.unwrap(), "nothing changed yet");
    // `kubectl apply` of the ConfigMap with the policy in warn mode.
    write_version("..2026_12_07_10_05_00.000000002", "warn");
    std::fs::remove_dir_all(mount.path().join("..2026_12_07_10_00_00.000000001")).unwrap();
    assert!(a.reload_if_changed().await.unwrap(), "the update is seen through the links");
    let r = review(&a, Endpoint::Validate, &body).await;
    assert_eq!((r["allowed"].as_bool(), r["warnings"].as_array().map(Vec::len)), (Some(true), Some(1)), "{r}");
}

#[tokio::test]
async fn https_with_a_test_ca_and_a_certificate_rotated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca1 = issue(&cert, &key, "first CA");
    let files = CertificateFiles::load(&cert, &key).unwrap();
    let a = baseline();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (a2, files2) = (a.clone(), files.clone());
    let server = tokio::spawn(async move { a2.serve(listener, Some(files2), std::future::pending()).await });
    let trusting = |ca: &str| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .build()
            .unwrap()
    };
    let r = trusting(&ca1).post(format!("{url}/validate")).body(fixture("pod-create.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["response"]["allowed"], false);
    // Plain HTTP to the HTTPS port gets nowhere; the server goes on.
    assert!(reqwest::get(url.replace("https", "http") + "/healthz").await.is_err());
    // cert-manager rotates the files: the next handshake has the new certificate.
    std::thread::sleep(Duration::from_millis(20));
    let ca2 = issue(&cert, &key, "second CA");
    assert!(files.reload_if_changed().unwrap());
    assert_eq!(trusting(&ca2).get(format!("{url}/healthz")).send().await.unwrap().status(), 200);
    assert!(trusting(&ca1).get(format!("{url}/healthz")).send().await.is_err(), "the old CA no longer verifies");
    // A broken pair is refused; the current certificate keeps serving.
    std::fs::write(&key, "not a key").unwrap();
    assert!(files.reload_if_changed().is_err());
    assert_eq!(trusting(&ca2).get(format!("{url}/readyz")).send().await.unwrap().status(), 200);
    server.abort();
}

/// Writes a certificate for 127.0.0.1 signed by a new CA; returns the CA's PEM.
fn issue(cert: &Path, key: &Path, ca_name: &str) -> String {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let signed =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&server_key, &ca).unwrap();
    std::fs::write(cert, signed.pem()).unwrap();
    std::fs::write(key, server_key.serialize_pem()).unwrap();
    ca.pem()
}

/// Serves a webhook over plain HTTP on a free port; the handle stops it when dropped.
async fn serve_http(a: &Arc<Admission>) -> (String, AbortOnDrop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let a = a.clone();
    let task = tokio::spawn(async move {
        let _ = a.serve(listener, None, std::future::pending()).await;
    });
    (url, AbortOnDrop(task))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
