//! Monitoring, logging, tracing and mesh settings of an environment (`paved.toml`).
//!
//! Every setting is off by default, so an environment renders exactly what it rendered before
//! until the platform team switches a part on. A deploy may switch the objects off again with
//! its escape hatches ([`Component::Dashboard`](crate::Component::Dashboard),
//! [`Component::Alerts`](crate::Component::Alerts), [`Component::Tracing`](crate::Component::Tracing),
//! [`Component::Mesh`](crate::Component::Mesh)), which are recorded like every other.
//!
//! ```toml
//! [environments.production]
//! monitoring = true                      # the ServiceMonitor
//! mesh = "istio"                         # or "linkerd", or a table (below)
//!
//! [environments.production.dashboard]    # a Grafana dashboard in a ConfigMap
//! enabled = true
//! label = "grafana_dashboard"            # the Grafana sidecar's label (default)
//! label_value = "1"                      # (default)
//! folder = "Payments"                    # optional: the folder annotation's value
//!
//! [environments.production.alerts]       # a PrometheusRule
//! enabled = true
//! error_ratio = 0.05                     # 5xx / all requests (default 0.05)
//! latency_quantile = 0.99                # (default 0.99)
//! latency_seconds = 0.5                  # (default 1.0)
//! restarts = 3                           # container restarts in 15 minutes (default 3)
//! for = "5m"                             # (default "5m")
//! severity = "warning"                   # (default "warning")
//! runbook_url = "https://runbooks.example.com/{app}/{alert}"
//! labels = { release = "kube-prometheus-stack" }   # for the operator's ruleSelector
//!
//! [environments.production.tracing]      # OpenTelemetry SDK environment variables
//! enabled = true
//! endpoint = "http://otel-collector.observability:4318"
//! protocol = "http/protobuf"             # or "grpc", "http/json" (default "http/protobuf")
//! namespace = "observability"            # the collector's namespace (NetworkPolicy egress)
//! sample_ratio = 0.25                    # optional: parent-based trace-id ratio sampling
//!
//! [environments.production.logging]      # for the organisation's log collector
//! labels = { "logging.acme.io/collect" = "true" }
//! annotations = { "fluentbit.io/parser" = "json" }
//!
//! [environments.staging.mesh]            # the table form of `mesh`
//! provider = "linkerd"
//! mtls = "strict"                        # or "permissive" (default "strict")
//! namespace = "linkerd"                  # the control plane's namespace (default per provider)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::suggest;

/// A finite number read from the configuration (thresholds and ratios).
///
/// Equality is total (non-finite values are refused when read), so settings that hold one can
/// still be compared and hashed as a whole.
#[derive(Debug, Clone, Copy, PartialOrd)]
pub struct Number(f64);

impl Number {
    /// A finite number; `None` for NaN and infinities.
    pub fn new(value: f64) -> Option<Self> {
        value.is_finite().then_some(Number(value))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Number {}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rust prints the shortest representation that reads back exactly: `0.05`, `1`.
        write!(f, "{}", self.0)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Number::new(v).ok_or_else(|| serde::de::Error::custom(format!("{v} is not a finite number")))
    }
}

/// `[environments.NAME.dashboard]`: a Grafana dashboard of the app in a ConfigMap that
/// Grafana's dashboard sidecar (the Grafana Helm chart's `sidecar.dashboards`) loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DashboardConfig {
    /// Whether the dashboard is rendered (default false).
    pub enabled: bool,
    /// The label the sidecar looks for (its `sidecar.dashboards.label`; default
    /// `grafana_dashboard`).
    pub label: String,
    /// The label's value (its `sidecar.dashboards.labelValue`; default `"1"`).
    pub label_value: String,
    /// The Grafana folder, set as the annotation [`DashboardConfig::folder_annotation`]; none
    /// by default (the sidecar's default folder).
    pub folder: Option<String>,
    /// The annotation the sidecar reads the folder from (its `folderAnnotation`; default
    /// `grafana_folder`).
    pub folder_annotation: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: false,
            label: "grafana_dashboard".into(),
            label_value: "1".into(),
            folder: None,
            folder_annotation: "grafana_folder".into(),
        }
    }
}

