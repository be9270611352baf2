//! [`DocDbProvisioner`]: MongoDB-compatible databases as Amazon DocumentDB clusters (a cluster
//! and its first instance per team, service and environment).
//!
//! moto has no DocumentDB backend: the tests run against a stand-in endpoint that serves the
//! documented Query API shapes over HTTP (`tests/docdb.rs`).

use async_trait::async_trait;
use aws_sdk_docdb::types::{DbCluster, Tag};
use paved_core::{
    DatabaseInfo, DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, DeprovisionOptions, Error, Result,
};

use crate::aws::{Aws, Client};
use crate::config::AwsDbServerSettings;
use crate::connection::{InfoStore, check_names};
use crate::naming;
use crate::rds::{final_snapshot, no_snapshot, protected, state_of};
use crate::wait::{self, Goal, Observed};

/// The backend's name (`backend = "aws-docdb"` of `[databases.NAME]`).
pub(crate) const BACKEND: &str = "aws-docdb";

/// A [`DbProvisioner`] of DocumentDB clusters for `mongodb` requests: the same rules as
/// [`RdsProvisioner`](crate::RdsProvisioner) (derived identifiers, ownership tags, a master
/// password managed by DocumentDB in Secrets Manager, production defaults, waiting, final
/// snapshots, deletion protection), with a cluster and one instance of the size's class.
pub struct DocDbProvisioner {
    client: Client<aws_sdk_docdb::Client>,
    server: String,
    settings: AwsDbServerSettings,
    info_store: InfoStore,
}

impl std::fmt::Debug for DocDbProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocDbProvisioner").field("server", &self.server).finish()
    }
}

impl DocDbProvisioner {
    /// The provisioner of database server `server` on `aws`.
    pub fn new(aws: Aws, server: impl Into<String>, settings: AwsDbServerSettings) -> Self {
        DocDbProvisioner {
            client: Client::new(aws, BACKEND),
            server: server.into(),
            settings,
            info_store: InfoStore::default(),
        }
    }

    /// The same provisioner keeping each database's connection info (endpoint, port, database,
    /// username and the master secret's ARN; never a password) in `store` at
    /// `database/{team}/{service}/{env}`, as the Vault provisioner does; removed on
    /// deprovisioning. Without a store, the platform writes it to the store it chooses.
    pub fn connection_info(mut self, store: std::sync::Arc<dyn paved_core::SecretStore>) -> Self {
        self.info_store = InfoStore(Some(store));
        self
    }

    /// The same provisioner calling DocumentDB through `client`.
    pub fn with_client(mut self, client: aws_sdk_docdb::Client) -> Self {
        self.client = Client::ready(self.client.aws().clone(), BACKEND, client);
        self
    }

    async fn docdb(&self) -> Result<&aws_sdk_docdb::Client> {
        self.client.get(aws_sdk_docdb::Client::new).await
    }

    fn check(&self, request: &DatabaseRequest) -> Result<()> {
        check_names(request)?;
        if request.engine != DbEngine::Mongodb {
            return Err(Error::invalid(
                "engine",
                request.engine.as_str(),
                format!("database server {} (aws-docdb) serves mongodb", self.server),
                Some("PostgreSQL and MySQL come from a server with backend = \"aws-rds\"".into()),
            ));
        }
        Ok(())
    }

    async fn cluster(&self, id: &str) -> Result<Option<DbCluster>> {
        let docdb = self.docdb().await?;
        match docdb.describe_db_clusters().db_cluster_identifier(id).send().await {
            Ok(out) => Ok(out.db_clusters().first().cloned()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_cluster_not_found_fault()) => Ok(None),
            Err(e) => Err(self.client.fail(&format!("look up the DocumentDB cluster {id}"), e)),
        }
    }

