//! The error type of `paved-vault`.
//!
//! Errors carry addresses, mounts, paths, HTTP statuses and Vault's own error messages; never
//! a secret value, a token or a response body.

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to Vault / OpenBao.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or not valid (address, CA certificate, …).
    #[error("vault configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A secret path is not valid.
    #[error("invalid secret path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Nothing answered at the address (connection refused, DNS, TLS, timeout), after retries.
    #[error("vault at {address} is unreachable: {reason}")]
    Unreachable {
        /// The server address.
        address: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The server answered that it is sealed.
    #[error("vault at {address} is sealed")]
    Sealed {
        /// The server address.
        address: String,
    },
    /// There is no secret (or no such version, or it is deleted) at the path.
    #[error("secret {mount}/{path}{} not found at {address}", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound {
        /// The server address.
        address: String,
        /// The KV mount.
        mount: String,
        /// The path inside the mount.
        path: String,
        /// The version asked for, if any.
        version: Option<u64>,
    },
    /// The KV mount does not exist.
    #[error("no secrets engine is mounted at {mount}/ on {address}")]
    MountNotFound {
        /// The server address.
        address: String,
        /// The mount.
        mount: String,
    },
    /// The token may not do this (or is not valid).
    #[error("permission denied on {what} at {address}")]
    PermissionDenied {
        /// The server address.
        address: String,
        /// What was attempted, e.g. `secret/payments/db`.
        what: String,
    },
    /// The token is no longer valid (expired or revoked) and the auth method cannot log in
    /// again by itself (a plain token).
    #[error("vault at {address} does not accept the token (invalid, expired or revoked): {what} was denied")]
    TokenExpired {
        /// The server address.
        address: String,
        /// What was attempted.
        what: String,
    },
    /// Any other error answer from the server.
    #[error("vault at {address} answered {status} for {what}{}", messages(errors))]
    Api {
        /// The server address.
        address: String,
        /// What was attempted.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Vault's error messages.
        errors: Vec<String>,
    },
    /// A name taken from a database request (team, service, environment) or derived from it
    /// (database, role) is not a valid identifier.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidName {
        /// Which name, e.g. `environment`.
        field: &'static str,
        /// The name as given or derived.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The database engine is not supported by the provisioner or the registered server.
    #[error("engine {engine} is not supported: {reason}")]
    UnsupportedEngine {
        /// The engine asked for.
        engine: String,
        /// Why it is not supported.
        reason: String,
        /// What to do instead.
        hint: String,
    },
    /// The database server refused or failed an administrative statement (never shows a
    /// password).
    #[error("database server {server}: {message}")]
    Database {
        /// `host:port` of the server.
        server: String,
        /// What failed.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// Something of the same name exists that paved did not create for this request (a
    /// database, a role, a Vault connection): nothing was changed.
    #[error("{what}: {message}")]
    Conflict {
        /// What is in the way, e.g. `database payments__api__dev on db:5432`.
        what: String,
        /// Why it is not taken over.
        message: String,
        /// How to resolve it.
        hint: String,
    },
    /// The answer could not be understood (not the Vault API, or an unexpected shape).
    #[error("vault at {address} sent an unexpected answer for {what}: {reason}")]
    Protocol {
        /// The server address.
        address: String,
        /// What was attempted.
        what: String,
        /// What was unexpected (never the response body).
        reason: String,
    },
}

fn messages(errors: &[String]) -> String {
    if errors.is_empty() { String::new() } else { format!(": {}", errors.join("; ")) }
}

