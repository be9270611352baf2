//! The DORA keys, computed exactly as the paved design defines them.
//!
//! Window `[now - window, now]` (both ends included) on `finished_at`, production by default:
//!
//! * **deployment frequency**: successful deployments per day in the window;
//! * **lead time for changes**: per commit, `finished_at` of the first successful deployment
//!   (in the same environment) listing it, minus `committed_at`; leads ≤ 0 are dropped;
//!   median and p90 interpolated like `PERCENTILE_CONT`;
//! * **change failure rate**: deployments that failed, were rolled back, or caused ≥ 1
//!   incident (whenever it was opened), over all finished deployments;
//! * **failed deployment recovery time**: failed/rolled-back deployment (in the window by
//!   `finished_at`) → next successful deployment of the same service and environment
//!   (at or before `now`); incident (in the window by `opened_at`) opened → resolved; median over
//!   both; failures not yet recovered are counted, not timed;
//! * **deployment rework rate**: deployments marked unplanned over all finished deployments.
//!
//! Levels follow the DORA 2023 clusters as Apache DevLake's 2023 benchmark table encodes them.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::{Ledger, NameKind};
use crate::model::{DeploymentStatus, UnixSeconds, format_time};

const DAY: f64 = 86_400.0;

/// Which deployments a report covers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DoraQuery {
    /// The environment (default `production`).
    pub environment: String,
    /// Only this team's deployments.
    pub team: Option<String>,
    /// Only this service's deployments.
    pub service: Option<String>,
    /// The window length in seconds (default 30 days).
    pub window: i64,
    /// The end of the window (inclusive).
    pub now: UnixSeconds,
}

impl DoraQuery {
    /// Production, the last 30 days before `now`.
    pub fn new(now: UnixSeconds) -> Self {
        DoraQuery { environment: "production".into(), team: None, service: None, window: 30 * 86_400, now }
    }

    /// Sets the window.
    pub fn window(mut self, seconds: i64) -> Self {
        self.window = seconds;
        self
    }

    /// Sets the environment.
    pub fn environment(mut self, env: &str) -> Self {
        self.environment = env.into();
        self
    }

    /// Filters by team.
    pub fn team(mut self, team: Option<&str>) -> Self {
        self.team = team.map(str::to_string);
        self
    }

    /// Filters by service.
    pub fn service(mut self, service: Option<&str>) -> Self {
        self.service = service.map(str::to_string);
        self
    }

    fn start(&self) -> UnixSeconds {
        self.now - self.window
    }
}

/// Parses a window such as `30d`, `12h`, `2w` or `90m` into seconds.
pub fn parse_window(s: &str) -> Result<i64> {
    let hint = || Some("use a number and a unit: 30d (days), 12h (hours), 2w (weeks), 90min (minutes)".to_string());
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| Error::invalid("window", s, "is not a number with a unit", hint()))?;
    let unit_seconds = match unit {
        // `m` is minutes, as in 90m; `min` says so unmistakably (a month is not a unit here).
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => return Err(Error::invalid("window", s, "has no unit", Some(format!("did you mean \"{n}d\"?")))),
        other => {
            let guess = match other.to_ascii_lowercase().chars().next() {
                Some('d') => Some("d"),
                Some('h') => Some("h"),
                Some('w') => Some("w"),
                Some('m') if other.to_ascii_lowercase().starts_with("mi") => Some("min"),
                _ => None,
            };
            let hint = guess.map(|g| format!("did you mean \"{n}{g}\"?")).or_else(hint);
            return Err(Error::invalid("window", s, format!("has an unknown unit \"{other}\""), hint));
        }
    };
    if n <= 0 {
        return Err(Error::invalid("window", s, "must be longer than zero", hint()));
    }
    Ok(n * unit_seconds)
}

/// A DORA performance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Elite performers.
    Elite,
    /// High performers.
    High,
    /// Medium performers.
    Medium,
    /// Low performers.
    Low,
}

