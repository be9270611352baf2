//! [`RdsProvisioner`]: PostgreSQL and MySQL databases as Amazon RDS instances, one per team,
//! service and environment.

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, Tag};
use paved_core::{
    DatabaseInfo, DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, DeprovisionOptions, Error, Result,
};

use crate::aws::{Aws, Client};
use crate::config::AwsDbServerSettings;
use crate::connection::{InfoStore, check_names};
use crate::naming;
use crate::wait::{self, Goal, Observed};

/// The backend's name (`backend = "aws-rds"` of `[databases.NAME]`).
pub(crate) const BACKEND: &str = "aws-rds";

/// A [`DbProvisioner`] that gives each team, service and environment its own RDS instance
/// (PostgreSQL or MySQL).
///
/// - The identifier is derived from the request ([`naming::identifier`]) and the instance is
///   tagged `managed-by = paved`, `paved.dev/team`, `paved.dev/service`,
///   `paved.dev/environment`; an instance with that identifier and other tags (or none) is
///   never adopted, reported or deleted.
/// - The master password is managed by RDS in Secrets Manager (`ManageMasterUserPassword`):
///   paved never sees it; [`DatabaseInfo::credentials_path`] is that secret's ARN.
/// - Production environments get Multi-AZ, deletion protection and 7 days of backups; every
///   instance is encrypted and private.
/// - Provisioning waits for `available` (polling, with a timeout); provisioning again returns
///   the existing instance. Deprovisioning takes a final snapshot unless the data is dropped,
///   and refuses an instance with deletion protection unless forced.
pub struct RdsProvisioner {
    client: Client<aws_sdk_rds::Client>,
    server: String,
    engine: DbEngine,
    settings: AwsDbServerSettings,
    info_store: InfoStore,
}

impl std::fmt::Debug for RdsProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdsProvisioner").field("server", &self.server).field("engine", &self.engine).finish()
    }
}

impl RdsProvisioner {
    /// The provisioner of database server `server` (its name in `paved.toml`), running
    /// `engine` (PostgreSQL or MySQL), on `aws`.
    pub fn new(aws: Aws, server: impl Into<String>, engine: DbEngine, settings: AwsDbServerSettings) -> Result<Self> {
        let server = server.into();
        refuse_engine(engine, &server)?;
        Ok(RdsProvisioner {
            client: Client::new(aws, BACKEND),
            server,
            engine,
            settings,
            info_store: InfoStore::default(),
        })
    }

    /// The same provisioner keeping each database's connection info (endpoint, port, database,
    /// username and the master secret's ARN; never a password) in `store` at
    /// `database/{team}/{service}/{env}`, as the Vault provisioner does; removed on
    /// deprovisioning. Without a store, the platform writes it to the store it chooses.
    pub fn connection_info(mut self, store: std::sync::Arc<dyn paved_core::SecretStore>) -> Self {
        self.info_store = InfoStore(Some(store));
        self
    }

    /// The same provisioner calling RDS through `client` (an application's own, or a test's).
    pub fn with_client(mut self, client: aws_sdk_rds::Client) -> Self {
        self.client = Client::ready(self.client.aws().clone(), BACKEND, client);
        self
    }

    async fn rds(&self) -> Result<&aws_sdk_rds::Client> {
        self.client.get(aws_sdk_rds::Client::new).await
    }

    fn check(&self, request: &DatabaseRequest) -> Result<()> {
        refuse_engine(request.engine, &self.server)?;
        check_names(request)?;
        if request.engine != self.engine {
            return Err(Error::invalid(
                "engine",
                request.engine.as_str(),
                format!("database server {} runs {}", self.server, self.engine),
                Some(format!("ask for {} here, or use a server of the engine", self.engine)),
            ));
        }
        Ok(())
    }

