//! Self-service databases on the golden path: the original design's
//! `POST /api/databases/provision`, as [`Platform`] methods.
//!
//! Each step is a method, in order: [`Platform::validate_database`] (names, environment, the
//! database server for the engine and environment) → [`Platform::check_database_policy`]
//! (action `provision-database`) → the server's [`DbProvisioner`] → the connection info (never
//! a password) in the secret store at `database/{team}/{service}/{env}` → the monitoring hook
//! ([`DatabaseMonitor`], e.g. a dashboard; best effort) → notification of the owning team → the
//! [`PlatformEvent::DatabaseProvisioned`] event (the ledger turns it into the
//! `paved_database_provisions_total` metric). [`Platform::provision_database`] runs them all.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use secrecy::SecretString;
use serde::Serialize;

use crate::backend::{DatabaseInfo, DatabaseState, DbProvisioner, DeprovisionOptions};
use crate::error::{Error, Result};
use crate::events::{PlatformEvent, Step};
use crate::notify::{Notification, NotificationKind};
use crate::platform::Platform;
use crate::policy::PolicyReport;
use crate::request::{DatabaseRequest, DbEngine};
use crate::secret::{SecretMap, SecretScheme};
use crate::suggest;

/// The monitoring hook of the database golden path: sets up monitoring for a database once it
/// is provisioned (a dashboard, alerts) and removes it when the database is deprovisioned.
/// Added with [`PlatformBuilder::database_monitor`](crate::PlatformBuilder::database_monitor).
///
/// It runs best effort, like notifications: a failure or a hook that does not answer within the
/// notification timeout becomes a warning of the outcome, never a failed provisioning.
#[async_trait]
pub trait DatabaseMonitor: Send + Sync {
    /// The hook's name in warnings, e.g. `cloudwatch`.
    fn name(&self) -> &str;

    /// Sets up monitoring for a provisioned database; returns where it can be seen (a
    /// dashboard URL), if anywhere. Called again for an unchanged request: must be idempotent.
    async fn watch(&self, request: &DatabaseRequest, server: &str, info: &DatabaseInfo) -> Result<Option<String>>;

    /// Removes the monitoring of a deprovisioned database (nothing to remove is not an error).
    async fn unwatch(&self, request: &DatabaseRequest, server: &str) -> Result<()>;
}

/// A database server the platform provisions on (`[databases.NAME]` of the configuration),
/// with the [`DbProvisioner`] of its backend.
#[derive(Clone)]
pub struct DatabaseServer {
    /// The server's name in the configuration.
    pub name: String,
    /// The provisioning backend (`vault`, `aws-rds`).
    pub backend: String,
    /// The engine it runs.
    pub engine: DbEngine,
    /// The environments it serves; all when empty.
    pub environments: Vec<String>,
    /// The secret store its connection info goes to (default: Vault when registered, else
    /// the first store).
    pub connection_info: Option<SecretScheme>,
    /// The provisioner.
    pub provisioner: Arc<dyn DbProvisioner>,
}

impl fmt::Debug for DatabaseServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseServer")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("engine", &self.engine)
            .field("environments", &self.environments)
            .field("connection_info", &self.connection_info)
            .finish_non_exhaustive()
    }
}

impl DatabaseServer {
    /// A server named `name` of `backend`, running `engine`, for every environment.
    pub fn new(
        name: impl Into<String>,
        backend: impl Into<String>,
        engine: DbEngine,
        provisioner: Arc<dyn DbProvisioner>,
    ) -> Self {
        DatabaseServer {
            name: name.into(),
            backend: backend.into(),
            engine,
            environments: Vec::new(),
            connection_info: None,
            provisioner,
        }
    }

    /// Keeps the connection info of its databases in the store of `scheme`.
    pub fn connection_info(mut self, scheme: SecretScheme) -> Self {
        self.connection_info = Some(scheme);
        self
    }

    /// Serves only these environments.
    pub fn environments(mut self, environments: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.environments = environments.into_iter().map(Into::into).collect();
        self
    }

