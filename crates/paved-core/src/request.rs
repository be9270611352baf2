//! What a user asks for: a deployment with its escape hatches, or a database.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::image::ImageRef;
use crate::names::{AppName, Team};
use crate::quantity::{CpuQuantity, MemoryQuantity};
use crate::secret::SecretBinding;
use crate::suggest;

/// A request to deploy one app to one environment: what `paved deploy` and
/// [`Platform::deploy`](crate::Platform::deploy) take.
///
/// Names that need no context are validated when the request is built; the environment,
/// replica bounds and team are checked against the organisation's configuration by
/// [`Platform::validate`](crate::Platform::validate).
///
/// ```
/// use paved_core::DeployRequest;
/// let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production")
///     .unwrap()
///     .with_replicas(3);
/// assert_eq!(request.app.as_str(), "my-service");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeployRequest {
    /// The application.
    pub app: AppName,
    /// The container image to run.
    pub image: ImageRef,
    /// The environment name, resolved against the configuration.
    pub environment: String,
    /// Number of replicas (the HPA minimum when autoscaling is on); the environment's
    /// default when `None`.
    pub replicas: Option<u32>,
    /// The owning team; the configuration's default team when `None`.
    pub team: Option<Team>,
    /// The escape hatches the user asked for.
    pub overrides: Overrides,
    /// Environment variables whose values come from a secret store.
    pub secrets: Vec<SecretBinding>,
    /// The commits this deployment ships (for lead-time metrics).
    pub commits: Vec<Commit>,
    /// What a workload file (Score) adds: containers, files, volumes, ports, routes,
    /// dependencies; `None` for a request from flags alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::workload::Workload>,
}

impl DeployRequest {
    /// A request with validated app name and image and no escape hatches.
    pub fn new(app: &str, image: &str, environment: &str) -> Result<Self> {
        Ok(DeployRequest {
            app: AppName::new(app)?,
            image: ImageRef::new(image)?,
            environment: environment.to_string(),
            replicas: None,
            team: None,
            overrides: Overrides::default(),
            secrets: Vec::new(),
            commits: Vec::new(),
            workload: None,
        })
    }

    /// Sets the number of replicas.
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = Some(replicas);
        self
    }

    /// Sets the owning team.
    pub fn with_team(mut self, team: Team) -> Self {
        self.team = Some(team);
        self
    }

    /// Replaces the escape hatches.
    pub fn with_overrides(mut self, overrides: Overrides) -> Self {
        self.overrides = overrides;
        self
    }
}

/// A default object the golden path renders and the user may switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Component {
    /// The HorizontalPodAutoscaler.
    Hpa,
    /// The PodDisruptionBudget.
    Pdb,
    /// The NetworkPolicies.
    NetworkPolicy,
    /// The Ingress (and with it the public URL).
    Ingress,
    /// The ServiceMonitor (also off when the environment turns monitoring off).
    ServiceMonitor,
    /// The Grafana dashboard's ConfigMap (rendered when the environment's `dashboard` is on).
    Dashboard,
    /// The PrometheusRule with the app's alerts (rendered when the environment's `alerts` is on).
    Alerts,
    /// The OpenTelemetry environment variables of the app's container and the NetworkPolicy's
    /// egress to the collector (set when the environment's `tracing` is on).
    Tracing,
    /// The app's part of the service mesh (when the environment has a `mesh`): sidecar
    /// injection, mutual TLS (Istio's PeerAuthentication), the mesh's ports in the
    /// NetworkPolicy. Off, the app's pods opt out of injection.
    Mesh,
}

impl Component {
    /// Every component, in rendering order.
    pub const ALL: [Component; 9] = [
        Component::Hpa,
        Component::Pdb,
        Component::NetworkPolicy,
        Component::Ingress,
        Component::ServiceMonitor,
        Component::Dashboard,
        Component::Alerts,
        Component::Tracing,
        Component::Mesh,
    ];

    /// The kebab-case name used by flags (`--no-hpa`) and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Hpa => "hpa",
            Component::Pdb => "pdb",
            Component::NetworkPolicy => "network-policy",
            Component::Ingress => "ingress",
            Component::ServiceMonitor => "service-monitor",
            Component::Dashboard => "dashboard",
            Component::Alerts => "alerts",
            Component::Tracing => "tracing",
            Component::Mesh => "mesh",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Component {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Component::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let hint = suggest::hint_for(s, Component::ALL.iter().map(|c| c.as_str()));
            Error::invalid("component", s, "is not a component paved renders", Some(hint))
        })
    }
}

