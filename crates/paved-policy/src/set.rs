//! The organisation's policies, evaluated together on one action.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use paved_core::org_policy::{Effective, PolicyEntry, PolicyOrigin};
use paved_core::{Action, FailurePolicy, PolicyEngine, PolicyInput, PolicyMode, PolicyReport, Severity, Violation};
use rayon::prelude::*;
use serde_json::Value;

use crate::builtin::{BASELINE, Builtin};
use crate::error::{Error, Result};
use crate::host::{Admission, Database, Operation, Request};
use crate::host::{Failure, HostOptions, Plugin, PolicyHost, WitAction, WitSeverity, WitViolation};
use crate::manifest::AdmissionOperation;
use crate::manifest::PolicyManifest;

/// What runs a policy: a sandboxed wasm plugin, or a built-in of the baseline.
#[derive(Debug)]
// Held once per policy behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Runner {
    Wasm(Plugin),
    Builtin(Builtin),
}

impl Runner {
    fn manifest(&self) -> &PolicyManifest {
        match self {
            Runner::Wasm(p) => p.manifest(),
            Runner::Builtin(b) => b.manifest(),
        }
    }

    fn handles(&self, action: WitAction) -> bool {
        match self {
            Runner::Wasm(p) => p.handles(action),
            Runner::Builtin(_) => true,
        }
    }

    /// Evaluates `request`; a built-in reads `parsed` (the request's objects, parsed) instead
    /// of parsing them again.
    fn evaluate(
        &self,
        request: &Request,
        parsed: impl FnOnce() -> Arc<[Value]>,
    ) -> std::result::Result<crate::host::Decision, Failure> {
        match self {
            Runner::Wasm(p) => p.evaluate(request),
            Runner::Builtin(b) => {
                let decision = b.evaluate_parsed(request, parsed())?;
                if decision.mutated.is_some() && !b.manifest().mutating {
                    return Err(Failure::UndeclaredMutation);
                }
                Ok(decision)
            }
        }
    }
}

/// One configured policy: a loaded plugin (or built-in) with the organisation's settings and
/// overrides.
#[derive(Debug)]
pub struct ConfiguredPolicy {
    runner: Runner,
    settings: String,
    mode: PolicyMode,
    failure_policy: FailurePolicy,
    environments: Vec<String>,
}

impl ConfiguredPolicy {
    /// A plugin with its manifest's defaults.
    pub fn new(plugin: Plugin) -> Self {
        Self::with(plugin, &paved_core::config::PolicyConfig::default())
    }

    /// A plugin with the organisation's settings and overrides (`[[policies]]` in paved.toml):
    /// settings are merged over the manifest's defaults, key by key.
    pub fn with(plugin: Plugin, config: &paved_core::config::PolicyConfig) -> Self {
        Self::configure(Runner::Wasm(plugin), config)
    }

    /// A built-in policy (of the baseline) with overrides.
    pub fn builtin(builtin: Builtin, config: &paved_core::config::PolicyConfig) -> Self {
        Self::configure(Runner::Builtin(builtin), config)
    }

    fn configure(runner: Runner, config: &paved_core::config::PolicyConfig) -> Self {
        let m = runner.manifest();
        let mut settings = m.settings.clone();
        settings.extend(config.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
        ConfiguredPolicy {
            settings: Value::Object(settings).to_string(),
            mode: config.mode.unwrap_or(m.mode),
            failure_policy: config.failure_policy.unwrap_or(m.failure_policy),
            environments: config.environments.clone().unwrap_or_else(|| m.environments.clone()),
            runner,
        }
    }

    /// A plugin as [`OrgConfig::policy_entries`](paved_core::OrgConfig::policy_entries)
    /// resolved it: the configuring file's overrides, made stricter by the repository's
    /// (a weaker one is refused, naming the organisation's setting).
    pub fn from_entry(plugin: Plugin, entry: &PolicyEntry) -> paved_core::Result<Self> {
        let m = plugin.manifest();
        let defaults =
            Effective { mode: m.mode, failure_policy: m.failure_policy, environments: m.environments.clone() };
        let effective = entry.tighten(&defaults)?;
        let mut policy = Self::with(plugin, &entry.config);
        policy.mode = effective.mode;
        policy.failure_policy = effective.failure_policy;
        policy.environments = effective.environments;
        Ok(policy)
    }

    /// The wasm plugin (`None` for a built-in).
    pub fn plugin(&self) -> Option<&Plugin> {
        match &self.runner {
            Runner::Wasm(p) => Some(p),
            Runner::Builtin(_) => None,
        }
    }

    /// Whether it is a built-in of the baseline.
    pub fn is_builtin(&self) -> bool {
        matches!(self.runner, Runner::Builtin(_))
    }

    /// Its manifest.
    pub fn manifest(&self) -> &PolicyManifest {
        self.runner.manifest()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.manifest().name
    }

    /// The mode in effect.
    pub fn mode(&self) -> PolicyMode {
        self.mode
    }

    /// The failure policy in effect.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.failure_policy
    }

