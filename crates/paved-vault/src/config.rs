//! Where the Vault server is and how to log in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::error::{Error, Result};

/// How a [`VaultSecretStore`](crate::VaultSecretStore) authenticates.
#[derive(Clone)]
#[non_exhaustive]
pub enum VaultAuth {
    /// A token (`VAULT_TOKEN` / `BAO_TOKEN`).
    Token(SecretString),
    /// AppRole login (`auth/MOUNT/login`) with a role ID and a secret ID.
    AppRole {
        /// The auth mount, usually `approle`.
        mount: String,
        /// The role ID (not secret on its own).
        role_id: String,
        /// The secret ID.
        secret_id: SecretString,
    },
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultAuth::Token(_) => f.write_str("Token(<redacted>)"),
            VaultAuth::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .field("secret_id", &"<redacted>")
                .finish(),
        }
    }
}

/// Settings of a [`VaultSecretStore`](crate::VaultSecretStore).
///
/// Build one with [`VaultConfig::new`] or [`VaultConfig::from_env`] and adjust it with the
/// setters. `Debug` never shows the token or secret ID.
#[derive(Clone)]
#[non_exhaustive]
pub struct VaultConfig {
    /// The server address, e.g. `https://vault.example.com:8200`.
    pub address: String,
    /// How to log in.
    pub auth: VaultAuth,
    /// The Vault Enterprise namespace (`X-Vault-Namespace`), if any.
    pub namespace: Option<String>,
    /// A PEM file with the CA certificate(s) to trust for `https` addresses.
    pub ca_cert: Option<PathBuf>,
    /// The KV v2 mount. Default `secret`.
    pub mount: String,
    /// The timeout of each HTTP request. Default 10 s.
    pub timeout: Duration,
    /// How often a failed request is retried (connection errors, 429, 5xx). Default 3.
    pub retries: u32,
    /// The first backoff between retries; doubled each time, with jitter. Default 100 ms.
    pub backoff: Duration,
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("address", &self.address)
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("ca_cert", &self.ca_cert)
            .field("mount", &self.mount)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl VaultConfig {
    /// The default KV v2 mount.
    pub const DEFAULT_MOUNT: &'static str = "secret";

    /// A configuration for `address` authenticating with `token`, defaults elsewhere.
    pub fn new(address: impl Into<String>, token: impl Into<SecretString>) -> Self {
        VaultConfig {
            address: address.into(),
            auth: VaultAuth::Token(token.into()),
            namespace: None,
            ca_cert: None,
            mount: Self::DEFAULT_MOUNT.to_string(),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(100),
        }
    }

    /// A configuration from the process environment: `VAULT_ADDR` (or `BAO_ADDR`),
    /// `VAULT_TOKEN` (or `BAO_TOKEN`), `VAULT_NAMESPACE` (or `BAO_NAMESPACE`) and
    /// `VAULT_CACERT` (or `BAO_CACERT`).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`VaultConfig::from_env`] with variables looked up by `lookup` (for tests and for
    /// configuration layered over the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |vault: &str, bao: &str| lookup(vault).or_else(|| lookup(bao)).filter(|v| !v.trim().is_empty());
        let address = get("VAULT_ADDR", "BAO_ADDR").ok_or_else(|| Error::Config {
            message: "no Vault address: VAULT_ADDR (or BAO_ADDR) is not set".into(),
            hint: "export VAULT_ADDR=https://vault.example.com:8200".into(),
        })?;
        let token = get("VAULT_TOKEN", "BAO_TOKEN").ok_or_else(|| Error::Config {
            message: "no Vault token: VAULT_TOKEN (or BAO_TOKEN) is not set".into(),
            hint: "export VAULT_TOKEN (for example from `bao login -method=... -token-only`)".into(),
        })?;
        let mut config = VaultConfig::new(address, SecretString::from(token));
        config.namespace = get("VAULT_NAMESPACE", "BAO_NAMESPACE");
        config.ca_cert = get("VAULT_CACERT", "BAO_CACERT").map(PathBuf::from);
        Ok(config)
    }

    /// Logs in with AppRole on the auth mount `mount` (usually `approle`) instead of a token.
    pub fn approle(mut self, mount: impl Into<String>, role_id: impl Into<String>, secret_id: SecretString) -> Self {
        self.auth = VaultAuth::AppRole { mount: mount.into(), role_id: role_id.into(), secret_id };
        self
    }

    /// Sets the KV v2 mount (default `secret`).
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// Sets the Vault Enterprise namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Trusts the CA certificate(s) in this PEM file.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Sets the timeout of each request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how often a failed request is retried (default 3) and the first backoff
    /// (default 100 ms).
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_vault_and_bao_variables() {
        let vars: HashMap<&str, &str> = [
            ("BAO_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "s.tok3n-value"),
            ("VAULT_NAMESPACE", "team-a"),
            ("VAULT_CACERT", "/etc/ca.pem"),
        ]
        .into();
        let c = VaultConfig::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(c.address, "http://127.0.0.1:8200");
        assert_eq!(c.namespace.as_deref(), Some("team-a"));
        assert_eq!(c.ca_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.mount, "secret");
        let debug = format!("{c:?}");
        assert!(!debug.contains("tok3n"), "{debug}");
        assert!(debug.contains("redacted"));
        let approle = c.approle("approle", "role-1", SecretString::from("sid-value"));
        assert!(!format!("{approle:?}").contains("sid-value"));
    }

    #[test]
    fn missing_variables_have_hints() {
        let e = VaultConfig::from_lookup(|_| None).unwrap_err();
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
        let e = VaultConfig::from_lookup(|n| (n == "VAULT_ADDR").then(|| "http://x".into())).unwrap_err();
        assert!(e.to_string().contains("VAULT_TOKEN"), "{e}");
        assert!(paved_core::Error::from(e).hint().is_some());
    }
}
