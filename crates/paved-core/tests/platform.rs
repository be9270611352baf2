//! `Platform` against the in-memory reference backends of `paved-testkit`: every step of the
//! deploy and database golden paths, every failure path, and what each records and tells.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{
    AppName, DatabaseRequest, DatabaseSelector, DatabaseServer, DatabaseState, DbEngine, DeployRequest,
    DeploymentResult, Error, ErrorKind, Manifest, Manifests, MemoryNotifier, Notification, NotificationKind, Notifier,
    OrgConfig, Platform, PlatformBuilder, PlatformEvent, PolicyEngine, PolicyInput, PolicyReport, Renderer,
    ResolvedApp, SecretMap, SecretScheme, SecretStore, Severity, Violation,
};
use paved_testkit::memory::{MemoryDbProvisioner, MemoryDeployer, MemoryMetrics, MemorySecretStore};
use serde_json::json;

/// One ConfigMap per app, naming its image: enough objects for the platform's steps.
struct OneObject;

impl Renderer for OneObject {
    fn render(&self, app: &ResolvedApp) -> paved_core::Result<Manifests> {
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": app.app.as_str(), "namespace": app.namespace},
            "data": {"image": app.image.to_string()},
        });
        Ok(Manifests::new(vec![Manifest::new(object)?]))
    }
}

/// Denies every action whose app is `forbidden`.
struct DenyForbidden;

#[async_trait]
impl PolicyEngine for DenyForbidden {
    async fn evaluate(&self, input: &PolicyInput<'_>) -> paved_core::Result<PolicyReport> {
        let mut report = PolicyReport { evaluated: vec!["deny-forbidden".into()], ..PolicyReport::default() };
        if input.app == "forbidden" {
            report.violations.push(Violation {
                policy: "deny-forbidden".into(),
                code: "forbidden".into(),
                message: "this service may not do that".into(),
                hint: Some("ask the platform team".into()),
                object: None,
                path: None,
                severity: Severity::Deny,
            });
        }
        Ok(report)
    }
}

/// A notifier that never answers (its receiver hangs).
struct Hanging;