    /// The environments it applies to (empty: all).
    pub fn environments(&self) -> &[String] {
        &self.environments
    }

    /// The merged settings, as JSON.
    pub fn settings(&self) -> &str {
        &self.settings
    }

    fn applies(&self, input: &ActionInput) -> bool {
        let m = self.manifest();
        let operation = input.admission.as_ref().map(|a| match a.operation {
            Operation::Create => AdmissionOperation::Create,
            Operation::Update => AdmissionOperation::Update,
            Operation::Delete => AdmissionOperation::Delete,
            Operation::Connect => AdmissionOperation::Connect,
        });
        m.actions.contains(&input.action)
            && operation.is_none_or(|op| m.admission_operations.contains(&op))
            && self.runner.handles(wit_action(input.action))
            && crate::manifest::in_scope(&self.environments, &input.environment)
    }
}

/// An action as the policies see it (owned, so it can cross to the evaluation threads).
#[derive(Debug, Clone)]
pub struct ActionInput {
    /// The action.
    pub action: Action,
    /// The app (or the service owning the database).
    pub app: String,
    /// The team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// The image, for deployments.
    pub image: Option<String>,
    /// The replicas, for deployments.
    pub replicas: Option<u32>,
    /// The escape hatches used (names, e.g. `cpu-limit`).
    pub escape_hatches: Vec<String>,
    /// The database (engine, size), for `provision-database`.
    pub database: Option<(String, String)>,
    /// The objects.
    pub objects: Vec<Value>,
    /// The Kubernetes admission request the action came from (`paved admission serve`);
    /// `None` at plan time. Its operation selects the policies (`admission_operations`).
    pub admission: Option<Admission>,
}

impl ActionInput {
    /// A deploy check of bare objects (`paved policy check`).
    pub fn objects(environment: &str, objects: Vec<Value>) -> Self {
        ActionInput {
            action: Action::Deploy,
            app: String::new(),
            team: String::new(),
            environment: environment.to_string(),
            image: None,
            replicas: None,
            escape_hatches: Vec::new(),
            database: None,
            objects,
            admission: None,
        }
    }
}

impl From<&PolicyInput<'_>> for ActionInput {
    fn from(i: &PolicyInput<'_>) -> Self {
        ActionInput {
            action: i.action,
            app: i.app.to_string(),
            team: i.team.to_string(),
            environment: i.environment.to_string(),
            image: i.image.map(str::to_string),
            replicas: i.replicas,
            escape_hatches: i.escape_hatches.iter().map(|h| h.name.clone()).collect(),
            database: i.database.map(|d| (d.engine.to_string(), d.size.to_string())),
            objects: i.objects.iter().map(|m| m.value().clone()).collect(),
            admission: None,
        }
    }
}

/// What happened to one policy on one action.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Not evaluated: another action or environment, or none of its kinds.
    Skipped,
    /// Evaluated; the violations it reported (none = allow), `object` indexes into the
    /// action's objects.
    Decided(Vec<WitViolation>),
    /// The plugin failed; its failure policy decides.
    Failed(Failure),
}

/// One policy's part of an [`Evaluation`].
#[derive(Debug, Clone)]
pub struct PolicyOutcome {
    /// The policy.
    pub policy: String,
    /// Its mode.
    pub mode: PolicyMode,
    /// Its failure policy.
    pub failure_policy: FailurePolicy,
    /// What happened.
    pub outcome: Outcome,
    /// The objects it was shown (indexes into the action's objects).
    pub objects: Vec<usize>,
    /// Whether it changed the objects.
    pub mutated: bool,
    /// How long it took (instantiation included).
    pub duration: Duration,
    /// Whether it is a built-in of the baseline.
    pub builtin: bool,
}

