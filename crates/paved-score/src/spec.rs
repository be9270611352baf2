//! The Score workload, validated by the rules of the official `score-v1b1` JSON Schema.
//!
//! Written from `score-v1b1.json` of score-spec/spec (spec 0.4.1, JSON Schema 2020-12):
//! required fields, `additionalProperties: false`, name patterns, types, ranges and enums.
//! Both forms of `files` and `volumes` are read: the map keyed by target path, and the
//! deprecated array with `target` in each item. Every error names the file, the line and the
//! field (`containers.main.files[0].mode`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use paved_core::{Error, Result, suggest};

use crate::node::{Key, Node, Value};

/// The Score specification version paved validates against.
pub const SCORE_SPEC_VERSION: &str = "score.dev/v1b1 (score-spec/spec 0.4.1, score-v1b1.json)";

/// A validated Score workload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScoreWorkload {
    /// The file it was read from.
    pub file: PathBuf,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.labels` (an extension key the schema allows; Kubernetes label rules apply).
    pub labels: BTreeMap<String, String>,
    /// The whole `metadata` as JSON, for `${metadata.…}` placeholders.
    pub metadata: serde_json::Value,
    /// `service.ports`, in file order.
    pub ports: Vec<ScorePort>,
    /// `containers`, in file order.
    pub containers: Vec<ScoreContainer>,
    /// `resources`, in file order.
    pub resources: Vec<ScoreResource>,
}

/// One of `service.ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScorePort {
    /// The port's name.
    pub name: String,
    /// The service port.
    pub port: u16,
    /// The container port (`port` when absent).
    pub target_port: u16,
    /// `TCP` or `UDP`.
    pub protocol: String,
}

/// One of `containers`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScoreContainer {
    /// The container's name.
    pub name: String,
    /// The line of its key.
    pub line: usize,
    /// `image` (`.` means the image given on the command line).
    pub image: String,
    /// `command`.
    pub command: Option<Vec<String>>,
    /// `args`.
    pub args: Option<Vec<String>>,
    /// `variables`, in file order, with their lines.
    pub variables: Vec<(String, String, usize)>,
    /// `files`.
    pub files: Vec<ScoreFile>,
    /// `volumes`.
    pub volumes: Vec<ScoreVolume>,
    /// `resources.requests`.
    pub requests: Limits,
    /// `resources.limits`.
    pub limits: Limits,
    /// `livenessProbe`.
    pub liveness: Option<Probe>,
    /// `readinessProbe`.
    pub readiness: Option<Probe>,
}

/// CPU and memory of `resources.requests` or `resources.limits`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `cpu`.
    pub cpu: Option<String>,
    /// `memory`.
    pub memory: Option<String>,
}

/// A file mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScoreFile {
    /// The path in the container.
    pub target: String,
    /// The access mode (`0600` is 384).
    pub mode: Option<u32>,
    /// Where the content comes from.
    pub content: FileContent,
    /// `noExpand`: placeholders are left as they are.
    pub no_expand: bool,
    /// The line of the entry.
    pub line: usize,
}

/// The content of a [`ScoreFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileContent {
    /// `content`: UTF-8 text.
    Inline(String),
    /// `binaryContent`: standard base64 (never expanded).
    Binary(String),
    /// `source`: a file relative to the Score file's directory.
    Source(String),
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScoreVolume {
    /// The path in the container.
    pub target: String,
    /// `source`, usually `${resources.NAME}`.
    pub source: String,
    /// `path`: a sub path in the volume.
    pub path: Option<String>,
    /// `readOnly`.
    pub read_only: bool,
    /// The line of the entry.
    pub line: usize,
}

/// `livenessProbe` or `readinessProbe`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// `httpGet`.
    pub http: Option<HttpProbe>,
    /// `exec.command`.
    pub exec: Option<Vec<String>>,
}

/// `httpGet` of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpProbe {
    /// `port`.
    pub port: u16,
    /// `path`.
    pub path: String,
    /// `scheme` (`HTTP` or `HTTPS`).
    pub scheme: Option<String>,
    /// `host`.
    pub host: Option<String>,
    /// `httpHeaders`, as name and value.
    pub headers: Vec<(String, String)>,
}

/// One of `resources`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScoreResource {
    /// The resource's name (the key).
    pub name: String,
    /// The line of its key.
    pub line: usize,
    /// `type`.
    pub kind: String,
    /// `class`.
    pub class: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// `params` (an object; empty when absent).
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// Where an error is: the file, and a cursor into the document.
struct Cx<'a> {
    file: &'a Path,
}

