//! What the CLI does around the commands: parsing (typo suggestions, short help without
//! arguments), logging, the actor, shell completions, man pages and the Markdown reference.

use std::path::Path;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use paved::{Error, Result};

use crate::args::{Cli, EXIT_CODES};

/// The first command a newcomer runs.
const FIRST_COMMAND: &str =
    "paved deploy --app my-service --image ghcr.io/company/my-service:v1.2.3 --env production --replicas 3";

/// Parses the command line. `None`: `paved` alone printed its short help (exit 0). A mistyped
/// command gets suggestions ranked by edit distance (transpositions count as one edit).
pub(crate) fn parse() -> Option<Cli> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.len() == 1 {
        let mut cmd = Cli::command();
        crate::output::raw(&format!("{}\nStart with:\n  {FIRST_COMMAND}\n", cmd.render_help().to_string().trim_end()));
        return None;
    }
    match Cli::try_parse_from(&argv) {
        Ok(cli) => Some(cli),
        Err(e) => {
            let e = match e.kind() {
                ErrorKind::InvalidSubcommand => suggest_subcommand(e, &argv),
                _ => e,
            };
            if e.use_stderr()
                && let Some(format) = document_format(&argv)
            {
                // A script asked for a document: a usage error is one too.
                let rendered = e.render().to_string();
                let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                let hint = "see `paved --help` for the commands and flags";
                crate::output::document(
                    format,
                    &serde_json::json!({"error": {"kind": "invalid_input", "message": message, "hint": hint}}),
                );
            }
            e.exit()
        }
    }
}

/// The document format the command line asks for (`-o json`, `--output=yaml`), if any.
fn document_format(argv: &[String]) -> Option<crate::args::Format> {
    let value = argv.iter().enumerate().find_map(|(i, a)| match a.as_str() {
        "-o" | "--output" => argv.get(i + 1).map(String::as_str),
        other => other.strip_prefix("--output=").or_else(|| other.strip_prefix("-o")).filter(|v| !v.is_empty()),
    })?;
    match value {
        "json" => Some(crate::args::Format::Json),
        "yaml" => Some(crate::args::Format::Yaml),
        _ => None,
    }
}

/// Replaces clap's suggestions for an unknown subcommand with the nearest by edit distance.
fn suggest_subcommand(e: clap::Error, argv: &[String]) -> clap::Error {
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand).cloned() else { return e };
    // The command whose subcommands were expected: follow the known names in argv.
    let mut cmd = Cli::command();
    for arg in argv.iter().skip(1).take_while(|a| **a != typed) {
        if let Some(sub) = cmd.find_subcommand(arg).cloned() {
            cmd = sub;
        }
    }
    let names: Vec<String> =
        cmd.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect();
    let suggestions = nearest(&typed, names.iter().map(String::as_str));
    // A fresh error: clap's own suggestions are ranked otherwise, and no tip beats an empty one.
    let mut out = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&cmd);
    out.insert(ContextKind::InvalidSubcommand, ContextValue::String(typed));
    if !suggestions.is_empty() {
        out.insert(ContextKind::SuggestedSubcommand, ContextValue::Strings(suggestions));
    }
    if let Some(usage) = e.get(ContextKind::Usage) {
        out.insert(ContextKind::Usage, usage.clone());
    }
    out
}

/// The candidates within two edits of `typed` (or a third of its length), nearest first.
pub(crate) fn nearest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = 2.max(typed.chars().count() / 3);
    let mut scored: Vec<(usize, &str)> =
        candidates.map(|c| (strsim::osa_distance(typed, c), c)).filter(|(d, _)| *d <= limit).collect();
    scored.sort();
    let best = scored.first().map(|(d, _)| *d);
    // Only the best matches: `depoly` names deploy, not also destroy and policy.
    scored.into_iter().filter(|(d, _)| Some(*d) == best).map(|(_, c)| c.to_string()).collect()
}

/// paved's own crates, whose logs `-v` and `PAVED_LOG` turn up (libraries' stay at warnings).
const PAVED_CRATES: [&str; 10] = [
    "paved",
    "paved_core",
    "paved_kube",
    "paved_vault",
    "paved_aws",
    "paved_policy",
    "paved_metrics",
    "paved_notify",
    "paved_admission",
    "paved_cli",
];

/// Progress of long waits inside a backend (a database becoming available), shown at INFO
/// unless `-q`.
const PROGRESS_TARGET: &str = "paved::progress";

