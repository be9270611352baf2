//! `paved pipeline generate|check`: CI pipelines from `.platform.yaml`, and `.platform.yaml`
//! as the source of `paved deploy|diff|render` run without `--app`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use paved::{DeployRequest, Error, OrgConfig, PlatformFile, Result};
use paved_pipeline::{Ci, Written};
use serde_json::json;

use crate::args::Format;
use crate::output;

/// `paved pipeline …`
#[derive(Debug, Subcommand)]
pub(crate) enum PipelineCommand {
    /// Write the CI pipeline of the template `.platform.yaml` names: .github/workflows/paved.yml,
    /// or .gitlab-ci.yml with --ci gitlab (a file paved did not write is kept unless --force).
    #[command(after_help = "Examples:
  paved pipeline generate
  paved pipeline generate --ci gitlab
  paved pipeline generate --stdout | less")]
    Generate {
        #[command(flatten)]
        source: Source,
        /// Print the pipeline on stdout; write nothing.
        #[arg(long, conflicts_with = "force")]
        stdout: bool,
        /// Overwrite a pipeline file that paved did not generate.
        #[arg(long)]
        force: bool,
    },
    /// Compare the committed pipeline with what its template generates now: exit 0 when equal,
    /// 1 with a unified diff when it drifted (run `paved pipeline generate` and commit).
    #[command(after_help = "Examples:
  paved pipeline check
  paved pipeline check --ci gitlab -o json")]
    Check {
        #[command(flatten)]
        source: Source,
    },
}

/// Which `.platform.yaml`, and which CI system.
#[derive(Debug, Args)]
pub(crate) struct Source {
    /// The CI system.
    #[arg(long, value_enum, default_value_t = CiArg::Github)]
    ci: CiArg,
    /// The .platform.yaml; the pipeline goes beside it [default: .platform.yaml from the
    /// working directory up to the repository's root].
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// `--ci`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum CiArg {
    /// GitHub Actions: .github/workflows/paved.yml.
    Github,
    /// GitLab CI: .gitlab-ci.yml.
    Gitlab,
}

impl From<CiArg> for Ci {
    fn from(c: CiArg) -> Ci {
        match c {
            CiArg::Github => Ci::GitHub,
            CiArg::Gitlab => Ci::GitLab,
        }
    }
}

/// The `.platform.yaml` of the working directory's repository: `Ok(None)` when there is none.
fn discover() -> Result<Option<PlatformFile>> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    paved::platform_file::discover(cwd)
}

fn load(file: Option<&Path>) -> Result<PlatformFile> {
    match file {
        Some(path) => PlatformFile::load(path),
        None => discover()?.ok_or_else(|| Error::Manifest {
            path: PathBuf::from(paved::PLATFORM_FILE),
            line: None,
            message: "there is no .platform.yaml in this directory or above it (up to the repository's root)".into(),
            hint: Some(
                "write one at the repository's root, e.g. `pipeline: nodejs-service`, `tests: npm test`, `deploy_to: [staging, production]`; or name it with --file"
                    .into(),
            ),
        }),
    }
}

/// The directory the pipeline goes into: the one holding `.platform.yaml`.
fn root_of(file: &PlatformFile) -> PathBuf {
    match file.source.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Runs `paved pipeline …`.
pub(crate) fn pipeline(cmd: PipelineCommand, config: &OrgConfig, format: Format) -> Result<ExitCode> {
    match cmd {
        PipelineCommand::Generate { source, stdout, force } => {
            let file = load(source.file.as_deref())?;
            let pipeline = paved_pipeline::generate(&file, config, source.ci.into())?;
            if stdout {
                output::raw(&pipeline.text);
                return Ok(ExitCode::SUCCESS);
            }
            let root = root_of(&file);
            let written = paved_pipeline::write(&root, &pipeline, force)?;
            let path = root.join(&pipeline.path);
            let text = || {
                let what = match written {
                    Written::Created => "wrote",
                    Written::Updated => "updated",
                    _ => "unchanged:",
                };
                format!("{what} {} (template {}, {}); commit it\n", path.display(), pipeline.template, pipeline.origin)
            };
            let value = json!({
                "path": path, "ci": pipeline.ci, "template": pipeline.template,
                "origin": pipeline.origin, "written": written,
            });
            print(format, text, &value);
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Check { source } => {
            let file = load(source.file.as_deref())?;
            let pipeline = paved_pipeline::generate(&file, config, source.ci.into())?;
            let generate = match pipeline.ci {
                Ci::GitLab => "`paved pipeline generate --ci gitlab`",
                _ => "`paved pipeline generate`",
            };
            let drift = paved_pipeline::check(&root_of(&file), &pipeline).map_err(|e| match e {
                Error::NotFound { what, .. } => {
                    Error::NotFound { what, hint: Some(format!("generate it with {generate} and commit it")) }
                }
                e => e,
            })?;
            let text = || match drift.drifted {
                true => format!(
                    "{}{} drifted from template {}: run {generate} and commit\n",
                    drift.diff,
                    drift.path.display(),
                    drift.template,
                ),
                false => format!("{} matches template {}\n", drift.path.display(), drift.template),
            };
            print(format, text, &drift);
            Ok(if drift.drifted { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}

fn print(format: Format, text: impl FnOnce() -> String, value: &impl serde::Serialize) {
    match format {
        Format::Text => output::raw(&text()),
        _ => output::document(format, value),
    }
}

/// The request of `paved deploy|diff|render` run without `--app`: what `.platform.yaml`
/// describes for `image` in `env`, its environments checked against the organisation's, with
/// the databases its `databases` key asks for (provisioned as a Score file's are).
pub(crate) fn platform_request(
    config: &OrgConfig,
    image: &str,
    env: &str,
) -> Result<(DeployRequest, Vec<paved::DatabaseRequest>)> {
    let file = discover()?.ok_or_else(|| Error::Manifest {
        path: PathBuf::from(paved::PLATFORM_FILE),
        line: None,
        message: "no --app, and there is no .platform.yaml in this directory or above it".into(),
        hint: Some("name the app with --app, or write a .platform.yaml at the repository's root".into()),
    })?;
    file.check_against(config)?;
    let request = file.request(image, env)?;
    let team = config.team(request.team.as_ref())?;
    let databases = file.database_requests(&team, env)?;
    Ok((request, databases))
}

/// Commits as `SHA@RFC3339` (`--commit`).
pub(crate) fn commits(values: &[String]) -> Result<Vec<paved::Commit>> {
    values
        .iter()
        .map(|c| {
            let bad = |reason: &str| {
                Error::invalid(
                    "--commit",
                    c.as_str(),
                    reason,
                    Some("write --commit SHA@TIME, e.g. a1b2c3d@2026-11-01T10:00:00Z (git log --format=%H@%cI)".into()),
                )
            };
            let (sha, at) = c.split_once('@').ok_or_else(|| bad("is not SHA@TIME"))?;
            if sha.len() < 4 || sha.len() > 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("does not start with a commit SHA (hexadecimal)"));
            }
            let committed_at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad("does not end with an RFC 3339 time"))?;
            Ok(paved::Commit { sha: sha.to_ascii_lowercase(), committed_at })
        })
        .collect()
}
