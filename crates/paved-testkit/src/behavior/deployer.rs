//! The `Deployer` suite: what every deploy target must do, whatever it applies to (a GitOps
//! directory, a cluster, memory).
//!
//! Releases are built the way the platform builds them: the request resolved against the
//! configuration and rendered by the harness's renderer (the real `KubeRenderer` in the
//! targets' own tests). Each scenario uses its own app names, so one target serves them all.

use std::sync::Arc;

use paved_core::{
    AppName, DeployContext, DeployOutcome, DeployRequest, Deployer, Error, OrgConfig, PolicyReport, Release,
    ReleaseCause, ReleaseKey, Renderer, ResolvedApp,
};

use super::{Harness, Outcome, Report, Scenario, error_text};

/// What a target may lack; scenarios that need it are skipped on such a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeployerCapability {
    /// Removes an app's objects and history (`DeployerCapabilities::destroy`).
    Destroy,
    /// Refuses to destroy (the target lacks `DeployerCapabilities::destroy`).
    RefusesDestroy,
    /// Applies to a cluster the harness can script ([`DeployerHarness::with_cluster`]): the
    /// scenarios of a real API server's behaviour (autoscaler handover, failing workloads,
    /// RBAC, objects of others).
    ScriptedCluster,
}

/// The cluster behind a target, as a test scripts it (the kube target's scripted API server;
/// nothing here depends on Kubernetes crates). Namespaces are `{app}-{env}`, the default.
pub trait ClusterScript: Send + Sync {
    /// From now on, rollouts of images whose tag is `tag` fail (crash-looping pods; a
    /// Deployment exceeds its progress deadline, a StatefulSet never gets ready).
    fn fail_rollouts_of(&self, tag: &str);
    /// The autoscaler sets the replicas of Deployment `name` in `namespace` (through `scale`).
    fn autoscale(&self, namespace: &str, name: &str, replicas: i64);
    /// The live `spec.replicas` of Deployment `name`, if it exists.
    fn replicas(&self, namespace: &str, name: &str) -> Option<i64>;
    /// Every value `spec.replicas` of Deployment `name` took, in order.
    fn replica_history(&self, namespace: &str, name: &str) -> Vec<i64>;
    /// Whether an autoscaler named `name` exists in `namespace`.
    fn has_autoscaler(&self, namespace: &str, name: &str) -> bool;
    /// RBAC refuses `verb` (`watch`, `list`, …) on `plural` (`deployments`) from now on.
    fn deny(&self, verb: &str, plural: &str);
    /// RBAC lets `verb` on `plural` through again.
    fn allow(&self, verb: &str, plural: &str);
    /// Someone else's ResourceQuota `name` in `namespace`.
    fn add_resource_quota(&self, namespace: &str, name: &str);
    /// Whether the namespace exists.
    fn has_namespace(&self, namespace: &str) -> bool;
    /// `Kind/name` of every object in `namespace` that is not a release record.
    fn objects_in(&self, namespace: &str) -> Vec<String>;
    /// Whether the object at an API path exists
    /// (`/apis/example.com/v1/namespaces/ns/widgets/w`).
    fn has_object(&self, path: &str) -> bool;
    /// The keys of the `data` of Secret `name` in `namespace` (empty when it does not exist).
    fn secret_keys(&self, namespace: &str, name: &str) -> Vec<String>;
    /// The cluster serves a custom kind (its CRD installed): `group_version` `cert-manager.io/v1`,
    /// plural `clusterissuers`, kind `ClusterIssuer`, cluster-scoped unless `namespaced`.
    fn serve(&self, group_version: &str, plural: &str, kind: &str, namespaced: bool);
}