/// `[environments.NAME.alerts]`: a `PrometheusRule` (Prometheus operator) with the app's
/// alerts: error ratio, latency, container restarts, and the autoscaler at its maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AlertsConfig {
    /// Whether the rules are rendered (default false).
    pub enabled: bool,
    /// Alert when the ratio of 5xx responses to all responses is above this (default 0.05).
    pub error_ratio: Number,
    /// The latency quantile compared with [`AlertsConfig::latency_seconds`] (default 0.99).
    pub latency_quantile: Number,
    /// Alert when the quantile's latency is above this many seconds (default 1).
    pub latency_seconds: Number,
    /// Alert when a container restarted more than this many times in 15 minutes (default 3).
    pub restarts: u32,
    /// How long a condition holds before the alert fires, a Prometheus duration (default `5m`).
    #[serde(rename = "for")]
    pub for_: String,
    /// The `severity` label of every alert (default `warning`).
    pub severity: String,
    /// The `runbook_url` annotation; `{app}`, `{team}`, `{env}` and `{alert}` are replaced.
    /// None by default.
    pub runbook_url: Option<String>,
    /// Labels of the PrometheusRule object, e.g. what the operator's `ruleSelector` selects
    /// (kube-prometheus-stack: `release = "NAME"`).
    pub labels: BTreeMap<String, String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: false,
            error_ratio: Number(0.05),
            latency_quantile: Number(0.99),
            latency_seconds: Number(1.0),
            restarts: 3,
            for_: "5m".into(),
            severity: "warning".into(),
            runbook_url: None,
            labels: BTreeMap::new(),
        }
    }
}

/// The OTLP protocol of the exporter (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `grpc` (port 4317 by convention).
    Grpc,
    /// `http/protobuf` (port 4318 by convention; the specification's default).
    #[default]
    HttpProtobuf,
    /// `http/json` (port 4318 by convention).
    HttpJson,
}

/// `[environments.NAME.tracing]`: OpenTelemetry SDK environment variables on the app's
/// container (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, the OTLP exporter's endpoint
/// and protocol), and the NetworkPolicy's egress to the collector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TracingConfig {
    /// Whether the variables are set (default false); needs [`TracingConfig::endpoint`].
    pub enabled: bool,
    /// The collector's OTLP endpoint, `http://` or `https://` (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<String>,
    /// `grpc`, `http/protobuf` (default) or `http/json`.
    pub protocol: OtlpProtocol,
    /// The collector's namespace: the NetworkPolicy allows egress to the endpoint's port only
    /// there. Unset: to the port in any namespace.
    pub namespace: Option<String>,
    /// Parent-based trace-id ratio sampling with this ratio (0–1); unset leaves the SDK's
    /// default (`parentbased_always_on`).
    pub sample_ratio: Option<Number>,
}

impl TracingConfig {
    /// The endpoint's port: the one written in the URL, else the scheme's (80 for `http`, 443
    /// for `https`). `None` without an endpoint.
    pub fn port(&self) -> Option<u16> {
        let endpoint = self.endpoint.as_deref()?;
        let (scheme, rest) = endpoint.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // `[::1]:4317` (IPv6) or `host:4317`.
        let port = match authority.rsplit_once(']') {
            Some((_, after)) => after.strip_prefix(':'),
            None => authority.rsplit_once(':').map(|(_, p)| p),
        };
        if let Some(p) = port.and_then(|p| p.parse().ok()) {
            return Some(p);
        }
        Some(match scheme {
            "https" => 443,
            _ => 80,
        })
    }
}

/// `[environments.NAME.logging]`: labels and annotations on the app's pods for the
/// organisation's log collector (Fluent Bit, Vector, Promtail, the Datadog agent, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LoggingConfig {
    /// Pod labels (Kubernetes label keys and values).
    pub labels: BTreeMap<String, String>,
    /// Pod annotations (Kubernetes annotation keys).
    pub annotations: BTreeMap<String, String>,
}

/// The service meshes paved renders for. Exhaustive on purpose: a renderer must know what
/// every mesh needs (injection, mutual TLS, ports), so a new mesh is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mesh {
    /// Istio (sidecar injection by the `istio-injection` namespace label, `PeerAuthentication`).
    Istio,
    /// Linkerd (injection by the `linkerd.io/inject` annotation, the default inbound policy).
    Linkerd,
}

