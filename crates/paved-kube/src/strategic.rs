//! Strategic merge patch, with the merge keys and strategies the Kubernetes API declares
//! ([`crate::schema`]) and the list order `kubectl kustomize` produces.
//!
//! The rules, field by field:
//!
//! * **Mappings** merge key by key; `null` removes a key; a mapping with `$patch: replace`
//!   replaces the mapping, with `$patch: delete` removes it; `$patch: merge` is the default.
//! * **Lists the API merges** (`patchStrategy: merge`: containers, env, ports, volumes,
//!   volumeMounts, imagePullSecrets, topologySpreadConstraints, …) merge item by item, matching
//!   items by their merge keys: `name`, `containerPort` + `protocol` (protocol defaults to TCP,
//!   as the API server defaults it), `mountPath`, `port` + `protocol`, `topologyKey` +
//!   `whenUnsatisfiable`, `ip`. A patch item that matches an item merges into it (with
//!   `$patch: replace`, replaces it; with `$patch: delete`, removes it); any other patch item
//!   is added. A list element that is only `$patch: replace` makes the other patch items the
//!   whole list. An empty patch list changes nothing.
//! * **Order**, as kustomize orders it: for lists with one merge key, the patch's items in the
//!   patch's order, then the other items in their order; for lists with two keys (ports,
//!   topology spread constraints), new items first, then the existing items in place.
//! * **Other lists** (args, command, tolerations, and every list of a custom resource) are
//!   replaced whole, as kustomize does without a schema; lists of scalars the API merges
//!   (finalizers) are merged as sets.
//! * **Directives**: `$retainKeys: [..]` keeps only the listed keys of the mapping (the way to
//!   switch `strategy` to `Recreate`); `$setElementOrder/FIELD: [..]` orders the list FIELD;
//!   `$deleteFromPrimitiveList/FIELD: [..]` removes values from a merged list of scalars.
//!
//! Every wrong shape is an error naming the field in the patch, with a hint: a mapping where
//! the object has a list, an item without its merge key, an unknown or non-string `$patch`,
//! a directive in a list that is replaced whole, an ambiguous match.

use paved_core::request::PathStep;
use paved_core::suggest;
use serde_json::{Map, Value};

use crate::schema::{Field, ListField, Problem, Scalar, Schema, Shape, TypeDef, describe, wrong_shape};

/// The directive key.
pub const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const DIRECTIVES: [&str; 3] = ["replace", "delete", "merge"];
/// The most items a patch list may have (matching is quadratic in the items).
const MAX_LIST_ITEMS: usize = 5_000;

/// What a `$patch` directive asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Merge (the default).
    Merge,
    /// Replace the mapping or item with the patch's content.
    Replace,
    /// Remove the mapping or item.
    Delete,
}