    fn serves(&self, engine: DbEngine, environment: &str) -> bool {
        self.engine == engine && (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
    }
}

/// Which database server a request goes to, when the configuration has several that fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseSelector {
    /// The server by name (`[databases.NAME]`).
    pub server: Option<String>,
    /// Only servers of this backend (`vault`, `aws-rds`).
    pub backend: Option<String>,
}

impl DatabaseSelector {
    /// The only server that fits the request's engine and environment.
    pub fn any() -> Self {
        DatabaseSelector::default()
    }

    /// The server named `name`.
    pub fn server(mut self, name: impl Into<String>) -> Self {
        self.server = Some(name.into());
        self
    }

    /// Only servers of `backend`.
    pub fn backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self
    }
}

/// The result of [`Platform::provision_database`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DatabaseOutcome {
    /// What the provisioner reports (no password, ever).
    #[serde(flatten)]
    pub info: DatabaseInfo,
    /// The database server it is on.
    pub server: String,
    /// The backend that provisioned it.
    pub backend: String,
    /// The policy verdict (warnings only; a denial is an error).
    #[serde(skip)]
    pub policy: PolicyReport,
    /// Where the database's monitoring can be seen (a dashboard URL), when a
    /// [`DatabaseMonitor`] set it up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<String>,
    /// Warnings of steps after provisioning that did not stop it (a notification or a
    /// monitoring hook that failed).
    pub warnings: Vec<String>,
}

/// The answer to a provisioning in the original design's shape (`status`, `endpoint`,
/// `vault_path`), with everything else paved knows: what `POST /api/databases/provision`
/// returns and front ends print as JSON ([`DatabaseOutcome::response`]). Never a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProvisionResponse {
    /// `provisioned` once the database is available, else its state (`creating`, …).
    pub status: String,
    /// `host:port`, once known.
    pub endpoint: Option<String>,
    /// Where the connection info is in the secret store (`database/{team}/{service}/{env}`;
    /// the original design's name, whichever store keeps it).
    pub vault_path: Option<String>,
    /// The lifecycle state.
    pub state: DatabaseState,
    /// The host.
    pub host: Option<String>,
    /// The port.
    pub port: Option<u16>,
    /// The database name.
    pub database: String,
    /// The user the app connects as, when the backend names one.
    pub username: Option<String>,
    /// Where the credentials are (a Vault creds path, a secret's ARN).
    pub credentials_path: Option<String>,
    /// The owning team.
    pub team: String,
    /// The service.
    pub service: String,
    /// The engine.
    pub engine: String,
    /// The environment.
    pub environment: String,
    /// The size.
    pub size: String,
    /// The database server.
    pub server: String,
    /// Its backend.
    pub backend: String,
    /// Where the monitoring can be seen (a dashboard URL).
    pub monitoring: Option<String>,
    /// Warnings of steps that did not stop the provisioning.
    pub warnings: Vec<String>,
}

