//! [`MemoryMetrics`]: every recorded event in a list that tests read.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use paved_core::{Action, Metrics, PlatformEvent, Result};

use super::lock;
use crate::behavior::metrics::{MetricsProbe, ObservedDeployment, ObservedPolicyDecision};

/// A [`Metrics`] sink that keeps every event, in the order recorded.
#[derive(Debug, Default)]
pub struct MemoryMetrics {
    events: Mutex<Vec<PlatformEvent>>,
}

impl MemoryMetrics {
    /// An empty sink.
    pub fn new() -> Self {
        MemoryMetrics::default()
    }

    /// Every event recorded so far, oldest first.
    pub fn events(&self) -> Vec<PlatformEvent> {
        lock(&self.events).clone()
    }
}

#[async_trait]
impl Metrics for MemoryMetrics {
    async fn record(&self, event: &PlatformEvent) -> Result<()> {
        lock(&self.events).push(event.clone());
        Ok(())
    }
}

/// The latest state of each deployment id, folded from the events in order.
#[async_trait]
impl MetricsProbe for MemoryMetrics {
    fn keeps_policy_decisions(&self) -> bool {
        true
    }

    async fn deployments(&self) -> std::result::Result<Vec<ObservedDeployment>, String> {
        let mut by_id: BTreeMap<String, ObservedDeployment> = BTreeMap::new();
        for event in self.events() {
            let seen = match event {
                PlatformEvent::DeploymentStarted { id, service, team, environment, action, .. } => ObservedDeployment {
                    id,
                    service,
                    team,
                    environment,
                    rollback: action == Action::Rollback,
                    result: None,
                    revision: None,
                },
                PlatformEvent::DeploymentFinished {
                    id, service, team, environment, action, result, revision, ..
                } => ObservedDeployment {
                    id,
                    service,
                    team,
                    environment,
                    rollback: action == Action::Rollback,
                    result: Some(result),
                    revision,
                },
                _ => continue,
            };
            by_id.insert(seen.id.clone(), seen);
        }
        Ok(by_id.into_values().collect())
    }

    async fn policy_decisions(&self) -> std::result::Result<Vec<ObservedPolicyDecision>, String> {
        Ok(self
            .events()
            .into_iter()
            .filter_map(|event| match event {
                PlatformEvent::PolicyDecision { action, service, team, environment, allowed, .. } => {
                    Some(ObservedPolicyDecision { action, service, team, environment, allowed })
                }
                _ => None,
            })
            .collect())
    }
}
