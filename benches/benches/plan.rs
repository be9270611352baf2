//! The plan in the library: validate + defaults + render + YAML, for one app and for 1,000;
//! and the plan of 1,000 apps as the Python bindings' `Platform.plan` runs it in Rust (the
//! assembled platform with its baseline policies, plan + preview, the objects as JSON): the
//! denominator of the bindings' overhead (`benches/python_bindings.py`).
//!
//! `cargo bench -p paved-benches --bench plan`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use paved::{OrgConfig, Platform};
use paved_benches::request;

fn platform() -> Platform {
    paved::gitops_platform(OrgConfig::default(), "/nonexistent/never-written").build().expect("platform builds")
}

fn plan_yaml(rt: &tokio::runtime::Runtime, platform: &Platform, req: &paved::DeployRequest) -> usize {
    let plan = rt.block_on(platform.plan(req)).expect("plan succeeds");
    plan.manifests.to_yaml().len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let platform = platform();
    let one = request(0);
    let many: Vec<_> = (0..1000).map(request).collect();
    let mut g = c.benchmark_group("plan");
    let app = platform.validate(&one).expect("valid");
    let manifests = platform.render(&app).expect("renders");
    g.bench_function("validate", |b| b.iter(|| black_box(platform.validate(black_box(&one)).is_ok())));
    g.bench_function("render", |b| b.iter(|| black_box(platform.render(black_box(&app)).map(|m| m.len()))));
    g.bench_function("yaml", |b| b.iter(|| black_box(manifests.to_yaml().len())));
    g.bench_function("one_app", |b| b.iter(|| black_box(plan_yaml(&rt, &platform, black_box(&one)))));
    g.sample_size(20);
    g.bench_function("1000_apps", |b| {
        b.iter(|| many.iter().map(|r| plan_yaml(&rt, &platform, black_box(r))).sum::<usize>())
    });
    g.finish();

    // What `paved.Platform().plan(...)` does per call, without Python.
    let dir = tempfile::tempdir().expect("tempdir");
    let assembled = rt
        .block_on(paved::Assembly::new(OrgConfig::default()).state_dir(dir.path()).record_events(false).build())
        .expect("assembles");
    let assembled = assembled.platform();
    let mut g = c.benchmark_group("plan_assembled");
    g.sample_size(10);
    g.bench_function("1000_apps", |b| {
        b.iter(|| {
            many.iter()
                .map(|r| {
                    rt.block_on(async {
                        let plan = assembled.plan(black_box(r)).await.expect("plans");
                        let objects: Vec<serde_json::Value> =
                            plan.manifests.iter().map(|m| m.value().clone()).collect();
                        let outcome = assembled.preview(&plan).await.expect("previews");
                        serde_json::to_value(&outcome).expect("serializes").to_string().len() + objects.len()
                    })
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
