//! DORA version 2 (the design's §5), one edge case per row: each case is a few events, a
//! `now`, and the figures computed by hand.

use paved_metrics::{DoraQuery, DoraReport, Ledger, Level, parse_time};
use serde_json::{Value, json};

fn t(s: &str) -> i64 {
    parse_time("t", s).unwrap()
}

/// A production deployment of `svc` (team `team-of-svc`), started `minutes` before `finished`.
fn dep(id: &str, svc: &str, status: &str, finished: &str, minutes: i64) -> Value {
    let started = paved_metrics::format_time(t(finished) - minutes * 60);
    json!({"type": "deployment", "id": id, "service": svc, "team": format!("team-{svc}"), "environment": "production",
           "status": status, "started_at": started, "finished_at": finished})
}

fn inc(id: &str, svc: &str, deployment: Option<&str>, opened: &str, resolved: Option<&str>) -> Value {
    let mut v = json!({"type": "incident", "id": id, "service": svc, "team": format!("team-{svc}"),
                       "environment": "production", "opened_at": opened});
    if let Some(d) = deployment {
        v["deployment_id"] = json!(d);
    }
    if let Some(r) = resolved {
        v["resolved_at"] = json!(r);
    }
    v
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn report(events: &[Value], now: &str) -> DoraReport {
    report_window(events, now, 30 * 86_400)
}

fn report_window(events: &[Value], now: &str, window: i64) -> DoraReport {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let r = l.import(lines.join("\n").as_bytes(), true).unwrap();
    assert!(r.is_clean(), "{:?}", r.rejected);
    l.dora(&DoraQuery::new(t(now)).window(window)).unwrap()
}

const NOW: &str = "2026-11-30T00:00:00Z";

#[test]
fn a_failure_that_never_reached_production_is_in_no_key() {
    let r = report(
        &[
            dep("ok", "api", "success", "2026-11-10T10:00:00Z", 10),
            dep("refused", "api", "failure", "2026-11-10T11:00:00Z", 1),
            // The failure is linked to an incident, and was marked unplanned: still in no key.
            with(dep("refused-2", "api", "failure", "2026-11-11T11:00:00Z", 1), "unplanned", json!(true)),
            inc("i", "api", Some("refused-2"), "2026-11-11T11:30:00Z", Some("2026-11-11T12:00:00Z")),
        ],
        NOW,
    );
    assert_eq!(r.failed_to_apply, 2);
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (0, 1));
    assert_eq!((r.rework_rate.unplanned, r.recovery_time.recovered), (0, 0));
    assert_eq!(r.deployment_frequency.deployments, 1);
}

#[test]
fn an_automatic_rollback_is_timed_to_its_own_end() {
    // Started 09:35, rolled back and finished 10:00: recovered in 25 minutes.
    let r = report(&[dep("d", "api", "rolled_back", "2026-11-10T10:00:00Z", 25)], NOW);
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.rolled_back), (1, 1));
    assert_eq!(r.recovery_time.median_seconds, Some(1_500.0));
    assert_eq!(r.recovery_time.level, Some(Level::Elite));
    assert_eq!(r.deployment_frequency.deployments, 0, "a rolled-back deployment is not a successful one");
}

#[test]
fn a_later_rollback_is_timed_to_the_rollback_and_only_once_it_happened() {
    let events = [
        dep("good", "api", "success", "2026-11-10T10:00:00Z", 5),
        dep("bad", "api", "success", "2026-11-12T10:00:00Z", 5),
        // Linked to an incident too: still one failed deployment, timed by the rollback.
        inc("i", "api", Some("bad"), "2026-11-12T10:30:00Z", Some("2026-11-12T14:00:00Z")),
        with(dep("rb", "api", "success", "2026-11-12T12:00:00Z", 3), "rollback", json!(true)),
    ];
    let r = report(&events, NOW);
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (1, 2));
    assert_eq!((r.change_failure_rate.rolled_back, r.change_failure_rate.incident_linked), (1, 0));
    assert_eq!(r.recovery_time.median_seconds, Some(7_200.0)); // 10:00 → the rollback's end at 12:00
    assert_eq!(r.deployment_frequency.deployments, 1);
    // Before the rollback, the incident made `bad` failed, and it was not recovered yet.
    let r = report(&events, "2026-11-12T11:00:00Z");
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.incident_linked), (1, 1));
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (0, 1));
    assert_eq!(r.deployment_frequency.deployments, 2);
    // Before the incident: nothing had failed.
    let r = report(&events, "2026-11-12T10:15:00Z");
    assert_eq!(r.change_failure_rate.failed, 0);
}

