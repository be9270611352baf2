//! The organisation's configuration, `paved.toml`.
//!
//! Found from the working directory upwards (or given with `--config`); built-in defaults
//! apply when there is none. Unknown keys are errors with a did-you-mean hint, so a typo never
//! silently falls back to a default.
//!
//! ```toml
//! domain = "apps.example.com"
//! default_team = "platform"
//! teams = ["payments", "search", "platform"]   # optional allow-list
//!
//! [secrets]                   # how vault:// references reach the app
//! mode = "agent"              # Vault Agent Injector annotations (default), or "sync"
//! vault_role = "{app}"
//! team_paths = ["vault://secret/{team}/", "vault://secret/database/{team}/", "aws-sm://{team}/", "aws-sm://database/{team}/"]
//!
//! [apps.payment-service]      # per app: secrets on every deploy (--secret adds or overrides)
//! secrets = { DB_PASSWORD = "vault://secret/platform/db#password" }
//!
//! [app]                       # defaults for every app
//! port = 8080
//! health_path = "/healthz"
//!
//! [environments.production]   # replaces the built-in dev/staging/production set
//! replicas = 3
//! max_replicas = 30
//! autoscaling = { min = 3, max = 10, target_cpu_utilization = 70 }
//! resources = { cpu_request = "250m", cpu_limit = "1", memory_request = "256Mi", memory_limit = "512Mi" }
//! monitoring = true
//! mesh = "istio"              # see `observability`: dashboard, alerts, tracing, logging, mesh
//! target = "gitops"
//!
//! [environments.production.dashboard]
//! enabled = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::Team;
use crate::observability::{AlertsConfig, DashboardConfig, LoggingConfig, MeshConfig, TracingConfig};
use crate::quantity::{CpuQuantity, MemoryQuantity};
use crate::suggest;

/// The configuration file name looked for from the working directory upwards.
pub const CONFIG_FILE: &str = "paved.toml";

/// The organisation's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OrgConfig {
    /// The base domain of app URLs: `https://{app}.{env}.{domain}`.
    #[serde(default = "defaults::domain")]
    pub domain: String,
    /// The team of a deployment that names none.
    #[serde(default = "defaults::team")]
    pub default_team: Team,
    /// The teams allowed to deploy; any team when empty.
    #[serde(default)]
    pub teams: Vec<Team>,
    /// Defaults for every app.
    #[serde(default)]
    pub app: AppDefaults,
    /// How secret references (`--secret NAME=vault://…`) reach the app.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Per-app settings, by app name (`[apps.my-service]`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// Where Vault / OpenBao is (`[vault]`), kept as written: the vault backend
    /// (`paved-vault`, `VaultSettings`) parses and checks it with [`OrgConfig::section`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<toml::Table>,
    /// AWS (`[aws]`: region, limits, Secrets Manager, dashboards, SNS, EKS), kept as written:
    /// the AWS backend (`paved-aws`, `AwsSettings`) parses and checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<toml::Table>,
    /// Database servers for self-service databases, by name (`[databases.main]`).
    #[serde(default)]
    pub databases: BTreeMap<String, DatabaseServerConfig>,
    /// Provisioners of Score resource types paved does not provision itself (`[[provisioners]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioners: Vec<crate::provisioner::ProvisionerConfig>,
    /// The organisation's policy plugins (`[[policies]]`), evaluated in this order.
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// What escape hatches may reach beyond the app, by team (`[escape_hatches]`).
    #[serde(default)]
    pub escape_hatches: EscapeHatchesConfig,
    /// The baseline policy: on unless `baseline = false`; `[baseline] modes` sets a member's
    /// mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineConfig>,
    /// Notifications of the owning team (`[notify]`), kept as written: the notify backend
    /// (`paved-notify`) parses and checks it.
    #[serde(default)]
    pub notify: Option<toml::Table>,
    /// The admission webhook (`[admission]`), kept as written: `paved-admission` parses and
    /// checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<toml::Table>,
    /// CI pipelines generated from `.platform.yaml` (`[pipelines]`).
    #[serde(default)]
    pub pipelines: PipelinesConfig,
    /// The environments, by name. When the file has an `[environments]` table it replaces the
    /// built-in `dev`, `staging` and `production`.
    #[serde(default = "defaults::environments")]
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// The organisation's policy file, which the repository cannot edit
    /// ([`crate::org_policy`]): attached by [`OrgConfig::discover`].
    #[serde(skip)]
    pub org_policy: Option<std::sync::Arc<crate::org_policy::OrgPolicy>>,
    /// Where the configuration came from (`None` for the built-in defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The text it was parsed from, so that backends' sections report errors at their line.
    #[serde(skip)]
    text: Option<std::sync::Arc<str>>,
}

