//! Monitoring, logging, tracing and mesh: what an environment's
//! [`observability`](paved_core::observability) settings add to the golden path's objects.
//!
//! The renderer calls these functions at small hooks; each reads the environment's settings
//! and the app's [components](paved_core::Component), and does nothing when its part is off:
//!
//! | part | component | adds |
//! |---|---|---|
//! | dashboard | `dashboard` | a ConfigMap with a Grafana dashboard, labelled for Grafana's sidecar ([`dashboard_json`]) |
//! | alerts | `alerts` | a PrometheusRule: error ratio, latency, restarts, autoscaler at its maximum ([`alert`]) |
//! | tracing | `tracing` | `OTEL_*` variables on the app's container ([`container_env`]), egress to the collector |
//! | logging | (none) | labels and annotations on the app's pods ([`pod_metadata`]) |
//! | mesh | `mesh` | injection on the namespace ([`namespace_metadata`]), mutual TLS (Istio's PeerAuthentication, Linkerd's default inbound policy), the mesh's ports in the NetworkPolicy ([`network_policy_rules`]); in Istio, Prometheus scrapes the merged metrics ([`scrape_endpoint`]) |
//!
//! PromQL selects the app's series by `namespace` and `service` (the labels the Prometheus
//! operator gives what a ServiceMonitor scrapes), by `namespace`, `pod` and `container` for
//! cAdvisor and kube-state-metrics series, and by `horizontalpodautoscaler` for the autoscaler.

use paved_core::observability::{Mesh, MtlsMode, dashboard_name};
use paved_core::{Component, ResolvedApp};
use serde_json::{Map, Value, json};

use crate::render::Cx;

/// Istio's pilot-agent port that serves the app's metrics merged with Envoy's and its own
/// (`/stats/prometheus`), outside mutual TLS.
pub const ISTIO_MERGED_METRICS_PORT: u16 = 15020;
/// The name of the Service port of [`ISTIO_MERGED_METRICS_PORT`] the ServiceMonitor scrapes.
pub const ISTIO_METRICS_PORT_NAME: &str = "istio-metrics";

/// The mesh the app is part of: the environment's, unless the app switched `mesh` off.
fn mesh_of(app: &ResolvedApp) -> Option<&paved_core::observability::MeshConfig> {
    app.environment.config.mesh.as_ref().filter(|_| app.renders(Component::Mesh))
}

/// `true` when the app's metrics are scraped through Istio's merged-metrics port: the app is
/// in an Istio mesh and a ServiceMonitor is rendered (strict mutual TLS would refuse
/// Prometheus on the app's own port).
pub fn scrapes_istio_merged_metrics(app: &ResolvedApp) -> bool {
    mesh_of(app).is_some_and(|m| m.provider == Mesh::Istio) && app.renders(Component::ServiceMonitor)
}

/// Labels and annotations of the app's Namespace: the mesh's injection switch (Istio's
/// `istio-injection: enabled` label, Linkerd's `linkerd.io/inject: enabled` annotation).
///
/// A namespace shared by several apps carries the environment's switch whatever one app's
/// escape hatches say, so that the apps render the same Namespace; an app that switched the
/// mesh off opts its own pods out instead ([`pod_metadata`]).
pub fn namespace_metadata(app: &ResolvedApp, labels: &mut Map<String, Value>, annotations: &mut Map<String, Value>) {
    let shared = !app.defaults.namespace.contains("{app}");
    let Some(mesh) = app.environment.config.mesh.as_ref().filter(|_| shared || app.renders(Component::Mesh)) else {
        return;
    };
    match mesh.provider {
        Mesh::Istio => {
            labels.insert("istio-injection".into(), "enabled".into());
        }
        Mesh::Linkerd => {
            annotations.insert("linkerd.io/inject".into(), "enabled".into());
        }
    }
}

