//! `paved._paved.Core`: the platform `paved.toml` describes, assembled by the library
//! ([`paved::Assembly`]) as the CLI assembles it, with Python's arguments as requests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use paved::{
    Action, AppName, Assembled, Assembly, Component, CpuQuantity, DatabaseRequest, DatabaseSelector, DeployRequest,
    DeprovisionOptions, KubeOptions, ManifestFile, MemoryQuantity, OrgConfig, Overrides, Team,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Value, json};

use crate::convert::{Json, from_py};
use crate::errors::{invalid, py_result};
use crate::runtime::{OnInterrupt, run};

/// What a call may change in the assembly: whether events are recorded, the target of its
/// environment, the kube target's rollout settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Variant {
    record: bool,
    /// `(environment, target)`; no environment: every environment (`list`).
    target: Option<(Option<String>, String)>,
    timeout_ms: Option<u128>,
    auto_rollback: Option<bool>,
    force_conflicts: Option<bool>,
    history_max: Option<usize>,
}

/// The shared state of a `Core`: configuration and the assembled platforms of this process.
struct Inner {
    config: OrgConfig,
    state_dir: PathBuf,
    actor: Option<String>,
    /// `PAVED_ACTOR`, else the git user, as the CLI records them (looked up once).
    default_actor: std::sync::OnceLock<Option<String>>,
    kube: KubeOptions,
    /// Assembled platforms per variant, for the process that assembled them (a child after
    /// `fork` assembles its own: clients and their connections belong to the parent's runtime).
    cache: Mutex<(u32, HashMap<Variant, Arc<Assembled>>)>,
}

impl Inner {
    async fn assembled(&self, variant: Variant) -> paved::Result<Arc<Assembled>> {
        let pid = std::process::id();
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.0 != pid {
                // The parent's clients cannot be used or dropped safely here.
                std::mem::forget(std::mem::take(&mut cache.1));
                cache.0 = pid;
            }
            if let Some(a) = cache.1.get(&variant) {
                return Ok(a.clone());
            }
        }
        let mut config = self.config.clone();
        if let Some((env, target)) = &variant.target {
            for (name, e) in config.environments.iter_mut() {
                if env.as_ref().is_none_or(|env| env == name) {
                    e.target = target.clone();
                }
            }
        }
        let mut kube = self.kube.clone();
        kube.timeout = variant.timeout_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)));
        kube.auto_rollback = variant.auto_rollback;
        kube.force_conflicts = variant.force_conflicts;
        kube.history_max = variant.history_max;
        let mut assembly = Assembly::new(config)
            .state_dir(&self.state_dir)
            .record_events(variant.record)
            .kube(kube)
            .on_progress(crate::progress::dispatch);
        // Who acts matters only to what is recorded (and asking git costs a process or two).
        let actor = match &self.actor {
            Some(actor) => Some(actor.clone()),
            None if variant.record => self.default_actor.get_or_init(paved::assembly::actor_from_environment).clone(),
            None => None,
        };
        if let Some(actor) = actor {
            assembly = assembly.actor(actor);
        }
        let assembled = Arc::new(assembly.build().await?);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.1.entry(variant).or_insert(assembled).clone())
    }

    /// Waits for the deploy targets of every assembled platform to finish restoring after an
    /// interrupted call.
    async fn settle(self: Arc<Self>) -> Vec<String> {
        let all: Vec<Arc<Assembled>> = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            // A child after `fork` has nothing of the parent's to wait for.
            if cache.0 != std::process::id() {
                return Vec::new();
            }
            cache.1.values().cloned().collect()
        };
        let mut reports = Vec::new();
        for a in all {
            reports.extend(a.settle().await);
        }
        reports
    }
}

