//! Secret values on the wire: serialised from and parsed straight into `SecretString`s.

use std::collections::BTreeMap;
use std::fmt;

use paved_core::SecretMap;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Serialises a [`SecretMap`] as a JSON object of strings (the request body of a KV write).
pub(crate) struct ExposedMap<'a>(pub(crate) &'a SecretMap);

impl Serialize for ExposedMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v.expose_secret())?;
        }
        map.end()
    }
}

/// One value of a KV secret. Strings move into the `SecretString` without a copy; other JSON
/// values (numbers, booleans, objects written by other tools) become their JSON text. Parsing
/// never fails on a value, so no parser error can quote one.
pub(crate) struct WireValue(pub(crate) SecretString);

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = WireValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret value")
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<WireValue, E> {
        Ok(WireValue(SecretString::from(String::new())))
    }
    fn visit_none<E: de::Error>(self) -> Result<WireValue, E> {
        self.visit_unit()
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<WireValue, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(WireValue(SecretString::from(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<WireValue, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(WireValue(SecretString::from(v.to_string())))
    }
}

/// The `data` object of a KV v2 read.
pub(crate) type WireMap = BTreeMap<String, WireValue>;

/// Turns a parsed `data` object into a [`SecretMap`].
pub(crate) fn into_secret_map(map: WireMap) -> SecretMap {
    map.into_iter().map(|(k, v)| (k, v.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_json_value_becomes_a_secret_string() {
        let json = serde_json::json!({"s": "text", "n": 5432, "b": true, "o": {"x": 1}, "a": [1, 2], "z": null});
        let map = into_secret_map(serde_json::from_value(json).unwrap());
        let got: BTreeMap<&str, &str> = map.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
        assert_eq!(
            got,
            BTreeMap::from([
                ("a", "[1,2]"),
                ("b", "true"),
                ("n", "5432"),
                ("o", "{\"x\":1}"),
                ("s", "text"),
                ("z", "")
            ])
        );
        let back = serde_json::to_string(&ExposedMap(&map)).unwrap();
        assert!(back.contains("\"s\":\"text\""), "{back}");
    }
}
