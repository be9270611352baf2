//! CPU and memory quantities in Kubernetes syntax (`100m`, `2`, `256Mi`, `1Gi`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A CPU quantity: cores (`2`, `0.5`) or millicores (`500m`).
///
/// ```
/// use paved_core::CpuQuantity;
/// assert_eq!(CpuQuantity::new("2").unwrap().millis(), 2000);
/// assert_eq!(CpuQuantity::new("250m").unwrap().millis(), 250);
/// let err = CpuQuantity::new("2 cores").unwrap_err();
/// assert_eq!(err.hint(), Some(r#"write cores as a plain number: "2" (or "2000m")"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuQuantity {
    raw: String,
    millis: u64,
}

/// A memory quantity in bytes with an optional binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`) or
/// decimal (`k`, `M`, `G`, `T`, `P`, `E`) suffix.
///
/// ```
/// use paved_core::MemoryQuantity;
/// assert_eq!(MemoryQuantity::new("256Mi").unwrap().bytes(), 256 * 1024 * 1024);
/// let err = MemoryQuantity::new("512mb").unwrap_err();
/// assert_eq!(err.hint(), Some(r#"did you mean "512Mi"?"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemoryQuantity {
    raw: String,
    bytes: u128,
}

/// Splits `"12.5Mi"` into `("12.5", "Mi")` when the number part is a plain decimal.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    let digits = num.bytes().filter(u8::is_ascii_digit).count();
    let dots = num.bytes().filter(|b| *b == b'.').count();
    (digits > 0 && dots <= 1 && !num.ends_with('.') && !num.starts_with('.')).then_some((num, suffix))
}

/// `number * scale` exactly (no float rounding), `None` when it is not a whole number.
fn scaled(num: &str, scale: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = int.parse().ok()?;
    let mut value = int.checked_mul(scale)?;
    if !frac.is_empty() {
        let denom = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        let f: u128 = frac.parse().ok()?;
        let part = f.checked_mul(scale)?;
        if part % denom != 0 {
            return None;
        }
        value = value.checked_add(part / denom)?;
    }
    Some(value)
}

impl CpuQuantity {
    /// Parses a CPU quantity.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        Self::parse_field("cpu", value.into())
    }

    /// Parses a CPU quantity, naming `field` (e.g. `cpu-limit`) in errors.
    pub fn parse_field(field: &'static str, raw: String) -> Result<Self> {
        let s = raw.trim();
        let generic = || r#"CPU is cores ("2", "0.5") or millicores ("500m")"#.to_string();
        let Some((num, suffix)) = split_number(s) else {
            return Err(Error::invalid(field, &raw, "is not a CPU quantity", Some(generic())));
        };
        let suffix_trim = suffix.trim().to_ascii_lowercase();
        let millis = match suffix {
            "" => scaled(num, 1000),
            "m" => scaled(num, 1),
            _ => {
                let hint = if ["core", "cores", "cpu", "cpus", "vcpu", "vcpus"].contains(&suffix_trim.as_str()) {
                    let m = scaled(num, 1000).map_or_else(String::new, |m| format!(" (or \"{m}m\")"));
                    format!("write cores as a plain number: \"{num}\"{m}")
                } else if suffix_trim == "m" || suffix_trim == "millicores" {
                    format!("did you mean \"{num}m\"?")
                } else {
                    generic()
                };
                return Err(Error::invalid(field, &raw, format!("unknown unit \"{}\"", suffix.trim()), Some(hint)));
            }
        };
        match millis {
            Some(0) => Err(Error::invalid(field, &raw, "must be greater than zero", Some(generic()))),
            Some(millis) => Ok(CpuQuantity { raw: s.to_string(), millis: u64::try_from(millis).unwrap_or(u64::MAX) }),
            None => Err(Error::invalid(field, &raw, "is finer than 1m (one millicore)", Some(generic()))),
        }
    }

    /// The quantity in millicores.
    pub fn millis(&self) -> u64 {
        self.millis
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

const BINARY: &[(&str, u32)] = &[("Ki", 1), ("Mi", 2), ("Gi", 3), ("Ti", 4), ("Pi", 5), ("Ei", 6)];
const DECIMAL: &[(&str, u32)] = &[("k", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5), ("E", 6)];

impl MemoryQuantity {
    /// Parses a memory quantity.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        Self::parse_field("memory", value.into())
    }

    /// Parses a memory quantity, naming `field` (e.g. `memory-limit`) in errors.
    pub fn parse_field(field: &'static str, raw: String) -> Result<Self> {
        let s = raw.trim();
        let generic = || r#"memory is bytes with a unit such as "256Mi" or "1Gi""#.to_string();
        let Some((num, suffix)) = split_number(s) else {
            return Err(Error::invalid(field, &raw, "is not a memory quantity", Some(generic())));
        };
        let scale = if suffix.is_empty() {
            Some(1u128)
        } else if let Some((_, p)) = BINARY.iter().find(|(u, _)| *u == suffix) {
            Some(1024u128.pow(*p))
        } else if let Some((_, p)) = DECIMAL.iter().find(|(u, _)| *u == suffix) {
            Some(1000u128.pow(*p))
        } else {
            None
        };
        let Some(scale) = scale else {
            // Common mistakes: 512mb, 512MB, 512m (milli-bytes!), 1g, 1gb, "512 Mi".
            let t = suffix.trim().to_ascii_lowercase();
            let first = t.chars().next().unwrap_or(' ');
            let hint = match BINARY.iter().find(|(u, _)| u.to_ascii_lowercase().starts_with(first)) {
                Some((u, _))
                    if t.len() <= 3 && (t.len() == 1 || t.ends_with('b') || t.ends_with('i') || t.ends_with("ib")) =>
                {
                    format!("did you mean \"{num}{u}\"?")
                }
                _ => generic(),
            };
            return Err(Error::invalid(field, &raw, format!("unknown unit \"{}\"", suffix.trim()), Some(hint)));
        };
        match scaled(num, scale) {
            Some(0) => Err(Error::invalid(field, &raw, "must be greater than zero", Some(generic()))),
            Some(bytes) => Ok(MemoryQuantity { raw: s.to_string(), bytes }),
            None => Err(Error::invalid(field, &raw, "is not a whole number of bytes", Some(generic()))),
        }
    }

    /// The quantity in bytes.
    pub fn bytes(&self) -> u128 {
        self.bytes
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

macro_rules! quantity_traits {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.raw)
            }
        }
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.raw
            }
        }
    };
}

