//! [`Platform`]: the golden path, step by step.
//!
//! `deploy` reads top-down like the five steps of the original `platform deploy` command:
//! validate, render, check policy, resolve secrets, apply, record. Each step is a method
//! with a typed input and output, so a caller can stop after any of them
//! (`render`, `plan` for `--dry-run`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::backend::{DeployContext, Deployer, DestroyOutcome, Metrics, NoMetrics, Renderer, SecretStore};
use crate::config::OrgConfig;
use crate::config::SecretMode;
use crate::database::DatabaseServer;
use crate::error::{Error, Result};
use crate::events::{DeploymentResult, PlatformEvent, Progress, ProgressSink, Step, deployment_id};
use crate::manifest::Manifests;
use crate::names::AppName;
use crate::notify::{Notification, NotificationKind, Notifier};
use crate::policy::{Action, AllowAll, PolicyEngine, PolicyInput, PolicyReport};
use crate::release::{DeployOutcome, Release, ReleaseRecord, ReleaseStatus, Revision, SecretValues};
use crate::request::DeployRequest;
use crate::resolve::ResolvedApp;
use crate::secret::{SecretRef, SecretScheme};
use crate::suggest;

/// Everything but the apply: the resolved app, its final objects and the policy verdict.
/// What `--dry-run` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The resolved app.
    pub app: ResolvedApp,
    /// The final objects (rendered, escape hatches applied, mutated by policy).
    pub manifests: Manifests,
    /// The policy verdict (warnings only; a denial is an error).
    pub policy: PolicyReport,
    /// The deploy target that would apply it.
    pub target: String,
}

/// What [`Platform::list`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Listing {
    /// Every app's current revision and status.
    pub apps: Vec<ReleaseStatus>,
    /// Environments whose target could not be listed.
    pub unavailable: Vec<Unlisted>,
}

/// An environment that could not be listed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unlisted {
    /// The environment.
    pub environment: String,
    /// Its deploy target.
    pub target: String,
    /// The target's error.
    pub message: String,
}

