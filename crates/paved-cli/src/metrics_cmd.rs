//! `paved events …` and `paved metrics …`: the ledger, DORA, adoption, Prometheus.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use paved::metrics::{DoraQuery, GroupBy, Ledger, format_time, parse_time, parse_window};
use paved::{Error, OrgConfig, Result};
use serde_json::json;

use crate::args::Format;
use crate::output::{self, plural};

/// `paved events`.
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Import events from CI and incident tools: JSON Lines, one event per line (`-` for stdin).
    #[command(after_help = "Examples:
  paved events import deployments.jsonl
  ci-export | paved events import - --strict")]
    Import {
        /// The file (`-` reads standard input).
        file: PathBuf,
        /// Import nothing when any line is bad.
        #[arg(long)]
        strict: bool,
    },
    /// Record one event from flags (the same fields as a JSON line).
    #[command(after_help = "Examples:
  paved events record --type deployment --id d-42 --service checkout --team shop --status success \\
    --started-at 2026-11-01T10:00:00Z --finished-at 2026-11-01T10:05:00Z \\
    --commit a1b2c3@2026-11-01T09:00:00Z
  paved events record --type incident --id INC-7 --service checkout --team shop \\
    --opened-at 2026-11-01T11:00:00Z
  paved events record --type survey --id s-2026-11-shop-1 --team shop --score 9 \\
    --at 2026-11-20T10:00:00Z --comment \"deploys are easy now\"
  paved events record --type support_ticket --id HELP-12 --team shop --category databases \\
    --opened-at 2026-11-21T09:00:00Z")]
    Record(Box<RecordArgs>),
}

/// One event, as flags.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// `deployment`, `incident`, `survey` or `support_ticket`.
    #[arg(long = "type", value_name = "TYPE")]
    kind: String,
    /// Unique id; recording it again merges into the event.
    #[arg(long)]
    id: String,
    /// The service (deployments and incidents; optional for surveys).
    #[arg(long)]
    service: Option<String>,
    /// The team.
    #[arg(long)]
    team: String,
    /// Deployments and incidents: the environment [default: production].
    #[arg(long = "env")]
    environment: Option<String>,
    /// Deployments: success, failure (never reached production), rolled_back or rollout_failed
    /// (live and failing).
    #[arg(long)]
    status: Option<String>,
    /// Deployments: start time (RFC 3339).
    #[arg(long)]
    started_at: Option<String>,
    /// Deployments: end time (RFC 3339).
    #[arg(long)]
    finished_at: Option<String>,
    /// Deployments: a shipped commit as SHA@RFC3339 (repeatable).
    #[arg(long = "commit", value_name = "SHA@TIME")]
    commits: Vec<String>,
    /// Deployments: unplanned (fixing a production incident).
    #[arg(long)]
    unplanned: bool,
    /// Incidents: the deployment that caused it.
    #[arg(long)]
    deployment_id: Option<String>,
    /// Incidents and support tickets: when it was opened (RFC 3339).
    #[arg(long)]
    opened_at: Option<String>,
    /// Incidents and support tickets: when it was resolved (RFC 3339).
    #[arg(long)]
    resolved_at: Option<String>,
    /// Deployments: a rollback run (it marks the deployment it replaced as a failed change).
    #[arg(long)]
    rollback: bool,
    /// Surveys: the 0–10 answer to "how likely are you to recommend the platform?".
    #[arg(long)]
    score: Option<String>,
    /// Surveys: a comment.
    #[arg(long)]
    comment: Option<String>,
    /// Surveys: when it was answered (RFC 3339).
    #[arg(long)]
    at: Option<String>,
    /// Support tickets: what it was about (deploys, databases, access, …).
    #[arg(long)]
    category: Option<String>,
}

