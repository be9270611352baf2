//! `production-min-replicas` (paved's own): in the environments of the setting `minimum`
//! (default `production`: 2), a release runs at least that many replicas. Checked are the
//! request's replica count, the `spec.replicas` of every Deployment and StatefulSet, and the
//! `spec.minReplicas` of every HorizontalPodAutoscaler (Kubernetes' default 1 when unset).
//! A Deployment or StatefulSet without `spec.replicas` is scaled by the HPA that targets it
//! when there is one among the objects, and otherwise runs Kubernetes' default of 1 replica.
//! An environment not in the map (and no `"*"` entry) is not checked.

use std::collections::BTreeMap;

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, for_environment, kind, object_name};

/// The policy.
pub struct ProductionMinReplicas;

/// The minimums when the setting `minimum` is absent.
pub fn default_minimum() -> BTreeMap<String, u32> {
    BTreeMap::from([("production".to_string(), 2)])
}

/// The kinds whose `spec.replicas` is checked.
pub const SCALED_KINDS: &[&str] = &["Deployment", "StatefulSet"];

/// Kubernetes' default for `spec.replicas` and for an HPA's `spec.minReplicas`.
const KUBERNETES_DEFAULT: u64 = 1;

fn count(value: Option<&Value>) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("replica count {v} is not a number")),
    }
}

impl Policy for ProductionMinReplicas {
    const NAME: &'static str = "production-min-replicas";
    const DESCRIPTION: &'static str = "In the environments of the setting `minimum` (default production: 2), workloads run at least that many replicas.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let minimum: BTreeMap<String, u32> = input.setting_or("minimum", default_minimum)?;
        let env = input.environment();
        let mut decision = Decision::allow();
        let Some(&min) = for_environment(&minimum, env) else { return Ok(decision) };
        let hint = format!("{env} requires at least {min} replicas (setting `minimum`)");

        if let Some(replicas) = input.request.replicas.filter(|r| *r < min) {
            decision.push(
                Violation::deny("min-replicas", format!("the release asks for {replicas} replicas in {env}"))
                    .hint(format!("deploy with --replicas {min} or more: {hint}")),
            );
        }

