//! The `SecretStore` suite: what every secret store must do, whatever keeps the secrets.

use std::sync::Arc;

use paved_core::secrecy::{ExposeSecret, SecretString};
use paved_core::{Error, SecretMap, SecretRef, SecretStore};

use super::{Harness, Outcome, Report, Scenario, error_text};

/// What a store may lack; scenarios that need it are skipped on such a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretStoreCapability {
    /// Keeps versions: each `put` makes a higher version, and references may pin one.
    Versions,
}

/// The store under test and how its secrets are referenced.
#[non_exhaustive]
pub struct SecretStoreHarness {
    /// The store.
    pub store: Arc<dyn SecretStore>,
    /// What goes in front of a path given to `put` to make a reference that `get_ref` reads:
    /// `vault://secret/` for a Vault store on the `secret/` mount.
    pub reference_prefix: String,
    /// The folder the suite writes under; each scenario uses its own sub-folder.
    pub root: String,
    /// Whether the store keeps versions.
    pub versions: bool,
}

impl SecretStoreHarness {
    /// A harness for a store that keeps versions, writing under `paved-suite/`.
    pub fn new(store: Arc<dyn SecretStore>, reference_prefix: impl Into<String>) -> Self {
        SecretStoreHarness {
            store,
            reference_prefix: reference_prefix.into(),
            root: "paved-suite".into(),
            versions: true,
        }
    }

    /// The same harness for a store that keeps no versions.
    pub fn without_versions(mut self) -> Self {
        self.versions = false;
        self
    }

    /// The same harness writing under `root`.
    pub fn with_root(mut self, root: impl Into<String>) -> Self {
        self.root = root.into();
        self
    }

    fn path(&self, rest: &str) -> String {
        format!("{}/{rest}", self.root)
    }

    fn reference(&self, path: &str, key: &str, version: Option<u64>) -> Result<SecretRef, Error> {
        let version = version.map(|v| format!("?version={v}")).unwrap_or_default();
        SecretRef::new(&format!("{}{path}#{key}{version}", self.reference_prefix))
    }
}

impl Harness for SecretStoreHarness {
    type Capability = SecretStoreCapability;

    fn backend(&self) -> String {
        self.store.name().to_string()
    }

    fn supports(&self, capability: SecretStoreCapability) -> bool {
        match capability {
            SecretStoreCapability::Versions => self.versions,
        }
    }
}

/// Every scenario of the suite, in the order [`run`] runs them.
pub fn scenarios() -> Vec<Scenario<SecretStoreHarness>> {
    use SecretStoreCapability::Versions;
    vec![
        scenario!(put_then_get_round_trips),
        scenario!(new_versions_increase, [Versions]),
        scenario!(missing_path_is_not_found_with_a_hint),
        scenario!(list_shows_secrets_and_folders),
        scenario!(other_prefixes_are_not_listed),
        scenario!(delete_then_get_is_not_found),
        scenario!(get_ref_reads_the_referenced_secret),
        scenario!(get_ref_reads_a_pinned_version, [Versions]),
        scenario!(values_never_show_in_debug_or_errors),
    ]
}

/// Runs the suite on `harness`.
///
/// # Panics
/// When a scenario fails (see [`super::run`]).
pub async fn run(harness: &SecretStoreHarness) -> Report {
    super::run("SecretStore", harness, &scenarios()).await
}

/// A secret map from pairs.
pub fn secret_map(pairs: &[(&str, &str)]) -> SecretMap {
    pairs.iter().map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))).collect()
}

/// A secret map's values, exposed, for comparisons.
fn exposed(m: &SecretMap) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.expose_secret().to_string())).collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Expects `result` to be [`Error::NotFound`] with a hint.
fn expect_not_found<T: std::fmt::Debug>(result: paved_core::Result<T>, what: &str) -> Outcome {
    match result {
        Err(e @ Error::NotFound { .. }) => {
            ensure!(e.hint().is_some_and(|h| !h.is_empty()), "{what}: NotFound without a hint: {}", error_text(&e));
            Ok(())
        }
        Err(e) => Err(super::Failure::new(format!("{what}: expected NotFound, got {}", error_text(&e)))),
        Ok(v) => Err(super::Failure::new(format!("{what}: expected NotFound, got {v:?}"))),
    }
}

async fn put_then_get_round_trips(h: &SecretStoreHarness) -> Outcome {
    let path = h.path("round-trip/db");
    let written = [("password", "s3cret-round-trip"), ("user", "app")];
    h.store.put(&path, secret_map(&written)).await?;
    ensure_eq!(exposed(&h.store.get(&path).await?), pairs(&written), "get after put of {path}");
    Ok(())
}

async fn new_versions_increase(h: &SecretStoreHarness) -> Outcome {
    let path = h.path("versions/db");
    let mut versions = Vec::new();
    for value in ["first", "second", "third"] {
        versions.push(h.store.put(&path, secret_map(&[("password", value)])).await?);
    }
    ensure!(versions.windows(2).all(|w| w[0] < w[1]), "versions of three puts do not increase: {versions:?}");
    ensure_eq!(exposed(&h.store.get(&path).await?), pairs(&[("password", "third")]), "get reads the latest version");
    Ok(())
}

