//! Secret stores: `paved._paved.StoreCore` over Vault / OpenBao KV v2 or AWS Secrets
//! Manager, assembled from the configuration and the environment as the CLI does, and
//! `paved._paved.Secret`, a value that never shows itself unless asked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use paved::aws::SecretsManagerStore;
use paved::vault::VaultSecretStore;
use paved::{Assembly, OrgConfig, SecretMap, SecretStore};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::convert::Json;
use crate::errors::{invalid, py_result, to_pyerr};
use crate::runtime::run;

/// A secret value: `repr` and `str` are masked; `reveal()` gives the value.
#[pyclass(frozen, module = "paved._paved")]
pub(crate) struct Secret {
    value: SecretString,
}

#[pymethods]
impl Secret {
    #[new]
    fn new(value: String) -> Self {
        Secret { value: SecretString::from(value) }
    }

    /// The value.
    fn reveal(&self) -> String {
        self.value.expose_secret().to_string()
    }

    fn __repr__(&self) -> &'static str {
        "Secret('********')"
    }

    fn __str__(&self) -> &'static str {
        "********"
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Secret>().is_ok_and(|o| o.get().value.expose_secret() == self.value.expose_secret())
    }

    fn __hash__(&self) -> u64 {
        // Equal secrets hash equal; the hash says nothing useful about the value.
        0
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err("a paved.Secret is not pickled; reveal() it on purpose if it must travel"))
    }
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Vault,
    SecretsManager,
}

/// A connected store.
#[derive(Clone)]
enum Backend {
    Vault(VaultSecretStore),
    SecretsManager(Arc<SecretsManagerStore>),
}

impl Backend {
    fn store(&self) -> &dyn SecretStore {
        match self {
            Backend::Vault(v) => v,
            Backend::SecretsManager(s) => s.as_ref(),
        }
    }
}

struct Inner {
    kind: Kind,
    config: OrgConfig,
    mount: Option<String>,
    /// The connected store of this process (a child after `fork` connects again).
    connected: Mutex<Option<(u32, Backend)>>,
}

impl Inner {
    async fn backend(&self) -> paved::Result<Backend> {
        let pid = std::process::id();
        {
            let mut slot = self.connected.lock().unwrap_or_else(PoisonError::into_inner);
            match &*slot {
                Some((owner, b)) if *owner == pid => return Ok(b.clone()),
                Some(_) => std::mem::forget(slot.take()),
                None => {}
            }
        }
        let assembly = Assembly::new(self.config.clone());
        let backend = match self.kind {
            Kind::Vault => {
                let store = assembly.vault_store().await?;
                Backend::Vault(match &self.mount {
                    Some(m) => store.with_mount(m.clone()),
                    None => store,
                })
            }
            Kind::SecretsManager => Backend::SecretsManager(Arc::new(assembly.secrets_manager_store()?)),
        };
        *self.connected.lock().unwrap_or_else(PoisonError::into_inner) = Some((pid, backend.clone()));
        Ok(backend)
    }
}

/// A secret store; the Python classes `VaultStore`, `SecretsManagerStore` and their async
/// twins wrap it.
#[pyclass(frozen, module = "paved._paved")]
pub(crate) struct StoreCore {
    inner: Arc<Inner>,
}

/// The secrets of a read, as a dict of `Secret`s (built when the read finishes).
struct Secrets(SecretMap);

impl<'py> IntoPyObject<'py> for Secrets {
    type Target = PyDict;
    type Output = Bound<'py, PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let dict = PyDict::new(py);
        for (k, v) in self.0 {
            dict.set_item(k, Secret { value: v })?;
        }
        Ok(dict)
    }
}

/// Values to write: `str` or `Secret`, under keys without whitespace, at least one (as
/// `paved secrets put` takes them). Only keys are ever echoed in errors.
fn secret_map(py: Python<'_>, data: &Bound<'_, PyDict>) -> PyResult<SecretMap> {
    let usage = || Some("give {\"KEY\": \"value\"}, keys without whitespace".to_string());
    if data.is_empty() {
        return Err(to_pyerr(py, &invalid("data", "{}", "no key given", usage())));
    }
    let mut map = BTreeMap::new();
    for (k, v) in data.iter() {
        let key: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!("data: keys must be str, not {}", crate::convert::type_name(&k)))
        })?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(to_pyerr(py, &invalid("data", key.as_str(), "is not a valid key", usage())));
        }
        let value = if let Ok(s) = v.cast::<Secret>() {
            s.get().value.clone()
        } else if let Ok(s) = v.cast::<PyString>() {
            SecretString::from(s.to_str()?.to_string())
        } else {
            return Err(PyTypeError::new_err(format!(
                "data[{key:?}]: a {} is not a secret value (use str or paved.Secret)",
                crate::convert::type_name(&v)
            )));
        };
        map.insert(key, value);
    }
    Ok(map)
}

