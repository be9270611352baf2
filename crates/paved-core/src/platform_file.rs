//! `.platform.yaml`: what a repository says about its service, at the repository's root.
//!
//! The original design's three lines are a complete file:
//!
//! ```yaml
//! pipeline: nodejs-service            # the pipeline template (`paved pipeline generate`)
//! tests: npm test                     # the test command of the pipeline's test job
//! deploy_to: [staging, production]    # the environments the pipeline deploys to, in order
//! ```
//!
//! Every other key is optional and gives `paved deploy` what it would otherwise take from
//! flags (flags override the file):
//!
//! ```yaml
//! app: checkout                       # default: the name of the repository's directory
//! team: payments
//! replicas: 2
//! resources:
//!   requests: { cpu: 250m, memory: 256Mi }
//!   limits: { cpu: "1", memory: 512Mi }
//! environments:                       # per environment, over the values above
//!   production: { replicas: 3 }
//! secrets:
//!   DB_PASSWORD: vault://secret/payments/db#password
//! databases:
//!   - { engine: postgres, size: small }
//! ```
//!
//! Unknown keys and bad values are [`Error::Manifest`] errors (kind invalid input) that name the
//! file, the line and the field, with a did-you-mean hint:
//!
//! ```
//! use paved_core::platform_file::PlatformFile;
//! let err = PlatformFile::parse(".platform.yaml", "pipeline: nodejs-service\ndeploy_too: [staging]\n").unwrap_err();
//! assert_eq!(err.to_string(), ".platform.yaml:2: unknown field `deploy_too`");
//! assert_eq!(err.hint(), Some(r#"did you mean "deploy_to"? (or remove the key)"#));
//! let file = PlatformFile::parse(".platform.yaml", "pipeline: nodejs-service\ntests: npm test\ndeploy_to: [staging, production]\n").unwrap();
//! assert_eq!(file.deploy_to, ["staging", "production"]);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::OrgConfig;
use crate::error::{Error, Result};
use crate::names::{AppName, Team};
use crate::quantity::{CpuQuantity, MemoryQuantity};
use crate::request::{DatabaseRequest, DbEngine, DbSize};
use crate::secret::SecretBinding;
use crate::suggest;

/// The file name, at a repository's root.
pub const PLATFORM_FILE: &str = ".platform.yaml";

/// The largest `.platform.yaml` read (a few hundred bytes is typical).
const MAX_LEN: usize = 256 * 1024;

/// The most characters of a `tests` command.
const MAX_TESTS_LEN: usize = 1024;

/// A repository's `.platform.yaml`, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformFile {
    /// The pipeline template's name (`nodejs-service`): lowercase letters, digits and `-`.
    pub pipeline: String,
    /// The command the pipeline's test job runs (`npm test`); the template's own when absent.
    pub tests: Option<String>,
    /// The environments the pipeline deploys to, in this order.
    pub deploy_to: Vec<String>,
    /// The app's name; see [`PlatformFile::app_name`] for the default.
    pub app: Option<AppName>,
    /// The owning team (the configuration's default team when absent).
    pub team: Option<Team>,
    /// Replicas in every environment (the environment's default when absent).
    pub replicas: Option<u32>,
    /// Resource requests and limits in every environment.
    pub resources: PlatformResources,
    /// Per-environment values over `replicas` and `resources`, by environment name.
    pub environments: BTreeMap<String, PlatformEnvironment>,
    /// Environment variables from secret stores (`DB_PASSWORD: vault://…`), in name order.
    pub secrets: Vec<SecretBinding>,
    /// The databases the service uses.
    pub databases: Vec<PlatformDatabase>,
    /// The file it was read from.
    pub source: PathBuf,
    /// The text it was parsed from, so that later checks name their line.
    text: String,
}

/// `resources:` (all optional): Kubernetes' shape, `requests` and `limits` of `cpu` and `memory`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformResources {
    /// `requests.cpu`.
    pub cpu_request: Option<CpuQuantity>,
    /// `limits.cpu`.
    pub cpu_limit: Option<CpuQuantity>,
    /// `requests.memory`.
    pub memory_request: Option<MemoryQuantity>,
    /// `limits.memory`.
    pub memory_limit: Option<MemoryQuantity>,
}

