//! `disallow-latest-tag`: every container image names a tag, and the tag is not `latest`
//! (Kyverno's policy of the same name). A digest-pinned image (`@sha256:…`) passes.

use paved_policy_sdk::{Decision, Input, Policy, Violation, export_policy, pods};

/// The policy.
pub struct DisallowLatestTag;

/// The tag of an image reference, if it names one (`registry:5000/app` has none).
pub fn tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, tag)| tag)
}

impl Policy for DisallowLatestTag {
    const NAME: &'static str = "disallow-latest-tag";
    const DESCRIPTION: &'static str = "Every container image names a tag (or a digest), and the tag is not `latest`.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        let objects = input.objects()?;
        for pod in pods(&objects) {
            for c in pod.containers() {
                let image = c.get("image").and_then(|v| v.as_str()).unwrap_or("");
                let digest = image.contains('@');
                match tag(image) {
                    None if !digest => decision.push(
                        Violation::deny(
                            "require-image-tag",
                            format!("container {} uses image {image:?} without a tag", c.name()),
                        )
                        .hint("name a version tag, e.g. my-service:v1.2.3, or pin a digest")
                        .at(pod.object, c.field("image")),
                    ),
                    Some("latest") => decision.push(
                        Violation::deny(
                            "validate-image-tag",
                            format!("container {} uses the mutable tag `latest` ({image})", c.name()),
                        )
                        .hint("deploy an immutable version tag, e.g. my-service:v1.2.3")
                        .at(pod.object, c.field("image")),
                    ),
                    _ => {}
                }
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
export_policy!(DisallowLatestTag);
