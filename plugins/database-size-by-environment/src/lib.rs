//! `database-size-by-environment` (paved's own): a database is provisioned only in a size the
//! setting `allowed` permits in its environment — by default any size (`small`, `medium`,
//! `large`: paved's `DbSize`) in `production` and `small` or `medium` anywhere else (`"*"`).
//! An environment with no entry and no `"*"` entry is not checked.

use std::collections::BTreeMap;

use paved_policy_sdk::{Action, Decision, Input, Policy, Violation, for_environment};

/// The policy.
pub struct DatabaseSizeByEnvironment;

/// The allowed sizes when the setting `allowed` is absent.
pub fn default_allowed() -> BTreeMap<String, Vec<String>> {
    let sizes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
    BTreeMap::from([
        ("production".to_string(), sizes(&["small", "medium", "large"])),
        ("*".to_string(), sizes(&["small", "medium"])),
    ])
}

impl Policy for DatabaseSizeByEnvironment {
    const NAME: &'static str = "database-size-by-environment";
    const DESCRIPTION: &'static str =
        "A database is provisioned only in a size its environment allows (default: large only in production).";
    const ACTIONS: &'static [Action] = &[Action::ProvisionDatabase];

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let allowed: BTreeMap<String, Vec<String>> = input.setting_or("allowed", default_allowed)?;
        let database = input.request.database.as_ref().ok_or("a provision-database request without a database")?;
        let env = input.environment();
        let mut decision = Decision::allow();
        let Some(sizes) = for_environment(&allowed, env) else { return Ok(decision) };
        if sizes.contains(&database.size) {
            return Ok(decision);
        }
        let hint = if sizes.is_empty() {
            format!("no database size is allowed in {env} (setting `allowed`)")
        } else {
            format!("choose a size allowed in {env}: {} (setting `allowed`)", sizes.join(", "))
        };
        decision.push(
            Violation::deny(
                "database-size",
                format!("a {} {} database is not allowed in {env}", database.size, database.engine),
            )
            .hint(hint),
        );
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DatabaseSizeByEnvironment);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::json;
    use paved_policy_sdk::testing::{self, TestRequest};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(req: TestRequest) -> testing::Outcome {
        let out = req.action(Action::ProvisionDatabase).evaluate::<DatabaseSizeByEnvironment>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(DatabaseSizeByEnvironment);

    #[test]
    fn golden_path_passes() {
        // Deploys only: the policy is never called for them.
        testing::check_golden_path::<DatabaseSizeByEnvironment>(DIR);
    }

    #[test]
    fn defaults() {
        let req = TestRequest::for_plugin(DIR);
        for size in ["small", "medium", "large"] {
            assert!(eval(req.clone().database("postgres", size)).allowed(), "production {size}");
        }
        for env in ["dev", "staging", "qa"] {
            assert!(eval(req.clone().environment(env).database("mysql", "medium")).allowed(), "{env}");
            let out = eval(req.clone().environment(env).database("mysql", "large"));
            assert_eq!(out.codes(), ["database-size"], "{env}");
            assert_eq!(out.denials()[0].message, format!("a large mysql database is not allowed in {env}"));
            assert_eq!(
                out.denials()[0].hint.as_deref(),
                Some(format!("choose a size allowed in {env}: small, medium (setting `allowed`)").as_str())
            );
        }
        assert_eq!(eval(req.database("postgres", "xlarge")).codes(), ["database-size"]);
    }

    #[test]
    fn the_allowed_map() {
        let req = TestRequest::for_plugin(DIR).settings(json!({"allowed": {"production": ["large"], "dev": []}}));
        assert_eq!(eval(req.clone().database("postgres", "small")).codes(), ["database-size"]);
        let out = eval(req.clone().environment("dev").database("postgres", "small"));
        assert!(out.denials()[0].hint.as_deref().unwrap().starts_with("no database size is allowed in dev"));
        assert!(eval(req.environment("staging").database("postgres", "large")).allowed(), "no entry, no *");
    }

    #[test]
    fn only_provision_database() {
        let req = TestRequest::for_plugin(DIR).environment("dev").database("postgres", "large");
        assert!(req.evaluate::<DatabaseSizeByEnvironment>().skipped);
        let missing = TestRequest::for_plugin(DIR).action(Action::ProvisionDatabase);
        assert!(missing.try_evaluate::<DatabaseSizeByEnvironment>().is_err());
    }
}
