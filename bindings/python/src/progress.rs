//! Progress reports of a call, handed to its `progress=` callback on the caller's side: on the
//! calling thread for a blocking call (between waits, never on paved's runtime threads), and
//! through the event loop (`call_soon_threadsafe`) for an awaitable.

use std::sync::Arc;

use pyo3::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// One progress report, as the `progress=` callback receives it.
#[pyclass(frozen, module = "paved._paved")]
pub(crate) struct Progress {
    /// The step (`validate`, `render`, `policy`, `secrets`, `apply`, `watch`, …).
    #[pyo3(get)]
    step: String,
    /// What happened, for humans.
    #[pyo3(get)]
    message: String,
    /// `(done, of)` within the step, when the step can tell.
    #[pyo3(get)]
    done: Option<(u64, u64)>,
}

#[pymethods]
impl Progress {
    fn __repr__(&self) -> String {
        format!("Progress(step={:?}, message={:?}, done={:?})", self.step, self.message, self.done)
    }
}

impl From<&paved::Progress> for Progress {
    fn from(p: &paved::Progress) -> Self {
        Progress { step: p.step.as_str().to_string(), message: p.message.clone(), done: p.done }
    }
}

/// Where the reports of one call go.
pub(crate) enum Sink {
    /// To the blocking call's thread.
    Channel(UnboundedSender<Progress>),
    /// To the callback, scheduled on the awaiting event loop.
    Loop { event_loop: Py<PyAny>, callable: Py<PyAny> },
}

tokio::task_local! {
    static SINK: Option<Arc<Sink>>;
}

/// Runs `work` with `sink` receiving its progress.
pub(crate) fn scope<F: std::future::Future>(
    sink: Option<Arc<Sink>>,
    work: F,
) -> tokio::task::futures::TaskLocalFuture<Option<Arc<Sink>>, F> {
    SINK.scope(sink, work)
}

/// The assembly's progress sink: hands each report to the sink of the call it belongs to
/// (reports from outside a call, or from threads the call does not run on, are dropped).
pub(crate) fn dispatch(p: &paved::Progress) {
    let _ = SINK.try_with(|sink| match sink.as_deref() {
        None => {}
        Some(Sink::Channel(tx)) => {
            let _ = tx.send(Progress::from(p));
        }
        Some(Sink::Loop { event_loop, callable }) => Python::attach(|py| {
            let report = Progress::from(p);
            // Only scheduling runs here; the callback runs on the loop's thread, and an
            // exception it raises goes to the loop's exception handler.
            if let Err(e) = event_loop.call_method1(py, "call_soon_threadsafe", (callable.clone_ref(py), report)) {
                e.write_unraisable(py, Some(callable.bind(py)));
            }
        }),
    });
}

/// The reports of a blocking call and its callback.
pub(crate) struct Reports {
    rx: UnboundedReceiver<Progress>,
    callable: Py<PyAny>,
    failed: bool,
}

impl Reports {
    /// A channel for a blocking call to `callable`: the sink for the work, the receiving end
    /// for the waiting thread.
    pub(crate) fn channel(callable: Py<PyAny>) -> (Arc<Sink>, Reports) {
        let (tx, rx) = unbounded_channel();
        (Arc::new(Sink::Channel(tx)), Reports { rx, callable, failed: false })
    }

    /// The next report (pending forever once the work has dropped its sink).
    pub(crate) async fn next(&mut self) -> Progress {
        match self.rx.recv().await {
            Some(p) => p,
            None => std::future::pending().await,
        }
    }

    /// Calls the callback with `report`. An exception it raises is reported through
    /// `sys.unraisablehook` (as Python reports exceptions it cannot propagate) and the callback
    /// is not called again for this call; the work goes on, so nothing is left half done.
    /// `KeyboardInterrupt` and `SystemExit` (not `Exception`s: Ctrl-C landing in the callback)
    /// are returned, for the call to stop as on Ctrl-C.
    pub(crate) fn deliver(&mut self, py: Python<'_>, report: Progress) -> Option<PyErr> {
        if self.failed {
            return None;
        }
        IN_CALLBACK.with(|c| c.set(true));
        let called = self.callable.call1(py, (report,));
        IN_CALLBACK.with(|c| c.set(false));
        match called {
            Ok(_) => None,
            Err(e) if !e.is_instance_of::<pyo3::exceptions::PyException>(py) => Some(e),
            Err(e) => {
                self.failed = true;
                e.write_unraisable(py, Some(self.callable.bind(py)));
                None
            }
        }
    }

    /// Delivers the reports still queued.
    pub(crate) fn drain(&mut self, py: Python<'_>) -> Option<PyErr> {
        while let Ok(report) = self.rx.try_recv() {
            if let Some(stop) = self.deliver(py, report) {
                return Some(stop);
            }
        }
        None
    }
}

thread_local! {
    /// Whether this thread is inside a blocking call's progress callback.
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside a blocking call's progress callback: the call it reports on
/// is paused meanwhile, holding its app's lock.
pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(std::cell::Cell::get)
}
