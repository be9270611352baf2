//! Container image references, parsed with the OCI distribution reference grammar.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A container image reference: `[registry/]repository[:tag][@digest]`.
///
/// Parsed with the grammar of the OCI distribution specification (the one `docker pull`
/// uses): the repository is lowercase path components separated by `/`, the first component
/// is a registry when it contains `.` or `:` or is `localhost`, a tag is at most 128 word
/// characters, `.` and `-`, and a digest is `algorithm:hex` (at least 32 hex digits).
///
/// ```
/// use paved_core::ImageRef;
/// let image = ImageRef::new("ghcr.io/company/my-service:v1.2.3").unwrap();
/// assert_eq!(image.registry(), Some("ghcr.io"));
/// assert_eq!(image.repository(), "company/my-service");
/// assert_eq!(image.tag(), Some("v1.2.3"));
/// assert!(ImageRef::new("ghcr.io/Company/app:1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    raw: String,
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

const MAX_NAME_LEN: usize = 255;

fn bad(value: &str, reason: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::invalid("image", value, reason, Some(hint.into()))
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `path-component := [a-z0-9]+ (separator [a-z0-9]+)*`, `separator := [_.] | __ | -+`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1].bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else { return false };
    let alg_ok = alg.split(['+', '.', '-', '_']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|x| x.is_ascii_hexdigit());
    let sha256_ok = alg != "sha256" || hex.len() == 64;
    alg_ok && hex_ok && sha256_ok
}

impl ImageRef {
    /// Parses and validates an image reference.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let raw = value.into();
        let v = raw.as_str();
        if v.is_empty() {
            return Err(bad(v, "must not be empty", "give an image such as \"ghcr.io/company/app:v1.2.3\""));
        }
        if v.chars().any(char::is_whitespace) {
            let fixed: String = v.split_whitespace().collect();
            return Err(bad(v, "must not contain spaces", format!("did you mean \"{fixed}\"?")));
        }
        let (rest, digest) = match v.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (v, None),
        };
        if let Some(d) = digest
            && !valid_digest(d)
        {
            return Err(bad(
                v,
                format!("digest \"{d}\" is not algorithm:hex"),
                "use a digest such as sha256:<64 hex digits>",
            ));
        }
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(
                v,
                format!("tag \"{t}\" is not valid"),
                "a tag is 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            ));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad(
                v,
                format!("name is longer than {MAX_NAME_LEN} characters"),
                "use a shorter repository name",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), remainder),
            _ => (None, name),
        };
        if let Some(r) = registry
            && !valid_domain(r)
        {
            return Err(bad(
                v,
                format!("registry \"{r}\" is not a valid host[:port]"),
                "use a registry such as \"ghcr.io\"",
            ));
        }
        if !repository.split('/').all(valid_path_component) {
            let lower = repository.to_ascii_lowercase();
            let fixed = match registry {
                Some(r) => format!("{r}/{lower}"),
                None => lower.clone(),
            };
            let with_tag = tag.map_or(fixed.clone(), |t| format!("{fixed}:{t}"));
            let hint = if repository != lower && lower.split('/').all(valid_path_component) {
                format!("repository names are lowercase: \"{with_tag}\"")
            } else {
                "repository path components are lowercase letters and digits separated by '.', '_', '__' or '-'".into()
            };
            return Err(bad(v, format!("repository \"{repository}\" is not valid"), hint));
        }
        Ok(ImageRef {
            registry: registry.map(str::to_string),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
            raw,
        })
    }

    /// The registry host (`ghcr.io`, `localhost:5000`), if the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository path without registry, tag or digest (`company/my-service`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The reference exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// A version string for the `app.kubernetes.io/version` label: the tag, else the first
    /// 12 hex digits of the digest, else `latest` (what a runtime pulls without a tag).
    pub fn version(&self) -> &str {
        match (&self.tag, &self.digest) {
            (Some(t), _) => t,
            (None, Some(d)) => {
                let hex = d.split_once(':').map_or(d.as_str(), |(_, h)| h);
                &hex[..hex.len().min(12)]
            }
            (None, None) => "latest",
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for ImageRef {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<ImageRef> for String {
    fn from(v: ImageRef) -> String {
        v.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_the_reference_grammar() {
        let cases: &[(&str, Option<&str>, &str, Option<&str>)] = &[
            ("nginx", None, "nginx", None),
            ("nginx:1.27", None, "nginx", Some("1.27")),
            ("library/nginx:1.27-alpine", None, "library/nginx", Some("1.27-alpine")),
            ("ghcr.io/company/my-service:v1.2.3", Some("ghcr.io"), "company/my-service", Some("v1.2.3")),
            ("localhost:5000/a/b_c__d.e--f:tag", Some("localhost:5000"), "a/b_c__d.e--f", Some("tag")),
            ("localhost/app", Some("localhost"), "app", None),
            ("[::1]:5000/app:1", Some("[::1]:5000"), "app", Some("1")),
            ("registry.example.com:443/team/app", Some("registry.example.com:443"), "team/app", None),
        ];
        for (raw, reg, repo, tag) in cases {
            let i = ImageRef::new(*raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((i.registry(), i.repository(), i.tag()), (*reg, *repo, *tag), "{raw}");
            assert_eq!(i.to_string(), *raw);
        }
        let with_digest = ImageRef::new(format!("ghcr.io/a/b:v1@{DIGEST}")).unwrap();
        assert_eq!(with_digest.digest(), Some(DIGEST));
        assert_eq!(with_digest.version(), "v1");
        let only_digest = ImageRef::new(format!("ghcr.io/a/b@{DIGEST}")).unwrap();
        assert_eq!(only_digest.tag(), None);
        assert_eq!(only_digest.version(), "0123456789ab");
        assert_eq!(ImageRef::new("nginx").unwrap().version(), "latest");
    }

    #[test]
    fn rejects_with_hints() {
        let spaces = ImageRef::new("ghcr.io/company/my service:v1").unwrap_err();
        assert_eq!(spaces.hint(), Some("did you mean \"ghcr.io/company/myservice:v1\"?"));
        let upper = ImageRef::new("ghcr.io/Company/My-Service:v1").unwrap_err();
        assert_eq!(upper.hint(), Some("repository names are lowercase: \"ghcr.io/company/my-service:v1\""));
        for bad in [
            "",
            "app:",
            "app:-x",
            "app:.x",
            &format!("app:{}", "a".repeat(129)),
            "app@sha256:abc",
            "app@md5",
            "a//b",
            "-app",
            "app-",
            "a...b",
            "reg.io:port/app",
            &format!("{}:1", "a".repeat(256)),
        ] {
            assert!(ImageRef::new(bad).is_err(), "{bad} should be rejected");
        }
    }
}
