//! DORA figures on hand-computed datasets: every key, every edge case the design names.
//!
//! Window: `[2026-10-31T00:00:00Z, 2026-11-30T00:00:00Z]` (30 days, both ends included), production.

use paved_metrics::{DeploymentEvent, DeploymentStatus, DoraQuery, GroupBy, Ledger, LedgerEvent, Level, parse_time};
use serde_json::{Value, json};

fn t(s: &str) -> i64 {
    parse_time("t", s).unwrap()
}

const NOW: &str = "2026-11-30T00:00:00Z";

#[allow(clippy::too_many_arguments)]
fn dep(
    id: &str,
    service: &str,
    team: &str,
    env: &str,
    status: &str,
    finished: &str,
    commits: &[(&str, &str)],
    unplanned: bool,
) -> String {
    let finished_at = t(finished);
    let started = paved_metrics::format_time(finished_at - 600);
    let commits: Vec<Value> = commits.iter().map(|(sha, at)| json!({"sha": sha, "committed_at": at})).collect();
    json!({
        "type": "deployment", "id": id, "service": service, "team": team, "environment": env, "status": status,
        "started_at": started, "finished_at": finished, "commits": commits, "unplanned": unplanned,
    })
    .to_string()
}

fn incident(
    id: &str,
    service: &str,
    team: &str,
    deployment: Option<&str>,
    opened: &str,
    resolved: Option<&str>,
) -> String {
    let mut v = json!({"type": "incident", "id": id, "service": service, "team": team, "environment": "production", "opened_at": opened});
    if let Some(d) = deployment {
        v["deployment_id"] = json!(d);
    }
    if let Some(r) = resolved {
        v["resolved_at"] = json!(r);
    }
    v.to_string()
}

/// The dataset of the module documentation, with the answers computed by hand in comments.
fn dataset() -> Vec<String> {
    let p = "production";
    vec![
        // pay (team payments)
        dep(
            "d1",
            "pay",
            "payments",
            p,
            "success",
            "2026-11-01T10:10:00Z",
            &[("c1", "2026-10-31T10:10:00Z"), ("c2", "2026-11-01T09:10:00Z")],
            false,
        ),
        dep("d2", "pay", "payments", p, "failure", "2026-11-02T12:00:00Z", &[("c3", "2026-11-02T08:00:00Z")], false),
        // c1 deployed a second time: it counts once, at d1.
        dep(
            "d3",
            "pay",
            "payments",
            p,
            "success",
            "2026-11-02T14:00:00Z",
            &[("c3", "2026-11-02T08:00:00Z"), ("c1", "2026-10-31T10:10:00Z")],
            false,
        ),
        dep("d4", "pay", "payments", p, "rolled_back", "2026-11-03T10:00:00Z", &[], false),
        // c4: lead 0, c5: negative lead: both dropped.
        dep(
            "d5",
            "pay",
            "payments",
            p,
            "success",
            "2026-11-03T10:30:00Z",
            &[("c4", "2026-11-03T10:30:00Z"), ("c5", "2026-11-03T11:00:00Z")],
            true,
        ),
        dep("d6", "pay", "payments", p, "success", "2026-11-04T00:00:00Z", &[], false),
        // Never recovered.
        dep("d7", "pay", "payments", p, "failure", "2026-11-29T23:00:00Z", &[], false),
        // search (team discovery)
        dep(
            "e1",
            "search",
            "discovery",
            p,
            "success",
            "2026-10-31T00:00:00Z",
            &[("s1", "2026-10-30T00:00:00Z")],
            false,
        ),
        dep("e2", "search", "discovery", p, "success", "2026-11-30T00:00:01Z", &[], false),
        dep(
            "e3",
            "search",
            "discovery",
            p,
            "success",
            "2026-10-30T23:59:59Z",
            &[("s2", "2026-10-30T00:00:00Z")],
            false,
        ),
        dep(
            "e4",
            "search",
            "discovery",
            "staging",
            "success",
            "2026-11-10T00:00:00Z",
            &[("s3", "2026-11-09T00:00:00Z")],
            false,
        ),
        incident("i1", "pay", "payments", Some("d6"), "2026-11-04T01:00:00Z", Some("2026-11-04T02:00:00Z")),
        incident("i2", "search", "discovery", Some("e1"), "2026-11-20T00:00:00Z", None),
        incident("i3", "search", "discovery", None, "2026-10-30T00:00:00Z", Some("2026-11-01T00:00:00Z")),
    ]
}

