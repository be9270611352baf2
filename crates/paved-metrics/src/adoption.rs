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
    /// Adoption and velocity over `[now - window, now]` (both ends included); `known_teams` from configuration or
    /// a catalog.
    pub fn adoption(&self, now: UnixSeconds, window: i64, known_teams: &BTreeSet<String>) -> Result<AdoptionReport> {
        let start = now - window;
        let (teams_on, services, rows, onboarding) = self.read(|c| {
            let teams = Ledger::names(c, NameKind::Team)?;
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT team FROM deployments WHERE finished_at >= ?1 AND finished_at <= ?2 AND status IN (1, 2, 3)",
            )?;
            let on: BTreeSet<String> = stmt
                .query_map(params![start, now], |r| r.get::<_, i64>(0))?
                .filter_map(|id| id.ok().and_then(|id| teams.get(&id).cloned()))
                .collect();
            let services: i64 = c.query_row(
                "SELECT count(DISTINCT service) FROM deployments WHERE finished_at >= ?1 AND finished_at <= ?2 AND status IN (1, 2, 3)",
                params![start, now],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT status, finished_at - started_at, escape_hatch_count FROM deployments
                 WHERE finished_at >= ?1 AND finished_at <= ?2 AND status IN (1, 2, 3)",
            )?;
            let rows: Vec<(i64, i64, i64)> =
                stmt.query_map(params![start, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
            // Per service: first event of any kind, first successful production deployment.
            let prod = Ledger::name_id(c, NameKind::Environment, "production")?;
            let mut onboarding = Vec::new();
            if let Some(prod) = prod {
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
                onboarding = stmt.query_map(params![prod, start, now], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<_>>()?;
            }
            Ok((on, services, rows, onboarding))
        })?;
        let finished = rows.len() as f64;
        let ratio = |n: usize| (!rows.is_empty()).then(|| n as f64 / finished);
        let mut durations: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let golden = rows.iter().filter(|r| r.2 == 0).count();
        let successes = rows.iter().filter(|r| r.0 == DeploymentStatus::Success.code()).count();
        let avg = (!durations.is_empty()).then(|| durations.iter().sum::<i64>() as f64 / finished);
        let mut onboarding = onboarding;
        let known: Vec<String> = known_teams.iter().cloned().collect();
        let adopted = known.iter().filter(|t| teams_on.contains(*t)).count();
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
        lines.join("\n") + "\n"
    }
}
