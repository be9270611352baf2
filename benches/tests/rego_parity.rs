//! The admission benchmark's peer evaluates the same rules: `fixtures/rego/baseline.rego`, run
//! by regorus, reports the same (policy, code, path) set as the eleven built-ins of the
//! baseline on every object of the eleven plugins' own fixtures (`tests/pass.yaml`,
//! `tests/fail.yaml`) and on the golden path's release.

use std::collections::BTreeSet;

use paved_policy::{ActionInput, BASELINE, Builtin, ConfiguredPolicy, HostOptions, Outcome, PolicyHost, PolicySet};
use serde_json::Value;

type Found = BTreeSet<(String, String, String)>;

fn rego() -> regorus::CompiledPolicy {
    let mut engine = regorus::Engine::new();
    let text = include_str!("../fixtures/rego/baseline.rego");
    engine.add_policy("baseline.rego".into(), text.into()).expect("the Rego policy compiles");
    engine.compile_with_entrypoint(&"data.paved.baseline.deny".into()).expect("compiles")
}

fn rego_found(policy: &regorus::CompiledPolicy, object: &Value) -> Found {
    let input = regorus::Value::from_json_str(&object.to_string()).expect("input JSON");
    let deny = policy.eval_with_input(input).expect("deny evaluates");
    let field = |v: &regorus::Value, k: &str| v[&regorus::Value::from(k)].as_string().expect(k).to_string();
    deny.as_set()
        .expect("deny is a set")
        .iter()
        .map(|v| (field(v, "policy"), field(v, "code"), field(v, "path")))
        .collect()
}

fn paved_found(set: &PolicySet, object: &Value) -> Found {
    let evaluation = set.evaluate(&ActionInput::objects("production", vec![object.clone()]));
    let mut found = Found::new();
    for outcome in &evaluation.outcomes {
        if let Outcome::Decided(violations) = &outcome.outcome {
            for v in violations {
                found.insert((outcome.policy.clone(), v.code.clone(), v.path.clone().unwrap_or_default()));
            }
        }
    }
    found
}

#[test]
fn the_rego_baseline_reports_what_the_built_ins_report() {
    let host = std::sync::Arc::new(PolicyHost::new(HostOptions { cache_dir: None, ..HostOptions::default() }).unwrap());
    let mut set = PolicySet::new(host);
    for builtin in Builtin::baseline() {
        let config = paved_core::config::PolicyConfig::new(builtin.manifest().dir.clone());
        set.push(ConfiguredPolicy::builtin(builtin, &config));
    }
    let policy = rego();
    let root = paved_testkit::workspace_root();
    let mut objects: Vec<Value> = Vec::new();
    for name in BASELINE {
        for file in ["pass.yaml", "fail.yaml"] {
            let text = std::fs::read_to_string(root.join("plugins").join(name).join("tests").join(file)).unwrap();
            for doc in text.split("\n---") {
                objects.extend(paved_core::Manifests::from_yaml(doc).unwrap().iter().map(|m| m.value().clone()));
            }
        }
    }
    let golden = std::fs::read_to_string(root.join("crates/paved-kube/tests/golden/production.yaml")).unwrap();
    objects.extend(paved_core::Manifests::from_yaml(&golden).unwrap().iter().map(|m| m.value().clone()));
    let mut violations = 0;
    for object in &objects {
        let paved = paved_found(&set, object);
        assert_eq!(rego_found(&policy, object), paved, "{object}");
        violations += paved.len();
    }
    assert!(objects.len() >= 100 && violations >= 100, "{} objects, {violations} violations", objects.len());
}