/// The baseline policy's settings: `baseline = false` turns it off; a table sets members'
/// modes (`[baseline] modes = { require-probes = "warn" }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BaselineConfig {
    /// `baseline = true | false`.
    Enabled(bool),
    /// `[baseline]`.
    Tuned(BaselineTable),
}

/// The `[baseline]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BaselineTable {
    /// Whether the baseline runs (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Modes by member name (default: each member's manifest, `enforce`).
    #[serde(default)]
    pub modes: BTreeMap<String, crate::policy::PolicyMode>,
}

impl BaselineConfig {
    /// Whether the baseline runs.
    pub fn enabled(&self) -> bool {
        match self {
            BaselineConfig::Enabled(on) => *on,
            BaselineConfig::Tuned(t) => t.enabled.unwrap_or(true),
        }
    }

    /// The members' modes it sets.
    pub fn modes(&self) -> BTreeMap<String, crate::policy::PolicyMode> {
        match self {
            BaselineConfig::Enabled(_) => BTreeMap::new(),
            BaselineConfig::Tuned(t) => t.modes.clone(),
        }
    }
}

/// What escape hatches may reach beyond the app (`[escape_hatches]`): see
/// [`crate::containment`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EscapeHatchesConfig {
    /// Grants by team: cluster-scoped kinds (`"ClusterRole"`) and bindings to privileged
    /// ClusterRoles (`"bind:cluster-admin"`) its extra manifests and overlays may bring.
    #[serde(default)]
    pub grants: BTreeMap<String, Vec<String>>,
}

impl EscapeHatchesConfig {
    /// The grants of a team.
    pub fn grants_of(&self, team: &str) -> &[String] {
        self.grants.get(team).map(Vec::as_slice).unwrap_or_default()
    }
}

/// One policy plugin of the organisation (`[[policies]]`): its directory (holding
/// `policy.toml`) and what the organisation overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// The plugin directory, relative to `paved.toml`.
    pub path: PathBuf,
    /// Overrides the manifest's `mode`.
    #[serde(default)]
    pub mode: Option<crate::policy::PolicyMode>,
    /// Overrides the manifest's `failure_policy`.
    #[serde(default)]
    pub failure_policy: Option<crate::policy::FailurePolicy>,
    /// Overrides the manifest's `environments`.
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// Settings merged over the manifest's defaults, key by key.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The component's SHA-256 (hex), which the plugin's own `policy.toml` must pin too: a
    /// plugin directory someone changed is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl PolicyConfig {
    /// A policy directory with no overrides.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PolicyConfig { path: path.into(), ..Default::default() }
    }
}

/// Defaults that apply to every app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AppDefaults {
    /// The container port the app listens on.
    pub port: u16,
    /// The HTTP path of the readiness, liveness and startup probes.
    pub health_path: String,
    /// The HTTP path Prometheus scrapes.
    pub metrics_path: String,
    /// The app's HTTP server request duration histogram, in seconds, as Prometheus names it
    /// (dashboards and alerts read its `_count` and `_bucket` series). Default
    /// `http_server_request_duration_seconds`, OpenTelemetry's `http.server.request.duration`.
    pub http_metric: String,
    /// The label of [`AppDefaults::http_metric`] that holds the response's status code
    /// (default `http_response_status_code`, OpenTelemetry's `http.response.status_code`).
    pub http_status_label: String,
    /// The namespace template; `{app}`, `{team}` and `{env}` are replaced.
    pub namespace: String,
    /// The IngressClass of the app's Ingress.
    pub ingress_class: String,
    /// The namespace of the ingress controller (allowed in by the NetworkPolicy).
    pub ingress_namespace: String,
    /// The namespace of Prometheus (allowed in by the NetworkPolicy when monitoring is on).
    pub monitoring_namespace: String,
    /// The cert-manager ClusterIssuer that issues the Ingress certificate, if any.
    pub tls_issuer: Option<String>,
    /// The numeric user and group the containers run as (the image may not run as root).
    pub run_as_user: u32,
}

impl Default for AppDefaults {
    fn default() -> Self {
        AppDefaults {
            port: 8080,
            health_path: "/healthz".into(),
            metrics_path: "/metrics".into(),
            http_metric: "http_server_request_duration_seconds".into(),
            http_status_label: "http_response_status_code".into(),
            namespace: "{app}-{env}".into(),
            ingress_class: "nginx".into(),
            ingress_namespace: "ingress-nginx".into(),
            monitoring_namespace: "monitoring".into(),
            tls_issuer: None,
            run_as_user: 10001,
        }
    }
}

