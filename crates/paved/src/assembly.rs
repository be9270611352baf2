//! The platform a `paved.toml` describes, assembled once for every front end.
//!
//! [`Assembly`] turns an [`OrgConfig`] plus the environment (credentials only ever come from
//! environment variables) into a [`Platform`]: deploy targets, secret stores per reference
//! scheme, database servers with their provisioners, notifiers, policies and the event ledger,
//! each behind its facade feature. The CLI, the Python bindings and the API server call only
//! this; none of them wires a backend itself.
//!
//! Nothing is dialled while assembling: the kube target connects, Vault logs in and database
//! servers' admin passwords are read on first use, so a command that needs none of them (a
//! render, a deploy to the GitOps directory) works without them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> paved::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use paved::{Assembly, DeployRequest, OrgConfig};
//!
//! let assembled = Assembly::new(OrgConfig::default()).state_dir(dir.path()).build().await?;
//! let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production")?;
//! let outcome = assembled.platform().deploy(&request).await?;
//! assert_eq!(outcome.record.revision, 1);
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{OrgConfig, Platform, Progress, Result};

/// Where the environment's values come from (`std::env::var` unless a test replaces it).
type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Settings of the live Kubernetes target; `None` keeps the target's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeOptions {
    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`, else in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the current context).
    pub context: Option<String>,
    /// How long a rollout may take before it fails (default: a minute longer than the
    /// Deployments' `progressDeadlineSeconds`, 11 minutes for paved's 600 s).
    pub timeout: Option<Duration>,
    /// Re-apply the previous revision when a rollout fails, or remove the objects of a release
    /// that never succeeded (default `true`).
    pub auto_rollback: Option<bool>,
    /// Take over fields another field manager owns (default `false`).
    pub force_conflicts: Option<bool>,
    /// How many revisions the cluster keeps per app and environment (default 10).
    pub history_max: Option<usize>,
}

/// Builds the [`Platform`] that an [`OrgConfig`] describes. See the [module docs](self).
pub struct Assembly {
    config: OrgConfig,
    state_dir: PathBuf,
    record: bool,
    kube: KubeOptions,
    progress: Option<crate::events::ProgressSink>,
    actor: Option<String>,
    lookup: Lookup,
}

impl fmt::Debug for Assembly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assembly")
            .field("config", &self.config.source)
            .field("state_dir", &self.state_dir)
            .field("record", &self.record)
            .field("kube", &self.kube)
            .finish_non_exhaustive()
    }
}

impl Assembly {
    /// An assembly of `config`, with the state directory `.paved`, events recorded, and the
    /// process environment for credentials.
    pub fn new(config: OrgConfig) -> Self {
        Assembly {
            config,
            state_dir: PathBuf::from(".paved"),
            record: true,
            kube: KubeOptions::default(),
            progress: None,
            actor: None,
            lookup: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// Where the GitOps directory and the event ledger live (default `.paved`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Whether events go into the ledger (default `true`; off for renders and dry runs, which
    /// write nothing). The ledger is opened on the first event, so bad input writes nothing.
    pub fn record_events(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// Settings of the live Kubernetes target.
    pub fn kube(mut self, options: KubeOptions) -> Self {
        self.kube = options;
        self
    }

    /// A callback for progress reports.
    pub fn on_progress(mut self, sink: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(sink));
        self
    }

    /// Who acts (default: `$PAVED_ACTOR`, else the user name).
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Reads environment variables through `lookup` instead of the process environment
    /// (tests, or a server that keeps credentials elsewhere).
    pub fn env_lookup(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// The configuration being assembled.
    pub fn config(&self) -> &OrgConfig {
        &self.config
    }

    /// The Vault / OpenBao KV store of the configuration (`[vault]` over `VAULT_ADDR`,
    /// `VAULT_TOKEN`, …), logged in, without assembling the rest of the platform: what
    /// `paved secrets` and other tools read and write. Fails with the vault backend's hint
    /// when Vault is not configured or refuses the credentials.
    #[cfg(feature = "vault")]
    pub async fn vault_store(&self) -> Result<crate::vault::VaultSecretStore> {
        match backends::LazyVault::from_config(&self.config, &self.lookup)? {
            Some(vault) => Ok(vault.store().await?.clone()),
            // Not configured: the vault backend's own error says what is missing.
            None => Err(match backends::vault_config(&self.config, &*self.lookup) {
                Err(e) => e,
                Ok(_) => crate::Error::Config {
                    path: PathBuf::from("[vault]"),
                    line: None,
                    message: "Vault is not configured".into(),
                    hint: Some("set [vault] address in paved.toml, or VAULT_ADDR".into()),
                },
            }),
        }
    }

    /// The AWS Secrets Manager store of the configuration (`[aws]` over the standard credential
    /// chain), without assembling the rest of the platform. Nothing is dialled until first use.
    #[cfg(feature = "aws")]
    pub fn secrets_manager_store(&self) -> Result<crate::aws::SecretsManagerStore> {
        let settings = crate::aws::AwsSettings::from_org_config(&self.config)?;
        Ok(crate::aws::SecretsManagerStore::new(crate::aws::Aws::with_lookup(settings, self.lookup.clone())))
    }

    /// The configuration's policies as the admission webhook decides with them: the same
    /// policy set [`build`](Self::build) gives the platform, with the `[admission]` settings.
    #[cfg(feature = "admission")]
    pub fn admission_policies(&self) -> Result<crate::admission::Policies> {
        crate::admission::Policies::load(self.config.clone())
    }

    /// A client of the cluster the kube target would use (the [`KubeOptions`]' kubeconfig
    /// and context), connected now: for tools beside the platform (`paved admission audit`).
    #[cfg(feature = "admission")]
    pub async fn kube_client(&self) -> Result<crate::admission::KubeClient> {
        self.kube_connection()?.client_now().await
    }

    /// How the kube target reaches the cluster: the kubeconfig and context of the
    /// [`KubeOptions`]; with the `aws` feature, an EKS token paved signs itself for
    /// `[aws.eks] cluster`, or in place of a kubeconfig exec entry that runs
    /// `aws eks get-token`.
    #[cfg(feature = "kube")]
    fn kube_connection(&self) -> Result<paved_kube::live::Connection> {
        let connection =
            paved_kube::live::Connection::kubeconfig(self.kube.kubeconfig.clone(), self.kube.context.clone());
        #[cfg(feature = "aws")]
        let connection = {
            use crate::aws::{Aws, AwsSettings, EksTokens};
            let settings = AwsSettings::from_org_config(&self.config)?;
            let aws = Aws::with_lookup(settings.clone(), self.lookup.clone());
            let mut connection = connection;
            // From paved.toml: only for a kubeconfig user without credentials of its own, so a
            // repository cannot trade a restricted user for the pipeline's AWS identity.
            if let Some(eks) = &settings.eks {
                let tokens = EksTokens::new(aws.clone(), &eks.cluster, eks.region.clone());
                connection = connection.token_source_for_bare_user(Arc::new(eks::Tokens(tokens)));
            }
            let replace: paved_kube::live::ExecReplacement =
                Arc::new(move |command: &str, args: &[String], env: &[(String, String)]| {
                    let (cluster, region) = crate::aws::eks::cluster_of_exec(command, args, env)?;
                    let tokens = EksTokens::new(aws.clone(), cluster, region);
                    Some(Arc::new(eks::Tokens(tokens)) as Arc<dyn paved_kube::live::TokenSource>)
                });
            connection.replace_exec(replace)
        };
        Ok(connection)
    }

    /// Assembles the platform. Fails on configuration that cannot work (an unknown database
    /// backend, a policy whose pin does not match, a bad `[notify]` section), never because a
    /// server is unreachable: servers are contacted on first use.
    pub async fn build(self) -> Result<Assembled> {
        let mut builder = Platform::builder().config(self.config.clone());
        #[cfg(feature = "kube")]
        let kube_target = {
            use paved_kube::live::KubeTarget;
            let k = &self.kube;
            let mut target = KubeTarget::new(self.kube_connection()?).namespace_template(&self.config.app.namespace);
            if let Some(t) = k.timeout {
                target = target.timeout(t);
            }
            if let Some(on) = k.auto_rollback {
                target = target.auto_rollback(on);
            }
            if let Some(on) = k.force_conflicts {
                target = target.force_conflicts(on);
            }
            if let Some(n) = k.history_max {
                target = target.history_max(n);
            }
            let target = Arc::new(target);
            builder = builder
                .renderer(paved_kube::KubeRenderer)
                .deployer(paved_kube::GitOpsTarget::new(&self.state_dir))
                .shared_deployer(target.clone());
            Some(target)
        };
        #[cfg(not(feature = "kube"))]
        let kube_target = None;
        #[cfg(feature = "metrics")]
        if self.record {
            builder = builder.metrics(crate::metrics::LedgerRecorder::lazy(&self.state_dir));
        }
        // Policies and notifications the configuration asks for are never skipped silently
        // by a build without their feature.
        // (The default baseline needs the feature too; a build without it has none.)
        #[cfg(not(feature = "policy"))]
        if !self.config.policies.is_empty()
            || self.config.baseline.is_some()
            || self.config.org_policy.as_ref().is_some_and(|o| !o.policies.is_empty() || o.baseline.is_some())
        {
            return Err(missing_feature(&self.config, "[[policies]] or baseline", "policy"));
        }
        #[cfg(not(feature = "notify"))]
        if self.config.notify.is_some() {
            return Err(missing_feature(&self.config, "[notify]", "notify"));
        }
        #[cfg(feature = "policy")]
        if self.config.has_policies() {
            let set = crate::policy::PolicySet::from_config(&self.config, crate::policy::HostOptions::default())?;
            builder = builder.policy(set);
        }
        let backends = backends::Backends::from_config(&self.config, &self.lookup)?;
        builder = backends.register(builder, &self.config)?;
        #[cfg(feature = "notify")]
        if let Some(section) = &self.config.notify {
            let source = self.config.source.clone().unwrap_or_else(|| PathBuf::from("paved.toml"));
            let cfg = crate::notify::NotifyConfig::from_toml(&toml::Value::Table(section.clone()), &source)?;
            let store = backends.default_store();
            for notifier in crate::notify::notifiers_from_config(&cfg, store.as_deref()).await? {
                builder = builder.notifier(notifier);
            }
            // A little longer than the notifiers' own timeout, whose error says more.
            builder = builder.notify_timeout(cfg.timeout + Duration::from_secs(1));
        }
        if let Some(sink) = self.progress {
            builder = builder.on_progress(move |p| sink(p));
        }
        if let Some(actor) = self.actor {
            builder = builder.actor(actor);
        }
        let platform = builder.build()?;
        Ok(Assembled { platform, kube: kube_target })
    }
}

/// Refuses settings of the kube target (`given`, named as the front end spells them: a
/// `field` such as a flag or an option) for `env` (`None`: every environment) when it does not
/// deploy to the kube target: they would do nothing. `target` is the front end's override of
/// the environment's target; `use_kube` says how the front end asks for the kube target.
#[cfg(feature = "kube")]
pub fn refuse_kube_only(
    config: &OrgConfig,
    env: Option<&str>,
    target: Option<&str>,
    (field, given): (&'static str, &[&str]),
    use_kube: &str,
) -> Result<()> {
    let Some(option) = given.first() else { return Ok(()) };
    let kube = crate::paved_kube::live::TARGET_NAME;
    let refused = match (env, target) {
        (_, Some(t)) => (t != kube).then(|| format!("the target is {t}")),
        (Some(env), None) => {
            let t = config.environment(env)?.config.target;
            (t != kube).then(|| format!("environment {env} deploys to the {t} target"))
        }
        (None, None) => (!config.environments.values().any(|e| e.target == kube))
            .then(|| "no environment deploys to the kube target".to_string()),
    };
    match refused {
        None => Ok(()),
        Some(why) => Err(crate::Error::invalid(
            field,
            option.to_string(),
            format!("applies to the kube target only, and {why}"),
            Some(format!(
                "leave {option} out, or deploy to a cluster with {use_kube} (or target = \"kube\" for {} in paved.toml)",
                env.unwrap_or("the environment")
            )),
        )),
    }
}

/// Who acts, as every front end records it: `PAVED_ACTOR`, else the git user (`user.email`,
/// else `user.name`); `None` leaves it to the library (`$USER`). Asks git (a process or two),
/// so call it only when something is recorded.
pub fn actor_from_environment() -> Option<String> {
    if let Some(actor) = std::env::var("PAVED_ACTOR").ok().filter(|a| !a.trim().is_empty()) {
        return Some(actor);
    }
    ["user.email", "user.name"].iter().find_map(|key| {
        let out = std::process::Command::new("git").args(["config", "--get", key]).output().ok()?;
        let value = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !value.is_empty()).then_some(value)
    })
}

/// The error for a configuration section whose backend this build does not have.
#[cfg(any(not(feature = "policy"), not(feature = "notify")))]
fn missing_feature(config: &OrgConfig, section: &str, feature: &str) -> crate::Error {
    crate::Error::Config {
        path: config.source.clone().unwrap_or_else(|| PathBuf::from("paved.toml")),
        line: None,
        message: format!("{section} is configured, and this build of paved has no `{feature}` feature"),
        hint: Some(format!("build paved with the `{feature}` feature (the paved CLI has it by default)")),
    }
}

/// An assembled platform, with handles front ends need beside it.
#[derive(Debug, Clone)]
pub struct Assembled {
    platform: Platform,
    #[cfg(feature = "kube")]
    kube: Option<Arc<paved_kube::live::KubeTarget>>,
    /// Without the `kube` feature there is no live target to settle.
    #[cfg(not(feature = "kube"))]
    #[allow(dead_code)]
    kube: Option<()>,
}

impl Assembled {
    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The platform, owned.
    pub fn into_platform(self) -> Platform {
        self.platform
    }

    /// Waits for background work of the deploy targets (the kube target restoring a release
    /// after a cancelled deploy) and returns what it reports.
    pub async fn settle(&self) -> Vec<String> {
        #[cfg(feature = "kube")]
        if let Some(kube) = &self.kube {
            return kube.settle().await;
        }
        Vec::new()
    }
}

#[cfg(all(feature = "kube", feature = "aws"))]
mod eks {
    //! EKS tokens signed by the AWS backend, as the kube target's token source.

    use async_trait::async_trait;

    /// [`crate::aws::EksTokens`] as a [`paved_kube::live::TokenSource`].
    pub(super) struct Tokens(pub(super) crate::aws::EksTokens);

    #[async_trait]
    impl paved_kube::live::TokenSource for Tokens {
        async fn token(&self) -> crate::Result<crate::secrecy::SecretString> {
            self.0.token().await
        }
    }
}

mod backends {
    //! Secret stores and database provisioners of the configuration, per backend feature.

    use super::*;
    #[cfg(any(feature = "notify", feature = "vault", feature = "aws"))]
    use crate::SecretStore;
    use crate::{DatabaseServer, Error, PlatformBuilder, suggest};

    /// The database backends compiled into this build.
    const DATABASE_BACKENDS: &[&str] = &[
        #[cfg(feature = "vault")]
        "vault",
        #[cfg(feature = "aws")]
        "aws-rds",
        #[cfg(feature = "aws")]
        "aws-docdb",
    ];

    /// The backends of one configuration.
    pub(super) struct Backends {
        #[cfg(feature = "vault")]
        vault: Option<lazy::LazyVault>,
        /// AWS when `[aws]` is present or a database server is on AWS (connected on first use).
        #[cfg(feature = "aws")]
        aws: Option<crate::aws::Aws>,
    }

    impl Backends {
        #[cfg_attr(not(any(feature = "vault", feature = "aws")), allow(unused_variables))]
        pub(super) fn from_config(config: &OrgConfig, lookup: &Lookup) -> Result<Self> {
            Ok(Backends {
                #[cfg(feature = "vault")]
                vault: lazy::LazyVault::from_config(config, lookup)?,
                #[cfg(feature = "aws")]
                aws: {
                    // A bad [aws] section is an error here, whether or not AWS is used.
                    let settings = crate::aws::AwsSettings::from_org_config(config)?;
                    let used = config.aws.is_some() || config.databases.values().any(|s| s.backend.starts_with("aws-"));
                    used.then(|| crate::aws::Aws::with_lookup(settings, lookup.clone()))
                },
            })
        }

        /// The store notifier secrets are read from: each reference from the store of its
        /// scheme (Vault, AWS Secrets Manager).
        #[cfg(feature = "notify")]
        pub(super) fn default_store(&self) -> Option<Arc<dyn SecretStore>> {
            let mut stores: Vec<(crate::SecretScheme, Arc<dyn SecretStore>)> = Vec::new();
            #[cfg(feature = "vault")]
            if let Some(v) = &self.vault {
                stores.push((crate::SecretScheme::Vault, Arc::new(v.clone())));
            }
            #[cfg(feature = "aws")]
            if let Some(aws) = &self.aws {
                stores.push((
                    crate::SecretScheme::AwsSecretsManager,
                    Arc::new(crate::aws::SecretsManagerStore::new(aws.clone())),
                ));
            }
            match stores.len() {
                0 => None,
                1 => stores.pop().map(|(_, s)| s),
                _ => Some(Arc::new(ByScheme(stores))),
            }
        }

        /// Registers the AWS parts that are not database servers: the Secrets Manager store,
        /// the CloudWatch dashboards of the AWS servers' databases, the SNS notifier.
        #[cfg(feature = "aws")]
        fn register_aws(&self, mut builder: PlatformBuilder, config: &OrgConfig) -> PlatformBuilder {
            use crate::aws::{CloudWatchDashboards, DatabaseKind, SecretsManagerStore, SnsNotifier};
            let Some(aws) = &self.aws else { return builder };
            builder =
                builder.secret_store(crate::SecretScheme::AwsSecretsManager, SecretsManagerStore::new(aws.clone()));
            let settings = aws.settings();
            let servers: Vec<(&String, DatabaseKind)> = config
                .databases
                .iter()
                .filter_map(|(name, s)| match s.backend.as_str() {
                    "aws-rds" => Some((name, DatabaseKind::Rds)),
                    "aws-docdb" => Some((name, DatabaseKind::DocumentDb)),
                    _ => None,
                })
                .collect();
            if settings.dashboards.enabled && !servers.is_empty() {
                let monitor = servers
                    .into_iter()
                    .fold(CloudWatchDashboards::new(aws.clone()), |m, (n, k)| m.server(n.clone(), k));
                builder = builder.database_monitor(Arc::new(monitor));
            }
            if let Some(sns) = &settings.sns {
                builder = builder.notifier(Arc::new(SnsNotifier::new(aws.clone(), sns.topic_arn.clone())));
            }
            builder
        }

        /// Registers the secret stores and the configuration's database servers (without a
        /// database backend compiled in, a configured server is an error).
        #[cfg_attr(
            not(any(feature = "vault", feature = "aws")),
            allow(unreachable_code, unused_variables, unused_mut, clippy::never_loop)
        )]
        pub(super) fn register(&self, mut builder: PlatformBuilder, config: &OrgConfig) -> Result<PlatformBuilder> {
            #[cfg(feature = "vault")]
            if let Some(v) = &self.vault {
                builder = builder.secret_store(crate::SecretScheme::Vault, v.clone());
            }
            #[cfg(feature = "aws")]
            {
                builder = self.register_aws(builder, config);
            }
            for (name, server) in &config.databases {
                let path = config.source.clone().unwrap_or_else(|| PathBuf::from("paved.toml"));
                let connection_info = match server.connection_info.as_deref().map(str::parse::<crate::SecretScheme>) {
                    None => None,
                    Some(Ok(scheme)) if scheme != crate::SecretScheme::Kubernetes => Some(scheme),
                    Some(_) => {
                        let value = server.connection_info.clone().unwrap_or_default();
                        return Err(Error::Config {
                            path,
                            line: None,
                            message: format!("[databases.{name}] connection_info = {value:?} is not a secret store"),
                            hint: Some(suggest::hint_for(&value, ["vault", "aws-sm"])),
                        });
                    }
                };
                let provisioner: Arc<dyn crate::DbProvisioner> = match server.backend.as_str() {
                    #[cfg(feature = "vault")]
                    "vault" => {
                        let Some(vault) = &self.vault else {
                            return Err(Error::Config {
                                path,
                                line: None,
                                message: format!("database server {name} uses the vault backend, and Vault is not configured"),
                                hint: Some("set [vault] address in paved.toml, or VAULT_ADDR, with VAULT_TOKEN (or AppRole/Kubernetes auth) in the environment".into()),
                            });
                        };
                        Arc::new(lazy::LazyVaultDb::new(vault.clone(), config, name, server)?)
                    }
                    #[cfg(feature = "aws")]
                    "aws-rds" | "aws-docdb" => {
                        let aws = self.aws.clone().expect("AWS is set up when a server is on AWS");
                        let settings = crate::aws::AwsDbServerSettings::from_org_config(config, name)?;
                        match server.backend.as_str() {
                            "aws-rds" => Arc::new(crate::aws::RdsProvisioner::new(aws, name, server.engine, settings)?),
                            _ => Arc::new(crate::aws::DocDbProvisioner::new(aws, name, settings)),
                        }
                    }
                    other => {
                        return Err(Error::Config {
                            path,
                            line: None,
                            message: format!(
                                "database server {name}: backend \"{other}\" is not available in this build"
                            ),
                            hint: Some(match DATABASE_BACKENDS {
                                [] => "build paved with the `vault` or `aws` feature".to_string(),
                                some => suggest::hint_for(other, some.iter().copied()),
                            }),
                        });
                    }
                };
                let mut entry = DatabaseServer::new(name.clone(), server.backend.clone(), server.engine, provisioner)
                    .environments(server.environments.clone());
                if let Some(scheme) = connection_info {
                    entry = entry.connection_info(scheme);
                }
                builder = builder.database_server(entry);
            }
            Ok(builder)
        }
    }

    /// Several stores as one: a reference is read from the store of its scheme; paths (no
    /// scheme) go to the first store.
    #[cfg(feature = "notify")]
    struct ByScheme(Vec<(crate::SecretScheme, Arc<dyn SecretStore>)>);

    #[cfg(feature = "notify")]
    #[async_trait::async_trait]
    impl SecretStore for ByScheme {
        fn name(&self) -> &str {
            self.0[0].1.name()
        }
        async fn get(&self, path: &str) -> Result<crate::SecretMap> {
            self.0[0].1.get(path).await
        }
        async fn put(&self, path: &str, data: crate::SecretMap) -> Result<u64> {
            self.0[0].1.put(path, data).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>> {
            self.0[0].1.list(prefix).await
        }
        async fn delete(&self, path: &str) -> Result<()> {
            self.0[0].1.delete(path).await
        }
        async fn get_ref(&self, reference: &crate::SecretRef) -> Result<crate::SecretMap> {
            match self.0.iter().find(|(scheme, _)| *scheme == reference.scheme()) {
                Some((_, store)) => store.get_ref(reference).await,
                None => self.0[0].1.get_ref(reference).await,
            }
        }
    }

    #[cfg(feature = "vault")]
    mod lazy {
        //! Vault backends that connect (log in, read the admin password) on first use.

        use crate::secrecy::SecretString;
        use async_trait::async_trait;
        use tokio::sync::OnceCell;

        use super::*;
        use crate::config::DatabaseServerConfig;
        use crate::vault::{VaultConfig, VaultDbProvisioner, VaultDbServerSettings, VaultSecretStore, VaultSettings};
        use crate::{DatabaseInfo, DatabaseRequest, DbEngine, DbProvisioner, SecretMap, SecretRef};

        /// The Vault connection of the configuration: `[vault]` of paved.toml over the usual
        /// environment variables (tokens and AppRole secret ids only from the environment).
        pub fn vault_config(config: &OrgConfig, lookup: &dyn Fn(&str) -> Option<String>) -> Result<VaultConfig> {
            let settings = VaultSettings::from_org_config(config)?;
            Ok(VaultConfig::from_settings(&settings, lookup)?)
        }

        /// A Vault KV v2 store that logs in on first use; a configuration that cannot log in
        /// (no token) fails there, with the Vault backend's hint.
        #[derive(Clone)]
        pub(crate) struct LazyVault {
            settings: VaultSettings,
            lookup: Lookup,
            store: Arc<OnceCell<VaultSecretStore>>,
        }

        impl LazyVault {
            /// Vault when paved.toml (`[vault] address`) or the environment (`VAULT_ADDR`,
            /// `BAO_ADDR`) names one.
            pub(crate) fn from_config(config: &OrgConfig, lookup: &Lookup) -> Result<Option<Self>> {
                // A bad [vault] section is an error here, whether or not Vault is used.
                let settings = VaultSettings::from_org_config(config)?;
                let named = settings.address.is_some()
                    || ["VAULT_ADDR", "BAO_ADDR"].iter().any(|k| lookup(k).is_some_and(|v| !v.is_empty()));
                Ok(named.then(|| LazyVault { settings, lookup: lookup.clone(), store: Arc::new(OnceCell::new()) }))
            }

            /// The store, logged in on first use; an incomplete setup (no token) fails here,
            /// with the vault backend's hint.
            pub(crate) async fn store(&self) -> Result<&VaultSecretStore> {
                self.store
                    .get_or_try_init(|| async {
                        let config = VaultConfig::from_settings(&self.settings, self.lookup.as_ref())?;
                        Ok(VaultSecretStore::connect(config).await?)
                    })
                    .await
            }
        }

        #[async_trait]
        impl SecretStore for LazyVault {
            fn name(&self) -> &str {
                "vault"
            }
            async fn get(&self, path: &str) -> Result<SecretMap> {
                self.store().await?.get(path).await
            }
            async fn put(&self, path: &str, data: SecretMap) -> Result<u64> {
                self.store().await?.put(path, data).await
            }
            async fn list(&self, prefix: &str) -> Result<Vec<String>> {
                self.store().await?.list(prefix).await
            }
            async fn delete(&self, path: &str) -> Result<()> {
                self.store().await?.delete(path).await
            }
            async fn get_ref(&self, reference: &SecretRef) -> Result<SecretMap> {
                self.store().await?.get_ref(reference).await
            }
        }

        /// A Vault database provisioner for one `[databases.NAME]` server, built on first use
        /// (its admin password is read from Vault then).
        pub(crate) struct LazyVaultDb {
            vault: LazyVault,
            name: String,
            engine: DbEngine,
            server: VaultDbServerSettings,
            provisioner: OnceCell<VaultDbProvisioner>,
        }

        impl LazyVaultDb {
            /// The provisioner of server `name` of `config`; its vault settings are checked
            /// here (at their line in paved.toml), the server is contacted on first use.
            pub(crate) fn new(
                vault: LazyVault,
                config: &OrgConfig,
                name: &str,
                server: &DatabaseServerConfig,
            ) -> Result<Self> {
                let settings = VaultDbServerSettings::from_org_config(config, name)?;
                Ok(LazyVaultDb {
                    vault,
                    name: name.to_string(),
                    engine: server.engine,
                    server: settings,
                    provisioner: OnceCell::new(),
                })
            }

            async fn get(&self) -> Result<&VaultDbProvisioner> {
                self.provisioner
                    .get_or_try_init(|| async {
                        let store = self.vault.store().await?.clone();
                        let reference = &self.server.admin_password;
                        let mut data = store.get_ref(reference).await?;
                        let key = reference.key().unwrap_or("password");
                        let password: SecretString = data.remove(key).ok_or_else(|| Error::NotFound {
                            what: format!(
                                "key \"{key}\" of secret {reference} (the admin password of database server {})",
                                self.name
                            ),
                            hint: Some(format!("store it first under the key \"{key}\" at {}", reference.path())),
                        })?;
                        Ok(VaultDbProvisioner::new(store, self.server.server(self.engine, password)?))
                    })
                    .await
            }
        }

        #[async_trait]
        impl DbProvisioner for LazyVaultDb {
            fn name(&self) -> &str {
                "vault"
            }
            async fn provision(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
                self.get().await?.provision(request).await
            }
            async fn status(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
                self.get().await?.status(request).await
            }
            async fn deprovision(&self, request: &DatabaseRequest, drop_data: bool) -> Result<()> {
                self.get().await?.deprovision(request, drop_data).await
            }
        }
    }

    #[cfg(feature = "vault")]
    pub(super) use lazy::LazyVault;
    #[cfg(feature = "vault")]
    pub use lazy::vault_config;
}

#[cfg(feature = "vault")]
pub use backends::vault_config;

#[cfg(all(test, feature = "vault"))]
mod tests {
    use super::*;

    #[test]
    fn paved_toml_vault_settings_fill_in_for_the_environment_but_never_hold_credentials() {
        let config = OrgConfig::parse(
            "paved.toml",
            "[vault]\naddress = \"https://vault.internal:8200\"\napprole_role_id = \"role-1\"\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "VAULT_SECRET_ID" => Some("sid".to_string()),
            _ => None,
        };
        let c = vault_config(&config, &env).unwrap();
        assert_eq!(c.address, "https://vault.internal:8200");
        assert!(format!("{c:?}").contains("role-1") && !format!("{c:?}").contains("sid"), "{c:?}");
        // Issue 18: the environment's Vault gets the token; a paved.toml (changed in a pull
        // request) that names another address is refused, whichever variable sets it.
        for var in ["VAULT_ADDR", "BAO_ADDR"] {
            let env = |name: &str| match name {
                n if n == var => Some("https://vault.corp:8200/".to_string()),
                "VAULT_TOKEN" => Some("t".to_string()),
                _ => None,
            };
            let e = vault_config(&config, &env).unwrap_err();
            assert!(e.to_string().contains("differs from VAULT_ADDR"), "{var}: {e}");
            assert!(e.hint().unwrap().contains("remove [vault] address"), "{e:?}");
        }
        // The same address (but for a trailing slash) is fine, and the environment's role id wins.
        let env = |name: &str| match name {
            "VAULT_ADDR" => Some("https://vault.internal:8200/".to_string()),
            "VAULT_ROLE_ID" => Some("role-from-env".to_string()),
            "VAULT_SECRET_ID" => Some("sid".to_string()),
            _ => None,
        };
        let c = vault_config(&config, &env).unwrap();
        assert!(format!("{c:?}").contains("role-from-env"), "{c:?}");
        // Without a secret id in the environment, AppRole cannot log in: a clear error.
        assert!(vault_config(&config, &|_| None).is_err());
        // A token in paved.toml is refused, at its line, by the vault backend's own section.
        let config = OrgConfig::parse("paved.toml", "domain = \"example.com\"\n[vault]\ntoken = \"s.abc\"\n").unwrap();
        let e = vault_config(&config, &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("paved.toml:3: unknown field `token`"), "{e}");
        assert!(e.is_user_error());
    }

    #[tokio::test]
    async fn a_database_server_is_checked_by_its_backend_at_its_line() {
        let text = "[vault]\naddress = \"http://127.0.0.1:1\"\n\n[databases.main]\nengine = \"postgres\"\nhost = \"db\"\nadmin_user = \"x\"\nadmin_password = \"vault://secret/db#password\"\n";
        let config = OrgConfig::parse("paved.toml", text).unwrap();
        let e = Assembly::new(config).env_lookup(|_| None).build().await.unwrap_err();
        assert!(e.to_string().starts_with("paved.toml:7: unknown field `admin_user`"), "{e}");
        assert_eq!(e.hint(), Some("did you mean \"admin_username\"? (or remove the key)"));
        let text = text
            .replace("admin_user =", "admin_username =")
            .replace("[databases.main]", "[databases.main]\nbackend = \"vualt\"");
        let config = OrgConfig::parse("paved.toml", &text).unwrap();
        let e = Assembly::new(config).env_lookup(|_| None).build().await.unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"vault\"?"), "{e}");
    }
}
