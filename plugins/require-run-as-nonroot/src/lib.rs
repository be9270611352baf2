//! `require-run-as-nonroot`: every container runs with `runAsNonRoot: true` — Kyverno's
//! `require-run-as-nonroot` (Pod Security Standards, restricted). Its two patterns are: the pod
//! sets `spec.securityContext.runAsNonRoot: true` and no container sets it to anything else;
//! or every container sets `securityContext.runAsNonRoot: true`. That is, each container's
//! effective value (its own, else the pod's) must be `true`: a container setting `false` fails
//! even when the pod sets `true`, and a pod setting `false` fails unless every container
//! overrides it. Containers, init containers and ephemeral containers are all checked.

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct RequireRunAsNonroot;

impl Policy for RequireRunAsNonroot {
    const NAME: &'static str = "require-run-as-nonroot";
    const DESCRIPTION: &'static str = "Every container runs as non-root: `runAsNonRoot: true` on the pod (not overridden) or on every container, and no `runAsUser: 0`.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                // Pod Security Standards restricted, "Running as Non-root user": runAsUser is
                // never 0, whatever runAsNonRoot says.
                if let Some(e) = pod.effective_security(&c, "runAsUser")
                    && e.value.as_u64() == Some(0)
                {
                    let whose = if e.from_pod { "the pod sets" } else { "it sets" };
                    decision.push(
                        Violation::deny(
                            "run-as-non-root-user",
                            format!("{} runs as root: {whose} runAsUser: 0", c.describe()),
                        )
                        .hint("remove runAsUser: 0, or set a non-zero user ID (e.g. 10001)")
                        .at(pod.object, e.path),
                    );
                }
                let (message, path) = match pod.effective_security(&c, "runAsNonRoot") {
                    Some(e) if e.value == &Value::Bool(true) => continue,
                    None => (
                        format!("{} may run as root: neither it nor the pod sets runAsNonRoot", c.describe()),
                        c.security_field("runAsNonRoot"),
                    ),
                    Some(e) if e.from_pod => {
                        (format!("{} may run as root: the pod sets runAsNonRoot: {}", c.describe(), e.value), e.path)
                    }
                    Some(e) => (format!("{} may run as root: it sets runAsNonRoot: {}", c.describe(), e.value), e.path),
                };
                decision.push(
                    Violation::deny("run-as-non-root", message)
                        .hint(
                            "set spec.securityContext.runAsNonRoot: true on the pod (and no container setting false), \
                             or securityContext.runAsNonRoot: true on every container",
                        )
                        .at(pod.object, path),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequireRunAsNonroot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_as_user_zero_is_denied_even_with_run_as_non_root() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 0},
                     "containers": [{"name": "a", "image": "i"}]}});
        let out = eval(pod);
        assert_eq!(out.codes(), ["run-as-non-root-user"]);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10001},
                     "containers": [{"name": "a", "image": "i"}]}});
        assert!(eval(pod).codes().is_empty());
    }
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    /// (pod runAsNonRoot, container runAsNonRoot, denied container indexes)
    type Case = (Option<bool>, &'static [Option<bool>], &'static [usize]);

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RequireRunAsNonroot>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, non_root: Option<bool>) -> Value {
        match non_root {
            Some(v) => json!({"name": name, "image": "i", "securityContext": {"runAsNonRoot": v}}),
            None => json!({"name": name, "image": "i"}),
        }
    }

    fn spec(pod: Option<bool>, containers: Value) -> Value {
        let mut s = json!({"containers": containers});
        if let Some(v) = pod {
            s["securityContext"] = json!({"runAsNonRoot": v});
        }
        s
    }

    paved_policy_sdk::policy_tests!(RequireRunAsNonroot);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequireRunAsNonroot>(DIR);
    }

    #[test]
    fn kyverno_patterns() {
        const T: Option<bool> = Some(true);
        const F: Option<bool> = Some(false);
        let cases: &[Case] = &[
            (T, &[None, None], &[]),
            (T, &[T, None], &[]),
            (None, &[T, T], &[]),
            (F, &[T, T], &[]),
            (T, &[None, F], &[1]),
            (None, &[T, None], &[1]),
            (F, &[None, T], &[0]),
            (None, &[None], &[0]),
            (F, &[F], &[0]),
        ];
        for (pod, containers, denied) in cases {
            let list: Vec<Value> =
                containers.iter().enumerate().map(|(i, v)| container(&format!("c{i}"), *v)).collect();
            for kind in POD_BEARING_KINDS {
                let out = eval(workload(kind, spec(*pod, json!(list))));
                let names: Vec<String> = denied.iter().map(|i| format!("container c{i} ")).collect();
                assert_eq!(out.denials().len(), denied.len(), "{kind} pod={pod:?} containers={containers:?}");
                for (v, name) in out.denials().iter().zip(&names) {
                    assert_eq!(v.code, "run-as-non-root");
                    assert!(v.message.starts_with(name.as_str()), "{}", v.message);
                }
            }
        }
    }

    #[test]
    fn the_path_is_where_the_value_in_force_is_set() {
        let s = json!({
            "securityContext": {"runAsNonRoot": false},
            "initContainers": [container("init", None)],
            "containers": [container("app", Some(false))],
            "ephemeralContainers": [container("debug", Some(true))],
        });
        for kind in POD_BEARING_KINDS {
            let p = spec_path(kind);
            let out = eval(workload(kind, s.clone()));
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[0].securityContext.runAsNonRoot"),
                    format!("{p}.securityContext.runAsNonRoot")
                ]
            );
        }
        let out = eval(workload("Pod", spec(None, json!([container("app", None)]))));
        assert_eq!(out.paths(), ["spec.containers[0].securityContext.runAsNonRoot"]);
    }

    #[test]
    fn init_and_ephemeral_containers_count() {
        let s = json!({
            "initContainers": [container("init", None)],
            "containers": [container("app", Some(true))],
            "ephemeralContainers": [container("debug", Some(false))],
        });
        let out = eval(workload("Pod", s));
        assert_eq!(
            out.paths(),
            [
                "spec.initContainers[0].securityContext.runAsNonRoot",
                "spec.ephemeralContainers[0].securityContext.runAsNonRoot"
            ]
        );
    }
}
