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