impl PlatformResources {
    /// Each value of `over` where it has one, else this one's.
    pub fn merged(&self, over: &PlatformResources) -> PlatformResources {
        PlatformResources {
            cpu_request: over.cpu_request.clone().or_else(|| self.cpu_request.clone()),
            cpu_limit: over.cpu_limit.clone().or_else(|| self.cpu_limit.clone()),
            memory_request: over.memory_request.clone().or_else(|| self.memory_request.clone()),
            memory_limit: over.memory_limit.clone().or_else(|| self.memory_limit.clone()),
        }
    }
}

/// `environments.NAME:` values for one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformEnvironment {
    /// Replicas in this environment.
    pub replicas: Option<u32>,
    /// Resources in this environment, over the file's `resources`.
    pub resources: PlatformResources,
}

/// One of `databases:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformDatabase {
    /// The engine (`postgres`, `mysql`, `mongodb`).
    pub engine: DbEngine,
    /// The size (`small`, `medium`, `large`; default `small`).
    pub size: DbSize,
}

/// What the file holds, as written (strings), before the values are checked.
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        pub(super) pipeline: String,
        #[serde(default)]
        pub(super) tests: Option<String>,
        #[serde(default)]
        pub(super) deploy_to: Vec<String>,
        #[serde(default)]
        pub(super) app: Option<String>,
        #[serde(default)]
        pub(super) team: Option<String>,
        #[serde(default)]
        pub(super) replicas: Option<u32>,
        #[serde(default)]
        pub(super) resources: Option<Resources>,
        #[serde(default)]
        pub(super) environments: BTreeMap<String, Environment>,
        #[serde(default)]
        pub(super) secrets: BTreeMap<String, String>,
        #[serde(default)]
        pub(super) databases: Vec<Database>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Resources {
        #[serde(default)]
        pub(super) requests: Option<Quantities>,
        #[serde(default)]
        pub(super) limits: Option<Quantities>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Quantities {
        #[serde(default)]
        pub(super) cpu: Option<Scalar>,
        #[serde(default)]
        pub(super) memory: Option<String>,
    }

    /// A CPU quantity may be written as a number (`cpu: 1`, `cpu: 0.5`).
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum Scalar {
        Text(String),
        Integer(u64),
        Float(f64),
    }

    impl Scalar {
        pub(super) fn text(&self) -> String {
            match self {
                Scalar::Text(s) => s.clone(),
                Scalar::Integer(n) => n.to_string(),
                Scalar::Float(f) => f.to_string(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Environment {
        #[serde(default)]
        pub(super) replicas: Option<u32>,
        #[serde(default)]
        pub(super) resources: Option<Resources>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Database {
        pub(super) engine: String,
        #[serde(default)]
        pub(super) size: Option<String>,
    }
}

/// `true` for a template name or environment name paved accepts in a pipeline: a DNS label
/// (lowercase letters, digits and `-`, starting with a letter, at most 63 characters).
pub fn is_safe_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl PlatformFile {
    /// The `.platform.yaml` in `dir` or the nearest ancestor, stopping at the root of the git
    /// work tree that holds `dir` (a file above the repository is not the repository's).
    pub fn find(dir: impl AsRef<Path>) -> Option<PathBuf> {
        for d in dir.as_ref().ancestors() {
            let candidate = d.join(PLATFORM_FILE);
            if candidate.is_file() {
                return Some(candidate);
            }
            if d.join(".git").exists() {
                return None;
            }
        }
        None
    }

    /// Reads and checks a file. A missing or unreadable file is [`Error::Manifest`] with a hint.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Manifest {
                path: path.to_path_buf(),
                line: None,
                message: "there is no .platform.yaml here".into(),
                hint: Some(
                    "write one at the repository's root, e.g. `pipeline: nodejs-service`, `tests: npm test`, `deploy_to: [staging, production]`"
                        .into(),
                ),
            },
            _ => Error::unreadable_file(path, &e),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks the text of a file read from `path` (used in messages only).
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Self> {
        let path = path.as_ref();
        let err = |line: Option<usize>, message: String, hint: String| Error::Manifest {
            path: path.to_path_buf(),
            line,
            message,
            hint: Some(hint),
        };
        if text.len() > MAX_LEN {
            return Err(err(
                None,
                format!("is {} bytes, more than the {MAX_LEN} a .platform.yaml may have", text.len()),
                "keep .platform.yaml to the keys paved reads".into(),
            ));
        }
        if text.trim().is_empty() {
            return Err(err(
                None,
                "is empty".into(),
                "write at least `pipeline: nodejs-service` (and `deploy_to: [staging, production]`)".into(),
            ));
        }
        let raw: raw::File = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(path, &e))?;
        let mut checker = Checker { path, text, errors: None };
        let file = checker.check(raw);
        match checker.errors {
            Some(e) => Err(e),
            None => Ok(PlatformFile { source: path.to_path_buf(), text: text.to_string(), ..file }),
        }
    }

    /// The app's name: `app`, else the name of the directory that holds the file (the
    /// repository's name in a CI checkout), which must then be a DNS label.
    pub fn app_name(&self) -> Result<AppName> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        let dir = std::path::absolute(&self.source)
            .ok()
            .and_then(|p| p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        AppName::new(dir.clone()).map_err(|_| Error::Manifest {
            path: self.source.clone(),
            line: None,
            message: format!("names no `app`, and its directory's name \"{dir}\" is not an app name"),
            hint: Some(format!(
                "add `app: {}` (a DNS label: lowercase letters, digits and '-')",
                suggested_label(&dir)
            )),
        })
    }

    /// The deploy request the file describes for `image` in `env`: its app, team, replicas,
    /// resources (as escape hatches, as their flags would be) and secrets. A caller applies its
    /// own values (flags) over it.
    ///
    /// ```
    /// # use paved_core::PlatformFile;
    /// let f = PlatformFile::parse("svc/.platform.yaml", "pipeline: go-service\napp: svc\nreplicas: 2\n").unwrap();
    /// let r = f.request("ghcr.io/acme/svc:v1", "staging").unwrap();
    /// assert_eq!((r.app.as_str(), r.replicas), ("svc", Some(2)));
    /// ```
    pub fn request(&self, image: &str, env: &str) -> Result<crate::DeployRequest> {
        let mut request = crate::DeployRequest::new(self.app_name()?.as_str(), image, env)?;
        request.replicas = self.replicas_for(env);
        request.team = self.team.clone();
        let r = self.resources_for(env);
        request.overrides.cpu_request = r.cpu_request;
        request.overrides.cpu_limit = r.cpu_limit;
        request.overrides.memory_request = r.memory_request;
        request.overrides.memory_limit = r.memory_limit;
        request.secrets = self.secrets.clone();
        Ok(request)
    }

    /// The replicas for `env`: `environments.ENV.replicas`, else `replicas`.
    pub fn replicas_for(&self, env: &str) -> Option<u32> {
        self.environments.get(env).and_then(|e| e.replicas).or(self.replicas)
    }

    /// The resources for `env`: `environments.ENV.resources` over `resources`.
    pub fn resources_for(&self, env: &str) -> PlatformResources {
        match self.environments.get(env) {
            Some(e) => self.resources.merged(&e.resources),
            None => self.resources.clone(),
        }
    }

    /// The database requests of the service in `env`, for `team` (see [`PlatformFile::team`]).
    pub fn database_requests(&self, team: &Team, env: &str) -> Result<Vec<DatabaseRequest>> {
        let service = self.app_name()?;
        Ok(self
            .databases
            .iter()
            .map(|d| DatabaseRequest {
                team: team.clone(),
                service: service.clone(),
                engine: d.engine,
                environment: env.to_string(),
                size: d.size,
            })
            .collect())
    }

    /// The owning team under `config`: `team`, checked against the organisation's teams, else
    /// the default team.
    pub fn team(&self, config: &OrgConfig) -> Result<Team> {
        config.team(self.team.as_ref()).map_err(|e| self.at_key(&["team"], e))
    }

    /// Checks the environments the file names (`deploy_to`, `environments`) against the
    /// organisation's, and `team` against its teams.
    pub fn check_against(&self, config: &OrgConfig) -> Result<()> {
        let known = || config.environments.keys().map(String::as_str);
        for (i, env) in self.deploy_to.iter().enumerate() {
            if !config.environments.contains_key(env) {
                return Err(Error::Manifest {
                    path: self.source.clone(),
                    line: line_of_item(&self.text, "deploy_to", i),
                    message: format!("deploy_to: \"{env}\" is not an environment of this organisation"),
                    hint: Some(suggest::hint_for(env, known())),
                });
            }
        }
        for env in self.environments.keys() {
            if !config.environments.contains_key(env) {
                return Err(Error::Manifest {
                    path: self.source.clone(),
                    line: line_of_key(&self.text, &["environments", env]),
                    message: format!("environments: \"{env}\" is not an environment of this organisation"),
                    hint: Some(suggest::hint_for(env, known())),
                });
            }
        }
        self.team(config).map(|_| ())
    }

    /// The 1-based line of a key of the file (`&["environments", "production"]`), when it is
    /// written in block style.
    pub fn line_of(&self, key: &[&str]) -> Option<usize> {
        line_of_key(&self.text, key)
    }

    /// `e` (from checking `key`) as an error at that key's line of this file.
    fn at_key(&self, key: &[&str], e: Error) -> Error {
        Error::Manifest {
            path: self.source.clone(),
            line: line_of_key(&self.text, key),
            message: format!("{}: {e}", key.join(".")),
            hint: e.hint().map(str::to_string),
        }
    }
}

/// A DNS label close to `s`, for hints.
fn suggested_label(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    out = out.trim_matches('-').to_string();
    if out.is_empty() { "my-service".into() } else { out }
}

/// Checks the values of a [`raw::File`], keeping the first error.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Option<Error>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &[&str], line: Option<usize>, message: String, hint: Option<String>) {
        if self.errors.is_none() {
            self.errors = Some(Error::Manifest {
                path: self.path.to_path_buf(),
                line: line.or_else(|| line_of_key(self.text, key)),
                message: format!("{}: {message}", key.join(".")),
                hint,
            });
        }
    }

    /// A value checked by a paved type: its error's reason and hint, at the key's line.
    fn typed<T>(&mut self, key: &[&str], r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let message = match &e {
                    Error::InvalidInput { value, reason, .. } => format!("{value:?} {reason}"),
                    other => other.to_string(),
                };
                self.fail(key, None, message, e.hint().map(str::to_string));
                None
            }
        }
    }

    fn resources(&mut self, prefix: &[&str], raw: Option<raw::Resources>) -> PlatformResources {
        let raw = raw.unwrap_or_default();
        let key = |part: &str, what: &str| -> Vec<String> {
            prefix.iter().map(|s| s.to_string()).chain([part.to_string(), what.to_string()]).collect()
        };
        let mut out = PlatformResources::default();
        for (part, q) in [("requests", raw.requests), ("limits", raw.limits)] {
            let Some(q) = q else { continue };
            if let Some(cpu) = q.cpu {
                let k = key(part, "cpu");
                let k: Vec<&str> = k.iter().map(String::as_str).collect();
                let v = self.typed(&k, CpuQuantity::new(cpu.text()));
                if part == "requests" { out.cpu_request = v } else { out.cpu_limit = v }
            }
            if let Some(memory) = q.memory {
                let k = key(part, "memory");
                let k: Vec<&str> = k.iter().map(String::as_str).collect();
                let v = self.typed(&k, MemoryQuantity::new(memory));
                if part == "requests" { out.memory_request = v } else { out.memory_limit = v }
            }
        }
        let below = out.cpu_limit.as_ref().zip(out.cpu_request.as_ref()).is_some_and(|(l, r)| l.millis() < r.millis())
            || out.memory_limit.as_ref().zip(out.memory_request.as_ref()).is_some_and(|(l, r)| l.bytes() < r.bytes());
        if below {
            let k: Vec<&str> = prefix.iter().copied().chain(["limits"]).collect();
            self.fail(
                &k,
                None,
                "a limit is below its request".into(),
                Some("raise the limit or lower the request".into()),
            );
        }
        out
    }

    fn replicas(&mut self, key: &[&str], replicas: Option<u32>) -> Option<u32> {
        if replicas == Some(0) {
            self.fail(key, None, "must be at least 1".into(), Some("set replicas to 1 or more".into()));
        }
        replicas
    }

    fn check(&mut self, raw: raw::File) -> PlatformFile {
        if !is_safe_name(&raw.pipeline) {
            self.fail(
                &["pipeline"],
                None,
                format!("{:?} is not a template name", raw.pipeline),
                Some(format!("use lowercase letters, digits and '-', e.g. \"{}\"", suggested_label(&raw.pipeline))),
            );
        }
        if let Some(tests) = &raw.tests {
            let why = if tests.trim().is_empty() {
                Some("is empty")
            } else if tests.chars().any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')) {
                Some("holds a line break or control character")
            } else if tests.contains("${{") {
                Some("holds `${{`, which GitHub Actions would expand as an expression")
            } else if tests.len() > MAX_TESTS_LEN {
                Some("is longer than 1024 characters")
            } else {
                None
            };
            if let Some(why) = why {
                self.fail(
                    &["tests"],
                    None,
                    format!("{tests:?} {why}"),
                    Some(
                        "write one command line, e.g. `npm test` (put longer steps in a script the repository holds)"
                            .into(),
                    ),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, env) in raw.deploy_to.iter().enumerate() {
            let line = line_of_item(self.text, "deploy_to", i);
            if !is_safe_name(env) {
                self.fail(
                    &["deploy_to"],
                    line,
                    format!("{env:?} is not an environment name"),
                    Some("use the environments of paved.toml, e.g. [staging, production]".into()),
                );
            } else if !seen.insert(env.as_str()) {
                self.fail(
                    &["deploy_to"],
                    line,
                    format!("\"{env}\" is listed twice"),
                    Some("list each environment once, in the order to deploy".into()),
                );
            }
        }
        let app = raw.app.map(AppName::new).and_then(|r| self.typed(&["app"], r));
        let team = raw.team.map(Team::new).and_then(|r| self.typed(&["team"], r));
        let replicas = self.replicas(&["replicas"], raw.replicas);
        let resources = self.resources(&["resources"], raw.resources);
        let mut environments = BTreeMap::new();
        for (name, env) in raw.environments {
            if !is_safe_name(&name) {
                self.fail(
                    &["environments", &name],
                    None,
                    format!("{name:?} is not an environment name"),
                    Some("use the environments of paved.toml".into()),
                );
            }
            let replicas = self.replicas(&["environments", &name, "replicas"], env.replicas);
            let resources = self.resources(&["environments", &name, "resources"], env.resources);
            environments.insert(name, PlatformEnvironment { replicas, resources });
        }
        let mut secrets = Vec::new();
        for (name, reference) in raw.secrets {
            let binding = format!("{name}={reference}").parse::<SecretBinding>();
            if let Some(b) = self.typed(&["secrets", &name], binding) {
                secrets.push(b);
            }
        }
        let mut databases = Vec::new();
        for (i, d) in raw.databases.into_iter().enumerate() {
            let line = line_of_item(self.text, "databases", i);
            let engine = d.engine.parse::<DbEngine>();
            let size = d.size.as_deref().unwrap_or("small").parse::<DbSize>();
            match (engine, size) {
                (Ok(engine), Ok(size)) => databases.push(PlatformDatabase { engine, size }),
                (Err(e), _) | (_, Err(e)) => {
                    let hint = e.hint().map(str::to_string);
                    let message = match &e {
                        Error::InvalidInput { field, value, reason, .. } => format!("{field} {value:?} {reason}"),
                        other => other.to_string(),
                    };
                    self.fail(&["databases"], line, message, hint);
                }
            }
        }
        PlatformFile {
            pipeline: raw.pipeline,
            tests: raw.tests,
            deploy_to: raw.deploy_to,
            app,
            team,
            replicas,
            resources,
            environments,
            secrets,
            databases,
            source: PathBuf::new(),
            text: String::new(),
        }
    }
}

