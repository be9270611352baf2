//! `paved policy new`: a working plugin with a test, in Rust, Python or JavaScript.

use std::path::Path;

use paved::{Error, Result};

use crate::policy_cmd::{Lang, language};

/// Writes a new plugin into `dir` (which must not exist or be empty).
pub(crate) fn scaffold(name: &str, lang: Lang, dir: &Path) -> Result<()> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(Error::invalid(
            "name",
            name,
            "is not a lowercase policy name",
            Some("use e.g. require-owner-label".into()),
        ));
    }
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::invalid(
            "dir",
            dir.display().to_string(),
            "exists and is not empty",
            Some("choose another --dir or remove it".into()),
        ));
    }
    let lang_name = language(lang).as_str();
    let mut files: Vec<(String, String)> = vec![
        ("wit/policy.wit".into(), paved::policy::WIT.to_string()),
        ("tests/pass.yaml".into(), PASS_YAML.replace("{name}", name)),
        ("tests/fail.yaml".into(), FAIL_YAML.replace("{name}", name)),
        ("policy.toml".into(), MANIFEST.replace("{name}", name).replace("{lang}", lang_name)),
    ];
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), RUST_CARGO.replace("{name}", name)));
            files.push(("src/lib.rs".into(), RUST_LIB.replace("{name}", name)));
            files.push((".gitignore".into(), "/target\n/policy.wasm\n".into()));
        }
        Lang::Python => {
            files.push(("app.py".into(), PYTHON_APP.replace("{name}", name)));
            files.push(("rules.py".into(), PYTHON_RULES.to_string()));
            files.push(("test_rules.py".into(), PYTHON_TEST.to_string()));
            files.push((".gitignore".into(), "/policy.wasm\n__pycache__/\n/wit_world/\n".into()));
        }
        Lang::Js => {
            files.push(("policy.js".into(), JS_POLICY.replace("{name}", name)));
            files.push(("policy.test.mjs".into(), JS_TEST.to_string()));
            files.push((".gitignore".into(), "/policy.wasm\n".into()));
        }
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

const MANIFEST: &str = r#"# paved policy manifest (see plugins/README.md of paved).
name = "{name}"
version = "0.1.0"
description = "Every object carries the label named by the `label` setting."
language = "{lang}"
# Written by `paved policy build`, with the sha256 pin below.
component = "policy.wasm"
sha256 = ""
# enforce | warn | audit
mode = "enforce"
# What a plugin failure (trap, timeout, error) does: fail (deny) | ignore.
failure_policy = "fail"
mutating = false
actions = ["deploy", "rollback"]
# Empty: every environment / every kind.
environments = []
kinds = []
# At `paved admission serve`: the operations checked (add "DELETE" or "CONNECT" to see those).
admission_operations = ["CREATE", "UPDATE"]

[limits]
timeout_ms = 100
memory_mib = 64

[settings]
label = "owner"
"#;

const PASS_YAML: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: labelled
  labels:
    owner: team-a
data: {}
"#;

const FAIL_YAML: &str = r#"# expect: missing-label
apiVersion: v1
kind: ConfigMap
metadata:
  name: unlabelled
data: {}
"#;

const RUST_CARGO: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
serde_json = "1"
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc"] }

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A workspace of its own (paved policy build runs cargo here).
[workspace]
"#;

const RUST_LIB: &str = r#"//! {name}: every object carries the label named by the `label` setting.

use serde_json::Value;

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use exports::paved::policy::policy::Guest;
use paved::policy::types::{Action, Decision, Info, Request, Severity, Violation};

/// The rule, as plain Rust (unit-tested below): the indexes of objects without the label.
pub fn unlabelled(objects: &[Value], label: &str) -> Vec<usize> {
    objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.pointer("/metadata/labels").and_then(|l| l.get(label)).is_none())
        .map(|(i, _)| i)
        .collect()
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Policy;

impl Guest for Policy {
    fn metadata() -> Info {
        Info {
            name: "{name}".into(),
            version: "0.1.0".into(),
            description: "Every object carries the label named by the `label` setting.".into(),
            actions: vec![Action::Deploy, Action::Rollback],
        }
    }

    fn evaluate(request: Request) -> Result<Decision, String> {
        let settings: Value = serde_json::from_str(&request.settings).map_err(|e| e.to_string())?;
        let label = settings.get("label").and_then(Value::as_str).unwrap_or("owner").to_string();
        let objects = request
            .objects
            .iter()
            .map(|o| serde_json::from_str(o).map_err(|e| e.to_string()))
            .collect::<Result<Vec<Value>, String>>()?;
        // At admission (`paved admission serve`) the request says who asks what; at plan time
        // `request.admission` is `None`.
        let context = request
            .admission
            .as_ref()
            .map(|a| format!(" ({:?} by {})", a.operation, a.user_info.username))
            .unwrap_or_default();
        let violations = unlabelled(&objects, &label)
            .into_iter()
            .map(|i| Violation {
                code: "missing-label".into(),
                message: format!("the object has no `{label}` label{context}"),
                hint: Some(format!("add metadata.labels.{label}")),
                object: Some(i as u32),
                path: Some("metadata.labels".into()),
                severity: Severity::Deny,
            })
            .collect();
        Ok(Decision { violations, mutated: None })
    }
}

