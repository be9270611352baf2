//! Command-line arguments.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::kube_cmd::{RolloutArgs, TargetSelect};

/// The exit codes, as every command uses them (also in `paved --help`).
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success (`paved diff`: no changes)
  1  the operation failed or was denied by policy; something named was not found
     (`paved diff`: there are changes; `paved status`: the target drifted;
     `paved pipeline check`: the pipeline drifted from its template)
  2  bad input: an unknown flag, value, environment or file, a malformed manifest;
     nothing was written (`paved diff`: 2 for bad input, 3 for a failure)";

const ROOT_HELP: &str = "\
Examples:
  paved deploy --app my-service --image ghcr.io/company/my-service:v1.2.3 \\
    --env production --replicas 3
  paved diff --app my-service --image ghcr.io/company/my-service:v1.2.4 --env production
  paved list
  paved status --app my-service --env production

Environment:
  PAVED_CONFIG     the organisation configuration (as --config)
  PAVED_STATE_DIR  where releases are kept (as --state-dir)
  PAVED_ACTOR      who deploys, in the release record [default: the git user, else $USER]
  PAVED_LOG        log level on stderr: error, warn, info, debug, trace (RUST_LOG too)

Exit codes:
  0  success;  1  failure, denial or not found;  2  bad input (nothing written)";

/// paved: golden paths for product teams. Deploy with one call and get a namespace, secure
/// manifests, autoscaling, monitoring and a URL.
#[derive(Debug, Parser)]
#[command(name = "paved", version, about, max_term_width = 100, after_help = ROOT_HELP)]
pub(crate) struct Cli {
    /// The organisation configuration [default: paved.toml from the working directory upwards,
    /// else built-in defaults].
    #[arg(long, global = true, env = "PAVED_CONFIG", value_name = "FILE", help_heading = "Global options")]
    pub(crate) config: Option<PathBuf>,
    /// Where releases are kept [default: ./.paved].
    #[arg(long, global = true, env = "PAVED_STATE_DIR", value_name = "DIR", help_heading = "Global options")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Output format: text for people, or one JSON or YAML document on stdout.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Text, help_heading = "Global options")]
    pub(crate) output: Format,
    /// Print results and errors only: no progress lines.
    #[arg(long, short, global = true, conflicts_with = "verbose", help_heading = "Global options")]
    pub(crate) quiet: bool,
    /// Log what paved does on stderr (-v debug, -vv trace; PAVED_LOG or RUST_LOG set a level).
    #[arg(long, short, global = true, action = ArgAction::Count, help_heading = "Global options")]
    pub(crate) verbose: u8,
    /// Never print emoji (the default when stdout is not a terminal).
    #[arg(long, global = true, conflicts_with = "emoji", help_heading = "Global options")]
    pub(crate) no_emoji: bool,
    /// Print emoji even when stdout is not a terminal.
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) emoji: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
    /// One YAML document on stdout.
    Yaml,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Deploy an app: validate, render, check policy, apply to the environment's target, record.
    #[command(after_help = "Examples:
  paved deploy --app my-service --image ghcr.io/company/my-service:v1.2.3 \\
    --env production --replicas 3
  paved deploy --app my-service --image ghcr.io/company/my-service:v1.2.4 --env staging --diff
  paved deploy --app my-service --image ghcr.io/company/my-service:v1.2.4 \\
    --env production --dry-run -o json
  paved deploy --app my-service --image ghcr.io/company/my-service:v1.2.3 --env dev \\
    --cpu-limit 2000m --custom-manifest overrides.yaml
  paved deploy -f score.yaml --env staging")]
    Deploy {
        #[command(flatten)]
        args: DeployArgs,
        /// A commit this deploy ships, as SHA@RFC3339 (repeatable; `git log --format=%H@%cI`):
        /// recorded with the deployment for lead time for changes.
        #[arg(long = "commit", value_name = "SHA@TIME")]
        commits: Vec<String>,
        /// Do everything but apply: print what the deploy would give (the same shape as a deploy's result).
        #[arg(long)]
        dry_run: bool,
        /// Print a diff against the current revision first (with --dry-run: only the diff).
        #[arg(long)]
        diff: bool,
        #[command(flatten)]
        target: TargetSelect,
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// Show what a deploy would change: a unified diff per object against the current revision.
    /// Exit code 0: no changes, 1: changes (like diff and kubectl diff).
    #[command(after_help = "Examples:
  paved diff --app my-service --image ghcr.io/company/my-service:v1.2.4 --env production
  paved diff --app my-service --image ghcr.io/company/my-service:v1.2.3 --env production \\
    --no-hpa -o json")]
    Diff {
        #[command(flatten)]
        args: DeployArgs,
        #[command(flatten)]
        target: TargetSelect,
    },
    /// Print the objects a deploy would apply, as multi-document YAML; writes nothing.
    #[command(after_help = "Examples:
  paved render --app my-service --image ghcr.io/company/my-service:v1.2.3 \\
    --env production > release.yaml
  paved render --app my-service --image ghcr.io/company/my-service:v1.2.3 --env dev -o json
  paved render -f score.yaml --env staging --image ghcr.io/company/my-service:v1.2.4")]
    Render(DeployArgs),
    /// Restore an earlier revision (default: the previous one) as a new revision.
    #[command(after_help = "Examples:
  paved rollback --app my-service --env production
  paved rollback --app my-service --env production --to 3")]
    Rollback {
        #[command(flatten)]
        app: AppEnv,
        /// The revision to restore.
        #[arg(long, value_name = "REV")]
        to: Option<u64>,
        #[command(flatten)]
        target: TargetSelect,
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// Show the current revision and whether the target matches it (exit code 1 when it drifted).
    #[command(after_help = "Examples:
  paved status --app my-service --env production
  paved status --app my-service --env production -o json")]
    Status {
        #[command(flatten)]
        app: AppEnv,
        #[command(flatten)]
        target: TargetSelect,
    },
    /// List the revisions of an app, newest first.
    #[command(after_help = "Examples:
  paved history --app my-service --env production
  paved history --app my-service --env production --max 5 -o json")]
    History {
        #[command(flatten)]
        app: AppEnv,
        /// Show at most this many revisions.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max: Option<u64>,
        #[command(flatten)]
        target: TargetSelect,
    },
    /// List every deployed app: environment, revision, image, status and age.
    #[command(after_help = "Examples:
  paved list
  paved list --env production -o json")]
    List {
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        target: TargetSelect,
    },
    /// Remove everything paved created for an app in an environment: on the gitops target its
    /// directory and release records (one commit; Argo CD and Flux prune the objects), on the
    /// kube target its objects and history in the cluster.
    #[command(after_help = "Examples:
  paved destroy --app my-service --env dev
  paved destroy --app my-service --env dev --target kube --context kind-dev")]
    Destroy {
        #[command(flatten)]
        app: AppEnv,
        #[command(flatten)]
        target: TargetSelect,
    },
    /// Import or record platform events (deployments and incidents from CI and incident tools).
    #[command(
        subcommand,
        after_help = "Examples:
  paved events import deployments.jsonl
  paved events record --type incident --id INC-7 --service checkout --team shop \\
    --opened-at 2026-11-01T10:00:00Z"
    )]
    Events(crate::metrics_cmd::EventsCommand),
    /// DORA keys, adoption, and the Prometheus endpoint.
    #[command(
        subcommand,
        after_help = "Examples:
  paved metrics dora --team payments
  paved metrics adoption --window 90d
  paved metrics serve --listen 0.0.0.0:9464"
    )]
    Metrics(crate::metrics_cmd::MetricsCommand),
    /// Read and write secrets in Vault / OpenBao KV v2 (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
    /// VAULT_CACERT; BAO_ADDR and BAO_TOKEN too).
    #[cfg(feature = "vault")]
    #[command(
        subcommand,
        after_help = "Examples:
  paved secrets put secret/payments/db username=app password=-
  paved secrets get secret/payments/db"
    )]
    Secrets(crate::secrets_cmd::SecretsCommand),
    /// Self-service databases: provision, status, deprovision (Vault database secrets engine, AWS RDS, DocumentDB).
    #[command(
        subcommand,
        after_help = "Examples:
  paved db provision --team payments --service checkout --engine postgres --env staging \\
    --size small
  paved db status --team payments --service checkout --engine postgres --env staging"
    )]
    Db(crate::db_cmd::DbCommand),
    /// Organisation policies as WebAssembly plugins: check objects, build, scaffold, list.
    #[cfg(feature = "policy")]
    #[command(
        subcommand,
        after_help = "Examples:
  paved policy list
  paved render --app my-service --image ghcr.io/company/my-service:v1.2.3 \\
    --env production | paved policy check --file -
  paved policy new require-team-label --lang rust"
    )]
    Policy(crate::policy_cmd::PolicyCommand),
    /// The policies at Kubernetes admission: serve them as a validating and mutating webhook,
    /// render the manifests that run it, audit what already runs.
    #[cfg(feature = "admission")]
    #[command(
        subcommand,
        after_help = "Examples:
  paved admission serve --cert tls.crt --key tls.key
  paved admission install --render | kubectl apply -f -
  paved admission audit --target kube"
    )]
    Admission(crate::admission_cmd::AdmissionCommand),
    /// CI pipelines from .platform.yaml: generate them from templates, check them for drift.
    #[command(
        subcommand,
        after_help = "Examples:
  paved pipeline generate
  paved pipeline generate --ci gitlab
  paved pipeline check"
    )]
    Pipeline(crate::pipeline_cmd::PipelineCommand),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  paved completion bash > /etc/bash_completion.d/paved
  paved completion zsh > \"${fpath[1]}/_paved\"
  paved completion fish > ~/.config/fish/completions/paved.fish")]
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_help = "Examples:
  paved man | man -l -
  paved man --dir /usr/local/share/man/man1")]
    Man {
        /// Write paved.1 and one page per command (paved-deploy.1, …) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the CLI reference of every command as Markdown (the README's "CLI reference").
    #[command(hide = true)]
    Reference,
}

