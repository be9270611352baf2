//! Prometheus: a collector over the ledger, so that every paved process (CLI runs, services
//! embedding the library) shows up in one consistent exposition.
//!
//! * **Counters** (`paved_deployments_total`, `paved_rollbacks_total`, histograms, …) read the
//!   totals the ledger keeps at write time: each counts an immutable fact once, when it is
//!   first recorded, so a counter never goes down (a later rollback or a re-import does not
//!   move a deployment between results) and a scrape reads a few hundred rows.
//! * **Gauges** (DORA keys and adoption over the last 30 days) are computed from the ledger on
//!   its read connection, and cached for a short time (10 s by default,
//!   [`LedgerCollector::cache_for`]) so that several Prometheus servers scraping at once cost
//!   one computation.
//!
//! Labels are bounded (team, service, environment, result, engine, category: never a SHA or
//! an id). Names follow prometheus-client's conventions: counters get `_total`, and units
//! (base units only: seconds) their suffix. The exposition is OpenMetrics, encoded by
//! prometheus-client itself.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::dora::{DoraQuery, DoraReport, GroupBy};
use crate::ledger::Ledger;
pub use crate::tally::{DURATION_BUCKETS, POLICY_BUCKETS, TICKET_CATEGORIES};
use crate::tally::{Family, Series};

/// The OpenMetrics content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long computed gauges are reused by default.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(10);

/// The window of the DORA and adoption gauges.
pub const GAUGE_WINDOW: i64 = 30 * 86_400;

type Labels = Vec<(&'static str, String)>;

/// A DORA gauge: name, help, unit and the figure of a report.
type DoraGauge<'a> = (&'a str, &'a str, Option<&'a Unit>, &'a dyn Fn(&DoraReport) -> Option<f64>);

/// The gauges of one computation.
#[derive(Debug)]
struct Gauges {
    dora: Vec<DoraReport>,
    adoption: crate::AdoptionReport,
}

/// Encodes the ledger for Prometheus on every scrape.
#[derive(Debug)]
pub struct LedgerCollector {
    ledger: Arc<Ledger>,
    /// A fixed end of the windows; `None` reads the clock on every scrape.
    at: Option<i64>,
    cache_for: Duration,
    cache: Mutex<Option<(Instant, Arc<Gauges>)>>,
}

impl LedgerCollector {
    /// A collector over `ledger`; windows end at the time of each scrape.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        LedgerCollector { ledger, at: None, cache_for: DEFAULT_CACHE, cache: Mutex::new(None) }
    }

    /// Windows end at the fixed time `now` (Unix seconds) instead of the scrape's time, and
    /// events after it are ignored: for backfills and reproducible tests.
    pub fn at(mut self, now: i64) -> Self {
        self.at = Some(now);
        self
    }

    /// Reuses computed gauges (DORA, adoption) for `ttl`; `Duration::ZERO` computes them on
    /// every scrape. Counters are always read fresh.
    pub fn cache_for(mut self, ttl: Duration) -> Self {
        self.cache_for = ttl;
        self
    }

    fn now(&self) -> i64 {
        self.at.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp())
    }

    fn gauges(&self) -> crate::Result<Arc<Gauges>> {
        let mut cache = self.cache.lock().expect("gauge cache lock");
        if let Some((at, gauges)) = &*cache
            && at.elapsed() < self.cache_for
        {
            return Ok(gauges.clone());
        }
        let now = self.now();
        // The two reports read different rows: compute them side by side.
        let (dora, adoption) = std::thread::scope(|s| {
            let adoption = s.spawn(|| self.ledger.adoption_report(now, GAUGE_WINDOW, &Default::default(), false));
            let dora = self.ledger.dora_by(&DoraQuery::new(now).window(GAUGE_WINDOW), GroupBy::Team);
            (dora, adoption.join().expect("the adoption thread does not panic"))
        });
        let (dora, adoption) = (dora?, adoption?);
        let gauges = Arc::new(Gauges { dora, adoption });
        *cache = Some((Instant::now(), gauges.clone()));
        Ok(gauges)
    }
}

/// A registry with paved's collector registered: serve it from your own service with
/// [`encode`].
pub fn registry(ledger: Arc<Ledger>) -> Registry {
    registry_with(LedgerCollector::new(ledger))
}

/// A registry with the given collector registered (e.g. [`LedgerCollector::at`] a fixed time).
pub fn registry_with(collector: LedgerCollector) -> Registry {
    let mut registry = Registry::with_prefix("paved");
    registry.register_collector(Box::new(collector));
    registry
}

/// The registry's exposition in the OpenMetrics text format (prometheus-client's encoder).
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

fn labels_of(family: Family, s: &Series) -> Labels {
    family.label_names().iter().copied().zip(s.labels.iter().cloned()).collect()
}

