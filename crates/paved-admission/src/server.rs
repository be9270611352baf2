//! The webhook: `/validate`, `/mutate`, `/healthz`, `/readyz`, `/metrics`; a concurrency
//! limit and a deadline per decision; policies hot-reloaded without dropping a request.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use paved_core::{OrgConfig, Result};
use paved_policy::{AdmissionOperation, Evaluation, Failure, HostOptions, Outcome, PolicySet};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::metrics::{
    AdmissionMetrics, DecisionLabels, EndpointLabels, FailureLabels, ReloadLabels, RequestLabels, UndecidedLabels,
};
use crate::reload::Fingerprint;
use crate::review::{Malformed, Review, Verdict};
use crate::settings::AdmissionSettings;
use crate::tls::{CertificateFiles, TlsListener};

/// The largest request body read: the API server's largest object (3 MiB in etcd's default
/// request limit) and its old version, with the review around them.
const MAX_BODY: usize = 7 << 20;

/// Which webhook a review came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate`: the validating policies, on the object as it will be stored (the API
    /// server calls validating webhooks after every mutation); the verdict.
    Validate,
    /// `/mutate`: the mutating policies; the verdict and the JSONPatch of their changes.
    Mutate,
}

impl Endpoint {
    /// `validate` or `mutate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// What the webhook decides with: the configuration, its `[admission]` settings and the
/// policies, loaded together and swapped together on reload.
#[derive(Debug)]
pub struct Policies {
    /// The configuration (its `app.namespace` and environments map namespaces).
    pub config: Arc<OrgConfig>,
    /// `[admission]`.
    pub settings: AdmissionSettings,
    /// Every policy, as plan time evaluates them.
    pub set: PolicySet,
    /// The validating ones (`/validate`, the audit).
    pub validating: PolicySet,
    /// The mutating ones (`/mutate`).
    pub mutating: PolicySet,
    /// The files it was loaded from: a change reloads it.
    pub files: Vec<PathBuf>,
}

impl Policies {
    /// The policies of a configuration, as [`PolicySet::from_config`] loads them for plan
    /// time (the baseline, the organisation's and the repository's `[[policies]]`, pins
    /// verified).
    pub fn load(config: OrgConfig) -> Result<Policies> {
        let set = PolicySet::from_config(&config, HostOptions::default())?;
        Policies::with_set(config, set)
    }

    /// A configuration with a given policy set.
    pub fn with_set(config: OrgConfig, set: PolicySet) -> Result<Policies> {
        let settings = AdmissionSettings::from_config(&config)?;
        let mut files: Vec<PathBuf> = config.source.iter().cloned().collect();
        if let Some(org) = &config.org_policy {
            files.push(org.source.clone());
        }
        for policy in set.policies() {
            if let Some(plugin) = policy.plugin() {
                let m = plugin.manifest();
                files.push(m.dir.join(paved_policy::MANIFEST_FILE));
                files.push(m.component_path());
            }
        }
        // A plugin built against 0.1.0 cannot tell a DELETE or CONNECT from a deploy.
        for policy in set.policies() {
            let ops = &policy.manifest().admission_operations;
            if policy.plugin().is_some_and(|p| p.contract() == "0.1.0")
                && let Some(op) =
                    ops.iter().find(|o| matches!(o, AdmissionOperation::Delete | AdmissionOperation::Connect))
            {
                return Err(paved_core::Error::invalid(
                    "admission_operations",
                    op.as_str(),
                    format!("is listed by policy {}, built against paved:policy@0.1.0, which cannot see the operation", policy.name()),
                    Some(
                        "rebuild the plugin against paved:policy@0.2.0 with `paved_policy::toolchain::build`, or list only CREATE and UPDATE"
                            .into(),
                    ),
                ));
            }
        }
        let validating = set.only(|p| !p.manifest().mutating);
        let mutating = set.only(|p| p.manifest().mutating);
        Ok(Policies { config: Arc::new(config), settings, set, validating, mutating, files })
    }
}

/// Builds the policies anew (on a reload): reads the configuration again and loads it.
pub type Loader = Arc<dyn Fn() -> Result<Policies> + Send + Sync>;

/// The admission webhook: answers reviews with the current policies.
pub struct Admission {
    current: RwLock<Arc<Policies>>,
    loader: Option<Loader>,
    seen: Mutex<Fingerprint>,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    metrics: AdmissionMetrics,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("policies", &self.policies().set.policies().len()).finish_non_exhaustive()
    }
}

