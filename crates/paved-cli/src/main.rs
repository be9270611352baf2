//! `paved`: golden-path deploys from the terminal.
//!
//! Exit codes: 0 success, 1 failure, denial or not found, 2 bad input (nothing written);
//! `paved diff`: 0 no changes, 1 changes, 2 bad input, 3 failure.

#[macro_use]
mod output;
#[cfg(feature = "admission")]
mod admission_cmd;
mod args;
mod cli_meta;
mod db_cmd;
mod diff_cmd;
mod input;
mod kube_cmd;
mod metrics_cmd;
mod pipeline_cmd;
#[cfg(feature = "policy")]
mod policy_cmd;
#[cfg(feature = "policy")]
mod policy_scaffold;
#[cfg(feature = "vault")]
mod secrets_cmd;
mod terms;

use std::path::PathBuf;
use std::process::ExitCode;

use paved::{Assembled, Assembly, DeployRequest, ErrorKind, KubeOptions, OrgConfig, Result};

use crate::args::{AppEnv, Cli, Command, DeployArgs};
use crate::output::Printer;

fn main() -> ExitCode {
    let Some(cli) = cli_meta::parse() else { return ExitCode::SUCCESS };
    output::configure(if cli.no_emoji { Some(false) } else { cli.emoji.then_some(true) }, cli.quiet);
    cli_meta::init_logging(cli.verbose, cli.quiet);
    let printer = Printer::new(cli.output);
    let diff_command = matches!(cli.command, Some(Command::Diff { .. }));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime starts");
    match runtime.block_on(run(cli, &printer)) {
        Ok(code) => code,
        Err(e) => {
            printer.error(&e);
            match (diff_command, e.kind()) {
                // `diff` uses 1 for "there are changes", like diff(1) and kubectl diff.
                (true, ErrorKind::InvalidInput) => ExitCode::from(2),
                (true, _) => ExitCode::from(3),
                (false, kind) => exit_code(kind),
            }
        }
    }
}

