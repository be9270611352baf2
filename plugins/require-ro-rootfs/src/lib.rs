//! `require-ro-rootfs`: every container, init container and ephemeral container sets
//! `securityContext.readOnlyRootFilesystem: true` — Kyverno's `require-ro-rootfs`
//! (`validate-readOnlyRootFilesystem`). There is no pod-level field for it.

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct RequireRoRootfs;

impl Policy for RequireRoRootfs {
    const NAME: &'static str = "require-ro-rootfs";
    const DESCRIPTION: &'static str =
        "Every container runs with a read-only root filesystem (`readOnlyRootFilesystem: true`).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                let message = match c.security("readOnlyRootFilesystem") {
                    Some(Value::Bool(true)) => continue,
                    None => format!("{} does not set readOnlyRootFilesystem: true", c.describe()),
                    Some(other) => format!("{} sets readOnlyRootFilesystem: {other}", c.describe()),
                };
                decision.push(
                    Violation::deny("validate-readonly-rootfs", message)
                        .hint("set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the app writes (e.g. /tmp)")
                        .at(pod.object, c.security_field("readOnlyRootFilesystem")),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequireRoRootfs);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RequireRoRootfs>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, ro: Value) -> Value {
        json!({"name": name, "image": "i", "securityContext": {"readOnlyRootFilesystem": ro}})
    }

    paved_policy_sdk::policy_tests!(RequireRoRootfs);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequireRoRootfs>(DIR);
    }

    #[test]
    fn every_container_list_in_every_kind_is_checked() {
        let spec = json!({
            "initContainers": [container("init", json!(false))],
            "containers": [container("app", json!(true)), {"name": "sidecar", "image": "s"}],
            "ephemeralContainers": [container("debug", json!(null))],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["validate-readonly-rootfs"; 3], "{kind}");
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[1].securityContext.readOnlyRootFilesystem"),
                    format!("{p}.initContainers[0].securityContext.readOnlyRootFilesystem"),
                    format!("{p}.ephemeralContainers[0].securityContext.readOnlyRootFilesystem"),
                ],
                "{kind}"
            );
        }
    }

    #[test]
    fn false_is_named_in_the_message() {
        let out = eval(workload("Pod", json!({"containers": [container("app", json!(false))]})));
        assert_eq!(out.denials()[0].message, "container app sets readOnlyRootFilesystem: false");
    }

    #[test]
    fn a_pod_level_security_context_does_not_count() {
        let spec =
            json!({"securityContext": {"readOnlyRootFilesystem": true}, "containers": [{"name": "app", "image": "a"}]});
        assert_eq!(eval(workload("Pod", spec)).codes(), ["validate-readonly-rootfs"]);
    }
}