/// A serde error of the file as [`Error::Manifest`], with its line and, for an unknown key, a
/// did-you-mean hint.
fn yaml_error(path: &Path, e: &serde_yaml_ng::Error) -> Error {
    let line = e.location().map(|l| l.line());
    let full = e.to_string();
    // serde_yaml_ng appends " at line L column C"; the line is reported apart.
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    };
    let message = message.strip_prefix(": ").unwrap_or(&message).to_string();
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let (message, hint) = if message.contains("unknown field") && !ticked.is_empty() {
        let unknown = ticked[0];
        let short = match message.find("unknown field") {
            Some(i) => format!("{}unknown field `{unknown}`", &message[..i]),
            None => message.clone(),
        };
        let hint = match &ticked[1..] {
            [] => format!("remove \"{unknown}\"; this mapping takes no keys"),
            expected => format!("{} (or remove the key)", suggest::hint_for(unknown, expected.iter().copied())),
        };
        (short, hint)
    } else if message.contains("missing field `pipeline`") {
        (message, "add `pipeline: nodejs-service` (or another template's name)".into())
    } else {
        (message, "see the `.platform.yaml` keys in the README (\"Pipelines from `.platform.yaml`\")".into())
    };
    Error::Manifest { path: path.to_path_buf(), line, message, hint: Some(hint) }
}

