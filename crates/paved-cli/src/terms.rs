//! The library's terms in hints and messages, in the CLI's words (see `paved_core::hint`).
//!
//! Library hints name request fields, options and library calls (`` `replicas` ``,
//! `` `Platform::status` ``); the CLI shows its flags and commands instead. Every library term
//! in this table occurs in the library's sources (a test checks it), so the table cannot rot.

use std::borrow::Cow;

/// `(library term, CLI term)`. Longer terms win over shorter ones at the same position.
pub(crate) const TERMS: &[(&str, &str)] = &[
    // Library calls → commands.
    ("`Platform::deploy`", "`paved deploy`"),
    ("`Platform::status`", "`paved status`"),
    ("`Platform::rollback`", "`paved rollback`"),
    ("`Platform::destroy`", "`paved destroy`"),
    ("`SecretStore::put` at ", "paved secrets put "),
    ("`SecretStore::get`", "`paved secrets get`"),
    ("`paved_policy::toolchain::build`", "`paved policy build DIR`"),
    ("`paved_pipeline::write`", "`paved pipeline generate`"),
    ("to `ScoreWorkload::load`", "to `paved deploy -f`"),
    ("set the `image` of `ScoreFlags`", "add `--image`"),
    ("to `ScoreWorkload::load`", "to `paved deploy -f`"),
    ("set the `image` of `ScoreFlags`", "add `--image`"),
    ("the plugin template has it", "`paved policy new` writes it"),
    ("the plugin template has one", "`paved policy new NAME` makes one"),
    // Request fields, options and parameters → flags.
    ("`replicas`", "`--replicas`"),
    ("`cpu_request`", "`--cpu-request`"),
    ("`cpu_limit`", "`--cpu-limit`"),
    ("`memory_request`", "`--memory-request`"),
    ("`memory_limit`", "`--memory-limit`"),
    ("`Component::NetworkPolicy` in `disabled`", "`--no-network-policy`"),
    ("`Component::Pdb` in `disabled`", "`--no-pdb`"),
    ("`Component::Hpa` in `disabled`", "`--no-hpa`"),
    ("`Component::Ingress` in `disabled`", "`--no-ingress`"),
    ("`Component::ServiceMonitor` in `disabled`", "`--no-service-monitor`"),
    ("`Component::Dashboard` in `disabled`", "`--no-dashboard`"),
    ("`Component::Alerts` in `disabled`", "`--no-alerts`"),
    ("`Component::Mesh` in `disabled`", "`--no-mesh`"),
    ("`custom_manifests`", "`--custom-manifest`"),
    ("`extra_manifests`", "`--extra-manifest`"),
    ("each of `secrets`", "each `--secret`"),
    ("the `target` kube", "`--target kube`"),
    ("disable the `service-monitor` component", "`--no-service-monitor`"),
    ("disable the `alerts` component", "`--no-alerts`"),
    ("disable the `mesh` component", "`--no-mesh`"),
    ("`auto_rollback` false", "`--no-rollback`"),
    ("`force_conflicts`", "`--force-conflicts`"),
    ("with `force`", "with `--force`"),
    ("with `drop_data`", "with `--drop-data`"),
    ("the `timeout`", "`--timeout`"),
    ("another `kubeconfig`", "another `--kubeconfig FILE`"),
    ("a `kubeconfig`", "`--kubeconfig FILE`"),
    ("`kubeconfig`", "`--kubeconfig`"),
    ("a `context`", "`--context NAME`"),
    ("`context`", "`--context`"),
    ("the `engine`", "`--engine`"),
    ("group `by` team or service", "use `--by team` or `--by service`"),
    ("a `catalog`", "`--catalog`"),
    ("another `state_dir`", "another `--state-dir`"),
    ("the path of the configuration file", "the `--config` path (or PAVED_CONFIG)"),
];

/// `text` in the CLI's words.
pub(crate) fn cli(text: &str) -> Cow<'_, str> {
    paved::hint::translate(text, TERMS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every library term of the table occurs in a library crate's sources.
    #[test]
    fn every_term_is_used_by_the_library() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut sources = String::new();
        let mut dirs = vec![crates.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.ends_with("paved-cli") || path.ends_with("tests") {
                    continue;
                }
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    sources.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let unused: Vec<&str> = TERMS.iter().map(|(from, _)| *from).filter(|t| !sources.contains(t)).collect();
        assert!(unused.is_empty(), "terms no library hint uses any more: {unused:?}");
    }

    #[test]
    fn hints_read_as_cli_commands() {
        assert_eq!(cli("set `replicas` to 1 or more"), "set `--replicas` to 1 or more");
        assert_eq!(
            cli("create it first with `SecretStore::put` at secret/payments/db KEY=VALUE"),
            "create it first with paved secrets put secret/payments/db KEY=VALUE"
        );
        assert_eq!(
            cli("give a `kubeconfig` (or set KUBECONFIG) and a `context`"),
            "give `--kubeconfig FILE` (or set KUBECONFIG) and `--context NAME`"
        );
        assert_eq!(
            cli("check the `context` (`kubectl config current-context`) and the `kubeconfig` (or KUBECONFIG)"),
            "check the `--context` (`kubectl config current-context`) and the `--kubeconfig` (or KUBECONFIG)"
        );
        assert_eq!(
            cli("lower `cpu_request` or raise `cpu_limit` too"),
            "lower `--cpu-request` or raise `--cpu-limit` too"
        );
    }
}
