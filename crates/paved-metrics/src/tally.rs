//! Counters kept at write time, so that a Prometheus scrape reads a few hundred rows instead
//! of scanning the ledger.
//!
//! Every figure here counts an immutable fact once, when it is first recorded: a deployment's
//! first finish (with the result it finished with), a rollback run, a policy decision, a
//! database provisioned, a support ticket opened, a survey answered. Re-recording an event
//! never counts it again and never moves it between label sets, so counters never go down.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use crate::model::DeploymentStatus;

/// Upper bounds of the deployment-duration histogram, seconds.
pub const DURATION_BUCKETS: [f64; 9] = [5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Upper bounds of the policy-evaluation histogram, seconds.
pub const POLICY_BUCKETS: [f64; 8] = [0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0];

/// A counter family and its label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    /// Deployments by team, service, environment and result (first finish).
    Deployments = 1,
    /// `paved rollback` runs by team, service and environment.
    Rollbacks = 2,
    /// Deployment durations by team and environment (histogram).
    DeploymentDuration = 3,
    /// Policy decisions by team, environment and result.
    PolicyEvaluations = 4,
    /// Policy evaluation durations by environment (histogram).
    PolicyDuration = 5,
    /// Databases provisioned by team, environment and engine.
    DatabaseProvisions = 6,
    /// Support tickets opened by team and category.
    SupportTickets = 7,
    /// Survey answers by team.
    SurveyResponses = 8,
}

impl Family {
    /// The label names of the family, in the order the labels are stored.
    pub(crate) fn label_names(self) -> &'static [&'static str] {
        match self {
            Family::Deployments => &["team", "service", "environment", "result"],
            Family::Rollbacks => &["team", "service", "environment"],
            Family::DeploymentDuration => &["team", "environment"],
            Family::PolicyEvaluations => &["team", "environment", "result"],
            Family::PolicyDuration => &["environment"],
            Family::DatabaseProvisions => &["team", "environment", "engine"],
            Family::SupportTickets => &["team", "category"],
            Family::SurveyResponses => &["team"],
        }
    }

    /// The histogram bounds of the family, if it is a histogram.
    pub(crate) fn bounds(self) -> Option<&'static [f64]> {
        match self {
            Family::DeploymentDuration => Some(&DURATION_BUCKETS),
            Family::PolicyDuration => Some(&POLICY_BUCKETS),
            _ => None,
        }
    }
}

/// Increments gathered in one write transaction and added to `aggregates` at its end.
#[derive(Debug, Default)]
pub(crate) struct Tally(HashMap<(Family, String, i64), (i64, f64)>);

impl Tally {
    /// Counts one fact.
    pub(crate) fn count(&mut self, family: Family, labels: &[&str]) {
        self.add(family, labels, 0, 0.0);
    }

    /// Observes one value of a histogram family.
    pub(crate) fn observe(&mut self, family: Family, labels: &[&str], value: f64) {
        let bounds = family.bounds().unwrap_or(&[]);
        let bucket = bounds.iter().position(|b| value <= *b).unwrap_or(bounds.len());
        self.add(family, labels, bucket as i64, value);
    }

    fn add(&mut self, family: Family, labels: &[&str], bucket: i64, value: f64) {
        let labels = serde_json::to_string(labels).expect("strings serialize");
        let entry = self.0.entry((family, labels, bucket)).or_default();
        entry.0 += 1;
        entry.1 += value;
    }

    /// Counts a deployment's first finish.
    pub(crate) fn deployment(
        &mut self,
        team: &str,
        service: &str,
        environment: &str,
        status: DeploymentStatus,
        rollback: bool,
        duration: Option<i64>,
    ) {
        self.count(Family::Deployments, &[team, service, environment, status.as_str()]);
        if rollback {
            self.count(Family::Rollbacks, &[team, service, environment]);
        }
        if let Some(d) = duration.filter(|_| status.is_finished_change()) {
            self.observe(Family::DeploymentDuration, &[team, environment], d as f64);
        }
    }