impl Level {
    /// `elite`, `high`, `medium` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Elite => "elite",
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        }
    }

    /// The best level whose threshold the figure meets: `[elite, high, medium]`.
    fn first_met(met: [bool; 3]) -> Level {
        match met {
            [true, ..] => Level::Elite,
            [_, true, _] => Level::High,
            [_, _, true] => Level::Medium,
            _ => Level::Low,
        }
    }

    /// Deployment frequency: elite ≥ 1/day, high ≥ 1/week, medium ≥ 1/30 days.
    pub fn for_frequency(per_day: f64) -> Level {
        Self::first_met([per_day >= 1.0, per_day >= 1.0 / 7.0, per_day >= 1.0 / 30.0])
    }

    /// Lead time (median): elite < 1 day, high < 7 days, medium < 30 days.
    pub fn for_lead_time(seconds: f64) -> Level {
        Self::first_met([seconds < DAY, seconds < 7.0 * DAY, seconds < 30.0 * DAY])
    }

    /// Change failure rate: elite ≤ 5%, high ≤ 10%, medium ≤ 15%.
    pub fn for_failure_rate(ratio: f64) -> Level {
        Self::first_met([ratio <= 0.05, ratio <= 0.10, ratio <= 0.15])
    }

    /// Recovery time (median): elite < 1 hour, high < 1 day, medium < 7 days.
    pub fn for_recovery(seconds: f64) -> Level {
        Self::first_met([seconds < 3_600.0, seconds < DAY, seconds < 7.0 * DAY])
    }
}

/// Deployment frequency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frequency {
    /// Successful deployments per day.
    pub per_day: f64,
    /// Successful deployments in the window.
    pub deployments: u64,
    /// The level.
    pub level: Level,
}

/// Lead time for changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTime {
    /// Median, seconds (`None` without changes).
    pub median_seconds: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_seconds: Option<f64>,
    /// Commits counted.
    pub changes: u64,
    /// The level of the median.
    pub level: Option<Level>,
}

/// Change failure rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeFailureRate {
    /// `failed / deployments` (`None` without deployments).
    pub ratio: Option<f64>,
    /// Failed, rolled back, or caused an incident.
    pub failed: u64,
    /// Finished deployments.
    pub deployments: u64,
    /// The level.
    pub level: Option<Level>,
}

/// Failed deployment recovery time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryTime {
    /// Median, seconds (`None` when nothing recovered).
    pub median_seconds: Option<f64>,
    /// Failures and incidents recovered.
    pub recovered: u64,
    /// Failures and incidents not recovered yet.
    pub unrecovered: u64,
    /// The level of the median.
    pub level: Option<Level>,
}

/// Deployment rework rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReworkRate {
    /// `unplanned / deployments` (`None` without deployments).
    pub ratio: Option<f64>,
    /// Unplanned deployments.
    pub unplanned: u64,
    /// Finished deployments.
    pub deployments: u64,
}

/// The five keys for one scope (`paved metrics dora --output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoraReport {
    /// Window length in days.
    pub window_days: serde_json::Number,
    /// End of the window, RFC 3339.
    pub now: String,
    /// The environment.
    pub environment: String,
    /// The team filter or group.
    pub team: Option<String>,
    /// The service filter or group.
    pub service: Option<String>,
    /// Deployment frequency.
    pub deployment_frequency: Frequency,
    /// Lead time for changes.
    pub lead_time: LeadTime,
    /// Change failure rate.
    pub change_failure_rate: ChangeFailureRate,
    /// Failed deployment recovery time.
    pub recovery_time: RecoveryTime,
    /// Deployment rework rate.
    pub rework_rate: ReworkRate,
    /// Where the level thresholds come from.
    pub levels_source: &'static str,
}

/// How `--by` groups reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One report per team.
    Team,
    /// One report per service.
    Service,
}

impl std::str::FromStr for GroupBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "team" => Ok(GroupBy::Team),
            "service" => Ok(GroupBy::Service),
            _ => Err(Error::invalid("by", s, "is not a grouping", Some("group `by` team or service".into()))),
        }
    }
}

/// `PERCENTILE_CONT(p)` of `values` (reorders them), `None` when empty.
pub fn percentile_cont(values: &mut [i64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let pos = p * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, lo_value, upper) = values.select_nth_unstable(lo);
    let lo_value = *lo_value as f64;
    if pos == lo as f64 || upper.is_empty() {
        return Some(lo_value);
    }
    let hi_value = *upper.iter().min().expect("not empty") as f64;
    Some(lo_value + (hi_value - lo_value) * (pos - lo as f64))
}

#[derive(Debug, Clone, Copy)]
struct Deployment {
    rowid: i64,
    service: i64,
    team: i64,
    status: DeploymentStatus,
    finished_at: UnixSeconds,
    unplanned: bool,
}

#[derive(Debug, Clone, Copy)]
struct Change {
    service: i64,
    team: i64,
    lead: i64,
}

