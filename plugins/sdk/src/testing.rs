//! Native unit tests of policies (feature `testing`, for `[dev-dependencies]` only).
//!
//! Policies are tested on the host target by calling [`Policy::evaluate`] directly, so the
//! exports must be left out of native builds (see [`export_policy!`](crate::export_policy)).
//!
//! * [`TestRequest`] builds a request (with the fixtures' defaults) and evaluates a policy,
//!   giving an [`Outcome`];
//! * [`workload`] wraps a pod spec in any pod-bearing kind;
//! * [`check_manifest`], [`check_fixtures`] and [`check_golden_path`] check a plugin's
//!   `policy.toml`, its `tests/pass.yaml` and `tests/fail.yaml`, and the golden path's reviewed
//!   output (`crates/paved-kube/tests/golden/`).
//!
//! # Fixtures
//!
//! `tests/pass.yaml` and `tests/fail.yaml` are multi-document YAML files. Each document is
//! evaluated on its own, as the only object of a request with these defaults: action `deploy`,
//! app `my-service`, team `platform`, environment `production`, no image, no replica count, no
//! escape hatches, no database, and the settings of `policy.toml`. Comment lines at the start of
//! a document are directives:
//!
//! * `# expect: CODE` (required in `fail.yaml`, as the document's first line): the document
//!   must produce a denying violation with this code;
//! * `# request: {…}` (a JSON or flow-YAML mapping): overrides request fields — `action`, `app`,
//!   `team`, `environment`, `image`, `replicas`, `escape_hatches` (a list of names), `database`
//!   (`{engine, size}`) and `settings` (merged over the manifest's).
//!
//! A document with only comments is a request without objects (for request-level policies).
//! Every document of `pass.yaml` must produce no denying violation, and so must all its objects
//! together in one request with the default request fields (directives ignored). Like the host,
//! the checks show a policy only the objects of its manifest's `kinds`, and skip it when there
//! are none (or when its `actions` or `environments` exclude the request).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::bindings::paved::policy::types::{Action, Database, Request, Severity, Violation};
use crate::{Input, Policy, Value, json, pod_of};

/// The keys a `policy.toml` may hold (the host refuses unknown keys).
pub const MANIFEST_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "language",
    "component",
    "sha256",
    "mode",
    "failure_policy",
    "mutating",
    "actions",
    "environments",
    "kinds",
    "admission_operations",
    "limits",
    "settings",
    "read_only_dirs",
];

/// The kebab-case name of an action, as `policy.toml` and fixtures spell it.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deploy => "deploy",
        Action::Rollback => "rollback",
        Action::ProvisionDatabase => "provision-database",
        Action::DeprovisionDatabase => "deprovision-database",
    }
}

fn parse_action(name: &str) -> Action {
    match name {
        "deploy" => Action::Deploy,
        "rollback" => Action::Rollback,
        "provision-database" => Action::ProvisionDatabase,
        "deprovision-database" => Action::DeprovisionDatabase,
        other => panic!("unknown action {other:?}"),
    }
}

