//! `paved._paved.Ledger`: the event ledger, DORA and adoption, returning exactly the
//! documents of the CLI's `paved events import`, `paved metrics dora` and
//! `paved metrics adoption` with `--output json`.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use paved::metrics::{
    DoraQuery, GroupBy, ImportOptions, Ledger as Inner, format_time, parse_time, window_days as days_of,
};
use paved::{Error, OrgConfig};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyString};
use serde_json::{Value, json};

use crate::convert::{from_py, to_py};
use crate::errors::{invalid, py_result, to_pyerr};

/// The ledger at a path: a state directory (its `events.db`) or the database file, with the
/// configuration whose environments and teams the reports know (discovered as the CLI does).
#[pyclass(frozen, module = "paved._paved")]
pub(crate) struct Ledger {
    path: PathBuf,
    config: OrgConfig,
    /// The open ledger of this process: a child after `fork` opens its own (SQLite connections
    /// must not cross a fork).
    open: Mutex<(u32, Arc<Inner>)>,
}

/// Events from a Python iterable of dicts (or JSON text lines), as the JSON Lines the ledger
/// imports; the interpreter is attached only while the next batch is converted. An error of
/// the iterable or of a conversion ends the input with an I/O error, so nothing of a strict
/// import is kept, and is raised after it.
struct IterReader {
    iter: Py<PyIterator>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    error: Option<PyErr>,
    line: usize,
}

/// Events converted per attach.
const BATCH: usize = 4_096;

impl std::io::Read for IterReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for IterReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.buf.len() && !self.done {
            self.buf.clear();
            self.pos = 0;
            Python::attach(|py| {
                let iter = self.iter.bind(py);
                for _ in 0..BATCH {
                    let item = match iter.clone().next() {
                        None => {
                            self.done = true;
                            break;
                        }
                        Some(item) => item,
                    };
                    self.line += 1;
                    let value = item.and_then(|item| match item.cast::<PyString>() {
                        // A line the ledger reads as text is passed on as it is.
                        Ok(s) => s.to_str().map(|s| Value::String(s.to_string())),
                        Err(_) => from_py(&item, &format!("events[{}]", self.line - 1)),
                    });
                    match value {
                        Ok(Value::String(line)) => self.buf.extend_from_slice(line.trim_end().as_bytes()),
                        Ok(v) => serde_json::to_writer(&mut self.buf, &v).expect("JSON is writable"),
                        Err(e) => {
                            self.error = Some(e);
                            self.done = true;
                            break;
                        }
                    }
                    self.buf.push(b'\n');
                }
            });
        }
        // The events converted before a failure are read first, then the failure (which
        // leaves nothing of a strict import).
        if self.pos >= self.buf.len() && self.error.is_some() {
            return Err(std::io::Error::other("the events' iterable failed"));
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos += amount;
    }
}

/// `now` as Unix seconds: RFC 3339 text, a `datetime`, or the current time.
fn now_of(now: Option<&Bound<'_, PyAny>>) -> PyResult<i64> {
    match now.filter(|n| !n.is_none()) {
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        Some(n) => {
            let text = match from_py(n, "now")? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            py_result(parse_time("now", &text).map_err(Error::from))
        }
    }
}

/// The longest window: a century.
const MAX_WINDOW_DAYS: f64 = 36_525.0;

/// A window of `days` days, between `min_seconds` and a century.
fn window_of(days: f64, min_seconds: f64, why: &str) -> PyResult<i64> {
    let seconds = days * 86_400.0;
    if !(seconds.is_finite() && seconds >= min_seconds && days <= MAX_WINDOW_DAYS) {
        return Err(Python::attach(|py| {
            to_pyerr(
                py,
                &invalid(
                    "window_days",
                    days.to_string(),
                    format!("is out of range ({why}, and at most a century)"),
                    Some("use e.g. window_days=30 (0.5 is 12 hours)".into()),
                ),
            )
        }));
    }
    Ok(seconds as i64)
}

impl Ledger {
    /// The ledger, opened again in a child after `fork`.
    fn ledger(&self) -> PyResult<Arc<Inner>> {
        let pid = std::process::id();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.0 != pid {
            let fresh = Arc::new(py_result(open_at(&self.path))?);
            // The parent's connections are neither used nor closed here.
            std::mem::forget(std::mem::replace(&mut open.1, fresh));
            open.0 = pid;
        }
        Ok(open.1.clone())
    }
}

/// A state directory's ledger, or the database file itself (an existing file, or a path
/// ending in `.sqlite`, `.sqlite3` or `.db`); anything else is a state directory, created if
/// need be, as the CLI's `--state-dir`.
fn open_at(path: &std::path::Path) -> paved::Result<Inner> {
    let file = !path.is_dir()
        && (path.is_file() || path.extension().is_some_and(|e| e == "sqlite" || e == "sqlite3" || e == "db"));
    Ok(if file { Inner::open(path)? } else { Inner::open_in(path)? })
}

#[pymethods]
impl Ledger {
    #[new]
    #[pyo3(signature = (path, config=None))]
    fn new(py: Python<'_>, path: PathBuf, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let config = crate::platform::load_config(config)?;
        let ledger = py.detach(|| open_at(&path));
        Ok(Ledger { open: Mutex::new((std::process::id(), Arc::new(py_result(ledger)?))), path, config })
    }

