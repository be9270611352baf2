//! Everything the CLI prints: progress, results, errors.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use paved::{
    DeployOutcome, DestroyOutcome, Error, Manifests, Plan, Progress, ReleaseCause, ReleaseRecord, ReleaseStatus,
    RevisionState, Step,
};
use serde::Serialize;

use crate::args::Format;
use crate::terms;

/// `println!` to stdout that ignores a closed pipe (`paved history | head -1`): the command
/// finishes its work and exits with its own code instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A progress callback.
pub(crate) type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Prints in the chosen format.
pub(crate) struct Printer {
    format: Format,
    spinner: Option<ProgressBar>,
}

impl Printer {
    pub(crate) fn new(format: Format) -> Self {
        let spinner = (format == Format::Text && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            pb.enable_steady_tick(Duration::from_millis(80));
            pb
        });
        Printer { format, spinner }
    }

    /// A progress callback: a spinner on a terminal, plain lines on stdout otherwise (text
    /// output only; JSON and YAML stay machine-readable).
    pub(crate) fn progress_sink(&self) -> Option<ProgressSink> {
        if self.format != Format::Text {
            return None;
        }
        match &self.spinner {
            Some(pb) => {
                let pb = Mutex::new(pb.clone());
                Some(Arc::new(move |p: &Progress| {
                    let pb = pb.lock().expect("not poisoned");
                    match (p.step, p.done) {
                        // Rollout progress: a bar that moves, not a line per update.
                        (Step::Watch, Some((done, of))) => {
                            pb.set_style(
                                ProgressStyle::with_template("{spinner} rolling out [{bar:24}] {msg}")
                                    .expect("valid template")
                                    .progress_chars("=> "),
                            );
                            pb.set_length(of);
                            pb.set_position(done);
                            pb.set_message(p.message.clone());
                            if done == of {
                                pb.println(format!("  ✓ {}", p.message));
                                pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
                            }
                        }
                        _ => {
                            pb.println(format!("  {} {}", progress_mark(p), terms::cli(&p.message)));
                            pb.set_message(p.message.clone());
                        }
                    }
                }))
            }
            None => Some(Arc::new(|p: &Progress| out!("  {} {}", progress_mark(p), terms::cli(&p.message)))),
        }
    }

    fn done(&self) {
        if let Some(pb) = &self.spinner {
            pb.finish_and_clear();
        }
    }

    fn structured<T: Serialize>(&self, value: &T) -> bool {
        match self.format {
            Format::Text => return false,
            Format::Json => out!("{}", serde_json::to_string_pretty(value).expect("serializable")),
            Format::Yaml => {
                out!("{}", paved::yaml::to_string(&serde_json::to_value(value).expect("serializable")).trim_end())
            }
        }
        true
    }

    pub(crate) fn manifests(&self, manifests: &Manifests) {
        self.done();
        if self.format == Format::Json {
            self.structured(manifests);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(manifests.to_yaml().as_bytes());
        }
    }

    pub(crate) fn plan(&self, plan: &Plan) {
        self.done();
        if self.structured(plan) {
            return;
        }
        let app = &plan.app;
        out!("Plan for {} in {} (target {}):", app.app, app.environment.name, plan.target);
        for m in &plan.manifests {
            out!("  {} {}", m.kind(), m.name());
        }
        print_hatches(&app.escape_hatches);
        for w in plan.policy.warnings() {
            out!("⚠️  [{}] {}", w.policy, w.message);
        }
        out!("dry run: nothing was written");
    }

    pub(crate) fn deployed(&self, outcome: &DeployOutcome) {
        self.done();
        if self.structured(outcome) {
            return;
        }
        let r = &outcome.record;
        print_hatches(&r.escape_hatches);
        if outcome.changed && r.state.is_some() {
            out!("🚀 revision {} rolled out to {}", r.revision, outcome.location);
            out!("✅ {} deployed to {}", r.app, r.environment);
        } else if outcome.changed {
            out!("📦 revision {} written to {}", r.revision, outcome.location);
            out!("✅ {} deployed to {}", r.app, r.environment);
        } else if outcome.restored {
            out!("🩹 {} had drifted from revision {}: restored it", outcome.location, r.revision);
            out!("✅ {} is up to date in {} (revision {})", r.app, r.environment, r.revision);
        } else {
            out!("✅ {} is already up to date in {} (revision {}, nothing changed)", r.app, r.environment, r.revision);
        }
        if let Some(url) = &r.url {
            out!("🔗 {url}");
        }
    }

    pub(crate) fn rolled_back(&self, outcome: &DeployOutcome) {
        self.done();
        if self.structured(outcome) {
            return;
        }
        let r = &outcome.record;
        let to = match r.cause {
            ReleaseCause::Rollback { to } => to.to_string(),
            _ => "?".into(),
        };
        out!(
            "↩️  {} in {} rolled back to the objects of revision {to} (now revision {}, image {})",
            r.app,
            r.environment,
            r.revision,
            r.image
        );
        if let Some(url) = &r.url {
            out!("🔗 {url}");
        }
    }

    pub(crate) fn destroyed(&self, outcome: &DestroyOutcome) {
        self.done();
        if self.structured(outcome) {
            return;
        }
        out!("🗑️  {} removed from {} ({}):", outcome.app, outcome.environment, outcome.location);
        for d in &outcome.deleted {
            out!("  {d}");
        }
    }

    pub(crate) fn status(&self, status: &ReleaseStatus) {
        self.done();
        if self.structured(status) {
            return;
        }
        let r = &status.current;
        out!(
            "{} in {}: revision {} ({})",
            r.app,
            r.environment,
            r.revision,
            if status.in_sync { "in sync" } else { "DRIFTED" }
        );
        out!("  image:     {}", r.image);
        out!("  replicas:  {}", r.replicas);
        out!("  deployed:  {} by {}", rfc3339(r), r.deployed_by);
        out!("  location:  {}", status.location);
        out!("  {}", terms::cli(&status.detail));
        if let Some(url) = &r.url {
            out!("🔗 {url}");
        }
    }

    pub(crate) fn history(&self, history: &[ReleaseRecord]) {
        self.done();
        if self.structured(&history) {
            return;
        }
        let rows: Vec<[String; 7]> = history
            .iter()
            .map(|r| {
                let mut cause = match &r.cause {
                    ReleaseCause::Rollback { to } => format!("rollback to {to}"),
                    _ => "deploy".into(),
                };
                if let Some(state @ (RevisionState::Failed | RevisionState::Pending)) = r.state {
                    cause.push_str(&format!(" ({})", state.as_str()));
                }
                let hatches = if r.escape_hatches.is_empty() {
                    "-".into()
                } else {
                    r.escape_hatches.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                };
                [
                    r.revision.to_string(),
                    rfc3339(r),
                    r.image.clone(),
                    r.replicas.to_string(),
                    r.deployed_by.clone(),
                    cause,
                    hatches,
                ]
            })
            .collect();
        let header = ["REVISION", "DEPLOYED", "IMAGE", "REPLICAS", "BY", "CAUSE", "ESCAPE HATCHES"].map(String::from);
        let widths: Vec<usize> =
            (0..7).map(|i| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        for row in [&header].into_iter().chain(rows.iter()) {
            let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out!("{}", line.join("  ").trim_end());
        }
    }

    pub(crate) fn error(&self, e: &Error) {
        self.done();
        match e {
            Error::PolicyDenied { violations } => {
                eprintln!("❌ denied by policy ({} violations):", violations.len());
                for v in violations {
                    let at = match (&v.object, &v.path) {
                        (Some(o), Some(p)) => format!(" at {o} {p}"),
                        (Some(o), None) => format!(" at {o}"),
                        _ => String::new(),
                    };
                    eprintln!("  [{}] {}: {}{at}", v.policy, v.code, v.message);
                    if let Some(h) = &v.hint {
                        eprintln!("    hint: {h}");
                    }
                }
            }
            _ => {
                eprintln!("error: {}", terms::cli(&e.to_string()));
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    eprintln!("  caused by: {}", terms::cli(&s.to_string()));
                    source = s.source();
                }
                if let Some(h) = e.hint() {
                    eprintln!("  hint: {}", terms::cli(h));
                }
            }
        }
    }
}

/// `✓` for a finished step, `…` for rollout progress still under way, nothing for messages
/// that carry their own mark (warnings, failures).
fn progress_mark(p: &Progress) -> &'static str {
    match (p.step, p.done) {
        (Step::Watch, Some((done, of))) if done < of => "…",
        _ if p.message.starts_with(['⚠', '❌']) => "",
        _ => "✓",
    }
}

fn print_hatches(hatches: &[paved::EscapeHatch]) {
    if !hatches.is_empty() {
        let list: Vec<String> = hatches.iter().map(ToString::to_string).collect();
        out!("⚠️  escape hatches used (recorded): {}", list.join(", "));
    }
}

fn rfc3339(r: &ReleaseRecord) -> String {
    r.deployed_at.format(&time_format()).unwrap_or_default()
}

fn time_format() -> time::format_description::well_known::Rfc3339 {
    time::format_description::well_known::Rfc3339
}
