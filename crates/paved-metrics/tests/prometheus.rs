//! The Prometheus exposition: counters never go down, whatever is recorded between scrapes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use paved_metrics::prom::{LedgerCollector, encode, registry_with};
use paved_metrics::{ActivityEvent, ActivityKind, DeploymentEvent, DeploymentStatus, Ledger, LedgerEvent, parse_time};

fn t(s: &str) -> i64 {
    parse_time("t", s).unwrap()
}

/// Every sample of a counter or histogram (`_total`, `_bucket`, `_count`, `_sum`) by series.
fn monotone_samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .any(|s| name.ends_with(s))
                .then(|| (series.to_string(), value.parse().expect("a number")))
        })
        .collect()
}

fn deployment(id: &str, status: DeploymentStatus, finished: &str, rollback: bool) -> LedgerEvent {
    let mut d = DeploymentEvent::new(id, "api", "payments", "production", status, t(finished) - 90, t(finished));
    d.rollback = rollback;
    LedgerEvent::Deployment(d)
}

#[test]
fn counters_never_decrease_around_a_rollback_or_a_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open_in(dir.path()).unwrap());
    ledger
        .write(&[
            deployment("v1", DeploymentStatus::Success, "2026-11-20T10:00:00Z", false),
            deployment("v2", DeploymentStatus::Success, "2026-11-21T10:00:00Z", false),
            deployment("refused", DeploymentStatus::Failure, "2026-11-21T11:00:00Z", false),
            LedgerEvent::Activity(ActivityEvent::new(
                ActivityKind::PolicyDecision,
                "api",
                "payments",
                "production",
                "allowed",
                serde_json::json!({"duration_seconds": 0.000_02}),
            )),
        ])
        .unwrap();
    let registry =
        registry_with(LedgerCollector::new(ledger.clone()).at(t("2026-11-30T00:00:00Z")).cache_for(Duration::ZERO));
    let first = encode(&registry).unwrap();
    assert!(first.trim_end().ends_with("# EOF"), "{first}");

    // A rollback run marks v2 as a failed change; "refused" is re-imported as a success (a
    // corrected record); v1 is re-recorded as it was.
    ledger.write(&[deployment("rb", DeploymentStatus::Success, "2026-11-21T12:00:00Z", true)]).unwrap();
    let corrected = r#"{"type":"deployment","id":"refused","service":"api","team":"payments","environment":"production","status":"success","started_at":"2026-11-21T10:58:30Z","finished_at":"2026-11-21T11:00:00Z"}"#;
    ledger.import(corrected.as_bytes(), true).unwrap();
    ledger.write(&[deployment("v1", DeploymentStatus::Success, "2026-11-20T10:00:00Z", false)]).unwrap();
    let second = encode(&registry).unwrap();

    let (before, after) = (monotone_samples(&first), monotone_samples(&second));
    assert!(!before.is_empty());
    for (series, value) in &before {
        let now = after.get(series).unwrap_or_else(|| panic!("{series} disappeared:\n{second}"));
        assert!(now >= value, "{series} went down from {value} to {now}");
    }
    let key = |result: &str| {
        format!(
            r#"paved_deployments_total{{team="payments",service="api",environment="production",result="{result}"}}"#
        )
    };
    assert_eq!((before[&key("success")], before[&key("failure")]), (2.0, 1.0));
    // Counted once each, with the result they first finished with; the rollback run is new.
    assert_eq!((after[&key("success")], after[&key("failure")]), (3.0, 1.0));
    assert_eq!(after[r#"paved_rollbacks_total{team="payments",service="api",environment="production"}"#], 1.0);
    // The DORA gauges do move: v2 is now a failed change.
    assert!(
        first.contains(r#"paved_dora_change_failure_ratio{team="payments",environment="production"} 0.0"#),
        "{first}"
    );
    assert!(
        second.contains(r#"paved_dora_change_failure_ratio{team="payments",environment="production"} 0.3333"#),
        "{second}"
    );
    // Histograms: 90 s deployments in the le=120 bucket, the policy decision in le=0.0001.
    assert!(
        second.contains(
            r#"paved_deployment_duration_seconds_bucket{le="120.0",team="payments",environment="production"} 4"#
        ),
        "{second}"
    );
    assert!(
        second.contains(r#"paved_policy_evaluation_duration_seconds_bucket{le="0.0001",environment="production"} 1"#),
        "{second}"
    );
}

#[test]
fn gauges_are_cached_and_counters_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open_in(dir.path()).unwrap());
    let registry = registry_with(
        LedgerCollector::new(ledger.clone()).at(t("2026-11-30T00:00:00Z")).cache_for(Duration::from_secs(3600)),
    );
    let empty = encode(&registry).unwrap();
    assert!(empty.contains("paved_adoption_services 0"), "{empty}");
    ledger.write(&[deployment("v1", DeploymentStatus::Success, "2026-11-20T10:00:00Z", false)]).unwrap();
    let next = encode(&registry).unwrap();
    assert!(next.contains("paved_adoption_services 0"), "cached: {next}");
    assert!(next.contains(r#"result="success"} 1"#), "counters are read fresh: {next}");
}

#[test]
fn ticket_categories_are_a_bounded_label() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open_in(dir.path()).unwrap());
    let lines = [
        r#"{"type":"support_ticket","id":"a","team":"shop","category":"Databases","opened_at":"2026-11-10T10:00:00Z"}"#,
        r#"{"type":"support_ticket","id":"b","team":"shop","category":"urgent!! call me 555-0100","opened_at":"2026-11-10T10:00:00Z"}"#,
        r#"{"type":"support_ticket","id":"c","team":"shop","category":"my snowflake","opened_at":"2026-11-10T10:00:00Z"}"#,
    ];
    ledger.import(lines.join("\n").as_bytes(), true).unwrap();
    let text = encode(&registry_with(LedgerCollector::new(ledger).at(t("2026-11-30T00:00:00Z")))).unwrap();
    assert!(text.contains(r#"paved_support_tickets_total{team="shop",category="databases"} 1"#), "{text}");
    assert!(text.contains(r#"paved_support_tickets_total{team="shop",category="other"} 2"#), "{text}");
    assert!(!text.contains("555"), "{text}");
}