impl Cx<'_> {
    fn err(&self, line: usize, field: &str, message: impl Into<String>, hint: impl Into<String>) -> Error {
        let message = message.into();
        Error::Manifest {
            path: self.file.to_path_buf(),
            line: Some(line),
            message: if field.is_empty() { message } else { format!("{field}: {message}") },
            hint: Some(hint.into()).filter(|h: &String| !h.is_empty()),
        }
    }

    fn map<'n>(&self, node: &'n Node, field: &str) -> Result<&'n [(Key, Node)]> {
        match &node.value {
            Value::Map(m) => Ok(m),
            other => Err(self.err(
                node.line,
                field,
                format!("must be an object, not {}", other.type_name()),
                "write it as a mapping of keys to values",
            )),
        }
    }

    fn seq<'n>(&self, node: &'n Node, field: &str) -> Result<&'n [Node]> {
        match &node.value {
            Value::Seq(s) => Ok(s),
            other => Err(self.err(
                node.line,
                field,
                format!("must be an array, not {}", other.type_name()),
                "write it as a list (`- item`)",
            )),
        }
    }

    fn string(&self, node: &Node, field: &str) -> Result<String> {
        match &node.value {
            Value::Str(s) => Ok(s.clone()),
            other => Err(self.err(
                node.line,
                field,
                format!("must be a string, not {}", other.type_name()),
                match other {
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) => "quote it, e.g. \"0600\" or \"true\"",
                    _ => "give a string",
                },
            )),
        }
    }

    fn strings(&self, node: &Node, field: &str) -> Result<Vec<String>> {
        self.seq(node, field)?.iter().enumerate().map(|(i, n)| self.string(n, &format!("{field}[{i}]"))).collect()
    }

    fn boolean(&self, node: &Node, field: &str) -> Result<bool> {
        match &node.value {
            Value::Bool(b) => Ok(*b),
            other => Err(self.err(
                node.line,
                field,
                format!("must be a boolean, not {}", other.type_name()),
                "write true or false",
            )),
        }
    }

    fn port(&self, node: &Node, field: &str) -> Result<u16> {
        match &node.value {
            Value::Int(i) if (1..=65535).contains(i) => Ok(u16::try_from(*i).expect("in range")),
            Value::Int(i) => {
                Err(self.err(node.line, field, format!("{i} is not a port"), "give a port from 1 to 65535"))
            }
            other => Err(self.err(
                node.line,
                field,
                format!("must be an integer, not {}", other.type_name()),
                "give a port from 1 to 65535, unquoted",
            )),
        }
    }

    /// Refuses keys outside `allowed` (`additionalProperties: false`), with a did-you-mean.
    fn known_keys(&self, entries: &[(Key, Node)], field: &str, allowed: &[&str]) -> Result<()> {
        for (k, _) in entries {
            if !allowed.contains(&k.name.as_str()) {
                let at = join(field, &k.name);
                return Err(self.err(
                    k.line,
                    &at,
                    format!("is not a field of {}", if field.is_empty() { "a Score workload" } else { field }),
                    suggest::hint_for(&k.name, allowed.iter().copied()),
                ));
            }
        }
        Ok(())
    }

    fn required<'n>(&self, entries: &'n [(Key, Node)], at: &Node, field: &str, key: &str) -> Result<&'n Node> {
        get(entries, key).ok_or_else(|| {
            self.err(at.line, field, format!("`{key}` is required"), format!("add `{key}:` to {}", or_top(field)))
        })
    }

    /// A name by the schema's RFC 1123 label rule (2 to 63 characters).
    fn label(&self, name: &str, line: usize, field: &str, what: &str) -> Result<()> {
        let b = name.as_bytes();
        let ok = (2..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if ok {
            return Ok(());
        }
        let fixed: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .chars()
            .take(63)
            .collect();
        Err(self.err(
            line,
            field,
            format!("{what} {name:?} is not an RFC 1123 label of 2 to 63 characters (a-z, 0-9, '-', not starting or ending with '-')"),
            if fixed.len() >= 2 { format!("did you mean {fixed:?}?") } else { "use a name like my-service".into() },
        ))
    }
}

fn or_top(field: &str) -> &str {
    if field.is_empty() { "the top of the file" } else { field }
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else if key.contains('.') {
        format!("{field}[{key:?}]")
    } else {
        format!("{field}.{key}")
    }
}

fn get<'n>(entries: &'n [(Key, Node)], key: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| k.name == key).map(|(_, n)| n)
}

