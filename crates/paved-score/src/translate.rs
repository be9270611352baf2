//! A Score workload → the golden path's [`DeployRequest`] (with its [`Workload`]) and the
//! databases it needs.
//!
//! | Score resource type | what paved does | outputs |
//! |---|---|---|
//! | `postgres`, `mysql`, `mongodb` | a [`DatabaseRequest`] through paved's database path | `host`, `port`, `name`, `database`, `engine`, `credentials_path` (references into the connection info), `username`, `password` (a Secret the Vault Secrets Operator keeps filled with dynamic credentials) |
//! | `dns` | the app's own host | `host` |
//! | `route` | an Ingress path (`params.path`, `params.port`; `params.host` must be the app's host) | — |
//! | `service` (or `service-port`) | the in-cluster URL of another workload (`params.workload`, default the resource's name), NetworkPolicy egress to it | `name`, `host`, `hostname`, `port`, `url` |
//! | `volume` | a PersistentVolumeClaim (`params.size`, `storage_class`, `access_mode`) | `name`, `source` |
//! | anything else | a `[[provisioners]]` entry of `paved.toml` | what the entry declares |

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path};

use paved_core::config::DatabaseServerConfig;
use paved_core::provisioner::ProvisionerConfig;
use paved_core::request::ManifestFile;
use paved_core::secret::SecretBinding;
use paved_core::workload::{
    ContainerSettings, Dependency, EnvValue, EnvVar, FileData, FileMount, HttpGet, ProbeSpec, RoutePath, ServicePort,
    Sidecar, VolumeClaim, VolumeMount, Workload,
};
use paved_core::{
    AppName, CpuQuantity, DatabaseRequest, DeployRequest, Error, ImageRef, MemoryQuantity, OrgConfig, ResolvedApp,
    Result, SecretRef, Team,
};

use crate::placeholder::{self, Resolved, Segment, Unresolved};
use crate::spec::{FileContent, Probe, ScoreContainer, ScoreResource, ScoreWorkload};

/// The largest file mounted from `files` (a ConfigMap holds at most 1 MiB in all).
pub const MAX_FILE: u64 = 512 * 1024;

/// What deploying a Score workload takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScoreDeploy {
    /// The deploy request (flags already applied over the file).
    pub request: DeployRequest,
    /// The databases its resources need, provisioned before the deploy applies.
    pub databases: Vec<DatabaseRequest>,
}

/// What the command line adds to a Score file (flags override the file).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ScoreFlags {
    /// `--image`: the app container's image (required when the file says `image: .`).
    pub image: Option<String>,
    /// `--team`.
    pub team: Option<Team>,
    /// `--replicas`.
    pub replicas: Option<u32>,
}

impl ScoreFlags {
    /// No flags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `--image`.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Sets `--team`.
    pub fn team(mut self, team: Team) -> Self {
        self.team = Some(team);
        self
    }

    /// Sets `--replicas`.
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = Some(replicas);
        self
    }
}

/// The outputs of one resource, by output name.
#[derive(Debug, Clone, Default)]
struct Outputs {
    /// `${resources.NAME}` alone (a volume's claim name).
    itself: Option<String>,
    values: BTreeMap<String, Resolved>,
}

struct Cx<'a> {
    score: &'a ScoreWorkload,
    config: &'a OrgConfig,
    app: ResolvedApp,
    outputs: BTreeMap<String, Outputs>,
    /// Secret bindings of the request, by env name.
    bindings: Vec<SecretBinding>,
    /// The claims of the workload's volume resources.
    claims: Vec<String>,
}

