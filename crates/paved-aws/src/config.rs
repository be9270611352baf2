//! The `[aws]` section of `paved.toml` and the settings of `[databases.NAME]` servers of the
//! `aws-rds` and `aws-docdb` backends.
//!
//! Credentials never come from `paved.toml`: the SDK's standard chain finds them (environment,
//! `AWS_PROFILE`, SSO, web identity / IRSA, ECS, IMDS), and `AWS_ENDPOINT_URL` (or a
//! service's own `AWS_ENDPOINT_URL_<SERVICE>`) points every client at another endpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use paved_core::{DbEngine, Error, OrgConfig, Result};
use serde::Deserialize;

/// `[aws]`: where and how paved talks to AWS.
///
/// ```toml
/// [aws]
/// region = "eu-west-1"          # else AWS_REGION / the profile's region
/// max_attempts = 3              # the SDK's standard retry mode
/// timeout_seconds = 30          # one operation, retries included
///
/// [aws.secrets]                 # aws-sm:// references and `aws-sm` connection info
/// kms_key_id = "alias/paved"
/// recovery_window_days = 7
///
/// [aws.dashboards]              # a CloudWatch dashboard per database
/// enabled = true
///
/// [aws.sns]                     # team notifications on an SNS topic
/// topic_arn = "arn:aws:sns:eu-west-1:123456789012:platform"
///
/// [aws.eks]                     # the kube target signs its own EKS token (for a
/// cluster = "platform-prod"     # kubeconfig user without credentials of its own)
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AwsSettings {
    /// The region (default: the SDK's chain: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile).
    pub region: Option<String>,
    /// Attempts per call in the SDK's standard retry mode (throttling, 5xx, timeouts); default 3.
    pub max_attempts: Option<u32>,
    /// The time one operation may take, retries included (default 30 s).
    pub timeout_seconds: Option<u64>,
    /// The time to open a connection (default 5 s).
    pub connect_timeout_seconds: Option<u64>,
    /// AWS Secrets Manager.
    pub secrets: SecretsManagerSettings,
    /// CloudWatch dashboards of databases.
    pub dashboards: DashboardSettings,
    /// SNS notifications.
    pub sns: Option<SnsSettings>,
    /// Signing EKS tokens.
    pub eks: Option<EksSettings>,
}

/// `[aws.secrets]`: the Secrets Manager store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SecretsManagerSettings {
    /// The KMS key new secrets are encrypted with (default: the account's `aws/secretsmanager`).
    pub kms_key_id: Option<String>,
    /// Days a deleted secret can be restored (7 to 30, default 30).
    pub recovery_window_days: Option<i64>,
    /// Tags put on every secret paved creates, beside `managed-by = paved`.
    pub tags: BTreeMap<String, String>,
}

/// `[aws.dashboards]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DashboardSettings {
    /// A CloudWatch dashboard per database of the `aws-rds` and `aws-docdb` servers (default on).
    pub enabled: bool,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings { enabled: true }
    }
}

/// `[aws.sns]`: notifications published to an SNS topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SnsSettings {
    /// The topic's ARN.
    pub topic_arn: String,
}

/// `[aws.eks]`: the cluster the kube target signs tokens for, when the kubeconfig's user has no
/// credentials of its own (a repository's setting never replaces a user's credentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EksSettings {
    /// The EKS cluster's name (what `aws eks get-token --cluster-name` takes).
    pub cluster: String,
    /// The cluster's region (default: `[aws] region`, else the SDK's chain).
    #[serde(default)]
    pub region: Option<String>,
}

impl AwsSettings {
    /// The `[aws]` section of `config` (defaults when there is none); unknown keys are errors
    /// at their line, with a did-you-mean hint.
    pub fn from_org_config(config: &OrgConfig) -> Result<Self> {
        let settings = config.section::<AwsSettings>(&["aws"])?.unwrap_or_default();
        if let Some(days) = settings.secrets.recovery_window_days
            && !(7..=30).contains(&days)
        {
            return Err(config_error(
                config,
                format!("[aws.secrets] recovery_window_days = {days} is outside 7..=30"),
                "Secrets Manager keeps a deleted secret 7 to 30 days; choose a value in that range",
            ));
        }
        Ok(settings)
    }

    /// The time one operation may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(30))
    }

    /// The time to open a connection.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_seconds.unwrap_or(5))
    }
}

/// An instance class and storage of one size (`small`, `medium`, `large`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SizeSettings {
    /// The instance class, e.g. `db.t4g.micro`.
    pub instance_class: String,
    /// Allocated storage in GiB (RDS; DocumentDB storage grows by itself).
    #[serde(default = "default_storage")]
    pub storage_gib: i32,
}

fn default_storage() -> i32 {
    20
}

impl SizeSettings {
    /// A size of `instance_class` with `storage_gib` GiB.
    pub fn new(instance_class: impl Into<String>, storage_gib: i32) -> Self {
        SizeSettings { instance_class: instance_class.into(), storage_gib }
    }
}

/// The default sizes: small `db.t4g.micro` 20 GiB, medium `db.t4g.medium` 100 GiB, large
/// `db.r6g.large` 500 GiB (DocumentDB has no micro class: small is `db.t4g.medium` there).
pub fn default_sizes(engine: DbEngine) -> BTreeMap<String, SizeSettings> {
    let small = match engine {
        DbEngine::Mongodb => "db.t4g.medium",
        _ => "db.t4g.micro",
    };
    BTreeMap::from([
        ("small".to_string(), SizeSettings::new(small, 20)),
        ("medium".to_string(), SizeSettings::new("db.t4g.medium", 100)),
        ("large".to_string(), SizeSettings::new("db.r6g.large", 500)),
    ])
}

