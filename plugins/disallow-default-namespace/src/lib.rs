//! `disallow-default-namespace`: no namespaced object goes into the `default` namespace —
//! Kyverno's `disallow-default-namespace` (`metadata.namespace: "!default"`), which checks Pods
//! and pod controllers; this policy checks every namespaced object.
//!
//! Kyverno sees the resolved namespace at admission. A manifest without `metadata.namespace`
//! lands in the current namespace of whoever applies it, often `default`, so a missing
//! namespace is denied too unless the setting `allow_missing` is true. Cluster-scoped kinds
//! ([`CLUSTER_SCOPED`] and the setting `cluster_scoped_kinds`) have no namespace and are skipped.

use paved_policy_sdk::{Decision, Input, Policy, Violation, kind};

/// The policy.
pub struct DisallowDefaultNamespace;

/// Kubernetes' built-in cluster-scoped kinds (add custom resources with the setting
/// `cluster_scoped_kinds`).
pub const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "IPAddress",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "ServiceCIDR",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

impl Policy for DisallowDefaultNamespace {
    const NAME: &'static str = "disallow-default-namespace";
    const DESCRIPTION: &'static str =
        "Namespaced objects name a namespace (setting `allow_missing`), and not `default`.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let allow_missing: bool = input.setting_or("allow_missing", || false)?;
        let extra = input.string_list("cluster_scoped_kinds")?;
        let mut decision = Decision::allow();
        for (i, object) in input.objects()?.iter().enumerate() {
            let kind = kind(object);
            if kind.is_empty() || CLUSTER_SCOPED.contains(&kind) || extra.iter().any(|k| k == kind) {
                continue;
            }
            let namespace = object.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or("");
            let violation = match namespace {
                "default" => Violation::deny("validate-namespace", format!("{kind} is in the `default` namespace"))
                    .hint("put it in the app's own namespace (paved renders `<app>-<environment>`)"),
                "" if !allow_missing => Violation::deny("require-namespace", format!("{kind} names no namespace"))
                    .hint(
                        "set metadata.namespace: without it the object lands in the applier's current namespace, \
                         often `default` (or set allow_missing = true)",
                    ),
                _ => continue,
            };
            decision.push(violation.at(i as u32, "metadata.namespace"));
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(DisallowDefaultNamespace);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, Value, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(req: TestRequest, objects: Vec<Value>) -> testing::Outcome {
        let out = req.objects(objects).evaluate::<DisallowDefaultNamespace>();
        out.assert_well_formed();
        out
    }

    fn in_namespace(mut object: Value, namespace: Option<&str>) -> Value {
        let meta = object["metadata"].as_object_mut().unwrap();
        match namespace {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        object
    }

    paved_policy_sdk::policy_tests!(DisallowDefaultNamespace);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<DisallowDefaultNamespace>(DIR);
    }

    #[test]
    fn default_is_denied_for_every_pod_bearing_kind_and_other_namespaced_kinds() {
        let mut objects: Vec<Value> =
            POD_BEARING_KINDS.iter().map(|k| in_namespace(workload(k, json!({})), Some("default"))).collect();
        objects
            .push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}));
        let out = eval(TestRequest::for_plugin(DIR), objects.clone());
        assert_eq!(out.codes(), vec!["validate-namespace"; objects.len()]);
        let indexes: Vec<Option<u32>> = out.denials().iter().map(|v| v.object).collect();
        assert_eq!(indexes, (0..objects.len() as u32).map(Some).collect::<Vec<_>>());
        assert!(out.paths().iter().all(|p| *p == "metadata.namespace"));
    }

    #[test]
    fn a_missing_namespace_is_denied_unless_allowed() {
        let objects = vec![in_namespace(workload("Deployment", json!({})), None)];
        assert_eq!(eval(TestRequest::for_plugin(DIR), objects.clone()).codes(), ["require-namespace"]);
        let allowed = TestRequest::for_plugin(DIR).setting("allow_missing", json!(true));
        assert!(eval(allowed.clone(), objects).allowed());
        // `default` stays denied.
        let explicit = vec![in_namespace(workload("Pod", json!({})), Some("default"))];
        assert_eq!(eval(allowed, explicit).codes(), ["validate-namespace"]);
    }

    #[test]
    fn cluster_scoped_kinds_are_skipped() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "letsencrypt"}}),
        ];
        let out = eval(TestRequest::for_plugin(DIR), objects.clone());
        assert_eq!(out.codes(), ["require-namespace"], "ClusterIssuer is a custom resource");
        let req = TestRequest::for_plugin(DIR).setting("cluster_scoped_kinds", json!(["ClusterIssuer"]));
        assert!(eval(req, objects).allowed());
    }

    #[test]
    fn a_bad_setting_is_a_plugin_failure() {
        let req =
            TestRequest::for_plugin(DIR).setting("allow_missing", json!("yes")).object(workload("Pod", json!({})));
        let err = req.try_evaluate::<DisallowDefaultNamespace>().unwrap_err();
        assert!(err.contains("allow_missing"), "{err}");
    }
}