/// The schema's annotation key pattern: an optional DNS-subdomain prefix and `/`, then a name
/// of `[A-Za-z0-9._-]` starting and ending alphanumeric (2 to 316 characters in all).
fn annotation_key_ok(key: &str) -> bool {
    if !(2..=316).contains(&key.len()) {
        return false;
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
            && b.len() >= 2
    };
    let prefix_ok = prefix.is_none_or(|p| p.split('.').all(label));
    let n = name.as_bytes();
    let name_ok = (2..=63).contains(&n.len())
        && n.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
        && n[0].is_ascii_alphanumeric()
        && n[n.len() - 1].is_ascii_alphanumeric();
    prefix_ok && name_ok
}

/// `^[1-9]\d*(K|M|G|T|Ki|Mi|Gi|Ti)?$` and the newer fractional form
/// `^(0\.\d+|[1-9]\d*(\.\d+)?)(K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`.
fn memory_ok(s: &str) -> bool {
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let unit_ok = ["", "K", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(&unit);
    let number_ok = match number.split_once('.') {
        None => number.starts_with(|c: char| ('1'..='9').contains(&c)),
        Some((int, frac)) => {
            !frac.is_empty()
                && frac.bytes().all(|b| b.is_ascii_digit())
                && (int == "0" || int.starts_with(|c: char| ('1'..='9').contains(&c)))
        }
    };
    unit_ok && number_ok
}

/// `^\d+(?:m|\.\d+)?$`.
fn cpu_ok(s: &str) -> bool {
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_end);
    !int.is_empty()
        && (rest.is_empty()
            || rest == "m"
            || rest.strip_prefix('.').is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())))
}

/// `^[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$` (resource types and classes).
fn type_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `^[a-z0-9]+(?:-+[a-z0-9]+)*(?:\.[a-z0-9]+(?:-+[a-z0-9]+)*)*$`, 2 to 63 characters.
fn id_ok(s: &str) -> bool {
    (2..=63).contains(&s.len())
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

impl ScoreWorkload {
    /// Reads and validates a Score file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read the Score file: {e}"),
            hint: Some("give the path of a Score workload file to `ScoreWorkload::load`".into()),
        })?;
        Self::parse(path, &text)
    }

    /// Validates a Score document; `file` names it in errors and anchors `files[].source`.
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let cx = Cx { file };
        let root = crate::node::parse(text).map_err(|(line, message)| Error::Manifest {
            path: file.to_path_buf(),
            line,
            message: format!("not valid YAML: {message}"),
            hint: Some("fix the YAML syntax (indentation, quotes, `key: value`)".into()),
        })?;
        let top = cx.map(&root, "")?;
        cx.known_keys(top, "", &["apiVersion", "metadata", "service", "containers", "resources"])?;
        let api = cx.required(top, &root, "", "apiVersion")?;
        let api_version = cx.string(api, "apiVersion")?;
        if api_version != "score.dev/v1b1" {
            return Err(cx.err(
                api.line,
                "apiVersion",
                format!("{api_version:?} is not a Score version paved reads"),
                "write apiVersion: score.dev/v1b1",
            ));
        }
        let metadata_node = cx.required(top, &root, "", "metadata")?;
        let metadata = cx.map(metadata_node, "metadata")?;
        let name_node = cx.required(metadata, metadata_node, "metadata", "name")?;
        let name = cx.string(name_node, "metadata.name")?;
        cx.label(&name, name_node.line, "metadata.name", "the workload name")?;
        let annotations = string_map(&cx, metadata, "metadata", "annotations", annotation_key_ok)?;
        let labels = string_map(&cx, metadata, "metadata", "labels", |k| annotation_key_ok(k) && k.len() <= 316)?;
        let ports = match get(top, "service") {
            None => Vec::new(),
            Some(service) => {
                let entries = cx.map(service, "service")?;
                cx.known_keys(entries, "service", &["ports"])?;
                match get(entries, "ports") {
                    None => Vec::new(),
                    Some(ports) => cx
                        .map(ports, "service.ports")?
                        .iter()
                        .map(|(k, n)| port(&cx, k, n))
                        .collect::<Result<Vec<_>>>()?,
                }
            }
        };
        let containers_node = cx.required(top, &root, "", "containers")?;
        let container_entries = cx.map(containers_node, "containers")?;
        if container_entries.is_empty() {
            return Err(cx.err(
                containers_node.line,
                "containers",
                "needs at least one container",
                "add a container, e.g. `main: {image: ghcr.io/company/my-service:v1.2.3}`",
            ));
        }
        let containers = container_entries.iter().map(|(k, n)| container(&cx, k, n)).collect::<Result<Vec<_>>>()?;
        let resources = match get(top, "resources") {
            None => Vec::new(),
            Some(r) => cx.map(r, "resources")?.iter().map(|(k, n)| resource(&cx, k, n)).collect::<Result<Vec<_>>>()?,
        };
        Ok(ScoreWorkload {
            file: file.to_path_buf(),
            name,
            annotations,
            labels,
            metadata: metadata_node.value.to_json(),
            ports,
            containers,
            resources,
        })
    }
}