/// Reads the `$patch` directive of a mapping (`Merge` when it has none); `also` names directives
/// that are valid in this place beyond replace, delete and merge (e.g. `json-merge` at the top).
pub fn directive<'v>(patch: &'v Map<String, Value>, also: &[&'static str]) -> Result<Option<&'v str>, Problem> {
    match patch.get(PATCH) {
        None => Ok(None),
        Some(Value::String(s)) if DIRECTIVES.contains(&s.as_str()) || also.contains(&s.as_str()) => Ok(Some(s)),
        Some(other) => {
            let shown = other.as_str().map_or_else(|| other.to_string(), |s| format!("\"{s}\""));
            let known: Vec<&str> = DIRECTIVES.iter().chain(also).copied().collect();
            let hint = match other.as_str().and_then(|s| suggest::did_you_mean(s, known.iter().copied())) {
                Some(near) => format!("did you mean \"{near}\"?"),
                None => format!("write one of: {}", known.join(", ")),
            };
            Err(Problem {
                path: vec![PathStep::Key(PATCH.into())],
                message: format!("unknown $patch directive {shown}"),
                hint,
            })
        }
    }
}

fn parse_directive(s: Option<&str>) -> Directive {
    match s {
        Some("replace") => Directive::Replace,
        Some("delete") => Directive::Delete,
        _ => Directive::Merge,
    }
}

/// Merges `patch` into the object `target`, whose type is `def` (None: a kind without a
/// schema, whose lists are replaced whole). A `$patch` at the top of `patch` is the caller's.
pub fn merge_object(
    schema: &Schema,
    def: Option<&TypeDef>,
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), Problem> {
    let mut merger = Merger { schema, path: Vec::new() };
    let keys = def.map_or(Keys::Unknown, Keys::Type);
    let base = std::mem::take(target);
    *target = merger.merge_map(Some(base), patch, keys)?;
    Ok(())
}

/// What a mapping's keys hold: the fields of a type, values of one kind, or unknown.
#[derive(Clone, Copy)]
enum Keys<'s> {
    Type(&'s TypeDef),
    Values(&'s Field),
    Unknown,
}

impl<'s> Keys<'s> {
    fn field(self, key: &str) -> Option<&'s Field> {
        match self {
            Keys::Type(def) => def.fields.get(key),
            Keys::Values(field) => Some(field),
            Keys::Unknown => None,
        }
    }
}

struct Merger<'s> {
    schema: &'s Schema,
    path: Vec<PathStep>,
}

impl<'s> Merger<'s> {
    fn error<T>(&self, message: impl Into<String>, hint: impl Into<String>) -> Result<T, Problem> {
        Err(Problem { path: self.path.clone(), message: message.into(), hint: hint.into() })
    }

    fn at<R>(&mut self, step: PathStep, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(step);
        let out = f(self);
        self.path.pop();
        out
    }