/// Adds to the pod template's `metadata` (which holds `labels`): the log collector's labels
/// and annotations; the mesh's pod settings (Linkerd's `all-authenticated` default inbound
/// policy under strict mutual TLS; the app's scrape settings for Istio's metrics merging); or,
/// when the app switched the mesh off in a meshed environment, the pods' opt-out.
pub fn pod_metadata(app: &ResolvedApp, metadata: &mut Value) {
    let env = &app.environment.config;
    let mut labels: Vec<(String, String)> = env.logging.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut annotations: Vec<(String, String)> =
        env.logging.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    match (env.mesh.as_ref(), mesh_of(app)) {
        (Some(m), None) => match m.provider {
            Mesh::Istio => labels.push(("sidecar.istio.io/inject".into(), "false".into())),
            Mesh::Linkerd => annotations.push(("linkerd.io/inject".into(), "disabled".into())),
        },
        (_, Some(m)) => {
            if m.provider == Mesh::Linkerd && m.mtls == MtlsMode::Strict {
                annotations.push(("config.linkerd.io/default-inbound-policy".into(), "all-authenticated".into()));
            }
            if scrapes_istio_merged_metrics(app) {
                // The sidecar injector moves these to the agent, which scrapes the app and
                // serves its metrics merged on ISTIO_MERGED_METRICS_PORT.
                annotations.push(("prometheus.io/scrape".into(), "true".into()));
                annotations.push(("prometheus.io/port".into(), app.defaults.port.to_string()));
                annotations.push(("prometheus.io/path".into(), app.defaults.metrics_path.clone()));
            }
        }
        (None, None) => {}
    }
    let Value::Object(meta) = metadata else { return };
    for (key, entries) in [("labels", labels), ("annotations", annotations)] {
        if entries.is_empty() {
            continue;
        }
        let map = meta.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = map {
            for (k, v) in entries {
                // paved's own labels and annotations (selectors, Vault) win.
                map.entry(k).or_insert(v.into());
            }
        }
    }
}

/// The OpenTelemetry SDK's environment variables for the app's container, when tracing is on:
/// `OTEL_SERVICE_NAME` (the app), `OTEL_RESOURCE_ATTRIBUTES` (`service.namespace` = the team,
/// `deployment.environment.name` = the environment, `service.version` = the image's tag or
/// digest), `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_EXPORTER_OTLP_PROTOCOL`, and the sampler
/// when the environment sets a ratio.
pub fn container_env(app: &ResolvedApp) -> Vec<Value> {
    let t = &app.environment.config.tracing;
    let (true, Some(endpoint)) = (app.renders(Component::Tracing), t.endpoint.as_deref()) else {
        return Vec::new();
    };
    let version = app.image.tag().or(app.image.digest()).unwrap_or("latest");
    let attributes = [
        ("service.namespace", app.team.as_str()),
        ("deployment.environment.name", app.environment.name.as_str()),
        ("service.version", version),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", baggage_value(v)))
    .collect::<Vec<_>>()
    .join(",");
    let protocol = t.protocol.as_str();
    let mut env = vec![
        json!({ "name": "OTEL_SERVICE_NAME", "value": app.app.as_str() }),
        json!({ "name": "OTEL_RESOURCE_ATTRIBUTES", "value": attributes }),
        json!({ "name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": endpoint }),
        json!({ "name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": protocol }),
    ];
    if let Some(ratio) = t.sample_ratio {
        env.push(json!({ "name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio" }));
        env.push(json!({ "name": "OTEL_TRACES_SAMPLER_ARG", "value": ratio.to_string() }));
    }
    env
}

/// Appends [`container_env`] to the container's `env`, leaving out the variables it already
/// sets (an app's own secret of that name wins).
pub fn add_container_env(app: &ResolvedApp, env: &mut Vec<Value>) {
    for var in container_env(app) {
        if !env.iter().any(|e| e.get("name") == var.get("name")) {
            env.push(var);
        }
    }
}

/// A value of `OTEL_RESOURCE_ATTRIBUTES` (W3C Baggage octets): everything else, and `%`,
/// percent-encoded.
fn baggage_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let octet = matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        if octet {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Service's extra ports: Istio's merged-metrics port when Prometheus scrapes it.
pub fn service_ports(app: &ResolvedApp) -> Vec<Value> {
    match scrapes_istio_merged_metrics(app) {
        true => vec![json!({
            "name": ISTIO_METRICS_PORT_NAME,
            "port": ISTIO_MERGED_METRICS_PORT,
            "targetPort": ISTIO_MERGED_METRICS_PORT,
            "protocol": "TCP",
        })],
        false => Vec::new(),
    }
}

/// The ServiceMonitor's endpoint: the app's `http` port and metrics path, or Istio's merged
/// metrics (the app's with Envoy's) in an Istio mesh.
pub fn scrape_endpoint(app: &ResolvedApp) -> Value {
    match scrapes_istio_merged_metrics(app) {
        true => json!({ "port": ISTIO_METRICS_PORT_NAME, "path": "/stats/prometheus", "interval": "30s" }),
        false => json!({ "port": "http", "path": app.defaults.metrics_path, "interval": "30s" }),
    }
}

fn in_namespace(ns: &str) -> Value {
    json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } } })
}