/// The 1-based line of a block-style key path (`["environments", "production", "replicas"]`),
/// found by indentation; `None` when it is not written in block style.
fn line_of_key(text: &str, key: &[&str]) -> Option<usize> {
    let mut depth = 0;
    let mut indent: Option<usize> = None;
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - trimmed.len();
        if let Some(parent) = indent
            && this_indent <= parent
            && depth > 0
        {
            // Left the parent's block without finding the child.
            return found;
        }
        let name = key[depth];
        let matches = trimmed
            .strip_prefix(name)
            .or_else(|| trimmed.strip_prefix(&format!("\"{name}\"")))
            .or_else(|| trimmed.strip_prefix(&format!("'{name}'")))
            .is_some_and(|rest| rest.trim_start().starts_with(':'));
        if matches && indent.is_none_or(|p| this_indent > p) {
            found = Some(i + 1);
            depth += 1;
            indent = Some(this_indent);
            if depth == key.len() {
                return found;
            }
        }
    }
    found
}

/// The line of the `index`th item of a top-level list `key`: its own line in block style, the
/// key's line in flow style.
fn line_of_item(text: &str, key: &str, index: usize) -> Option<usize> {
    let start = line_of_key(text, &[key])?;
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.get(start - 1)?;
    if first.contains('[') {
        return Some(start);
    }
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().skip(start) {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !t.starts_with('-') {
            break;
        }
        if seen == index {
            return Some(i + 1);
        }
        seen += 1;
    }
    Some(start)
}