    /// The instance of `id`, if there is one.
    async fn describe(&self, id: &str) -> Result<Option<DbInstance>> {
        let rds = self.rds().await?;
        match rds.describe_db_instances().db_instance_identifier(id).send().await {
            Ok(out) => Ok(out.db_instances().first().cloned()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => Ok(None),
            Err(e) => Err(self.client.fail(&format!("look up the RDS instance {id}"), e)),
        }
    }

    /// Refuses an instance that is not paved's for exactly this request.
    async fn check_owner(&self, instance: &DbInstance, request: &DatabaseRequest) -> Result<()> {
        let mut tags: Vec<(String, String)> = pairs(instance.tag_list());
        if tags.is_empty()
            && let Some(arn) = instance.db_instance_arn()
        {
            let rds = self.rds().await?;
            let out = rds
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .map_err(|e| self.client.fail(&format!("read the tags of {arn}"), e))?;
            tags = pairs(out.tag_list());
        }
        let id = instance.db_instance_identifier().unwrap_or_default();
        naming::check_owned(&format!("RDS instance {id}"), &tags, request)
    }

    async fn check_subnet_group(&self) -> Result<()> {
        let Some(group) = &self.settings.subnet_group else { return Ok(()) };
        let rds = self.rds().await?;
        match rds.describe_db_subnet_groups().db_subnet_group_name(group).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_subnet_group_not_found_fault()) => {
                Err(naming::missing_subnet_group(&self.server, group))
            }
            Err(e) => Err(self.client.fail(&format!("look up the DB subnet group {group}"), e)),
        }
    }

    /// Creates the instance; answers it as created, or `None` when an instance of that
    /// identifier appeared meanwhile (whose owner the caller checks).
    async fn create(&self, request: &DatabaseRequest, id: &str) -> Result<Option<DbInstance>> {
        let s = &self.settings;
        let production = s.is_production(&request.environment);
        let size = s.size(self.engine, request.size);
        let rds = self.rds().await?;
        let mut create = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .engine(self.engine.as_str())
            .db_instance_class(&size.instance_class)
            .allocated_storage(size.storage_gib)
            .storage_type("gp3")
            .db_name(naming::database_name(request))
            .master_username(&s.master_username)
            .manage_master_user_password(true)
            .storage_encrypted(true)
            .publicly_accessible(false)
            .multi_az(s.multi_az.unwrap_or(production))
            .deletion_protection(s.deletion_protection.unwrap_or(production))
            .backup_retention_period(s.backup_retention_days.unwrap_or(if production { 7 } else { 1 }))
            .copy_tags_to_snapshot(true)
            .auto_minor_version_upgrade(true);
        for (key, value) in naming::tags(request) {
            create = create.tags(Tag::builder().key(key).value(value).build());
        }
        if let Some(v) = &s.engine_version {
            create = create.engine_version(v);
        }
        if let Some(group) = &s.subnet_group {
            create = create.db_subnet_group_name(group);
        }
        for sg in &s.security_groups {
            create = create.vpc_security_group_ids(sg);
        }
        if let Some(key) = &s.kms_key_id {
            create = create.kms_key_id(key).master_user_secret_kms_key_id(key);
        }
        tracing::info!(instance = id, class = %size.instance_class, "creating the RDS instance");
        match create.send().await {
            Ok(out) => Ok(out.db_instance),
            // Created meanwhile (another paved, a retry): the owner check decides.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_already_exists_fault()) => Ok(None),
            Err(e) => Err(self.client.fail(&format!("create the RDS instance {id}"), e)),
        }
    }

    fn info(&self, request: &DatabaseRequest, instance: &DbInstance) -> DatabaseInfo {
        let state = state_of(instance.db_instance_status().unwrap_or_default());
        let mut info =
            DatabaseInfo::new(state, instance.db_name().map_or_else(|| naming::database_name(request), str::to_string));
        info.endpoint = instance.endpoint().and_then(|e| {
            Some((
                e.address()?.to_string(),
                e.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(default_port(self.engine)),
            ))
        });
        info.username = instance.master_username().map(str::to_string);
        info.credentials_path = instance.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_string);
        info
    }

    async fn observe(&self, id: &str) -> Result<Observed<DbInstance>> {
        Ok(match self.describe(id).await? {
            None => Observed::Absent,
            Some(i) => {
                let status = i.db_instance_status().unwrap_or("unknown").to_string();
                Observed::Present { state: state_of(&status), status, value: i }
            }
        })
    }

    async fn wait(&self, id: &str, goal: Goal) -> Result<Option<DbInstance>> {
        let what = format!("RDS instance {id}");
        wait::until(BACKEND, &what, goal, self.settings.wait_timeout(), self.settings.poll_interval(), || {
            self.observe(id)
        })
        .await
    }
}

#[async_trait]
impl DbProvisioner for RdsProvisioner {
    fn name(&self) -> &str {
        BACKEND
    }

    async fn provision(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        self.check(request)?;
        let id = naming::identifier(request);
        let known = match self.describe(&id).await? {
            Some(existing) => {
                self.check_owner(&existing, request).await?;
                Some(existing)
            }
            None => {
                self.check_subnet_group().await?;
                match self.create(request, &id).await? {
                    Some(created) => Some(created),
                    None => {
                        // Someone else's meanwhile, perhaps: the owner check decides.
                        let now = self.describe(&id).await?;
                        if let Some(now) = &now {
                            self.check_owner(now, request).await?;
                        }
                        now
                    }
                }
            }
        };
        // Already available (answered so), or wait for it.
        let instance = match known {
            Some(i) if i.db_instance_status().map(state_of) == Some(DatabaseState::Available) => i,
            _ => self.wait(&id, Goal::Available).await?.expect("an available instance exists"),
        };
        let mut info = self.info(request, &instance);
        self.info_store.keep(request, &mut info).await?;
        Ok(info)
    }

