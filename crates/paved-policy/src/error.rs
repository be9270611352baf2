//! The error type of the policy host.

use std::path::{Path, PathBuf};

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a plugin could not be loaded, built or configured. (A plugin that fails *during* an
/// evaluation is not an `Error`: its manifest's `failure_policy` decides, see
/// [`crate::Outcome`].)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `policy.toml` is not valid.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest (with `:line` when known).
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The component does not match the manifest's `sha256` pin.
    #[error("policy {policy}: {} does not match its pin (sha256 {actual}, pinned {expected})", path.display())]
    PinMismatch {
        /// The policy.
        policy: String,
        /// The component.
        path: PathBuf,
        /// The pin in `policy.toml`.
        expected: String,
        /// The component's SHA-256.
        actual: String,
    },
    /// The component cannot be loaded: not a component, imports the host does not provide,
    /// or its metadata disagrees with the manifest.
    #[error("policy {policy}: {message}")]
    Load {
        /// The policy.
        policy: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// Building a plugin from source failed.
    #[error("building {}: {message}", dir.display())]
    Build {
        /// The plugin directory.
        dir: PathBuf,
        /// What failed.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// A tool or target a plugin's build needs is not installed (the Rust target
    /// `wasm32-wasip2`, cargo, componentize-py, componentize-js). Nothing was run; the hint is
    /// the command that installs it.
    #[error("building {}: {message}", dir.display())]
    Toolchain {
        /// The plugin directory.
        dir: PathBuf,
        /// What is not installed, and where it was looked for.
        message: String,
        /// The command that installs it.
        hint: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An error of the platform core (configuration, input).
    #[error(transparent)]
    Core(#[from] paved_core::Error),
}

impl Error {
    /// How to fix it, when known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Manifest { hint, .. } | Error::Load { hint, .. } | Error::Build { hint, .. } => hint.as_deref(),
            Error::Toolchain { hint, .. } => Some(hint),
            Error::PinMismatch { .. } => Some(
                "rebuild and re-pin it with `paved_policy::toolchain::build` if you trust this component; otherwise restore the pinned one",
            ),
            Error::Io { .. } => None,
            Error::Core(e) => e.hint(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// Whether the user can fix it by changing input or files (the CLI exits 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Manifest { .. } | Error::PinMismatch { .. } | Error::Load { .. } | Error::Toolchain { .. } => true,
            Error::Core(e) => e.is_user_error(),
            Error::Build { .. } | Error::Io { .. } => false,
        }
    }
}

impl From<Error> for paved_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            Error::Io { path, source } => paved_core::Error::Io { path, source },
            Error::Manifest { path, message, hint } => paved_core::Error::Config { path, line: None, message, hint },
            // A missing tool is the user's to install (exit 2), with the command that does.
            Error::Toolchain { dir, message, hint } => {
                paved_core::Error::Config { path: dir, line: None, message, hint: Some(hint) }
            }
            // A plugin that cannot be used is a configuration problem the user fixes (exit 2).
            Error::PinMismatch { .. } | Error::Load { .. } => {
                let hint = e.hint().map(str::to_string);
                let text = e.to_string();
                let (what, message) = text.split_once(": ").unwrap_or(("policy", text.as_str()));
                paved_core::Error::Config { path: PathBuf::from(what), line: None, message: message.to_string(), hint }
            }
            other => {
                let hint = other.hint().map(str::to_string);
                paved_core::Error::Backend { backend: "policy".into(), message: other.to_string(), hint, source: None }
            }
        }
    }
}
