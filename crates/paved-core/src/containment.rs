//! Escape hatches stay inside the app: what extra manifests and overlays may not do.
//!
//! An escape hatch (`extra_manifests`, `custom_manifests`) is how a team adds or changes
//! objects the golden path renders. It must not reach beyond the app:
//!
//! - no object in another namespace (`metadata.namespace` is the app's or absent);
//! - no cluster-scoped object ([`is_cluster_scoped`]), no binding to a privileged ClusterRole
//!   ([`PRIVILEGED_CLUSTER_ROLES`], `system:…`) and no Role that can raise its holder's
//!   permissions (wildcards, `escalate`, `bind`, `impersonate`, `serviceaccounts/token`)
//!   unless `[escape_hatches.grants]` grants it to the app's team, and only to an app bound to
//!   that team (`[apps.NAME] team`): `platform = ["ClusterRole", "bind:cluster-admin"]`;
//! - no ownership label ([`labels`]) set to another value or removed, anywhere in a document
//!   (labels, pod template labels, selectors, selector expressions), and no selector removed:
//!   no app adopts or selects another's objects;
//! - no other ServiceAccount (`serviceAccountName`, token Secrets), no Vault Agent annotations
//!   (secrets come only through checked references), no rewritten escape-hatch record;
//! - no `$patch: delete` of a default object that has a recorded way to turn it off;
//! - one object per document (no `List`).
//!
//! Each refusal is an [`Error::Manifest`] naming the file, line, object and field, with the
//! grant that would allow it; each grant used is recorded as an escape hatch
//! (`grant=GRANT:KIND/NAME`).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::manifest::Manifests;
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
    /// The labels an object is owned by: no escape hatch may change or drop them.
    pub const OWNERSHIP: [&str; 6] = [NAME, INSTANCE, PART_OF, TEAM, ENVIRONMENT, MANAGED_BY];
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
    "CSINode",
    "VolumeAttributesClass",
    "DeviceClass",
    "ResourceSlice",
    "IPAddress",
    "ServiceCIDR",
    "StorageVersionMigration",
    "TokenReview",
    "SubjectAccessReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "GatewayClass",
    "ConstraintTemplate",
];

/// The grant for a Service with `externalIPs`, which takes over traffic to those addresses
/// for the whole cluster (CVE-2020-8554).
pub const EXTERNAL_IPS_GRANT: &str = "service:externalIPs";

/// The built-in ClusterRoles a binding may reference only with a grant (`bind:NAME`).
pub const PRIVILEGED_CLUSTER_ROLES: &[&str] = &["cluster-admin", "admin", "edit"];

