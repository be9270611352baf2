//! The live Kubernetes target against the scripted mock API server (`--features mock`).
//!
//! Every scenario runs the real golden path (`Platform` → `KubeRenderer` → `KubeTarget`)
//! through a real `kube::Client` whose transport is the mock; time is paused, so retries,
//! backoffs and rollout timeouts take no wall-clock time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{
    AppName, Component, DeployRequest, DeploymentResult, Error, Metrics, OrgConfig, Overrides, Platform, PlatformEvent,
    Progress, ReleaseCause, RevisionState, Step,
};
use paved_kube::KubeRenderer;
use paved_kube::live::{KubeTarget, MissingKinds, RetryPolicy};
use paved_kube::testing::{MockApiServer, RecordedRequest, RolloutScript};
use serde_json::{Value, json};

const NS: &str = "shop-production";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop-production/deployments/shop";
const HPA: &str = "/apis/autoscaling/v2/namespaces/shop-production/horizontalpodautoscalers/shop";

fn image(tag: &str) -> String {
    format!("ghcr.io/company/shop:{tag}")
}

/// `shop` in production with 3 replicas; `hpa: false` switches the autoscaler off (then the
/// Deployment owns `spec.replicas` and rolls out 3 replicas).
fn request(tag: &str, hpa: bool) -> DeployRequest {
    let mut o = Overrides::default();
    if !hpa {
        o.disabled = vec![Component::Hpa];
    }
    DeployRequest::new("shop", &image(tag), "production").unwrap().with_replicas(3).with_overrides(o)
}

#[derive(Default, Clone)]
struct Recorder {
    progress: Arc<Mutex<Vec<Progress>>>,
    events: Arc<Mutex<Vec<PlatformEvent>>>,
}

impl Recorder {
    fn messages(&self) -> Vec<String> {
        self.progress.lock().unwrap().iter().map(|p| p.message.clone()).collect()
    }
    fn results(&self) -> Vec<DeploymentResult> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                PlatformEvent::DeploymentFinished { result, .. } => Some(*result),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl Metrics for Recorder {
    async fn record(&self, event: &PlatformEvent) -> paved_core::Result<()> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

struct Fixture {
    server: MockApiServer,
    target: KubeTarget,
    platform: Platform,
    rec: Recorder,
}

fn fixture_with(configure: impl FnOnce(KubeTarget) -> KubeTarget) -> Fixture {
    fixture_of(OrgConfig::default(), configure)
}

/// A platform deploying with `config` (every environment on the kube target) through a target
/// `configure` sets up, on a new scripted server.
fn fixture_of(mut config: OrgConfig, configure: impl FnOnce(KubeTarget) -> KubeTarget) -> Fixture {
    let (client, server) = MockApiServer::start();
    let target = configure(KubeTarget::with_client(client, "mock cluster").retry_policy(RetryPolicy::new(
        4,
        Duration::from_millis(100),
        Duration::from_secs(1),
    )));
    for env in config.environments.values_mut() {
        env.target = "kube".into();
    }
    let rec = Recorder::default();
    let progress = rec.progress.clone();
    let platform = Platform::builder()
        .config(config)
        .renderer(KubeRenderer)
        .deployer(target.clone())
        .metrics(rec.clone())
        .actor("tester")
        .on_progress(move |p| progress.lock().unwrap().push(p.clone()))
        .build()
        .unwrap();
    Fixture { server, target, platform, rec }
}

fn fixture() -> Fixture {
    fixture_with(|t| t)
}

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

fn live_image(server: &MockApiServer) -> String {
    server.get(DEPLOYMENT).expect("deployment exists")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string()
}

fn applies(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests.iter().filter(|r| r.is_apply()).collect()
}

fn history_secrets(server: &MockApiServer) -> Vec<String> {
    server.objects_in(NS).into_iter().filter(|o| o.starts_with("Secret/paved.")).collect()
}

#[tokio::test(start_paused = true)]
async fn first_deploy_to_an_empty_namespace() {
    let f = fixture();
    let outcome = f.platform.deploy(&request("v1", false)).await.expect("deploy succeeds");
    assert!(outcome.changed);
    assert_eq!(outcome.record.revision, 1);
    assert_eq!(outcome.record.state, Some(RevisionState::Deployed));
    assert!(outcome.location.contains("mock cluster") && outcome.location.contains(NS), "{}", outcome.location);

    // History first (an empty list in a namespace that does not exist yet); then, before
    // anything is applied, the ServiceMonitor's kind (not a built-in one) is discovered; then
    // the namespace, and the pending revision is recorded before the app's objects.
    let all = f.server.requests();
    assert_eq!(all[0].method, "GET");
    assert_eq!(all[0].path, format!("/api/v1/namespaces/{NS}/secrets"));
    assert!(all[0].query["labelSelector"].contains("paved.dev/record=release"));
    let at = |what: &dyn Fn(&RecordedRequest) -> bool| all.iter().position(what).expect("the request");
    let namespace = at(&|r| r.is_apply() && r.path == format!("/api/v1/namespaces/{NS}"));
    let recorded = at(&|r| r.method == "POST" && r.path == format!("/api/v1/namespaces/{NS}/secrets"));
    let first_object = at(&|r| r.is_apply() && r.path != format!("/api/v1/namespaces/{NS}"));
    assert!(at(&|r| r.path == "/apis/monitoring.coreos.com/v1") < namespace);
    assert!(namespace < recorded && recorded < first_object);
    let requests: Vec<RecordedRequest> = all[namespace..].to_vec();

    // Every object by server-side apply as field manager paved, not forced, minimal payloads
    // (exactly the rendered objects), in dependency order.
    let plan = f.platform.plan(&request("v1", false)).await.unwrap();
    let applied = applies(&requests);
    assert_eq!(applied.len(), plan.manifests.len());
    let kinds: Vec<&str> = applied.iter().map(|r| r.body.as_ref().unwrap()["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        // Helm's install order: the network policy and the PDB are in place before a pod runs.
        [
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "ServiceAccount",
            "Service",
            "Deployment",
            "Ingress",
            "ServiceMonitor"
        ]
    );
    for r in &applied {
        assert_eq!(r.query.get("fieldManager").map(String::as_str), Some("paved"), "{r:?}");
        assert_eq!(r.query.get("force"), None, "no force unless asked: {r:?}");
        let body = r.body.as_ref().unwrap();
        let rendered =
            plan.manifests.get(body["kind"].as_str().unwrap(), body["metadata"]["name"].as_str().unwrap()).unwrap();
        assert_eq!(body, rendered.value(), "the apply payload is the rendered object, nothing more");
    }
    // The rollout was watched (list, then watch) and progress reported.
    assert!(requests.iter().any(|r| r.is_watch() && r.path.ends_with("/deployments")));
    let messages = f.rec.messages();
    assert!(messages.iter().any(|m| m == "deployment shop: 1/3 updated, 0/3 available"), "{messages:#?}");
    assert!(messages.iter().any(|m| m == "deployment shop: 3/3 updated, 3/3 available"), "{messages:#?}");
    let watch: Vec<Progress> =
        f.rec.progress.lock().unwrap().iter().filter(|p| p.step == Step::Watch).cloned().collect();
    assert_eq!(watch.first().unwrap().done, Some((0, 3)));
    assert_eq!(watch.last().unwrap().done, Some((3, 3)));

    // Objects and history are in the cluster.
    let objects = f.server.objects_in(NS);
    for o in ["Deployment/shop", "Service/shop", "ServiceAccount/shop", "Secret/paved.shop.production.v1"] {
        assert!(objects.contains(&o.to_string()), "{o} missing: {objects:?}");
    }
    let history = f.platform.history(&app(), "production").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, Some(RevisionState::Deployed));
    assert_eq!(history[0].image, image("v1"));
    assert_eq!(history[0].deployed_by, "tester");
    assert_eq!(f.rec.results(), [DeploymentResult::Success]);

    let status = f.platform.status(&app(), "production").await.unwrap();
    assert!(status.in_sync, "{status:?}");
    assert!(status.detail.contains("3/3 pods ready") && status.detail.contains(&image("v1")), "{}", status.detail);
}

#[tokio::test(start_paused = true)]
async fn redeploy_with_a_new_image_and_unchanged_redeploy() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    let outcome = f.platform.deploy(&request("v2", false)).await.unwrap();
    assert!(outcome.changed);
    assert_eq!(outcome.record.revision, 2);
    assert_eq!(live_image(&f.server), image("v2"));
    let d = f.server.get(DEPLOYMENT).unwrap();
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);

