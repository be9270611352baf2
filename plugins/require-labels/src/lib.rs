//! `require-labels`: every pod carries the labels of the setting `labels` (default
//! `app.kubernetes.io/name`), each with a non-empty value — Kyverno's `require-labels`
//! (`metadata.labels."app.kubernetes.io/name": "?*"` on Pods). For a workload the labels are
//! those of its pod template, as Kyverno's auto-generated rules for pod controllers check.

use paved_policy_sdk::{Decision, Input, Policy, Violation, pods};

/// The policy.
pub struct RequireLabels;

/// The labels required when the setting `labels` is absent.
pub const DEFAULT_LABELS: &[&str] = &["app.kubernetes.io/name"];

impl Policy for RequireLabels {
    const NAME: &'static str = "require-labels";
    const DESCRIPTION: &'static str =
        "Every pod (and every workload's pod template) has the required labels, by default `app.kubernetes.io/name`.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let labels = input.string_list_or("labels", DEFAULT_LABELS)?;
        let mut decision = Decision::allow();
        for pod in pods(&input.objects()?) {
            for key in &labels {
                let problem = match pod.label(key) {
                    Some(value) if !value.is_empty() => continue,
                    Some(_) => "an empty",
                    None => "no",
                };
                decision.push(
                    Violation::deny("check-for-labels", format!("the pod has {problem} label `{key}`"))
                        .hint(format!("set the label `{key}` (e.g. to the app's name) in {}.labels", pod.metadata_path))
                        .at(pod.object, pod.label_path(key)),
                );
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequireLabels);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json, pod_of};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn pod_spec() -> paved_policy_sdk::Value {
        json!({"containers": [{"name": "app", "image": "ghcr.io/company/app:v1"}]})
    }

    paved_policy_sdk::policy_tests!(RequireLabels);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequireLabels>(DIR);
    }

    #[test]
    fn every_pod_bearing_kind_needs_the_label_on_its_pod() {
        for kind in POD_BEARING_KINDS {
            let mut object = workload(kind, pod_spec());
            let meta = pod_of(0, &object).unwrap().metadata_path.replace('.', "/");
            object.pointer_mut(&format!("/{meta}/labels")).unwrap().as_object_mut().unwrap().clear();
            let out = TestRequest::for_plugin(DIR).object(object).evaluate::<RequireLabels>();
            out.assert_well_formed();
            assert_eq!(out.codes(), ["check-for-labels"], "{kind}");
            let expected = format!(
                "{}.labels[\"app.kubernetes.io/name\"]",
                pod_of(0, &workload(kind, pod_spec())).unwrap().metadata_path
            );
            assert_eq!(out.paths(), [expected.as_str()], "{kind}");
        }
    }

    #[test]
    fn the_owner_label_alone_is_not_enough_for_a_workload() {
        let mut d = workload("Deployment", pod_spec());
        d["spec"]["template"]["metadata"] = json!({});
        let out = TestRequest::for_plugin(DIR).object(d).evaluate::<RequireLabels>();
        assert_eq!(out.paths(), ["spec.template.metadata.labels[\"app.kubernetes.io/name\"]"]);
    }

    #[test]
    fn an_empty_value_fails() {
        let mut pod = workload("Pod", pod_spec());
        pod["metadata"]["labels"]["app.kubernetes.io/name"] = json!("");
        let out = TestRequest::for_plugin(DIR).object(pod).evaluate::<RequireLabels>();
        assert_eq!(out.codes(), ["check-for-labels"]);
        assert!(out.denials()[0].message.contains("empty"));
    }

    #[test]
    fn the_setting_lists_the_labels() {
        let labels = json!(["app.kubernetes.io/name", "app.kubernetes.io/version"]);
        let out = TestRequest::for_plugin(DIR)
            .setting("labels", labels)
            .object(workload("Deployment", pod_spec()))
            .evaluate::<RequireLabels>();
        assert_eq!(out.paths(), ["spec.template.metadata.labels[\"app.kubernetes.io/version\"]"]);
        let out = TestRequest::for_plugin(DIR)
            .setting("labels", json!([]))
            .object(workload("Pod", json!({})))
            .evaluate::<RequireLabels>();
        assert!(out.allowed());
    }

    #[test]
    fn other_kinds_are_ignored() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}});
        assert!(TestRequest::new().object(svc).evaluate::<RequireLabels>().allowed());
    }
}
