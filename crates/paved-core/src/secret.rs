//! References to secrets kept in a secret store, and the secret values themselves.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The stores a [`SecretRef`] can point into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SecretScheme {
    /// HashiCorp Vault / OpenBao KV v2: `vault://MOUNT/PATH#KEY`.
    Vault,
    /// AWS Secrets Manager: `aws-sm://NAME#KEY` (the key selects a field of a JSON secret).
    AwsSecretsManager,
    /// A Kubernetes Secret that already exists in the app's namespace: `k8s://NAME#KEY`.
    Kubernetes,
}

impl SecretScheme {
    pub(crate) const ALL: [(&'static str, SecretScheme); 3] = [
        ("vault", SecretScheme::Vault),
        ("aws-sm", SecretScheme::AwsSecretsManager),
        ("k8s", SecretScheme::Kubernetes),
    ];

    /// The URI scheme, e.g. `vault`.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, s)| *s == self).map_or("", |(n, _)| n)
    }
}

impl FromStr for SecretScheme {
    type Err = Error;

    /// A scheme by its URI name (`vault`, `aws-sm`, `k8s`), with a did-you-mean hint.
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, v)| *v).ok_or_else(|| {
            let hint = crate::suggest::hint_for(s, Self::ALL.iter().map(|(n, _)| *n));
            Error::invalid("scheme", s, "is not a secret store scheme", Some(hint))
        })
    }
}

/// A reference to one value in a secret store, e.g. `vault://secret/payments/db#password`.
///
/// The reference is not secret; the value it points to is, and is only ever held as a
/// [`SecretString`].
///
/// ```
/// use paved_core::{SecretRef, SecretScheme};
/// let r: SecretRef = "vault://secret/payments/db#password".parse().unwrap();
/// assert_eq!(r.scheme(), SecretScheme::Vault);
/// assert_eq!(r.path(), "secret/payments/db");
/// assert_eq!(r.key(), Some("password"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretRef {
    scheme: SecretScheme,
    path: String,
    key: Option<String>,
    version: Option<u64>,
}

impl SecretRef {
    /// Parses `SCHEME://PATH[#KEY][?version=N]`.
    pub fn new(value: &str) -> Result<Self> {
        let usage =
            || Some("write a reference as vault://MOUNT/PATH#KEY, aws-sm://NAME#KEY or k8s://NAME#KEY".to_string());
        let Some((scheme, rest)) = value.split_once("://") else {
            return Err(Error::invalid("secret reference", value, "has no scheme", usage()));
        };
        let Some(scheme) = SecretScheme::ALL.iter().find(|(n, _)| *n == scheme).map(|(_, s)| *s) else {
            let names: Vec<&str> = SecretScheme::ALL.iter().map(|(n, _)| *n).collect();
            let hint = crate::suggest::hint_for(scheme, names.iter().copied());
            return Err(Error::invalid("secret reference", value, format!("unknown scheme \"{scheme}\""), Some(hint)));
        };
        let (rest, version) = match rest.split_once("?version=") {
            Some((r, v)) => {
                let n = v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::invalid(
                        "secret reference",
                        value,
                        "version is not a positive integer",
                        Some("use ?version=3".into()),
                    )
                })?;
                (r, Some(n))
            }
            None => (rest, None),
        };
        let (path, key) = match rest.split_once('#') {
            Some((p, k)) => (p, Some(k)),
            None => (rest, None),
        };
        let path = path.trim_matches('/');
        if path.is_empty() || path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Error::invalid("secret reference", value, "has an empty or relative path", usage()));
        }
        if key.is_some_and(str::is_empty) {
            return Err(Error::invalid("secret reference", value, "has an empty key after '#'", usage()));
        }
        // References end up in templates (the Vault Agent Injector's Go templates), annotations
        // and API paths: only characters that mean nothing there, per scheme.
        let (path_ok, allowed): (fn(u8) -> bool, &str) = match scheme {
            SecretScheme::AwsSecretsManager => {
                (|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b), "letters, digits and /_+=.@-")
            }
            _ => (|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b), "letters, digits, `.`, `_` and `-`"),
        };
        fn plain(b: u8) -> bool {
            b.is_ascii_alphanumeric() || b"_.-".contains(&b)
        }
        if !path.bytes().all(path_ok) {
            return Err(Error::invalid(
                "secret reference",
                value,
                format!("the path may contain only {allowed} (and `/` between its parts)"),
                Some("rename the secret, e.g. secret/payments/db-credentials".into()),
            ));
        }
        if let Some(k) = key
            && !k.bytes().all(plain)
        {
            return Err(Error::invalid(
                "secret reference",
                value,
                "the key may contain only letters, digits, `.`, `_` and `-`",
                Some("rename the key in the secret, e.g. api-key".into()),
            ));
        }
        if key.is_none() && scheme != SecretScheme::AwsSecretsManager {
            return Err(Error::invalid(
                "secret reference",
                value,
                "names no key",
                Some(format!("add the key to read, e.g. {}://{path}#password", scheme.as_str())),
            ));
        }
        Ok(SecretRef { scheme, path: path.to_string(), key: key.map(str::to_string), version })
    }

    /// Which store the reference points into.
    pub fn scheme(&self) -> SecretScheme {
        self.scheme
    }

    /// The path inside the store (for Vault: mount and path, e.g. `secret/payments/db`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The key inside the secret, if the reference names one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The pinned version, if the reference names one.
    pub fn version(&self) -> Option<u64> {
        self.version
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.path)?;
        if let Some(k) = &self.key {
            write!(f, "#{k}")?;
        }
        if let Some(v) = self.version {
            write!(f, "?version={v}")?;
        }
        Ok(())
    }
}