/// `[databases.NAME]`: a database server on which paved provisions self-service databases.
///
/// Core reads what every backend shares (the backend, the engine, the environments); the rest
/// of the table belongs to the backend, which parses it with
/// [`OrgConfig::section`]`(&["databases", NAME])` (for `vault`: `paved_vault::VaultDbServerSettings`).
///
/// ```toml
/// [databases.main]
/// backend = "vault"                          # the provisioner (default "vault")
/// engine = "postgres"
/// environments = ["staging", "production"]   # all when empty
/// host = "db.internal"                       # the vault backend's settings
/// port = 5432
/// admin_username = "vault_admin"
/// admin_password = "vault://secret/platform/db-admin#password"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatabaseServerConfig {
    /// The provisioning backend: `vault` (the Vault/OpenBao database secrets engine, default).
    #[serde(default = "defaults::database_backend")]
    pub backend: String,
    /// The engine it runs.
    pub engine: crate::request::DbEngine,
    /// The environments it serves; all when empty.
    #[serde(default)]
    pub environments: Vec<String>,
    /// The secret store its databases' connection info goes to, by scheme: `vault` or
    /// `aws-sm` (default: Vault when configured, else the only store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_info: Option<String>,
    /// The backend's own settings, kept as written (checked by the backend).
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// `[pipelines]`: the CI pipelines `paved pipeline generate` writes from `.platform.yaml`.
///
/// ```toml
/// [pipelines]
/// templates_dir = "ci/templates"   # the organisation's templates, relative to paved.toml
/// ```
///
/// A template named `NAME` in that directory is `NAME/github.yml` and/or `NAME/gitlab.yml`;
/// it takes the place of a built-in template of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PipelinesConfig {
    /// The organisation's pipeline templates, relative to the configuration file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<PathBuf>,
}

impl OrgConfig {
    /// `[pipelines] templates_dir`, relative to the directory of the configuration file (or
    /// the working directory for a configuration not read from a file).
    pub fn pipeline_templates_dir(&self) -> Option<PathBuf> {
        let dir = self.pipelines.templates_dir.as_ref()?;
        let base = self.source.as_deref().and_then(Path::parent).unwrap_or(Path::new(""));
        Some(base.join(dir))
    }
}

/// Settings of one app (`[apps.NAME]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AppConfig {
    /// The team the app belongs to. When set, a request for the app may not name another team
    /// (the team decides which secrets the app may read and is recorded in its labels), and a
    /// request that names none gets this one.
    pub team: Option<Team>,
    /// Environment variables from secret stores, every deploy of the app
    /// (`DB_PASSWORD = "vault://secret/payments/db#password"`); `--secret` adds to or overrides them.
    pub secrets: BTreeMap<String, crate::secret::SecretRef>,
}

/// How values of `vault://` (and `aws-sm://`) references reach the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SecretMode {
    /// The store's agent reads the secret in the pod, no value leaves the store: Vault Agent
    /// Injector annotations for `vault://` (the app reads `/vault/secrets/NAME`), the AWS
    /// Secrets and Configuration Provider's CSI volume for `aws-sm://` (the app reads
    /// `/mnt/secrets-store/NAME`); the file's path is in `NAME_FILE`.
    #[default]
    Agent,
    /// paved reads the values at deploy time and applies a Kubernetes Secret with `secretKeyRef`
    /// env vars. Only on targets that apply to a cluster (`kube`): a GitOps repository is no
    /// place for secret values.
    Sync,
}

