//! Policies at admission (issue 15): `/validate` of the golden path's production Deployment
//! through the baseline (the eleven built-ins), over HTTPS, side by side with the OPA way: a
//! webhook on the same HTTP and TLS stack whose handler evaluates the same rules as Rego with
//! regorus (`fixtures/rego/baseline.rego`, a `CompiledPolicy` shared by every request).
//!
//! - criterion: the time per request with 64 HTTPS clients (keep-alive, one connection each)
//!   sending reviews back to back: the inverse of the throughput;
//! - printed: throughput, p50 and p99 of the same closed loop (64 × 200 requests); the
//!   handlers alone (a review body in, the answer out, no HTTP); and an open loop at a fixed
//!   1,000 requests/s for 5 s (latency from each request's scheduled start, so a stalled
//!   server is charged for the queue it causes).
//!
//! Clients and servers share the machine (2 cores here): the figures include the clients' TLS
//! and HTTP work. `cargo bench -p paved-benches --bench admission`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use criterion::{Criterion, criterion_group, criterion_main};
use paved::OrgConfig;
use paved::admission::{Admission, CertificateFiles, Policies, TlsListener};
use serde_json::{Value, json};

const REGO: &str = include_str!("../fixtures/rego/baseline.rego");
const CLIENTS: usize = 64;

/// The golden path's production Deployment, as an AdmissionReview body.
fn review_body(image: &str) -> Bytes {
    let root = paved_testkit::workspace_root();
    let text = std::fs::read_to_string(root.join("crates/paved-kube/tests/golden/production.yaml")).expect("golden");
    let manifests = paved_core::Manifests::from_yaml(&text).expect("golden YAML");
    let mut deployment = manifests.iter().find(|m| m.kind() == "Deployment").expect("a Deployment").value().clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    let namespace = deployment["metadata"]["namespace"].clone();
    Bytes::from(
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": deployment["metadata"]["name"], "namespace": namespace, "operation": "CREATE",
                "userInfo": {"username": "ci", "groups": ["system:authenticated"]},
                "object": deployment, "oldObject": null, "dryRun": false,
            }
        }))
        .expect("a review serialises"),
    )
}

/// The Rego webhook's handler: the review parsed straight into regorus' values, the object
/// as the input, `deny` evaluated, the review answered as paved answers it (allowed, or a 403
/// status listing the violations).
async fn rego_validate(State(policy): State<Arc<regorus::CompiledPolicy>>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    match rego_answer(&policy, &body) {
        Some(answer) => ([(axum::http::header::CONTENT_TYPE, "application/json")], answer).into_response(),
        None => (axum::http::StatusCode::BAD_REQUEST, "not a review").into_response(),
    }
}

/// The Rego webhook's answer to a review body (`None`: not a review).
fn rego_answer(policy: &regorus::CompiledPolicy, body: &[u8]) -> Option<String> {
    let key = |k: &str| regorus::Value::from(k);
    let review: regorus::Value = serde_json::from_slice(body).ok()?;
    let request = &review[&key("request")];
    let deny = policy.eval_with_input(request[&key("object")].clone()).expect("deny evaluates");
    let violations = deny.as_set().expect("deny is a set");
    let uid = request[&key("uid")].as_string().ok()?.to_string();
    let mut response = json!({"uid": uid, "allowed": violations.is_empty()});
    if !violations.is_empty() {
        let field = |v: &regorus::Value, k: &str| v[&key(k)].as_string().map(|s| s.to_string()).unwrap_or_default();
        let lines: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {} (at {})", field(v, "policy"), field(v, "message"), field(v, "path")))
            .collect();
        response["status"] = json!({"code": 403, "reason": "Forbidden", "message": lines.join("\n")});
    }
    let api_version = review[&key("apiVersion")].as_string().ok()?.to_string();
    Some(json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response}).to_string())
}

fn compiled_rego() -> regorus::CompiledPolicy {
    let mut engine = regorus::Engine::new();
    engine.add_policy("baseline.rego".into(), REGO.into()).expect("the Rego policy compiles");
    engine.compile_with_entrypoint(&"data.paved.baseline.deny".into()).expect("compiles")
}

struct Servers {
    paved: String,
    rego: String,
    ca: String,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// Both webhooks on one 2-thread server runtime, HTTPS with the same certificate and listener.
fn start_servers() -> Servers {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key")).expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("cert");
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).expect("write");
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).expect("write");
    let files = CertificateFiles::load(dir.path().join("tls.crt"), dir.path().join("tls.key")).expect("certificate");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let admission = Admission::new(Policies::load(OrgConfig::default()).expect("the baseline"), None);
    let (paved, rego) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let paved = format!("https://{}/validate", listener.local_addr().expect("addr"));
        let tls = files.clone();
        tokio::spawn(async move { admission.serve(listener, Some(tls), std::future::pending()).await });
        let compiled = Arc::new(compiled_rego());
        let router = axum::Router::new().route("/validate", axum::routing::post(rego_validate)).with_state(compiled);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let rego = format!("https://{}/validate", listener.local_addr().expect("addr"));
        let tls = TlsListener::new(listener, files.server_config().expect("TLS")).expect("listener");
        tokio::spawn(async move { axum::serve(tls, router).await });
        (paved, rego)
    });
    Servers { paved, rego, ca: ca.pem(), _runtime: runtime, _dir: dir }
}

