//! Everything the CLI prints. Results go to stdout (text, or one JSON/YAML document with
//! `-o`); progress, warnings and errors go to stderr, whatever the format. With `-o json` an
//! error is also a JSON document on stdout (`{"error": …}`), so a script always gets one.
//!
//! Emoji are printed on a terminal only (or with `--emoji`); `--no-emoji`, a pipe or
//! `TERM=dumb` gives plain words (`warning:`, `error:`).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use paved::{
    DeployOutcome, DestroyOutcome, Error, Manifests, Progress, ReleaseCause, ReleaseRecord, ReleaseStatus,
    RevisionState, Step,
};
use serde::Serialize;

use crate::args::Format;
use crate::terms;

static EMOJI: AtomicBool = AtomicBool::new(true);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets how everything is printed: `emoji` None decides by the terminal; `quiet` drops
/// progress lines.
pub(crate) fn configure(emoji: Option<bool>, quiet: bool) {
    let auto = std::io::stdout().is_terminal() && !dumb_terminal();
    EMOJI.store(emoji.unwrap_or(auto), Ordering::Relaxed);
    QUIET.store(quiet, Ordering::Relaxed);
}

fn dumb_terminal() -> bool {
    std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

/// Emoji, and their words when emoji are off.
const EMOJI_WORDS: &[(&str, &str)] = &[
    ("⚠️  ", "warning: "),
    ("⚠️ ", "warning: "),
    ("❌ ", "error: "),
    ("💥 ", "error: "),
    ("🔗 ", "url: "),
    ("✅ ", ""),
    ("🚀 ", ""),
    ("📦 ", ""),
    ("🩹 ", ""),
    ("↩️  ", ""),
    ("🗑️  ", ""),
    ("⏭️  ", ""),
    ("⏭️ ", ""),
];

/// `text` as printed: with emoji, or with their words.
pub(crate) fn plain(text: &str) -> Cow<'_, str> {
    if EMOJI.load(Ordering::Relaxed) || !EMOJI_WORDS.iter().any(|(e, _)| text.contains(e.trim_end())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for (emoji, word) in EMOJI_WORDS {
        out = out.replace(emoji, word);
    }
    Cow::Owned(out)
}

/// A line on stdout, in the CLI's words and style; a closed pipe (`paved history | head -1`)
/// is ignored so the command finishes with its own exit code.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stdout().lock(), "{}", $crate::output::plain(&$crate::terms::cli(&line)));
    }};
}

/// A line on stderr (progress, warnings, errors).
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stderr().lock(), "{}", $crate::output::plain(&$crate::terms::cli(&line)));
    }};
}

/// `1 violation`, `2 violations`.
pub(crate) use paved::hint::plural;

/// Whether emoji are printed.
pub(crate) fn emoji() -> bool {
    EMOJI.load(Ordering::Relaxed)
}

/// Writes `text` to stdout as it is (documents, YAML objects).
pub(crate) fn raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints `value` as one JSON or YAML document on stdout.
pub(crate) fn document<T: Serialize + ?Sized>(format: Format, value: &T) {
    let value = serde_json::to_value(value).expect("output is serializable");
    match format {
        Format::Yaml => raw(&paved::yaml::to_string(&value)),
        _ => raw(&format!("{}\n", serde_json::to_string_pretty(&value).expect("serializable"))),
    }
}

/// A progress callback.
pub(crate) type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Prints results in the chosen format.
pub(crate) struct Printer {
    pub(crate) format: Format,
    spinner: Option<ProgressBar>,
}