/// Annotation and label prefixes a workload file may not set on its pods: paved writes them
/// (its labels, escape-hatch record, secret injection) or they switch platform controls
/// (the mesh, pod security, cloud identity) that only the organisation's settings change.
pub const RESERVED_PREFIXES: &[&str] = &[
    "paved.dev/",
    "app.kubernetes.io/",
    "vault.hashicorp.com/",
    "sidecar.istio.io/",
    "traffic.sidecar.istio.io/",
    "proxy.istio.io/",
    "istio.io/",
    "security.istio.io/",
    "linkerd.io/",
    "config.linkerd.io/",
    "config.alpha.linkerd.io/",
    "pod-security.kubernetes.io/",
    "eks.amazonaws.com/",
    "secrets-store.csi.k8s.io/",
    "kubectl.kubernetes.io/",
];

fn string_map(
    cx: &Cx<'_>,
    entries: &[(Key, Node)],
    parent: &str,
    key: &str,
    key_ok: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, String>> {
    let field = join(parent, key);
    let Some(node) = get(entries, key) else { return Ok(BTreeMap::new()) };
    let mut out = BTreeMap::new();
    for (k, v) in cx.map(node, &field)? {
        let at = join(&field, &k.name);
        if !key_ok(&k.name) {
            return Err(cx.err(
                k.line,
                &at,
                "is not a valid key (an optional DNS prefix and `/`, then 2 to 63 of A-Z, a-z, 0-9, '.', '_', '-')",
                "e.g. example.com/owner",
            ));
        }
        if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| k.name.starts_with(**p)) {
            return Err(cx.err(
                k.line,
                &at,
                format!("uses {prefix}, which paved or the platform's controllers own"),
                "secrets reach the app through references, the mesh and escape hatches through the platform's settings; use your own prefix, e.g. example.com/owner",
            ));
        }
        out.insert(k.name.clone(), cx.string(v, &at)?);
    }
    Ok(out)
}

fn port(cx: &Cx<'_>, key: &Key, node: &Node) -> Result<ScorePort> {
    let field = join("service.ports", &key.name);
    cx.label(&key.name, key.line, &field, "the port name")?;
    let entries = cx.map(node, &field)?;
    cx.known_keys(entries, &field, &["port", "protocol", "targetPort"])?;
    let port = cx.port(cx.required(entries, node, &field, "port")?, &join(&field, "port"))?;
    let target_port = match get(entries, "targetPort") {
        Some(n) => cx.port(n, &join(&field, "targetPort"))?,
        None => port,
    };
    let protocol = match get(entries, "protocol") {
        None => "TCP".to_string(),
        Some(n) => {
            let p = cx.string(n, &join(&field, "protocol"))?;
            if p != "TCP" && p != "UDP" {
                return Err(cx.err(
                    n.line,
                    &join(&field, "protocol"),
                    format!("{p:?} is not TCP or UDP"),
                    suggest::hint_for(&p, ["TCP", "UDP"]),
                ));
            }
            p
        }
    };
    Ok(ScorePort { name: key.name.clone(), port, target_port, protocol })
}

fn limits(cx: &Cx<'_>, node: &Node, field: &str) -> Result<Limits> {
    let entries = cx.map(node, field)?;
    cx.known_keys(entries, field, &["cpu", "memory"])?;
    let mut out = Limits::default();
    if let Some(n) = get(entries, "cpu") {
        let at = join(field, "cpu");
        let cpu = match &n.value {
            // The schema wants a string; a bare number is the commonest slip.
            Value::Int(_) | Value::Float(_) => {
                return Err(cx.err(n.line, &at, "must be a string", "quote it, e.g. cpu: \"0.5\" or cpu: 500m"));
            }
            _ => cx.string(n, &at)?,
        };
        if !cpu_ok(&cpu) {
            return Err(cx.err(
                n.line,
                &at,
                format!("{cpu:?} is not a CPU quantity"),
                "write whole or fractional CPUs, or millicores: 2, 0.5, 250m",
            ));
        }
        out.cpu = Some(cpu);
    }
    if let Some(n) = get(entries, "memory") {
        let at = join(field, "memory");
        let memory = cx.string(n, &at)?;
        if !memory_ok(&memory) {
            return Err(cx.err(
                n.line,
                &at,
                format!("{memory:?} is not a memory quantity"),
                "write bytes with an optional unit: 128M, 512Mi, 1.5Gi",
            ));
        }
        out.memory = Some(memory);
    }
    Ok(out)
}