    f.server.clear_requests();
    let again = f.platform.deploy(&request("v2", false)).await.unwrap();
    assert!(!again.changed, "same objects: no new revision");
    assert_eq!(again.record.revision, 2);
    assert!(!f.server.requests().iter().any(|r| r.method == "POST"), "no revision recorded");
    assert!(!applies(&f.server.requests()).is_empty(), "objects are re-applied (repairs drift)");

    let history = f.platform.history(&app(), "production").await.unwrap();
    let states: Vec<_> = history.iter().map(|r| (r.revision, r.state)).collect();
    assert_eq!(states, [(2, Some(RevisionState::Deployed)), (1, Some(RevisionState::Superseded))]);
    assert_eq!(f.rec.results(), [DeploymentResult::Success, DeploymentResult::Success, DeploymentResult::Unchanged]);
}

/// A rollback's policy check sees the objects it would restore: the history in the cluster
/// keeps them.
#[tokio::test(start_paused = true)]
async fn a_stored_revisions_objects_are_read_back_for_the_rollback_check() {
    use paved_core::Deployer;
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.platform.deploy(&request("v2", false)).await.unwrap();
    let key = paved_core::ReleaseKey::new(app(), "production");
    let objects = f.target.revision_objects(&key, 1).await.unwrap().expect("revision 1");
    let deployment = objects.get("Deployment", "shop").expect("the Deployment");
    assert_eq!(deployment.value().pointer("/spec/template/spec/containers/0/image").unwrap(), &image("v1"));
    assert!(f.target.revision_objects(&key, 9).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn progress_deadline_exceeded_rolls_back_automatically() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.set_rollout(|image| {
        if image.ends_with(":v2") {
            RolloutScript::DeadlineExceeded {
                reason: "ImagePullBackOff".into(),
                message: "Back-off pulling image \"ghcr.io/company/shop:v2\"".into(),
            }
        } else {
            RolloutScript::Succeed
        }
    });
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    let Error::Rollout { restored, ref message, .. } = err else { panic!("expected a rollout error, got {err:?}") };
    assert_eq!(restored, Some(3));
    assert!(message.contains("ProgressDeadlineExceeded"), "{message}");
    assert!(message.contains("made no progress for its progressDeadlineSeconds (600s)"), "{message}");
    assert!(message.contains("ImagePullBackOff"), "the pods' reasons are reported: {message}");
    assert!(message.contains("Readiness probe failed"), "failed probes are reported: {message}");
    assert!(message.contains("rolled back to the objects of revision 1 (now revision 3"), "{message}");
    assert!(err.hint().unwrap().contains("kubectl"), "{:?}", err.hint());
    assert!(!err.is_user_error(), "exit code 1");

    assert_eq!(live_image(&f.server), image("v1"), "the previous release is live again");
    let history = f.platform.history(&app(), "production").await.unwrap();
    let rows: Vec<_> = history.iter().map(|r| (r.revision, r.state, r.cause.clone(), r.image.clone())).collect();
    assert_eq!(
        rows,
        [
            (3, Some(RevisionState::Deployed), ReleaseCause::Rollback { to: 1 }, image("v1")),
            (2, Some(RevisionState::Failed), ReleaseCause::Deploy, image("v2")),
            (1, Some(RevisionState::Superseded), ReleaseCause::Deploy, image("v1")),
        ]
    );
    assert_eq!(f.rec.results(), [DeploymentResult::Success, DeploymentResult::RolledBack]);
    assert!(f.rec.messages().iter().any(|m| m == "rolling back to revision 1"));
    let status = f.platform.status(&app(), "production").await.unwrap();
    assert_eq!(status.current.revision, 3);
    // The failed revision cannot be restored.
    let err = f.platform.rollback(&app(), "production", Some(2)).await.unwrap_err();
    assert!(err.is_user_error() && err.to_string().contains("did not roll out (state failed)"), "{err}");
    // Revision 3 (current) restored the objects of 1: neither is another state to go back to.
    assert_eq!(err.hint(), Some("no other revision rolled out with other objects: there is nothing to roll back to"));
}

#[tokio::test(start_paused = true)]
async fn no_rollback_leaves_the_failed_revision_in_place() {
    let f = fixture_with(|t| t.auto_rollback(false));
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.set_rollout(|image| match image.ends_with(":v2") {
        true => RolloutScript::DeadlineExceeded {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 5m0s restarting failed container".into(),
        },
        false => RolloutScript::Succeed,
    });
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    assert!(matches!(err, Error::Rollout { restored: None, .. }), "{err:?}");
    assert!(err.to_string().contains("CrashLoopBackOff") && err.to_string().contains("`auto_rollback` false"), "{err}");
    assert_eq!(live_image(&f.server), image("v2"));
    let history = f.platform.history(&app(), "production").await.unwrap();
    assert_eq!(history[0].state, Some(RevisionState::Failed));
    assert_eq!(history[1].state, Some(RevisionState::Deployed), "revision 1 is still the last good one");
    // It reached production and failed there: not a failure to apply.
    assert_eq!(f.rec.results(), [DeploymentResult::Success, DeploymentResult::RolloutFailed]);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_that_never_finishes_times_out_and_rolls_back() {
    let f = fixture_with(|t| t.timeout(Duration::from_secs(30)));
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.set_rollout(|image| if image.ends_with(":v2") { RolloutScript::Stall } else { RolloutScript::Succeed });
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    assert!(err.to_string().contains("timed out waiting for the rollout"), "{err}");
    // Which limit fired, and that it was shorter than the controller's.
    assert!(err.to_string().contains("of deployment shop after 30s, the `timeout`"), "{err}");
    let warning = f.rec.messages().into_iter().find(|m| m.contains("is shorter than")).expect("a warning");
    assert!(
        warning.contains("the `timeout` (30s) is shorter than the Deployments' progressDeadlineSeconds (600s)"),
        "{warning}"
    );
    assert!(matches!(err, Error::Rollout { restored: Some(3), .. }), "{err:?}");
    assert_eq!(live_image(&f.server), image("v1"));
}

#[tokio::test(start_paused = true)]
async fn by_default_the_controllers_progress_deadline_fires_before_the_timeout() {
    // The default timeout is a minute past the Deployment's progressDeadlineSeconds: a rollout
    // the controller gives up on is reported as ProgressDeadlineExceeded, not "timed out"...
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    assert!(!f.rec.messages().iter().any(|m| m.contains("is shorter than")), "no warning by default");
    let started = tokio::time::Instant::now();
    f.server.set_rollout(|image| if image.ends_with(":v2") { RolloutScript::Stall } else { RolloutScript::Succeed });
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    // ...and when the controller never says so, the timeout names the deadline it waited for.
    assert!(
        err.to_string().contains(
            "after 11m, a minute past its progressDeadlineSeconds (600s), without the Deployment controller reporting ProgressDeadlineExceeded"
        ),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(660), "{:?}", started.elapsed());
    assert!(matches!(err, Error::Rollout { restored: Some(3), .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_forbidden_watch_fails_fast_with_the_rbac_hint() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    // The role lets paved apply but not watch: retrying cannot help.
    f.server.deny("watch", "deployments", 403);
    f.server.clear_requests();
    let started = tokio::time::Instant::now();
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    // Paused time jumps through backoffs: retrying until the deadline would show as 11 minutes.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let text = err.to_string();
    assert!(text.contains("is applied, but its rollout cannot be verified"), "{text}");
    assert!(text.contains("forbidden") && text.contains("cannot watch resource \"deployments\""), "{text}");
    assert!(text.contains("marked failed and left in place"), "{text}");
    assert!(err.hint().unwrap().contains("ask your cluster admin"), "{:?}", err.hint());
    assert!(matches!(err, Error::Rollout { restored: None, .. }), "{err:?}");
    let watches = f.server.requests().into_iter().filter(|r| r.verb() == "watch").count();
    assert_eq!(watches, 1, "one refused watch, no retries");
    // No rollback was attempted: the new objects stay, revision 2 is the last one recorded.
    assert_eq!(live_image(&f.server), image("v2"));
    let history = f.platform.history(&app(), "production").await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!((history[0].revision, history[0].state), (2, Some(RevisionState::Failed)));
}

#[tokio::test(start_paused = true)]
async fn a_deployment_gone_after_a_relist_is_reported_deleted() {
    let f = fixture_with(|t| t.auto_rollback(false));
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.set_rollout(|image| if image.ends_with(":v2") { RolloutScript::Stall } else { RolloutScript::Succeed });
    // Its watch expires and it is deleted meanwhile: no DELETED event, only a relist without it.
    f.server.vanish_during_next_watch(DEPLOYMENT);
    let started = tokio::time::Instant::now();
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    assert!(err.to_string().contains("deployment shop was deleted during the rollout"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "not the timeout: {:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_field_manager_conflict_names_the_manager_and_fields() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    // Someone scaled the Deployment by hand with `kubectl edit`.
    f.server.set_foreign_owner(DEPLOYMENT, "kubectl-edit", vec![("/spec/replicas".into(), json!(5))]);
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("\"kubectl-edit\"") && text.contains(".spec.replicas"), "{text}");
    assert!(text.contains("conflict applying Deployment/shop"), "{text}");
    assert!(err.hint().unwrap().contains("`force_conflicts`"), "{:?}", err.hint());
    let conflict = f
        .server
        .requests()
        .into_iter()
        .find(|r| r.is_apply() && r.path == DEPLOYMENT && !r.query.contains_key("force"));
    assert!(conflict.is_some());
    assert_eq!(live_image(&f.server), image("v1"), "the rejected Deployment was not changed");
    // Re-applying revision 1 conflicts the same way (it sets the same field): the error says
    // both, and neither revision counts as deployed.
    assert!(text.contains("rolling back to revision 1 failed too"), "{text}");
    let history = f.platform.history(&app(), "production").await.unwrap();
    let states: Vec<_> = history.iter().map(|r| (r.revision, r.state)).collect();
    assert_eq!(
        states,
        [(3, Some(RevisionState::Failed)), (2, Some(RevisionState::Failed)), (1, Some(RevisionState::Deployed))]
    );

    // With `force_conflicts` the fields are taken over.
    let forced = fixture_with(|t| t.force_conflicts(true));
    forced.platform.deploy(&request("v1", false)).await.unwrap();
    forced.server.set_foreign_owner(DEPLOYMENT, "kubectl-edit", vec![("/spec/replicas".into(), json!(5))]);
    let outcome = forced.platform.deploy(&request("v2", false)).await.expect("forced apply succeeds");
    assert_eq!(outcome.record.revision, 2);
    assert!(
        applies(&forced.server.requests()).iter().all(|r| r.query.get("force").map(String::as_str) == Some("true"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_deploy_leaves_nothing_running_unless_rollback_is_off() {
    for rollback in [true, false] {
        let f = fixture_with(|t| t.auto_rollback(rollback));
        f.server.set_rollout(|_| RolloutScript::DeadlineExceeded {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 5m0s restarting failed container".into(),
        });
        let err = f.platform.deploy(&request("v1", false)).await.unwrap_err();
        assert!(matches!(err, Error::Rollout { restored: None, .. }), "{err:?}");
        // (The failing pod and its event go with the Deployment through the garbage collector,
        // which the scripted server does not run.)
        let left: Vec<String> = f
            .server
            .objects_in(NS)
            .into_iter()
            .filter(|o| !o.starts_with("Secret/paved.") && !o.starts_with("Pod/") && !o.starts_with("Event/"))
            .collect();
        if rollback {
            // As `helm install --atomic`: the namespace and the failed record stay, nothing else.
            assert!(err.to_string().contains("no revision ever succeeded, so its objects were removed"), "{err}");
            assert!(left.is_empty(), "{left:?}");
            assert!(
                f.rec
                    .messages()
                    .iter()
                    .any(|m| m.starts_with("removed the objects of revision 1 (") && m.contains("Deployment/shop"))
            );
        } else {
            assert!(err.to_string().contains("`auto_rollback` false"), "{err}");
            assert!(left.contains(&"Deployment/shop".to_string()), "{left:?}");
        }
        assert!(f.server.has_namespace(NS));
        let history = f.platform.history(&app(), "production").await.unwrap();
        assert_eq!((history.len(), history[0].state), (1, Some(RevisionState::Failed)), "{history:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_deploy_keeps_what_existed_before_and_its_crds() {
    let f = fixture_granting(&["CustomResourceDefinition"]);
    // A Service that was there before paved (paved adopts it: its apply adds paved's labels).
    f.server.insert(
        &format!("/api/v1/namespaces/{NS}"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    );
    let service = format!("/api/v1/namespaces/{NS}/services/shop");
    f.server.insert(
        &service,
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "shop", "namespace": NS, "annotations": {"team.example.com/owner": "someone"}}}),
    );
    f.server.set_rollout(|_| RolloutScript::DeadlineExceeded {
        reason: "CrashLoopBackOff".into(),
        message: "back-off".into(),
    });
    let err = f.platform.deploy(&request_with_extra("v1", WIDGET_CRD)).await.unwrap_err();
    assert!(err.to_string().contains("its objects were removed"), "{err}");
    assert!(f.server.get(DEPLOYMENT).is_none(), "what it created goes");
    assert!(f.server.get(&service).is_some(), "what existed before stays");
    // A CRD stays: deleting it would delete every object of its kind, everywhere.
    assert!(f.server.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgetz.example.com").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_the_first_deploy_records_nothing_as_deployed() {
    let f = fixture();
    f.server.insert(
        &format!("/api/v1/namespaces/{NS}"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    );
    f.server.insert(DEPLOYMENT, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "namespace": NS}, "spec": {"replicas": 5}}));
    f.server.set_foreign_owner(DEPLOYMENT, "helm", vec![("/spec/replicas".into(), json!(5))]);
    let err = f.platform.deploy(&request("v1", false)).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("\"helm\""), "{err}");
    let history = f.platform.history(&app(), "production").await.unwrap();
    assert!(history.iter().all(|r| r.state != Some(RevisionState::Deployed)), "{history:?}");
    assert!(matches!(f.platform.status(&app(), "production").await, Err(Error::NotFound { .. })));
    // The cleanup of a failed first deploy leaves what is not paved's alone.
    assert_eq!(f.server.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 5);
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_connection_resets_are_retried() {
    let f = fixture();
    f.server.reset_next("GET", "/secrets", 1);
    f.server.fail_next("PATCH", "/deployments/shop", 500, 2);
    f.server.fail_next("PATCH", "/services/shop", 429, 1);
    let outcome = f.platform.deploy(&request("v1", false)).await.expect("retries succeed");
    assert_eq!(outcome.record.revision, 1);
    let requests = f.server.requests();
    let deployment_applies = requests.iter().filter(|r| r.is_apply() && r.path == DEPLOYMENT).count();
    assert_eq!(deployment_applies, 3, "two 500s, then success");
    let history_reads =
        requests.iter().filter(|r| r.method == "GET" && r.path == format!("/api/v1/namespaces/{NS}/secrets")).count();
    assert_eq!(history_reads, 2, "a reset, then success");

    // A server that keeps failing: the error says so after the attempts, with a hint.
    f.server.fail_next("PATCH", "/deployments/shop", 503, 100);
    f.server.clear_requests();
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert!(err.hint().is_some());
    let attempts = f.server.requests().iter().filter(|r| r.is_apply() && r.path == DEPLOYMENT).count();
    // 4 attempts for v2, then the rollback's apply of v1 also hits the failing server 4 times.
    assert_eq!(attempts, 8);
}

#[tokio::test(start_paused = true)]
async fn a_watch_disconnected_mid_rollout_is_re_established() {
    let f = fixture();
    f.server.disconnect_next_watch_after(2);
    let outcome = f.platform.deploy(&request("v1", false)).await.expect("the rollout is followed to the end");
    assert_eq!(outcome.record.revision, 1);
    let watches: Vec<RecordedRequest> = f.server.requests().into_iter().filter(|r| r.is_watch()).collect();
    assert!(watches.len() >= 2, "the watch was re-established: {watches:#?}");
    assert!(watches[1].query.contains_key("resourceVersion"), "{:?}", watches[1]);
    assert!(f.rec.messages().iter().any(|m| m == "deployment shop: 3/3 updated, 3/3 available"));
}

/// Rollouts of images ending with `suffix` crash-loop; the others succeed.
fn crash_loop_of(suffix: &'static str) -> impl Fn(&str) -> RolloutScript + Send + 'static {
    move |image| {
        if image.ends_with(suffix) {
            RolloutScript::DeadlineExceeded { reason: "CrashLoopBackOff".into(), message: "back-off".into() }
        } else {
            RolloutScript::Succeed
        }
    }
}

fn live_replicas(server: &MockApiServer) -> i64 {
    server.get(DEPLOYMENT).unwrap()["spec"]["replicas"].as_i64().unwrap()
}

/// `spec.replicas` of paved's Deployment, as HPA switches in both directions, replica changes
/// and the autoscaler's own writes go through a server that resets a field its applier drops
/// and makes the autoscaler (`scale` subresource) own what it writes.
#[tokio::test(start_paused = true)]
async fn the_hpa_switched_on_off_and_on_keeps_the_replicas_and_the_minimum() {
    let f = fixture();
    // Off, 5 replicas.
    f.platform.deploy(&request("v1", false).with_replicas(5)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 5);
    // On (production: min 3, max 10): not reset to 1 on the way.
    f.platform.deploy(&request("v2", true)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 5);
    assert_eq!(f.server.replica_history(DEPLOYMENT), [5]);
    assert!(
        f.rec
            .messages()
            .iter()
            .any(|m| m.contains("handed spec.replicas of deployment shop over to its autoscaler at 5"))
    );
    // The autoscaler scales; a new image keeps its choice.
    f.server.scale(DEPLOYMENT, 7);
    f.platform.deploy(&request("v3", true)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 7);
    // Off again with 4: the autoscaler owns the field and its value differs, which is a
    // conflict for a plain apply; its HPA goes first and paved takes the field back.
    f.platform.deploy(&request("v4", false).with_replicas(4)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 4);
    assert!(f.server.get(HPA).is_none());
    // On once more, from 4 replicas owned by paved again.
    f.platform.deploy(&request("v5", true)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 4);
    assert_eq!(f.server.replica_history(DEPLOYMENT), [5, 7, 4]);
    // Below the minimum, the handover starts at the minimum.
    f.platform.deploy(&request("v6", false).with_replicas(2)).await.unwrap();
    f.platform.deploy(&request("v7", true)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 3);
    assert!(f.server.replica_history(DEPLOYMENT).iter().all(|n| *n >= 2), "{:?}", f.server.replica_history(DEPLOYMENT));
    let history = f.platform.history(&app(), "production").await.unwrap();
    assert!(history.iter().all(|r| r.state != Some(RevisionState::Failed)), "{history:?}");
}

#[tokio::test(start_paused = true)]
async fn a_new_app_with_an_hpa_starts_at_its_minimum() {
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    // Created at the HPA's minimum (production: 3), not at the default of 1.
    assert_eq!(f.server.replica_history(DEPLOYMENT), [3]);
    assert!(
        f.rec.messages().iter().any(|m| m == "deployment shop: 3/3 updated, 3/3 available"),
        "{:#?}",
        f.rec.messages()
    );
    // The next deploy hands the field over without changing it.
    f.platform.deploy(&request("v2", true)).await.unwrap();
    assert_eq!(f.server.replica_history(DEPLOYMENT), [3]);
}

#[tokio::test(start_paused = true)]
async fn a_rollback_across_an_hpa_switch_restores_the_replicas() {
    // Off (2 replicas) → on (fails) → back to off: the handover manager holds 3 (the minimum)
    // and the restore takes spec.replicas back to 2.
    let f = fixture();
    f.platform.deploy(&request("v1", false).with_replicas(2)).await.unwrap();
    f.server.set_rollout(crash_loop_of(":v2"));
    let err = f.platform.deploy(&request("v2", true)).await.unwrap_err();
    assert!(matches!(err, Error::Rollout { restored: Some(3), .. }), "{err}");
    assert!(!err.to_string().contains("failed too"), "{err}");
    assert_eq!(live_replicas(&f.server), 2);
    assert_eq!(live_image(&f.server), image("v1"));
    assert!(f.server.get(HPA).is_none(), "the failed revision's HPA is gone");

    // On (scaled by the autoscaler to 6) → off (fails) → back to on: the autoscaler's HPA is
    // restored and the replicas stay within its bounds.
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    f.server.scale(DEPLOYMENT, 6);
    f.server.set_rollout(crash_loop_of(":v2"));
    let err = f.platform.deploy(&request("v2", false).with_replicas(2)).await.unwrap_err();
    assert!(matches!(err, Error::Rollout { restored: Some(3), .. }), "{err}");
    assert!(!err.to_string().contains("failed too"), "{err}");
    assert!(f.server.get(HPA).is_some(), "the HPA is back");
    assert_eq!(live_replicas(&f.server), 3, "the handover brings 2 up to the minimum");
}

#[tokio::test(start_paused = true)]
async fn a_scale_by_hand_is_a_conflict_not_silently_reverted() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.scale_as(DEPLOYMENT, "kubectl", 6);
    let err = f.platform.deploy(&request("v2", false)).await.unwrap_err();
    assert!(err.to_string().contains("\"kubectl\" also manages .spec.replicas"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn replicas_below_the_autoscalers_minimum_are_brought_up_to_it() {
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    // Below the minimum (3 in production), e.g. scaled by hand or a minimum raised since.
    f.server.scale(DEPLOYMENT, 2);
    f.platform.deploy(&request("v2", true)).await.unwrap();
    assert_eq!(live_replicas(&f.server), 3);
    assert!(f.rec.messages().iter().any(|m| m.contains("over to its autoscaler at 3")));
}

#[tokio::test(start_paused = true)]
async fn autoscalers_that_cannot_be_listed_are_a_warning() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.deny("list", "horizontalpodautoscalers", 403);
    f.platform.deploy(&request("v2", false)).await.unwrap();
    assert!(f.rec.messages().iter().any(|m| m.contains("cannot list the autoscalers in shop-production (forbidden)")));
}

#[tokio::test(start_paused = true)]
async fn someone_elses_autoscaler_keeps_its_replicas_and_the_conflict_is_reported() {
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    // The HPA was taken over by someone else (its labels say so) and scaled the Deployment.
    let mut hpa = f.server.get(HPA).unwrap();
    hpa["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "keda"});
    f.server.insert(HPA, hpa);
    f.server.scale(DEPLOYMENT, 6);
    let err = f.platform.deploy(&request("v2", false).with_replicas(2)).await.unwrap_err();
    assert!(err.to_string().contains("\"kube-controller-manager\" also manages .spec.replicas"), "{err}");
    assert!(f.server.get(HPA).is_some());
}

#[tokio::test(start_paused = true)]
async fn switching_the_hpa_off_prunes_it_and_nothing_else() {
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    assert!(f.server.get(HPA).is_some());
    // Objects paved does not own, in the same namespace: never touched.
    f.server.insert(
        &format!("/api/v1/namespaces/{NS}/configmaps/someone-elses"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "someone-elses", "namespace": NS}}),
    );
    f.server.clear_requests();
    let outcome = f.platform.deploy(&request("v1", false)).await.unwrap();
    assert_eq!(outcome.record.revision, 2);
    assert!(f.server.get(HPA).is_none(), "the HPA is pruned");
    let deletes: Vec<RecordedRequest> = f.server.requests().into_iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].path, HPA);
    assert!(deletes[0].body.as_ref().unwrap().pointer("/preconditions/uid").is_some(), "deletes are UID-conditional");
    assert!(f.server.objects_in(NS).contains(&"ConfigMap/someone-elses".to_string()));
    // Deleted before the Deployment is applied (else the autoscaler would scale it back).
    assert!(
        f.rec
            .messages()
            .iter()
            .any(|m| m == "deleted HorizontalPodAutoscaler/shop before taking spec.replicas of deployment shop back"),
        "{:#?}",
        f.rec.messages()
    );
    let requests = f.server.requests();
    let delete_at = requests.iter().position(|r| r.method == "DELETE").unwrap();
    let apply_at = requests.iter().position(|r| r.is_apply() && r.path == DEPLOYMENT).unwrap();
    assert!(delete_at < apply_at, "the HPA goes first");

    // An object that someone else took over (its labels say it is not paved's) is not pruned.
    f.platform.deploy(&request("v2", true)).await.unwrap();
    let mut hpa = f.server.get(HPA).unwrap();
    hpa["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "someone-else"});
    f.server.insert(HPA, hpa);
    f.platform.deploy(&request("v3", false)).await.unwrap();
    assert!(f.server.get(HPA).is_some(), "an object paved does not own is left alone");
}

#[tokio::test(start_paused = true)]
async fn destroy_removes_everything_paved_created_and_nothing_else() {
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    f.platform.deploy(&request("v2", true)).await.unwrap();
    f.server.insert(
        "/api/v1/namespaces/other/configmaps/keep",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "other"}}),
    );
    let outcome = f.platform.destroy(&app(), "production").await.unwrap();
    assert!(outcome.deleted.contains(&"Deployment/shop".to_string()), "{:?}", outcome.deleted);
    assert!(outcome.deleted.contains(&"Namespace/shop-production".to_string()), "{:?}", outcome.deleted);
    assert!(
        outcome.deleted.iter().any(|d| d.starts_with("Secret/paved.shop.production.v")),
        "history deleted too: {:?}",
        outcome.deleted
    );
    assert!(f.server.objects_in(NS).is_empty(), "{:?}", f.server.objects_in(NS));
    assert!(!f.server.has_namespace(NS));
    assert_eq!(f.server.objects_in("other"), ["ConfigMap/keep"]);
    assert!(matches!(f.platform.status(&app(), "production").await, Err(Error::NotFound { .. })));
    // Nothing left: a second destroy says so.
    assert!(matches!(f.platform.destroy(&app(), "production").await, Err(Error::NotFound { .. })));
}

#[tokio::test(start_paused = true)]
async fn destroy_keeps_a_namespace_holding_objects_paved_does_not_own() {
    let f = fixture();
    f.platform.deploy(&request("v1", true)).await.unwrap();
    // Someone else's object in the app's own namespace: deleting the namespace would delete it.
    f.server.insert(
        &format!("/api/v1/namespaces/{NS}/configmaps/theirs"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": NS}}),
    );
    let outcome = f.platform.destroy(&app(), "production").await.unwrap();
    assert!(outcome.deleted.contains(&"Deployment/shop".to_string()), "{:?}", outcome.deleted);
    assert!(!outcome.deleted.iter().any(|d| d.starts_with("Namespace/")), "{:?}", outcome.deleted);
    assert!(f.server.has_namespace(NS));
    assert_eq!(f.server.objects_in(NS), ["ConfigMap/theirs"]);
    let note = f.rec.messages().into_iter().find(|m| m.contains("kept the namespace")).expect("a report");
    assert!(note.contains("ConfigMap/theirs"), "{note}");
}

#[tokio::test(start_paused = true)]
async fn destroy_keeps_a_namespace_with_a_resource_quota_or_a_bare_pod() {
    for (path, object, key) in [
        (
            format!("/api/v1/namespaces/{NS}/resourcequotas/compute"),
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": NS}}),
            "ResourceQuota/compute",
        ),
        (
            format!("/api/v1/namespaces/{NS}/pods/debug"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": NS}}),
            "Pod/debug",
        ),
    ] {
        let f = fixture();
        f.platform.deploy(&request("v1", true)).await.unwrap();
        // A pod of the app's own ReplicaSet goes with it and keeps nothing.
        f.server.insert(
            &format!("/api/v1/namespaces/{NS}/pods/shop-abc12"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shop-abc12", "namespace": NS,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-abc", "uid": "1",
                    "controller": true}]}}),
        );
        f.server.insert(&path, object);
        let outcome = f.platform.destroy(&app(), "production").await.unwrap();
        assert!(!outcome.deleted.iter().any(|d| d.starts_with("Namespace/")), "{key}: {:?}", outcome.deleted);
        assert!(f.server.has_namespace(NS), "{key}");
        let note = f.rec.messages().into_iter().find(|m| m.contains("kept the namespace")).expect("a report");
        assert!(note.contains(key) && !note.contains("shop-abc12"), "{note}");
    }
}

#[tokio::test(start_paused = true)]
async fn destroy_sees_custom_resources_and_says_what_it_could_not_list() {
    // Someone else's custom resource keeps the namespace; one of the app's (by its labels),
    // though no revision lists it, is swept.
    let f = fixture();
    f.server.serve("example.com/v1", "widgetz", "Widget", true);
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.insert(
        &format!("/apis/example.com/v1/namespaces/{NS}/widgetz/theirs"),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "theirs", "namespace": NS}}),
    );
    let mine = format!("/apis/example.com/v1/namespaces/{NS}/widgetz/mine");
    let labels = f.server.get(DEPLOYMENT).unwrap()["metadata"]["labels"].clone();
    f.server.insert(
        &mine,
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "mine", "namespace": NS, "labels": labels}}),
    );
    let outcome = f.platform.destroy(&app(), "production").await.unwrap();
    assert!(outcome.deleted.contains(&"Widget/mine".to_string()), "{:?}", outcome.deleted);
    assert!(f.server.get(&mine).is_none());
    assert!(f.server.has_namespace(NS));
    let note = f.rec.messages().into_iter().find(|m| m.contains("kept the namespace")).expect("a report");
    assert!(note.contains("Widget/theirs"), "{note}");

    // A group whose resources cannot be read: the namespace cannot be checked, so it stays.
    let f = fixture();
    f.server.serve("example.com/v1", "widgetz", "Widget", true);
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.fail_next("GET", "/apis/example.com/v1", 503, 100);
    f.platform.destroy(&app(), "production").await.unwrap();
    assert!(f.server.has_namespace(NS));
    let note = f.rec.messages().into_iter().find(|m| m.contains("kept the namespace")).expect("a report");
    assert!(note.contains("cannot list example.com/v1"), "{note}");
}

