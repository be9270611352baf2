//! End-to-end tests of the live target against a real cluster (kind, k3d, minikube, a real
//! one). Ignored by default; run them with a kubeconfig:
//!
//! ```sh
//! PAVED_E2E_KUBECONFIG=~/.kube/config [PAVED_E2E_CONTEXT=kind-kind] \
//!   cargo test -p paved-kube --features live --test e2e -- --ignored --test-threads 1
//! ```
//!
//! They deploy podinfo (`PAVED_E2E_IMAGE`, default `ghcr.io/stefanprodan/podinfo`, which
//! serves `/healthz` on 9898 as a non-root user) into a namespace of their own
//! (`paved-e2e-<pid>-dev`) and destroy it at the end.

use std::path::PathBuf;
use std::time::Duration;

use paved_core::{
    AppName, Component, DeployRequest, Error, OrgConfig, Overrides, Platform, ReleaseCause, RevisionState,
};
use paved_kube::KubeRenderer;
use paved_kube::live::KubeTarget;

fn setup() -> Option<(Platform, String, String)> {
    let Some(kubeconfig) = std::env::var_os("PAVED_E2E_KUBECONFIG").map(PathBuf::from) else {
        eprintln!("SKIPPED: set PAVED_E2E_KUBECONFIG to run the end-to-end tests against a cluster");
        return None;
    };
    let context = std::env::var("PAVED_E2E_CONTEXT").ok();
    let image = std::env::var("PAVED_E2E_IMAGE").unwrap_or_else(|_| "ghcr.io/stefanprodan/podinfo".into());
    let mut config = OrgConfig::default();
    config.app.port = 9898;
    for env in config.environments.values_mut() {
        env.target = "kube".into();
        env.monitoring = false;
    }
    let target = KubeTarget::from_kubeconfig(Some(kubeconfig), context)
        .namespace_template(&config.app.namespace)
        .timeout(Duration::from_secs(90))
        .history_max(3);
    let platform =
        Platform::builder().config(config).renderer(KubeRenderer).deployer(target).actor("e2e").build().ok()?;
    Some((platform, format!("paved-e2e-{}", std::process::id()), image))
}

