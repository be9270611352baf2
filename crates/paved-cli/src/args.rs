//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// paved: golden paths for product teams. Deploy with one call and get a namespace, secure
/// manifests, autoscaling, monitoring and a URL.
#[derive(Debug, Parser)]
#[command(name = "paved", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// The organisation configuration [default: paved.toml from the working directory upwards,
    /// else built-in defaults].
    #[arg(long, global = true, env = "PAVED_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where releases are kept [default: ./.paved].
    #[arg(long, global = true, env = "PAVED_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Text)]
    pub(crate) output: Format,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For humans.
    Text,
    /// JSON on stdout.
    Json,
    /// YAML on stdout.
    Yaml,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Deploy an app: validate, render, check policy, apply to the environment's target, record.
    Deploy {
        #[command(flatten)]
        args: DeployArgs,
        /// Do everything but apply; print the plan.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        kube: crate::kube_cmd::KubeArgs,
    },
    /// Print the objects a deploy would apply, as multi-document YAML; writes nothing.
    Render(DeployArgs),
    /// Restore an earlier revision (default: the previous one) as a new revision.
    Rollback {
        #[command(flatten)]
        target: TargetArgs,
        /// The revision to restore.
        #[arg(long, value_name = "REV")]
        to: Option<u64>,
        #[command(flatten)]
        kube: crate::kube_cmd::KubeArgs,
    },
    /// Show the current revision and whether the target matches it.
    Status {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        kube: crate::kube_cmd::KubeArgs,
    },
    /// List the revisions of an app, newest first.
    History {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        kube: crate::kube_cmd::KubeArgs,
    },
    /// Remove everything paved created for an app in an environment (objects and history).
    Destroy {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        kube: crate::kube_cmd::KubeArgs,
    },
    /// Import or record platform events (deployments and incidents from CI and incident tools).
    #[command(subcommand)]
    Events(crate::metrics_cmd::EventsCommand),
    /// DORA keys, adoption, and the Prometheus endpoint.
    #[command(subcommand)]
    Metrics(crate::metrics_cmd::MetricsCommand),
    /// Read and write secrets in Vault / OpenBao KV v2 (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
    /// VAULT_CACERT; BAO_ADDR and BAO_TOKEN too).
    #[cfg(feature = "vault")]
    #[command(subcommand)]
    Secrets(crate::secrets_cmd::SecretsCommand),
    /// Self-service databases: provision, status, deprovision (Vault database secrets engine).
    #[command(subcommand)]
    Db(crate::db_cmd::DbCommand),
    /// Organisation policies as WebAssembly plugins: check objects, build, scaffold, list.
    #[cfg(feature = "policy")]
    #[command(subcommand)]
    Policy(crate::policy_cmd::PolicyCommand),
}

/// Which app in which environment.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The app.
    #[arg(long)]
    pub(crate) app: String,
    /// The environment.
    #[arg(long)]
    pub(crate) env: String,
}

/// What to deploy, and the escape hatches.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The app name (a DNS label: lowercase letters, digits, '-').
    #[arg(long)]
    pub(crate) app: String,
    /// The container image, e.g. ghcr.io/company/my-service:v1.2.3.
    #[arg(long)]
    pub(crate) image: String,
    /// The environment, e.g. production.
    #[arg(long)]
    pub(crate) env: String,
    /// Replicas (the autoscaler's minimum) [default: the environment's].
    #[arg(long)]
    pub(crate) replicas: Option<u32>,
    /// The owning team [default: the configuration's default team].
    #[arg(long)]
    pub(crate) team: Option<String>,
    /// An environment variable from a secret: NAME=vault://MOUNT/PATH#KEY or NAME=k8s://SECRET#KEY
    /// (repeatable); how vault values reach the app is `[secrets] mode` in paved.toml.
    #[arg(long, value_name = "NAME=REF")]
    pub(crate) secret: Vec<String>,
    /// Escape hatch: CPU request, e.g. 500m.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) cpu_request: Option<String>,
    /// Escape hatch: CPU limit, e.g. 2000m.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) cpu_limit: Option<String>,
    /// Escape hatch: memory request, e.g. 256Mi.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) memory_request: Option<String>,
    /// Escape hatch: memory limit, e.g. 1Gi.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) memory_limit: Option<String>,
    /// Escape hatch: an overlay merged into the rendered objects (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Escape hatches")]
    pub(crate) custom_manifest: Vec<PathBuf>,
    /// Escape hatch: extra objects added to the release (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Escape hatches")]
    pub(crate) extra_manifest: Vec<PathBuf>,
    /// Escape hatch: no HorizontalPodAutoscaler.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_hpa: bool,
    /// Escape hatch: no PodDisruptionBudget.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_pdb: bool,
    /// Escape hatch: no NetworkPolicy.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_network_policy: bool,
    /// Escape hatch: no Ingress (and no public URL).
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_ingress: bool,
    /// Escape hatch: no ServiceMonitor.
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_service_monitor: bool,
}
