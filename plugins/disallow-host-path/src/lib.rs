//! `disallow-host-path`: no pod has a `hostPath` volume — Kyverno's `disallow-host-path`
//! (Pod Security Standards, baseline: `=(volumes): - X(hostPath): "null"`).

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct DisallowHostPath;

impl Policy for DisallowHostPath {
    const NAME: &'static str = "disallow-host-path";
    const DESCRIPTION: &'static str = "No pod mounts a directory of the node (`hostPath` volumes).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            let volumes = pod.spec.get("volumes").and_then(Value::as_array).into_iter().flatten();
            for (i, volume) in volumes.enumerate() {
                let Some(host_path) = volume.get("hostPath").filter(|v| !v.is_null()) else { continue };
                let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
                let path = host_path.get("path").and_then(Value::as_str).unwrap_or("?");
                decision.push(
                    Violation::deny(
                        "host-path",
                        format!("volume {name} mounts the node's directory {path} (hostPath)"),
                    )
                    .hint("use an emptyDir, a ConfigMap or Secret, or a PersistentVolumeClaim instead of hostPath")
                    .at(pod.object, pod.field(&format!("volumes[{i}].hostPath"))),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DisallowHostPath);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<DisallowHostPath>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(DisallowHostPath);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<DisallowHostPath>(DIR);
    }

    #[test]
    fn host_path_volumes_are_denied_in_every_kind() {
        let spec = json!({"volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
            {"name": "config", "configMap": {"name": "c"}},
            {"name": "logs", "hostPath": {"path": "/var/log"}},
        ]});
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["host-path"; 2], "{kind}");
            assert_eq!(out.paths(), [format!("{p}.volumes[1].hostPath"), format!("{p}.volumes[3].hostPath")]);
        }
        let out = eval(workload("Pod", spec));
        assert_eq!(
            out.denials()[0].message,
            "volume docker mounts the node's directory /var/run/docker.sock (hostPath)"
        );
    }

    #[test]
    fn other_volumes_pass() {
        let spec =
            json!({"volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, {"name": "x", "hostPath": null}]});
        assert!(eval(workload("Deployment", spec)).allowed());
    }
}
