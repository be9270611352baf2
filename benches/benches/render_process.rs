//! `paved render` as a whole process against `kubectl kustomize` of an equivalent base +
//! production overlay (Deployment, Service, HPA, PDB, NetworkPolicy; namespace, name prefix,
//! image, replicas), measured side by side in the same run.
//!
//! Needs the release binary: `cargo build --release -p paved-cli && cargo bench -p paved-benches --bench render_process`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

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
        }
        None => eprintln!("kubectl not found: the kubectl kustomize side of the comparison is skipped"),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
