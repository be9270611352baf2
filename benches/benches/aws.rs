//! Provisioning 50 RDS databases with bounded concurrency (8 at a time) through
//! `RdsProvisioner` against moto, side by side in the same run with boto3 making the same calls
//! (`benches/boto3_provision.py`; moto and boto3 from the `.venv` the test command installs):
//! wall time per 50, and the client's CPU time per request.
//!
//! `cargo bench -p paved-benches --bench aws`

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use paved::aws::{Aws, AwsDbServerSettings, AwsSettings, Credentials, RdsProvisioner};
use paved::{DatabaseRequest, DbEngine, DbProvisioner};

const DATABASES: usize = 50;
const CONCURRENCY: usize = 8;

/// This process's CPU time (user + system) from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn bench(c: &mut Criterion) {
    // Every instance made leaves an automated snapshot: room for all the benchmark makes.
    let room = [("MOTO_RDS_SNAPSHOT_LIMIT", "1000000")];
    let Some(moto) = paved_testkit::Moto::start_with_env(&room) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut settings = AwsSettings::default();
    settings.region = Some(paved_testkit::Moto::REGION.into());
    let aws = Aws::at_endpoint(settings, moto.endpoint(), Credentials::new("testing", "testing", None, None, "moto"));
    let rds = Arc::new(
        RdsProvisioner::new(aws, "bench", DbEngine::Postgres, AwsDbServerSettings::default()).expect("provisioner"),
    );
    let round = AtomicUsize::new(0);
    let provision_50 = || {
        let r = round.fetch_add(1, Ordering::SeqCst);
        rt.block_on(async {
            futures::stream::iter(0..DATABASES)
                .map(|i| {
                    let rds = rds.clone();
                    async move {
                        let request =
                            DatabaseRequest::new("bench", &format!("svc-{r}-{i}"), "postgres", "dev", "small")
                                .expect("request");
                        rds.provision(&request).await.expect("provisioned")
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .count()
                .await
        })
    };
    provision_50();
    let mut g = c.benchmark_group("aws_rds_provision");
    g.throughput(Throughput::Elements(DATABASES as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("paved_50_databases_8_concurrent", |b| b.iter(provision_50));
    g.finish();
    let (cpu, rounds) = (cpu_time(), 5);
    for _ in 0..rounds {
        provision_50();
    }
    let per_request = (cpu_time() - cpu).as_secs_f64() * 1000.0 / (rounds * DATABASES) as f64;
    eprintln!("paved: {per_request:.3} ms CPU per database (client side, {rounds} rounds of {DATABASES})");

    // The same 50 with boto3, in the same run, against a fresh moto (as empty as paved's was).
    drop(moto);
    let Some(moto) = paved_testkit::Moto::start_with_env(&room) else { return };
    let Some(python) = paved_testkit::tool("python", paved_testkit::Moto::INSTALL_HINT) else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("boto3_provision.py");
    let out = Command::new(python)
        .arg(script)
        .args([moto.endpoint(), DATABASES.to_string(), CONCURRENCY.to_string(), "10".into()])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "boto3 failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut walls: Vec<f64> = Vec::new();
    let mut cpus: Vec<f64> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace().map(|p| p.parse::<f64>().unwrap_or(f64::NAN));
        walls.push(parts.next().unwrap_or(f64::NAN));
        cpus.push(parts.next().unwrap_or(f64::NAN));
    }
    walls.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    eprintln!(
        "boto3: median {:.3} s per {DATABASES} databases, {:.3} ms CPU per database (10 rounds)",
        walls[walls.len() / 2],
        cpus[cpus.len() / 2]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
