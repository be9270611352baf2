//! `require-pod-requests-limits`: every container and init container requests CPU and memory
//! and limits memory — Kyverno's `require-requests-limits` (`resources.requests.cpu`,
//! `resources.requests.memory` and `resources.limits.memory` are `"?*"`). Ephemeral containers
//! are exempt, as in Kyverno: Kubernetes does not allow them resources.

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct RequirePodRequestsLimits;

/// The required fields: path under the container, what it is, an example value.
pub const REQUIRED: &[(&str, &str, &str)] = &[
    ("resources.requests.cpu", "CPU request", "100m"),
    ("resources.requests.memory", "memory request", "128Mi"),
    ("resources.limits.memory", "memory limit", "256Mi"),
];

/// Whether a quantity is given: a non-empty string or a number (Kyverno's `"?*"`).
fn is_set(value: Option<&Value>) -> bool {
    match value {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    }
}

impl Policy for RequirePodRequestsLimits {
    const NAME: &'static str = "require-pod-requests-limits";
    const DESCRIPTION: &'static str =
        "Every container and init container requests CPU and memory and has a memory limit.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers().filter(|c| c.list != "ephemeralContainers") {
                for (field, what, example) in REQUIRED {
                    if is_set(c.lookup(field)) {
                        continue;
                    }
                    decision.push(
                        Violation::deny("validate-resources", format!("{} has no {what} ({field})", c.describe()))
                            .hint(format!("set {field} on the container, e.g. {example}"))
                            .at(pod.object, c.field(field)),
                    );
                }
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequirePodRequestsLimits);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn resources() -> Value {
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    }

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RequirePodRequestsLimits>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(RequirePodRequestsLimits);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequirePodRequestsLimits>(DIR);
    }

    #[test]
    fn complete_resources_pass_in_every_kind() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "i", "resources": resources()}],
            "containers": [{"name": "app", "image": "a", "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"memory": "1Gi", "cpu": "2"}}}],
            "ephemeralContainers": [{"name": "debug", "image": "d"}],
        });
        for kind in POD_BEARING_KINDS {
            assert!(eval(workload(kind, spec.clone())).allowed(), "{kind}");
        }
    }

    #[test]
    fn each_missing_field_is_reported_with_its_path() {
        for kind in POD_BEARING_KINDS {
            let spec = json!({"containers": [{"name": "app", "image": "a"}]});
            let out = eval(workload(kind, spec));
            assert_eq!(out.codes(), ["validate-resources"; 3], "{kind}");
            let base = format!("{}.containers[0]", spec_path(kind));
            let expected: Vec<String> = REQUIRED.iter().map(|(f, _, _)| format!("{base}.{f}")).collect();
            assert_eq!(out.paths(), expected, "{kind}");
        }
    }

    #[test]
    fn init_containers_count_but_ephemeral_containers_do_not() {
        let spec = json!({
            "containers": [{"name": "app", "image": "a", "resources": resources()}],
            "initContainers": [{"name": "init", "image": "i", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
            "ephemeralContainers": [{"name": "debug", "image": "d"}],
        });
        let out = eval(workload("Deployment", spec));
        assert_eq!(out.paths(), ["spec.template.spec.initContainers[0].resources.limits.memory"]);
        assert!(out.denials()[0].message.starts_with("init container init"));
    }

    #[test]
    fn empty_values_do_not_count_but_a_cpu_limit_is_optional() {
        let spec = json!({"containers": [{"name": "app", "image": "a",
            "resources": {"requests": {"cpu": "", "memory": "128Mi"}, "limits": {"memory": null}}}]});
        let out = eval(workload("Pod", spec));
        assert_eq!(
            out.paths(),
            ["spec.containers[0].resources.requests.cpu", "spec.containers[0].resources.limits.memory"]
        );
    }
}
