//! # paved-kube
//!
//! Kubernetes for [paved](https://docs.rs/paved): the [`KubeRenderer`] turns a
//! [`ResolvedApp`](paved_core::ResolvedApp) into deterministic, secure-by-default objects, the
//! [`overlay`] module applies escape hatches, and [`GitOpsTarget`] is the embedded default deploy
//! target, a directory that `kubectl kustomize`, Argo CD and Flux consume.
//!
//! ```no_run
//! # async fn run() -> paved_core::Result<()> {
//! use paved_core::{DeployRequest, Platform};
//! use paved_kube::{GitOpsTarget, KubeRenderer};
//!
//! let platform = Platform::builder().renderer(KubeRenderer).deployer(GitOpsTarget::new(".paved")).build()?;
//! let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production")?.with_replicas(3);
//! let outcome = platform.deploy(&request).await?;
//! println!("revision {}", outcome.record.revision);
//! # Ok(()) }
//! ```

pub mod gitops;
#[cfg(feature = "live")]
pub mod live;
pub mod observability;
pub mod overlay;
pub mod render;
pub mod schema;
pub mod strategic;
#[cfg(feature = "testing")]
pub mod testing;
pub mod workload;

pub use gitops::GitOpsTarget;
#[cfg(feature = "live")]
pub use live::KubeTarget;
pub use render::{KubeRenderer, MANAGED_BY};
