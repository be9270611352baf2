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
    /// Kubernetes login (`auth/MOUNT/login`) with the pod's service-account token.
    Kubernetes {
        /// The auth mount, usually `kubernetes`.
        mount: String,
        /// The Vault role bound to the service account.
        role: String,
        /// The file with the service-account JWT; read at every login, since the kubelet
        /// rotates it.
        jwt_path: PathBuf,
    },
}

impl VaultAuth {
    /// Whether the store can log in again by itself (AppRole, Kubernetes): then an expired or
    /// revoked token is replaced transparently.
    pub fn can_login(&self) -> bool {
        !matches!(self, VaultAuth::Token(_))
    }

    /// The name of the method, for messages.
    pub fn method(&self) -> &'static str {
        match self {
            VaultAuth::Token(_) => "token",
            VaultAuth::AppRole { .. } => "approle",
            VaultAuth::Kubernetes { .. } => "kubernetes",
        }
    }
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
            VaultAuth::Kubernetes { mount, role, jwt_path } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .field("jwt_path", jwt_path)
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
    /// Allow a plain `http://` address to a host that is not this machine (default `false`:
    /// the token would cross the network in clear text). Set from the environment
    /// (`PAVED_VAULT_ALLOW_HTTP=1`) or in code, never from `paved.toml`.
    pub allow_insecure_http: bool,
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
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

