//! paved's organisation policy host: policies are WebAssembly components implementing the
//! `paved:policy@0.2.0` WIT contract ([`WIT`], `crates/paved-policy/wit`; components built
//! against 0.1.0, [`WIT_0_1`], still run), written in Rust,
//! Python or JavaScript, run sandboxed by wasmtime.
//!
//! - [`PolicyManifest`]: a plugin's `policy.toml` (component, sha256 pin, mode, failure
//!   policy, limits, settings, scope);
//! - [`PolicyHost`]: one engine, the precompiled-component cache, a fresh store and instance
//!   for every evaluation, with wall-clock (epoch), memory, output and optional fuel limits; no
//!   network, no environment, no arguments, files only through read-only directories the
//!   manifest grants;
//! - [`PolicySet`]: the baseline ([`BASELINE`], built-ins compiled from the bundled plugins'
//!   sources) and the organisation's configured policies, evaluated on every golden-path
//!   action; implements [`paved_core::PolicyEngine`] for [`paved_core::Platform`];
//! - `toolchain` (feature `toolchain`): the driver of `paved policy build`, which builds
//!   plugins from source (cargo, componentize-py, componentize-js) and pins them. Only
//!   tools that build plugins enable it; the runtime host never runs a compiler.

mod builtin;
mod cache;
pub mod check;
mod error;
mod fsutil;
mod host;
mod manifest;
mod set;
#[cfg(feature = "toolchain")]
pub mod toolchain;

pub use builtin::{BASELINE, Builtin};
pub use cache::{CacheStatus, ComponentCache};
pub use check::{CheckReport, PolicyCheck};
pub use error::{Error, Result};
pub use host::{CONTRACTS, EPOCH_TICK, Failure, HostOptions, Plugin, PolicyHost, WIT, WIT_0_1, bindings, bindings_0_1};
pub use manifest::{AdmissionOperation, Language, Limits, MANIFEST_FILE, MAX_MEMORY_MIB, PolicyManifest, write_pin};
pub use set::{ActionInput, ConfiguredPolicy, Evaluation, Outcome, PolicyOutcome, PolicySet};

/// The types of the WIT contract (`paved:policy/types@0.2.0`), as the host sees them.
pub mod wit {
    pub use crate::host::bindings::paved::policy::types::*;
}
