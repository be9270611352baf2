//! Adoption and velocity on a hand-computed dataset, and known teams from Backstage catalogs.

use paved_metrics::{DeploymentEvent, DeploymentStatus, IncidentEvent, Ledger, LedgerEvent, catalog_teams, parse_time};

fn t(s: &str) -> i64 {
    parse_time("t", s).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn dep(
    id: &str,
    service: &str,
    team: &str,
    env: &str,
    status: DeploymentStatus,
    start: &str,
    seconds: i64,
    hatches: &[&str],
) -> LedgerEvent {
    let mut d = DeploymentEvent::new(id, service, team, env, status, t(start), t(start) + seconds);
    d.escape_hatches = hatches.iter().map(|h| h.to_string()).collect();
    LedgerEvent::Deployment(d)
}

#[test]
fn adoption_figures() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    use DeploymentStatus::*;
    l.write(&[
        // "pay": first event (an incident) on Nov 1 00:00, first production success Nov 3 00:10 → 2 days 10 min.
        LedgerEvent::Incident(IncidentEvent::new("i1", "pay", "payments", "staging", t("2026-11-01T00:00:00Z"), None)),
        dep("a", "pay", "payments", "staging", Success, "2026-11-02T00:00:00Z", 60, &[]),
        dep("b", "pay", "payments", "production", Failure, "2026-11-02T12:00:00Z", 120, &["no-hpa"]),
        dep("c", "pay", "payments", "production", Success, "2026-11-03T00:00:00Z", 600, &[]),
        // "search": first event = first deployment, production success 300 s later.
        dep("d", "search", "discovery", "production", Success, "2026-11-10T00:00:00Z", 300, &["cpu-limit=2"]),
        // Before the window: counts for nothing.
        dep("e", "old", "legacy", "production", Success, "2026-09-01T00:00:00Z", 30, &[]),
    ])
    .unwrap();
    let known = ["payments", "discovery", "identity", "mobile"].iter().map(|s| s.to_string()).collect();
    let r = l.adoption(t("2026-11-30T00:00:00Z"), 30 * 86_400, &known).unwrap();
    assert_eq!(r.services, 2);
    assert_eq!(r.teams_on_platform, ["discovery", "payments"]);
    assert_eq!(r.adoption_ratio, Some(0.5));
    assert_eq!(r.teams_not_on_platform, ["identity", "mobile"]);
    // 4 finished deployments, 2 with escape hatches, 3 successes; durations 60, 120, 300, 600.
    assert_eq!(r.golden_path_ratio, Some(0.5));
    assert_eq!(r.success_rate, Some(0.75));
    assert!((r.deployments_per_day - 4.0 / 30.0).abs() < 1e-12);
    assert_eq!(r.duration_avg_seconds, Some(270.0));
    assert!((r.duration_p90_seconds.unwrap() - 510.0).abs() < 1e-9); // 300 + 0.7 * (600 - 300)
    // Onboarding: pay 2 days + 600 s (first event → first production success finished), search 300 s.
    assert_eq!(r.onboarded_services, 2);
    assert_eq!(r.onboarding_median_seconds, Some((2.0 * 86_400.0 + 600.0 + 300.0) / 2.0));
    let text = r.to_text();
    assert!(text.contains("2 of 4 known (50.0%)") && text.contains("identity, mobile"), "{text}");
}

#[test]
fn backstage_catalog_owners() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &path,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: pay}\nspec: {owner: group:default/payments, type: service}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: search}\nspec: {owner: discovery}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: ignored}\nspec: {type: team}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: app}\nspec: {owner: 'group:mobile'}\n",
    )
    .unwrap();
    let teams = catalog_teams(&[&path]).unwrap();
    assert_eq!(teams.into_iter().collect::<Vec<_>>(), ["discovery", "mobile", "payments"]);
    assert!(catalog_teams(&[dir.path().join("missing.yaml")]).is_err());
}