/// The organisation configuration the [`ScriptedCluster`] scenarios need: the apps
/// `suite-crd` and `suite-issuer` (team `platform`) may bring a CustomResourceDefinition and a
/// ClusterIssuer, and secrets are synced into the cluster (`sync` mode).
///
/// [`ScriptedCluster`]: DeployerCapability::ScriptedCluster
pub const SCRIPTED_CLUSTER_CONFIG: &str = "[apps.suite-crd]\nteam = \"platform\"\n[apps.suite-issuer]\nteam = \"platform\"\n\
[escape_hatches.grants]\nplatform = [\"CustomResourceDefinition\", \"ClusterIssuer\"]\n\
[secrets]\nmode = \"sync\"\nteam_paths = [\"vault://secret/\"]\n";

/// The target under test, the renderer that makes its releases and the configuration they
/// are resolved against.
#[non_exhaustive]
pub struct DeployerHarness {
    /// The target.
    pub deployer: Arc<dyn Deployer>,
    /// Renders the suite's releases.
    pub renderer: Arc<dyn Renderer>,
    /// The configuration the suite's requests are resolved against.
    pub config: OrgConfig,
    /// The cluster behind the target, when the test can script it.
    pub cluster: Option<Arc<dyn ClusterScript>>,
}

impl DeployerHarness {
    /// A harness for `deployer`, rendering with `renderer` under the built-in configuration.
    pub fn new(deployer: Arc<dyn Deployer>, renderer: Arc<dyn Renderer>) -> Self {
        DeployerHarness { deployer, renderer, config: OrgConfig::default(), cluster: None }
    }