    /// The status of instance `id` of cluster `cluster`; an instance of that name in another
    /// cluster is never adopted or deleted.
    async fn instance_status(&self, id: &str, cluster: &str) -> Result<Option<String>> {
        let docdb = self.docdb().await?;
        match docdb.describe_db_instances().db_instance_identifier(id).send().await {
            Ok(out) => match out.db_instances().first() {
                None => Ok(None),
                Some(i) if i.db_cluster_identifier() == Some(cluster) => {
                    Ok(Some(i.db_instance_status().unwrap_or("unknown").to_string()))
                }
                Some(i) => Err(Error::Conflict {
                    what: format!("DocumentDB instance {id}"),
                    message: format!(
                        "exists in cluster {}, not in {cluster}: it is never adopted or deleted",
                        i.db_cluster_identifier().unwrap_or("(none)")
                    ),
                    hint: Some("rename or remove that instance".into()),
                }),
            },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => Ok(None),
            Err(e) => Err(self.client.fail(&format!("look up the DocumentDB instance {id}"), e)),
        }
    }

    async fn check_owner(&self, cluster: &DbCluster, request: &DatabaseRequest) -> Result<()> {
        let id = cluster.db_cluster_identifier().unwrap_or_default();
        let mut tags = Vec::new();
        if let Some(arn) = cluster.db_cluster_arn() {
            let docdb = self.docdb().await?;
            let out = docdb
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .map_err(|e| self.client.fail(&format!("read the tags of {arn}"), e))?;
            tags = out
                .tag_list()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
                .collect();
        }
        naming::check_owned(&format!("DocumentDB cluster {id}"), &tags, request)
    }

    async fn check_subnet_group(&self) -> Result<()> {
        let Some(group) = &self.settings.subnet_group else { return Ok(()) };
        let docdb = self.docdb().await?;
        match docdb.describe_db_subnet_groups().db_subnet_group_name(group).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_subnet_group_not_found_fault()) => {
                Err(naming::missing_subnet_group(&self.server, group))
            }
            Err(e) => Err(self.client.fail(&format!("look up the DB subnet group {group}"), e)),
        }
    }

    async fn create(&self, request: &DatabaseRequest, id: &str, instance: &str, cluster_exists: bool) -> Result<()> {
        let s = &self.settings;
        let production = s.is_production(&request.environment);
        let tags: Vec<Tag> =
            naming::tags(request).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let docdb = self.docdb().await?;
        if !cluster_exists {
            let mut create = docdb
                .create_db_cluster()
                .db_cluster_identifier(id)
                .engine("docdb")
                .master_username(&s.master_username)
                .manage_master_user_password(true)
                .storage_encrypted(true)
                .deletion_protection(s.deletion_protection.unwrap_or(production))
                .backup_retention_period(s.backup_retention_days.unwrap_or(if production { 7 } else { 1 }))
                .set_tags(Some(tags.clone()));
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
            tracing::info!(cluster = id, "creating the DocumentDB cluster");
            if let Err(e) = create.send().await
                && !e.as_service_error().is_some_and(|s| s.is_db_cluster_already_exists_fault())
            {
                return Err(self.client.fail(&format!("create the DocumentDB cluster {id}"), e));
            }
        }
        if self.instance_status(instance, id).await?.is_none() {
            let size = s.size(DbEngine::Mongodb, request.size);
            tracing::info!(instance, class = %size.instance_class, "creating the DocumentDB instance");
            let created = docdb
                .create_db_instance()
                .db_instance_identifier(instance)
                .db_cluster_identifier(id)
                .engine("docdb")
                .db_instance_class(&size.instance_class)
                .set_tags(Some(tags))
                .send()
                .await;
            if let Err(e) = created
                && !e.as_service_error().is_some_and(|s| s.is_db_instance_already_exists_fault())
            {
                return Err(self.client.fail(&format!("create the DocumentDB instance {instance}"), e));
            }
        }
        Ok(())
    }

    fn info(&self, request: &DatabaseRequest, cluster: &DbCluster) -> DatabaseInfo {
        let mut info =
            DatabaseInfo::new(state_of(cluster.status().unwrap_or_default()), naming::database_name(request));
        info.endpoint = cluster
            .endpoint()
            .map(|host| (host.to_string(), cluster.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(27017)));
        info.username = cluster.master_username().map(str::to_string);
        info.credentials_path = cluster.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_string);
        info
    }

    /// The cluster, with the state of the cluster and its instance together: available only
    /// when both are.
    async fn observe(&self, id: &str, instance: &str) -> Result<Observed<DbCluster>> {
        let Some(cluster) = self.cluster(id).await? else { return Ok(Observed::Absent) };
        let status = cluster.status().unwrap_or("unknown").to_string();
        let instance_status = self.instance_status(instance, id).await?;
        let (state, status) = match (state_of(&status), instance_status) {
            (DatabaseState::Available, Some(i)) => (state_of(&i), format!("available, instance {i}")),
            (DatabaseState::Available, None) => (DatabaseState::Creating, "available, no instance yet".to_string()),
            (s, _) => (s, status),
        };
        Ok(Observed::Present { state, status, value: cluster })
    }

    async fn wait(&self, id: &str, instance: &str, goal: Goal) -> Result<Option<DbCluster>> {
        let what = format!("DocumentDB cluster {id}");
        let (timeout, poll) = (self.settings.wait_timeout(), self.settings.poll_interval());
        wait::until(BACKEND, &what, goal, timeout, poll, || self.observe(id, instance)).await
    }
}