/// A plugin's `policy.toml`, as a JSON value.
pub fn manifest(plugin_dir: &str) -> Value {
    let path = Path::new(plugin_dir).join("policy.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

/// A request under construction, with the fixtures' defaults (see the module docs).
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// The action.
    pub action: Action,
    /// The app.
    pub app: String,
    /// The owning team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// The image.
    pub image: Option<String>,
    /// The replica count.
    pub replicas: Option<u32>,
    /// The escape hatches' names.
    pub escape_hatches: Vec<String>,
    /// The database: engine and size.
    pub database: Option<(String, String)>,
    /// The settings object.
    pub settings: Value,
    /// The objects.
    pub objects: Vec<Value>,
    /// The manifest's `kinds` (empty: every object is shown).
    pub kinds: Vec<String>,
    /// The manifest's `environments` (empty: all).
    pub environments: Vec<String>,
    /// The manifest's `actions` (empty: all).
    pub actions: Vec<String>,
}

impl Default for TestRequest {
    fn default() -> Self {
        TestRequest {
            action: Action::Deploy,
            app: "my-service".into(),
            team: "platform".into(),
            environment: "production".into(),
            image: None,
            replicas: None,
            escape_hatches: Vec::new(),
            database: None,
            settings: json!({}),
            objects: Vec::new(),
            kinds: Vec::new(),
            environments: Vec::new(),
            actions: Vec::new(),
        }
    }
}

impl TestRequest {
    /// The defaults, with no settings (the policy's built-in defaults) and no manifest filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults with a plugin's `policy.toml`: its settings, kinds, environments and actions.
    pub fn for_plugin(plugin_dir: &str) -> Self {
        let m = manifest(plugin_dir);
        TestRequest {
            settings: m.get("settings").cloned().unwrap_or_else(|| json!({})),
            kinds: string_list(m.get("kinds")),
            environments: string_list(m.get("environments")),
            actions: string_list(m.get("actions")),
            ..Self::default()
        }
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Sets the team.
    pub fn team(mut self, team: &str) -> Self {
        self.team = team.into();
        self
    }

    /// Sets the environment.
    pub fn environment(mut self, environment: &str) -> Self {
        self.environment = environment.into();
        self
    }

    /// Sets the replica count.
    pub fn replicas(mut self, replicas: Option<u32>) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets the escape hatches.
    pub fn escape_hatches(mut self, names: &[&str]) -> Self {
        self.escape_hatches = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets the database.
    pub fn database(mut self, engine: &str, size: &str) -> Self {
        self.database = Some((engine.into(), size.into()));
        self
    }

    /// Sets one setting (over the manifest's).
    pub fn setting(mut self, key: &str, value: Value) -> Self {
        self.settings.as_object_mut().expect("settings are an object").insert(key.into(), value);
        self
    }

    /// Replaces the settings.
    pub fn settings(mut self, settings: Value) -> Self {
        self.settings = settings;
        self
    }

    /// Adds an object.
    pub fn object(mut self, object: Value) -> Self {
        self.objects.push(object);
        self
    }

    /// Replaces the objects.
    pub fn objects(mut self, objects: Vec<Value>) -> Self {
        self.objects = objects;
        self
    }

    /// Applies a `# request:` directive's overrides.
    pub fn apply(mut self, overrides: &Value) -> Self {
        let map = overrides.as_object().expect("a request directive is a mapping");
        for (key, value) in map {
            let s = || value.as_str().unwrap_or_else(|| panic!("request {key}: expected a string")).to_string();
            match key.as_str() {
                "action" => self.action = parse_action(&s()),
                "app" => self.app = s(),
                "team" => self.team = s(),
                "environment" => self.environment = s(),
                "image" => self.image = value.as_str().map(str::to_string),
                "replicas" => self.replicas = value.as_u64().map(|n| n as u32),
                "escape_hatches" => self.escape_hatches = string_list(Some(value)),
                "database" => {
                    self.database = value.as_object().map(|d| {
                        let field = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                        (field("engine"), field("size"))
                    })
                }
                "settings" => {
                    let target = self.settings.as_object_mut().expect("settings are an object");
                    for (k, v) in value.as_object().expect("request settings are a mapping") {
                        target.insert(k.clone(), v.clone());
                    }
                }
                other => panic!("unknown request field {other:?} in a request directive"),
            }
        }
        self
    }

    /// Whether the host would call the policy at all (manifest actions, environments, kinds).
    fn shown(&self) -> Option<Vec<Value>> {
        if !self.actions.is_empty() && !self.actions.iter().any(|a| a == action_name(self.action)) {
            return None;
        }
        if !self.environments.is_empty() && !self.environments.iter().any(|e| *e == self.environment || e == "*") {
            return None;
        }
        if self.kinds.is_empty() {
            return Some(self.objects.clone());
        }
        let shown: Vec<Value> = self
            .objects
            .iter()
            .filter(|o| self.kinds.iter().any(|k| k == "*" || k == crate::kind(o)))
            .cloned()
            .collect();
        (!shown.is_empty()).then_some(shown)
    }

    /// The WIT request, with the given objects.
    fn to_request(&self, objects: &[Value]) -> Request {
        Request {
            action: self.action,
            app: self.app.clone(),
            team: self.team.clone(),
            environment: self.environment.clone(),
            image: self.image.clone(),
            replicas: self.replicas,
            escape_hatches: self.escape_hatches.clone(),
            database: self.database.clone().map(|(engine, size)| Database { engine, size }),
            settings: self.settings.to_string(),
            objects: objects.iter().map(Value::to_string).collect(),
            admission: None,
        }
    }

    /// Evaluates a policy as the host would: skipped (no violations) when the manifest's
    /// actions, environments or kinds exclude the request; `Err` is a plugin failure.
    pub fn try_evaluate<P: Policy>(&self) -> Result<Outcome, String> {
        let Some(objects) = self.shown() else { return Ok(Outcome { violations: Vec::new(), skipped: true }) };
        if !P::ACTIONS.contains(&self.action) {
            return Ok(Outcome { violations: Vec::new(), skipped: true });
        }
        let input = Input::new(self.to_request(&objects))?;
        let decision = P::evaluate(&input)?;
        Ok(Outcome { violations: decision.violations, skipped: false })
    }

    /// [`try_evaluate`](Self::try_evaluate), panicking on a plugin failure.
    pub fn evaluate<P: Policy>(&self) -> Outcome {
        self.try_evaluate::<P>().unwrap_or_else(|e| panic!("{} failed: {e}", P::NAME))
    }
}

/// What a policy found.
#[derive(Debug)]
pub struct Outcome {
    /// Every violation.
    pub violations: Vec<Violation>,
    /// Whether the host would not have called the policy.
    pub skipped: bool,
}

impl Outcome {
    /// The denying violations.
    pub fn denials(&self) -> Vec<&Violation> {
        self.violations.iter().filter(|v| v.severity == Severity::Deny).collect()
    }

    /// The codes of the denying violations, in order.
    pub fn codes(&self) -> Vec<&str> {
        self.denials().iter().map(|v| v.code.as_str()).collect()
    }

    /// The paths of the denying violations, in order (`""` for none).
    pub fn paths(&self) -> Vec<&str> {
        self.denials().iter().map(|v| v.path.as_deref().unwrap_or("")).collect()
    }

    /// Whether nothing was denied.
    pub fn allowed(&self) -> bool {
        self.denials().is_empty()
    }

    /// Panics unless every violation is well formed: a code, a message and a hint, and a path
    /// whenever it names an object.
    pub fn assert_well_formed(&self) {
        for v in &self.violations {
            assert!(!v.code.is_empty() && !v.message.is_empty(), "violation without a code or message: {v:?}");
            assert!(v.hint.as_deref().is_some_and(|h| !h.is_empty()), "violation without a hint: {v:?}");
            if v.object.is_some() {
                assert!(v.path.as_deref().is_some_and(|p| !p.is_empty()), "violation without a path: {v:?}");
            }
        }
    }
}

/// An object of `kind` (any pod-bearing kind) named `app` in namespace `team-a`, with the pod
/// spec at its place (`spec`, `spec.template.spec` or `spec.jobTemplate.spec.template.spec`).
/// The object and its pod carry the labels `app.kubernetes.io/name: app` and
/// `paved.dev/team: platform`.
pub fn workload(kind: &str, pod_spec: Value) -> Value {
    let labels = json!({"app.kubernetes.io/name": "app", "paved.dev/team": "platform"});
    let metadata = json!({"name": "app", "namespace": "team-a", "labels": labels});
    let template = json!({"metadata": {"labels": labels}, "spec": pod_spec});
    let (api_version, spec) = match kind {
        "Pod" => ("v1", pod_spec),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            ("apps/v1", json!({"selector": {"matchLabels": {"app.kubernetes.io/name": "app"}}, "template": template}))
        }
        "ReplicationController" => ("v1", json!({"selector": {"app.kubernetes.io/name": "app"}, "template": template})),
        "Job" => ("batch/v1", json!({"template": template})),
        "CronJob" => ("batch/v1", json!({"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}})),
        other => panic!("{other} is not a pod-bearing kind"),
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec})
}

/// The path of the pod spec in an object of `kind`, e.g. `spec.template.spec`.
pub fn spec_path(kind: &str) -> &'static str {
    pod_of(0, &workload(kind, json!({}))).expect("a pod-bearing kind").spec_path
}

/// One document of a fixture file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it is: `file:line`.
    pub location: String,
    /// The `# expect:` code.
    pub expect: Option<String>,
    /// Whether the document's first line is its `# expect:` comment.
    pub expect_first: bool,
    /// The `# request:` overrides.
    pub request: Option<Value>,
    /// The object (`None` for a document of comments only).
    pub object: Option<Value>,
}

/// The documents of a multi-document YAML fixture (see the module docs).
pub fn documents(path: &Path) -> Vec<Document> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut chunks: Vec<(usize, Vec<&str>)> = vec![(1, Vec::new())];
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            chunks.push((i + 2, Vec::new()));
        } else {
            chunks.last_mut().expect("one chunk").1.push(line);
        }
    }
    let mut docs = Vec::new();
    for (line, lines) in chunks {
        let location = format!("{}:{line}", path.display());
        let (mut expect, mut request) = (None, None);
        for l in lines.iter().map(|l| l.trim()).take_while(|l| l.is_empty() || l.starts_with('#')) {
            let directive = l.trim_start_matches('#').trim();
            if let Some(code) = directive.strip_prefix("expect:") {
                expect = Some(code.trim().to_string());
            } else if let Some(overrides) = directive.strip_prefix("request:") {
                let v: Value = serde_yaml_ng::from_str(overrides.trim())
                    .unwrap_or_else(|e| panic!("{location}: request directive is not a mapping: {e}"));
                request = Some(v);
            }
        }
        let expect_first = lines
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim().trim_start_matches('#').trim().starts_with("expect:"));
        let has_content = lines.iter().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let object = if has_content {
            let v: Value =
                serde_yaml_ng::from_str(&lines.join("\n")).unwrap_or_else(|e| panic!("{location}: not YAML: {e}"));
            Some(v)
        } else {
            None
        };
        if object.is_some() || expect.is_some() || request.is_some() {
            docs.push(Document { location, expect, expect_first, request, object });
        }
    }
    docs
}