    /// The same harness with the cluster behind its target, for the [`ScriptedCluster`]
    /// scenarios.
    ///
    /// [`ScriptedCluster`]: DeployerCapability::ScriptedCluster
    pub fn with_cluster(mut self, cluster: Arc<dyn ClusterScript>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The same harness with another configuration (e.g. namespaces of the target's cluster).
    pub fn with_config(mut self, config: OrgConfig) -> Self {
        self.config = config;
        self
    }

    /// The release of `app` with image tag `tag` in `env`, as the platform would build it.
    pub fn release(&self, app: &str, tag: &str, env: &str) -> Result<Release, Error> {
        self.release_with(app, tag, env, |r| r)
    }

    /// [`DeployerHarness::release`] of a request `change` changes (replicas, escape hatches).
    pub fn release_with(
        &self,
        app: &str,
        tag: &str,
        env: &str,
        change: impl FnOnce(DeployRequest) -> DeployRequest,
    ) -> Result<Release, Error> {
        let request = change(DeployRequest::new(app, &format!("ghcr.io/company/{app}:{tag}"), env)?);
        let resolved = ResolvedApp::resolve(&self.config, &request)?;
        let manifests = self.renderer.render(&resolved)?;
        Ok(Release::new(resolved, manifests, "suite", PolicyReport::default()))
    }

    async fn deploy(&self, app: &str, tag: &str, env: &str) -> Result<DeployOutcome, Error> {
        self.deployer.deploy(&self.release(app, tag, env)?, &DeployContext::new()).await
    }

    async fn deploy_with(
        &self,
        app: &str,
        tag: &str,
        change: impl FnOnce(DeployRequest) -> DeployRequest,
    ) -> Result<DeployOutcome, Error> {
        self.deployer.deploy(&self.release_with(app, tag, "production", change)?, &DeployContext::new()).await
    }

    fn cluster(&self) -> &dyn ClusterScript {
        self.cluster.as_deref().expect("ScriptedCluster scenarios run with a cluster")
    }
}

impl Harness for DeployerHarness {
    type Capability = DeployerCapability;

    fn backend(&self) -> String {
        self.deployer.name().to_string()
    }

    fn supports(&self, capability: DeployerCapability) -> bool {
        match capability {
            DeployerCapability::Destroy => self.deployer.capabilities().destroy,
            DeployerCapability::RefusesDestroy => !self.deployer.capabilities().destroy,
            DeployerCapability::ScriptedCluster => self.cluster.is_some(),
        }
    }
}

/// Every scenario of the suite, in the order [`run`] runs them.
pub fn scenarios() -> Vec<Scenario<DeployerHarness>> {
    use DeployerCapability::{Destroy, RefusesDestroy, ScriptedCluster};
    vec![
        scenario!(first_deploy_is_revision_one),
        scenario!(an_unchanged_release_creates_no_revision),
        scenario!(a_new_image_is_the_next_revision),
        scenario!(history_is_newest_first),
        scenario!(rollback_restores_the_previous_objects_as_a_new_revision),
        scenario!(rollback_to_a_named_revision),
        scenario!(rollback_to_an_unknown_revision_is_not_found_with_a_hint),
        scenario!(rollback_of_nothing_is_not_found),
        scenario!(status_of_an_unknown_app_is_not_found),
        scenario!(history_of_an_unknown_app_is_empty),
        scenario!(apps_and_environments_are_separate),
        scenario!(list_gives_the_current_revision_of_every_app),
        scenario!(destroy_removes_the_app_and_nothing_else, [Destroy]),
        scenario!(destroy_is_refused_without_the_capability, [RefusesDestroy]),
        scenario!(the_autoscaler_switched_on_off_and_on_keeps_the_replicas, [ScriptedCluster]),
        scenario!(a_rollback_crosses_an_autoscaler_switch, [ScriptedCluster]),
        scenario!(a_crash_looping_statefulset_or_daemonset_fails_the_deploy_and_is_rolled_back, [ScriptedCluster]),
        scenario!(a_forbidden_watch_fails_with_the_rbac_hint, [ScriptedCluster]),
        scenario!(a_crd_and_its_resource_in_one_release, [ScriptedCluster]),
        scenario!(a_cluster_scoped_custom_resource_is_applied_cluster_wide, [ScriptedCluster]),
        scenario!(a_secret_key_the_app_stops_using_leaves_the_cluster, [ScriptedCluster]),
        scenario!(a_failed_first_deploy_leaves_nothing_running, [ScriptedCluster]),
        scenario!(destroy_keeps_a_namespace_with_a_resource_quota, [ScriptedCluster, Destroy]),
    ]
}

/// Runs the suite on `harness`.
///
/// # Panics
/// When a scenario fails (see [`super::run`]).
pub async fn run(harness: &DeployerHarness) -> Report {
    super::run("Deployer", harness, &scenarios()).await
}

fn key(app: &str, env: &str) -> ReleaseKey {
    ReleaseKey::new(AppName::new(app).expect("the suite's app names are valid"), env)
}

fn revisions(history: &[paved_core::ReleaseRecord]) -> Vec<paved_core::Revision> {
    history.iter().map(|r| r.revision).collect()
}

async fn first_deploy_is_revision_one(h: &DeployerHarness) -> Outcome {
    let out = h.deploy("suite-first", "v1", "production").await?;
    ensure!(out.changed, "the first deploy changes something");
    ensure_eq!(out.record.revision, 1, "first revision");
    ensure_eq!(out.record.image, "ghcr.io/company/suite-first:v1", "image of the record");
    ensure_eq!(out.record.deployed_by, "suite", "actor of the record");
    let status = h.deployer.status(&key("suite-first", "production")).await?;
    ensure_eq!(status.current.revision, 1, "current revision after the first deploy");
    Ok(())
}

async fn an_unchanged_release_creates_no_revision(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-same", "v1", "production").await?;
    let again = h.deploy("suite-same", "v1", "production").await?;
    ensure!(!again.changed, "the same objects again change nothing");
    ensure_eq!(again.record.revision, 1, "revision of an unchanged deploy");
    ensure_eq!(revisions(&h.deployer.history(&key("suite-same", "production")).await?), vec![1], "history");
    Ok(())
}

async fn a_new_image_is_the_next_revision(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-next", "v1", "production").await?;
    let second = h.deploy("suite-next", "v2", "production").await?;
    ensure!(second.changed, "a new image changes something");
    ensure_eq!(second.record.revision, 2, "second revision");
    let status = h.deployer.status(&key("suite-next", "production")).await?;
    ensure_eq!(status.current.image, "ghcr.io/company/suite-next:v2", "current image");
    Ok(())
}

async fn history_is_newest_first(h: &DeployerHarness) -> Outcome {
    for tag in ["v1", "v2", "v3"] {
        h.deploy("suite-history", tag, "production").await?;
    }
    let history = h.deployer.history(&key("suite-history", "production")).await?;
    ensure_eq!(revisions(&history), vec![3, 2, 1], "history order");
    ensure_eq!(history[0].image, "ghcr.io/company/suite-history:v3", "newest image");
    Ok(())
}

async fn rollback_restores_the_previous_objects_as_a_new_revision(h: &DeployerHarness) -> Outcome {
    let first = h.deploy("suite-back", "v1", "production").await?;
    h.deploy("suite-back", "v2", "production").await?;
    let k = key("suite-back", "production");
    let out = h.deployer.rollback(&k, None, "oncall", &DeployContext::new()).await?;
    ensure_eq!(out.record.revision, 3, "a rollback is a new revision");
    ensure_eq!(out.record.cause, ReleaseCause::Rollback { to: 1 }, "cause of the rollback");
    ensure_eq!(out.record.image, "ghcr.io/company/suite-back:v1", "restored image");
    ensure_eq!(out.record.digest, first.record.digest, "restored objects");
    ensure_eq!(out.record.deployed_by, "oncall", "actor of the rollback");
    let status = h.deployer.status(&k).await?;
    ensure_eq!(status.current.revision, 3, "current revision after the rollback");
    Ok(())
}

async fn rollback_to_a_named_revision(h: &DeployerHarness) -> Outcome {
    for tag in ["v1", "v2", "v3"] {
        h.deploy("suite-named", tag, "production").await?;
    }
    let k = key("suite-named", "production");
    let out = h.deployer.rollback(&k, Some(1), "oncall", &DeployContext::new()).await?;
    ensure_eq!((out.record.revision, out.record.cause.clone()), (4, ReleaseCause::Rollback { to: 1 }), "rollback to 1");
    ensure_eq!(out.record.image, "ghcr.io/company/suite-named:v1", "restored image");
    Ok(())
}

async fn rollback_to_an_unknown_revision_is_not_found_with_a_hint(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-unknown", "v1", "production").await?;
    h.deploy("suite-unknown", "v2", "production").await?;
    let k = key("suite-unknown", "production");
    match h.deployer.rollback(&k, Some(9), "oncall", &DeployContext::new()).await {
        Err(e @ Error::NotFound { .. }) => {
            let hint = e.hint().unwrap_or_default();
            ensure!(
                hint.contains('1') && !hint.contains('2'),
                "the hint names the revisions to roll back to, not the current one: {}",
                error_text(&e)
            );
        }
        other => return Err(super::Failure::new(format!("expected NotFound, got {other:?}"))),
    }
    ensure_eq!(revisions(&h.deployer.history(&k).await?), vec![2, 1], "history after the refused rollback");
    Ok(())
}

async fn rollback_of_nothing_is_not_found(h: &DeployerHarness) -> Outcome {
    let e = h.deployer.rollback(&key("suite-never", "production"), None, "oncall", &DeployContext::new()).await;
    ensure!(matches!(&e, Err(e) if e.is_user_error() && e.hint().is_some()), "a user error with a hint, got {e:?}");
    Ok(())
}

async fn status_of_an_unknown_app_is_not_found(h: &DeployerHarness) -> Outcome {
    let e = h.deployer.status(&key("suite-nowhere", "production")).await;
    ensure!(matches!(&e, Err(Error::NotFound { hint: Some(_), .. })), "NotFound with a hint, got {e:?}");
    Ok(())
}

async fn history_of_an_unknown_app_is_empty(h: &DeployerHarness) -> Outcome {
    let history = h.deployer.history(&key("suite-nobody", "production")).await?;
    ensure!(history.is_empty(), "no history, got {history:?}");
    Ok(())
}

async fn apps_and_environments_are_separate(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-a", "v1", "production").await?;
    h.deploy("suite-a", "v2", "production").await?;
    let staging = h.deploy("suite-a", "v1", "staging").await?;
    let other = h.deploy("suite-b", "v1", "production").await?;
    ensure_eq!((staging.record.revision, other.record.revision), (1, 1), "first revisions elsewhere");
    ensure_eq!(revisions(&h.deployer.history(&key("suite-a", "staging")).await?), vec![1], "staging history");
    ensure_eq!(revisions(&h.deployer.history(&key("suite-a", "production")).await?), vec![2, 1], "production history");
    Ok(())
}

async fn list_gives_the_current_revision_of_every_app(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-list-a", "v1", "production").await?;
    h.deploy("suite-list-a", "v2", "production").await?;
    h.deploy("suite-list-b", "v1", "staging").await?;
    let listed = h.deployer.list().await?;
    let mine: Vec<(String, String, u64)> = listed
        .iter()
        .filter(|r| r.app.starts_with("suite-list-"))
        .map(|r| (r.app.to_string(), r.environment.clone(), r.revision))
        .collect();
    let mut mine = mine;
    mine.sort();
    ensure_eq!(
        mine,
        vec![("suite-list-a".to_string(), "production".to_string(), 2), ("suite-list-b".into(), "staging".into(), 1)],
        "one record per app and environment, the current revision"
    );
    Ok(())
}

async fn destroy_removes_the_app_and_nothing_else(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-gone", "v1", "production").await?;
    h.deploy("suite-kept", "v1", "production").await?;
    let k = key("suite-gone", "production");
    let out = h.deployer.destroy(&k, &DeployContext::new()).await?;
    ensure!(!out.deleted.is_empty(), "destroy names what it deleted");
    ensure!(h.deployer.history(&k).await?.is_empty(), "no history after destroy");
    ensure!(matches!(h.deployer.status(&k).await, Err(Error::NotFound { .. })), "no status after destroy");
    ensure!(!h.deployer.list().await?.iter().any(|r| r.app == "suite-gone"), "destroyed apps are not listed");
    let kept = h.deployer.status(&key("suite-kept", "production")).await?;
    ensure_eq!(kept.current.revision, 1, "another app is untouched");
    Ok(())
}

async fn destroy_is_refused_without_the_capability(h: &DeployerHarness) -> Outcome {
    h.deploy("suite-stays", "v1", "production").await?;
    let k = key("suite-stays", "production");
    let e = h.deployer.destroy(&k, &DeployContext::new()).await;
    ensure!(matches!(&e, Err(e) if e.hint().is_some()), "destroy refused with a hint, got {e:?}");
    ensure_eq!(revisions(&h.deployer.history(&k).await?), vec![1], "history after the refused destroy");
    Ok(())
}

/// The request with `yaml` as its extra manifest (read from `file`).
fn with_extra(file: &'static str, yaml: String) -> impl FnOnce(DeployRequest) -> DeployRequest {
    move |r| {
        let mut o = r.overrides.clone();
        o.extra_manifests = vec![paved_core::ManifestFile::parse(file, &yaml).expect("a manifest")];
        r.with_overrides(o)
    }
}

/// No autoscaler (`--no-hpa`) and `n` replicas.
fn fixed(n: u32) -> impl FnOnce(DeployRequest) -> DeployRequest {
    move |r| {
        let mut o = r.overrides.clone();
        o.disabled.push(paved_core::Component::Hpa);
        r.with_replicas(n).with_overrides(o)
    }
}

async fn the_autoscaler_switched_on_off_and_on_keeps_the_replicas(h: &DeployerHarness) -> Outcome {
    let (app, ns) = ("suite-hpa", "suite-hpa-production");
    let c = h.cluster();
    h.deploy_with(app, "v1", fixed(5)).await?;
    h.deploy(app, "v2", "production").await?;
    ensure_eq!(c.replicas(ns, app), Some(5), "replicas after the autoscaler was switched on");
    c.autoscale(ns, app, 7);
    h.deploy(app, "v3", "production").await?;
    ensure_eq!(c.replicas(ns, app), Some(7), "the autoscaler's replicas through a new image");
    h.deploy_with(app, "v4", fixed(4)).await?;
    ensure_eq!(c.replicas(ns, app), Some(4), "replicas taken back when the autoscaler is off");
    ensure!(!c.has_autoscaler(ns, app), "the autoscaler is gone");
    h.deploy(app, "v5", "production").await?;
    ensure_eq!(c.replica_history(ns, app), vec![5, 7, 4], "never reset to 1 on the way");
    Ok(())
}

async fn a_rollback_crosses_an_autoscaler_switch(h: &DeployerHarness) -> Outcome {
    let (app, ns) = ("suite-hpa-back", "suite-hpa-back-production");
    let c = h.cluster();
    h.deploy(app, "v1", "production").await?;
    c.autoscale(ns, app, 6);
    h.deploy_with(app, "v2", fixed(2)).await?;
    let k = key(app, "production");
    let out = h.deployer.rollback(&k, Some(1), "oncall", &DeployContext::new()).await?;
    ensure_eq!(out.record.revision, 3, "the rollback's revision");
    ensure!(c.has_autoscaler(ns, app), "the autoscaler is back");
    ensure!(c.replicas(ns, app).is_some_and(|n| n >= 3), "within the autoscaler's minimum: {:?}", c.replicas(ns, app));
    h.deployer.rollback(&k, Some(2), "oncall", &DeployContext::new()).await?;
    ensure_eq!(c.replicas(ns, app), Some(2), "and back across it");
    Ok(())
}

async fn a_crash_looping_statefulset_or_daemonset_fails_the_deploy_and_is_rolled_back(h: &DeployerHarness) -> Outcome {
    for (app, kind) in [("suite-sts", "StatefulSet"), ("suite-ds", "DaemonSet")] {
        let workload = |tag: &str| {
            let replicas = if kind == "StatefulSet" { "  serviceName: db\n  replicas: 2\n" } else { "" };
            let yaml = format!(
                "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: db\nspec:\n{replicas}  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n        - name: db\n          image: ghcr.io/company/db:{tag}\n"
            );
            with_extra("db.yaml", yaml)
        };
        h.deploy_with(app, "v1", workload("v1")).await?;
        let failing = format!("{app}-v2");
        h.cluster().fail_rollouts_of(&failing);
        let failed = h.deploy_with(app, "v2", workload(&failing)).await;
        ensure!(
            matches!(&failed, Err(Error::Rollout { restored: Some(3), .. })),
            "{kind}: a failed rollout, rolled back to a new revision 3: {failed:?}"
        );
        let history = h.deployer.history(&key(app, "production")).await?;
        ensure!(
            history.iter().any(|r| r.revision == 2 && r.state == Some(paved_core::RevisionState::Failed)),
            "{kind}: revision 2 is failed: {history:?}"
        );
    }
    Ok(())
}

async fn a_crd_and_its_resource_in_one_release(h: &DeployerHarness) -> Outcome {
    // Its plural ("widgetz") is not the guessable one: only discovery knows it.
    let yaml = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgetz.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names:\n    plural: widgetz\n    singular: widget\n    kind: Widget\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n";
    h.deploy_with("suite-crd", "v1", with_extra("crd.yaml", yaml.to_string())).await?;
    ensure!(
        h.cluster().has_object("/apis/example.com/v1/namespaces/suite-crd-production/widgetz/w"),
        "the resource is applied, at the plural discovery gives, after its CRD"
    );
    Ok(())
}

async fn a_cluster_scoped_custom_resource_is_applied_cluster_wide(h: &DeployerHarness) -> Outcome {
    h.cluster().serve("cert-manager.io/v1", "clusterissuers", "ClusterIssuer", false);
    let yaml = "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: suite-letsencrypt\nspec:\n  acme: {}\n";
    h.deploy_with("suite-issuer", "v1", with_extra("issuer.yaml", yaml.to_string())).await?;
    ensure!(
        h.cluster().has_object("/apis/cert-manager.io/v1/clusterissuers/suite-letsencrypt"),
        "applied cluster-wide (the scope discovery gives), not in the app's namespace"
    );
    Ok(())
}

async fn a_secret_key_the_app_stops_using_leaves_the_cluster(h: &DeployerHarness) -> Outcome {
    let (app, ns) = ("suite-secret", "suite-secret-production");
    let release = |tag: &str, keys: &[&str]| -> Result<Release, Error> {
        let refs: Vec<String> = keys.iter().map(|k| format!("{k}=vault://secret/suite/db#password")).collect();
        let mut release = h.release_with(app, tag, "production", |mut r| {
            r.secrets = refs.iter().map(|s| s.parse().expect("a secret reference")).collect();
            r
        })?;
        // What the platform read from the secret store.
        release.secret_values = paved_core::SecretValues(
            keys.iter().map(|k| (k.to_string(), secrecy::SecretString::from("hunter2"))).collect(),
        );
        Ok(release)
    };
    h.deployer.deploy(&release("v1", &["DB_PASSWORD", "OLD_PASSWORD"])?, &DeployContext::new()).await?;
    let secret = format!("{app}-secrets");
    ensure_eq!(h.cluster().secret_keys(ns, &secret), vec!["DB_PASSWORD", "OLD_PASSWORD"], "both keys");
    h.deployer.deploy(&release("v2", &["DB_PASSWORD"])?, &DeployContext::new()).await?;
    ensure_eq!(h.cluster().secret_keys(ns, &secret), vec!["DB_PASSWORD"], "the key no longer used is gone");
    Ok(())
}

async fn a_forbidden_watch_fails_with_the_rbac_hint(h: &DeployerHarness) -> Outcome {
    let app = "suite-rbac";
    h.deploy(app, "v1", "production").await?;
    h.cluster().deny("watch", "deployments");
    let e = h.deploy(app, "v2", "production").await;
    h.cluster().allow("watch", "deployments");
    let Err(e) = e else { return Err(super::Failure::new("the deploy succeeded without a watch")) };
    ensure!(error_text(&e).contains("forbidden"), "forbidden: {}", error_text(&e));
    ensure!(e.hint().is_some_and(|h| h.contains("cluster admin")), "the RBAC hint: {}", error_text(&e));
    Ok(())
}

async fn a_failed_first_deploy_leaves_nothing_running(h: &DeployerHarness) -> Outcome {
    let (app, ns) = ("suite-atomic", "suite-atomic-production");
    h.cluster().fail_rollouts_of("atomic-v1");
    let e = h.deploy(app, "atomic-v1", "production").await;
    ensure!(matches!(&e, Err(Error::Rollout { restored: None, .. })), "a failed rollout: {e:?}");
    let left: Vec<String> =
        h.cluster().objects_in(ns).into_iter().filter(|o| !o.starts_with("Pod/") && !o.starts_with("Event/")).collect();
    ensure!(left.is_empty(), "nothing of it runs: {left:?}");
    let history = h.deployer.history(&key(app, "production")).await?;
    ensure_eq!(revisions(&history), vec![1], "the failed revision stays on record");
    Ok(())
}

async fn destroy_keeps_a_namespace_with_a_resource_quota(h: &DeployerHarness) -> Outcome {
    let (app, ns) = ("suite-quota", "suite-quota-production");
    h.deploy(app, "v1", "production").await?;
    h.cluster().add_resource_quota(ns, "compute");
    let out = h.deployer.destroy(&key(app, "production"), &DeployContext::new()).await?;
    ensure!(!out.deleted.iter().any(|d| d.starts_with("Namespace/")), "the namespace is kept: {:?}", out.deleted);
    ensure!(h.cluster().has_namespace(ns), "the namespace exists");
    Ok(())
}