/// The grants `[escape_hatches.grants]` names: the cluster-scoped kinds, `bind:ROLE` for the
/// privileged ClusterRoles, and `rbac:escalate` for Roles that can raise their holder's
/// permissions. (`bind:system:NAME` and other `Cluster…` kinds are accepted too.)
pub fn grant_names() -> Vec<String> {
    CLUSTER_SCOPED_KINDS
        .iter()
        .map(|k| k.to_string())
        .chain(PRIVILEGED_CLUSTER_ROLES.iter().map(|r| format!("bind:{r}")))
        .chain(["rbac:escalate".to_string(), EXTERNAL_IPS_GRANT.to_string()])
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
    /// The app's ServiceAccount (named after the app).
    pub(crate) service_account: String,
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
            service_account: app.to_string(),
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
        if let Some(ns) = v.pointer("/metadata/namespace")
            && ns.as_str() != Some(self.namespace)
        {
            return Err(refuse(
                "metadata.namespace",
                format!("is {ns}, outside the app's namespace {:?}", self.namespace),
                format!("leave metadata.namespace out: escape hatches stay in the app's namespace {}", self.namespace),
            ));
        }
        if is_cluster_scoped(kind) {
            self.grant(kind, &object, used).map_err(|hint| {
                refuse("kind", format!("{kind} is cluster-scoped, outside the app's namespace"), hint)
            })?;
        }
        // A binding's role, also when an overlay sets it (an overlay on an extra binding
        // could otherwise point it at cluster-admin): a role name that is privileged needs
        // its grant, whatever roleRef.kind says.
        if let Some(need) = rbac_grant(kind, v) {
            self.grant(&need.grant, &object, used).map_err(|hint| refuse(need.field, need.reason, hint))?;
        }
        if kind == "Service"
            && v.pointer("/spec/externalIPs").and_then(Value::as_array).is_some_and(|ips| !ips.is_empty())
        {
            self.grant(EXTERNAL_IPS_GRANT, &object, used).map_err(|hint| {
                refuse(
                    "spec.externalIPs",
                    "takes over traffic to those addresses across the cluster (CVE-2020-8554)".into(),
                    hint,
                )
            })?;
        }
        // A token Secret, or any Secret naming a ServiceAccount (an overlay may change the
        // name alone on a token Secret of an extra manifest), names only the app's own.
        let token_for = v.pointer("/metadata/annotations/kubernetes.io~1service-account.name");
        if kind == "Secret"
            && (v.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token")
                || token_for.is_some())
            && token_for.and_then(Value::as_str) != Some(self.service_account.as_str())
        {
            return Err(refuse(
                "metadata.annotations.kubernetes.io/service-account.name",
                "asks for the token of another ServiceAccount".into(),
                format!("a token Secret may name only the app's own ServiceAccount, {}", self.service_account),
            ));
        }
        if overlay
            && v.get("$patch").and_then(Value::as_str) == Some("delete")
            && let Some(hint) = recorded_way_off(kind, name, &self.service_account)
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
            "the organisation can grant it to the app's team in paved.toml: [apps.{app}] team = \"{team}\" \
             (grants apply only to apps bound to a team) and [escape_hatches.grants] {team} = [\"{grant}\"]",
            app = self.service_account,
            team = self.team
        ))
    }

    /// Refuses, anywhere in the document: an ownership label set to another value or removed
    /// (`null`); a label selector expression on one; a selector removed; another
    /// ServiceAccount; Vault Agent annotations (secrets reach an app only through its
    /// checked references); the escape-hatch record.
    fn check_labels(&self, v: &Value, at: &str, refuse: &impl Fn(&str, String, String) -> Error) -> Result<()> {
        match v {
            Value::Object(map) => {
                if let Some(key) = map.get("key").and_then(Value::as_str)
                    && let Some((_, expected)) = self.labels.iter().find(|(label, _)| *label == key)
                {
                    let values = map.get("values").and_then(Value::as_array);
                    let same = map.get("operator").and_then(Value::as_str) == Some("In")
                        && values.is_some_and(|vs| !vs.is_empty() && vs.iter().all(|x| x.as_str() == Some(expected)));
                    if !same {
                        return Err(refuse(
                            &format!("{at}.key"),
                            format!("a selector expression on {key}, which paved owns objects by"),
                            format!("select with matchLabels {key}: {expected}, or leave it to paved"),
                        ));
                    }
                }
                for (key, value) in map {
                    let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                    if let Some((_, expected)) = self.labels.iter().find(|(label, _)| label == key)
                        && value.as_str() != Some(expected)
                    {
                        let what =
                            if value.is_null() { "removes".to_string() } else { format!("sets {key} to {value};") };
                        return Err(refuse(
                            &path,
                            format!("{what} {key}: paved owns objects by it ({expected:?} for this app)"),
                            format!("remove {key}: paved sets it, so no app adopts or selects another app's objects"),
                        ));
                    }
                    if key == labels::MANAGED_BY && value.as_str() != Some(MANAGED_BY) {
                        return Err(refuse(
                            &path,
                            format!("sets {key} to {value}; paved manages the objects it applies"),
                            format!("remove {key}"),
                        ));
                    }
                    if matches!(key.as_str(), "selector" | "podSelector" | "matchLabels" | "labelSelector")
                        && value.is_null()
                    {
                        return Err(refuse(
                            &path,
                            "removes a selector, which would then match every pod of the namespace".into(),
                            "change the selector's labels instead of removing it".into(),
                        ));
                    }
                    // `serviceAccount` is the deprecated alias the API server uses when
                    // `serviceAccountName` is empty.
                    if matches!(key.as_str(), "serviceAccountName" | "serviceAccount")
                        && value.as_str() != Some(self.service_account.as_str())
                    {
                        return Err(refuse(
                            &path,
                            format!("runs the pods as ServiceAccount {value}, not the app's"),
                            format!("leave {key} to paved ({})", self.service_account),
                        ));
                    }
                    if key.starts_with("vault.hashicorp.com/") || key == ESCAPE_HATCHES_ANNOTATION {
                        return Err(refuse(
                            &path,
                            format!("sets {key}, which paved writes itself"),
                            "secrets reach the app through its checked references (`secrets`); paved records escape hatches"
                                .into(),
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

/// The annotation that lists the escape hatches a release used.
pub const ESCAPE_HATCHES_ANNOTATION: &str = "paved.dev/escape-hatches";

/// An RBAC object that needs a grant: which, the field that asks for it, and why.
struct RbacGrant {
    grant: String,
    field: &'static str,
    reason: String,
}

/// The grant an RBAC object needs, if any: a binding to a privileged role (`bind:ROLE`), a
/// Role that can raise its holder's permissions (`rbac:escalate`). One rule for the escape
/// hatches' documents and the release's final objects.
fn rbac_grant(kind: &str, v: &Value) -> Option<RbacGrant> {
    match kind {
        "RoleBinding" | "ClusterRoleBinding" => {
            let role = v.pointer("/roleRef/name").and_then(Value::as_str).filter(|r| is_privileged_role(r))?;
            Some(RbacGrant {
                grant: format!("bind:{role}"),
                field: "roleRef.name",
                reason: format!("binds the built-in ClusterRole {role}"),
            })
        }
        "Role" | "ClusterRole" => escalating_rule(v).map(|rule| RbacGrant {
            grant: "rbac:escalate".into(),
            field: "rules",
            reason: format!("grants {rule}, which lets the app raise its own permissions"),
        }),
        _ => None,
    }
}

/// Whether a kind is cluster-scoped: one of [`CLUSTER_SCOPED_KINDS`], or a kind named
/// `Cluster…` (ClusterPolicy, ClusterSecretStore, ClusterIssuer…), whose convention it is.
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind) || kind.starts_with("Cluster")
}

/// A role whose binding needs a grant: the built-in `cluster-admin`, `admin` and `edit`
/// ([`PRIVILEGED_CLUSTER_ROLES`]) and the system roles (`system:…`).
fn is_privileged_role(role: &str) -> bool {
    PRIVILEGED_CLUSTER_ROLES.contains(&role) || role.starts_with("system:")
}

/// The first rule of a Role that lets its holder raise its own permissions: any verb or
/// resource wildcard, `escalate`, `bind` or `impersonate`, or minting ServiceAccount tokens.
fn escalating_rule(role: &Value) -> Option<String> {
    let rules = role.get("rules")?.as_array()?;
    let strings = |rule: &Value, field: &str| -> Vec<String> {
        rule.get(field)
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    rules.iter().find_map(|rule| {
        let (verbs, resources) = (strings(rule, "verbs"), strings(rule, "resources"));
        let verb = verbs.iter().find(|v| matches!(v.as_str(), "*" | "escalate" | "bind" | "impersonate"));
        if let Some(verb) = verb {
            return Some(format!("the verb {verb:?}"));
        }
        if resources.iter().any(|r| r == "*") {
            return Some("every resource (\"*\")".to_string());
        }
        resources.iter().any(|r| r == "serviceaccounts/token").then(|| "serviceaccounts/token".to_string())
    })
}

/// How to turn off a default object of app `app` the recorded way, for the objects that have one.
fn recorded_way_off(kind: &str, name: &str, app: &str) -> Option<&'static str> {
    Some(match kind {
        "ConfigMap" if name == crate::observability::dashboard_name(app) => {
            "turn it off as a recorded escape hatch: `Component::Dashboard` in `disabled`"
        }
        "PrometheusRule" => "turn it off as a recorded escape hatch: `Component::Alerts` in `disabled`",
        "PeerAuthentication" => "turn it off as a recorded escape hatch: `Component::Mesh` in `disabled`",
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
            let known = names.contains(grant) || grant.starts_with("bind:system:") || is_cluster_scoped(grant);
            if !known {
                return Err((
                    format!("[escape_hatches.grants] {team}: {grant:?} is not a grant"),
                    format!(
                        "{} (grants are cluster-scoped kinds, bind:cluster-admin, bind:admin, bind:edit, rbac:escalate or service:externalIPs)",
                        suggest::hint_for(grant, names.iter().map(String::as_str))
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks a release's final objects (rendered, escape hatches applied), whatever produced
/// them: every namespaced object is in `namespace`; a cluster-scoped object (other than the
/// app's own Namespace), a binding to a privileged role or a Role that can raise its holder's
/// permissions needs its grant. [`crate::Platform::render`] runs it on every render (an overlay
/// on an extra binding is caught here), and a rollback on the stored objects it restores.
pub fn check_release(objects: &Manifests, namespace: &str, grants: &[String]) -> Result<()> {
    let granted = |grant: &str| grants.iter().any(|g| g == grant);
    for o in objects.iter() {
        let (kind, name) = (o.kind(), o.name());
        let refuse = |reason: String, grant: Option<&str>| {
            let hint = match grant {
                Some(g) => {
                    format!("it needs the grant {g:?} for the app's team ([escape_hatches.grants] in paved.toml)")
                }
                None => format!("keep escape hatches in the app's namespace {namespace}"),
            };
            Error::invalid("objects", format!("{kind}/{name}"), reason, Some(hint))
        };
        if is_cluster_scoped(kind) {
            let own_namespace = kind == "Namespace" && name == namespace;
            if !(own_namespace || granted(kind)) {
                return Err(refuse(format!("{kind} is cluster-scoped, outside the app's namespace"), Some(kind)));
            }
        } else if o.namespace() != Some(namespace) {
            return Err(refuse(
                format!("is in namespace {:?}, not the app's {namespace:?}", o.namespace().unwrap_or("")),
                None,
            ));
        }
        let v = o.value();
        if let Some(need) = rbac_grant(kind, v)
            && !granted(&need.grant)
        {
            return Err(refuse(need.reason, Some(&need.grant)));
        }
        if kind == "Service"
            && v.pointer("/spec/externalIPs").and_then(Value::as_array).is_some_and(|ips| !ips.is_empty())
            && !granted(EXTERNAL_IPS_GRANT)
        {
            return Err(refuse(
                "sets externalIPs, which takes over traffic to those addresses across the cluster".into(),
                Some(EXTERNAL_IPS_GRANT),
            ));
        }
    }
    Ok(())
}