fn describe_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("\n  {} at {:?}: {} (hint: {:?})", v.code, v.path, v.message, v.hint))
        .collect::<String>()
}

/// Checks that `policy.toml` matches the policy: only known keys; name, version, description
/// and actions as the [`Policy`] says; `component = "policy.wasm"`, a `sha256` pin (empty before
/// the first `paved policy build`),
/// `language = "rust"`, no `mutating`.
pub fn check_manifest<P: Policy>(plugin_dir: &str) {
    let m = manifest(plugin_dir);
    let map = m.as_object().expect("policy.toml is a table");
    for key in map.keys() {
        assert!(MANIFEST_KEYS.contains(&key.as_str()), "policy.toml: unknown key {key:?}");
    }
    assert_eq!(m["name"], P::NAME, "policy.toml name");
    assert_eq!(m["version"], P::VERSION, "policy.toml version");
    assert_eq!(m["description"], P::DESCRIPTION, "policy.toml description");
    assert_eq!(m["language"], "rust");
    assert_eq!(m["component"], "policy.wasm");
    let pin = m["sha256"].as_str().expect("policy.toml sha256 is a string");
    assert!(
        pin.is_empty() || (pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit())),
        "policy.toml sha256 {pin:?} is neither empty nor a SHA-256"
    );
    assert_eq!(m.get("mutating"), Some(&json!(false)));
    let actions: Vec<&str> = P::ACTIONS.iter().map(|a| action_name(*a)).collect();
    assert_eq!(string_list(m.get("actions")), actions, "policy.toml actions = the policy's ACTIONS");
    assert!(m.get("settings").is_some_and(Value::is_object), "policy.toml has a [settings] table");
}

