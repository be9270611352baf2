//! `policy.toml`: what a plugin is, where its component is, its pin, limits and settings.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use paved_core::org_policy::LimitCaps;
use paved_core::{Action, FailurePolicy, PolicyMode};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name, next to each plugin.
pub const MANIFEST_FILE: &str = "policy.toml";

/// An operation of a Kubernetes admission request (`admission_operations` of a manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AdmissionOperation {
    /// An object is created.
    Create,
    /// An object is updated.
    Update,
    /// An object is deleted.
    Delete,
    /// A connection to a subresource (`pods/exec`, `pods/attach`…).
    Connect,
}

impl AdmissionOperation {
    /// The name the API server uses (`CREATE`…).
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionOperation::Create => "CREATE",
            AdmissionOperation::Update => "UPDATE",
            AdmissionOperation::Delete => "DELETE",
            AdmissionOperation::Connect => "CONNECT",
        }
    }
}

fn create_and_update() -> Vec<AdmissionOperation> {
    vec![AdmissionOperation::Create, AdmissionOperation::Update]
}

/// The language a plugin is written in (how `paved policy build` builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust, built with `cargo build --target wasm32-wasip2`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

impl Language {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resource limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock limit of one evaluation, in milliseconds.
    pub timeout_ms: u64,
    /// Linear memory limit, in MiB.
    pub memory_mib: u32,
    /// Fuel (instructions, roughly) per evaluation; only enforced when the host enables fuel.
    pub fuel: Option<u64>,
    /// What the plugin may write to stdout and to stderr, in KiB each.
    pub output_kib: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout_ms: 100, memory_mib: 64, fuel: None, output_kib: 64 }
    }
}

/// The largest memory a manifest may ask for (the pooling allocator's slot size).
pub const MAX_MEMORY_MIB: u32 = 512;

/// The largest `policy.toml` read.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// A plugin's manifest, `policy.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyManifest {
    /// The policy's name, e.g. `disallow-latest-tag`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line on what it checks.
    #[serde(default)]
    pub description: String,
    /// The language it is written in.
    pub language: Language,
    /// The component, relative to the manifest and inside its directory (no absolute path, no
    /// `..`; the host also refuses a symlink out of the directory).
    pub component: PathBuf,
    /// The component's SHA-256 (hex): a component that does not match is refused. Empty only
    /// before the first `paved policy build`.
    #[serde(default)]
    pub sha256: String,
    /// What its violations do.
    #[serde(default)]
    pub mode: PolicyMode,
    /// What a plugin failure does (default: deny).
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Whether it may return mutated objects.
    #[serde(default)]
    pub mutating: bool,
    /// The actions it applies to (default: all).
    #[serde(default = "all_actions")]
    pub actions: Vec<Action>,
    /// The environments it applies to (empty: all).
    #[serde(default)]
    pub environments: Vec<String>,
    /// The object kinds it is shown (empty: all). With kinds set, a request with none of
    /// them skips the plugin.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// The admission operations it checks at `paved admission serve` (default `CREATE` and
    /// `UPDATE`, as at plan time: deleting an object that breaks a rule stays possible unless
    /// a policy asks for `DELETE`). Only plugins built against `paved:policy@0.2.0` see
    /// which operation it is.
    #[serde(default = "create_and_update")]
    pub admission_operations: Vec<AdmissionOperation>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Settings with their defaults; the organisation's values are merged over them.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Read-only directories: guest path → directory relative to the manifest, which must
    /// resolve inside the manifest's directory ([`resolve_data_dirs`](Self::resolve_data_dirs)).
    #[serde(default)]
    pub read_only_dirs: BTreeMap<String, PathBuf>,
    /// The directory the manifest was read from.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Made by [`for_component`](Self::for_component) for a `.wasm` file named directly: the
    /// only manifest that loads without a pin, and whose name comes from the component.
    #[serde(skip)]
    pub(crate) named_by_file: bool,
}

fn all_actions() -> Vec<Action> {
    vec![Action::Deploy, Action::Rollback, Action::ProvisionDatabase]
}

