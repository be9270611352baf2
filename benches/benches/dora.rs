//! DORA at scale, side by side with PostgreSQL 15 in the same run.
//!
//! Dataset (generated once into `target/paved-bench-data/`): 1,000,000 deployments of 500
//! services and 50 teams over one year, 1–5 commits each (~3M), and 100,000 incidents.
//! Measured: import throughput (events/s) through `Ledger::import`; PostgreSQL's load (COPY
//! and indexes); and the five keys for every team over 365 and 30 days, paved vs one SQL
//! statement in PostgreSQL (DORA version 2, `benches/src/dora_v2.sql`). The two answers are
//! compared team by team. Also: a Prometheus scrape of the whole ledger, and one-event writes.
//!
//! `cargo bench -p paved-benches --bench dora` (`PAVED_BENCH_DORA=small` for a 10× smaller run).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use paved::metrics::{DeploymentEvent, DeploymentStatus, DoraQuery, DoraReport, GroupBy, Ledger, LedgerEvent, prom};
use paved_benches::dora_data::{self, NOW, Sizes};
use paved_testkit::Postgres;

fn data_dir(sizes: Sizes) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    target.join("paved-bench-data").join(format!("dora-{}-{}", sizes.deployments, sizes.incidents))
}

fn psql(pg: &Postgres, args: &[&str], input: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = pg.psql("bench");
    // JIT off: it only adds compile time to these statements (measured: 2 s of 7.5 s at 365 days).
    cmd.env("PGOPTIONS", "-c jit=off")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("psql starts");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(sql) = input {
        stdin.write_all(sql.as_bytes()).expect("write SQL");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("psql runs");
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Compares paved's per-team reports with PostgreSQL's rows; returns the mismatches.
fn compare(paved: &[DoraReport], postgres: &str) -> Vec<String> {
    let mut mismatches = Vec::new();
    let ours: BTreeMap<&str, &DoraReport> = paved.iter().map(|r| (r.team.as_deref().unwrap_or(""), r)).collect();
    let close = |a: Option<f64>, b: &str| match (a, b.parse::<f64>().ok()) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        _ => false,
    };
    let rows: Vec<&str> = postgres.lines().filter(|l| !l.is_empty()).collect();
    if rows.len() != ours.len() {
        mismatches.push(format!("{} teams in paved, {} in PostgreSQL", ours.len(), rows.len()));
    }
    for row in rows {
        let f: Vec<&str> = row.split('|').collect();
        let Some(r) = ours.get(f[0]) else {
            mismatches.push(format!("{} only in PostgreSQL", f[0]));
            continue;
        };
        let n = |x: u64| x.to_string();
        let c = &r.change_failure_rate;
        let checks = [
            ("successes", f[1] == n(r.deployment_frequency.deployments)),
            ("production", f[2] == n(c.deployments)),
            ("failed to apply", f[3] == n(r.failed_to_apply)),
            ("failed", f[4] == n(c.failed)),
            ("unplanned", f[5] == n(r.rework_rate.unplanned)),
            ("lead median", close(r.lead_time.median_seconds, f[6])),
            ("lead p90", close(r.lead_time.p90_seconds, f[7])),
            ("changes", f[8] == n(r.lead_time.changes)),
            ("recovery median", close(r.recovery_time.median_seconds, f[9])),
            ("recovered", f[10] == n(r.recovery_time.recovered)),
            ("unrecovered", f[11] == n(r.recovery_time.unrecovered)),
            ("incident median", close(r.incidents.median_seconds, f[12])),
            ("incidents resolved", f[13] == n(r.incidents.resolved)),
            ("incidents unresolved", f[14] == n(r.incidents.unresolved)),
            ("deployment days", f[15] == n(r.deployment_frequency.deployment_days)),
            ("weekly median", close(Some(r.deployment_frequency.weekly_deployment_days_median), f[16])),
            ("monthly median", close(Some(r.deployment_frequency.monthly_deployment_days_median), f[17])),
        ];
        for (what, ok) in checks {
            if !ok {
                mismatches.push(format!("{}: {what} differs (PostgreSQL row {row})", f[0]));
            }
        }
    }
    mismatches
}

fn bench(c: &mut Criterion) {
    let sizes = if std::env::var("PAVED_BENCH_DORA").is_ok_and(|v| v == "small") {
        Sizes { deployments: 100_000, incidents: 10_000 }
    } else {
        dora_data::FULL
    };
    let t = Instant::now();
    let data = dora_data::generate(&data_dir(sizes), sizes).expect("dataset");
    eprintln!("dataset: {} events ({:.1}s to generate or find)", data.events, t.elapsed().as_secs_f64());

    // paved: import the whole dataset once.
    let ledger_dir = tempfile::tempdir().expect("temp dir");
    let ledger = Arc::new(Ledger::open_in(ledger_dir.path()).expect("ledger"));
    let t = Instant::now();
    let report = ledger
        .import(BufReader::with_capacity(1 << 20, std::fs::File::open(&data.jsonl).expect("jsonl")), false)
        .expect("import");
    let import = t.elapsed().as_secs_f64();
    assert!(report.is_clean(), "{:?}", &report.rejected[..report.rejected.len().min(3)]);
    eprintln!("paved import: {} events in {import:.2}s = {:.0} events/s", data.events, data.events as f64 / import);

    // A Prometheus scrape of the whole ledger, gauges not cached: every scrape computes them.
    let registry = prom::registry_with(prom::LedgerCollector::new(ledger.clone()).at(NOW).cache_for(Duration::ZERO));
    let mut g = c.benchmark_group("scrape");
    g.sample_size(20);
    g.bench_function(format!("paved_{}_deployments", sizes.deployments), |b| {
        b.iter(|| prom::encode(&registry).expect("encodes").len())
    });
    g.finish();

    let Some(pg) = Postgres::start() else { return };
    let mut create = pg.psql("postgres");
    assert!(create.args(["-c", "CREATE DATABASE bench"]).status().expect("psql").success());
    let t = Instant::now();
    psql(&pg, &[], Some(&dora_data::postgres_load(&data)));
    eprintln!("postgres load + index: {:.2}s", t.elapsed().as_secs_f64());

    for days in [365, 30] {
        let q = DoraQuery::new(NOW).window(days * 86_400);
        let ours = ledger.dora_by(&q, GroupBy::Team).expect("dora");
        let theirs = psql(&pg, &["-At"], Some(&dora_data::postgres_query(days)));
        let mismatches = compare(&ours, &theirs);
        assert!(mismatches.is_empty(), "paved and PostgreSQL disagree over {days} days: {mismatches:#?}");
        eprintln!("{days} days: paved and PostgreSQL agree on all {} teams", ours.len());
    }

    let mut g = c.benchmark_group("dora_all_teams");
    // Flat sampling: 10 runs of each (PostgreSQL's year takes seconds per run).
    g.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(30));
    for days in [365, 30] {
        let q = DoraQuery::new(NOW).window(days * 86_400);
        g.bench_function(format!("paved_{days}d"), |b| {
            b.iter(|| ledger.dora_by(&q, GroupBy::Team).expect("dora").len())
        });
        let sql = dora_data::postgres_query(days);
        g.bench_function(format!("postgres_{days}d"), |b| b.iter(|| psql(&pg, &["-At"], Some(&sql)).len()));
    }
    g.finish();

    // Import throughput on the first 100,000 events, into a fresh ledger each time.
    let slice: String =
        std::fs::read_to_string(&data.jsonl).expect("jsonl").lines().take(100_000).collect::<Vec<_>>().join("\n");
    let mut g = c.benchmark_group("import");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(100_000));
    g.bench_function("paved_100k_events", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                let ledger = Ledger::open_in(dir.path()).expect("ledger");
                (dir, ledger)
            },
            |(_dir, ledger)| ledger.import(slice.as_bytes(), false).expect("import").deployments,
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // One event per transaction, as the recorder of a deploy writes: the cost of durability
    // (`synchronous = FULL`: one fsync of the WAL per commit).
    let dir = tempfile::tempdir().expect("temp dir");
    let single = Ledger::open_in(dir.path()).expect("ledger");
    let mut i = 0u64;
    let mut g = c.benchmark_group("record");
    g.sample_size(50);
    g.bench_function("paved_one_event_per_transaction", |b| {
        b.iter(|| {
            i += 1;
            let d =
                DeploymentEvent::new(&format!("r{i}"), "svc", "team", "production", DeploymentStatus::Success, 0, 60);
            single.write(&[LedgerEvent::Deployment(d)]).expect("writes")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