/// `paved metrics`.
#[derive(Debug, Subcommand)]
pub(crate) enum MetricsCommand {
    /// The five DORA keys with their DORA 2023 levels.
    #[command(after_help = "Examples:
  paved metrics dora
  paved metrics dora --team payments --window 90d
  paved metrics dora --by service -o json")]
    Dora(DoraArgs),
    /// Platform adoption and velocity.
    #[command(after_help = "Examples:
  paved metrics adoption
  paved metrics adoption --catalog catalog-info.yaml --window 90d -o json")]
    Adoption {
        /// Backstage catalog-info.yaml files whose Components' owners are the known teams
        /// [default: `teams` of paved.toml].
        #[arg(long, value_name = "PATH")]
        catalog: Vec<PathBuf>,
        /// The window, e.g. 30d, 12h, 2w.
        #[arg(long, default_value = "30d")]
        window: String,
        /// The end of the window (RFC 3339) [default: now].
        #[arg(long)]
        now: Option<String>,
    },
    /// Serve /metrics (OpenMetrics) and /healthz; stops cleanly on SIGTERM or Ctrl-C.
    #[command(after_help = "Examples:
  paved metrics serve
  paved metrics serve --listen 0.0.0.0:9464")]
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
        /// Report as of this fixed time (RFC 3339) instead of each scrape's time; events after
        /// it are ignored (backfills, reproducible checks) [default: the time of each scrape].
        #[arg(long)]
        now: Option<String>,
    },
}

/// `paved metrics dora`.
#[derive(Debug, Args)]
pub(crate) struct DoraArgs {
    /// Only this team.
    #[arg(long)]
    team: Option<String>,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// The environment.
    #[arg(long, default_value = "production")]
    env: String,
    /// The window, at least an hour: e.g. 30d, 12h, 2w.
    #[arg(long, default_value = "30d")]
    window: String,
    /// The end of the window (RFC 3339) [default: now].
    #[arg(long)]
    now: Option<String>,
    /// One row per team or service.
    #[arg(long, value_name = "team|service")]
    by: Option<String>,
}

fn now_or(now: Option<&str>) -> Result<i64> {
    match now {
        Some(s) => Ok(parse_time("now", s)?),
        // Windows include their end: a deployment finished in the current second counts.
        None => Ok(time::OffsetDateTime::now_utc().unix_timestamp()),
    }
}

/// A result: the text, or the value as a document.
fn print(format: Format, text: impl FnOnce() -> String, value: &impl serde::Serialize) {
    match format {
        Format::Text => output::raw(&output::plain(&crate::terms::cli(&text()))),
        _ => output::document(format, value),
    }
}

/// The flag of an event field, for errors of `events record`.
fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "type" => "--type",
        "id" => "--id",
        "service" => "--service",
        "team" => "--team",
        "environment" => "--env",
        "status" => "--status",
        "started_at" => "--started-at",
        "finished_at" => "--finished-at",
        "commits" | "commits.sha" | "commits.committed_at" => "--commit",
        "unplanned" => "--unplanned",
        "deployment_id" => "--deployment-id",
        "opened_at" => "--opened-at",
        "resolved_at" => "--resolved-at",
        "rollback" => "--rollback",
        "score" => "--score",
        "comment" => "--comment",
        "at" => "--at",
        "category" => "--category",
        _ => return None,
    })
}

/// An event error in the words of `events record`: flags, not JSON fields.
fn in_flags(e: Error, kind: &str) -> Error {
    match e {
        // A field the event type does not have: name the flag.
        Error::InvalidInput { field, value, reason, hint } if field == "key" => match flag_of(&value) {
            Some(flag) => Error::invalid(
                flag,
                "",
                format!("is not a flag of `--type {kind}`"),
                Some(format!("drop {flag}, or give the --type that has it")),
            ),
            None => Error::InvalidInput { field, value, reason, hint },
        },
        Error::InvalidInput { field, value, reason, hint } => match flag_of(&field) {
            Some(flag) => {
                let hint = hint.map(|h| match h.contains(&format!("\"{field}\"")) {
                    true => format!("add {flag}"),
                    false => h,
                });
                Error::invalid(flag, value, reason, hint)
            }
            None => Error::InvalidInput { field, value, reason, hint },
        },
        other => other,
    }
}