impl PolicyManifest {
    /// Reads `policy.toml` from a plugin directory (or the file itself), and checks that the
    /// `read_only_dirs` that exist resolve inside its directory (a missing one is refused when
    /// the plugin is loaded).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = if path.is_dir() { path.join(MANIFEST_FILE) } else { path.to_path_buf() };
        let unreadable = |reason: String| Error::Manifest {
            path: file.clone(),
            message: format!("cannot read the policy manifest: {reason}"),
            hint: Some(format!("a plugin directory holds a {MANIFEST_FILE}; the plugin template has one")),
        };
        let bytes = read_bounded(&file, MAX_MANIFEST_BYTES).map_err(|e| match e {
            ReadError::Io(e) => unreadable(e.to_string()),
            ReadError::NotRegular(what) => unreadable(format!("it is {what}, not a regular file")),
            ReadError::TooLarge(_) => unreadable(format!("it is larger than {} KiB", MAX_MANIFEST_BYTES >> 10)),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))?;
        let manifest = Self::parse(&file, &text)?;
        manifest.resolve_dirs(false)?;
        Ok(manifest)
    }

    /// Parses manifest text read from `file` and checks it.
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let mut manifest: PolicyManifest =
            toml::from_str(text).map_err(|e| match paved_core::config::toml_error(file, text, &e) {
                paved_core::Error::Config { path, line, message, hint } => Error::Manifest {
                    path: match line {
                        Some(l) => PathBuf::from(format!("{}:{l}", path.display())),
                        None => path,
                    },
                    message,
                    hint,
                },
                other => Error::Core(other),
            })?;
        manifest.dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        manifest.check(file)?;
        Ok(manifest)
    }

    fn check(&self, file: &Path) -> Result<()> {
        let err = |message: String, hint: &str| Error::Manifest {
            path: file.to_path_buf(),
            message,
            hint: Some(hint.to_string()),
        };
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err(
                format!("name {:?} is not a lowercase name", self.name),
                "use e.g. \"disallow-latest-tag\"",
            ));
        }
        if !self.sha256.is_empty() && (self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(err(
                format!("sha256 {:?} is not a hex SHA-256", self.sha256),
                "write the pin with `paved_policy::toolchain::build`, or `sha256sum` the component",
            ));
        }
        let l = &self.limits;
        if l.timeout_ms == 0 || l.timeout_ms > 60_000 {
            return Err(err(
                format!("limits.timeout_ms {} is out of range", l.timeout_ms),
                "use 1 to 60000 (default 100)",
            ));
        }
        if l.memory_mib == 0 || l.memory_mib > MAX_MEMORY_MIB {
            return Err(err(
                format!("limits.memory_mib {} is out of range", l.memory_mib),
                &format!("use 1 to {MAX_MEMORY_MIB} (default 64)"),
            ));
        }
        if l.output_kib == 0 || l.output_kib > 16 * 1024 {
            return Err(err(
                format!("limits.output_kib {} is out of range", l.output_kib),
                "use 1 to 16384 (default 64)",
            ));
        }
        if self.component.as_os_str().is_empty() || leaves(&self.component) {
            return Err(err(
                format!("component {:?} leaves the plugin's directory", self.component.display().to_string()),
                "name the component relative to policy.toml, inside its directory, e.g. component = \"policy.wasm\"",
            ));
        }
        for (guest, host) in &self.read_only_dirs {
            if leaves(host) {
                return Err(err(
                    format!(
                        "read_only_dirs {guest:?} = {:?} leaves the plugin's directory",
                        host.display().to_string()
                    ),
                    "grant a directory inside the plugin's directory, e.g. \"/data\" = \"data\"",
                ));
            }
            if !guest.starts_with('/') || guest.split('/').any(|c| c == "..") {
                return Err(err(
                    format!("read_only_dirs key {guest:?} is not an absolute guest path"),
                    "use e.g. \"/data\" = \"data\"",
                ));
            }
        }
        if self.actions.is_empty() {
            return Err(err("actions is empty".into(), "name at least one of deploy, rollback, provision-database"));
        }
        Ok(())
    }

    /// The component's path.
    pub fn component_path(&self) -> PathBuf {
        self.dir.join(&self.component)
    }

    /// The read-only directories as written: guest path → host directory (not resolved; the
    /// host grants [`resolve_data_dirs`](Self::resolve_data_dirs)).
    pub fn data_dirs(&self) -> impl Iterator<Item = (&str, PathBuf)> {
        self.read_only_dirs.iter().map(|(guest, host)| (guest.as_str(), self.dir.join(host)))
    }

    /// The read-only directories as the host grants them: guest path → the host directory
    /// with every symlink resolved. A directory that resolves outside the plugin's directory
    /// (such as `data`, a symlink to a directory elsewhere), does not exist or is not a
    /// directory is refused. (Symlinks *inside* a granted directory cannot lead out of it: the
    /// guest's file system is confined to each directory.)
    pub fn resolve_data_dirs(&self) -> Result<Vec<(String, PathBuf)>> {
        self.resolve_dirs(true)
    }

    /// [`resolve_data_dirs`](Self::resolve_data_dirs); `require`: whether a missing directory
    /// is an error (else it is skipped).
    fn resolve_dirs(&self, require: bool) -> Result<Vec<(String, PathBuf)>> {
        if self.read_only_dirs.is_empty() {
            return Ok(Vec::new());
        }
        let file = self.dir.join(MANIFEST_FILE);
        let root = std::fs::canonicalize(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut dirs = Vec::with_capacity(self.read_only_dirs.len());
        for (guest, host) in &self.read_only_dirs {
            let entry = format!("read_only_dirs {guest:?} = {:?}", host.display().to_string());
            let real = match std::fs::canonicalize(self.dir.join(host)) {
                Ok(real) => real,
                Err(e) if !require && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Manifest {
                        path: file,
                        message: format!("{entry}: cannot open {}: {e}", self.dir.join(host).display()),
                        hint: Some("create the directory inside the plugin's directory, or remove the entry".into()),
                    });
                }
            };
            if !real.starts_with(&root) {
                return Err(Error::Manifest {
                    path: file,
                    message: format!(
                        "{entry} resolves to {}, outside the plugin's directory {}",
                        real.display(),
                        root.display()
                    ),
                    hint: Some(
                        "grant a directory inside the plugin's directory, not a symlink out of it: copy the files \
                         the policy reads into e.g. data/ and write \"/data\" = \"data\""
                            .into(),
                    ),
                });
            }
            if !real.is_dir() {
                return Err(Error::Manifest {
                    path: file,
                    message: format!("{entry}: {} is not a directory", real.display()),
                    hint: Some("grant a directory, e.g. \"/data\" = \"data\"".into()),
                });
            }
            dirs.push((guest.clone(), real));
        }
        Ok(dirs)
    }

    /// Holds the manifest's limits to the organisation's caps (`[limits]` of the policy file
    /// `source`): a limit above its cap is refused, naming the cap; a plugin that names no
    /// fuel gets the fuel cap.
    pub fn cap_limits(&mut self, caps: &LimitCaps, source: &Path) -> Result<()> {
        let l = &mut self.limits;
        let over = |what: &str, asked: u64, cap: Option<u64>| match cap {
            Some(cap) if asked > cap => Err(Error::Manifest {
                path: self.dir.join(MANIFEST_FILE),
                message: format!("limits.{what} = {asked} is above the organisation's cap of {cap}"),
                hint: Some(format!("lower it to {cap} or less; the cap is [limits] {what} in {}", source.display())),
            }),
            _ => Ok(()),
        };
        over("timeout_ms", l.timeout_ms, caps.timeout_ms)?;
        over("memory_mib", l.memory_mib.into(), caps.memory_mib.map(u64::from))?;
        over("output_kib", l.output_kib.into(), caps.output_kib.map(u64::from))?;
        if let Some(fuel) = l.fuel {
            over("fuel", fuel, caps.fuel)?;
        }
        l.fuel = l.fuel.or(caps.fuel);
        Ok(())
    }

    /// Whether it is shown objects of this kind.
    pub fn handles_kind(&self, kind: &str) -> bool {
        in_scope(&self.kinds, kind)
    }

    /// A manifest for a bare `.wasm` component (no `policy.toml`): defaults, no pin, the name
    /// taken from the file name (replaced by the component's own once loaded).
    pub fn for_component(path: &Path) -> Self {
        let name = path.file_stem().map(|s| s.to_string_lossy().replace('_', "-")).unwrap_or_default();
        PolicyManifest {
            name,
            version: "0.0.0".into(),
            description: String::new(),
            language: Language::Rust,
            component: PathBuf::from(path.file_name().unwrap_or_default()),
            sha256: String::new(),
            mode: PolicyMode::Enforce,
            failure_policy: FailurePolicy::Fail,
            mutating: false,
            actions: all_actions(),
            environments: Vec::new(),
            kinds: Vec::new(),
            admission_operations: create_and_update(),
            limits: Limits::default(),
            settings: Default::default(),
            read_only_dirs: BTreeMap::new(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            named_by_file: true,
        }
    }
}

