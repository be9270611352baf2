//! `paved render` as a whole process against `kubectl kustomize` of an equivalent base +
//! production overlay (Deployment, Service, HPA, PDB, NetworkPolicy; namespace, name prefix,
//! image, replicas), measured side by side in the same run.
//!
//! Needs the release binary: `cargo build --release -p paved-cli && cargo bench -p paved-benches --bench render_process`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tempfile::TempDir;

fn paved_binary() -> PathBuf {
    // target/release/deps/render_process-HASH -> target/release/paved
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.parent().and_then(Path::parent).expect("target/<profile>").join("paved");
    assert!(bin.is_file(), "{} is missing: run `cargo build --release -p paved-cli` first", bin.display());
    bin
}

fn run(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("process starts");
    assert!(status.success(), "{cmd:?} failed");
}

/// A kustomization of 100 copies of the production overlay, each with its own namespace and prefix.
fn hundred_overlays(overlay: &Path) -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    let template = std::fs::read_to_string(overlay.join("kustomization.yaml")).expect("overlay");
    // Kustomize refuses absolute paths to a base: copy it next to the overlays.
    let base = dir.path().join("base");
    std::fs::create_dir(&base).expect("mkdir");
    for entry in std::fs::read_dir(overlay.join("../../base")).expect("base") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), base.join(entry.file_name())).expect("copy");
    }
    let mut top = String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for i in 0..100 {
        let app = format!("service-{i}");
        let sub = dir.path().join(&app);
        std::fs::create_dir(&sub).expect("mkdir");
        let text = template
            .replace("../../base", "../base")
            .replace("my-service-production", &format!("{app}-production"))
            .replace("my-service-", &format!("{app}-"))
            .replace("ghcr.io/company/my-service", &format!("ghcr.io/company/{app}"));
        std::fs::write(sub.join("kustomization.yaml"), text).expect("write");
        top.push_str(&format!("- {app}\n"));
    }
    std::fs::write(dir.path().join("kustomization.yaml"), top).expect("write");
    dir
}

fn bench(c: &mut Criterion) {
    let paved = paved_binary();
    let overlay = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kustomize/overlays/production");
    let kubectl = paved_testkit::find_tool("kubectl");
    let mut g = c.benchmark_group("render_process");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function("paved_render", |b| {
        b.iter(|| {
            run(Command::new(&paved).args([
                "render",
                "--app",
                "my-service",
                "--image",
                "ghcr.io/company/my-service:v1.2.3",
                "--env",
                "production",
                "--replicas",
                "3",
            ]))
        })
    });
    match kubectl {
        Some(kubectl) => {
            g.bench_function("kubectl_kustomize", |b| {
                b.iter(|| run(Command::new(&kubectl).arg("kustomize").arg(&overlay)))
            });
            // One kustomize process rendering 100 app overlays: the per-app cost without process start-up.
            let many = hundred_overlays(&overlay);
            g.bench_function("kubectl_kustomize_100_overlays", |b| {
                b.iter(|| run(Command::new(&kubectl).arg("kustomize").arg(many.path())))
            });
        }
        None => eprintln!("kubectl not found: the kubectl kustomize side of the comparison is skipped"),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
