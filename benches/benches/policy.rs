//! The policy host (issue 5): one `disallow-latest-tag` evaluation of the golden path's
//! production Deployment through paved's wasm host (a fresh store and instance per evaluation,
//! every limit of the manifest on), the same check in native Rust, and the same rule as Rego
//! evaluated by `regorus` (the Rust OPA engine) with an engine prepared once — all three from
//! the same JSON text, in the same run. Also: loading the plugin cold (compiled) and warm (from
//! the precompiled cache, in a fresh host), and a 10-object release through every bundled
//! policy on one core.
//!
//! Criterion reports means and medians; the p99 of each single-evaluation path comes from a
//! plain timing loop of 20,000 evaluations printed to stdout at the end of the same run.
//!
//! `cargo bench -p paved-benches --bench policy` (the plugins must be built:
//! `bash scripts/build-plugins.sh`)

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use paved_policy::{
    ActionInput, ConfiguredPolicy, HostOptions, Outcome, Plugin, PolicyHost, PolicyManifest, PolicySet, wit,
};
use serde_json::{Value, json};

/// Evaluations of each single-evaluation path in the p99 loops.
const P99_ITERATIONS: usize = 20_000;
/// Releases in the p99 loops of the release benchmarks.
const RELEASE_ITERATIONS: usize = 1_000;

/// The Rego equivalent of `disallow-latest-tag`.
const REGO: &str = include_str!("../fixtures/rego/disallow_latest_tag.rego");
const REGO_RULE: &str = "data.paved.disallow_latest_tag.deny";

fn root() -> PathBuf {
    paved_testkit::workspace_root()
}

/// The golden path's production release (9 objects) plus the app's ConfigMap: 10 objects.
fn release_objects() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("crates/paved-kube/tests/golden/production.yaml"))
        .expect("crates/paved-kube/tests/golden/production.yaml");
    let mut objects: Vec<Value> =
        paved_core::Manifests::from_yaml(&text).expect("golden YAML").iter().map(|m| m.value().clone()).collect();
    assert_eq!(objects.len(), 9, "the golden production release");
    let labels = objects[2]["metadata"]["labels"].clone();
    objects.push(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "my-service-settings", "namespace": "my-service-production", "labels": labels},
        "data": {"LOG_LEVEL": "info", "FEATURE_CHECKOUT_V2": "true", "CACHE_TTL_SECONDS": "300"}
    }));
    objects
}

// ---------------------------------------------------------------------------------------------
// Native Rust: the same rule on serde_json, parse included (the wasm guest parses too).

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// A violation of the native check.
struct NativeViolation {
    code: &'static str,
    message: String,
    path: String,
}

fn tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, tag)| tag)
}

fn native_check(json: &str) -> Vec<NativeViolation> {
    let object: Value = serde_json::from_str(json).expect("JSON");
    let (pointer, spec_path) = match object.get("kind").and_then(Value::as_str).unwrap_or("") {
        "Pod" => ("/spec", "spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            ("/spec/template/spec", "spec.template.spec")
        }
        "CronJob" => ("/spec/jobTemplate/spec/template/spec", "spec.jobTemplate.spec.template.spec"),
        _ => return Vec::new(),
    };
    let Some(spec) = object.pointer(pointer) else { return Vec::new() };
    let mut violations = Vec::new();
    for list in CONTAINER_LISTS {
        for (i, c) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            let (code, message) = match tag(image) {
                None if !image.contains('@') => {
                    ("require-image-tag", format!("container {name} uses image {image:?} without a tag"))
                }
                Some("latest") => {
                    ("validate-image-tag", format!("container {name} uses the mutable tag `latest` ({image})"))
                }
                _ => continue,
            };
            violations.push(NativeViolation { code, message, path: format!("{spec_path}.{list}[{i}].image") });
        }
    }
    violations
}