#[async_trait]
impl Notifier for Hanging {
    fn name(&self) -> &str {
        "hanging"
    }
    async fn notify(&self, _n: &Notification) -> paved_core::Result<()> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

struct World {
    deployer: Arc<MemoryDeployer>,
    metrics: Arc<MemoryMetrics>,
    notifier: Arc<MemoryNotifier>,
    vault: Arc<MemorySecretStore>,
    postgres: Arc<MemoryDbProvisioner>,
}

/// Every environment deploys to the memory target; secrets are synced (the target accepts values)
/// and may come from `payments/` in either store.
fn config() -> OrgConfig {
    let text = "[secrets]\nmode = \"sync\"\nteam_paths = [\"vault://payments/\", \"aws-sm://payments/\"]\n";
    let mut config = OrgConfig::parse("paved.toml", text).unwrap();
    for env in config.environments.values_mut() {
        env.target = "memory".into();
    }
    config
}

fn world() -> (World, PlatformBuilder) {
    let w = World {
        deployer: Arc::new(MemoryDeployer::new()),
        metrics: Arc::new(MemoryMetrics::new()),
        notifier: Arc::new(MemoryNotifier::new()),
        vault: Arc::new(MemorySecretStore::new()),
        postgres: Arc::new(MemoryDbProvisioner::new(DbEngine::Postgres)),
    };
    let builder = Platform::builder()
        .config(config())
        .renderer(OneObject)
        .shared_deployer(w.deployer.clone())
        .metrics(SharedMetrics(w.metrics.clone()))
        .notifier(w.notifier.clone())
        .shared_secret_store(SecretScheme::Vault, w.vault.clone())
        .database_server(DatabaseServer::new("main", "memory", DbEngine::Postgres, w.postgres.clone()))
        .actor("tester");
    (w, builder)
}

/// `Metrics` for an `Arc<MemoryMetrics>` the test keeps.
struct SharedMetrics(Arc<MemoryMetrics>);

#[async_trait]
impl paved_core::Metrics for SharedMetrics {
    async fn record(&self, event: &PlatformEvent) -> paved_core::Result<()> {
        self.0.record(event).await
    }
}

fn request(tag: &str) -> DeployRequest {
    DeployRequest::new("shop", &format!("ghcr.io/company/shop:{tag}"), "production").unwrap()
}

/// The results of the finished deployments (and rollbacks) recorded, in order.
fn finished(metrics: &MemoryMetrics) -> Vec<(paved_core::Action, DeploymentResult)> {
    metrics
        .events()
        .iter()
        .filter_map(|e| match e {
            PlatformEvent::DeploymentFinished { action, result, .. } => Some((*action, *result)),
            _ => None,
        })
        .collect()
}

fn started(metrics: &MemoryMetrics) -> usize {
    metrics.events().iter().filter(|e| matches!(e, PlatformEvent::DeploymentStarted { .. })).count()
}

fn kinds(notifier: &MemoryNotifier) -> Vec<NotificationKind> {
    notifier.received().iter().map(|n| n.kind).collect()
}

#[tokio::test]
async fn a_deploy_runs_every_step_records_and_tells_the_team() {
    let (w, builder) = world();
    let platform = builder.build().unwrap();
    let app = platform.validate(&request("v1")).unwrap();
    assert_eq!(app.environment.name, "production");
    let manifests = platform.render(&app).unwrap();
    assert_eq!(manifests.len(), 1);
    let plan = platform.plan(&request("v1")).await.unwrap();
    assert_eq!(plan.target, "memory");
    assert!(w.metrics.events().iter().all(|e| !matches!(e, PlatformEvent::DeploymentStarted { .. })));
    let outcome = platform.apply(plan).await.unwrap();
    assert_eq!((outcome.record.revision, outcome.changed), (1, true));
    assert_eq!(started(&w.metrics), 1);
    assert_eq!(finished(&w.metrics), [(paved_core::Action::Deploy, DeploymentResult::Success)]);
    let told = w.notifier.received();
    assert_eq!(told.len(), 1);
    assert_eq!(
        (told[0].kind, told[0].team.as_str(), told[0].revision),
        (NotificationKind::Deployed, "platform", Some(1))
    );
    // The same release again: unchanged, recorded as such, nobody told.
    let again = platform.deploy(&request("v1")).await.unwrap();
    assert!(!again.changed);
    assert_eq!(finished(&w.metrics)[1], (paved_core::Action::Deploy, DeploymentResult::Unchanged));
    assert_eq!(w.notifier.received().len(), 1);
}

#[tokio::test]
async fn bad_input_and_policy_denials_start_nothing() {
    let (w, builder) = world();
    let platform = builder.policy(DenyForbidden).build().unwrap();
    let e = platform.deploy(&DeployRequest::new("shop", "ghcr.io/company/shop:v1", "prod").unwrap()).await.unwrap_err();
    assert_eq!((e.kind(), e.hint()), (ErrorKind::InvalidInput, Some("did you mean \"production\"?")));
    let denied = DeployRequest::new("forbidden", "ghcr.io/company/forbidden:v1", "production").unwrap();
    let e = platform.deploy(&denied).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    assert_eq!(started(&w.metrics), 0);
    assert!(w.deployer.history(&key("forbidden")).await.unwrap().is_empty());
    assert!(w.notifier.received().is_empty());
}

fn key(app: &str) -> paved_core::ReleaseKey {
    paved_core::ReleaseKey::new(AppName::new(app).unwrap(), "production")
}

use paved_core::Deployer as _;

#[tokio::test]
async fn a_failure_reading_secret_values_after_the_start_is_a_recorded_failure() {
    let (w, builder) = world();
    let platform = builder.build().unwrap();
    w.vault.put("payments/db", secret(&[("password", "s3cret")])).await.unwrap();
    let mut with_secret = request("v1");
    with_secret.secrets = vec!["DB_PASSWORD=vault://payments/db#password".parse().unwrap()];
    let plan = platform.plan(&with_secret).await.unwrap();
    // The secret goes away between the plan and the apply.
    w.vault.delete("payments/db").await.unwrap();
    let e = platform.apply(plan).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(started(&w.metrics), 1);
    assert_eq!(finished(&w.metrics), [(paved_core::Action::Deploy, DeploymentResult::Failure)]);
    assert!(w.deployer.history(&key("shop")).await.unwrap().is_empty(), "nothing was applied");
    assert_eq!(kinds(&w.notifier), [NotificationKind::DeployFailed]);
    // With the secret back, the value reaches the target (by name; never in a record).
    w.vault.put("payments/db", secret(&[("password", "s3cret")])).await.unwrap();
    platform.deploy(&with_secret).await.unwrap();
    assert_eq!(w.deployer.secret_values_seen(), [vec!["DB_PASSWORD".to_string()]]);
    assert!(!format!("{:?}", w.metrics.events()).contains("s3cret"));
}

fn secret(pairs: &[(&str, &str)]) -> SecretMap {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string().into())).collect()
}