/// Whether a relative path of the manifest leaves its directory as written (absolute, or
/// through `..`).
fn leaves(path: &Path) -> bool {
    path.has_root() || path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir))
}

/// Why [`read_bounded`] did not read a file.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It could not be opened or read.
    Io(std::io::Error),
    /// It is not a regular file (what it is, e.g. "a character device").
    NotRegular(&'static str),
    /// It is larger than the maximum: its size (or the maximum + 1 when it grew while read).
    TooLarge(u64),
}

/// Reads a regular file of at most `max` bytes. What it is and its size are checked before it
/// is read (a device such as `/dev/zero` or a FIFO is never opened for reading, a huge file
/// never read), it is opened non-blocking on Unix (a FIFO put in its place in between cannot
/// hang the caller) and checked again, and the read stops after `max + 1` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            return Err(ReadError::NotRegular(file_kind(meta)));
        }
        if meta.len() > max {
            return Err(ReadError::TooLarge(meta.len()));
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(ReadError::Io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    check(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(max + 1));
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, for messages.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// Whether `value` is in a manifest scope list: an empty list or `"*"` means every value.
pub(crate) fn in_scope(scope: &[String], value: &str) -> bool {
    scope.is_empty() || scope.iter().any(|s| s == value || s == "*")
}

/// Rewrites the `sha256` pin of a manifest file in place, keeping its comments and layout.
pub fn write_pin(manifest_file: &Path, sha256: &str) -> Result<()> {
    let text = std::fs::read_to_string(manifest_file).map_err(|e| Error::io(manifest_file, e))?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| Error::Manifest {
        path: manifest_file.to_path_buf(),
        message: e.message().to_string(),
        hint: None,
    })?;
    doc["sha256"] = toml_edit::value(sha256);
    crate::fsutil::write_atomic(manifest_file, doc.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "disallow-latest-tag"
version = "0.1.0"
language = "rust"
component = "policy.wasm"
mode = "warn"
kinds = ["Deployment"]
[limits]
timeout_ms = 50
[settings]
registries = ["ghcr.io/company/"]
"#;

    #[test]
    fn parses_with_defaults() {
        let m = PolicyManifest::parse(Path::new("/p/policy.toml"), GOOD).unwrap();
        assert_eq!(m.mode, PolicyMode::Warn);
        assert_eq!(m.failure_policy, FailurePolicy::Fail);
        assert_eq!(m.limits.timeout_ms, 50);
        assert_eq!(m.limits.memory_mib, 64);
        assert_eq!(m.actions.len(), 3);
        assert_eq!(m.component_path(), Path::new("/p/policy.wasm"));
        assert!(m.handles_kind("Deployment") && !m.handles_kind("Service"));
        assert!(in_scope(&m.environments, "production") && m.actions.contains(&Action::Deploy));
        assert_eq!(m.settings["registries"][0], "ghcr.io/company/");
    }

    #[test]
    fn unknown_keys_and_values_get_hints() {
        let e = PolicyManifest::parse(Path::new("p.toml"), &GOOD.replace("mode =", "mdoe =")).unwrap_err();
        assert!(e.to_string().contains("p.toml:6"), "{e}");
        assert!(e.hint().unwrap().contains("did you mean \"mode\""), "{:?}", e.hint());
        let e = PolicyManifest::parse(Path::new("p.toml"), &GOOD.replace("\"warn\"", "\"warning\"")).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
        let e =
            PolicyManifest::parse(Path::new("p.toml"), &GOOD.replace("timeout_ms = 50", "timeout_ms = 0")).unwrap_err();
        assert!(e.to_string().contains("timeout_ms"), "{e}");
        let e = PolicyManifest::parse(Path::new("p.toml"), &format!("{GOOD}\n[read_only_dirs]\n\"data\" = \"x\"\n"))
            .unwrap_err();
        assert!(e.to_string().contains("absolute guest path"), "{e}");
        for host in ["/", "../..", "data/../../etc"] {
            let text = format!("{GOOD}\n[read_only_dirs]\n\"/data\" = \"{host}\"\n");
            let e = PolicyManifest::parse(Path::new("p.toml"), &text).unwrap_err();
            assert!(e.to_string().contains("leaves the plugin's directory"), "{host}: {e}");
        }
    }

    /// Issue 14, item 6: the component is named inside the plugin's directory, and neither it
    /// nor `policy.toml` is read unless it is a regular file of bounded size.
    #[test]
    fn paths_out_of_the_directory_and_files_that_are_not_regular_are_refused() {
        for component in ["/dev/zero", "../other/policy.wasm", "a/../../policy.wasm", ""] {
            let text = GOOD.replace("\"policy.wasm\"", &format!("{component:?}"));
            let e = PolicyManifest::parse(Path::new("p.toml"), &text).unwrap_err();
            assert!(e.to_string().contains("leaves the plugin's directory"), "{component}: {e}");
        }
        #[cfg(unix)]
        {
            let e = PolicyManifest::load("/dev/null").unwrap_err();
            assert!(e.to_string().contains("it is a character device, not a regular file"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        std::fs::File::create(&file).unwrap().set_len(MAX_MANIFEST_BYTES + 1).unwrap();
        let e = PolicyManifest::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("it is larger than 1024 KiB"), "{e}");
        assert!(matches!(read_bounded(&file, 10), Err(ReadError::TooLarge(n)) if n == MAX_MANIFEST_BYTES + 1));
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_bounded(&file, 10).unwrap().len(), 10);
    }

    #[test]
    fn pin_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, format!("# keep me\n{GOOD}")).unwrap();
        write_pin(&file, &"a".repeat(64)).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# keep me\n"));
        assert_eq!(PolicyManifest::load(dir.path()).unwrap().sha256, "a".repeat(64));
    }
}
