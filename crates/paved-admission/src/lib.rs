//! paved's policies at Kubernetes admission.
//!
//! The same policy sets and plugins that check a release at plan time, served to the API
//! server as a validating and mutating webhook, so that nothing reaches the cluster around
//! them (`kubectl apply` by hand, Helm charts, operators, another team's pipeline):
//!
//! - [`Admission`]: answers `admission.k8s.io/v1` `AdmissionReview`s (`/validate`: allowed, the
//!   violations with policy, field and hint, warnings; `/mutate`: a JSONPatch of what the
//!   mutating policies change), with a concurrency limit, a deadline below the API server's
//!   timeout, the failure policy for what it cannot decide, Prometheus metrics, and policies
//!   hot-reloaded when a file changes (pins verified; no request dropped);
//! - [`CertificateFiles`], [`TlsListener`]: HTTPS with rustls, the certificate reloaded when
//!   its files change;
//! - [`install`]: the manifests that run it in a cluster;
//! - [`audit`]: the policies over what already runs, written as `PolicyReport`s.
//!
//! The admission context (operation, namespace, user, old object, dry run) reaches plugins
//! built against `paved:policy@0.2.0`; plugins built against 0.1.0 run unchanged.

pub mod audit;
pub mod install;
pub mod metrics;
mod reload;
pub mod review;
mod server;
pub mod settings;
mod tls;

pub use reload::Fingerprint;
pub use review::{Malformed, Review, Verdict};
pub use server::{Admission, Endpoint, Loader, Policies};
pub use settings::AdmissionSettings;
pub use tls::{CertificateFiles, TlsListener};

/// The Kubernetes client the audit lists and writes with (kube-rs).
pub use kube::Client as KubeClient;