/// Exit codes by error kind: 2 for bad input (what the user typed or wrote), 1 for every
/// failure, denial or missing thing.
fn exit_code(kind: ErrorKind) -> ExitCode {
    match kind {
        ErrorKind::InvalidInput => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

fn state_dir(cli_value: Option<PathBuf>) -> PathBuf {
    cli_value.unwrap_or_else(|| PathBuf::from(".paved"))
}

/// The platform paved.toml describes, assembled by the library. `record`: whether events go
/// into the ledger (not for `render`, `diff` and `--dry-run`, which write nothing).
async fn assemble(
    config: OrgConfig,
    state: PathBuf,
    printer: &Printer,
    kube: KubeOptions,
    record: bool,
) -> Result<Assembled> {
    let sink = printer.progress_sink();
    let mut assembly =
        Assembly::new(config).state_dir(state).record_events(record).kube(kube).on_progress(move |p| sink(p));
    // Who acts matters only to what is recorded (and asking git costs a process or two).
    if record && let Some(actor) = paved::assembly::actor_from_environment() {
        assembly = assembly.actor(actor);
    }
    assembly.build().await
}

async fn run(cli: Cli, printer: &Printer) -> Result<ExitCode> {
    let command = cli.command.expect("parse() handles a missing command");
    // Commands that need no configuration.
    match &command {
        Command::Completion { shell } => return cli_meta::completion(*shell),
        Command::Man { dir } => return cli_meta::man(dir.as_deref()),
        Command::Reference => {
            output::raw(&cli_meta::reference());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let config = OrgConfig::discover(cli.config.as_deref()).map_err(cli_meta::name_config_source)?;
    let state = state_dir(cli.state_dir);
    match command {
        Command::Render(args) => {
            let (request, _) = args.request(&config)?;
            let assembled = assemble(config, state, printer, KubeOptions::default(), false).await?;
            let platform = assembled.platform();
            let app = platform.validate(&request)?;
            let rendered = platform.render(&app)?;
            // What would be applied: the policies (the baseline at least) see it first.
            let (manifests, _) = platform.check_policy(paved::Action::Deploy, &app, rendered).await?;
            printer.manifests(&manifests);
        }
        Command::Deploy { args, commits, dry_run, diff, target, rollout } => {
            let (mut request, databases) = args.request(&config)?;
            request.commits = pipeline_cmd::commits(&commits)?;
            let mut config = config;
            let kube = target.prepare(&mut config, Some(&args.env), Some(&rollout))?;
            let assembled = assemble(config, state, printer, kube, !dry_run).await?;
            let platform = assembled.platform();
            // A Score file's databases are provisioned once everything else has passed.
            let plan = platform.plan_with_databases(&request, &databases, !dry_run).await?;
            let changes = if diff { Some(diff_cmd::changes(platform, &plan).await?) } else { None };
            if let Some(changes) = &changes {
                diff_cmd::print(changes, printer.format, dry_run);
            }
            let changes = changes.map(|c| serde_json::to_value(c).expect("serializable"));
            if !dry_run {
                let outcome = kube_cmd::interruptible(&assembled, platform.apply(plan)).await?;
                printer.deployed(&outcome, false, changes);
            } else if changes.is_none() {
                printer.deployed(&platform.preview(&plan).await?, true, None);
            }
        }
        Command::Diff { args, target } => {
            let (request, databases) = args.request(&config)?;
            let mut config = config;
            let kube = target.prepare(&mut config, Some(&args.env), None)?;
            let assembled = assemble(config, state, printer, kube, false).await?;
            let platform = assembled.platform();
            let plan = platform.plan_with_databases(&request, &databases, false).await?;
            let changes = diff_cmd::changes(platform, &plan).await?;
            diff_cmd::print(&changes, printer.format, true);
            if changes.changed() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Rollback { app, to, target, rollout } => {
            let (assembled, name, env) = open(config, state, printer, &app, &target, Some(&rollout), true).await?;
            let platform = assembled.platform();
            let outcome = kube_cmd::interruptible(&assembled, platform.rollback(&name, &env, to)).await?;
            printer.rolled_back(&outcome);
        }
        Command::Status { app, target } => {
            let (assembled, name, env) = open(config, state, printer, &app, &target, None, false).await?;
            let status = assembled.platform().status(&name, &env).await?;
            printer.status(&status);
            if !status.in_sync {
                return Ok(ExitCode::from(1));
            }
        }
        Command::History { app, max, target } => {
            let (assembled, name, env) = open(config, state, printer, &app, &target, None, false).await?;
            let mut history = assembled.platform().history(&name, &env).await?;
            if history.is_empty() {
                return Err(paved::bookkeeping::not_deployed(&paved::ReleaseKey::new(name, env), None));
            }
            if let Some(max) = max {
                history.truncate(usize::try_from(max).unwrap_or(usize::MAX));
            }
            printer.history(&history);
        }
        Command::List { env, target } => {
            let mut config = config;
            let env = env.map(|e| config.environment(&e).map(|e| e.name)).transpose()?;
            let kube = target.prepare(&mut config, env.as_deref(), None)?;
            let assembled = assemble(config, state, printer, kube, false).await?;
            let listing = assembled.platform().list(env.as_deref()).await?;
            printer.list(&listing);
        }
        Command::Destroy { app, target } => {
            let (assembled, name, env) = open(config, state, printer, &app, &target, None, true).await?;
            let outcome = kube_cmd::interruptible(&assembled, assembled.platform().destroy(&name, &env)).await?;
            printer.destroyed(&outcome);
        }
        Command::Events(cmd) => return metrics_cmd::events(cmd, &state, cli.output),
        Command::Metrics(cmd) => return metrics_cmd::metrics(cmd, &config, &state, cli.output).await,
        #[cfg(feature = "vault")]
        Command::Secrets(cmd) => return secrets_cmd::secrets(cmd, config, cli.output).await,
        Command::Db(cmd) => return db_cmd::db(cmd, &config, &state, cli.output).await,
        Command::Pipeline(cmd) => return pipeline_cmd::pipeline(cmd, &config, cli.output),
        #[cfg(feature = "policy")]
        Command::Policy(cmd) => return policy_cmd::policy(cmd, &config, cli.output),
        #[cfg(feature = "admission")]
        Command::Admission(cmd) => return admission_cmd::admission(cmd, config, cli.output).await,
        Command::Completion { .. } | Command::Man { .. } | Command::Reference => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The platform for a command on one app in one environment, with the app's name and the
/// environment's (both checked before anything is dialled); `record`: whether the command
/// changes something that is recorded.
async fn open(
    config: OrgConfig,
    state: PathBuf,
    printer: &Printer,
    app: &AppEnv,
    target: &kube_cmd::TargetSelect,
    rollout: Option<&kube_cmd::RolloutArgs>,
    record: bool,
) -> Result<(Assembled, paved::AppName, String)> {
    let name = paved::AppName::new(app.app.as_str())?;
    let env = config.environment(&app.env)?.name;
    let mut config = config;
    let kube = target.prepare(&mut config, Some(&env), rollout)?;
    let assembled = assemble(config, state, printer, kube, record).await?;
    Ok((assembled, name, env))
}

impl DeployArgs {
    /// Builds the request; every value is validated here so bad input fails before anything runs.
    /// With `-f`, a Score file gives the request and the databases its resources need; without
    /// `--app`, `.platform.yaml` gives the request. Flags override the file's values.
    fn request(&self, config: &OrgConfig) -> Result<(DeployRequest, Vec<paved::DatabaseRequest>)> {
        use paved::{Component, CpuQuantity, ManifestFile, MemoryQuantity, SecretBinding, Team};
        let team = self.team.as_deref().map(Team::new).transpose()?;
        let image = || {
            self.image.as_deref().ok_or_else(|| {
                paved::Error::invalid("image", "", "is required", Some("pass --image, or -f score.yaml".to_string()))
            })
        };
        let (mut request, databases) = match (&self.file, &self.app) {
            (Some(file), app) => {
                let score = paved::score::ScoreWorkload::load(file)?;
                if let Some(app) = app.as_deref().filter(|a| *a != score.name) {
                    return Err(paved::Error::invalid(
                        "app",
                        app,
                        format!("the Score file {} describes {}", file.display(), score.name),
                        Some(format!("leave --app out, or pass --app {}", score.name)),
                    ));
                }
                let mut flags = paved::score::ScoreFlags::new();
                flags.image = self.image.clone();
                flags.team = team.clone();
                flags.replicas = self.replicas;
                let deploy = paved::score::translate(&score, config, &self.env, &flags)?;
                (deploy.request, deploy.databases)
            }
            (None, Some(app)) => (DeployRequest::new(app, image()?, &self.env)?, Vec::new()),
            (None, None) => pipeline_cmd::platform_request(config, image()?, &self.env)?,
        };
        request.replicas = self.replicas.or(request.replicas);
        if team.is_some() {
            request.team = team;
        }
        // A flag wins over the file's value.
        let mut o = std::mem::take(&mut request.overrides);
        if let Some(v) = self.cpu_request.clone() {
            o.cpu_request = Some(CpuQuantity::parse_field("cpu-request", v)?);
        }
        if let Some(v) = self.cpu_limit.clone() {
            o.cpu_limit = Some(CpuQuantity::parse_field("cpu-limit", v)?);
        }
        if let Some(v) = self.memory_request.clone() {
            o.memory_request = Some(MemoryQuantity::parse_field("memory-request", v)?);
        }
        if let Some(v) = self.memory_limit.clone() {
            o.memory_limit = Some(MemoryQuantity::parse_field("memory-limit", v)?);
        }
        o.custom_manifests = self.custom_manifest.iter().map(ManifestFile::load).collect::<Result<_>>()?;
        o.extra_manifests = self.extra_manifest.iter().map(ManifestFile::load).collect::<Result<_>>()?;
        let switches = [
            (self.no_hpa, Component::Hpa),
            (self.no_pdb, Component::Pdb),
            (self.no_network_policy, Component::NetworkPolicy),
            (self.no_ingress, Component::Ingress),
            (self.no_service_monitor, Component::ServiceMonitor),
            (self.no_dashboard, Component::Dashboard),
            (self.no_alerts, Component::Alerts),
            (self.no_tracing, Component::Tracing),
            (self.no_mesh, Component::Mesh),
        ];
        o.disabled = switches.into_iter().filter(|(on, _)| *on).map(|(_, c)| c).collect();
        // A --secret replaces the file's binding of the same variable.
        for binding in self.secret.iter().map(|s| s.parse::<SecretBinding>()) {
            let binding = binding?;
            request.secrets.retain(|b| b.env != binding.env);
            if let Some(w) = request.workload.as_mut() {
                w.main.env.retain(|v| v.name != binding.env);
            }
            request.secrets.push(binding);
        }
        Ok((request.with_overrides(o), databases))
    }
}
