//! `paved events …` and `paved metrics …`: the ledger, DORA, adoption, Prometheus.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use paved::metrics::{DoraQuery, GroupBy, Ledger, format_time, parse_time, parse_window};
use paved::{OrgConfig, Result};
use serde_json::json;

use crate::args::Format;

/// `paved events`.
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Import events from CI and incident tools: JSON Lines, one event per line (`-` for stdin).
    Import {
        /// The file (`-` reads standard input).
        file: PathBuf,
        /// Import nothing when any line is bad.
        #[arg(long)]
        strict: bool,
    },
    /// Record one event from flags (the same fields as a JSON line).
    Record(Box<RecordArgs>),
}

/// One event, as flags.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// `deployment` or `incident`.
    #[arg(long = "type", value_name = "TYPE")]
    kind: String,
    /// Unique id; recording it again updates the event.
    #[arg(long)]
    id: String,
    /// The service.
    #[arg(long)]
    service: String,
    /// The team.
    #[arg(long)]
    team: String,
    /// The environment.
    #[arg(long = "env", default_value = "production")]
    environment: String,
    /// Deployments: success, failure or rolled_back.
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
    /// Incidents: when it was opened (RFC 3339).
    #[arg(long)]
    opened_at: Option<String>,
    /// Incidents: when it was resolved (RFC 3339).
    #[arg(long)]
    resolved_at: Option<String>,
}

/// `paved metrics`.
#[derive(Debug, Subcommand)]
pub(crate) enum MetricsCommand {
    /// The five DORA keys with their DORA 2023 levels.
    Dora(DoraArgs),
    /// Platform adoption and velocity.
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
    /// Serve /metrics (OpenMetrics) and /healthz.
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
    /// The window, e.g. 30d, 12h, 2w.
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

fn print_json(value: &impl serde::Serialize, format: Format) {
    let text = match format {
        Format::Yaml => paved::yaml::to_string(&serde_json::to_value(value).expect("serializable")),
        _ => serde_json::to_string_pretty(value).expect("serializable") + "\n",
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_text(text: &str) {
    let _ = std::io::stdout().lock().write_all(crate::terms::cli(text).as_bytes());
}

/// Runs `paved events …`.
pub(crate) fn events(cmd: EventsCommand, state: &Path, format: Format) -> Result<ExitCode> {
    match cmd {
        EventsCommand::Import { file, strict } => {
            // Parse errors are reported per line; open the ledger only once there is input.
            let reader: Box<dyn BufRead + Send> = if file.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let f = std::fs::File::open(&file).map_err(|e| paved::Error::Io { path: file.clone(), source: e })?;
                Box::new(std::io::BufReader::new(f))
            };
            let ledger = Ledger::open_in(state)?;
            let report = ledger.import(reader, strict)?;
            if format == Format::Text {
                for bad in &report.rejected {
                    eprintln!("line {}: {}", bad.line, bad.reason);
                    if let Some(h) = &bad.hint {
                        eprintln!("  hint: {}", crate::terms::cli(h));
                    }
                }
                if report.aborted {
                    eprintln!("nothing imported: {} bad lines (--strict)", report.rejected.len());
                } else {
                    print_text(&format!(
                        "imported {} deployments and {} incidents into {}{}\n",
                        report.deployments,
                        report.incidents,
                        ledger.path().display(),
                        if report.rejected.is_empty() {
                            String::new()
                        } else {
                            format!("; {} bad lines skipped", report.rejected.len())
                        }
                    ));
                }
            } else {
                print_json(&report, format);
            }
            Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        EventsCommand::Record(a) => {
            let a = *a;
            let mut v =
                json!({"type": a.kind, "id": a.id, "service": a.service, "team": a.team, "environment": a.environment});
            let fields = [
                ("status", a.status),
                ("started_at", a.started_at),
                ("finished_at", a.finished_at),
                ("deployment_id", a.deployment_id),
                ("opened_at", a.opened_at),
                ("resolved_at", a.resolved_at),
            ];
            for (k, value) in fields {
                if let Some(value) = value {
                    v[k] = json!(value);
                }
            }
            if a.unplanned {
                v["unplanned"] = json!(true);
            }
            if !a.commits.is_empty() {
                let commits = a
                    .commits
                    .iter()
                    .map(|c| match c.split_once('@') {
                        Some((sha, at)) => Ok(json!({"sha": sha, "committed_at": at})),
                        None => Err(paved::Error::invalid(
                            "commit",
                            c,
                            "is not SHA@TIME",
                            Some("write --commit a1b2c3@2026-11-01T10:00:00Z".into()),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                v["commits"] = json!(commits);
            }
            let event = paved::metrics::model::parse_line(&v.to_string())?;
            Ledger::open_in(state)?.write(&[event])?;
            if format == Format::Text {
                print_text(&format!(
                    "recorded {} {}\n",
                    v["type"].as_str().unwrap_or_default(),
                    v["id"].as_str().unwrap_or_default()
                ));
            } else {
                print_json(&v, format);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `paved metrics …`.
pub(crate) async fn metrics(cmd: MetricsCommand, config: &OrgConfig, state: &Path, format: Format) -> Result<ExitCode> {
    match cmd {
        MetricsCommand::Dora(a) => {
            let window = parse_window(&a.window)?;
            let by = a.by.as_deref().map(str::parse::<GroupBy>).transpose()?;
            let q = DoraQuery::new(now_or(a.now.as_deref())?)
                .window(window)
                .environment(&a.env)
                .team(a.team.as_deref())
                .service(a.service.as_deref());
            let ledger = Ledger::open_in(state)?;
            match by {
                None => {
                    let r = ledger.dora(&q)?;
                    if format == Format::Text { print_text(&r.to_text()) } else { print_json(&r, format) }
                }
                Some(by) => {
                    let rs = ledger.dora_by(&q, by)?;
                    if format == Format::Text {
                        print_text(&format!(
                            "DORA keys for {} by {}, {} days to {} (levels: DORA 2023)\n",
                            q.environment,
                            if by == GroupBy::Team { "team" } else { "service" },
                            window / 86_400,
                            format_time(q.now)
                        ));
                        print_text(&paved::metrics::DoraReport::to_table(&rs, by));
                    } else {
                        print_json(&rs, format);
                    }
                }
            }
        }
        MetricsCommand::Adoption { catalog, window, now } => {
            let window = parse_window(&window)?;
            let known: BTreeSet<String> = if catalog.is_empty() {
                config.teams.iter().map(ToString::to_string).collect()
            } else {
                paved::metrics::catalog_teams(&catalog)?
            };
            let r = Ledger::open_in(state)?.adoption(now_or(now.as_deref())?, window, &known)?;
            if format == Format::Text { print_text(&r.to_text()) } else { print_json(&r, format) }
        }
        MetricsCommand::Serve { listen, now } => {
            let at = now.as_deref().map(|s| parse_time("now", s)).transpose()?;
            let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
                paved::Error::invalid(
                    "listen",
                    &listen,
                    format!("cannot listen: {e}"),
                    Some("use a free HOST:PORT, e.g. 127.0.0.1:9464".into()),
                )
            })?;
            let ledger = Arc::new(Ledger::open_in(state)?);
            eprintln!(
                "serving http://{}/metrics (ledger {})",
                listener.local_addr().map_or(listen, |a| a.to_string()),
                ledger.path().display()
            );
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
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
