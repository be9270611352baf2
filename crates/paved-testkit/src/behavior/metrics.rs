//! The `Metrics` suite: every event a platform records is accepted, and what a sink keeps can
//! be read back through a [`MetricsProbe`], the view a sink must give a suite of what it holds.

use std::sync::Arc;

use async_trait::async_trait;
use paved_core::{Action, DeploymentResult, Metrics, PlatformEvent, Revision};
use time::OffsetDateTime;
use time::macros::datetime;

use super::{Failure, Harness, Outcome, Report, Scenario};

/// What a sink may not keep; scenarios that need it are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsCapability {
    /// Keeps policy decisions.
    PolicyDecisions,
}

/// A deployment as a sink keeps it: the latest state of one deployment id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDeployment {
    /// The deployment id.
    pub id: String,
    /// The app.
    pub service: String,
    /// The team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// `true` for a rollback.
    pub rollback: bool,
    /// How it ended; `None` while it is started and not finished.
    pub result: Option<DeploymentResult>,
    /// The revision it made current, if it says.
    pub revision: Option<Revision>,
}

/// A policy decision as a sink keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPolicyDecision {
    /// The action decided on.
    pub action: Action,
    /// The app or service.
    pub service: String,
    /// The team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// Whether it was allowed.
    pub allowed: bool,
}

/// What a [`Metrics`] sink lets a suite observe of the events recorded in it, implemented
/// by the test of each sink (a ledger query, a scrape, …).
#[async_trait]
pub trait MetricsProbe: Send + Sync {
    /// `true` when the sink keeps policy decisions.
    fn keeps_policy_decisions(&self) -> bool;

    /// Every deployment kept, one per id with its latest state, in any order.
    async fn deployments(&self) -> Result<Vec<ObservedDeployment>, String>;

    /// Every policy decision kept, in any order.
    async fn policy_decisions(&self) -> Result<Vec<ObservedPolicyDecision>, String>;
}

/// The sink under test and its probe.
#[non_exhaustive]
pub struct MetricsHarness {
    /// The sink.
    pub metrics: Arc<dyn Metrics>,
    /// What the sink lets the suite observe.
    pub probe: Arc<dyn MetricsProbe>,
    /// The sink's name in reports.
    pub label: String,
}

impl MetricsHarness {
    /// A harness for `metrics`, observed through `probe`.
    pub fn new(label: impl Into<String>, metrics: Arc<dyn Metrics>, probe: Arc<dyn MetricsProbe>) -> Self {
        MetricsHarness { metrics, probe, label: label.into() }
    }

    async fn record(&self, event: &PlatformEvent) -> Outcome {
        self.metrics.record(event).await.map_err(|e| Failure::from(e).context(&format!("recording {event:?}")))
    }

    async fn deployment(&self, id: &str) -> Result<ObservedDeployment, Failure> {
        let all = self.probe.deployments().await.map_err(Failure::new)?;
        let mut found: Vec<ObservedDeployment> = all.into_iter().filter(|d| d.id == id).collect();
        ensure!(found.len() == 1, "expected one deployment {id}, found {found:?}");
        Ok(found.remove(0))
    }
}

impl Harness for MetricsHarness {
    type Capability = MetricsCapability;

    fn backend(&self) -> String {
        self.label.clone()
    }

    fn supports(&self, capability: MetricsCapability) -> bool {
        match capability {
            MetricsCapability::PolicyDecisions => self.probe.keeps_policy_decisions(),
        }
    }
}

/// Every scenario of the suite, in the order [`run`] runs them.
pub fn scenarios() -> Vec<Scenario<MetricsHarness>> {
    vec![
        scenario!(every_event_kind_is_accepted),
        scenario!(a_started_deployment_is_readable),
        scenario!(a_finished_deployment_is_readable),
        scenario!(every_result_is_kept),
        scenario!(rollbacks_are_marked),
        scenario!(recording_an_event_twice_keeps_it_once),
        scenario!(policy_decisions_are_readable, [MetricsCapability::PolicyDecisions]),
    ]
}

/// Runs the suite on `harness`.
///
/// # Panics
/// When a scenario fails (see [`super::run`]).
pub async fn run(harness: &MetricsHarness) -> Report {
    super::run("Metrics", harness, &scenarios()).await
}

const STARTED: OffsetDateTime = datetime!(2026-11-01 10:00 UTC);
const FINISHED: OffsetDateTime = datetime!(2026-11-01 10:04 UTC);

/// A `DeploymentStarted` event of `service` in `production`.
pub fn started(id: &str, service: &str, action: Action) -> PlatformEvent {
    PlatformEvent::DeploymentStarted {
        id: id.into(),
        service: service.into(),
        team: "suite".into(),
        environment: "production".into(),
        image: format!("registry.example/{service}:v1"),
        action,
        started_at: STARTED,
    }
}

/// The `DeploymentFinished` event of [`started`] with `result`.
pub fn finished(id: &str, service: &str, action: Action, result: DeploymentResult) -> PlatformEvent {
    PlatformEvent::DeploymentFinished {
        id: id.into(),
        service: service.into(),
        team: "suite".into(),
        environment: "production".into(),
        image: format!("registry.example/{service}:v1"),
        action,
        result,
        revision: (result == DeploymentResult::Success).then_some(3),
        started_at: STARTED,
        finished_at: FINISHED,
        escape_hatches: Vec::new(),
        commits: Vec::new(),
        error: (result == DeploymentResult::Failure).then(|| "the rollout timed out".to_string()),
    }
}

