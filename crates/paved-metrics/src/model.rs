//! The events the ledger keeps, and the JSON Lines format they are imported from.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

/// Seconds since the Unix epoch (UTC); the ledger's unit of time.
pub type UnixSeconds = i64;

/// How a deployment ended (or that it has not ended yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeploymentStatus {
    /// Deployed; counts for DORA.
    Success,
    /// Failed; counts for DORA.
    Failure,
    /// Deployed, then rolled back; counts for DORA as a failed change.
    RolledBack,
    /// Started, not finished.
    InProgress,
    /// Nothing changed (same objects as the current revision); not a DORA deployment.
    Unchanged,
    /// Denied by policy before anything was applied; not a DORA deployment.
    Denied,
    /// Applied, but the rollout never became ready and nothing was restored: it reached
    /// production and failed there (a failed change, recovered by a later rollback or the next
    /// successful deployment).
    RolloutFailed,
}

impl DeploymentStatus {
    const ALL: [(DeploymentStatus, &'static str, i64); 7] = [
        (DeploymentStatus::Success, "success", 1),
        (DeploymentStatus::Failure, "failure", 2),
        (DeploymentStatus::RolledBack, "rolled_back", 3),
        (DeploymentStatus::InProgress, "in_progress", 4),
        (DeploymentStatus::Unchanged, "unchanged", 5),
        (DeploymentStatus::Denied, "denied", 6),
        (DeploymentStatus::RolloutFailed, "rollout_failed", 7),
    ];

    /// The name used in JSON (`success`, `rolled_back`, …).
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(s, _, _)| *s == self).map_or("", |(_, n, _)| n)
    }

    pub(crate) fn code(self) -> i64 {
        Self::ALL.iter().find(|(s, _, _)| *s == self).map_or(0, |(_, _, c)| *c)
    }

    pub(crate) fn from_code(code: i64) -> Option<Self> {
        Self::ALL.iter().find(|(_, _, c)| *c == code).map(|(s, _, _)| *s)
    }

    /// `true` for the statuses DORA counts as a finished deployment: success, failure, rolled
    /// back, rollout failed.
    pub fn is_finished_change(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Success
                | DeploymentStatus::Failure
                | DeploymentStatus::RolledBack
                | DeploymentStatus::RolloutFailed
        )
    }

    /// `true` for the statuses of a deployment that reached production: success, rolled back,
    /// rollout failed.
    pub fn reached_production(self) -> bool {
        matches!(self, DeploymentStatus::Success | DeploymentStatus::RolledBack | DeploymentStatus::RolloutFailed)
    }
}

/// A commit shipped by a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    /// The commit SHA.
    pub sha: String,
    /// When it was committed.
    pub committed_at: UnixSeconds,
}

/// A deployment (of paved, or imported from CI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentEvent {
    /// Unique id; recording the same id again updates the deployment.
    pub id: String,
    /// The service deployed.
    pub service: String,
    /// The owning team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// How it ended.
    pub status: DeploymentStatus,
    /// When it started.
    pub started_at: UnixSeconds,
    /// When it finished (`None` while in progress).
    pub finished_at: Option<UnixSeconds>,
    /// The commits it shipped.
    pub commits: Vec<CommitRef>,
    /// `true` for unplanned deployments (fixing a production incident): the rework rate.
    pub unplanned: bool,
    /// `true` when the deployment was a rollback (`paved rollback`).
    pub rollback: bool,
    /// The revision it created, when known.
    pub revision: Option<i64>,
    /// The image, when known.
    pub image: Option<String>,
    /// The escape hatches it used (`cpu-limit=2000m`, `no-hpa`, …).
    pub escape_hatches: Vec<String>,
}

impl DeploymentEvent {
    /// A finished deployment without commits or escape hatches.
    pub fn new(
        id: &str,
        service: &str,
        team: &str,
        environment: &str,
        status: DeploymentStatus,
        started_at: UnixSeconds,
        finished_at: UnixSeconds,
    ) -> Self {
        DeploymentEvent {
            id: id.into(),
            service: service.into(),
            team: team.into(),
            environment: environment.into(),
            status,
            started_at,
            finished_at: Some(finished_at),
            commits: Vec::new(),
            unplanned: false,
            rollback: false,
            revision: None,
            image: None,
            escape_hatches: Vec::new(),
        }
    }
}