impl Cx<'_> {
    fn err(&self, line: usize, field: &str, message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Manifest {
            path: self.score.file.clone(),
            line: Some(line),
            message: format!("{field}: {}", message.into()),
            hint: Some(hint.into()),
        }
    }

    fn unresolved(&self, line: usize, field: &str, u: Unresolved) -> Error {
        self.err(line, field, u.message, u.hint)
    }

    /// Resolves `${metadata.…}` and `${resources.…}`.
    fn resolve(&self, parts: &[String]) -> std::result::Result<Resolved, Unresolved> {
        match parts.first().map(String::as_str) {
            Some("metadata") => {
                placeholder::lookup_json(&self.score.metadata, &parts[1..], "metadata").map(Resolved::Text)
            }
            Some("resources") => {
                let Some(name) = parts.get(1) else {
                    return Err(Unresolved {
                        message: "${resources} names no resource".into(),
                        hint: "write ${resources.NAME.OUTPUT}".into(),
                    });
                };
                let Some(outputs) = self.outputs.get(name) else {
                    return Err(Unresolved {
                        message: format!("${{resources.{name}}}: the workload has no resource {name:?}"),
                        hint: paved_core::suggest::hint_for(name, self.outputs.keys().map(String::as_str)),
                    });
                };
                match parts.get(2..).unwrap_or_default() {
                    [] => outputs.itself.clone().map(Resolved::Text).ok_or_else(|| Unresolved {
                        message: format!("${{resources.{name}}} needs an output"),
                        hint: format!(
                            "name one of its outputs: {}",
                            outputs
                                .values
                                .keys()
                                .map(|k| format!("${{resources.{name}.{k}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }),
                    [output] => outputs.values.get(output).cloned().ok_or_else(|| Unresolved {
                        message: format!("resource {name:?} has no output {output:?}"),
                        hint: paved_core::suggest::hint_for(output, outputs.values.keys().map(String::as_str)),
                    }),
                    more => Err(Unresolved {
                        message: format!("${{resources.{name}.{}}} goes deeper than an output", more.join(".")),
                        hint: format!("write ${{resources.{name}.{}}}", more[0]),
                    }),
                }
            }
            _ => Err(Unresolved {
                message: format!("${{{}}} is neither metadata nor a resource", parts.join(".")),
                hint: "placeholders start with metadata. or resources.".into(),
            }),
        }
    }

    /// Expands a string; secrets become hidden bindings referenced as `$(NAME)`.
    fn expand(&mut self, s: &str, line: usize, field: &str) -> Result<EnvValue> {
        let segments = placeholder::expand(s, |p| self.resolve(p)).map_err(|u| self.unresolved(line, field, u))?;
        if let [Segment::Text(t)] = segments.as_slice() {
            return Ok(EnvValue::Text(t.clone()));
        }
        if let [Segment::Secret(r)] = segments.as_slice() {
            return Ok(EnvValue::Secret(self.binding_for(r)));
        }
        let mut composed = String::new();
        for s in segments {
            match s {
                // Kubernetes reads `$$` as `$` and expands `$(X)`: text doubles every `$`.
                Segment::Text(t) => composed.push_str(&t.replace('$', "$$")),
                Segment::Secret(r) => {
                    let name = self.binding_for(&r);
                    composed.push_str(&format!("$({name})"));
                }
            }
        }
        Ok(EnvValue::Composed(composed))
    }

    /// Expands a string that must stay plain text (files, probe paths).
    fn expand_text(&self, s: &str, line: usize, field: &str, why: &str) -> Result<String> {
        let segments = placeholder::expand(s, |p| self.resolve(p)).map_err(|u| self.unresolved(line, field, u))?;
        match segments.as_slice() {
            [Segment::Text(t)] => Ok(t.clone()),
            _ => Err(self.err(
                line,
                field,
                format!("uses a secret output, which would be written into {why}"),
                "use the secret in a variable instead (it stays a reference), or set noExpand: true",
            )),
        }
    }

    /// The hidden binding that carries `r` (one per reference).
    fn binding_for(&mut self, r: &SecretRef) -> String {
        if let Some(b) = self.bindings.iter().find(|b| &b.reference == r) {
            return b.env.clone();
        }
        let base: String = format!("PAVED_SECRET_{}", self.bindings.len() + 1);
        self.bindings.push(SecretBinding { env: base.clone(), reference: r.clone() });
        base
    }
}

/// The name of an object made for a resource: `{app}-{id or resource name}`, dots as dashes,
/// a DNS label of at most 63 characters.
fn instance_name(cx: &Cx<'_>, r: &ScoreResource) -> Result<String> {
    let name = format!("{}-{}", cx.app.app, r.id.as_deref().unwrap_or(&r.name).replace('.', "-"));
    AppName::new(&name).map_err(|_| {
        cx.err(
            r.line,
            &format!("resources.{}", r.name),
            format!("{name:?} (the app and the resource's id or name) is longer than a DNS label's 63 characters"),
            "give the resource a shorter name or id",
        )
    })?;
    Ok(name)
}

fn secret(s: &str) -> Option<SecretRef> {
    ["vault://", "aws-sm://", "k8s://"].iter().any(|p| s.starts_with(p)).then(|| s.parse().ok()).flatten()
}

fn param<'p>(r: &'p ScoreResource, key: &str) -> Option<&'p serde_json::Value> {
    r.params.get(key)
}

/// `params.port`: a Service port, 80 when absent.
fn port_param(cx: &Cx<'_>, r: &ScoreResource, hint: &str) -> Result<u16> {
    match param(r, "port") {
        None => Ok(80),
        Some(p) => p.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0).ok_or_else(|| {
            cx.err(r.line, &format!("resources.{}.params.port", r.name), format!("{p} is not a port"), hint)
        }),
    }
}

fn param_str(cx: &Cx<'_>, r: &ScoreResource, key: &str) -> Result<Option<String>> {
    match param(r, key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(cx.err(
            r.line,
            &format!("resources.{}.params.{key}", r.name),
            format!("must be a string, not {other}"),
            "give a string",
        )),
    }
}

/// Turns a validated Score workload into a deploy request for `environment`.
///
/// Everything is checked before anything exists: resource types without a provisioner,
/// unknown placeholders, secrets that would land in a file, `files[].source` outside the
/// Score file's directory.
pub fn translate(
    score: &ScoreWorkload,
    config: &OrgConfig,
    environment: &str,
    flags: &ScoreFlags,
) -> Result<ScoreDeploy> {
    let main_index = score.containers.iter().position(|c| c.name == score.name).unwrap_or(0);
    let main = &score.containers[main_index];
    let image = match (&flags.image, main.image.as_str()) {
        (Some(i), _) => i.clone(),
        (None, ".") => {
            return Err(Error::Manifest {
                path: score.file.clone(),
                line: Some(main.line),
                message: format!("containers.{}.image: `.` means the image given on the command line", main.name),
                hint: Some("set the `image` of `ScoreFlags`, e.g. ghcr.io/company/my-service:v1.2.3".into()),
            });
        }
        (None, i) => i.to_string(),
    };
    let mut request = DeployRequest::new(&score.name, &image, environment)?;
    request.replicas = flags.replicas;
    request.team = flags.team.clone().or_else(|| config.apps.get(&score.name).and_then(|a| a.team.clone()));
    // The app as the golden path resolves it: team, namespace, host.
    let app = ResolvedApp::resolve(config, &request)?;
    let mut cx = Cx { score, config, app, outputs: BTreeMap::new(), bindings: Vec::new(), claims: Vec::new() };
    let mut workload = Workload::new(format!("score:{}", score.file.display()));
    let mut databases = Vec::new();
    let db_resources =
        score.resources.iter().filter(|r| matches!(r.kind.as_str(), "postgres" | "mysql" | "mongodb")).count();
    for r in &score.resources {
        let outputs = match r.kind.as_str() {
            "postgres" | "mysql" | "mongodb" => {
                let (request, outputs, object) = database(&cx, r, db_resources)?;
                databases.push(request);
                workload.objects.extend(object);
                outputs
            }
            "dns" => {
                Outputs { itself: None, values: [("host".to_string(), Resolved::Text(cx.app.host.clone()))].into() }
            }
            "route" => {
                let path = param_str(&cx, r, "path")?.unwrap_or_else(|| "/".into());
                // What the API server takes as a Prefix path, and nothing an ingress
                // controller's configuration could read as syntax.
                let clean = path.starts_with('/')
                    && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))
                    && !path.contains("//")
                    && !path.split('/').any(|seg| seg == "." || seg == "..");
                if !clean {
                    return Err(cx.err(
                        r.line,
                        &format!("resources.{}.params.path", r.name),
                        format!("{path:?} is not a plain absolute path"),
                        "use /, letters, digits, '.', '_', '~' and '-', e.g. path: /api",
                    ));
                }
                let port = port_param(&cx, r, "give the Service port, e.g. 80")?;
                if let Some(host) = param_str(&cx, r, "host")? {
                    let host =
                        cx.expand_text(&host, r.line, &format!("resources.{}.params.host", r.name), "an Ingress")?;
                    if host != cx.app.host {
                        return Err(cx.err(
                            r.line,
                            &format!("resources.{}.params.host", r.name),
                            format!("{host:?} is not this app's host {:?}", cx.app.host),
                            "leave host out, or use ${resources.dns.host} with a dns resource: another app's host cannot be claimed",
                        ));
                    }
                }
                workload.routes.push(RoutePath::new(path, port));
                Outputs::default()
            }
            "service" | "service-port" => {
                let target = param_str(&cx, r, "workload")?.unwrap_or_else(|| r.name.clone());
                let target_app = AppName::new(&target).map_err(|e| {
                    cx.err(
                        r.line,
                        &format!("resources.{}.params.workload", r.name),
                        e.to_string(),
                        "name the other workload (its metadata.name)",
                    )
                })?;
                let team = config
                    .apps
                    .get(target_app.as_str())
                    .and_then(|a| a.team.clone())
                    .unwrap_or_else(|| cx.app.team.clone());
                let namespace = config
                    .app
                    .namespace
                    .replace("{app}", target_app.as_str())
                    .replace("{team}", team.as_str())
                    .replace("{env}", &cx.app.environment.name);
                let port = port_param(&cx, r, "give the other workload's Service port")?;
                let host = format!("{target_app}.{namespace}.svc.cluster.local");
                let url = if port == 80 { format!("http://{host}") } else { format!("http://{host}:{port}") };
                workload.dependencies.push(Dependency::new(target_app.as_str(), namespace, None));
                let t = |s: String| Resolved::Text(s);
                Outputs {
                    itself: None,
                    values: [
                        ("name".to_string(), t(target_app.to_string())),
                        ("host".to_string(), t(host.clone())),
                        ("hostname".to_string(), t(host)),
                        ("port".to_string(), t(port.to_string())),
                        ("url".to_string(), t(url)),
                    ]
                    .into(),
                }
            }
            "volume" => {
                let claim = instance_name(&cx, r)?;
                cx.claims.push(claim.clone());
                let size = param_str(&cx, r, "size")?.unwrap_or_else(|| "1Gi".into());
                MemoryQuantity::new(&size).map_err(|e| {
                    cx.err(r.line, &format!("resources.{}.params.size", r.name), e.to_string(), "e.g. size: 10Gi")
                })?;
                let access = param_str(&cx, r, "access_mode")?.unwrap_or_else(|| "ReadWriteOnce".into());
                const MODES: [&str; 4] = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];
                if !MODES.contains(&access.as_str()) {
                    return Err(cx.err(
                        r.line,
                        &format!("resources.{}.params.access_mode", r.name),
                        format!("{access:?} is not an access mode"),
                        paved_core::suggest::hint_for(&access, MODES),
                    ));
                }
                workload.claims.push(VolumeClaim::new(&claim, size, param_str(&cx, r, "storage_class")?, access));
                Outputs {
                    itself: Some(claim.clone()),
                    values: [
                        ("name".to_string(), Resolved::Text(claim.clone())),
                        ("source".to_string(), Resolved::Text(claim)),
                    ]
                    .into(),
                }
            }
            _ => {
                let (outputs, objects) = provisioned(&cx, r)?;
                workload.objects.extend(objects);
                outputs
            }
        };
        cx.outputs.insert(r.name.clone(), outputs);
    }
    // Annotations, labels and ports.
    workload.annotations = score.annotations.clone();
    workload.labels = score.labels.clone();
    workload.ports =
        score.ports.iter().map(|p| ServicePort::new(&p.name, p.port, p.target_port, &p.protocol)).collect();
    for route in &workload.routes {
        if !workload.ports.is_empty() && !workload.ports.iter().any(|p| p.port == route.port) {
            return Err(Error::Manifest {
                path: score.file.clone(),
                line: None,
                message: format!("a route goes to port {}, which service.ports does not publish", route.port),
                hint: Some(format!(
                    "use one of {} as the route's port",
                    workload.ports.iter().map(|p| p.port.to_string()).collect::<Vec<_>>().join(", ")
                )),
            });
        }
    }
    // Containers.
    let dir = score.file.parent().map(Path::to_path_buf).unwrap_or_default();
    for (i, c) in score.containers.iter().enumerate() {
        let settings = container(&mut cx, c, &dir, i == main_index)?;
        if i == main_index {
            let [cpu_request, memory_request] = [c.requests.cpu.clone(), c.requests.memory.clone()];
            let [cpu_limit, memory_limit] = [c.limits.cpu.clone(), c.limits.memory.clone()];
            let o = &mut request.overrides;
            if let Some(q) = cpu_request {
                o.cpu_request = Some(CpuQuantity::new(&q)?);
            }
            if let Some(q) = cpu_limit {
                o.cpu_limit = Some(CpuQuantity::new(&q)?);
            }
            if let Some(q) = memory_request {
                o.memory_request = Some(MemoryQuantity::new(&q)?);
            }
            if let Some(q) = memory_limit {
                o.memory_limit = Some(MemoryQuantity::new(&q)?);
            }
            workload.main = settings;
        } else {
            let image = if c.image == "." { image.clone() } else { c.image.clone() };
            let image = ImageRef::new(&image).map_err(|e| {
                cx.err(
                    c.line,
                    &format!("containers.{}.image", c.name),
                    e.to_string(),
                    e.hint().unwrap_or("give a full image reference").to_string(),
                )
            })?;
            // The environment's defaults fill what the file leaves out; a limit below its
            // request would be refused by the API server at apply.
            let env = &cx.app.environment.config.resources;
            let at = format!("containers.{}.resources", c.name);
            let cpu_request =
                c.requests.cpu.as_deref().map(CpuQuantity::new).transpose()?.unwrap_or(env.cpu_request.clone());
            let cpu_limit = c.limits.cpu.as_deref().map(CpuQuantity::new).transpose()?.or(env.cpu_limit.clone());
            if let Some(limit) = cpu_limit.filter(|l| l.millis() < cpu_request.millis()) {
                return Err(cx.err(
                    c.line,
                    &at,
                    format!("the CPU limit {} is below the request {}", limit.as_str(), cpu_request.as_str()),
                    "raise limits.cpu to at least the request",
                ));
            }
            let memory_request = c
                .requests
                .memory
                .as_deref()
                .map(MemoryQuantity::new)
                .transpose()?
                .unwrap_or(env.memory_request.clone());
            let memory_limit =
                c.limits.memory.as_deref().map(MemoryQuantity::new).transpose()?.unwrap_or(env.memory_limit.clone());
            if memory_limit.bytes() < memory_request.bytes() {
                return Err(cx.err(
                    c.line,
                    &at,
                    format!(
                        "the memory limit {} is below the request {}",
                        memory_limit.as_str(),
                        memory_request.as_str()
                    ),
                    "raise limits.memory to at least the request",
                ));
            }
            workload.sidecars.push(Sidecar::new(
                settings,
                image,
                [c.requests.cpu.clone(), c.limits.cpu.clone(), c.requests.memory.clone(), c.limits.memory.clone()],
            ));
        }
    }
    // Hidden bindings no value uses any more (a whole-secret variable took its own name).
    let mut used: Vec<String> = Vec::new();
    let all = std::iter::once(&workload.main).chain(workload.sidecars.iter().map(|s| &s.settings));
    for s in all {
        for v in &s.env {
            match &v.value {
                EnvValue::Secret(n) => used.push(n.clone()),
                EnvValue::Composed(t) => used.push(t.clone()),
                _ => {}
            }
        }
        used.extend(s.command.iter().chain(&s.args).flatten().cloned());
    }
    cx.bindings.retain(|b| {
        !b.env.starts_with("PAVED_SECRET_") || used.iter().any(|u| *u == b.env || u.contains(&format!("$({})", b.env)))
    });
    request.secrets = cx.bindings;
    request.workload = Some(workload);
    Ok(ScoreDeploy { request, databases })
}