async fn missing_path_is_not_found_with_a_hint(h: &SecretStoreHarness) -> Outcome {
    expect_not_found(h.store.get(&h.path("missing/never-written")).await, "get of a path never written")
}

async fn list_shows_secrets_and_folders(h: &SecretStoreHarness) -> Outcome {
    for rest in ["list/api", "list/db", "list/nested/deep", "list/nested/deeper/x"] {
        h.store.put(&h.path(rest), secret_map(&[("k", "v")])).await?;
    }
    let mut listed = h.store.list(&h.path("list")).await?;
    listed.sort();
    ensure_eq!(listed, ["api", "db", "nested/"], "list of a folder: secrets, and sub-folders ending in '/'");
    let mut nested = h.store.list(&h.path("list/nested")).await?;
    nested.sort();
    ensure_eq!(nested, ["deep", "deeper/"], "list of a sub-folder");
    ensure_eq!(h.store.list(&h.path("list/nothing-here")).await?, Vec::<String>::new(), "list of an empty folder");
    Ok(())
}

async fn other_prefixes_are_not_listed(h: &SecretStoreHarness) -> Outcome {
    for rest in ["prefixes/team-a/db", "prefixes/team-ab/db", "prefixes/team-b/db", "prefixes/team-a-db"] {
        h.store.put(&h.path(rest), secret_map(&[("k", "v")])).await?;
    }
    ensure_eq!(
        h.store.list(&h.path("prefixes/team-a")).await?,
        ["db"],
        "list of one folder shows nothing of folders or secrets that only share its name's prefix"
    );
    Ok(())
}

async fn delete_then_get_is_not_found(h: &SecretStoreHarness) -> Outcome {
    let (gone, kept) = (h.path("delete/gone"), h.path("delete/kept"));
    h.store.put(&gone, secret_map(&[("password", "deleted")])).await?;
    h.store.put(&kept, secret_map(&[("password", "kept")])).await?;
    h.store.delete(&gone).await?;
    expect_not_found(h.store.get(&gone).await, "get after delete")?;
    ensure_eq!(exposed(&h.store.get(&kept).await?), pairs(&[("password", "kept")]), "a secret beside the deleted one");
    Ok(())
}

async fn get_ref_reads_the_referenced_secret(h: &SecretStoreHarness) -> Outcome {
    let path = h.path("refs/db");
    h.store.put(&path, secret_map(&[("password", "by-reference"), ("user", "app")])).await?;
    let reference = h.reference(&path, "password", None)?;
    let read = h.store.get_ref(&reference).await?;
    ensure_eq!(
        read.get("password").map(|v| v.expose_secret().to_string()),
        Some("by-reference".to_string()),
        "the key of {reference}"
    );
    let missing = h.reference(&h.path("refs/absent"), "password", None)?;
    expect_not_found(h.store.get_ref(&missing).await, "get_ref of a path never written")
}

async fn get_ref_reads_a_pinned_version(h: &SecretStoreHarness) -> Outcome {
    let path = h.path("refs/pinned");
    let first = h.store.put(&path, secret_map(&[("password", "old")])).await?;
    h.store.put(&path, secret_map(&[("password", "new")])).await?;
    let pinned = h.store.get_ref(&h.reference(&path, "password", Some(first))?).await?;
    ensure_eq!(exposed(&pinned), pairs(&[("password", "old")]), "a reference pinned to version {first}");
    let latest = h.store.get_ref(&h.reference(&path, "password", None)?).await?;
    ensure_eq!(exposed(&latest), pairs(&[("password", "new")]), "a reference without a version");
    Ok(())
}

async fn values_never_show_in_debug_or_errors(h: &SecretStoreHarness) -> Outcome {
    const CANARY: &str = "canary-value-9d4e1b";
    let path = h.path("leak/db");
    h.store.put(&path, secret_map(&[("password", CANARY)])).await?;
    let read = h.store.get(&path).await?;
    ensure!(!format!("{read:?}").contains(CANARY), "Debug of a read secret shows its value: {read:?}");
    let mut texts = Vec::new();
    // Errors next to the secret: a missing sibling, a deleted secret, a bad path with the value.
    texts.extend(h.store.get(&h.path("leak/db-absent")).await.err().map(|e| error_text(&e)));
    if let Err(e) = h.store.put(&format!("{path}//bad path"), secret_map(&[("password", CANARY)])).await {
        texts.push(error_text(&e));
    }
    let reference = h.reference(&path, "password", None)?;
    h.store.delete(&path).await?;
    texts.extend(h.store.get_ref(&reference).await.err().map(|e| error_text(&e)));
    texts.extend(h.store.get(&path).await.err().map(|e| error_text(&e)));
    ensure!(texts.len() >= 2, "expected errors for a missing and a deleted secret, got {texts:?}");
    for text in texts {
        ensure!(!text.contains(CANARY), "an error shows a secret value: {text}");
    }
    Ok(())
}
