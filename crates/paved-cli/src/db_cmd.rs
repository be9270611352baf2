//! `paved db provision|status|deprovision`: self-service databases on the database servers
//! registered in paved.toml (`[databases.NAME]`), through Vault's database secrets engine.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use paved::metrics::{ActivityEvent, ActivityKind, Ledger, LedgerEvent};
use paved::vault::{DbServer, VaultConfig, VaultDbProvisioner, VaultSecretStore};
use paved::{
    DatabaseInfo, DatabaseRequest, DatabaseState, DbProvisioner, Error, OrgConfig, Result, SecretStore, suggest,
};
use secrecy::SecretString;

use crate::args::Format;

/// `paved db`.
#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Create the database `{service}_{env}` and the Vault role `{team}-{service}-{env}` that
    /// hands out credentials for it (idempotent).
    Provision {
        #[command(flatten)]
        db: DbArgs,
        /// Size: small, medium or large.
        #[arg(long)]
        size: String,
    },
    /// Whether the database of a service exists.
    Status {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke the credentials and remove the role (and with --drop-data the database).
    Deprovision {
        #[command(flatten)]
        db: DbArgs,
        /// Also drop the database and its data.
        #[arg(long)]
        drop_data: bool,
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
    /// postgres, mysql or mongodb.
    #[arg(long)]
    engine: String,
    /// The environment.
    #[arg(long)]
    env: String,
    /// The provisioning backend.
    #[arg(long, default_value = "vault")]
    backend: String,
    /// The database server of paved.toml ([databases.NAME]) [default: the one for the engine and env].
    #[arg(long)]
    server: Option<String>,
}

/// The Vault connection: the usual environment, with `[vault]` of paved.toml overriding the
/// address, namespace, CA certificate and auth method settings (tokens and AppRole secret ids
/// only ever come from the environment).
pub(crate) fn vault_config(config: &OrgConfig) -> Result<VaultConfig> {
    vault_config_with(config, |name| std::env::var(name).ok())
}

fn vault_config_with(config: &OrgConfig, env: impl Fn(&str) -> Option<String>) -> Result<VaultConfig> {
    let v = &config.vault;
    let from_file = |name: &str| match name {
        "VAULT_ADDR" => v.address.clone(),
        "VAULT_NAMESPACE" => v.namespace.clone(),
        "VAULT_CACERT" => v.ca_cert.as_ref().map(|p| p.display().to_string()),
        "VAULT_K8S_ROLE" => v.kubernetes_role.clone(),
        "VAULT_K8S_MOUNT" => v.kubernetes_mount.clone(),
        "VAULT_ROLE_ID" => v.approle_role_id.clone(),
        "VAULT_APPROLE_MOUNT" => v.approle_mount.clone(),
        _ => None,
    };
    Ok(VaultConfig::from_lookup(|name| from_file(name).or_else(|| env(name)))?)
}

impl DbArgs {
    /// Validates everything before any call: names, engine, size, environment, backend, server.
    fn request(&self, size: &str, config: &OrgConfig) -> Result<(DatabaseRequest, String)> {
        let request = DatabaseRequest::new(&self.team, &self.service, &self.engine, &self.env, size)?;
        let env = config.environment(&self.env)?.name;
        if self.backend != "vault" {
            return Err(Error::invalid(
                "backend",
                &self.backend,
                "is not a database backend here",
                Some(suggest::hint_for(&self.backend, ["vault"])),
            ));
        }
        let servers: Vec<(&String, &paved::config::DatabaseServerConfig)> = config
            .databases
            .iter()
            .filter(|(_, s)| s.engine == request.engine && (s.environments.is_empty() || s.environments.contains(&env)))
            .collect();
        let name = match &self.server {
            Some(name) if config.databases.contains_key(name) => name.clone(),
            Some(name) => {
                let hint = suggest::hint_for(name, config.databases.keys().map(String::as_str));
                return Err(Error::invalid("server", name, "is not a database server of paved.toml", Some(hint)));
            }
            None => match servers.as_slice() {
                [(name, _)] => (*name).clone(),
                [] => {
                    return Err(Error::invalid(
                        "engine",
                        &self.engine,
                        format!("no database server for {} in {env} is registered", request.engine),
                        Some(format!(
                            "register one in paved.toml: [databases.main] engine = \"{}\", host, port, admin_username, admin_password = \"vault://…\"",
                            request.engine
                        )),
                    ));
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(Error::invalid(
                        "server",
                        "",
                        format!("several servers fit: {}", names.join(", ")),
                        Some("choose one with --server NAME".into()),
                    ));
                }
            },
        };
        Ok((request, name))
    }
}

async fn provisioner(config: &OrgConfig, server_name: &str, request: &DatabaseRequest) -> Result<VaultDbProvisioner> {
    let server = &config.databases[server_name];
    if server.engine != request.engine {
        return Err(Error::invalid(
            "server",
            server_name,
            format!("runs {}, not {}", server.engine, request.engine),
            Some("pick a server of the requested engine with --server".into()),
        ));
    }
    let store = VaultSecretStore::connect(vault_config(config)?).await?;
    let reference = &server.admin_password;
    let mut data = store.get_ref(reference).await?;
    let key = reference.key().unwrap_or("password");
    let password: SecretString = data.remove(key).ok_or_else(|| Error::NotFound {
        what: format!("key \"{key}\" of secret {reference} (the admin password of database server {server_name})"),
        hint: Some("store it first: paved secrets put MOUNT/PATH password=-".into()),
    })?;
    let mut db = DbServer::new(server.engine, &server.host, server.port(), &server.admin_username, password)?;
    if let Some(admin_db) = &server.admin_database {
        db = db.admin_database(admin_db);
    }
    Ok(VaultDbProvisioner::new(store, db))
}

fn print(info: &DatabaseInfo, request: &DatabaseRequest, format: Format) {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(info).expect("serializable") + "\n",
        Format::Yaml => paved::yaml::to_string(&serde_json::to_value(info).expect("serializable")),
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
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Evaluates the organisation's policies (`[[policies]]`) on a provisioning request before
/// anything is created: a denial is an error, warnings are printed, the decision is recorded.
async fn check_policy(config: &OrgConfig, state: &Path, request: &DatabaseRequest) -> Result<()> {
    if config.policies.is_empty() {
        return Ok(());
    }
    let set = paved::policy::PolicySet::from_config(config, paved::policy::HostOptions::default())?;
    let platform = paved::gitops_platform(config.clone(), state)
        .policy(set)
        .metrics(paved::metrics::LedgerRecorder::lazy(state))
        .build()?;
    let report = platform.check_database_policy(request).await?;
    for w in report.warnings() {
        eprintln!("⚠️  {w}");
    }
    Ok(())
}

/// Runs `paved db …`.
pub(crate) async fn db(cmd: DbCommand, config: &OrgConfig, state: &Path, format: Format) -> Result<ExitCode> {
    match cmd {
        DbCommand::Provision { db, size } => {
            let (request, server) = db.request(&size, config)?;
            check_policy(config, state, &request).await?;
            let info = provisioner(config, &server, &request).await?.provision(&request).await?;
            let event = ActivityEvent::new(
                ActivityKind::DatabaseProvisioned,
                request.service.as_str(),
                request.team.as_str(),
                &request.environment,
                request.engine.as_str(),
                serde_json::json!({ "engine": request.engine.as_str(), "size": request.size.as_str(), "database": info.database }),
            );
            if let Err(e) = Ledger::open_in(state).and_then(|l| l.write(&[LedgerEvent::Activity(event)])) {
                eprintln!("warning: could not record the provisioning in the ledger: {e}");
            }
            print(&info, &request, format);
        }
        DbCommand::Status { db } => {
            let (request, server) = db.request("small", config)?;
            let info = provisioner(config, &server, &request).await?.status(&request).await?;
            print(&info, &request, format);
        }
        DbCommand::Deprovision { db, drop_data } => {
            let (request, server) = db.request("small", config)?;
            provisioner(config, &server, &request).await?.deprovision(&request, drop_data).await?;
            if format == Format::Text {
                let what = if drop_data { "removed (database dropped)" } else { "removed (data kept)" };
                let _ = writeln!(
                    std::io::stdout(),
                    "database access of {} in {}: {what}",
                    request.service,
                    request.environment
                );
            } else {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::json!({ "deprovisioned": true, "drop_data": drop_data })
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paved_toml_vault_settings_override_the_environment_but_never_hold_credentials() {
        let config = OrgConfig::parse(
            "paved.toml",
            "[vault]\naddress = \"https://vault.internal:8200\"\napprole_role_id = \"role-1\"\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "VAULT_ADDR" => Some("http://ignored:8200".to_string()),
            "VAULT_SECRET_ID" => Some("sid".to_string()),
            _ => None,
        };
        let c = vault_config_with(&config, env).unwrap();
        assert_eq!(c.address, "https://vault.internal:8200");
        assert!(format!("{c:?}").contains("role-1") && !format!("{c:?}").contains("sid"), "{c:?}");
        // Without a secret id in the environment, AppRole cannot log in: a clear error.
        assert!(vault_config_with(&config, |_| None).is_err());
        let e = OrgConfig::parse("paved.toml", "[vault]\ntoken = \"s.abc\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "a token in paved.toml is refused: {e}");
    }
}