impl VaultConfig {
    /// The default KV v2 mount.
    pub const DEFAULT_MOUNT: &'static str = "secret";
    /// The default AppRole auth mount.
    pub const DEFAULT_APPROLE_MOUNT: &'static str = "approle";
    /// The default Kubernetes auth mount.
    pub const DEFAULT_KUBERNETES_MOUNT: &'static str = "kubernetes";
    /// Where Kubernetes mounts the service-account token in a pod.
    pub const DEFAULT_KUBERNETES_JWT_PATH: &'static str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

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
            allow_insecure_http: false,
        }
    }

    /// Allows a plain `http://` address to a host that is not this machine (see
    /// [`VaultConfig::allow_insecure_http`]).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// A configuration from the process environment (each `VAULT_*` variable also as `BAO_*`):
    ///
    /// - `VAULT_ADDR`, `VAULT_NAMESPACE`, `VAULT_CACERT`; `PAVED_VAULT_ALLOW_HTTP=1` allows a
    ///   plain `http://` address to another host (refused otherwise);
    /// - the login, the first one set of: `VAULT_TOKEN` (a token); `VAULT_ROLE_ID` and
    ///   `VAULT_SECRET_ID` (AppRole, mount `VAULT_APPROLE_MOUNT`, default `approle`);
    ///   `VAULT_K8S_ROLE` (Kubernetes, mount `VAULT_K8S_MOUNT`, default `kubernetes`, JWT
    ///   file `VAULT_K8S_JWT_PATH`, default the pod's service-account token).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`VaultConfig::from_env`] with variables looked up by `lookup` (for tests and for
    /// configuration layered over the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            lookup(&format!("VAULT_{name}")).or_else(|| lookup(&format!("BAO_{name}"))).filter(|v| !v.trim().is_empty())
        };
        let address = get("ADDR").ok_or_else(|| Error::Config {
            message: "no Vault address: VAULT_ADDR (or BAO_ADDR) is not set".into(),
            hint: "export VAULT_ADDR=https://vault.example.com:8200".into(),
        })?;
        let auth = if let Some(token) = get("TOKEN") {
            VaultAuth::Token(SecretString::from(token))
        } else if let Some(role_id) = get("ROLE_ID") {
            let secret_id = get("SECRET_ID").ok_or_else(|| Error::Config {
                message: "VAULT_ROLE_ID is set but VAULT_SECRET_ID (or BAO_SECRET_ID) is not".into(),
                hint: "export VAULT_SECRET_ID (`bao write -f auth/approle/role/ROLE/secret-id`)".into(),
            })?;
            VaultAuth::AppRole {
                mount: get("APPROLE_MOUNT").unwrap_or_else(|| Self::DEFAULT_APPROLE_MOUNT.into()),
                role_id,
                secret_id: SecretString::from(secret_id),
            }
        } else if let Some(role) = get("K8S_ROLE") {
            VaultAuth::Kubernetes {
                mount: get("K8S_MOUNT").unwrap_or_else(|| Self::DEFAULT_KUBERNETES_MOUNT.into()),
                role,
                jwt_path: PathBuf::from(
                    get("K8S_JWT_PATH").unwrap_or_else(|| Self::DEFAULT_KUBERNETES_JWT_PATH.into()),
                ),
            }
        } else {
            return Err(Error::Config {
                message: "no Vault login: none of VAULT_TOKEN, VAULT_ROLE_ID/VAULT_SECRET_ID or VAULT_K8S_ROLE (or their BAO_ forms) is set".into(),
                hint: "export VAULT_TOKEN (for example from `bao login -method=... -token-only`), or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole, or VAULT_K8S_ROLE in a pod".into(),
            });
        };
        let mut config = VaultConfig::new(address, SecretString::from(String::new()));
        config.auth = auth;
        config.namespace = get("NAMESPACE");
        config.ca_cert = get("CACERT").map(PathBuf::from);
        config.allow_insecure_http = lookup("PAVED_VAULT_ALLOW_HTTP").is_some_and(|v| matches!(v.trim(), "1" | "true"));
        Ok(config)
    }

    /// Logs in with the Kubernetes auth method on `mount` (usually `kubernetes`) as `role`,
    /// with the service-account JWT at the default path; see [`VaultConfig::kubernetes_jwt`].
    pub fn kubernetes(mut self, mount: impl Into<String>, role: impl Into<String>) -> Self {
        self.auth = VaultAuth::Kubernetes {
            mount: mount.into(),
            role: role.into(),
            jwt_path: PathBuf::from(Self::DEFAULT_KUBERNETES_JWT_PATH),
        };
        self
    }

    /// Reads the service-account JWT of a Kubernetes login from `path` (ignored by other
    /// methods).
    pub fn kubernetes_jwt(mut self, path: impl Into<PathBuf>) -> Self {
        if let VaultAuth::Kubernetes { jwt_path, .. } = &mut self.auth {
            *jwt_path = path.into();
        }
        self
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
    use secrecy::ExposeSecret;
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
        assert!(e.to_string().contains("VAULT_K8S_ROLE"), "{e}");
        assert!(paved_core::Error::from(e).hint().is_some());
    }

    fn from(vars: &[(&str, &str)]) -> Result<VaultConfig> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        VaultConfig::from_lookup(|n| vars.get(n).map(|v| v.to_string()))
    }

    #[test]
    fn approle_and_kubernetes_from_the_environment() {
        let c = from(&[("VAULT_ADDR", "http://v"), ("VAULT_ROLE_ID", "r-1"), ("BAO_SECRET_ID", "sid-canary")]).unwrap();
        let VaultAuth::AppRole { mount, role_id, secret_id } = &c.auth else { panic!("{c:?}") };
        assert_eq!((mount.as_str(), role_id.as_str()), ("approle", "r-1"));
        assert_eq!(secret_id.expose_secret(), "sid-canary");
        assert!(!format!("{c:?}").contains("sid-canary"));
        assert!(c.auth.can_login());
        let e = from(&[("VAULT_ADDR", "http://v"), ("VAULT_ROLE_ID", "r-1")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_SECRET_ID"), "{e}");

        let c = from(&[("VAULT_ADDR", "http://v"), ("VAULT_K8S_ROLE", "payments")]).unwrap();
        let VaultAuth::Kubernetes { mount, role, jwt_path } = &c.auth else { panic!("{c:?}") };
        assert_eq!((mount.as_str(), role.as_str()), ("kubernetes", "payments"));
        assert_eq!(jwt_path, &PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"));
        assert_eq!(c.auth.method(), "kubernetes");
        let c = from(&[
            ("BAO_ADDR", "http://v"),
            ("BAO_K8S_ROLE", "payments"),
            ("VAULT_K8S_MOUNT", "k8s-prod"),
            ("VAULT_K8S_JWT_PATH", "/tmp/jwt"),
        ])
        .unwrap();
        let VaultAuth::Kubernetes { mount, jwt_path, .. } = &c.auth else { panic!("{c:?}") };
        assert_eq!((mount.as_str(), jwt_path.as_path()), ("k8s-prod", std::path::Path::new("/tmp/jwt")));
        // A token wins over the other methods.
        let c = from(&[("VAULT_ADDR", "http://v"), ("VAULT_TOKEN", "t"), ("VAULT_K8S_ROLE", "payments")]).unwrap();
        assert!(matches!(c.auth, VaultAuth::Token(_)) && !c.auth.can_login());
        // The builder.
        let c =
            VaultConfig::new("http://v", SecretString::from("t")).kubernetes("kubernetes", "r").kubernetes_jwt("/j");
        assert!(matches!(&c.auth, VaultAuth::Kubernetes { jwt_path, .. } if jwt_path == std::path::Path::new("/j")));
    }
}

/// `[vault]` of `paved.toml`: where Vault / OpenBao is, for when the environment does not say.
/// The environment wins (`VAULT_ADDR`, `VAULT_NAMESPACE`, `VAULT_CACERT`, …, or their `BAO_`
/// forms), and an `address` that differs from `VAULT_ADDR` is refused: the token comes from the
/// environment, and a `paved.toml` changed in a pull request must not send it elsewhere. The
/// token and an AppRole secret id always come from the environment, never from a file in the
/// repository; a plain `http://` address to another host is refused (see
/// [`VaultConfig::allow_insecure_http`]).
///
/// ```toml
/// [vault]
/// address = "https://vault.example.com:8200"
/// namespace = "platform"            # Vault Enterprise / OpenBao namespace
/// ca_cert = "/etc/ssl/vault-ca.pem"
/// kubernetes_role = "paved"         # Kubernetes auth (in a pod)
/// approle_role_id = "…"             # AppRole auth (VAULT_SECRET_ID from the environment)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct VaultSettings {
    /// The server address, e.g. `https://vault.example.com:8200`.
    pub address: Option<String>,
    /// The Vault Enterprise / OpenBao namespace.
    pub namespace: Option<String>,
    /// A CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// Kubernetes auth: the Vault role to log in as with the pod's service-account token
    /// (overrides `VAULT_K8S_ROLE`).
    pub kubernetes_role: Option<String>,
    /// Kubernetes auth: the auth mount (default `kubernetes`; overrides `VAULT_K8S_MOUNT`).
    pub kubernetes_mount: Option<String>,
    /// AppRole auth: the role id (overrides `VAULT_ROLE_ID`); the secret id only ever comes
    /// from the environment (`VAULT_SECRET_ID`).
    pub approle_role_id: Option<String>,
    /// AppRole auth: the auth mount (default `approle`; overrides `VAULT_APPROLE_MOUNT`).
    pub approle_mount: Option<String>,
}

impl VaultSettings {
    /// The `[vault]` section of `config` (defaults when it has none), checked like the rest
    /// of the file: unknown keys are errors with the line and a did-you-mean hint.
    pub fn from_org_config(config: &paved_core::OrgConfig) -> paved_core::Result<Self> {
        Ok(config.section::<VaultSettings>(&["vault"])?.unwrap_or_default())
    }

    /// The value of environment variable `name` as these settings override it.
    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "VAULT_ADDR" => self.address.clone(),
            "VAULT_NAMESPACE" => self.namespace.clone(),
            "VAULT_CACERT" => self.ca_cert.as_ref().map(|p| p.display().to_string()),
            "VAULT_K8S_ROLE" => self.kubernetes_role.clone(),
            "VAULT_K8S_MOUNT" => self.kubernetes_mount.clone(),
            "VAULT_ROLE_ID" => self.approle_role_id.clone(),
            "VAULT_APPROLE_MOUNT" => self.approle_mount.clone(),
            _ => None,
        }
    }
}

