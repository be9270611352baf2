//! The DORA keys, computed as the paved design's DORA version 2 defines them (the
//! definitions of dora.dev, Four Keys and Apache DevLake).
//!
//! Window `[now - window, now]` (both ends included), UTC, production by default; events after
//! `now` are ignored. Rollback runs (`paved rollback`) are not deployments.
//!
//! * **production deployments**: finished in the window with status `success`, `rolled_back`
//!   or `rollout_failed`; a `failure` never reached production and is reported as
//!   `failed_to_apply`, in no key;
//! * **deployment frequency**: successful production deployments per day; the level comes from
//!   *deployment days* (UTC days with one or more): the median over the window's 7-day buckets
//!   is ≥ 5 for elite, ≥ 1 for high; the median over 30-day buckets is ≥ 1 for medium;
//! * **lead time for changes**: per commit of a service, `finished_at` of the first successful
//!   deployment of that service (in the same environment) listing it, minus `committed_at`;
//!   leads ≤ 0 are dropped; median and p90 interpolated like `PERCENTILE_CONT`;
//! * **change failure rate**: production deployments rolled back (automatically, or marked by
//!   a later rollback run at or before `now`), linked to an incident opened at or before `now`,
//!   or whose rollout failed and stayed, each counted once, over production deployments;
//! * **failed deployment recovery time**: one sample per failed deployment: an automatic
//!   rollback is timed `finished_at - started_at`; a later rollback, from the deployment's end
//!   to the rollback's; an incident-linked failure, from `min(finished_at, first opened_at)` to
//!   the last `resolved_at` (a failure with an incident unresolved at `now` is unrecovered and
//!   not timed); a failed rollout that stayed, to the next successful deployment. Incidents linked to no production deployment (none, an unknown one, one
//!   that failed to apply, a rollback run) are reported apart as incident restore time;
//! * **deployment rework rate**: unplanned production deployments (so marked, or started while
//!   an incident of the service and environment was open; an unresolved incident counts as
//!   open for 7 days) over production deployments.
//!
//! Levels follow the DORA 2023 clusters as Apache DevLake's 2023 benchmark table encodes them.

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

    /// Deployment frequency, from the medians of deployment days over the window's 7-day and
    /// 30-day buckets: elite when the weekly median is ≥ 5, high when it is ≥ 1, medium when
    /// the 30-day median is ≥ 1.
    pub fn for_deployment_days(weekly_median: f64, monthly_median: f64) -> Level {
        Self::first_met([weekly_median >= 5.0, weekly_median >= 1.0, monthly_median >= 1.0])
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
    /// Successful production deployments per day.
    pub per_day: f64,
    /// Successful production deployments in the window.
    pub deployments: u64,
    /// UTC days with at least one successful production deployment.
    pub deployment_days: u64,
    /// Median of deployment days over the window's 7-day buckets, counted back from `now`.
    pub weekly_deployment_days_median: f64,
    /// Median of deployment days over the window's 30-day buckets, counted back from `now`.
    pub monthly_deployment_days_median: f64,
    /// The level, from the two medians.
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
    /// Production deployments rolled back or linked to an incident.
    pub failed: u64,
    /// Of `failed`, those rolled back (automatically or by a later rollback run).
    pub rolled_back: u64,
    /// Of `failed`, those linked to an incident and not rolled back.
    pub incident_linked: u64,
    /// Of `failed`, those whose rollout failed and stayed live, neither rolled back nor linked
    /// to an incident.
    pub rollout_failed: u64,
    /// Production deployments.
    pub deployments: u64,
    /// The level.
    pub level: Option<Level>,
}

/// Failed deployment recovery time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryTime {
    /// Median, seconds (`None` when nothing recovered).
    pub median_seconds: Option<f64>,
    /// Failed deployments recovered by `now`.
    pub recovered: u64,
    /// Failed deployments with an incident still unresolved at `now`.
    pub unrecovered: u64,
    /// The level of the median.
    pub level: Option<Level>,
}

/// Incident restore time: incidents linked to no known deployment (the original design's
/// "incident MTTR"), opened in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRestore {
    /// Median time from opened to resolved, seconds (`None` when none was resolved).
    pub median_seconds: Option<f64>,
    /// Incidents resolved by `now`.
    pub resolved: u64,
    /// Incidents still unresolved at `now`.
    pub unresolved: u64,
}