#[tokio::test(start_paused = true)]
async fn destroy_keeps_a_shared_namespace() {
    let (client, server) = MockApiServer::start();
    let mut config = OrgConfig::default();
    config.app.namespace = "{team}-{env}".into();
    for env in config.environments.values_mut() {
        env.target = "kube".into();
    }
    let target = KubeTarget::with_client(client, "mock").namespace_template("{team}-{env}");
    let platform = Platform::builder().config(config).renderer(KubeRenderer).deployer(target).build().unwrap();
    platform.deploy(&request("v1", false)).await.unwrap();
    let other = DeployRequest::new("cart", "ghcr.io/company/cart:v1", "production").unwrap().with_replicas(3);
    platform.deploy(&other).await.unwrap();
    // `status` finds the history by searching every namespace ({team} is unknown).
    let status = platform.status(&app(), "production").await.unwrap();
    assert!(status.location.contains("platform-production"), "{}", status.location);
    let outcome = platform.destroy(&app(), "production").await.unwrap();
    assert!(!outcome.deleted.iter().any(|d| d.starts_with("Namespace/")), "{:?}", outcome.deleted);
    let left = server.objects_in("platform-production");
    assert!(
        left.contains(&"Deployment/cart".to_string()) && !left.contains(&"Deployment/shop".to_string()),
        "{left:?}"
    );
    assert!(server.has_namespace("platform-production"));
}

