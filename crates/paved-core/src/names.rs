//! Validated names: applications and teams.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest DNS label Kubernetes accepts.
pub const MAX_LABEL_LEN: usize = 63;

/// An application name: a DNS-1035 label (lowercase letters, digits and `-`, starting with a
/// letter, ending with a letter or digit, at most 63 characters), because it becomes the name
/// of Kubernetes objects and part of the URL.
///
/// ```
/// use paved_core::AppName;
/// assert!(AppName::new("my-service").is_ok());
/// let err = AppName::new("My_Service").unwrap_err();
/// assert_eq!(err.hint(), Some(r#"use "my-service""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

/// A team name: a DNS-1123 label (lowercase letters, digits and `-`, at most 63 characters),
/// because it becomes a label value and can be part of a namespace name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Team(String);

/// Turns an arbitrary string into the closest valid DNS label (the hint for a bad name).
pub fn to_dns_label(input: &str, must_start_with_letter: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    if must_start_with_letter {
        let trimmed = out.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
        out = trimmed.to_string();
    }
    out.truncate(MAX_LABEL_LEN);
    out.trim_end_matches('-').to_string()
}

fn check_label(field: &'static str, value: &str, must_start_with_letter: bool) -> Result<()> {
    let fixed = to_dns_label(value, must_start_with_letter);
    let hint = (!fixed.is_empty()).then(|| format!("use \"{fixed}\""));
    if value.is_empty() {
        return Err(Error::invalid(field, value, "must not be empty", None));
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(Error::invalid(
            field,
            value,
            format!("is {} characters long; the limit is {MAX_LABEL_LEN}", value.len()),
            Some(format!("shorten it, e.g. \"{fixed}\"")),
        ));
    }
    let bytes = value.as_bytes();
    let valid_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    if !bytes.iter().all(valid_char) {
        return Err(Error::invalid(field, value, "may contain only lowercase letters, digits and '-'", hint));
    }
    if must_start_with_letter && !bytes[0].is_ascii_lowercase() {
        return Err(Error::invalid(field, value, "must start with a lowercase letter", hint));
    }
    if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err(Error::invalid(field, value, "must start and end with a letter or digit", hint));
    }
    Ok(())
}

macro_rules! label_type {
    ($ty:ident, $field:literal, $letter:expr) => {
        impl $ty {
            /// Validates and wraps a name.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                check_label($field, &value, $letter)?;
                Ok(Self(value))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
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
                v.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

label_type!(AppName, "app", true);
label_type!(Team, "team", false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        for ok in ["a", "my-service", "svc2", &"a".repeat(63)] {
            AppName::new(ok).unwrap();
        }
        let cases = [
            ("My_Service", "my-service"),
            ("1service", "service"),
            ("service-", "service"),
            ("my.service", "my-service"),
        ];
        for (bad, fixed) in cases {
            let err = AppName::new(bad).unwrap_err();
            assert_eq!(err.hint(), Some(format!("use \"{fixed}\"").as_str()), "{bad}");
            assert!(err.is_user_error());
        }
        let long = "a".repeat(64);
        let err = AppName::new(&long).unwrap_err();
        assert!(err.to_string().contains("64 characters"), "{err}");
        assert!(err.hint().unwrap().contains(&"a".repeat(63)));
        assert!(AppName::new("").is_err());
    }

    #[test]
    fn team_names_may_start_with_a_digit() {
        Team::new("9lives").unwrap();
        assert_eq!(Team::new("Payments").unwrap_err().hint(), Some("use \"payments\""));
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<AppName>("\"Bad_Name\"").is_err());
        let name: AppName = serde_json::from_str("\"good\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"good\"");
    }
}
