//! The organisation's policy file: the policies every action passes through, which a
//! repository cannot edit.
//!
//! `paved.toml` is found from the working directory upwards, so it is the repository's: in CI
//! for a pull request it is whatever the pull request says. The organisation's policy set
//! therefore comes from a file outside the repository, `$PAVED_ORG_CONFIG` or
//! `/etc/paved/org.toml` (optionally pinned by `$PAVED_ORG_CONFIG_SHA256`):
//!
//! ```toml
//! plugin_roots = ["/opt/paved/plugins"]   # where a repository's own policies may live (besides the repository)
//! repository_policies = true              # may paved.toml add policies? (default true)
//! max_repository_policies = 32            # how many (default 32)
//! environments = ["dev", "staging", "production"]   # the only [environments] paved.toml may define
//!
//! [limits]                                # caps on every plugin's manifest limits
//! timeout_ms = 200
//! memory_mib = 64
//! output_kib = 64
//! fuel = 500_000_000                      # also turns fuel metering on
//!
//! [[policies]]                            # run on every action; their mutations run last
//! path = "policies/disallow-latest-tag"   # relative to this file
//! mode = "enforce"
//! sha256 = "…"                            # optional: the component policy.toml must pin
//! ```
//!
//! Against it, a repository's `[[policies]]` may only **add** policies (from the repository or
//! a plugin root) and make the organisation's **stricter**: a stricter `mode` or
//! `failure_policy`, more `environments`. It may not drop one, weaken one, change its
//! settings, or load a plugin from elsewhere; every refusal names the organisation's setting
//! that forbids it. [`OrgConfig::policy_entries`] applies these rules; the policy host applies
//! the limit caps when it loads each manifest.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{OrgConfig, PolicyConfig};
use crate::error::{Error, Result};
use crate::policy::{FailurePolicy, PolicyMode};

/// The environment variable naming the organisation's policy file.
pub const ORG_CONFIG_ENV: &str = "PAVED_ORG_CONFIG";
/// The environment variable pinning the organisation's policy file by its SHA-256 (hex).
pub const ORG_CONFIG_SHA256_ENV: &str = "PAVED_ORG_CONFIG_SHA256";
/// The organisation's policy file when [`ORG_CONFIG_ENV`] is not set.
pub const SYSTEM_ORG_CONFIG: &str = "/etc/paved/org.toml";

/// The organisation's policy file (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OrgPolicy {
    /// Directories a repository's own policies may be loaded from, besides the repository
    /// itself; relative to this file.
    #[serde(default)]
    pub plugin_roots: Vec<PathBuf>,
    /// Whether a repository's `paved.toml` may add policies of its own.
    #[serde(default = "yes")]
    pub repository_policies: bool,
    /// How many policies a repository may add (each costs time on every action).
    #[serde(default = "default_max_repository_policies")]
    pub max_repository_policies: usize,
    /// The environments a repository may define (`[environments.NAME]` of paved.toml); unset:
    /// any. Set it when organisation policies are scoped to environments, so that a
    /// repository cannot rename `production` to escape them.
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// The baseline policy as the organisation sets it (`baseline = false`, or `[baseline]
    /// modes`); a repository may then only make it stricter.
    #[serde(default)]
    pub baseline: Option<crate::config::BaselineConfig>,
    /// Caps on every plugin's limits, the organisation's and the repository's alike.
    #[serde(default)]
    pub limits: LimitCaps,
    /// The organisation's policies: evaluated on every action; their mutations run after any
    /// a repository's policies make.
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// The file it was read from.
    #[serde(skip)]
    pub source: PathBuf,
}

fn yes() -> bool {
    true
}

fn default_max_repository_policies() -> usize {
    32
}

/// The organisation's caps on plugin limits (`[limits]`): a manifest asking for more is
/// refused. Unset: the host's own maxima.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitCaps {
    /// The longest wall-clock time of one evaluation, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The most linear memory, in MiB.
    pub memory_mib: Option<u32>,
    /// The most stdout and stderr output, in KiB each.
    pub output_kib: Option<u32>,
    /// The most fuel of one evaluation. Setting it turns fuel metering on; a plugin whose
    /// manifest names no fuel gets this much.
    pub fuel: Option<u64>,
}

/// Who configured a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyOrigin {
    /// The organisation's policy file.
    Organisation,
    /// The repository's `paved.toml`.
    Repository,
}

