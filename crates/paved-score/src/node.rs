//! A YAML document as a tree in which every value and key knows its line.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One value of the document and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Value,
}

/// A mapping key and its line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub line: usize,
}

/// The YAML value kinds the Score schema knows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order (duplicates are refused while reading).
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// The JSON Schema type name, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
        }
    }

    /// The value as JSON (placeholders in `metadata` and `params` look values up in it).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(|n| n.value.to_json()).collect(),
            Value::Map(entries) => entries.iter().map(|(k, n)| (k.name.clone(), n.value.to_json())).collect(),
        }
    }
}

fn line(s: &Spanned<impl Sized>) -> usize {
    usize::try_from(s.referenced.line()).unwrap_or(usize::MAX).max(1)
}

/// What serde-saphyr gives: every child spanned.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Raw, D2::Error> {
                Raw::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Raw, E> {
                i64::try_from(v).map(Raw::Int).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries: Vec<(Spanned<String>, Spanned<Raw>)> = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if entries.iter().any(|(k, _)| k.value == key.value) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate key {:?} (line {})",
                            key.value,
                            line(&key)
                        )));
                    }
                    let value = map.next_value::<Spanned<Raw>>()?;
                    entries.push((key, value));
                }
                Ok(Raw::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

fn convert(raw: Spanned<Raw>) -> Node {
    let line = line(&raw);
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(convert).collect()),
        Raw::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key_line = self::line(&k);
                    (Key { name: k.value, line: key_line }, convert(v))
                })
                .collect(),
        ),
    };
    Node { line, value }
}

/// Parses one YAML document; the error gives its line when the parser knows it.
pub(crate) fn parse(text: &str) -> Result<Node, (Option<usize>, String)> {
    match serde_saphyr::from_str::<Spanned<Raw>>(text) {
        Ok(raw) => Ok(convert(raw)),
        Err(e) => {
            let line = e.location().and_then(|l| usize::try_from(l.line()).ok()).filter(|l| *l > 0);
            // The first line of the parser's message; the rest is a snippet of the file.
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("not valid YAML").to_string();
            Err((line, first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_and_values() {
        let n = parse("a: 1\nb:\n  - x\n  - c: true\n").unwrap();
        let Value::Map(entries) = &n.value else { panic!("{n:?}") };
        assert_eq!(entries[0].0, Key { name: "a".into(), line: 1 });
        assert_eq!(entries[0].1.value, Value::Int(1));
        assert_eq!(entries[1].0.line, 2);
        let Value::Seq(items) = &entries[1].1.value else { panic!() };
        assert_eq!(items[0].line, 3);
        assert_eq!(items[1].line, 4);
        assert_eq!(items[1].value.to_json(), serde_json::json!({"c": true}));
    }

    #[test]
    fn duplicate_keys_and_bad_yaml_are_refused() {
        let (_, m) = parse("a: 1\na: 2\n").unwrap_err();
        assert!(m.contains("duplicate"), "{m}");
        let (line, _) = parse("a: [1\nb: 2\n").unwrap_err();
        assert!(line.is_some());
    }
}