#[tokio::test(start_paused = true)]
async fn history_is_bounded_by_history_max() {
    let f = fixture_with(|t| t.history_max(3));
    for tag in ["v1", "v2", "v3", "v4", "v5"] {
        f.platform.deploy(&request(tag, false)).await.unwrap();
    }
    let history = f.platform.history(&app(), "production").await.unwrap();
    let revisions: Vec<u64> = history.iter().map(|r| r.revision).collect();
    assert_eq!(revisions, [5, 4, 3]);
    assert_eq!(history_secrets(&f.server).len(), 3);
    assert_eq!(history[0].state, Some(RevisionState::Deployed));
}

#[tokio::test(start_paused = true)]
async fn history_stays_bounded_through_failed_deploys() {
    for auto_rollback in [true, false] {
        let f = fixture_with(|t| if auto_rollback { t.history_max(3) } else { t.history_max(3).auto_rollback(false) });
        f.platform.deploy(&request("v1", false)).await.unwrap();
        f.server.set_rollout(|image| {
            if image.ends_with(":v1") {
                RolloutScript::Succeed
            } else {
                RolloutScript::DeadlineExceeded {
                    reason: "CrashLoopBackOff".into(),
                    message: "back-off restarting".into(),
                }
            }
        });
        for tag in ["v2", "v3", "v4"] {
            f.platform.deploy(&request(tag, false)).await.unwrap_err();
        }
        let history = f.platform.history(&app(), "production").await.unwrap();
        assert_eq!(
            history.len(),
            3,
            "auto_rollback {auto_rollback}: {:?}",
            history.iter().map(|r| r.revision).collect::<Vec<_>>()
        );
        assert_eq!(history_secrets(&f.server).len(), 3);
        assert_eq!(history[0].revision, if auto_rollback { 7 } else { 4 }, "the newest revisions are kept");
    }
}