fn ledger(lines: &[String]) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_in(dir.path()).unwrap();
    let report = ledger.import(lines.join("\n").as_bytes(), true).unwrap();
    assert!(report.is_clean(), "{:?}", report.rejected);
    (dir, ledger)
}

fn query() -> DoraQuery {
    DoraQuery::new(t(NOW))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn all_teams() {
    let (_d, l) = ledger(&dataset());
    let r = l.dora(&query()).unwrap();
    // Finished in the window: d1-d7 and e1 (on the start boundary); e2 ends a second after `now`
    // (a historical `now` ignores it), e3 a second before the window. An end exactly at `now`
    // counts: see windows_include_both_ends. d2 and d7 failed to apply: in no key.
    assert_eq!(r.failed_to_apply, 2);
    // Production deployments: d1 d3 d4 d5 d6 e1; successful: all but d4 (rolled back).
    assert_eq!(r.deployment_frequency.deployments, 5);
    assert!(close(r.deployment_frequency.per_day, 5.0 / 30.0));
    // Deployment days: Oct 31, Nov 1, 2, 3, 4. Weekly buckets back from Nov 30: (Nov 23, Nov 30],
    // (Nov 16, 23], (Nov 9, 16], (Nov 2, 9] holding Nov 2 14:00, Nov 3, Nov 4: [0, 0, 0, 3], median 0;
    // Oct 31 and Nov 1 are before the 4 whole weeks. One 30-day bucket: 5 days, so medium.
    assert_eq!(r.deployment_frequency.deployment_days, 5);
    assert_eq!(r.deployment_frequency.weekly_deployment_days_median, 0.0);
    assert_eq!(r.deployment_frequency.monthly_deployment_days_median, 5.0);
    assert_eq!(r.deployment_frequency.level, Level::Medium);
    // Leads: c2 3600, c3 21600, c1 86400, s1 86400.
    assert_eq!(r.lead_time.changes, 4);
    assert_eq!(r.lead_time.median_seconds, Some(54_000.0));
    assert_eq!(r.lead_time.p90_seconds, Some(86_400.0));
    assert_eq!(r.lead_time.level, Some(Level::Elite));
    // Failed: d4 (rolled back), d6 (incident i1), e1 (incident i2): 3 of 6.
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (3, 6));
    assert_eq!((r.change_failure_rate.rolled_back, r.change_failure_rate.incident_linked), (1, 2));
    assert_eq!(r.change_failure_rate.ratio, Some(0.5));
    assert_eq!(r.change_failure_rate.level, Some(Level::Low));
    // Recovery: d4 rolled back automatically, 600 s (its own duration); d6 from its end (before
    // i1 opened) to i1's resolution, 7200 s; e1's incident is unresolved.
    assert_eq!(r.recovery_time.median_seconds, Some(3_900.0));
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (2, 1));
    assert_eq!(r.recovery_time.level, Some(Level::High));
    // Rework: d5 is marked; e1 started (Oct 30 23:50) while i3 was open (Oct 30 → Nov 1).
    assert_eq!((r.rework_rate.unplanned, r.rework_rate.inferred, r.rework_rate.deployments), (2, 1, 6));
    assert!(close(r.rework_rate.ratio.unwrap(), 2.0 / 6.0));
    // i3, the one unlinked incident, opened before the window.
    assert_eq!((r.incidents.resolved, r.incidents.unresolved, r.incidents.median_seconds), (0, 0, None));
}

