//! Platform adoption and velocity: who is on the golden path, and how well it works.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::params;
use serde::Serialize;

use crate::dora::percentile_cont;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, NameKind};
use crate::model::{DeploymentStatus, UnixSeconds, format_time};

/// The adoption report (`paved metrics adoption`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdoptionReport {
    /// Window length in days.
    pub window_days: serde_json::Number,
    /// End of the window, RFC 3339.
    pub now: String,
    /// Services with at least one deployment in the window.
    pub services: u64,
    /// Teams with at least one deployment in the window.
    pub teams_on_platform: Vec<String>,
    /// Teams the organisation knows (configuration or Backstage catalog); empty when unknown.
    pub teams_known: Vec<String>,
    /// Known teams on the platform / known teams (`None` without known teams).
    pub adoption_ratio: Option<f64>,
    /// Known teams not on the platform yet.
    pub teams_not_on_platform: Vec<String>,
    /// Deployments without any escape hatch / all finished deployments.
    pub golden_path_ratio: Option<f64>,
    /// Finished deployments per day (all environments).
    pub deployments_per_day: f64,
    /// Average deployment duration, seconds.
    pub duration_avg_seconds: Option<f64>,
    /// 90th percentile deployment duration, seconds.
    pub duration_p90_seconds: Option<f64>,
    /// Successful / finished deployments.
    pub success_rate: Option<f64>,
    /// Median time from a service's first event to its first successful production
    /// deployment, over services whose first production success is in the window.
    pub onboarding_median_seconds: Option<f64>,
    /// Services counted for `onboarding_median_seconds`.
    pub onboarded_services: u64,
    /// Developer satisfaction: Net Promoter Score from survey answers.
    pub satisfaction: Satisfaction,
    /// Support tickets teams opened with the platform team.
    pub support: Support,
}

/// Developer satisfaction over the window, against the window before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Satisfaction {
    /// Net Promoter Score: % promoters (9–10) − % detractors (0–6), from −100 to 100
    /// (`None` without answers).
    pub nps: Option<f64>,
    /// Survey answers in the window.
    pub responses: u64,
    /// Answers scoring 9 or 10.
    pub promoters: u64,
    /// Answers scoring 7 or 8.
    pub passives: u64,
    /// Answers scoring 0 to 6.
    pub detractors: u64,
    /// NPS of the window before (same length, ending where this one starts).
    pub previous_nps: Option<f64>,
    /// Answers in the window before.
    pub previous_responses: u64,
    /// `nps - previous_nps`, in points (`None` unless both are known).
    pub nps_change: Option<f64>,
}

/// Support tickets over the window, against the window before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Support {
    /// Tickets opened in the window.
    pub tickets: u64,
    /// Tickets opened per week (7 days) of the window.
    pub tickets_per_week: f64,
    /// Tickets opened per week in the window before.
    pub previous_tickets_per_week: f64,
    /// `tickets_per_week - previous_tickets_per_week`.
    pub tickets_per_week_change: f64,
    /// Tickets open at the end of the window.
    pub open: u64,
    /// Median time to resolve the window's tickets resolved by its end, seconds.
    pub resolution_median_seconds: Option<f64>,
    /// Tickets opened in the window, by category.
    pub by_category: std::collections::BTreeMap<String, u64>,
}

/// `(promoters, passives, detractors)` of scores.
fn nps_counts(scores: impl Iterator<Item = u8>) -> (u64, u64, u64) {
    scores.fold((0, 0, 0), |(p, n, d), s| match s {
        9..=10 => (p + 1, n, d),
        7..=8 => (p, n + 1, d),
        _ => (p, n, d + 1),
    })
}

/// The Net Promoter Score of the counts, `None` without answers.
pub fn nps(promoters: u64, passives: u64, detractors: u64) -> Option<f64> {
    let total = promoters + passives + detractors;
    (total > 0).then(|| 100.0 * (promoters as f64 - detractors as f64) / total as f64)
}

/// Team names owning `Component`s in Backstage `catalog-info.yaml` files (multi-document;
/// `spec.owner` such as `group:default/payments` becomes `payments`).
pub fn catalog_teams(paths: &[impl AsRef<Path>]) -> Result<BTreeSet<String>> {
    let mut teams = BTreeSet::new();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let file = paved_core::ManifestFile::parse(path, &text).map_err(|e| {
            Error::invalid(
                "catalog",
                path.display().to_string(),
                e.to_string(),
                Some("give Backstage catalog-info.yaml files".into()),
            )
        })?;
        for doc in file.documents {
            if doc.value.get("kind").and_then(|k| k.as_str()) != Some("Component") {
                continue;
            }
            if let Some(owner) = doc.value.pointer("/spec/owner").and_then(|o| o.as_str()) {
                let name = owner.rsplit([':', '/']).next().unwrap_or(owner);
                if !name.is_empty() {
                    teams.insert(name.to_string());
                }
            }
        }
    }
    Ok(teams)
}

