//! The error type of `paved-metrics`.

use std::path::PathBuf;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with the ledger and its reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ledger database failed.
    #[error("ledger {}: {source}", path.display())]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The ledger was written by a newer paved.
    #[error("ledger {} has schema version {found}, newer than this paved supports ({supported})", path.display())]
    SchemaTooNew {
        /// The ledger file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// An event or query parameter is not valid.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The field, flag or JSON key.
        field: String,
        /// The value as given.
        value: String,
        /// Why it is rejected.
        reason: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// Reading input failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        Error::Invalid { field: field.into(), value: value.into(), reason: reason.into(), hint }
    }

    /// How to fix the error, when there is a hint.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Invalid { hint, .. } => hint.as_deref(),
            Error::SchemaTooNew { .. } => Some("upgrade paved, or use another `state_dir`"),
            Error::Ledger { .. } => Some("check that the state directory is writable and the file is a paved ledger"),
            Error::Io { .. } => None,
        }
    }
}

impl From<Error> for paved_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { field, value, reason, hint } => {
                paved_core::Error::InvalidInput { field: field.into(), value, reason, hint }
            }
            Error::Io { path, source } => paved_core::Error::Io { path, source },
            other => {
                let hint = other.hint().map(str::to_string);
                paved_core::Error::Backend {
                    backend: "ledger".into(),
                    message: other.to_string(),
                    hint,
                    source: Some(Box::new(other)),
                }
            }
        }
    }
}
