//! The error type of `paved-core`, shared by every golden-path trait.
//!
//! Every user-facing error carries a **hint**: one sentence that says how to fix it
//! (`did you mean "production"?`). Front ends print it under the message.
//!
//! Every error has an [`ErrorKind`] ([`Error::kind`]) that front ends map without reading the
//! message: the CLI to exit codes, an HTTP server to status codes, Python to exception classes.
//!
//! | kind | meaning | CLI exit | HTTP |
//! |---|---|---|---|
//! | [`ErrorKind::InvalidInput`] | bad flag, request field, file or configuration | 2 | 400 / 422 |
//! | [`ErrorKind::NotFound`] | a named release, revision, secret or database does not exist | 2 | 404 |
//! | [`ErrorKind::Conflict`] | the state does not allow it now (a lock, a concurrent change, a field owned by another manager) | 1 | 409 |
//! | [`ErrorKind::Denied`] | organisation policy or a backend's authorisation refused it | 1 | 403 |
//! | [`ErrorKind::Unavailable`] | a backend cannot be reached or is not ready; the app did not become available | 1 | 503 |
//! | [`ErrorKind::Timeout`] | an operation did not finish in time | 1 | 504 |
//! | [`ErrorKind::Internal`] | anything else: a backend failed, a file could not be written | 1 | 500 |

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use crate::policy::Violation;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is, for front ends that map errors to exit codes, HTTP
/// statuses or exception classes (see the table in the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// What the user gave (a flag, a request field, a file, the configuration) is not valid.
    InvalidInput,
    /// Something the user named does not exist.
    NotFound,
    /// The current state does not allow the action (a lock, a concurrent change, an ownership conflict).
    Conflict,
    /// Organisation policy or a backend's authorisation refused the action.
    Denied,
    /// A backend cannot be reached or is not ready, or the app did not become available.
    Unavailable,
    /// An operation did not finish in time.
    Timeout,
    /// Any other failure.
    Internal,
}

impl ErrorKind {
    /// The kind's name in `snake_case` (`invalid_input`, `not_found`, …), as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Denied => "denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// `true` for kinds caused by what the user typed or wrote ([`ErrorKind::InvalidInput`],
    /// [`ErrorKind::NotFound`]): front ends report these as usage errors.
    pub fn is_user_error(self) -> bool {
        matches!(self, ErrorKind::InvalidInput | ErrorKind::NotFound)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong on a golden path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value supplied by the user (flag, request field, file content) is not valid.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// The name of the field in library terms (a request field, a configuration key, a
        /// parameter), e.g. `app` or `cpu_limit`. Owned, so a backend can name its own fields.
        field: Cow<'static, str>,
        /// The value as the user gave it.
        value: String,
        /// Why it is rejected.
        reason: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The organisation configuration (`paved.toml`) is not valid.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// The 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// A manifest file given as an escape hatch (overlay, extra manifest) is not valid.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// Something the user named does not exist (a release, a revision, a secret).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The organisation's policies denied the action; nothing was applied.
    #[error("denied by policy: {}", Violations(violations))]
    PolicyDenied {
        /// Every denying violation, in evaluation order.
        violations: Vec<Violation>,
    },
    /// A backend (deploy target, secret store, provisioner, metrics sink) failed.
    #[error("{backend}: {message}")]
    Backend {
        /// The backend's name, e.g. `gitops` or `vault`.
        backend: String,
        /// What failed.
        message: String,
        /// How to fix it.
        hint: Option<String>,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A rollout failed or timed out in the target. When `restored` is set, the target
    /// re-applied that earlier revision and it is live again.
    #[error("{target}: {message}")]
    Rollout {
        /// The target's name, e.g. `kube`.
        target: String,
        /// What failed (and, when it rolled back, what was restored).
        message: String,
        /// How to find out more or fix it.
        hint: Option<String>,
        /// The revision that was restored (as a new revision), if any.
        restored: Option<crate::release::Revision>,
    },
    /// The current state does not allow the action: a deploy lock is held, another change
    /// happened at the same time, a field is owned by another manager.
    #[error("{what}: {message}")]
    Conflict {
        /// What is in conflict (a release, a database, an object).
        what: String,
        /// What the conflict is.
        message: String,
        /// How to resolve it.
        hint: Option<String>,
    },
    /// A backend refused the credentials or the permission (not organisation policy, which is
    /// [`Error::PolicyDenied`]).
    #[error("{backend}: {message}")]
    Denied {
        /// The backend's name, e.g. `vault` or `kube`.
        backend: String,
        /// What was refused.
        message: String,
        /// How to get access.
        hint: Option<String>,
    },
    /// A backend cannot be reached or is not ready (connection refused, sealed, rate-limited,
    /// a server error after retries).
    #[error("{backend}: {message}")]
    Unavailable {
        /// The backend's name, e.g. `vault` or `kube`.
        backend: String,
        /// What failed.
        message: String,
        /// How to fix it.
        hint: Option<String>,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// An operation did not finish within its time limit.
    #[error("{backend}: {operation} did not finish within {}", humantime(*after))]
    Timeout {
        /// The backend's name, e.g. `notify` or `kube`.
        backend: String,
        /// What was running.
        operation: String,
        /// The limit that ran out.
        after: std::time::Duration,
        /// How to fix it.
        hint: Option<String>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn humantime(d: std::time::Duration) -> String {
    match d.as_millis() {
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}

struct Violations<'a>(&'a [Violation]);

impl fmt::Display for Violations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {}", v.policy, v.message)?;
        }
        Ok(())
    }
}

impl Error {
    /// The hint that says how to fix this error, if there is one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::InvalidInput { hint, .. }
            | Error::Config { hint, .. }
            | Error::Manifest { hint, .. }
            | Error::NotFound { hint, .. }
            | Error::Backend { hint, .. }
            | Error::Conflict { hint, .. }
            | Error::Denied { hint, .. }
            | Error::Unavailable { hint, .. }
            | Error::Timeout { hint, .. }
            | Error::Rollout { hint, .. } => hint.as_deref(),
            Error::PolicyDenied { violations } => violations.first().and_then(|v| v.hint.as_deref()),
            Error::Io { .. } => None,
        }
    }

