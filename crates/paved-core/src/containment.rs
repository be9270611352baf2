//! Escape hatches stay inside the app: what extra manifests and overlays may not do.
//!
//! An escape hatch (`extra_manifests`, `custom_manifests`) is how a team adds or changes
//! objects the golden path renders. It must not reach beyond the app:
//!
//! - no object in another namespace (`metadata.namespace` is the app's or absent);
//! - no cluster-scoped object ([`CLUSTER_SCOPED_KINDS`]) and no binding to a privileged
//!   ClusterRole ([`PRIVILEGED_CLUSTER_ROLES`]) unless `[escape_hatches.grants]` grants it to
//!   the team (`platform = ["ClusterRole", "ClusterRoleBinding", "bind:cluster-admin"]`);
//! - no ownership label ([`labels`]) set to another value than paved's, anywhere in a
//!   document (labels, pod template labels, selectors): no app adopts or selects another's
//!   objects;
//! - no `$patch: delete` of a default object that has a recorded way to turn it off;
//! - one object per document (no `List`).
//!
//! Each refusal is an [`Error::Manifest`] naming the file, line, object and field, with the
//! grant that would allow it; each grant used is recorded as an escape hatch (`grant=KIND/NAME`).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::request::{EscapeHatch, ManifestDocument, ManifestFile};
use crate::suggest;

/// The label keys paved owns objects by, and that overlays and extra manifests may not change.
pub mod labels {
    /// The owning team.
    pub const TEAM: &str = "paved.dev/team";
    /// The environment.
    pub const ENVIRONMENT: &str = "paved.dev/environment";
    /// `app.kubernetes.io/name`.
    pub const NAME: &str = "app.kubernetes.io/name";
    /// `app.kubernetes.io/instance`.
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// `app.kubernetes.io/version`.
    pub const VERSION: &str = "app.kubernetes.io/version";
    /// `app.kubernetes.io/component`.
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// `app.kubernetes.io/part-of`.
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// `app.kubernetes.io/managed-by`.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
}

/// The `app.kubernetes.io/managed-by` value (and field manager) of everything paved renders.
pub const MANAGED_BY: &str = "paved";

/// Kinds that are not namespaced: an escape hatch brings one only with a grant.
pub const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ClusterIssuer",
    "APIService",
    "RuntimeClass",
    "CSIDriver",
    "VolumeAttachment",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "Node",
];

/// The built-in ClusterRoles a binding may reference only with a grant (`bind:NAME`).
pub const PRIVILEGED_CLUSTER_ROLES: &[&str] = &["cluster-admin", "admin", "edit"];

/// Every grant `[escape_hatches.grants]` accepts: the cluster-scoped kinds and `bind:ROLE`.
pub fn grant_names() -> Vec<String> {
    CLUSTER_SCOPED_KINDS
        .iter()
        .map(|k| k.to_string())
        .chain(PRIVILEGED_CLUSTER_ROLES.iter().map(|r| format!("bind:{r}")))
        .collect()
}