/// The golden path, assembled from a renderer, deploy targets and optional policy, metrics
/// and secret store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Platform {
    pub(crate) config: Arc<OrgConfig>,
    renderer: Arc<dyn Renderer>,
    deployers: Arc<BTreeMap<String, Arc<dyn Deployer>>>,
    policy: Arc<dyn PolicyEngine>,
    /// Whether a policy engine was configured (rollbacks then read the history first).
    has_policy: bool,
    metrics: Arc<dyn Metrics>,
    /// Secret stores by the reference scheme they serve (`vault://`, `aws-sm://`).
    pub(crate) secrets: Arc<Vec<(SecretScheme, Arc<dyn SecretStore>)>>,
    /// Database servers by name, each with its provisioner.
    pub(crate) databases: Arc<Vec<DatabaseServer>>,
    /// Where the owning team hears about deploys, rollbacks and databases.
    notifier: Option<Arc<dyn Notifier>>,
    pub(crate) notify_timeout: Duration,
    /// The monitoring hook of the database golden path, if any.
    pub(crate) database_monitor: Option<Arc<dyn crate::database::DatabaseMonitor>>,
    progress: Option<ProgressSink>,
    actor: String,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config.source)
            .field("targets", &self.deployers.keys().collect::<Vec<_>>())
            .field(
                "secret_stores",
                &self
                    .secrets
                    .iter()
                    .map(|(scheme, s)| format!("{}: {}", scheme.as_str(), s.name()))
                    .collect::<Vec<_>>(),
            )
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Platform`]. A renderer and at least one deploy target are required; policy
/// defaults to [`AllowAll`], metrics to [`NoMetrics`].
#[derive(Default)]
pub struct PlatformBuilder {
    config: Option<OrgConfig>,
    renderer: Option<Arc<dyn Renderer>>,
    deployers: BTreeMap<String, Arc<dyn Deployer>>,
    policy: Option<Arc<dyn PolicyEngine>>,
    metrics: Option<Arc<dyn Metrics>>,
    secrets: Vec<(SecretScheme, Arc<dyn SecretStore>)>,
    databases: Vec<DatabaseServer>,
    notifiers: Vec<Arc<dyn Notifier>>,
    notify_timeout: Option<Duration>,
    database_monitor: Option<Arc<dyn crate::database::DatabaseMonitor>>,
    progress: Option<ProgressSink>,
    actor: Option<String>,
}

impl PlatformBuilder {
    /// The organisation configuration (default: the built-in defaults).
    pub fn config(mut self, config: OrgConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The renderer (required).
    pub fn renderer(mut self, renderer: impl Renderer + 'static) -> Self {
        self.renderer = Some(Arc::new(renderer));
        self
    }

    /// Adds a deploy target under its [`Deployer::name`]; environments choose one by name.
    pub fn deployer(mut self, deployer: impl Deployer + 'static) -> Self {
        self.deployers.insert(deployer.name().to_string(), Arc::new(deployer));
        self
    }

    /// Adds a shared deploy target.
    pub fn shared_deployer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.deployers.insert(deployer.name().to_string(), deployer);
        self
    }

    /// The policy engine (default: allow all).
    pub fn policy(mut self, policy: impl PolicyEngine + 'static) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Where platform events go (default: nowhere).
    pub fn metrics(mut self, metrics: impl Metrics + 'static) -> Self {
        self.metrics = Some(Arc::new(metrics));
        self
    }

    /// The secret store that resolves references of `scheme` (`vault://`, `aws-sm://`); one
    /// store per scheme, a later one replaces an earlier one. `k8s://` references name
    /// Secrets in the cluster and need no store.
    pub fn secret_store(self, scheme: SecretScheme, store: impl SecretStore + 'static) -> Self {
        self.shared_secret_store(scheme, Arc::new(store))
    }

    /// [`PlatformBuilder::secret_store`] with a shared store.
    pub fn shared_secret_store(mut self, scheme: SecretScheme, store: Arc<dyn SecretStore>) -> Self {
        self.secrets.retain(|(s, _)| *s != scheme);
        self.secrets.push((scheme, store));
        self
    }

    /// Registers a database server and its provisioner; a server of the same name is replaced.
    pub fn database_server(mut self, server: DatabaseServer) -> Self {
        self.databases.retain(|s| s.name != server.name);
        self.databases.push(server);
        self
    }

    /// Adds a notifier: the owning team hears about deploys, rollbacks, failed rollouts and
    /// databases through every notifier added.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// The monitoring hook of the database golden path (a dashboard per database); runs best
    /// effort within the notification timeout.
    pub fn database_monitor(mut self, monitor: Arc<dyn crate::database::DatabaseMonitor>) -> Self {
        self.database_monitor = Some(monitor);
        self
    }

    /// How long one notification may take before it is given up with a warning
    /// (default 5 s). A slow or unreachable receiver never fails or blocks an action longer.
    pub fn notify_timeout(mut self, timeout: Duration) -> Self {
        self.notify_timeout = Some(timeout);
        self
    }

    /// A callback for progress reports.
    pub fn on_progress(mut self, sink: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(sink));
        self
    }

    /// Who is deploying (default: `$PAVED_ACTOR`, else `$USER`, `$LOGNAME`, `$USERNAME`, else `unknown`).
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Builds the platform.
    pub fn build(self) -> Result<Platform> {
        let renderer = self.renderer.ok_or_else(|| {
            Error::backend(
                "platform",
                "no renderer configured",
                Some("add one with .renderer(paved_kube::KubeRenderer::default())".into()),
            )
        })?;
        if self.deployers.is_empty() {
            return Err(Error::backend(
                "platform",
                "no deploy target configured",
                Some("add one with .deployer(paved_kube::GitOpsTarget::new(state_dir))".into()),
            ));
        }
        let actor = self.actor.unwrap_or_else(|| {
            ["PAVED_ACTOR", "USER", "LOGNAME", "USERNAME"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| "unknown".into())
        });
        Ok(Platform {
            config: Arc::new(self.config.unwrap_or_default()),
            renderer,
            deployers: Arc::new(self.deployers),
            has_policy: self.policy.is_some(),
            policy: self.policy.unwrap_or_else(|| Arc::new(AllowAll)),
            metrics: self.metrics.unwrap_or_else(|| Arc::new(NoMetrics)),
            secrets: Arc::new(self.secrets),
            databases: Arc::new(self.databases),
            notifier: match self.notifiers.len() {
                0 => None,
                1 => self.notifiers.into_iter().next(),
                _ => Some(Arc::new(crate::notify::Notifiers::new(self.notifiers))),
            },
            notify_timeout: self.notify_timeout.unwrap_or(Duration::from_secs(5)),
            database_monitor: self.database_monitor,
            progress: self.progress,
            actor,
        })
    }
}

