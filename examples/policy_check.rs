//! Evaluates the bundled `disallow-latest-tag` policy (a WebAssembly component) on two
//! Deployments through the sandboxed host. Build the plugins first:
//! `bash scripts/build-plugins.sh`, then `cargo run -p paved-examples --example policy_check`.

use std::sync::Arc;

use paved::policy::{ActionInput, ConfiguredPolicy, HostOptions, PolicyHost, PolicyManifest, PolicySet};

fn deployment(image: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let host = Arc::new(PolicyHost::new(HostOptions::default())?);
    let plugin = host.load(PolicyManifest::load(plugins.join("disallow-latest-tag"))?)?;
    let mut set = PolicySet::new(host);
    set.push(ConfiguredPolicy::new(plugin));
    for image in ["ghcr.io/company/web:v1.2.3", "ghcr.io/company/web:latest"] {
        let report = set.evaluate(&ActionInput::objects("production", vec![deployment(image)])).report();
        match report.denials().next() {
            None => println!("✅ {image}: allowed"),
            Some(v) => println!("❌ {image}: {v}"),
        }
    }
    Ok(())
}
