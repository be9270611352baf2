//! DORA at scale, side by side with PostgreSQL 15 in the same run.
//!
//! Dataset (generated once into `target/paved-bench-data/`): 1,000,000 deployments of 500
//! services and 50 teams over one year, 1–5 commits each (~3M), and 100,000 incidents.
//! Measured: import throughput (events/s) through `Ledger::import`; PostgreSQL's load (COPY
//! and indexes); and the five keys for every team over 365 and 30 days, paved vs one SQL
//! statement in PostgreSQL. The two answers are compared team by team.
//!
//! `cargo bench -p paved-benches --bench dora` (`PAVED_BENCH_DORA=small` for a 10× smaller run).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use paved::metrics::{DoraQuery, DoraReport, GroupBy, Ledger};
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
    cmd.args(args)
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
        let checks = [
            ("successes", f[1] == r.deployment_frequency.deployments.to_string()),
            ("finished", f[2] == r.change_failure_rate.deployments.to_string()),
            ("failed", f[3] == r.change_failure_rate.failed.to_string()),
            ("unplanned", f[4] == r.rework_rate.unplanned.to_string()),
            ("lead median", close(r.lead_time.median_seconds, f[5])),
            ("lead p90", close(r.lead_time.p90_seconds, f[6])),
            ("changes", f[7] == r.lead_time.changes.to_string()),
            ("recovery median", close(r.recovery_time.median_seconds, f[8])),
            ("recovered", f[9] == r.recovery_time.recovered.to_string()),
            ("unrecovered", f[10] == r.recovery_time.unrecovered.to_string()),
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
    let ledger = Ledger::open_in(ledger_dir.path()).expect("ledger");
    let t = Instant::now();
    let report = ledger
        .import(BufReader::with_capacity(1 << 20, std::fs::File::open(&data.jsonl).expect("jsonl")), false)
        .expect("import");
    let import = t.elapsed().as_secs_f64();
    assert!(report.is_clean(), "{:?}", &report.rejected[..report.rejected.len().min(3)]);
    eprintln!("paved import: {} events in {import:.2}s = {:.0} events/s", data.events, data.events as f64 / import);

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
}

criterion_group!(benches, bench);
criterion_main!(benches);