impl Error {
    /// How to fix the error.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Config { hint, .. } => hint.clone(),
            Error::InvalidPath { .. } => "write a path inside the mount, e.g. payments/db".into(),
            Error::Unreachable { address, reason }
                if address.starts_with("https:") && reason.contains("certificate") =>
            {
                format!("trust the server's CA: point VAULT_CACERT at its PEM file (`bao status -address={address}`)")
            }
            Error::Unreachable { address, .. } => format!(
                "check that the server runs and VAULT_ADDR (or BAO_ADDR) is right: `bao status -address={address}`"
            ),
            Error::Sealed { address } => format!("unseal it: `bao operator unseal -address={address}`"),
            Error::NotFound { mount, path, version: Some(_), .. } => {
                format!("list the versions: `bao kv metadata get -mount={mount} {path}`")
            }
            Error::NotFound { mount, path, .. } => {
                let parent = path.rsplit_once('/').map(|(p, _)| format!("{p}/")).unwrap_or_default();
                format!(
                    "list what exists: `bao kv list -mount={mount} {parent}`; a deleted secret comes back with `bao kv undelete`"
                )
            }
            Error::MountNotFound { mount, .. } => format!(
                "check the mount name (`bao secrets list`), or enable it: `bao secrets enable -path={mount} kv-v2`"
            ),
            Error::TokenExpired { .. } => "get a new token (`bao login`, `bao token create`) and export VAULT_TOKEN; for long runs use a renewable token, or AppRole (VAULT_ROLE_ID/VAULT_SECRET_ID) or Kubernetes auth (VAULT_K8S_ROLE), with which paved logs in again by itself".into(),
            Error::PermissionDenied { what, .. } if what.starts_with("auth/") && what.ends_with("/login") => {
                "check the login: the role ID and secret ID (AppRole; a secret ID can expire or run out of uses) or the role and service-account token (Kubernetes), and the auth mount".into()
            }
            Error::PermissionDenied { .. } => {
                "check that VAULT_TOKEN is valid and its policies allow this: `bao token lookup`".into()
            }
            Error::Api { status: 429, .. } => "the server rate-limits requests: retry later".into(),
            Error::Api { status, .. } if *status >= 500 => "the server failed: check its logs and retry".into(),
            Error::Api { .. } => return None,
            Error::InvalidName { .. } => {
                "use lowercase letters, digits and `-`, starting with a letter (e.g. `production`)".into()
            }
            Error::UnsupportedEngine { hint, .. } | Error::Database { hint, .. } | Error::Conflict { hint, .. } => {
                hint.clone()
            }
            Error::Protocol { .. } => "check that the address is a Vault or OpenBao API and the mount is KV v2".into(),
        })
    }
}

impl From<Error> for paved_core::Error {
    fn from(e: Error) -> Self {
        let hint = e.hint();
        match e {
            Error::InvalidPath { path, reason } => {
                paved_core::Error::InvalidInput { field: "secret path".into(), value: path, reason, hint }
            }
            Error::InvalidName { field, value, reason } => {
                paved_core::Error::InvalidInput { field: field.into(), value, reason, hint }
            }
            Error::UnsupportedEngine { engine, reason, .. } => {
                paved_core::Error::InvalidInput { field: "engine".into(), value: engine, reason, hint }
            }
            Error::Conflict { what, message, .. } => paved_core::Error::Conflict { what, message, hint },
            // The connection settings (environment or `[vault]`) are wrong: bad input.
            Error::Config { message, .. } => {
                paved_core::Error::Config { path: std::path::PathBuf::from("vault"), line: None, message, hint }
            }
            Error::NotFound { address, mount, path, version } => {
                let version = version.map(|v| format!(" version {v}")).unwrap_or_default();
                paved_core::Error::NotFound {
                    what: format!("secret {mount}/{path}{version} (vault at {address})"),
                    hint,
                }
            }
            other => {
                // Shown as "vault: MESSAGE"; the message says everything, so no source is kept
                // (front ends would print it again as the cause). The kind comes from the
                // variant, never from the text.
                let kind = match &other {
                    Error::Unreachable { .. } | Error::Sealed { .. } => paved_core::ErrorKind::Unavailable,
                    Error::Api { status, .. } if *status == 429 || *status >= 500 => paved_core::ErrorKind::Unavailable,
                    Error::TokenExpired { .. } | Error::PermissionDenied { .. } => paved_core::ErrorKind::Denied,
                    _ => paved_core::ErrorKind::Internal,
                };
                let text = other.to_string();
                let message = text
                    .strip_prefix("vault at ")
                    .or_else(|| text.strip_prefix("vault "))
                    .map_or_else(|| text.clone(), str::to_string);
                let backend = "vault".to_string();
                match kind {
                    paved_core::ErrorKind::Unavailable => {
                        paved_core::Error::Unavailable { backend, message, hint, source: None }
                    }
                    paved_core::ErrorKind::Denied => paved_core::Error::Denied { backend, message, hint },
                    _ => paved_core::Error::Backend { backend, message, hint, source: None },
                }
            }
        }
    }
}
