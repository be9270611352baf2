//! `disallow-privileged-containers`: no container, init container or ephemeral container sets
//! `securityContext.privileged` to anything but `false` — Kyverno's
//! `disallow-privileged-containers` (Pod Security Standards, baseline:
//! `=(securityContext): =(privileged): "false"`).

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct DisallowPrivilegedContainers;

impl Policy for DisallowPrivilegedContainers {
    const NAME: &'static str = "disallow-privileged-containers";
    const DESCRIPTION: &'static str = "No container runs privileged (`securityContext.privileged` is unset or false).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                let value = match c.security("privileged") {
                    None | Some(Value::Bool(false)) => continue,
                    Some(value) => value,
                };
                decision.push(
                    Violation::deny(
                        "privileged-containers",
                        format!("{} runs privileged (privileged: {value})", c.describe()),
                    )
                    .hint("remove securityContext.privileged (or set it to false); add only the capabilities it needs")
                    .at(pod.object, c.security_field("privileged")),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DisallowPrivilegedContainers);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<DisallowPrivilegedContainers>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, privileged: Value) -> Value {
        json!({"name": name, "image": "i", "securityContext": {"privileged": privileged}})
    }

    paved_policy_sdk::policy_tests!(DisallowPrivilegedContainers);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<DisallowPrivilegedContainers>(DIR);
    }

    #[test]
    fn unset_and_false_pass() {
        let spec = json!({"containers": [{"name": "a", "image": "a"}, container("b", json!(false)), container("c", json!(null))]});
        for kind in POD_BEARING_KINDS {
            assert!(eval(workload(kind, spec.clone())).allowed(), "{kind}");
        }
    }

    #[test]
    fn privileged_is_denied_in_every_container_list_and_kind() {
        let spec = json!({
            "initContainers": [container("init", json!(true))],
            "containers": [container("app", json!(false)), container("sidecar", json!(true))],
            "ephemeralContainers": [container("debug", json!(true))],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["privileged-containers"; 3], "{kind}");
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[1].securityContext.privileged"),
                    format!("{p}.initContainers[0].securityContext.privileged"),
                    format!("{p}.ephemeralContainers[0].securityContext.privileged"),
                ],
                "{kind}"
            );
        }
    }
}
