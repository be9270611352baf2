//! Escape-hatch overlays (strategic merge with the Kubernetes schema, then the schema check of
//! every overlaid object) against `kubectl kustomize` of the same base and patches, measured
//! side by side in the same run: `benches/fixtures/overlay/overlay.yaml` on the production
//! golden-path release (9 objects).
//!
//! The process comparison needs the release binary:
//! `cargo build --release -p paved-cli && cargo bench -p paved-benches --bench overlay`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use paved_core::{DeployRequest, Manifest, ManifestFile, Manifests, OrgConfig, Renderer, ResolvedApp};
use paved_kube::KubeRenderer;
use paved_kube::overlay::apply_overlays;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/overlay/overlay.yaml")
}

fn base() -> Vec<Manifest> {
    let request =
        DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production").unwrap().with_replicas(3);
    let app = ResolvedApp::resolve(&OrgConfig::default(), &request).unwrap();
    KubeRenderer.render(&app).unwrap().iter().cloned().collect()
}

fn run(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("process starts");
    assert!(status.success(), "{cmd:?} failed");
}

/// A kustomization of the rendered base and the overlay's documents as patches.
fn kustomization(base: &[Manifest], overlay: &ManifestFile) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), Manifests::new(base.to_vec()).to_yaml()).unwrap();
    let mut text = String::from("resources: [base.yaml]\npatches:\n");
    for (i, doc) in overlay.documents.iter().enumerate() {
        let mut doc = doc.value.clone();
        doc["metadata"]["namespace"] = "my-service-production".into();
        std::fs::write(dir.path().join(format!("patch-{i}.yaml")), serde_json::to_string(&doc).unwrap()).unwrap();
        text.push_str(&format!("- path: patch-{i}.yaml\n"));
    }
    std::fs::write(dir.path().join("kustomization.yaml"), text).unwrap();
    dir
}

fn bench(c: &mut Criterion) {
    let base = base();
    let overlay = ManifestFile::load(fixture()).unwrap();
    let mut g = c.benchmark_group("overlay");
    g.bench_function("paved_apply_overlays", |b| {
        b.iter(|| {
            let mut objects = base.clone();
            apply_overlays(std::slice::from_ref(&overlay), &mut objects).unwrap();
            objects
        })
    });
    g.bench_function("paved_clone_base_only", |b| b.iter(|| base.clone()));
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    let release = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.join("paved")));
    match release.filter(|p| p.is_file()) {
        Some(paved) => {
            g.bench_function("paved_render_with_overlay_process", |b| {
                b.iter(|| {
                    run(Command::new(&paved)
                        .args(["render", "--app", "my-service", "--image", "ghcr.io/company/my-service:v1.2.3"])
                        .args(["--env", "production", "--replicas", "3", "--custom-manifest"])
                        .arg(fixture()))
                })
            });
        }
        None => eprintln!("target/release/paved is missing: the process comparison is skipped"),
    }
    match paved_testkit::find_tool("kubectl") {
        Some(kubectl) => {
            let dir = kustomization(&base, &overlay);
            g.bench_function("kubectl_kustomize_process", |b| {
                b.iter(|| run(Command::new(&kubectl).arg("kustomize").arg(dir.path())))
            });
        }
        None => eprintln!("kubectl not found: the kustomize side of the comparison is skipped"),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