/// Deployment rework rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReworkRate {
    /// `unplanned / deployments` (`None` without deployments).
    pub ratio: Option<f64>,
    /// Unplanned production deployments: so marked, or started during an open incident.
    pub unplanned: u64,
    /// Of `unplanned`, those inferred from an open incident (not marked by their event).
    pub inferred: u64,
    /// Production deployments.
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
    /// Incident restore time of incidents linked to no deployment.
    pub incidents: IncidentRestore,
    /// Deployments that never reached production (status `failure`): in no key.
    pub failed_to_apply: u64,
    /// The definitions applied.
    pub definitions: &'static str,
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

/// An unresolved incident counts as open this long after it was opened, for rework inference.
pub const UNRESOLVED_OPEN_FOR: i64 = 7 * 86_400;
const WEEK: i64 = 7 * 86_400;
const THIRTY_DAYS: i64 = 30 * 86_400;

/// Whether and how a production deployment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Not rolled back, no incident linked.
    None,
    /// Rolled back (automatically or later); recovered after this many seconds.
    RolledBack(i64),
    /// Linked to incidents, all resolved; recovered after this many seconds.
    Incident(i64),
    /// Linked to an incident unresolved at `now`.
    Unrecovered,
    /// Its rollout failed and stayed live; fixed by the next successful deployment after this
    /// many seconds (`None`: not yet).
    Rollout(Option<i64>),
}

/// One deployment of the window, with everything DORA derives from it.
#[derive(Debug, Clone, Copy)]
struct Deployment {
    service: i64,
    team: i64,
    /// `false` for a `failure`: it never reached production.
    production: bool,
    /// Reached production and was not rolled back (as of `now`).
    successful: bool,
    finished_at: UnixSeconds,
    failure: Failure,
    /// Marked unplanned by its event.
    marked_unplanned: bool,
    /// Started while an incident of its service was open.
    during_incident: bool,
}

#[derive(Debug, Clone, Copy)]
struct Change {
    /// The team or service it is grouped by (0 when not grouped).
    key: i64,
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
    changes: Vec<Change>,
    /// Incidents linked to no known deployment, opened in the window.
    incidents: Vec<Incident>,
}

struct Filter {
    env: i64,
    team: Option<i64>,
    service: Option<i64>,
}

/// A deployment row as stored.
struct Row {
    rowid: i64,
    service: i64,
    team: i64,
    status: DeploymentStatus,
    started_at: UnixSeconds,
    finished_at: UnixSeconds,
    unplanned: bool,
    rolled_back_at: Option<UnixSeconds>,
}

fn load_rows(conn: &Connection, f: &Filter, start: i64, end: i64) -> rusqlite::Result<Vec<Row>> {
    // Answered from the covering index (environment, finished_at, status, team, service,
    // unplanned, rollback, started_at, rolled_back_at, …). Rollback runs are not deployments.
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, service, team, status, finished_at, unplanned, started_at, rolled_back_at FROM deployments
         WHERE environment = ?1 AND finished_at >= ?2 AND finished_at <= ?3 AND rollback = 0
           AND (?4 IS NULL OR team = ?4) AND (?5 IS NULL OR service = ?5)",
    )?;
    let mut rows = stmt.query(params![f.env, start, end, f.team, f.service])?;
    let mut out = Vec::new();
    let int = |r: &rusqlite::Row<'_>, i| r.get_ref(i).and_then(|v| v.as_i64().map_err(Into::into));
    while let Some(r) = rows.next()? {
        let Some(status) = DeploymentStatus::from_code(int(r, 3)?).filter(|s| s.is_finished_change()) else { continue };
        out.push(Row {
            rowid: int(r, 0)?,
            service: int(r, 1)?,
            team: int(r, 2)?,
            status,
            finished_at: int(r, 4)?,
            unplanned: int(r, 5)? != 0,
            started_at: int(r, 6)?,
            rolled_back_at: r.get(7)?,
        });
    }
    Ok(out)
}