#[tokio::test]
async fn references_go_to_the_store_of_their_scheme_and_a_missing_one_is_named() {
    let (w, builder) = world();
    let aws = Arc::new(MemorySecretStore::new());
    aws.put("payments/api", secret(&[("token", "t0ken")])).await.unwrap();
    w.vault.put("payments/db", secret(&[("password", "s3cret")])).await.unwrap();
    let mut both = request("v1");
    both.secrets = vec![
        "DB_PASSWORD=vault://payments/db#password".parse().unwrap(),
        "API_TOKEN=aws-sm://payments/api#token".parse().unwrap(),
    ];
    // Without an aws-sm store: refused at validation, naming the scheme and what is configured.
    let platform = world().1.build().unwrap();
    let e = platform.validate(&both).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("needs a aws-sm secret store"), "{e}");
    assert!(e.hint().unwrap().contains("configured here: vault"), "{:?}", e.hint());
    // With one: each reference is read from its own store.
    let platform = builder.shared_secret_store(SecretScheme::AwsSecretsManager, aws.clone()).build().unwrap();
    platform.deploy(&both).await.unwrap();
    let mut seen = w.deployer.secret_values_seen().remove(0);
    seen.sort();
    assert_eq!(seen, ["API_TOKEN", "DB_PASSWORD"]);
}

