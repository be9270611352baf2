//! Resource provisioners (`[[provisioners]]` in `paved.toml`): how a Score resource type that
//! paved does not provision itself (`redis`, `amqp`, `kafka-topic`, `s3`, …) becomes objects and
//! outputs, like score-k8s's template provisioners.
//!
//! ```toml
//! [[provisioners]]
//! type = "redis"
//! environments = ["dev"]          # in-cluster for dev …
//! outputs = { host = "${name}.${namespace}.svc.cluster.local", port = "6379", password = "k8s://${name}#password" }
//! objects = """
//! apiVersion: apps/v1
//! kind: StatefulSet
//! metadata: {name: "${name}"}
//! …
//! """
//!
//! [[provisioners]]
//! type = "redis"
//! environments = ["production"]   # … values from the secret store in production
//! outputs = { host = "vault://secret/${team}/redis#host", port = "6379", password = "vault://secret/${team}/redis#password" }
//! ```
//!
//! Placeholders: `${name}` (`{app}-{resource}`, or the resource's `id`), `${resource}`, `${app}`,
//! `${team}`, `${env}`, `${namespace}`, `${class}`, `${params.KEY}`. They are replaced inside
//! string values only, after the objects are parsed, so no value can add YAML structure. An
//! output that is a secret reference (`vault://`, `aws-sm://`, `k8s://`) reaches the app as a
//! reference, never as a value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One `[[provisioners]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProvisionerConfig {
    /// The Score resource type it provisions.
    #[serde(rename = "type")]
    pub kind: String,
    /// Only resources of this class (any class when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The environments it serves; all when empty.
    #[serde(default)]
    pub environments: Vec<String>,
    /// The resource's outputs (`${resources.NAME.OUTPUT}`), as templates.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// Objects added to the release, as a multi-document YAML template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<String>,
}

impl ProvisionerConfig {
    /// Whether it provisions a resource of `kind` and `class` in `environment`.
    pub fn serves(&self, kind: &str, class: Option<&str>, environment: &str) -> bool {
        self.kind == kind
            && self.class.as_deref().is_none_or(|c| Some(c) == class)
            && (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
    }
}