    /// The database file.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(self.ledger()?.path().to_path_buf())
    }

    #[pyo3(signature = (source, strict=false))]
    fn import_events<'py>(
        &self,
        py: Python<'py>,
        source: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let options = ImportOptions::strict(strict);
        let is_path = source.cast::<PyString>().is_ok() || source.hasattr("__fspath__")?;
        let report = if is_path {
            let path: PathBuf = source.extract()?;
            let file = std::fs::File::open(&path).map_err(|e| to_pyerr(py, &Error::unreadable_file(&path, &e)))?;
            let reader = std::io::BufReader::with_capacity(1 << 20, file);
            py.detach(|| ledger.import_with(reader, options, |_| {}))
        } else {
            let mut reader = IterReader {
                iter: source.try_iter()?.unbind(),
                buf: Vec::new(),
                pos: 0,
                done: false,
                error: None,
                line: 0,
            };
            let report = py.detach(|| ledger.import_with(&mut reader, options, |_| {}));
            if let Some(e) = reader.error {
                return Err(e);
            }
            report
        };
        let report = py_result(report.map_err(Error::from))?;
        to_py(py, &serde_json::to_value(&report).unwrap_or_default())
    }

    /// Records one event, given as a dict and/or keyword arguments in the JSON Lines schema
    /// (`type`, `id`, `team`, …), as `paved events record` does: deployments and incidents
    /// happen in `production` unless told; a bad field is an `InvalidInput` naming it. Returns
    /// the event as recorded.
    #[pyo3(signature = (event=None, **fields))]
    fn record<'py>(
        &self,
        py: Python<'py>,
        event: Option<&Bound<'py, PyDict>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut v = serde_json::Map::new();
        for part in [event, fields].into_iter().flatten() {
            if let Value::Object(map) = from_py(part.as_any(), "event")? {
                v.extend(map);
            }
        }
        let deploys_or_incidents = matches!(v.get("type").and_then(Value::as_str), Some("deployment" | "incident"));
        if deploys_or_incidents && !v.contains_key("environment") {
            v.insert("environment".into(), json!("production"));
        }
        let v = Value::Object(v);
        let event = py_result(paved::metrics::model::parse_line(&v.to_string()).map_err(Error::from))?;
        let ledger = self.ledger()?;
        py_result(py.detach(|| ledger.write(&[event])).map_err(Error::from))?;
        to_py(py, &v)
    }

    #[pyo3(signature = (window_days=30.0, env="production", team=None, service=None, now=None, by=None))]
    #[allow(clippy::too_many_arguments)]
    fn dora<'py>(
        &self,
        py: Python<'py>,
        window_days: f64,
        env: &str,
        team: Option<&str>,
        service: Option<&str>,
        now: Option<&Bound<'py, PyAny>>,
        by: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let window = window_of(window_days, 3_600.0, "at least an hour for DORA keys")?;
        let by = by.map(|b| py_result(b.parse::<GroupBy>().map_err(Error::from))).transpose()?;
        let q = DoraQuery::new(now_of(now)?).window(window).environment(env).team(team).service(service);
        let ledger = self.ledger()?;
        let config = &self.config;
        let value = py.detach(|| -> paved::Result<Value> {
            ledger.check_environment(env, config.environments.keys().map(String::as_str))?;
            Ok(match by {
                None => serde_json::to_value(ledger.dora(&q)?).unwrap_or_default(),
                Some(by) => {
                    let groups = ledger.dora_by(&q, by)?;
                    json!({
                        "by": if by == GroupBy::Team { "team" } else { "service" },
                        "environment": q.environment, "now": format_time(q.now),
                        "window_days": days_of(window), "groups": groups,
                    })
                }
            })
        });
        to_py(py, &py_result(value)?)
    }

    #[pyo3(signature = (window_days=30.0, now=None, teams=None, catalog=None))]
    fn adoption<'py>(
        &self,
        py: Python<'py>,
        window_days: f64,
        now: Option<&Bound<'py, PyAny>>,
        teams: Option<Vec<String>>,
        catalog: Option<Vec<PathBuf>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let seconds = window_of(window_days, 60.0, "at least a minute")?;
        let now = now_of(now)?;
        let ledger = self.ledger()?;
        let config = &self.config;
        let report = py.detach(|| -> paved::Result<Value> {
            // The known teams: given, from catalog files, else `teams` of paved.toml (as the CLI).
            let catalog = catalog.filter(|c| !c.is_empty());
            let known: BTreeSet<String> = match (teams, catalog) {
                (Some(teams), _) => teams.into_iter().collect(),
                (None, Some(paths)) => {
                    for path in &paths {
                        std::fs::metadata(path).map_err(|e| Error::unreadable_file(path, &e))?;
                    }
                    paved::metrics::catalog_teams(&paths)?
                }
                (None, None) => config.teams.iter().map(ToString::to_string).collect(),
            };
            Ok(serde_json::to_value(ledger.adoption(now, seconds, &known)?).unwrap_or_default())
        });
        to_py(py, &py_result(report)?)
    }
}
