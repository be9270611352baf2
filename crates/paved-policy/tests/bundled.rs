//! Every plugin under `plugins/` (Rust, Python and JavaScript), through the real host: the
//! documents of its `tests/pass.yaml` pass, every document of its `tests/fail.yaml` is denied
//! with the code its `# expect:` line names, and the golden path's own output passes every
//! bundled policy.

mod support;

use std::path::PathBuf;

use paved_core::Action;
use paved_policy::{ActionInput, Outcome, PolicySet, wit};
use serde_json::{Value, json};
use support::*;

/// Every plugin directory of the repository (not the test fixtures).
fn plugin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(plugin_dir(""))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("policy.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// One fixture document: its objects, `# expect:` code and `# request:` overrides.
struct Doc {
    objects: Vec<Value>,
    expect: Option<String>,
    request: Value,
    line: usize,
}

fn documents(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut line = 1;
    for chunk in text.split("\n---") {
        let directive =
            |name: &str| chunk.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()));
        let has_content = chunk.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let objects = if has_content { objects(chunk) } else { Vec::new() };
        docs.push(Doc {
            objects,
            expect: directive("# expect:"),
            request: directive("# request:")
                .map(|r| serde_json::from_str(&r).expect("# request: is JSON"))
                .unwrap_or(json!({})),
            line,
        });
        line += chunk.matches('\n').count() + 1;
    }
    docs.retain(|d| !d.objects.is_empty() || d.request != json!({}));
    docs
}

/// The action of a fixture document: a production deploy by team `platform`, with overrides.
fn input(doc: &Doc) -> (ActionInput, serde_json::Map<String, Value>) {
    let r = &doc.request;
    let mut input = ActionInput::objects("production", doc.objects.clone());
    input.app = "my-service".into();
    input.team = "platform".into();
    input.image = Some("ghcr.io/company/my-service:v1.2.3".into());
    input.replicas = Some(3);
    if let Some(a) = r.get("action").and_then(Value::as_str) {
        input.action = match a {
            "deploy" => Action::Deploy,
            "rollback" => Action::Rollback,
            "provision-database" => Action::ProvisionDatabase,
            other => panic!("unknown action {other}"),
        };
    }
    if let Some(e) = r.get("environment").and_then(Value::as_str) {
        input.environment = e.into();
    }
    if let Some(t) = r.get("team").and_then(Value::as_str) {
        input.team = t.into();
    }
    if let Some(n) = r.get("replicas") {
        input.replicas = n.as_u64().map(|n| n as u32);
    }
    if let Some(h) = r.get("escape_hatches").and_then(Value::as_array) {
        input.escape_hatches = h.iter().filter_map(Value::as_str).map(str::to_string).collect();
    }
    if let Some(d) = r.get("database") {
        input.database = Some((d["engine"].as_str().unwrap().into(), d["size"].as_str().unwrap().into()));
    }
    (input, r.get("settings").and_then(Value::as_object).cloned().unwrap_or_default())
}

fn evaluate(dir: &std::path::Path, doc: &Doc, host: &std::sync::Arc<paved_policy::PolicyHost>) -> Outcome {
    let (input, settings) = input(doc);
    let plugin = host.load(paved_policy::PolicyManifest::load(dir).unwrap()).unwrap();
    let mut set = PolicySet::new(host.clone());
    set.push(configured(plugin, Value::Object(settings)));
    set.evaluate(&input).outcomes.remove(0).outcome
}

#[test]
fn every_plugin_passes_its_pass_fixtures_and_denies_its_fail_fixtures() {
    let host = shared_host();
    let dirs = plugin_dirs();
    assert!(dirs.len() >= 21, "19 bundled Rust policies + Python + JavaScript, found {}", dirs.len());
    let mut checked = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let pass =
            std::fs::read_to_string(dir.join("tests/pass.yaml")).unwrap_or_else(|_| panic!("{name}: tests/pass.yaml"));
        for doc in documents(&pass) {
            match evaluate(dir, &doc, &host) {
                Outcome::Decided(vs) => {
                    let denials: Vec<_> = vs.iter().filter(|v| v.severity == wit::Severity::Deny).collect();
                    assert!(denials.is_empty(), "{name} pass.yaml:{} denied: {denials:?}", doc.line);
                }
                // A kind the policy does not handle passes by not being looked at.
                Outcome::Skipped => {}
                other => panic!("{name} pass.yaml:{}: {other:?}", doc.line),
            }
            checked += 1;
        }
        let Ok(fail) = std::fs::read_to_string(dir.join("tests/fail.yaml")) else {
            assert_eq!(name, "add-default-labels", "only the mutating plugin has nothing to deny");
            continue;
        };
        for doc in documents(&fail) {
            let expect = doc.expect.clone().unwrap_or_else(|| panic!("{name} fail.yaml:{} has no # expect:", doc.line));
            match evaluate(dir, &doc, &host) {
                Outcome::Decided(vs) => assert!(
                    vs.iter().any(|v| v.severity == wit::Severity::Deny && v.code == expect),
                    "{name} fail.yaml:{}: expected a deny {expect}, got {vs:?}",
                    doc.line
                ),
                other => panic!("{name} fail.yaml:{}: {other:?}", doc.line),
            }
            checked += 1;
        }
    }
    eprintln!("{checked} fixture documents checked across {} plugins", dirs.len());
}