fn request(app: &str, image: &str) -> DeployRequest {
    let mut o = Overrides::default();
    o.disabled = vec![Component::Hpa, Component::Ingress, Component::ServiceMonitor];
    DeployRequest::new(app, image, "dev").unwrap().with_replicas(2).with_overrides(o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: set PAVED_E2E_KUBECONFIG"]
async fn golden_path_against_a_real_cluster() {
    let Some((platform, app, image)) = setup() else { return };
    let name = AppName::new(app.as_str()).unwrap();
    let result = async {
        // First deploy to an empty namespace, then a new image.
        let v1 = platform.deploy(&request(&app, &format!("{image}:6.7.0"))).await?;
        assert_eq!(v1.record.revision, 1);
        let status = platform.status(&name, "dev").await?;
        assert!(status.in_sync, "{status:?}");
        let v2 = platform.deploy(&request(&app, &format!("{image}:6.7.1"))).await?;
        assert_eq!(v2.record.revision, 2);
        // Unchanged: no new revision.
        assert!(!platform.deploy(&request(&app, &format!("{image}:6.7.1"))).await?.changed);

        // An image that cannot be pulled: the rollout times out and revision 2 is restored.
        let err = platform.deploy(&request(&app, &format!("{image}:does-not-exist"))).await.unwrap_err();
        let Error::Rollout { restored, message, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*restored, Some(4), "{message}");
        assert!(message.contains("ErrImagePull") || message.contains("ImagePullBackOff"), "{message}");

        // Rollback to revision 1, then history bounded to 3.
        let back = platform.rollback(&name, "dev", Some(1)).await?;
        assert_eq!(back.record.cause, ReleaseCause::Rollback { to: 1 });
        let history = platform.history(&name, "dev").await?;
        assert_eq!(history.len(), 3, "{history:?}");
        assert_eq!(history[0].state, Some(RevisionState::Deployed));

        // Switching the PDB off prunes it.
        let mut r = request(&app, &format!("{image}:6.7.1"));
        r.overrides.disabled.push(Component::Pdb);
        platform.deploy(&r).await?;
        Ok::<_, Error>(())
    }
    .await;
    let destroyed = platform.destroy(&name, "dev").await;
    result.unwrap();
    let destroyed = destroyed.unwrap();
    assert!(destroyed.deleted.iter().any(|d| d.starts_with("Namespace/")), "{destroyed:?}");
}

/// A client of the cluster the tests use (to read what paved did, and to act as the
/// autoscaler would).
async fn client() -> kube::Client {
    let path = PathBuf::from(std::env::var_os("PAVED_E2E_KUBECONFIG").expect("PAVED_E2E_KUBECONFIG"));
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("a kubeconfig");
    let options = kube::config::KubeConfigOptions {
        context: std::env::var("PAVED_E2E_CONTEXT").ok(),
        ..kube::config::KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.expect("a context");
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: set PAVED_E2E_KUBECONFIG"]
async fn hpa_transitions_against_a_real_cluster() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};
    let Some((platform, app, image)) = setup() else { return };
    let name = AppName::new(format!("{app}-hpa")).unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client().await, &format!("{name}-dev"));
    let live = || async { deployments.get(name.as_str()).await.unwrap().spec.unwrap().replicas.unwrap() };
    let with_hpa = |tag: &str| {
        let mut r = request(name.as_str(), &format!("{image}:{tag}"));
        r.overrides.disabled.retain(|c| *c != Component::Hpa);
        r
    };
    let result = async {
        // Off with 2 replicas, then on: the API server must not reset the field to 1.
        platform.deploy(&request(name.as_str(), &format!("{image}:6.7.0"))).await?;
        assert_eq!(live().await, 2);
        platform.deploy(&with_hpa("6.7.1")).await?;
        assert!(live().await >= 2, "kept through the handover: {}", live().await);
        // The autoscaler's write (through the scale subresource), then off with 2 again: no
        // conflict, and its HPA goes first.
        let scale = serde_json::json!({"spec": {"replicas": 3}});
        deployments
            .patch_scale(name.as_str(), &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .expect("scale as the autoscaler");
        platform.deploy(&request(name.as_str(), &format!("{image}:6.7.0"))).await?;
        assert_eq!(live().await, 2);
        // Back across the switch.
        let back = platform.rollback(&name, "dev", Some(2)).await?;
        assert_eq!(back.record.cause, ReleaseCause::Rollback { to: 2 });
        assert!(live().await >= 1);
        Ok::<_, Error>(())
    }
    .await;
    let destroyed = platform.destroy(&name, "dev").await;
    result.unwrap();
    destroyed.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: set PAVED_E2E_KUBECONFIG"]
async fn a_crashlooping_statefulset_rolls_back_against_a_real_cluster() {
    let Some((platform, app, image)) = setup() else { return };
    let name = AppName::new(format!("{app}-sts")).unwrap();
    let sts = |command: &str| {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: store\nspec:\n  serviceName: store\n  replicas: 1\n  selector:\n    matchLabels:\n      app: store\n  template:\n    metadata:\n      labels:\n        app: store\n    spec:\n      securityContext:\n        runAsNonRoot: true\n        seccompProfile:\n          type: RuntimeDefault\n      containers:\n        - name: store\n          image: {image}:6.7.1\n          command: {command}\n          securityContext:\n            allowPrivilegeEscalation: false\n            capabilities:\n              drop: [\"ALL\"]\n          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: 9898\n"
        );
        let mut r = request(name.as_str(), &format!("{image}:6.7.1"));
        r.overrides.extra_manifests = vec![paved_core::ManifestFile::parse("store.yaml", &yaml).unwrap()];
        r
    };
    let result = async {
        platform.deploy(&sts("[\"./podinfo\"]")).await?;
        // A container that exits at once: the StatefulSet never gets ready, the deploy fails
        // and revision 1 comes back.
        let err = platform.deploy(&sts("[\"false\"]")).await.unwrap_err();
        let Error::Rollout { restored, message, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*restored, Some(3), "{message}");
        assert!(message.contains("statefulset store"), "{message}");
        Ok::<_, Error>(())
    }
    .await;
    let destroyed = platform.destroy(&name, "dev").await;
    result.unwrap();
    destroyed.unwrap();
}
