//! Waiting for a database to reach a state, polling, with progress and a time limit.

use std::future::Future;
use std::time::{Duration, Instant};

use paved_core::{DatabaseState, Error, Result};

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// `available`.
    Available,
    /// Gone.
    Absent,
}

/// One observation of a resource.
pub(crate) enum Observed<T> {
    /// It does not exist.
    Absent,
    /// It exists, in `status` (the service's word), which is `state`.
    Present { state: DatabaseState, status: String, value: T },
}

/// Polls `observe` every `poll` until the resource reaches `goal`, fails, or `timeout` passes.
/// Answers the resource (for [`Goal::Available`]) or `None` (for [`Goal::Absent`]). Each change
/// of status is logged at INFO with the target `paved::progress` (the CLI shows it on stderr).
pub(crate) async fn until<T, F, Fut>(
    backend: &str,
    what: &str,
    goal: Goal,
    timeout: Duration,
    poll: Duration,
    mut observe: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Observed<T>>>,
{
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let status = match (observe().await?, goal) {
            (Observed::Absent, Goal::Absent) => return Ok(None),
            (Observed::Absent, Goal::Available) => {
                return Err(Error::Backend {
                    backend: backend.into(),
                    message: format!("{what} disappeared while paved waited for it to become available"),
                    hint: Some("someone deleted it meanwhile; provision again to create it anew".into()),
                    source: None,
                });
            }
            (Observed::Present { state: DatabaseState::Available, value, .. }, Goal::Available) => {
                return Ok(Some(value));
            }
            (Observed::Present { state: DatabaseState::Failed, status, .. }, Goal::Available) => {
                return Err(Error::Backend {
                    backend: backend.into(),
                    message: format!("{what} is {status}"),
                    hint: Some(
                        "see its events in the AWS console; remove it (deprovisioning with `drop_data`: AWS takes no snapshot of a failed database) and provision again".into(),
                    ),
                    source: None,
                });
            }
            (Observed::Present { status, .. }, _) => status,
        };
        if status != last {
            tracing::info!(target: "paved::progress", "{what} is {status}, waiting ({} s so far)", started.elapsed().as_secs());
            last = status;
        }
        if started.elapsed() + poll > timeout {
            let goal = match goal {
                Goal::Available => "become available",
                Goal::Absent => "be deleted",
            };
            return Err(Error::Timeout {
                backend: backend.into(),
                operation: format!("waiting for {what} to {goal} (it is {last})"),
                after: timeout,
                hint: Some(
                    "it goes on in AWS: ask again later (provisioning and deprovisioning are idempotent), or raise wait_timeout_minutes of the database server"
                        .into(),
                ),
            });
        }
        tokio::time::sleep(poll).await;
    }
}
