//! `admission.k8s.io/v1` `AdmissionReview`: the request as the API server sends it, what the
//! policies are shown, and the answer.

use base64::Engine as _;
use paved_core::{Action, PolicyReport, Severity};
use paved_policy::ActionInput;
use paved_policy::wit::{Admission, Operation, UserInfo};
use serde::Deserialize;
use serde_json::{Value, json};

/// Why a body is not an `AdmissionReview` the webhook can answer (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an admission review: {0}")]
pub struct Malformed(pub String);

/// One admission request, parsed.
#[derive(Debug, Clone)]
pub struct Review {
    /// The `apiVersion` of the review (echoed): `admission.k8s.io/v1` (or `v1beta1`).
    pub api_version: String,
    /// The request's UID (echoed).
    pub uid: String,
    /// The operation.
    pub operation: Operation,
    /// `group/version/Kind` (`v1/Pod` for the core group).
    pub kind: String,
    /// The object's kind alone, e.g. `Deployment`.
    pub kind_name: String,
    /// The subresource, e.g. `status`.
    pub sub_resource: Option<String>,
    /// The namespace (`None`: cluster-scoped).
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// Who asked.
    pub user_info: UserInfo,
    /// The object (none for DELETE).
    pub object: Option<Value>,
    /// The object before an UPDATE or DELETE.
    pub old_object: Option<Value>,
    /// A dry run.
    pub dry_run: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    api_version: String,
    kind: String,
    request: Option<RequestDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestDoc {
    uid: String,
    kind: Gvk,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    user_info: UserInfoDoc,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    version: String,
    kind: String,
}

#[derive(Deserialize, Default)]
struct UserInfoDoc {
    #[serde(default)]
    username: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    groups: Vec<String>,
}

impl Review {
    /// Parses a request body. Everything the API server always sends must be there: the
    /// review's kind and version, a request with a UID, kind and operation, the object for
    /// CREATE and UPDATE, the old object for UPDATE and DELETE.
    pub fn parse(body: &[u8]) -> Result<Review, Malformed> {
        let doc: Doc = serde_json::from_slice(body).map_err(|e| Malformed(e.to_string()))?;
        if doc.kind != "AdmissionReview" {
            return Err(Malformed(format!("kind is {:?}, expected \"AdmissionReview\"", doc.kind)));
        }
        if !matches!(doc.api_version.as_str(), "admission.k8s.io/v1" | "admission.k8s.io/v1beta1") {
            return Err(Malformed(format!("apiVersion {:?} is not admission.k8s.io/v1", doc.api_version)));
        }
        let r = doc.request.ok_or_else(|| Malformed("it has no request".into()))?;
        if r.uid.is_empty() {
            return Err(Malformed("request.uid is empty".into()));
        }
        let operation = match r.operation.as_str() {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            other => {
                return Err(Malformed(format!("request.operation {other:?} is not CREATE, UPDATE, DELETE or CONNECT")));
            }
        };
        let secret = r.kind.group.is_empty() && r.kind.kind == "Secret";
        let object = r.object.filter(|o| !o.is_null()).map(|o| if secret { redact(o) } else { o });
        let old_object = r.old_object.filter(|o| !o.is_null()).map(|o| if secret { redact(o) } else { o });
        for (what, value) in [("object", &object), ("oldObject", &old_object)] {
            if value.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(Malformed(format!("request.{what} is not a JSON object")));
            }
        }
        let needs = match operation {
            Operation::Create => (true, false),
            Operation::Update => (true, true),
            Operation::Delete => (false, true),
            Operation::Connect => (false, false),
        };
        if needs.0 && object.is_none() {
            return Err(Malformed(format!("request.object is missing for {}", r.operation)));
        }
        if needs.1 && old_object.is_none() {
            return Err(Malformed(format!("request.oldObject is missing for {}", r.operation)));
        }
        let kind = if r.kind.group.is_empty() {
            format!("{}/{}", r.kind.version, r.kind.kind)
        } else {
            format!("{}/{}/{}", r.kind.group, r.kind.version, r.kind.kind)
        };
        Ok(Review {
            api_version: doc.api_version,
            uid: r.uid,
            operation,
            kind,
            kind_name: r.kind.kind,
            sub_resource: r.sub_resource.filter(|s| !s.is_empty()),
            namespace: r.namespace.filter(|n| !n.is_empty()),
            name: r.name.unwrap_or_default(),
            user_info: UserInfo { username: r.user_info.username, uid: r.user_info.uid, groups: r.user_info.groups },
            object,
            old_object,
            dry_run: r.dry_run.unwrap_or(false),
        })
    }