/// The `[secrets]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SecretsConfig {
    /// `agent` (default) or `sync`.
    pub mode: SecretMode,
    /// The Vault role the Agent Injector logs in with; `{app}`, `{team}` and `{env}` are replaced.
    pub vault_role: String,
    /// The IAM role the app's service account assumes (IRSA) to read its `aws-sm://` secrets
    /// through the AWS Secrets and Configuration Provider in agent mode, e.g.
    /// `arn:aws:iam::123456789012:role/{team}-{app}`; `{app}`, `{team}` and `{env}` are
    /// replaced. Unset: the service account is not annotated (EKS Pod Identity, or a role bound
    /// elsewhere).
    pub aws_role_arn: Option<String>,
    /// The AWS provider authenticates with EKS Pod Identity (`usePodIdentity`) instead of IRSA.
    pub aws_pod_identity: bool,
    /// Where a team's secret references may point, as `SCHEME://PREFIX/` with `{team}`, `{app}`
    /// and `{env}` replaced; `"*"` allows any path. Checked before any secret is read, so one
    /// team can never have paved read (or sync into its namespace) another team's secret.
    /// Default: `vault://secret/{team}/`, `vault://secret/database/{team}/` (its databases'
    /// connection info), `aws-sm://{team}/` and `aws-sm://database/{team}/`. `k8s://` references stay in the app's own
    /// namespace and are not checked.
    pub team_paths: Vec<String>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            mode: SecretMode::Agent,
            vault_role: "{app}".into(),
            aws_role_arn: None,
            aws_pod_identity: false,
            team_paths: [
                "vault://secret/{team}/",
                "vault://secret/database/{team}/",
                "aws-sm://{team}/",
                "aws-sm://database/{team}/",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl SecretsConfig {
    /// Refuses a reference outside the secret paths of `team` ([`SecretsConfig::team_paths`]),
    /// naming the paths it may use.
    pub fn check_reference(&self, team: &Team, app: &str, env: &str, reference: &crate::SecretRef) -> Result<()> {
        use crate::secret::SecretScheme;
        if reference.scheme() == SecretScheme::Kubernetes || self.team_paths.iter().any(|p| p == "*") {
            return Ok(());
        }
        // `secret/database/` holds every team's database connection info: a team of that name
        // would reach all of it through `secret/{team}/`.
        if team.as_str() == "database" {
            return Err(Error::invalid(
                "team",
                team.as_str(),
                "is reserved: database/ holds the connection info of every team's databases",
                Some("give the team another name".into()),
            ));
        }
        let scheme = reference.scheme().as_str();
        let allowed: Vec<String> = self
            .team_paths
            .iter()
            .filter_map(|p| p.strip_prefix(scheme)?.strip_prefix("://"))
            .map(|p| p.replace("{team}", team.as_str()).replace("{app}", app).replace("{env}", env))
            .collect();
        // References are normalized (no empty, `.` or `..` parts): a prefix of whole parts.
        let path = format!("{}/", reference.path());
        if allowed.iter().any(|prefix| path.starts_with(prefix.as_str())) {
            return Ok(());
        }
        let listed = match allowed.is_empty() {
            true => format!("no {scheme}:// paths"),
            false => allowed.iter().map(|p| format!("{scheme}://{p}")).collect::<Vec<_>>().join(", "),
        };
        Err(Error::invalid(
            "secret",
            reference.to_string(),
            format!("is outside the secret paths of team {team} ({listed})"),
            Some(
                "keep the team's secrets under its paths, or ask the platform team to extend [secrets] team_paths in paved.toml"
                    .into(),
            ),
        ))
    }
}

/// The defaults of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EnvironmentConfig {
    /// Replicas when the request names none and autoscaling is off.
    pub replicas: u32,
    /// The most replicas a request may ask for.
    pub max_replicas: u32,
    /// Autoscaling defaults.
    pub autoscaling: AutoscalingConfig,
    /// Resource requests and limits of the app container.
    pub resources: ResourceDefaults,
    /// Whether a ServiceMonitor is rendered.
    pub monitoring: bool,
    /// The Grafana dashboard of the app (`[environments.NAME.dashboard]`; off by default).
    pub dashboard: DashboardConfig,
    /// The app's Prometheus alerts (`[environments.NAME.alerts]`; off by default).
    pub alerts: AlertsConfig,
    /// OpenTelemetry environment variables (`[environments.NAME.tracing]`; off by default).
    pub tracing: TracingConfig,
    /// Pod labels and annotations for the log collector (`[environments.NAME.logging]`).
    pub logging: LoggingConfig,
    /// The service mesh (`mesh = "istio"` or `"linkerd"`, or a table); none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshConfig>,
    /// The name of the deploy target (`gitops` is built in).
    pub target: String,
}

impl Default for EnvironmentConfig {
    fn default() -> Self {
        EnvironmentConfig {
            replicas: 1,
            max_replicas: 50,
            autoscaling: AutoscalingConfig::default(),
            resources: ResourceDefaults::default(),
            monitoring: false,
            dashboard: DashboardConfig::default(),
            alerts: AlertsConfig::default(),
            tracing: TracingConfig::default(),
            logging: LoggingConfig::default(),
            mesh: None,
            target: "gitops".into(),
        }
    }
}

/// HorizontalPodAutoscaler defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AutoscalingConfig {
    /// Whether an HPA is rendered (the user may still switch it off with `--no-hpa`).
    pub enabled: bool,
    /// `minReplicas` when the request names no replica count.
    pub min: u32,
    /// `maxReplicas` (raised to the request's replica count when that is higher).
    pub max: u32,
    /// Target average CPU utilisation, in percent of the request.
    pub target_cpu_utilization: u8,
}

impl Default for AutoscalingConfig {
    fn default() -> Self {
        AutoscalingConfig { enabled: true, min: 1, max: 3, target_cpu_utilization: 70 }
    }
}

/// Resource requests and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResourceDefaults {
    /// CPU request.
    pub cpu_request: CpuQuantity,
    /// CPU limit; `None` leaves CPU unlimited (no throttling), which many platforms prefer.
    pub cpu_limit: Option<CpuQuantity>,
    /// Memory request.
    pub memory_request: MemoryQuantity,
    /// Memory limit.
    pub memory_limit: MemoryQuantity,
}