fn tcp(port: u16) -> Value {
    json!({ "port": port, "protocol": "TCP" })
}

/// Adds the NetworkPolicy's rules for tracing and the mesh to the app's `ingress` and `egress`
/// rules (which already allow the ingress controller and, with a ServiceMonitor, Prometheus to
/// the `http` port):
///
/// - tracing: egress to the collector's port (in its namespace, when configured);
/// - Istio: HBONE (15008) wherever the app's port is allowed; Prometheus to the merged metrics
///   (15020) and Envoy's (15090) instead of the app's port, which strict mutual TLS closes to
///   it; egress to istiod's xDS and certificate authority (15012);
/// - Linkerd: the proxy's inbound port (4143) wherever the app's port is allowed; Prometheus
///   also to the proxy's admin port (4191); egress to identity (8080), destination (8086) and
///   policy (8090).
///
/// Webhook ports (istiod's 15017, Linkerd's injector's 8443) are called by the API server, not
/// by the app's pods, and no pod of the app serves them, so they are not opened here.
pub fn network_policy_rules(app: &ResolvedApp, ingress: &mut [Value], egress: &mut Vec<Value>) {
    let env = &app.environment.config;
    if app.renders(Component::Tracing)
        && let Some(port) = env.tracing.port()
    {
        let mut rule = json!({ "ports": [tcp(port)] });
        if let Some(ns) = &env.tracing.namespace {
            rule["to"] = json!([in_namespace(ns)]);
        }
        // The HTTPS rule already allows 443 anywhere.
        if port != 443 || env.tracing.namespace.is_some() {
            egress.push(rule);
        }
    }
    let Some(mesh) = mesh_of(app) else { return };
    let prometheus = json!([in_namespace(&app.defaults.monitoring_namespace)]);
    let scraped = app.renders(Component::ServiceMonitor);
    for rule in ingress.iter_mut() {
        let from_prometheus = scraped && rule.get("from") == Some(&prometheus);
        let Some(ports) = rule.get_mut("ports").and_then(Value::as_array_mut) else { continue };
        match (mesh.provider, from_prometheus) {
            (Mesh::Istio, true) => *ports = vec![tcp(ISTIO_MERGED_METRICS_PORT), tcp(15090)],
            (Mesh::Istio, false) => ports.push(tcp(15008)),
            (Mesh::Linkerd, true) => ports.extend([tcp(4143), tcp(4191)]),
            (Mesh::Linkerd, false) => ports.push(tcp(4143)),
        }
    }
    let control_plane: &[u16] = match mesh.provider {
        Mesh::Istio => &[15012],
        Mesh::Linkerd => &[8080, 8086, 8090],
    };
    egress.push(json!({
        "to": [in_namespace(mesh.control_plane_namespace())],
        "ports": control_plane.iter().map(|p| tcp(*p)).collect::<Vec<_>>(),
    }));
}

/// The objects this module adds, in order: the dashboard, the alert rules, Istio's
/// PeerAuthentication.
pub(crate) fn objects(cx: &Cx<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    out.extend(dashboard(cx));
    out.extend(alert_rules(cx));
    out.extend(peer_authentication(cx));
    out
}

/// PromQL label matchers.
fn matchers(pairs: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let (op, v) = v.strip_prefix('~').map_or(("=", *v), |re| ("=~", re));
            format!("{k}{op}{}", serde_json::to_string(v).expect("a string serializes"))
        })
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// The series selectors of an app.
struct Series {
    /// The app's HTTP histogram: `namespace` and `service`.
    http: String,
    /// Its 5xx responses.
    errors: String,
    /// cAdvisor and kube-state-metrics series of the app's container.
    container: String,
    /// kube-state-metrics series of the app's autoscaler.
    hpa: String,
    /// kube-state-metrics series of the app's Deployment.
    deployment: String,
    metric: String,
}