impl Ledger {
    /// Adoption and velocity over `[now - window, now]` (both ends included); `known_teams`
    /// from configuration or a catalog.
    pub fn adoption(&self, now: UnixSeconds, window: i64, known_teams: &BTreeSet<String>) -> Result<AdoptionReport> {
        self.adoption_report(now, window, known_teams, true)
    }

    /// The report; `onboarding` (full scans of the ledger) only when asked for.
    pub(crate) fn adoption_report(
        &self,
        now: UnixSeconds,
        window: i64,
        known_teams: &BTreeSet<String>,
        onboarding: bool,
    ) -> Result<AdoptionReport> {
        let start = now - window;
        // On a connection of its own: the Prometheus collector runs it beside the DORA report.
        let (teams, rows, onboarding, answers, tickets, open) = self.read_apart(|c| {
            let teams = Ledger::names(c, NameKind::Team)?;
            // One range scan of the covering index per environment.
            let mut stmt = c.prepare_cached(
                "SELECT team, service, status, finished_at - started_at, escape_hatch_count FROM deployments
                 WHERE environment IN (SELECT id FROM names WHERE kind = ?3)
                   AND finished_at >= ?1 AND finished_at <= ?2 AND status IN (1, 2, 3)",
            )?;
            let rows: Vec<(i64, i64, i64, i64, i64)> = stmt
                .query_map(params![start, now, NameKind::Environment as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            // Per service: first event of any kind, first successful production deployment.
            let prod = Ledger::name_id(c, NameKind::Environment, "production")?;
            let mut first_to_prod = Vec::new();
            if let (true, Some(prod)) = (onboarding, prod) {
                let mut stmt = c.prepare_cached(
                    "WITH first_prod AS (
                        SELECT service, min(finished_at) AS at FROM deployments
                        WHERE environment = ?1 AND status = 1 GROUP BY service),
                     first_event AS (
                        SELECT service, min(t) AS at FROM (
                            SELECT service, started_at AS t FROM deployments
                            UNION ALL SELECT service, opened_at FROM incidents
                            UNION ALL SELECT service, at FROM activity) GROUP BY service)
                     SELECT p.at - e.at FROM first_prod p JOIN first_event e USING (service)
                     WHERE p.at >= ?2 AND p.at <= ?3",
                )?;
                first_to_prod =
                    stmt.query_map(params![prod, start, now], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<_>>()?;
            }
            // Answers and tickets of this window and the one before (`[start - window, start)`).
            let mut stmt = c.prepare_cached("SELECT at, score FROM surveys WHERE at >= ?1 AND at <= ?2")?;
            let answers: Vec<(i64, u8)> = stmt
                .query_map(params![start - window, now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT opened_at, resolved_at, category FROM support_tickets WHERE opened_at >= ?1 AND opened_at <= ?2",
            )?;
            let tickets: Vec<(i64, Option<i64>, String)> = stmt
                .query_map(params![start - window, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let open: i64 = c.query_row(
                "SELECT count(*) FROM support_tickets WHERE opened_at <= ?1 AND (resolved_at IS NULL OR resolved_at > ?1)",
                [now],
                |r| r.get(0),
            )?;
            Ok((teams, rows, first_to_prod, answers, tickets, open))
        })?;
        let teams_on: BTreeSet<String> = rows.iter().filter_map(|r| teams.get(&r.0).cloned()).collect();
        let services = rows.iter().map(|r| r.1).collect::<BTreeSet<_>>().len();
        let finished = rows.len() as f64;
        let ratio = |n: usize| (!rows.is_empty()).then(|| n as f64 / finished);
        let mut durations: Vec<i64> = rows.iter().map(|r| r.3).collect();
        let golden = rows.iter().filter(|r| r.4 == 0).count();
        let successes = rows.iter().filter(|r| r.2 == DeploymentStatus::Success.code()).count();
        let avg = (!durations.is_empty()).then(|| durations.iter().sum::<i64>() as f64 / finished);
        let mut onboarding = onboarding;
        let known: Vec<String> = known_teams.iter().cloned().collect();
        let adopted = known.iter().filter(|t| teams_on.contains(*t)).count();

        let current = |t: i64| t >= start;
        let (p, n, d) = nps_counts(answers.iter().filter(|a| current(a.0)).map(|a| a.1));
        let (pp, pn, pd) = nps_counts(answers.iter().filter(|a| !current(a.0)).map(|a| a.1));
        let (score, previous) = (nps(p, n, d), nps(pp, pn, pd));
        let weeks = window as f64 / (7.0 * 86_400.0);
        let this: Vec<&(i64, Option<i64>, String)> = tickets.iter().filter(|t| current(t.0)).collect();
        let per_week = this.len() as f64 / weeks;
        let previous_per_week = (tickets.len() - this.len()) as f64 / weeks;
        let mut resolutions: Vec<i64> =
            this.iter().filter_map(|t| t.1.filter(|r| *r <= now).map(|r| r - t.0)).collect();
        let mut by_category = std::collections::BTreeMap::new();
        for t in &this {
            *by_category.entry(t.2.clone()).or_insert(0) += 1;
        }
        Ok(AdoptionReport {
            window_days: crate::dora::window_days(window),
            now: format_time(now),
            services: services as u64,
            teams_not_on_platform: known.iter().filter(|t| !teams_on.contains(*t)).cloned().collect(),
            adoption_ratio: (!known.is_empty()).then(|| adopted as f64 / known.len() as f64),
            teams_on_platform: teams_on.into_iter().collect(),
            teams_known: known,
            golden_path_ratio: ratio(golden),
            deployments_per_day: finished / (window as f64 / 86_400.0),
            duration_avg_seconds: avg,
            duration_p90_seconds: percentile_cont(&mut durations, 0.9),
            success_rate: ratio(successes),
            onboarded_services: onboarding.len() as u64,
            onboarding_median_seconds: percentile_cont(&mut onboarding, 0.5),
            satisfaction: Satisfaction {
                nps: score,
                responses: p + n + d,
                promoters: p,
                passives: n,
                detractors: d,
                previous_nps: previous,
                previous_responses: pp + pn + pd,
                nps_change: score.zip(previous).map(|(a, b)| a - b),
            },
            support: Support {
                tickets: this.len() as u64,
                tickets_per_week: per_week,
                previous_tickets_per_week: previous_per_week,
                tickets_per_week_change: per_week - previous_per_week,
                open: open as u64,
                resolution_median_seconds: percentile_cont(&mut resolutions, 0.5),
                by_category,
            },
        })
    }
}

impl AdoptionReport {
    /// A readable summary.
    pub fn to_text(&self) -> String {
        let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.1}%", x * 100.0));
        let secs = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}s"));
        let mut lines = vec![
            format!("Platform adoption, {} days to {}", self.window_days, self.now),
            format!("  services on the platform   {}", self.services),
            if self.teams_known.is_empty() {
                format!(
                    "  teams on the platform      {} (known teams: set `teams` in paved.toml or give a `catalog`)",
                    self.teams_on_platform.len()
                )
            } else {
                format!(
                    "  teams on the platform      {} of {} known ({})",
                    self.teams_on_platform.iter().filter(|t| self.teams_known.contains(t)).count(),
                    self.teams_known.len(),
                    pct(self.adoption_ratio)
                )
            },
        ];
        if !self.teams_not_on_platform.is_empty() {
            lines.push(format!("  not on the platform yet    {}", self.teams_not_on_platform.join(", ")));
        }
        lines.extend([
            format!(
                "  golden-path ratio          {} (deployments without escape hatches)",
                pct(self.golden_path_ratio)
            ),
            format!("  deployments per day        {:.2}", self.deployments_per_day),
            format!(
                "  deployment duration        avg {}, p90 {}",
                secs(self.duration_avg_seconds),
                secs(self.duration_p90_seconds)
            ),
            format!("  success rate               {}", pct(self.success_rate)),
            format!(
                "  first event → production   median {} ({})",
                secs(self.onboarding_median_seconds),
                paved_core::hint::plural(self.onboarded_services, "service")
            ),
        ]);
        let sat = &self.satisfaction;
        let points = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:+.0}"));
        lines.push(format!(
            "  developer NPS              {} ({}; previous window {}, change {})",
            points(sat.nps),
            paved_core::hint::plural(sat.responses, "answer"),
            points(sat.previous_nps),
            points(sat.nps_change)
        ));
        let sup = &self.support;
        lines.push(format!(
            "  support tickets per week   {:.1} (previous window {:.1}, change {:+.1}; {} open)",
            sup.tickets_per_week, sup.previous_tickets_per_week, sup.tickets_per_week_change, sup.open
        ));
        if !sup.by_category.is_empty() {
            let cats: Vec<String> = sup.by_category.iter().map(|(c, n)| format!("{c} {n}")).collect();
            lines.push(format!("    by category              {}", cats.join(", ")));
        }
        lines.join("\n") + "\n"
    }
}
