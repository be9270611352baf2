//! Files teams already write, turned into the golden path: a Score workload (validate,
//! translate, render, YAML) next to the same app from flags, and a CI pipeline generated from
//! the original design's three-line `.platform.yaml`.
//!
//! score-k8s, the peer the issue names, is a Go binary that cannot be installed here, so these
//! rows have no peer column (BENCHMARKS.md says so).
//!
//! `cargo bench -p paved-benches --bench score`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use paved::score::{ScoreFlags, ScoreWorkload, translate};
use paved::{OrgConfig, PlatformFile, Renderer, ResolvedApp};
use paved_kube::KubeRenderer;

/// A web service of two containers with variables, a file, probes, ports, a volume, a route and
/// a call to another workload: what a team's score.yaml usually holds.
const SCORE: &str = r#"apiVersion: score.dev/v1b1
metadata:
  name: checkout
  annotations: {example.com/owner: payments}
service:
  ports:
    www: {port: 80, targetPort: 8080}
containers:
  checkout:
    image: ghcr.io/company/checkout:v1.2.3
    args: ["--name", "${metadata.name}"]
    variables:
      OWNER: ${metadata.annotations.example\.com/owner}
      ORDERS_URL: ${resources.orders.url}
      PUBLIC_URL: https://${resources.dns.host}
    files:
      /etc/checkout/config.yaml:
        content: "name: ${metadata.name}\n"
    volumes:
      /data: {source: "${resources.data}"}
    resources:
      limits: {cpu: "1", memory: 512Mi}
      requests: {cpu: 250m, memory: 256Mi}
    livenessProbe: {httpGet: {port: 8080, path: /healthz}}
    readinessProbe: {httpGet: {port: 8080, path: /ready}}
  proxy:
    image: ghcr.io/company/proxy:v2.0.0
    readinessProbe: {exec: {command: [/bin/proxy, check]}}
    livenessProbe: {exec: {command: [/bin/proxy, check]}}
resources:
  dns: {type: dns}
  route: {type: route, params: {host: "${resources.dns.host}", path: /, port: 80}}
  orders: {type: service}
  data: {type: volume, params: {size: 5Gi}}
"#;

fn bench(c: &mut Criterion) {
    let config = OrgConfig::default();
    let path = Path::new("score.yaml");
    let flags = ScoreFlags::new();
    let mut g = c.benchmark_group("score");
    g.bench_function("validate", |b| b.iter(|| black_box(ScoreWorkload::parse(path, black_box(SCORE)).is_ok())));
    let workload = ScoreWorkload::parse(path, SCORE).expect("valid");
    g.bench_function("translate", |b| {
        b.iter(|| black_box(translate(black_box(&workload), &config, "production", &flags).is_ok()))
    });
    let render = |request: &paved::DeployRequest| {
        let app = ResolvedApp::resolve(&config, request).expect("resolves");
        KubeRenderer.render(&app).expect("renders").to_yaml().len()
    };
    g.bench_function("file_to_yaml", |b| {
        b.iter(|| {
            let w = ScoreWorkload::parse(path, black_box(SCORE)).expect("valid");
            render(&translate(&w, &config, "production", &flags).expect("translates").request)
        })
    });
    let from_flags =
        paved::DeployRequest::new("checkout", "ghcr.io/company/checkout:v1.2.3", "production").expect("valid");
    g.bench_function("flags_to_yaml", |b| b.iter(|| render(black_box(&from_flags))));
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    let file = PlatformFile::parse(
        ".platform.yaml",
        "pipeline: nodejs-service\ntests: npm test\ndeploy_to: [staging, production]\napp: checkout\n",
    )
    .expect("valid");
    for ci in [paved_pipeline::Ci::GitHub, paved_pipeline::Ci::GitLab] {
        g.bench_function(format!("generate_{}", ci.as_str()), |b| {
            b.iter(|| black_box(paved_pipeline::generate(black_box(&file), &config, ci).expect("generates")))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