fn load_changes(
    conn: &Connection,
    f: &Filter,
    (start, end): (i64, i64),
    by: Option<GroupBy>,
) -> rusqlite::Result<Vec<Change>> {
    // Only the column the report is grouped by: millions of rows over a year.
    let key = match by {
        Some(GroupBy::Team) => "team",
        Some(GroupBy::Service) => "service",
        None => "0",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {key}, delivered_at - committed_at FROM commits
         WHERE first = 1 AND environment = ?1 AND delivered_at >= ?2 AND delivered_at <= ?3
           AND (?4 IS NULL OR team = ?4) AND (?5 IS NULL OR service = ?5) AND delivered_at > committed_at"
    ))?;
    let mut rows = stmt.query(params![f.env, start, end, f.team, f.service])?;
    let mut out = Vec::new();
    let int = |r: &rusqlite::Row<'_>, i| r.get_ref(i).and_then(|v| v.as_i64().map_err(Into::into));
    while let Some(r) = rows.next()? {
        out.push(Change { key: int(r, 0)?, lead: int(r, 1)? });
    }
    Ok(out)
}

/// A map keyed by ledger ids (rowids, interned names): they are not attacker-chosen hash
/// keys, and SipHash was a tenth of a year's report.
type IdMap<V> = rustc_hash::FxHashMap<i64, V>;

/// A set of ledger ids or day numbers.
type IdSet = rustc_hash::FxHashSet<i64>;

/// Per deployment (rowid), its linked incidents opened by `now`: `(first opened, last
/// resolved, any unresolved at now)`.
type Linked = IdMap<(UnixSeconds, UnixSeconds, bool)>;

fn load_linked(conn: &Connection, end: i64, rows_range: Option<(i64, i64)>) -> rusqlite::Result<Linked> {
    // Incidents carry their deployment's row: one range of the index by it, bounded by the
    // window's rows (entries of other rows are never looked up).
    let mut stmt = conn.prepare_cached(
        "SELECT deployment_row, opened_at, resolved_at FROM incidents
         WHERE deployment_row >= ?1 AND deployment_row <= ?2 AND opened_at <= ?3",
    )?;
    let Some((first, last)) = rows_range else { return Ok(Linked::default()) };
    let mut rows = stmt.query(params![first, last, end])?;
    let mut linked = Linked::default();
    while let Some(r) = rows.next()? {
        let (rowid, opened, resolved): (i64, i64, Option<i64>) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let resolved = resolved.filter(|t| *t <= end);
        let e = linked.entry(rowid).or_insert((opened, i64::MIN, false));
        e.0 = e.0.min(opened);
        match resolved {
            Some(t) => e.1 = e.1.max(t),
            None => e.2 = true,
        }
    }
    Ok(linked)
}

/// Per service, the merged open intervals `(opened, until)` (both exclusive) of the
/// environment's incidents that may overlap starts in `[from, end]`.
fn load_open_intervals(conn: &Connection, f: &Filter, from: i64, end: i64) -> rusqlite::Result<IdMap<Vec<(i64, i64)>>> {
    // Range scans of the covering index (environment, resolved_at, opened_at, service):
    // incidents resolved after `from` (by `now`), and those unresolved at `now` (a resolution
    // after `now` is ignored), open for 7 days.
    let mut stmt = conn.prepare_cached(
        "SELECT service, opened_at, resolved_at FROM incidents
         WHERE environment = ?1 AND resolved_at > ?2 AND resolved_at <= ?3 AND opened_at < ?3
           AND (?5 IS NULL OR service = ?5)
         UNION ALL
         SELECT service, opened_at, opened_at + ?4 FROM incidents
         WHERE environment = ?1 AND (resolved_at IS NULL OR resolved_at > ?3) AND opened_at > ?2 - ?4
           AND opened_at < ?3 AND (?5 IS NULL OR service = ?5)",
    )?;
    let mut by_service: IdMap<Vec<(i64, i64)>> = IdMap::default();
    let mut rows = stmt.query(params![f.env, from, end, UNRESOLVED_OPEN_FOR, f.service])?;
    while let Some(r) = rows.next()? {
        by_service.entry(r.get(0)?).or_default().push((r.get(1)?, r.get(2)?));
    }
    for intervals in by_service.values_mut() {
        intervals.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
        for &(open, until) in intervals.iter() {
            match merged.last_mut() {
                // Open intervals: (a, b) and (b, c) leave b itself closed.
                Some(last) if open < last.1 => last.1 = last.1.max(until),
                _ => merged.push((open, until)),
            }
        }
        *intervals = merged;
    }
    Ok(by_service)
}