fn probe(cx: &Cx<'_>, node: &Node, field: &str) -> Result<Probe> {
    let entries = cx.map(node, field)?;
    cx.known_keys(entries, field, &["httpGet", "exec"])?;
    let http = match get(entries, "httpGet") {
        None => None,
        Some(n) => {
            let f = join(field, "httpGet");
            let e = cx.map(n, &f)?;
            cx.known_keys(e, &f, &["host", "scheme", "path", "port", "httpHeaders"])?;
            let port = cx.port(cx.required(e, n, &f, "port")?, &join(&f, "port"))?;
            let path = cx.string(cx.required(e, n, &f, "path")?, &join(&f, "path"))?;
            let scheme = match get(e, "scheme") {
                None => None,
                Some(s) => {
                    let v = cx.string(s, &join(&f, "scheme"))?;
                    if v != "HTTP" && v != "HTTPS" {
                        return Err(cx.err(
                            s.line,
                            &join(&f, "scheme"),
                            format!("{v:?} is not HTTP or HTTPS"),
                            suggest::hint_for(&v, ["HTTP", "HTTPS"]),
                        ));
                    }
                    Some(v)
                }
            };
            let host = match get(e, "host") {
                None => None,
                Some(h) => Some(cx.string(h, &join(&f, "host"))?).filter(|h| !h.is_empty()),
            };
            let mut headers = Vec::new();
            if let Some(h) = get(e, "httpHeaders") {
                let hf = join(&f, "httpHeaders");
                for (i, item) in cx.seq(h, &hf)?.iter().enumerate() {
                    let at = format!("{hf}[{i}]");
                    let he = cx.map(item, &at)?;
                    cx.known_keys(he, &at, &["name", "value"])?;
                    let name = cx.string(cx.required(he, item, &at, "name")?, &join(&at, "name"))?;
                    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                        return Err(cx.err(
                            item.line,
                            &join(&at, "name"),
                            format!("{name:?} is not a header name"),
                            "use A-Z, a-z, 0-9, '_' and '-'",
                        ));
                    }
                    let value = cx.string(cx.required(he, item, &at, "value")?, &join(&at, "value"))?;
                    if value.is_empty() {
                        return Err(cx.err(
                            item.line,
                            &join(&at, "value"),
                            "must not be empty",
                            "give the header's value",
                        ));
                    }
                    headers.push((name, value));
                }
            }
            Some(HttpProbe { port, path, scheme, host, headers })
        }
    };
    let exec = match get(entries, "exec") {
        None => None,
        Some(n) => {
            let f = join(field, "exec");
            let e = cx.map(n, &f)?;
            cx.known_keys(e, &f, &["command"])?;
            Some(cx.strings(cx.required(e, n, &f, "command")?, &join(&f, "command"))?)
        }
    };
    if http.is_none() && exec.is_none() {
        return Err(cx.err(
            node.line,
            field,
            "has neither httpGet nor exec",
            "add httpGet: {port: 8080, path: /healthz} or exec: {command: [...]}",
        ));
    }
    Ok(Probe { http, exec })
}

/// One entry of `files` or `volumes`: its target, its fields, its node and its field path.
type Targeted<'n> = (String, &'n [(Key, Node)], &'n Node, String);

/// `files` or `volumes`: the map keyed by target, or the deprecated array with `target`.
fn targeted<'n>(cx: &Cx<'_>, node: &'n Node, field: &str) -> Result<Vec<Targeted<'n>>> {
    let mut out = Vec::new();
    match &node.value {
        Value::Map(entries) => {
            for (k, n) in entries {
                let at = join(field, &k.name);
                let e = cx.map(n, &at)?;
                if let Some(t) = get(e, "target") {
                    return Err(cx.err(
                        t.line,
                        &join(&at, "target"),
                        "is only allowed in the deprecated array form",
                        "leave `target` out: the key is the target path",
                    ));
                }
                out.push((k.name.clone(), e, n, at));
            }
        }
        Value::Seq(items) => {
            for (i, n) in items.iter().enumerate() {
                let at = format!("{field}[{i}]");
                let e = cx.map(n, &at)?;
                let target = cx.string(cx.required(e, n, &at, "target")?, &join(&at, "target"))?;
                out.push((target, e, n, at));
            }
        }
        other => {
            return Err(cx.err(
                node.line,
                field,
                format!("must be an object (target path → details) or an array, not {}", other.type_name()),
                "write `/path/in/container: {…}`",
            ));
        }
    }
    for (i, (target, _, n, at)) in out.iter().enumerate() {
        if target.is_empty() || !target.starts_with('/') {
            return Err(cx.err(
                n.line,
                at,
                format!("target {target:?} is not an absolute path"),
                "give the path in the container, e.g. /etc/app/config.yaml",
            ));
        }
        if out[..i].iter().any(|(t, ..)| t == target) {
            return Err(cx.err(
                n.line,
                at,
                format!("target {target:?} is mounted twice"),
                "give each mount its own target",
            ));
        }
    }
    Ok(out)
}