impl StoreCore {
    /// Runs `work` on the connected store, blocking or as an awaitable.
    fn call<'py, F, Fut>(&self, py: Python<'py>, asynchronous: bool, work: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Backend) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = paved::Result<Value>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let work = async move {
            let result = async { work(inner.backend().await?).await }.await;
            py_result(result).map(Json)
        };
        run(py, asynchronous, work, None, None)
    }
}

#[pymethods]
impl StoreCore {
    #[new]
    #[pyo3(signature = (kind, config=None, mount=None))]
    fn new(py: Python<'_>, kind: &str, config: Option<&Bound<'_, PyAny>>, mount: Option<String>) -> PyResult<Self> {
        let kind = match kind {
            "vault" => Kind::Vault,
            "aws-sm" => Kind::SecretsManager,
            other => return Err(to_pyerr(py, &invalid("kind", other, "is not a secret store", None))),
        };
        if kind == Kind::SecretsManager && mount.is_some() {
            return Err(to_pyerr(py, &invalid("mount", "", "applies to Vault only", None)));
        }
        let mount = mount.map(|m| m.trim_matches('/').to_string());
        if mount.as_deref() == Some("") {
            return Err(to_pyerr(
                py,
                &invalid("mount", "", "is empty", Some("name a KV v2 mount, e.g. \"secret\"".into())),
            ));
        }
        let config = crate::platform::load_config(config)?;
        Ok(StoreCore { inner: Arc::new(Inner { kind, config, mount, connected: Mutex::new(None) }) })
    }

    #[pyo3(signature = (path, version, asynchronous))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        path: String,
        version: Option<u64>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        let work = async move {
            let backend = py_result(inner.backend().await)?;
            let map = match (&backend, version) {
                (_, None) => backend.store().get(&path).await,
                (Backend::Vault(v), Some(n)) => v.read_version(&path, n).await.map_err(paved::Error::from),
                (Backend::SecretsManager(s), Some(n)) => s.get_version(&path, n).await,
            };
            py_result(map).map(Secrets)
        };
        if asynchronous {
            crate::runtime::awaitable(py, work)
        } else {
            let secrets = crate::runtime::block_on(py, work, None, None)?;
            Ok(secrets.into_pyobject(py)?.into_any())
        }
    }

    #[pyo3(signature = (path, data, asynchronous))]
    fn put<'py>(
        &self,
        py: Python<'py>,
        path: String,
        data: &Bound<'py, PyDict>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = secret_map(py, data)?;
        self.call(py, asynchronous, move |b| async move { Ok(json!(b.store().put(&path, data).await?)) })
    }

    #[pyo3(signature = (prefix, asynchronous))]
    fn list<'py>(&self, py: Python<'py>, prefix: String, asynchronous: bool) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, asynchronous, move |b| async move { Ok(json!(b.store().list(&prefix).await?)) })
    }

    #[pyo3(signature = (path, asynchronous))]
    fn delete<'py>(&self, py: Python<'py>, path: String, asynchronous: bool) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, asynchronous, move |b| async move {
            b.store().delete(&path).await?;
            Ok(Value::Null)
        })
    }

    /// The versions of the secret at `path`, oldest first, as dicts: `version`, `created`,
    /// `deleted` and `destroyed` (Vault), or `stages` (Secrets Manager).
    #[pyo3(signature = (path, asynchronous))]
    fn versions<'py>(&self, py: Python<'py>, path: String, asynchronous: bool) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, asynchronous, move |b| async move {
            Ok(match b {
                Backend::Vault(v) => {
                    let m = v.metadata(&path).await?;
                    let rows = m.versions.iter().map(|(n, meta)| {
                        json!({"version": n, "created": meta.created_time,
                            "deleted": meta.deletion_time.as_deref().is_some_and(|t| !t.is_empty()),
                            "destroyed": meta.destroyed})
                    });
                    Value::Array(rows.collect())
                }
                Backend::SecretsManager(s) => {
                    let rows = s.versions(&path).await?.into_iter();
                    Value::Array(
                        rows.map(|v| json!({"version": v.version, "created": v.created, "stages": v.stages})).collect(),
                    )
                }
            })
        })
    }

    /// Where the store is: the Vault address and mount, or `aws-sm`.
    fn describe(&self, py: Python<'_>) -> PyResult<String> {
        let inner = self.inner.clone();
        crate::runtime::block_on(
            py,
            async move {
                Ok(match py_result(inner.backend().await)? {
                    Backend::Vault(v) => format!("{}/v1/{}", v.address().trim_end_matches('/'), v.mount()),
                    Backend::SecretsManager(_) => "aws-sm".to_string(),
                })
            },
            None,
            None,
        )
    }
}
