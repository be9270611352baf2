//! The on-disk cache of precompiled components.
//!
//! Compiling a component takes 50–80 ms (seconds for a Python or JavaScript one); loading a
//! precompiled artifact takes well under a millisecond. An entry is keyed by the component's
//! SHA-256 and the engine's precompile compatibility hash (wasmtime version, target, settings).
//!
//! `Component::deserialize` trusts its input (it is native code), so the host only ever
//! deserializes artifacts it wrote itself: every entry carries a keyed BLAKE3 MAC under a
//! random key that lives **outside** the cache, in the user's state directory
//! ([`ComponentCache::default_key_path`]). A cache directory restored from a CI cache, baked
//! into an image or shared on a volume therefore brings no valid key along: its entries fail
//! verification and are recompiled and replaced. The key and the cache directory must be
//! private to this user along their whole path ([`paved_core::trust`]); never share or cache
//! the key itself.
//!
//! An entry whose MAC does not verify (corrupt, truncated, or written by someone else) is
//! recompiled and replaced; an entry that cannot be written is only logged: the component is
//! still used.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use paved_core::trust::{Strictness, check_path};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

const MAC_LEN: usize = 32;
/// The key file's name in the state directory.
const KEY_FILE: &str = "policy-cache.key";

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded from a verified cache entry.
    Hit,
    /// Compiled (no entry yet); the entry was written.
    Compiled,
    /// The entry did not verify or load; recompiled and replaced.
    Recompiled,
    /// Compiled; the entry could not be written (logged), so the next load compiles again.
    NotStored,
    /// Compiled without a cache directory.
    Uncached,
}

/// A cache directory of precompiled components, with the MAC key that proves its entries.
#[derive(Debug)]
pub struct ComponentCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl ComponentCache {
    /// Opens (creating) a cache directory, with the key at [`default_key_path`](Self::default_key_path).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with_key(dir, Self::default_key_path())
    }

    /// Opens (creating) a cache directory whose entries are proven by the key in `key_file`
    /// (created when missing, and recreated when it is not 32 bytes, as a crash of an older
    /// version could leave it). The key may not live in the cache directory, and both must
    /// be private to this user along their whole path: a key or directory someone else can
    /// write would let them forge entries, so it is refused (the host then compiles without
    /// a cache).
    pub fn open_with_key(dir: impl Into<PathBuf>, key_file: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.into();
        let key_file = key_file.as_ref();
        create_private_dir(&dir)?;
        trusted(&dir, Strictness::Private)?;
        let key_dir = key_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(key_dir)?;
        let (canonical_dir, canonical_key_dir) = (canonical(&dir)?, canonical(key_dir)?);
        if canonical_key_dir.starts_with(&canonical_dir) {
            return Err(Error::io(
                key_file,
                std::io::Error::other(format!(
                    "the cache key lies inside the cache directory {}, so a copy of the cache would carry it",
                    dir.display()
                )),
            ));
        }
        trusted(key_dir, Strictness::NotWritableByOthers)?;
        let key = read_or_create_key(key_file)?;
        Ok(ComponentCache { dir, key })
    }

    /// The default key file: `$PAVED_POLICY_CACHE_KEY`, else `policy-cache.key` in
    /// `$XDG_STATE_HOME/paved`, `~/.local/state/paved`, `$XDG_RUNTIME_DIR/paved`, or a
    /// directory of this user's under the system's temporary directory. State, not cache:
    /// tools that save and restore caches leave it alone.
    pub fn default_key_path() -> PathBuf {
        if let Some(file) = std::env::var_os("PAVED_POLICY_CACHE_KEY") {
            return file.into();
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
            .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from));
        match base {
            Some(base) => base.join("paved").join(KEY_FILE),
            None => per_user_temp_dir("paved-state").join(KEY_FILE),
        }
    }

    /// The default directory: `$PAVED_POLICY_CACHE`, else `$XDG_CACHE_HOME/paved/policy`, else
    /// `~/.cache/paved/policy`, else a directory under the system's temporary directory.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("PAVED_POLICY_CACHE") {
            return dir.into();
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("paved/policy");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(".cache/paved/policy");
        }
        per_user_temp_dir("paved-policy-cache")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry's path for a component digest on this engine.
    pub fn entry_path(&self, engine: &Engine, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", engine_hash(engine)))
    }

    /// The precompiled component for `bytes` (whose SHA-256 is `sha256`): from the cache when
    /// a verified entry exists, else compiled and written.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> Result<(Component, CacheStatus)> {
        let path = self.entry_path(engine, sha256);
        let mut status = CacheStatus::Compiled;
        if let Ok(entry) = std::fs::read(&path) {
            match self.verified(&path, &entry) {
                Some(artifact) => match deserialize_own_artifact(engine, artifact) {
                    Ok(component) => return Ok((component, CacheStatus::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cached policy component does not load; recompiling")
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "cached policy component fails verification; recompiling")
                }
            }
            status = CacheStatus::Recompiled;
        }
        let artifact = engine.precompile_component(bytes).map_err(|e| compile_error(sha256, &e))?;
        let mut entry = Vec::with_capacity(MAC_LEN + artifact.len());
        entry.extend_from_slice(self.mac(&path, &artifact).as_bytes());
        entry.extend_from_slice(&artifact);
        if let Err(e) = write_atomic(&path, &entry) {
            // A full disk or a read-only cache slows the next load down; it never fails this one.
            tracing::warn!(path = %path.display(), error = %e, "policy cache entry not written; compiled in memory");
            status = CacheStatus::NotStored;
        }
        let component = deserialize_own_artifact(engine, &artifact).map_err(|e| compile_error(sha256, &e))?;
        Ok((component, status))
    }

    fn mac(&self, path: &Path, artifact: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        hasher.update(&[0]);
        hasher.update(artifact);
        hasher.finalize()
    }

    /// The artifact of an entry whose MAC verifies.
    fn verified<'a>(&self, path: &Path, entry: &'a [u8]) -> Option<&'a [u8]> {
        if entry.len() <= MAC_LEN {
            return None;
        }
        let (mac, artifact) = entry.split_at(MAC_LEN);
        let mac: [u8; MAC_LEN] = mac.try_into().ok()?;
        // `blake3::Hash` compares in constant time.
        (blake3::Hash::from_bytes(mac) == self.mac(path, artifact)).then_some(artifact)
    }
}