/// An incident, linked to the deployment that caused it when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IncidentEvent {
    /// Unique id; recording the same id again updates the incident.
    pub id: String,
    /// The affected service.
    pub service: String,
    /// The owning team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// The deployment that caused it.
    pub deployment_id: Option<String>,
    /// When it was opened.
    pub opened_at: UnixSeconds,
    /// When it was resolved (`None` while open).
    pub resolved_at: Option<UnixSeconds>,
}

impl IncidentEvent {
    /// An incident.
    pub fn new(
        id: &str,
        service: &str,
        team: &str,
        environment: &str,
        opened_at: UnixSeconds,
        resolved_at: Option<UnixSeconds>,
    ) -> Self {
        IncidentEvent {
            id: id.into(),
            service: service.into(),
            team: team.into(),
            environment: environment.into(),
            deployment_id: None,
            opened_at,
            resolved_at,
        }
    }
}

/// Something else the platform did: a database provisioned, a policy decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActivityEvent {
    /// `database_provisioned` or `policy_decision`.
    pub kind: ActivityKind,
    /// The service.
    pub service: String,
    /// The team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// When it happened.
    pub at: UnixSeconds,
    /// `allowed`/`denied` for policy decisions, the engine for databases.
    pub result: String,
    /// Extra details as JSON.
    pub detail: serde_json::Value,
}

impl ActivityEvent {
    /// An activity that happens now.
    pub fn new(
        kind: ActivityKind,
        service: &str,
        team: &str,
        environment: &str,
        result: &str,
        detail: serde_json::Value,
    ) -> Self {
        ActivityEvent {
            kind,
            service: service.into(),
            team: team.into(),
            environment: environment.into(),
            at: OffsetDateTime::now_utc().unix_timestamp(),
            result: result.into(),
            detail,
        }
    }
}

/// Kinds of [`ActivityEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityKind {
    /// A database was provisioned.
    DatabaseProvisioned,
    /// Policy was evaluated on an action.
    PolicyDecision,
    /// A database's access (and maybe its data) was removed.
    DatabaseDeprovisioned,
    /// A notification of the owning team failed or timed out (the action went on).
    NotificationFailed,
}

impl ActivityKind {
    pub(crate) fn code(self) -> i64 {
        match self {
            ActivityKind::DatabaseProvisioned => 1,
            ActivityKind::PolicyDecision => 2,
            ActivityKind::DatabaseDeprovisioned => 3,
            ActivityKind::NotificationFailed => 4,
        }
    }
}

/// A developer-satisfaction survey answer: "How likely are you to recommend the platform to
/// a colleague?" on the 0–10 Net Promoter scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SurveyEvent {
    /// Unique id; recording the same id again updates the answer.
    pub id: String,
    /// The answering developer's team.
    pub team: String,
    /// The service the answer is about, when it is about one.
    pub service: Option<String>,
    /// When it was answered.
    pub at: UnixSeconds,
    /// The score, 0–10: 9–10 promoters, 7–8 passives, 0–6 detractors.
    pub score: u8,
    /// A free-text comment.
    pub comment: Option<String>,
}

impl SurveyEvent {
    /// An answer without service or comment.
    pub fn new(id: &str, team: &str, at: UnixSeconds, score: u8) -> Self {
        SurveyEvent { id: id.into(), team: team.into(), service: None, at, score, comment: None }
    }
}

/// A support ticket a team opened with the platform team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SupportTicketEvent {
    /// Unique id; recording the same id again updates the ticket.
    pub id: String,
    /// The team that asked.
    pub team: String,
    /// What it was about (`deploys`, `databases`, `access`, …).
    pub category: String,
    /// When it was opened.
    pub opened_at: UnixSeconds,
    /// When it was resolved (`None` while open).
    pub resolved_at: Option<UnixSeconds>,
}

impl SupportTicketEvent {
    /// A ticket.
    pub fn new(id: &str, team: &str, category: &str, opened_at: UnixSeconds, resolved_at: Option<UnixSeconds>) -> Self {
        SupportTicketEvent { id: id.into(), team: team.into(), category: category.into(), opened_at, resolved_at }
    }
}

/// One event for the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LedgerEvent {
    /// A deployment.
    Deployment(DeploymentEvent),
    /// An incident.
    Incident(IncidentEvent),
    /// Other platform activity.
    Activity(ActivityEvent),
    /// A developer-satisfaction survey answer.
    Survey(SurveyEvent),
    /// A support ticket.
    SupportTicket(SupportTicketEvent),
}

/// The `type`s of the import format.
pub const EVENT_TYPES: [&str; 4] = ["deployment", "incident", "survey", "support_ticket"];