/// The result of evaluating every policy on one action.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Per policy, mutating ones first, in configuration order.
    pub outcomes: Vec<PolicyOutcome>,
    /// The objects after mutation (the input objects when nothing mutated them).
    pub objects: Arc<[Value]>,
    /// The RFC 6902 patch from the input to the mutated objects (a JSON array; `None`
    /// when nothing changed). Paths index the list of objects: `/0/metadata/labels/x`.
    pub patch: Option<Value>,
}

impl Evaluation {
    /// The combined report, with modes and failure policies applied.
    pub fn report(&self) -> PolicyReport {
        let mut report = PolicyReport::default();
        for o in &self.outcomes {
            if matches!(o.outcome, Outcome::Skipped) {
                continue;
            }
            report.evaluated.push(o.policy.clone());
            if o.builtin {
                report.baseline.push(o.policy.clone());
            }
            let violations: Vec<Violation> = match &o.outcome {
                Outcome::Skipped => Vec::new(),
                Outcome::Decided(vs) => vs.iter().map(|v| self.violation(&o.policy, v)).collect(),
                Outcome::Failed(f) => vec![Violation {
                    policy: o.policy.clone(),
                    code: "policy-failure".into(),
                    message: format!("policy {} {f}", o.policy),
                    hint: Some(match o.failure_policy {
                        FailurePolicy::Fail => {
                            "fix or rebuild the plugin; its failure_policy is \"fail\", so the action is denied".into()
                        }
                        FailurePolicy::Ignore => {
                            "the plugin's failure_policy is \"ignore\": the action went on without it".into()
                        }
                    }),
                    object: None,
                    path: None,
                    severity: match o.failure_policy {
                        FailurePolicy::Fail => Severity::Deny,
                        FailurePolicy::Ignore => Severity::Warn,
                    },
                }],
            };
            for mut v in violations {
                match o.mode {
                    PolicyMode::Enforce => report.violations.push(v),
                    PolicyMode::Warn => {
                        v.severity = Severity::Warn;
                        report.violations.push(v);
                    }
                    PolicyMode::Audit => report.audited.push(v),
                }
            }
        }
        // The same policy twice (a baseline member a repository also configured) reports once.
        let mut seen = std::collections::HashSet::new();
        report.violations.retain(|v| {
            seen.insert((v.policy.clone(), v.code.clone(), v.object.clone(), v.path.clone(), v.message.clone()))
        });
        report.patch = self.patch.clone();
        report
    }

    fn violation(&self, policy: &str, v: &WitViolation) -> Violation {
        let object = v.object.and_then(|i| self.objects.get(i as usize)).map(|o| {
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or("?");
            let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
            format!("{kind}/{name}")
        });
        Violation {
            policy: policy.to_string(),
            code: v.code.clone(),
            message: v.message.clone(),
            hint: v.hint.clone(),
            object,
            path: v.path.clone(),
            severity: match v.severity {
                WitSeverity::Deny => Severity::Deny,
                WitSeverity::Warn => Severity::Warn,
            },
        }
    }
}

/// The organisation's policies: a [`PolicyEngine`] for [`paved_core::Platform`].
///
/// Mutating policies run first, one after another in configuration order, each on the
/// previous one's result; then every validating policy runs on the final objects: on the
/// calling thread, or, when two or more are sandboxed plugins, concurrently on rayon's pool.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct PolicySet {
    host: Arc<PolicyHost>,
    policies: Arc<Vec<Arc<ConfiguredPolicy>>>,
}

impl PolicySet {
    /// An empty set on a host.
    pub fn new(host: Arc<PolicyHost>) -> Self {
        PolicySet { host, policies: Arc::new(Vec::new()) }
    }