fn container(cx: &mut Cx<'_>, c: &ScoreContainer, dir: &Path, main: bool) -> Result<ContainerSettings> {
    let field = format!("containers.{}", c.name);
    let mut s = ContainerSettings::named(&c.name);
    let expand_all = |cx: &mut Cx<'_>, list: &Option<Vec<String>>, what: &str| -> Result<Option<Vec<String>>> {
        list.as_ref()
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        Ok(match cx.expand(a, c.line, &format!("{field}.{what}[{i}]"))? {
                            EnvValue::Text(t) => t.replace('$', "$$"),
                            EnvValue::Composed(t) => t,
                            EnvValue::Secret(name) => format!("$({name})"),
                            _ => unreachable!("expand gives text, composed or secret"),
                        })
                    })
                    .collect()
            })
            .transpose()
    };
    s.command = expand_all(cx, &c.command, "command")?;
    s.args = expand_all(cx, &c.args, "args")?;
    for (name, value, line) in &c.variables {
        let at = format!("{field}.variables.{name}");
        let mut v = cx.expand(value, *line, &at)?;
        // The app container's whole-secret variables are bindings of their own name, so they
        // reach the app exactly as `--secret NAME=REF` would in every secret mode.
        if let (true, EnvValue::Secret(hidden)) = (main, &v) {
            let reference = cx.bindings.iter().find(|b| &b.env == hidden).map(|b| b.reference.clone()).expect("bound");
            if cx.bindings.iter().any(|b| b.env == *name && b.reference != reference) {
                return Err(cx.err(
                    *line,
                    &at,
                    "is bound to two different secrets",
                    "give each secret variable its own name",
                ));
            }
            cx.bindings.retain(|b| b.env != *name);
            cx.bindings.push(SecretBinding { env: name.clone(), reference });
            v = EnvValue::Secret(name.clone());
        }
        s.env.push(EnvVar::new(name, v));
    }
    for f in &c.files {
        let at = format!("{field}.files[{:?}]", f.target);
        let data = match &f.content {
            FileContent::Binary(b) => FileData::Base64(b.clone()),
            FileContent::Inline(t) if f.no_expand => FileData::Text(t.clone()),
            FileContent::Inline(t) => FileData::Text(cx.expand_text(t, f.line, &at, "a ConfigMap")?),
            FileContent::Source(src) => {
                let text = read_source(cx, dir, src, f.line, &at)?;
                if f.no_expand {
                    FileData::Text(text)
                } else {
                    FileData::Text(cx.expand_text(&text, f.line, &at, "a ConfigMap")?)
                }
            }
        };
        s.files.push(FileMount::new(&f.target, f.mode, data));
    }
    for v in &c.volumes {
        let at = format!("{field}.volumes[{:?}]", v.target);
        let claim = cx.expand_text(&v.source, v.line, &at, "a volume name")?;
        if !cx.claims.contains(&claim) {
            return Err(cx.err(
                v.line,
                &format!("{at}.source"),
                format!("{claim:?} is not a volume resource of this workload"),
                "declare a resource of type volume and use source: ${resources.NAME}",
            ));
        }
        if let Some(p) = &v.path
            && (p.starts_with('/') || Path::new(p).components().any(|c| c == PathPart::ParentDir))
        {
            return Err(cx.err(
                v.line,
                &format!("{at}.path"),
                format!("{p:?} leaves the volume"),
                "give a relative path inside the volume, e.g. data",
            ));
        }
        s.mounts.push(VolumeMount::new(claim, &v.target, v.path.clone(), v.read_only));
    }
    let probe = |cx: &Cx<'_>, p: &Option<Probe>, what: &str| -> Result<Option<ProbeSpec>> {
        p.as_ref()
            .map(|p| {
                let http = p
                    .http
                    .as_ref()
                    .map(|h| -> Result<HttpGet> {
                        let path =
                            cx.expand_text(&h.path, c.line, &format!("{field}.{what}.httpGet.path"), "a probe")?;
                        // Score: `host` "is equivalent to a Host HTTP header". Kubernetes' own
                        // `host` would send the kubelet to another machine (and Pod Security
                        // forbids it), so it becomes that header.
                        let mut headers = h.headers.clone();
                        if let Some(host) = &h.host
                            && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"))
                        {
                            headers.push(("Host".to_string(), host.clone()));
                        }
                        Ok(HttpGet::new(h.port, path, h.scheme.clone(), None, headers))
                    })
                    .transpose()?;
                Ok(ProbeSpec::new(http, p.exec.clone()))
            })
            .transpose()
    };
    s.liveness = probe(cx, &c.liveness, "livenessProbe")?;
    s.readiness = probe(cx, &c.readiness, "readinessProbe")?;
    Ok(s)
}