#[derive(Debug, Clone, Copy)]
struct Incident {
    service: i64,
    team: i64,
    opened_at: UnixSeconds,
    resolved_at: Option<UnixSeconds>,
}

/// Everything in one window, loaded once.
struct Window {
    deployments: Vec<Deployment>,
    with_incident: HashSet<i64>,
    changes: Vec<Change>,
    incidents: Vec<Incident>,
}

struct Filter {
    env: i64,
    team: Option<i64>,
    service: Option<i64>,
}

fn load_deployments(conn: &Connection, f: &Filter, start: i64, end: i64) -> rusqlite::Result<Vec<Deployment>> {
    // Answered from the covering index (environment, finished_at, status, team, service, unplanned).
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, service, team, status, finished_at, unplanned FROM deployments
         WHERE environment = ?1 AND finished_at >= ?2 AND finished_at <= ?3
           AND (?4 IS NULL OR team = ?4) AND (?5 IS NULL OR service = ?5)",
    )?;
    let mut rows = stmt.query(params![f.env, start, end, f.team, f.service])?;
    let mut out = Vec::new();
    let int = |r: &rusqlite::Row<'_>, i| r.get_ref(i).and_then(|v| v.as_i64().map_err(Into::into));
    while let Some(r) = rows.next()? {
        let Some(status) = DeploymentStatus::from_code(int(r, 3)?).filter(|s| s.is_finished_change()) else { continue };
        out.push(Deployment {
            rowid: int(r, 0)?,
            service: int(r, 1)?,
            team: int(r, 2)?,
            status,
            finished_at: int(r, 4)?,
            unplanned: int(r, 5)? != 0,
        });
    }
    Ok(out)
}

fn load_changes(conn: &Connection, f: &Filter, start: i64, end: i64) -> rusqlite::Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(
        "SELECT team, service, finished_at - committed_at FROM changes
         WHERE environment = ?1 AND finished_at >= ?2 AND finished_at <= ?3
           AND (?4 IS NULL OR team = ?4) AND (?5 IS NULL OR service = ?5)",
    )?;
    let mut rows = stmt.query(params![f.env, start, end, f.team, f.service])?;
    let mut out = Vec::new();
    let int = |r: &rusqlite::Row<'_>, i| r.get_ref(i).and_then(|v| v.as_i64().map_err(Into::into));
    while let Some(r) = rows.next()? {
        let lead = int(r, 2)?;
        if lead > 0 {
            out.push(Change { team: int(r, 0)?, service: int(r, 1)?, lead });
        }
    }
    Ok(out)
}

