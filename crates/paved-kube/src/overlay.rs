//! Escape hatches on rendered objects: extra manifests and overlays.
//!
//! An overlay document names its target by `kind` and `metadata.name` and is merged into it:
//!
//! * by default as a Kubernetes *strategic merge patch*, with the merge keys, strategies and
//!   directives the API declares and the list order `kubectl kustomize` produces (see
//!   [`crate::strategic`]); `$patch: merge` at the top says the same explicitly;
//! * with `$patch: json-merge` at the top, as an RFC 7386 JSON merge patch (lists are
//!   replaced whole);
//! * with `$patch: replace` at the top, the overlay replaces the object (its namespace and
//!   paved's ownership labels stay);
//! * with `$patch: delete`, the target object is removed from the release.
//!
//! Every object an overlay changed, and every extra manifest, is then checked against the
//! Kubernetes schema of its kind ([`crate::schema`]), so a broken overlay fails when the
//! release is planned, before anything is written or applied. Errors name the file and the
//! line of the field at fault, with a hint.

use paved_core::request::{ManifestDocument, PathStep, field_path};
use paved_core::{Error, Manifest, ManifestFile, ObjectKey, ResolvedApp, Result, suggest};
use serde_json::{Map, Value};

use crate::render::{ESCAPE_HATCHES_ANNOTATION, common_labels, labels};
use crate::schema::{self, Problem};
use crate::strategic::{self, PATCH};

fn manifest_error(file: &ManifestFile, line: usize, message: String, hint: impl Into<String>) -> Error {
    Error::Manifest { path: file.path.clone(), line: Some(line), message, hint: Some(hint.into()) }
}

fn identity(file: &ManifestFile, line: usize, doc: &Value) -> Result<ObjectKey> {
    let kind = doc.get("kind").and_then(Value::as_str).filter(|s| !s.is_empty());
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).filter(|s| !s.is_empty());
    match (kind, name) {
        (Some(kind), Some(name)) => Ok(ObjectKey { kind: kind.into(), name: name.into() }),
        _ => Err(manifest_error(
            file,
            line,
            "the document has no kind or metadata.name".into(),
            "each document names the object it targets with kind and metadata.name",
        )),
    }
}

/// Adds the objects of `--extra-manifest` files: each gets the app's labels and, when
/// namespaced and without one, the app's namespace.
pub fn add_extra_manifests(app: &ResolvedApp, objects: &mut Vec<Manifest>) -> Result<()> {
    add_manifest_files(app, &app.extra_manifests, objects)
}

/// Adds the objects of `files` (extra manifests, a workload's provisioned objects) with the
/// checks of extra manifests: identity, no clash with a rendered object, the app's namespace
/// and labels, the schema.
pub fn add_manifest_files(app: &ResolvedApp, files: &[ManifestFile], objects: &mut Vec<Manifest>) -> Result<()> {
    for file in files {
        for doc in &file.documents {
            let key = identity(file, doc.line, &doc.value)?;
            let mut value = doc.value.clone();
            if value.get("apiVersion").and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(manifest_error(
                    file,
                    doc.line,
                    format!("{key} has no apiVersion"),
                    "add apiVersion, e.g. v1 or apps/v1",
                ));
            }
            if objects.iter().any(|o| o.kind() == key.kind && o.name() == key.name) {
                return Err(manifest_error(
                    file,
                    doc.line,
                    format!("{key} is already rendered by paved"),
                    "use `custom_manifests` to change a rendered object",
                ));
            }
            let meta = value["metadata"].as_object_mut().expect("identity checked metadata.name");
            // Every kind but the built-in cluster-scoped ones gets the namespace (a custom kind
            // named `Cluster…` may well be namespaced); the live target learns a custom kind's
            // scope from the cluster and applies a cluster-scoped one without it.
            if !paved_core::containment::CLUSTER_SCOPED_KINDS.contains(&key.kind.as_str())
                && !meta.contains_key("namespace")
            {
                meta.insert("namespace".into(), app.namespace.clone().into());
            }
            let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(labels) = labels {
                for (k, v) in common_labels(app) {
                    labels.entry(k).or_insert(v);
                }
            }
            if let Some(problem) = check_kind(&value).into_iter().chain(schema::check(&value)).next() {
                return Err(manifest_error(
                    file,
                    doc.line_of(&problem.path),
                    format!("{key}: {problem}"),
                    problem.hint,
                ));
            }
            objects.push(
                Manifest::new(value)
                    .map_err(|e| manifest_error(file, doc.line, e.to_string(), "fix the object's identity"))?,
            );
        }
    }
    Ok(())
}