impl Printer {
    pub(crate) fn new(format: Format) -> Self {
        let quiet = QUIET.load(Ordering::Relaxed);
        let spinner = (!quiet && std::io::stderr().is_terminal() && !dumb_terminal()).then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            pb.enable_steady_tick(Duration::from_millis(80));
            pb
        });
        Printer { format, spinner }
    }

    /// A progress callback: a spinner on a terminal, plain lines otherwise; always on stderr,
    /// whatever the output format. Warnings are printed even with `--quiet`.
    pub(crate) fn progress_sink(&self) -> ProgressSink {
        let quiet = QUIET.load(Ordering::Relaxed);
        match &self.spinner {
            Some(pb) => {
                let pb = Mutex::new(pb.clone());
                Arc::new(move |p: &Progress| {
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
                                pb.println(plain(&format!("  ✓ {}", p.message)));
                                pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
                            }
                        }
                        _ => {
                            pb.println(plain(&terms::cli(&progress_line(p))));
                            pb.set_message(p.message.clone());
                        }
                    }
                })
            }
            None => Arc::new(move |p: &Progress| {
                if !quiet || is_warning(p) {
                    err!("{}", progress_line(p));
                }
            }),
        }
    }

    fn done(&self) {
        if let Some(pb) = &self.spinner {
            pb.finish_and_clear();
        }
    }

    /// Prints `value` as the result document when the format is structured.
    fn structured<T: Serialize + ?Sized>(&self, value: &T) -> bool {
        if self.format == Format::Text {
            return false;
        }
        document(self.format, value);
        true
    }

    pub(crate) fn manifests(&self, manifests: &Manifests) {
        self.done();
        if self.format == Format::Json {
            self.structured(manifests);
        } else {
            raw(&manifests.to_yaml());
        }
    }

    /// The result of a deploy (or of a dry run, which has the same shape), with the diff of
    /// `deploy --diff` in the document.
    pub(crate) fn deployed(&self, outcome: &DeployOutcome, dry_run: bool, diff: Option<serde_json::Value>) {
        self.done();
        if self.format != Format::Text {
            let mut value = serde_json::to_value(outcome).expect("serializable");
            value["dry_run"] = dry_run.into();
            if let Some(diff) = diff {
                value["diff"] = diff;
            }
            document(self.format, &value);
            return;
        }
        let r = &outcome.record;
        print_hatches(&r.escape_hatches);
        if dry_run {
            match outcome.changed {
                true => out!(
                    "dry run: revision {} would be written to {}; nothing was written",
                    r.revision,
                    outcome.location
                ),
                false => out!(
                    "dry run: {} is up to date in {} (revision {}); nothing was written",
                    r.app,
                    r.environment,
                    r.revision
                ),
            }
        } else if outcome.changed && r.state.is_some() {
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
        let mut shown = status.clone();
        shown.detail = terms::cli(&status.detail).into_owned();
        if self.structured(&shown) {
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
        out!("  {}", status.detail);
        if let Some(url) = &r.url {
            out!("🔗 {url}");
        }
    }

    /// `paved list`: one row per app and environment; environments that could not be listed
    /// are warnings.
    pub(crate) fn list(&self, listing: &paved::Listing) {
        self.done();
        for u in &listing.unavailable {
            err!("⚠️  environment {} not listed ({} target): {}", u.environment, u.target, u.message);
        }
        let statuses = &listing.apps;
        if self.format != Format::Text {
            let rows: Vec<serde_json::Value> = statuses
                .iter()
                .map(|s| {
                    let r = &s.current;
                    serde_json::json!({
                        "app": r.app, "environment": r.environment, "revision": r.revision, "image": r.image,
                        "status": if s.in_sync { "in_sync" } else { "drifted" }, "deployed_at": rfc3339(r),
                        "age_seconds": age(r).whole_seconds(), "team": r.team, "url": r.url,
                    })
                })
                .collect();
            document(self.format, &serde_json::json!({ "apps": rows, "unavailable": listing.unavailable }));
            return;
        }
        if statuses.is_empty() {
            out!("no apps deployed yet: start with `paved deploy --app NAME --image IMAGE --env ENV`");
            return;
        }
        let rows: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                let r = &s.current;
                vec![
                    r.app.to_string(),
                    r.environment.clone(),
                    r.revision.to_string(),
                    r.image.clone(),
                    if s.in_sync { "in sync".into() } else { "DRIFTED".into() },
                    human_age(age(r)),
                ]
            })
            .collect();
        table(&["APP", "ENVIRONMENT", "REVISION", "IMAGE", "STATUS", "AGE"], &rows);
    }

    pub(crate) fn history(&self, history: &[ReleaseRecord]) {
        self.done();
        if self.structured(&history) {
            return;
        }
        // The current revision is the newest deployed one; the target may not record states.
        let current = history.iter().find(|r| r.state.is_none_or(|s| s == RevisionState::Deployed)).map(|r| r.revision);
        let rows: Vec<Vec<String>> = history
            .iter()
            .map(|r| {
                let cause = match &r.cause {
                    ReleaseCause::Rollback { to } => format!("rollback to {to}"),
                    _ => "deploy".into(),
                };
                let status = match r.state {
                    Some(state) => state.as_str().to_string(),
                    None if Some(r.revision) == current => "deployed".into(),
                    None => "superseded".into(),
                };
                let hatches = if r.escape_hatches.is_empty() {
                    "-".into()
                } else {
                    r.escape_hatches.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                };
                vec![
                    r.revision.to_string(),
                    status,
                    rfc3339(r),
                    r.image.clone(),
                    r.replicas.to_string(),
                    r.deployed_by.clone(),
                    cause,
                    hatches,
                ]
            })
            .collect();
        table(&["REVISION", "STATUS", "DEPLOYED", "IMAGE", "REPLICAS", "BY", "CAUSE", "ESCAPE HATCHES"], &rows);
    }

    /// An error: words on stderr; with `-o json|yaml` also `{"error": …}` on stdout.
    pub(crate) fn error(&self, e: &Error) {
        self.done();
        if self.format != Format::Text {
            document(self.format, &serde_json::json!({ "error": error_document(e) }));
        }
        match e {
            Error::PolicyDenied { violations } => {
                err!("❌ denied by policy ({}):", plural(violations.len(), "violation"));
                for v in violations {
                    let at = match (&v.object, &v.path) {
                        (Some(o), Some(p)) => format!(" at {o} {p}"),
                        (Some(o), None) => format!(" at {o}"),
                        _ => String::new(),
                    };
                    err!("  [{}] {}: {}{at}", v.policy, v.code, v.message);
                    if let Some(h) = &v.hint {
                        err!("    hint: {h}");
                    }
                }
            }
            _ => {
                let message = e.to_string();
                err!("error: {message}");
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    // An error that already says its cause does not say it twice.
                    let cause = s.to_string();
                    if !message.contains(&cause) {
                        err!("  caused by: {cause}");
                    }
                    source = s.source();
                }
                if let Some(h) = e.hint() {
                    err!("  hint: {h}");
                }
            }
        }
    }
}

