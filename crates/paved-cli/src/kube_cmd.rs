//! The deploy target on the command line: `--target`, the kube target's `--context`,
//! `--kubeconfig`, `--timeout`, `--no-rollback`, `--force-conflicts`, `--history-max` (refused
//! on an environment of another target), and Ctrl-C handling.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use paved::{Assembled, Error, KubeOptions, OrgConfig, Result};

/// Deploy targets selectable with `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TargetKind {
    /// A live cluster: server-side apply, rollout watching, automatic rollback.
    Kube,
    /// The GitOps directory under the state directory.
    Gitops,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            TargetKind::Kube => paved::paved_kube::live::TARGET_NAME,
            TargetKind::Gitops => paved::paved_kube::gitops::TARGET_NAME,
        }
    }
}

/// Which target, and how to reach a cluster (`--context`, `--kubeconfig` apply to the kube
/// target only).
#[derive(Debug, Args)]
pub(crate) struct TargetSelect {
    /// The deploy target [default: the environment's `target` in paved.toml, else gitops].
    #[arg(long, value_enum, help_heading = "Target")]
    pub(crate) target: Option<TargetKind>,
    /// kube target: the kubeconfig context [default: the kubeconfig's current context].
    #[arg(long, value_name = "NAME", help_heading = "Target")]
    pub(crate) context: Option<String>,
    /// kube target: the kubeconfig [default: $KUBECONFIG, else ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub(crate) kubeconfig: Option<PathBuf>,
}

/// How a change rolls out on the kube target.
#[derive(Debug, Args)]
pub(crate) struct RolloutArgs {
    /// kube target: how long a rollout may take before it fails (e.g. 90s, 5m, 1h) [default: the Deployments' progressDeadlineSeconds plus 1m, i.e. 11m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Target")]
    pub(crate) timeout: Option<Duration>,
    /// kube target: leave a failed rollout in place instead of re-applying the previous revision (or, on a first deploy, removing its objects).
    #[arg(long, help_heading = "Target")]
    pub(crate) no_rollback: bool,
    /// kube target: take over fields that another field manager owns (server-side apply with force).
    #[arg(long, help_heading = "Target")]
    pub(crate) force_conflicts: bool,
    /// kube target: how many revisions the cluster keeps per app and environment [default: 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Target")]
    pub(crate) history_max: Option<u32>,
}

impl TargetSelect {
    /// Points `env` at the `--target` override and returns the kube target's settings (the
    /// library assembly builds the target; nothing is dialled unless it is used). A kube
    /// flag on an environment of another target is refused: it would do nothing.
    pub(crate) fn prepare(
        &self,
        config: &mut OrgConfig,
        env: Option<&str>,
        rollout: Option<&RolloutArgs>,
    ) -> Result<KubeOptions> {
        // `--target` redirects the environment, or (for `list`) every environment.
        if let Some(t) = self.target {
            for (name, e) in config.environments.iter_mut() {
                if env.is_none_or(|env| env == name) {
                    e.target = t.name().to_string();
                }
            }
        }
        let kube_flags: Vec<&str> = [
            ("--context", self.context.is_some()),
            ("--kubeconfig", self.kubeconfig.is_some()),
            ("--timeout", rollout.is_some_and(|r| r.timeout.is_some())),
            ("--no-rollback", rollout.is_some_and(|r| r.no_rollback)),
            ("--force-conflicts", rollout.is_some_and(|r| r.force_conflicts)),
            ("--history-max", rollout.is_some_and(|r| r.history_max.is_some())),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect();
        // The `--target` override is in `config` by now.
        paved::assembly::refuse_kube_only(config, env, None, ("flag", &kube_flags), "--target kube")?;
        let mut options = KubeOptions::default();
        options.kubeconfig = self.kubeconfig.clone();
        options.context = self.context.clone();
        if let Some(r) = rollout {
            options.timeout = r.timeout;
            options.auto_rollback = Some(!r.no_rollback);
            options.force_conflicts = Some(r.force_conflicts);
            options.history_max = Some(r.history_max.unwrap_or(10) as usize);
        }
        Ok(options)
    }
}

/// `90`, `90s`, `5m`, `1h`, `1m30s`.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("\"{s}\" is not a duration; use e.g. 90s, 5m or 1h");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Runs `work`; on Ctrl-C, drops it (the kube target then restores the previous release in
/// the background), waits for that recovery, and reports what the cluster runs.
pub(crate) async fn interruptible<T>(target: &Assembled, work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: restoring the previous release (press Ctrl-C again to stop waiting)");
            let settle = target.settle();
            let reports = tokio::select! {
                r = settle => r,
                _ = tokio::signal::ctrl_c() => vec!["stopped waiting: the recovery did not finish; check paved status".to_string()],
            };
            let message = if reports.is_empty() {
                "cancelled before anything was applied".to_string()
            } else {
                reports.join("; ")
            };
            Err(Error::backend("cli", format!("cancelled: {message}"), Some("see paved status and paved history".to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5m3").is_err());
    }
}