/// A built-in kind must name an `apiVersion` that serves it.
fn check_kind(object: &Value) -> Option<Problem> {
    let api = object.get("apiVersion").and_then(Value::as_str)?;
    let kind = object.get("kind").and_then(Value::as_str)?;
    let served = schema::schema().versions_of(kind);
    (!served.is_empty() && !served.contains(&api)).then(|| Problem {
        path: vec![PathStep::Key("apiVersion".into())],
        message: format!("{kind} is not served as {api}"),
        hint: format!("use apiVersion: {}", served.join(" or ")),
    })
}

/// Merges every overlay document into the object it targets, then checks each object an
/// overlay changed against its schema.
pub fn apply_overlays(files: &[ManifestFile], objects: &mut Vec<Manifest>) -> Result<()> {
    for file in files {
        for doc in &file.documents {
            apply_overlay(file, doc, objects)?;
        }
    }
    Ok(())
}

fn apply_overlay(file: &ManifestFile, doc: &ManifestDocument, objects: &mut Vec<Manifest>) -> Result<()> {
    let key = identity(file, doc.line, &doc.value)?;
    let Some(index) = objects.iter().position(|o| o.kind() == key.kind && o.name() == key.name) else {
        let existing: Vec<String> = objects.iter().map(|o| o.key().to_string()).collect();
        let hint = suggest::hint_for(&key.to_string(), existing.iter().map(String::as_str));
        return Err(manifest_error(
            file,
            doc.line,
            format!("the overlay targets {key}, which the release does not contain"),
            hint,
        ));
    };
    let target = &objects[index];
    if let Some(api) = doc.value.get("apiVersion").and_then(Value::as_str)
        && api != target.api_version()
    {
        return Err(manifest_error(
            file,
            doc.line_of(&[PathStep::Key("apiVersion".into())]),
            format!("the overlay says apiVersion {api}, but {key} is {}", target.api_version()),
            format!("use apiVersion: {} or leave it out", target.api_version()),
        ));
    }
    let patch = doc.value.as_object().expect("documents are mappings");
    let problem = |p: Problem| manifest_error(file, doc.line_of(&p.path), format!("{key}: {p}"), p.hint);
    let schema = schema::schema();
    let def = schema.object(target.api_version(), target.kind());
    let mut merged = target.value().as_object().cloned().unwrap_or_default();
    match strategic::directive(patch, &["json-merge"]).map_err(problem)? {
        Some("delete") => {
            objects.remove(index);
            return Ok(());
        }
        Some("json-merge") => {
            let mut value = Value::Object(merged);
            json_merge_patch(&mut value, &doc.value);
            merged = value.as_object().cloned().unwrap_or_default();
            merged.remove(PATCH);
        }
        Some("replace") => {
            let kept = kept_by_replace(&merged);
            merged = Map::new();
            strategic::merge_object(schema, def, &mut merged, patch).map_err(problem)?;
            merged.entry("apiVersion").or_insert_with(|| target.api_version().into());
            strategic::merge_object(schema, def, &mut merged, &kept).map_err(problem)?;
        }
        _ => strategic::merge_object(schema, def, &mut merged, patch).map_err(problem)?,
    }
    let merged = Value::Object(merged);
    if let Some(p) = ownership_dropped(target.value(), &merged, &mut Vec::new()) {
        let line = doc.line_of(&overlay_path(&doc.value, &merged, &p.path));
        return Err(manifest_error(file, line, format!("{key}: {p}"), p.hint));
    }
    if let Some(p) = schema::check(&merged).into_iter().next() {
        let line = doc.line_of(&overlay_path(&doc.value, &merged, &p.path));
        return Err(manifest_error(
            file,
            line,
            format!("the overlay leaves {key} invalid: {}: {}", field_path(&p.path), p.message),
            p.hint,
        ));
    }
    objects[index] = Manifest::new(merged).map_err(|e| {
        manifest_error(
            file,
            doc.line,
            format!("the overlay broke {key}: {e}"),
            "do not remove apiVersion, kind or metadata.name",
        )
    })?;
    if objects[index].name() != key.name {
        return Err(manifest_error(
            file,
            doc.line,
            format!("the overlay renamed {key}"),
            "overlays cannot rename objects",
        ));
    }
    Ok(())
}

/// The keys whose values no overlay may drop or change: the ownership labels (in labels,
/// the pod template's, selectors), the pod's ServiceAccount and the escape-hatch record.
fn guarded(key: &str) -> bool {
    labels::OWNERSHIP.contains(&key) || key == "serviceAccountName" || key == ESCAPE_HATCHES_ANNOTATION
}