    async fn status(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        self.check(request)?;
        let id = naming::identifier(request);
        match self.describe(&id).await? {
            None => Ok(DatabaseInfo::new(DatabaseState::Absent, naming::database_name(request))),
            Some(instance) => {
                self.check_owner(&instance, request).await?;
                let mut info = self.info(request, &instance);
                self.info_store.locate(request, &mut info);
                Ok(info)
            }
        }
    }

    async fn deprovision(&self, request: &DatabaseRequest, drop_data: bool) -> Result<()> {
        self.deprovision_with(request, &DeprovisionOptions::new().drop_data(drop_data)).await
    }

    async fn deprovision_with(&self, request: &DatabaseRequest, options: &DeprovisionOptions) -> Result<()> {
        self.check(request)?;
        let id = naming::identifier(request);
        let Some(instance) = self.describe(&id).await? else { return self.info_store.remove(request).await };
        self.check_owner(&instance, request).await?;
        let rds = self.rds().await?;
        if instance.db_instance_status() != Some("deleting") {
            if !options.drop_data
                && state_of(instance.db_instance_status().unwrap_or_default()) == DatabaseState::Failed
            {
                return Err(no_snapshot(&id, instance.db_instance_status().unwrap_or_default()));
            }
            if instance.deletion_protection() == Some(true) {
                if !options.force {
                    return Err(protected(&id));
                }
                tracing::info!(instance = %id, "turning deletion protection off (forced)");
                rds.modify_db_instance()
                    .db_instance_identifier(&id)
                    .deletion_protection(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| self.client.fail(&format!("turn off the deletion protection of {id}"), e))?;
            }
            let mut delete = rds
                .delete_db_instance()
                .db_instance_identifier(&id)
                .skip_final_snapshot(options.drop_data)
                // The final snapshot keeps the data; automated backups go, as by AWS's default.
                .delete_automated_backups(true);
            if !options.drop_data {
                delete = delete.final_db_snapshot_identifier(final_snapshot(&id));
            }
            tracing::info!(instance = %id, drop_data = options.drop_data, "deleting the RDS instance");
            if let Err(e) = delete.send().await
                && !e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault())
            {
                return Err(self.client.fail(&format!("delete the RDS instance {id}"), e));
            }
        }
        self.wait(&id, Goal::Absent).await?;
        self.info_store.remove(request).await
    }
}

/// The error for a database whose deletion protection is on.
pub(crate) fn protected(id: &str) -> Error {
    Error::Conflict {
        what: format!("database {id}"),
        message: "deletion protection is on".into(),
        hint: Some(
            "remove it with `force` (paved turns the protection off first), or turn the protection off yourself".into(),
        ),
    }
}

/// The error for a database in a state where AWS takes no final snapshot.
pub(crate) fn no_snapshot(id: &str, status: &str) -> Error {
    Error::Conflict {
        what: format!("database {id}"),
        message: format!("it is {status}, and AWS takes no final snapshot of a database in that state"),
        hint: Some("remove it with `drop_data` (its data is lost; take a snapshot first if AWS allows one), or repair it first".into()),
    }
}

/// The name of the final snapshot of `id`: `{id}-final-{UTC time}`.
pub(crate) fn final_snapshot(id: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{id}-final-{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn refuse_engine(engine: DbEngine, server: &str) -> Result<()> {
    match engine {
        DbEngine::Postgres | DbEngine::Mysql => Ok(()),
        other => Err(Error::invalid(
            "engine",
            other.as_str(),
            format!("database server {server} (aws-rds) serves postgres and mysql"),
            Some("MongoDB-compatible databases come from a server with backend = \"aws-docdb\"".into()),
        )),
    }
}

fn default_port(engine: DbEngine) -> u16 {
    match engine {
        DbEngine::Mysql => 3306,
        DbEngine::Mongodb => 27017,
        _ => 5432,
    }
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

/// The lifecycle state of an RDS or DocumentDB status string.
pub(crate) fn state_of(status: &str) -> DatabaseState {
    match status {
        "available" => DatabaseState::Available,
        "creating"
        | "starting"
        | "configuring-enhanced-monitoring"
        | "configuring-iam-database-auth"
        | "configuring-log-exports"
        | "converting-to-vpc" => DatabaseState::Creating,
        "deleting" => DatabaseState::Deleting,
        "failed"
        | "inaccessible-encryption-credentials"
        | "incompatible-network"
        | "incompatible-option-group"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "restore-error"
        | "storage-full" => DatabaseState::Failed,
        _ => DatabaseState::Modifying,
    }
}
