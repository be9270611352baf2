//! HashiCorp Vault / OpenBao backend for paved: [`VaultSecretStore`], a
//! [`SecretStore`](paved_core::SecretStore) on the KV v2 secrets engine, and
//! [`VaultDbProvisioner`], a [`DbProvisioner`](paved_core::DbProvisioner) on the database
//! secrets engine (dynamic PostgreSQL, MySQL and MariaDB credentials).
//!
//! Built on [`vaultrs`] (reqwest with rustls on the aws-lc-rs crypto provider). One HTTP client
//! per store (connections are reused), a timeout per request, and retries with jittered
//! exponential backoff on connection errors, `429` and `5xx` responses (never on other `4xx`).
//! An unreachable or sealed server gives one error naming the address, with a hint.
//!
//! Auth ([`VaultAuth`]): a token, AppRole or Kubernetes (the pod's service-account JWT, read
//! again at every login). [`VaultSecretStore::connect`] logs in or looks the token up and
//! remembers its TTL; before each request a renewable token is renewed when less than a third
//! of its TTL is left, and a token that cannot be renewed (any more), has expired or was
//! revoked is replaced by a new login when the method allows it (AppRole, Kubernetes: a
//! denied request then logs in again and is sent once more). A plain token that is no longer
//! valid gives [`Error::TokenExpired`] with a hint.
//!
//! Secret values are [`SecretString`](secrecy::SecretString)s from the moment they are parsed
//! off the wire: they never appear in `Debug` output, errors or tracing events of this crate.
//!
//! ```no_run
//! use paved_core::SecretStore;
//! use paved_vault::{VaultConfig, VaultSecretStore};
//! # async fn run() -> paved_core::Result<()> {
//! // VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT, and VAULT_TOKEN, or VAULT_ROLE_ID and
//! // VAULT_SECRET_ID (AppRole), or VAULT_K8S_ROLE (Kubernetes); BAO_* work too.
//! let store = VaultSecretStore::connect(VaultConfig::from_env()?).await?;
//! let secret = store.get("payments/db").await?;
//! println!("keys: {:?}", secret.keys().collect::<Vec<_>>());
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod db;
mod error;
mod kv;
mod wire;

pub use config::{VaultAuth, VaultConfig, VaultDbServerSettings, VaultSettings};
pub use db::{DbServer, DbTls, VaultDbProvisioner, plugin_name};
pub use error::{Error, Result};
pub use kv::{SecretMetadata, VaultSecretStore, VersionMetadata};
