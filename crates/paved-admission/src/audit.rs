//! `paved admission audit`: the policies over what already runs in a cluster, written as
//! `PolicyReport`s and a `ClusterPolicyReport` (`wgpolicyk8s.io/v1alpha2`, the format Kyverno
//! and Kubewarden write and Policy Reporter shows).

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use paved_core::{Error, PolicyMode, Result};
use paved_policy::Outcome;
use serde::Serialize;
use serde_json::{Value, json};

use crate::server::Policies;

/// A kind the audit lists: (kind, group, version, plural, namespaced).
pub type Kind = (&'static str, &'static str, &'static str, &'static str, bool);

/// The kinds audited when a policy is shown every kind. A policy naming other kinds has those
/// listed too, when they are here.
pub const KINDS: &[Kind] = &[
    ("Namespace", "", "v1", "namespaces", false),
    ("Pod", "", "v1", "pods", true),
    ("Service", "", "v1", "services", true),
    ("ServiceAccount", "", "v1", "serviceaccounts", true),
    ("ConfigMap", "", "v1", "configmaps", true),
    ("Deployment", "apps", "v1", "deployments", true),
    ("StatefulSet", "apps", "v1", "statefulsets", true),
    ("DaemonSet", "apps", "v1", "daemonsets", true),
    ("ReplicaSet", "apps", "v1", "replicasets", true),
    ("ReplicationController", "", "v1", "replicationcontrollers", true),
    ("Job", "batch", "v1", "jobs", true),
    ("CronJob", "batch", "v1", "cronjobs", true),
    ("Ingress", "networking.k8s.io", "v1", "ingresses", true),
    ("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", true),
    ("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", true),
    ("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", true),
];

/// The report's name in each namespace (and the cluster report's).
pub const REPORT_NAME: &str = "paved-audit";
/// The field manager the reports are applied with.
pub const FIELD_MANAGER: &str = "paved-audit";

/// How to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Objects per list request (the API server pages with `limit` and `continue`).
    pub page_size: u32,
    /// Apply the reports to the cluster (otherwise only return them).
    pub write: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { page_size: 500, write: true }
    }
}

/// Counts of results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// The object passed the policy.
    pub pass: usize,
    /// A violation that denies.
    pub fail: usize,
    /// A violation that only warns (warn or audit mode, or a warn severity).
    pub warn: usize,
    /// The plugin failed.
    pub error: usize,
}

/// What an audit found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditSummary {
    /// Objects evaluated.
    pub objects: usize,
    /// List requests made.
    pub pages: usize,
    /// All results.
    pub total: Counts,
    /// Results by policy.
    pub policies: BTreeMap<String, Counts>,
    /// Kinds the policies name that the audit cannot list (not in [`KINDS`], or not served
    /// by the cluster).
    pub unlisted_kinds: Vec<String>,
    /// The reports (applied when [`AuditOptions::write`]).
    pub reports: Vec<Value>,
}