/// The escape hatches of a deployment: everything that departs from the golden path.
///
/// Every escape hatch used is recorded in the release and shown to policy, which always sees
/// the final objects, so an escape hatch never bypasses policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Overrides {
    /// Overrides the environment's CPU request.
    pub cpu_request: Option<CpuQuantity>,
    /// Overrides the environment's CPU limit.
    pub cpu_limit: Option<CpuQuantity>,
    /// Overrides the environment's memory request.
    pub memory_request: Option<MemoryQuantity>,
    /// Overrides the environment's memory limit.
    pub memory_limit: Option<MemoryQuantity>,
    /// Overlays merged into the rendered objects (`--custom-manifest`).
    pub custom_manifests: Vec<ManifestFile>,
    /// Objects added to the release (`--extra-manifest`).
    pub extra_manifests: Vec<ManifestFile>,
    /// Default objects switched off (`--no-hpa`, …).
    pub disabled: Vec<Component>,
}

impl Overrides {
    /// Every escape hatch in use, in a stable order, as recorded in the release.
    pub fn escape_hatches(&self) -> Vec<EscapeHatch> {
        let mut out = Vec::new();
        if let Some(q) = &self.cpu_request {
            out.push(EscapeHatch::new("cpu-request", q.as_str()));
        }
        if let Some(q) = &self.cpu_limit {
            out.push(EscapeHatch::new("cpu-limit", q.as_str()));
        }
        if let Some(q) = &self.memory_request {
            out.push(EscapeHatch::new("memory-request", q.as_str()));
        }
        if let Some(q) = &self.memory_limit {
            out.push(EscapeHatch::new("memory-limit", q.as_str()));
        }
        for m in &self.custom_manifests {
            out.push(EscapeHatch::new("custom-manifest", m.path.display().to_string()));
        }
        for m in &self.extra_manifests {
            out.push(EscapeHatch::new("extra-manifest", m.path.display().to_string()));
        }
        let mut disabled = self.disabled.clone();
        disabled.sort();
        disabled.dedup();
        for c in disabled {
            out.push(EscapeHatch { name: format!("no-{c}"), value: None });
        }
        out
    }
}

/// One escape hatch as recorded: its flag name and value, e.g. `cpu-limit=2000m` or `no-hpa`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EscapeHatch {
    /// The flag name without dashes, e.g. `cpu-limit`.
    pub name: String,
    /// The value, for escape hatches that take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl EscapeHatch {
    pub(crate) fn new(name: &str, value: impl Into<String>) -> Self {
        EscapeHatch { name: name.to_string(), value: Some(value.into()) }
    }
}

impl fmt::Display for EscapeHatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One YAML document of a manifest file, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestDocument {
    /// The 1-based line of the document's first line in its file.
    pub line: usize,
    /// The document.
    pub value: serde_json::Value,
    /// The document's text, to find the line of a field in it ([`ManifestDocument::line_of`]).
    #[serde(skip)]
    pub source: String,
}

/// One step of a path into a document: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// A key of a mapping.
    Key(String),
    /// An index into a list.
    Index(usize),
}