/// A `PolicyDecision` event.
pub fn policy_decision(service: &str, allowed: bool) -> PlatformEvent {
    PlatformEvent::PolicyDecision {
        action: Action::Deploy,
        service: service.into(),
        team: "suite".into(),
        environment: "production".into(),
        allowed,
        denials: usize::from(!allowed),
        warnings: 1,
        policies: vec!["require-limits".into()],
        duration_seconds: 0.002,
    }
}

/// One event of every kind a platform records. A new kind of [`PlatformEvent`] goes here.
pub fn every_event_kind() -> Vec<PlatformEvent> {
    vec![
        started("kinds-1", "kinds", Action::Deploy),
        finished("kinds-1", "kinds", Action::Deploy, DeploymentResult::Success),
        policy_decision("kinds", true),
        PlatformEvent::DatabaseProvisioned {
            service: "kinds".into(),
            team: "suite".into(),
            environment: "production".into(),
            engine: "postgres".into(),
            size: "small".into(),
            database: "kinds_production".into(),
            server: "main".into(),
            backend: "vault".into(),
        },
        PlatformEvent::DatabaseDeprovisioned {
            service: "kinds".into(),
            team: "suite".into(),
            environment: "production".into(),
            engine: "postgres".into(),
            server: "main".into(),
            drop_data: false,
        },
        PlatformEvent::NotificationFailed {
            service: "kinds".into(),
            team: "suite".into(),
            environment: "production".into(),
            notifier: "slack".into(),
            reason: "timed out".into(),
        },
    ]
}

/// The results a deployment can end with.
pub const EVERY_RESULT: [DeploymentResult; 6] = [
    DeploymentResult::Success,
    DeploymentResult::Unchanged,
    DeploymentResult::Failure,
    DeploymentResult::RolledBack,
    DeploymentResult::Denied,
    DeploymentResult::RolloutFailed,
];

async fn every_event_kind_is_accepted(h: &MetricsHarness) -> Outcome {
    for event in every_event_kind() {
        h.record(&event).await?;
    }
    Ok(())
}

async fn a_started_deployment_is_readable(h: &MetricsHarness) -> Outcome {
    h.record(&started("started-1", "checkout", Action::Deploy)).await?;
    let expected = ObservedDeployment {
        id: "started-1".into(),
        service: "checkout".into(),
        team: "suite".into(),
        environment: "production".into(),
        rollback: false,
        result: None,
        revision: None,
    };
    ensure_eq!(h.deployment("started-1").await?, expected, "a started deployment");
    Ok(())
}

async fn a_finished_deployment_is_readable(h: &MetricsHarness) -> Outcome {
    h.record(&started("finished-1", "cart", Action::Deploy)).await?;
    h.record(&finished("finished-1", "cart", Action::Deploy, DeploymentResult::Success)).await?;
    let seen = h.deployment("finished-1").await?;
    ensure_eq!(seen.result, Some(DeploymentResult::Success), "result of a finished deployment");
    ensure_eq!(seen.revision, Some(3), "revision of a finished deployment");
    ensure_eq!((seen.service.as_str(), seen.team.as_str()), ("cart", "suite"), "service and team");
    ensure_eq!(seen.environment, "production", "environment");
    Ok(())
}

async fn every_result_is_kept(h: &MetricsHarness) -> Outcome {
    for (i, result) in EVERY_RESULT.into_iter().enumerate() {
        let id = format!("result-{i}");
        h.record(&started(&id, "results", Action::Deploy)).await?;
        h.record(&finished(&id, "results", Action::Deploy, result)).await?;
    }
    for (i, result) in EVERY_RESULT.into_iter().enumerate() {
        ensure_eq!(h.deployment(&format!("result-{i}")).await?.result, Some(result), "result of result-{i}");
    }
    Ok(())
}

async fn rollbacks_are_marked(h: &MetricsHarness) -> Outcome {
    h.record(&started("rollback-1", "search", Action::Rollback)).await?;
    h.record(&finished("rollback-1", "search", Action::Rollback, DeploymentResult::Success)).await?;
    h.record(&finished("deploy-1", "search", Action::Deploy, DeploymentResult::Success)).await?;
    ensure!(h.deployment("rollback-1").await?.rollback, "a rollback is not marked as one");
    ensure!(!h.deployment("deploy-1").await?.rollback, "a deployment is marked as a rollback");
    Ok(())
}

async fn recording_an_event_twice_keeps_it_once(h: &MetricsHarness) -> Outcome {
    let event = finished("twice-1", "billing", Action::Deploy, DeploymentResult::Success);
    h.record(&event).await?;
    h.record(&event).await?;
    ensure_eq!(h.deployment("twice-1").await?.result, Some(DeploymentResult::Success), "a deployment recorded twice");
    Ok(())
}

async fn policy_decisions_are_readable(h: &MetricsHarness) -> Outcome {
    h.record(&policy_decision("gate-allowed", true)).await?;
    h.record(&policy_decision("gate-denied", false)).await?;
    let seen = h.probe.policy_decisions().await.map_err(Failure::new)?;
    for (service, allowed) in [("gate-allowed", true), ("gate-denied", false)] {
        let expected = ObservedPolicyDecision {
            action: Action::Deploy,
            service: service.into(),
            team: "suite".into(),
            environment: "production".into(),
            allowed,
        };
        ensure!(seen.contains(&expected), "{expected:?} not among {seen:?}");
    }
    Ok(())
}