#[tokio::test(start_paused = true)]
async fn rollback_restores_an_earlier_revision_as_a_new_one() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.platform.deploy(&request("v2", false)).await.unwrap();
    let outcome = f.platform.rollback(&app(), "production", None).await.unwrap();
    assert_eq!(outcome.record.revision, 3);
    assert_eq!(outcome.record.cause, ReleaseCause::Rollback { to: 1 });
    assert_eq!(live_image(&f.server), image("v1"));
    let err = f.platform.rollback(&app(), "production", Some(1)).await.unwrap_err();
    assert!(err.is_user_error(), "same objects as the current revision: {err}");
    let err = f.platform.rollback(&app(), "production", Some(9)).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(err.hint(), Some("revisions to roll back to: 2"), "not those with the current objects");
    let outcome = f.platform.rollback(&app(), "production", Some(2)).await.unwrap();
    assert_eq!((outcome.record.revision, live_image(&f.server)), (4, image("v2")));
}

#[tokio::test(start_paused = true)]
async fn status_reports_drift() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    let mut d = f.server.get(DEPLOYMENT).unwrap();
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ghcr.io/company/shop:hotfix");
    f.server.insert(DEPLOYMENT, d);
    f.server.insert(
        HPA.replace("horizontalpodautoscalers/shop", "horizontalpodautoscalers/unused").as_str(),
        json!({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2", "metadata": {"name": "unused"}}),
    );
    let status = f.platform.status(&app(), "production").await.unwrap();
    assert!(!status.in_sync);
    assert!(status.detail.contains("image drifted"), "{}", status.detail);
}

/// The release `tag` with extra manifests.
fn request_with_extra(tag: &str, yaml: &str) -> DeployRequest {
    let mut o = Overrides::default();
    o.disabled = vec![Component::Hpa];
    o.extra_manifests = vec![paved_core::ManifestFile::parse("extra.yaml", yaml).unwrap()];
    DeployRequest::new("shop", &image(tag), "production").unwrap().with_replicas(3).with_overrides(o)
}

/// A workload of an extra manifest, running `image`.
fn workload(kind: &str, name: &str, image: &str) -> String {
    let api = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    let extra = match kind {
        "StatefulSet" => "  serviceName: db\n  replicas: 2\n",
        "Job" => "  backoffLimit: 6\n",
        _ => "",
    };
    let selector =
        if kind == "Job" { String::new() } else { format!("  selector:\n    matchLabels:\n      app: {name}\n") };
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{extra}{selector}  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      restartPolicy: {}\n      containers:\n        - name: main\n          image: {image}\n",
        if kind == "Job" { "Never" } else { "Always" }
    )
}

