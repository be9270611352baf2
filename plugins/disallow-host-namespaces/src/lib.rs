//! `disallow-host-namespaces`: no pod shares the host's network, PID or IPC namespace
//! (`hostNetwork`, `hostPID` and `hostIPC` are unset or false) — Kyverno's
//! `disallow-host-namespaces` (Pod Security Standards, baseline).

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, lookup, pods};

/// The policy.
pub struct DisallowHostNamespaces;

/// The pod spec fields, and the namespace each shares.
pub const FIELDS: &[(&str, &str)] = &[("hostNetwork", "network"), ("hostPID", "process ID"), ("hostIPC", "IPC")];

impl Policy for DisallowHostNamespaces {
    const NAME: &'static str = "disallow-host-namespaces";
    const DESCRIPTION: &'static str =
        "No pod shares the host's network, PID or IPC namespace (`hostNetwork`, `hostPID`, `hostIPC` unset or false).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for (field, namespace) in FIELDS {
                let value = match lookup(pod.spec, field) {
                    None | Some(Value::Bool(false)) => continue,
                    Some(value) => value,
                };
                decision.push(
                    Violation::deny(
                        "host-namespaces",
                        format!("the pod shares the host's {namespace} namespace ({field}: {value})"),
                    )
                    .hint(format!("remove {field} from the pod spec (or set it to false)"))
                    .at(pod.object, pod.field(field)),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DisallowHostNamespaces);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<DisallowHostNamespaces>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(DisallowHostNamespaces);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<DisallowHostNamespaces>(DIR);
    }

    #[test]
    fn unset_and_false_pass() {
        let spec = json!({"hostNetwork": false, "hostPID": false, "containers": [{"name": "a", "image": "a"}]});
        for kind in POD_BEARING_KINDS {
            assert!(eval(workload(kind, spec.clone())).allowed(), "{kind}");
        }
    }

    #[test]
    fn each_host_namespace_is_denied_in_every_kind() {
        let spec = json!({"hostNetwork": true, "hostPID": true, "hostIPC": true, "containers": []});
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["host-namespaces"; 3], "{kind}");
            assert_eq!(out.paths(), [format!("{p}.hostNetwork"), format!("{p}.hostPID"), format!("{p}.hostIPC")]);
        }
    }

    #[test]
    fn the_message_names_the_namespace() {
        let out = eval(workload("Pod", json!({"hostPID": true})));
        assert_eq!(out.denials()[0].message, "the pod shares the host's process ID namespace (hostPID: true)");
    }
}