/// Mutual TLS between meshed workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MtlsMode {
    /// Only mutual TLS is accepted (default).
    #[default]
    Strict,
    /// Plain text is accepted too (while clients join the mesh).
    Permissive,
}

/// `mesh`: `mesh = "istio"`, or the table `[environments.NAME.mesh]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeshConfig {
    /// The mesh.
    pub provider: Mesh,
    /// `strict` (default) or `permissive`.
    pub mtls: MtlsMode,
    /// The control plane's namespace (default `istio-system` for Istio, `linkerd` for Linkerd).
    pub namespace: Option<String>,
}

impl MeshConfig {
    /// The mesh with strict mutual TLS and the control plane in its default namespace.
    pub fn new(provider: Mesh) -> Self {
        MeshConfig { provider, mtls: MtlsMode::Strict, namespace: None }
    }

    /// The control plane's namespace.
    pub fn control_plane_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(match self.provider {
            Mesh::Istio => "istio-system",
            Mesh::Linkerd => "linkerd",
        })
    }
}

macro_rules! keyword {
    ($ty:ident, $what:literal, [$(($name:literal, $variant:ident)),+]) => {
        impl $ty {
            /// Every value's name, as written in `paved.toml`.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The name as written in `paved.toml`.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = Error;
            /// Parses a name; an unknown one is an error with a did-you-mean hint.
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(Error::invalid(
                        $what,
                        s,
                        concat!("is not a known ", $what),
                        Some(suggest::hint_for(s, Self::NAMES.iter().copied())),
                    )),
                }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                // serde's own message, which the configuration's errors turn into a
                // did-you-mean hint.
                s.parse().map_err(|_| serde::de::Error::unknown_variant(&s, Self::NAMES))
            }
        }
    };
}

keyword!(Mesh, "mesh", [("istio", Istio), ("linkerd", Linkerd)]);
keyword!(MtlsMode, "mtls mode", [("strict", Strict), ("permissive", Permissive)]);
keyword!(OtlpProtocol, "OTLP protocol", [("grpc", Grpc), ("http/protobuf", HttpProtobuf), ("http/json", HttpJson)]);

/// The table form of `mesh`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeshTable {
    provider: Mesh,
    #[serde(default)]
    mtls: MtlsMode,
    #[serde(default)]
    namespace: Option<String>,
}

impl<'de> Deserialize<'de> for MeshConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MeshConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mesh name (\"istio\", \"linkerd\") or a table with `provider`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<MeshConfig, E> {
                let provider = s.parse().map_err(|_| E::unknown_variant(s, Mesh::NAMES))?;
                Ok(MeshConfig::new(provider))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<MeshConfig, A::Error> {
                let t = MeshTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MeshConfig { provider: t.provider, mtls: t.mtls, namespace: t.namespace })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for MeshConfig {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("provider", &self.provider)?;
        m.serialize_entry("mtls", &self.mtls)?;
        if let Some(ns) = &self.namespace {
            m.serialize_entry("namespace", ns)?;
        }
        m.end()
    }
}

/// Why a Kubernetes label or annotation key is invalid, if it is: an optional DNS-subdomain
/// prefix of at most 253 characters and `/`, then a name of at most 63 characters of
/// alphanumerics, `-`, `_` and `.`, beginning and ending with an alphanumeric.
///
/// ```
/// use paved_core::observability::key_problem;
/// assert_eq!(key_problem("fluentbit.io/parser"), None);
/// assert!(key_problem("Fluentbit.IO/parser").unwrap().contains("prefix"));
/// assert!(key_problem("-collect").is_some());
/// ```
pub fn key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label_ok) {
            return Some(format!(
                "its prefix {p:?} is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"
            ));
        }
    }
    name_problem(name).map(|why| format!("its name {name:?} {why}"))
}

/// Why a Kubernetes label value is invalid, if it is: empty, or at most 63 characters of
/// alphanumerics, `-`, `_` and `.`, beginning and ending with an alphanumeric.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() { None } else { name_problem(value) }
}

fn name_problem(name: &str) -> Option<String> {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 63 {
        Some("must have 1 to 63 characters".into())
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        Some("may hold only letters, digits, '-', '_' and '.'".into())
    } else if !ends_ok(name.chars().next()) || !ends_ok(name.chars().last()) {
        Some("must begin and end with a letter or digit".into())
    } else {
        None
    }
}