#[test]
fn json_has_exactly_the_documented_keys() {
    let (_d, l) = ledger(&dataset());
    let v = serde_json::to_value(l.dora(&query()).unwrap()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = [
        "window_days",
        "now",
        "environment",
        "team",
        "service",
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "rework_rate",
        "incidents",
        "failed_to_apply",
        "definitions",
        "levels_source",
    ];
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(v["window_days"], json!(30));
    assert_eq!(v["now"], json!(NOW));
    assert_eq!(v["environment"], json!("production"));
    assert_eq!(v["team"], Value::Null);
    assert_eq!(v["levels_source"], json!("DORA 2023"));
    assert_eq!(v["definitions"], json!("paved DORA v2 (dora.dev, Four Keys, Apache DevLake)"));
    assert_eq!(v["failed_to_apply"], json!(2));
    assert_eq!(
        v["deployment_frequency"],
        json!({"per_day": 5.0 / 30.0, "deployments": 5, "deployment_days": 5, "weekly_deployment_days_median": 0.0,
               "monthly_deployment_days_median": 5.0, "level": "medium"})
    );
    assert_eq!(
        v["lead_time"],
        json!({"median_seconds": 54000.0, "p90_seconds": 86400.0, "changes": 4, "level": "elite"})
    );
    assert_eq!(
        v["change_failure_rate"],
        json!({"ratio": 0.5, "failed": 3, "rolled_back": 1, "incident_linked": 2, "rollout_failed": 0, "deployments": 6,
               "level": "low"})
    );
    assert_eq!(
        v["recovery_time"],
        json!({"median_seconds": 3900.0, "recovered": 2, "unrecovered": 1, "level": "high"})
    );
    assert_eq!(v["rework_rate"], json!({"ratio": 2.0 / 6.0, "unplanned": 2, "inferred": 1, "deployments": 6}));
    assert_eq!(v["incidents"], json!({"median_seconds": null, "resolved": 0, "unresolved": 0}));
}

#[test]
fn per_team() {
    let (_d, l) = ledger(&dataset());
    let pay = l.dora(&query().team(Some("payments"))).unwrap();
    assert_eq!(pay.deployment_frequency.deployments, 4);
    assert_eq!(pay.deployment_frequency.deployment_days, 4);
    assert_eq!(pay.deployment_frequency.level, Level::Medium);
    assert_eq!(pay.lead_time.median_seconds, Some(21_600.0));
    assert_eq!(pay.lead_time.p90_seconds, Some(73_440.0)); // 21600 + 0.8 * (86400 - 21600)
    assert_eq!((pay.change_failure_rate.failed, pay.change_failure_rate.deployments), (2, 5));
    assert_eq!((pay.recovery_time.recovered, pay.recovery_time.unrecovered), (2, 0));
    assert_eq!(pay.recovery_time.median_seconds, Some(3_900.0));
    assert_eq!(pay.failed_to_apply, 2);
    assert_eq!((pay.rework_rate.unplanned, pay.rework_rate.inferred), (1, 0));

    let disc = l.dora(&query().team(Some("discovery"))).unwrap();
    assert_eq!(disc.deployment_frequency.deployments, 1);
    assert_eq!(disc.deployment_frequency.level, Level::Medium); // one day in the 30-day bucket
    assert_eq!(disc.lead_time.median_seconds, Some(86_400.0));
    assert_eq!(disc.lead_time.level, Some(Level::High)); // not below one day
    assert_eq!(disc.change_failure_rate.ratio, Some(1.0));
    assert_eq!(disc.recovery_time.median_seconds, None);
    assert_eq!(disc.recovery_time.level, None);
    assert_eq!((disc.recovery_time.recovered, disc.recovery_time.unrecovered), (0, 1));
    assert_eq!(disc.rework_rate.ratio, Some(1.0)); // inferred: i3 was open when e1 started

    let by = l.dora_by(&query(), GroupBy::Team).unwrap();
    assert_eq!(by.iter().map(|r| r.team.clone().unwrap()).collect::<Vec<_>>(), ["discovery", "payments"]);
    assert_eq!(by[0], disc);
    assert_eq!(by[1], pay);
    let by_service = l.dora_by(&query(), GroupBy::Service).unwrap();
    assert_eq!(by_service.len(), 2);
    assert_eq!(by_service[0].service.as_deref(), Some("pay"));
    assert_eq!(by_service[0].deployment_frequency.deployments, 4);
}

#[test]
fn other_environments_and_windows() {
    let (_d, l) = ledger(&dataset());
    let staging = l.dora(&query().environment("staging")).unwrap();
    assert_eq!(staging.deployment_frequency.deployments, 1);
    assert_eq!(staging.lead_time.median_seconds, Some(86_400.0));
    // A window ending before everything.
    let early = l.dora(&DoraQuery::new(t("2026-10-01T00:00:00Z"))).unwrap();
    assert_eq!(early.deployment_frequency.deployments, 0);
    // One day holding d2 (failed to apply: no failed change, nothing to recover) and d3.
    let day = l.dora(&DoraQuery::new(t("2026-11-03T00:00:00Z")).window(86_400)).unwrap();
    assert_eq!(day.window_days, serde_json::Number::from(1));
    assert_eq!((day.deployment_frequency.deployments, day.change_failure_rate.deployments), (1, 1));
    assert_eq!((day.failed_to_apply, day.change_failure_rate.failed), (1, 0));
    assert_eq!(day.recovery_time.median_seconds, None);
    let half = l.dora(&DoraQuery::new(t(NOW)).window(43_200)).unwrap();
    assert_eq!(serde_json::to_value(&half).unwrap()["window_days"], json!(0.5));
}

#[test]
fn no_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let v = serde_json::to_value(l.dora(&query()).unwrap()).unwrap();
    assert_eq!(
        v["deployment_frequency"],
        json!({"per_day": 0.0, "deployments": 0, "deployment_days": 0, "weekly_deployment_days_median": 0.0,
               "monthly_deployment_days_median": 0.0, "level": "low"})
    );
    assert_eq!(v["lead_time"], json!({"median_seconds": null, "p90_seconds": null, "changes": 0, "level": null}));
    assert_eq!(
        v["change_failure_rate"],
        json!({"ratio": null, "failed": 0, "rolled_back": 0, "incident_linked": 0, "rollout_failed": 0, "deployments": 0,
               "level": null})
    );
    assert_eq!(v["recovery_time"], json!({"median_seconds": null, "recovered": 0, "unrecovered": 0, "level": null}));
    assert_eq!(v["rework_rate"], json!({"ratio": null, "unplanned": 0, "inferred": 0, "deployments": 0}));
    assert_eq!(v["incidents"], json!({"median_seconds": null, "resolved": 0, "unresolved": 0}));
    assert_eq!(v["failed_to_apply"], json!(0));
    assert!(l.dora_by(&query(), GroupBy::Team).unwrap().is_empty());
    // An unknown team is no data, not an error.
    assert_eq!(l.dora(&query().team(Some("nobody"))).unwrap().deployment_frequency.deployments, 0);
}

