//! The live kube target against the mock API server: 200 apps deployed with bounded
//! concurrency over one shared client (server-side apply, history records, rollout watches).
//!
//! `cargo bench -p paved-benches --bench kube_deploy`
//!
//! Besides criterion's time per batch, prints requests per second through the client and the
//! process CPU time per app (user + system, from `/proc/self/stat`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use paved::paved_kube::KubeRenderer;
use paved::paved_kube::live::KubeTarget;
use paved::paved_kube::testing::MockApiServer;
use paved::{OrgConfig, Platform};
use paved_benches::request;

const APPS: usize = 200;
const CONCURRENCY: usize = 16;

/// Deploys `APPS` apps to a fresh mock cluster; returns the number of API requests.
async fn deploy_all(requests: &[paved::DeployRequest]) -> usize {
    let (client, server) = MockApiServer::start();
    server.record_requests(false);
    let mut config = OrgConfig::default();
    for env in config.environments.values_mut() {
        env.target = "kube".into();
    }
    let target = KubeTarget::with_client(client, "mock");
    let platform = Platform::builder()
        .config(config)
        .renderer(KubeRenderer)
        .deployer(target)
        .actor("bench")
        .build()
        .expect("builds");
    let ok = futures::stream::iter(requests.iter().map(|r| platform.deploy(r)))
        .buffer_unordered(CONCURRENCY)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    assert_eq!(ok, APPS, "every deploy succeeds");
    server.served()
}

/// User + system CPU time of this process.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let requests: Vec<_> = (0..APPS).map(request).collect();

    // One measured batch outside criterion for requests/s and CPU per app.
    let _warm = rt.block_on(deploy_all(&requests));
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut total_requests = 0;
    let rounds = 5;
    for _ in 0..rounds {
        total_requests += rt.block_on(deploy_all(&requests));
    }
    let (wall, cpu) = (t0.elapsed(), cpu_time().zip(cpu0).map(|(b, a)| b - a));
    let apps = (APPS * rounds) as f64;
    eprintln!(
        "kube_deploy: {APPS} apps x {rounds}, concurrency {CONCURRENCY}: {} requests/app, {:.0} requests/s, {:.2} ms wall/app, CPU {} per app",
        total_requests / (APPS * rounds),
        total_requests as f64 / wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / apps,
        cpu.map_or("n/a".to_string(), |c| format!("{:.2} ms", c.as_secs_f64() * 1000.0 / apps)),
    );

    let mut g = c.benchmark_group("kube_deploy");
    g.sample_size(10);
    g.bench_function("200_apps_concurrency_16", |b| b.iter(|| black_box(rt.block_on(deploy_all(&requests)))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
