//! AWS backend for paved, on the official AWS SDK for Rust:
//!
//! - [`RdsProvisioner`]: a [`DbProvisioner`](paved_core::DbProvisioner) of PostgreSQL and
//!   MySQL databases as RDS instances (`backend = "aws-rds"`), and [`DocDbProvisioner`] of
//!   MongoDB-compatible DocumentDB clusters (`backend = "aws-docdb"`);
//! - [`SecretsManagerStore`]: a [`SecretStore`](paved_core::SecretStore) for `aws-sm://NAME#KEY`
//!   references;
//! - [`CloudWatchDashboards`]: the [`DatabaseMonitor`](paved_core::DatabaseMonitor) that puts a
//!   dashboard per database;
//! - [`SnsNotifier`]: team notifications on an SNS topic;
//! - [`eks`]: the token the kube target presents to an EKS cluster, signed here (no `aws` CLI).
//!
//! Credentials and region come from the SDK's standard chain (environment, profile, SSO, web
//! identity / IRSA, ECS, IMDS) with `[aws]` of `paved.toml` for the region and limits
//! ([`AwsSettings`]); `AWS_ENDPOINT_URL` points every client elsewhere (moto in tests).
//! Throttling, 5xx and transient network errors are retried by the SDK's standard retry mode.
//!
//! ```no_run
//! use paved_aws::{Aws, AwsDbServerSettings, AwsSettings, RdsProvisioner};
//! use paved_core::{DatabaseRequest, DbEngine, DbProvisioner};
//! # async fn run() -> paved_core::Result<()> {
//! let aws = Aws::new(AwsSettings::default());
//! let rds = RdsProvisioner::new(aws, "rds", DbEngine::Postgres, AwsDbServerSettings::default())?;
//! let request = DatabaseRequest::new("payments", "payment-service", "postgres", "staging", "small")?;
//! let info = rds.provision(&request).await?;
//! println!("{:?} at {:?}, credentials in {:?}", info.state, info.endpoint, info.credentials_path);
//! # Ok(())
//! # }
//! ```

mod aws;
mod cloudwatch;
mod config;
mod connection;
mod docdb;
pub mod eks;
mod error;
pub mod naming;
mod rds;
mod secrets;
mod sns;
mod wait;

pub use aws::Aws;
/// Fixed AWS credentials ([`Aws::at_endpoint`]).
pub use aws_credential_types::Credentials;
pub use cloudwatch::{CloudWatchDashboards, DatabaseKind};
pub use config::{
    AwsDbServerSettings, AwsSettings, DashboardSettings, EksSettings, SecretsManagerSettings, SizeSettings,
    SnsSettings, default_sizes,
};
pub use docdb::DocDbProvisioner;
pub use eks::EksTokens;
pub use error::credential_source;
pub use rds::RdsProvisioner;
pub use secrets::{SecretVersion, SecretsManagerStore};
pub use sns::SnsNotifier;

/// The backend names of `[databases.NAME] backend`.
pub mod backends {
    /// RDS (PostgreSQL, MySQL).
    pub const RDS: &str = crate::rds::BACKEND;
    /// DocumentDB (MongoDB).
    pub const DOCDB: &str = crate::docdb::BACKEND;
    /// Secrets Manager (`aws-sm://`).
    pub const SECRETS_MANAGER: &str = crate::secrets::BACKEND;
}
