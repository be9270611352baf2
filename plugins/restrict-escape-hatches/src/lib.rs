//! `restrict-escape-hatches` (paved's own): a release uses only the escape hatches the setting
//! `allowed` permits in its environment. Escape hatches are named as paved records them:
//! `cpu-request`, `cpu-limit`, `memory-request`, `memory-limit`, `custom-manifest`,
//! `extra-manifest` and `no-<component>` (`no-hpa`, `no-pdb`, `no-network-policy`,
//! `no-ingress`, `no-service-monitor`); a recorded value (`cpu-limit=2000m`) is ignored.
//! An allowed list containing `"*"` allows every escape hatch. By default production allows
//! only `cpu-limit` and `memory-limit`, and every other environment (`"*"`) allows all of them.
//! An environment with no entry and no `"*"` entry is not checked.

use std::collections::BTreeMap;

use paved_policy_sdk::{Decision, Input, Policy, Violation, for_environment};

/// The policy.
pub struct RestrictEscapeHatches;

/// The allowed escape hatches when the setting `allowed` is absent.
pub fn default_allowed() -> BTreeMap<String, Vec<String>> {
    let names = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
    BTreeMap::from([
        ("production".to_string(), names(&["cpu-limit", "memory-limit"])),
        ("*".to_string(), names(&["*"])),
    ])
}

/// An escape hatch's name, without a recorded value (`cpu-limit=2000m`) or flag dashes.
pub fn hatch_name(recorded: &str) -> &str {
    let name = recorded.split_once('=').map_or(recorded, |(name, _)| name);
    name.trim().trim_start_matches("--")
}

impl Policy for RestrictEscapeHatches {
    const NAME: &'static str = "restrict-escape-hatches";
    const DESCRIPTION: &'static str = "A release uses only the escape hatches its environment allows (default: production allows cpu-limit and memory-limit).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let allowed: BTreeMap<String, Vec<String>> = input.setting_or("allowed", default_allowed)?;
        let env = input.environment();
        let mut decision = Decision::allow();
        let Some(names) = for_environment(&allowed, env) else { return Ok(decision) };
        if names.iter().any(|n| n == "*") {
            return Ok(decision);
        }
        let allowed_list = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let mut seen = Vec::new();
        for hatch in input.request.escape_hatches.iter().map(|h| hatch_name(h)) {
            if names.iter().any(|n| n == hatch) || seen.contains(&hatch) {
                continue;
            }
            seen.push(hatch);
            decision.push(
                Violation::deny("escape-hatch-not-allowed", format!("the escape hatch {hatch} is not allowed in {env}"))
                    .hint(format!(
                        "deploy without --{hatch}, or make the change in paved.toml for everyone; escape hatches allowed in \
                         {env}: {allowed_list} (setting `allowed`)"
                    )),
            );
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RestrictEscapeHatches);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::json;
    use paved_policy_sdk::testing::{self, TestRequest};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(req: TestRequest) -> testing::Outcome {
        let out = req.evaluate::<RestrictEscapeHatches>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(RestrictEscapeHatches);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RestrictEscapeHatches>(DIR);
    }

    #[test]
    fn names() {
        assert_eq!(hatch_name("cpu-limit=2000m"), "cpu-limit");
        assert_eq!(hatch_name("custom-manifest=tests/fixtures/overlay.yaml"), "custom-manifest");
        assert_eq!(hatch_name("no-hpa"), "no-hpa");
        assert_eq!(hatch_name("--no-ingress"), "no-ingress");
    }

    #[test]
    fn production_allows_only_limits_by_default() {
        let req = TestRequest::for_plugin(DIR);
        assert!(eval(req.clone().escape_hatches(&["cpu-limit", "memory-limit=1Gi"])).allowed());
        let out = eval(req.clone().escape_hatches(&[
            "cpu-limit",
            "custom-manifest",
            "custom-manifest",
            "no-hpa",
            "cpu-request=100m",
        ]));
        assert_eq!(out.codes(), ["escape-hatch-not-allowed"; 3]);
        let messages: Vec<&str> = out.denials().iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the escape hatch custom-manifest is not allowed in production",
                "the escape hatch no-hpa is not allowed in production",
                "the escape hatch cpu-request is not allowed in production",
            ]
        );
        assert!(out.denials()[0].hint.as_deref().unwrap().contains("production: cpu-limit, memory-limit"));
        assert!(out.denials().iter().all(|v| v.object.is_none()));
    }

    #[test]
    fn other_environments_allow_everything_by_default() {
        let all = [
            "cpu-request",
            "cpu-limit",
            "memory-request",
            "memory-limit",
            "custom-manifest",
            "extra-manifest",
            "no-hpa",
        ];
        assert!(eval(TestRequest::for_plugin(DIR).environment("staging").escape_hatches(&all)).allowed());
    }

    #[test]
    fn the_allowed_map() {
        let req = TestRequest::for_plugin(DIR)
            .setting("allowed", json!({"production": [], "staging": ["no-ingress"]}))
            .escape_hatches(&["no-ingress"]);
        let out = eval(req.clone());
        assert!(out.denials()[0].hint.as_deref().unwrap().contains("production: none"));
        assert!(eval(req.clone().environment("staging")).allowed());
        assert!(eval(req.environment("dev")).allowed(), "no entry and no *: not checked");
    }
}