/// One policy to load, as [`OrgConfig::policy_entries`] resolved it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PolicyEntry {
    /// The plugin directory (canonical).
    pub dir: PathBuf,
    /// The overrides of whoever configured it.
    pub config: PolicyConfig,
    /// Who configured it.
    pub origin: PolicyOrigin,
    /// For an organisation policy: the repository's overrides, which may only make it
    /// stricter ([`PolicyEntry::tighten`] checks them against the manifest).
    pub tightened: Option<PolicyConfig>,
    /// The file that configured it.
    pub source: PathBuf,
    /// The repository's `paved.toml`, for a tightened policy.
    pub repository_source: Option<PathBuf>,
}

/// A policy's effective overrides after the repository tightened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The mode.
    pub mode: PolicyMode,
    /// The failure policy.
    pub failure_policy: FailurePolicy,
    /// The environments (empty: all).
    pub environments: Vec<String>,
}

impl PolicyEntry {
    /// The effective mode, failure policy and environments, given the manifest's defaults:
    /// the organisation's, made stricter by the repository. A weaker value is refused with
    /// the organisation's setting named.
    pub fn tighten(&self, manifest_defaults: &Effective) -> Result<Effective> {
        let org = Effective {
            mode: self.config.mode.unwrap_or(manifest_defaults.mode),
            failure_policy: self.config.failure_policy.unwrap_or(manifest_defaults.failure_policy),
            environments: self.config.environments.clone().unwrap_or_else(|| manifest_defaults.environments.clone()),
        };
        let Some(repo) = &self.tightened else { return Ok(org) };
        let refuse = |what: &str, asked: String, org_value: String| {
            let path = self.repository_source.clone().unwrap_or_default();
            let set_in_org_file = match what {
                "mode" => self.config.mode.is_some(),
                "failure_policy" => self.config.failure_policy.is_some(),
                "environments" => self.config.environments.is_some(),
                _ => true,
            };
            let where_set = if set_in_org_file {
                format!("the organisation sets it in {} ([[policies]] {what})", self.source.display())
            } else {
                format!(
                    "the organisation's policy takes it from its manifest, {} ({what})",
                    self.dir.join("policy.toml").display()
                )
            };
            Error::Config {
                line: None,
                message: format!(
                    "[[policies]] {what} = {asked} would weaken the organisation's policy {} ({what} = {org_value})",
                    self.dir.display()
                ),
                hint: Some(format!("{where_set}; a repository may only make it stricter")),
                path,
            }
        };
        if !repo.settings.is_empty() {
            return Err(refuse(
                "settings",
                serde_json::Value::Object(repo.settings.clone()).to_string(),
                "the organisation's".into(),
            ));
        }
        let mode = repo.mode.unwrap_or(org.mode);
        if strictness(mode) < strictness(org.mode) {
            return Err(refuse("mode", quoted(mode), quoted(org.mode)));
        }
        let failure_policy = repo.failure_policy.unwrap_or(org.failure_policy);
        if failure_policy == FailurePolicy::Ignore && org.failure_policy == FailurePolicy::Fail {
            return Err(refuse("failure_policy", quoted(failure_policy), quoted(org.failure_policy)));
        }
        let environments = repo.environments.clone().unwrap_or_else(|| org.environments.clone());
        let all = |e: &[String]| e.is_empty() || e.iter().any(|e| e == "*");
        if !all(&environments) && (all(&org.environments) || !org.environments.iter().all(|e| environments.contains(e)))
        {
            return Err(refuse("environments", format!("{environments:?}"), format!("{:?}", org.environments)));
        }
        Ok(Effective { mode, failure_policy, environments })
    }
}

fn quoted(value: impl Serialize) -> String {
    serde_json::to_string(&value).unwrap_or_default()
}

/// Audit < warn < enforce.
fn strictness(mode: PolicyMode) -> u8 {
    match mode {
        PolicyMode::Audit => 0,
        PolicyMode::Warn => 1,
        PolicyMode::Enforce => 2,
    }
}

