//! `paved policy check|build|new|list`: organisation policies as WebAssembly plugins.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use paved::policy::{ActionInput, Language, PolicyCheck, PolicyManifest};
use paved::{Action, Error, Manifests, OrgConfig, Result};
use serde_json::Value;

use crate::args::Format;
use crate::output::{document, plural};

/// `paved policy …`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Evaluate every object of a multi-document YAML file against policies; exit 1 when
    /// anything fails or errors.
    #[command(after_help = "Examples:
  paved policy check --file release.yaml
  paved render --app my-service --image ghcr.io/company/my-service:v1.2.3 \\
    --env production | paved policy check --file -
  paved policy check --policy plugins/disallow-latest-tag \\
    --file plugins/disallow-latest-tag/tests/fail.yaml")]
    Check {
        /// A plugin directory (with policy.toml) or a .wasm component; repeatable
        /// [default: the policies of paved.toml].
        #[arg(long = "policy", value_name = "PATH")]
        policies: Vec<PathBuf>,
        /// The objects (multi-document YAML; `-` reads standard input).
        #[arg(long, value_name = "RESOURCES.yaml")]
        file: PathBuf,
        /// Settings (YAML or JSON object): for every policy, or by policy name.
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// The environment the objects are for.
        #[arg(long, default_value = "production")]
        env: String,
        /// The action checked.
        #[arg(long, value_enum, default_value_t = CheckAction::Deploy)]
        action: CheckAction,
    },
    /// Build plugins (Rust, Python or JavaScript) into components and update their sha256 pins.
    #[command(after_help = "Examples:
  paved policy build plugins/require-team-label
  paved policy build plugins/* -o json")]
    Build {
        /// Plugin directories (each with policy.toml).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Scaffold a working plugin with a test.
    #[command(after_help = "Examples:
  paved policy new require-team-label --lang rust
  paved policy new restrict-service-types --lang python --dir plugins/restrict-service-types")]
    New {
        /// The policy's name (lowercase, '-').
        name: String,
        /// The language.
        #[arg(long, value_enum)]
        lang: Lang,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show the policies configured in paved.toml with their modes and limits.
    #[command(after_help = "Examples:
  paved policy list
  paved policy list -o json")]
    List,
}

/// The action `paved policy check` asks about.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CheckAction {
    /// A deploy.
    Deploy,
    /// A rollback.
    Rollback,
    /// Database provisioning.
    ProvisionDatabase,
}

impl From<CheckAction> for Action {
    fn from(a: CheckAction) -> Self {
        match a {
            CheckAction::Deploy => Action::Deploy,
            CheckAction::Rollback => Action::Rollback,
            CheckAction::ProvisionDatabase => Action::ProvisionDatabase,
        }
    }
}

/// A plugin language.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Lang {
    /// Rust (wasm32-wasip2).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (componentize-js).
    Js,
}

/// Runs `paved policy …`.
pub(crate) fn policy(cmd: PolicyCommand, config: &OrgConfig, format: Format) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { policies, file, settings, env, action } => {
            // Without --policy: the policies the platform would run (paved.toml and the
            // organisation's file).
            let policies = match policies.is_empty() {
                true => config.policy_entries()?.into_iter().map(|e| e.dir).collect(),
                false => policies,
            };
            if policies.is_empty() {
                return Err(Error::invalid(
                    "policy",
                    "",
                    "none given, and paved.toml configures none",
                    Some("name one with --policy DIR, or add [[policies]] path = \"…\" to paved.toml".into()),
                ));
            }
            check(&policies, &file, settings.as_deref(), &env, action.into(), format)
        }
        PolicyCommand::Build { dirs } => {
            let built = paved::policy::toolchain::build(&dirs).map_err(Error::from)?;
            match format {
                Format::Text => {
                    for b in &built {
                        let pin = if b.repinned { "pin updated" } else { "pin unchanged" };
                        out!(
                            "✅ {} → {} ({} KiB, sha256 {}, {pin})",
                            b.name,
                            b.component.display(),
                            b.size.div_ceil(1024),
                            &b.sha256[..16]
                        );
                    }
                }
                _ => {
                    let rows: Vec<Value> = built
                        .iter()
                        .map(|b| {
                            serde_json::json!({"name": b.name, "component": b.component, "sha256": b.sha256,
                                "size": b.size, "repinned": b.repinned})
                        })
                        .collect();
                    document(format, &rows);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::New { name, lang, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            crate::policy_scaffold::scaffold(&name, lang, &dir)?;
            let build = format!("paved policy build {}", dir.display());
            let check = format!("paved policy check --policy {0} --file {0}/tests/fail.yaml", dir.display());
            match format {
                Format::Text => {
                    out!("✅ created {} ({lang:?} policy {name})", dir.display());
                    out!("   build it:  {build}");
                    out!("   check it:  {check}");
                }
                _ => document(
                    format,
                    &serde_json::json!({"name": name, "language": language(lang).as_str(), "dir": dir,
                        "next": [build, check]}),
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::List => list(config, format),
    }
}

fn check(
    paths: &[PathBuf],
    file: &Path,
    settings: Option<&Path>,
    env: &str,
    action: Action,
    format: Format,
) -> Result<ExitCode> {
    let mut text = String::new();
    crate::input::open(file)?.read_to_string(&mut text).map_err(|e| Error::unreadable_file(file, &e))?;
    let objects: Vec<Value> = Manifests::from_yaml(&text)
        .map_err(|e| match e {
            Error::Manifest { line, message, hint, .. } => {
                Error::Manifest { path: file.to_path_buf(), line, message, hint }
            }
            other => other,
        })?
        .iter()
        .map(|m| m.value().clone())
        .collect();
    let settings = settings.map(read_settings).transpose()?;
    let mut input = ActionInput::objects(env, objects);
    input.action = action;
    // Off the async runtime's thread, as the platform evaluates a deploy's policies (on rayon's
    // pool): a plugin's blocking WASI calls (stdout/stderr, files, sockets, sleeps) must not run
    // on a thread that drives a tokio runtime.
    let report = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("paved-policy-check".into())
            .spawn_scoped(s, || Ok::<_, Error>(PolicyCheck::load(paths, settings.as_ref())?.check(&input)))
            .map_err(|e| Error::backend("policy", format!("cannot start the evaluation thread: {e}"), None))?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    let rows = &report.results;
    let totals = report.totals;
    match format {
        Format::Text => {
            // Skipped rows (a policy that does not apply to a kind) are only counted.
            for r in rows.iter().filter(|r| r.result != "skip") {
                // The result word says it all; the mark is for terminals with emoji.
                let mark = match (crate::output::emoji(), r.result) {
                    (false, _) => "",
                    (true, "pass") => "✅ ",
                    (true, "fail") => "❌ ",
                    (true, "warn") => "⚠️  ",
                    (true, _) => "💥 ",
                };
                let ns = r.namespace.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                out!("{mark}{:<5} {} {}/{}{ns}", r.result, r.policy, r.kind, r.name);
                for v in &r.violations {
                    let at = v.path.as_deref().map(|p| format!(" at {p}")).unwrap_or_default();
                    out!("      {} {}: {}{at}", v.severity, v.code, v.message);
                    if let Some(h) = &v.hint {
                        out!("        hint: {h}");
                    }
                }
            }
            if let Some(patch) = &report.patch {
                out!("mutations (RFC 6902 patch over the list of objects):\n{patch:#}");
            }
            let policies = match totals.policies {
                1 => "1 policy".to_string(),
                n => format!("{n} policies"),
            };
            out!(
                "{} pass, {} fail, {} warn, {} error, {} skipped ({policies} × {})",
                totals.pass,
                totals.fail,
                totals.warn,
                totals.error,
                totals.skip,
                plural(totals.objects, "object")
            );
        }
        _ => document(format, &report),
    }
    Ok(if report.failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn read_settings(path: &Path) -> Result<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable_file(path, &e))?;
    let value: Value = serde_yaml_ng::from_str(&text).map_err(|e| Error::Manifest {
        path: path.to_path_buf(),
        line: e.location().map(|l| l.line()),
        message: format!("settings are not YAML/JSON: {e}"),
        hint: Some("write an object, e.g. `registries: [ghcr.io/company/]`".into()),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Default::default()),
        _ => Err(Error::Manifest {
            path: path.to_path_buf(),
            line: None,
            message: "settings must be an object".into(),
            hint: Some("write `key: value` pairs, or `policy-name: {key: value}`".into()),
        }),
    }
}

fn list(config: &OrgConfig, format: Format) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for entry in config.policy_entries()? {
        let row = match PolicyManifest::load(&entry.dir).map_err(Error::from).and_then(|m| {
            let defaults = paved::org_policy::Effective {
                mode: m.mode,
                failure_policy: m.failure_policy,
                environments: m.environments.clone(),
            };
            entry.tighten(&defaults).map(|effective| (m, effective))
        }) {
            Ok((m, effective)) => {
                serde_json::json!({
                    "name": m.name,
                    "version": m.version,
                    "language": m.language.as_str(),
                    "path": entry.dir,
                    "origin": entry.origin,
                    "source": entry.source,
                    "mode": effective.mode,
                    "failure_policy": effective.failure_policy,
                    "mutating": m.mutating,
                    "actions": m.actions,
                    // Empty: every environment, every kind.
                    "environments": effective.environments,
                    "kinds": m.kinds,
                    "timeout_ms": m.limits.timeout_ms,
                    "memory_mib": m.limits.memory_mib,
                    "fuel": m.limits.fuel,
                    "sha256": m.sha256,
                    "component_present": m.component_path().is_file(),
                })
            }
            Err(e) => serde_json::json!({ "path": entry.dir, "origin": entry.origin, "error": e.to_string() }),
        };
        rows.push(row);
    }
    match format {
        Format::Text => {
            if rows.is_empty() {
                out!("no policies configured (add [[policies]] path = \"…\" to paved.toml)");
            }
            for r in &rows {
                if let Some(e) = r.get("error") {
                    out!("💥 {}: {}", r["path"].as_str().unwrap_or(""), e.as_str().unwrap_or(""));
                    continue;
                }
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                let scope = |k: &str| {
                    let items: Vec<&str> = r[k].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    if items.is_empty() { "all".to_string() } else { items.join(",") }
                };
                let pin = s("sha256");
                out!(
                    "{} {}  origin={} mode={} failure_policy={} envs={} kinds={} timeout={}ms memory={}MiB{} pin={}{}",
                    s("name"),
                    s("version"),
                    s("origin"),
                    s("mode"),
                    s("failure_policy"),
                    scope("environments"),
                    scope("kinds"),
                    r["timeout_ms"],
                    r["memory_mib"],
                    if r["mutating"] == true { " mutating" } else { "" },
                    if pin.is_empty() { "none".to_string() } else { pin[..12].to_string() },
                    if r["component_present"] == true { "" } else { " (not built)" },
                );
            }
        }
        _ => document(format, &rows),
    }
    Ok(ExitCode::SUCCESS)
}

/// Languages by manifest value (for the scaffold).
pub(crate) fn language(lang: Lang) -> Language {
    match lang {
        Lang::Rust => Language::Rust,
        Lang::Python => Language::Python,
        Lang::Js => Language::Js,
    }
}
