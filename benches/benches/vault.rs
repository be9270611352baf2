//! KV v2 reads per second through `VaultSecretStore` against a local OpenBao, sequentially and
//! with 32 concurrent readers, side by side in the same run with Python's `hvac` client doing
//! the same reads (`benches/hvac_reads.py`, `pip install hvac` into `.venv`).
//!
//! `cargo bench -p paved-benches --bench vault`

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paved::SecretStore;
use paved::vault::{VaultConfig, VaultSecretStore};

const CONCURRENCY: usize = 32;
const CONCURRENT_READS: usize = 3_200;

fn bench(c: &mut Criterion) {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let put =
        bao.command().args(["kv", "put", "secret/bench/db", "user=app", "password=p4ss", "host=db.internal"]).output();
    assert!(put.is_ok_and(|o| o.status.success()), "writing the secret failed");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let store = Arc::new(VaultSecretStore::new(VaultConfig::new(bao.addr(), bao.token().to_string())).expect("store"));
    rt.block_on(store.get("bench/db")).expect("first read");

    let mut g = c.benchmark_group("vault_kv_read");
    g.throughput(Throughput::Elements(1));
    g.bench_function("paved_sequential", |b| b.iter(|| rt.block_on(store.get("bench/db")).expect("read").len()));
    g.throughput(Throughput::Elements(CONCURRENT_READS as u64));
    g.sample_size(20);
    g.bench_function("paved_32_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..CONCURRENCY {
                    let store = store.clone();
                    tasks.spawn(async move {
                        for _ in 0..CONCURRENT_READS / CONCURRENCY {
                            store.get("bench/db").await.expect("read");
                        }
                    });
                }
                tasks.join_all().await.len()
            })
        })
    });
    g.finish();

    // The same reads with hvac, in the same run against the same server.
    let Some(python) = paved_testkit::tool("python", "python3 -m venv .venv && .venv/bin/pip install hvac") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hvac_reads.py");
    let t = Instant::now();
    let out = Command::new(python)
        .arg(script)
        .args([
            &bao.addr(),
            bao.token(),
            "secret",
            "bench/db",
            "2000",
            &CONCURRENT_READS.to_string(),
            &CONCURRENCY.to_string(),
        ])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "hvac failed (is it installed in .venv?): {}", String::from_utf8_lossy(&out.stderr));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        eprintln!("hvac {line} reads/s");
    }
    eprintln!("(hvac run took {:.1}s)", t.elapsed().as_secs_f64());
}

criterion_group!(benches, bench);
criterion_main!(benches);