/// A path into a document, written as kubectl writes field paths: `spec.containers[0].ports`.
///
/// ```
/// use paved_core::request::{PathStep, field_path};
/// let path = [PathStep::Key("spec".into()), PathStep::Key("containers".into()), PathStep::Index(0)];
/// assert_eq!(field_path(&path), "spec.containers[0]");
/// ```
pub fn field_path(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

impl ManifestDocument {
    /// The 1-based line in the file of the field at `path`, or of the nearest of its parents
    /// that is written in block style (flow style `{…}` and `[…]` is not looked into).
    ///
    /// ```
    /// use paved_core::request::{ManifestFile, PathStep::{Index, Key}};
    /// let file = ManifestFile::parse("o.yaml", "kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        ports:\n        - containerPort: 80\n").unwrap();
    /// let doc = &file.documents[0];
    /// let path = [Key("spec".into()), Key("template".into()), Key("spec".into()), Key("containers".into()), Index(0), Key("ports".into())];
    /// assert_eq!(doc.line_of(&path), 9);
    /// assert_eq!(doc.line_of(&[Key("spec".into()), Key("replicas".into())]), 4);
    /// ```
    pub fn line_of(&self, path: &[PathStep]) -> usize {
        self.line + locate_line(&self.source, path)
    }
}

/// The 0-based line of `path` in block-style YAML `text` (or of its nearest found parent).
fn locate_line(text: &str, path: &[PathStep]) -> usize {
    /// A line: its number, the columns of its `- ` marks, and its key with the key's column.
    struct Line<'a> {
        number: usize,
        dashes: Vec<usize>,
        key_col: usize,
        key: Option<&'a str>,
    }
    impl Line<'_> {
        fn indent(&self) -> usize {
            self.dashes.first().copied().unwrap_or(self.key_col)
        }
    }
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .filter_map(|(number, raw)| {
            let content = raw.trim_start();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            let mut key_col = raw.len() - content.len();
            let mut rest = content;
            let mut dashes = Vec::new();
            while rest == "-" || rest.starts_with("- ") {
                dashes.push(key_col);
                let after = rest[1..].trim_start();
                key_col += rest.len() - after.len();
                rest = after;
            }
            let key = match rest.split_once(": ").or_else(|| rest.strip_suffix(':').map(|k| (k, ""))) {
                Some((k, _)) if !k.starts_with(['{', '[']) => Some(k.trim().trim_matches(['"', '\''])),
                _ => None,
            };
            Some(Line { number, dashes, key_col, key })
        })
        .collect();
    // The node reached so far: its line (None: the root) and whether it is a list item.
    let mut node: Option<(usize, bool)> = None;
    for step in path {
        // The lines below the node, and the column its children start right of.
        let (first, bound) = match node {
            None => (0, None),
            Some((i, false)) => (i + 1, Some(lines[i].key_col)),
            Some((i, true)) => (i + 1, Some(*lines[i].dashes.last().expect("an item has a dash"))),
        };
        let scope =
            lines[first..].iter().enumerate().map(|(j, l)| (first + j, l)).take_while(|(_, l)| match (node, bound) {
                (None, _) | (_, None) => true,
                // A key's list may start in the key's own column (`containers:` / `- name: app`).
                (Some((_, false)), Some(col)) => l.indent() > col || l.dashes.first().is_some_and(|d| *d == col),
                (Some((_, true)), Some(col)) => l.indent() > col,
            });
        let next = match step {
            PathStep::Key(wanted) => {
                let own = node.filter(|(_, item)| *item).map(|(i, _)| (i, &lines[i]));
                let mut column = own.map(|(_, l)| l.key_col);
                own.into_iter().chain(scope.filter(|(_, l)| l.dashes.is_empty())).find(|(_, l)| {
                    let col = *column.get_or_insert(l.key_col);
                    l.key_col == col && l.key == Some(wanted.as_str())
                })
            }
            PathStep::Index(wanted) => {
                let mut column = None;
                scope
                    .filter(|(_, l)| {
                        let Some(&dash) = l.dashes.first() else { return false };
                        dash == *column.get_or_insert(dash)
                    })
                    .nth(*wanted)
            }
        };
        match next {
            Some((i, _)) => node = Some((i, matches!(step, PathStep::Index(_)))),
            None => break,
        }
    }
    node.map_or(0, |(i, _)| lines[i].number)
}

/// A multi-document YAML (or JSON) manifest file given as an escape hatch, parsed when loaded
/// so that a malformed file is rejected before anything is rendered or written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Where the file was read from (as given by the user).
    pub path: PathBuf,
    /// Its non-empty documents, in order.
    pub documents: Vec<ManifestDocument>,
}