#[test]
fn reimporting_an_id_updates_and_recomputes_first_deployments() {
    let (_d, l) = ledger(&dataset());
    // d1 turns out to have failed: c1's first successful deployment becomes d3; c2 has none.
    let again = dep(
        "d1",
        "pay",
        "payments",
        "production",
        "failure",
        "2026-11-01T10:10:00Z",
        &[("c1", "2026-10-31T10:10:00Z"), ("c2", "2026-11-01T09:10:00Z")],
        false,
    );
    let report = l.import(again.as_bytes(), true).unwrap();
    assert_eq!(report.deployments, 1);
    assert_eq!(l.count_deployments().unwrap(), 11, "updated, not duplicated");
    let r = l.dora(&query()).unwrap();
    assert_eq!(r.deployment_frequency.deployments, 4);
    assert_eq!((r.failed_to_apply, r.change_failure_rate.deployments), (3, 5));
    // Leads: c3 21600, s1 86400, c1 186600 (d3 at Nov 2 14:00 minus Oct 31 10:10).
    assert_eq!(r.lead_time.changes, 3);
    assert_eq!(r.lead_time.median_seconds, Some(86_400.0));
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (2, 1));
    // And back: success again restores the original answer.
    let back = dep(
        "d1",
        "pay",
        "payments",
        "production",
        "success",
        "2026-11-01T10:10:00Z",
        &[("c1", "2026-10-31T10:10:00Z"), ("c2", "2026-11-01T09:10:00Z")],
        false,
    );
    l.import(back.as_bytes(), true).unwrap();
    assert_eq!(l.dora(&query()).unwrap().lead_time.median_seconds, Some(54_000.0));
    // Incidents too: resolving i2 recovers e1, from its end (Oct 31 00:00, before i2 opened) to
    // the resolution (Nov 20 00:30).
    let resolved =
        incident("i2", "search", "discovery", Some("e1"), "2026-11-20T00:00:00Z", Some("2026-11-20T00:30:00Z"));
    l.import(resolved.as_bytes(), true).unwrap();
    assert_eq!(l.count_incidents().unwrap(), 3);
    let r = l.dora(&query()).unwrap();
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (3, 0));
    assert_eq!(r.recovery_time.median_seconds, Some(7_200.0)); // of 600, 7200, 1729800
}

#[test]
fn deployments_in_progress_unchanged_or_denied_do_not_count() {
    let (_d, l) = ledger(&dataset());
    let mut running = DeploymentEvent::new(
        "r1",
        "pay",
        "payments",
        "production",
        DeploymentStatus::InProgress,
        t("2026-11-10T00:00:00Z"),
        0,
    );
    running.finished_at = None;
    let unchanged = DeploymentEvent::new(
        "u1",
        "pay",
        "payments",
        "production",
        DeploymentStatus::Unchanged,
        t("2026-11-10T00:00:00Z"),
        t("2026-11-10T00:01:00Z"),
    );
    let denied = DeploymentEvent::new(
        "x1",
        "pay",
        "payments",
        "production",
        DeploymentStatus::Denied,
        t("2026-11-10T00:00:00Z"),
        t("2026-11-10T00:00:01Z"),
    );
    l.write(&[LedgerEvent::Deployment(running), LedgerEvent::Deployment(unchanged), LedgerEvent::Deployment(denied)])
        .unwrap();
    let r = l.dora(&query()).unwrap();
    assert_eq!(r.change_failure_rate.deployments, 6);
    assert_eq!(r.failed_to_apply, 2);
}

