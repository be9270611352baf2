//! `paved diff` as a whole process (plan, the current revision's objects, a unified diff per
//! object) against `diff -ru` of the two GitOps directories it compares, measured side by side
//! in the same run: the golden-path app in production, revision 1 at v1.2.3, the diff to v1.2.4.
//!
//! Needs the release binary: `cargo build --release -p paved-cli && cargo bench -p paved-benches --bench cli_diff`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn paved_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("paved")).filter(|p| p.is_file())
}

fn paved(bin: &Path, state: &Path, verb: &str, image: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--state-dir").arg(state).env("PAVED_ACTOR", "bench").env_remove("PAVED_CONFIG");
    cmd.args([verb, "--app", "my-service", "--image", image, "--env", "production", "--replicas", "3"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

fn bench(c: &mut Criterion) {
    let Some(bin) = paved_binary() else {
        eprintln!("target/release/paved is missing: run `cargo build --release -p paved-cli` first");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    for (state, image) in [(&v1, "ghcr.io/company/my-service:v1.2.3"), (&v2, "ghcr.io/company/my-service:v1.2.4")] {
        assert!(paved(&bin, state, "deploy", image).status().unwrap().success());
    }
    let mut g = c.benchmark_group("cli_diff");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function("paved_diff_process", |b| {
        b.iter(|| {
            let status = paved(&bin, &v1, "diff", "ghcr.io/company/my-service:v1.2.4").status().unwrap();
            assert_eq!(status.code(), Some(1), "there are changes");
        })
    });
    g.bench_function("diff_ru_of_the_two_directories", |b| {
        b.iter(|| {
            let status = Command::new("diff")
                .arg("-ru")
                .arg(v1.join("gitops/production/my-service"))
                .arg(v2.join("gitops/production/my-service"))
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.code(), Some(1), "there are changes");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
