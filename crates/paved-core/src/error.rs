//! The error type of `paved-core`, shared by every golden-path trait.
//!
//! Every user-facing error carries a **hint**: one sentence that says how to fix it
//! (`did you mean "production"?`). Front ends print it under the message; the CLI maps
//! [`Error::is_user_error`] to exit code 2 and everything else to exit code 1.

use std::fmt;
use std::path::PathBuf;

use crate::policy::Violation;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong on a golden path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value supplied by the user (flag, request field, file content) is not valid.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// The name of the field or flag, e.g. `app` or `cpu-limit`.
        field: &'static str,
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
            | Error::Rollout { hint, .. } => hint.as_deref(),
            Error::PolicyDenied { violations } => violations.first().and_then(|v| v.hint.as_deref()),
            Error::Io { .. } => None,
        }
    }

    /// `true` when the error is caused by what the user typed or wrote (bad input, bad
    /// configuration, unknown names): front ends report these as usage errors (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidInput { .. } | Error::Config { .. } | Error::Manifest { .. } | Error::NotFound { .. }
        )
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) -> Self {
        Error::InvalidInput { field, value: value.into(), reason: reason.into(), hint: hint.into() }
    }

    /// Shorthand for [`Error::Backend`] without a source.
    pub fn backend(backend: impl Into<String>, message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Backend { backend: backend.into(), message: message.into(), hint: hint.into(), source: None }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
