//! `paved diff` and `deploy --diff`: what a deploy would change, object by object, against the
//! current revision, as unified diffs of the objects' YAML (like `helm diff` or `kubectl diff`).

use paved::{Manifest, Manifests, Plan, Platform, Result};
use serde::Serialize;

use crate::args::Format;
use crate::output::{self, plural};

/// How one object changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    Added,
    Changed,
    Removed,
    Unchanged,
}

/// One object's change and its unified diff (empty when unchanged).
#[derive(Debug, Serialize)]
pub(crate) struct ObjectChange {
    object: String,
    change: Change,
    diff: String,
}

/// What a deploy would change.
#[derive(Debug, Serialize)]
pub(crate) struct Changes {
    app: String,
    environment: String,
    /// The current revision, when there is one.
    current_revision: Option<u64>,
    objects: Vec<ObjectChange>,
}

impl Changes {
    pub(crate) fn changed(&self) -> bool {
        self.objects.iter().any(|o| o.change != Change::Unchanged)
    }
}

/// The changes `plan` would make to the current revision of its app.
pub(crate) async fn changes(platform: &Platform, plan: &Plan) -> Result<Changes> {
    let (app, env) = (&plan.app.app, &plan.app.environment.name);
    let current = platform.current_objects(app, env).await?;
    let (revision, before) = match current {
        Some((revision, objects)) => (Some(revision), objects),
        None => (None, Manifests::default()),
    };
    Ok(Changes {
        app: app.to_string(),
        environment: env.clone(),
        current_revision: revision,
        objects: compare(&before, &plan.manifests, revision),
    })
}

/// Object by object: the new objects in apply order, then the removed ones.
fn compare(before: &Manifests, after: &Manifests, revision: Option<u64>) -> Vec<ObjectChange> {
    let find =
        |set: &Manifests, m: &Manifest| set.iter().find(|o| o.kind() == m.kind() && o.name() == m.name()).cloned();
    let label = revision.map_or_else(|| "nothing deployed".to_string(), |r| format!("revision {r}"));
    let diff = |key: &str, old: &str, new: &str| {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{key} ({label})"), &format!("{key} (this deploy)"))
            .to_string()
    };
    let mut out = Vec::new();
    for new in after.iter() {
        let key = new.key().to_string();
        let (change, old) = match find(before, new) {
            None => (Change::Added, String::new()),
            Some(old) if old.value() == new.value() => (Change::Unchanged, String::new()),
            Some(old) => (Change::Changed, old.to_yaml()),
        };
        let text = if change == Change::Unchanged { String::new() } else { diff(&key, &old, &new.to_yaml()) };
        out.push(ObjectChange { object: key, change, diff: text });
    }
    for old in before.iter().filter(|o| find(after, o).is_none()) {
        let key = old.key().to_string();
        out.push(ObjectChange { diff: diff(&key, &old.to_yaml(), ""), object: key, change: Change::Removed });
    }
    out
}

/// Prints the changes: the diffs and a summary as text, or (`as_document`, for `paved diff`
/// and `deploy --dry-run --diff`) the JSON/YAML document; a deploy embeds them in its own.
pub(crate) fn print(changes: &Changes, format: Format, as_document: bool) {
    if format != Format::Text {
        if as_document {
            output::document(format, changes);
        }
        return;
    }
    let count = |c: Change| changes.objects.iter().filter(|o| o.change == c).count();
    for o in changes.objects.iter().filter(|o| o.change != Change::Unchanged) {
        let (mark, what) = match o.change {
            Change::Added => ("+", "added"),
            Change::Removed => ("-", "removed"),
            _ => ("~", "changed"),
        };
        out!("{mark} {} ({what})", o.object);
        out!("{}", o.diff.trim_end());
    }
    if changes.changed() {
        out!(
            "{} in {}: {} added, {} changed, {} removed, {} unchanged",
            changes.app,
            changes.environment,
            count(Change::Added),
            count(Change::Changed),
            count(Change::Removed),
            count(Change::Unchanged)
        );
    } else {
        out!(
            "{} in {}: no changes ({} unchanged)",
            changes.app,
            changes.environment,
            plural(count(Change::Unchanged), "object")
        );
    }
}