        let objects = input.objects()?;
        // The workloads an HPA among the objects scales: (kind, name).
        let mut scaled = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            if kind(object) != "HorizontalPodAutoscaler" {
                continue;
            }
            let target = object.pointer("/spec/scaleTargetRef");
            let field = |f: &str| target.and_then(|t| t.get(f)).and_then(Value::as_str).unwrap_or("");
            scaled.push((field("kind").to_string(), field("name").to_string()));
            let min_replicas = count(object.pointer("/spec/minReplicas"))?;
            let effective = min_replicas.unwrap_or(KUBERNETES_DEFAULT);
            if effective < u64::from(min) {
                let what = match min_replicas {
                    Some(n) => format!("scales {} down to {n} replica(s)", field("name")),
                    None => format!("has no minReplicas: it scales {} down to 1 replica", field("name")),
                };
                decision.push(
                    Violation::deny("min-replicas", format!("HorizontalPodAutoscaler {what}"))
                        .hint(format!("set spec.minReplicas to {min} or more: {hint}"))
                        .at(i as u32, "spec.minReplicas"),
                );
            }
        }

        for (i, object) in objects.iter().enumerate() {
            let kind = kind(object);
            if !SCALED_KINDS.contains(&kind) {
                continue;
            }
            let message = match count(object.pointer("/spec/replicas"))? {
                Some(n) if n >= u64::from(min) => continue,
                Some(n) => format!("{kind} runs {n} replica(s)"),
                None if scaled.iter().any(|(k, n)| k == kind && n == object_name(object)) => continue,
                None if KUBERNETES_DEFAULT >= u64::from(min) => continue,
                None => {
                    format!("{kind} sets no spec.replicas and no HorizontalPodAutoscaler scales it: it runs 1 replica")
                }
            };
            decision.push(
                Violation::deny("min-replicas", message)
                    .hint(format!("set spec.replicas to {min} or more (or scale it with an HPA): {hint}"))
                    .at(i as u32, "spec.replicas"),
            );
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(ProductionMinReplicas);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::json;
    use paved_policy_sdk::testing::{self, TestRequest, workload};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(req: TestRequest) -> testing::Outcome {
        let out = req.evaluate::<ProductionMinReplicas>();
        out.assert_well_formed();
        out
    }

    fn scaled(kind: &str, replicas: Option<u64>) -> Value {
        let mut o = workload(kind, json!({"containers": [{"name": "app", "image": "a"}]}));
        if let Some(n) = replicas {
            o["spec"]["replicas"] = json!(n);
        }
        o
    }

    fn hpa(target: &str, min: Option<u64>) -> Value {
        let mut o = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": target, "namespace": "team-a"},
            "spec": {"maxReplicas": 10, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}}});
        if let Some(n) = min {
            o["spec"]["minReplicas"] = json!(n);
        }
        o
    }

    paved_policy_sdk::policy_tests!(ProductionMinReplicas);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<ProductionMinReplicas>(DIR);
    }

    #[test]
    fn the_request_replica_count() {
        let req = TestRequest::for_plugin(DIR).replicas(Some(1));
        let out = eval(req.clone());
        assert_eq!(out.codes(), ["min-replicas"]);
        assert_eq!(out.denials()[0].object, None);
        assert!(eval(req.clone().replicas(Some(2))).allowed());
        assert!(eval(req.environment("staging")).allowed(), "staging is not in the map");
    }

    #[test]
    fn deployments_and_statefulsets() {
        for kind in SCALED_KINDS {
            let out = eval(TestRequest::for_plugin(DIR).object(scaled(kind, Some(1))));
            assert_eq!(out.paths(), ["spec.replicas"], "{kind}");
            assert!(eval(TestRequest::for_plugin(DIR).object(scaled(kind, Some(2)))).allowed(), "{kind}");
            let out = eval(TestRequest::for_plugin(DIR).object(scaled(kind, None)));
            assert_eq!(out.paths(), ["spec.replicas"], "{kind}: no replicas, no HPA");
        }
        // Other pod-bearing kinds are not scaled by replicas.
        assert!(eval(TestRequest::for_plugin(DIR).object(scaled("DaemonSet", None))).allowed());
    }

    #[test]
    fn an_hpa_scales_a_deployment_without_replicas() {
        let req = TestRequest::for_plugin(DIR).object(scaled("Deployment", None));
        assert!(eval(req.clone().object(hpa("app", Some(3)))).allowed());
        let out = eval(req.clone().object(hpa("app", Some(1))));
        assert_eq!(out.paths(), ["spec.minReplicas"]);
        assert_eq!(out.denials()[0].object, Some(1));
        let out = eval(req.clone().object(hpa("app", None)));
        assert_eq!(out.paths(), ["spec.minReplicas"], "minReplicas defaults to 1");
        // An HPA of another Deployment does not count.
        let out = eval(req.object(hpa("other", Some(3))));
        assert_eq!(out.paths(), ["spec.replicas"]);
    }

    #[test]
    fn the_minimum_map() {
        let req = TestRequest::for_plugin(DIR)
            .setting("minimum", json!({"production": 3, "*": 1}))
            .object(scaled("Deployment", Some(2)));
        assert_eq!(eval(req.clone()).codes(), ["min-replicas"]);
        assert!(eval(req.clone().environment("dev")).allowed());
        let zero = req.environment("dev").object(scaled("StatefulSet", None));
        assert!(eval(zero).allowed(), "1 replica is enough for *");
        let bad = TestRequest::for_plugin(DIR).setting("minimum", json!({"production": "two"}));
        assert!(bad.try_evaluate::<ProductionMinReplicas>().unwrap_err().contains("minimum"));
    }
}
