//! One tokio runtime for the whole process, rebuilt in a child after `fork`; blocking calls
//! with the interpreter released and Ctrl-C honoured; awaitables for asyncio.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, Runtime as GenericRuntime};
use tokio::runtime::Runtime;

/// The runtime and the process it belongs to.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The process's runtime. A child after `fork` has none of its parent's worker threads, so
/// it gets a runtime of its own (the parent's is leaked there: dropping it would wait for
/// threads that do not exist in the child).
pub(crate) fn runtime() -> Arc<Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, rt)) = &*slot
        && *owner == pid
    {
        return rt.clone();
    }
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("paved")
            .build()
            .expect("the tokio runtime starts"),
    );
    *slot = Some((pid, rt.clone()));
    rt
}

/// How often a blocking call looks for signals (Ctrl-C) while Rust works.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// What to do when Ctrl-C interrupts a blocking call: wait for the deploy targets to restore
/// what the interrupted work left, and say what they did.
pub(crate) type OnInterrupt = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Vec<String>> + Send>> + Send>;

/// What a blocking call's wait ended with.
enum Event<T> {
    Done(T),
    Report(crate::progress::Progress),
    Tick,
}

/// Runs `work` on the runtime with the interpreter released, so other Python threads run;
/// the calling thread drives it (no hand-over to a worker for each call), the runtime's
/// workers run what it spawns. `reports` go to their callback on this thread between waits.
/// Ctrl-C drops the work (a deploy in flight is then undone by its target, as on the command
/// line), waits for `on_interrupt`'s recovery and raises `KeyboardInterrupt` with its report as
/// a note.
pub(crate) fn block_on<T: Send + 'static>(
    py: Python<'_>,
    work: impl Future<Output = PyResult<T>> + Send + 'static,
    on_interrupt: Option<OnInterrupt>,
    mut reports: Option<crate::progress::Reports>,
) -> PyResult<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(crate::errors::internal(
            py,
            "a blocking paved call cannot run on paved's own runtime threads; use the AsyncPlatform, or call it from another thread",
        ));
    }
    let rt = runtime();
    let mut work = Box::pin(std::panic::AssertUnwindSafe(work).catch_unwind());
    loop {
        let event = py.detach(|| {
            rt.block_on(async {
                let report = async {
                    match reports.as_mut() {
                        Some(r) => r.next().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    done = &mut work => Event::Done(done),
                    report = report => Event::Report(report),
                    _ = tokio::time::sleep(SIGNAL_CHECK) => Event::Tick,
                }
            })
        });
        match event {
            Event::Done(Ok(result)) => {
                if let Some(stop) = reports.as_mut().and_then(|r| r.drain(py)) {
                    return Err(stop);
                }
                return result;
            }
            Event::Done(Err(panic)) => {
                // What the work left (a deploy's restore, queued while it unwound) is waited
                // for, as after Ctrl-C.
                if let Some(recover) = on_interrupt {
                    recover_after_interrupt(py, &rt, recover());
                }
                return Err(crate::errors::internal(py, &panic_message(&*panic)));
            }
            Event::Report(report) => {
                let stop = reports.as_mut().and_then(|r| r.deliver(py, report));
                if let Some(interrupt) = stop.or_else(|| py.check_signals().err()) {
                    return Err(interrupted(py, &rt, work, on_interrupt, interrupt));
                }
            }
            Event::Tick => {
                if let Err(interrupt) = py.check_signals() {
                    return Err(interrupted(py, &rt, work, on_interrupt, interrupt));
                }
            }
        }
    }
}

/// Ctrl-C (or `SystemExit`) during a blocking call: drops `work` (which makes a deploy target
/// queue its recovery), waits for the recovery and returns `interrupt` with its report as a note.
fn interrupted<W: Send>(
    py: Python<'_>,
    rt: &Runtime,
    work: W,
    on_interrupt: Option<OnInterrupt>,
    interrupt: PyErr,
) -> PyErr {
    py.detach(|| {
        let _guard = rt.enter();
        drop(work);
    });
    if let Some(recover) = on_interrupt {
        let report = recover_after_interrupt(py, rt, recover());
        let message =
            if report.is_empty() { "cancelled before anything was applied".to_string() } else { report.join("; ") };
        // `add_note` is Python 3.11+; on 3.10 the report is not attached.
        let _ = interrupt.value(py).call_method1("add_note", (format!("paved: {message}"),));
    }
    interrupt
}

/// What a panic said, for `InternalError`.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("paved failed unexpectedly: {what}")
}

/// Waits for the recovery after Ctrl-C; a second Ctrl-C stops waiting.
fn recover_after_interrupt(
    py: Python<'_>,
    rt: &Runtime,
    recovery: Pin<Box<dyn Future<Output = Vec<String>> + Send>>,
) -> Vec<String> {
    let mut task = rt.spawn(recovery);
    loop {
        match py.detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await })) {
            Ok(Ok(report)) => return report,
            Ok(Err(failed)) => return vec![format!("the recovery failed: {failed}; check status()")],
            Err(_) => {
                if py.check_signals().is_err() {
                    return vec!["stopped waiting: the recovery did not finish; check status()".to_string()];
                }
            }
        }
    }
}

/// The runtime, as pyo3-async-runtimes drives futures on it for asyncio.
pub(crate) struct Shared;

tokio::task_local! {
    static LOCALS: TaskLocals;
}

impl GenericRuntime for Shared {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // On the runtime's own threads (pyo3-async-runtimes spawns from them) without taking
        // the process-wide lock.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn(fut),
            Err(_) => runtime().spawn(fut),
        }
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn_blocking(f),
            Err(_) => runtime().spawn_blocking(f),
        }
    }
}

impl ContextExt for Shared {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(LOCALS.scope(locals, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        LOCALS.try_with(Clone::clone).ok()
    }
}

/// `work` as an asyncio awaitable; cancelling it drops the work. A panic becomes
/// `paved.errors.InternalError`, as in a blocking call.
pub(crate) fn awaitable<'py, T>(
    py: Python<'py>,
    work: impl Future<Output = PyResult<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::generic::future_into_py::<Shared, _, T>(py, async move {
        match std::panic::AssertUnwindSafe(work).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(Python::attach(|py| crate::errors::internal(py, &panic_message(&*panic)))),
        }
    })
}

/// Runs `work` as a blocking call or returns it as an awaitable (`asynchronous`).
pub(crate) fn run<'py>(
    py: Python<'py>,
    asynchronous: bool,
    work: impl Future<Output = PyResult<crate::convert::Json>> + Send + 'static,
    on_interrupt: Option<OnInterrupt>,
    reports: Option<crate::progress::Reports>,
) -> PyResult<Bound<'py, PyAny>> {
    if asynchronous {
        awaitable(py, work)
    } else {
        let value = block_on(py, work, on_interrupt, reports)?;
        crate::convert::to_py(py, &value.0)
    }
}