#[tokio::test(start_paused = true)]
async fn statefulsets_daemonsets_and_jobs_of_extra_manifests_are_waited_for() {
    for kind in ["StatefulSet", "DaemonSet", "Job"] {
        let f = fixture_with(|t| t.timeout(Duration::from_secs(120)));
        let good = workload(kind, "side", "ghcr.io/company/side:v1");
        f.platform.deploy(&request_with_extra("v1", &good)).await.unwrap();
        let ready = format!("{} side: ", kind.to_lowercase());
        assert!(f.rec.messages().iter().any(|m| m.starts_with(&ready) && m.contains("available")), "{kind}");
        // A crash-looping (or, for the Job, failing) new version is not recorded as deployed:
        // it fails the rollout, and the previous revision comes back.
        f.server.set_rollout(crash_loop_of("side:v2"));
        // (A Job's template is immutable: a new version is a new Job.)
        let bad = workload(kind, if kind == "Job" { "side-2" } else { "side" }, "ghcr.io/company/side:v2");
        let err = f.platform.deploy(&request_with_extra("v2", &bad)).await.unwrap_err();
        assert!(matches!(err, Error::Rollout { restored: Some(3), .. }), "{kind}: {err:?}");
        let text = err.to_string();
        if kind == "Job" {
            assert!(text.contains("job \"side-2\" failed: Job has reached the specified backoff limit"), "{text}");
        } else {
            assert!(
                text.contains(&format!("timed out waiting for the rollout of {} side after 2m", kind.to_lowercase())),
                "{text}"
            );
            assert!(text.contains("CrashLoopBackOff"), "the pods' reasons: {text}");
        }
        let history = f.platform.history(&app(), "production").await.unwrap();
        assert_eq!(history.iter().find(|r| r.revision == 2).unwrap().state, Some(RevisionState::Failed), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_statefulset_stuck_on_a_failed_revision_is_rolled_back_by_force() {
    // With OrderedReady, the controller waits for the failed pod to become ready before it
    // applies the old template again: paved deletes it (Kubernetes' forced rollback), both in
    // the automatic rollback and in a rollback by hand after --no-rollback.
    for automatic in [true, false] {
        let f = fixture_with(|t| t.timeout(Duration::from_secs(120)).auto_rollback(automatic));
        f.platform
            .deploy(&request_with_extra("v1", &workload("StatefulSet", "db", "ghcr.io/company/db:v1")))
            .await
            .unwrap();
        f.server.set_rollout(crash_loop_of("db:v2"));
        let bad = request_with_extra("v2", &workload("StatefulSet", "db", "ghcr.io/company/db:v2"));
        let err = f.platform.deploy(&bad).await.unwrap_err();
        if !automatic {
            // Left in place; deploying the good version again replaces it.
            assert!(matches!(err, Error::Rollout { restored: None, .. }), "{err}");
            let good = request_with_extra("v1", &workload("StatefulSet", "db", "ghcr.io/company/db:v1"));
            f.platform.deploy(&good).await.unwrap();
        } else {
            assert!(matches!(err, Error::Rollout { restored: Some(3), .. }), "{err}");
        }
        let forced = f.rec.messages().into_iter().find(|m| m.contains("forced rollback")).expect("a report");
        assert!(forced.contains("db/db-0"), "{forced}");
        assert!(f.server.get(&format!("/api/v1/namespaces/{NS}/pods/db-0")).is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn a_statefulset_whose_template_stays_keeps_its_pods() {
    // Stuck on a failed revision and left in place; a deploy that changes only the app keeps
    // the StatefulSet's template, so its pods are not touched (only a replaced template makes
    // the old revision's pods go).
    let f = fixture_with(|t| t.timeout(Duration::from_secs(60)).auto_rollback(false));
    f.platform
        .deploy(&request_with_extra("v1", &workload("StatefulSet", "db", "ghcr.io/company/db:v1")))
        .await
        .unwrap();
    f.server.set_rollout(crash_loop_of("db:v2"));
    let failing = workload("StatefulSet", "db", "ghcr.io/company/db:v2");
    f.platform.deploy(&request_with_extra("v2", &failing)).await.unwrap_err();
    let pod = format!("/api/v1/namespaces/{NS}/pods/db-0");
    assert!(f.server.get(&pod).is_some());
    f.platform.deploy(&request_with_extra("v3", &failing)).await.unwrap_err();
    assert!(f.server.get(&pod).is_some(), "the pod of the unchanged StatefulSet stays");
    assert!(!f.rec.messages().iter().any(|m| m.contains("forced rollback")));
}

#[tokio::test(start_paused = true)]
async fn claims_and_load_balancers_are_waited_for() {
    let f = fixture_with(|t| t.timeout(Duration::from_secs(60)));
    let yaml = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: public\nspec:\n  type: LoadBalancer\n  selector:\n    app: shop\n  ports:\n    - port: 80\n";
    f.platform.deploy(&request_with_extra("v1", yaml)).await.unwrap();
    let messages = f.rec.messages();
    assert!(messages.iter().any(|m| m.starts_with("persistentvolumeclaim data: 1/1")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.starts_with("service public: 1/1")), "{messages:#?}");
    // A claim that is never bound fails the deploy (rolled back).
    f.server.set_rollout(|image| if image.is_empty() { RolloutScript::Stall } else { RolloutScript::Succeed });
    let stuck = yaml.replace("name: data", "name: data2");
    let err = f.platform.deploy(&request_with_extra("v2", &stuck)).await.unwrap_err();
    assert!(err.to_string().contains("persistentvolumeclaim data2"), "{err}");
}

/// A platform on the scripted server whose organisation grants the app's team `grants`.
fn fixture_granting(grants: &[&str]) -> Fixture {
    let toml = format!(
        "[apps.shop]\nteam = \"platform\"\n[escape_hatches.grants]\nplatform = [{}]\n",
        grants.iter().map(|g| format!("\"{g}\"")).collect::<Vec<_>>().join(", ")
    );
    fixture_of(OrgConfig::parse("paved.toml", &toml).unwrap(), |t| t)
}

const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgetz.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgetz
    singular: widget
    kind: Widget
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
";

#[tokio::test(start_paused = true)]
async fn a_crd_and_its_resource_in_one_release() {
    let f = fixture_granting(&["CustomResourceDefinition"]);
    // Its plural is not the guessable one ("widgets"): only discovery knows it.
    let yaml =
        format!("{WIDGET_CRD}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n");
    f.platform.deploy(&request_with_extra("v1", &yaml)).await.unwrap();
    let widget = format!("/apis/example.com/v1/namespaces/{NS}/widgetz/w");
    assert_eq!(f.server.get(&widget).expect("applied at the plural discovery gives")["spec"]["size"], 3);
    assert!(!f.rec.messages().iter().any(|m| m.contains("skipped")), "{:#?}", f.rec.messages());
    // The CRD was applied and established (watched) before the Widget was applied.
    let requests = f.server.requests();
    let crd_at = requests.iter().position(|r| r.is_apply() && r.path.contains("customresourcedefinitions")).unwrap();
    let watched = requests.iter().position(|r| r.is_watch() && r.path.contains("customresourcedefinitions")).unwrap();
    let widget_at = requests.iter().position(|r| r.is_apply() && r.path == widget).unwrap();
    assert!(crd_at < watched && watched < widget_at, "{crd_at} {watched} {widget_at}");
    // Destroy deletes it at the same plural.
    f.platform.destroy(&app(), "production").await.unwrap();
    assert!(f.server.get(&widget).is_none());
}

#[tokio::test(start_paused = true)]
async fn discovery_lagging_behind_an_established_crd_is_waited_for_not_skipped() {
    let f = fixture_granting(&["CustomResourceDefinition"]);
    f.server.crd_discovery_lag(3);
    let yaml = format!("{WIDGET_CRD}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {{}}\n");
    f.platform.deploy(&request_with_extra("v1", &yaml)).await.unwrap();
    assert!(f.server.get(&format!("/apis/example.com/v1/namespaces/{NS}/widgetz/w")).is_some());
    assert!(!f.rec.messages().iter().any(|m| m.contains("skipped")), "{:#?}", f.rec.messages());
}

#[tokio::test(start_paused = true)]
async fn a_cluster_scoped_custom_resource_is_applied_cluster_wide_or_refused() {
    // A `Cluster…` kind needs a grant (containment knows the convention), and goes
    // cluster-wide, without the namespace paved gives every namespaced object.
    let f = fixture_granting(&["ClusterIssuer"]);
    f.server.serve("cert-manager.io/v1", "clusterissuers", "ClusterIssuer", false);
    let issuer =
        "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\nspec:\n  acme: {}\n";
    f.platform.deploy(&request_with_extra("v1", issuer)).await.unwrap();
    let applied = f.server.get("/apis/cert-manager.io/v1/clusterissuers/letsencrypt").expect("applied cluster-wide");
    assert!(applied["metadata"].get("namespace").is_none(), "{applied}");

    // A kind containment took for namespaced, which the cluster serves cluster-scoped: refused,
    // never silently dropped, never applied outside the namespace without a grant.
    let f = fixture();
    f.server.serve("example.com/v1", "gadgets", "Gadget", false);
    let gadget = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec: {}\n";
    let err = f.platform.deploy(&request_with_extra("v1", gadget)).await.unwrap_err();
    assert!(
        err.to_string().contains("serves Gadget (example.com/v1) cluster-scoped, outside the app's namespace"),
        "{err}"
    );
    assert!(f.server.get("/apis/example.com/v1/gadgets/g").is_none());
    // Refused before anything was applied or recorded.
    assert!(f.server.get(DEPLOYMENT).is_none());
    assert!(f.platform.history(&app(), "production").await.unwrap().is_empty());

    // The same for a kind the release's own CRD defines cluster-scoped (not served yet).
    let f = fixture_granting(&["CustomResourceDefinition"]);
    let crd = WIDGET_CRD.replace("scope: Namespaced", "scope: Cluster");
    let yaml = format!("{crd}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {{}}\n");
    let err = f.platform.deploy(&request_with_extra("v1", &yaml)).await.unwrap_err();
    assert!(err.to_string().contains("serves Widget (example.com/v1) cluster-scoped"), "{err}");
    assert!(f.server.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgetz.example.com").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_404_that_is_not_a_missing_kind_is_an_error_not_a_skip() {
    let f = fixture();
    f.server.fail_next("PATCH", "/servicemonitors/shop", 404, 1);
    let err = f.platform.deploy(&request("v1", false)).await.unwrap_err();
    assert!(!err.to_string().contains("not served"), "{err}");
    assert!(err.to_string().contains("applying ServiceMonitor/shop"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_crd_that_is_not_installed_is_a_warning_or_an_error() {
    let f = fixture();
    f.server.not_served("servicemonitors");
    let outcome = f.platform.deploy(&request("v1", false)).await.expect("skipped with a warning");
    assert_eq!(outcome.record.revision, 1);
    let warning = f.rec.messages().into_iter().find(|m| m.contains("skipped ServiceMonitor/shop")).expect("a warning");
    assert!(warning.contains("Prometheus operator"), "{warning}");
    // The skipped kind is reported by status, but does not make the release unhealthy.
    let status = f.platform.status(&app(), "production").await.unwrap();
    assert!(status.in_sync, "{}", status.detail);
    assert!(
        status.detail.contains("kind not served by the cluster (skipped): ServiceMonitor/shop"),
        "{}",
        status.detail
    );

    let strict = fixture_with(|t| t.missing_kinds(MissingKinds::Error));
    strict.server.not_served("servicemonitors");
    let err = strict.platform.deploy(&request("v1", false)).await.unwrap_err();
    assert!(err.to_string().contains("CustomResourceDefinition is not installed"), "{err}");
    assert!(err.hint().unwrap().contains("disable the `service-monitor` component"), "{:?}", err.hint());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_deploy_restores_the_previous_release() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.set_rollout(|image| if image.ends_with(":v2") { RolloutScript::Stall } else { RolloutScript::Succeed });
    // The caller gives up after 5 s (Ctrl-C, a cancelled task): the deploy future is dropped
    // while it waits for the rollout.
    let dropped = tokio::time::timeout(Duration::from_secs(5), f.platform.deploy(&request("v2", false))).await;
    assert!(dropped.is_err());
    let reports = f.target.settle().await;
    assert_eq!(reports.len(), 1, "one recovery ran: {reports:?}");
    assert!(reports[0].contains("was cancelled") && reports[0].contains("now revision 3"), "{reports:?}");
    assert_eq!(live_image(&f.server), image("v1"));
    let history = f.platform.history(&app(), "production").await.unwrap();
    let rows: Vec<_> = history.iter().map(|r| (r.revision, r.state)).collect();
    assert_eq!(
        rows,
        [(3, Some(RevisionState::Deployed)), (2, Some(RevisionState::Failed)), (1, Some(RevisionState::Superseded))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_deploy_from_another_machine_waits_for_the_one_under_way() {
    let f = fixture();
    f.platform.deploy(&request("v1", false)).await.unwrap();
    f.server.set_rollout(|image| if image.ends_with(":v2") { RolloutScript::Stall } else { RolloutScript::Succeed });
    // Machine A deploys v2 (its rollout hangs); machine B (another target, same cluster) tries v3.
    let a = f.platform.clone();
    let under_way = tokio::spawn(async move { a.deploy(&request("v2", false)).await });
    while !f.server.requests().iter().any(|r| r.is_watch()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = fixture_sharing(&f);
    let err = other.deploy(&request("v3", false)).await.unwrap_err();
    assert!(err.to_string().contains("another deploy of shop in production is under way: revision 2"), "{err}");
    assert!(err.hint().unwrap().contains("`Platform::status`"), "{:?}", err.hint());
    assert_eq!(live_image(&f.server), image("v2"), "machine B changed nothing");
    // A's rollout times out and rolls back; then B can deploy.
    let a_result = under_way.await.unwrap();
    assert!(matches!(a_result, Err(Error::Rollout { restored: Some(3), .. })), "{a_result:?}");
    let outcome = other.deploy(&request("v3", false)).await.unwrap();
    assert_eq!(outcome.record.revision, 4);
}

/// A second platform and target on the same cluster, as another machine would have.
fn fixture_sharing(f: &Fixture) -> Platform {
    let mut config = OrgConfig::default();
    for env in config.environments.values_mut() {
        env.target = "kube".into();
    }
    let target = KubeTarget::with_client(f.server.client(), "mock cluster").timeout(Duration::from_secs(60));
    Platform::builder().config(config).renderer(KubeRenderer).deployer(target).actor("other").build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn many_apps_deploy_concurrently_over_one_client() {
    let f = fixture();
    let requests: Vec<DeployRequest> = (0..24)
        .map(|i| DeployRequest::new(&format!("svc-{i}"), &format!("ghcr.io/company/svc-{i}:v1"), "staging").unwrap())
        .collect();
    let outcomes = futures::future::join_all(requests.iter().map(|r| f.platform.deploy(r))).await;
    for (i, o) in outcomes.iter().enumerate() {
        let o = o.as_ref().unwrap_or_else(|e| panic!("svc-{i}: {e}"));
        assert_eq!(o.record.revision, 1);
    }
    assert!(f.server.has_namespace("svc-23-staging"));
}

#[test]
fn the_target_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KubeTarget>();
    assert_send_sync::<Platform>();
    let _: Value = json!(null);
}

/// A secret store holding one secret in memory: the subject here is what the kube target does
/// with the values (the Vault store itself is tested against a real OpenBao in paved-vault).
struct OneSecret;

#[async_trait]
impl paved_core::SecretStore for OneSecret {
    fn name(&self) -> &str {
        "memory"
    }
    async fn get(&self, path: &str) -> paved_core::Result<paved_core::SecretMap> {
        if path != "secret/payments/db" {
            return Err(Error::NotFound { what: format!("secret {path}"), hint: None });
        }
        Ok([("password".to_string(), secrecy::SecretString::from("hunter2-s3cr3t"))].into_iter().collect())
    }
    async fn put(&self, _: &str, _: paved_core::SecretMap) -> paved_core::Result<u64> {
        unreachable!("not used")
    }
    async fn list(&self, _: &str) -> paved_core::Result<Vec<String>> {
        unreachable!("not used")
    }
    async fn delete(&self, _: &str) -> paved_core::Result<()> {
        unreachable!("not used")
    }
}

#[tokio::test(start_paused = true)]
async fn sync_mode_applies_the_secret_value_and_keeps_it_out_of_the_history() {
    let (client, server) = MockApiServer::start();
    let target = KubeTarget::with_client(client, "mock cluster").timeout(Duration::from_secs(60));
    let mut config = OrgConfig::default();
    config.secrets.mode = paved_core::SecretMode::Sync;
    config.secrets.team_paths = vec!["vault://secret/payments/".into()];
    for env in config.environments.values_mut() {
        env.target = "kube".into();
    }
    let platform = Platform::builder()
        .config(config)
        .renderer(KubeRenderer)
        .deployer(target)
        .secret_store(paved_core::SecretScheme::Vault, OneSecret)
        .build()
        .unwrap();
    let mut req = request("v1", false);
    req.secrets = vec!["DB_PASSWORD=vault://secret/payments/db#password".parse().unwrap()];

    // The plan (what --dry-run shows) holds only the redacted placeholder.
    let plan = platform.plan(&req).await.unwrap();
    let secret = plan.manifests.get("Secret", "shop-secrets").expect("the app's Secret is rendered");
    assert_eq!(secret.value()["stringData"]["DB_PASSWORD"], "<redacted: vault://secret/payments/db#password>");
    assert!(!serde_json::to_string(&plan).unwrap().contains("hunter2"));

    platform.deploy(&req).await.unwrap();
    let applied = server.get(&format!("/api/v1/namespaces/{NS}/secrets/shop-secrets")).expect("the Secret is applied");
    // As `data` (base64 of hunter2-s3cr3t), not `stringData`: a key removed later goes.
    assert_eq!(applied["data"]["DB_PASSWORD"], "aHVudGVyMi1zM2NyM3Q=");
    assert!(applied.get("stringData").is_none(), "{applied}");
    let secret_apply = server
        .requests()
        .into_iter()
        .find(|r| r.is_apply() && r.path.ends_with("/secrets/shop-secrets"))
        .expect("the Secret's apply");
    assert!(secret_apply.body.as_ref().unwrap().get("stringData").is_none());
    let d = server.get(DEPLOYMENT).unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"],
        json!({"name": "shop-secrets", "key": "DB_PASSWORD"})
    );
    // The revision record kept in the cluster holds the placeholder, never the value.
    for name in history_secrets(&server) {
        let record =
            server.get(&format!("/api/v1/namespaces/{NS}/secrets/{}", name.trim_start_matches("Secret/"))).unwrap();
        assert!(!record.to_string().contains("hunter2"), "{name} holds the value");
    }
    // A reference to a missing key fails before anything is applied.
    let mut bad = request("v2", false);
    bad.secrets = vec!["DB_PASSWORD=vault://secret/payments/db#passwd".parse().unwrap()];
    let err = platform.deploy(&bad).await.unwrap_err();
    assert!(err.to_string().contains("key \"passwd\" of secret vault://secret/payments/db#passwd"), "{err}");
    assert_eq!(live_image(&server), image("v1"));

    // A key the app no longer uses leaves the cluster's Secret (with `stringData` it would
    // stay in `data` for good: the scripted server keeps it, as a real one does).
    let mut two = request("v2", false);
    two.secrets = vec![
        "DB_PASSWORD=vault://secret/payments/db#password".parse().unwrap(),
        "OLD_PASSWORD=vault://secret/payments/db#password".parse().unwrap(),
    ];
    platform.deploy(&two).await.unwrap();
    let secret = || server.get(&format!("/api/v1/namespaces/{NS}/secrets/shop-secrets")).unwrap();
    assert_eq!(secret()["data"]["OLD_PASSWORD"], "aHVudGVyMi1zM2NyM3Q=");
    platform.deploy(&request_with_secret("v3")).await.unwrap();
    assert!(secret()["data"].get("OLD_PASSWORD").is_none(), "{}", secret());
    assert_eq!(secret()["data"]["DB_PASSWORD"], "aHVudGVyMi1zM2NyM3Q=");
}

fn request_with_secret(tag: &str) -> DeployRequest {
    let mut req = request(tag, false);
    req.secrets = vec!["DB_PASSWORD=vault://secret/payments/db#password".parse().unwrap()];
    req
}