/// A guarded value of the object that the merged object no longer has, whatever removed it:
/// `null`, `$patch: replace` or `delete` of the mapping, `$retainKeys`, a JSON merge patch.
/// Lists are not looked into: selectors inside them (spread constraints, NetworkPolicy peers)
/// are the app's own scheduling and traffic rules, which policy judges.
fn ownership_dropped(original: &Value, merged: &Value, path: &mut Vec<PathStep>) -> Option<Problem> {
    let Value::Object(original) = original else { return None };
    for (key, value) in original {
        path.push(PathStep::Key(key.clone()));
        let now = merged.get(key).unwrap_or(&Value::Null);
        if guarded(key) && value.is_string() && now != value {
            return Some(Problem {
                path: path.clone(),
                message: format!("the overlay drops or changes {key}: {value}, which paved owns"),
                hint: format!(
                    "leave {key} to paved: an overlay may not remove it, by name or with $patch: replace/delete, \
                     $retainKeys or null on the mapping that holds it"
                ),
            });
        }
        if let Some(problem) = ownership_dropped(value, now, path) {
            return Some(problem);
        }
        path.pop();
    }
    None
}

/// The keys list items are told apart by (the merge keys of the lists paved renders).
const IDENTITY_KEYS: [&str; 6] = ["name", "containerPort", "port", "mountPath", "topologyKey", "ip"];

/// Whether two list items are the same item: every identity key one has, the other has equal.
fn same_identity(a: &Value, b: &Value) -> bool {
    let mut keys = IDENTITY_KEYS.iter().filter(|k| a.get(**k).is_some()).peekable();
    keys.peek().is_some() && keys.all(|k| a.get(*k) == b.get(*k))
}

/// What a top-level `$patch: replace` keeps of the object: its namespace, and every guarded
/// value where the object has it (ownership labels, the pod's ServiceAccount, the record).
fn kept_by_replace(object: &Map<String, Value>) -> Map<String, Value> {
    let mut kept = match ownership_skeleton(&Value::Object(object.clone())) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(ns) = object.get("metadata").and_then(|m| m.get("namespace"))
        && let Value::Object(metadata) = kept.entry("metadata").or_insert_with(|| Value::Object(Map::new()))
    {
        metadata.insert("namespace".into(), ns.clone());
    }
    kept
}

/// The guarded values of a value and the mappings that lead to them (lists left out).
fn ownership_skeleton(value: &Value) -> Option<Value> {
    let Value::Object(map) = value else { return None };
    let kept: Map<String, Value> = map
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(_) if guarded(k) => Some((k.clone(), v.clone())),
            _ => ownership_skeleton(v).map(|s| (k.clone(), s)),
        })
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// The path in the overlay document that corresponds to `path` in the merged object, as far
/// as the overlay has it (list items are matched by their merge keys), to find its line.
fn overlay_path(overlay: &Value, merged: &Value, path: &[PathStep]) -> Vec<PathStep> {
    let (mut in_overlay, mut in_merged) = (overlay, merged);
    let mut out = Vec::new();
    for step in path {
        let next = match step {
            PathStep::Key(key) => in_overlay.get(key).zip(in_merged.get(key)).map(|(o, m)| (step.clone(), o, m)),
            PathStep::Index(i) => in_merged.get(i).and_then(|item| {
                let items = in_overlay.as_array()?;
                let at = items.iter().position(|o| same_identity(o, item))?;
                Some((PathStep::Index(at), &items[at], item))
            }),
        };
        match next {
            Some((step, o, m)) => {
                out.push(step);
                (in_overlay, in_merged) = (o, m);
            }
            None => break,
        }
    }
    out
}

/// Merges `patch` into `target` as an RFC 7386 JSON merge patch: mappings merge recursively,
/// `null` removes a key, everything else (lists included) replaces.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => json_merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value),
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_merge_replaces_lists() {
        let mut target = json!({"a": [{"name": "x", "v": 1}], "b": {"c": 1}});
        json_merge_patch(&mut target, &json!({"a": [{"name": "y"}], "b": {"d": 2}}));
        assert_eq!(target, json!({"a": [{"name": "y"}], "b": {"c": 1, "d": 2}}));
    }

    #[test]
    fn overlay_paths_follow_merge_keys() {
        let overlay = json!({"spec": {"containers": [{"name": "b", "ports": [{"containerPort": 9}]}]}});
        let merged = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 8}, {"containerPort": 9}]}]}});
        let k = |s: &str| PathStep::Key(s.into());
        let path = [k("spec"), k("containers"), PathStep::Index(1), k("ports"), PathStep::Index(1), k("name")];
        assert_eq!(
            overlay_path(&overlay, &merged, &path),
            [k("spec"), k("containers"), PathStep::Index(0), k("ports"), PathStep::Index(0)]
        );
        let other = [k("spec"), k("containers"), PathStep::Index(0), k("image")];
        assert_eq!(overlay_path(&overlay, &merged, &other), [k("spec"), k("containers")]);
    }
}