/// Checks `tests/pass.yaml` and `tests/fail.yaml` (see the module docs), with the manifest's
/// settings and again with none (the built-in defaults must agree with the manifest's).
pub fn check_fixtures<P: Policy>(plugin_dir: &str) {
    let dir = Path::new(plugin_dir).join("tests");
    let base = TestRequest::for_plugin(plugin_dir);
    let bare = TestRequest { settings: json!({}), ..base.clone() };

    let pass = documents(&dir.join("pass.yaml"));
    assert!(!pass.is_empty(), "{}: no documents", dir.join("pass.yaml").display());
    for doc in &pass {
        for (which, req) in [("policy.toml settings", &base), ("no settings", &bare)] {
            let mut r = req.clone();
            if let Some(o) = &doc.request {
                r = r.apply(o);
            }
            r.objects = doc.object.clone().into_iter().collect();
            let out = r.evaluate::<P>();
            out.assert_well_formed();
            assert!(
                out.allowed(),
                "{} ({which}): expected no denial, got:{}",
                doc.location,
                describe_violations(&out.violations)
            );
        }
    }
    // All objects in one request with the default request fields (directives ignored), so that
    // the file passes however a test runner reads it.
    let all = base.clone().objects(pass.iter().filter_map(|d| d.object.clone()).collect());
    let out = all.evaluate::<P>();
    assert!(
        out.allowed(),
        "pass.yaml as one request: expected no denial, got:{}",
        describe_violations(&out.violations)
    );

    let fail = documents(&dir.join("fail.yaml"));
    assert!(!fail.is_empty(), "{}: no documents", dir.join("fail.yaml").display());
    for doc in &fail {
        let expect = doc.expect.as_deref().unwrap_or_else(|| panic!("{}: no `# expect: CODE` comment", doc.location));
        assert!(doc.expect_first, "{}: the document does not begin with its `# expect:` comment", doc.location);
        let mut codes = Vec::new();
        for (which, req) in [("policy.toml settings", &base), ("no settings", &bare)] {
            let mut r = req.clone();
            if let Some(o) = &doc.request {
                r = r.apply(o);
            }
            r.objects = doc.object.clone().into_iter().collect();
            let out = r.evaluate::<P>();
            out.assert_well_formed();
            assert!(
                out.codes().contains(&expect),
                "{} ({which}): expected a denial {expect:?}, got:{}",
                doc.location,
                describe_violations(&out.violations)
            );
            for v in out.denials() {
                assert!(v.object.is_none_or(|o| o == 0), "{}: violation names object {:?}", doc.location, v.object);
            }
            codes.push(out.codes().into_iter().map(str::to_string).collect::<BTreeSet<_>>());
        }
        assert_eq!(codes[0], codes[1], "{}: the built-in defaults disagree with policy.toml's", doc.location);
    }
}