#[test]
fn an_incident_linked_twice_fails_the_deployment_once() {
    let r = report(
        &[
            dep("d", "api", "success", "2026-11-10T10:00:00Z", 5),
            // Opened during the rollout (before the deployment finished), and a second one later.
            inc("i1", "api", Some("d"), "2026-11-10T09:58:00Z", Some("2026-11-10T10:30:00Z")),
            inc("i2", "api", Some("d"), "2026-11-10T11:00:00Z", Some("2026-11-10T12:58:00Z")),
        ],
        NOW,
    );
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (1, 1));
    // From min(finished 10:00, first opened 09:58) to the last resolution 12:58: 3 hours.
    assert_eq!(r.recovery_time.median_seconds, Some(10_800.0));
    assert_eq!(r.recovery_time.recovered, 1);
    // Linked incidents are not incident-restore samples.
    assert_eq!((r.incidents.resolved, r.incidents.unresolved), (0, 0));
}

#[test]
fn unlinked_incidents_are_reported_apart() {
    let r = report(
        &[
            dep("d", "api", "success", "2026-11-10T10:00:00Z", 5),
            inc("i1", "api", None, "2026-11-11T10:00:00Z", Some("2026-11-11T10:20:00Z")),
            inc("i2", "api", None, "2026-11-12T10:00:00Z", Some("2026-11-12T11:00:00Z")),
            // Linked to a deployment the ledger does not know: counts as unlinked.
            inc("i3", "api", Some("elsewhere"), "2026-11-13T10:00:00Z", Some("2026-11-13T10:40:00Z")),
            inc("i4", "api", None, "2026-11-14T10:00:00Z", None),
            // Resolved after `now`: unresolved at `now`.
            inc("i5", "api", None, "2026-11-29T10:00:00Z", Some("2026-12-01T10:00:00Z")),
            // Opened after `now`: ignored.
            inc("i6", "api", None, "2026-12-01T10:00:00Z", None),
        ],
        NOW,
    );
    assert_eq!((r.incidents.resolved, r.incidents.unresolved), (3, 2));
    assert_eq!(r.incidents.median_seconds, Some(2_400.0));
    // They are not recovery samples, and the deployment did not fail.
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (0, 0));
    assert_eq!(r.change_failure_rate.failed, 0);
}

#[test]
fn an_unresolved_incident_leaves_its_deployment_unrecovered() {
    let events = [
        dep("d", "api", "success", "2026-11-10T10:00:00Z", 5),
        inc("i1", "api", Some("d"), "2026-11-10T11:00:00Z", Some("2026-11-10T11:10:00Z")),
        inc("i2", "api", Some("d"), "2026-11-10T12:00:00Z", None),
    ];
    let r = report(&events, NOW);
    assert_eq!((r.change_failure_rate.failed, r.recovery_time.recovered, r.recovery_time.unrecovered), (1, 0, 1));
    assert_eq!(r.recovery_time.median_seconds, None);
    // As of a time after i1 was resolved and before i2 opened, it was recovered.
    let r = report(&events, "2026-11-10T11:30:00Z");
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (1, 0));
    assert_eq!(r.recovery_time.median_seconds, Some(4_200.0));
}

#[test]
fn a_deployment_finished_at_now_counts() {
    let r = report(&[dep("d", "api", "success", NOW, 5)], NOW);
    assert_eq!(r.deployment_frequency.deployments, 1);
    assert_eq!(r.deployment_frequency.deployment_days, 1);
}

#[test]
fn a_historical_now_ignores_later_events() {
    let events = [
        dep("d1", "api", "success", "2026-11-10T10:00:00Z", 5),
        dep("d2", "api", "success", "2026-11-20T10:00:00Z", 5),
        inc("i", "api", Some("d1"), "2026-11-21T10:00:00Z", Some("2026-11-21T11:00:00Z")),
        inc("u", "api", None, "2026-11-15T10:00:00Z", Some("2026-11-22T10:00:00Z")),
    ];
    let r = report(&events, "2026-11-18T00:00:00Z");
    assert_eq!(r.deployment_frequency.deployments, 1);
    assert_eq!(r.change_failure_rate.failed, 0, "the incident opened after now");
    assert_eq!((r.incidents.resolved, r.incidents.unresolved), (0, 1), "resolved after now");
    let r = report(&events, NOW);
    assert_eq!((r.deployment_frequency.deployments, r.change_failure_rate.failed), (2, 1));
    assert_eq!((r.incidents.resolved, r.incidents.unresolved), (1, 0));
}

