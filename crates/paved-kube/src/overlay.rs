//! Escape hatches on rendered objects: extra manifests and overlays.
//!
//! An overlay document names its target by `kind` and `metadata.name` and is merged into it:
//!
//! * by default *strategic-merge style*: mappings merge recursively, `null` removes a key, and
//!   lists whose items carry a `name` (containers, env, ports, volumes, …) merge item by item
//!   (an item with `$patch: delete` removes the item of that name); other lists are replaced;
//! * with `$patch: merge` at the top of the document, as an RFC 7386 JSON merge patch (lists
//!   are replaced whole);
//! * with `$patch: delete`, the target object is removed from the release.
//!
//! An overlay that targets an object the release does not contain is an error, naming the
//! file, the line and the objects that do exist.

use paved_core::{Error, Manifest, ManifestFile, ObjectKey, ResolvedApp, Result, suggest};
use serde_json::{Map, Value};

use crate::render::common_labels;

/// Kinds that are not namespaced (extra manifests of these kinds get no namespace).
use paved_core::containment::CLUSTER_SCOPED_KINDS as CLUSTER_SCOPED;

const PATCH: &str = "$patch";

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
    for file in &app.extra_manifests {
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
            if !CLUSTER_SCOPED.contains(&key.kind.as_str()) && !meta.contains_key("namespace") {
                meta.insert("namespace".into(), app.namespace.clone().into());
            }
            let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(labels) = labels {
                for (k, v) in common_labels(app) {
                    labels.entry(k).or_insert(v);
                }
            }
            objects.push(
                Manifest::new(value)
                    .map_err(|e| manifest_error(file, doc.line, e.to_string(), "fix the object's identity"))?,
            );
        }
    }
    Ok(())
}

/// Merges every overlay document into the object it targets.
pub fn apply_overlays(files: &[ManifestFile], objects: &mut Vec<Manifest>) -> Result<()> {
    for file in files {
        for doc in &file.documents {
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
            if let Some(api) = doc.value.get("apiVersion").and_then(Value::as_str)
                && api != objects[index].api_version()
            {
                return Err(manifest_error(
                    file,
                    doc.line,
                    format!("the overlay says apiVersion {api}, but {key} is {}", objects[index].api_version()),
                    format!("use apiVersion: {} or leave it out", objects[index].api_version()),
                ));
            }
            let mut patch = doc.value.clone();
            let mode = patch.as_object_mut().and_then(|m| m.remove(PATCH));
            match mode.as_ref().and_then(Value::as_str) {
                Some("delete") => {
                    objects.remove(index);
                    continue;
                }
                Some("merge") => merge_patch(objects[index].value_mut(), &patch, false),
                None => merge_patch(objects[index].value_mut(), &patch, true),
                Some(other) => {
                    return Err(manifest_error(
                        file,
                        doc.line,
                        format!("unknown $patch directive \"{other}\""),
                        suggest::hint_for(other, ["merge", "delete"]),
                    ));
                }
            }
            let merged = objects[index].value().clone();
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
        }
    }
    Ok(())
}

fn named(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

/// Merges `patch` into `target`: RFC 7386 semantics, plus (when `strategic`) lists of named
/// items merged by name.
pub fn merge_patch(target: &mut Value, patch: &Value, strategic: bool) {
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
            Value::Array(items) if strategic && !items.is_empty() && items.iter().all(|i| named(i).is_some()) => {
                match target_map.get_mut(key) {
                    Some(Value::Array(base)) if base.iter().all(|i| named(i).is_some()) => {
                        merge_named_list(base, items)
                    }
                    _ => {
                        let kept = items.iter().filter(|i| i.get(PATCH).is_none()).cloned().collect();
                        target_map.insert(key.clone(), Value::Array(kept));
                    }
                }
            }
            Value::Object(_) => merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value, strategic),
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
}

fn merge_named_list(base: &mut Vec<Value>, items: &[Value]) {
    for item in items {
        let name = named(item).expect("checked by the caller");
        let position = base.iter().position(|b| named(b) == Some(name));
        let delete = item.get(PATCH).and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                base.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => merge_patch(&mut base[i], item, true),
            (None, false) => base.push(item.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_by_name() {
        let mut target = json!({
            "spec": {
                "containers": [{"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]}, {"name": "side", "image": "s:1"}],
                "volumes": [{"name": "tmp"}],
                "args": ["x"],
                "drop": "me",
            }
        });
        let patch = json!({
            "spec": {
                "containers": [
                    {"name": "app", "env": [{"name": "B", "value": "2"}], "resources": {"limits": {"cpu": "2"}}},
                    {"name": "side", "$patch": "delete"},
                ],
                "args": ["y"],
                "drop": null,
            }
        });
        merge_patch(&mut target, &patch, true);
        assert_eq!(
            target,
            json!({
                "spec": {
                    "containers": [{"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "resources": {"limits": {"cpu": "2"}}}],
                    "volumes": [{"name": "tmp"}],
                    "args": ["y"],
                }
            })
        );
    }

    #[test]
    fn json_merge_replaces_lists() {
        let mut target = json!({"a": [{"name": "x", "v": 1}], "b": {"c": 1}});
        merge_patch(&mut target, &json!({"a": [{"name": "y"}], "b": {"d": 2}}), false);
        assert_eq!(target, json!({"a": [{"name": "y"}], "b": {"c": 1, "d": 2}}));
    }
}