impl ManifestFile {
    /// Reads and parses a manifest file.
    ///
    /// Errors name the file and, for syntax errors, the line.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let refuse = |message: String, hint: &str| Error::Manifest {
            path: path.to_path_buf(),
            line: None,
            message,
            hint: Some(hint.into()),
        };
        // A manifest comes from the repository: never a link to a file elsewhere, never huge.
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.file_type().is_symlink() {
                return Err(refuse(
                    "is a symbolic link".into(),
                    "give the file itself: manifests are read from the repository, never through a link",
                ));
            }
            if m.len() > MAX_MANIFEST_BYTES {
                return Err(refuse(
                    format!("is {} bytes, more than the {MAX_MANIFEST_BYTES} a manifest file may have", m.len()),
                    "split it into several files, or apply such objects another way",
                ));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable_file(path, &e))?;
        Self::parse(path, &text)
    }

    /// Parses manifest text that was read from `path`.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut documents = Vec::new();
        for (line, chunk) in split_documents(text) {
            BUDGET.with(|b| b.set(MAX_NODES));
            let value: serde_json::Value =
                serde_yaml_ng::from_str::<Bounded>(chunk).map(|b| b.0).map_err(|e| Error::Manifest {
                    path: path.clone(),
                    line: Some(line + e.location().map_or(0, |l| l.line().saturating_sub(1))),
                    message: format!("malformed YAML: {e}"),
                    hint: Some("fix the YAML syntax at that line (indentation, a missing ':' or quote)".into()),
                })?;
            match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Object(_) => {
                    let mut value = value;
                    resolve_merge_keys(&mut value);
                    documents.push(ManifestDocument { line, value, source: chunk.to_string() })
                }
                other => {
                    return Err(Error::Manifest {
                        path: path.clone(),
                        line: Some(line),
                        message: format!("a document must be a mapping, found {}", json_type(&other)),
                        hint: Some("each document is one Kubernetes object with apiVersion, kind and metadata".into()),
                    });
                }
            }
        }
        if documents.is_empty() {
            return Err(Error::Manifest {
                path,
                line: None,
                message: "contains no objects".into(),
                hint: Some("add at least one object with kind and metadata.name".into()),
            });
        }
        Ok(ManifestFile { path, documents })
    }
}

/// Resolves YAML 1.1 merge keys (`<<: *defaults`, `<<: [*a, *b]`) as kubectl does: keys of
/// the mapping win over merged ones, and earlier merged mappings over later ones.
fn resolve_merge_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(merged) = map.remove("<<") {
                let sources = match merged {
                    serde_json::Value::Array(items) => items,
                    other => vec![other],
                };
                for mut source in sources {
                    // A merged mapping may merge others itself (`<<: *b` where b has `<<: *a`).
                    resolve_merge_keys(&mut source);
                    if let serde_json::Value::Object(source) = source {
                        for (k, v) in source {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            map.values_mut().for_each(resolve_merge_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(resolve_merge_keys),
        _ => {}
    }
}

/// The largest manifest file read (escape hatches are a few objects, not a cluster's worth).
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The most values (mappings, lists, scalars) one document may expand to, YAML aliases
/// included: an anchored list referenced by many aliases cannot exhaust memory.
const MAX_NODES: usize = 200_000;

thread_local! {
    /// Values left for the document being parsed.
    static BUDGET: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_NODES) };
}

/// A JSON value read from YAML within [`MAX_NODES`].
struct Bounded(serde_json::Value);

impl<'de> Deserialize<'de> for Bounded {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(BoundedVisitor).map(Bounded)
    }
}

struct BoundedVisitor;

impl BoundedVisitor {
    fn take<E: serde::de::Error>() -> std::result::Result<(), E> {
        BUDGET.with(|b| match b.get() {
            0 => Err(E::custom(format!(
                "the document expands to more than {MAX_NODES} values (YAML aliases repeating an anchor?)"
            ))),
            n => {
                b.set(n - 1);
                Ok(())
            }
        })
    }
}