impl Series {
    fn of(app: &ResolvedApp) -> Self {
        let ns = app.namespace.as_str();
        let name = app.app.as_str();
        // Pods of the Deployment: NAME-<template hash>-<suffix>.
        let pods = format!("~{name}-[a-z0-9]+-[a-z0-9]+");
        let status = app.defaults.http_status_label.as_str();
        Series {
            http: matchers(&[("namespace", ns), ("service", name)]),
            errors: matchers(&[("namespace", ns), ("service", name), (status, "~5..")]),
            container: matchers(&[("namespace", ns), ("pod", &pods), ("container", name)]),
            hpa: matchers(&[("namespace", ns), ("horizontalpodautoscaler", name)]),
            deployment: matchers(&[("namespace", ns), ("deployment", name)]),
            metric: app.defaults.http_metric.clone(),
        }
    }

    fn rate(&self, selector: &str, window: &str) -> String {
        format!("sum(rate({}_count{selector}[{window}]))", self.metric)
    }

    fn error_ratio(&self, window: &str) -> String {
        format!("{} / {}", self.rate(&self.errors, window), self.rate(&self.http, window))
    }

    fn quantile(&self, q: &str, window: &str) -> String {
        format!("histogram_quantile({q}, sum by (le) (rate({}_bucket{}[{window}])))", self.metric, self.http)
    }

    /// Usage of `resource` over the containers' limits (or requests, for CPU without a limit).
    fn saturation(&self, usage: &str, resource: &str, of: &str) -> String {
        let c = &self.container;
        let inner = &c[1..c.len() - 1];
        format!("{usage} / sum(kube_pod_container_resource_{of}{{{inner},resource=\"{resource}\"}})")
    }
}

/// A stable, short Grafana uid for the app's dashboard (FNV-1a of namespace and app).
fn dashboard_uid(app: &ResolvedApp) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}/{}", app.namespace, app.app).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("paved-{h:016x}")
}