/// `paved deploy`'s view of a file: reads the `.platform.yaml` found from `dir` upwards.
/// `Ok(None)` when there is none.
pub fn discover(dir: impl AsRef<Path>) -> Result<Option<PlatformFile>> {
    PlatformFile::find(dir).map(PlatformFile::load).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE_LINES: &str = "pipeline: nodejs-service\ntests: npm test\ndeploy_to: [staging, production]\n";

    fn parse(text: &str) -> Result<PlatformFile> {
        PlatformFile::parse(".platform.yaml", text)
    }

    #[test]
    fn the_original_three_lines() {
        let f = parse(THREE_LINES).unwrap();
        assert_eq!(f.pipeline, "nodejs-service");
        assert_eq!(f.tests.as_deref(), Some("npm test"));
        assert_eq!(f.deploy_to, ["staging", "production"]);
        assert_eq!((f.app.as_ref(), f.team.as_ref(), f.replicas), (None, None, None));
        f.check_against(&OrgConfig::default()).unwrap();
    }

    #[test]
    fn every_key() {
        let f = parse(
            r#"
pipeline: go-service
tests: go test ./...
deploy_to:
  - staging
  - production
app: checkout
team: payments
replicas: 2
resources:
  requests: { cpu: 250m, memory: 256Mi }
  limits:
    cpu: 1
    memory: 512Mi
environments:
  production:
    replicas: 4
    resources:
      limits: { memory: 1Gi }
secrets:
  DB_PASSWORD: vault://secret/payments/db#password
  API_KEY: aws-sm://payments/api#key
databases:
  - engine: postgres
  - { engine: mongodb, size: large }
"#,
        )
        .unwrap();
        assert_eq!(f.app_name().unwrap().as_str(), "checkout");
        assert_eq!(f.replicas_for("staging"), Some(2));
        assert_eq!(f.replicas_for("production"), Some(4));
        let prod = f.resources_for("production");
        assert_eq!(prod.memory_limit.unwrap().bytes(), 1 << 30);
        assert_eq!(prod.cpu_limit.unwrap().millis(), 1000);
        assert_eq!(f.resources_for("staging").memory_limit.unwrap().bytes(), 512 << 20);
        assert_eq!(f.secrets.iter().map(|s| s.env.as_str()).collect::<Vec<_>>(), ["API_KEY", "DB_PASSWORD"]);
        let team = f.team(&OrgConfig::default()).unwrap();
        let dbs = f.database_requests(&team, "staging").unwrap();
        assert_eq!(dbs.len(), 2);
        assert_eq!((dbs[0].engine, dbs[0].size), (DbEngine::Postgres, DbSize::Small));
        assert_eq!((dbs[1].engine, dbs[1].size), (DbEngine::Mongodb, DbSize::Large));
        assert_eq!(dbs[1].service.as_str(), "checkout");
    }

    #[test]
    fn unknown_keys_name_line_and_suggest() {
        let e = parse("pipeline: nodejs-service\nresources:\n  requests:\n    cpus: 1\n").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), ".platform.yaml:4: resources.requests: unknown field `cpus`");
        assert_eq!(e.hint(), Some(r#"did you mean "cpu"? (or remove the key)"#));
        let e = parse("pipline: nodejs-service\n").unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:1: unknown field `pipline`"), "{e}");
        assert_eq!(e.hint(), Some(r#"did you mean "pipeline"? (or remove the key)"#));
        let e = parse("tests: npm test\n").unwrap_err();
        assert!(e.to_string().contains("missing field `pipeline`"), "{e}");
        assert!(e.hint().unwrap().contains("pipeline: nodejs-service"));
    }

    #[test]
    fn bad_values_name_line_field_and_hint() {
        let e = parse("pipeline: nodejs-service\napp: My_Service\n").unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:2: app: \"My_Service\""), "{e}");
        assert!(e.hint().is_some());
        let e = parse("pipeline: nodejs-service\nreplicas: 0\n").unwrap_err();
        assert_eq!(e.to_string(), ".platform.yaml:2: replicas: must be at least 1");
        let e = parse("pipeline: nodejs-service\nenvironments:\n  production:\n    replicas: 0\n").unwrap_err();
        assert_eq!(e.to_string(), ".platform.yaml:4: environments.production.replicas: must be at least 1");
        let e = parse("pipeline: nodejs-service\nresources:\n  requests:\n    cpu: 2 cores\n").unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:4: resources.requests.cpu: \"2 cores\""), "{e}");
        let e = parse("pipeline: nodejs-service\nresources:\n  requests: {memory: 1Gi}\n  limits: {memory: 1Mi}\n")
            .unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:4: resources.limits: a limit is below"), "{e}");
        let e = parse("pipeline: nodejs-service\nsecrets:\n  db-password: vault://secret/x/db#password\n").unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:3: secrets.db-password:"), "{e}");
        assert_eq!(e.hint(), Some("use \"DB_PASSWORD\""));
        let e = parse("pipeline: nodejs-service\nsecrets:\n  DB: http://x\n").unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:3: secrets.DB:"), "{e}");
        let e = parse("pipeline: nodejs-service\ndatabases:\n  - engine: postgress\n").unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:3: databases:"), "{e}");
        assert_eq!(e.hint(), Some(r#"did you mean "postgres"?"#));
        let e = parse("pipeline: Node.js\n").unwrap_err();
        assert_eq!(e.to_string(), ".platform.yaml:1: pipeline: \"Node.js\" is not a template name");
        assert_eq!(e.hint(), Some("use lowercase letters, digits and '-', e.g. \"node-js\""));
    }

    #[test]
    fn tests_must_be_one_plain_command() {
        for bad in ["\"npm test\\nrm -rf /\"", "\"echo ${{ secrets.TOKEN }}\"", "''", "\"a\\u2028b\""] {
            let e = parse(&format!("pipeline: nodejs-service\ntests: {bad}\n")).unwrap_err();
            assert!(e.to_string().starts_with(".platform.yaml:2: tests:"), "{bad}: {e}");
        }
        parse("pipeline: nodejs-service\ntests: 'npm test -- --ci && echo \"done: ok\"'\n").unwrap();
    }

    #[test]
    fn environments_are_checked_against_the_organisation() {
        let f = parse("pipeline: nodejs-service\ndeploy_to:\n  - staging\n  - prod\n").unwrap();
        let e = f.check_against(&OrgConfig::default()).unwrap_err();
        assert_eq!(e.to_string(), ".platform.yaml:4: deploy_to: \"prod\" is not an environment of this organisation");
        assert_eq!(e.hint(), Some(r#"did you mean "production"?"#));
        let f = parse("pipeline: nodejs-service\nenvironments:\n  stagin: {replicas: 2}\n").unwrap();
        let e = f.check_against(&OrgConfig::default()).unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:3: environments:"), "{e}");
        let e = parse("pipeline: nodejs-service\ndeploy_to: [staging, staging]\n").unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let config = OrgConfig::parse("paved.toml", "teams = [\"payments\"]\n").unwrap();
        let f = parse("pipeline: nodejs-service\nteam: paymens\n").unwrap();
        let e = f.check_against(&config).unwrap_err();
        assert!(e.to_string().starts_with(".platform.yaml:2: team:"), "{e}");
        assert_eq!(e.hint(), Some(r#"did you mean "payments"?"#));
    }

    #[test]
    fn app_defaults_to_the_directory_name() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("checkout-api");
        std::fs::create_dir(&repo).unwrap();
        std::fs::write(repo.join(PLATFORM_FILE), THREE_LINES).unwrap();
        let f = discover(&repo).unwrap().unwrap();
        assert_eq!(f.app_name().unwrap().as_str(), "checkout-api");
        let bad = dir.path().join("Checkout_API");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join(PLATFORM_FILE), THREE_LINES).unwrap();
        let e = PlatformFile::load(bad.join(PLATFORM_FILE)).unwrap().app_name().unwrap_err();
        assert_eq!(e.hint(), Some("add `app: checkout-api` (a DNS label: lowercase letters, digits and '-')"));
        // Not above the repository's root.
        std::fs::create_dir(repo.join(".git")).unwrap();
        std::fs::create_dir(repo.join("sub")).unwrap();
        assert!(PlatformFile::find(repo.join("sub")).is_some());
        let inner = repo.join("sub/inner");
        std::fs::create_dir_all(inner.join(".git")).unwrap();
        assert!(PlatformFile::find(&inner).is_none());
        let e = PlatformFile::load(dir.path().join("none/.platform.yaml")).unwrap_err();
        assert!(e.hint().unwrap().contains("pipeline: nodejs-service"), "{e}");
    }

    #[test]
    fn lines_of_keys() {
        let text = "a: 1\nb:\n  c:\n    d: 2\n  e: 3\nf: [x, y]\n";
        assert_eq!(line_of_key(text, &["b", "c", "d"]), Some(4));
        assert_eq!(line_of_key(text, &["b", "e"]), Some(5));
        assert_eq!(line_of_key(text, &["f"]), Some(6));
        assert_eq!(line_of_key(text, &["g"]), None);
    }
}