/// Whether `s` is a Prometheus duration (`5m`, `1h30m`, `90s`).
///
/// ```
/// use paved_core::observability::is_prometheus_duration;
/// assert!(is_prometheus_duration("1h30m"));
/// assert!(!is_prometheus_duration("5 minutes"));
/// assert!(!is_prometheus_duration("0"));
/// ```
pub fn is_prometheus_duration(s: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = s;
    let mut last_unit: Option<usize> = None;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        // `ms` before `m`.
        let Some(unit) = [6, 0, 1, 2, 3, 4, 5].into_iter().find(|&i| rest.starts_with(UNITS[i])) else {
            return false;
        };
        // Units in decreasing order, each once.
        if last_unit.is_some_and(|last| unit <= last) {
            return false;
        }
        last_unit = Some(unit);
        rest = &rest[UNITS[unit].len()..];
    }
    true
}

/// The name of an app's dashboard ConfigMap.
pub fn dashboard_name(app: &str) -> String {
    format!("{app}-dashboard")
}

/// Drops the components the environment does not switch on: the dashboard, alerts, tracing
/// and mesh are rendered only where `paved.toml` turns them on.
pub(crate) fn retain_configured(env: &crate::config::EnvironmentConfig, components: &mut Vec<crate::Component>) {
    use crate::Component;
    components.retain(|c| match c {
        Component::Dashboard => env.dashboard.enabled,
        Component::Alerts => env.alerts.enabled,
        Component::Tracing => env.tracing.enabled,
        Component::Mesh => env.mesh.is_some(),
        _ => true,
    });
}

/// Label keys paved sets on its objects and pods: logging labels may not set them.
fn reserved_key(key: &str) -> bool {
    key.starts_with("app.kubernetes.io/") || key.starts_with("paved.dev/")
}

