//! # paved-core
//!
//! The domain model of [paved](https://docs.rs/paved): validated types, the organisation
//! configuration, the golden-path traits ([`Deployer`], [`SecretStore`], [`DbProvisioner`],
//! [`Metrics`], [`PolicyEngine`], [`Renderer`], [`Notifier`]) and the [`Platform`] that runs the golden path:
//!
//! ```text
//! DeployRequest ─validate─▶ ResolvedApp ─render─▶ Manifests ─policy─▶ Manifests' ─secrets─▶ Release ─apply─▶ Deployer
//! ```
//!
//! This crate depends on nothing heavy (no Kubernetes client, no HTTP, no WebAssembly); the
//! backends live in their own crates and the `paved` facade wires them together.
//!
//! Every user-facing [`Error`] carries a hint:
//!
//! ```
//! use paved_core::{DeployRequest, OrgConfig, ResolvedApp};
//! let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "prod").unwrap();
//! let err = ResolvedApp::resolve(&OrgConfig::default(), &request).unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid env "prod": is not an environment of this organisation"#);
//! assert_eq!(err.hint(), Some(r#"did you mean "production"?"#));
//! ```

pub mod backend;
pub mod bookkeeping;
pub mod config;
pub mod containment;
pub mod database;
pub mod error;
pub mod events;
pub mod hint;
pub mod image;
pub mod manifest;
pub mod names;
pub mod notify;
pub mod observability;
pub mod org_policy;
pub mod platform;
pub mod platform_file;
pub mod policy;
pub mod provisioner;
pub mod quantity;
pub mod release;
pub mod request;
pub mod resolve;
pub mod secret;
pub mod state;
pub mod suggest;
pub mod trust;
pub mod workload;
pub mod yaml;

pub use backend::{
    DatabaseInfo, DatabaseState, DbProvisioner, DeployContext, Deployer, DeployerCapabilities, DeprovisionOptions,
    DestroyOutcome, Metrics, NoMetrics, Renderer, SecretStore,
};
pub use config::{Environment, OrgConfig, PipelinesConfig, SecretMode, SecretsConfig};
pub use database::{
    DatabaseMonitor, DatabaseOutcome, DatabaseSelector, DatabaseServer, ProvisionResponse, connection_info,
    connection_info_path,
};
pub use error::{Error, ErrorKind, Result};
pub use events::{DeploymentResult, PlatformEvent, Progress, Step};
pub use image::ImageRef;
pub use manifest::{Manifest, Manifests, ObjectKey};
pub use names::{AppName, Team};
pub use notify::{MemoryNotifier, NoNotifier, Notification, NotificationKind, Notifier, Notifiers, notify_best_effort};
pub use org_policy::{OrgPolicy, PolicyEntry, PolicyOrigin};
pub use platform::{Listing, Plan, Platform, PlatformBuilder, Unlisted};
pub use platform_file::{PLATFORM_FILE, PlatformFile};
pub use policy::{
    Action, AllowAll, DatabaseInput, FailurePolicy, PolicyEngine, PolicyInput, PolicyMode, PolicyReport, Severity,
    Violation,
};
pub use quantity::{CpuQuantity, MemoryQuantity};
pub use release::{
    DeployOutcome, REDACTED_PREFIX, Release, ReleaseCause, ReleaseKey, ReleaseRecord, ReleaseStatus, Revision,
    RevisionState, SecretValues,
};
pub use request::{
    Commit, Component, DatabaseRequest, DbEngine, DbSize, DeployRequest, EscapeHatch, ManifestDocument, ManifestFile,
    Overrides, PathStep,
};
pub use resolve::{Autoscaling, ResolvedApp, Resources};
pub use secret::{SecretBinding, SecretMap, SecretRef, SecretScheme};

/// Re-export of `secrecy`, whose `SecretString` holds every secret value.
pub use secrecy;
