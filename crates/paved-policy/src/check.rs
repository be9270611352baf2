//! Checking objects against policy plugins named by path, outside any platform: one row per
//! policy and object, as `paved policy check` prints them and the Python bindings return them.

use std::path::PathBuf;
use std::sync::Arc;

use paved_core::{FailurePolicy, PolicyMode, Result};
use serde::Serialize;
use serde_json::Value;

use crate::{ActionInput, ConfiguredPolicy, Evaluation, Outcome, PolicyHost, PolicyManifest, PolicySet, wit};

/// Policy plugins loaded from paths (a plugin directory with its pinned manifest, or a
/// `.wasm` component), each with its settings.
pub struct PolicyCheck {
    set: PolicySet,
}

impl std::fmt::Debug for PolicyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCheck").finish_non_exhaustive()
    }
}

impl PolicyCheck {
    /// Loads the plugins at `paths`. `settings`: an object whose entry named after a policy
    /// is that policy's settings, else the whole object is every policy's settings.
    pub fn load(paths: &[PathBuf], settings: Option<&serde_json::Map<String, Value>>) -> Result<Self> {
        let host = Arc::new(PolicyHost::new(crate::HostOptions::default())?);
        let mut set = PolicySet::new(host.clone());
        for path in paths {
            // Only a `.wasm` file named directly loads without a pin; a plugin directory needs one.
            let manifest = if path.extension().is_some_and(|e| e == "wasm") {
                PolicyManifest::for_component(path)
            } else {
                PolicyManifest::load(path)?
            };
            let mut plugin_config = paved_core::config::PolicyConfig::new(path);
            if let Some(s) = settings {
                plugin_config.settings = settings_for(s, &manifest.name);
            }
            let plugin = host.load(manifest)?;
            set.push(ConfiguredPolicy::with(plugin, &plugin_config));
        }
        Ok(PolicyCheck { set })
    }

    /// Evaluates the policies on `input`. Runs plugins on the calling thread: call it off
    /// any thread that drives an async runtime (a plugin's WASI calls block).
    pub fn check(&self, input: &ActionInput) -> CheckReport {
        CheckReport::of(&self.set.evaluate(input))
    }
}

/// A policy's settings from a settings object: the object under its name when there is one,
/// else the whole object.
pub fn settings_for(settings: &serde_json::Map<String, Value>, policy: &str) -> serde_json::Map<String, Value> {
    match settings.get(policy) {
        Some(Value::Object(own)) => own.clone(),
        _ => settings.clone(),
    }
}

/// What a check found: one row per policy and object, the totals, the mutations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// One row per policy and object, policies in evaluation order.
    pub results: Vec<CheckRow>,
    /// How many rows of each result, objects and policies.
    pub totals: CheckTotals,
    /// The RFC 6902 patch of mutating policies over the list of objects, when any mutated.
    pub patch: Option<Value>,
    /// Whether the platform would refuse the action (a failing row, or a denial not tied to
    /// an object).
    #[serde(skip)]
    pub failed: bool,
}

/// One row of a [`CheckReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckRow {
    /// The policy.
    pub policy: String,
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The object's namespace.
    pub namespace: Option<String>,
    /// `pass`, `fail`, `warn`, `error` (the plugin failed) or `skip` (does not apply).
    pub result: &'static str,
    /// What the policy found.
    pub violations: Vec<CheckViolation>,
}

/// One violation in a [`CheckRow`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckViolation {
    /// The policy's code for it.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Where in the object (a JSON pointer or field path).
    pub path: Option<String>,
    /// `deny` or `warn`, with the policy's mode applied.
    pub severity: &'static str,
}

/// The totals of a [`CheckReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckTotals {
    /// Rows that passed.
    pub pass: usize,
    /// Rows that failed.
    pub fail: usize,
    /// Rows with warnings only.
    pub warn: usize,
    /// Rows whose policy failed to run.
    pub error: usize,
    /// Rows of policies that do not apply to the object.
    pub skip: usize,
    /// Objects checked.
    pub objects: usize,
    /// Policies run.
    pub policies: usize,
}

impl CheckReport {
    /// The rows of an evaluation.
    pub fn of(evaluation: &Evaluation) -> Self {
        let mut results = Vec::new();
        for outcome in &evaluation.outcomes {
            for (i, object) in evaluation.objects.iter().enumerate() {
                let shown = outcome.objects.contains(&i);
                let (result, violations) = match &outcome.outcome {
                    _ if !shown => ("skip", Vec::new()),
                    Outcome::Skipped => ("skip", Vec::new()),
                    // A failure denies only when the policy enforces and fails closed; otherwise
                    // it is reported as the platform would (a warning).
                    Outcome::Failed(f) => (
                        if outcome.failure_policy == FailurePolicy::Fail && outcome.mode == PolicyMode::Enforce {
                            "error"
                        } else {
                            "warn"
                        },
                        vec![CheckViolation {
                            code: "policy-failure".into(),
                            message: format!("policy {} {f}", outcome.policy),
                            hint: None,
                            path: None,
                            severity: match outcome.failure_policy {
                                FailurePolicy::Fail => "deny",
                                FailurePolicy::Ignore => "warn",
                            },
                        }],
                    ),
                    Outcome::Decided(vs) => {
                        let mine: Vec<CheckViolation> = vs
                            .iter()
                            .filter(|v| v.object.is_none_or(|o| o as usize == i))
                            .map(|v| CheckViolation {
                                code: v.code.clone(),
                                message: v.message.clone(),
                                hint: v.hint.clone(),
                                path: v.path.clone(),
                                severity: match (v.severity, outcome.mode) {
                                    (wit::Severity::Deny, PolicyMode::Enforce) => "deny",
                                    _ => "warn",
                                },
                            })
                            .collect();
                        let result = if mine.iter().any(|v| v.severity == "deny") {
                            "fail"
                        } else if mine.is_empty() {
                            "pass"
                        } else {
                            "warn"
                        };
                        (result, mine)
                    }
                };
                results.push(CheckRow {
                    policy: outcome.policy.clone(),
                    kind: object.get("kind").and_then(Value::as_str).unwrap_or("").to_string(),
                    name: object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string(),
                    namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
                    result,
                    violations,
                });
            }
        }
        let count = |what: &str| results.iter().filter(|r| r.result == what).count();
        let totals = CheckTotals {
            pass: count("pass"),
            fail: count("fail"),
            warn: count("warn"),
            error: count("error"),
            skip: count("skip"),
            objects: evaluation.objects.len(),
            policies: evaluation.outcomes.len(),
        };
        // Denials the platform would act on, also those not tied to an object (a request-level
        // rule, a failing plugin on an action without objects).
        let failed = totals.fail > 0 || totals.error > 0 || evaluation.report().denials().next().is_some();
        CheckReport { results, totals, patch: evaluation.patch.clone(), failed }
    }
}
