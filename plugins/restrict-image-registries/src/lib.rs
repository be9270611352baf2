//! `restrict-image-registries`: every image of every container, init container and ephemeral
//! container starts with one of the allowed prefixes of the setting `registries` (default
//! `ghcr.io/company/`) — Kyverno's `restrict-image-registries` (`image: "eu.foo.io/* | bar.io/*"`).

use paved_policy_sdk::{Decision, Input, Policy, Violation, pods};

/// The policy.
pub struct RestrictImageRegistries;

/// The allowed prefixes when the setting `registries` is absent.
pub const DEFAULT_REGISTRIES: &[&str] = &["ghcr.io/company/"];

impl Policy for RestrictImageRegistries {
    const NAME: &'static str = "restrict-image-registries";
    const DESCRIPTION: &'static str = "Every container image comes from an allowed registry (setting `registries`, prefixes such as `ghcr.io/company/`).";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let registries = input.string_list_or("registries", DEFAULT_REGISTRIES)?;
        if registries.is_empty() {
            return Err(
                "setting registries is empty: list at least one allowed prefix, e.g. \"ghcr.io/company/\"".into()
            );
        }
        let allowed = registries.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ");
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for c in pod.containers() {
                let image = c.get("image").and_then(|v| v.as_str()).unwrap_or("");
                if !image.is_empty() && registries.iter().any(|r| image.starts_with(r.as_str())) {
                    continue;
                }
                let message = if image.is_empty() {
                    format!("{} names no image", c.describe())
                } else {
                    format!("{} uses image {image}, which is not from an allowed registry", c.describe())
                };
                decision.push(
                    Violation::deny("validate-registries", message)
                        .hint(format!("use an image from an allowed registry: {allowed} (setting `registries`)"))
                        .at(pod.object, c.field("image")),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RestrictImageRegistries);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, Value, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(req: TestRequest, object: Value) -> testing::Outcome {
        let out = req.object(object).evaluate::<RestrictImageRegistries>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(RestrictImageRegistries);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RestrictImageRegistries>(DIR);
    }

    #[test]
    fn every_container_list_in_every_kind_is_checked() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "docker.io/library/busybox:1.36"}],
            "containers": [{"name": "app", "image": "ghcr.io/company/app:v1"}, {"name": "proxy", "image": "nginx:1.27"}],
            "ephemeralContainers": [{"name": "debug", "image": "ghcr.io/someone-else/debug:v1"}],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(TestRequest::for_plugin(DIR), workload(kind, spec.clone()));
            let p = spec_path(kind);
            assert_eq!(out.codes(), ["validate-registries"; 3], "{kind}");
            assert_eq!(
                out.paths(),
                [
                    format!("{p}.containers[1].image"),
                    format!("{p}.initContainers[0].image"),
                    format!("{p}.ephemeralContainers[0].image")
                ],
                "{kind}"
            );
        }
    }

    #[test]
    fn the_hint_lists_the_allowed_registries() {
        let req =
            TestRequest::for_plugin(DIR).setting("registries", json!(["ghcr.io/company/", "registry.example.com/"]));
        let out = eval(req, workload("Pod", json!({"containers": [{"name": "app", "image": "quay.io/x/app:v1"}]})));
        let hint = out.denials()[0].hint.clone().unwrap();
        assert!(hint.contains("`ghcr.io/company/`, `registry.example.com/`"), "{hint}");
        let req = TestRequest::for_plugin(DIR).setting("registries", json!(["registry.example.com/"]));
        assert!(
            eval(
                req,
                workload("Pod", json!({"containers": [{"name": "app", "image": "registry.example.com/app:v1"}]}))
            )
            .allowed()
        );
    }

    #[test]
    fn a_missing_image_fails() {
        let out = eval(TestRequest::for_plugin(DIR), workload("Pod", json!({"containers": [{"name": "app"}]})));
        assert_eq!(out.paths(), ["spec.containers[0].image"]);
    }

    #[test]
    fn an_empty_registry_list_is_a_plugin_failure() {
        let req = TestRequest::for_plugin(DIR).setting("registries", json!([])).object(workload("Pod", json!({})));
        assert!(req.try_evaluate::<RestrictImageRegistries>().is_err());
    }
}
