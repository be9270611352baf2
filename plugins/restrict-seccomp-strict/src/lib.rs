//! `restrict-seccomp-strict`: every container runs with a seccomp profile of type
//! `RuntimeDefault` or `Localhost`, set on the pod (`spec.securityContext.seccompProfile.type`)
//! or on the container — Kyverno's `restrict-seccomp-strict` (Pod Security Standards,
//! restricted): unset and `Unconfined` are both denied.
//!
//! A container's own profile overrides the pod's; a container that sets no profile uses the
//! pod's. A pod-level profile of another type (e.g. `Unconfined`) is denied even when every
//! container overrides it, as the Pod Security Standards' restricted check does. Containers,
//! init containers and ephemeral containers are all checked.

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct RestrictSeccompStrict;

/// The allowed profile types.
pub const ALLOWED: &[&str] = &["RuntimeDefault", "Localhost"];

/// The field, under a `securityContext`.
const FIELD: &str = "seccompProfile.type";

const HINT: &str = "set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod \
                    (or Localhost with a localhostProfile), and no Unconfined profile on a container";

fn allowed(value: &Value) -> bool {
    value.as_str().is_some_and(|t| ALLOWED.contains(&t))
}

fn shown(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

impl Policy for RestrictSeccompStrict {
    const NAME: &'static str = "restrict-seccomp-strict";
    const DESCRIPTION: &'static str =
        "Every container runs with a `RuntimeDefault` or `Localhost` seccomp profile, set on the pod or the container.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            let pod_profile = pod.security(FIELD);
            if let Some(profile) = pod_profile.filter(|p| !allowed(p)) {
                decision.push(
                    Violation::deny("check-seccomp-strict", format!("the pod's seccomp profile is {}", shown(profile)))
                        .hint(HINT)
                        .at(pod.object, pod.security_field(FIELD)),
                );
            }
            for c in pod.containers() {
                let message = match pod.effective_security(&c, FIELD) {
                    Some(e) if allowed(e.value) => continue,
                    // The pod's disallowed profile: reported above, once.
                    Some(e) if e.from_pod => continue,
                    Some(e) => format!("{} runs with the seccomp profile {}", c.describe(), shown(e.value)),
                    None => format!("{} has no seccomp profile: neither it nor the pod sets one", c.describe()),
                };
                decision.push(
                    Violation::deny("check-seccomp-strict", message).hint(HINT).at(pod.object, c.security_field(FIELD)),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RestrictSeccompStrict);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    /// (pod profile, container profiles, denied paths relative to the pod spec)
    type Case = (Option<&'static str>, &'static [Option<&'static str>], &'static [&'static str]);

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RestrictSeccompStrict>();
        out.assert_well_formed();
        out
    }

    fn container(name: &str, profile: Option<&str>) -> Value {
        match profile {
            Some(t) => json!({"name": name, "image": "i", "securityContext": {"seccompProfile": {"type": t}}}),
            None => json!({"name": name, "image": "i"}),
        }
    }

    fn spec(pod: Option<&str>, containers: &[Option<&str>]) -> Value {
        let list: Vec<Value> = containers.iter().enumerate().map(|(i, p)| container(&format!("c{i}"), *p)).collect();
        let mut s = json!({"containers": list});
        if let Some(t) = pod {
            s["securityContext"] = json!({"seccompProfile": {"type": t}});
        }
        s
    }

    paved_policy_sdk::policy_tests!(RestrictSeccompStrict);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RestrictSeccompStrict>(DIR);
    }

    #[test]
    fn pod_and_container_combinations() {
        const RD: Option<&str> = Some("RuntimeDefault");
        const LH: Option<&str> = Some("Localhost");
        const UN: Option<&str> = Some("Unconfined");
        let cases: &[Case] = &[
            (RD, &[None, None], &[]),
            (LH, &[RD, None], &[]),
            (None, &[RD, LH], &[]),
            (None, &[RD, None], &["containers[1].securityContext.seccompProfile.type"]),
            (RD, &[None, UN], &["containers[1].securityContext.seccompProfile.type"]),
            (UN, &[RD, RD], &["securityContext.seccompProfile.type"]),
            (UN, &[None, RD], &["securityContext.seccompProfile.type"]),
            (None, &[None], &["containers[0].securityContext.seccompProfile.type"]),
            (None, &[UN], &["containers[0].securityContext.seccompProfile.type"]),
        ];
        for (pod, containers, denied) in cases {
            for kind in POD_BEARING_KINDS {
                let out = eval(workload(kind, spec(*pod, containers)));
                let expected: Vec<String> = denied.iter().map(|d| format!("{}.{d}", spec_path(kind))).collect();
                assert_eq!(out.paths(), expected, "{kind} pod={pod:?} containers={containers:?}");
                assert!(out.codes().iter().all(|c| *c == "check-seccomp-strict"));
            }
        }
    }

    #[test]
    fn init_and_ephemeral_containers_count() {
        let s = json!({
            "initContainers": [container("init", None)],
            "containers": [container("app", Some("RuntimeDefault"))],
            "ephemeralContainers": [container("debug", Some("Unconfined"))],
        });
        let out = eval(workload("Pod", s));
        assert_eq!(
            out.paths(),
            [
                "spec.initContainers[0].securityContext.seccompProfile.type",
                "spec.ephemeralContainers[0].securityContext.seccompProfile.type"
            ]
        );
        assert_eq!(out.denials()[1].message, "ephemeral container debug runs with the seccomp profile Unconfined");
    }
}