/// The JSON of an error: its kind, message, hint and, for a denial, the violations.
pub(crate) fn error_document(e: &Error) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "kind": e.kind().as_str(),
        "message": terms::cli(&e.to_string()),
        "hint": e.hint().map(|h| terms::cli(h).into_owned()),
    });
    if let Error::PolicyDenied { violations } = e {
        doc["violations"] = serde_json::to_value(violations).expect("serializable");
    }
    doc
}

/// A table with a header, columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    out!("{}", line(header.to_vec()));
    for row in rows {
        out!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// A progress line: two spaces, the mark (when the message has none of its own), the message.
fn progress_line(p: &Progress) -> String {
    match progress_mark(p) {
        "" => format!("  {}", p.message),
        mark => format!("  {mark} {}", p.message),
    }
}

fn is_warning(p: &Progress) -> bool {
    p.message.starts_with(['⚠', '❌'])
}

/// `✓` for a finished step, `…` for one under way (applying, rollout progress), nothing for
/// messages that carry their own mark (warnings, failures).
fn progress_mark(p: &Progress) -> &'static str {
    match (p.step, p.done) {
        _ if is_warning(p) => "",
        (Step::Watch, Some((done, of))) if done < of => "…",
        // Apply announces the work it starts; its result comes as its own line.
        (Step::Apply, None) => "…",
        _ => "✓",
    }
}

fn print_hatches(hatches: &[paved::EscapeHatch]) {
    if !hatches.is_empty() {
        let list: Vec<String> = hatches.iter().map(ToString::to_string).collect();
        err!("⚠️  escape hatches used (recorded): {}", list.join(", "));
    }
}

fn rfc3339(r: &ReleaseRecord) -> String {
    r.deployed_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn age(r: &ReleaseRecord) -> time::Duration {
    time::OffsetDateTime::now_utc() - r.deployed_at
}

/// `45s`, `12m`, `5h`, `3d`, as kubectl prints ages.
fn human_age(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A progress bar for long imports, on stderr: it appears only on a terminal, without
/// `--quiet`, and once the work has taken more than a second; with the input's size when known.
pub(crate) struct ImportBar {
    started: std::time::Instant,
    total: Option<u64>,
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl ImportBar {
    /// A bar for reading `total` bytes (`None` for standard input).
    pub(crate) fn new(total: Option<u64>) -> Self {
        let enabled = !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal() && !dumb_terminal();
        ImportBar { started: std::time::Instant::now(), total, enabled, bar: None }
    }

    /// Shows how far the import has got.
    pub(crate) fn update(&mut self, bytes: u64, events: u64) {
        if !self.enabled || self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let total = self.total;
        let bar = self.bar.get_or_insert_with(|| {
            let (pb, template) = match total {
                Some(n) => (ProgressBar::new(n), "{bar:30} {bytes}/{total_bytes} {msg} ({eta} left)"),
                None => (ProgressBar::new_spinner(), "{spinner} {bytes} {msg}"),
            };
            pb.set_style(ProgressStyle::with_template(template).expect("valid template"));
            pb
        });
        bar.set_position(bytes);
        bar.set_message(format!("{events} events"));
    }

    /// Removes the bar.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_ages() {
        assert_eq!(plural(1, "violation"), "1 violation");
        assert_eq!(plural(0, "violation"), "0 violations");
        assert_eq!(human_age(time::Duration::seconds(45)), "45s");
        assert_eq!(human_age(time::Duration::minutes(12)), "12m");
        assert_eq!(human_age(time::Duration::hours(5)), "5h");
        assert_eq!(human_age(time::Duration::days(3)), "3d");
    }
}