    /// The baseline ([`BASELINE`], unless turned off: [`OrgConfig::baseline`](paved_core::OrgConfig::baseline)),
    /// then the organisation's policies and the repository's `[[policies]]`, as
    /// [`OrgConfig::policy_entries`](paved_core::OrgConfig::policy_entries) resolves them,
    /// loaded on a new host under the organisation's limit caps (`[limits]`; a `fuel` cap
    /// turns fuel metering on).
    pub fn from_config(config: &paved_core::OrgConfig, mut options: HostOptions) -> Result<Self> {
        let entries = config.policy_entries()?;
        let org = config.org_policy.as_deref();
        let caps = org.map(|o| o.limits).unwrap_or_default();
        options.fuel |= caps.fuel.is_some();
        if entries.is_empty() {
            // The baseline alone loads no component: no cache directory or key is touched.
            options.cache_dir = None;
        }
        let host = Arc::new(PolicyHost::new(options)?);
        let mut set = PolicySet::new(host);
        let (baseline, modes) = config.baseline()?;
        if let Some(unknown) = modes.keys().find(|m| !BASELINE.contains(&m.as_str())) {
            return Err(Error::Core(paved_core::Error::Config {
                path: config.source.clone().unwrap_or_else(|| paved_core::config::CONFIG_FILE.into()),
                line: None,
                message: format!("[baseline] modes names {unknown:?}, which is not a member of the baseline"),
                hint: Some(paved_core::suggest::hint_for(unknown, BASELINE.iter().copied())),
            }));
        }
        let mut loaded = Vec::with_capacity(entries.len());
        for entry in &entries {
            let mut manifest = PolicyManifest::load(&entry.dir)?;
            if let Some(pin) = &entry.config.sha256
                && !pin.eq_ignore_ascii_case(&manifest.sha256)
            {
                return Err(Error::Load {
                    policy: manifest.name.clone(),
                    message: format!(
                        "{} pins component sha256 {:?}; {} pins {pin:?}",
                        entry.dir.join(crate::MANIFEST_FILE).display(),
                        manifest.sha256,
                        entry.source.display()
                    ),
                    hint: Some(format!(
                        "the plugin directory changed: restore it, or update [[policies]] sha256 in {}",
                        entry.source.display()
                    )),
                });
            }
            if let Some(org) = org {
                manifest.cap_limits(&caps, &org.source)?;
            }
            let plugin = set.host.load(manifest)?;
            loaded.push((ConfiguredPolicy::from_entry(plugin, entry)?, entry.origin));
        }
        // The baseline first. A member also configured as a plugin runs once, as configured,
        // when whoever owns the baseline configured it: with an organisation file, only the
        // organisation's entries replace a member (a repository's plugin of the same name
        // only adds to it).
        if baseline {
            let owner = if org.is_some() { PolicyOrigin::Organisation } else { PolicyOrigin::Repository };
            for builtin in Builtin::baseline() {
                if loaded.iter().any(|(p, origin)| p.name() == builtin.manifest().name && *origin == owner) {
                    continue;
                }
                let mut overrides = paved_core::config::PolicyConfig::new(builtin.manifest().dir.clone());
                overrides.mode = modes.get(&builtin.manifest().name).copied();
                set.push(ConfiguredPolicy::builtin(builtin, &overrides));
            }
        }
        for (policy, _) in loaded {
            set.push(policy);
        }
        Ok(set)
    }

    /// Adds a policy (evaluated after those already added).
    pub fn push(&mut self, policy: ConfiguredPolicy) {
        Arc::make_mut(&mut self.policies).push(Arc::new(policy));
    }

    /// The set of the policies `keep` selects (same host, same order).
    pub fn only(&self, keep: impl Fn(&ConfiguredPolicy) -> bool) -> PolicySet {
        PolicySet {
            host: self.host.clone(),
            policies: Arc::new(self.policies.iter().filter(|p| keep(p)).cloned().collect()),
        }
    }

    /// Whether every policy is a built-in (no sandboxed plugin): an evaluation takes
    /// microseconds and never blocks, so a caller may run it on an async executor's thread.
    pub fn is_builtin_only(&self) -> bool {
        self.policies.iter().all(|p| p.is_builtin())
    }

    /// The host.
    pub fn host(&self) -> &Arc<PolicyHost> {
        &self.host
    }

    /// The policies, in order.
    pub fn policies(&self) -> &[Arc<ConfiguredPolicy>] {
        &self.policies
    }