fn counters(
    enc: &mut DescriptorEncoder,
    all: &HashMap<Family, Vec<Series>>,
    family: Family,
    name: &str,
    help: &str,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for s in all.get(&family).map_or(&[][..], Vec::as_slice) {
        let value = s.buckets.first().map_or(0, |b| b.0) as u64;
        m.encode_family(&labels_of(family, s))?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn histograms(
    enc: &mut DescriptorEncoder,
    all: &HashMap<Family, Vec<Series>>,
    family: Family,
    name: &str,
    help: &str,
) -> fmt::Result {
    let bounds = family.bounds().unwrap_or(&[]);
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for s in all.get(&family).map_or(&[][..], Vec::as_slice) {
        let sum = s.buckets.iter().map(|b| b.1).sum();
        let count = s.buckets.iter().map(|b| b.0 as u64).sum();
        // Per-bucket counts; the encoder makes them cumulative.
        let buckets: Vec<(f64, u64)> =
            bounds.iter().copied().chain([f64::INFINITY]).zip(s.buckets.iter().map(|b| b.0 as u64)).collect();
        m.encode_family(&labels_of(family, s))?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
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

impl Collector for LedgerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let fail = |what: &str, e: crate::Error| {
            tracing::error!(error = %e, "cannot read the ledger for /metrics ({what})");
            fmt::Error
        };
        let all = self.ledger.read(crate::tally::read_all).map_err(|e| fail("counters", e))?;
        counters(
            &mut enc,
            &all,
            Family::Deployments,
            "deployments",
            "Finished deployments by team, service, environment and the result they finished with.",
        )?;
        counters(&mut enc, &all, Family::Rollbacks, "rollbacks", "Rollback runs by team, service and environment.")?;
        histograms(
            &mut enc,
            &all,
            Family::DeploymentDuration,
            "deployment_duration",
            "Duration of finished deployments.",
        )?;
        counters(
            &mut enc,
            &all,
            Family::PolicyEvaluations,
            "policy_evaluations",
            "Policy decisions by team, environment and result.",
        )?;
        histograms(
            &mut enc,
            &all,
            Family::PolicyDuration,
            "policy_evaluation_duration",
            "Duration of policy evaluations.",
        )?;
        counters(
            &mut enc,
            &all,
            Family::DatabaseProvisions,
            "database_provisions",
            "Databases provisioned by team, environment and engine.",
        )?;
        counters(
            &mut enc,
            &all,
            Family::SupportTickets,
            "support_tickets",
            "Support tickets opened by team and category (tickets per week: increase over 1w); categories outside the known set count as other.",
        )?;
        counters(&mut enc, &all, Family::SurveyResponses, "survey_responses", "Developer survey answers by team.")?;

        // Gauges: a failure to compute them leaves them out (and is logged), not the counters.
        let g = match self.gauges() {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "cannot compute the DORA and adoption gauges for /metrics");
                return Ok(());
            }
        };
        // DORA gauges: production, the last 30 days, one series per team.
        let series = |f: &dyn Fn(&DoraReport) -> Option<f64>| -> Vec<(Labels, f64)> {
            g.dora
                .iter()
                .filter_map(|r| {
                    f(r).map(|v| {
                        (vec![("team", r.team.clone().unwrap_or_default()), ("environment", r.environment.clone())], v)
                    })
                })
                .collect()
        };
        let rows: [DoraGauge<'_>; 10] = [
            ("dora_deployments", "Successful production deployments over 30 days.", None, &|r| {
                Some(r.deployment_frequency.deployments as f64)
            }),
            ("dora_deployment_days", "UTC days with a successful production deployment over 30 days.", None, &|r| {
                Some(r.deployment_frequency.deployment_days as f64)
            }),
            ("dora_lead_time_median", "Median lead time for changes over 30 days.", Some(&Unit::Seconds), &|r| {
                r.lead_time.median_seconds
            }),
            ("dora_lead_time_p90", "90th percentile lead time for changes over 30 days.", Some(&Unit::Seconds), &|r| {
                r.lead_time.p90_seconds
            }),
            ("dora_change_failure_ratio", "Change failure rate over 30 days.", None, &|r| r.change_failure_rate.ratio),
            (
                "dora_recovery_time_median",
                "Median failed deployment recovery time over 30 days.",
                Some(&Unit::Seconds),
                &|r| r.recovery_time.median_seconds,
            ),
            (
                "dora_unrecovered_failures",
                "Failed production deployments over 30 days not recovered yet.",
                None,
                &|r| Some(r.recovery_time.unrecovered as f64),
            ),
            ("dora_rework_ratio", "Deployment rework rate over 30 days.", None, &|r| r.rework_rate.ratio),
            (
                "dora_incident_restore_time_median",
                "Median restore time of incidents linked to no deployment, over 30 days.",
                Some(&Unit::Seconds),
                &|r| r.incidents.median_seconds,
            ),
            (
                "dora_failed_to_apply",
                "Deployments over 30 days that never reached production (in no DORA key).",
                None,
                &|r| Some(r.failed_to_apply as f64),
            ),
        ];
        for (name, help, unit, f) in rows {
            gauges(&mut enc, name, help, unit, &series(f))?;
        }

        let a = &g.adoption;
        let one = |v: f64| vec![(Labels::new(), v)];
        let optional = |v: Option<f64>| v.map(one).unwrap_or_default();
        gauges(&mut enc, "adoption_services", "Services deployed in the last 30 days.", None, &one(a.services as f64))?;
        gauges(
            &mut enc,
            "adoption_teams",
            "Teams that deployed in the last 30 days.",
            None,
            &one(a.teams_on_platform.len() as f64),
        )?;
        gauges(
            &mut enc,
            "golden_path_ratio",
            "Deployments without escape hatches over all, last 30 days.",
            None,
            &optional(a.golden_path_ratio),
        )?;
        gauges(
            &mut enc,
            "developer_nps",
            "Net Promoter Score of developer survey answers over 30 days (-100 to 100).",
            None,
            &optional(a.satisfaction.nps),
        )?;
        gauges(
            &mut enc,
            "developer_survey_answers",
            "Developer survey answers over 30 days.",
            None,
            &one(a.satisfaction.responses as f64),
        )?;
        gauges(&mut enc, "support_tickets_open", "Support tickets open now.", None, &one(a.support.open as f64))?;
        Ok(())
    }
}