    fn keys_of(&self, field: Option<&'s Field>) -> Keys<'s> {
        match field {
            Some(Field::Object { type_name, .. }) => self.schema.type_def(type_name).map_or(Keys::Unknown, Keys::Type),
            Some(Field::Map { map }) => Keys::Values(map),
            _ => Keys::Unknown,
        }
    }

    /// Applies `patch` to a field's value (`None`: the field is absent); `None` removes it.
    fn apply(
        &mut self,
        original: Option<Value>,
        patch: &Value,
        field: Option<&'s Field>,
    ) -> Result<Option<Value>, Problem> {
        let original = original.filter(|v| !v.is_null());
        match patch {
            Value::Null => Ok(None),
            Value::Object(map) => {
                let expected = match field {
                    Some(Field::List(_)) => Some(Shape::List),
                    Some(Field::Scalar(s)) if *s != Scalar::Any => Some(Shape::Value),
                    _ => None,
                };
                if let Some(expected) = expected {
                    let (message, hint) = wrong_shape(patch, expected);
                    return self.error(message, hint);
                }
                let base = match original {
                    None => None,
                    Some(Value::Object(map)) => Some(map),
                    Some(other) => return self.unlike(patch, &other),
                };
                let patch = map;
                let directive = parse_directive(self.directive(patch)?);
                match directive {
                    Directive::Delete => Ok(None),
                    Directive::Replace => Ok(Some(Value::Object(self.merge_map(None, patch, self.keys_of(field))?))),
                    Directive::Merge => Ok(Some(Value::Object(self.merge_map(base, patch, self.keys_of(field))?))),
                }
            }
            Value::Array(items) => {
                if matches!(field, Some(Field::Object { .. } | Field::Map { .. })) {
                    let (message, hint) = wrong_shape(patch, Shape::Mapping);
                    return self.error(message, hint);
                }
                let base = match original {
                    None => None,
                    Some(Value::Array(items)) => Some(items),
                    Some(other) => return self.unlike(patch, &other),
                };
                match field {
                    Some(Field::List(list)) if list.merges() => {
                        self.merge_list(base, items, list).map(|v| Some(Value::Array(v)))
                    }
                    _ => self.replace_list(items).map(|()| Some(Value::Array(items.clone()))),
                }
            }
            scalar => match original {
                Some(container @ (Value::Object(_) | Value::Array(_))) => self.unlike(scalar, &container),
                _ => Ok(Some(scalar.clone())),
            },
        }
    }

    /// A patch value of another shape than the object's (where no schema says the shape).
    fn unlike<T>(&self, patch: &Value, original: &Value) -> Result<T, Problem> {
        self.error(
            format!("is {}, but the object has {} here", describe(patch), describe(original)),
            "give this field the shape it has in the object, or null to remove it",
        )
    }

    fn directive<'v>(&mut self, patch: &'v Map<String, Value>) -> Result<Option<&'v str>, Problem> {
        directive(patch, &[]).map_err(|mut p| {
            p.path = [self.path.as_slice(), p.path.as_slice()].concat();
            p
        })
    }

    /// Merges mapping `patch` into `base` (None: absent), handling the mapping directives.
    fn merge_map(
        &mut self,
        base: Option<Map<String, Value>>,
        patch: &Map<String, Value>,
        keys: Keys<'s>,
    ) -> Result<Map<String, Value>, Problem> {
        let mut out = base.unwrap_or_default();
        let mut retain = None;
        let mut orders = Vec::new();
        let mut deletions = Vec::new();
        // `$setElementOrder` compares with the list as it was before the patch.
        let before: Map<String, Value> = patch
            .keys()
            .filter_map(|k| k.strip_prefix(SET_ORDER))
            .filter_map(|name| out.get(name).map(|v| (name.to_string(), v.clone())))
            .collect();
        for (key, value) in patch {
            if key == PATCH {
                continue;
            }
            if key == RETAIN_KEYS {
                retain = Some(self.at(PathStep::Key(key.clone()), |m| m.strings(value))?);
            } else if let Some(field) = key.strip_prefix(SET_ORDER) {
                orders.push((key, field, value));
            } else if let Some(field) = key.strip_prefix(DELETE_FROM) {
                deletions.push((key, field, value));
            } else {
                let field = keys.field(key);
                let current = out.remove(key);
                if let Some(v) = self.at(PathStep::Key(key.clone()), |m| m.apply(current, value, field))? {
                    out.insert(key.clone(), v);
                }
            }
        }
        for (key, name, values) in deletions {
            self.at(PathStep::Key(key.clone()), |m| m.delete_from(&mut out, name, values, keys.field(name)))?;
        }
        for (key, name, order) in orders {
            let before = before.get(name).and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            self.at(PathStep::Key(key.clone()), |m| {
                m.set_order(&mut out, name, order, patch.get(name), before, keys.field(name))
            })?;
        }
        if let Some(retain) = retain {
            let stray: Vec<&String> = patch
                .iter()
                .filter(|(k, v)| !v.is_null() && !k.starts_with('$') && !retain.contains(k))
                .map(|(k, _)| k)
                .collect();
            if let Some(stray) = stray.first() {
                return self.at(PathStep::Key(RETAIN_KEYS.into()), |m| {
                    m.error(
                        format!("does not list {stray}, which the patch sets"),
                        format!("add {stray} to $retainKeys: it lists every key the mapping keeps"),
                    )
                });
            }
            out.retain(|k, _| retain.contains(k));
        }
        Ok(out)
    }

    fn strings(&self, value: &Value) -> Result<Vec<String>, Problem> {
        match value.as_array().and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect::<Option<Vec<_>>>())
        {
            Some(keys) => Ok(keys),
            None => {
                self.error(format!("is {}, but must be a list of keys", describe(value)), "write it as a list: [type]")
            }
        }
    }

    /// A list that is replaced whole may not carry list directives.
    fn replace_list(&mut self, items: &[Value]) -> Result<(), Problem> {
        for (i, item) in items.iter().enumerate() {
            if item.get(PATCH).is_some() {
                return self.at(PathStep::Index(i), |m| {
                    m.error(
                        "has $patch, but this list is replaced whole (the API does not merge it by key, or the kind has no schema)",
                        "give the whole list as it should be",
                    )
                });
            }
        }
        Ok(())
    }

    fn merge_list(
        &mut self,
        base: Option<Vec<Value>>,
        items: &[Value],
        list: &'s ListField,
    ) -> Result<Vec<Value>, Problem> {
        let base = base.unwrap_or_default();
        let keys = list.keys();
        if items.len() > MAX_LIST_ITEMS {
            return self.error(
                format!("has {} items, more than the {MAX_LIST_ITEMS} a list may have", items.len()),
                "split the change, or apply such objects another way",
            );
        }
        // `{$patch: replace}` elements (only `$patch`): the other items are the whole list.
        let mut replace = false;
        let mut kept = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let marker = item.as_object().filter(|m| m.len() == 1 && m.contains_key(PATCH));
            match marker {
                None => kept.push((i, item)),
                Some(marker) => match self.at(PathStep::Index(i), |m| m.directive(marker))? {
                    Some("replace") => replace = true,
                    Some("merge") => {}
                    _ => {
                        return self.at(PathStep::Index(i), |m| {
                            m.error(
                                "deletes nothing: a `$patch: delete` item names the item it deletes by its merge key",
                                "add the item's key, or set the whole field to null to remove the list",
                            )
                        });
                    }
                },
            }
        }
        let base = if replace { Vec::new() } else { base };
        let items = kept;
        if keys.is_empty() || !list_of_objects(&list.list, self.schema) {
            return self.merge_scalars(base, &items);
        }
        // Each existing item: its value, and whether a patch item merged into it.
        let mut existing: Vec<Option<Value>> = base.into_iter().map(Some).collect();
        let mut merged_at: Vec<Option<Value>> = vec![None; existing.len()];
        let mut added = Vec::new();
        for (i, item) in items {
            self.at(PathStep::Index(i), |m| {
                let Value::Object(patch) = item else {
                    return m.error(
                        format!("is {}, but the items of this list are mappings", describe(item)),
                        format!("write the item as a mapping with its {}", keys.join(" and ")),
                    );
                };
                let directive = parse_directive(m.directive(patch)?);
                // The patch merge key is required; only a second key may be left to match any.
                if patch.get(keys[0]).is_none_or(Value::is_null) {
                    return m.error(
                        format!("has no {}, which items of this list are matched by", keys[0]),
                        format!("add {}: the item it changes, or the new item's", keys[0]),
                    );
                }
                let matches: Vec<usize> = (0..existing.len())
                    .filter(|&j| {
                        existing[j].as_ref().or(merged_at[j].as_ref()).is_some_and(|b| same_item(b, patch, &keys))
                    })
                    .collect();
                if matches.len() > 1 {
                    return m.error(
                        format!("matches {} items of the list", matches.len()),
                        format!("give every key the items are matched by: {}", keys.join(", ")),
                    );
                }
                let field = Some(list.list.as_ref());
                match (matches.first().copied(), directive) {
                    (Some(j), Directive::Delete) => {
                        existing[j] = None;
                        merged_at[j] = None;
                    }
                    (None, Directive::Delete) => {}
                    (Some(j), _) => {
                        let current = merged_at[j].take().or_else(|| existing[j].take());
                        let current = if directive == Directive::Replace { None } else { current };
                        let value = m.merge_item(current, patch, field)?;
                        merged_at[j] = Some(value);
                        if keys.len() == 1 {
                            added.push(j);
                        }
                    }
                    (None, _) => {
                        let value = m.merge_item(None, patch, field)?;
                        existing.push(None);
                        merged_at.push(Some(value));
                        added.push(existing.len() - 1);
                    }
                }
                Ok(())
            })?;
        }
        // Patch items first, in the patch's order; then the others in their order (with two
        // keys, existing items stay in place, merged or not).
        let mut out: Vec<Value> = added.iter().filter_map(|&j| merged_at[j].take()).collect();
        for j in 0..existing.len() {
            if let Some(v) = merged_at[j].take().or_else(|| existing[j].take()) {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn merge_item(
        &mut self,
        current: Option<Value>,
        patch: &Map<String, Value>,
        field: Option<&'s Field>,
    ) -> Result<Value, Problem> {
        let base = match current {
            Some(Value::Object(map)) => Some(map),
            _ => None,
        };
        self.merge_map(base, patch, self.keys_of(field)).map(Value::Object)
    }

    /// A merged list of scalars (finalizers): the patch's values first, then the others.
    fn merge_scalars(&mut self, base: Vec<Value>, items: &[(usize, &Value)]) -> Result<Vec<Value>, Problem> {
        let mut out: Vec<Value> = Vec::new();
        for (i, item) in items {
            if item.is_object() || item.is_array() || item.is_null() {
                return self.at(PathStep::Index(*i), |m| {
                    m.error(
                        format!("is {}, but the items of this list are single values", describe(item)),
                        "write one value per item",
                    )
                });
            }
            if !out.contains(item) {
                out.push((*item).clone());
            }
        }
        for value in base {
            if !out.contains(&value) {
                out.push(value);
            }
        }
        Ok(out)
    }

    /// `$deleteFromPrimitiveList/NAME`: removes values from the merged list of scalars NAME.
    fn delete_from(
        &mut self,
        out: &mut Map<String, Value>,
        name: &str,
        values: &Value,
        field: Option<&Field>,
    ) -> Result<(), Problem> {
        let merged_scalars = match field {
            Some(Field::List(list)) => list.merges() && !list_of_objects(&list.list, self.schema),
            None => true,
            _ => false,
        };
        if !merged_scalars {
            return self.error(
                format!("{name} is not a list of values the API merges"),
                format!("give the whole list {name} without the values instead"),
            );
        }
        let Value::Array(values) = values else {
            return self.error(format!("is {}, but must be a list of values", describe(values)), "write it as a list");
        };
        if let Some(Value::Array(list)) = out.get_mut(name) {
            list.retain(|v| !values.contains(v));
        }
        Ok(())
    }

    /// `$setElementOrder/NAME`: orders the merged list NAME as SMP does: the listed items in
    /// the given order, the others where they were relative to them.
    fn set_order(
        &mut self,
        out: &mut Map<String, Value>,
        name: &str,
        order: &Value,
        patched: Option<&Value>,
        before: &[Value],
        field: Option<&Field>,
    ) -> Result<(), Problem> {
        let Some(Field::List(list)) = field.filter(|f| matches!(f, Field::List(l) if l.merges())) else {
            return self.error(
                format!("{name} is not a list the API merges by key"),
                format!("remove the directive; {name} is replaced whole, in the order you give it"),
            );
        };
        let Value::Array(order) = order else {
            return self.error(
                format!("is {}, but must be a list", describe(order)),
                "list the items' keys in the wanted order",
            );
        };
        let keys = list.keys();
        let position = |item: &Value| -> Option<usize> {
            order.iter().position(|o| match (o, keys.is_empty()) {
                (Value::Object(o), false) => same_item(item, o, &keys),
                (o, _) => o == item,
            })
        };
        if let Some(Value::Array(patched)) = patched
            && let Some(stray) = patched.iter().find(|p| p.get(PATCH).is_none() && position(p).is_none())
        {
            return self.error(
                format!("does not list the patch's item {stray}"),
                "list every item of the patch in $setElementOrder",
            );
        }
        let Some(Value::Array(current)) = out.get_mut(name) else { return Ok(()) };
        let (mut listed, others): (Vec<Value>, Vec<Value>) =
            std::mem::take(current).into_iter().partition(|v| position(v).is_some());
        listed.sort_by_key(|v| position(v));
        let index = |v: &Value| {
            before.iter().position(|b| match (b, v) {
                (Value::Object(b), v) if !keys.is_empty() => same_item(v, b, &keys),
                (b, v) => b == v,
            })
        };
        *current = merge_sorted(others, listed, index);
        Ok(())
    }
}

/// SMP's `mergeSortedSlice`: inserts `left` (items not in the order list) into `right`,
/// keeping both relative orders; `index` places an item in the list as it was before the patch.
fn merge_sorted(left: Vec<Value>, right: Vec<Value>, index: impl Fn(&Value) -> Option<usize>) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => {
                let left_first = matches!((index(a), index(b)), (Some(i), Some(j)) if i < j);
                out.push(if left_first { l.next() } else { r.next() }.expect("peeked"));
            }
            (Some(_), None) => out.extend(l.by_ref()),
            (None, Some(_)) => out.extend(r.by_ref()),
            (None, None) => return out,
        }
    }
}