/// A release the golden path renders, with its reviewed output.
#[derive(Debug, Clone)]
pub struct GoldenScenario {
    /// The golden file's name (without `.yaml`).
    pub name: &'static str,
    /// Whether it is rendered with the default organisation configuration and no escape hatch
    /// (the golden path's own output, which every bundled policy must pass).
    pub default_config: bool,
    /// The request the host would send for it (without objects and settings).
    pub request: TestRequest,
}

/// The golden files of `crates/paved-kube/tests/golden/` and the requests behind them (see
/// `crates/paved-kube/tests/render.rs`).
pub fn golden_scenarios() -> Vec<GoldenScenario> {
    let req = |app: &str, team: &str, env: &str, image: &str, replicas: u32, hatches: &[&str]| TestRequest {
        app: app.into(),
        team: team.into(),
        environment: env.into(),
        image: Some(image.into()),
        replicas: Some(replicas),
        escape_hatches: hatches.iter().map(|s| s.to_string()).collect(),
        ..TestRequest::default()
    };
    vec![
        GoldenScenario {
            name: "production",
            default_config: true,
            request: req("my-service", "platform", "production", "ghcr.io/company/my-service:v1.2.3", 3, &[]),
        },
        GoldenScenario {
            name: "secrets-agent",
            default_config: true,
            request: req("billing", "platform", "production", "ghcr.io/company/billing:v3.1.0", 3, &[]),
        },
        GoldenScenario {
            name: "dev",
            default_config: true,
            request: req("my-service", "platform", "dev", "ghcr.io/company/my-service:v1.2.3", 1, &[]),
        },
        GoldenScenario {
            name: "escape-hatches",
            default_config: false,
            request: req(
                "checkout",
                "shop",
                "staging",
                "registry.example.com:5000/shop/checkout:v2.0.0",
                2,
                &["cpu-limit", "custom-manifest", "extra-manifest", "no-hpa", "no-ingress"],
            ),
        },
        GoldenScenario {
            name: "shared-namespace",
            default_config: false,
            request: req(
                "ledger",
                "payments",
                "prod",
                "ghcr.io/acme/ledger@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                2,
                &[],
            ),
        },
    ]
}