    /// An UPDATE of an object being deleted (`metadata.deletionTimestamp` set): a controller
    /// removing its finalizer. It is let through like the DELETE it finishes, so that an object
    /// that breaks a rule can always be deleted.
    pub fn is_finishing_deletion(&self) -> bool {
        self.operation == Operation::Update
            && self.object.as_ref().and_then(|o| o.pointer("/metadata/deletionTimestamp")).is_some_and(|t| !t.is_null())
    }

    /// The operation as the API server names it.
    pub fn operation_name(&self) -> &'static str {
        operation_name(self.operation)
    }

    /// The object the policies check: the new object, or for DELETE the one being deleted.
    pub fn subject(&self) -> Option<&Value> {
        self.object.as_ref().or(self.old_object.as_ref())
    }

    /// What the policies are shown: a `deploy` of the object (so the policies of plan time
    /// apply as written) in `environment`, with the app and team from the object's labels, and
    /// the admission context.
    pub fn action_input(&self, environment: String) -> ActionInput {
        self.input_of(self.subject().cloned(), environment)
    }

    /// [`action_input`](Self::action_input), moving the objects out of the review instead of
    /// copying them (`object` and `old_object` are `None` afterwards).
    pub fn take_action_input(&mut self, environment: String) -> ActionInput {
        let subject = self.object.take().or_else(|| self.old_object.clone());
        let input = self.input_of(subject, environment);
        self.old_object = None;
        input
    }

    fn input_of(&self, subject: Option<Value>, environment: String) -> ActionInput {
        let mut input = match subject {
            Some(subject) => plan_input(subject, environment, self.name.clone()),
            None => ActionInput::objects(&environment, Vec::new()),
        };
        input.admission = Some(self.admission(self.old_object.as_ref().map(Value::to_string)));
        input
    }

    fn admission(&self, old_object: Option<String>) -> Admission {
        Admission {
            uid: self.uid.clone(),
            operation: self.operation,
            kind: self.kind.clone(),
            sub_resource: self.sub_resource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            user_info: self.user_info.clone(),
            old_object,
            dry_run: self.dry_run,
        }
    }
}

/// What plan time would show the policies for `object` in `environment`: a `deploy` of it, as
/// `paved policy check` shows a rendered object, with the app (`app.kubernetes.io/name`, else
/// `name`) and team (`paved.dev/team`) read from its labels. The replicas stay with the object
/// (`spec.replicas`), as for `paved policy check`: a policy checks them there, once.
pub fn plan_input(object: Value, environment: String, name: String) -> ActionInput {
    let label = |key: &str| {
        object.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str).map(str::to_string)
    };
    let app = label(paved_core::containment::labels::NAME).unwrap_or(name);
    let team = label(paved_core::containment::labels::TEAM).unwrap_or_default();
    let mut input = ActionInput::objects(&environment, vec![object]);
    input.action = Action::Deploy;
    input.app = app;
    input.team = team;
    input
}

/// A Secret as the policies see it: its keys, never its values (`data` and `stringData` values
/// replaced), so no plugin can log or return them.
fn redact(mut secret: Value) -> Value {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = secret.get_mut(field) {
            for value in map.values_mut() {
                *value = Value::String("(redacted)".into());
            }
        }
    }
    secret
}

/// An operation's name as the API server spells it.
pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// The answer to one review.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Why not (the violations, one per line), when denied.
    pub message: Option<String>,
    /// Warnings for the client (`kubectl` prints them).
    pub warnings: Vec<String>,
    /// The RFC 6902 patch of the object, from `/mutate`.
    pub patch: Option<Value>,
}

impl Verdict {
    /// The verdict of a policy report: denied when a violation denies; each violation on a
    /// line of its own (`policy: message (at field; hint)`); warnings for the warn ones.
    pub fn of_report(report: &PolicyReport) -> Verdict {
        let line = |v: &paved_core::Violation| {
            let mut text = format!("{}: {}", v.policy, v.message);
            let mut extra = Vec::new();
            if let Some(path) = &v.path {
                extra.push(format!("at {path}"));
            }
            if let Some(hint) = &v.hint {
                extra.push(format!("hint: {hint}"));
            }
            if !extra.is_empty() {
                text.push_str(&format!(" ({})", extra.join("; ")));
            }
            text
        };
        let denials: Vec<String> =
            report.violations.iter().filter(|v| v.severity == Severity::Deny).map(line).collect();
        let warnings = report.violations.iter().filter(|v| v.severity == Severity::Warn).map(line).collect();
        Verdict {
            allowed: denials.is_empty(),
            message: (!denials.is_empty()).then(|| {
                format!(
                    "denied by the organisation's policies ({} violation{}):\n{}",
                    denials.len(),
                    plural(denials.len()),
                    denials.join("\n")
                )
            }),
            warnings,
            patch: None,
        }
    }