impl Default for ResourceDefaults {
    fn default() -> Self {
        ResourceDefaults {
            cpu_request: CpuQuantity::new("100m").expect("valid"),
            cpu_limit: Some(CpuQuantity::new("500m").expect("valid")),
            memory_request: MemoryQuantity::new("128Mi").expect("valid"),
            memory_limit: MemoryQuantity::new("256Mi").expect("valid"),
        }
    }
}

mod defaults {
    use super::*;

    pub(super) fn domain() -> String {
        "example.com".into()
    }

    pub(super) fn database_backend() -> String {
        "vault".into()
    }

    pub(super) fn team() -> Team {
        Team::new("platform").expect("valid")
    }

    fn res(cpu_request: &str, cpu_limit: &str, memory_request: &str, memory_limit: &str) -> ResourceDefaults {
        ResourceDefaults {
            cpu_request: CpuQuantity::new(cpu_request).expect("valid"),
            cpu_limit: Some(CpuQuantity::new(cpu_limit).expect("valid")),
            memory_request: MemoryQuantity::new(memory_request).expect("valid"),
            memory_limit: MemoryQuantity::new(memory_limit).expect("valid"),
        }
    }

    pub(super) fn environments() -> BTreeMap<String, EnvironmentConfig> {
        let env = |replicas, min, max, resources, monitoring| EnvironmentConfig {
            replicas,
            max_replicas: 50,
            autoscaling: AutoscalingConfig { enabled: true, min, max, target_cpu_utilization: 70 },
            resources,
            monitoring,
            target: "gitops".into(),
            ..EnvironmentConfig::default()
        };
        BTreeMap::from([
            ("dev".into(), env(1, 1, 3, res("100m", "500m", "128Mi", "256Mi"), false)),
            ("staging".into(), env(2, 2, 5, res("250m", "1", "256Mi", "512Mi"), true)),
            ("production".into(), env(3, 3, 10, res("250m", "1", "256Mi", "512Mi"), true)),
        ])
    }
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            domain: defaults::domain(),
            default_team: defaults::team(),
            teams: Vec::new(),
            app: AppDefaults::default(),
            secrets: SecretsConfig::default(),
            apps: BTreeMap::new(),
            vault: None,
            aws: None,
            databases: BTreeMap::new(),
            provisioners: Vec::new(),
            policies: Vec::new(),
            escape_hatches: EscapeHatchesConfig::default(),
            baseline: None,
            notify: None,
            admission: None,
            pipelines: PipelinesConfig::default(),
            environments: defaults::environments(),
            org_policy: None,
            source: None,
            text: None,
        }
    }
}

/// One environment, resolved by name from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The environment's name, e.g. `production`.
    pub name: String,
    /// Its defaults.
    pub config: EnvironmentConfig,
}