    /// Evaluates every applicable policy on an action, on the calling thread (and rayon's pool
    /// for two or more sandboxed validating plugins, which run in parallel).
    pub fn evaluate(&self, input: &ActionInput) -> Evaluation {
        // The objects, parsed once: the built-ins read them as they are; sandboxed plugins get
        // their JSON text, written only when the set has one.
        let mut objects: Arc<[Value]> = Arc::from(input.objects.as_slice());
        let sandboxed = self.policies.iter().any(|p| !p.is_builtin());
        let mut texts: Vec<String> =
            if sandboxed { objects.iter().map(Value::to_string).collect() } else { vec![String::new(); objects.len()] };
        let mut outcomes = Vec::with_capacity(self.policies.len());
        let mut changed = false;
        for policy in self.policies.iter().filter(|p| p.manifest().mutating) {
            let (outcome, mutated) = run(policy, input, &texts, &objects, &Subsets::default());
            if let Some(replacement) = mutated {
                let mut next = objects.to_vec();
                for (i, value) in replacement {
                    if sandboxed {
                        texts[i] = value.to_string();
                    }
                    next[i] = value;
                }
                objects = next.into();
                changed = true;
            }
            outcomes.push(outcome);
        }
        let validating: Vec<&Arc<ConfiguredPolicy>> = self.policies.iter().filter(|p| !p.manifest().mutating).collect();
        let subsets = Subsets::default();
        let one = |p: &&Arc<ConfiguredPolicy>| run(p, input, &texts, &objects, &subsets).0;
        // Sandboxed plugins run in parallel; built-ins take microseconds each, less than
        // handing them to other threads costs, so they run here, one after another.
        let results: Vec<PolicyOutcome> = if validating.iter().filter(|p| !p.is_builtin()).count() > 1 {
            validating.par_iter().map(one).collect()
        } else {
            validating.iter().map(one).collect()
        };
        outcomes.extend(results);
        let patch = changed
            .then(|| json_patch::diff(&Value::Array(input.objects.clone()), &Value::Array(objects.to_vec())))
            .filter(|p| !p.0.is_empty())
            .map(|p| serde_json::to_value(p).expect("a patch serialises"));
        Evaluation { outcomes, objects, patch }
    }
}

/// The objects built-ins are shown when that is not every object, by the indexes shown: the
/// built-ins of one evaluation with the same kinds share one copy.
#[derive(Default)]
struct Subsets(std::sync::Mutex<Vec<Subset>>);

/// The indexes of the objects shown, and those objects.
type Subset = (Vec<usize>, Arc<[Value]>);

impl Subsets {
    fn get(&self, shown: &[usize], objects: &[Value]) -> Arc<[Value]> {
        let mut subsets = self.0.lock().expect("subsets");
        if let Some((_, subset)) = subsets.iter().find(|(s, _)| s == shown) {
            return subset.clone();
        }
        let subset: Arc<[Value]> = shown.iter().map(|&i| objects[i].clone()).collect();
        subsets.push((shown.to_vec(), subset.clone()));
        subset
    }
}