impl FromStr for SecretRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for SecretRef {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<SecretRef> for String {
    fn from(v: SecretRef) -> String {
        v.to_string()
    }
}

/// An environment variable of the app whose value comes from a secret store:
/// `DB_PASSWORD=vault://secret/payments/db#password`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretBinding {
    /// The environment variable name (a C identifier).
    pub env: String,
    /// Where its value comes from.
    pub reference: SecretRef,
}

impl FromStr for SecretBinding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let Some((env, reference)) = s.split_once('=') else {
            return Err(Error::invalid(
                "secret",
                s,
                "is not NAME=REFERENCE",
                Some(
                    "write each of `secrets` as NAME=REFERENCE, e.g. DB_PASSWORD=vault://secret/payments/db#password"
                        .into(),
                ),
            ));
        };
        let valid = env.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            let fixed: String =
                env.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
            return Err(Error::invalid(
                "secret",
                s,
                format!("\"{env}\" is not a valid environment variable name"),
                Some(format!("use \"{fixed}\"")),
            ));
        }
        Ok(SecretBinding { env: env.to_string(), reference: SecretRef::new(reference)? })
    }
}

/// The key/value pairs of one secret, every value held as a [`SecretString`].
///
/// `Debug` shows the keys only.
pub type SecretMap = BTreeMap<String, SecretString>;

/// The keys directly in the folder `prefix` among the secret `paths` of a store: secrets by
/// name and sub-folders ending in `/`, sorted, each once; what [`SecretStore::list`] answers
/// for stores whose paths are flat names (`a/b/c`).
///
/// [`SecretStore::list`]: crate::SecretStore::list
///
/// ```
/// let paths = ["team/api", "team/db", "team/nested/deep", "teams/x", "team-b/y"];
/// assert_eq!(paved_core::secret::list_folder(paths, "team"), ["api", "db", "nested/"]);
/// ```
pub fn list_folder<'a>(paths: impl IntoIterator<Item = &'a str>, prefix: &str) -> Vec<String> {
    let folder = match prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let mut keys: Vec<String> = paths
        .into_iter()
        .filter_map(|path| path.strip_prefix(folder.as_str()))
        .filter(|rest| !rest.is_empty())
        .map(|rest| match rest.split_once('/') {
            Some((sub, _)) => format!("{sub}/"),
            None => rest.to_string(),
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = SecretRef::new("aws-sm://prod/payments?version=3").unwrap();
        assert_eq!(
            (r.scheme(), r.path(), r.key(), r.version()),
            (SecretScheme::AwsSecretsManager, "prod/payments", None, Some(3))
        );
        assert_eq!(r.to_string(), "aws-sm://prod/payments?version=3");
        let k = SecretRef::new("k8s://db-creds#password").unwrap();
        assert_eq!(k.scheme(), SecretScheme::Kubernetes);
        for bad in
            ["secret/db#pw", "vault://", "vault://a/../b#k", "vault://a#", "vault://a/b", "vault://a#k?version=x"]
        {
            let e = SecretRef::new(bad).unwrap_err();
            assert!(e.hint().is_some(), "{bad}");
        }
        assert_eq!(SecretRef::new("vualt://a#b").unwrap_err().hint(), Some("did you mean \"vault\"?"));
    }

    /// Issue 18, hole 4: a key or path that would end the Vault Agent Injector's template and
    /// read another team's secret is refused where the reference is parsed, however it comes in.
    #[test]
    fn template_payloads_are_refused() {
        let payload = r#"k" }}{{ with secret "secret/data/team-b/db" }}{{ .Data.data }}{{ end }}{{ ""#;
        for reference in [
            format!("vault://secret/a#{payload}"),
            format!("vault://secret/a\"{payload}#k"),
            "vault://secret/a{{.Data}}#k".to_string(),
            "vault://secret/a#k}}".to_string(),
            "k8s://db#pass\"word".to_string(),
            "aws-sm://prod/payments#a\"b".to_string(),
        ] {
            let e = SecretRef::new(&reference).unwrap_err();
            assert!(e.to_string().contains("may contain only"), "{reference}: {e}");
            assert!(e.hint().is_some(), "{reference}");
            let binding = format!("DB={reference}").parse::<SecretBinding>().unwrap_err();
            assert!(binding.to_string().contains("may contain only"), "{reference}: {binding}");
        }
        let toml = format!("[apps.shop]\nsecrets = {{ DB = '''vault://secret/a#{payload}''' }}\n");
        let e = crate::OrgConfig::parse("paved.toml", &toml).unwrap_err();
        assert!(e.to_string().contains("may contain only"), "{e}");
        // What references are made of stays valid.
        for ok in
            ["vault://secret/payments/db#password", "vault://kv/billing/api#api-key", "aws-sm://prod/pay_ments+x=y@z"]
        {
            SecretRef::new(ok).unwrap();
        }
    }

    #[test]
    fn parses_bindings() {
        let b: SecretBinding = "DB_PASSWORD=vault://secret/payments/db#password".parse().unwrap();
        assert_eq!(b.env, "DB_PASSWORD");
        let e = "db-password=vault://secret/x#y".parse::<SecretBinding>().unwrap_err();
        assert_eq!(e.hint(), Some("use \"DB_PASSWORD\""));
        assert!("nothing".parse::<SecretBinding>().is_err());
    }
}