impl OrgConfig {
    /// Parses configuration text read from `path` and checks it.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Self> {
        let path = path.as_ref();
        let mut config: OrgConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        config.source = Some(path.to_path_buf());
        config.text = Some(text.into());
        config.check()?;
        Ok(config)
    }

    /// Reads and checks a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read the configuration: {e}"),
            hint: Some("check the path of the configuration file".into()),
        })?;
        Self::parse(path, &text)
    }

    /// The `paved.toml` in `dir` or the nearest ancestor, if there is one.
    pub fn find(dir: impl AsRef<Path>) -> Option<PathBuf> {
        dir.as_ref().ancestors().map(|d| d.join(CONFIG_FILE)).find(|p| p.is_file())
    }

    /// Loads `explicit` if given, else the `paved.toml` found from the working directory
    /// upwards, else the built-in defaults; then attaches the organisation's policy file
    /// ([`OrgPolicy::discover`](crate::org_policy::OrgPolicy::discover)), which must not lie
    /// inside the repository that holds `paved.toml`.
    pub fn discover(explicit: Option<&Path>) -> Result<Self> {
        let mut config = match explicit {
            Some(p) => Self::load(p)?,
            None => {
                let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
                match Self::find(&cwd) {
                    Some(p) => Self::load(p)?,
                    None => OrgConfig::default(),
                }
            }
        };
        if let Some(org) = crate::org_policy::OrgPolicy::discover()? {
            let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
            config.check_outside_repository(&org.source, &cwd)?;
            config = config.with_org_policy(org)?;
        }
        Ok(config)
    }

    /// Attaches the organisation's policy file, after checking what it constrains in this
    /// configuration: the environments it allows (`environments`), which a repository may not
    /// rename or add to.
    pub fn with_org_policy(mut self, org: crate::org_policy::OrgPolicy) -> Result<Self> {
        if let Some(allowed) = &org.environments
            && let Some(name) = self.environments.keys().find(|name| !allowed.contains(name))
        {
            return Err(Error::Config {
                path: self.source_path(),
                line: self.text().and_then(|t| crate::org_policy::line_of(t, &format!("[environments.{name}]"))),
                message: format!("environment \"{name}\" is not one of the organisation's ({})", allowed.join(", ")),
                hint: Some(format!(
                    "{}; the organisation sets environments in {}",
                    suggest::hint_for(name, allowed.iter().map(String::as_str)),
                    org.source.display()
                )),
            });
        }
        self.org_policy = Some(std::sync::Arc::new(org));
        Ok(self)
    }

    /// Refuses an organisation policy file inside a repository paved works on: the git work
    /// tree of the working directory (or the working directory itself outside one), or the
    /// git work tree holding `paved.toml`. A repository could edit such a file.
    fn check_outside_repository(&self, org_file: &Path, cwd: &Path) -> Result<()> {
        let org_file = std::fs::canonicalize(org_file).map_err(|e| Error::io(org_file, e))?;
        let work_tree = |dir: &Path| dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf);
        let cwd = std::fs::canonicalize(cwd).map_err(|e| Error::io(cwd, e))?;
        let mut repositories = vec![work_tree(&cwd).unwrap_or(cwd)];
        if let Some(source) = &self.source {
            let source = std::fs::canonicalize(source).map_err(|e| Error::io(source, e))?;
            repositories.extend(source.parent().and_then(work_tree));
        }
        if let Some(repository) = repositories.iter().find(|r| org_file.starts_with(r)) {
            return Err(Error::Config {
                path: org_file.clone(),
                line: None,
                message: format!(
                    "the organisation's policy file lies inside the repository {}, which can edit it",
                    repository.display()
                ),
                hint: Some(format!("keep it outside every checkout, e.g. at {}", crate::org_policy::SYSTEM_ORG_CONFIG)),
            });
        }
        Ok(())
    }

    /// The escape-hatch grants of an app: its team's `[escape_hatches.grants]`, and only when
    /// the app is bound to that team (`[apps.NAME] team`), since a request can name any team.
    pub fn grants_of_app(&self, app: &str, team: &Team) -> &[String] {
        match self.apps.get(app).and_then(|a| a.team.as_ref()) {
            Some(bound) if bound == team => self.escape_hatches.grants_of(team.as_str()),
            _ => &[],
        }
    }

    /// The text the configuration was parsed from.
    pub(crate) fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// A backend's own section (`&["vault"]`, `&["databases", "main"]`), parsed into the
    /// backend's settings type with the same errors as the rest of the file (`file:line`,
    /// unknown keys with a did-you-mean hint). `None` when the section is absent.
    ///
    /// ```
    /// # use paved_core::OrgConfig;
    /// #[derive(serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Vault { address: String }
    /// let c = OrgConfig::parse("paved.toml", "[vault]\naddress = \"https://vault:8200\"\n").unwrap();
    /// assert_eq!(c.section::<Vault>(&["vault"]).unwrap().unwrap().address, "https://vault:8200");
    /// let c = OrgConfig::parse("paved.toml", "domain = \"example.com\"\n[vault]\nadress = \"x\"\n").unwrap();
    /// let e = c.section::<Vault>(&["vault"]).err().unwrap();
    /// assert_eq!(e.to_string(), "paved.toml:3: unknown field `adress`, expected `address`");
    /// assert_eq!(e.hint(), Some("did you mean \"address\"? (or remove the key)"));
    /// ```
    pub fn section<T: serde::de::DeserializeOwned>(&self, path: &[&str]) -> Result<Option<T>> {
        let source = self.source_path();
        match &self.text {
            Some(text) => {
                let de = toml::Deserializer::parse(text).map_err(|e| toml_error(&source, text, &e))?;
                serde::de::DeserializeSeed::deserialize(section::Section::<T>::new(path), de)
                    .map_err(|e| toml_error(&source, text, &e))
            }
            None => {
                let hint = || Some(format!("check the [{}] table of the configuration", path.join(".")));
                let value = toml::Value::try_from(self).map_err(|e| Error::Config {
                    path: source.clone(),
                    line: None,
                    message: e.to_string(),
                    hint: hint(),
                })?;
                let found = path.iter().try_fold(&value, |v, key| v.get(key));
                found.map(|v| v.clone().try_into()).transpose().map_err(|e: toml::de::Error| Error::Config {
                    path: source,
                    line: None,
                    message: e.message().to_string(),
                    hint: hint(),
                })
            }
        }
    }

    /// Resolves an environment by name; unknown names get a did-you-mean hint.
    pub fn environment(&self, name: &str) -> Result<Environment> {
        match self.environments.get(name) {
            Some(config) => Ok(Environment { name: name.to_string(), config: config.clone() }),
            None => {
                let hint = suggest::hint_for(name, self.environments.keys().map(String::as_str));
                Err(Error::invalid("env", name, "is not an environment of this organisation", Some(hint)))
            }
        }
    }

    /// Resolves the owning team: the given one (checked against the allow-list) or the default.
    pub fn team(&self, team: Option<&Team>) -> Result<Team> {
        let team = team.unwrap_or(&self.default_team);
        if self.teams.is_empty() || self.teams.contains(team) {
            return Ok(team.clone());
        }
        let hint = suggest::hint_for(team.as_str(), self.teams.iter().map(Team::as_str));
        Err(Error::invalid("team", team.as_str(), "is not a team of this organisation", Some(hint)))
    }

    fn source_path(&self) -> PathBuf {
        self.source.clone().unwrap_or_else(|| PathBuf::from("<built-in configuration>"))
    }

    fn check(&self) -> Result<()> {
        let err = |message: String, hint: &str| Error::Config {
            path: self.source_path(),
            line: None,
            message,
            hint: Some(hint.to_string()),
        };
        if self.environments.is_empty() {
            return Err(err("no environments are configured".into(), "add at least one [environments.NAME] table"));
        }
        if let Err((message, hint)) = crate::containment::check_grants(&self.escape_hatches.grants) {
            return Err(err(message, &hint));
        }
        for entry in &self.secrets.team_paths {
            let scheme_ok = entry
                .split_once("://")
                .is_some_and(|(scheme, _)| crate::secret::SecretScheme::ALL.iter().any(|(name, _)| *name == scheme));
            if entry != "*" && (!scheme_ok || !entry.ends_with('/') || entry.contains("..")) {
                return Err(err(
                    format!("[secrets] team_paths entry {entry:?} is not SCHEME://PREFIX/"),
                    "write e.g. \"vault://secret/{team}/\" (ending in `/`), or \"*\" to allow any path",
                ));
            }
        }
        for (name, env) in &self.environments {
            if crate::names::Team::new(name.clone()).is_err() {
                return Err(err(
                    format!("environment name \"{name}\" is not a DNS label"),
                    "use lowercase letters, digits and '-'",
                ));
            }
            if env.replicas == 0 || env.replicas > env.max_replicas {
                return Err(err(
                    format!("environments.{name}.replicas must be between 1 and max_replicas ({})", env.max_replicas),
                    "set replicas to at least 1 and at most max_replicas",
                ));
            }
            let a = &env.autoscaling;
            if a.min == 0 || a.min > a.max {
                return Err(err(
                    format!("environments.{name}.autoscaling needs 1 <= min <= max (min {}, max {})", a.min, a.max),
                    "raise max or lower min",
                ));
            }
            if !(1..=100).contains(&a.target_cpu_utilization) {
                return Err(err(
                    format!("environments.{name}.autoscaling.target_cpu_utilization must be 1-100"),
                    "use e.g. 70",
                ));
            }
            if let Err((key, message, hint)) =
                crate::observability::check(&env.dashboard, &env.alerts, &env.tracing, &env.logging, env.mesh.as_ref())
            {
                let table = format!("[environments.{name}.{key}]");
                let line = self.text().and_then(|t| {
                    crate::org_policy::line_of(t, &table)
                        .or_else(|| crate::org_policy::line_of(t, &format!("[environments.{name}]")))
                });
                return Err(Error::Config {
                    path: self.source_path(),
                    line,
                    message: format!("environments.{name}.{key}: {message}"),
                    hint: Some(hint),
                });
            }
            let r = &env.resources;
            if r.cpu_limit.as_ref().is_some_and(|l| l.millis() < r.cpu_request.millis())
                || r.memory_limit.bytes() < r.memory_request.bytes()
            {
                return Err(err(
                    format!("environments.{name}.resources has a limit below its request"),
                    "raise the limit or lower the request",
                ));
            }
        }
        if !self.domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }) {
            return Err(err(
                format!("domain \"{}\" is not a lowercase DNS name", self.domain),
                "use e.g. \"apps.example.com\"",
            ));
        }
        let prometheus_name = |n: &str| {
            n.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !prometheus_name(&self.app.http_metric) || !prometheus_name(&self.app.http_status_label) {
            return Err(err(
                format!(
                    "app.http_metric {:?} and app.http_status_label {:?} must be Prometheus names",
                    self.app.http_metric, self.app.http_status_label
                ),
                "use letters, digits and '_', e.g. \"http_server_request_duration_seconds\"",
            ));
        }
        if !self.app.health_path.starts_with('/') || !self.app.metrics_path.starts_with('/') {
            return Err(err(
                "app.health_path and app.metrics_path must start with '/'".into(),
                "use e.g. \"/healthz\"",
            ));
        }
        Ok(())
    }
}

