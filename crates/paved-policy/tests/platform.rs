//! The policies in the golden path: `Platform` evaluates them in `plan`/`deploy`, on
//! rollbacks and on database provisioning; a denial stops the action before anything is
//! applied, warnings let it go on, mutations become a patch, every decision is an event.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use paved_core::config::PolicyConfig;
use paved_core::{DatabaseRequest, DeployRequest, Error, OrgConfig, Platform, PlatformEvent, PolicyMode, Severity};
use paved_policy::{ConfiguredPolicy, HostOptions, PolicySet};
use serde_json::json;
use support::*;

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<PlatformEvent>>>);

#[async_trait]
impl paved_core::Metrics for Events {
    async fn record(&self, event: &PlatformEvent) -> paved_core::Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Events {
    fn decisions(&self) -> Vec<(bool, usize, usize, usize)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                PlatformEvent::PolicyDecision { allowed, denials, warnings, policies, .. } => {
                    Some((*allowed, *denials, *warnings, policies.len()))
                }
                _ => None,
            })
            .collect()
    }
}

fn set_of(policies: &[(&str, PolicyConfig)]) -> PolicySet {
    let host = shared_host();
    let mut set = PolicySet::new(host.clone());
    for (rel, config) in policies {
        set.push(ConfiguredPolicy::with(load(&host, rel), config));
    }
    set
}

fn platform(state: &std::path::Path, set: PolicySet, events: &Events, progress: Arc<Mutex<Vec<String>>>) -> Platform {
    Platform::builder()
        .config(OrgConfig::default())
        .renderer(paved_kube::KubeRenderer)
        .deployer(paved_kube::GitOpsTarget::new(state))
        .policy(set)
        .metrics(events.clone())
        .on_progress(move |p| progress.lock().unwrap().push(p.message.clone()))
        .build()
        .unwrap()
}

fn request(image: &str) -> DeployRequest {
    DeployRequest::new("my-service", image, "production").unwrap().with_replicas(3)
}