/// `true` when `t` lies strictly inside one of the sorted, disjoint open intervals.
fn inside(intervals: &[(i64, i64)], t: i64) -> bool {
    let i = intervals.partition_point(|(open, _)| *open < t);
    i > 0 && t < intervals[i - 1].1
}

fn load_unlinked(conn: &Connection, f: &Filter, start: i64, end: i64) -> rusqlite::Result<Vec<Incident>> {
    let mut stmt = conn.prepare_cached(
        "SELECT service, team, opened_at, resolved_at FROM incidents i
         WHERE environment = ?1 AND opened_at >= ?2 AND opened_at <= ?3
           AND (?4 IS NULL OR team = ?4) AND (?5 IS NULL OR service = ?5)
           AND (deployment_row IS NULL OR NOT EXISTS (
                SELECT 1 FROM deployments d WHERE d.rowid = i.deployment_row AND d.environment = i.environment
                  AND d.rollback = 0 AND d.status IN (?6, ?7) AND d.finished_at <= ?3))",
    )?;
    let reached = (DeploymentStatus::Success.code(), DeploymentStatus::RolledBack.code());
    stmt.query_map(params![f.env, start, end, f.team, f.service, reached.0, reached.1], |r| {
        Ok(Incident {
            service: r.get(0)?,
            team: r.get(1)?,
            opened_at: r.get(2)?,
            resolved_at: r.get::<_, Option<i64>>(3)?.filter(|t| *t <= end),
        })
    })?
    .collect()
}

impl Window {
    fn load(ledger: &Ledger, f: &Filter, q: &DoraQuery, by: Option<GroupBy>) -> Result<Self> {
        let (start, now) = (q.start(), q.now);
        let reader = ledger.reader()?;
        std::thread::scope(|s| {
            // Lead times and unlinked incidents on one, deployments and their incidents on the
            // other: about even over a year.
            let side = s.spawn(move || -> rusqlite::Result<_> {
                Ok((load_changes(&reader, f, (start, now), by)?, load_unlinked(&reader, f, start, now)?))
            });
            let rest = ledger.read(|conn| {
                let rows = load_rows(conn, f, start, now)?;
                let range = rows.iter().map(|r| r.rowid).fold(None, |acc: Option<(i64, i64)>, id| match acc {
                    Some((lo, hi)) => Some((lo.min(id), hi.max(id))),
                    None => Some((id, id)),
                });
                let linked = load_linked(conn, now, range)?;
                let first_start = rows.iter().map(|r| r.started_at).min().unwrap_or(start);
                let open = load_open_intervals(conn, f, first_start, now)?;
                Ok((rows, linked, open))
            });
            let (changes, incidents) = side.join().expect("reader thread").map_err(ledger.err())?;
            let (rows, linked, open) = rest?;
            // Per service, the ends of its successful deployments: what fixes a failed rollout.
            let mut fixes: IdMap<Vec<i64>> = IdMap::default();
            for r in rows.iter().filter(|r| r.status == DeploymentStatus::Success) {
                fixes.entry(r.service).or_default().push(r.finished_at);
            }
            fixes.values_mut().for_each(|v| v.sort_unstable());
            // Two halves on two threads: each row is derived on its own.
            let derive_all =
                |rows: &[Row]| rows.iter().map(|r| derive(r, now, &linked, &open, &fixes)).collect::<Vec<_>>();
            let (first, second) = rows.split_at(rows.len() / 2);
            let deployments = std::thread::scope(|s| {
                let other = s.spawn(|| derive_all(second));
                let mut all = derive_all(first);
                all.extend(other.join().expect("the derive thread does not panic"));
                all
            });
            Ok(Window { deployments, changes, incidents })
        })
    }
}

