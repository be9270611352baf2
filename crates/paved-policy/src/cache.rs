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
    /// Opens (creating) a cache directory and its MAC key.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let key_path = dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(bytes) if bytes.len() == 32 => bytes.try_into().expect("32 bytes"),
            Ok(_) | Err(_) => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| Error::io(&key_path, std::io::Error::other(e.to_string())))?;
                write_private(&key_path, &key)?;
                // Another process may have won the race: use whatever is on disk now.
                match std::fs::read(&key_path) {
                    Ok(bytes) if bytes.len() == 32 => bytes.try_into().expect("32 bytes"),
                    _ => key,
                }
            }
        };
        Ok(ComponentCache { dir, key })
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
            "build it with `paved policy build DIR` (a core module or a damaged file is not a component)".into(),
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

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}
