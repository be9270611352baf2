//! `require-probes`: every container of a long-running pod has at least one of
//! `livenessProbe`, `readinessProbe` and `startupProbe` — Kyverno's `require-pod-probes`.
//!
//! As in Kyverno, only `spec.containers` is checked: init containers run to completion and
//! Kubernetes does not allow probes on them (except restartable sidecars) nor on ephemeral
//! containers. Jobs and CronJobs are not checked either: Kyverno generates the rule for
//! DaemonSets, Deployments and StatefulSets only (`autogen-controllers`), as probes are of no use
//! to pods that run to completion; ReplicaSets, long-running like Deployments, are checked.

use paved_policy_sdk::{Decision, Input, Policy, Violation, pods};

/// The policy.
pub struct RequireProbes;

/// The probes, any one of which satisfies the rule.
pub const PROBES: &[&str] = &["livenessProbe", "readinessProbe", "startupProbe"];

/// The pod-bearing kinds whose pods run to completion, and are not checked.
pub const RUN_TO_COMPLETION: &[&str] = &["Job", "CronJob"];

impl Policy for RequireProbes {
    const NAME: &'static str = "require-probes";
    const DESCRIPTION: &'static str = "Every container of a long-running pod has a liveness, readiness or startup probe (Jobs and CronJobs are exempt).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?).filter(|p| !RUN_TO_COMPLETION.contains(&p.kind)) {
            // Only `containers`: init and ephemeral containers cannot have probes.
            for c in pod.containers().filter(|c| c.list == "containers") {
                if PROBES.iter().any(|p| c.lookup(p).is_some()) {
                    continue;
                }
                decision.push(
                    Violation::deny(
                        "validate-probes",
                        format!("{} has no liveness, readiness or startup probe", c.describe()),
                    )
                    .hint("add a readinessProbe (and a livenessProbe), e.g. httpGet on the app's health endpoint")
                    .at(pod.object, c.path.clone()),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequireProbes);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, Value, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RequireProbes>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(RequireProbes);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequireProbes>(DIR);
    }

    #[test]
    fn any_one_probe_is_enough() {
        for probe in PROBES {
            let spec = json!({"containers": [{"name": "app", "image": "a", *probe: {"tcpSocket": {"port": 8080}}}]});
            assert!(eval(workload("Deployment", spec)).allowed(), "{probe}");
        }
    }

    #[test]
    fn long_running_kinds_need_a_probe_on_every_container() {
        let spec = json!({"containers": [
            {"name": "app", "image": "a", "readinessProbe": {"httpGet": {"path": "/", "port": 80}}},
            {"name": "sidecar", "image": "s"},
        ]});
        for kind in POD_BEARING_KINDS.iter().filter(|k| !RUN_TO_COMPLETION.contains(k)) {
            let out = eval(workload(kind, spec.clone()));
            assert_eq!(out.codes(), ["validate-probes"], "{kind}");
            assert_eq!(out.paths(), [format!("{}.containers[1]", spec_path(kind))], "{kind}");
        }
    }

    #[test]
    fn jobs_and_cronjobs_are_exempt() {
        let spec = json!({"containers": [{"name": "task", "image": "t"}]});
        for kind in RUN_TO_COMPLETION {
            assert!(eval(workload(kind, spec.clone())).allowed(), "{kind}");
        }
    }

    #[test]
    fn init_and_ephemeral_containers_are_not_checked() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [{"name": "app", "image": "a", "livenessProbe": {"exec": {"command": ["true"]}}}],
            "ephemeralContainers": [{"name": "debug", "image": "d"}],
        });
        assert!(eval(workload("Pod", spec)).allowed());
    }
}
