//! `disallow-privilege-escalation`: every container, init container and ephemeral container
//! sets `securityContext.allowPrivilegeEscalation: false` — Kyverno's
//! `disallow-privilege-escalation` (Pod Security Standards, restricted). Unset is denied too:
//! Kubernetes then allows escalation. There is no pod-level field for it.

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct DisallowPrivilegeEscalation;

impl Policy for DisallowPrivilegeEscalation {
    const NAME: &'static str = "disallow-privilege-escalation";
    const DESCRIPTION: &'static str = "Every container sets `securityContext.allowPrivilegeEscalation: false`.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                let message = match c.security("allowPrivilegeEscalation") {
                    Some(Value::Bool(false)) => continue,
                    None => format!("{} does not set allowPrivilegeEscalation: false", c.describe()),
                    Some(other) => {
                        format!("{} allows privilege escalation (allowPrivilegeEscalation: {other})", c.describe())
                    }
                };
                decision.push(
                    Violation::deny("privilege-escalation", message)
                        .hint("set securityContext.allowPrivilegeEscalation: false on the container")
                        .at(pod.object, c.security_field("allowPrivilegeEscalation")),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DisallowPrivilegeEscalation);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<DisallowPrivilegeEscalation>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, allow: Value) -> Value {
        json!({"name": name, "image": "i", "securityContext": {"allowPrivilegeEscalation": allow}})
    }

    paved_policy_sdk::policy_tests!(DisallowPrivilegeEscalation);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<DisallowPrivilegeEscalation>(DIR);
    }

    #[test]
    fn false_passes_in_every_container_list() {
        let spec = json!({
            "initContainers": [container("init", json!(false))],
            "containers": [container("app", json!(false))],
            "ephemeralContainers": [container("debug", json!(false))],
        });
        for kind in POD_BEARING_KINDS {
            assert!(eval(workload(kind, spec.clone())).allowed(), "{kind}");
        }
    }

    #[test]
    fn unset_and_true_are_denied_in_every_container_list_and_kind() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [container("app", json!(false)), container("sidecar", json!(true))],
            "ephemeralContainers": [container("debug", json!(null))],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["privilege-escalation"; 3], "{kind}");
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[1].securityContext.allowPrivilegeEscalation"),
                    format!("{p}.initContainers[0].securityContext.allowPrivilegeEscalation"),
                    format!("{p}.ephemeralContainers[0].securityContext.allowPrivilegeEscalation"),
                ],
                "{kind}"
            );
        }
    }
}