/// Reads `files[].source`: relative to the Score file, inside its directory, no links, bounded.
fn read_source(cx: &Cx<'_>, dir: &Path, src: &str, line: usize, field: &str) -> Result<String> {
    let rel = Path::new(src);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, PathPart::ParentDir | PathPart::Prefix(_))) {
        return Err(cx.err(
            line,
            &format!("{field}.source"),
            format!("{src:?} is outside the Score file's directory"),
            "give a path relative to the Score file, inside its directory",
        ));
    }
    let path = dir.join(rel);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| {
        cx.err(
            line,
            &format!("{field}.source"),
            format!("cannot read {}: {e}", path.display()),
            "check the path (relative to the Score file)",
        )
    })?;
    if meta.file_type().is_symlink() || !meta.is_file() {
        return Err(cx.err(
            line,
            &format!("{field}.source"),
            format!("{} is not a regular file", path.display()),
            "give a regular file, not a link or directory",
        ));
    }
    // A linked directory on the way (`conf -> ~/.kube`) would lead out of the repository.
    let root = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let inside = match (std::fs::canonicalize(&path), std::fs::canonicalize(root)) {
        (Ok(file), Ok(root)) => file.starts_with(root),
        _ => false,
    };
    if !inside {
        return Err(cx.err(
            line,
            &format!("{field}.source"),
            format!("{src:?} leads outside the Score file's directory through a link"),
            "give a path relative to the Score file, inside its directory, without links",
        ));
    }
    if meta.len() > MAX_FILE {
        return Err(cx.err(
            line,
            &format!("{field}.source"),
            format!("{} is {} bytes; the limit is {MAX_FILE}", path.display(), meta.len()),
            "mount large content from a volume or bake it into the image",
        ));
    }
    std::fs::read_to_string(&path).map_err(|e| {
        cx.err(
            line,
            &format!("{field}.source"),
            format!("cannot read {}: {e}", path.display()),
            "give a UTF-8 text file, or use binaryContent",
        )
    })
}