/// Evaluates one policy; returns its outcome and, for an accepted mutation, the replaced
/// objects by index. A built-in reads `objects` (shared; or the subset it is shown, from
/// `subsets`); a sandboxed plugin their `texts`.
fn run(
    policy: &ConfiguredPolicy,
    input: &ActionInput,
    texts: &[String],
    objects: &Arc<[Value]>,
    subsets: &Subsets,
) -> (PolicyOutcome, Option<Vec<(usize, Value)>>) {
    let manifest = policy.manifest();
    let shown: Vec<usize> = (0..objects.len())
        .filter(|&i| manifest.handles_kind(objects[i].get("kind").and_then(Value::as_str).unwrap_or("")))
        .collect();
    let mut outcome = PolicyOutcome {
        policy: policy.name().to_string(),
        mode: policy.mode,
        failure_policy: policy.failure_policy,
        outcome: Outcome::Skipped,
        objects: shown.clone(),
        mutated: false,
        duration: Duration::ZERO,
        builtin: policy.is_builtin(),
    };
    if !policy.applies(input) || (!manifest.kinds.is_empty() && shown.is_empty()) {
        return (outcome, None);
    }
    let request = Request {
        action: wit_action(input.action),
        app: input.app.clone(),
        team: input.team.clone(),
        environment: input.environment.clone(),
        image: input.image.clone(),
        replicas: input.replicas,
        escape_hatches: input.escape_hatches.clone(),
        database: input.database.as_ref().map(|(engine, size)| Database { engine: engine.clone(), size: size.clone() }),
        settings: policy.settings.clone(),
        objects: shown.iter().map(|&i| texts[i].clone()).collect(),
        admission: input.admission.clone(),
    };
    let started = Instant::now();
    let result = policy.runner.evaluate(&request, || {
        if shown.len() == objects.len() { objects.clone() } else { subsets.get(&shown, objects) }
    });
    outcome.duration = started.elapsed();
    let mut replaced = None;
    outcome.outcome = match result {
        Err(failure) => Outcome::Failed(failure),
        Ok(decision) => {
            let mut violations = decision.violations;
            for v in &mut violations {
                // Back from the plugin's view (the objects it was shown) to the action's.
                v.object = v.object.and_then(|i| shown.get(i as usize)).map(|&i| i as u32);
            }
            match decision.mutated.map(|m| mutated_objects(&shown, m)) {
                Some(Err(reason)) => Outcome::Failed(Failure::InvalidAnswer { reason }),
                Some(Ok(values)) => {
                    outcome.mutated = values.iter().any(|(i, v)| &objects[*i] != v);
                    // Only an enforcing policy changes what is applied; in warn and audit mode
                    // a mutation is a dry run (reported, not applied).
                    replaced = (outcome.mutated && policy.mode == PolicyMode::Enforce).then_some(values);
                    Outcome::Decided(violations)
                }
                None => Outcome::Decided(violations),
            }
        }
    };
    tracing::debug!(policy = %outcome.policy, duration = ?outcome.duration, "policy evaluated");
    (outcome, replaced)
}

fn mutated_objects(shown: &[usize], mutated: Vec<String>) -> Result<Vec<(usize, Value)>, String> {
    if mutated.len() != shown.len() {
        return Err(format!("returned {} mutated objects for the {} it was shown", mutated.len(), shown.len()));
    }
    shown
        .iter()
        .zip(mutated)
        .map(|(&i, text)| match serde_json::from_str::<Value>(&text) {
            Ok(v @ Value::Object(_)) if v.get("kind").is_some() => Ok((i, v)),
            Ok(_) => Err(format!("mutated object {i} is not a Kubernetes object")),
            Err(e) => Err(format!("mutated object {i} is not JSON: {e}")),
        })
        .collect()
}

pub(crate) fn wit_action(action: Action) -> WitAction {
    match action {
        Action::Deploy => WitAction::Deploy,
        Action::Rollback => WitAction::Rollback,
        Action::ProvisionDatabase => WitAction::ProvisionDatabase,
        Action::DeprovisionDatabase => WitAction::DeprovisionDatabase,
        _ => WitAction::Deploy,
    }
}

#[async_trait]
impl PolicyEngine for PolicySet {
    async fn evaluate(&self, input: &PolicyInput<'_>) -> paved_core::Result<PolicyReport> {
        if self.policies.is_empty() {
            return Ok(PolicyReport::default());
        }
        let input = ActionInput::from(input);
        // Built-ins take microseconds and never block: evaluated here, without a thread hop.
        if self.is_builtin_only() {
            return report_of(self.evaluate(&input));
        }
        let set = self.clone();
        let (tx, rx) = futures::channel::oneshot::channel();
        // Sandboxed plugins are CPU-bound: on rayon's pool, never on the caller's executor.
        rayon::spawn(move || {
            let _ = tx.send(report_of(set.evaluate(&input)));
        });
        rx.await.map_err(|_| Error::Load {
            policy: "<host>".into(),
            message: "the policy evaluation thread stopped".into(),
            hint: None,
        })?
    }
}

/// The report of an evaluation, with the mutated objects when a policy changed them.
fn report_of(evaluation: Evaluation) -> paved_core::Result<PolicyReport> {
    let mut report = evaluation.report();
    if report.patch.is_some() {
        let objects = evaluation
            .objects
            .iter()
            .cloned()
            .map(paved_core::Manifest::new)
            .collect::<paved_core::Result<Vec<_>>>()?;
        report.mutated = Some(paved_core::Manifests::new(objects));
    }
    Ok(report)
}
