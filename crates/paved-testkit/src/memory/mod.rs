//! In-memory reference backends: the behaviour each trait's suite asks for, with nothing
//! behind it. Tests of the [`Platform`](paved_core::Platform) use them where a real service
//! would add nothing to what is tested; each passes its trait's suite
//! ([`crate::behavior`]).

mod db_provisioner;
mod deployer;
mod metrics;
mod secret_store;

pub use db_provisioner::MemoryDbProvisioner;
pub use deployer::MemoryDeployer;
pub use metrics::MemoryMetrics;
pub use secret_store::MemorySecretStore;

/// Locks a mutex, also after a panic in another thread (the data is plain maps).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
