//! Prometheus: a collector that reads the ledger at scrape time, so every paved process
//! (CLI runs, services embedding the library) shows up in one consistent exposition.
//!
//! Labels are bounded (team, service, environment, result — never a SHA or an id). Names
//! follow prometheus-client's conventions: counters get `_total` and units their suffix.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::dora::{DoraQuery, GroupBy};
use crate::ledger::{Ledger, NameKind};
use crate::model::DeploymentStatus;

/// Upper bounds of the deployment-duration histogram, seconds.
pub const DURATION_BUCKETS: [f64; 9] = [5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Upper bounds of the policy-evaluation histogram, seconds.
pub const POLICY_BUCKETS: [f64; 8] = [0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0];

/// The OpenMetrics content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text-format content type, for clients that do not ask for OpenMetrics.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Converts an OpenMetrics exposition to the Prometheus text format 0.0.4: counter families
/// are named with their `_total` suffix, `# UNIT` and `# EOF` lines are dropped. For clients
/// (and linters such as `promtool check metrics`) that do not speak OpenMetrics.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

type Labels = Vec<(&'static str, String)>;

/// Reads the ledger on every scrape.
#[derive(Debug)]
pub struct LedgerCollector {
    ledger: Arc<Ledger>,
    /// A fixed end of the windows; `None` reads the clock on every scrape.
    at: Option<i64>,
}

impl LedgerCollector {
    /// A collector over `ledger`; windows end at the time of each scrape.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        LedgerCollector { ledger, at: None }
    }

    /// Windows end at the fixed time `now` (Unix seconds) instead of the scrape's time, and
    /// events after it are ignored: for backfills and reproducible tests.
    pub fn at(mut self, now: i64) -> Self {
        self.at = Some(now);
        self
    }

    fn now(&self) -> i64 {
        self.at.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp())
    }
}

/// A registry with paved's collector registered: serve it from your own service with
/// `prometheus_client::encoding::text::encode`.
pub fn registry(ledger: Arc<Ledger>) -> Registry {
    registry_with(LedgerCollector::new(ledger))
}

/// A registry with the given collector registered (e.g. [`LedgerCollector::at`] a fixed time).
pub fn registry_with(collector: LedgerCollector) -> Registry {
    let mut registry = Registry::with_prefix("paved");
    registry.register_collector(Box::new(collector));
    registry
}

/// The registry's exposition in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

struct Histogram {
    labels: Labels,
    sum: f64,
    count: u64,
    /// Per-bucket (not cumulative) counts, the last bucket being +Inf.
    buckets: Vec<(f64, u64)>,
}

fn counters(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Labels, u64)]) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(Labels, f64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

fn histograms(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[Histogram]) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for h in rows {
        m.encode_family(&h.labels)?.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
    }
    Ok(())
}

/// `SELECT` fragments counting values per bucket: `sum(x <= b1), sum(x > b1 AND x <= b2), …`.
fn bucket_sql(expr: &str, bounds: &[f64]) -> String {
    let mut parts = Vec::new();
    let mut lower: Option<f64> = None;
    for b in bounds {
        parts.push(match lower {
            None => format!("sum({expr} <= {b})"),
            Some(l) => format!("sum({expr} > {l} AND {expr} <= {b})"),
        });
        lower = Some(*b);
    }
    parts.push(format!("sum({expr} > {})", bounds[bounds.len() - 1]));
    parts.join(", ")
}

struct Snapshot {
    deployments: Vec<(Labels, u64)>,
    rollbacks: Vec<(Labels, u64)>,
    durations: Vec<Histogram>,
    policy: Vec<(Labels, u64)>,
    policy_durations: Vec<Histogram>,
    databases: Vec<(Labels, u64)>,
}