impl Window {
    fn load(ledger: &Ledger, f: &Filter, q: &DoraQuery) -> Result<Self> {
        let (start, end) = (q.start(), q.now);
        // Lead-time rows dominate long windows: read them on a second connection in parallel.
        let reader = ledger.reader()?;
        std::thread::scope(|s| {
            let changes = s.spawn(move || load_changes(&reader, f, start, end));
            let rest = ledger.read(|conn| {
                let deployments = load_deployments(conn, f, start, end)?;
                let mut stmt = conn.prepare_cached(
                    "SELECT DISTINCT d.rowid FROM incidents i JOIN deployments d ON d.id = i.deployment_id
                     WHERE d.environment = ?1 AND d.finished_at >= ?2 AND d.finished_at <= ?3",
                )?;
                let with_incident =
                    stmt.query_map(params![f.env, start, end], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                let mut stmt = conn.prepare_cached(
                    "SELECT service, team, opened_at, resolved_at FROM incidents
                     WHERE environment = ?1 AND opened_at >= ?2 AND opened_at <= ?3
                       AND (?4 IS NULL OR team = ?4) AND (?5 IS NULL OR service = ?5)",
                )?;
                let incidents = stmt
                    .query_map(params![f.env, start, end, f.team, f.service], |r| {
                        Ok(Incident {
                            service: r.get(0)?,
                            team: r.get(1)?,
                            opened_at: r.get(2)?,
                            resolved_at: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok((deployments, with_incident, incidents))
            });
            let changes = changes.join().expect("reader thread").map_err(ledger.err())?;
            let (deployments, with_incident, incidents) = rest?;
            Ok(Window { deployments, with_incident, changes, incidents })
        })
    }
}

/// A window's length in days, as reports give it: a whole number when it is one (`30`, not
/// `30.0`), else a fraction.
pub fn window_days(seconds: i64) -> serde_json::Number {
    if seconds % 86_400 == 0 {
        serde_json::Number::from(seconds / 86_400)
    } else {
        serde_json::Number::from_f64(seconds as f64 / DAY).unwrap_or_else(|| 0.into())
    }
}

/// Computes the five keys over loaded rows (already filtered to one scope).
fn compute(
    q: &DoraQuery,
    deployments: &[Deployment],
    with_incident: &HashSet<i64>,
    changes: &mut [i64],
    incidents: &[Incident],
) -> DoraReport {
    let days = q.window as f64 / DAY;
    let successes = deployments.iter().filter(|d| d.status == DeploymentStatus::Success).count() as u64;
    let per_day = successes as f64 / days;

    let finished = deployments.len() as u64;
    let failed = deployments
        .iter()
        .filter(|d| d.status != DeploymentStatus::Success || with_incident.contains(&d.rowid))
        .count() as u64;
    let unplanned = deployments.iter().filter(|d| d.unplanned).count() as u64;
    let ratio = |n: u64| (finished > 0).then(|| n as f64 / finished as f64);

    let median = percentile_cont(changes, 0.5);
    let p90 = percentile_cont(changes, 0.9);

    // Recovery: failures → next success of the same service (rows are one environment).
    let mut recoveries: Vec<i64> = Vec::new();
    let mut unrecovered = 0u64;
    let mut by_service: HashMap<i64, Vec<&Deployment>> = HashMap::new();
    for d in deployments {
        by_service.entry(d.service).or_default().push(d);
    }
    for list in by_service.values_mut() {
        list.sort_by_key(|d| (d.finished_at, d.status != DeploymentStatus::Success));
        let successes: Vec<UnixSeconds> =
            list.iter().filter(|d| d.status == DeploymentStatus::Success).map(|d| d.finished_at).collect();
        for d in list.iter().filter(|d| d.status != DeploymentStatus::Success) {
            let next = successes.partition_point(|t| *t <= d.finished_at);
            match successes.get(next) {
                Some(t) if *t <= q.now => recoveries.push(t - d.finished_at),
                _ => unrecovered += 1,
            }
        }
    }
    for i in incidents {
        match i.resolved_at {
            Some(r) if r <= q.now => recoveries.push(r - i.opened_at),
            _ => unrecovered += 1,
        }
    }
    let recovered = recoveries.len() as u64;
    let recovery_median = percentile_cont(&mut recoveries, 0.5);

    DoraReport {
        window_days: window_days(q.window),
        now: format_time(q.now),
        environment: q.environment.clone(),
        team: q.team.clone(),
        service: q.service.clone(),
        deployment_frequency: Frequency { per_day, deployments: successes, level: Level::for_frequency(per_day) },
        lead_time: LeadTime {
            median_seconds: median,
            p90_seconds: p90,
            changes: changes.len() as u64,
            level: median.map(Level::for_lead_time),
        },
        change_failure_rate: ChangeFailureRate {
            ratio: ratio(failed),
            failed,
            deployments: finished,
            level: ratio(failed).map(Level::for_failure_rate),
        },
        recovery_time: RecoveryTime {
            median_seconds: recovery_median,
            recovered,
            unrecovered,
            level: recovery_median.map(Level::for_recovery),
        },
        rework_rate: ReworkRate { ratio: ratio(unplanned), unplanned, deployments: finished },
        levels_source: "DORA 2023",
    }
}

impl Ledger {
    fn filter(&self, q: &DoraQuery) -> Result<Option<Filter>> {
        self.read(|c| {
            let Some(env) = Ledger::name_id(c, NameKind::Environment, &q.environment)? else { return Ok(None) };
            let team = match &q.team {
                Some(t) => match Ledger::name_id(c, NameKind::Team, t)? {
                    Some(id) => Some(id),
                    None => return Ok(None),
                },
                None => None,
            };
            let service = match &q.service {
                Some(s) => match Ledger::name_id(c, NameKind::Service, s)? {
                    Some(id) => Some(id),
                    None => return Ok(None),
                },
                None => None,
            };
            Ok(Some(Filter { env, team, service }))
        })
    }

    /// The five DORA keys for one scope.
    pub fn dora(&self, q: &DoraQuery) -> Result<DoraReport> {
        check_window(q)?;
        let Some(f) = self.filter(q)? else {
            return Ok(compute(q, &[], &HashSet::new(), &mut Vec::new(), &[]));
        };
        let w = Window::load(self, &f, q)?;
        let mut leads: Vec<i64> = w.changes.iter().map(|c| c.lead).collect();
        Ok(compute(q, &w.deployments, &w.with_incident, &mut leads, &w.incidents))
    }

    /// One report per team or service that has deployments, changes or incidents in the
    /// window, sorted by name.
    pub fn dora_by(&self, q: &DoraQuery, by: GroupBy) -> Result<Vec<DoraReport>> {
        check_window(q)?;
        let Some(f) = self.filter(q)? else { return Ok(Vec::new()) };
        let w = Window::load(self, &f, q)?;
        let kind = match by {
            GroupBy::Team => NameKind::Team,
            GroupBy::Service => NameKind::Service,
        };
        let names = self.read(|c| Ledger::names(c, kind))?;
        let key_d = |d: &Deployment| if by == GroupBy::Team { d.team } else { d.service };
        let mut deployments: HashMap<i64, Vec<Deployment>> = HashMap::new();
        for d in &w.deployments {
            deployments.entry(key_d(d)).or_default().push(*d);
        }
        let mut changes: HashMap<i64, Vec<i64>> = HashMap::new();
        for c in &w.changes {
            changes.entry(if by == GroupBy::Team { c.team } else { c.service }).or_default().push(c.lead);
        }
        let mut incidents: HashMap<i64, Vec<Incident>> = HashMap::new();
        for i in &w.incidents {
            incidents.entry(if by == GroupBy::Team { i.team } else { i.service }).or_default().push(*i);
        }
        let mut keys: Vec<i64> = deployments.keys().chain(changes.keys()).chain(incidents.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut out: Vec<DoraReport> = keys
            .into_iter()
            .map(|k| {
                let name = names.get(&k).cloned().unwrap_or_default();
                let mut scoped = q.clone();
                match by {
                    GroupBy::Team => scoped.team = Some(name),
                    GroupBy::Service => scoped.service = Some(name),
                }
                compute(
                    &scoped,
                    deployments.get(&k).map_or(&[], Vec::as_slice),
                    &w.with_incident,
                    changes.entry(k).or_default(),
                    incidents.get(&k).map_or(&[], Vec::as_slice),
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.team, &a.service).cmp(&(&b.team, &b.service)));
        Ok(out)
    }
}

fn check_window(q: &DoraQuery) -> Result<()> {
    if q.window <= 0 {
        return Err(Error::invalid("window", q.window.to_string(), "must be longer than zero", None));
    }
    Ok(())
}

fn fmt_duration(seconds: f64) -> String {
    let s = seconds.round() as i64;
    match s {
        s if s < 3_600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60),
        s => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

fn level(l: Option<Level>) -> &'static str {
    l.map_or("-", Level::as_str)
}

impl DoraReport {
    /// A readable table with the level beside each figure.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let scope = match (&self.team, &self.service) {
            (Some(team), Some(s)) => format!("team {team}, service {s}"),
            (Some(team), None) => format!("team {team}"),
            (None, Some(s)) => format!("service {s}"),
            (None, None) => "all teams".into(),
        };
        let _ = writeln!(t, "DORA keys for {} ({scope}), {} days to {}", self.environment, self.window_days, self.now);
        let f = &self.deployment_frequency;
        let l = &self.lead_time;
        let c = &self.change_failure_rate;
        let r = &self.recovery_time;
        let w = &self.rework_rate;
        let rows = [
            (
                "deployment frequency",
                format!("{:.2}/day ({})", f.per_day, paved_core::hint::plural(f.deployments, "deployment")),
                f.level.as_str(),
            ),
            (
                "lead time for changes",
                match (l.median_seconds, l.p90_seconds) {
                    (Some(m), Some(p)) => {
                        let changes = paved_core::hint::plural(l.changes, "change");
                        format!("median {}, p90 {} ({changes})", fmt_duration(m), fmt_duration(p))
                    }
                    _ => "no changes".into(),
                },
                level(l.level),
            ),
            (
                "change failure rate",
                c.ratio.map_or("no deployments".into(), |x| {
                    format!("{:.1}% ({} of {})", x * 100.0, c.failed, c.deployments)
                }),
                level(c.level),
            ),
            (
                "recovery time",
                match r.median_seconds {
                    Some(m) => {
                        format!("median {} ({} recovered, {} unrecovered)", fmt_duration(m), r.recovered, r.unrecovered)
                    }
                    None => format!("nothing recovered ({} unrecovered)", r.unrecovered),
                },
                level(r.level),
            ),
            (
                "rework rate",
                w.ratio.map_or("no deployments".into(), |x| {
                    format!("{:.1}% ({} of {})", x * 100.0, w.unplanned, w.deployments)
                }),
                "",
            ),
        ];
        for (name, value, lvl) in rows {
            let _ = writeln!(t, "  {name:<22} {value:<48} {lvl}");
        }
        let _ = writeln!(t, "  levels: {}", self.levels_source);
        t
    }

    /// One table row per report (for `--by team|service`).
    pub fn to_table(reports: &[DoraReport], by: GroupBy) -> String {
        let mut t = String::new();
        let head = if by == GroupBy::Team { "TEAM" } else { "SERVICE" };
        let _ = writeln!(
            t,
            "{head:<24} {:<18} {:<26} {:<20} {:<22} {:<8}",
            "DEPLOYS/DAY", "LEAD TIME (MEDIAN)", "CHANGE FAILURE", "RECOVERY (MEDIAN)", "REWORK"
        );
        for r in reports {
            let name = if by == GroupBy::Team { r.team.as_deref() } else { r.service.as_deref() }.unwrap_or("-");
            let f = &r.deployment_frequency;
            let lead = r
                .lead_time
                .median_seconds
                .map_or("-".into(), |m| format!("{} {}", fmt_duration(m), level(r.lead_time.level)));
            let cfr = r
                .change_failure_rate
                .ratio
                .map_or("-".into(), |x| format!("{:.1}% {}", x * 100.0, level(r.change_failure_rate.level)));
            let rec = r
                .recovery_time
                .median_seconds
                .map_or("-".into(), |m| format!("{} {}", fmt_duration(m), level(r.recovery_time.level)));
            let rework = r.rework_rate.ratio.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
            let _ = writeln!(
                t,
                "{name:<24} {:<18} {lead:<26} {cfr:<20} {rec:<22} {rework:<8}",
                format!("{:.2} {}", f.per_day, f.level.as_str())
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_cont_interpolates() {
        assert_eq!(percentile_cont(&mut [], 0.5), None);
        assert_eq!(percentile_cont(&mut [7], 0.9), Some(7.0));
        assert_eq!(percentile_cont(&mut [4, 1, 3, 2], 0.5), Some(2.5));
        // p90 of 1..=10: position 8.1 → 9 + 0.1 * (10 - 9)
        let mut v: Vec<i64> = (1..=10).rev().collect();
        assert!((percentile_cont(&mut v, 0.9).unwrap() - 9.1).abs() < 1e-9);
        assert_eq!(percentile_cont(&mut [10, 20, 30], 0.5), Some(20.0));
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_window("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_window("2w").unwrap(), 14 * 86_400);
        assert_eq!(parse_window("90min").unwrap(), 90 * 60);
        assert_eq!(parse_window("90mins").unwrap_err().hint(), Some("did you mean \"90min\"?"));
        assert_eq!(
            parse_window("30x").unwrap_err().hint(),
            Some("use a number and a unit: 30d (days), 12h (hours), 2w (weeks), 90min (minutes)")
        );
        assert_eq!(parse_window("30days").unwrap_err().hint(), Some("did you mean \"30d\"?"));
        assert_eq!(parse_window("30").unwrap_err().hint(), Some("did you mean \"30d\"?"));
        assert!(parse_window("0d").is_err());
        assert!(parse_window("d").is_err());
    }

    #[test]
    fn levels_at_their_boundaries() {
        assert_eq!(Level::for_frequency(1.0), Level::Elite);
        assert_eq!(Level::for_frequency(1.0 / 7.0), Level::High);
        assert_eq!(Level::for_frequency(1.0 / 30.0), Level::Medium);
        assert_eq!(Level::for_frequency(0.03), Level::Low);
        assert_eq!(Level::for_lead_time(DAY - 1.0), Level::Elite);
        assert_eq!(Level::for_lead_time(DAY), Level::High);
        assert_eq!(Level::for_lead_time(30.0 * DAY), Level::Low);
        assert_eq!(Level::for_failure_rate(0.05), Level::Elite);
        assert_eq!(Level::for_failure_rate(0.15), Level::Medium);
        assert_eq!(Level::for_failure_rate(0.151), Level::Low);
        assert_eq!(Level::for_recovery(3_599.0), Level::Elite);
        assert_eq!(Level::for_recovery(3_600.0), Level::High);
        assert_eq!(Level::for_recovery(7.0 * DAY), Level::Low);
    }
}