// The export exists only in the component (a native test build cannot link its names).
#[cfg(target_arch = "wasm32")]
export!(Policy);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unlabelled_objects() {
        let objects = vec![
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "a", "labels": {"owner": "x"}}}),
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "b"}}),
        ];
        assert_eq!(unlabelled(&objects, "owner"), vec![1]);
    }
}
"#;

const PYTHON_APP: &str = r#""""{name}: every object carries the label named by the `label` setting."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Action, Decision, Info, Severity, Violation

from rules import unlabelled


class Policy(exports.Policy):
    def metadata(self) -> Info:
        return Info(
            name="{name}",
            version="0.1.0",
            description="Every object carries the label named by the `label` setting.",
            actions=[Action.DEPLOY, Action.ROLLBACK],
        )

    def evaluate(self, request) -> Decision:
        # An exception other than Err traps (a crash); bad input is the plugin's error instead.
        try:
            settings = json.loads(request.settings or "{}")
            label = settings.get("label", "owner")
            objects = [json.loads(o) for o in request.objects]
        except ValueError as e:
            raise Err(f"bad request: {e}")
        # At admission (`paved admission serve`) the request says who asks what; at plan time
        # `request.admission` is None.
        context = ""
        if request.admission is not None:
            context = f" ({request.admission.operation.name} by {request.admission.user_info.username})"
        violations = [
            Violation(
                code="missing-label",
                message=f"the object has no `{label}` label{context}",
                hint=f"add metadata.labels.{label}",
                object=i,
                path="metadata.labels",
                severity=Severity.DENY,
            )
            for i in unlabelled(objects, label)
        ]
        return Decision(violations=violations, mutated=None)
"#;

const PYTHON_RULES: &str = r#""""The rule, as plain Python: tested by test_rules.py without the component bindings."""


def unlabelled(objects, label):
    """The indexes of objects without the label."""
    return [i for i, o in enumerate(objects) if label not in ((o.get("metadata") or {}).get("labels") or {})]
"#;

const PYTHON_TEST: &str = r#"import unittest

from rules import unlabelled


class RuleTest(unittest.TestCase):
    def test_finds_unlabelled_objects(self):
        objects = [{"metadata": {"labels": {"owner": "x"}}}, {"metadata": {}}]
        self.assertEqual(unlabelled(objects, "owner"), [1])


if __name__ == "__main__":
    unittest.main()
"#;

const JS_POLICY: &str = r#"// {name}: every object carries the label named by the `label` setting.

/** The rule, as plain JavaScript (tested by policy.test.mjs): indexes of objects without the label. */
export function unlabelled(objects, label) {
  return objects.flatMap((o, i) => ((o.metadata ?? {}).labels ?? {})[label] === undefined ? [i] : []);
}

export const policy = {
  metadata() {
    return {
      name: "{name}",
      version: "0.1.0",
      description: "Every object carries the label named by the `label` setting.",
      actions: ["deploy", "rollback"],
    };
  },
  evaluate(request) {
    // A thrown string is the plugin's error; a thrown Error would trap (a crash).
    let settings, objects;
    try {
      settings = JSON.parse(request.settings || "{}");
      objects = request.objects.map((o) => JSON.parse(o));
    } catch (e) {
      throw `bad request: ${e}`;
    }
    const label = settings.label ?? "owner";
    // At admission (`paved admission serve`) the request says who asks what; at plan time
    // `request.admission` is undefined.
    const a = request.admission;
    const context = a === undefined ? "" : ` (${a.operation} by ${a.userInfo.username})`;
    const violations = unlabelled(objects, label).map((i) => ({
      code: "missing-label",
      message: `the object has no \`${label}\` label${context}`,
      hint: `add metadata.labels.${label}`,
      object: i,
      path: "metadata.labels",
      severity: "deny",
    }));
    return { violations, mutated: undefined };
  },
};
"#;

const JS_TEST: &str = r#"import test from "node:test";
import assert from "node:assert/strict";
import { unlabelled } from "./policy.js";

test("finds unlabelled objects", () => {
  const objects = [{ metadata: { labels: { owner: "x" } } }, { metadata: {} }];
  assert.deepEqual(unlabelled(objects, "owner"), [1]);
});
"#;