/// Parses an RFC 3339 time into Unix seconds.
pub fn parse_time(field: &str, value: &str) -> Result<UnixSeconds> {
    OffsetDateTime::parse(value, &Rfc3339).map(OffsetDateTime::unix_timestamp).map_err(|_| {
        Error::invalid(field, value, "is not an RFC 3339 time", Some("write times like 2026-11-01T10:00:00Z".into()))
    })
}

/// Formats Unix seconds as RFC 3339 (UTC).
pub fn format_time(t: UnixSeconds) -> String {
    OffsetDateTime::from_unix_timestamp(t).ok().and_then(|d| d.format(&Rfc3339).ok()).unwrap_or_else(|| t.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommit<'a> {
    #[serde(borrow)]
    sha: Cow<'a, str>,
    #[serde(borrow)]
    committed_at: Cow<'a, str>,
}

/// One line of the JSON Lines import format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow)]
    team: Option<Cow<'a, str>>,
    #[serde(borrow)]
    environment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    started_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    finished_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    commits: Option<Vec<RawCommit<'a>>>,
    unplanned: Option<bool>,
    #[serde(borrow)]
    deployment_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    opened_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resolved_at: Option<Cow<'a, str>>,
    revision: Option<i64>,
    #[serde(borrow)]
    image: Option<Cow<'a, str>>,
    escape_hatches: Option<Vec<String>>,
    rollback: Option<bool>,
    score: Option<serde_json::Value>,
    comment: Option<String>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Option<Cow<'a, str>>,
}

impl RawEvent<'_> {
    /// The fields given that a type does not have, by name.
    fn given(&self) -> [(&'static str, bool); 18] {
        [
            ("service", self.service.is_some()),
            ("environment", self.environment.is_some()),
            ("status", self.status.is_some()),
            ("started_at", self.started_at.is_some()),
            ("finished_at", self.finished_at.is_some()),
            ("commits", self.commits.is_some()),
            ("unplanned", self.unplanned.is_some()),
            ("deployment_id", self.deployment_id.is_some()),
            ("opened_at", self.opened_at.is_some()),
            ("resolved_at", self.resolved_at.is_some()),
            ("revision", self.revision.is_some()),
            ("image", self.image.is_some()),
            ("escape_hatches", self.escape_hatches.is_some()),
            ("rollback", self.rollback.is_some()),
            ("score", self.score.is_some()),
            ("comment", self.comment.is_some()),
            ("category", self.category.is_some()),
            ("at", self.at.is_some()),
        ]
    }

    /// Refuses fields that `kind` events do not have (a `score` on a deployment is a mistake,
    /// not something to drop silently).
    fn only(&self, kind: &str, allowed: &[&str]) -> Result<()> {
        match self.given().iter().find(|(name, given)| *given && !allowed.contains(name)) {
            Some((name, _)) => Err(Error::invalid(
                "key",
                *name,
                format!("is not a field of a {kind} event"),
                Some(format!("{kind} events have: type, id, team, {}", allowed.join(", "))),
            )),
            None => Ok(()),
        }
    }
}

const DEPLOYMENT_FIELDS: &[&str] = &[
    "service",
    "environment",
    "status",
    "started_at",
    "finished_at",
    "commits",
    "unplanned",
    "revision",
    "image",
    "escape_hatches",
    "rollback",
];
const INCIDENT_FIELDS: &[&str] = &["service", "environment", "deployment_id", "opened_at", "resolved_at"];
const SURVEY_FIELDS: &[&str] = &["service", "score", "comment", "at"];
const TICKET_FIELDS: &[&str] = &["category", "opened_at", "resolved_at"];

/// The longest survey comment kept.
pub const MAX_COMMENT: usize = 4_000;

fn required<'a>(field: &str, value: &'a Option<Cow<'a, str>>) -> Result<&'a str> {
    match value.as_deref() {
        Some(v) if !v.trim().is_empty() => {
            if v.len() > 253 || v.chars().any(char::is_control) {
                Err(Error::invalid(field, v, "must be at most 253 printable characters", None))
            } else {
                Ok(v)
            }
        }
        _ => Err(Error::invalid(field, "", "is required", Some(format!("add \"{field}\" to the event")))),
    }
}