impl Admission {
    /// A webhook deciding with `policies`; `loader` (if any) builds them anew when their files
    /// change ([`reload_if_changed`](Self::reload_if_changed)). The concurrency limit is
    /// `max_concurrent` of these first settings.
    pub fn new(policies: Policies, loader: Option<Loader>) -> Arc<Admission> {
        let metrics = AdmissionMetrics::default();
        metrics.policies.set(policies.set.policies().len() as i64);
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(policies.settings.max_concurrent)),
            max_concurrent: policies.settings.max_concurrent,
            seen: Mutex::new(Fingerprint::of(&policies.files)),
            current: RwLock::new(Arc::new(policies)),
            loader,
            metrics,
        })
    }

    /// The webhook of the configuration `loader` reads, reloading through it.
    pub fn from_loader(loader: Loader) -> Result<Arc<Admission>> {
        let policies = loader()?;
        Ok(Admission::new(policies, Some(loader)))
    }

    /// The policies deciding now. A review holds on to the ones it started with, so a reload
    /// never changes a decision half-way.
    pub fn policies(&self) -> Arc<Policies> {
        self.current.read().expect("policies").clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> &AdmissionMetrics {
        &self.metrics
    }

    /// Reloads the policies when one of their files changed (the configuration, the
    /// organisation's policy file, a manifest, a component). `Ok(true)`: new policies decide;
    /// `Err`: the files do not load (a pin that does not match, a bad manifest…) and the
    /// previous policies keep deciding. Loading runs on a blocking thread.
    pub async fn reload_if_changed(&self) -> Result<bool> {
        let Some(loader) = self.loader.clone() else { return Ok(false) };
        let files = self.policies().files.clone();
        let now = Fingerprint::of(&files);
        {
            let mut seen = self.seen.lock().expect("fingerprint");
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let loaded = tokio::task::spawn_blocking(move || loader())
            .await
            .map_err(|e| paved_core::Error::backend("admission", format!("the reload thread stopped: {e}"), None))?;
        let label = |result: &str| ReloadLabels { what: "policies".into(), result: result.into() };
        match loaded {
            Ok(policies) => {
                // A policy added or removed changes the files watched; with the same files, the
                // fingerprint taken before loading stays, so a change made while loading
                // reloads again.
                if policies.files != files {
                    *self.seen.lock().expect("fingerprint") = Fingerprint::of(&policies.files);
                }
                self.metrics.policies.set(policies.set.policies().len() as i64);
                *self.current.write().expect("policies") = Arc::new(policies);
                self.metrics.reloads.get_or_create(&label("ok")).inc();
                tracing::info!("policies reloaded");
                Ok(true)
            }
            Err(e) => {
                self.metrics.reloads.get_or_create(&label("error")).inc();
                tracing::error!(error = %e, "policies not reloaded; the previous ones keep deciding");
                Err(e)
            }
        }
    }

    /// Answers one `AdmissionReview` body: the review to send back, or why the body is not one.
    pub async fn review(&self, endpoint: Endpoint, body: &[u8]) -> std::result::Result<Value, Malformed> {
        let started = Instant::now();
        let mut review = Review::parse(body).inspect_err(|_| {
            self.metrics.malformed.inc();
        })?;
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.as_str().into(),
                operation: review.operation_name().into(),
                dry_run: review.dry_run.to_string(),
            })
            .inc();
        let (verdict, decision) = self.decide(endpoint, &mut review, started).await;
        self.metrics
            .decisions
            .get_or_create(&DecisionLabels { endpoint: endpoint.as_str().into(), decision: decision.into() })
            .inc();
        self.metrics
            .duration
            .get_or_create(&EndpointLabels { endpoint: endpoint.as_str().into() })
            .observe(started.elapsed().as_secs_f64());
        Ok(verdict.to_review(&review))
    }

    /// The verdict on a review, and the decision's metric label.
    async fn decide(&self, endpoint: Endpoint, review: &mut Review, started: Instant) -> (Verdict, &'static str) {
        let policies = self.policies();
        let settings = &policies.settings;
        if review.namespace.as_deref().is_some_and(|n| settings.excluded(n))
            || review.subject().is_none()
            || review.is_finishing_deletion()
        {
            return (Verdict::allow(), "allowed");
        }
        let deadline = tokio::time::Instant::from_std(started + settings.deadline());
        let undecided = |reason: &str, why: String| {
            self.metrics.undecided.get_or_create(&UndecidedLabels { reason: reason.into() }).inc();
            let verdict = Verdict::undecided(settings.failure_policy, &why);
            let label = if verdict.allowed { "undecided-allowed" } else { "undecided-denied" };
            (verdict, label)
        };
        let deadline_ms = settings.deadline().as_millis();
        let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await else {
            return undecided(
                "over-limit",
                format!(
                    "{} evaluations were running and none finished within {deadline_ms} ms; more replicas, or a higher \
                     `max_concurrent` in [admission], give it room",
                    self.max_concurrent
                ),
            );
        };
        let environment = settings.environment_of(review.namespace.as_deref());
        // `/validate` needs the object no more: it moves into the input. `/mutate` keeps it for
        // the patch.
        let input = match endpoint {
            Endpoint::Validate => review.take_action_input(environment),
            Endpoint::Mutate => review.action_input(environment),
        };
        let set = match endpoint {
            Endpoint::Validate => policies.validating.clone(),
            Endpoint::Mutate => policies.mutating.clone(),
        };
        let set_is_builtin_only = set.is_builtin_only();
        let evaluate = move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| set.evaluate(&input)));
        let evaluation = if set_is_builtin_only {
            // Built-ins take microseconds and never block: here, without a thread hop (and so
            // without the deadline's watch, which they do not need).
            self.metrics.in_flight.inc();
            let evaluation = evaluate();
            self.metrics.in_flight.dec();
            drop(permit);
            match evaluation {
                Ok(evaluation) => evaluation,
                Err(_) => return undecided("internal", "the evaluation stopped".into()),
            }
        } else {
            match self.evaluate_on_pool(evaluate, permit, deadline).await {
                Ok(evaluation) => evaluation,
                Err(reason) => {
                    let why = match reason {
                        "deadline" => format!(
                            "no decision within the deadline of {deadline_ms} ms; lower the plugins' `timeout_ms`, or \
                             raise `timeout_seconds` in [admission]"
                        ),
                        _ => "the evaluation stopped".into(),
                    };
                    return undecided(reason, why);
                }
            }
        };
        self.verdict(endpoint, review, evaluation)
    }

    /// Runs `evaluate` on rayon's pool (sandboxed plugins are CPU-bound and may block), holding
    /// the concurrency slot until it ends, also when the answer was given without it; the
    /// evaluation, or why there is none by the deadline (`deadline`, `internal`).
    async fn evaluate_on_pool(
        &self,
        evaluate: impl FnOnce() -> std::thread::Result<Evaluation> + Send + 'static,
        permit: tokio::sync::OwnedSemaphorePermit,
        deadline: tokio::time::Instant,
    ) -> std::result::Result<Evaluation, &'static str> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let in_flight = self.metrics.in_flight.clone();
        in_flight.inc();
        // CPU-bound: on rayon's pool. The slot is held until the evaluation ends, also when
        // the answer was given without it (past the deadline).
        rayon::spawn(move || {
            // A panic on rayon's pool would abort the process: it becomes an undecided request.
            let evaluation = evaluate();
            in_flight.dec();
            drop(permit);
            if let Ok(evaluation) = evaluation {
                let _ = tx.send(evaluation);
            }
        });
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(evaluation)) => Ok(evaluation),
            Ok(Err(_)) => Err("internal"),
            Err(_) => Err("deadline"),
        }
    }

    /// The verdict of an evaluation (and its metric label); `/mutate` adds the JSONPatch.
    fn verdict(&self, endpoint: Endpoint, review: &Review, evaluation: Evaluation) -> (Verdict, &'static str) {
        for outcome in &evaluation.outcomes {
            if let Outcome::Failed(failure) = &outcome.outcome {
                self.metrics
                    .plugin_failures
                    .get_or_create(&FailureLabels {
                        policy: outcome.policy.clone(),
                        reason: failure_reason(failure).into(),
                    })
                    .inc();
            }
        }
        let mut verdict = Verdict::of_report(&evaluation.report());
        if !verdict.allowed {
            return (verdict, "denied");
        }
        if endpoint == Endpoint::Mutate
            && let (Some(before), Some(after)) = (review.object.as_ref(), evaluation.objects.first())
        {
            let patch = json_patch::diff(before, after);
            if !patch.0.is_empty() {
                verdict.patch = Some(serde_json::to_value(patch).expect("a patch serialises"));
                return (verdict, "patched");
            }
        }
        (verdict, "allowed")
    }

    /// The HTTP routes: `POST /validate`, `POST /mutate`, `GET /healthz`, `/readyz`, `/metrics`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/validate",
                post(|State(a): State<Arc<Admission>>, body: Bytes| answer(a, Endpoint::Validate, body)),
            )
            .route("/mutate", post(|State(a): State<Arc<Admission>>, body: Bytes| answer(a, Endpoint::Mutate, body)))
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(|State(a): State<Arc<Admission>>| async move {
                    format!("ok: {} policies\n", a.policies().set.policies().len())
                }),
            )
            .route(
                "/metrics",
                get(|State(a): State<Arc<Admission>>| async move {
                    (
                        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        a.metrics.encode(),
                    )
                }),
            )
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }

    /// Serves the routes on `listener` (HTTPS with `tls`; plain HTTP without, for a
    /// TLS-terminating proxy in front) until `shutdown` resolves; requests in flight finish.
    pub async fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        tls: Option<Arc<CertificateFiles>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        match tls {
            Some(files) => {
                let config = files.server_config().map_err(std::io::Error::other)?;
                axum::serve(TlsListener::new(listener, config)?, router).with_graceful_shutdown(shutdown).await
            }
            None => axum::serve(listener, router).with_graceful_shutdown(shutdown).await,
        }
    }

    /// Checks the policies' files and the certificate's every `every`, reloading what changed
    /// (a failed reload is logged and counted; the previous policies or certificate stay).
    pub fn watch(self: &Arc<Self>, every: Duration, tls: Option<Arc<CertificateFiles>>) -> tokio::task::JoinHandle<()> {
        let admission = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let _ = admission.reload_if_changed().await;
                if let Some(files) = &tls {
                    let label = |result: &str| ReloadLabels { what: "certificate".into(), result: result.into() };
                    match files.reload_if_changed() {
                        Ok(false) => {}
                        Ok(true) => {
                            admission.metrics.reloads.get_or_create(&label("ok")).inc();
                            tracing::info!("certificate reloaded");
                        }
                        Err(e) => {
                            admission.metrics.reloads.get_or_create(&label("error")).inc();
                            tracing::error!(error = %e, "certificate not reloaded; the previous one keeps serving");
                        }
                    }
                }
            }
        })
    }
}

async fn answer(admission: Arc<Admission>, endpoint: Endpoint, body: Bytes) -> Response {
    match admission.review(endpoint, &body).await {
        Ok(review) => ([(header::CONTENT_TYPE, "application/json")], review.to_string()).into_response(),
        Err(malformed) => (StatusCode::BAD_REQUEST, malformed.to_string()).into_response(),
    }
}

/// The metric label of a plugin failure.
fn failure_reason(failure: &Failure) -> &'static str {
    match failure {
        Failure::Timeout { .. } => "timeout",
        Failure::OutOfFuel { .. } => "fuel",
        Failure::MemoryLimit { .. } => "memory",
        Failure::OutputLimit { .. } => "output",
        Failure::StackOverflow => "stack-overflow",
        Failure::Trap { .. } => "trap",
        Failure::Error { .. } => "error",
        Failure::UndeclaredMutation => "undeclared-mutation",
        Failure::InvalidAnswer { .. } => "invalid-answer",
    }
}
