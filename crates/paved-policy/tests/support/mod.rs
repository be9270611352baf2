//! Shared test support: the plugins built by `scripts/build-plugins.sh`.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;

use paved_policy::{ConfiguredPolicy, HostOptions, Plugin, PolicyHost, PolicyManifest};
use serde_json::Value;

/// `plugins/<rel>` of this checkout.
pub fn plugin_dir(rel: &str) -> PathBuf {
    paved_testkit::workspace_root().join("plugins").join(rel)
}

/// The manifest of a built plugin; panics with the build command when it was not built.
pub fn manifest(rel: &str) -> PolicyManifest {
    let m = PolicyManifest::load(plugin_dir(rel)).expect("policy.toml loads");
    assert!(
        m.component_path().is_file(),
        "{} is not built: run `bash scripts/build-plugins.sh` (the test command does)",
        m.component_path().display()
    );
    m
}

/// A host with its own cache directory.
pub fn host() -> (Arc<PolicyHost>, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let host = PolicyHost::new(HostOptions { cache_dir: Some(cache.path().to_path_buf()), ..HostOptions::default() })
        .expect("host starts");
    (Arc::new(host), cache)
}

/// A host sharing one cache directory under the target directory (fast repeated loads).
pub fn shared_host() -> Arc<PolicyHost> {
    let dir = std::env::temp_dir().join("paved-policy-test-cache");
    Arc::new(PolicyHost::new(HostOptions { cache_dir: Some(dir), ..HostOptions::default() }).expect("host starts"))
}

/// Loads a plugin of the repository.
pub fn load(host: &PolicyHost, rel: &str) -> Plugin {
    host.load(manifest(rel)).unwrap_or_else(|e| panic!("{rel} loads: {e}"))
}

/// A configured policy with settings.
pub fn configured(plugin: Plugin, settings: Value) -> ConfiguredPolicy {
    let mut c = paved_core::config::PolicyConfig::new(".");
    c.settings = settings.as_object().cloned().unwrap_or_default();
    ConfiguredPolicy::with(plugin, &c)
}

/// The objects of a multi-document YAML text.
pub fn objects(yaml: &str) -> Vec<Value> {
    paved_core::Manifests::from_yaml(yaml).unwrap().iter().map(|m| m.value().clone()).collect()
}

/// A ~3 KB Deployment as the golden path renders it.
pub fn good_deployment() -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "my-service", "namespace": "my-service-production",
            "labels": {"app.kubernetes.io/name": "my-service", "paved.dev/team": "platform"}},
        "spec": {"replicas": 3, "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "my-service"}},
            "spec": {"containers": [{"name": "app", "image": "ghcr.io/company/my-service:v1.2.3"}]}}}
    })
}