fn choice<'a>(field: &str, value: &str, choices: &[&'a str]) -> Result<&'a str> {
    choices.iter().find(|c| **c == value).copied().ok_or_else(|| {
        let best = choices.iter().map(|c| (c, strsim::jaro_winkler(value, c))).max_by(|a, b| a.1.total_cmp(&b.1));
        let hint = match best {
            Some((c, score)) if score >= 0.7 => format!("did you mean \"{c}\"?"),
            _ => {
                format!("expected one of {}", choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "))
            }
        };
        Error::invalid(field, value, format!("is not a known {field}"), Some(hint))
    })
}

/// Parses one line of the import format (see the crate documentation).
pub fn parse_line(line: &str) -> Result<LedgerEvent> {
    let raw: RawEvent<'_> = serde_json::from_str(line).map_err(|e| {
        let msg = e.to_string();
        let ticked: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
        if msg.starts_with("unknown field") && ticked.len() > 1 {
            let best =
                ticked[1..].iter().map(|c| (c, strsim::jaro_winkler(ticked[0], c))).max_by(|a, b| a.1.total_cmp(&b.1));
            let hint = best.filter(|(_, s)| *s >= 0.7).map(|(c, _)| format!("did you mean \"{c}\"?"));
            Error::invalid("key", ticked[0], "is not a field of the import format", hint)
        } else {
            Error::invalid(
                "JSON",
                truncate(line),
                format!("malformed: {e}"),
                Some("each line is one JSON object".into()),
            )
        }
    })?;
    let kind = required("type", &raw.kind)?;
    let kind = choice("type", kind, &EVENT_TYPES)?;
    let id = required("id", &raw.id)?.to_string();
    match kind {
        "survey" => return parse_survey(raw, id),
        "support_ticket" => return parse_ticket(raw, id),
        _ => {}
    }
    let service = required("service", &raw.service)?.to_string();
    let team = required("team", &raw.team)?.to_string();
    let environment = required("environment", &raw.environment)?.to_string();
    if kind == "deployment" {
        raw.only("deployment", DEPLOYMENT_FIELDS)?;
        let status = choice(
            "status",
            required("status", &raw.status)?,
            &["success", "failure", "rolled_back", "rollout_failed"],
        )?;
        let status = match status {
            "success" => DeploymentStatus::Success,
            "failure" => DeploymentStatus::Failure,
            "rollout_failed" => DeploymentStatus::RolloutFailed,
            _ => DeploymentStatus::RolledBack,
        };
        let started_at = parse_time("started_at", required("started_at", &raw.started_at)?)?;
        let finished_raw = required("finished_at", &raw.finished_at)?;
        let finished_at = parse_time("finished_at", finished_raw)?;
        if finished_at < started_at {
            return Err(Error::invalid(
                "finished_at",
                finished_raw,
                "is before started_at",
                Some("check the two times (and their time zones)".into()),
            ));
        }
        let commits = raw
            .commits
            .unwrap_or_default()
            .iter()
            .map(|c| {
                if c.sha.trim().is_empty() {
                    return Err(Error::invalid("commits.sha", "", "is required", None));
                }
                Ok(CommitRef {
                    sha: c.sha.to_string(),
                    committed_at: parse_time("commits.committed_at", &c.committed_at)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LedgerEvent::Deployment(DeploymentEvent {
            id,
            service,
            team,
            environment,
            status,
            started_at,
            finished_at: Some(finished_at),
            commits,
            unplanned: raw.unplanned.unwrap_or(false),
            rollback: raw.rollback.unwrap_or(false),
            revision: raw.revision,
            image: raw.image.map(Cow::into_owned),
            escape_hatches: raw.escape_hatches.unwrap_or_default(),
        }))
    } else {
        raw.only("incident", INCIDENT_FIELDS)?;
        let (opened_at, resolved_at) = open_and_resolved(&raw)?;
        Ok(LedgerEvent::Incident(IncidentEvent {
            id,
            service,
            team,
            environment,
            deployment_id: raw.deployment_id.map(Cow::into_owned).filter(|d| !d.is_empty()),
            opened_at,
            resolved_at,
        }))
    }
}

/// `opened_at` (required) and `resolved_at` (optional, not before it).
fn open_and_resolved(raw: &RawEvent<'_>) -> Result<(UnixSeconds, Option<UnixSeconds>)> {
    let opened_at = parse_time("opened_at", required("opened_at", &raw.opened_at)?)?;
    let resolved_at = raw.resolved_at.as_deref().map(|r| parse_time("resolved_at", r)).transpose()?;
    if let (Some(r), Some(raw_r)) = (resolved_at, raw.resolved_at.as_deref())
        && r < opened_at
    {
        return Err(Error::invalid("resolved_at", raw_r, "is before opened_at", Some("check the two times".into())));
    }
    Ok((opened_at, resolved_at))
}

fn parse_survey(raw: RawEvent<'_>, id: String) -> Result<LedgerEvent> {
    raw.only("survey", SURVEY_FIELDS)?;
    let team = required("team", &raw.team)?.to_string();
    let service = match &raw.service {
        Some(_) => Some(required("service", &raw.service)?.to_string()),
        None => None,
    };
    let at = parse_time("at", required("at", &raw.at)?)?;
    let hint = || Some("give a whole number from 0 (not at all likely) to 10 (extremely likely)".to_string());
    let score = match &raw.score {
        None => return Err(Error::invalid("score", "", "is required", hint())),
        Some(v) => match v.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(n) if n <= 10 => n,
            _ => return Err(Error::invalid("score", v.to_string(), "is not a score from 0 to 10", hint())),
        },
    };
    let comment = raw.comment.filter(|c| !c.trim().is_empty());
    if let Some(c) = &comment
        && c.chars().count() > MAX_COMMENT
    {
        return Err(Error::invalid(
            "comment",
            truncate(c),
            format!("is longer than {MAX_COMMENT} characters"),
            Some("shorten the comment, or link to the full text".into()),
        ));
    }
    Ok(LedgerEvent::Survey(SurveyEvent { id, team, service, at, score, comment }))
}

fn parse_ticket(raw: RawEvent<'_>, id: String) -> Result<LedgerEvent> {
    raw.only("support_ticket", TICKET_FIELDS)?;
    let team = required("team", &raw.team)?.to_string();
    let category = required("category", &raw.category)?.to_string();
    let (opened_at, resolved_at) = open_and_resolved(&raw)?;
    Ok(LedgerEvent::SupportTicket(SupportTicketEvent { id, team, category, opened_at, resolved_at }))
}

fn truncate(s: &str) -> String {
    let mut t: String = s.chars().take(80).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_lines() {
        let d = parse_line(r#"{"type":"deployment","id":"d-1","service":"payment-service","team":"payments","environment":"production","status":"success","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:04:00Z","commits":[{"sha":"a1b2c3","committed_at":"2026-10-31T16:00:00Z"}],"unplanned":false}"#).unwrap();
        let LedgerEvent::Deployment(d) = d else { panic!() };
        assert_eq!(d.finished_at.unwrap() - d.started_at, 240);
        assert_eq!(d.commits[0].committed_at, d.started_at - 18 * 3600);
        let i = parse_line(r#"{"type":"incident","id":"i-1","service":"payment-service","team":"payments","environment":"production","deployment_id":"d-1","opened_at":"2026-11-01T11:00:00Z","resolved_at":"2026-11-01T11:40:00Z"}"#).unwrap();
        let LedgerEvent::Incident(i) = i else { panic!() };
        assert_eq!(i.resolved_at.unwrap() - i.opened_at, 2400);
        assert_eq!(i.deployment_id.as_deref(), Some("d-1"));
    }

    #[test]
    fn bad_lines_have_hints() {
        let base = r#""id":"d","service":"s","team":"t","environment":"production","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:04:00Z""#;
        let e = parse_line(&format!(r#"{{"type":"deploymnet",{base},"status":"success"}}"#)).unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"deployment\"?"));
        let e = parse_line(&format!(r#"{{"type":"deployment",{base},"status":"sucess"}}"#)).unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"success\"?"));
        let e = parse_line(&format!(r#"{{"type":"deployment",{base},"status":"rolledback"}}"#)).unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"rolled_back\"?"));
        let e = parse_line(r#"{"type":"deployment","id":"d","service":"s","team":"t","environment":"p","status":"success","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T09:00:00Z"}"#).unwrap_err();
        assert!(e.to_string().contains("before started_at"), "{e}");
        let e = parse_line(
            r#"{"type":"incident","id":"i","service":"s","team":"t","environment":"p","opened_at":"yesterday"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
        let e = parse_line(r#"{"type":"incident","id":"i","service":"s","team":"t","environment":"p","opened_at":"2026-11-01 10:00:00"}"#).unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
        let e = parse_line(r#"{"type":"incident","id":"i","service":"s","team":"t","environment":"p","openedat":"2026-11-01T10:00:00Z"}"#).unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"opened_at\"?"));
        let e = parse_line("{not json").unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        let e = parse_line(
            r#"{"type":"incident","service":"s","team":"t","environment":"p","opened_at":"2026-11-01T10:00:00Z"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid id"), "{e}");
    }
}