/// The same rule on a minimal typed serde view (kind, the container lists, name and image),
/// parse included: a second native baseline, the native counterpart of how the wasm guest reads
/// objects since issue 5 (its view is hand-written to read JSON exactly as `Value` does).
mod typed {
    use std::borrow::Cow;

    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Object<'a> {
        #[serde(borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        spec: Option<Spec<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec<'a> {
        #[serde(borrow, default)]
        containers: Option<Vec<Container<'a>>>,
        #[serde(borrow, default)]
        init_containers: Option<Vec<Container<'a>>>,
        #[serde(borrow, default)]
        ephemeral_containers: Option<Vec<Container<'a>>>,
        #[serde(borrow, default)]
        template: Option<Box<Template<'a>>>,
        #[serde(borrow, default)]
        job_template: Option<Box<Template<'a>>>,
    }

    #[derive(Deserialize)]
    struct Template<'a> {
        #[serde(borrow, default)]
        spec: Option<Spec<'a>>,
    }

    #[derive(Deserialize)]
    struct Container<'a> {
        #[serde(borrow, default)]
        name: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        image: Option<Cow<'a, str>>,
    }

    fn spec_of<'s, 'a>(t: &'s Option<Box<Template<'a>>>) -> Option<&'s Spec<'a>> {
        t.as_deref().and_then(|t| t.spec.as_ref())
    }

    /// The violations (code, message, path) of one object.
    pub(crate) fn check(json: &str) -> Vec<(&'static str, String, String)> {
        let object: Object<'_> = serde_json::from_str(json).expect("fits the view");
        let Some(spec) = object.spec.as_ref() else { return Vec::new() };
        let (spec, spec_path) = match object.kind.as_deref().unwrap_or("") {
            "Pod" => (Some(spec), "spec"),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                (spec_of(&spec.template), "spec.template.spec")
            }
            "CronJob" => {
                (spec_of(&spec.job_template).and_then(|j| spec_of(&j.template)), "spec.jobTemplate.spec.template.spec")
            }
            _ => (None, ""),
        };
        let Some(spec) = spec else { return Vec::new() };
        let mut violations = Vec::new();
        for (list, containers) in [
            ("containers", &spec.containers),
            ("initContainers", &spec.init_containers),
            ("ephemeralContainers", &spec.ephemeral_containers),
        ] {
            for (i, c) in containers.as_deref().unwrap_or_default().iter().enumerate() {
                let image = c.image.as_deref().unwrap_or("");
                let name = c.name.as_deref().unwrap_or("");
                let (code, message) = match super::tag(image) {
                    None if !image.contains('@') => {
                        ("require-image-tag", format!("container {name} uses image {image:?} without a tag"))
                    }
                    Some("latest") => {
                        ("validate-image-tag", format!("container {name} uses the mutable tag `latest` ({image})"))
                    }
                    _ => continue,
                };
                violations.push((code, message, format!("{spec_path}.{list}[{i}].image")));
            }
        }
        violations
    }
}

// ---------------------------------------------------------------------------------------------
// regorus: the policy added once; per evaluation the input is parsed from the JSON text and
// the `deny` set is evaluated.

fn rego_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.add_policy("disallow_latest_tag.rego".into(), REGO.into()).expect("the Rego policy compiles");
    engine
}

/// `Engine::set_input_json` + `Engine::eval_rule` (the path regorus documents as its fastest
/// for rules); returns the number of violations.
fn rego_eval_rule(engine: &mut regorus::Engine, json: &str) -> usize {
    engine.set_input_json(json).expect("input JSON");
    let deny = engine.eval_rule(REGO_RULE.into()).expect("deny evaluates");
    deny.as_set().expect("deny is a set").len()
}

/// `CompiledPolicy::eval_with_input` of a policy compiled once with `deny` as entry point.
fn rego_compiled(policy: &regorus::CompiledPolicy, json: &str) -> usize {
    let input = regorus::Value::from_json_str(json).expect("input JSON");
    let deny = policy.eval_with_input(input).expect("deny evaluates");
    deny.as_set().expect("deny is a set").len()
}

// ---------------------------------------------------------------------------------------------
// paved

fn manifest(name: &str) -> PolicyManifest {
    let dir = root().join("plugins").join(name);
    let m = PolicyManifest::load(&dir).expect("policy.toml");
    assert!(m.component_path().is_file(), "{} is not built: run `bash scripts/build-plugins.sh`", dir.display());
    m
}

fn new_host(cache: Option<&Path>) -> PolicyHost {
    PolicyHost::new(HostOptions { cache_dir: cache.map(Path::to_path_buf), ..HostOptions::default() })
        .expect("host starts")
}

/// The request of a production deploy of the golden-path app showing one object.
fn request(objects: Vec<String>) -> wit::Request {
    wit::Request {
        action: wit::Action::Deploy,
        app: "my-service".into(),
        team: "platform".into(),
        environment: "production".into(),
        image: Some("ghcr.io/company/my-service:v1.2.3".into()),
        replicas: Some(3),
        escape_hatches: Vec::new(),
        database: None,
        settings: "{}".into(),
        objects,
        admission: None,
    }
}

fn paved_check(plugin: &Plugin, request: &wit::Request) -> usize {
    plugin.evaluate(request).expect("evaluates").violations.len()
}