/// A DORA window: at least an hour (`1m` is a minute, not a month).
fn dora_window(window: &str) -> Result<i64> {
    let seconds = parse_window(window)?;
    if seconds < 3_600 {
        return Err(Error::invalid(
            "window",
            window,
            "is shorter than an hour, too short for DORA keys (m means minutes)",
            Some("use hours, days or weeks: 12h, 30d, 2w".into()),
        ));
    }
    Ok(seconds)
}

/// Runs `paved events …`.
pub(crate) fn events(cmd: EventsCommand, state: &Path, format: Format) -> Result<ExitCode> {
    match cmd {
        EventsCommand::Import { file, strict } => {
            // Parse errors are reported per line; open the ledger only once there is input.
            let reader = crate::input::open(&file)?;
            let size = (file.as_os_str() != "-").then(|| std::fs::metadata(&file).ok().map(|m| m.len())).flatten();
            let ledger = Ledger::open_in(state)?;
            let mut bar = output::ImportBar::new(size);
            let options = paved::metrics::ImportOptions::strict(strict);
            let report = ledger.import_with(reader, options, |p| bar.update(p.bytes, p.events));
            bar.finish();
            let report = report?;
            if format == Format::Text {
                for bad in &report.rejected {
                    err!("line {}: {}", bad.line, bad.reason);
                    if let Some(h) = &bad.hint {
                        err!("  hint: {h}");
                    }
                }
            }
            let skipped = match report.rejected.len() {
                0 => String::new(),
                n => format!("; {} skipped", plural(n, "bad line")),
            };
            print(
                format,
                || match report.aborted {
                    true => String::new(),
                    false => {
                        let mut counts =
                            vec![plural(report.deployments, "deployment"), plural(report.incidents, "incident")];
                        if report.surveys > 0 {
                            counts.push(plural(report.surveys, "survey answer"));
                        }
                        if report.support_tickets > 0 {
                            counts.push(plural(report.support_tickets, "support ticket"));
                        }
                        let last = counts.pop().unwrap_or_default();
                        let counts = match counts.is_empty() {
                            true => last,
                            false => format!("{} and {last}", counts.join(", ")),
                        };
                        format!("imported {counts} into {}{skipped}\n", ledger.path().display())
                    }
                },
                &report,
            );
            if report.aborted {
                err!("nothing imported: {} (--strict)", plural(report.rejected.len(), "bad line"));
                // Bad input, nothing written.
                return Ok(ExitCode::from(2));
            }
            Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        EventsCommand::Record(a) => {
            let a = *a;
            let mut v = json!({"type": &a.kind, "id": a.id, "team": a.team});
            // Deployments and incidents happen in an environment, production unless told.
            let environment = match a.kind.as_str() {
                "deployment" | "incident" => Some(a.environment.unwrap_or_else(|| "production".into())),
                _ => a.environment,
            };
            let fields = [
                ("service", a.service),
                ("environment", environment),
                ("status", a.status),
                ("started_at", a.started_at),
                ("finished_at", a.finished_at),
                ("deployment_id", a.deployment_id),
                ("opened_at", a.opened_at),
                ("resolved_at", a.resolved_at),
                ("comment", a.comment),
                ("at", a.at),
                ("category", a.category),
            ];
            for (k, value) in fields {
                if let Some(value) = value {
                    v[k] = json!(value);
                }
            }
            if let Some(score) = a.score {
                // A number when it is one, so that "9.5" and "ten" get the score's own error.
                v["score"] = serde_json::from_str::<serde_json::Number>(&score).map_or(json!(score), |n| json!(n));
            }
            for (k, set) in [("unplanned", a.unplanned), ("rollback", a.rollback)] {
                if set {
                    v[k] = json!(true);
                }
            }
            if !a.commits.is_empty() {
                let commits = a
                    .commits
                    .iter()
                    .map(|c| match c.split_once('@') {
                        Some((sha, at)) => Ok(json!({"sha": sha, "committed_at": at})),
                        None => Err(Error::invalid(
                            "--commit",
                            c,
                            "is not SHA@TIME",
                            Some("write --commit a1b2c3@2026-11-01T10:00:00Z".into()),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                v["commits"] = json!(commits);
            }
            let event = paved::metrics::model::parse_line(&v.to_string()).map_err(|e| in_flags(e.into(), &a.kind))?;
            Ledger::open_in(state)?.write(&[event])?;
            let text = || {
                format!(
                    "recorded {} {}\n",
                    v["type"].as_str().unwrap_or_default(),
                    v["id"].as_str().unwrap_or_default()
                )
            };
            print(format, text, &v);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `paved metrics …`.
pub(crate) async fn metrics(cmd: MetricsCommand, config: &OrgConfig, state: &Path, format: Format) -> Result<ExitCode> {
    match cmd {
        MetricsCommand::Dora(a) => {
            let window = dora_window(&a.window)?;
            let by = a.by.as_deref().map(str::parse::<GroupBy>).transpose()?;
            let q = DoraQuery::new(now_or(a.now.as_deref())?)
                .window(window)
                .environment(&a.env)
                .team(a.team.as_deref())
                .service(a.service.as_deref());
            let ledger = Ledger::open_in(state)?;
            ledger.check_environment(&a.env, config.environments.keys().map(String::as_str))?;
            match by {
                None => {
                    let r = ledger.dora(&q)?;
                    print(format, || r.to_text(), &r);
                }
                Some(by) => {
                    let rs = ledger.dora_by(&q, by)?;
                    let by_name = if by == GroupBy::Team { "team" } else { "service" };
                    let text = || {
                        format!(
                            "DORA keys for {} by {by_name}, {} to {} (levels: DORA 2023)\n{}",
                            q.environment,
                            plural(usize::try_from(window / 86_400).unwrap_or(0), "day"),
                            format_time(q.now),
                            paved::metrics::DoraReport::to_table(&rs, by)
                        )
                    };
                    // The same object as without --by, with one report per group.
                    let value = json!({
                        "by": by_name, "environment": q.environment, "now": format_time(q.now),
                        "window_days": paved::metrics::window_days(window), "groups": rs,
                    });
                    print(format, text, &value);
                }
            }
        }
        MetricsCommand::Adoption { catalog, window, now } => {
            let window = parse_window(&window)?;
            let known: BTreeSet<String> = if catalog.is_empty() {
                config.teams.iter().map(ToString::to_string).collect()
            } else {
                for path in &catalog {
                    std::fs::metadata(path).map_err(|e| Error::unreadable_file(path, &e))?;
                }
                paved::metrics::catalog_teams(&catalog)?
            };
            let r = Ledger::open_in(state)?.adoption(now_or(now.as_deref())?, window, &known)?;
            print(format, || r.to_text(), &r);
        }
        MetricsCommand::Serve { listen, now } => {
            let at = now.as_deref().map(|s| parse_time("now", s)).transpose()?;
            // SIGTERM (a container's stop, systemd) and Ctrl-C end it cleanly, exit code 0. The
            // handlers are installed before the port opens, so a signal sent as soon as the server
            // answers cannot find the default action (death by signal, 143) still in place.
            #[cfg(unix)]
            let mut signals = {
                use tokio::signal::unix::{SignalKind, signal};
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
            };
            let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
                Error::invalid(
                    "listen",
                    &listen,
                    format!("cannot listen: {e}"),
                    Some("use a free HOST:PORT, e.g. 127.0.0.1:9464".into()),
                )
            })?;
            let ledger = Arc::new(Ledger::open_in(state)?);
            err!(
                "serving http://{}/metrics (ledger {})",
                listener.local_addr().map_or(listen, |a| a.to_string()),
                ledger.path().display()
            );
            let shutdown = async move {
                #[cfg(unix)]
                match &mut signals {
                    (Ok(term), Ok(interrupt)) => {
                        tokio::select! {
                            _ = term.recv() => {}
                            _ = interrupt.recv() => {}
                        }
                    }
                    _ => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = tokio::signal::ctrl_c().await;
                }
            };
            let collector = paved::metrics::prom::LedgerCollector::new(ledger);
            let collector = match at {
                Some(now) => collector.at(now),
                None => collector,
            };
            paved::metrics::serve::serve(listener, paved::metrics::prom::registry_with(collector), shutdown).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