impl OrgPolicy {
    /// Parses the text of an organisation policy file read from `path`.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Self> {
        let path = path.as_ref();
        let mut policy: OrgPolicy = toml::from_str(text).map_err(|e| crate::config::toml_error(path, text, &e))?;
        policy.source = path.to_path_buf();
        Ok(policy)
    }

    /// Reads an organisation policy file, after checking that only this user or root can
    /// have written it ([`crate::trust`]) and, when `sha256` is given, that it has that
    /// digest.
    pub fn load(path: impl AsRef<Path>, sha256: Option<&str>) -> Result<Self> {
        let path = path.as_ref();
        let config_error = |message: String, hint: &str| Error::Config {
            path: path.to_path_buf(),
            line: None,
            message,
            hint: Some(hint.to_string()),
        };
        crate::trust::check_path(path, crate::trust::Strictness::NotWritableByOthers).map_err(|e| {
            config_error(
                format!("the organisation's policy file is refused: {e}"),
                "keep it where only root or this user can write it (e.g. /etc/paved/org.toml, mode 644, owned by root)",
            )
        })?;
        let bytes = std::fs::read(path).map_err(|e| {
            config_error(format!("cannot read the organisation's policy file: {e}"), &format!("check {ORG_CONFIG_ENV}"))
        })?;
        if let Some(pin) = sha256 {
            use sha2::Digest;
            let actual: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            if !pin.trim().eq_ignore_ascii_case(&actual) {
                return Err(config_error(
                    format!("the organisation's policy file has sha256 {actual}, not the pinned {}", pin.trim()),
                    &format!(
                        "restore the organisation's file, or update {ORG_CONFIG_SHA256_ENV} if it changed on purpose"
                    ),
                ));
            }
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| config_error("the organisation's policy file is not UTF-8".into(), "save it as UTF-8"))?;
        Self::parse(path, &text)
    }

    /// The organisation's policy file of this process: `$PAVED_ORG_CONFIG` (which must then
    /// exist), else `/etc/paved/org.toml` when it exists, else none.
    pub fn discover() -> Result<Option<Self>> {
        let pin = std::env::var(ORG_CONFIG_SHA256_ENV).ok().filter(|p| !p.is_empty());
        // Anything at the system path but "not found" (a dangling link, no permission) is an
        // error: an organisation file that cannot be read never means "no organisation policy".
        let system = match std::fs::symlink_metadata(SYSTEM_ORG_CONFIG) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(_) => true,
        };
        match std::env::var_os(ORG_CONFIG_ENV).filter(|p| !p.is_empty()) {
            Some(path) => Self::load(PathBuf::from(path), pin.as_deref()).map(Some),
            None if system => Self::load(SYSTEM_ORG_CONFIG, pin.as_deref()).map(Some),
            None if pin.is_some() => Err(Error::Config {
                path: PathBuf::from(SYSTEM_ORG_CONFIG),
                line: None,
                message: format!("{ORG_CONFIG_SHA256_ENV} pins an organisation policy file, and there is none"),
                hint: Some(format!("set {ORG_CONFIG_ENV} to the file, or install it at {SYSTEM_ORG_CONFIG}")),
            }),
            None => Ok(None),
        }
    }

    /// The directory its relative paths are resolved against.
    pub fn dir(&self) -> &Path {
        self.source.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }
}