/// What an escape hatch of one app must stay inside.
#[derive(Debug)]
pub(crate) struct Bounds<'a> {
    pub(crate) namespace: &'a str,
    /// The ownership labels and paved's values for this app.
    pub(crate) labels: [(&'static str, String); 5],
    /// What the team is granted.
    pub(crate) grants: &'a [String],
    /// The team, for hints.
    pub(crate) team: &'a str,
}

impl<'a> Bounds<'a> {
    /// The bounds of app `app` of `team` in environment `env`, namespace `namespace`.
    pub(crate) fn new(app: &str, team: &'a str, env: &str, namespace: &'a str, grants: &'a [String]) -> Self {
        Bounds {
            namespace,
            labels: [
                (labels::NAME, app.to_string()),
                (labels::INSTANCE, format!("{app}-{env}")),
                (labels::PART_OF, app.to_string()),
                (labels::TEAM, team.to_string()),
                (labels::ENVIRONMENT, env.to_string()),
            ],
            grants,
            team,
        }
    }

    /// Checks every document of the extra manifests and overlays; returns the grants used.
    pub(crate) fn check(&self, extra: &[ManifestFile], overlays: &[ManifestFile]) -> Result<Vec<EscapeHatch>> {
        let mut used = Vec::new();
        for (file, overlay) in extra.iter().map(|f| (f, false)).chain(overlays.iter().map(|f| (f, true))) {
            for doc in &file.documents {
                self.check_document(file, doc, overlay, &mut used)?;
            }
        }
        used.sort_by_key(ToString::to_string);
        used.dedup();
        Ok(used)
    }

    fn check_document(
        &self,
        file: &ManifestFile,
        doc: &ManifestDocument,
        overlay: bool,
        used: &mut Vec<EscapeHatch>,
    ) -> Result<()> {
        let v = &doc.value;
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let object = format!("{kind}/{name}");
        let refuse = |field: &str, message: String, hint: String| Error::Manifest {
            path: file.path.clone(),
            line: Some(doc.line),
            message: format!("{object}: {field}: {message}"),
            hint: Some(hint),
        };
        if !overlay && (kind == "List" || kind.ends_with("List")) {
            return Err(refuse(
                "kind",
                format!("a {kind} holds several objects; an extra manifest is one object per document"),
                "write each object as its own YAML document, separated by ---".into(),
            ));
        }
        if let Some(ns) = v.pointer("/metadata/namespace").and_then(Value::as_str)
            && ns != self.namespace
        {
            return Err(refuse(
                "metadata.namespace",
                format!("is {ns:?}, outside the app's namespace {:?}", self.namespace),
                format!("leave metadata.namespace out: escape hatches stay in the app's namespace {}", self.namespace),
            ));
        }
        if CLUSTER_SCOPED_KINDS.contains(&kind) {
            self.grant(kind, &object, used).map_err(|hint| {
                refuse("kind", format!("{kind} is cluster-scoped, outside the app's namespace"), hint)
            })?;
        }
        if !overlay
            && matches!(kind, "RoleBinding" | "ClusterRoleBinding")
            && v.pointer("/roleRef/kind").and_then(Value::as_str) == Some("ClusterRole")
            && let Some(role) = v.pointer("/roleRef/name").and_then(Value::as_str)
            && PRIVILEGED_CLUSTER_ROLES.contains(&role)
        {
            self.grant(&format!("bind:{role}"), &object, used)
                .map_err(|hint| refuse("roleRef.name", format!("binds the built-in ClusterRole {role}"), hint))?;
        }
        if overlay
            && v.get("$patch").and_then(Value::as_str) == Some("delete")
            && let Some(hint) = recorded_way_off(kind)
        {
            return Err(refuse(
                "$patch",
                "an overlay may not delete a default object that has a recorded way to turn it off".into(),
                hint.into(),
            ));
        }
        self.check_labels(v, "", &refuse)
    }

    /// Records a grant, or says how to get it.
    fn grant(&self, grant: &str, object: &str, used: &mut Vec<EscapeHatch>) -> std::result::Result<(), String> {
        if self.grants.iter().any(|g| g == grant) {
            used.push(EscapeHatch { name: "grant".into(), value: Some(format!("{grant}:{object}")) });
            return Ok(());
        }
        Err(format!(
            "the organisation can grant it to team {}: [escape_hatches.grants] {} = [\"{grant}\"] in paved.toml",
            self.team, self.team
        ))
    }

    /// Refuses an ownership label set to another value anywhere in the document.
    fn check_labels(&self, v: &Value, at: &str, refuse: &impl Fn(&str, String, String) -> Error) -> Result<()> {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                    if let Some((_, expected)) = self.labels.iter().find(|(label, _)| label == key)
                        && let Some(value) = value.as_str()
                        && value != expected
                    {
                        return Err(refuse(
                            &path,
                            format!("sets {key} to {value:?}; paved owns objects by it ({expected:?} for this app)"),
                            format!("remove {key}: paved sets it, so no app adopts or selects another app's objects"),
                        ));
                    }
                    if key == labels::MANAGED_BY && value.as_str().is_some_and(|m| m != MANAGED_BY) {
                        return Err(refuse(
                            &path,
                            format!("sets {key} to {:?}; paved manages the objects it applies", value),
                            format!("remove {key}"),
                        ));
                    }
                    self.check_labels(value, &path, refuse)?;
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_labels(item, &format!("{at}[{i}]"), refuse)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// How to turn off a default object the recorded way, for the kinds that have one.
fn recorded_way_off(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "NetworkPolicy" => "turn it off as a recorded escape hatch: `Component::NetworkPolicy` in `disabled`",
        "PodDisruptionBudget" => "turn it off as a recorded escape hatch: `Component::Pdb` in `disabled`",
        "HorizontalPodAutoscaler" => "turn it off as a recorded escape hatch: `Component::Hpa` in `disabled`",
        "Ingress" => "turn it off as a recorded escape hatch: `Component::Ingress` in `disabled`",
        "ServiceMonitor" => "turn it off as a recorded escape hatch: `Component::ServiceMonitor` in `disabled`",
        _ => return None,
    })
}

/// Checks the grants of `[escape_hatches.grants]`: each a cluster-scoped kind or `bind:ROLE`.
pub(crate) fn check_grants(
    grants: &std::collections::BTreeMap<String, Vec<String>>,
) -> std::result::Result<(), (String, String)> {
    let names = grant_names();
    for (team, list) in grants {
        for grant in list {
            if !names.contains(grant) {
                return Err((
                    format!("[escape_hatches.grants] {team}: {grant:?} is not a grant"),
                    format!(
                        "{} (grants are cluster-scoped kinds, or bind:cluster-admin, bind:admin, bind:edit)",
                        suggest::hint_for(grant, names.iter().map(String::as_str))
                    ),
                ));
            }
        }
    }
    Ok(())
}