fn histogram_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    bounds: &[f64],
    label_names: &[&'static str],
) -> rusqlite::Result<Vec<Histogram>> {
    let mut stmt = conn.prepare(sql)?;
    let n = label_names.len();
    let rows = stmt.query_map([], |r| {
        let labels: Labels = label_names
            .iter()
            .enumerate()
            .map(|(i, k)| Ok((*k, r.get::<_, String>(i)?)))
            .collect::<rusqlite::Result<_>>()?;
        let sum: f64 = r.get(n)?;
        let count = r.get::<_, i64>(n + 1)? as u64;
        let mut buckets = Vec::with_capacity(bounds.len() + 1);
        for (i, b) in bounds.iter().chain([f64::INFINITY].iter()).enumerate() {
            buckets.push((*b, r.get::<_, Option<i64>>(n + 2 + i)?.unwrap_or(0) as u64));
        }
        Ok(Histogram { labels, sum, count, buckets })
    })?;
    rows.collect()
}

impl LedgerCollector {
    fn snapshot(&self) -> crate::Result<Snapshot> {
        self.ledger.read(|c| {
            let status_names: Vec<(i64, &str)> = [
                DeploymentStatus::Success,
                DeploymentStatus::Failure,
                DeploymentStatus::RolledBack,
                DeploymentStatus::Unchanged,
                DeploymentStatus::Denied,
            ]
            .iter()
            .map(|s| (s.code(), s.as_str()))
            .collect();
            let names = |kind| Ledger::names(c, kind);
            let (services, teams, envs) = (names(NameKind::Service)?, names(NameKind::Team)?, names(NameKind::Environment)?);
            let name = |m: &std::collections::HashMap<i64, String>, id: i64| m.get(&id).cloned().unwrap_or_default();

            let mut stmt = c.prepare(
                "SELECT team, service, environment, status, count(*), sum(rollback) FROM deployments
                 WHERE status != 4 GROUP BY team, service, environment, status",
            )?;
            let mut deployments = Vec::new();
            let mut rollbacks: std::collections::BTreeMap<(i64, i64, i64), u64> = Default::default();
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (team, service, env, status): (i64, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let result = status_names.iter().find(|(code, _)| *code == status).map_or("unknown", |(_, n)| n);
                deployments.push((
                    vec![
                        ("team", name(&teams, team)),
                        ("service", name(&services, service)),
                        ("environment", name(&envs, env)),
                        ("result", result.to_string()),
                    ],
                    r.get::<_, i64>(4)? as u64,
                ));
                *rollbacks.entry((team, service, env)).or_default() += r.get::<_, i64>(5)? as u64;
            }
            let rollbacks = rollbacks
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|((t, s, e), n)| (vec![("team", name(&teams, t)), ("service", name(&services, s)), ("environment", name(&envs, e))], n))
                .collect();

            let durations = histogram_rows(
                c,
                &format!(
                    "SELECT t.name, e.name, coalesce(sum(finished_at - started_at), 0), count(*), {}
                     FROM deployments d JOIN names t ON t.id = d.team JOIN names e ON e.id = d.environment
                     WHERE d.status IN (1, 2, 3) AND d.finished_at IS NOT NULL GROUP BY t.name, e.name",
                    bucket_sql("(finished_at - started_at)", &DURATION_BUCKETS)
                ),
                &DURATION_BUCKETS,
                &["team", "environment"],
            )?;

            let mut stmt = c.prepare(
                "SELECT t.name, e.name, a.result, count(*) FROM activity a
                 JOIN names t ON t.id = a.team JOIN names e ON e.id = a.environment
                 WHERE a.kind = 2 GROUP BY t.name, e.name, a.result",
            )?;
            let policy = stmt
                .query_map([], |r| Ok((vec![("team", r.get(0)?), ("environment", r.get(1)?), ("result", r.get(2)?)], r.get::<_, i64>(3)? as u64)))?
                .collect::<rusqlite::Result<_>>()?;
            let policy_durations = histogram_rows(
                c,
                &format!(
                    "SELECT e.name, coalesce(sum(json_extract(detail, '$.duration_seconds')), 0), count(*), {}
                     FROM activity a JOIN names e ON e.id = a.environment WHERE a.kind = 2 GROUP BY e.name",
                    bucket_sql("coalesce(json_extract(detail, '$.duration_seconds'), 0)", &POLICY_BUCKETS)
                ),
                &POLICY_BUCKETS,
                &["environment"],
            )?;
            let mut stmt = c.prepare(
                "SELECT t.name, e.name, coalesce(json_extract(a.detail, '$.engine'), 'unknown'), count(*) FROM activity a
                 JOIN names t ON t.id = a.team JOIN names e ON e.id = a.environment
                 WHERE a.kind = 1 GROUP BY 1, 2, 3",
            )?;
            let databases = stmt
                .query_map([], |r| Ok((vec![("team", r.get(0)?), ("environment", r.get(1)?), ("engine", r.get(2)?)], r.get::<_, i64>(3)? as u64)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Snapshot { deployments, rollbacks, durations, policy, policy_durations, databases })
        })
    }
}