/// The configuration of `config`: `None` discovers `paved.toml` as the CLI does, a path
/// loads that file, a dict is the file's content.
pub(crate) fn load_config(config: Option<&Bound<'_, PyAny>>) -> PyResult<OrgConfig> {
    let Some(config) = config.filter(|c| !c.is_none()) else {
        return py_result(OrgConfig::discover(None));
    };
    if config.cast::<PyDict>().is_ok() {
        let value = from_py(config, "config")?;
        let text = toml::to_string(&value).map_err(|e| {
            Python::attach(|py| {
                crate::errors::to_pyerr(
                    py,
                    &invalid(
                        "config",
                        "dict",
                        format!("is not a paved.toml document: {e}"),
                        Some("use the keys and tables of paved.toml; TOML has no null".into()),
                    ),
                )
            })
        })?;
        return py_result(OrgConfig::parse("<config dict>", &text));
    }
    let path: PathBuf = config.extract()?;
    py_result(OrgConfig::discover(Some(&path)))
}

/// The platform of a configuration; the Python classes `Platform` and `AsyncPlatform` wrap it.
#[pyclass(frozen, module = "paved._paved")]
pub(crate) struct Core {
    inner: Arc<Inner>,
}

/// Reads an optional key of an argument dict.
fn opt<'py, T: FromPyObjectOwned<'py>>(args: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match args.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract::<T>().map_err(Into::into)?)),
        _ => Ok(None),
    }
}

/// Reads a required key of an argument dict.
fn req<'py, T: FromPyObjectOwned<'py>>(args: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    opt(args, key)?.ok_or_else(|| pyo3::exceptions::PyTypeError::new_err(format!("missing argument {key}")))
}

use pyo3::conversion::FromPyObjectOwned;

