//! Rendered Kubernetes objects, as JSON values, and their YAML form.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One Kubernetes object (`apiVersion`, `kind`, `metadata.name`, …) as a JSON value.
///
/// Objects are plain JSON so that rendering, policy plugins and targets share one
/// representation and apply payloads stay minimal (no defaulted empty fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Value", try_from = "Value")]
pub struct Manifest(Value);

impl From<Manifest> for Value {
    fn from(m: Manifest) -> Value {
        m.0
    }
}

/// Read back (a release record, a plan) through [`Manifest::new`]: identity and names checked.
impl TryFrom<Value> for Manifest {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self> {
        Manifest::new(value)
    }
}

/// `Kind/name` of an object, e.g. `Deployment/my-service`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl Manifest {
    /// Wraps a value, checking that it is an object with `apiVersion`, `kind` and `metadata.name`.
    pub fn new(value: Value) -> Result<Self> {
        let missing = ["apiVersion", "kind"]
            .into_iter()
            .find(|k| value.get(k).and_then(Value::as_str).is_none_or(str::is_empty))
            .or_else(|| {
                value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                    .then_some("metadata.name")
            });
        if missing.is_none() {
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            // Names become file names and lines of kustomization.yaml in a GitOps directory:
            // Kubernetes' own rules (RFC 1123 names; RBAC also allows `:`), nothing else.
            let kind_ok = kind.len() <= 63
                && kind.starts_with(|c: char| c.is_ascii_alphabetic())
                && kind.bytes().all(|b| b.is_ascii_alphanumeric());
            if !kind_ok {
                return Err(Error::invalid(
                    "manifest kind",
                    kind,
                    "is not a Kubernetes kind",
                    Some("a kind is a letter followed by letters and digits, e.g. ConfigMap".into()),
                ));
            }
            let name_ok = name.len() <= 253
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
            if !name_ok {
                return Err(Error::invalid(
                    "metadata.name",
                    name,
                    format!("of a {kind} is not a Kubernetes name"),
                    Some(
                        "use lowercase letters, digits, `-` and `.` (RFC 1123), at most 253 characters, e.g. my-config"
                            .into(),
                    ),
                ));
            }
        }
        match missing {
            None => Ok(Manifest(value)),
            Some(field) => Err(Error::invalid(
                "manifest",
                value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<unnamed>"),
                format!("has no {field}"),
                Some("every object needs apiVersion, kind and metadata.name".into()),
            )),
        }
    }

    /// Wraps a value the caller built with `apiVersion`, `kind` and `metadata.name`.
    ///
    /// For renderers; prefer [`Manifest::new`] for values from outside.
    pub fn from_rendered(value: Value) -> Self {
        debug_assert!(Manifest::new(value.clone()).is_ok(), "rendered object lacks identity: {value}");
        Manifest(value)
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.0.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.0.get("kind").and_then(Value::as_str).unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.0.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    }

    /// `metadata.namespace`, for namespaced objects.
    pub fn namespace(&self) -> Option<&str> {
        self.0.pointer("/metadata/namespace").and_then(Value::as_str)
    }

    /// `Kind/name`.
    pub fn key(&self) -> ObjectKey {
        ObjectKey { kind: self.kind().to_string(), name: self.name().to_string() }
    }

    /// The object as JSON.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The object as mutable JSON; keep `apiVersion`, `kind` and `metadata.name` intact.
    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.0
    }

    /// The object as JSON, by value.
    pub fn into_value(self) -> Value {
        self.0
    }

    /// The object as one YAML document (without `---`).
    pub fn to_yaml(&self) -> String {
        crate::yaml::to_string(&self.0)
    }
}

/// The objects of one release, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Manifests(Vec<Manifest>);

impl Manifests {
    /// Wraps objects in apply order.
    pub fn new(objects: Vec<Manifest>) -> Self {
        Manifests(objects)
    }

    /// The objects.
    pub fn objects(&self) -> &[Manifest] {
        &self.0
    }

    /// The objects, mutable.
    pub fn objects_mut(&mut self) -> &mut Vec<Manifest> {
        &mut self.0
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are no objects.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the objects.
    pub fn iter(&self) -> std::slice::Iter<'_, Manifest> {
        self.0.iter()
    }

    /// The object with this kind and name.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Manifest> {
        self.0.iter().find(|m| m.kind() == kind && m.name() == name)
    }

    /// All objects as one multi-document YAML stream (each document starts with `---`).
    pub fn to_yaml(&self) -> String {
        let mut out = String::with_capacity(self.0.len() * 1024);
        for m in &self.0 {
            out.push_str("---\n");
            crate::yaml::write(&mut out, &m.0);
        }
        out
    }

    /// Parses a multi-document YAML stream of objects.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let file = crate::request::ManifestFile::parse("<manifests>", text)?;
        file.documents.into_iter().map(|d| Manifest::new(d.value)).collect::<Result<Vec<_>>>().map(Manifests)
    }

    /// The SHA-256 of the objects' JSON, hex-encoded: equal objects in equal order give
    /// equal digests, so a target can tell a no-op deployment from a change.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for m in &self.0 {
            let bytes = serde_json::to_vec(&m.0).expect("JSON values always serialize");
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        hex(&hasher.finalize())
    }
}

/// Lowercase hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl<'a> IntoIterator for &'a Manifests {
    type Item = &'a Manifest;
    type IntoIter = std::slice::Iter<'a, Manifest>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_is_required() {
        assert!(Manifest::new(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}})).is_ok());
        let err = Manifest::new(json!({"kind": "Service", "metadata": {"name": "a"}})).unwrap_err();
        assert!(err.to_string().contains("apiVersion"), "{err}");
        assert!(Manifest::new(json!({"apiVersion": "v1", "kind": "Service", "metadata": {}})).is_err());
        // Issue 19, finding 4: names and kinds that would leave the directory or add lines to
        // kustomization.yaml are refused, also when read back from a release record.
        for (kind, name) in [
            ("ConfigMap", "a\n- ../../../etc/passwd"),
            ("ConfigMap", "../../x"),
            ("ConfigMap", "a/b"),
            ("ConfigMap", ".hidden"),
            ("Config Map", "a"),
            ("Config/Map", "a"),
        ] {
            let value = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
            assert!(Manifest::new(value.clone()).unwrap_err().hint().is_some(), "{kind} {name:?}");
            assert!(serde_json::from_value::<Manifest>(value).is_err(), "{kind} {name:?} read back");
        }
        let rbac = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:aggregate-to-edit"}});
        assert!(Manifest::new(rbac).is_ok());
    }

    #[test]
    fn yaml_round_trip_keeps_the_digest() {
        let m = Manifests::new(vec![
            Manifest::new(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}})).unwrap(),
            Manifest::new(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}})).unwrap(),
        ]);
        let yaml = m.to_yaml();
        assert!(yaml.starts_with("---\napiVersion: v1\nkind: Service\n"), "{yaml}");
        let back = Manifests::from_yaml(&yaml).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.digest(), m.digest());
        assert_eq!(m.digest().len(), 64);
        let mut changed = m.clone();
        changed.objects_mut().pop();
        assert_ne!(changed.digest(), m.digest());
    }
}
