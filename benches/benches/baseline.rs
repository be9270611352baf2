//! The baseline policy (issue 14): what it adds to a deploy once warm, and to the very first
//! deploy of a process, side by side with the same eleven policies run as sandboxed wasm plugins
//! (the other way the baseline could have shipped).
//!
//! - `warm/native`: `PolicySet::evaluate` of the baseline (eleven built-ins) on the golden path's
//!   production release (9 objects);
//! - `warm/wasm`: the same eleven policies as wasm components (precompiled cache warm);
//! - `plan/with_baseline` vs `plan/without`: a whole library plan, policy included or not;
//! - `first/native`: a new `PolicySet` from the default configuration (engine, baseline) plus
//!   its first evaluation, as the first deploy of a process pays it;
//! - `first/wasm`: the same with the ten wasm components compiled (no cache), as a fresh
//!   machine would pay for shipped components.
//!
//! `cargo bench -p paved-benches --bench baseline` (`bash scripts/build-plugins.sh` first, for
//! the wasm side).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use paved::{OrgConfig, Platform};
use paved_policy::{ActionInput, BASELINE, ConfiguredPolicy, HostOptions, PolicyHost, PolicyManifest, PolicySet};
use serde_json::Value;

fn release_objects() -> Vec<Value> {
    let root = paved_testkit::workspace_root();
    let text = std::fs::read_to_string(root.join("crates/paved-kube/tests/golden/production.yaml")).expect("golden");
    paved_core::Manifests::from_yaml(&text).expect("golden YAML").iter().map(|m| m.value().clone()).collect()
}

fn no_cache() -> HostOptions {
    HostOptions { cache_dir: None, ..HostOptions::default() }
}

/// The baseline's eleven policies as wasm plugins on `host`.
fn wasm_set(host: Arc<PolicyHost>) -> PolicySet {
    let mut set = PolicySet::new(host.clone());
    for name in BASELINE {
        let dir = paved_testkit::workspace_root().join("plugins").join(name);
        let plugin = host.load(PolicyManifest::load(dir).expect("manifest")).expect("built: scripts/build-plugins.sh");
        set.push(ConfiguredPolicy::new(plugin));
    }
    set
}

fn platform(set: Option<PolicySet>) -> Platform {
    let mut builder = paved::gitops_platform(OrgConfig::default(), "/nonexistent/never-written");
    if let Some(set) = set {
        builder = builder.policy(set);
    }
    builder.build().expect("platform builds")
}

fn bench(c: &mut Criterion) {
    let input = ActionInput::objects("production", release_objects());
    let native = PolicySet::from_config(&OrgConfig::default(), no_cache()).expect("baseline");
    assert_eq!(native.policies().len(), BASELINE.len());
    let cache = tempfile::tempdir().expect("cache dir");
    let cached = HostOptions { cache_dir: Some(cache.path().to_path_buf()), ..HostOptions::default() };
    let wasm = wasm_set(Arc::new(PolicyHost::new(cached).expect("host")));
    for set in [&native, &wasm] {
        assert!(set.evaluate(&input).report().violations.is_empty(), "the golden path passes the baseline");
    }

    let mut g = c.benchmark_group("baseline/warm");
    g.bench_function("native", |b| b.iter(|| black_box(native.evaluate(black_box(&input)).outcomes.len())));
    g.bench_function("wasm", |b| b.iter(|| black_box(wasm.evaluate(black_box(&input)).outcomes.len())));
    g.finish();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    let request = paved_benches::request(0);
    let with = platform(Some(native.clone()));
    let without = platform(None);
    let mut g = c.benchmark_group("baseline/plan");
    g.bench_function("with_baseline", |b| b.iter(|| black_box(rt.block_on(with.plan(&request)).expect("plan"))));
    g.bench_function("without", |b| b.iter(|| black_box(rt.block_on(without.plan(&request)).expect("plan"))));
    g.finish();

    let mut g = c.benchmark_group("baseline/first");
    g.sample_size(10);
    g.bench_function("native", |b| {
        b.iter(|| {
            let set = PolicySet::from_config(&OrgConfig::default(), no_cache()).expect("baseline");
            black_box(set.evaluate(&input).outcomes.len())
        })
    });
    g.bench_function("wasm", |b| {
        b.iter(|| {
            let set = wasm_set(Arc::new(PolicyHost::new(no_cache()).expect("host")));
            black_box(set.evaluate(&input).outcomes.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