/// The Grafana dashboard's JSON model: request rate, error ratio, latency (p50, p95, p99 of
/// the HTTP histogram) and saturation (CPU and memory against limits, replicas against the
/// autoscaler's maximum), for the data source picked in its `datasource` variable.
pub fn dashboard_json(app: &ResolvedApp) -> Value {
    let s = Series::of(app);
    let w = "$__rate_interval";
    let ds = json!({ "type": "prometheus", "uid": "${datasource}" });
    let status = &app.defaults.http_status_label;
    let target = |ref_id: &str, expr: String, legend: &str| json!({ "refId": ref_id, "datasource": ds, "expr": expr, "legendFormat": legend, "range": true });
    let cpu_of = if app.resources.cpu_limit.is_some() { "limits" } else { "requests" };
    let cpu_usage = format!("sum(rate(container_cpu_usage_seconds_total{}[{w}]))", s.container);
    let memory_usage = format!("sum(container_memory_working_set_bytes{})", s.container);
    let mut replicas =
        vec![target("A", format!("sum(kube_deployment_status_replicas_available{})", s.deployment), "available")];
    if app.autoscaling.is_some() {
        replicas.push(target("B", format!("kube_horizontalpodautoscaler_status_current_replicas{}", s.hpa), "current"));
        replicas.push(target("C", format!("kube_horizontalpodautoscaler_spec_max_replicas{}", s.hpa), "maximum"));
    }
    let alerts = &app.environment.config.alerts;
    let threshold = |value: f64| json!({ "mode": "absolute", "steps": [{ "color": "green", "value": null }, { "color": "red", "value": value }] });
    let panels = [
        (
            "Request rate",
            "Requests per second, by status code.",
            "reqps",
            None,
            vec![target(
                "A",
                format!("sum by ({status}) (rate({}_count{}[{w}]))", s.metric, s.http),
                &format!("{{{{{status}}}}}"),
            )],
        ),
        (
            "Error ratio",
            "5xx responses over all responses.",
            "percentunit",
            Some(threshold(alerts.error_ratio.get())),
            vec![target("A", s.error_ratio(w), "5xx")],
        ),
        (
            "Latency",
            "Request duration quantiles of the HTTP histogram.",
            "s",
            Some(threshold(alerts.latency_seconds.get())),
            vec![
                target("A", s.quantile("0.5", w), "p50"),
                target("B", s.quantile("0.95", w), "p95"),
                target("C", s.quantile("0.99", w), "p99"),
            ],
        ),
        (
            "CPU and memory",
            if cpu_of == "limits" {
                "Usage of the app's containers over their limits."
            } else {
                "Usage over limits (CPU has no limit: over requests)."
            },
            "percentunit",
            Some(threshold(0.9)),
            vec![
                target(
                    "A",
                    s.saturation(&cpu_usage, "cpu", cpu_of),
                    &format!("CPU / {}", cpu_of.trim_end_matches('s')),
                ),
                target("B", s.saturation(&memory_usage, "memory", "limits"), "memory / limit"),
            ],
        ),
        (
            "Replicas",
            if app.autoscaling.is_some() {
                "Available replicas, and the autoscaler's current and maximum."
            } else {
                "Available replicas."
            },
            "short",
            None,
            replicas,
        ),
    ];
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, (title, description, unit, thresholds, targets))| {
            let mut defaults = json!({ "unit": unit, "min": 0 });
            if let Some(t) = thresholds {
                defaults["thresholds"] = t;
                defaults["custom"] = json!({ "thresholdsStyle": { "mode": "line" } });
            }
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "description": description,
                "datasource": ds,
                "gridPos": { "h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8 },
                "fieldConfig": { "defaults": defaults, "overrides": [] },
                "targets": targets,
            })
        })
        .collect();
    json!({
        "uid": dashboard_uid(app),
        "title": format!("{} ({})", app.app, app.environment.name),
        "description": format!(
            "Rendered by paved for {} of team {} in {}: changes made in Grafana are replaced on the next deploy.",
            app.app, app.team, app.environment.name
        ),
        "tags": ["paved", app.team.as_str(), app.environment.name.as_str()],
        "editable": false,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": { "from": "now-6h", "to": "now" },
        "timezone": "utc",
        "annotations": { "list": [] },
        "templating": { "list": [{
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }] },
        "panels": panels,
    })
}

/// The dashboard's ConfigMap (when `dashboard` is rendered): labelled for Grafana's sidecar,
/// with the folder annotation when the environment names a folder.
pub(crate) fn dashboard(cx: &Cx<'_>) -> Option<Value> {
    let app = cx.app;
    if !app.renders(Component::Dashboard) {
        return None;
    }
    let config = &app.environment.config.dashboard;
    let json = serde_json::to_string_pretty(&dashboard_json(app)).expect("the dashboard serializes");
    let mut data = Map::new();
    data.insert(format!("{}.json", app.app), format!("{json}\n").into());
    let mut cm = cx.object("v1", "ConfigMap", &dashboard_name(app.app.as_str()), json!({ "data": data }));
    cm["metadata"]["labels"][&config.label] = config.label_value.as_str().into();
    if let Some(folder) = &config.folder {
        cm["metadata"]["annotations"] = json!({ &config.folder_annotation: folder });
    }
    Some(cm)
}

/// Names of the alerts paved renders.
pub mod alert {
    /// The ratio of 5xx responses is above `error_ratio`.
    pub const ERROR_RATIO: &str = "HTTPErrorRatioHigh";
    /// The latency quantile is above `latency_seconds`.
    pub const LATENCY: &str = "HTTPLatencyHigh";
    /// A container restarted more than `restarts` times in 15 minutes.
    pub const RESTARTS: &str = "ContainerRestarting";
    /// The autoscaler runs at its maximum.
    pub const HPA_AT_MAX: &str = "AutoscalerAtMaxReplicas";
}