    /// Allowed, with nothing to say.
    pub fn allow() -> Verdict {
        Verdict { allowed: true, ..Verdict::default() }
    }

    /// The answer when the webhook could not decide (`why`), by the failure policy: denied
    /// (fail closed) or allowed with a warning.
    pub fn undecided(failure_policy: paved_core::FailurePolicy, why: &str) -> Verdict {
        match failure_policy {
            paved_core::FailurePolicy::Fail => Verdict {
                allowed: false,
                message: Some(format!("paved admission could not decide: {why} (failure_policy \"fail\")")),
                ..Verdict::default()
            },
            paved_core::FailurePolicy::Ignore => Verdict {
                allowed: true,
                warnings: vec![format!("paved admission could not decide: {why}; allowed (failure_policy \"ignore\")")],
                ..Verdict::default()
            },
        }
    }

    /// The `AdmissionReview` answering `review`.
    pub fn to_review(&self, review: &Review) -> Value {
        let mut response = json!({"uid": review.uid, "allowed": self.allowed});
        if let Some(message) = &self.message {
            response["status"] = json!({"code": 403, "reason": "Forbidden", "message": message});
        }
        if !self.warnings.is_empty() {
            response["warnings"] = json!(self.warnings);
        }
        if let Some(patch) = &self.patch {
            let bytes = serde_json::to_vec(patch).expect("a patch serialises");
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        json!({"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response})
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}))
            .unwrap()
    }

    #[test]
    fn malformed_reviews_are_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{".to_vec(), "EOF"),
            (b"[]".to_vec(), "expected struct"),
            (br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(), "kind is \"Pod\""),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "no request"),
            (
                review(
                    json!({"uid": "", "kind": {"version": "v1", "kind": "Pod"}, "operation": "CREATE", "object": {}}),
                ),
                "uid",
            ),
            (
                review(
                    json!({"uid": "u", "kind": {"version": "v1", "kind": "Pod"}, "operation": "PATCH", "object": {}}),
                ),
                "PATCH",
            ),
            (
                review(json!({"uid": "u", "kind": {"version": "v1", "kind": "Pod"}, "operation": "CREATE"})),
                "object is missing",
            ),
            (
                review(
                    json!({"uid": "u", "kind": {"version": "v1", "kind": "Pod"}, "operation": "UPDATE", "object": {}}),
                ),
                "oldObject",
            ),
            (
                review(
                    json!({"uid": "u", "kind": {"version": "v1", "kind": "Pod"}, "operation": "CREATE", "object": 7}),
                ),
                "not a JSON object",
            ),
        ];
        for (body, expect) in cases {
            let e = Review::parse(&body).unwrap_err();
            assert!(e.0.contains(expect), "{}: {e}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn a_denial_lists_each_violation_and_the_patch_is_base64() {
        let report = PolicyReport {
            violations: vec![
                paved_core::Violation {
                    policy: "disallow-latest-tag".into(),
                    code: "latest-tag".into(),
                    message: "image uses latest".into(),
                    hint: Some("pin a version".into()),
                    object: Some("Deployment/web".into()),
                    path: Some("spec.template.spec.containers[0].image".into()),
                    severity: Severity::Deny,
                },
                paved_core::Violation {
                    policy: "require-probes".into(),
                    code: "probes".into(),
                    message: "no readiness probe".into(),
                    hint: None,
                    object: None,
                    path: None,
                    severity: Severity::Warn,
                },
            ],
            ..PolicyReport::default()
        };
        let mut verdict = Verdict::of_report(&report);
        assert!(!verdict.allowed);
        assert_eq!(
            verdict.message.as_deref(),
            Some(
                "denied by the organisation's policies (1 violation):\ndisallow-latest-tag: image uses latest \
                 (at spec.template.spec.containers[0].image; hint: pin a version)"
            )
        );
        assert_eq!(verdict.warnings, ["require-probes: no readiness probe"]);
        verdict.patch = Some(json!([{"op": "add", "path": "/metadata/labels/a", "value": "b"}]));
        let body = review(
            json!({"uid": "abc", "kind": {"version": "v1", "kind": "Pod"}, "operation": "CREATE", "object": {}}),
        );
        let out = verdict.to_review(&Review::parse(&body).unwrap());
        assert_eq!(out["response"]["uid"], "abc");
        assert_eq!(out["response"]["status"]["code"], 403);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        let patch =
            base64::engine::general_purpose::STANDARD.decode(out["response"]["patch"].as_str().unwrap()).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&patch).unwrap(), verdict.patch.unwrap());
    }
}