/// A database resource: the request, its outputs and (Vault) the dynamic-credentials object.
fn database(
    cx: &Cx<'_>,
    r: &ScoreResource,
    db_resources: usize,
) -> Result<(DatabaseRequest, Outputs, Option<ManifestFile>)> {
    let app = &cx.app;
    let service = match (&r.id, db_resources) {
        (Some(id), _) => id.replace('.', "-"),
        (None, 1) => app.app.to_string(),
        (None, _) => format!("{}-{}", app.app, r.name.replace('.', "-")),
    };
    let size = param_str(cx, r, "size")?
        .or_else(|| r.class.clone().filter(|c| c != "default"))
        .unwrap_or_else(|| "small".into());
    let env = &app.environment.name;
    let request = DatabaseRequest::new(app.team.as_str(), &service, &r.kind, env, &size).map_err(|e| {
        cx.err(r.line, &format!("resources.{}", r.name), e.to_string(), e.hint().unwrap_or("").to_string())
    })?;
    let servers: Vec<(&String, &DatabaseServerConfig)> = cx
        .config
        .databases
        .iter()
        .filter(|(_, s)| {
            s.engine == request.engine && (s.environments.is_empty() || s.environments.iter().any(|e| e == env))
        })
        .collect();
    let Some((_, server)) = servers.first() else {
        return Err(cx.err(
            r.line,
            &format!("resources.{}", r.name),
            format!("no database server of paved.toml runs {} for {env}", r.kind),
            format!("register one:\n\n[databases.main]\nbackend = \"vault\"\nengine = \"{}\"\nenvironments = [\"{env}\"]\nhost = \"db.internal\"\n…", r.kind),
        ));
    };
    let path = paved_core::database::connection_info_path(&request);
    let store = server.connection_info.clone().unwrap_or_else(|| {
        if server.backend.starts_with("aws") && cx.config.vault.is_none() { "aws-sm".into() } else { "vault".into() }
    });
    let reference = |key: &str| -> Resolved {
        let r = match store.as_str() {
            "aws-sm" => format!("aws-sm://{path}#{key}"),
            _ => format!("vault://secret/{path}#{key}"),
        };
        Resolved::Secret(r.parse().expect("a well-formed reference"))
    };
    let mut values: BTreeMap<String, Resolved> = BTreeMap::new();
    for (output, key) in [
        ("host", "host"),
        ("port", "port"),
        ("name", "database"),
        ("database", "database"),
        ("engine", "engine"),
        ("credentials_path", "credentials_path"),
    ] {
        values.insert(output.into(), reference(key));
    }
    let mut object = None;
    if server.backend == "vault" {
        // Dynamic credentials: the Vault Secrets Operator keeps a Secret filled and restarts
        // the Deployment when they rotate; the app reads them through references only.
        let secret = format!("{}-{}-credentials", app.app, r.name.replace('.', "-"));
        let mount = server.settings.get("mount").and_then(|m| m.as_str()).unwrap_or("database");
        let role = format!("{}_{}_{}", request.team, request.service, request.environment);
        let text = paved_core::yaml::to_string(&serde_json::json!({
            "apiVersion": "secrets.hashicorp.com/v1beta1",
            "kind": "VaultDynamicSecret",
            "metadata": { "name": secret },
            "spec": {
                "mount": mount,
                "path": format!("creds/{role}"),
                "destination": { "name": secret, "create": true },
                "rolloutRestartTargets": [{ "kind": "Deployment", "name": app.app.as_str() }],
            },
        }));
        object = Some(ManifestFile::parse(format!("{}#resources.{}", cx.score.file.display(), r.name), &text)?);
        for key in ["username", "password"] {
            values.insert(
                key.into(),
                Resolved::Secret(format!("k8s://{secret}#{key}").parse().expect("a well-formed reference")),
            );
        }
    } else {
        values.insert("username".into(), reference("username"));
        // RDS keeps the password in its own managed secret (`credentials_path`).
    }
    Ok((request, Outputs { itself: None, values }, object))
}