impl DatabaseOutcome {
    /// The answer to `request` in the original design's shape.
    pub fn response(&self, request: &DatabaseRequest) -> ProvisionResponse {
        let info = &self.info;
        let status = match info.state {
            DatabaseState::Available => "provisioned".to_string(),
            other => serde_plain(other),
        };
        ProvisionResponse {
            status,
            endpoint: info.endpoint.as_ref().map(|(h, p)| format!("{h}:{p}")),
            vault_path: info.connection_info_path.clone(),
            state: info.state,
            host: info.endpoint.as_ref().map(|(h, _)| h.clone()),
            port: info.endpoint.as_ref().map(|(_, p)| *p),
            database: info.database.clone(),
            username: info.username.clone(),
            credentials_path: info.credentials_path.clone(),
            team: request.team.to_string(),
            service: request.service.to_string(),
            engine: request.engine.as_str().to_string(),
            environment: request.environment.clone(),
            size: request.size.as_str().to_string(),
            server: self.server.clone(),
            backend: self.backend.clone(),
            monitoring: self.monitoring.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

/// A state's snake_case name, as serde writes it.
fn serde_plain(state: DatabaseState) -> String {
    use DatabaseState as S;
    match state {
        S::Creating => "creating",
        S::Available => "available",
        S::Modifying => "modifying",
        S::Deleting => "deleting",
        S::Absent => "absent",
        _ => "failed",
    }
    .to_string()
}

/// Where the connection info of a database is kept in the secret store:
/// `database/{team}/{service}/{env}`.
pub fn connection_info_path(request: &DatabaseRequest) -> String {
    format!("database/{}/{}/{}", request.team, request.service, request.environment)
}

/// The connection info of a provisioned database as it is kept in the secret store: engine,
/// database, host, port, username and where the credentials are (`credentials_path`: a Vault
/// creds path or a secret's ARN). Never a password.
pub fn connection_info(request: &DatabaseRequest, info: &DatabaseInfo) -> SecretMap {
    let mut data = SecretMap::new();
    let mut put = |k: &str, v: String| data.insert(k.to_string(), SecretString::from(v));
    put("engine", request.engine.as_str().to_string());
    put("database", info.database.clone());
    if let Some((host, port)) = &info.endpoint {
        put("host", host.clone());
        put("port", port.to_string());
    }
    if let Some(user) = &info.username {
        put("username", user.clone());
    }
    if let Some(p) = &info.credentials_path {
        put("credentials_path", p.clone());
    }
    data
}

impl Platform {
    /// The registered database servers, by name.
    pub fn database_servers(&self) -> impl Iterator<Item = &DatabaseServer> {
        self.databases.iter()
    }

    /// Step 1 of a database request, *validate*: the environment exists and exactly one
    /// database server fits (the engine, the environment, the selector).
    pub fn validate_database(&self, request: &DatabaseRequest, select: &DatabaseSelector) -> Result<&DatabaseServer> {
        // Only a team of the organisation may ask, for every database action: a team outside
        // the allow-list neither provisions, reads the status of, nor removes a database.
        self.config.team(Some(&request.team))?;
        let env = self.config.environment(&request.environment)?.name;
        if let Some(backend) = &select.backend
            && !self.databases.iter().any(|s| &s.backend == backend)
        {
            let mut backends: Vec<&str> = self.databases.iter().map(|s| s.backend.as_str()).collect();
            backends.dedup();
            return Err(Error::invalid(
                "backend",
                backend,
                "is not the backend of any database server configured here",
                Some(suggest::hint_for(backend, backends)),
            ));
        }
        let fits = |s: &&DatabaseServer| select.backend.as_ref().is_none_or(|b| &s.backend == b);
        if let Some(name) = &select.server {
            let Some(server) = self.databases.iter().filter(fits).find(|s| &s.name == name) else {
                let hint = suggest::hint_for(name, self.databases.iter().map(|s| s.name.as_str()));
                return Err(Error::invalid(
                    "server",
                    name,
                    "is not a database server of the configuration",
                    Some(hint),
                ));
            };
            if !server.serves(request.engine, &env) {
                let what = match server.engine == request.engine {
                    true => {
                        format!("does not serve the environment {env} (it serves {})", server.environments.join(", "))
                    }
                    false => format!("runs {}, not {}", server.engine, request.engine),
                };
                return Err(Error::invalid(
                    "server",
                    name,
                    what,
                    Some("choose a server of the requested engine and environment ([databases.NAME] engine and environments)".into()),
                ));
            }
            return Ok(server);
        }
        let candidates: Vec<&DatabaseServer> =
            self.databases.iter().filter(fits).filter(|s| s.serves(request.engine, &env)).collect();
        match candidates.as_slice() {
            [one] => Ok(one),
            [] => Err(Error::invalid(
                "engine",
                request.engine.as_str(),
                format!("no database server for {} in {env} is configured", request.engine),
                Some(format!(
                    "register one in paved.toml: [databases.main] backend = \"vault\", engine = \"{}\", host, port, admin_username, admin_password = \"vault://…\"",
                    request.engine
                )),
            )),
            many => Err(Error::invalid(
                "server",
                "",
                format!(
                    "several database servers fit: {}",
                    many.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
                Some("choose one by name (DatabaseSelector::server)".into()),
            )),
        }
    }

    /// The database golden path: validate, policy, provision, connection info, notify, record.
    /// Provisioning is idempotent: the same request again changes nothing and returns the same
    /// answer. A failure after the database was created says what exists and how to finish or
    /// undo it.
    pub async fn provision_database(
        &self,
        request: &DatabaseRequest,
        select: &DatabaseSelector,
    ) -> Result<DatabaseOutcome> {
        let server = self.validate_database(request, select)?.clone();
        self.progress(Step::Validate, || {
            format!("validated the {} database of {} in {}", request.engine, request.service, request.environment)
        });
        let policy = self.check_database_policy(request).await?;
        self.progress(Step::Apply, || format!("provisioning on {} ({})", server.name, server.backend));
        let mut info = server.provisioner.provision(request).await?;
        if info.connection_info_path.is_none() {
            info.connection_info_path = self.store_connection_info(request, &server, &info).await?;
        }
        let mut warnings = Vec::new();
        let monitoring = match &self.database_monitor {
            Some(monitor) => {
                let watched = best_effort(monitor.as_ref(), self.notify_timeout, "set up monitoring for", async {
                    monitor.watch(request, &server.name, &info).await
                })
                .await;
                watched.unwrap_or_else(|w| {
                    warnings.push(w);
                    None
                })
            }
            None => None,
        };
        self.record(PlatformEvent::DatabaseProvisioned {
            service: request.service.to_string(),
            team: request.team.to_string(),
            environment: request.environment.clone(),
            engine: request.engine.as_str().to_string(),
            size: request.size.as_str().to_string(),
            database: info.database.clone(),
            server: server.name.clone(),
            backend: server.backend.clone(),
        })
        .await;
        warnings.extend(
            self.notify(
                Notification::new(
                    NotificationKind::DatabaseProvisioned,
                    request.team.as_str(),
                    request.service.as_str(),
                    &request.environment,
                )
                .with_detail(format!("{} database {} on {}", request.engine, info.database, server.name)),
            )
            .await,
        );
        self.progress(Step::Record, || format!("database {} is {:?}", info.database, info.state));
        Ok(DatabaseOutcome { info, server: server.name, backend: server.backend, policy, monitoring, warnings })
    }

    /// Writes the connection info (host, port, database, engine, where the credentials are;
    /// never a password) to the secret store when the provisioner did not keep it itself.
    async fn store_connection_info(
        &self,
        request: &DatabaseRequest,
        server: &DatabaseServer,
        info: &DatabaseInfo,
    ) -> Result<Option<String>> {
        let Some(store) = self.connection_info_store(server)? else {
            self.progress(Step::Secrets, || {
                "no secret store configured: the connection info is only in this answer".to_string()
            });
            return Ok(None);
        };
        let path = connection_info_path(request);
        store.put(&path, connection_info(request, info)).await.map_err(|e| Error::Backend {
            backend: store.name().to_string(),
            message: format!(
                "the {} database {} of {} in {} was created on {} ({}), but its connection info could not be stored at {path}: {e}",
                request.engine, info.database, request.service, request.environment, server.name, server.backend
            ),
            hint: Some(
                "fix the secret store and provision again (idempotent: nothing is created twice), or remove the database with deprovision_database".into(),
            ),
            source: Some(Box::new(e)),
        })?;
        Ok(Some(path))
    }

    /// The secret store of a server's connection info: the one its `connection_info` names
    /// (an error when it is not configured), else Vault, else the first store, else none.
    fn connection_info_store(&self, server: &DatabaseServer) -> Result<Option<&Arc<dyn crate::backend::SecretStore>>> {
        match server.connection_info {
            Some(scheme) => match self.secrets.iter().find(|(s, _)| *s == scheme) {
                Some((_, store)) => Ok(Some(store)),
                None => Err(Error::invalid(
                    "connection_info",
                    scheme.as_str(),
                    format!(
                        "database server {} keeps connection info in {}, and no such secret store is configured",
                        server.name,
                        scheme.as_str()
                    ),
                    Some(format!(
                        "configure the {} store, or name another in [databases.{}] connection_info",
                        scheme.as_str(),
                        server.name
                    )),
                )),
            },
            None => Ok(self
                .secrets
                .iter()
                .find(|(s, _)| *s == SecretScheme::Vault)
                .or(self.secrets.first())
                .map(|(_, s)| s)),
        }
    }

    /// The state of the database of a request.
    pub async fn database_status(&self, request: &DatabaseRequest, select: &DatabaseSelector) -> Result<DatabaseInfo> {
        let server = self.validate_database(request, select)?;
        server.provisioner.status(request).await
    }

    /// Removes the access (and with `drop_data` the data) of the database of a request, then
    /// notifies the team and records it.
    pub async fn deprovision_database(
        &self,
        request: &DatabaseRequest,
        select: &DatabaseSelector,
        drop_data: bool,
    ) -> Result<Vec<String>> {
        self.deprovision_database_with(request, select, &DeprovisionOptions::new().drop_data(drop_data)).await
    }

    /// [`Platform::deprovision_database`] with every option: `force` removes a database whose
    /// deletion protection is on (cloud backends), which is refused otherwise.
    pub async fn deprovision_database_with(
        &self,
        request: &DatabaseRequest,
        select: &DatabaseSelector,
        options: &DeprovisionOptions,
    ) -> Result<Vec<String>> {
        let drop_data = options.drop_data;
        let server = self.validate_database(request, select)?.clone();
        self.check_database_action(crate::policy::Action::DeprovisionDatabase, request).await?;
        server.provisioner.deprovision_with(request, options).await?;
        let mut warnings = Vec::new();
        // The connection info the platform wrote (a provisioner that keeps it removes it
        // itself; then there is nothing left here).
        if let Ok(Some(store)) = self.connection_info_store(&server) {
            let path = connection_info_path(request);
            match store.delete(&path).await {
                Err(e) if e.kind() != crate::error::ErrorKind::NotFound => {
                    warnings.push(format!("the connection info at {path} could not be removed: {e}"));
                }
                _ => {}
            }
        }
        if let Some(monitor) = &self.database_monitor
            && let Err(w) = best_effort(monitor.as_ref(), self.notify_timeout, "remove the monitoring of", async {
                monitor.unwatch(request, &server.name).await
            })
            .await
        {
            warnings.push(w);
        }
        self.record(PlatformEvent::DatabaseDeprovisioned {
            service: request.service.to_string(),
            team: request.team.to_string(),
            environment: request.environment.clone(),
            engine: request.engine.as_str().to_string(),
            server: server.name.clone(),
            drop_data,
        })
        .await;
        let detail = if drop_data { "access removed, data dropped" } else { "access removed, data kept" };
        let notification = Notification::new(
            NotificationKind::DatabaseDeprovisioned,
            request.team.as_str(),
            request.service.as_str(),
            &request.environment,
        )
        .with_detail(detail);
        warnings.extend(self.notify(notification).await);
        Ok(warnings)
    }
}

/// Runs a monitoring hook call within `timeout`; a failure or a timeout becomes a warning
/// (logged, and returned for the outcome).
async fn best_effort<T>(
    monitor: &dyn DatabaseMonitor,
    timeout: Duration,
    doing: &str,
    call: impl Future<Output = Result<T>>,
) -> std::result::Result<T, String> {
    let failure = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", timeout.as_millis()),
    };
    let warning = format!("monitoring hook {} could not {doing} the database: {failure}", monitor.name());
    tracing::warn!("{warning}");
    Err(warning)
}