    /// Adds the gathered increments to the `aggregates` table.
    pub(crate) fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO aggregates (family, labels, bucket, n, sum) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (family, labels, bucket) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum",
        )?;
        for ((family, labels, bucket), (n, sum)) in self.0.drain() {
            upsert.execute(params![family as i64, labels, bucket, n, sum])?;
        }
        Ok(())
    }
}

/// Fills `aggregates` from the events of a ledger written before it existed (migration 2).
pub(crate) fn backfill(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut tally = Tally::default();
    {
        let mut stmt = tx.prepare(
            "SELECT t.name, s.name, e.name, d.status, d.rollback, d.finished_at - d.started_at FROM deployments d
             JOIN names t ON t.id = d.team JOIN names s ON s.id = d.service JOIN names e ON e.id = d.environment
             WHERE d.status != ?1",
        )?;
        let mut rows = stmt.query([DeploymentStatus::InProgress.code()])?;
        while let Some(r) = rows.next()? {
            let (team, service, env): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let Some(status) = DeploymentStatus::from_code(r.get(3)?) else { continue };
            tally.deployment(&team, &service, &env, status, r.get(4)?, r.get(5)?);
        }
        let mut stmt = tx.prepare(
            "SELECT a.kind, t.name, e.name, a.result, coalesce(json_extract(a.detail, '$.duration_seconds'), 0),
                    coalesce(json_extract(a.detail, '$.engine'), 'unknown')
             FROM activity a JOIN names t ON t.id = a.team JOIN names e ON e.id = a.environment WHERE a.kind IN (1, 2)",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (kind, team, env, result): (i64, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            if kind == 2 {
                tally.count(Family::PolicyEvaluations, &[&team, &env, &result]);
                tally.observe(Family::PolicyDuration, &[&env], r.get(4)?);
            } else {
                let engine: String = r.get(5)?;
                tally.count(Family::DatabaseProvisions, &[&team, &env, &engine]);
            }
        }
    }
    tally.flush(tx)
}

/// One stored series: its labels and, for histograms, per-bucket counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Label values, in [`Family::label_names`] order.
    pub labels: Vec<String>,
    /// Per-bucket `(count, sum)`; counters have the one bucket 0.
    pub buckets: Vec<(i64, f64)>,
}

/// Every stored series of every family, by family.
pub(crate) fn read_all(conn: &rusqlite::Connection) -> rusqlite::Result<HashMap<Family, Vec<Series>>> {
    let families = [
        Family::Deployments,
        Family::Rollbacks,
        Family::DeploymentDuration,
        Family::PolicyEvaluations,
        Family::PolicyDuration,
        Family::DatabaseProvisions,
        Family::SupportTickets,
        Family::SurveyResponses,
    ];
    let mut out: HashMap<Family, Vec<Series>> = HashMap::new();
    let mut stmt =
        conn.prepare_cached("SELECT family, labels, bucket, n, sum FROM aggregates ORDER BY family, labels, bucket")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let code: i64 = r.get(0)?;
        let Some(family) = families.iter().find(|f| **f as i64 == code).copied() else { continue };
        let labels: String = r.get(1)?;
        let labels: Vec<String> = serde_json::from_str(&labels).unwrap_or_default();
        let (bucket, n, sum): (i64, i64, f64) = (r.get(2)?, r.get(3)?, r.get(4)?);
        let width = family.bounds().map_or(1, |b| b.len() + 1);
        let list = out.entry(family).or_default();
        if list.last().is_none_or(|s| s.labels != labels) {
            list.push(Series { labels, buckets: vec![(0, 0.0); width] });
        }
        let series = list.last_mut().expect("pushed");
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| series.buckets.get_mut(b)) {
            *slot = (n, sum);
        }
    }
    Ok(out)
}
