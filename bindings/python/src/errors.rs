//! The library's errors as the `paved.errors` classes: the class from the error's kind
//! (never from its text), with `.kind`, `.hint` and, for a policy denial, `.violations`.

use paved::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The `paved.errors` class of an error kind.
fn class_name(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::NotFound => "NotFound",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::Denied if matches!(e, Error::PolicyDenied { .. }) => "PolicyDenied",
        ErrorKind::Denied => "Denied",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Timeout => "Timeout",
        _ => "InternalError",
    }
}

/// `e` as the Python exception of its kind.
pub(crate) fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    build(py, e).unwrap_or_else(|import_failed| import_failed)
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let class = py.import("paved.errors")?.getattr(class_name(e))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("kind", e.kind().as_str())?;
    kwargs.set_item("hint", e.hint())?;
    if let Error::PolicyDenied { violations } = e {
        let value = serde_json::to_value(violations).unwrap_or_default();
        kwargs.set_item("violations", crate::convert::to_py(py, &value)?)?;
    }
    Ok(PyErr::from_value(class.call((e.to_string(),), Some(&kwargs))?))
}

/// A `Result` of the library as a Python result (attaching to build the exception).
pub(crate) fn py_result<T>(result: paved::Result<T>) -> PyResult<T> {
    result.map_err(|e| Python::attach(|py| to_pyerr(py, &e)))
}

/// An invalid argument: the library's invalid-input error, so it is an `InvalidInput`.
pub(crate) fn invalid(
    field: &str,
    value: impl Into<String>,
    problem: impl Into<String>,
    hint: Option<String>,
) -> Error {
    Error::invalid(field.to_string(), value.into(), problem.into(), hint)
}

/// A failure of paved itself (a panic, a join error) as `paved.errors.InternalError`.
pub(crate) fn internal(py: Python<'_>, message: &str) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let class = py.import("paved.errors")?.getattr("InternalError")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("kind", ErrorKind::Internal.as_str())?;
        Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|e| e)
}