impl OrgConfig {
    /// The policies to load, in evaluation order: the repository's own, then the
    /// organisation's (from [`OrgConfig::org_policy`]), each with the repository's tightening
    /// if it names the same plugin; mutating policies run in this order, so the
    /// organisation's have the last word. Without an organisation policy file, the
    /// repository's `[[policies]]` are the whole set. Either way a repository's own plugin
    /// must lie inside the repository (the directory of `paved.toml`) or under one of the
    /// organisation's `plugin_roots`.
    pub fn policy_entries(&self) -> Result<Vec<PolicyEntry>> {
        let repo_file = self.source.clone().unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE));
        let repo_dir = repo_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let text = self.text();
        let repo_error = |p: &PolicyConfig, message: String, hint: String| Error::Config {
            path: repo_file.clone(),
            line: text.and_then(|t| line_of(t, &p.path.to_string_lossy())),
            message,
            hint: Some(hint),
        };
        let mut entries = Vec::new();
        let mut roots = vec![canonical(&repo_dir, &repo_file)?];
        if let Some(org) = &self.org_policy {
            for p in &org.policies {
                let dir = canonical(&org.dir().join(&p.path), &org.source)?;
                // The organisation's plugins are as trusted as its file: nobody else may be
                // able to change them.
                for path in [dir.clone(), dir.join("policy.toml")] {
                    crate::trust::check_path(&path, crate::trust::Strictness::NotWritableByOthers).map_err(|e| {
                        Error::Config {
                            path: org.source.clone(),
                            line: None,
                            message: format!("the organisation's policy {} is refused: {e}", dir.display()),
                            hint: Some("keep organisation plugins where only root or this user can write".into()),
                        }
                    })?;
                }
                entries.push(PolicyEntry {
                    dir,
                    config: p.clone(),
                    origin: PolicyOrigin::Organisation,
                    tightened: None,
                    source: org.source.clone(),
                    repository_source: None,
                });
            }
            for root in &org.plugin_roots {
                roots.push(canonical(&org.dir().join(root), &org.source)?);
            }
        }
        let mut added = Vec::new();
        for p in &self.policies {
            let dir = std::fs::canonicalize(repo_dir.join(&p.path)).map_err(|e| {
                repo_error(
                    p,
                    format!("[[policies]] path {:?} cannot be read: {e}", p.path),
                    "point it at a plugin directory holding policy.toml, relative to paved.toml".into(),
                )
            })?;
            if let Some(org_entry) = entries.iter_mut().find(|e| e.dir == dir) {
                org_entry.tightened = Some(p.clone());
                org_entry.repository_source = Some(repo_file.clone());
                continue;
            }
            if let Some(org) = self.org_policy.as_deref() {
                let refusal = if !org.repository_policies {
                    Some((
                        "the organisation allows none".to_string(),
                        format!("the organisation sets repository_policies = false in {}", org.source.display()),
                    ))
                } else if added.len() >= org.max_repository_policies {
                    Some((
                        format!("the organisation allows {} at most", org.max_repository_policies),
                        format!(
                            "the organisation sets max_repository_policies = {} in {}",
                            org.max_repository_policies,
                            org.source.display()
                        ),
                    ))
                } else {
                    None
                };
                if let Some((why, setting)) = refusal {
                    return Err(repo_error(
                        p,
                        format!("[[policies]] path {:?} adds a policy, and {why}", p.path),
                        format!("{setting}; ask the platform team to add it there"),
                    ));
                }
            }
            if !roots.iter().any(|root| dir.starts_with(root)) {
                let org_roots: Vec<String> = roots[1..].iter().map(|r| r.display().to_string()).collect();
                let hint = match &self.org_policy {
                    Some(org) if !org_roots.is_empty() => format!(
                        "keep the plugin inside the repository, or under the plugin_roots of {} ({})",
                        org.source.display(),
                        org_roots.join(", ")
                    ),
                    Some(org) => {
                        format!("keep the plugin inside the repository; {} lists no plugin_roots", org.source.display())
                    }
                    None => format!(
                        "keep the plugin inside the repository, or list its directory in the plugin_roots of the \
                         organisation's policy file (${ORG_CONFIG_ENV} or {SYSTEM_ORG_CONFIG})"
                    ),
                };
                return Err(repo_error(
                    p,
                    format!("[[policies]] path {:?} lies outside the allowed plugin roots ({})", p.path, dir.display()),
                    hint,
                ));
            }
            added.push(PolicyEntry {
                dir,
                config: p.clone(),
                origin: PolicyOrigin::Repository,
                tightened: None,
                source: repo_file.clone(),
                repository_source: None,
            });
        }
        // The repository's policies first: mutating policies run in this order, so the
        // organisation's mutations have the last word (a repository's cannot undo them).
        added.extend(entries);
        Ok(added)
    }

    /// Whether any policy runs: the baseline, or one configured by the organisation or the
    /// repository.
    pub fn has_policies(&self) -> bool {
        self.baseline().map(|(on, _)| on).unwrap_or(true)
            || !self.policies.is_empty()
            || self.org_policy.as_ref().is_some_and(|o| !o.policies.is_empty())
    }

    /// The baseline in effect: whether it runs and its members' modes. The organisation's
    /// policy file decides it when it sets `baseline`; a repository may then only make it
    /// stricter (not turn it off, not weaken a member's mode), and with any organisation file
    /// it may not turn it off.
    pub fn baseline(&self) -> Result<(bool, std::collections::BTreeMap<String, PolicyMode>)> {
        let org = self.org_policy.as_deref();
        let org_baseline = org.and_then(|o| o.baseline.clone());
        let Some(repo) = &self.baseline else {
            return Ok(org_baseline.map(|b| (b.enabled(), b.modes())).unwrap_or((true, Default::default())));
        };
        let Some(org) = org else { return Ok((repo.enabled(), repo.modes())) };
        let (org_on, mut modes) = org_baseline.map(|b| (b.enabled(), b.modes())).unwrap_or((true, Default::default()));
        let refuse = |message: String| Error::Config {
            path: self.source.clone().unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE)),
            line: self.text().and_then(|t| line_of(t, "baseline")),
            message,
            hint: Some(format!(
                "the organisation sets the baseline in {} (baseline); a repository may only make it stricter",
                org.source.display()
            )),
        };
        if org_on && !repo.enabled() {
            return Err(refuse("baseline = false would turn off the organisation's baseline".into()));
        }
        for (member, mode) in repo.modes() {
            let org_mode = modes.get(&member).copied().unwrap_or(PolicyMode::Enforce);
            if strictness(mode) < strictness(org_mode) {
                return Err(refuse(format!(
                    "[baseline] modes {member} = {} would weaken the organisation's ({})",
                    quoted(mode),
                    quoted(org_mode)
                )));
            }
            modes.insert(member, mode);
        }
        Ok((org_on || repo.enabled(), modes))
    }
}