impl VaultConfig {
    /// The connection these settings describe, under the environment read by `lookup`: a
    /// variable that is set (as `VAULT_*` or `BAO_*`) wins over its setting; an `address` that
    /// differs from the environment's is an error; credentials come from the environment only.
    pub fn from_settings(settings: &VaultSettings, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let from_env = |name: &str| {
            let bao = name.strip_prefix("VAULT_").map(|rest| format!("BAO_{rest}"));
            set(name).or_else(|| bao.and_then(|b| set(&b)))
        };
        if let (Some(file), Some(env)) = (&settings.address, from_env("VAULT_ADDR"))
            && file.trim_end_matches('/') != env.trim().trim_end_matches('/')
        {
            return Err(Error::Config {
                message: format!("paved.toml [vault] address {file:?} differs from VAULT_ADDR {env:?}"),
                hint: "the Vault of the environment gets the token: remove [vault] address from paved.toml, or make it match"
                    .into(),
            });
        }
        VaultConfig::from_lookup(|name| match name.strip_prefix("BAO_") {
            // `from_lookup` asks for VAULT_X, then BAO_X: the environment's value of either wins.
            Some(_) => set(name),
            None => from_env(name).or_else(|| settings.lookup(name)).or_else(|| lookup(name)),
        })
    }
}