/// Every bundled policy directory (`plugins/*/policy.toml`, not `plugins/testdata`), Rust only
/// or with the Python and JavaScript examples.
fn bundled(with_python_and_js: bool) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("plugins"))
        .expect("plugins/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("policy.toml").is_file())
        .filter(|p| with_python_and_js || p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn policy_set(host: &Arc<PolicyHost>, dirs: &[PathBuf]) -> PolicySet {
    let mut set = PolicySet::new(host.clone());
    for dir in dirs {
        let plugin = host.load(PolicyManifest::load(dir).expect("policy.toml")).expect("plugin loads");
        set.push(ConfiguredPolicy::new(plugin));
    }
    set
}

fn release_input(objects: Vec<Value>) -> ActionInput {
    let mut input = ActionInput::objects("production", objects);
    input.app = "my-service".into();
    input.team = "platform".into();
    input.image = Some("ghcr.io/company/my-service:v1.2.3".into());
    input.replicas = Some(3);
    input
}

/// Evaluates a release and checks that every policy decided and allowed it; returns the number
/// of policies evaluated.
fn release(set: &PolicySet, input: &ActionInput) -> usize {
    let evaluation = set.evaluate(input);
    let mut evaluated = 0;
    for o in &evaluation.outcomes {
        match &o.outcome {
            Outcome::Skipped => {}
            Outcome::Decided(v) if v.is_empty() => evaluated += 1,
            other => panic!("{}: {other:?}", o.policy),
        }
    }
    evaluated
}

/// `iters` loads of the plugin in `dir`, each in a new host (whose in-memory memo is empty):
/// manifest + component read + pin check + compile or cache entry (read, MAC, deserialize) +
/// linking + the `metadata()` call. Creating the host is not timed.
fn time_loads(dir: &Path, cache: Option<&Path>, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let host = new_host(cache);
        let t = Instant::now();
        let plugin = host.load(PolicyManifest::load(dir).expect("policy.toml")).expect("loads");
        total += t.elapsed();
        black_box(plugin);
    }
    total
}

// ---------------------------------------------------------------------------------------------

/// Median, p99, p99.9 and mean of `n` timed calls of `f` (after `n / 10` untimed ones).
fn percentiles<T>(n: usize, mut f: impl FnMut() -> T) -> String {
    for _ in 0..n / 10 {
        black_box(f());
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        black_box(f());
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)];
    let mean = samples.iter().sum::<Duration>() / n as u32;
    format!("median {:>10.2?}  p99 {:>10.2?}  p99.9 {:>10.2?}  mean {:>10.2?}", at(0.5), at(0.99), at(0.999), mean)
}

