//! The webhook's Prometheus metrics (`/metrics`, OpenMetrics text).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `validate` or `mutate`.
    pub endpoint: String,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub operation: String,
    /// `true` for a dry run.
    pub dry_run: String,
}

/// Labels of a decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `validate` or `mutate`.
    pub endpoint: String,
    /// `allowed`, `denied`, `patched`, `undecided-allowed`, `undecided-denied`.
    pub decision: String,
}

/// Labels of an endpoint.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `validate` or `mutate`.
    pub endpoint: String,
}

/// Labels of a plugin failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The policy.
    pub policy: String,
    /// `timeout`, `trap`, `memory`, `error`…
    pub reason: String,
}

/// Labels of a request the webhook could not decide.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UndecidedLabels {
    /// `over-limit`, `deadline` or `internal`.
    pub reason: String,
}

/// Labels of a reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `policies` or `certificate`.
    pub what: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Every metric of the webhook, registered once.
#[derive(Debug)]
pub struct AdmissionMetrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// `paved_admission_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `paved_admission_decisions_total`.
    pub decisions: Family<DecisionLabels, Counter>,
    /// `paved_admission_request_duration_seconds`.
    pub duration: Family<EndpointLabels, Histogram>,
    /// `paved_admission_plugin_failures_total`.
    pub plugin_failures: Family<FailureLabels, Counter>,
    /// `paved_admission_undecided_total{reason}` (over the limit, past the deadline).
    pub undecided: Family<UndecidedLabels, Counter>,
    /// `paved_admission_reloads_total`.
    pub reloads: Family<ReloadLabels, Counter>,
    /// `paved_admission_malformed_total`.
    pub malformed: Counter,
    /// `paved_admission_policies`: policies loaded.
    pub policies: Gauge,
    /// `paved_admission_in_flight`: evaluations running.
    pub in_flight: Gauge,
}

impl Default for AdmissionMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("paved_admission");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Admission reviews received", requests.clone());
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register("decisions", "Admission decisions", decisions.clone());
        let duration = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        registry.register("request_duration_seconds", "Time from request to answer", duration.clone());
        let plugin_failures = Family::<FailureLabels, Counter>::default();
        registry.register("plugin_failures", "Plugin failures (timeouts, traps, errors)", plugin_failures.clone());
        let undecided = Family::<UndecidedLabels, Counter>::default();
        registry.register(
            "undecided",
            "Requests answered by the failure policy (over the concurrency limit, past the deadline)",
            undecided.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register("reloads", "Reloads of the policies and the certificate", reloads.clone());
        let malformed = Counter::default();
        registry.register("malformed", "Bodies that are not admission reviews (answered 400)", malformed.clone());
        let policies = Gauge::default();
        registry.register("policies", "Policies loaded", policies.clone());
        let in_flight = Gauge::default();
        registry.register("in_flight", "Evaluations running", in_flight.clone());
        AdmissionMetrics {
            registry,
            requests,
            decisions,
            duration,
            plugin_failures,
            undecided,
            reloads,
            malformed,
            policies,
            in_flight,
        }
    }
}

impl AdmissionMetrics {
    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}