/// The deploy request of `args` (the keyword arguments of `Platform.deploy`); every value is
/// checked here, before anything runs.
fn deploy_request(args: &Bound<'_, PyDict>) -> PyResult<DeployRequest> {
    let app: String = req(args, "app")?;
    let image: String = req(args, "image")?;
    let env: String = req(args, "env")?;
    let cpu = |key: &'static str| -> PyResult<Option<CpuQuantity>> {
        opt::<String>(args, key)?.map(|v| py_result(CpuQuantity::parse_field(key, v))).transpose()
    };
    let memory = |key: &'static str| -> PyResult<Option<MemoryQuantity>> {
        opt::<String>(args, key)?.map(|v| py_result(MemoryQuantity::parse_field(key, v))).transpose()
    };
    let manifests = |key: &str| -> PyResult<Vec<ManifestFile>> {
        let paths: Vec<PathBuf> = opt(args, key)?.unwrap_or_default();
        paths.iter().map(|p| py_result(ManifestFile::load(p))).collect()
    };
    let mut request = py_result(DeployRequest::new(&app, &image, &env))?;
    request.replicas = count(args, "replicas")?;
    request.team = opt::<String>(args, "team")?.map(|t| py_result(Team::new(&t))).transpose()?;
    let mut o = Overrides::default();
    o.cpu_request = cpu("cpu_request")?;
    o.cpu_limit = cpu("cpu_limit")?;
    o.memory_request = memory("memory_request")?;
    o.memory_limit = memory("memory_limit")?;
    o.custom_manifests = manifests("custom_manifests")?;
    o.extra_manifests = manifests("extra_manifests")?;
    let disabled: Vec<String> = opt(args, "disable")?.unwrap_or_default();
    o.disabled = disabled
        .iter()
        .map(|name| {
            Component::ALL.into_iter().find(|c| c.as_str() == name).ok_or_else(|| {
                let names: Vec<&str> = Component::ALL.iter().map(|c| c.as_str()).collect();
                Python::attach(|py| {
                    crate::errors::to_pyerr(
                        py,
                        &invalid(
                            "disable",
                            name.as_str(),
                            "is not a component",
                            Some(format!("one of {}", names.join(", "))),
                        ),
                    )
                })
            })
        })
        .collect::<PyResult<_>>()?;
    let secrets: Vec<(String, String)> = opt::<HashMap<String, String>>(args, "secrets")?
        .map(|m| {
            let mut v: Vec<(String, String)> = m.into_iter().collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    request.secrets = secrets
        .iter()
        .map(|(name, reference)| {
            // A value given where a reference belongs must not show up in the error.
            if let Err(e) = paved::SecretRef::new(reference) {
                let hidden = invalid(
                    &format!("secrets[{name:?}]"),
                    "(value hidden)",
                    "is not a secret reference",
                    Some(format!(
                        "give where the value is, e.g. \"vault://secret/{{team}}/{{app}}#password\" or \"aws-sm://NAME#KEY\", never the value ({})",
                        e.kind().as_str()
                    )),
                );
                return Err(Python::attach(|py| crate::errors::to_pyerr(py, &hidden)));
            }
            if name.contains('=') {
                return Err(Python::attach(|py| {
                    crate::errors::to_pyerr(py, &invalid("secrets", name.as_str(), "is not an environment variable name", None))
                }));
            }
            py_result(format!("{name}={reference}").parse())
        })
        .collect::<PyResult<_>>()?;
    Ok(request.with_overrides(o))
}

/// A non-negative integer argument (`replicas`, `to`, `max`, …) or an `InvalidInput` naming it.
fn count<T: TryFrom<i64>>(args: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<T>> {
    int_arg(args.get_item(key)?.as_ref(), key)
}

/// A non-negative integer, or an `InvalidInput` naming `key`.
fn int_arg<T: TryFrom<i64>>(value: Option<&Bound<'_, PyAny>>, key: &str) -> PyResult<Option<T>> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    let bad = |shown: String| {
        Python::attach(|py| {
            crate::errors::to_pyerr(
                py,
                &invalid(key, shown, "is not a count", Some("give a whole number, 0 or more".into())),
            )
        })
    };
    let n: i64 = value.extract().map_err(|_| bad(value.to_string()))?;
    if n < 0 {
        return Err(bad(n.to_string()));
    }
    T::try_from(n).map(Some).map_err(|_| bad(n.to_string()))
}

/// The assembly variant of a call's options (`target`, `timeout`, `rollback`, …) for `env`
/// (`None`: every environment). Options of the kube target on an environment of another
/// target are refused, as the CLI refuses its flags: they would do nothing.
fn variant(config: &OrgConfig, options: &Bound<'_, PyDict>, record: bool, env: Option<&str>) -> PyResult<Variant> {
    let fail = |e: paved::Error| Python::attach(|py| crate::errors::to_pyerr(py, &e));
    let target: Option<String> = opt(options, "target")?;
    if let Some(t) = &target
        && !["kube", "gitops"].contains(&t.as_str())
    {
        let hint = paved::suggest::did_you_mean(t, ["kube", "gitops"])
            .map_or_else(|| "use \"kube\" or \"gitops\"".to_string(), |c| format!("did you mean \"{c}\"?"));
        return Err(fail(invalid("target", t.as_str(), "is not a deploy target", Some(hint))));
    }
    let timeout: Option<f64> = opt(options, "timeout")?;
    if let Some(t) = timeout
        && !(t >= 1.0 && t.is_finite())
    {
        return Err(fail(invalid(
            "timeout",
            t.to_string(),
            "must be at least 1 second",
            Some("e.g. timeout=300".into()),
        )));
    }
    let variant = Variant {
        record,
        target: target.map(|t| (env.map(str::to_string), t)),
        timeout_ms: timeout.map(|t| (t * 1000.0) as u128),
        auto_rollback: opt(options, "rollback")?,
        force_conflicts: opt(options, "force_conflicts")?,
        history_max: count(options, "history_max")?,
    };
    let kube_options: Vec<&str> = [
        ("timeout=", variant.timeout_ms.is_some()),
        ("rollback=", variant.auto_rollback.is_some()),
        ("force_conflicts=", variant.force_conflicts.is_some()),
        ("history_max=", variant.history_max.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    let target = variant.target.as_ref().map(|(_, t)| t.as_str());
    paved::assembly::refuse_kube_only(config, env, target, ("option", &kube_options), "target=\"kube\"")
        .map_err(fail)?;
    Ok(variant)
}

/// A deploy outcome as the CLI's `-o json` document.
fn outcome_doc(outcome: &paved::DeployOutcome, dry_run: bool) -> Value {
    let mut value = serde_json::to_value(outcome).unwrap_or_default();
    value["dry_run"] = dry_run.into();
    value
}

/// `team`, `service`, `engine`, `env`, `size`, `server`, `backend` as a database request.
fn database_request(args: &Bound<'_, PyDict>) -> PyResult<(DatabaseRequest, DatabaseSelector)> {
    let size: String = opt(args, "size")?.unwrap_or_else(|| "small".to_string());
    let request = py_result(DatabaseRequest::new(
        &req::<String>(args, "team")?,
        &req::<String>(args, "service")?,
        &req::<String>(args, "engine")?,
        &req::<String>(args, "env")?,
        &size,
    ))?;
    let mut select = DatabaseSelector::any();
    if let Some(server) = opt::<String>(args, "server")? {
        select = select.server(server);
    }
    if let Some(backend) = opt::<String>(args, "backend")? {
        select = select.backend(backend);
    }
    Ok((request, select))
}

impl Core {
    /// Runs `work` on an assembled platform, with the call's progress callback.
    fn call<'py, F, Fut>(
        &self,
        py: Python<'py>,
        variant: Variant,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
        work: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Arc<Assembled>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = paved::Result<Value>> + Send + 'static,
    {
        if !asynchronous && variant.record && crate::progress::in_callback() {
            return Err(crate::errors::to_pyerr(
                py,
                &paved::Error::Conflict {
                    what: "progress callback".into(),
                    message: "cannot deploy, roll back or destroy from inside a progress callback".into(),
                    hint: Some(
                        "the call reporting progress is paused while its callback runs, holding its app's lock: make the change after it returns".into(),
                    ),
                },
            ));
        }
        let (sink, reports) = match progress {
            None => (None, None),
            Some(callable) if asynchronous => {
                let event_loop = pyo3_async_runtimes::get_running_loop(py)?.unbind();
                (Some(Arc::new(crate::progress::Sink::Loop { event_loop, callable })), None)
            }
            Some(callable) => {
                let (sink, reports) = crate::progress::Reports::channel(callable);
                (Some(sink), Some(reports))
            }
        };
        let inner = self.inner.clone();
        let fut = crate::progress::scope(sink, async move {
            let assembled = py_result(inner.assembled(variant).await)?;
            py_result(work(assembled).await).map(Json)
        });
        let inner = self.inner.clone();
        let on_interrupt: OnInterrupt = Box::new(move || Box::pin(inner.settle()));
        run(py, asynchronous, fut, Some(on_interrupt), reports)
    }
}

/// `app` and `env` checked against the configuration before anything is dialled.
fn app_env(config: &OrgConfig, app: &str, env: &str) -> PyResult<(AppName, String)> {
    let name = py_result(AppName::new(app))?;
    let env = py_result(config.environment(env))?.name;
    Ok((name, env))
}

#[pymethods]
impl Core {
    #[new]
    #[pyo3(signature = (config=None, state_dir=None, actor=None, kubeconfig=None, context=None))]
    fn new(
        config: Option<&Bound<'_, PyAny>>,
        state_dir: Option<PathBuf>,
        actor: Option<String>,
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
    ) -> PyResult<Self> {
        let config = load_config(config)?;
        let mut kube = KubeOptions::default();
        kube.kubeconfig = kubeconfig;
        kube.context = context;
        let inner = Inner {
            config,
            state_dir: state_dir.unwrap_or_else(|| PathBuf::from(".paved")),
            actor,
            default_actor: std::sync::OnceLock::new(),
            kube,
            cache: Mutex::new((std::process::id(), HashMap::new())),
        };
        Ok(Core { inner: Arc::new(inner) })
    }

    /// The configuration file, if it came from one.
    #[getter]
    fn config_path(&self) -> Option<PathBuf> {
        self.inner.config.source.clone()
    }

    /// The state directory.
    #[getter]
    fn state_dir(&self) -> PathBuf {
        self.inner.state_dir.clone()
    }

    /// The environments of the configuration, by name.
    #[getter]
    fn environments(&self) -> Vec<String> {
        self.inner.config.environments.keys().cloned().collect()
    }

    #[pyo3(signature = (request, options, progress, asynchronous))]
    fn deploy<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
        options: &Bound<'py, PyDict>,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = deploy_request(request)?;
        let dry_run: bool = opt(options, "dry_run")?.unwrap_or(false);
        let variant = variant(&self.inner.config, options, !dry_run, Some(&request.environment))?;
        self.call(py, variant, progress, asynchronous, move |a| async move {
            let platform = a.platform();
            let plan = platform.plan(&request).await?;
            let outcome = if dry_run { platform.preview(&plan).await? } else { platform.apply(plan).await? };
            Ok(outcome_doc(&outcome, dry_run))
        })
    }

    #[pyo3(signature = (request, options, progress, asynchronous))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
        options: &Bound<'py, PyDict>,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = deploy_request(request)?;
        let variant = variant(&self.inner.config, options, false, Some(&request.environment))?;
        self.call(py, variant, progress, asynchronous, move |a| async move {
            let platform = a.platform();
            let plan = platform.plan(&request).await?;
            let objects: Vec<Value> = plan.manifests.iter().map(|m| m.value().clone()).collect();
            let outcome = platform.preview(&plan).await?;
            let mut doc = outcome_doc(&outcome, true);
            doc["target"] = plan.target.clone().into();
            doc["objects"] = Value::Array(objects);
            Ok(doc)
        })
    }

    #[pyo3(signature = (request, progress, asynchronous))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = deploy_request(request)?;
        self.call(py, Variant::default(), progress, asynchronous, move |a| async move {
            let platform = a.platform();
            let app = platform.validate(&request)?;
            let rendered = platform.render(&app)?;
            // What would be applied: the policies (the baseline at least) see it first.
            let (manifests, _) = platform.check_policy(Action::Deploy, &app, rendered).await?;
            Ok(Value::Array(manifests.iter().map(|m| m.value().clone()).collect()))
        })
    }

    #[pyo3(signature = (app, env, options, asynchronous))]
    fn status<'py>(
        &self,
        py: Python<'py>,
        app: &str,
        env: &str,
        options: &Bound<'py, PyDict>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (name, env) = app_env(&self.inner.config, app, env)?;
        let variant = variant(&self.inner.config, options, false, Some(&env))?;
        self.call(py, variant, None, asynchronous, move |a| async move {
            Ok(serde_json::to_value(a.platform().status(&name, &env).await?).unwrap_or_default())
        })
    }

    #[pyo3(signature = (app, env, max, options, asynchronous))]
    fn history<'py>(
        &self,
        py: Python<'py>,
        app: &str,
        env: &str,
        max: Option<Bound<'py, PyAny>>,
        options: &Bound<'py, PyDict>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let max: Option<usize> = int_arg(max.as_ref(), "max")?;
        let (name, env) = app_env(&self.inner.config, app, env)?;
        let variant = variant(&self.inner.config, options, false, Some(&env))?;
        self.call(py, variant, None, asynchronous, move |a| async move {
            let mut history = a.platform().history(&name, &env).await?;
            if history.is_empty() {
                return Err(paved::bookkeeping::not_deployed(&paved::ReleaseKey::new(name, env), None));
            }
            if let Some(max) = max {
                history.truncate(max);
            }
            Ok(serde_json::to_value(history).unwrap_or_default())
        })
    }

    #[pyo3(signature = (app, env, to, options, progress, asynchronous))]
    #[allow(clippy::too_many_arguments)]
    fn rollback<'py>(
        &self,
        py: Python<'py>,
        app: &str,
        env: &str,
        to: Option<Bound<'py, PyAny>>,
        options: &Bound<'py, PyDict>,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let to: Option<u64> = int_arg(to.as_ref(), "to")?;
        let (name, env) = app_env(&self.inner.config, app, env)?;
        let variant = variant(&self.inner.config, options, true, Some(&env))?;
        self.call(py, variant, progress, asynchronous, move |a| async move {
            Ok(serde_json::to_value(a.platform().rollback(&name, &env, to).await?).unwrap_or_default())
        })
    }

    #[pyo3(signature = (app, env, options, progress, asynchronous))]
    fn destroy<'py>(
        &self,
        py: Python<'py>,
        app: &str,
        env: &str,
        options: &Bound<'py, PyDict>,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (name, env) = app_env(&self.inner.config, app, env)?;
        let variant = variant(&self.inner.config, options, true, Some(&env))?;
        self.call(py, variant, progress, asynchronous, move |a| async move {
            Ok(serde_json::to_value(a.platform().destroy(&name, &env).await?).unwrap_or_default())
        })
    }

    #[pyo3(signature = (env, options, asynchronous))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        env: Option<&str>,
        options: &Bound<'py, PyDict>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let env = env.map(|e| py_result(self.inner.config.environment(e)).map(|e| e.name)).transpose()?;
        let variant = variant(&self.inner.config, options, false, env.as_deref())?;
        self.call(py, variant, None, asynchronous, move |a| async move {
            Ok(serde_json::to_value(a.platform().list(env.as_deref()).await?).unwrap_or_default())
        })
    }

    /// Waits for the deploy targets' background work (restoring the previous release after a
    /// cancelled deploy) and returns what they report.
    #[pyo3(signature = (asynchronous))]
    fn settle<'py>(&self, py: Python<'py>, asynchronous: bool) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        run(py, asynchronous, async move { Ok(Json(json!(inner.settle().await))) }, None, None)
    }

    #[pyo3(signature = (request, progress, asynchronous))]
    fn provision_database<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (request, select) = database_request(request)?;
        let variant = Variant { record: true, ..Variant::default() };
        self.call(py, variant, progress, asynchronous, move |a| async move {
            let outcome = a.platform().provision_database(&request, &select).await?;
            let mut doc = serde_json::to_value(outcome.response(&request)).unwrap_or_default();
            let warnings: Vec<String> =
                outcome.policy.warnings().map(|w| w.to_string()).chain(outcome.warnings.iter().cloned()).collect();
            doc["warnings"] = json!(warnings);
            Ok(doc)
        })
    }

    #[pyo3(signature = (request, asynchronous))]
    fn database_status<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (request, select) = database_request(request)?;
        self.call(py, Variant::default(), None, asynchronous, move |a| async move {
            Ok(serde_json::to_value(a.platform().database_status(&request, &select).await?).unwrap_or_default())
        })
    }

    #[pyo3(signature = (request, drop_data, force, progress, asynchronous))]
    fn deprovision_database<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
        drop_data: bool,
        force: bool,
        progress: Option<Py<PyAny>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (request, select) = database_request(request)?;
        let variant = Variant { record: true, ..Variant::default() };
        self.call(py, variant, progress, asynchronous, move |a| async move {
            let options = DeprovisionOptions::new().drop_data(drop_data).force(force);
            let warnings = a.platform().deprovision_database_with(&request, &select, &options).await?;
            Ok(json!({ "deprovisioned": true, "drop_data": drop_data, "warnings": warnings }))
        })
    }
}