/// Any other type: the `[[provisioners]]` entry that serves it.
fn provisioned(cx: &Cx<'_>, r: &ScoreResource) -> Result<(Outputs, Option<ManifestFile>)> {
    let env = &cx.app.environment.name;
    let Some(p) = cx.config.provisioners.iter().find(|p| p.serves(&r.kind, r.class.as_deref(), env)) else {
        let other_envs: Vec<&str> = cx
            .config
            .provisioners
            .iter()
            .filter(|p| p.kind == r.kind)
            .flat_map(|p| p.environments.iter().map(String::as_str))
            .collect();
        let known: Vec<&str> = ["postgres", "mysql", "mongodb", "dns", "route", "service", "volume"]
            .into_iter()
            .chain(cx.config.provisioners.iter().map(|p| p.kind.as_str()))
            .collect();
        let did_you_mean = paved_core::suggest::hint_for(&r.kind, known.iter().copied());
        let did_you_mean =
            if did_you_mean.starts_with("did you mean") { format!("{did_you_mean} ") } else { String::new() };
        return Err(cx.err(
            r.line,
            &format!("resources.{}.type", r.name),
            if other_envs.is_empty() {
                format!("no provisioner for resource type {:?}", r.kind)
            } else {
                format!("no provisioner for resource type {:?} in {env} (only in {})", r.kind, other_envs.join(", "))
            },
            format!(
                "{did_you_mean}paved provisions postgres, mysql, mongodb, dns, route, service and volume itself; add a provisioner to paved.toml:\n\n[[provisioners]]\ntype = \"{}\"\nenvironments = [\"{env}\"]\noutputs = {{ host = \"${{name}}.${{namespace}}.svc.cluster.local\" }}\nobjects = \"\"\"\n…\n\"\"\"",
                r.kind
            ),
        ));
    };
    let name = instance_name(cx, r)?;
    let fill = |s: &str, at: &str| -> Result<String> {
        let segments =
            placeholder::expand(s, |parts| template_value(cx, r, &name, parts)).map_err(|u| Error::Config {
                path: cx.config.source.clone().unwrap_or_else(|| "paved.toml".into()),
                line: None,
                message: format!("[[provisioners]] type = {:?}, {at}: {}", p.kind, u.message),
                hint: Some(u.hint),
            })?;
        Ok(segments
            .into_iter()
            .map(|s| match s {
                Segment::Text(t) => t,
                Segment::Secret(r) => r.to_string(),
            })
            .collect())
    };
    let mut values = BTreeMap::new();
    for (k, v) in &p.outputs {
        let v = fill(v, &format!("outputs.{k}"))?;
        values.insert(k.clone(), secret(&v).map_or(Resolved::Text(v), Resolved::Secret));
    }
    let objects = match &p.objects {
        None => None,
        Some(template) => Some(objects(cx, p, template, &fill)?),
    };
    Ok((Outputs { itself: Some(name.clone()), values }, objects))
}