    /// What kind of failure this is; front ends map it to exit codes, HTTP statuses and
    /// exception classes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput { .. } | Error::Config { .. } | Error::Manifest { .. } => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::PolicyDenied { .. } | Error::Denied { .. } => ErrorKind::Denied,
            // The app did not become available (a failed or timed-out rollout).
            Error::Unavailable { .. } | Error::Rollout { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Backend { .. } | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// `true` when the error is caused by what the user typed or wrote (bad input, bad
    /// configuration, unknown names): front ends report these as usage errors (exit code 2).
    pub fn is_user_error(&self) -> bool {
        self.kind().is_user_error()
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) -> Self {
        Error::InvalidInput { field: field.into(), value: value.into(), reason: reason.into(), hint: hint.into() }
    }

    /// Shorthand for [`Error::Backend`] without a source.
    pub fn backend(backend: impl Into<String>, message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Backend { backend: backend.into(), message: message.into(), hint: hint.into(), source: None }
    }

    /// Shorthand for [`Error::Unavailable`] without a source.
    pub fn unavailable(
        backend: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) -> Self {
        Error::Unavailable { backend: backend.into(), message: message.into(), hint: hint.into(), source: None }
    }

    /// An input file the user named that cannot be read: bad input ([`Error::Manifest`]),
    /// with a hint by cause.
    pub fn unreadable_file(path: impl Into<PathBuf>, e: &std::io::Error) -> Self {
        Error::Manifest {
            path: path.into(),
            line: None,
            message: format!("cannot read the file: {e}"),
            hint: Some(match e.kind() {
                std::io::ErrorKind::NotFound => "check the path; it is relative to the current directory".into(),
                _ => "check that the file is readable".into(),
            }),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_variants() {
        let invalid = Error::invalid("app", "My_App", "is not a DNS label", None);
        assert_eq!((invalid.kind(), invalid.is_user_error()), (ErrorKind::InvalidInput, true));
        let missing = Error::NotFound { what: "release".into(), hint: None };
        assert_eq!((missing.kind(), missing.is_user_error()), (ErrorKind::NotFound, true));
        let timeout = Error::Timeout {
            backend: "notify".into(),
            operation: "POST to the payments webhook".into(),
            after: std::time::Duration::from_secs(5),
            hint: Some("check the receiver".into()),
        };
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        assert!(!timeout.is_user_error());
        assert_eq!(timeout.to_string(), "notify: POST to the payments webhook did not finish within 5 s");
        assert_eq!(timeout.hint(), Some("check the receiver"));
        let down = Error::unavailable("vault", "connection refused", None);
        assert_eq!(down.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::PolicyDenied { violations: vec![] }.kind(), ErrorKind::Denied);
        assert_eq!(Error::backend("gitops", "disk full", None).kind(), ErrorKind::Internal);
        assert_eq!(ErrorKind::InvalidInput.to_string(), "invalid_input");
        assert_eq!(serde_json::to_value(ErrorKind::NotFound).unwrap(), serde_json::json!("not_found"));
    }
}