mod section {
    //! Reads one (possibly nested) table of a TOML document into a type, with the document's
    //! spans kept, so that errors inside it point at their line.

    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    pub(super) struct Section<'p, T> {
        path: &'p [&'p str],
        target: PhantomData<T>,
    }

    impl<'p, T> Section<'p, T> {
        pub(super) fn new(path: &'p [&'p str]) -> Self {
            Section { path, target: PhantomData }
        }
    }

    impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Section<'_, T> {
        type Value = Option<T>;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
            match self.path {
                [] => T::deserialize(deserializer).map(Some),
                _ => deserializer.deserialize_map(self),
            }
        }
    }

    impl<'de, T: DeserializeOwned> Visitor<'de> for Section<'_, T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a table holding [{}]", self.path.join("."))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == self.path[0] {
                    found = map.next_value_seed(Section::<T>::new(&self.path[1..]))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
}

/// Turns a TOML/serde error into a [`Error::Config`] with the line and a did-you-mean hint.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let message = e.message().trim().to_string();
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let hint = if message.starts_with("unknown field") && !ticked.is_empty() {
        let expected = &ticked[1..];
        if expected.is_empty() {
            Some(format!("remove \"{}\"; this table takes no keys", ticked[0]))
        } else {
            Some(format!("{} (or remove the key)", suggest::hint_for(ticked[0], expected.iter().copied())))
        }
    } else if message.starts_with("unknown variant") && ticked.len() > 1 {
        Some(suggest::hint_for(ticked[0], ticked[1..].iter().copied()))
    } else {
        Some("see the configuration reference in the paved-core documentation (module `config`)".into())
    };
    Error::Config { path: path.to_path_buf(), line, message, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults() {
        let c = OrgConfig::default();
        c.check().unwrap();
        assert_eq!(c.environments.keys().collect::<Vec<_>>(), ["dev", "production", "staging"]);
        assert_eq!(c.environment("production").unwrap().config.replicas, 3);
    }

    #[test]
    fn unknown_environment_gets_a_hint() {
        let e = OrgConfig::default().environment("prod").unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"production\"?"));
        assert!(e.is_user_error());
    }

    #[test]
    fn parses_a_file() {
        let c = OrgConfig::parse(
            "paved.toml",
            r#"
domain = "apps.acme.io"
teams = ["payments", "platform"]
[app]
port = 9000
[environments.qa]
replicas = 2
resources = { cpu_request = "50m", memory_request = "64Mi", memory_limit = "128Mi" }
"#,
        )
        .unwrap();
        assert_eq!(c.domain, "apps.acme.io");
        assert_eq!(c.app.port, 9000);
        assert_eq!(c.app.health_path, "/healthz");
        assert_eq!(c.environments.len(), 1);
        let qa = c.environment("qa").unwrap();
        assert_eq!(qa.config.resources.cpu_request.millis(), 50);
        assert_eq!(qa.config.resources.cpu_limit.as_ref().map(CpuQuantity::millis), Some(500));
        assert!(c.team(Some(&Team::new("payments").unwrap())).is_ok());
        assert_eq!(
            c.team(Some(&Team::new("paymnts").unwrap())).unwrap_err().hint(),
            Some("did you mean \"payments\"?")
        );
    }

    #[test]
    fn pipelines_templates_dir_is_relative_to_the_file() {
        let c = OrgConfig::parse("/repo/paved.toml", "[pipelines]\ntemplates_dir = \"ci/templates\"\n").unwrap();
        assert_eq!(c.pipeline_templates_dir(), Some(PathBuf::from("/repo/ci/templates")));
        assert_eq!(OrgConfig::default().pipeline_templates_dir(), None);
        let e = OrgConfig::parse("paved.toml", "[pipelines]\ntemplate_dir = \"x\"\n").unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"templates_dir\"? (or remove the key)"));
        assert!(e.to_string().starts_with("paved.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors_with_hints() {
        let e = OrgConfig::parse("paved.toml", "domain = \"a.io\"\ndomian = \"b.io\"\n").unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"domain\"? (or remove the key)"));
        assert!(e.to_string().starts_with("paved.toml:2:"), "{e}");
        let e = OrgConfig::parse("paved.toml", "[environments.production]\nreplica = 3\n").unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"replicas\"? (or remove the key)"));
        let e = OrgConfig::parse("paved.toml", "[environments.production.resources]\ncpu_limit = \"2 cores\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("2 cores"), "{e}");
        let e = OrgConfig::parse("paved.toml", "[environments.dev]\nreplicas = 0\n").unwrap_err();
        assert!(e.to_string().contains("replicas"), "{e}");
        let e = OrgConfig::parse("paved.toml", "domain = 3\n").unwrap_err();
        assert!(e.hint().is_some());
    }
}