#[test]
fn a_burst_on_one_day_is_one_deployment_day() {
    // 30 deployments on one day: 1 per day on average, yet one deployment day.
    let burst: Vec<Value> =
        (0..30).map(|i| dep(&format!("b{i}"), "api", "success", &format!("2026-11-28T10:{i:02}:00Z"), 1)).collect();
    let r = report(&burst, NOW);
    assert_eq!(r.deployment_frequency.per_day, 1.0);
    assert_eq!(r.deployment_frequency.deployment_days, 1);
    assert_eq!(r.deployment_frequency.weekly_deployment_days_median, 0.0); // of [1, 0, 0, 0]
    assert_eq!(r.deployment_frequency.level, Level::Medium);

    // Five deployment days in each of the four weeks: elite.
    let mut daily = Vec::new();
    for week in 0..4 {
        for day in 0..5 {
            let at = t(NOW) - (week * 7 + day) * 86_400 - 3_600;
            daily.push(dep(&format!("w{week}d{day}"), "api", "success", &paved_metrics::format_time(at), 1));
        }
    }
    let r = report(&daily, NOW);
    assert_eq!(r.deployment_frequency.weekly_deployment_days_median, 5.0);
    assert_eq!(r.deployment_frequency.level, Level::Elite);
    // One deployment day a week: high.
    let weekly: Vec<Value> = (0..4)
        .map(|w| {
            let at = paved_metrics::format_time(t(NOW) - w * 7 * 86_400 - 3_600);
            dep(&format!("w{w}"), "api", "success", &at, 1)
        })
        .collect();
    assert_eq!(report(&weekly, NOW).deployment_frequency.level, Level::High);
    // Nothing successful: low.
    assert_eq!(report(&[dep("f", "api", "rolled_back", NOW, 1)], NOW).deployment_frequency.level, Level::Low);
}

#[test]
fn a_monorepo_commit_counts_for_every_service_that_ships_it() {
    let commit = json!([{"sha": "abc123", "committed_at": "2026-11-10T00:00:00Z"}]);
    let r = report(
        &[
            with(dep("a", "api", "success", "2026-11-10T01:00:00Z", 5), "commits", commit.clone()),
            with(dep("b", "web", "success", "2026-11-10T03:00:00Z", 5), "commits", commit.clone()),
            // Shipped again by api: its first delivery stays at `a`.
            with(dep("c", "api", "success", "2026-11-11T00:00:00Z", 5), "commits", commit.clone()),
            // A rollback run re-shipping it is not a delivery.
            with(
                with(dep("d", "ops", "success", "2026-11-10T00:30:00Z", 5), "commits", commit),
                "rollback",
                json!(true),
            ),
        ],
        NOW,
    );
    assert_eq!(r.lead_time.changes, 2);
    assert_eq!(r.lead_time.median_seconds, Some(7_200.0)); // of 3600 (api) and 10800 (web)
}

#[test]
fn rework_is_inferred_from_open_incidents() {
    let r = report(
        &[
            // api: incident open 10:00 → 12:00.
            inc("i1", "api", None, "2026-11-10T10:00:00Z", Some("2026-11-10T12:00:00Z")),
            dep("during", "api", "success", "2026-11-10T11:05:00Z", 5), // started 11:00: unplanned
            dep("after", "api", "success", "2026-11-10T12:10:00Z", 10), // started 12:00, at the resolution: planned
            dep("other", "web", "success", "2026-11-10T11:05:00Z", 5),  // another service: planned
            // web: unresolved since Nov 20: open for 7 days.
            inc("i2", "web", None, "2026-11-20T00:00:00Z", None),
            dep("web-1", "web", "success", "2026-11-26T23:59:00Z", 5), // within 7 days: unplanned
            dep("web-2", "web", "success", "2026-11-27T00:10:00Z", 5), // started after 7 days: planned
            with(dep("marked", "web", "success", "2026-11-05T00:00:00Z", 5), "unplanned", json!(true)),
            // db: resolved after `now`, so unresolved as of `now`: open for 7 days only.
            inc("i3", "db", None, "2026-11-01T00:00:00Z", Some("2026-12-05T00:00:00Z")),
            dep("db-1", "db", "success", "2026-11-09T00:10:00Z", 5), // 8 days after: planned
        ],
        NOW,
    );
    assert_eq!((r.rework_rate.unplanned, r.rework_rate.inferred, r.rework_rate.deployments), (3, 2, 7));
    assert!((r.rework_rate.ratio.unwrap() - 3.0 / 7.0).abs() < 1e-12);
}