#[tokio::test]
async fn a_target_failure_and_a_failed_rollout_are_recorded_and_told() {
    let (w, builder) = world();
    let platform = builder.build().unwrap();
    platform.deploy(&request("v1")).await.unwrap();
    w.deployer.fail_next(Error::unavailable("memory", "the cluster is down", None));
    let e = platform.deploy(&request("v2")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    w.deployer.fail_next(Error::Rollout {
        target: "memory".into(),
        message: "progress deadline exceeded; revision 1 restored".into(),
        hint: None,
        restored: Some(1),
    });
    platform.deploy(&request("v3")).await.unwrap_err();
    use paved_core::Action::Deploy;
    assert_eq!(
        finished(&w.metrics),
        [
            (Deploy, DeploymentResult::Success),
            (Deploy, DeploymentResult::Failure),
            (Deploy, DeploymentResult::RolledBack)
        ]
    );
    assert_eq!(started(&w.metrics), 3);
    assert_eq!(
        kinds(&w.notifier),
        [NotificationKind::Deployed, NotificationKind::DeployFailed, NotificationKind::RolloutFailed]
    );
    let failed = &w.notifier.received()[2];
    assert!(failed.detail.as_deref().unwrap().contains("progress deadline"), "{failed:?}");
}

#[tokio::test]
async fn rollbacks_record_successes_and_failures_but_not_what_never_started() {
    let (w, builder) = world();
    let platform = builder.build().unwrap();
    let app = AppName::new("shop").unwrap();
    // Nothing deployed: a user error, nothing recorded or told.
    let e = platform.rollback(&app, "production", None).await.unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert!(finished(&w.metrics).is_empty() && w.notifier.received().is_empty());

    platform.deploy(&request("v1")).await.unwrap();
    platform.deploy(&request("v2")).await.unwrap();
    let out = platform.rollback(&app, "production", None).await.unwrap();
    assert_eq!(out.record.revision, 3);
    w.deployer.fail_next(Error::unavailable("memory", "the cluster is down", None));
    platform.rollback(&app, "production", Some(2)).await.unwrap_err();
    use paved_core::Action::{Deploy, Rollback};
    assert_eq!(
        finished(&w.metrics),
        [
            (Deploy, DeploymentResult::Success),
            (Deploy, DeploymentResult::Success),
            (Rollback, DeploymentResult::Success),
            (Rollback, DeploymentResult::Failure),
        ]
    );
    assert_eq!(kinds(&w.notifier)[2..], [NotificationKind::RolledBack, NotificationKind::RollbackFailed]);
}

#[tokio::test]
async fn a_failed_rollback_is_told_to_the_team_that_owns_the_app() {
    let (w, builder) = world();
    let platform = builder.build().unwrap();
    let app = AppName::new("shop").unwrap();
    for tag in ["v1", "v2"] {
        let mut r = request(tag);
        r.team = Some(paved_core::Team::new("payments").unwrap());
        platform.deploy(&r).await.unwrap();
    }
    w.deployer.fail_next(Error::unavailable("memory", "the cluster is down", None));
    platform.rollback(&app, "production", None).await.unwrap_err();
    let told = w.notifier.received();
    assert_eq!((told[2].kind, told[2].team.as_str()), (NotificationKind::RollbackFailed, "payments"));
    let teams: Vec<String> = w
        .metrics
        .events()
        .into_iter()
        .filter_map(|e| match e {
            PlatformEvent::DeploymentFinished { action: paved_core::Action::Rollback, team, .. } => Some(team),
            _ => None,
        })
        .collect();
    assert_eq!(teams, ["payments"]);
}

#[tokio::test(start_paused = true)]
async fn a_notifier_that_hangs_never_holds_up_a_deploy() {
    let (w, builder) = world();
    let platform = builder.notifier(Arc::new(Hanging)).notify_timeout(Duration::from_secs(2)).build().unwrap();
    let outcome = platform.deploy(&request("v1")).await.unwrap();
    assert_eq!(outcome.record.revision, 1);
    // The other notifier still got it; the hanging one is a recorded warning.
    assert_eq!(kinds(&w.notifier), [NotificationKind::Deployed]);
    let failed: Vec<_> = w
        .metrics
        .events()
        .into_iter()
        .filter_map(|e| match e {
            PlatformEvent::NotificationFailed { team, reason, .. } => Some((team, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "platform");
    assert!(failed[0].1.contains("did not finish within 2000 ms"), "{failed:?}");
}

fn db_request(service: &str) -> DatabaseRequest {
    DatabaseRequest::new("payments", service, "postgres", "production", "small").unwrap()
}

#[tokio::test]
async fn a_database_request_runs_every_step_records_and_tells_the_team() {
    let (w, builder) = world();
    let platform = builder.build().unwrap();
    let request = db_request("payment-service");
    assert_eq!(platform.validate_database(&request, &DatabaseSelector::any()).unwrap().name, "main");
    let outcome = platform.provision_database(&request, &DatabaseSelector::any()).await.unwrap();
    assert_eq!(outcome.info.state, DatabaseState::Available);
    assert_eq!((outcome.server.as_str(), outcome.backend.as_str()), ("main", "memory"));
    assert_eq!(w.postgres.databases(), ["payments__payment_service__production"]);
    // Idempotent: the same request again creates nothing more and answers the same.
    let again = platform.provision_database(&request, &DatabaseSelector::any()).await.unwrap();
    assert_eq!(again.info, outcome.info);
    let provisioned = w
        .metrics
        .events()
        .iter()
        .filter(|e| matches!(e, PlatformEvent::DatabaseProvisioned { team, .. } if team == "payments"))
        .count();
    assert_eq!(provisioned, 2);
    assert_eq!(kinds(&w.notifier), [NotificationKind::DatabaseProvisioned, NotificationKind::DatabaseProvisioned]);
    assert_eq!(w.notifier.received()[0].team, "payments");
    let status = platform.database_status(&request, &DatabaseSelector::any()).await.unwrap();
    assert_eq!(status.state, DatabaseState::Available);
    platform.deprovision_database(&request, &DatabaseSelector::any(), false).await.unwrap();
    let status = platform.database_status(&request, &DatabaseSelector::any()).await.unwrap();
    assert_eq!(status.state, DatabaseState::Absent);
    assert!(
        w.metrics.events().iter().any(|e| matches!(e, PlatformEvent::DatabaseDeprovisioned { drop_data: false, .. }))
    );
    assert_eq!(kinds(&w.notifier).last(), Some(&NotificationKind::DatabaseDeprovisioned));
}

#[tokio::test]
async fn database_requests_are_validated_and_checked_by_policy_before_anything_is_created() {
    let (w, builder) = world();
    let mysql = Arc::new(MemoryDbProvisioner::new(DbEngine::Mysql));
    let platform = builder
        .policy(DenyForbidden)
        .database_server(DatabaseServer::new("orders", "memory", DbEngine::Mysql, mysql.clone()).environments(["dev"]))
        .build()
        .unwrap();
    let any = DatabaseSelector::any();
    let cases: [(DatabaseRequest, DatabaseSelector, &str); 5] = [
        (
            DatabaseRequest::new("payments", "svc", "postgres", "prod", "small").unwrap(),
            any.clone(),
            "did you mean \"production\"?",
        ),
        (db_request("svc"), any.clone().server("mian"), "did you mean \"main\"?"),
        (db_request("svc"), any.clone().backend("vaul"), "expected one of \"memory\""),
        (
            DatabaseRequest::new("payments", "svc", "mysql", "production", "small").unwrap(),
            any.clone(),
            "register one in paved.toml",
        ),
        (db_request("svc"), any.clone().server("orders"), "choose a server"),
    ];
    for (request, select, hint) in cases {
        let e = platform.provision_database(&request, &select).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.hint().unwrap_or_default().contains(hint), "{request:?} {select:?}: {e} / {:?}", e.hint());
    }
    let e = platform.provision_database(&db_request("forbidden"), &any).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert!(w.postgres.databases().is_empty() && mysql.databases().is_empty(), "nothing was created");
    assert!(w.notifier.received().is_empty());
    // A policy decision was recorded for the denial, and nothing else.
    assert!(w.metrics.events().iter().all(|e| matches!(e, PlatformEvent::PolicyDecision { .. })));
}

/// A provisioner that leaves the connection info to the platform.
struct NoConnectionInfo(MemoryDbProvisioner);

#[async_trait]
impl paved_core::DbProvisioner for NoConnectionInfo {
    fn name(&self) -> &str {
        "bare"
    }
    async fn provision(&self, r: &DatabaseRequest) -> paved_core::Result<paved_core::DatabaseInfo> {
        let mut info = self.0.provision(r).await?;
        info.connection_info_path = None;
        Ok(info)
    }
    async fn status(&self, r: &DatabaseRequest) -> paved_core::Result<paved_core::DatabaseInfo> {
        self.0.status(r).await
    }
    async fn deprovision(&self, r: &DatabaseRequest, drop_data: bool) -> paved_core::Result<()> {
        self.0.deprovision(r, drop_data).await
    }
}

/// A store that refuses every write.
struct ReadOnly;

#[async_trait]
impl SecretStore for ReadOnly {
    fn name(&self) -> &str {
        "read-only"
    }
    async fn get(&self, path: &str) -> paved_core::Result<SecretMap> {
        Err(Error::NotFound { what: path.into(), hint: None })
    }
    async fn put(&self, _path: &str, _data: SecretMap) -> paved_core::Result<u64> {
        Err(Error::Denied { backend: "read-only".into(), message: "permission denied".into(), hint: None })
    }
    async fn list(&self, _prefix: &str) -> paved_core::Result<Vec<String>> {
        Ok(Vec::new())
    }
    async fn delete(&self, _path: &str) -> paved_core::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_connection_info_goes_to_the_secret_store_and_a_failure_there_says_what_exists() {
    let (w, builder) = world();
    let bare = || Arc::new(NoConnectionInfo(MemoryDbProvisioner::new(DbEngine::Postgres)));
    let platform =
        builder.database_server(DatabaseServer::new("main", "bare", DbEngine::Postgres, bare())).build().unwrap();
    let request = db_request("payment-service");
    let outcome = platform.provision_database(&request, &DatabaseSelector::any()).await.unwrap();
    assert_eq!(outcome.info.connection_info_path.as_deref(), Some("database/payments/payment-service/production"));
    let stored = w.vault.get("database/payments/payment-service/production").await.unwrap();
    assert_eq!(
        stored.keys().map(String::as_str).collect::<Vec<_>>(),
        ["credentials_path", "database", "engine", "host", "port"]
    );

    let platform = Platform::builder()
        .config(config())
        .renderer(OneObject)
        .deployer(MemoryDeployer::new())
        .secret_store(SecretScheme::Vault, ReadOnly)
        .database_server(DatabaseServer::new("main", "bare", DbEngine::Postgres, bare()))
        .build()
        .unwrap();
    let e = platform.provision_database(&request, &DatabaseSelector::any()).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("was created on main") && text.contains("database/payments/payment-service/production"),
        "{text}"
    );
    assert!(
        e.hint().unwrap().contains("provision again") && e.hint().unwrap().contains("deprovision"),
        "{:?}",
        e.hint()
    );
}

/// A monitoring hook that keeps a dashboard per database, and checks that it runs after the
/// connection info was stored; `fail` makes every call fail.
struct Dashboards {
    watched: std::sync::Mutex<Vec<String>>,
    fail: bool,
}

#[async_trait]
impl paved_core::DatabaseMonitor for Dashboards {
    fn name(&self) -> &str {
        "dashboards"
    }
    async fn watch(
        &self,
        request: &DatabaseRequest,
        server: &str,
        info: &paved_core::DatabaseInfo,
    ) -> paved_core::Result<Option<String>> {
        if self.fail {
            return Err(Error::unavailable("dashboards", "connection refused", None));
        }
        let stored = info.connection_info_path.as_deref().unwrap_or_default();
        assert!(
            stored.ends_with(&paved_core::connection_info_path(request)),
            "the hook runs after the connection info is stored: {stored:?}"
        );
        self.watched.lock().unwrap().push(format!("{server}/{}", info.database));
        Ok(Some(format!("https://grafana.example.com/d/{}", info.database)))
    }
    async fn unwatch(&self, _request: &DatabaseRequest, server: &str) -> paved_core::Result<()> {
        if self.fail {
            return Err(Error::unavailable("dashboards", "connection refused", None));
        }
        self.watched.lock().unwrap().retain(|w| !w.starts_with(&format!("{server}/")));
        Ok(())
    }
}

#[tokio::test]
async fn the_monitoring_hook_runs_after_the_connection_info_and_its_failure_is_only_a_warning() {
    let (_, builder) = world();
    let dashboards = Arc::new(Dashboards { watched: Default::default(), fail: false });
    let platform = builder.database_monitor(dashboards.clone()).build().unwrap();
    let request = db_request("payment-service");
    let outcome = platform.provision_database(&request, &DatabaseSelector::any()).await.unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(
        outcome.monitoring.as_deref(),
        Some("https://grafana.example.com/d/payments__payment_service__production")
    );
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(*dashboards.watched.lock().unwrap(), ["main/payments__payment_service__production"]);
    let warnings = platform.deprovision_database(&request, &DatabaseSelector::any(), false).await.unwrap();
    assert!(warnings.is_empty() && dashboards.watched.lock().unwrap().is_empty(), "{warnings:?}");

    let (w, builder) = world();
    let broken = Arc::new(Dashboards { watched: Default::default(), fail: true });
    let platform = builder.database_monitor(broken).build().unwrap();
    let outcome = platform.provision_database(&request, &DatabaseSelector::any()).await.unwrap();
    assert_eq!(outcome.info.state, DatabaseState::Available, "the database is provisioned all the same");
    assert_eq!(outcome.monitoring, None);
    assert!(
        outcome.warnings.iter().any(|w| w.contains("monitoring hook dashboards") && w.contains("connection refused")),
        "{:?}",
        outcome.warnings
    );
    assert_eq!(kinds(&w.notifier), [NotificationKind::DatabaseProvisioned], "the team is told all the same");
    let warnings = platform.deprovision_database(&request, &DatabaseSelector::any(), true).await.unwrap();
    assert!(warnings.iter().any(|w| w.contains("could not remove the monitoring")), "{warnings:?}");
    assert_eq!(w.postgres.databases(), Vec::<String>::new(), "deprovisioned all the same");
}

/// Denies every database deprovisioning.
struct KeepDatabases;

#[async_trait]
impl PolicyEngine for KeepDatabases {
    async fn evaluate(&self, input: &PolicyInput<'_>) -> paved_core::Result<PolicyReport> {
        let mut report = PolicyReport { evaluated: vec!["keep-databases".into()], ..PolicyReport::default() };
        if input.action == paved_core::Action::DeprovisionDatabase {
            report.violations.push(Violation {
                policy: "keep-databases".into(),
                code: "keep".into(),
                message: "databases are removed by the platform team".into(),
                hint: None,
                object: None,
                path: None,
                severity: Severity::Deny,
            });
        }
        Ok(report)
    }
}

/// Issue 18: a team outside the organisation's `teams` reaches no database action (provision,
/// status, deprovision), and deprovisioning passes through policy.
#[tokio::test]
async fn only_teams_of_the_organisation_reach_databases_and_deprovisioning_is_checked_by_policy() {
    let (w, builder) = world();
    let mut config = OrgConfig::parse("paved.toml", "teams = [\"payments\", \"search\"]\n").unwrap();
    for env in config.environments.values_mut() {
        env.target = "memory".into();
    }
    let platform = builder.config(config).policy(KeepDatabases).build().unwrap();
    let any = DatabaseSelector::any();
    let ours = db_request("payment-service");
    platform.provision_database(&ours, &any).await.unwrap();
    let before = w.postgres.databases();
    let intruder = DatabaseRequest::new("paymentz", "payment-service", "postgres", "production", "small").unwrap();
    let errors = [
        platform.provision_database(&intruder, &any).await.unwrap_err(),
        platform.database_status(&intruder, &any).await.unwrap_err(),
        platform.deprovision_database(&intruder, &any, true).await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("paymentz") && e.hint().unwrap().contains("did you mean \"payments\"?"), "{e}");
    }
    assert_eq!(w.postgres.databases(), before, "nothing created or dropped");
    // The owning team's own deprovisioning is checked by policy too: denied, the data stays.
    let e = platform.deprovision_database(&ours, &any, true).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied, "{e}");
    assert_eq!(w.postgres.databases(), before);
    assert_eq!(platform.database_status(&ours, &any).await.unwrap().state, DatabaseState::Available);
}

/// Issue 18, hole 5: with the default `team_paths`, a team cannot have paved read another
/// team's secret (and sync it into its own namespace): refused before any read, and no hint
/// lists the keys of a secret the team may not read.
#[tokio::test]
async fn a_team_cannot_reference_another_teams_secrets() {
    let (w, builder) = world();
    let mut config = OrgConfig::parse("paved.toml", "[secrets]\nmode = \"sync\"\n").unwrap();
    for env in config.environments.values_mut() {
        env.target = "memory".into();
    }
    let platform = builder.config(config).build().unwrap();
    w.vault.put("secret/search/db", secret(&[("password", "search-canary")])).await.unwrap();
    w.vault.put("secret/payments/db", secret(&[("password", "payments-pw")])).await.unwrap();
    let mut theft = request("v1").with_team(paved_core::Team::new("payments").unwrap());
    for reference in
        ["vault://secret/search/db#password", "vault://secret/payments-x/db#password", "vault://kv/search/db#p"]
    {
        theft.secrets = vec![format!("DB_PASSWORD={reference}").parse().unwrap()];
        let e = platform.deploy(&theft).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{reference}: {e}");
        assert!(e.to_string().contains("outside the secret paths of team payments"), "{e}");
        assert!(e.to_string().contains("vault://secret/payments/"), "names the team's paths: {e}");
        assert!(!e.hint().unwrap_or_default().contains("did you mean"), "suggests no key: {e:?}");
    }
    assert!(w.deployer.secret_values_seen().is_empty(), "no value reached the target");
    assert_eq!(started(&w.metrics), 0, "nothing started");
    // The team's own secret works.
    theft.secrets = vec!["DB_PASSWORD=vault://secret/payments/db#password".parse().unwrap()];
    platform.deploy(&theft).await.unwrap();
    // A wrong key of its own secret gets a did-you-mean over its own keys.
    theft.secrets = vec!["DB_PASSWORD=vault://secret/payments/db#pasword".parse().unwrap()];
    let e = platform.deploy(&theft).await.unwrap_err();
    assert_eq!(e.hint(), Some("did you mean \"password\"?"), "{e}");
}