fn container(cx: &Cx<'_>, key: &Key, node: &Node) -> Result<ScoreContainer> {
    let field = join("containers", &key.name);
    cx.label(&key.name, key.line, &field, "the container name")?;
    let entries = cx.map(node, &field)?;
    cx.known_keys(
        entries,
        &field,
        &[
            "image",
            "command",
            "args",
            "variables",
            "files",
            "volumes",
            "resources",
            "livenessProbe",
            "readinessProbe",
            "before",
        ],
    )?;
    if let Some(b) = get(entries, "before") {
        return Err(cx.err(
            b.line,
            &join(&field, "before"),
            "is not supported by paved yet",
            "remove `before`: start order is not guaranteed; use readiness probes",
        ));
    }
    let image_node = cx.required(entries, node, &field, "image")?;
    let image = cx.string(image_node, &join(&field, "image"))?;
    if image.is_empty() {
        return Err(cx.err(
            image_node.line,
            &join(&field, "image"),
            "must not be empty",
            "give an image reference, or `.` for the image on the command line",
        ));
    }
    let command = get(entries, "command").map(|n| cx.strings(n, &join(&field, "command"))).transpose()?;
    let args = get(entries, "args").map(|n| cx.strings(n, &join(&field, "args"))).transpose()?;
    let mut variables = Vec::new();
    if let Some(v) = get(entries, "variables") {
        let vf = join(&field, "variables");
        for (k, n) in cx.map(v, &vf)? {
            let at = join(&vf, &k.name);
            if k.name.is_empty() || k.name.contains('=') {
                return Err(cx.err(
                    k.line,
                    &at,
                    "is not a variable name (empty or with `=`)",
                    "use a name like DATABASE_URL",
                ));
            }
            let value = match &n.value {
                Value::Str(s) => s.clone(),
                // Scalars are the commonest slip; the schema allows only strings.
                other => {
                    return Err(cx.err(
                        n.line,
                        &at,
                        format!("must be a string, not {}", other.type_name()),
                        "quote the value, e.g. PORT: \"8080\"",
                    ));
                }
            };
            variables.push((k.name.clone(), value, n.line));
        }
    }
    let mut files = Vec::new();
    if let Some(f) = get(entries, "files") {
        for (target, e, n, at) in targeted(cx, f, &join(&field, "files"))? {
            cx.known_keys(e, &at, &["target", "mode", "source", "content", "binaryContent", "noExpand"])?;
            let mode = match get(e, "mode") {
                None => None,
                Some(m) => {
                    let s = cx.string(m, &join(&at, "mode"))?;
                    let digits = s.strip_prefix('0').filter(|d| d.len() == 3).unwrap_or(&s);
                    if digits.len() != 3 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                        return Err(cx.err(
                            m.line,
                            &join(&at, "mode"),
                            format!("{s:?} is not an octal mode"),
                            "write three octal digits, e.g. \"0600\" or \"644\"",
                        ));
                    }
                    Some(u32::from_str_radix(digits, 8).expect("octal digits"))
                }
            };
            let sources: Vec<&str> =
                ["content", "binaryContent", "source"].into_iter().filter(|k| get(e, k).is_some()).collect();
            let content = match sources.as_slice() {
                ["content"] => {
                    FileContent::Inline(cx.string(get(e, "content").expect("present"), &join(&at, "content"))?)
                }
                ["binaryContent"] => {
                    let b = get(e, "binaryContent").expect("present");
                    let s = cx.string(b, &join(&at, "binaryContent"))?;
                    use base64::Engine as _;
                    if base64::engine::general_purpose::STANDARD.decode(&s).is_err() {
                        return Err(cx.err(
                            b.line,
                            &join(&at, "binaryContent"),
                            "is not standard base64",
                            "encode the file with `base64 -w0 FILE`",
                        ));
                    }
                    FileContent::Binary(s)
                }
                ["source"] => {
                    let s = cx.string(get(e, "source").expect("present"), &join(&at, "source"))?;
                    if s.is_empty() {
                        return Err(cx.err(
                            n.line,
                            &join(&at, "source"),
                            "must not be empty",
                            "give a path relative to the Score file",
                        ));
                    }
                    FileContent::Source(s)
                }
                [] => {
                    return Err(cx.err(
                        n.line,
                        &at,
                        "has no content",
                        "give exactly one of `content`, `binaryContent` or `source`",
                    ));
                }
                many => {
                    return Err(cx.err(
                        n.line,
                        &at,
                        format!("has {} (only one is allowed)", many.join(" and ")),
                        "give exactly one of `content`, `binaryContent` or `source`",
                    ));
                }
            };
            let no_expand =
                get(e, "noExpand").map(|b| cx.boolean(b, &join(&at, "noExpand"))).transpose()?.unwrap_or(false);
            files.push(ScoreFile { target, mode, content, no_expand, line: n.line });
        }
    }
    let mut volumes = Vec::new();
    if let Some(v) = get(entries, "volumes") {
        for (target, e, n, at) in targeted(cx, v, &join(&field, "volumes"))? {
            cx.known_keys(e, &at, &["source", "path", "target", "readOnly"])?;
            let source = cx.string(cx.required(e, n, &at, "source")?, &join(&at, "source"))?;
            let path = get(e, "path").map(|p| cx.string(p, &join(&at, "path"))).transpose()?;
            let read_only =
                get(e, "readOnly").map(|b| cx.boolean(b, &join(&at, "readOnly"))).transpose()?.unwrap_or(false);
            volumes.push(ScoreVolume { target, source, path, read_only, line: n.line });
        }
    }
    let (mut requests, mut limits_) = (Limits::default(), Limits::default());
    if let Some(r) = get(entries, "resources") {
        let rf = join(&field, "resources");
        let e = cx.map(r, &rf)?;
        cx.known_keys(e, &rf, &["limits", "requests"])?;
        if let Some(n) = get(e, "requests") {
            requests = limits(cx, n, &join(&rf, "requests"))?;
        }
        if let Some(n) = get(e, "limits") {
            limits_ = limits(cx, n, &join(&rf, "limits"))?;
        }
    }
    let liveness = get(entries, "livenessProbe").map(|n| probe(cx, n, &join(&field, "livenessProbe"))).transpose()?;
    let readiness =
        get(entries, "readinessProbe").map(|n| probe(cx, n, &join(&field, "readinessProbe"))).transpose()?;
    Ok(ScoreContainer {
        name: key.name.clone(),
        line: key.line,
        image,
        command,
        args,
        variables,
        files,
        volumes,
        requests,
        limits: limits_,
        liveness,
        readiness,
    })
}