/// Lists the cluster's objects of the kinds the policies check (paginated), evaluates each as
/// admission would (its namespace's environment; excluded namespaces and objects a controller
/// owns are skipped: their owner is checked), and writes one `PolicyReport` per namespace and
/// a `ClusterPolicyReport` for cluster-scoped objects.
pub async fn audit(client: kube::Client, policies: &Policies, options: &AuditOptions) -> Result<AuditSummary> {
    let (kinds, unlisted) = kinds_to_list(policies);
    let mut audited = Audited {
        summary: AuditSummary { unlisted_kinds: unlisted, ..AuditSummary::default() },
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        ..Audited::default()
    };
    for (kind, group, version, plural, _) in kinds {
        let ar = api_resource(kind, group, version, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let mut token: Option<String> = None;
        let mut restarted = false;
        // The objects of this kind already evaluated (a restarted list skips them).
        let mut done = std::collections::HashSet::new();
        loop {
            let mut params = ListParams::default().limit(options.page_size.max(1));
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = match api.list(&params).await {
                Ok(page) => page,
                // A kind this cluster does not serve: nothing of it to audit.
                Err(kube::Error::Api(s)) if s.code == 404 && token.is_none() => {
                    audited.summary.unlisted_kinds.push(kind.to_string());
                    break;
                }
                // The continue token expired (410 Gone, after etcd compaction): the API
                // server's advice is to list again from the start; what was evaluated stays.
                Err(kube::Error::Api(s)) if s.code == 410 && token.is_some() && !restarted => {
                    restarted = true;
                    token = None;
                    continue;
                }
                Err(e) => return Err(kube_error(&format!("list {plural}"), &e)),
            };
            audited.summary.pages += 1;
            token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
            // The page's objects, evaluated together off the executor.
            let mut objects = Vec::new();
            for object in page.items {
                // An object a controller made (a Deployment's ReplicaSets and Pods, a
                // CronJob's Jobs) is checked through that controller, once.
                let controlled = object.metadata.owner_references.iter().flatten().any(|o| o.controller == Some(true));
                let namespace = object.metadata.namespace.clone();
                if object.metadata.uid.as_ref().is_some_and(|uid| !done.insert(uid.clone()))
                    || controlled
                    || namespace.as_deref().is_some_and(|n| policies.settings.excluded(n))
                {
                    continue;
                }
                let mut resource = json!({"apiVersion": ar.api_version, "kind": kind, "name": object.metadata.name});
                if let Some(ns) = &namespace {
                    resource["namespace"] = json!(ns);
                }
                if let Some(uid) = &object.metadata.uid {
                    resource["uid"] = json!(uid);
                }
                let mut value = serde_json::to_value(&object).expect("an object serialises");
                value["apiVersion"] = json!(ar.api_version);
                value["kind"] = json!(kind);
                let environment = policies.settings.environment_of(namespace.as_deref());
                let name = object.metadata.name.unwrap_or_default();
                objects.push((namespace, resource, crate::review::plan_input(value, environment, name)));
            }
            // What is stored, as `/validate` judges it: the validating policies.
            let set = policies.validating.clone();
            let evaluated = tokio::task::spawn_blocking(move || {
                objects
                    .into_iter()
                    .map(|(ns, resource, input)| (ns, resource, set.evaluate(&input)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| Error::backend("admission", format!("the evaluation thread stopped: {e}"), None))?;
            for (namespace, resource, evaluation) in evaluated {
                audited.record(namespace, &resource, &evaluation);
            }
            if token.is_none() {
                break;
            }
        }
    }
    let mut summary = audited.summary;
    for (namespace, results) in audited.results {
        let c = audited.counts.remove(&namespace).unwrap_or_default();
        let mut report = json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": if namespace.is_some() { "PolicyReport" } else { "ClusterPolicyReport" },
            "metadata": {"name": REPORT_NAME, "labels": {"app.kubernetes.io/managed-by": "paved"}},
            "summary": {"pass": c.pass, "fail": c.fail, "warn": c.warn, "error": c.error, "skip": 0},
            "results": results,
        });
        if let Some(ns) = &namespace {
            report["metadata"]["namespace"] = json!(ns);
        }
        summary.reports.push(report);
    }
    if options.write {
        for report in &summary.reports {
            write_report(&client, report).await?;
        }
    }
    Ok(summary)
}

/// What an audit found so far: the summary, and the results and counts by namespace (`None`:
/// cluster-scoped); `now`, the results' timestamp.
#[derive(Default)]
struct Audited {
    summary: AuditSummary,
    results: BTreeMap<Option<String>, Vec<Value>>,
    counts: BTreeMap<Option<String>, Counts>,
    now: i64,
}

impl Audited {
    /// Records the results of one object's evaluation: a pass per policy that allowed it, a
    /// fail or warn per violation, an error per plugin failure.
    fn record(&mut self, namespace: Option<String>, resource: &Value, evaluation: &paved_policy::Evaluation) {
        self.summary.objects += 1;
        for outcome in evaluation.outcomes.iter().filter(|o| o.objects.contains(&0)) {
            let mode = serde_json::to_value(outcome.mode).expect("a mode serialises");
            let results: Vec<(&str, &str, String, Value)> = match &outcome.outcome {
                Outcome::Skipped => Vec::new(),
                Outcome::Failed(f) => {
                    vec![("error", "policy-failure", format!("policy {} {f}", outcome.policy), json!({}))]
                }
                Outcome::Decided(violations) if violations.is_empty() => {
                    vec![("pass", outcome.policy.as_str(), "allowed".into(), json!({}))]
                }
                Outcome::Decided(violations) => violations
                    .iter()
                    .map(|v| {
                        let denies =
                            v.severity == paved_policy::wit::Severity::Deny && outcome.mode == PolicyMode::Enforce;
                        let mut properties = json!({"mode": mode});
                        if let Some(path) = &v.path {
                            properties["path"] = json!(path);
                        }
                        if let Some(hint) = &v.hint {
                            properties["hint"] = json!(hint);
                        }
                        (if denies { "fail" } else { "warn" }, v.code.as_str(), v.message.clone(), properties)
                    })
                    .collect(),
            };
            for (result, rule, message, properties) in results {
                let ns = self.counts.entry(namespace.clone()).or_default();
                let by_policy = self.summary.policies.entry(outcome.policy.clone()).or_default();
                for c in [by_policy, ns, &mut self.summary.total] {
                    match result {
                        "pass" => c.pass += 1,
                        "fail" => c.fail += 1,
                        "warn" => c.warn += 1,
                        _ => c.error += 1,
                    }
                }
                self.results.entry(namespace.clone()).or_default().push(json!({
                    "source": "paved", "policy": outcome.policy, "rule": rule, "result": result,
                    // Only pass and fail count towards a score (the PolicyReport schema).
                    "message": message, "scored": matches!(result, "pass" | "fail"),
                    "timestamp": {"seconds": self.now, "nanos": 0},
                    "resources": [resource], "properties": properties,
                }));
            }
        }
    }
}

/// Applies one report (server-side apply, field manager [`FIELD_MANAGER`]).
async fn write_report(client: &kube::Client, report: &Value) -> Result<()> {
    let cluster = report["kind"] == "ClusterPolicyReport";
    let plural = if cluster { "clusterpolicyreports" } else { "policyreports" };
    let kind = report["kind"].as_str().unwrap_or_default();
    let ar = api_resource(kind, "wgpolicyk8s.io", "v1alpha2", plural);
    let api: Api<DynamicObject> = match report.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(REPORT_NAME, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(report))
        .await
        .map_err(|e| kube_error(&format!("write the {kind}"), &e))?;
    Ok(())
}

fn api_resource(kind: &str, group: &str, version: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn kube_error(what: &str, e: &kube::Error) -> Error {
    let hint = match e {
        kube::Error::Api(s) if s.code == 403 => Some(
            "the audit needs list on the audited kinds and patch on policyreports and clusterpolicyreports \
             (wgpolicyk8s.io)"
                .to_string(),
        ),
        kube::Error::Api(s) if s.code == 404 && what.contains("write") => {
            Some("install the PolicyReport CRDs (wgpolicyk8s.io/v1alpha2, e.g. from Kyverno or Policy Reporter)".into())
        }
        _ => None,
    };
    Error::backend("admission audit", format!("cannot {what}: {e}"), hint)
}

/// The kinds to list, and the kinds the policies name that cannot be.
fn kinds_to_list(policies: &Policies) -> (Vec<Kind>, Vec<String>) {
    let deploying =
        policies.validating.policies().iter().filter(|p| p.manifest().actions.contains(&paved_core::Action::Deploy));
    let mut named: Vec<String> = Vec::new();
    for p in deploying {
        if p.manifest().kinds.is_empty() {
            return (KINDS.to_vec(), Vec::new());
        }
        named.extend(p.manifest().kinds.iter().cloned());
    }
    named.sort();
    named.dedup();
    let listed = KINDS.iter().filter(|k| named.iter().any(|n| n == k.0)).copied().collect();
    let unlisted = named.into_iter().filter(|n| !KINDS.iter().any(|k| k.0 == n)).collect();
    (listed, unlisted)
}