impl<'de> serde::de::Visitor<'de> for BoundedVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(v.into())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(v.into())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(v.into())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(v.into())
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        Self::take()?;
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(BoundedVisitor)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
        Self::take()?;
        let mut out = Vec::new();
        while let Some(Bounded(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        Self::take()?;
        let mut out = serde_json::Map::new();
        while let Some((k, Bounded(v))) = map.next_entry::<String, Bounded>()? {
            out.insert(k, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Splits multi-document YAML at `---` lines, returning each chunk with its 1-based first line.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "..." {
            out.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    out.push((start_line, &text[start_byte..]));
    out
}

/// A commit shipped by a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The commit SHA.
    pub sha: String,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub committed_at: OffsetDateTime,
}

/// Database engines a [`DatabaseRequest`] can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DbEngine {
    /// PostgreSQL.
    Postgres,
    /// MySQL.
    Mysql,
    /// MongoDB.
    Mongodb,
}

/// Database sizes a [`DatabaseRequest`] can ask for; each backend maps them to its own
/// instance classes and storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DbSize {
    /// Small: development and low traffic.
    Small,
    /// Medium.
    Medium,
    /// Large: production workloads.
    Large,
}

macro_rules! keyword_enum {
    ($ty:ident, $field:literal, [$(($name:literal, $variant:ident)),+]) => {
        impl $ty {
            /// Every value, with its name.
            pub const ALL: &'static [(&'static str, $ty)] = &[$(($name, $ty::$variant)),+];

            /// The lowercase name.
            pub fn as_str(self) -> &'static str {
                Self::ALL.iter().find(|(_, v)| *v == self).map_or("", |(n, _)| n)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, v)| *v).ok_or_else(|| {
                    let hint = suggest::hint_for(s, Self::ALL.iter().map(|(n, _)| *n));
                    Error::invalid($field, s, concat!("is not a known ", $field), Some(hint))
                })
            }
        }
    };
}

keyword_enum!(DbEngine, "engine", [("postgres", Postgres), ("mysql", Mysql), ("mongodb", Mongodb)]);
keyword_enum!(DbSize, "size", [("small", Small), ("medium", Medium), ("large", Large)]);

/// A request for a self-service database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatabaseRequest {
    /// The owning team.
    pub team: Team,
    /// The service that uses the database.
    pub service: AppName,
    /// The engine.
    pub engine: DbEngine,
    /// The environment name.
    pub environment: String,
    /// The size.
    pub size: DbSize,
}