/// Which app in which environment.
#[derive(Debug, Args)]
pub(crate) struct AppEnv {
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
    /// A Score workload file (score.dev, score.dev/v1b1); flags override what it says.
    #[arg(short = 'f', long = "file", value_name = "SCORE_FILE")]
    pub(crate) file: Option<PathBuf>,
    /// The app name (a DNS label: lowercase letters, digits, '-') [default: metadata.name of the
    /// -f file, or from .platform.yaml, whose values the flags override].
    #[arg(long)]
    pub(crate) app: Option<String>,
    /// The container image, e.g. ghcr.io/company/my-service:v1.2.3 [default with -f: the file's].
    #[arg(long, required_unless_present = "file")]
    pub(crate) image: Option<String>,
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
    /// Escape hatch: an overlay merged into the rendered objects as a strategic merge patch (repeatable).
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
    /// Escape hatch: no Grafana dashboard (where the environment renders one).
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_dashboard: bool,
    /// Escape hatch: no PrometheusRule alerts (where the environment renders them).
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_alerts: bool,
    /// Escape hatch: no OpenTelemetry variables (where the environment sets them).
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_tracing: bool,
    /// Escape hatch: the app's pods stay out of the environment's service mesh (no sidecar, no
    /// mutual TLS policy, no mesh ports).
    #[arg(long, help_heading = "Escape hatches")]
    pub(crate) no_mesh: bool,
}