#[test]
fn the_golden_path_passes_every_bundled_policy() {
    let host = shared_host();
    let mut set = PolicySet::new(host.clone());
    for dir in plugin_dirs() {
        set.push(configured(host.load(paved_policy::PolicyManifest::load(&dir).unwrap()).unwrap(), json!({})));
    }
    let golden = paved_testkit::workspace_root().join("crates/paved-kube/tests/golden");
    for file in ["production.yaml", "dev.yaml", "secrets-agent.yaml"] {
        let text = std::fs::read_to_string(golden.join(file)).unwrap();
        let mut input = ActionInput::objects(if file == "dev.yaml" { "dev" } else { "production" }, objects(&text));
        input.app = "my-service".into();
        input.team = "platform".into();
        input.replicas = Some(3);
        let evaluation = set.evaluate(&input);
        let report = evaluation.report();
        assert!(report.violations.is_empty(), "{file}: {:#?}", report.violations);
        assert_eq!(report.evaluated.len(), 21, "{file}: every deploy policy ran: {:?}", report.evaluated);
        // The mutating JavaScript policy labelled every object: the patch says so.
        let patch = evaluation.patch.expect("add-default-labels mutated the objects");
        assert!(patch.to_string().contains("paved.dev~1managed-by"), "{patch}");
    }
}

#[test]
fn the_javascript_mutation_becomes_an_rfc_6902_patch_and_never_overwrites() {
    let host = shared_host();
    let mut set = PolicySet::new(host.clone());
    set.push(configured(load(&host, "add-default-labels"), json!({})));
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "labels": {"paved.dev/managed-by": "helm"}}}),
    ];
    let e = set.evaluate(&ActionInput::objects("production", objects));
    assert!(e.outcomes[0].mutated);
    assert_eq!(
        e.patch.unwrap(),
        json!([{"op": "add", "path": "/0/metadata/labels", "value": {"paved.dev/managed-by": "paved"}}])
    );
    assert_eq!(e.objects[1]["metadata"]["labels"]["paved.dev/managed-by"], "helm");
}

#[test]
fn the_python_policy_reads_its_settings() {
    let host = shared_host();
    let svc = |t: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": t}, "spec": {"type": t}});
    let objects = vec![svc("NodePort"), svc("LoadBalancer")];
    let mut set = PolicySet::new(host.clone());
    set.push(configured(
        load(&host, "restrict-service-types"),
        json!({"allowed_types": ["ClusterIP", "LoadBalancer"]}),
    ));
    let report = set.evaluate(&ActionInput::objects("production", objects)).report();
    let denied: Vec<_> = report.denials().map(|v| (v.object.clone().unwrap(), v.path.clone().unwrap())).collect();
    assert_eq!(denied, vec![("Service/NodePort".to_string(), "spec.type".to_string())]);
}

#[test]
fn a_mutating_policy_in_audit_mode_changes_nothing() {
    let host = shared_host();
    let mut c = paved_core::config::PolicyConfig::new(".");
    c.mode = Some(paved_core::PolicyMode::Audit);
    let mut set = PolicySet::new(host.clone());
    set.push(paved_policy::ConfiguredPolicy::with(load(&host, "add-default-labels"), &c));
    let objects = vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})];
    let e = set.evaluate(&ActionInput::objects("production", objects.clone()));
    assert!(e.outcomes[0].mutated, "the plugin proposed a mutation");
    assert_eq!(*e.objects, *objects, "not applied");
    assert!(e.patch.is_none());
}
