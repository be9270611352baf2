//! HashiCorp Vault / OpenBao backend for paved: [`VaultSecretStore`], a
//! [`SecretStore`](paved_core::SecretStore) on the KV v2 secrets engine, and
//! [`VaultDbProvisioner`], a [`DbProvisioner`](paved_core::DbProvisioner) on the database
//! secrets engine (dynamic PostgreSQL credentials).
//!
//! Built on [`vaultrs`] (reqwest with rustls on the aws-lc-rs crypto provider). One HTTP client
//! per store (connections are reused), a timeout per request, and retries with jittered
//! exponential backoff on connection errors, `429` and `5xx` responses (never on other `4xx`).
//! An unreachable or sealed server gives one error naming the address, with a hint.
//!
//! Secret values are [`SecretString`](secrecy::SecretString)s from the moment they are parsed
//! off the wire: they never appear in `Debug` output, errors or tracing events of this crate.
//!
//! ```no_run
//! use paved_core::SecretStore;
//! use paved_vault::{VaultConfig, VaultSecretStore};
//! # async fn run() -> paved_core::Result<()> {
//! // VAULT_ADDR / BAO_ADDR, VAULT_TOKEN / BAO_TOKEN, VAULT_NAMESPACE, VAULT_CACERT.
//! let store = VaultSecretStore::connect(VaultConfig::from_env()?).await?;
//! let secret = store.get("payments/db").await?;
//! println!("keys: {:?}", secret.keys().collect::<Vec<_>>());
//! # Ok(())
//! # }
//! ```

mod config;
mod db;
mod error;
mod store;
mod wire;

pub use config::{VaultAuth, VaultConfig};
pub use db::{DbServer, VaultDbProvisioner, plugin_name};
pub use error::{Error, Result};
pub use store::{SecretMetadata, VaultSecretStore, VersionMetadata};
