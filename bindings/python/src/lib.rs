//! `paved._paved`: the native core of the `paved` Python package.
//!
//! Every front end calls the library's one assembly ([`paved::Assembly`]); this module turns
//! Python arguments into the library's requests, runs them on one shared tokio runtime with the
//! interpreter released, and turns results into Python objects and errors into the
//! `paved.errors` classes. The Python-facing API (keyword arguments, result classes, the
//! asyncio variants) lives in `python/paved/`.

mod convert;
mod errors;
mod ledger;
mod platform;
mod policy;
mod progress;
mod runtime;
mod stores;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _paved(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<platform::Core>()?;
    m.add_class::<progress::Progress>()?;
    m.add_class::<stores::Secret>()?;
    m.add_class::<stores::StoreCore>()?;
    m.add_class::<ledger::Ledger>()?;
    m.add_class::<policy::PolicySet>()?;
    Ok(())
}