/// Logging on stderr, of paved's crates: warnings by default, `-v` debug, `-vv` trace (of
/// every crate), else the level in `PAVED_LOG` or `RUST_LOG`; `-q` errors only. Other crates
/// log nothing unless `-v` (warnings) or `-vv`.
pub(crate) fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let from_env = ["PAVED_LOG", "RUST_LOG"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|v| v.trim().parse::<LevelFilter>().ok());
    let (own, others) = match (quiet, verbose) {
        (true, _) => (LevelFilter::ERROR, LevelFilter::OFF),
        (false, 0) => (from_env.unwrap_or(LevelFilter::WARN), LevelFilter::OFF),
        (false, 1) => (LevelFilter::DEBUG, LevelFilter::WARN),
        (false, _) => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let mut filter = PAVED_CRATES.iter().fold(Targets::new().with_default(others), |t, c| t.with_target(*c, own));
    if !quiet {
        filter = filter.with_target(PROGRESS_TARGET, own.max(LevelFilter::INFO));
    }
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).without_time();
    let _ = tracing_subscriber::registry().with(layer.with_filter(filter)).try_init();
}

/// A configuration error's hint names where the path came from: `PAVED_CONFIG` when the
/// environment set it (and `--config` did not), else `--config`.
pub(crate) fn name_config_source(e: Error) -> Error {
    let from_env = std::env::var_os("PAVED_CONFIG").is_some()
        && !std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
    let source = if from_env { "the PAVED_CONFIG path (set in the environment)" } else { "the `--config` path" };
    let rename = |hint: Option<String>| hint.map(|h| h.replace("the path of the configuration file", source));
    match e {
        Error::Config { path, line, message, hint } => Error::Config { path, line, message, hint: rename(hint) },
        Error::Manifest { path, line, message, hint } => Error::Manifest { path, line, message, hint: rename(hint) },
        other => other,
    }
}

/// `paved completion SHELL`.
pub(crate) fn completion(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "paved", &mut out);
    crate::output::raw(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

/// `paved man`: the page of `paved` on stdout, or every command's page into `dir`.
pub(crate) fn man(dir: Option<&Path>) -> Result<ExitCode> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out).map_err(|e| Error::io("<stdout>", e))?;
        crate::output::raw(&String::from_utf8_lossy(&out));
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let pages = pages(&cmd);
    for (words, page) in &pages {
        let name = words.join("-");
        let mut out = Vec::new();
        clap_mangen::Man::new(page.clone())
            .title(name.to_uppercase())
            .render(&mut out)
            .map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, out).map_err(|e| Error::io(&path, e))?;
    }
    err!("wrote {} manual pages to {}", pages.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Every visible command with its words (`["paved", "metrics", "dora"]`).
fn collect(cmd: &clap::Command, words: &[String], out: &mut Vec<(Vec<String>, clap::Command)>) {
    out.push((words.to_vec(), cmd.clone()));
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help") {
        collect(sub, &[words, &[sub.get_name().to_string()]].concat(), out);
    }
}

/// Every visible command of paved.
fn pages(cmd: &clap::Command) -> Vec<(Vec<String>, clap::Command)> {
    let mut out = Vec::new();
    collect(cmd, &["paved".to_string()], &mut out);
    out
}

/// The Markdown reference of every command: its `--help`, as the README carries it.
pub(crate) fn reference() -> String {
    let mut cmd = Cli::command().term_width(100);
    cmd.build();
    let mut out = String::from("<!-- generated by `paved reference`; a test keeps the README equal to it -->\n\n");
    out.push_str(&format!("```text\n{EXIT_CODES}\n```\n"));
    for (words, mut page) in pages(&cmd) {
        let help = page.render_help().to_string();
        out.push_str(&format!("\n### `{}`\n\n```text\n{}\n```\n", words.join(" "), help.trim_end()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_rank_by_edit_distance_with_transpositions() {
        let commands = ["deploy", "diff", "render", "rollback", "status", "history", "list", "destroy", "policy"];
        assert_eq!(nearest("depoly", commands.iter().copied()), ["deploy"]);
        assert_eq!(nearest("histroy", commands.iter().copied()), ["history"]);
        assert_eq!(nearest("stauts", commands.iter().copied()), ["status"]);
        assert!(nearest("zzzzzz", commands.iter().copied()).is_empty());
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        for (words, cmd) in pages(&Cli::command()) {
            let help = cmd.get_after_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains("Examples:"), "{} has no examples in its help", words.join(" "));
        }
    }
}
