//! # paved
//!
//! An embeddable platform-engineering SDK: golden paths for product teams, as a library.
//! Deploy an app with one call and get a namespace, secure manifests, autoscaling,
//! monitoring and a URL, with recorded escape hatches for the advanced user.
//!
//! This crate is the facade: it re-exports [`paved_core`] (types, traits, [`Platform`]) and,
//! behind one feature per backend, the backends:
//!
//! | feature | crate | what |
//! |---|---|---|
//! | `kube` (default) | [`paved_kube`] | rendering, overlays, the GitOps-directory target, the live cluster target ([`paved_kube::KubeTarget`]) |
//! | `metrics` (default) | [`metrics`] (`paved-metrics`) | event ledger, DORA, adoption, Prometheus collector |
//! | `metrics-serve` | | `metrics` plus an HTTP server for `/metrics` |
//! | `vault` | [`vault`] (`paved-vault`) | Vault / OpenBao KV v2 secret store |
//! | `aws` | [`aws`] (`paved-aws`) | RDS and DocumentDB databases, the Secrets Manager store, CloudWatch dashboards, SNS notifications, EKS tokens |
//! | `policy` | [`policy`] (`paved-policy`) | organisation policy as sandboxed WebAssembly components |
//! | `policy-toolchain` | [`policy`]`::toolchain` | `policy` plus the plugin toolchain driver: builds Rust, Python and JavaScript plugins from source and pins them |
//! | `notify` | [`notify`] (`paved-notify`) | notifications: Slack-compatible incoming webhooks, a generic JSON webhook |
//! | `admission` | [`admission`] (`paved-admission`) | `policy` at Kubernetes admission: the validating and mutating webhook, its install manifests, the audit of what runs |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> paved::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use paved::{DeployRequest, OrgConfig};
//!
//! let platform = paved::gitops_platform(OrgConfig::default(), dir.path()).build()?;
//! let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production")?
//!     .with_replicas(3);
//! let outcome = platform.deploy(&request).await?;
//! assert_eq!(outcome.record.revision, 1);
//! assert_eq!(outcome.record.url.as_deref(), Some("https://my-service.production.example.com"));
//! # Ok(()) }
//! ```

pub use paved_core::*;

pub mod assembly;
pub use assembly::{Assembled, Assembly, KubeOptions};
/// Score (score.dev) workloads: `paved deploy -f score.yaml`.
pub use paved_score as score;

#[cfg(feature = "admission")]
pub use paved_admission as admission;
#[cfg(feature = "aws")]
pub use paved_aws as aws;
#[cfg(feature = "kube")]
pub use paved_kube;
#[cfg(feature = "metrics")]
pub use paved_metrics as metrics;
#[cfg(feature = "notify")]
pub use paved_notify as notify;
#[cfg(feature = "policy")]
pub use paved_policy as policy;
#[cfg(feature = "vault")]
pub use paved_vault as vault;

/// A [`PlatformBuilder`] wired with the Kubernetes renderer and the GitOps-directory target
/// writing under `state_dir`: the embedded default, no cluster needed. Add policy, metrics or
/// more targets before calling `build`.
#[cfg(feature = "kube")]
pub fn gitops_platform(config: OrgConfig, state_dir: impl Into<std::path::PathBuf>) -> PlatformBuilder {
    Platform::builder()
        .config(config)
        .renderer(paved_kube::KubeRenderer)
        .deployer(paved_kube::GitOpsTarget::new(state_dir))
}

/// The README's code examples, compiled as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