/// Parses the template first, then fills placeholders inside string values only.
fn objects(
    cx: &Cx<'_>,
    p: &ProvisionerConfig,
    template: &str,
    fill: &dyn Fn(&str, &str) -> Result<String>,
) -> Result<ManifestFile> {
    let origin = format!("paved.toml [[provisioners]] type = {:?}", p.kind);
    let parsed = ManifestFile::parse(&origin, template)?;
    fn walk(v: &mut serde_json::Value, fill: &dyn Fn(&str, &str) -> Result<String>, at: &str) -> Result<()> {
        match v {
            serde_json::Value::String(s) => *s = fill(s, at)?,
            serde_json::Value::Array(a) => a.iter_mut().try_for_each(|v| walk(v, fill, at))?,
            serde_json::Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut v) in old {
                    walk(&mut v, fill, at)?;
                    m.insert(fill(&k, at)?, v);
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut text = String::new();
    for doc in &parsed.documents {
        let mut v = doc.value.clone();
        walk(&mut v, fill, "objects")?;
        text.push_str("---\n");
        text.push_str(&paved_core::yaml::to_string(&v));
    }
    let _ = cx;
    ManifestFile::parse(origin, &text)
}

fn template_value(
    cx: &Cx<'_>,
    r: &ScoreResource,
    name: &str,
    parts: &[String],
) -> std::result::Result<Resolved, Unresolved> {
    let app = &cx.app;
    let text = |s: &str| Ok(Resolved::Text(s.to_string()));
    match parts {
        [p] if p == "name" => text(name),
        [p] if p == "resource" => text(&r.name),
        [p] if p == "app" => text(app.app.as_str()),
        [p] if p == "team" => text(app.team.as_str()),
        [p] if p == "env" => text(&app.environment.name),
        [p] if p == "namespace" => text(&app.namespace),
        [p] if p == "class" => text(r.class.as_deref().unwrap_or("default")),
        [p, rest @ ..] if p == "params" => {
            placeholder::lookup_json(&serde_json::Value::Object(r.params.clone()), rest, "params").map(Resolved::Text)
        }
        _ => Err(Unresolved {
            message: format!("${{{}}} is not a provisioner placeholder", parts.join(".")),
            hint: "use ${name}, ${resource}, ${app}, ${team}, ${env}, ${namespace}, ${class} or ${params.KEY}".into(),
        }),
    }
}