/// Compiles a component without a cache.
pub(crate) fn compile(engine: &Engine, bytes: &[u8], sha256: &str) -> Result<Component> {
    Component::new(engine, bytes).map_err(|e| compile_error(sha256, &e))
}

fn compile_error(sha256: &str, e: &wasmtime::Error) -> Error {
    Error::Load {
        policy: format!("component sha256:{}", &sha256[..12.min(sha256.len())]),
        message: format!("not a valid WebAssembly component: {e:#}"),
        hint: Some(
            "build it with `paved_policy::toolchain::build` (a core module or a damaged file is not a component)"
                .into(),
        ),
    }
}

/// Deserializes an artifact this host produced with `Engine::precompile_component`.
#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` is either the output of `precompile_component` on this engine, in
    // this process, or a cache entry whose keyed MAC (under a key only this cache's owner can
    // read) proves this host wrote it. wasmtime additionally checks the artifact's header
    // against the engine's configuration.
    unsafe { Component::deserialize(engine, artifact) }
}

/// A stable hex digest of the engine's precompile compatibility hash.
fn engine_hash(engine: &Engine) -> String {
    // `DefaultHasher::new()` uses fixed keys: the same engine gives the same name in every run.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::io(path, e))
}

fn trusted(path: &Path, strictness: Strictness) -> Result<()> {
    check_path(path, strictness)
        .map_err(|e| Error::io(path, std::io::Error::new(e.kind(), format!("{e}; the policy cache refuses it"))))
}

/// `{prefix}-{uid}` under the system's temporary directory.
fn per_user_temp_dir(prefix: &str) -> PathBuf {
    #[cfg(unix)]
    return std::env::temp_dir().join(format!("{prefix}-{}", rustix::process::geteuid().as_raw()));
    #[cfg(not(unix))]
    std::env::temp_dir().join(prefix)
}

/// Reads the 32-byte key, creating it when missing and replacing it when damaged. A new key
/// is written to a temporary file and linked into place, so no reader ever sees a partial
/// one; when two processes race, the first link wins and both use its key.
fn read_or_create_key(key_file: &Path) -> Result<[u8; 32]> {
    let io = |e| Error::io(key_file, e);
    for _ in 0..3 {
        let damaged = match std::fs::read(key_file) {
            Ok(bytes) => {
                trusted(key_file, Strictness::Private)?;
                if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                    return Ok(key);
                }
                tracing::warn!(path = %key_file.display(), len = bytes.len(), "policy cache key damaged; replacing it");
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(e)),
        };
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let dir = key_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // `NamedTempFile` creates the file with mode 0600.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        std::io::Write::write_all(&mut tmp, &key).and_then(|()| tmp.as_file().sync_all()).map_err(io)?;
        // A damaged key is renamed over (never missing for a moment); a new one is linked in
        // only if no other process got there first.
        let placed = if damaged { tmp.persist(key_file) } else { tmp.persist_noclobber(key_file) };
        match placed {
            Ok(_) => return Ok(key),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e.error)),
        }
    }
    Err(io(std::io::Error::other("the cache key keeps changing under this process; is another one replacing it?")))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_key_lives_outside_the_cache_and_both_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, key) = (dir.path().join("cache"), dir.path().join("state/policy-cache.key"));
        let first = ComponentCache::open_with_key(&cache, &key).unwrap();
        // The key is created once and read back by the next opener; nothing of it is in the cache.
        assert_eq!(ComponentCache::open_with_key(&cache, &key).unwrap().key, first.key);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        mode(&key, 0o644);
        let e = ComponentCache::open_with_key(&cache, &key).unwrap_err();
        assert!(e.to_string().contains("gives group or others access"), "{e}");
        mode(&key, 0o600);
        mode(&cache, 0o755);
        let e = ComponentCache::open_with_key(&cache, &key).unwrap_err();
        assert!(e.to_string().contains("mode 755 gives group or others access"), "{e}");
        mode(&cache, 0o700);
        // Every directory on the way counts, not only the last one.
        mode(dir.path(), 0o777);
        let e = ComponentCache::open_with_key(&cache, &key).unwrap_err();
        assert!(e.to_string().contains("others may write to it (mode 777)"), "{e}");
        mode(dir.path(), 0o700);
        // A key inside the cache directory would travel with every copy of the cache.
        let e = ComponentCache::open_with_key(&cache, cache.join("k")).unwrap_err();
        assert!(e.to_string().contains("lies inside the cache directory"), "{e}");
    }

    #[test]
    fn a_damaged_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, key) = (dir.path().join("cache"), dir.path().join("policy-cache.key"));
        // What a crash between creating and writing the key used to leave behind.
        let mut options = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(options.write(true).create_new(true), 0o600);
        options.open(&key).unwrap();
        let opened = ComponentCache::open_with_key(&cache, &key).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), opened.key, "a new 32-byte key");
        assert_ne!(opened.key, [0u8; 32]);
    }
}