fn every_bundled_rust_policy() -> Vec<(&'static str, PolicyConfig)> {
    [
        "disallow-latest-tag",
        "require-labels",
        "require-pod-requests-limits",
        "require-probes",
        "restrict-image-registries",
        "require-drop-all",
        "require-ro-rootfs",
        "disallow-default-namespace",
        "disallow-privileged-containers",
        "disallow-host-namespaces",
        "disallow-host-path",
        "disallow-privilege-escalation",
        "require-run-as-nonroot",
        "restrict-seccomp-strict",
        "disallow-capabilities-strict",
        "production-min-replicas",
        "require-team-owner",
        "database-size-by-environment",
        "restrict-escape-hatches",
    ]
    .into_iter()
    .map(|p| (p, PolicyConfig::new(p)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_path_deploys_through_every_bundled_policy() {
    let state = tempfile::tempdir().unwrap();
    let events = Events::default();
    let p = platform(state.path(), set_of(&every_bundled_rust_policy()), &events, Default::default());
    let outcome = p.deploy(&request("ghcr.io/company/my-service:v1.2.3")).await.unwrap();
    assert_eq!(outcome.record.revision, 1);
    // database-size-by-environment handles only provision-database: 18 evaluated.
    assert_eq!(events.decisions(), vec![(true, 0, 0, 18)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_stops_the_deploy_before_anything_is_written() {
    let state = tempfile::tempdir().unwrap();
    let events = Events::default();
    let p = platform(state.path(), set_of(&every_bundled_rust_policy()), &events, Default::default());
    let e = p.deploy(&request("ghcr.io/company/my-service:latest")).await.unwrap_err();
    let Error::PolicyDenied { violations } = &e else { panic!("{e:?}") };
    assert_eq!(violations.len(), 1, "{violations:#?}");
    let v = &violations[0];
    assert_eq!((v.policy.as_str(), v.code.as_str()), ("disallow-latest-tag", "validate-image-tag"));
    assert_eq!(v.object.as_deref(), Some("Deployment/my-service"));
    assert_eq!(v.path.as_deref(), Some("spec.template.spec.containers[0].image"));
    assert!(v.hint.as_deref().unwrap().contains("immutable version tag"));
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "nothing written");
    assert_eq!(events.decisions(), vec![(false, 1, 0, 18)]);
    assert!(p.history(&"my-service".parse().unwrap(), "production").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_mode_reports_and_lets_the_deploy_go_on() {
    let state = tempfile::tempdir().unwrap();
    let events = Events::default();
    let progress = Arc::new(Mutex::new(Vec::new()));
    let mut c = PolicyConfig::new("disallow-latest-tag");
    c.mode = Some(PolicyMode::Warn);
    let p = platform(state.path(), set_of(&[("disallow-latest-tag", c)]), &events, progress.clone());
    let plan = p.plan(&request("ghcr.io/company/my-service:latest")).await.unwrap();
    let w = plan.policy.warnings().next().expect("a warning");
    assert_eq!((w.code.as_str(), w.severity), ("validate-image-tag", Severity::Warn));
    p.deploy(&request("ghcr.io/company/my-service:latest")).await.unwrap();
    let lines = progress.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.starts_with("⚠️") && l.contains("[disallow-latest-tag] validate-image-tag")),
        "{lines:#?}"
    );
    assert_eq!(events.decisions(), vec![(true, 0, 1, 1), (true, 0, 1, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_is_applied_and_shown_as_a_patch_then_validated() {
    let state = tempfile::tempdir().unwrap();
    let events = Events::default();
    let mut labels = PolicyConfig::new("add-default-labels");
    labels.settings = json!({"labels": {"cost-center": "cc-42"}}).as_object().cloned().unwrap();
    // A validating policy that wants the label the mutation adds on every object runs on the
    // result (configured before the mutating one: mutating policies still run first).
    let mut require = PolicyConfig::new("require-team-owner");
    require.settings = json!({"label": "cost-center", "teams": ["cc-42", "platform"], "pod_templates": false})
        .as_object()
        .cloned()
        .unwrap();
    let set = set_of(&[("require-team-owner", require.clone()), ("add-default-labels", labels)]);
    let p = platform(state.path(), set, &events, Default::default());
    let plan = p.plan(&request("ghcr.io/company/my-service:v1.2.3")).await.unwrap();
    let patch = plan.policy.patch.clone().expect("a patch");
    assert!(patch.to_string().contains("cost-center"), "{patch}");
    let deployment = plan.manifests.get("Deployment", "my-service").unwrap();
    assert_eq!(deployment.value()["metadata"]["labels"]["cost-center"], "cc-42");
    assert!(plan.policy.violations.is_empty(), "{:#?}", plan.policy.violations);
    // Without the mutation the same validating policy denies.
    let alone = platform(state.path(), set_of(&[("require-team-owner", require)]), &events, Default::default());
    let e = alone.plan(&request("ghcr.io/company/my-service:v1.2.3")).await.unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_provisioning_passes_through_policy() {
    let state = tempfile::tempdir().unwrap();
    let events = Events::default();
    let set = set_of(&[("database-size-by-environment", PolicyConfig::new("."))]);
    let p = platform(state.path(), set, &events, Default::default());
    let large_dev = DatabaseRequest::new("payments", "ledger", "postgres", "dev", "large").unwrap();
    let e = p.check_database_policy(&large_dev).await.unwrap_err();
    let Error::PolicyDenied { violations } = &e else { panic!("{e:?}") };
    assert_eq!(violations[0].code, "database-size");
    let large_prod = DatabaseRequest::new("payments", "ledger", "postgres", "production", "large").unwrap();
    p.check_database_policy(&large_prod).await.unwrap();
    assert_eq!(events.decisions(), vec![(false, 1, 0, 1), (true, 0, 0, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_passes_through_policy() {
    let state = tempfile::tempdir().unwrap();
    let free = Platform::builder()
        .config(OrgConfig::default())
        .renderer(paved_kube::KubeRenderer)
        .deployer(paved_kube::GitOpsTarget::new(state.path()))
        .build()
        .unwrap();
    let one = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1", "production").unwrap().with_replicas(1);
    free.deploy(&one).await.unwrap();
    free.deploy(&request("ghcr.io/company/my-service:v2")).await.unwrap();
    let events = Events::default();
    let guarded = platform(
        state.path(),
        set_of(&[("production-min-replicas", PolicyConfig::new("."))]),
        &events,
        Default::default(),
    );
    let app = "my-service".parse().unwrap();
    let e = guarded.rollback(&app, "production", None).await.unwrap_err();
    let Error::PolicyDenied { violations } = &e else { panic!("{e:?}") };
    assert_eq!(violations[0].code, "min-replicas");
    assert_eq!(guarded.history(&app, "production").await.unwrap().len(), 2, "nothing rolled back");
}

/// Copies a built plugin (manifest and component) to `dir/policies/NAME`.
fn copy_plugin(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let to = dir.join("policies").join(name);
    std::fs::create_dir_all(&to).unwrap();
    for file in ["policy.toml", "policy.wasm"] {
        std::fs::copy(plugin_dir(name).join(file), to.join(file)).unwrap();
    }
    to
}

fn cached() -> HostOptions {
    HostOptions { cache_dir: Some(std::env::temp_dir().join("paved-policy-test-cache")), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_come_from_paved_toml_with_settings() {
    let dir = tempfile::tempdir().unwrap();
    copy_plugin("restrict-image-registries", dir.path());
    let toml = "baseline = false\n[[policies]]\npath = \"policies/restrict-image-registries\"\n[policies.settings]\nregistries = [\"ghcr.io/other/\"]\n";
    std::fs::write(dir.path().join("paved.toml"), toml).unwrap();
    let config = OrgConfig::load(dir.path().join("paved.toml")).unwrap();
    let set = PolicySet::from_config(&config, cached()).unwrap();
    assert_eq!(set.policies()[0].settings(), r#"{"registries":["ghcr.io/other/"]}"#);
    let events = Events::default();
    let p = platform(dir.path(), set, &events, Default::default());
    let e = p.plan(&request("ghcr.io/company/my-service:v1.2.3")).await.unwrap_err();
    let Error::PolicyDenied { violations } = &e else { panic!("{e:?}") };
    assert_eq!(violations[0].code, "validate-registries");
    assert!(violations[0].hint.as_deref().unwrap().contains("ghcr.io/other/"), "{violations:?}");
}

/// A repository config with the organisation's policy file `org` (text) attached.
fn with_org(repo: &std::path::Path, repo_toml: &str, org_dir: &std::path::Path, org: &str) -> OrgConfig {
    std::fs::write(repo.join("paved.toml"), repo_toml).unwrap();
    std::fs::write(org_dir.join("org.toml"), org).unwrap();
    let mut config = OrgConfig::load(repo.join("paved.toml")).unwrap();
    config.org_policy = Some(Arc::new(paved_core::OrgPolicy::load(org_dir.join("org.toml"), None).unwrap()));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_policies_run_first_and_the_repository_cannot_weaken_them() {
    let (repo, org) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    copy_plugin("disallow-latest-tag", org.path());
    copy_plugin("production-min-replicas", repo.path());
    let org_toml = "[[policies]]\npath = \"policies/disallow-latest-tag\"\n";
    let config =
        with_org(repo.path(), "[[policies]]\npath = \"policies/production-min-replicas\"\n", org.path(), org_toml);
    let set = PolicySet::from_config(&config, cached()).unwrap();
    // The repository's first, so that the organisation's mutations have the last word.
    // After the baseline (whose disallow-latest-tag gives way to the configured one).
    let names: Vec<&str> = set.policies().iter().map(|p| p.name()).collect();
    assert_eq!(names[names.len() - 2..], ["production-min-replicas", "disallow-latest-tag"]);
    assert_eq!(names.iter().filter(|n| **n == "disallow-latest-tag").count(), 1);
    let events = Events::default();
    let p = platform(repo.path(), set, &events, Default::default());
    let e = p.plan(&request("ghcr.io/company/my-service:latest")).await.unwrap_err();
    let Error::PolicyDenied { violations } = &e else { panic!("{e:?}") };
    assert!(violations.iter().any(|v| v.policy == "disallow-latest-tag"), "{violations:?}");
    // The organisation pins the component: a plugin directory whose policy.toml pins another
    // is refused.
    let pinned = format!("{org_toml}sha256 = \"{}\"\n", "0".repeat(64));
    let config = with_org(repo.path(), "", org.path(), &pinned);
    let e = PolicySet::from_config(&config, cached()).unwrap_err();
    assert!(e.to_string().contains("pins component sha256"), "{e}");
    // The repository names the organisation's plugin to switch it to audit: refused.
    let weaken = format!(
        "[[policies]]\npath = \"{}\"\nmode = \"audit\"\n",
        org.path().join("policies/disallow-latest-tag").display()
    );
    let config = with_org(repo.path(), &weaken, org.path(), org_toml);
    let e = PolicySet::from_config(&config, cached()).unwrap_err();
    assert!(e.to_string().contains("mode = \"audit\" would weaken the organisation's policy"), "{e}");
}

#[test]
fn the_organisation_caps_plugin_limits() {
    let (repo, org) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // restrict-image-registries asks for 100 ms; the organisation allows 50.
    copy_plugin("restrict-image-registries", repo.path());
    let repo_toml = "[[policies]]\npath = \"policies/restrict-image-registries\"\n";
    let config = with_org(repo.path(), repo_toml, org.path(), "baseline = false\n[limits]\ntimeout_ms = 50\n");
    let e = PolicySet::from_config(&config, cached()).unwrap_err();
    assert!(e.to_string().contains("limits.timeout_ms = 100 is above the organisation's cap of 50"), "{e}");
    assert!(e.hint().unwrap().contains("[limits] timeout_ms in"), "{:?}", e.hint());
    // A fuel cap turns metering on and gives a plugin that names no fuel that much: 1000
    // instructions do not even instantiate it, ten billion evaluate it.
    let config = with_org(repo.path(), repo_toml, org.path(), "baseline = false\n[limits]\nfuel = 1000\n");
    let e = PolicySet::from_config(&config, cached()).unwrap_err();
    assert!(e.to_string().contains("ran out of fuel (1000)"), "{e}");
    let config = with_org(repo.path(), repo_toml, org.path(), "baseline = false\n[limits]\nfuel = 10_000_000_000\n");
    let set = PolicySet::from_config(&config, cached()).unwrap();
    assert_eq!(set.policies()[0].manifest().limits.fuel, Some(10_000_000_000));
    let input = paved_policy::ActionInput::objects("production", vec![good_deployment()]);
    let outcome = &set.evaluate(&input).outcomes[0];
    assert!(matches!(&outcome.outcome, paved_policy::Outcome::Decided(v) if v.is_empty()), "{:?}", outcome.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_runs_by_default_and_can_be_tuned_or_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = |text: &str| {
        std::fs::write(dir.path().join("paved.toml"), text).unwrap();
        OrgConfig::load(dir.path().join("paved.toml")).unwrap()
    };
    // No [[policies]]: the baseline, as built-ins, with no wasm plugin loaded.
    let set = PolicySet::from_config(&config(""), cached()).unwrap();
    let names: Vec<&str> = set.policies().iter().map(|p| p.name()).collect();
    assert_eq!(names, paved_policy::BASELINE);
    assert!(set.policies().iter().all(|p| p.is_builtin() && p.plugin().is_none()));
    // The golden path's own output passes it; a :latest image is denied with the hint.
    let events = Events::default();
    let p = platform(dir.path(), set.clone(), &events, Default::default());
    let plan = p.plan(&request("ghcr.io/company/my-service:v1.2.3")).await.unwrap();
    assert_eq!(plan.policy.baseline.len(), paved_policy::BASELINE.len());
    assert!(plan.policy.violations.is_empty(), "{:?}", plan.policy.violations);
    let e = p.plan(&request("nginx:latest")).await.unwrap_err();
    let Error::PolicyDenied { violations } = &e else { panic!("{e:?}") };
    assert_eq!(violations[0].policy, "disallow-latest-tag");
    assert!(violations[0].hint.as_deref().unwrap().contains("immutable version tag"));
    // A member in warn mode: the same image deploys with a warning.
    let set =
        PolicySet::from_config(&config("[baseline]\nmodes = { disallow-latest-tag = \"warn\" }\n"), cached()).unwrap();
    let p = platform(dir.path(), set, &events, Default::default());
    let plan = p.plan(&request("nginx:latest")).await.unwrap();
    assert_eq!(plan.policy.warnings().count(), 1);
    // Off.
    let set = PolicySet::from_config(&config("baseline = false\n"), cached()).unwrap();
    assert!(set.policies().is_empty());
    // A member that does not exist.
    let e =
        PolicySet::from_config(&config("[baseline]\nmodes = { disallow-latest = \"warn\" }\n"), cached()).unwrap_err();
    assert!(e.hint().unwrap().contains("did you mean \"disallow-latest-tag\"?"), "{:?}", e.hint());
}

#[test]
fn with_an_organisation_file_a_repository_cannot_turn_the_baseline_off_or_weaken_it() {
    let (repo, org) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = with_org(repo.path(), "baseline = false\n", org.path(), "");
    let e = PolicySet::from_config(&config, cached()).unwrap_err();
    assert!(e.to_string().contains("baseline = false would turn off the organisation's baseline"), "{e}");
    let weaker = "[baseline]\nmodes = { require-probes = \"audit\" }\n";
    let config = with_org(repo.path(), weaker, org.path(), "");
    let e = PolicySet::from_config(&config, cached()).unwrap_err();
    assert!(e.to_string().contains("would weaken the organisation's"), "{e}");
    // The organisation may set it, and the repository make it stricter again.
    let config = with_org(
        repo.path(),
        "[baseline]\nmodes = { require-probes = \"enforce\" }\n",
        org.path(),
        "[baseline]\nmodes = { require-probes = \"warn\" }\n",
    );
    let set = PolicySet::from_config(&config, cached()).unwrap();
    assert!(set.policies().iter().all(|p| p.mode() == PolicyMode::Enforce));
}
