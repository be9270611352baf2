//! The on-disk cache of precompiled components.
//!
//! Compiling a component takes 50–80 ms (seconds for a Python or JavaScript one); loading a
//! precompiled artifact takes well under a millisecond. An entry is keyed by the component's
//! SHA-256 and the engine's precompile compatibility hash (wasmtime version, target, settings).
//!
//! `Component::deserialize` trusts its input (it is native code), so the host only ever
//! deserializes artifacts it wrote itself: every entry carries a keyed BLAKE3 MAC under a
//! random key that lives in the cache directory (mode 0600, directory 0700). An entry whose MAC
//! does not verify — corrupt, truncated, or written by someone else — is recompiled and
//! replaced.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

const KEY_FILE: &str = "cache.key";
const MAC_LEN: usize = 32;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded from a verified cache entry.
    Hit,
    /// Compiled (no entry yet); the entry was written.
    Compiled,
    /// The entry did not verify or load; recompiled and replaced.
    Recompiled,
    /// Compiled without a cache directory.
    Uncached,
}

/// A cache directory of precompiled components.
#[derive(Debug)]
pub struct ComponentCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl ComponentCache {
    /// Opens (creating) a cache directory and its MAC key. The directory and the key must
    /// belong to the current user and be private to them (no group/other access, not
    /// symlinks): a key someone else can write would let them forge entries, so such a
    /// directory is refused (the host then compiles without a cache).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        check_private(&dir)?;
        let key_path = dir.join(KEY_FILE);
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::io(&key_path, std::io::Error::other(e.to_string())))?;
        // The first process to create the key wins; everyone else reads it.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&key_path) {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(&key).and_then(|()| file.sync_all()).map_err(|e| Error::io(&key_path, e))?;
                return Ok(ComponentCache { dir, key });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&key_path, e)),
        }
        check_private(&key_path)?;
        // A key being written by another process right now: wait for its 32 bytes.
        for _ in 0..50 {
            let bytes = std::fs::read(&key_path).map_err(|e| Error::io(&key_path, e))?;
            if let Ok(existing) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(ComponentCache { dir, key: existing });
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(Error::io(&key_path, std::io::Error::other("the cache key is not 32 bytes; delete the cache directory")))
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
        #[cfg(unix)]
        return std::env::temp_dir().join(format!("paved-policy-cache-{}", rustix::process::geteuid().as_raw()));
        #[cfg(not(unix))]
        std::env::temp_dir().join("paved-policy-cache")
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
        write_atomic(&path, &entry)?;
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

/// Refuses a path that is a symlink, belongs to another user, or is open to group/others.
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
        let me = rustix::process::geteuid().as_raw();
        if meta.file_type().is_symlink() || meta.uid() != me || meta.mode() & 0o077 != 0 {
            return Err(Error::io(
                path,
                std::io::Error::other(format!(
                    "not private to this user (owner uid {}, mode {:o}): the policy cache refuses it",
                    meta.uid(),
                    meta.mode() & 0o7777
                )),
            ));
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_directory_or_key_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let first = ComponentCache::open(&cache).unwrap();
        // The key is created once and read back by the next opener.
        assert_eq!(ComponentCache::open(&cache).unwrap().key, first.key);
        std::fs::set_permissions(cache.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ComponentCache::open(&cache).unwrap_err();
        assert!(e.to_string().contains("not private to this user"), "{e}");
        std::fs::set_permissions(cache.join(KEY_FILE), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = ComponentCache::open(&cache).unwrap_err();
        assert!(e.to_string().contains("not private to this user"), "{e}");
    }
}
