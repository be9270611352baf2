//! The ledger as the [`Metrics`] sink of a [`Platform`](paved_core::Platform): paved records
//! its own deployments, policy decisions and rollbacks.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use paved_core::{Action, DeploymentResult, Metrics, PlatformEvent};

use crate::ledger::Ledger;
use crate::model::{ActivityEvent, ActivityKind, CommitRef, DeploymentEvent, DeploymentStatus, LedgerEvent};

/// Records platform events in a [`Ledger`].
#[derive(Debug, Clone)]
pub struct LedgerRecorder {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Open(Arc<Ledger>),
    /// Opened on the first event, so that a run that records nothing (bad input) writes nothing.
    Lazy(PathBuf, Arc<OnceLock<Arc<Ledger>>>),
}

impl LedgerRecorder {
    /// A recorder writing to `ledger`.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        LedgerRecorder { source: Source::Open(ledger) }
    }

    /// A recorder that opens the ledger of `state_dir` on its first event.
    pub fn lazy(state_dir: impl Into<PathBuf>) -> Self {
        LedgerRecorder { source: Source::Lazy(state_dir.into(), Arc::new(OnceLock::new())) }
    }

    fn ledger(&self) -> crate::Result<Arc<Ledger>> {
        match &self.source {
            Source::Open(l) => Ok(l.clone()),
            Source::Lazy(dir, cell) => {
                if let Some(l) = cell.get() {
                    return Ok(l.clone());
                }
                let l = Arc::new(Ledger::open_in(dir)?);
                Ok(cell.get_or_init(|| l).clone())
            }
        }
    }
}

/// The ledger event of a platform event, if the ledger keeps it.
pub fn ledger_event(event: &PlatformEvent) -> Option<LedgerEvent> {
    match event {
        PlatformEvent::DeploymentStarted { id, service, team, environment, image, action, started_at, .. } => {
            Some(LedgerEvent::Deployment(DeploymentEvent {
                image: Some(image.clone()),
                finished_at: None,
                rollback: *action == Action::Rollback,
                ..DeploymentEvent::new(
                    id,
                    service,
                    team,
                    environment,
                    DeploymentStatus::InProgress,
                    started_at.unix_timestamp(),
                    0,
                )
            }))
        }
        PlatformEvent::DeploymentFinished {
            id,
            service,
            team,
            environment,
            image,
            action,
            result,
            revision,
            started_at,
            finished_at,
            escape_hatches,
            commits,
            ..
        } => {
            let status = match result {
                DeploymentResult::Success => DeploymentStatus::Success,
                DeploymentResult::Unchanged => DeploymentStatus::Unchanged,
                DeploymentResult::RolledBack => DeploymentStatus::RolledBack,
                DeploymentResult::RolloutFailed => DeploymentStatus::RolloutFailed,
                DeploymentResult::Denied => DeploymentStatus::Denied,
                _ => DeploymentStatus::Failure,
            };
            Some(LedgerEvent::Deployment(DeploymentEvent {
                commits: commits
                    .iter()
                    .map(|c| CommitRef { sha: c.sha.clone(), committed_at: c.committed_at.unix_timestamp() })
                    .collect(),
                rollback: *action == Action::Rollback,
                revision: revision.map(|r| r as i64),
                image: Some(image.clone()),
                escape_hatches: escape_hatches.iter().map(ToString::to_string).collect(),
                ..DeploymentEvent::new(
                    id,
                    service,
                    team,
                    environment,
                    status,
                    started_at.unix_timestamp(),
                    finished_at.unix_timestamp(),
                )
            }))
        }
        PlatformEvent::PolicyDecision {
            action,
            service,
            team,
            environment,
            allowed,
            denials,
            warnings,
            policies,
            duration_seconds,
        } => Some(LedgerEvent::Activity(ActivityEvent {
            kind: ActivityKind::PolicyDecision,
            service: service.clone(),
            team: team.clone(),
            environment: environment.clone(),
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
            result: if *allowed { "allowed" } else { "denied" }.into(),
            detail: serde_json::json!({
                "action": action.as_str(),
                "denials": denials,
                "warnings": warnings,
                "policies": policies,
                "duration_seconds": duration_seconds,
            }),
        })),
        PlatformEvent::DatabaseProvisioned { service, team, environment, engine, size, database, server, backend } => {
            Some(LedgerEvent::Activity(ActivityEvent::new(
                ActivityKind::DatabaseProvisioned,
                service,
                team,
                environment,
                engine,
                serde_json::json!({
                    "engine": engine, "size": size, "database": database, "server": server, "backend": backend,
                }),
            )))
        }
        PlatformEvent::DatabaseDeprovisioned { service, team, environment, engine, server, drop_data } => {
            Some(LedgerEvent::Activity(ActivityEvent::new(
                ActivityKind::DatabaseDeprovisioned,
                service,
                team,
                environment,
                engine,
                serde_json::json!({ "engine": engine, "server": server, "drop_data": drop_data }),
            )))
        }
        PlatformEvent::NotificationFailed { service, team, environment, notifier, reason } => {
            Some(LedgerEvent::Activity(ActivityEvent::new(
                ActivityKind::NotificationFailed,
                service,
                team,
                environment,
                notifier,
                serde_json::json!({ "notifier": notifier, "reason": reason }),
            )))
        }
        _ => None,
    }
}

#[async_trait]
impl Metrics for LedgerRecorder {
    async fn record(&self, event: &PlatformEvent) -> paved_core::Result<()> {
        let Some(e) = ledger_event(event) else { return Ok(()) };
        let recorder = self.clone();
        tokio::task::spawn_blocking(move || recorder.ledger()?.write(&[e]))
            .await
            .map_err(|e| paved_core::Error::backend("ledger", format!("the ledger task failed: {e}"), None))?
            .map_err(Into::into)
    }
}
