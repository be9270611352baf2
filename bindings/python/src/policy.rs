//! `paved._paved.PolicySet`: policy plugins loaded from paths, checking objects as
//! `paved policy check --output json` does.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use paved::Action;
use paved::policy::{ActionInput, PolicyCheck};
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde_json::Value;

use crate::convert::{from_py, to_py};
use crate::errors::{invalid, py_result, to_pyerr};

/// Loaded policy plugins.
#[pyclass(frozen, module = "paved._paved")]
pub(crate) struct PolicySet {
    paths: Vec<PathBuf>,
    settings: Option<serde_json::Map<String, Value>>,
    /// The plugins loaded in this process: a child after `fork` loads its own (the host's
    /// epoch thread, which enforces time limits, does not exist in a child).
    loaded: Mutex<(u32, Arc<PolicyCheck>)>,
}

impl PolicySet {
    fn loaded(&self, py: Python<'_>) -> PyResult<Arc<PolicyCheck>> {
        let pid = std::process::id();
        {
            let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            if loaded.0 == pid {
                return Ok(loaded.1.clone());
            }
        }
        // Loaded without the lock held (another thread may wait for it holding the interpreter).
        let fresh = Arc::new(py_result(py.detach(|| PolicyCheck::load(&self.paths, self.settings.as_ref())))?);
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.0 != pid {
            std::mem::forget(std::mem::replace(&mut loaded.1, fresh));
            loaded.0 = pid;
        }
        Ok(loaded.1.clone())
    }
}

#[pymethods]
impl PolicySet {
    #[new]
    #[pyo3(signature = (paths, settings=None))]
    fn new(py: Python<'_>, paths: Vec<PathBuf>, settings: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let settings = match settings.map(|s| from_py(s, "settings")).transpose()? {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                return Err(to_pyerr(
                    py,
                    &invalid(
                        "settings",
                        "",
                        "must be a dict",
                        Some("give {\"key\": value} or {\"policy-name\": {…}}".into()),
                    ),
                ));
            }
        };
        if paths.is_empty() {
            return Err(to_pyerr(
                py,
                &invalid("paths", "[]", "no policy given", Some("name plugin directories or .wasm components".into())),
            ));
        }
        let check = py_result(py.detach(|| PolicyCheck::load(&paths, settings.as_ref())))?;
        Ok(PolicySet { paths, settings, loaded: Mutex::new((std::process::id(), Arc::new(check))) })
    }

    /// Checks `objects` (a list of dicts, or YAML/JSON text of one or more documents).
    #[pyo3(signature = (objects, env="production", action="deploy"))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        objects: &Bound<'py, PyAny>,
        env: &str,
        action: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let objects: Vec<Value> = match objects.cast::<PyString>() {
            Ok(text) => {
                py_result(paved::Manifests::from_yaml(text.to_str()?))?.iter().map(|m| m.value().clone()).collect()
            }
            Err(_) => match from_py(objects, "objects")? {
                Value::Array(items) => items,
                object @ Value::Object(_) => vec![object],
                _ => return Err(to_pyerr(py, &invalid("objects", "", "must be a list of dicts or YAML text", None))),
            },
        };
        let action = match action {
            "deploy" => Action::Deploy,
            "rollback" => Action::Rollback,
            "provision-database" | "provision_database" => Action::ProvisionDatabase,
            other => {
                let hint = paved::suggest::hint_for(other, ["deploy", "rollback", "provision-database"]);
                return Err(to_pyerr(py, &invalid("action", other, "is not an action policies check", Some(hint))));
            }
        };
        let mut input = ActionInput::objects(env, objects);
        input.action = action;
        let check = self.loaded(py)?;
        let report = py.detach(|| check.check(&input));
        // The CLI's document, and `failed`: what its exit code says (a denial, also one not tied
        // to an object).
        let mut doc = serde_json::to_value(&report).unwrap_or_default();
        doc["failed"] = report.failed.into();
        to_py(py, &doc)
    }
}
