//! `disallow-capabilities-strict`: every container, init container and ephemeral container
//! drops `ALL` capabilities and adds back none but `NET_BIND_SERVICE` — Kyverno's
//! `disallow-capabilities-strict` (Pod Security Standards, restricted), with its two rules
//! `require-drop-all` and `adding-capabilities-strict`. As in the Pod Security Standards, `ALL`
//! must be spelt in capitals here (`require-drop-all`, the best-practice policy, accepts any case).

use paved_policy_sdk::{Decision, Input, Policy, Violation, pods};

/// The policy.
pub struct DisallowCapabilitiesStrict;

/// The only capability that may be added.
pub const ALLOWED_ADD: &[&str] = &["NET_BIND_SERVICE"];

impl Policy for DisallowCapabilitiesStrict {
    const NAME: &'static str = "disallow-capabilities-strict";
    const DESCRIPTION: &'static str =
        "Every container drops `ALL` capabilities and adds back none but `NET_BIND_SERVICE`.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                if !c.drops_all_capabilities(false) {
                    decision.push(
                        Violation::deny("require-drop-all", format!("{} does not drop ALL capabilities", c.describe()))
                            .hint("set securityContext.capabilities.drop: [\"ALL\"] (in capitals)")
                            .at(pod.object, c.security_field("capabilities.drop")),
                    );
                }
                for (i, capability) in c.capabilities("add").filter(|(_, cap)| !ALLOWED_ADD.contains(cap)) {
                    decision.push(
                        Violation::deny(
                            "adding-capabilities-strict",
                            format!("{} adds the capability {capability}", c.describe()),
                        )
                        .hint("remove it from securityContext.capabilities.add: only NET_BIND_SERVICE may be added")
                        .at(pod.object, c.security_field(&format!("capabilities.add[{i}]"))),
                    );
                }
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DisallowCapabilitiesStrict);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, Value, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<DisallowCapabilitiesStrict>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, drop: Value, add: Value) -> Value {
        json!({"name": name, "image": "i", "securityContext": {"capabilities": {"drop": drop, "add": add}}})
    }

    paved_policy_sdk::policy_tests!(DisallowCapabilitiesStrict);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<DisallowCapabilitiesStrict>(DIR);
    }

    #[test]
    fn drop_all_and_net_bind_service_pass() {
        let spec = json!({
            "initContainers": [container("init", json!(["ALL"]), json!([]))],
            "containers": [container("app", json!(["ALL"]), json!(["NET_BIND_SERVICE"]))],
            "ephemeralContainers": [container("debug", json!(["ALL"]), json!(null))],
        });
        for kind in POD_BEARING_KINDS {
            assert!(eval(workload(kind, spec.clone())).allowed(), "{kind}");
        }
    }

    #[test]
    fn both_rules_in_every_container_list_and_kind() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [container("app", json!(["ALL"]), json!(["NET_BIND_SERVICE", "NET_ADMIN", "SYS_TIME"]))],
            "ephemeralContainers": [container("debug", json!(["NET_RAW"]), json!(["SYS_PTRACE"]))],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(
                out.codes(),
                [
                    "adding-capabilities-strict",
                    "adding-capabilities-strict",
                    "require-drop-all",
                    "require-drop-all",
                    "adding-capabilities-strict"
                ],
                "{kind}"
            );
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[0].securityContext.capabilities.add[1]"),
                    format!("{p}.containers[0].securityContext.capabilities.add[2]"),
                    format!("{p}.initContainers[0].securityContext.capabilities.drop"),
                    format!("{p}.ephemeralContainers[0].securityContext.capabilities.drop"),
                    format!("{p}.ephemeralContainers[0].securityContext.capabilities.add[0]"),
                ],
                "{kind}"
            );
        }
    }

    #[test]
    fn all_must_be_in_capitals() {
        let out = eval(workload("Pod", json!({"containers": [container("app", json!(["all"]), json!([]))]})));
        assert_eq!(out.codes(), ["require-drop-all"]);
    }
}