/// The settings of one `[databases.NAME]` server with `backend = "aws-rds"` (PostgreSQL,
/// MySQL) or `backend = "aws-docdb"` (MongoDB-compatible DocumentDB). `backend`, `engine`,
/// `environments` and `connection_info` are read by `paved-core`.
///
/// ```toml
/// [databases.rds]
/// backend = "aws-rds"
/// engine = "postgres"
/// engine_version = "16.4"
/// subnet_group = "platform-private"
/// security_groups = ["sg-0123456789abcdef0"]
/// kms_key_id = "alias/rds"
/// sizes.small = { instance_class = "db.t4g.small", storage_gib = 20 }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AwsDbServerSettings {
    /// The engine version (default: the engine's default in the region).
    #[serde(default)]
    pub engine_version: Option<String>,
    /// The DB subnet group the instances go into (default: the default VPC's).
    #[serde(default)]
    pub subnet_group: Option<String>,
    /// VPC security groups of the instances.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// The KMS key of storage encryption and of the managed master secret (default: the AWS
    /// managed keys).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Days automated backups are kept (default: 7 in production environments, 1 elsewhere).
    #[serde(default)]
    pub backup_retention_days: Option<i32>,
    /// Multi-AZ (default: on in production environments).
    #[serde(default)]
    pub multi_az: Option<bool>,
    /// Deletion protection (default: on in production environments).
    #[serde(default)]
    pub deletion_protection: Option<bool>,
    /// The environments that get the production defaults (default `["production"]`).
    #[serde(default = "default_production")]
    pub production_environments: Vec<String>,
    /// Instance class and storage by size; sizes not named keep their defaults.
    #[serde(default)]
    pub sizes: BTreeMap<String, SizeSettings>,
    /// The master user's name (default `paved_admin`); its password is managed by the service.
    #[serde(default = "default_master")]
    pub master_username: String,
    /// How long provisioning waits for `available` and deprovisioning for the deletion
    /// (default 45 minutes).
    #[serde(default)]
    pub wait_timeout_minutes: Option<u64>,
    /// How often the state is polled while waiting (default 15 s).
    #[serde(default)]
    pub poll_seconds: Option<u64>,
    // The keys paved-core reads from the same table.
    #[serde(default, rename = "backend")]
    _backend: serde::de::IgnoredAny,
    #[serde(default, rename = "engine")]
    _engine: serde::de::IgnoredAny,
    #[serde(default, rename = "environments")]
    _environments: serde::de::IgnoredAny,
    #[serde(default, rename = "connection_info")]
    _connection_info: serde::de::IgnoredAny,
}

fn default_production() -> Vec<String> {
    vec!["production".into()]
}

fn default_master() -> String {
    "paved_admin".into()
}

impl Default for AwsDbServerSettings {
    fn default() -> Self {
        AwsDbServerSettings {
            engine_version: None,
            subnet_group: None,
            security_groups: Vec::new(),
            kms_key_id: None,
            backup_retention_days: None,
            multi_az: None,
            deletion_protection: None,
            production_environments: default_production(),
            sizes: BTreeMap::new(),
            master_username: default_master(),
            wait_timeout_minutes: None,
            poll_seconds: None,
            _backend: serde::de::IgnoredAny,
            _engine: serde::de::IgnoredAny,
            _environments: serde::de::IgnoredAny,
            _connection_info: serde::de::IgnoredAny,
        }
    }
}

impl AwsDbServerSettings {
    /// The settings of database server `name` of `config`.
    pub fn from_org_config(config: &OrgConfig, name: &str) -> Result<Self> {
        let settings = config.section::<AwsDbServerSettings>(&["databases", name])?.unwrap_or_default();
        for size in settings.sizes.keys() {
            if !["small", "medium", "large"].contains(&size.as_str()) {
                return Err(config_error(
                    config,
                    format!("[databases.{name}] sizes.{size}: there is no size {size:?}"),
                    &paved_core::suggest::hint_for(size, ["small", "medium", "large"]),
                ));
            }
        }
        if settings.master_username.is_empty()
            || !settings.master_username.starts_with(|c: char| c.is_ascii_alphabetic())
            || !settings.master_username.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || settings.master_username.len() > 16
        {
            return Err(config_error(
                config,
                format!(
                    "[databases.{name}] master_username {:?} is not a valid master user name",
                    settings.master_username
                ),
                "1 to 16 letters, digits or underscores, starting with a letter",
            ));
        }
        Ok(settings)
    }

    /// The instance class and storage of `size` for `engine`.
    pub fn size(&self, engine: DbEngine, size: paved_core::DbSize) -> SizeSettings {
        let size = size.as_str();
        self.sizes
            .get(size)
            .cloned()
            .unwrap_or_else(|| default_sizes(engine).remove(size).expect("every size has a default"))
    }

    /// Whether `environment` gets the production defaults.
    pub fn is_production(&self, environment: &str) -> bool {
        self.production_environments.iter().any(|e| e == environment)
    }

    /// How long to wait for a state.
    pub fn wait_timeout(&self) -> Duration {
        Duration::from_secs(60 * self.wait_timeout_minutes.unwrap_or(45))
    }

    /// How often to poll while waiting.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_seconds.unwrap_or(15).max(1))
    }

    /// The same settings, polling every `interval` (tests against moto, where every state
    /// change is immediate).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_seconds = Some(interval.as_secs().max(1));
        self
    }
}

fn config_error(config: &OrgConfig, message: String, hint: &str) -> Error {
    Error::Config {
        path: config.source.clone().unwrap_or_else(|| PathBuf::from("paved.toml")),
        line: None,
        message,
        hint: Some(hint.to_string()),
    }
}