impl Collector for LedgerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snapshot = match self.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the ledger for /metrics");
                return Err(fmt::Error);
            }
        };
        counters(
            &mut enc,
            "deployments",
            "Deployments by team, service, environment and result.",
            &snapshot.deployments,
        )?;
        counters(&mut enc, "rollbacks", "Rollbacks by team, service and environment.", &snapshot.rollbacks)?;
        histograms(&mut enc, "deployment_duration", "Duration of finished deployments.", &snapshot.durations)?;
        counters(
            &mut enc,
            "policy_evaluations",
            "Policy decisions by team, environment and result.",
            &snapshot.policy,
        )?;
        histograms(
            &mut enc,
            "policy_evaluation_duration",
            "Duration of policy evaluations.",
            &snapshot.policy_durations,
        )?;
        counters(
            &mut enc,
            "database_provisions",
            "Databases provisioned by team, environment and engine.",
            &snapshot.databases,
        )?;

        // DORA gauges for production over the last 30 days, one series per team.
        let now = self.now();
        let reports = self.ledger.dora_by(&DoraQuery::new(now), GroupBy::Team).map_err(|e| {
            tracing::error!(error = %e, "cannot compute DORA for /metrics");
            fmt::Error
        })?;
        let series = |f: &dyn Fn(&crate::DoraReport) -> Option<f64>| -> Vec<(Labels, f64)> {
            reports
                .iter()
                .filter_map(|r| {
                    f(r).map(|v| {
                        (vec![("team", r.team.clone().unwrap_or_default()), ("environment", r.environment.clone())], v)
                    })
                })
                .collect()
        };
        gauges(
            &mut enc,
            "dora_deployment_frequency_per_day",
            "Successful production deployments per day over 30 days.",
            None,
            &series(&|r| Some(r.deployment_frequency.per_day)),
        )?;
        gauges(
            &mut enc,
            "dora_lead_time_median",
            "Median lead time for changes over 30 days.",
            Some(&Unit::Seconds),
            &series(&|r| r.lead_time.median_seconds),
        )?;
        gauges(
            &mut enc,
            "dora_change_failure_ratio",
            "Change failure rate over 30 days.",
            None,
            &series(&|r| r.change_failure_rate.ratio),
        )?;
        gauges(
            &mut enc,
            "dora_recovery_time_median",
            "Median failed-deployment recovery time over 30 days.",
            Some(&Unit::Seconds),
            &series(&|r| r.recovery_time.median_seconds),
        )?;
        gauges(
            &mut enc,
            "dora_rework_ratio",
            "Deployment rework rate over 30 days.",
            None,
            &series(&|r| r.rework_rate.ratio),
        )?;

        let adoption = self.ledger.adoption(now, 30 * 86_400, &Default::default()).map_err(|_| fmt::Error)?;
        gauges(
            &mut enc,
            "adoption_services",
            "Services deployed in the last 30 days.",
            None,
            &[(vec![], adoption.services as f64)],
        )?;
        gauges(
            &mut enc,
            "adoption_teams",
            "Teams that deployed in the last 30 days.",
            None,
            &[(vec![], adoption.teams_on_platform.len() as f64)],
        )?;
        if let Some(r) = adoption.golden_path_ratio {
            gauges(
                &mut enc,
                "golden_path_ratio",
                "Deployments without escape hatches over all, last 30 days.",
                None,
                &[(vec![], r)],
            )?;
        }
        Ok(())
    }
}
