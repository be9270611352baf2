//! `require-drop-all`: every container, init container and ephemeral container drops all Linux
//! capabilities (`securityContext.capabilities.drop` lists `ALL`) — Kyverno's
//! `drop-all-capabilities` (`require-drop-all`), which, like this policy, accepts `ALL` in any
//! case. Capabilities it needs can be added back (`disallow-capabilities-strict` restricts that).

use paved_policy_sdk::{Decision, Input, Policy, Violation, pods};

/// The policy.
pub struct RequireDropAll;

impl Policy for RequireDropAll {
    const NAME: &'static str = "require-drop-all";
    const DESCRIPTION: &'static str = "Every container drops all Linux capabilities (`capabilities.drop: [ALL]`).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                if c.drops_all_capabilities(true) {
                    continue;
                }
                let dropped: Vec<&str> = c.capabilities("drop").map(|(_, name)| name).collect();
                let message = if dropped.is_empty() {
                    format!("{} does not drop ALL capabilities", c.describe())
                } else {
                    format!("{} drops {} but not ALL capabilities", c.describe(), dropped.join(", "))
                };
                decision.push(
                    Violation::deny("require-drop-all", message)
                        .hint("set securityContext.capabilities.drop: [\"ALL\"] and add back only what it needs")
                        .at(pod.object, c.security_field("capabilities.drop")),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequireDropAll);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, Value, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RequireDropAll>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, drop: Value) -> Value {
        json!({"name": name, "image": "i", "securityContext": {"capabilities": {"drop": drop}}})
    }

    paved_policy_sdk::policy_tests!(RequireDropAll);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequireDropAll>(DIR);
    }

    #[test]
    fn every_container_list_in_every_kind_must_drop_all() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [container("app", json!(["ALL"])), container("sidecar", json!(["NET_RAW"]))],
            "ephemeralContainers": [{"name": "debug", "image": "d", "securityContext": {}}],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["require-drop-all"; 3], "{kind}");
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[1].securityContext.capabilities.drop"),
                    format!("{p}.initContainers[0].securityContext.capabilities.drop"),
                    format!("{p}.ephemeralContainers[0].securityContext.capabilities.drop"),
                ],
                "{kind}"
            );
        }
    }

    #[test]
    fn all_is_matched_in_any_case_and_with_other_entries() {
        let spec = json!({"containers": [container("a", json!(["all"])), container("b", json!(["NET_RAW", "ALL"]))]});
        assert!(eval(workload("Pod", spec)).allowed());
    }

    #[test]
    fn the_message_names_what_is_dropped() {
        let out = eval(workload("Pod", json!({"containers": [container("app", json!(["NET_RAW", "SYS_ADMIN"]))]})));
        assert_eq!(out.denials()[0].message, "container app drops NET_RAW, SYS_ADMIN but not ALL capabilities");
    }
}