fn clients(ca: &str, n: usize) -> Vec<reqwest::Client> {
    (0..n)
        .map(|_| {
            reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA")])
                .pool_max_idle_per_host(1)
                .build()
                .expect("client")
        })
        .collect()
}

async fn send(client: &reqwest::Client, url: &str, body: &Bytes) -> Value {
    let r = client.post(url).body(body.clone()).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.expect("a review")["response"].clone()
}

/// `per_client` reviews from each client, back to back: the wall time and every latency.
async fn closed_loop(
    clients: &[reqwest::Client],
    url: &str,
    body: &Bytes,
    per_client: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url, body) = (client.clone(), url.to_string(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let r = send(&client, &url, &body).await;
                    latencies.push(t.elapsed());
                    assert_eq!(r["allowed"], true);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    (started.elapsed(), all)
}

/// Reviews at a fixed `rate` per second for `seconds`, each timed from its scheduled start.
async fn open_loop(clients: &[reqwest::Client], url: &str, body: &Bytes, rate: u64, seconds: u64) -> Vec<Duration> {
    let start = tokio::time::Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut tasks = Vec::new();
    for i in 0..rate * seconds {
        let scheduled = start + period * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let (client, url, body) = (clients[i as usize % clients.len()].clone(), url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = send(&client, &url, &body).await;
            assert_eq!(r["allowed"], true);
            scheduled.elapsed()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("request task"));
    }
    all
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn summary(latencies: &mut [Duration]) -> String {
    latencies.sort();
    format!(
        "p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies[latencies.len() - 1]
    )
}

fn bench(c: &mut Criterion) {
    let servers = start_servers();
    let client_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let pool = clients(&servers.ca, CLIENTS);
    let good = review_body("ghcr.io/company/my-service:v1.2.3");
    let bad = review_body("ghcr.io/company/my-service:latest");
    // Both webhooks allow the golden path and deny `latest` with the same rule.
    client_rt.block_on(async {
        for url in [&servers.paved, &servers.rego] {
            assert_eq!(send(&pool[0], url, &good).await["allowed"], true, "{url}");
            let denied = send(&pool[0], url, &bad).await;
            assert_eq!(denied["allowed"], false, "{url}");
            assert!(denied["status"]["message"].as_str().expect("a message").contains("disallow-latest-tag"), "{url}");
        }
    });

    let mut g = c.benchmark_group("admission_validate_64_clients");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    for (name, url) in [("paved", &servers.paved), ("regorus", &servers.rego)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per_client = (iters as usize).div_ceil(CLIENTS).max(1);
                let (elapsed, latencies) = client_rt.block_on(closed_loop(&pool, url, &good, per_client));
                elapsed.mul_f64(iters as f64 / latencies.len() as f64)
            })
        });
    }
    g.finish();

    println!("\n/validate of the golden-path Deployment, {CLIENTS} HTTPS clients × 200 reviews (closed loop):");
    let mut throughput = Vec::new();
    for (name, url) in [("paved", &servers.paved), ("regorus", &servers.rego)] {
        let (elapsed, mut latencies) = client_rt.block_on(closed_loop(&pool, url, &good, 200));
        let rate = latencies.len() as f64 / elapsed.as_secs_f64();
        throughput.push(rate);
        println!("  {name:<8} {rate:>8.0} reviews/s  {}", summary(&mut latencies));
    }
    println!("  paved / regorus throughput: {:.2}×", throughput[0] / throughput[1]);
    // The handlers alone (no HTTP, no TLS, no client): a review body in, the answer out.
    println!("\nthe handler alone, one review at a time (body → answer), 5,000 reviews:");
    let admission = Admission::new(Policies::load(OrgConfig::default()).expect("the baseline"), None);
    let compiled = compiled_rego();
    let mut handler_times = Vec::new();
    for name in ["paved", "regorus"] {
        let mut latencies = Vec::with_capacity(5000);
        for i in 0..5500 {
            let t = Instant::now();
            // Both answers end as the body's text, as the servers send them.
            let answer = match name {
                "paved" => client_rt
                    .block_on(admission.review(paved::admission::Endpoint::Validate, &good))
                    .expect("a review")
                    .to_string(),
                _ => rego_answer(&compiled, &good).expect("a review"),
            };
            assert!(answer.contains(r#""allowed":true"#), "{answer}");
            if i >= 500 {
                latencies.push(t.elapsed());
            }
        }
        let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
        handler_times.push(mean);
        println!("  {name:<8} mean {mean:>8.2?}  {}", summary(&mut latencies));
    }
    println!("  regorus / paved handler time: {:.2}×", handler_times[1].as_secs_f64() / handler_times[0].as_secs_f64());
    println!("\nopen loop, 1,000 reviews/s for 5 s:");
    for (name, url) in [("paved", &servers.paved), ("regorus", &servers.rego)] {
        let mut latencies = client_rt.block_on(open_loop(&pool, url, &good, 1000, 5));
        println!("  {name:<8} {}", summary(&mut latencies));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
