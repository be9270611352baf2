//! The `Metrics` behaviour suite on the ledger recorder, observed by reading the ledger file.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use paved_core::{Action, DeploymentResult};
use paved_metrics::{Ledger, LedgerRecorder};
use paved_testkit::behavior::metrics::{MetricsHarness, MetricsProbe, ObservedDeployment, ObservedPolicyDecision, run};

/// Reads deployments and policy decisions back from the ledger's SQLite file.
struct LedgerProbe {
    path: PathBuf,
}

impl LedgerProbe {
    fn query<T>(&self, sql: &str, row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>, String> {
        let conn = rusqlite::Connection::open(&self.path).map_err(|e| e.to_string())?;
        let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], row).map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<Vec<T>>>().map_err(|e| e.to_string())
    }
}

/// The ledger's status codes (`deployments.status`); 4 is "in progress".
fn result_of(status: i64) -> Result<Option<DeploymentResult>, String> {
    Ok(Some(match status {
        1 => DeploymentResult::Success,
        2 => DeploymentResult::Failure,
        3 => DeploymentResult::RolledBack,
        4 => return Ok(None),
        5 => DeploymentResult::Unchanged,
        6 => DeploymentResult::Denied,
        7 => DeploymentResult::RolloutFailed,
        other => return Err(format!("unknown status code {other}")),
    }))
}

#[async_trait]
impl MetricsProbe for LedgerProbe {
    fn keeps_policy_decisions(&self) -> bool {
        true
    }

    async fn deployments(&self) -> Result<Vec<ObservedDeployment>, String> {
        let rows = self.query(
            "SELECT d.id, s.name, t.name, e.name, d.status, d.rollback, d.revision FROM deployments d
             JOIN names s ON s.id = d.service JOIN names t ON t.id = d.team JOIN names e ON e.id = d.environment",
            |r| {
                Ok((
                    ObservedDeployment {
                        id: r.get(0)?,
                        service: r.get(1)?,
                        team: r.get(2)?,
                        environment: r.get(3)?,
                        rollback: r.get(5)?,
                        result: None,
                        revision: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
                    },
                    r.get::<_, i64>(4)?,
                ))
            },
        )?;
        rows.into_iter().map(|(d, status)| Ok(ObservedDeployment { result: result_of(status)?, ..d })).collect()
    }

    async fn policy_decisions(&self) -> Result<Vec<ObservedPolicyDecision>, String> {
        let rows = self.query(
            "SELECT s.name, t.name, e.name, a.result, a.detail FROM activity a
             JOIN names s ON s.id = a.service JOIN names t ON t.id = a.team JOIN names e ON e.id = a.environment
             WHERE a.kind = 2",
            |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?)),
        )?;
        rows.into_iter()
            .map(|(service, team, environment, result, detail)| {
                let detail: serde_json::Value = serde_json::from_str(&detail).map_err(|e| e.to_string())?;
                let action = [Action::Deploy, Action::Rollback, Action::ProvisionDatabase]
                    .into_iter()
                    .find(|a| detail["action"] == a.as_str())
                    .ok_or_else(|| format!("unknown action in {detail}"))?;
                Ok(ObservedPolicyDecision { action, service, team, environment, allowed: result == "allowed" })
            })
            .collect()
    }
}

#[tokio::test]
async fn ledger_recorder_passes_the_metrics_suite() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open_in(dir.path()).unwrap());
    let probe = Arc::new(LedgerProbe { path: ledger.path().to_path_buf() });
    let report = run(&MetricsHarness::new("ledger", Arc::new(LedgerRecorder::new(ledger)), probe)).await;
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn a_lazy_ledger_recorder_passes_the_metrics_suite() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(LedgerProbe { path: dir.path().join(paved_metrics::LEDGER_FILE) });
    let report = run(&MetricsHarness::new("ledger (lazy)", Arc::new(LedgerRecorder::lazy(dir.path())), probe)).await;
    assert!(report.skipped.is_empty(), "{report}");
}