/// The directory of the golden files, from a plugin's directory.
pub fn golden_dir(plugin_dir: &str) -> PathBuf {
    Path::new(plugin_dir).join("../../crates/paved-kube/tests/golden")
}

/// Evaluates a policy (with its manifest's settings) on every golden scenario: each scenario
/// with its denying violations.
pub fn golden_results<P: Policy>(plugin_dir: &str) -> Vec<(GoldenScenario, Vec<Violation>)> {
    let base = TestRequest::for_plugin(plugin_dir);
    golden_scenarios()
        .into_iter()
        .map(|s| {
            let path = golden_dir(plugin_dir).join(format!("{}.yaml", s.name));
            let objects = documents(&path).into_iter().filter_map(|d| d.object).collect();
            let r = TestRequest {
                settings: base.settings.clone(),
                kinds: base.kinds.clone(),
                environments: base.environments.clone(),
                actions: base.actions.clone(),
                objects,
                ..s.request.clone()
            };
            let out = r.evaluate::<P>();
            let denials = out.denials().into_iter().cloned().collect();
            (s, denials)
        })
        .collect()
}

/// Checks that the golden path's own output (the scenarios with the default configuration)
/// passes the policy with its manifest's settings. With `PAVED_GOLDEN_REPORT` set, prints
/// what the other scenarios (escape hatches, a custom configuration) are denied.
pub fn check_golden_path<P: Policy>(plugin_dir: &str) {
    for (s, denials) in golden_results::<P>(plugin_dir) {
        if s.default_config {
            assert!(denials.is_empty(), "golden {}.yaml is denied:{}", s.name, describe_violations(&denials));
        } else if std::env::var_os("PAVED_GOLDEN_REPORT").is_some() {
            eprintln!("{}: golden {}.yaml:{}", P::NAME, s.name, describe_violations(&denials));
        }
    }
}

/// The tests every bundled policy has, in its `#[cfg(test)]` module: `policy.toml` matches the
/// policy ([`check_manifest`]) and its `tests/` fixtures pass and fail as marked
/// ([`check_fixtures`]).
#[macro_export]
macro_rules! policy_tests {
    ($policy:ty) => {
        #[test]
        fn manifest_matches_the_policy() {
            $crate::testing::check_manifest::<$policy>(env!("CARGO_MANIFEST_DIR"));
        }

        #[test]
        fn fixtures() {
            $crate::testing::check_fixtures::<$policy>(env!("CARGO_MANIFEST_DIR"));
        }
    };
}