/// What DORA version 2 makes of one stored deployment, as of `now`.
fn derive(r: &Row, now: i64, linked: &Linked, open: &IdMap<Vec<(i64, i64)>>, fixes: &IdMap<Vec<i64>>) -> Deployment {
    let production = r.status.reached_production();
    let fixed = || {
        let ends = fixes.get(&r.service).map_or(&[][..], Vec::as_slice);
        ends.get(ends.partition_point(|t| *t <= r.finished_at)).map(|t| t - r.finished_at)
    };
    let marked = r.rolled_back_at.filter(|t| *t <= now);
    let failure = match (r.status, marked, linked.get(&r.rowid)) {
        (DeploymentStatus::Failure, ..) => Failure::None,
        (DeploymentStatus::RolledBack, ..) => Failure::RolledBack(r.finished_at - r.started_at),
        (_, Some(at), _) => Failure::RolledBack(at - r.finished_at),
        (_, None, Some((_, _, true))) => Failure::Unrecovered,
        (_, None, Some((opened, resolved, false))) => Failure::Incident(resolved - r.finished_at.min(*opened)),
        (DeploymentStatus::RolloutFailed, None, None) => Failure::Rollout(fixed()),
        (_, None, None) => Failure::None,
    };
    Deployment {
        service: r.service,
        team: r.team,
        production,
        successful: r.status == DeploymentStatus::Success && marked.is_none(),
        finished_at: r.finished_at,
        failure,
        marked_unplanned: r.unplanned,
        during_incident: open.get(&r.service).is_some_and(|i| inside(i, r.started_at)),
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

/// The median number of deployment days (distinct UTC days) over the window's buckets of
/// `size` seconds, counted back from `now`. Buckets are `(now - size·(k+1), now - size·k]`;
/// the window's start belongs to the oldest bucket; days before the oldest whole bucket do not
/// count; a window shorter than `size` is one bucket.
fn deployment_days_median(now: i64, window: i64, size: i64, finished: &[i64]) -> f64 {
    let (count, size) = if window < size { (1, window) } else { (window / size, size) };
    let mut days: Vec<IdSet> = vec![IdSet::default(); count as usize];
    for &t in finished {
        let age = now - t;
        if age < 0 {
            continue;
        }
        let k = if age == count * size { count - 1 } else { age / size };
        if k < count {
            days[k as usize].insert(t.div_euclid(86_400));
        }
    }
    let mut counts: Vec<i64> = days.iter().map(|d| d.len() as i64).collect();
    percentile_cont(&mut counts, 0.5).unwrap_or(0.0)
}

/// Computes the keys over loaded rows (already filtered to one scope).
fn compute(q: &DoraQuery, deployments: &[Deployment], changes: &mut [i64], incidents: &[Incident]) -> DoraReport {
    let days = q.window as f64 / DAY;
    let production: Vec<&Deployment> = deployments.iter().filter(|d| d.production).collect();
    let failed_to_apply = (deployments.len() - production.len()) as u64;
    let successful: Vec<i64> = production.iter().filter(|d| d.successful).map(|d| d.finished_at).collect();
    let successes = successful.len() as u64;
    let per_day = successes as f64 / days;
    let deployment_days = successful.iter().map(|t| t.div_euclid(86_400)).collect::<IdSet>().len() as u64;
    let weekly = deployment_days_median(q.now, q.window, WEEK, &successful);
    let monthly = deployment_days_median(q.now, q.window, THIRTY_DAYS, &successful);

    let total = production.len() as u64;
    let ratio = |n: u64| (total > 0).then(|| n as f64 / total as f64);
    let mut recoveries: Vec<i64> = Vec::new();
    let (mut rolled_back, mut incident_linked, mut rollout_failed, mut unrecovered) = (0u64, 0u64, 0u64, 0u64);
    for d in &production {
        match d.failure {
            Failure::None => {}
            Failure::RolledBack(s) => {
                rolled_back += 1;
                recoveries.push(s);
            }
            Failure::Incident(s) => {
                incident_linked += 1;
                recoveries.push(s);
            }
            Failure::Unrecovered => {
                incident_linked += 1;
                unrecovered += 1;
            }
            Failure::Rollout(fixed) => {
                rollout_failed += 1;
                match fixed {
                    Some(s) => recoveries.push(s),
                    None => unrecovered += 1,
                }
            }
        }
    }
    let failed = rolled_back + incident_linked + rollout_failed;
    let recovered = recoveries.len() as u64;
    let recovery_median = percentile_cont(&mut recoveries, 0.5);
    let marked = production.iter().filter(|d| d.marked_unplanned).count() as u64;
    let unplanned = production.iter().filter(|d| d.marked_unplanned || d.during_incident).count() as u64;

    let mut restores: Vec<i64> = incidents.iter().filter_map(|i| i.resolved_at.map(|r| r - i.opened_at)).collect();
    let resolved = restores.len() as u64;

    let median = percentile_cont(changes, 0.5);
    let p90 = percentile_cont(changes, 0.9);
    DoraReport {
        window_days: window_days(q.window),
        now: format_time(q.now),
        environment: q.environment.clone(),
        team: q.team.clone(),
        service: q.service.clone(),
        deployment_frequency: Frequency {
            per_day,
            deployments: successes,
            deployment_days,
            weekly_deployment_days_median: weekly,
            monthly_deployment_days_median: monthly,
            level: Level::for_deployment_days(weekly, monthly),
        },
        lead_time: LeadTime {
            median_seconds: median,
            p90_seconds: p90,
            changes: changes.len() as u64,
            level: median.map(Level::for_lead_time),
        },
        change_failure_rate: ChangeFailureRate {
            ratio: ratio(failed),
            failed,
            rolled_back,
            incident_linked,
            rollout_failed,
            deployments: total,
            level: ratio(failed).map(Level::for_failure_rate),
        },
        recovery_time: RecoveryTime {
            median_seconds: recovery_median,
            recovered,
            unrecovered,
            level: recovery_median.map(Level::for_recovery),
        },
        rework_rate: ReworkRate {
            ratio: ratio(unplanned),
            unplanned,
            inferred: unplanned - marked,
            deployments: total,
        },
        incidents: IncidentRestore {
            median_seconds: percentile_cont(&mut restores, 0.5),
            resolved,
            unresolved: incidents.len() as u64 - resolved,
        },
        failed_to_apply,
        definitions: DEFINITIONS,
        levels_source: "DORA 2023",
    }
}

/// The definitions [`Ledger::dora`] applies, as reports name them.
pub const DEFINITIONS: &str = "paved DORA v2 (dora.dev, Four Keys, Apache DevLake)";

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

    /// The DORA keys for one scope.
    pub fn dora(&self, q: &DoraQuery) -> Result<DoraReport> {
        check_window(q)?;
        let Some(f) = self.filter(q)? else {
            return Ok(compute(q, &[], &mut Vec::new(), &[]));
        };
        let w = Window::load(self, &f, q, None)?;
        let mut leads: Vec<i64> = w.changes.iter().map(|c| c.lead).collect();
        Ok(compute(q, &w.deployments, &mut leads, &w.incidents))
    }

    /// One report per team or service that has deployments, changes or incidents in the
    /// window, sorted by name.
    pub fn dora_by(&self, q: &DoraQuery, by: GroupBy) -> Result<Vec<DoraReport>> {
        check_window(q)?;
        let Some(f) = self.filter(q)? else { return Ok(Vec::new()) };
        let w = Window::load(self, &f, q, Some(by))?;
        let kind = match by {
            GroupBy::Team => NameKind::Team,
            GroupBy::Service => NameKind::Service,
        };
        let names = self.read(|c| Ledger::names(c, kind))?;
        let key = |team: i64, service: i64| if by == GroupBy::Team { team } else { service };
        let mut deployments: IdMap<Vec<Deployment>> = IdMap::default();
        for d in &w.deployments {
            deployments.entry(key(d.team, d.service)).or_default().push(*d);
        }
        let mut changes: IdMap<Vec<i64>> = IdMap::default();
        for c in &w.changes {
            changes.entry(c.key).or_default().push(c.lead);
        }
        let mut incidents: IdMap<Vec<Incident>> = IdMap::default();
        for i in &w.incidents {
            incidents.entry(key(i.team, i.service)).or_default().push(*i);
        }
        let mut keys: Vec<i64> = deployments.keys().chain(changes.keys()).chain(incidents.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        // Each group's leads, to be reordered by its percentiles.
        let mut groups: Vec<(i64, Vec<i64>)> =
            keys.into_iter().map(|k| (k, changes.remove(&k).unwrap_or_default())).collect();
        let report = |(k, leads): &mut (i64, Vec<i64>)| {
            let name = names.get(k).cloned().unwrap_or_default();
            let mut scoped = q.clone();
            match by {
                GroupBy::Team => scoped.team = Some(name),
                GroupBy::Service => scoped.service = Some(name),
            }
            compute(
                &scoped,
                deployments.get(k).map_or(&[], Vec::as_slice),
                leads,
                incidents.get(k).map_or(&[], Vec::as_slice),
            )
        };
        // Two halves on two threads: the groups are independent.
        let half = groups.len() / 2;
        let (first, second) = groups.split_at_mut(half);
        let mut out: Vec<DoraReport> = std::thread::scope(|s| {
            let other = s.spawn(|| second.iter_mut().map(report).collect::<Vec<_>>());
            let mut out: Vec<DoraReport> = first.iter_mut().map(report).collect();
            out.extend(other.join().expect("the report thread does not panic"));
            out
        });
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
                format!(
                    "{:.2}/day ({} on {})",
                    f.per_day,
                    paved_core::hint::plural(f.deployments, "deployment"),
                    paved_core::hint::plural(f.deployment_days, "day")
                ),
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
            (
                "incident restore time",
                match self.incidents.median_seconds {
                    Some(m) => format!(
                        "median {} ({} resolved, {} unresolved)",
                        fmt_duration(m),
                        self.incidents.resolved,
                        self.incidents.unresolved
                    ),
                    None => format!("nothing resolved ({} unresolved)", self.incidents.unresolved),
                },
                "",
            ),
        ];
        for (name, value, lvl) in rows {
            let _ = writeln!(t, "  {name:<22} {value:<48} {lvl}");
        }
        if self.failed_to_apply > 0 {
            let _ = writeln!(
                t,
                "  {} never reached {} (failed to apply; in no key)",
                paved_core::hint::plural(self.failed_to_apply, "deployment"),
                self.environment
            );
        }
        let _ = writeln!(t, "  definitions: {}; levels: {}", self.definitions, self.levels_source);
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
    fn deployment_day_buckets_count_back_from_now() {
        let now = 100 * 86_400; // a midnight
        let h = 3_600;
        // 30 days = 4 whole weeks (the 2 oldest days are in no weekly bucket) and one month.
        let window = 30 * 86_400;
        // Week 0: 6 UTC days (`now` is a midnight, so `now` and `now - 1h` are two days); week 1:
        // 1 day; weeks 2 and 3: none.
        let t = [now, now - h, now - 86_400 - h, now - 2 * 86_400 - h, now - 3 * 86_400 - h, now - 4 * 86_400 - h];
        let mut times = t.to_vec();
        times.push(now - 8 * 86_400);
        // Before the 4 whole weeks, still in the window: only the monthly bucket sees it.
        times.push(now - 29 * 86_400);
        assert_eq!(deployment_days_median(now, window, WEEK, &times), 0.5);
        assert_eq!(deployment_days_median(now, window, THIRTY_DAYS, &times), 8.0);
        // A deployment exactly one week before now belongs to the older bucket.
        assert_eq!(deployment_days_median(now, 2 * WEEK, WEEK, &[now - WEEK]), 0.5);
        // The window's start belongs to the oldest bucket; a window shorter than the bucket is one.
        assert_eq!(deployment_days_median(now, WEEK, WEEK, &[now - WEEK]), 1.0);
        assert_eq!(deployment_days_median(now, 3 * 86_400, WEEK, &[now - 86_400, now]), 2.0);
        // A burst of 30 deployments on one day is one deployment day.
        let burst: Vec<i64> = (0..30).map(|i| now - 2 * h - i * 60).collect();
        assert_eq!(deployment_days_median(now, window, WEEK, &burst), 0.0);
    }

    #[test]
    fn open_intervals_exclude_their_ends() {
        let intervals = [(10, 20), (20, 30), (40, 50)];
        assert!(!inside(&intervals, 10));
        assert!(inside(&intervals, 11));
        assert!(!inside(&intervals, 20));
        assert!(inside(&intervals, 29));
        assert!(!inside(&intervals, 35));
        assert!(!inside(&intervals, 50));
        assert!(!inside(&[], 5));
    }

    #[test]
    fn levels_at_their_boundaries() {
        assert_eq!(Level::for_deployment_days(5.0, 20.0), Level::Elite);
        assert_eq!(Level::for_deployment_days(4.5, 20.0), Level::High);
        assert_eq!(Level::for_deployment_days(1.0, 4.0), Level::High);
        assert_eq!(Level::for_deployment_days(0.5, 2.0), Level::Medium);
        assert_eq!(Level::for_deployment_days(0.0, 1.0), Level::Medium);
        assert_eq!(Level::for_deployment_days(0.0, 0.5), Level::Low);
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
