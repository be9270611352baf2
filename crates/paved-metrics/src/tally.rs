//! Counters kept at write time, so that a Prometheus scrape reads a few hundred rows instead
//! of scanning the ledger.
//!
//! Every figure here counts an immutable fact once, when it is first recorded: a deployment's
//! first finish (with the result it finished with), a rollback run, a policy decision, a
//! database provisioned, a support ticket opened, a survey answered. Re-recording an event
//! never counts it again and never moves it between label sets, so counters never go down.

use std::collections::HashMap;

use rusqlite::{Transaction, params};
use rustc_hash::FxHashMap;

use crate::model::DeploymentStatus;

/// Upper bounds of the deployment-duration histogram, seconds.
pub const DURATION_BUCKETS: [f64; 9] = [5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Upper bounds of the policy-evaluation histogram, seconds.
pub const POLICY_BUCKETS: [f64; 8] = [0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0];

/// The support-ticket categories kept as a Prometheus label; any other is counted as `other`
/// (the ledger and the adoption report keep the category as given).
pub const TICKET_CATEGORIES: [&str; 8] =
    ["access", "databases", "deploys", "observability", "pipelines", "policy", "secrets", "other"];

/// The bounded label of a support-ticket category.
pub(crate) fn ticket_category(category: &str) -> &'static str {
    let c = category.trim().to_ascii_lowercase();
    TICKET_CATEGORIES.iter().find(|k| **k == c).copied().unwrap_or("other")
}

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
    const ALL: [Family; 8] = [
        Family::Deployments,
        Family::Rollbacks,
        Family::DeploymentDuration,
        Family::PolicyEvaluations,
        Family::PolicyDuration,
        Family::DatabaseProvisions,
        Family::SupportTickets,
        Family::SurveyResponses,
    ];

    /// The family stored as `code` in `aggregates`.
    fn from_code(code: i64) -> Option<Family> {
        Self::ALL.into_iter().find(|f| *f as i64 == code)
    }

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
pub(crate) struct Tally {
    /// By label values.
    named: FxHashMap<(Family, String, i64), (i64, f64)>,
    /// Deployment families by interned ids (team, service, environment, status code), so that
    /// an import does not build label strings per event; named at the end.
    ids: FxHashMap<(Family, [i64; 4], i64), (i64, f64)>,
}

/// A deployment family's labels, as ids: `[team, service, environment, status]`.
type Ids = [i64; 4];

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
        let entry = self.named.entry((family, labels, bucket)).or_default();
        entry.0 += 1;
        entry.1 += value;
    }

    fn add_ids(&mut self, family: Family, ids: Ids, bucket: i64, value: f64) {
        let entry = self.ids.entry((family, ids, bucket)).or_default();
        entry.0 += 1;
        entry.1 += value;
    }

    /// Counts a deployment's first finish; `ids` are the interned team, service and
    /// environment.
    pub(crate) fn deployment(
        &mut self,
        [team, service, environment]: [i64; 3],
        status: DeploymentStatus,
        rollback: bool,
        duration: Option<i64>,
    ) {
        self.add_ids(Family::Deployments, [team, service, environment, status.code()], 0, 0.0);
        if rollback {
            self.add_ids(Family::Rollbacks, [team, service, environment, 0], 0, 0.0);
        }
        if let Some(d) = duration.filter(|_| status.is_finished_change()) {
            let bucket = DURATION_BUCKETS.iter().position(|b| d as f64 <= *b).unwrap_or(DURATION_BUCKETS.len());
            self.add_ids(Family::DeploymentDuration, [team, 0, environment, 0], bucket as i64, d as f64);
        }
    }

    /// Adds the gathered increments to the `aggregates` table; `names` maps the interned
    /// names of each [`NameKind`](crate::ledger::NameKind) (service, team, environment) to
    /// their ids.
    pub(crate) fn flush(&mut self, tx: &Transaction<'_>, names: &crate::ledger::Interned) -> rusqlite::Result<()> {
        if !self.ids.is_empty() {
            let by_id: Vec<HashMap<i64, &str>> =
                names.iter().map(|m| m.iter().map(|(name, id)| (*id, name.as_str())).collect()).collect();
            let name = |kind: usize, id: i64| by_id[kind].get(&id).copied().unwrap_or_default();
            let (service, team, env) = (0, 1, 2);
            for ((family, [t, s, e, status], bucket), (n, sum)) in std::mem::take(&mut self.ids) {
                let result = DeploymentStatus::from_code(status).map_or("unknown", DeploymentStatus::as_str);
                let labels: Vec<&str> = match family {
                    Family::Deployments => vec![name(team, t), name(service, s), name(env, e), result],
                    Family::Rollbacks => vec![name(team, t), name(service, s), name(env, e)],
                    _ => vec![name(team, t), name(env, e)],
                };
                let labels = serde_json::to_string(&labels).expect("strings serialize");
                let entry = self.named.entry((family, labels, bucket)).or_default();
                entry.0 += n;
                entry.1 += sum;
            }
        }
        if self.named.is_empty() {
            return Ok(());
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO aggregates (family, labels, bucket, n, sum) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (family, labels, bucket) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum",
        )?;
        for ((family, labels, bucket), (n, sum)) in self.named.drain() {
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
            tally.count(Family::Deployments, &[&team, &service, &env, status.as_str()]);
            if r.get(4)? {
                tally.count(Family::Rollbacks, &[&team, &service, &env]);
            }
            if let Some(d) = r.get::<_, Option<i64>>(5)?.filter(|_| status.is_finished_change()) {
                tally.observe(Family::DeploymentDuration, &[&team, &env], d as f64);
            }
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
    tally.flush(tx, &Default::default())
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
    let mut out: HashMap<Family, Vec<Series>> = HashMap::new();
    let mut stmt =
        conn.prepare_cached("SELECT family, labels, bucket, n, sum FROM aggregates ORDER BY family, labels, bucket")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let code: i64 = r.get(0)?;
        let Some(family) = Family::from_code(code) else { continue };
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