fn list_of_objects(item: &Field, schema: &Schema) -> bool {
    match item {
        Field::Object { type_name, .. } => schema.type_def(type_name).is_some(),
        Field::Map { .. } => true,
        _ => false,
    }
}

/// Whether `item` is the item `patch` names: every merge key the patch gives is equal, a
/// missing `protocol` is TCP (the API server's default), other missing keys match anything.
fn same_item(item: &Value, patch: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().all(|key| {
        let given = patch.get(*key).filter(|v| !v.is_null());
        let have = item.get(*key).filter(|v| !v.is_null());
        match (given, have) {
            (Some(a), Some(b)) => a == b,
            (None, _) if *key != "protocol" => true,
            (a, b) => a.and_then(Value::as_str).unwrap_or("TCP") == b.and_then(Value::as_str).unwrap_or("TCP"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema;
    use serde_json::json;

    fn merge(base: Value, patch: Value) -> Result<Value, Problem> {
        let def = schema().object("apps/v1", "Deployment");
        let mut target = base.as_object().unwrap().clone();
        merge_object(schema(), def, &mut target, patch.as_object().unwrap())?;
        Ok(Value::Object(target))
    }

    fn pod(spec: Value) -> Value {
        json!({"spec": {"template": {"spec": spec}}})
    }

    #[test]
    fn patch_items_first_then_the_others() {
        let base = pod(json!({"containers": [{"name": "app", "env": [
            {"name": "A", "value": "1"}, {"name": "X", "value": "1"}, {"name": "B", "value": "1"}, {"name": "C", "value": "1"}]}]}));
        let patch = pod(json!({"containers": [{"name": "app", "env": [
            {"name": "B", "value": "2"}, {"name": "Y", "value": "2"}, {"name": "X", "value": "2"}]}]}));
        let out = merge(base, patch).unwrap();
        let names: Vec<&str> = out
            .pointer("/spec/template/spec/containers/0/env")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["B", "Y", "X", "A", "C"]);
    }

    #[test]
    fn two_key_lists_put_new_items_first_and_keep_the_others_in_place() {
        let ports =
            |ps: &[u16]| -> Value { ps.iter().map(|p| json!({"containerPort": p, "protocol": "TCP"})).collect() };
        let base = pod(json!({"containers": [{"name": "app", "ports": ports(&[80, 81, 82])}]}));
        let patch = pod(
            json!({"containers": [{"name": "app", "ports": [{"containerPort": 82, "name": "x"}, {"containerPort": 90}]}]}),
        );
        let out = merge(base, patch).unwrap();
        assert_eq!(
            out.pointer("/spec/template/spec/containers/0/ports").unwrap(),
            &json!([{"containerPort": 90}, {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 81, "protocol": "TCP"},
                {"containerPort": 82, "protocol": "TCP", "name": "x"}])
        );
    }

    #[test]
    fn directives() {
        let base = pod(
            json!({"containers": [{"name": "a", "image": "a", "securityContext": {"runAsUser": 1, "privileged": false}}, {"name": "b", "image": "b"}],
            "volumes": [{"name": "v", "emptyDir": {}}]}),
        );
        let patch = pod(json!({"containers": [
            {"name": "a", "securityContext": {"$patch": "replace", "runAsNonRoot": true}},
            {"name": "b", "$patch": "delete"}],
            "volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}]}));
        let out = merge(base, patch).unwrap();
        assert_eq!(
            out,
            pod(json!({"containers": [{"name": "a", "image": "a", "securityContext": {"runAsNonRoot": true}}],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}]}))
        );

        let replaced = merge(
            pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
            pod(json!({"containers": [{"$patch": "replace"}, {"name": "z", "image": "z"}]})),
        )
        .unwrap();
        assert_eq!(replaced, pod(json!({"containers": [{"name": "z", "image": "z"}]})));

        let ordered = merge(pod(json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})),
            pod(json!({"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}], "containers": [{"name": "a", "image": "x"}]}))).unwrap();
        let names: Vec<&str> = ordered
            .pointer("/spec/template/spec/containers")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        // As `kubectl patch --type strategic` orders them: b stays before c, where it was.
        assert_eq!(names, ["b", "c", "a"]);
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_patch_field() {
        let base = pod(json!({"containers": [{"name": "a", "image": "a"}]}));
        let e = merge(base.clone(), pod(json!({"containers": {"name": "a", "image": "b"}}))).unwrap_err();
        assert_eq!(e.to_string(), "spec.template.spec.containers: is a mapping, but this field is a list");
        let e = merge(base.clone(), pod(json!({"containers": [{"image": "b"}]}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.template.spec.containers[0]: has no name, which items of this list are matched by"
        );
        let e = merge(base.clone(), pod(json!({"containers": [{"name": "a", "$patch": "remove"}]}))).unwrap_err();
        assert_eq!(e.to_string(), "spec.template.spec.containers[0].$patch: unknown $patch directive \"remove\"");
        assert_eq!(e.hint, "write one of: replace, delete, merge");
        let e = merge(base.clone(), pod(json!({"containers": [{"name": "a", "$patch": "delet"}]}))).unwrap_err();
        assert_eq!(e.hint, "did you mean \"delete\"?");
        let e = merge(base.clone(), pod(json!({"containers": [{"name": "a", "$patch": true}]}))).unwrap_err();
        assert_eq!(e.to_string(), "spec.template.spec.containers[0].$patch: unknown $patch directive true");
        let e = merge(base.clone(), pod(json!({"tolerations": [{"key": "k", "$patch": "delete"}]}))).unwrap_err();
        assert!(
            e.to_string().starts_with("spec.template.spec.tolerations[0]: has $patch, but this list is replaced whole"),
            "{e}"
        );
        let e = merge(base.clone(), pod(json!({"securityContext": [{"runAsNonRoot": true}]}))).unwrap_err();
        assert_eq!(e.to_string(), "spec.template.spec.securityContext: is a list, but this field is a mapping");
        // The patch merge key is required; a second key alone matches nothing.
        let ports = json!({"containers": [{"name": "a", "ports": [{"protocol": "TCP", "name": "x"}]}]});
        let e = merge(base.clone(), pod(ports)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.template.spec.containers[0].ports[0]: has no containerPort, which items of this list are matched by"
        );
        // Replace markers are handled in one pass, and lists are bounded.
        let markers: Vec<Value> = (0..4_000).map(|_| json!({"$patch": "replace"})).collect();
        let out = merge(base.clone(), pod(json!({"imagePullSecrets": markers}))).unwrap();
        assert_eq!(out.pointer("/spec/template/spec/imagePullSecrets"), Some(&json!([])));
        let many: Vec<Value> = (0..5_001).map(|i| json!({"name": format!("s{i}")})).collect();
        let e = merge(base.clone(), pod(json!({"imagePullSecrets": many}))).unwrap_err();
        assert!(e.to_string().contains("more than the 5000 a list may have"), "{e}");
        let e = merge(base, pod(json!({"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["a"]}]})))
            .unwrap_err();
        assert!(e.to_string().contains("args is not a list of values the API merges"), "{e}");
    }
}