#[test]
fn rollback_runs_are_not_deployments() {
    let r = report(
        &[
            dep("a", "api", "success", "2026-11-10T10:00:00Z", 5),
            // A rollback run that itself failed: not a deployment, not a failure to apply, marks nothing.
            with(dep("rb", "api", "failure", "2026-11-10T11:00:00Z", 5), "rollback", json!(true)),
        ],
        NOW,
    );
    assert_eq!((r.deployment_frequency.deployments, r.failed_to_apply, r.change_failure_rate.failed), (1, 0, 0));
}

#[test]
fn short_windows_are_one_bucket() {
    // A 3-day window: one bucket for both medians.
    let r = report_window(
        &[dep("a", "api", "success", "2026-11-29T10:00:00Z", 5), dep("b", "api", "success", "2026-11-28T10:00:00Z", 5)],
        NOW,
        3 * 86_400,
    );
    assert_eq!(r.deployment_frequency.weekly_deployment_days_median, 2.0);
    assert_eq!(r.deployment_frequency.level, Level::High);
}

#[test]
fn a_rollback_run_marks_what_it_replaced_whatever_the_order_events_arrive_in() {
    let good = dep("good", "api", "success", "2026-11-12T09:00:00Z", 5);
    let bad = dep("bad", "api", "success", "2026-11-12T10:00:00Z", 5);
    // Started 11:55, finished 12:00. A deployment finishing while the run was going is not
    // what it replaced.
    let run = with(dep("rb", "api", "success", "2026-11-12T12:00:00Z", 5), "rollback", json!(true));
    let during = dep("during", "api", "success", "2026-11-12T11:58:00Z", 1);
    let expected = |r: &DoraReport| {
        assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (1, 3));
        assert_eq!(r.recovery_time.median_seconds, Some(7_200.0), "bad, 10:00 → the run's end at 12:00");
    };
    // The run first (paved recorded it), CI's deployments imported later.
    expected(&report(&[run.clone(), good.clone(), bad.clone(), during.clone()], NOW));
    expected(&report(&[good.clone(), run.clone(), during.clone(), bad.clone()], NOW));
    expected(&report(&[good, bad, during, run], NOW));
}

#[test]
fn two_rollback_runs_mark_two_deployments() {
    let events = [
        dep("v1", "api", "success", "2026-11-10T10:00:00Z", 5),
        dep("v2", "api", "success", "2026-11-11T10:00:00Z", 5),
        dep("v3", "api", "success", "2026-11-12T10:00:00Z", 5),
        with(dep("rb1", "api", "success", "2026-11-12T11:00:00Z", 5), "rollback", json!(true)), // v3
        with(dep("rb2", "api", "success", "2026-11-12T12:00:00Z", 5), "rollback", json!(true)), // then v2
    ];
    let r = report(&events, NOW);
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.rolled_back), (2, 2));
    assert_eq!(r.deployment_frequency.deployments, 1);
    // v3: 10:00 → 11:00; v2: Nov 11 10:00 → Nov 12 12:00 (26 h): median 13.5 h.
    assert_eq!(r.recovery_time.median_seconds, Some(48_600.0));
}

#[test]
fn a_rollback_mark_outranks_an_incident_for_recovery() {
    // Documented precedence: automatic rollback, then a later rollback run, then incidents.
    let r = report(
        &[
            dep("d", "api", "success", "2026-11-10T10:00:00Z", 5),
            inc("i", "api", Some("d"), "2026-11-10T10:10:00Z", None),
            with(dep("rb", "api", "success", "2026-11-10T11:00:00Z", 5), "rollback", json!(true)),
        ],
        NOW,
    );
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (1, 0));
    assert_eq!(r.recovery_time.median_seconds, Some(3_600.0));
}

#[test]
fn an_incident_re_sent_with_a_later_opening_drops_a_resolution_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let first = inc("i", "api", None, "2026-11-10T10:00:00Z", Some("2026-11-10T11:00:00Z"));
    let reopened = inc("i", "api", None, "2026-11-12T10:00:00Z", None);
    for e in [first, reopened] {
        assert!(l.import(e.to_string().as_bytes(), true).unwrap().is_clean());
    }
    let r = l.dora(&DoraQuery::new(t(NOW))).unwrap();
    // Not a negative restore time: open since Nov 12.
    assert_eq!((r.incidents.resolved, r.incidents.unresolved), (0, 1));
}