quantity_traits!(CpuQuantity);
quantity_traits!(MemoryQuantity);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        for (s, m) in [("100m", 100), ("2", 2000), ("0.5", 500), ("1.25", 1250), ("2000m", 2000), (" 3 ", 3000)] {
            assert_eq!(CpuQuantity::new(s).unwrap().millis(), m, "{s}");
        }
        for (bad, hint) in [
            ("2 cores", r#"write cores as a plain number: "2" (or "2000m")"#),
            ("1.5cpu", r#"write cores as a plain number: "1.5" (or "1500m")"#),
            ("500M", r#"did you mean "500m"?"#),
            ("0", r#"CPU is cores ("2", "0.5") or millicores ("500m")"#),
            ("0.0001", r#"CPU is cores ("2", "0.5") or millicores ("500m")"#),
            ("abc", r#"CPU is cores ("2", "0.5") or millicores ("500m")"#),
            ("-1", r#"CPU is cores ("2", "0.5") or millicores ("500m")"#),
            ("1.", r#"CPU is cores ("2", "0.5") or millicores ("500m")"#),
        ] {
            let err = CpuQuantity::new(bad).unwrap_err();
            assert_eq!(err.hint(), Some(hint), "{bad}");
        }
    }

    #[test]
    fn memory() {
        for (s, b) in [
            ("256Mi", 256u128 << 20),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("512M", 512_000_000),
            ("1k", 1000),
            ("1048576", 1 << 20),
        ] {
            assert_eq!(MemoryQuantity::new(s).unwrap().bytes(), b, "{s}");
        }
        for (bad, hint) in [
            ("512mb", r#"did you mean "512Mi"?"#),
            ("512MB", r#"did you mean "512Mi"?"#),
            ("512m", r#"did you mean "512Mi"?"#),
            ("1gb", r#"did you mean "1Gi"?"#),
            ("1G B", r#"did you mean "1Gi"?"#),
            ("lots", r#"memory is bytes with a unit such as "256Mi" or "1Gi""#),
            ("0Mi", r#"memory is bytes with a unit such as "256Mi" or "1Gi""#),
            ("0.1", r#"memory is bytes with a unit such as "256Mi" or "1Gi""#),
        ] {
            let err = MemoryQuantity::new(bad).unwrap_err();
            assert_eq!(err.hint(), Some(hint), "{bad}");
        }
    }
}
