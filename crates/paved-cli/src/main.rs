//! `paved`: golden-path deploys from the terminal.
//!
//! Exit codes: 0 success, 1 failure or policy denial, 2 bad usage or bad input.

mod args;
mod db_cmd;
mod kube_cmd;
mod metrics_cmd;
mod output;
#[cfg(feature = "policy")]
mod policy_cmd;
#[cfg(feature = "policy")]
mod policy_scaffold;
#[cfg(feature = "vault")]
mod secrets_cmd;
mod terms;

use clap::Parser;
use paved::{Assembled, Assembly, DeployRequest, ErrorKind, KubeOptions, OrgConfig, Platform, Result};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::args::{Cli, Command, DeployArgs, Format, TargetArgs};
use crate::output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.output);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime starts");
    match runtime.block_on(run(cli, &printer)) {
        Ok(code) => code,
        Err(e) => {
            printer.error(&e);
            exit_code(e.kind())
        }
    }
}

fn state_dir(cli_value: Option<PathBuf>) -> PathBuf {
    cli_value.unwrap_or_else(|| PathBuf::from(".paved"))
}

/// The platform paved.toml describes, assembled by the library. `record`: whether events go
/// into the ledger (not for `render` and `--dry-run`, which write nothing).
async fn assemble(
    config: OrgConfig,
    state: PathBuf,
    printer: &Printer,
    kube: KubeOptions,
    record: bool,
) -> Result<Assembled> {
    let mut assembly = Assembly::new(config).state_dir(state).record_events(record).kube(kube);
    if let Some(sink) = printer.progress_sink() {
        assembly = assembly.on_progress(move |p| sink(p));
    }
    assembly.build().await
}

/// Exit codes by error kind: 2 for what the user typed or wrote, 1 for everything else.
fn exit_code(kind: ErrorKind) -> ExitCode {
    if kind.is_user_error() { ExitCode::from(2) } else { ExitCode::from(1) }
}

async fn run(cli: Cli, printer: &Printer) -> Result<ExitCode> {
    let config = OrgConfig::discover(cli.config.as_deref())?;
    let state = state_dir(cli.state_dir);
    match cli.command {
        Command::Render(args) => {
            let assembled = assemble(config, state, &Printer::new(Format::Json), KubeOptions::default(), false).await?;
            let platform = assembled.platform();
            let request = args.request()?;
            let app = platform.validate(&request)?;
            let rendered = platform.render(&app)?;
            // What would be applied: the policies (the baseline at least) see it first.
            let (manifests, _) = platform.check_policy(paved::Action::Deploy, &app, rendered).await?;
            printer.manifests(&manifests);
        }
        Command::Deploy { args, dry_run, kube } => {
            let mut config = config;
            let kube = kube.prepare(&mut config, &args.env);
            let assembled = assemble(config, state, printer, kube, !dry_run).await?;
            let platform = assembled.platform();
            let request = args.request()?;
            if dry_run {
                let plan = platform.plan(&request).await?;
                printer.plan(&plan);
            } else {
                let outcome = kube_cmd::interruptible(&assembled, platform.deploy(&request)).await?;
                printer.deployed(&outcome);
            }
        }
        Command::Rollback { target, to, kube } => {
            let mut config = config;
            let kube = kube.prepare(&mut config, &target.env);
            let assembled = assemble(config, state, printer, kube, true).await?;
            let platform = assembled.platform();
            let (app, env) = target.resolve(platform)?;
            let outcome = kube_cmd::interruptible(&assembled, platform.rollback(&app, &env, to)).await?;
            printer.rolled_back(&outcome);
        }
        Command::Status { target, kube } => {
            let mut config = config;
            let kube = kube.prepare(&mut config, &target.env);
            let assembled = assemble(config, state, printer, kube, true).await?;
            let platform = assembled.platform();
            let (app, env) = target.resolve(platform)?;
            let status = platform.status(&app, &env).await?;
            printer.status(&status);
            if !status.in_sync {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Events(cmd) => return metrics_cmd::events(cmd, &state, cli.output),
        Command::Metrics(cmd) => return metrics_cmd::metrics(cmd, &config, &state, cli.output).await,
        #[cfg(feature = "vault")]
        Command::Secrets(cmd) => return secrets_cmd::secrets(cmd, config, cli.output).await,
        Command::Db(cmd) => return db_cmd::db(cmd, &config, &state, cli.output).await,
        #[cfg(feature = "policy")]
        Command::Policy(cmd) => return policy_cmd::policy(cmd, &config, cli.output),
        Command::Destroy { target, kube } => {
            let mut config = config;
            let kube = kube.prepare(&mut config, &target.env);
            let assembled = assemble(config, state, printer, kube, true).await?;
            let platform = assembled.platform();
            let (app, env) = target.resolve(platform)?;
            let outcome = kube_cmd::interruptible(&assembled, platform.destroy(&app, &env)).await?;
            printer.destroyed(&outcome);
        }
        Command::History { target, kube } => {
            let mut config = config;
            let kube = kube.prepare(&mut config, &target.env);
            let assembled = assemble(config, state, printer, kube, true).await?;
            let platform = assembled.platform();
            let (app, env) = target.resolve(platform)?;
            let history = platform.history(&app, &env).await?;
            if history.is_empty() {
                return Err(paved::bookkeeping::not_deployed(&paved::ReleaseKey::new(app.clone(), env.clone()), None));
            }
            printer.history(&history);
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl TargetArgs {
    fn resolve(&self, platform: &Platform) -> Result<(paved::AppName, String)> {
        let app = paved::AppName::new(self.app.as_str())?;
        let env = platform.config().environment(&self.env)?.name;
        Ok((app, env))
    }
}

impl DeployArgs {
    /// Builds the request; every value is validated here so bad input fails before anything runs.
    fn request(&self) -> Result<DeployRequest> {
        use paved::{Component, CpuQuantity, ManifestFile, MemoryQuantity, Overrides, Team};
        let mut request = DeployRequest::new(&self.app, &self.image, &self.env)?;
        request.replicas = self.replicas;
        request.team = self.team.as_deref().map(Team::new).transpose()?;
        let mut o = Overrides::default();
        o.cpu_request = self.cpu_request.clone().map(|v| CpuQuantity::parse_field("cpu-request", v)).transpose()?;
        o.cpu_limit = self.cpu_limit.clone().map(|v| CpuQuantity::parse_field("cpu-limit", v)).transpose()?;
        o.memory_request =
            self.memory_request.clone().map(|v| MemoryQuantity::parse_field("memory-request", v)).transpose()?;
        o.memory_limit =
            self.memory_limit.clone().map(|v| MemoryQuantity::parse_field("memory-limit", v)).transpose()?;
        o.custom_manifests = self.custom_manifest.iter().map(ManifestFile::load).collect::<Result<_>>()?;
        o.extra_manifests = self.extra_manifest.iter().map(ManifestFile::load).collect::<Result<_>>()?;
        let switches = [
            (self.no_hpa, Component::Hpa),
            (self.no_pdb, Component::Pdb),
            (self.no_network_policy, Component::NetworkPolicy),
            (self.no_ingress, Component::Ingress),
            (self.no_service_monitor, Component::ServiceMonitor),
        ];
        o.disabled = switches.into_iter().filter(|(on, _)| *on).map(|(_, c)| c).collect();
        request.secrets = self.secret.iter().map(|s| s.parse()).collect::<Result<_>>()?;
        Ok(request.with_overrides(o))
    }
}