fn canonical(path: &Path, source: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::Config {
        path: source.to_path_buf(),
        line: None,
        message: format!("{} cannot be read: {e}", path.display()),
        hint: Some("paths are relative to the file that names them".into()),
    })
}

/// The 1-based line of the first occurrence of `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle).map(|at| text[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(dir: &Path, text: &str) -> OrgPolicy {
        let path = dir.join("org.toml");
        std::fs::write(&path, text).unwrap();
        OrgPolicy::load(&path, None).unwrap()
    }

    fn plugin(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("policy.toml"), "").unwrap();
        dir.to_path_buf()
    }

    fn repo(dir: &Path, text: &str, org: Option<OrgPolicy>) -> OrgConfig {
        let mut c = OrgConfig::parse(dir.join("paved.toml"), text).unwrap();
        c.org_policy = org.map(std::sync::Arc::new);
        c
    }

    const DEFAULTS: Effective =
        Effective { mode: PolicyMode::Enforce, failure_policy: FailurePolicy::Fail, environments: Vec::new() };

    #[test]
    fn the_repository_may_add_and_the_organisations_policies_come_last() {
        let (o, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        plugin(&o.path().join("p/a"));
        plugin(&r.path().join("own"));
        let org = org(o.path(), "[[policies]]\npath = \"p/a\"\n");
        let c = repo(r.path(), "[[policies]]\npath = \"own\"\n", Some(org));
        let e = c.policy_entries().unwrap();
        // The organisation's mutations have the last word.
        assert_eq!(
            e.iter().map(|e| e.origin).collect::<Vec<_>>(),
            [PolicyOrigin::Repository, PolicyOrigin::Organisation]
        );
        assert!(e[0].dir.ends_with("own") && e[1].dir.ends_with("p/a"));
        assert!(c.has_policies());
    }

    #[test]
    fn a_repository_may_tighten_an_organisation_policy_but_never_weaken_it() {
        let (o, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = plugin(&o.path().join("a"));
        let org = org(o.path(), "[[policies]]\npath = \"a\"\nmode = \"warn\"\nenvironments = [\"production\"]\n");
        let entry = |overrides: &str| {
            let c =
                repo(r.path(), &format!("[[policies]]\npath = \"{}\"\n{overrides}", a.display()), Some(org.clone()));
            let entries = c.policy_entries().unwrap();
            assert_eq!(entries.len(), 1, "the repository's entry tightens the organisation's, it adds none");
            entries[0].tighten(&DEFAULTS)
        };
        let stricter = entry("mode = \"enforce\"\nenvironments = [\"production\", \"staging\"]\n").unwrap();
        assert_eq!(stricter.mode, PolicyMode::Enforce);
        assert_eq!(stricter.environments, ["production", "staging"]);
        let e = entry("mode = \"audit\"\n").unwrap_err();
        assert!(e.to_string().contains("mode = \"audit\" would weaken"), "{e}");
        assert!(e.hint().unwrap().contains("org.toml ([[policies]] mode)"), "{:?}", e.hint());
        // The organisation leaves failure_policy to the manifest: the hint says so.
        let e = entry("failure_policy = \"ignore\"\n").unwrap_err();
        assert!(e.to_string().contains("failure_policy = \"ignore\" would weaken"), "{e}");
        assert!(e.hint().unwrap().contains("takes it from its manifest"), "{:?}", e.hint());
        let e = entry("environments = [\"staging\"]\n").unwrap_err();
        assert!(e.to_string().contains("environments"), "{e}");
        let e = entry("settings = { registries = [\"docker.io/\"] }\n").unwrap_err();
        assert!(e.to_string().contains("settings"), "{e}");
        assert!(entry("environments = [\"*\"]\n").is_ok(), "all environments is stricter");
    }

    #[test]
    fn a_repository_plugin_outside_the_allowed_roots_is_refused() {
        let (o, r, elsewhere) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let outside = plugin(&elsewhere.path().join("evil"));
        plugin(&o.path().join("shared/ok"));
        let text = format!("[[policies]]\npath = \"{}\"\n", outside.display());
        // Without an organisation file too: the repository is the only root.
        let e = repo(r.path(), &text, None).policy_entries().unwrap_err();
        assert!(e.to_string().contains("lies outside the allowed plugin roots"), "{e}");
        assert!(e.to_string().contains("paved.toml:2:"), "{e}");
        let e = repo(r.path(), "[[policies]]\npath = \"../../../..\"\n", None).policy_entries().unwrap_err();
        assert!(e.to_string().contains("outside the allowed plugin roots"), "{e}");
        // A symlink inside the repository pointing out is judged by its target.
        std::os::unix::fs::symlink(&outside, r.path().join("link")).unwrap();
        let e = repo(r.path(), "[[policies]]\npath = \"link\"\n", None).policy_entries().unwrap_err();
        assert!(e.to_string().contains("outside the allowed plugin roots"), "{e}");
        // A plugin root of the organisation is allowed.
        let org = org(o.path(), "plugin_roots = [\"shared\"]\n");
        let ok = format!("[[policies]]\npath = \"{}\"\n", o.path().join("shared/ok").display());
        assert_eq!(repo(r.path(), &ok, Some(org.clone())).policy_entries().unwrap().len(), 1);
        let e = repo(r.path(), &text, Some(org)).policy_entries().unwrap_err();
        assert!(e.hint().unwrap().contains("plugin_roots of"), "{:?}", e.hint());
    }

    #[test]
    fn an_organisation_may_forbid_or_count_repository_policies() {
        let (o, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        plugin(&r.path().join("own"));
        plugin(&r.path().join("more"));
        let org1 = org(o.path(), "repository_policies = false\n");
        let e = repo(r.path(), "[[policies]]\npath = \"own\"\n", Some(org1)).policy_entries().unwrap_err();
        assert!(e.to_string().contains("the organisation allows none"), "{e}");
        assert!(e.hint().unwrap().contains("repository_policies = false"), "{:?}", e.hint());
        let org2 = org(o.path(), "max_repository_policies = 1\n");
        let two = "[[policies]]\npath = \"own\"\n[[policies]]\npath = \"more\"\n";
        let e = repo(r.path(), two, Some(org2)).policy_entries().unwrap_err();
        assert!(e.to_string().contains("allows 1 at most"), "{e}");
        assert!(e.hint().unwrap().contains("max_repository_policies = 1"), "{:?}", e.hint());
    }

    #[test]
    fn a_repository_may_not_rename_the_organisations_environments() {
        let (o, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let org = org(o.path(), "environments = [\"dev\", \"staging\", \"production\"]\n");
        let c = OrgConfig::parse(r.path().join("paved.toml"), "[environments.prod]\nreplicas = 3\n").unwrap();
        let e = c.with_org_policy(org.clone()).unwrap_err();
        assert!(e.to_string().contains("paved.toml:1: environment \"prod\" is not one of the organisation's"), "{e}");
        assert!(e.hint().unwrap().contains("did you mean \"production\"?"), "{:?}", e.hint());
        assert!(OrgConfig::default().with_org_policy(org).is_ok(), "the built-in environments are allowed");
    }

    #[test]
    fn an_organisation_plugin_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (o, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = plugin(&o.path().join("a"));
        let org = org(o.path(), "[[policies]]\npath = \"a\"\n");
        assert!(repo(r.path(), "", Some(org.clone())).policy_entries().is_ok());
        std::fs::set_permissions(a.join("policy.toml"), std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = repo(r.path(), "", Some(org)).policy_entries().unwrap_err();
        assert!(e.to_string().contains("policy.toml cannot be trusted: others may write to it"), "{e}");
    }

    #[test]
    fn a_pinned_file_must_match_and_unknown_keys_are_refused() {
        let o = tempfile::tempdir().unwrap();
        let path = o.path().join("org.toml");
        std::fs::write(&path, "repository_policies = false\n").unwrap();
        let e = OrgPolicy::load(&path, Some(&"0".repeat(64))).unwrap_err();
        assert!(e.to_string().contains("not the pinned"), "{e}");
        std::fs::write(&path, "[limits]\ntimeout = 5\n").unwrap();
        let e = OrgPolicy::load(&path, None).unwrap_err();
        assert!(e.hint().unwrap().contains("timeout_ms"), "{:?}", e.hint());
    }
}