#[async_trait]
impl DbProvisioner for DocDbProvisioner {
    fn name(&self) -> &str {
        BACKEND
    }

    async fn provision(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        self.check(request)?;
        let (id, instance) = (naming::identifier(request), naming::instance_identifier(request));
        let existing = self.cluster(&id).await?;
        match &existing {
            Some(cluster) => self.check_owner(cluster, request).await?,
            None => self.check_subnet_group().await?,
        }
        self.create(request, &id, &instance, existing.is_some()).await?;
        if existing.is_none()
            && let Some(now) = self.cluster(&id).await?
        {
            self.check_owner(&now, request).await?;
        }
        let cluster = self.wait(&id, &instance, Goal::Available).await?.expect("an available cluster exists");
        let mut info = self.info(request, &cluster);
        self.info_store.keep(request, &mut info).await?;
        Ok(info)
    }

    async fn status(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        self.check(request)?;
        let (id, instance) = (naming::identifier(request), naming::instance_identifier(request));
        match self.cluster(&id).await? {
            None => Ok(DatabaseInfo::new(DatabaseState::Absent, naming::database_name(request))),
            Some(cluster) => {
                self.check_owner(&cluster, request).await?;
                let mut info = self.info(request, &cluster);
                // The state of cluster and instance together, as provisioning waits for it.
                if let Observed::Present { state, .. } = self.observe(&id, &instance).await? {
                    info.state = state;
                }
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
        let (id, instance) = (naming::identifier(request), naming::instance_identifier(request));
        let Some(cluster) = self.cluster(&id).await? else { return self.info_store.remove(request).await };
        self.check_owner(&cluster, request).await?;
        let docdb = self.docdb().await?;
        if cluster.status() != Some("deleting") {
            if !options.drop_data && state_of(cluster.status().unwrap_or_default()) == DatabaseState::Failed {
                return Err(no_snapshot(&id, cluster.status().unwrap_or_default()));
            }
            if cluster.deletion_protection() == Some(true) {
                if !options.force {
                    return Err(protected(&id));
                }
                docdb
                    .modify_db_cluster()
                    .db_cluster_identifier(&id)
                    .deletion_protection(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| self.client.fail(&format!("turn off the deletion protection of {id}"), e))?;
            }
            if self.instance_status(&instance, &id).await?.is_some_and(|s| s != "deleting") {
                docdb
                    .delete_db_instance()
                    .db_instance_identifier(&instance)
                    .send()
                    .await
                    .map_err(|e| self.client.fail(&format!("delete the DocumentDB instance {instance}"), e))?;
            }
            let mut delete =
                docdb.delete_db_cluster().db_cluster_identifier(&id).skip_final_snapshot(options.drop_data);
            if !options.drop_data {
                delete = delete.final_db_snapshot_identifier(final_snapshot(&id));
            }
            tracing::info!(cluster = %id, drop_data = options.drop_data, "deleting the DocumentDB cluster");
            if let Err(e) = delete.send().await
                && !e.as_service_error().is_some_and(|s| s.is_db_cluster_not_found_fault())
            {
                return Err(self.client.fail(&format!("delete the DocumentDB cluster {id}"), e));
            }
        }
        self.wait(&id, &instance, Goal::Absent).await?;
        self.info_store.remove(request).await
    }
}