/// Checks the observability settings of one environment; `Err((key, message, hint))` names
/// the offending key under `environments.NAME`.
pub(crate) fn check(
    dashboard: &DashboardConfig,
    alerts: &AlertsConfig,
    tracing: &TracingConfig,
    logging: &LoggingConfig,
    mesh: Option<&MeshConfig>,
) -> std::result::Result<(), (String, String, String)> {
    let fail = |key: &str, message: String, hint: &str| Err((key.to_string(), message, hint.to_string()));
    if let Some(why) = key_problem(&dashboard.label) {
        return fail(
            "dashboard",
            format!("label {:?} is not a label key: {why}", dashboard.label),
            "use e.g. \"grafana_dashboard\"",
        );
    }
    if let Some(why) = label_value_problem(&dashboard.label_value) {
        return fail(
            "dashboard",
            format!("label_value {:?} is not a label value: {why}", dashboard.label_value),
            "use e.g. \"1\"",
        );
    }
    if let Some(why) = key_problem(&dashboard.folder_annotation) {
        return fail(
            "dashboard",
            format!("folder_annotation {:?} is not an annotation key: {why}", dashboard.folder_annotation),
            "use e.g. \"grafana_folder\"",
        );
    }
    let ratio = |v: Number| v.get() > 0.0 && v.get() < 1.0;
    if !ratio(alerts.error_ratio) {
        return fail(
            "alerts",
            format!("error_ratio {} is not between 0 and 1", alerts.error_ratio),
            "use e.g. 0.05 (5% of requests)",
        );
    }
    if !ratio(alerts.latency_quantile) {
        return fail(
            "alerts",
            format!("latency_quantile {} is not between 0 and 1", alerts.latency_quantile),
            "use e.g. 0.99 (the 99th percentile)",
        );
    }
    if alerts.latency_seconds.get() <= 0.0 {
        return fail("alerts", format!("latency_seconds {} is not positive", alerts.latency_seconds), "use e.g. 0.5");
    }
    if alerts.restarts == 0 {
        return fail("alerts", "restarts must be at least 1".into(), "use e.g. 3 (restarts in 15 minutes)");
    }
    if !is_prometheus_duration(&alerts.for_) {
        return fail(
            "alerts",
            format!("for {:?} is not a Prometheus duration", alerts.for_),
            "use e.g. \"5m\" or \"1h30m\"",
        );
    }
    if alerts.severity.is_empty() || alerts.severity.contains(['{', '}']) {
        return fail(
            "alerts",
            format!("severity {:?} is not a plain label value", alerts.severity),
            "use e.g. \"warning\" or \"critical\"",
        );
    }
    if let Some(url) = &alerts.runbook_url {
        let without = ["{app}", "{team}", "{env}", "{alert}"].iter().fold(url.clone(), |u, p| u.replace(p, ""));
        if !(url.starts_with("https://") || url.starts_with("http://")) || without.contains(['{', '}', ' ']) {
            return fail(
                "alerts",
                format!(
                    "runbook_url {url:?} is not an http(s) URL with only {{app}}, {{team}}, {{env}} and {{alert}} placeholders"
                ),
                "use e.g. \"https://runbooks.example.com/{app}/{alert}\"",
            );
        }
    }
    for (key, value) in &alerts.labels {
        if let Some(why) =
            key_problem(key).or_else(|| label_value_problem(value).map(|w| format!("its value {value:?} {w}")))
        {
            return fail(
                "alerts",
                format!("labels: {key:?} is not a valid label: {why}"),
                "use Kubernetes label keys and values",
            );
        }
        if reserved_key(key) {
            return fail("alerts", format!("labels: {key:?} is a label paved sets"), "remove it");
        }
    }
    if tracing.enabled {
        let Some(endpoint) = &tracing.endpoint else {
            return fail(
                "tracing",
                "tracing is enabled without an endpoint".into(),
                "set endpoint = \"http://otel-collector.observability:4318\" (your collector's OTLP endpoint)",
            );
        };
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        if host.is_none_or(|h| h.is_empty() || h.contains(['@', ' '])) || endpoint.contains([' ', ',']) {
            return fail(
                "tracing",
                format!("endpoint {endpoint:?} is not an http:// or https:// URL"),
                "use e.g. \"http://otel-collector.observability:4318\"",
            );
        }
    }
    if let Some(ns) = &tracing.namespace
        && crate::names::Team::new(ns.clone()).is_err()
    {
        return fail(
            "tracing",
            format!("namespace {ns:?} is not a namespace name"),
            "use the collector's namespace, e.g. \"observability\"",
        );
    }
    if let Some(r) = tracing.sample_ratio
        && !(0.0..=1.0).contains(&r.get())
    {
        return fail(
            "tracing",
            format!("sample_ratio {r} is not between 0 and 1"),
            "use e.g. 0.25 (a quarter of traces)",
        );
    }
    for (key, value) in &logging.labels {
        if let Some(why) = key_problem(key) {
            return fail(
                "logging",
                format!("labels: {key:?} is not a label key: {why}"),
                "use e.g. \"logging.example.com/collect\"",
            );
        }
        if let Some(why) = label_value_problem(value) {
            return fail(
                "logging",
                format!("labels: the value {value:?} of {key:?} is not a label value: it {why}"),
                "use at most 63 letters, digits, '-', '_' and '.'",
            );
        }
        if reserved_key(key) {
            return fail(
                "logging",
                format!("labels: {key:?} is a label paved sets"),
                "use a key of the collector's own prefix",
            );
        }
    }
    for key in logging.annotations.keys() {
        if let Some(why) = key_problem(key) {
            return fail(
                "logging",
                format!("annotations: {key:?} is not an annotation key: {why}"),
                "use e.g. \"fluentbit.io/parser\"",
            );
        }
        if reserved_key(key) {
            return fail(
                "logging",
                format!("annotations: {key:?} is an annotation paved sets"),
                "use a key of the collector's own prefix",
            );
        }
    }
    if let Some(ns) = mesh.and_then(|m| m.namespace.as_ref())
        && crate::names::Team::new(ns.clone()).is_err()
    {
        return fail(
            "mesh",
            format!("namespace {ns:?} is not a namespace name"),
            "use the control plane's namespace, e.g. \"istio-system\"",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kubernetes_rules() {
        assert_eq!(key_problem("grafana_dashboard"), None);
        assert_eq!(key_problem("ad.datadoghq.com/my-service.logs"), None);
        assert!(key_problem("a/b/c").is_some());
        assert!(key_problem(&"a".repeat(64)).unwrap().contains("1 to 63"));
        assert!(key_problem("/x").unwrap().contains("prefix"));
        assert!(key_problem("x/").is_some());
        assert_eq!(label_value_problem(""), None);
        assert!(label_value_problem("a b").is_some());
        assert!(label_value_problem("x-").is_some());
    }

    #[test]
    fn prometheus_durations() {
        for ok in ["5m", "1h30m", "90s", "1d", "100ms", "1w2d"] {
            assert!(is_prometheus_duration(ok), "{ok}");
        }
        for bad in ["", "5", "m", "5M", "30m1h", "5m5m", "1.5h", "-5m"] {
            assert!(!is_prometheus_duration(bad), "{bad}");
        }
    }

    #[test]
    fn tracing_ports() {
        let t = |e: &str| TracingConfig { enabled: true, endpoint: Some(e.into()), ..TracingConfig::default() }.port();
        assert_eq!(t("http://otel-collector.observability:4318"), Some(4318));
        assert_eq!(t("https://otel.example.com/v1"), Some(443));
        assert_eq!(t("http://otel"), Some(80));
        assert_eq!(t("http://[::1]:4317"), Some(4317));
        assert_eq!(TracingConfig::default().port(), None);
    }

    /// The module documentation's example, as a file.
    const EXAMPLE: &str = r#"
[environments.production]
monitoring = true
mesh = "istio"

[environments.production.dashboard]
enabled = true
folder = "Payments"

[environments.production.alerts]
enabled = true
error_ratio = 0.05
latency_seconds = 0.5
for = "10m"
runbook_url = "https://runbooks.example.com/{app}/{alert}"
labels = { release = "kube-prometheus-stack" }

[environments.production.tracing]
enabled = true
endpoint = "http://otel-collector.observability:4318"
namespace = "observability"
sample_ratio = 0.25

[environments.production.logging]
labels = { "logging.acme.io/collect" = "true" }
annotations = { "fluentbit.io/parser" = "json" }

[environments.staging.mesh]
provider = "linkerd"
mtls = "permissive"
"#;

    fn config_error(text: &str) -> Error {
        crate::OrgConfig::parse("paved.toml", text).unwrap_err()
    }

    #[test]
    fn the_example_parses() {
        let c = crate::OrgConfig::parse("paved.toml", EXAMPLE).unwrap();
        let p = &c.environment("production").unwrap().config;
        assert!(p.dashboard.enabled && p.alerts.enabled && p.tracing.enabled);
        assert_eq!(p.dashboard.label, "grafana_dashboard");
        assert_eq!(p.alerts.for_, "10m");
        assert_eq!(p.alerts.latency_quantile, Number(0.99));
        assert_eq!(p.tracing.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(p.tracing.port(), Some(4318));
        assert_eq!(p.mesh, Some(MeshConfig::new(Mesh::Istio)));
        let s = &c.environment("staging").unwrap().config;
        assert_eq!(s.mesh.as_ref().map(|m| (m.provider, m.mtls)), Some((Mesh::Linkerd, MtlsMode::Permissive)));
        assert!(!s.dashboard.enabled && !s.alerts.enabled && !s.tracing.enabled, "off by default");
        // Every part is off in the built-in environments.
        for env in crate::OrgConfig::default().environments.values() {
            assert_eq!(
                (env.dashboard.enabled, env.alerts.enabled, env.tracing.enabled, env.mesh.is_some()),
                (false, false, false, false)
            );
        }
        // And the configuration survives a round trip (the backends' sections read it so).
        let again: crate::OrgConfig = toml::Value::try_from(&c).unwrap().try_into().unwrap();
        assert_eq!(again.environments, c.environments);
    }

    #[test]
    fn unknown_names_get_did_you_mean_hints_at_their_line() {
        let e = config_error("[environments.production]\nreplicas = 2\nmesh = \"istoi\"\n");
        assert!(e.to_string().starts_with("paved.toml:3:"), "{e}");
        assert!(e.to_string().contains("istoi"), "{e}");
        assert_eq!(e.hint(), Some("did you mean \"istio\"?"));
        assert!(e.is_user_error());
        let e = config_error("[environments.production.mesh]\nprovider = \"linkerd\"\nmtls = \"strickt\"\n");
        assert_eq!(e.hint(), Some("did you mean \"strict\"?"));
        let e = config_error("[environments.production.mesh]\nprovider = \"linkerd\"\nnamspace = \"l5d\"\n");
        assert_eq!(e.hint(), Some("did you mean \"namespace\"? (or remove the key)"));
        let e = config_error(
            "[environments.production.tracing]\nenabled = true\nendpoint = \"http://c:4317\"\nprotocol = \"grpcc\"\n",
        );
        assert_eq!(e.hint(), Some("did you mean \"grpc\"?"));
        let e = config_error("[environments.production.alerts]\nenabled = true\nerror_ration = 0.1\n");
        assert_eq!(e.hint(), Some("did you mean \"error_ratio\"? (or remove the key)"));
        let e = config_error("[environments.production]\nmesh = 3\n");
        assert!(e.to_string().contains("a mesh name"), "{e}");
        let e = config_error("[environments.production.tracing]\nsample_ratio = nan\n");
        assert!(e.to_string().contains("finite"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_a_fix() {
        let cases = [
            (
                "[environments.production.tracing]\nenabled = true\n",
                "tracing: tracing is enabled without an endpoint",
                "set endpoint",
            ),
            (
                "[environments.production.tracing]\nenabled = true\nendpoint = \"otel:4317\"\n",
                "is not an http:// or https:// URL",
                "use e.g.",
            ),
            (
                "[environments.production.tracing]\nsample_ratio = 2.0\n",
                "sample_ratio 2 is not between 0 and 1",
                "0.25",
            ),
            ("[environments.production.alerts]\nerror_ratio = 5\n", "error_ratio 5 is not between 0 and 1", "0.05"),
            ("[environments.production.alerts]\nfor = \"5 minutes\"\n", "is not a Prometheus duration", "\"5m\""),
            ("[environments.production.alerts]\nrestarts = 0\n", "restarts must be at least 1", "3"),
            ("[environments.production.alerts]\nrunbook_url = \"https://r.io/{service}\"\n", "runbook_url", "{alert}"),
            (
                "[environments.production.alerts]\nlabels = { \"app.kubernetes.io/name\" = \"x\" }\n",
                "is a label paved sets",
                "remove",
            ),
            (
                "[environments.production.logging]\nlabels = { \"Collect Logs\" = \"true\" }\n",
                "is not a label key",
                "logging.example.com/collect",
            ),
            (
                "[environments.production.logging]\nlabels = { collect = \"yes please\" }\n",
                "is not a label value",
                "63",
            ),
            (
                "[environments.production.logging]\nlabels = { \"paved.dev/team\" = \"x\" }\n",
                "is a label paved sets",
                "prefix",
            ),
            (
                "[environments.production.logging]\nannotations = { \"-parser\" = \"json\" }\n",
                "is not an annotation key",
                "fluentbit.io/parser",
            ),
            (
                "[environments.production.dashboard]\nlabel = \"grafana dashboard\"\n",
                "is not a label key",
                "grafana_dashboard",
            ),
            (
                "[environments.production.mesh]\nprovider = \"istio\"\nnamespace = \"Istio_System\"\n",
                "is not a namespace name",
                "istio-system",
            ),
            (
                "[app]\nhttp_metric = \"http.server.duration\"\n[environments.production]\n",
                "must be Prometheus names",
                "http_server_request_duration_seconds",
            ),
        ];
        for (text, message, hint) in cases {
            let e = config_error(text);
            assert!(e.to_string().contains(message), "{text}: {e}");
            assert!(e.hint().is_some_and(|h| h.contains(hint)), "{text}: {:?}", e.hint());
            assert!(e.is_user_error());
        }
        // The error points at the table's line.
        let e = config_error(
            "domain = \"a.io\"\n[environments.production]\n[environments.production.logging]\nlabels = { \"a b\" = \"c\" }\n",
        );
        assert!(e.to_string().starts_with("paved.toml:3: environments.production.logging: labels"), "{e}");
    }

    #[test]
    fn names_with_hints() {
        assert_eq!("istio".parse::<Mesh>().unwrap(), Mesh::Istio);
        let e = "istoi".parse::<Mesh>().unwrap_err();
        assert_eq!(e.hint(), Some("did you mean \"istio\"?"));
        assert!(e.is_user_error());
        assert_eq!("http/json".parse::<OtlpProtocol>().unwrap(), OtlpProtocol::HttpJson);
        assert_eq!(MeshConfig::new(Mesh::Linkerd).control_plane_namespace(), "linkerd");
    }
}