impl Platform {
    /// Starts building a platform.
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder::default()
    }

    /// The organisation configuration.
    pub fn config(&self) -> &OrgConfig {
        &self.config
    }

    pub(crate) fn progress(&self, step: Step, message: impl FnOnce() -> String) {
        // Every step is a debug log too, for embedders without a progress sink.
        let logged = tracing::enabled!(tracing::Level::DEBUG);
        if self.progress.is_none() && !logged {
            return;
        }
        let message = message();
        if logged {
            tracing::debug!(?step, "{message}");
        }
        if let Some(sink) = &self.progress {
            sink(&Progress { step, message, done: None });
        }
    }

    /// The context handed to deploy targets: progress goes to this platform's sink.
    fn context(&self) -> DeployContext {
        match &self.progress {
            Some(sink) => DeployContext::new().with_progress(sink.clone()),
            None => DeployContext::new(),
        }
    }

    pub(crate) async fn record(&self, event: PlatformEvent) {
        if let Err(e) = self.metrics.record(&event).await {
            tracing::warn!(error = %e, "could not record a platform event");
        }
    }

    /// Tells the owning team, best effort: a receiver that fails or is slower than the
    /// notify timeout is reported as a warning (log, progress and a
    /// [`PlatformEvent::NotificationFailed`] event), never as an error.
    pub(crate) async fn notify(&self, notification: Notification) -> Option<String> {
        let notifier = self.notifier.as_ref()?;
        // notify_best_effort has logged the warning already.
        let warning = crate::notify::notify_best_effort(notifier.as_ref(), &notification, self.notify_timeout).await?;
        self.progress(Step::Record, || format!("⚠️  {warning}"));
        self.record(PlatformEvent::NotificationFailed {
            service: notification.app.clone(),
            team: notification.team.clone(),
            environment: notification.environment.clone(),
            notifier: notifier.name().to_string(),
            reason: warning.clone(),
        })
        .await;
        Some(warning)
    }

    /// The deploy target of an environment.
    pub fn target_for(&self, environment: &str) -> Result<&Arc<dyn Deployer>> {
        let env = self.config.environment(environment)?;
        self.deployers.get(&env.config.target).ok_or_else(|| {
            let names: Vec<&str> = self.deployers.keys().map(String::as_str).collect();
            Error::Config {
                path: self.config.source.clone().unwrap_or_else(|| "<built-in configuration>".into()),
                line: None,
                message: format!(
                    "environment {} uses target \"{}\", which is not available here",
                    env.name, env.config.target
                ),
                hint: Some(suggest::hint_for(&env.config.target, names.iter().copied())),
            }
        })
    }

    /// Step 1, *validate*: checks the request against the configuration and fills in every default.
    pub fn validate(&self, request: &DeployRequest) -> Result<ResolvedApp> {
        let app = ResolvedApp::resolve(&self.config, request)?;
        let target = self.target_for(&app.environment.name)?;
        let stored = app.secrets.iter().filter(|b| b.reference.scheme() != SecretScheme::Kubernetes);
        for binding in stored.clone() {
            let r = &binding.reference;
            // Agent mode: the Vault Agent Injector reads vault://, the AWS Secrets and
            // Configuration Provider aws-sm://; nothing reads other schemes in the pod.
            if app.secret_mode == SecretMode::Agent
                && !matches!(r.scheme(), SecretScheme::Vault | SecretScheme::AwsSecretsManager)
            {
                return Err(Error::invalid(
                    "secret",
                    r.to_string(),
                    "no agent in the pod reads this kind of reference (secret mode \"agent\" reads vault:// and aws-sm://)",
                    Some(
                        "use a vault:// or aws-sm:// reference, or set [secrets] mode = \"sync\" in paved.toml and deploy to the `target` kube"
                            .into(),
                    ),
                ));
            }
        }
        if app.secret_mode == SecretMode::Sync
            && stored.clone().next().is_some()
            && !target.capabilities().secret_values
        {
            return Err(Error::invalid(
                "secret",
                stored.clone().map(|b| b.reference.to_string()).collect::<Vec<_>>().join(", "),
                format!("secret mode \"sync\" would write secret values into the {} target", target.name()),
                Some("a git repository is no place for secret values: set [secrets] mode = \"agent\" in paved.toml (Vault Agent Injector), or deploy to the `target` kube".into()),
            ));
        }
        for binding in stored {
            self.secret_store_for(&binding.reference)?;
        }
        self.progress(Step::Validate, || format!("validated {} for {}", app.app, app.environment.name));
        Ok(app)
    }

    /// Step 2, *render*: the app's objects, escape hatches applied last.
    pub fn render(&self, app: &ResolvedApp) -> Result<Manifests> {
        let manifests = self.renderer.render(app)?;
        crate::containment::check_release(&manifests, &app.namespace, &app.grants)?;
        self.progress(Step::Render, || format!("rendered {} objects", manifests.len()));
        Ok(manifests)
    }

    /// Step 3, *policy*: evaluates the organisation's policies on the final objects.
    /// A denial is [`Error::PolicyDenied`]; mutations replace the objects.
    pub async fn check_policy(
        &self,
        action: Action,
        app: &ResolvedApp,
        manifests: Manifests,
    ) -> Result<(Manifests, PolicyReport)> {
        let input = PolicyInput {
            action,
            app: app.app.as_str(),
            team: app.team.as_str(),
            environment: &app.environment.name,
            image: Some(app.image.as_str()),
            replicas: Some(app.replicas),
            escape_hatches: &app.escape_hatches,
            database: None,
            objects: &manifests,
        };
        let mut report = self.evaluate_policy(&input).await?;
        let manifests = report.mutated.take().unwrap_or(manifests);
        Ok((manifests, report))
    }

    /// The policy check of a database request (action `provision-database`), before anything
    /// is created. A denial is [`Error::PolicyDenied`].
    pub async fn check_database_policy(&self, request: &crate::request::DatabaseRequest) -> Result<PolicyReport> {
        self.check_database_action(Action::ProvisionDatabase, request).await
    }

    /// The policy check of a database action (`provision-database`, `deprovision-database`).
    pub(crate) async fn check_database_action(
        &self,
        action: Action,
        request: &crate::request::DatabaseRequest,
    ) -> Result<PolicyReport> {
        let objects = Manifests::default();
        let input = PolicyInput {
            action,
            app: request.service.as_str(),
            team: request.team.as_str(),
            environment: &request.environment,
            image: None,
            replicas: None,
            escape_hatches: &[],
            database: Some(crate::policy::DatabaseInput {
                engine: request.engine.as_str(),
                size: request.size.as_str(),
            }),
            objects: &objects,
        };
        self.evaluate_policy(&input).await
    }

    /// Evaluates the policies on one action, records the decision, reports warnings as
    /// progress and turns denials into [`Error::PolicyDenied`].
    pub async fn evaluate_policy(&self, input: &PolicyInput<'_>) -> Result<PolicyReport> {
        let started = std::time::Instant::now();
        let report = self.policy.evaluate(input).await?;
        let duration_seconds = started.elapsed().as_secs_f64();
        let denials = report.denials().count();
        let warnings = report.warnings().count();
        self.record(PlatformEvent::PolicyDecision {
            action: input.action,
            service: input.app.to_string(),
            team: input.team.to_string(),
            environment: input.environment.to_string(),
            allowed: denials == 0,
            denials,
            warnings,
            policies: report.evaluated.clone(),
            duration_seconds,
        })
        .await;
        if denials > 0 {
            return Err(Error::PolicyDenied { violations: report.denials().cloned().collect() });
        }
        for w in report.warnings() {
            self.progress(Step::Policy, || format!("⚠️  {w}"));
        }
        let (p, w) = (crate::hint::plural, crate::hint::plural(warnings, "warning"));
        self.progress(Step::Policy, || match (report.evaluated.len(), report.baseline.len()) {
            (0, _) => "policy: no policies configured".to_string(),
            (n, 0) => format!("policy: allowed by {} ({w})", p(n, "policy")),
            (n, b) if n == b => format!("policy: allowed by the baseline, {} ({w})", p(b, "policy")),
            (n, b) => format!("policy: allowed by {}, {b} of them the baseline ({w})", p(n, "policy")),
        });
        Ok(report)
    }

    /// The secret store that serves a reference's scheme; an error names the scheme when none
    /// is configured for it.
    pub fn secret_store_for(&self, reference: &SecretRef) -> Result<&Arc<dyn SecretStore>> {
        let scheme = reference.scheme();
        if let Some((_, store)) = self.secrets.iter().find(|(s, _)| *s == scheme) {
            return Ok(store);
        }
        let configured: Vec<&str> = self.secrets.iter().map(|(s, _)| s.as_str()).collect();
        let hint = match scheme {
            SecretScheme::Vault => "configure the vault backend ([vault] address in paved.toml, or VAULT_ADDR, with VAULT_TOKEN in the environment)".to_string(),
            SecretScheme::AwsSecretsManager => "configure the AWS Secrets Manager backend ([aws] in paved.toml)".to_string(),
            _ => "reference an existing Kubernetes Secret with k8s://NAME#KEY".to_string(),
        };
        let hint = match configured.as_slice() {
            [] => format!("{hint}, or reference an existing Kubernetes Secret with k8s://NAME#KEY"),
            some => format!("{hint}; configured here: {}", some.join(", ")),
        };
        Err(Error::invalid(
            "secret",
            reference.to_string(),
            format!("needs a {} secret store, and none is configured", scheme.as_str()),
            Some(hint),
        ))
    }

    /// Step 4, *secrets*: checks that every referenced secret exists, before anything is applied.
    pub async fn check_secrets(&self, app: &ResolvedApp) -> Result<()> {
        for binding in app.secrets.iter().filter(|b| b.reference.scheme() != SecretScheme::Kubernetes) {
            let r = &binding.reference;
            // Again here: a plan can be built without `validate`.
            self.config.secrets.check_reference(&app.team, app.app.as_str(), &app.environment.name, r)?;
            let data = self.secret_store_for(r)?.get_ref(r).await.map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound {
                    what: format!("secret {r}"),
                    hint: Some(format!("create it first with `SecretStore::put` at {} KEY=VALUE", r.path())),
                },
                other => other,
            })?;
            if let Some(key) = r.key()
                && !data.contains_key(key)
            {
                let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                return Err(Error::NotFound {
                    what: format!("key \"{key}\" of secret {r}"),
                    hint: Some(suggest::hint_for(key, keys.iter().copied())),
                });
            }
        }
        if !app.secrets.is_empty() {
            self.progress(Step::Secrets, || format!("resolved {} secret references", app.secrets.len()));
        }
        Ok(())
    }

    /// In `sync` secret mode, the values of the app's secret references by env var name (read
    /// just before applying, never kept in a plan); empty otherwise.
    async fn secret_values(&self, app: &ResolvedApp) -> Result<SecretValues> {
        let mut values = SecretValues::default();
        if app.secret_mode != SecretMode::Sync {
            return Ok(values);
        }
        for binding in app.secrets.iter().filter(|b| b.reference.scheme() != SecretScheme::Kubernetes) {
            let r = &binding.reference;
            self.config.secrets.check_reference(&app.team, app.app.as_str(), &app.environment.name, r)?;
            let mut data = self.secret_store_for(r)?.get_ref(r).await?;
            let key = r.key().unwrap_or(binding.env.as_str());
            let value = data.remove(key).ok_or_else(|| Error::NotFound {
                what: format!("key \"{key}\" of secret {r}"),
                hint: Some("check the reference; `SecretStore::get` shows the keys".into()),
            })?;
            values.0.insert(binding.env.clone(), value);
        }
        Ok(values)
    }

    /// Everything but the apply: validate, render, policy, secrets.
    pub async fn plan(&self, request: &DeployRequest) -> Result<Plan> {
        let app = self.validate(request)?;
        let rendered = self.render(&app)?;
        let (manifests, policy) = self.check_policy(Action::Deploy, &app, rendered).await?;
        self.check_secrets(&app).await?;
        let target = app.environment.config.target.clone();
        Ok(Plan { app, manifests, policy, target })
    }

    /// Steps 1 to 4 for a request whose workload needs databases (a Score file's `postgres`,
    /// `mysql`, `mongodb` resources): the request, every database's server and the policies
    /// are checked before anything exists; then, with `provision`, each database is provisioned
    /// through the database path (idempotently: an existing one is reused) and every secret
    /// reference is checked. Without `provision` (a dry run) nothing is created, and the
    /// references into connection info that does not exist yet are not looked up.
    pub async fn plan_with_databases(
        &self,
        request: &DeployRequest,
        databases: &[crate::request::DatabaseRequest],
        provision: bool,
    ) -> Result<Plan> {
        let app = self.validate(request)?;
        let any = crate::database::DatabaseSelector::any();
        for db in databases {
            self.validate_database(db, &any)?;
        }
        let rendered = self.render(&app)?;
        let (manifests, policy) = self.check_policy(Action::Deploy, &app, rendered).await?;
        // Everything that can refuse the deploy is asked before a database is created: each
        // database's policy, and every secret that does not live in a database's connection info.
        for db in databases {
            self.check_database_policy(db).await?;
        }
        let pending: Vec<String> = databases.iter().map(crate::database::connection_info_path).collect();
        let mut known = app.clone();
        known.secrets.retain(|b| {
            let path = b.reference.path();
            !pending.iter().any(|p| path == p || path.ends_with(&format!("/{p}")))
        });
        self.check_secrets(&known).await?;
        if provision {
            for db in databases {
                self.provision_database(db, &any).await?;
            }
            self.check_secrets(&app).await?;
        }
        let target = app.environment.config.target.clone();
        Ok(Plan { app, manifests, policy, target })
    }

    /// Step 5, *apply* (and record): hands a plan to its deploy target.
    pub async fn apply(&self, plan: Plan) -> Result<DeployOutcome> {
        let deployer = self.target_for(&plan.app.environment.name)?.clone();
        let started_at = OffsetDateTime::now_utc();
        let app = &plan.app;
        let id = deployment_id(app.app.as_str(), &app.environment.name, started_at);
        self.record(PlatformEvent::DeploymentStarted {
            id: id.clone(),
            service: app.app.to_string(),
            team: app.team.to_string(),
            environment: app.environment.name.clone(),
            image: app.image.to_string(),
            action: Action::Deploy,
            started_at,
        })
        .await;
        let mut release = Release::new(plan.app, plan.manifests, self.actor.clone(), plan.policy);
        // Every started deployment records a finish: a failure reading the secret values
        // (before anything is applied) is a failed deployment too.
        let result = match self.secret_values(&release.app).await {
            Ok(values) => {
                release.secret_values = values;
                self.progress(Step::Apply, || format!("applying to {}", deployer.name()));
                deployer.deploy(&release, &self.context()).await
            }
            Err(e) => Err(e),
        };
        let (outcome, revision, error) = match &result {
            Ok(o) if o.changed => (DeploymentResult::Success, Some(o.record.revision), None),
            Ok(o) => (DeploymentResult::Unchanged, Some(o.record.revision), None),
            Err(e @ Error::Rollout { restored: Some(rev), .. }) => {
                (DeploymentResult::RolledBack, Some(*rev), Some(e.to_string()))
            }
            // Applied and not restored: it reached production, and failed there.
            Err(e @ Error::Rollout { restored: None, .. }) => {
                (DeploymentResult::RolloutFailed, None, Some(e.to_string()))
            }
            Err(e) => (DeploymentResult::Failure, None, Some(e.to_string())),
        };
        let app = &release.app;
        self.record(PlatformEvent::DeploymentFinished {
            id,
            service: app.app.to_string(),
            team: app.team.to_string(),
            environment: app.environment.name.clone(),
            image: app.image.to_string(),
            action: Action::Deploy,
            result: outcome,
            revision,
            started_at,
            finished_at: OffsetDateTime::now_utc(),
            escape_hatches: app.escape_hatches.clone(),
            commits: app.commits.clone(),
            error,
        })
        .await;
        let notification = match &result {
            Ok(o) if o.changed => Some(Notification::for_release(NotificationKind::Deployed, &o.record)),
            Ok(_) => None,
            Err(e) => {
                let kind = match e {
                    Error::Rollout { .. } => NotificationKind::RolloutFailed,
                    _ => NotificationKind::DeployFailed,
                };
                Some(
                    Notification::new(kind, app.team.as_str(), app.app.as_str(), &app.environment.name)
                        .with_actor(&self.actor)
                        .with_detail(e.to_string()),
                )
            }
        };
        if let Some(n) = notification {
            self.notify(n).await;
        }
        if let Ok(o) = &result {
            self.progress(Step::Record, || match o.changed {
                true => format!("recorded revision {}", o.record.revision),
                false => format!("unchanged: revision {} is already current", o.record.revision),
            });
        }
        result.map(|mut o| {
            o.policy = release.policy;
            o
        })
    }

    /// The golden path: validate, render, policy, secrets, apply, record.
    pub async fn deploy(&self, request: &DeployRequest) -> Result<DeployOutcome> {
        let plan = self.plan(request).await?;
        self.apply(plan).await
    }

    /// The current revision of an app in an environment.
    pub async fn status(&self, app: &AppName, environment: &str) -> Result<ReleaseStatus> {
        self.target_for(environment)?.status(&crate::ReleaseKey::new(app.clone(), environment)).await
    }

    /// The revisions of an app in an environment, newest first.
    pub async fn history(&self, app: &AppName, environment: &str) -> Result<Vec<ReleaseRecord>> {
        self.target_for(environment)?.history(&crate::ReleaseKey::new(app.clone(), environment)).await
    }

    /// Restores revision `to` (default: the previous one) as a new revision.
    pub async fn rollback(&self, app: &AppName, environment: &str, to: Option<Revision>) -> Result<DeployOutcome> {
        let deployer = self.target_for(environment)?.clone();
        if self.has_policy {
            self.check_rollback_policy(deployer.as_ref(), app, environment, to).await?;
        }
        let started_at = OffsetDateTime::now_utc();
        let key = crate::ReleaseKey::new(app.clone(), environment);
        let result = deployer.rollback(&key, to, &self.actor, &self.context()).await;
        // What the user named that does not exist (no release, an unknown revision) started
        // nothing: it is reported, not recorded.
        if let Err(e) = &result
            && e.is_user_error()
        {
            return result;
        }
        let id = deployment_id(app.as_str(), environment, started_at);
        let finished_at = OffsetDateTime::now_utc();
        // A failed rollback belongs to the team of the app's newest revision (the target's
        // history); only when that cannot be read, to the configuration's default team.
        let owner = match &result {
            Ok(o) => o.record.team.clone(),
            Err(_) => match deployer.history(&key).await {
                Ok(history) => history.first().map(|r| r.team.clone()),
                Err(_) => None,
            }
            .unwrap_or_else(|| self.config.default_team.to_string()),
        };
        let event = match &result {
            Ok(o) => {
                let r = &o.record;
                PlatformEvent::DeploymentFinished {
                    id,
                    service: r.app.clone(),
                    team: r.team.clone(),
                    environment: r.environment.clone(),
                    image: r.image.clone(),
                    action: Action::Rollback,
                    result: DeploymentResult::Success,
                    revision: Some(r.revision),
                    started_at,
                    finished_at,
                    escape_hatches: r.escape_hatches.clone(),
                    commits: Vec::new(),
                    error: None,
                }
            }
            // A failed rollback is recorded too (it counts where failures count).
            Err(e) => PlatformEvent::DeploymentFinished {
                id,
                service: app.to_string(),
                team: owner.clone(),
                environment: environment.to_string(),
                image: String::new(),
                action: Action::Rollback,
                result: match e {
                    Error::Rollout { restored: Some(_), .. } => DeploymentResult::RolledBack,
                    Error::Rollout { restored: None, .. } => DeploymentResult::RolloutFailed,
                    _ => DeploymentResult::Failure,
                },
                revision: match e {
                    Error::Rollout { restored, .. } => *restored,
                    _ => None,
                },
                started_at,
                finished_at,
                escape_hatches: Vec::new(),
                commits: Vec::new(),
                error: Some(e.to_string()),
            },
        };
        self.record(event).await;
        let notification = match &result {
            Ok(o) => Notification::for_release(NotificationKind::RolledBack, &o.record),
            Err(e) => Notification::new(NotificationKind::RollbackFailed, owner.as_str(), app.as_str(), environment)
                .with_actor(&self.actor)
                .with_detail(e.to_string()),
        };
        self.notify(notification).await;
        result
    }

    /// The policy check of a rollback: the request as the restored revision was deployed
    /// (image, replicas, team, escape hatches). Its objects passed the policies when that
    /// revision was deployed; a rollback policy decides whether going back is allowed.
    async fn check_rollback_policy(
        &self,
        deployer: &dyn Deployer,
        app: &AppName,
        environment: &str,
        to: Option<Revision>,
    ) -> Result<()> {
        let key = crate::ReleaseKey::new(app.clone(), environment);
        let mut history = deployer.history(&key).await?;
        history.reverse();
        // No such revision: the target's own rollback reports it with a hint.
        let Some(current) = crate::bookkeeping::current(&history) else { return Ok(()) };
        let Ok(record) = crate::bookkeeping::rollback_target(&key, &history, current, to) else { return Ok(()) };
        // The objects the rollback would restore, when the target keeps them: they pass the
        // same bounds and policies as a deploy (a stored record is input like any other file).
        let objects = deployer.revision_objects(&key, record.revision).await?.unwrap_or_default();
        if let Some(namespace) = objects.iter().find(|o| o.kind() == "Deployment").and_then(|o| o.namespace()) {
            let team = crate::names::Team::new(record.team.clone()).ok();
            let grants = team.map(|t| self.config.grants_of_app(app.as_str(), &t).to_vec()).unwrap_or_default();
            crate::containment::check_release(&objects, namespace, &grants)?;
        }
        let input = PolicyInput {
            action: Action::Rollback,
            app: app.as_str(),
            team: &record.team,
            environment,
            image: Some(&record.image),
            replicas: Some(record.replicas),
            escape_hatches: &record.escape_hatches,
            database: None,
            objects: &objects,
        };
        self.evaluate_policy(&input).await.map(drop)
    }

    /// The current revision of every app, with the target's status of each, ordered by
    /// environment and app name: in `environment`, or in every environment of the
    /// configuration. For one environment a target that fails fails the listing; for all, the
    /// environments of a target that cannot be listed (a cluster out of reach) are named in
    /// [`Listing::unavailable`] and the others are listed.
    pub async fn list(&self, environment: Option<&str>) -> Result<Listing> {
        let environments: Vec<String> = match environment {
            Some(env) => vec![self.config.environment(env)?.name],
            None => self.config.environments.keys().cloned().collect(),
        };
        let mut listing = Listing::default();
        // One listing per target; each holds the apps of every environment it serves.
        let mut listed: BTreeMap<String, std::result::Result<Vec<ReleaseRecord>, String>> = BTreeMap::new();
        for env in &environments {
            let deployer = self.target_for(env)?;
            if !listed.contains_key(deployer.name()) {
                let records = match deployer.list().await {
                    Ok(records) => Ok(records),
                    Err(e) if environment.is_none() => Err(e.to_string()),
                    Err(e) => return Err(e),
                };
                listed.insert(deployer.name().to_string(), records);
            }
            let records = match &listed[deployer.name()] {
                Ok(records) => records,
                Err(message) => {
                    listing.unavailable.push(Unlisted {
                        environment: env.clone(),
                        target: deployer.name().to_string(),
                        message: message.clone(),
                    });
                    continue;
                }
            };
            let mut mine: Vec<&ReleaseRecord> = records.iter().filter(|r| &r.environment == env).collect();
            mine.sort_by(|a, b| a.app.cmp(&b.app));
            for record in mine {
                let key = crate::ReleaseKey::new(AppName::new(record.app.as_str())?, env.as_str());
                listing.apps.push(deployer.status(&key).await?);
            }
        }
        Ok(listing)
    }

    /// What applying `plan` would give, without applying anything: the record of the
    /// revision it would write, or the current one when nothing would change (`changed`
    /// false); `location` names the target. The result of a dry run.
    pub async fn preview(&self, plan: &Plan) -> Result<DeployOutcome> {
        let deployer = self.target_for(&plan.app.environment.name)?;
        let key = crate::ReleaseKey::new(plan.app.app.clone(), plan.app.environment.name.as_str());
        let mut history = deployer.history(&key).await?;
        history.reverse();
        let release = Release::new(plan.app.clone(), plan.manifests.clone(), self.actor.clone(), plan.policy.clone());
        let (record, changed) = match crate::bookkeeping::unchanged(&history, &release.digest) {
            Some(current) => (current.clone(), false),
            None => (crate::bookkeeping::new_record(&history, &release), true),
        };
        let mut outcome = DeployOutcome::new(record, changed, deployer.name());
        outcome.policy = release.policy;
        Ok(outcome)
    }

    /// The objects of the current revision of an app, with its number; `None` when the app
    /// has no current revision in the environment.
    pub async fn current_objects(&self, app: &AppName, environment: &str) -> Result<Option<(Revision, Manifests)>> {
        let deployer = self.target_for(environment)?;
        let key = crate::ReleaseKey::new(app.clone(), environment);
        let mut history = deployer.history(&key).await?;
        // `history` is newest first; `current` reads oldest first.
        history.reverse();
        let Some(current) = crate::bookkeeping::current(&history) else { return Ok(None) };
        let revision = current.revision;
        Ok(deployer.revision_objects(&key, revision).await?.map(|m| (revision, m)))
    }

    /// Removes everything the environment's target created for an app (objects and history).
    pub async fn destroy(&self, app: &AppName, environment: &str) -> Result<DestroyOutcome> {
        let deployer = self.target_for(environment)?.clone();
        let key = crate::ReleaseKey::new(app.clone(), environment);
        if !deployer.capabilities().destroy {
            return Err(crate::backend::cannot_destroy(deployer.name(), &key));
        }
        self.progress(Step::Apply, || format!("destroying {key} with {}", deployer.name()));
        deployer.destroy(&key, &self.context()).await
    }
}
