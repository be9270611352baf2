//! 100,000 evaluations of a good plugin in one process: resident memory stays flat (each
//! evaluation gets a fresh store and instance, all of it released afterwards).

mod support;

use paved_policy::{ActionInput, Outcome, PolicySet};
use support::*;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
}

#[test]
fn resident_memory_stays_flat_over_100_000_evaluations() {
    let host = shared_host();
    let mut set = PolicySet::new(host.clone());
    // A generous wall-clock limit: on a busy 2-core machine one evaluation in 100,000 can be
    // descheduled for longer than the manifest's 100 ms (this test measures memory, not time).
    let mut manifest = manifest("disallow-latest-tag");
    manifest.limits.timeout_ms = 10_000;
    set.push(configured(host.load(manifest).expect("loads"), serde_json::json!({})));
    let input = ActionInput::objects("production", vec![good_deployment()]);
    let plugin = set.policies()[0].plugin().expect("a wasm plugin");
    let request = |i: usize| {
        let e = set.evaluate(&input);
        assert!(
            matches!(&e.outcomes[0].outcome, Outcome::Decided(v) if v.is_empty()),
            "evaluation {i}: {:?}",
            e.outcomes
        );
    };
    // Warm up: pool slots, allocator arenas, lazily initialised state.
    for i in 0..10_000 {
        request(i);
    }
    let after_warmup = rss_kib();
    let mut samples = vec![(10_000, after_warmup)];
    for i in 10_000..100_000 {
        request(i);
        if (i + 1) % 30_000 == 0 {
            samples.push((i + 1, rss_kib()));
        }
    }
    let end = rss_kib();
    eprintln!("RSS (KiB) by evaluations of {}: {samples:?}", plugin.name());
    let growth = end.saturating_sub(after_warmup);
    assert!(growth < 4 * 1024, "resident memory grew by {growth} KiB from 10,000 to 100,000 evaluations: {samples:?}");
}