fn bench(c: &mut Criterion) {
    let objects = release_objects();
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").expect("a Deployment").clone();
    let json = serde_json::to_string(&deployment).expect("JSON");
    println!("input: the golden production Deployment, {} bytes of JSON", json.len());

    // paved: the plugin as its manifest configures it (timeout, memory and output limits).
    // A cache directory kept between runs (compiling the Python and JavaScript plugins takes
    // seconds); the warm loads below read the entry of disallow-latest-tag from it.
    let cache = root().join("target/paved-bench-policy-cache");
    let host = Arc::new(new_host(Some(&cache)));
    let plugin = host.load(manifest("disallow-latest-tag")).expect("disallow-latest-tag loads");
    let limits = &plugin.manifest().limits;
    println!(
        "paved limits: timeout {} ms (epoch), memory {} MiB, output {} KiB, fuel {}",
        limits.timeout_ms,
        limits.memory_mib,
        limits.output_kib,
        if HostOptions::default().fuel { "on" } else { "off (host default)" }
    );
    let req = request(vec![json.clone()]);
    let mut engine = rego_engine();
    let compiled = rego_engine().compile_with_entrypoint(&REGO_RULE.into()).expect("compiles");

    // The three agree: the golden Deployment passes; `latest` and untagged images are denied.
    assert_eq!(paved_check(&plugin, &req), 0);
    assert_eq!(native_check(&json).len(), 0);
    assert_eq!(typed::check(&json).len(), 0);
    assert_eq!(rego_eval_rule(&mut engine, &json), 0);
    assert_eq!(rego_compiled(&compiled, &json), 0);
    for (image, code) in [("nginx:latest", "validate-image-tag"), ("registry:5000/nginx", "require-image-tag")] {
        let mut bad = deployment.clone();
        bad["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "init", "image": image}]);
        let bad = bad.to_string();
        let native = native_check(&bad);
        assert_eq!(native.len(), 1, "{image}");
        assert_eq!(native[0].code, code);
        assert!(!native[0].message.is_empty() && native[0].path.ends_with("initContainers[0].image"));
        let typed = typed::check(&bad);
        assert_eq!((typed.len(), typed[0].0, &typed[0].1, &typed[0].2), (1, code, &native[0].message, &native[0].path));
        let decision = plugin.evaluate(&request(vec![bad.clone()])).expect("evaluates");
        assert_eq!(decision.violations.len(), 1, "{image}");
        assert_eq!(decision.violations[0].code, code);
        assert_eq!(rego_eval_rule(&mut engine, &bad), 1, "{image}");
        assert_eq!(rego_compiled(&compiled, &bad), 1, "{image}");
    }

    let mut g = c.benchmark_group("policy_eval");
    g.bench_function("paved_fresh_instance", |b| b.iter(|| paved_check(&plugin, black_box(&req))));
    g.bench_function("native_rust", |b| b.iter(|| native_check(black_box(&json)).len()));
    g.bench_function("native_rust_typed_view", |b| b.iter(|| typed::check(black_box(&json)).len()));
    g.bench_function("regorus_eval_rule", |b| b.iter(|| rego_eval_rule(&mut engine, black_box(&json))));
    g.bench_function("regorus_compiled", |b| b.iter(|| rego_compiled(&compiled, black_box(&json))));
    g.finish();

    // Loading disallow-latest-tag, compiled (no cache directory) or from the cache written above.
    let dir = root().join("plugins/disallow-latest-tag");
    let mut g = c.benchmark_group("policy_load");
    g.sample_size(10);
    g.bench_function("cold_compile", |b| b.iter_custom(|iters| time_loads(&dir, None, iters)));
    g.sample_size(50);
    g.bench_function("warm_cache", |b| b.iter_custom(|iters| time_loads(&dir, Some(&cache), iters)));
    g.finish();

    // A 10-object release through every bundled policy, on one core.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    let input = release_input(objects.clone());
    let rust = policy_set(&host, &bundled(false));
    let all = policy_set(&host, &bundled(true));
    assert_eq!(rust.policies().len(), 19, "19 bundled Rust policies");
    assert_eq!(all.policies().len(), 21, "19 Rust + Python + JavaScript");
    let rust_evaluated = pool.install(|| release(&rust, &input));
    let all_evaluated = pool.install(|| release(&all, &input));
    println!(
        "release: {} objects; {rust_evaluated} of 19 Rust policies evaluate a deploy, {all_evaluated} of all 21",
        input.objects.len()
    );
    let single = {
        let mut set = PolicySet::new(host.clone());
        set.push(ConfiguredPolicy::new(host.load(manifest("disallow-latest-tag")).expect("loads")));
        set
    };
    let one_deployment = release_input(vec![deployment.clone()]);
    let mut g = c.benchmark_group("policy_release_one_core");
    // What handing work to the one-thread pool and back costs, included in every row below.
    g.bench_function("pool_install_empty", |b| b.iter(|| pool.install(|| black_box(1))));
    g.bench_function("policy_set_disallow_latest_tag_1_deployment", |b| {
        b.iter(|| pool.install(|| release(&single, black_box(&one_deployment))))
    });
    g.bench_function("10_objects_19_rust_policies", |b| b.iter(|| pool.install(|| release(&rust, black_box(&input)))));
    g.sample_size(20);
    g.bench_function("10_objects_21_policies_with_python_js", |b| {
        b.iter(|| pool.install(|| release(&all, black_box(&input))))
    });
    g.finish();

    // p99s, same run.
    println!("\nplain timing loops ({P99_ITERATIONS} evaluations each, after {} untimed):", P99_ITERATIONS / 10);
    println!("  paved fresh instance   {}", percentiles(P99_ITERATIONS, || paved_check(&plugin, &req)));
    println!("  native Rust            {}", percentiles(P99_ITERATIONS, || native_check(&json).len()));
    println!("  native Rust, typed     {}", percentiles(P99_ITERATIONS, || typed::check(&json).len()));
    println!("  regorus eval_rule      {}", percentiles(P99_ITERATIONS, || rego_eval_rule(&mut engine, &json)));
    println!("  regorus compiled       {}", percentiles(P99_ITERATIONS, || rego_compiled(&compiled, &json)));
    println!("plain timing loops ({RELEASE_ITERATIONS} releases each, one-thread pool):");
    println!(
        "  19 Rust policies       {}",
        percentiles(RELEASE_ITERATIONS, || pool.install(|| release(&rust, &input)))
    );
    println!("  21 policies            {}", percentiles(RELEASE_ITERATIONS, || pool.install(|| release(&all, &input))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