fn resource(cx: &Cx<'_>, key: &Key, node: &Node) -> Result<ScoreResource> {
    let field = join("resources", &key.name);
    // The schema's resource-name pattern is the RFC 1123 label; the spec's own full sample
    // names one `resource.three`, so labels joined by dots are read too.
    if !id_ok(&key.name) {
        cx.label(&key.name, key.line, &field, "the resource name")?;
    }
    let entries = cx.map(node, &field)?;
    cx.known_keys(entries, &field, &["type", "class", "id", "metadata", "params"])?;
    let type_node = cx.required(entries, node, &field, "type")?;
    let kind = cx.string(type_node, &join(&field, "type"))?;
    if !type_ok(&kind) {
        return Err(cx.err(
            type_node.line,
            &join(&field, "type"),
            format!("{kind:?} is not a resource type (2 to 63 of A-Z, a-z, 0-9, '-')"),
            "e.g. postgres, redis, dns, route, volume",
        ));
    }
    let class = match get(entries, "class") {
        None => None,
        Some(n) => {
            let c = cx.string(n, &join(&field, "class"))?;
            if !type_ok(&c) {
                return Err(cx.err(
                    n.line,
                    &join(&field, "class"),
                    format!("{c:?} is not a class (2 to 63 of A-Z, a-z, 0-9, '-')"),
                    "e.g. default or large",
                ));
            }
            Some(c)
        }
    };
    let id = match get(entries, "id") {
        None => None,
        Some(n) => {
            let i = cx.string(n, &join(&field, "id"))?;
            if !id_ok(&i) {
                return Err(cx.err(
                    n.line,
                    &join(&field, "id"),
                    format!("{i:?} is not a resource id (lowercase labels of a-z, 0-9, '-' separated by '.')"),
                    "e.g. shared-postgres",
                ));
            }
            Some(i)
        }
    };
    if let Some(m) = get(entries, "metadata") {
        let mf = join(&field, "metadata");
        let e = cx.map(m, &mf)?;
        string_map(cx, e, &mf, "annotations", annotation_key_ok)?;
    }
    let params = match get(entries, "params") {
        None => serde_json::Map::new(),
        Some(p) => {
            cx.map(p, &join(&field, "params"))?;
            match p.value.to_json() {
                serde_json::Value::Object(m) => m,
                _ => unreachable!("a map converts to an object"),
            }
        }
    };
    Ok(ScoreResource { name: key.name.clone(), line: key.line, kind, class, id, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ScoreWorkload> {
        ScoreWorkload::parse(Path::new("score.yaml"), text)
    }

    fn err(text: &str) -> String {
        let e = parse(text).unwrap_err();
        format!("{e} | {}", e.hint().unwrap_or(""))
    }

    const MIN: &str =
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: nginx:1.27\n";

    #[test]
    fn minimal_workload() {
        let w = parse(MIN).unwrap();
        assert_eq!(w.name, "web");
        assert_eq!(w.containers.len(), 1);
        assert_eq!(w.containers[0].image, "nginx:1.27");
        assert_eq!(w.containers[0].line, 5);
    }

    #[test]
    fn table_of_bad_input() {
        let cases: &[(&str, &str)] = &[
            (
                "apiVersion: score.dev/v1b2\nmetadata: {name: web}\ncontainers: {main: {image: x}}\n",
                "score.yaml:1: apiVersion: \"score.dev/v1b2\" is not a Score version",
            ),
            ("apiVersion: score.dev/v1b1\ncontainers: {main: {image: x}}\n", "`metadata` is required"),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: Web_1}\ncontainers: {main: {image: x}}\n",
                "score.yaml:2: metadata.name: the workload name \"Web_1\"",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {}\n",
                "containers: needs at least one container",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    imag: x\n",
                "score.yaml:5: containers.main.imag: is not a field of containers.main | did you mean \"image\"?",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainer: {}\n",
                "score.yaml:3: container: is not a field of a Score workload | did you mean \"containers\"?",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    variables:\n      PORT: 8080\n",
                "score.yaml:7: containers.main.variables.PORT: must be a string, not integer | quote the value",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    resources: {limits: {cpu: 2}}\n",
                "containers.main.resources.limits.cpu: must be a string | quote it",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    resources: {limits: {memory: 1GB}}\n",
                "\"1GB\" is not a memory quantity",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\nservice:\n  ports:\n    www: {port: 70000}\ncontainers: {main: {image: x}}\n",
                "score.yaml:5: service.ports.www.port: 70000 is not a port",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\nservice:\n  ports:\n    www: {port: 80, protocol: SCTP}\ncontainers: {main: {image: x}}\n",
                "\"SCTP\" is not TCP or UDP",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    files:\n      /etc/a: {content: a, source: b}\n",
                "has content and source (only one is allowed)",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    files:\n      /etc/a: {content: a, mode: \"0999\"}\n",
                "\"0999\" is not an octal mode",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    files:\n      /etc/a: {target: /x, content: a}\n",
                "is only allowed in the deprecated array form",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    files:\n      etc/a: {content: a}\n",
                "is not an absolute path",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  main:\n    image: x\n    livenessProbe: {httpGet: {port: 8080}}\n",
                "`path` is required",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {main: {image: x}}\nresources:\n  db: {type: \"post gres\"}\n",
                "score.yaml:5: resources.db.type: \"post gres\" is not a resource type",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {main: {image: x}}\nresources:\n  db: {type: postgres, id: Shared}\n",
                "\"Shared\" is not a resource id",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {main: {image: x}}\nresources:\n  db: {type: postgres, params: 3}\n",
                "resources.db.params: must be an object",
            ),
            (
                "apiVersion: score.dev/v1b1\nmetadata: {name: web, annotations: {\"-bad\": x}}\ncontainers: {main: {image: x}}\n",
                "metadata.annotations.-bad: is not a valid key",
            ),
            ("a: [1\n", "not valid YAML"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "for {text:?}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn patterns() {
        for ok in ["125M", "1Gi", "1.5Gi", "0.5G", "1024"] {
            assert!(memory_ok(ok), "{ok}");
        }
        for bad in ["0", "01M", "1GB", "1.Gi", "", "Mi"] {
            assert!(!memory_ok(bad), "{bad}");
        }
        for ok in ["2", "125m", "0.24", "1000m"] {
            assert!(cpu_ok(ok), "{ok}");
        }
        for bad in ["", "m", ".5", "1.5m", "1e3"] {
            assert!(!cpu_ok(bad), "{bad}");
        }
        assert!(annotation_key_ok("prefix.com/Another-Key_Annotation.2"));
        assert!(annotation_key_ok("Default-Annotation"));
        assert!(!annotation_key_ok("a"));
        assert!(!annotation_key_ok("Pre.fix/x1"));
        assert!(id_ok("shared-type-three") && id_ok("a.b-c") && !id_ok("a..b") && !id_ok("A1"));
    }
}