#[test]
fn a_later_batch_can_bring_an_earlier_first_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let commit = json!([{"sha": "abc", "committed_at": "2026-11-10T00:00:00Z"}]);
    let late = with(dep("late", "api", "success", "2026-11-12T00:00:00Z", 5), "commits", commit.clone());
    let early = with(dep("early", "api", "success", "2026-11-11T00:00:00Z", 5), "commits", commit);
    // Two imports, two transactions: the second one holds the earlier delivery.
    for e in [late, early] {
        assert!(l.import(e.to_string().as_bytes(), false).unwrap().is_clean());
    }
    let r = l.dora(&DoraQuery::new(t(NOW))).unwrap();
    assert_eq!((r.lead_time.changes, r.lead_time.median_seconds), (1, Some(86_400.0)));
}

#[test]
fn an_incident_linked_to_no_production_deployment_is_an_unlinked_one() {
    let r = report(
        &[
            dep("refused", "api", "failure", "2026-11-10T10:00:00Z", 5),
            with(dep("rb", "api", "success", "2026-11-11T10:00:00Z", 5), "rollback", json!(true)),
            inc("i1", "api", Some("refused"), "2026-11-10T10:30:00Z", Some("2026-11-10T11:00:00Z")),
            inc("i2", "api", Some("rb"), "2026-11-11T10:30:00Z", Some("2026-11-11T12:30:00Z")),
        ],
        NOW,
    );
    assert_eq!((r.incidents.resolved, r.incidents.median_seconds), (2, Some(4_500.0)));
    assert_eq!(r.change_failure_rate.failed, 0);
}

#[test]
fn a_rollout_that_failed_and_stayed_live_is_a_failed_production_deployment() {
    let r = report(
        &[
            dep("good", "api", "success", "2026-11-10T10:00:00Z", 5),
            // Applied, never ready, not restored: fixed forward by the next success 2 hours later.
            dep("stuck", "api", "rollout_failed", "2026-11-11T10:00:00Z", 10),
            dep("fix", "api", "success", "2026-11-11T12:00:00Z", 5),
            // Another one, rolled back later by a rollback run (which marks it, not `good`).
            dep("stuck-2", "web", "success", "2026-11-12T09:00:00Z", 5),
            dep("stuck-3", "web", "rollout_failed", "2026-11-12T10:00:00Z", 10),
            with(dep("rb", "web", "success", "2026-11-12T10:30:00Z", 5), "rollback", json!(true)),
            // And one still broken.
            dep("stuck-4", "db", "rollout_failed", "2026-11-13T10:00:00Z", 10),
        ],
        NOW,
    );
    assert_eq!(r.failed_to_apply, 0);
    assert_eq!(r.change_failure_rate.deployments, 6); // the rollback run is not one
    assert_eq!(
        (r.change_failure_rate.failed, r.change_failure_rate.rolled_back, r.change_failure_rate.rollout_failed),
        (3, 1, 2)
    );
    assert_eq!((r.recovery_time.recovered, r.recovery_time.unrecovered), (2, 1));
    // 7200 (fixed forward) and 1800 (rolled back at 10:30): median 4500.
    assert_eq!(r.recovery_time.median_seconds, Some(4_500.0));
    assert_eq!(r.deployment_frequency.deployments, 3); // good, fix, stuck-2
}

#[test]
fn an_incident_recorded_before_its_deployment_is_linked_when_the_deployment_arrives() {
    let incident = inc("i", "api", Some("d"), "2026-11-10T10:10:00Z", Some("2026-11-10T11:00:00Z"));
    let deployment = dep("d", "api", "success", "2026-11-10T10:00:00Z", 5);
    let expected = |r: &DoraReport| {
        assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.incident_linked), (1, 1));
        assert_eq!(r.recovery_time.median_seconds, Some(3_600.0));
        assert_eq!(r.incidents.resolved, 0, "linked, so not an unlinked one");
    };
    // One import, the incident first.
    expected(&report(&[incident.clone(), deployment.clone()], NOW));
    // Two imports (two transactions).
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    for e in [&incident, &deployment] {
        assert!(l.import(e.to_string().as_bytes(), true).unwrap().is_clean());
    }
    expected(&l.dora(&DoraQuery::new(t(NOW))).unwrap());
    // Re-linked to another deployment: the first one no longer failed.
    let other = dep("e", "api", "success", "2026-11-11T10:00:00Z", 5);
    let relinked = inc("i", "api", Some("e"), "2026-11-11T10:10:00Z", Some("2026-11-11T11:00:00Z"));
    for e in [&other, &relinked] {
        assert!(l.import(e.to_string().as_bytes(), true).unwrap().is_clean());
    }
    let r = l.dora(&DoraQuery::new(t(NOW))).unwrap();
    assert_eq!((r.change_failure_rate.failed, r.change_failure_rate.deployments), (1, 2));
}
