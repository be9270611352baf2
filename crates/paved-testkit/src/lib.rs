//! Test support for paved: locating the real tools and services that tests run against.
//!
//! Tests talk to real tools wherever one runs here. A test that needs a tool calls
//! [`tool`]; when the tool is missing the test is skipped with a message on a developer's
//! machine, but **fails** in CI (`CI=true`), so a missing install step never passes silently.

use std::path::{Path, PathBuf};

/// The workspace root (the directory of the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/<name> is two levels deep").to_path_buf()
}

/// `true` when running in CI, where every required tool must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds an executable: `$PAVED_<NAME>` (upper-case, `-` as `_`), then the workspace's
/// `.venv/bin`, then `node_modules/.bin`, then `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let var = format!("PAVED_{}", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var).map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    let root = workspace_root();
    let local = [root.join(".venv/bin").join(name), root.join("node_modules/.bin").join(name)];
    if let Some(p) = local.into_iter().find(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// The tool's path, or `None` after printing why the calling test is skipped.
///
/// # Panics
/// In CI (`CI=true`) when the tool is missing: the test command must install it.
pub fn tool(name: &str, install_hint: &str) -> Option<PathBuf> {
    match find_tool(name) {
        Some(p) => Some(p),
        None if in_ci() => panic!("{name} is required in CI but was not found; install it: {install_hint}"),
        None => {
            eprintln!("SKIPPED: {name} not found (install it: {install_hint}); CI=true makes this a failure");
            None
        }
    }
}
