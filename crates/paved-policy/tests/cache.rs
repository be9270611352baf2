//! The precompiled-component cache as an attacker meets it: a cache directory copied with the
//! key an older version kept inside it and a forged entry, and a cache that cannot be written.

mod support;

use std::path::Path;

use paved_policy::{CacheStatus, ComponentCache, HostOptions, PolicyHost};
use support::*;

fn host(cache: &Path, key: &Path) -> PolicyHost {
    let options = HostOptions {
        cache_dir: Some(cache.to_path_buf()),
        cache_key: Some(key.to_path_buf()),
        ..HostOptions::default()
    };
    PolicyHost::new(options).expect("host starts")
}

/// A cache entry of `artifact` at `entry`, proven with `key` the way the cache proves its own.
fn forge(entry: &Path, key: &[u8; 32], artifact: &[u8]) {
    let mut mac = blake3::Hasher::new_keyed(key);
    mac.update(entry.file_name().unwrap().as_encoded_bytes());
    mac.update(&[0]);
    mac.update(artifact);
    let mut bytes = mac.finalize().as_bytes().to_vec();
    bytes.extend_from_slice(artifact);
    std::fs::write(entry, bytes).unwrap();
}

#[test]
fn a_copied_cache_with_its_key_and_a_forged_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let (victim_cache, victim_key) = (dir.path().join("victim/cache"), dir.path().join("victim/state/key"));
    let (attacker_cache, attacker_key) = (dir.path().join("attacker/cache"), dir.path().join("attacker/key"));
    // The attacker precompiles another plugin (require-labels) and stores it under the digest
    // of disallow-latest-tag, in a cache directory that also holds the attacker's key, as
    // caches of older versions did.
    let attacker = host(&attacker_cache, &attacker_key);
    let (allow_all, status) = attacker.load_with(manifest("require-labels")).unwrap();
    assert_eq!(status, CacheStatus::Compiled);
    let target = manifest("disallow-latest-tag");
    let cache = ComponentCache::open_with_key(&attacker_cache, &attacker_key).unwrap();
    let own_entry = cache.entry_path(attacker.engine(), allow_all.sha256());
    let artifact = std::fs::read(&own_entry).unwrap()[32..].to_vec();
    let key: [u8; 32] = std::fs::read(&attacker_key).unwrap().try_into().unwrap();
    let forged = cache.entry_path(attacker.engine(), &target.sha256);
    forge(&forged, &key, &artifact);
    std::fs::copy(&attacker_key, attacker_cache.join("cache.key")).unwrap();
    // Control: under the attacker's key the forgery verifies, and the wrong code loads.
    let e = host(&attacker_cache, &attacker_key).load(target.clone()).unwrap_err();
    assert!(e.to_string().contains("the component says it is \"require-labels\""), "{e}");
    // The cache is restored on the victim's machine, whose key is its own: the entry does
    // not verify, so the real component is compiled and the forged entry replaced.
    copy_dir(&attacker_cache, &victim_cache);
    let victim = host(&victim_cache, &victim_key);
    let (plugin, status) = victim.load_with(target.clone()).unwrap();
    assert_eq!((plugin.name(), status), ("disallow-latest-tag", CacheStatus::Recompiled));
    let entry = victim_cache.join(forged.file_name().unwrap());
    assert_ne!(std::fs::read(&entry).unwrap()[32..], artifact[..], "the forged entry is replaced");
    let (_, status) = host(&victim_cache, &victim_key).load_with(target).unwrap();
    assert_eq!(status, CacheStatus::Hit);
}

#[test]
fn an_entry_that_cannot_be_written_is_compiled_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let (cache_dir, key) = (dir.path().join("cache"), dir.path().join("key"));
    let host = host(&cache_dir, &key);
    let m = manifest("disallow-latest-tag");
    // A directory where the entry belongs: no write can replace it (not even root's).
    let cache = ComponentCache::open_with_key(&cache_dir, &key).unwrap();
    std::fs::create_dir(cache.entry_path(host.engine(), &m.sha256)).unwrap();
    let (plugin, status) = host.load_with(m).unwrap();
    assert_eq!((plugin.name(), status), ("disallow-latest-tag", CacheStatus::NotStored));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