impl DatabaseRequest {
    /// A validated database request.
    pub fn new(team: &str, service: &str, engine: &str, environment: &str, size: &str) -> Result<Self> {
        Ok(DatabaseRequest {
            team: Team::new(team)?,
            service: AppName::new(service)?,
            engine: engine.parse()?,
            environment: environment.to_string(),
            size: size.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 6: an alias bomb (each level repeats the one before ten times) is
    /// refused after a bounded number of values, not after memory runs out; links and huge
    /// files are not read.
    #[test]
    fn manifests_are_bounded() {
        // 40 KB: one list of 10,000 values, then 1,000 aliases of it (10 million values),
        // well within the YAML parser's own repetition limit.
        let list = vec!["x"; 10_000].join(", ");
        let aliases = vec!["*big"; 1_000].join(", ");
        let bomb = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bomb}}\nbig: &big [{list}]\nmany: [{aliases}]\n"
        );
        let e = ManifestFile::parse("bomb.yaml", &bomb).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        // An ordinary document is unaffected, aliases and all.
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: &d {k: v}\nother: *d\n";
        assert_eq!(ManifestFile::parse("a.yaml", ok).unwrap().documents[0].value["other"]["k"], "v");

        let dir = std::env::temp_dir().join(format!("paved-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("real.yaml"), ok).unwrap();
        let link = dir.join("link.yaml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir.join("real.yaml"), &link).unwrap();
        assert!(ManifestFile::load(&link).unwrap_err().to_string().contains("symbolic link"));
        let big = dir.join("big.yaml");
        std::fs::write(&big, format!("{ok}# {}\n", "x".repeat(MAX_MANIFEST_BYTES as usize))).unwrap();
        assert!(ManifestFile::load(&big).unwrap_err().to_string().contains("bytes"));
        ManifestFile::load(dir.join("real.yaml")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn manifest_files_name_file_and_line() {
        let ok =
            ManifestFile::parse("o.yaml", "---\nkind: A\n---\n# comment only\n---\nkind: B\nmetadata: {name: b}\n")
                .unwrap();
        assert_eq!(ok.documents.len(), 2);
        assert_eq!(ok.documents[1].line, 6);
        let err = ManifestFile::parse("o.yaml", "kind: A\n---\nkind: B\nmetadata:\n  name: [x\n").unwrap_err();
        match &err {
            Error::Manifest { line: Some(line), .. } => assert!((3..=6).contains(line), "{err}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("o.yaml:"), "{err}");
        assert!(ManifestFile::parse("o.yaml", "- a\n- b\n").is_err());
        assert!(ManifestFile::parse("o.yaml", "").is_err());
        let missing = ManifestFile::load("/nonexistent/overlay.yaml").unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/overlay.yaml"));
        assert!(missing.hint().is_some());
    }

    #[test]
    fn escape_hatches_are_listed_in_a_stable_order() {
        let o = Overrides {
            cpu_limit: Some(CpuQuantity::new("2000m").unwrap()),
            disabled: vec![Component::Pdb, Component::Hpa, Component::Hpa],
            ..Overrides::default()
        };
        let names: Vec<String> = o.escape_hatches().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["cpu-limit=2000m", "no-hpa", "no-pdb"]);
    }

    #[test]
    fn database_requests() {
        let r = DatabaseRequest::new("payments", "payment-service", "postgres", "production", "large").unwrap();
        assert_eq!(r.engine, DbEngine::Postgres);
        assert_eq!(
            DatabaseRequest::new("p", "s", "postgresql", "dev", "small").unwrap_err().hint(),
            Some("did you mean \"postgres\"?")
        );
        assert_eq!(
            DatabaseRequest::new("p", "s", "mysql", "dev", "huge").unwrap_err().hint(),
            Some(r#"expected one of "small", "medium", "large""#)
        );
        assert!("network".parse::<Component>().unwrap_err().hint().unwrap().contains("network-policy"));
    }

    #[test]
    fn line_of_finds_fields_in_block_yaml() {
        use PathStep::{Index, Key};
        let text = "# comment\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: a\n        ports:\n          - containerPort: 80\n          - containerPort: 81\n      - name: side\n        env: [{name: A}]\n      volumes:\n      - name: tmp\n";
        let doc = &ManifestFile::parse("o.yaml", text).unwrap().documents[0];
        let k = |s: &str| Key(s.to_string());
        let spec = [k("spec"), k("template"), k("spec")];
        let at = |rest: &[PathStep]| doc.line_of(&[spec.as_slice(), rest].concat());
        assert_eq!(at(&[k("containers")]), 9);
        assert_eq!(at(&[k("containers"), Index(0)]), 10);
        assert_eq!(at(&[k("containers"), Index(0), k("name")]), 10);
        assert_eq!(at(&[k("containers"), Index(0), k("image")]), 11);
        assert_eq!(at(&[k("containers"), Index(0), k("ports"), Index(1)]), 14);
        assert_eq!(at(&[k("containers"), Index(1)]), 15);
        // Flow style is not looked into: the nearest parent's line.
        assert_eq!(at(&[k("containers"), Index(1), k("env"), Index(0)]), 16);
        assert_eq!(at(&[k("volumes"), Index(0)]), 18);
        // Absent fields: the nearest parent.
        assert_eq!(at(&[k("containers"), Index(0), k("resources")]), 10);
        assert_eq!(doc.line_of(&[k("metadata"), k("labels")]), 4);
        assert_eq!(doc.line_of(&[k("kind")]), 3);
        assert_eq!(doc.line_of(&[]), 1);
        // A key of the same name deeper down is not taken for a top-level one.
        assert_eq!(doc.line_of(&[k("name")]), 1);
        // Documents after the first count from their own first line.
        let two = ManifestFile::parse("o.yaml", "kind: A\n---\nkind: B\nspec:\n  x: 1\n").unwrap();
        assert_eq!(two.documents[1].line_of(&[k("spec"), k("x")]), 5);
    }

    #[test]
    fn merge_keys_are_resolved() {
        let text = "defaults: &d {a: 1, b: 2}\nmore: &m {c: 3}\nx:\n  <<: *d\n  b: 9\ny:\n  <<: [*d, *m]\n";
        let doc = &ManifestFile::parse("m.yaml", text).unwrap().documents[0];
        assert_eq!(doc.value["x"], serde_json::json!({"a": 1, "b": 9}));
        assert_eq!(doc.value["y"], serde_json::json!({"a": 1, "b": 2, "c": 3}));
        // Chains resolve too.
        let chained = "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc:\n  <<: *b\n  z: 3\n";
        let doc = &ManifestFile::parse("m.yaml", chained).unwrap().documents[0];
        assert_eq!(doc.value["c"], serde_json::json!({"x": 1, "y": 2, "z": 3}));
    }
}