#[test]
fn a_rollback_marks_the_deployment_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let ok = DeploymentEvent::new(
        "a",
        "pay",
        "payments",
        "production",
        DeploymentStatus::Success,
        t("2026-11-10T00:00:00Z"),
        t("2026-11-10T00:05:00Z"),
    );
    let bad = DeploymentEvent::new(
        "b",
        "pay",
        "payments",
        "production",
        DeploymentStatus::Success,
        t("2026-11-11T00:00:00Z"),
        t("2026-11-11T00:05:00Z"),
    );
    let mut rollback = DeploymentEvent::new(
        "c",
        "pay",
        "payments",
        "production",
        DeploymentStatus::Success,
        t("2026-11-11T01:00:00Z"),
        t("2026-11-11T01:02:00Z"),
    );
    rollback.rollback = true;
    l.write(&[LedgerEvent::Deployment(ok), LedgerEvent::Deployment(bad), LedgerEvent::Deployment(rollback)]).unwrap();
    let r = l.dora(&query()).unwrap();
    // The rollback run is not a deployment; b is a failed change, no longer a successful one.
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (1, 2));
    assert_eq!(r.change_failure_rate.rolled_back, 1);
    assert_eq!(r.deployment_frequency.deployments, 1);
    assert_eq!(r.recovery_time.median_seconds, Some(3_420.0)); // b finished 00:05, the rollback 01:02
    // As of a time before the rollback, b had not failed yet.
    let before = l.dora(&DoraQuery::new(t("2026-11-11T00:30:00Z"))).unwrap();
    assert_eq!((before.change_failure_rate.failed, before.deployment_frequency.deployments), (0, 2));
}

#[test]
fn import_reports_bad_lines_with_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let mut lines = dataset();
    lines.insert(2, "{broken".into());
    lines.insert(5, r#"{"type":"incidnet","id":"x","service":"s","team":"t","environment":"production","opened_at":"2026-11-01T00:00:00Z"}"#.into());
    let input = lines.join("\n");
    let strict = l.import(input.as_bytes(), true).unwrap();
    assert!(strict.aborted);
    assert_eq!(strict.rejected.iter().map(|b| b.line).collect::<Vec<_>>(), [3, 6]);
    assert_eq!(strict.rejected[1].hint.as_deref(), Some("did you mean \"incident\"?"));
    assert_eq!(l.count_deployments().unwrap(), 0, "strict: nothing imported");
    let lenient = l.import(input.as_bytes(), false).unwrap();
    assert!(!lenient.aborted);
    assert_eq!(lenient.rejected.len(), 2);
    assert_eq!((lenient.deployments, lenient.incidents), (11, 3));
    assert_eq!(l.count_deployments().unwrap(), 11);
}

#[test]
fn windows_include_both_ends() {
    // One deployment finished exactly at `now`, one exactly at the window's start, one a second
    // before it and one a second after `now`: the first two count, the others do not.
    let p = "production";
    let (_d, l) = ledger(&[
        dep("at-now", "edge", "edges", p, "success", "2026-11-30T00:00:00Z", &[], false),
        dep("at-start", "edge", "edges", p, "success", "2026-10-31T00:00:00Z", &[], false),
        dep("before", "edge", "edges", p, "success", "2026-10-30T23:59:59Z", &[], false),
        dep("after", "edge", "edges", p, "success", "2026-11-30T00:00:01Z", &[], false),
    ]);
    let r = l.dora(&query()).unwrap();
    assert_eq!(r.deployment_frequency.deployments, 2);
    let adoption = l.adoption(t(NOW), 30 * 86_400, &Default::default()).unwrap();
    assert_eq!(adoption.services, 1);
    // A day ending at `now` holds the deployment of that second; one ending a second earlier does not.
    let day = l.dora(&DoraQuery::new(t(NOW)).window(86_400)).unwrap();
    assert_eq!(day.deployment_frequency.deployments, 1);
    let earlier = l.dora(&DoraQuery::new(t(NOW) - 1).window(86_400)).unwrap();
    assert_eq!(earlier.deployment_frequency.deployments, 0);
}