/// The PrometheusRule of the app's alerts (when `alerts` is rendered): error ratio, latency,
/// container restarts (kube-state-metrics), and, with an autoscaler, the autoscaler at its
/// maximum. Each alert carries `severity` and `team` labels, a `summary` and, when configured,
/// a `runbook_url`.
pub(crate) fn alert_rules(cx: &Cx<'_>) -> Option<Value> {
    let app = cx.app;
    if !app.renders(Component::Alerts) {
        return None;
    }
    let a = &app.environment.config.alerts;
    let s = Series::of(app);
    let (name, env) = (app.app.as_str(), app.environment.name.as_str());
    // A ratio as a percentage, rounded to four decimals (0.999 → 99.9, 0.05 → 5).
    let percent = |x: f64| (x * 1e6).round() / 1e4;
    let percentile = percent(a.latency_quantile.get());
    let mut rules = vec![
        (
            alert::ERROR_RATIO,
            format!("{} > {}", s.error_ratio("5m"), a.error_ratio),
            format!(
                "{{{{ $value | humanizePercentage }}}} of the requests to {name} in {env} fail with 5xx (threshold {}%)",
                percent(a.error_ratio.get())
            ),
        ),
        (
            alert::LATENCY,
            format!("{} > {}", s.quantile(&a.latency_quantile.to_string(), "5m"), a.latency_seconds),
            format!(
                "p{percentile} latency of {name} in {env} is {{{{ $value | humanizeDuration }}}} (threshold {}s)",
                a.latency_seconds
            ),
        ),
        (
            alert::RESTARTS,
            format!("increase(kube_pod_container_status_restarts_total{}[15m]) > {}", s.container, a.restarts),
            format!(
                "container {name} of pod {{{{ $labels.pod }}}} in {env} restarted {{{{ $value | humanize }}}} times in 15 minutes"
            ),
        ),
    ];
    if app.autoscaling.is_some() {
        rules.push((
            alert::HPA_AT_MAX,
            format!(
                "kube_horizontalpodautoscaler_status_current_replicas{} >= kube_horizontalpodautoscaler_spec_max_replicas{}",
                s.hpa, s.hpa
            ),
            format!("{name} in {env} runs at its autoscaler's maximum of {{{{ $value }}}} replicas"),
        ));
    }
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|(alert, expr, summary)| {
            let mut annotations = json!({ "summary": summary });
            if let Some(url) = &a.runbook_url {
                annotations["runbook_url"] = url
                    .replace("{app}", name)
                    .replace("{team}", app.team.as_str())
                    .replace("{env}", env)
                    .replace("{alert}", alert)
                    .into();
            }
            json!({
                "alert": alert,
                "expr": expr,
                "for": a.for_,
                "labels": { "severity": a.severity, "team": app.team.as_str() },
                "annotations": annotations,
            })
        })
        .collect();
    let mut rule = cx.object(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        name,
        json!({ "spec": { "groups": [{ "name": format!("{name}.{env}.paved"), "rules": rules }] } }),
    );
    if let Value::Object(labels) = &mut rule["metadata"]["labels"] {
        for (k, v) in &a.labels {
            labels.entry(k.clone()).or_insert(v.as_str().into());
        }
    }
    Some(rule)
}

/// Istio's PeerAuthentication for the app's pods (in an Istio mesh): mutual TLS `STRICT`
/// (or `PERMISSIVE` as configured). It selects the app's pods, so that apps sharing a
/// namespace never render the same object.
pub(crate) fn peer_authentication(cx: &Cx<'_>) -> Option<Value> {
    let app = cx.app;
    let mesh = mesh_of(app).filter(|m| m.provider == Mesh::Istio)?;
    let mode = match mesh.mtls {
        MtlsMode::Permissive => "PERMISSIVE",
        _ => "STRICT",
    };
    let mut pa = json!({ "spec": { "mtls": { "mode": mode } } });
    pa["spec"]["selector"] = cx.match_labels();
    Some(cx.object("security.istio.io/v1", "PeerAuthentication", app.app.as_str(), pa))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_values_are_percent_encoded() {
        assert_eq!(baggage_value("v1.2.3"), "v1.2.3");
        assert_eq!(baggage_value("sha256:ab"), "sha256:ab");
        assert_eq!(baggage_value("a,b c%;\"\\"), "a%2Cb%20c%25%3B%22%5C");
    }

    #[test]
    fn matchers_quote_values() {
        assert_eq!(matchers(&[("namespace", "a-b"), ("pod", "~x-[a-z]+")]), r#"{namespace="a-b",pod=~"x-[a-z]+"}"#);
    }
}