/// The vault backend's part of a `[databases.NAME]` table: the server Vault's database secrets
/// engine connects to and the admin user it connects as (the backend, engine and environments
/// are read by `paved-core`). Unknown keys are errors at their line, with a did-you-mean hint.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultDbServerSettings {
    /// Host name or address.
    pub host: String,
    /// Port (default: the engine's: PostgreSQL 5432, MySQL 3306).
    #[serde(default)]
    pub port: Option<u16>,
    /// The user paved and Vault administer it as.
    pub admin_username: String,
    /// Where that user's password is kept (never the password itself).
    pub admin_password: paved_core::SecretRef,
    /// The database to connect to for server-wide statements (default: the engine's own).
    #[serde(default)]
    pub admin_database: Option<String>,
    /// A PEM file with the CA that signed the server's certificate: connections use verified
    /// TLS against it (default: verified TLS against the system's roots, except for a server on
    /// this machine, which is reached without TLS unless a CA is given).
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Where the Vault server finds that CA file, for PostgreSQL (its plugin reads
    /// `sslrootcert` on the Vault server; default: `ca_cert`).
    #[serde(default)]
    pub vault_ca_cert: Option<String>,
    /// Connect without TLS to a server that is not on this machine (default `false`: the admin
    /// password would cross the network in clear text).
    #[serde(default)]
    pub allow_plaintext: bool,
    // The keys paved-core reads from the same table.
    #[serde(default, rename = "backend")]
    _backend: serde::de::IgnoredAny,
    #[serde(default, rename = "engine")]
    _engine: serde::de::IgnoredAny,
    #[serde(default, rename = "environments")]
    _environments: serde::de::IgnoredAny,
}

impl VaultDbServerSettings {
    /// The settings of database server `name` of `config`.
    pub fn from_org_config(config: &paved_core::OrgConfig, name: &str) -> paved_core::Result<Self> {
        config.section::<VaultDbServerSettings>(&["databases", name])?.ok_or_else(|| paved_core::Error::Config {
            path: config.source.clone().unwrap_or_else(|| PathBuf::from("paved.toml")),
            line: None,
            message: format!("there is no database server {name}"),
            hint: Some(format!("add [databases.{name}] with host, admin_username and admin_password")),
        })
    }

    /// The [`DbServer`](crate::DbServer) these settings describe, administered with `admin_password`.
    pub fn server(&self, engine: paved_core::DbEngine, admin_password: SecretString) -> Result<crate::DbServer> {
        let mut server =
            crate::DbServer::new(engine, &self.host, self.port(engine), &self.admin_username, admin_password)?
                .allow_plaintext(self.allow_plaintext);
        if let Some(db) = &self.admin_database {
            server = server.admin_database(db);
        }
        if let Some(ca) = &self.ca_cert {
            server = server.ca_cert(ca);
        }
        if let Some(ca) = &self.vault_ca_cert {
            server = server.vault_ca_cert(ca);
        }
        Ok(server)
    }

    /// The port: the configured one, else the engine's default.
    pub fn port(&self, engine: paved_core::DbEngine) -> u16 {
        self.port.unwrap_or(match engine {
            paved_core::DbEngine::Mysql => 3306,
            paved_core::DbEngine::Mongodb => 27017,
            _ => 5432,
        })
    }
}

#[cfg(test)]
mod db_server_tests {
    use super::*;
    use crate::DbTls;

    fn server(table: &str) -> Result<crate::DbServer> {
        let text = format!(
            "[databases.main]\nengine = \"postgres\"\nadmin_username = \"a\"\nadmin_password = \"vault://secret/db#pw\"\n{table}"
        );
        let config = paved_core::OrgConfig::parse("paved.toml", &text).unwrap();
        let settings = VaultDbServerSettings::from_org_config(&config, "main").unwrap();
        settings.server(paved_core::DbEngine::Postgres, SecretString::from("pw"))
    }

    /// Issue 18, hole 6: a server elsewhere gets verified TLS unless plain is allowed explicitly.
    #[test]
    fn database_servers_default_to_verified_tls() {
        assert_eq!(server("host = \"db.internal\"\n").unwrap().tls(), DbTls::Verify { ca_cert: None });
        let with_ca = server("host = \"db.internal\"\nca_cert = \"/etc/ssl/db.pem\"\n").unwrap();
        assert_eq!(with_ca.tls(), DbTls::Verify { ca_cert: Some(PathBuf::from("/etc/ssl/db.pem")) });
        assert_eq!(server("host = \"db.internal\"\nallow_plaintext = true\n").unwrap().tls(), DbTls::Plain);
        assert_eq!(server("host = \"127.0.0.1\"\n").unwrap().tls(), DbTls::Plain);
        let e = paved_core::OrgConfig::parse(
            "paved.toml",
            "[databases.main]\nengine = \"postgres\"\nhost = \"h\"\nadmin_username = \"a\"\nadmin_password = \"vault://s/d#p\"\ncacert = \"x\"\n",
        )
        .and_then(|c| VaultDbServerSettings::from_org_config(&c, "main"))
        .unwrap_err();
        assert!(e.hint().unwrap().contains("did you mean \"ca_cert\"?"), "{e}");
    }
}
