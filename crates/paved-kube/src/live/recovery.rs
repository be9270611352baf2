//! Recovery from interrupted deploys: a deploy future dropped half-way restores the previous
//! revision in a background task ([`KubeTarget::settle`] waits for them), and a revision left
//! `pending` by a killed process blocks the next deploy until it is old enough to count as
//! failed.

use std::time::Duration;

use paved_core::{DeployContext, Error, Result, RevisionState};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::connection::Connected;
use super::deploy::Failure;
use super::history::{self, Stored};
use super::{KubeTarget, TARGET_NAME};

impl KubeTarget {
    /// Waits for the background recoveries of deploys that were dropped half-way (see the
    /// module documentation) and returns what each did, e.g. `the deploy of revision 2 of shop
    /// in production was cancelled; rolled back to the objects of revision 1 (now revision 3,
    /// image …)`. Call it before the process exits (the CLI does after Ctrl-C).
    pub async fn settle(&self) -> Vec<String> {
        let handles: Vec<JoinHandle<String>> =
            std::mem::take(&mut *self.shared.recoveries.lock().expect("not poisoned"));
        let mut reports = Vec::with_capacity(handles.len());
        for h in handles {
            reports.push(h.await.unwrap_or_else(|e| format!("the recovery task failed: {e}")));
        }
        reports
    }

    /// A `pending` latest revision means that another deploy is under way (on this or another
    /// machine) or that one was interrupted. Younger than twice the rollout timeout plus two
    /// minutes, it blocks this deploy; older, it is marked `failed` and superseded.
    pub(super) async fn check_pending(&self, conn: &Connected, history: &[Stored]) -> Result<()> {
        let Some(last) = history.last().filter(|s| s.state() == RevisionState::Pending) else { return Ok(()) };
        let r = &last.record;
        let timeout =
            self.opts.timeout.unwrap_or(super::target::DEFAULT_PROGRESS_DEADLINE + super::target::DEADLINE_MARGIN);
        let limit = timeout.saturating_mul(2) + Duration::from_secs(120);
        let age = OffsetDateTime::now_utc() - r.deployed_at;
        if age < limit {
            return Err(Error::backend(
                TARGET_NAME,
                format!(
                    "another deploy of {} in {} is under way: revision {} (by {}) is pending since {}",
                    r.app,
                    r.environment,
                    r.revision,
                    r.deployed_by,
                    r.deployed_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                ),
                Some(format!(
                    "wait for it (`Platform::status` of {} in {}); if it was interrupted, deploy again after {} minutes and it counts as failed",
                    r.app,
                    r.environment,
                    limit.as_secs().div_ceil(60)
                )),
            ));
        }
        tracing::warn!(revision = r.revision, "marking an interrupted revision as failed");
        history::set_state(&conn.client, &conn.description, last, RevisionState::Failed, &self.opts.retry).await
    }
}

/// Restores the previous revision when a deploy future is dropped after its revision was
/// recorded (and before it finished).
pub(super) struct Recovery {
    pub(super) target: KubeTarget,
    pub(super) conn: Connected,
    pub(super) new: Stored,
    pub(super) previous: Option<Stored>,
    /// What the deploy created so far (a dropped first deploy removes only those).
    pub(super) created: Created,
    /// Disarmed once the deploy has finished (or failed and handled it).
    pub(super) armed: bool,
}

/// The objects a deploy created, shared with its [`Recovery`].
pub(super) type Created = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<super::prune::Identity>>>;

impl Drop for Recovery {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                revision = self.new.record.revision,
                "deploy dropped outside a runtime: revision left pending"
            );
            return;
        };
        let (target, conn, new, previous) =
            (self.target.clone(), self.conn.clone(), self.new.clone(), self.previous.clone());
        let created = self.created.lock().expect("not poisoned").clone();
        let shared = self.target.shared.clone();
        let task = handle.spawn(async move {
            let _lock = target.lock(&new.record.app, &new.record.environment).await;
            let disarmed = Recovery {
                target: target.clone(),
                conn: conn.clone(),
                new: new.clone(),
                previous: None,
                created: Created::default(),
                armed: false,
            };
            // The full history is not at hand here: the next deploy trims it.
            let history = previous.as_slice();
            let cx = DeployContext::new();
            let failure = Failure::Cancelled;
            let e = target.fail(&conn, &new, history, previous.as_ref(), failure, disarmed, Some(&created), &cx).await;
            tracing::warn!("{e}");
            match e {
                Error::Rollout { message, .. } => message,
                other => other.to_string(),
            }
        });
        shared.recoveries.lock().expect("not poisoned").push(task);
    }
}
