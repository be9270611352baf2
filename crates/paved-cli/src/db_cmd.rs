//! `paved db provision|status|deprovision`: self-service databases on the database servers
//! registered in paved.toml (`[databases.NAME]`): Vault's database secrets engine, RDS,
//! DocumentDB.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use paved::{
    Assembly, DatabaseInfo, DatabaseRequest, DatabaseSelector, DatabaseState, DeprovisionOptions, OrgConfig, Result,
};

use crate::args::Format;
use crate::output::{document, raw};

/// `paved db`.
#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Create the service's database (idempotent): on a vault server the database
    /// `{team}__{service}__{env}` and the Vault role that hands out credentials for it; on
    /// aws-rds or aws-docdb an instance (or cluster) of its own. Its connection info goes to
    /// the secret store at database/{team}/{service}/{env}.
    #[command(after_help = "Examples:
  paved db provision --team payments --service checkout --engine postgres --env staging \\
    --size small
  paved db provision --team payments --service payment-service --engine postgres --env staging \\
    --backend aws-rds -o json")]
    Provision {
        #[command(flatten)]
        db: DbArgs,
        /// Size: small, medium or large.
        #[arg(long, default_value = "small")]
        size: String,
    },
    /// Whether the database of a service exists.
    #[command(after_help = "Examples:
  paved db status --team payments --service checkout --engine postgres --env staging -o json")]
    Status {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove the service's database access (and with --drop-data the data; cloud databases
    /// keep a final snapshot unless it is dropped).
    #[command(after_help = "Examples:
  paved db deprovision --team payments --service checkout --engine postgres --env dev \\
    --drop-data")]
    Deprovision {
        #[command(flatten)]
        db: DbArgs,
        /// Also drop the database and its data.
        #[arg(long)]
        drop_data: bool,
        /// Remove a database whose deletion protection is on (it is turned off first).
        #[arg(long)]
        force: bool,
    },
}

/// Which database.
#[derive(Debug, Args)]
pub(crate) struct DbArgs {
    /// The owning team.
    #[arg(long)]
    team: String,
    /// The service that uses the database.
    #[arg(long)]
    service: String,
    /// The engine: postgres or mysql (MariaDB too), as the Vault database secrets engine serves them.
    #[arg(long, value_parser = ["postgres", "mysql"])]
    engine: String,
    /// The environment.
    #[arg(long)]
    env: String,
    /// Only database servers of this backend (`backend` of [databases.NAME]).
    #[arg(long)]
    backend: Option<String>,
    /// The database server of paved.toml ([databases.NAME]) [default: the one for the engine and env].
    #[arg(long)]
    server: Option<String>,
}

impl DbArgs {
    /// The request and which server it goes to; the platform validates both before any call.
    fn request(&self, size: &str) -> Result<(DatabaseRequest, DatabaseSelector)> {
        let request = DatabaseRequest::new(&self.team, &self.service, &self.engine, &self.env, size)?;
        let mut select = DatabaseSelector::any();
        if let Some(server) = &self.server {
            select = select.server(server);
        }
        if let Some(backend) = &self.backend {
            select = select.backend(backend);
        }
        Ok((request, select))
    }
}

fn print(info: &DatabaseInfo, request: &DatabaseRequest, format: Format) {
    let text = match format {
        Format::Json | Format::Yaml => return document(format, info),
        Format::Text => {
            let state = match info.state {
                DatabaseState::Available => "available",
                DatabaseState::Absent => "absent",
                _ => "changing",
            };
            let mut t = format!(
                "{} database {} of {} in {}: {state}\n",
                request.engine, info.database, request.service, request.environment
            );
            if let Some((host, port)) = &info.endpoint {
                t.push_str(&format!("  endpoint:        {host}:{port}\n"));
            }
            if let Some(p) = &info.credentials_path {
                t.push_str(&format!("  credentials:     {p} (short-lived; read them from Vault)\n"));
            }
            if let Some(p) = &info.connection_info_path {
                t.push_str(&format!("  connection info: {p}\n"));
            }
            t
        }
    };
    raw(&text);
}

/// Runs `paved db …` on the platform paved.toml describes.
pub(crate) async fn db(cmd: DbCommand, config: &OrgConfig, state: &Path, format: Format) -> Result<ExitCode> {
    let assembled = Assembly::new(config.clone()).state_dir(state).build().await?;
    let platform = assembled.platform();
    match cmd {
        DbCommand::Provision { db, size } => {
            let (request, select) = db.request(&size)?;
            let outcome = platform.provision_database(&request, &select).await?;
            for w in outcome.policy.warnings() {
                err!("⚠️  {w}");
            }
            for w in &outcome.warnings {
                err!("⚠️  {w}");
            }
            match format {
                Format::Text => {
                    print(&outcome.info, &request, format);
                    if let Some(url) = &outcome.monitoring {
                        out!("  dashboard:       {url}");
                    }
                }
                _ => document(format, &outcome.response(&request)),
            }
        }
        DbCommand::Status { db } => {
            let (request, select) = db.request("small")?;
            let info = platform.database_status(&request, &select).await?;
            print(&info, &request, format);
        }
        DbCommand::Deprovision { db, drop_data, force } => {
            let (request, select) = db.request("small")?;
            let options = DeprovisionOptions::new().drop_data(drop_data).force(force);
            for w in platform.deprovision_database_with(&request, &select, &options).await? {
                err!("⚠️  {w}");
            }
            if format == Format::Text {
                let what = if drop_data { "removed (database dropped)" } else { "removed (data kept)" };
                out!("database access of {} in {}: {what}", request.service, request.environment);
            } else {
                document(format, &serde_json::json!({ "deprovisioned": true, "drop_data": drop_data }));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
