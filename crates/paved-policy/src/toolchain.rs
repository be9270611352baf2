//! The plugin toolchain driver behind `paved policy build` (feature `toolchain`): builds
//! plugins from source into components and pins them. It runs compilers; the runtime host
//! ([`crate::PolicyHost`]) only loads what it wrote.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` (one cargo run for all plugins of a
//!   cargo workspace), with a 64 KiB guest stack and remapped source paths so the artifact —
//!   and so its pin — does not depend on where the checkout lives;
//! - Python: `componentize-py` (from `$PAVED_COMPONENTIZE_PY`, the `.venv` next to the plugin
//!   tree, or `PATH`);
//! - JavaScript: `componentize-js` (from `$PAVED_COMPONENTIZE_JS`, a `node_modules/.bin` above
//!   the plugin, or `PATH`).
//!
//! The component is written next to `policy.toml` (its `component` key) and its SHA-256 is
//! written into the manifest's `sha256` pin.
//!
//! A missing tool or target is found before anything is built and reported as
//! [`Error::Toolchain`], whose hint is the command that installs it: the `wasm32-wasip2` target
//! is looked for in the sysroot of the `rustc` cargo would use (`$RUSTC`, else `rustc`), before
//! cargo runs (instead of cargo's screens of "can't find crate for `std`").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::host::{WIT, hex};
use crate::manifest::{Language, MANIFEST_FILE, PolicyManifest, write_pin};

/// The linker flag giving Rust guests a 64 KiB stack (fewer pages touched per instance).
pub const RUST_GUEST_RUSTFLAGS: &str = "-C link-arg=-zstack-size=65536";

/// The Rust target plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// How to install a tool: the command, and where the driver then finds it.
#[derive(Clone, Copy)]
struct Install {
    command: &'static str,
    note: &'static str,
}

/// Installs [`WASM_TARGET`].
const INSTALL_WASM_TARGET: Install = Install { command: "rustup target add wasm32-wasip2", note: "" };
/// Installs Rust (cargo, rustc) with rustup.
const INSTALL_RUST: Install = Install {
    command: "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh",
    note: " (rustup, https://rustup.rs), then `rustup target add wasm32-wasip2`",
};
/// Installs componentize-py: the version `scripts/build-plugins.sh` installs (a unit test
/// keeps the two equal).
const INSTALL_COMPONENTIZE_PY: Install = Install {
    command: "pip install componentize-py==0.25.1",
    note: " in a .venv above the plugin or on PATH, or set PAVED_COMPONENTIZE_PY to the program",
};
/// Installs componentize-js.
const INSTALL_COMPONENTIZE_JS: Install = Install {
    command: "npm install @bytecodealliance/componentize-js",
    note: " in the plugin's directory or one above it, or set PAVED_COMPONENTIZE_JS to the program",
};

/// One built plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The plugin's name.
    pub name: String,
    /// The component written.
    pub component: PathBuf,
    /// Its SHA-256, now the manifest's pin.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the pin changed.
    pub repinned: bool,
}

/// Builds plugins (directories holding `policy.toml`) and pins them.
pub fn build(dirs: &[PathBuf]) -> Result<Vec<Built>> {
    let mut manifests: Vec<PolicyManifest> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
        let manifest = PolicyManifest::load(dir)?;
        // The same plugin named twice (`a` and `./a/`) is built once.
        if !manifests.iter().any(|m| m.dir == manifest.dir) {
            manifests.push(manifest);
        }
    }
    let mut artifacts: BTreeMap<usize, PathBuf> = BTreeMap::new();
    let rust: Vec<usize> = (0..manifests.len()).filter(|&i| manifests[i].language == Language::Rust).collect();
    for (workspace, members) in group_by_workspace(&manifests, &rust)? {
        artifacts.extend(build_rust(&workspace, &manifests, &members)?);
    }
    for (i, m) in manifests.iter().enumerate() {
        match m.language {
            Language::Rust => {}
            Language::Python => {
                artifacts.insert(i, build_python(m)?);
            }
            Language::Js => {
                artifacts.insert(i, build_js(m)?);
            }
        }
    }
    let mut built = Vec::with_capacity(manifests.len());
    for (i, m) in manifests.iter().enumerate() {
        let artifact = &artifacts[&i];
        let bytes = std::fs::read(artifact).map_err(|e| Error::io(artifact, e))?;
        let target = m.component_path();
        if artifact != &target {
            crate::fsutil::write_atomic(&target, &bytes)?;
        }
        let sha256 = hex(&Sha256::digest(&bytes));
        let repinned = !m.sha256.eq_ignore_ascii_case(&sha256);
        if repinned {
            write_pin(&m.dir.join(MANIFEST_FILE), &sha256)?;
        }
        built.push(Built { name: m.name.clone(), component: target, sha256, size: bytes.len() as u64, repinned });
    }
    Ok(built)
}

fn build_error(dir: &Path, message: impl Into<String>, hint: impl Into<Option<String>>) -> Error {
    Error::Build { dir: dir.to_path_buf(), message: message.into(), hint: hint.into() }
}

/// Runs a command; a failure carries the last lines of its output. A program that does not
/// exist is [`Error::Toolchain`], with `install` (the command that installs it) as its hint.
fn run(dir: &Path, command: &mut Command, what: &str, install: Install) -> Result<std::process::Output> {
    let output = command.output().map_err(|e| {
        let program = PathBuf::from(command.get_program());
        if e.kind() == std::io::ErrorKind::NotFound {
            let place = if program.components().count() > 1 {
                format!("{} does not exist", program.display())
            } else {
                format!("no {} on PATH", program.display())
            };
            missing(dir, format!("{what} is not installed: {place}"), install)
        } else {
            build_error(dir, format!("cannot run {what} ({}): {e}", program.display()), Some(install_hint(install)))
        }
    })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        // Should the target check have missed it (a rustc wrapper), cargo's screens of
        // "can't find crate for `std`" still come down to this one line.
        if text.contains(&format!("the `{WASM_TARGET}` target may not be installed")) {
            return Err(missing(dir, format!("the Rust target {WASM_TARGET} is not installed"), INSTALL_WASM_TARGET));
        }
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(build_error(dir, format!("{what} failed ({}):\n{}", output.status, tail.join("\n")), None));
    }
    Ok(output)
}

/// [`Error::Toolchain`]: `message` says what is not installed, `install` installs it.
fn missing(dir: &Path, message: String, install: Install) -> Error {
    Error::Toolchain { dir: dir.to_path_buf(), message, hint: install_hint(install) }
}

fn install_hint(install: Install) -> String {
    format!("install it with `{}`{}", install.command, install.note)
}

/// Checks, before cargo runs, that the `rustc` cargo would use (`$RUSTC`, else `rustc`, as
/// rustup resolves it in `workspace`) has the `wasm32-wasip2` target in its sysroot. A rustc
/// that cannot say where its sysroot is (a wrapper) is left to cargo, whose "target may not be
/// installed" error [`run`] still turns into the same [`Error::Toolchain`].
fn check_wasm_target(workspace: &Path) -> Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out =
        run(workspace, Command::new(&rustc).args(["--print", "sysroot"]).current_dir(workspace), "rustc", INSTALL_RUST);
    let sysroot = match out {
        Ok(out) => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        Err(e @ Error::Toolchain { .. }) => return Err(e),
        Err(e) => {
            tracing::debug!(error = %e, "cannot find rustc's sysroot; cargo will say whether the target is installed");
            return Ok(());
        }
    };
    if sysroot.as_os_str().is_empty() || sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        return Ok(());
    }
    Err(missing(
        workspace,
        format!(
            "the Rust target {WASM_TARGET} is not installed: {} (the sysroot of {}) has no lib/rustlib/{WASM_TARGET}",
            sysroot.display(),
            Path::new(&rustc).display()
        ),
        INSTALL_WASM_TARGET,
    ))
}

/// Rust plugins grouped by their cargo workspace root.
fn group_by_workspace(manifests: &[PolicyManifest], rust: &[usize]) -> Result<BTreeMap<PathBuf, Vec<usize>>> {
    let mut groups: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for &i in rust {
        let dir = &manifests[i].dir;
        let out = run(
            dir,
            Command::new(cargo()).args(["locate-project", "--workspace", "--message-format", "plain"]).current_dir(dir),
            "cargo",
            INSTALL_RUST,
        )?;
        let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let root = manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| dir.clone());
        groups.entry(root).or_default().push(i);
    }
    Ok(groups)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn build_rust(workspace: &Path, manifests: &[PolicyManifest], members: &[usize]) -> Result<BTreeMap<usize, PathBuf>> {
    check_wasm_target(workspace)?;
    let mut packages = BTreeMap::new();
    for &i in members {
        let toml_path = manifests[i].dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&toml_path).map_err(|e| Error::io(&toml_path, e))?;
        let value: toml::Table =
            toml::from_str(&text).map_err(|e| build_error(&manifests[i].dir, e.to_string(), None))?;
        let name = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| build_error(&manifests[i].dir, "Cargo.toml has no [package] name", None))?;
        packages.insert(name.to_string(), i);
    }
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let rustflags = format!(
        "{RUST_GUEST_RUSTFLAGS} --remap-path-prefix={}=/cargo --remap-path-prefix={}=/plugins",
        cargo_home.display(),
        workspace.display()
    );
    let mut command = Command::new(cargo());
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format", "json-render-diagnostics"])
        .current_dir(workspace)
        .env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", rustflags)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for name in packages.keys() {
        command.args(["-p", name]);
    }
    let out = run(workspace, &mut command, "cargo build --target wasm32-wasip2", INSTALL_RUST)?;
    let mut artifacts = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(name) = msg["target"]["name"].as_str() else { continue };
        let Some(&i) = packages.get(name).or_else(|| packages.get(&name.replace('_', "-"))) else { continue };
        let wasm =
            msg["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm"));
        if let Some(wasm) = wasm {
            artifacts.insert(i, PathBuf::from(wasm));
        }
    }
    for (name, &i) in &packages {
        if !artifacts.contains_key(&i) {
            return Err(build_error(
                &manifests[i].dir,
                format!("cargo built no component for package {name}"),
                Some("give the package `[lib] crate-type = [\"cdylib\"]`".into()),
            ));
        }
    }
    Ok(artifacts)
}

/// The first existing tool among an environment override, `.venv/bin` or `node_modules/.bin`
/// directories in the plugin's own ancestors ([`own_ancestors`]), and `PATH`.
fn find_tool(dir: &Path, env: &str, subdirs: &[&str], name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    for ancestor in own_ancestors(dir) {
        for sub in subdirs {
            let candidate = ancestor.join(sub).join(name);
            if candidate.is_file() && same_owner_not_shared(&candidate, dir) {
                return candidate;
            }
        }
    }
    PathBuf::from(name)
}

/// `dir` and its ancestors up to the first one that another user owns or anyone may write to
/// (such as `/tmp`): a tool or WIT folder there could be anybody's, and would run as ours.
fn own_ancestors(dir: &Path) -> Vec<PathBuf> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors().take_while(|a| same_owner_not_shared(a, &dir)).map(Path::to_path_buf).collect()
}

/// Whether `path` has the owner of `reference` and is not writable by everyone.
#[cfg(unix)]
fn same_owner_not_shared(path: &Path, reference: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), std::fs::metadata(reference)) {
        (Ok(p), Ok(r)) => p.uid() == r.uid() && p.mode() & 0o002 == 0,
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_owner_not_shared(_path: &Path, _reference: &Path) -> bool {
    true
}

/// The WIT directory of a plugin: its own `wit/`, else a `wit/` above it, else the contract
/// this host was built with ([`WIT`]), written to a temporary directory.
fn wit_dir(m: &PolicyManifest) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    for ancestor in own_ancestors(&m.dir) {
        let candidate = ancestor.join("wit");
        if candidate.join("policy.wit").is_file() {
            return Ok((candidate, None));
        }
    }
    let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    std::fs::write(tmp.path().join("policy.wit"), WIT).map_err(|e| Error::io(tmp.path(), e))?;
    Ok((tmp.path().to_path_buf(), Some(tmp)))
}

fn build_python(m: &PolicyManifest) -> Result<PathBuf> {
    let (wit, _keep) = wit_dir(m)?;
    let tool = find_tool(&m.dir, "PAVED_COMPONENTIZE_PY", &[".venv/bin"], "componentize-py");
    let out = m.component_path();
    let module = python_module(m);
    // An empty virtualenv: without one, componentize-py adds the site-packages of whatever
    // `python3` is on PATH to the component (slower, and not hermetic).
    let venv = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let site = venv.path().join("lib/site-packages");
    std::fs::create_dir_all(&site).map_err(|e| Error::io(&site, e))?;
    run(
        &m.dir,
        Command::new(&tool)
            .arg("--wit-path")
            .arg(&wit)
            .args(["--world", "plugin", "componentize", &module, "--python-path", ".", "--output"])
            .arg(&out)
            .env("VIRTUAL_ENV", venv.path())
            .current_dir(&m.dir),
        "componentize-py",
        INSTALL_COMPONENTIZE_PY,
    )?;
    Ok(out)
}

/// The Python module to componentize: `app` unless the plugin has only one other `.py` file.
fn python_module(m: &PolicyManifest) -> String {
    if m.dir.join("app.py").is_file() {
        return "app".into();
    }
    let sources: Vec<String> = std::fs::read_dir(&m.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".py")).map(str::to_string))
        .filter(|n| !n.starts_with("test"))
        .collect();
    match sources.as_slice() {
        [one] => one.clone(),
        _ => "app".into(),
    }
}

fn build_js(m: &PolicyManifest) -> Result<PathBuf> {
    let (wit, _keep) = wit_dir(m)?;
    let tool = find_tool(&m.dir, "PAVED_COMPONENTIZE_JS", &["node_modules/.bin"], "componentize-js");
    let out = m.component_path();
    let source =
        ["policy.js", "index.js", "app.js"].iter().map(|f| m.dir.join(f)).find(|p| p.is_file()).ok_or_else(|| {
            build_error(&m.dir, "no policy.js", Some("a JavaScript plugin's source is policy.js".into()))
        })?;
    run(
        &m.dir,
        Command::new(&tool)
            .arg("--wit")
            .arg(&wit)
            // No wasi:http (the host does not provide it); stdio stays for error messages.
            .args(["--world-name", "plugin", "--disable", "http", "fetch-event", "--out"])
            .arg(&out)
            .arg(&source)
            .current_dir(&m.dir),
        "componentize-js",
        INSTALL_COMPONENTIZE_JS,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The install hint names the componentize-py version the repository's script installs.
    #[test]
    fn the_componentize_py_hint_names_the_scripts_version() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-plugins.sh");
        let script = std::fs::read_to_string(script).unwrap();
        let pin = INSTALL_COMPONENTIZE_PY.command.strip_prefix("pip install ").unwrap();
        assert!(script.contains(&format!("'{pin}'")), "scripts/build-plugins.sh installs another version than {pin}");
    }

    /// Issue 19, finding 6: a tool in a directory anyone may write to (another user's
    /// `/tmp/.venv/bin/componentize-py`) is never taken for the plugin's own.
    #[test]
    #[cfg(unix)]
    fn tools_are_found_in_the_plugins_own_directories_only() {
        use std::os::unix::fs::PermissionsExt;
        let shared = std::env::temp_dir().join(format!("paved-toolchain-{}", std::process::id()));
        let plugin = shared.join("team/plugin");
        std::fs::create_dir_all(&plugin).unwrap();
        std::fs::create_dir_all(shared.join(".venv/bin")).unwrap();
        std::fs::write(shared.join(".venv/bin/componentize-py"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let found = find_tool(&plugin, "PAVED_TEST_NO_SUCH_VARIABLE", &[".venv/bin"], "componentize-py");
        assert_eq!(found, PathBuf::from("componentize-py"), "a tool of the shared directory was taken");
        // In the plugin's own tree it is found.
        std::fs::create_dir_all(shared.join("team/.venv/bin")).unwrap();
        std::fs::write(shared.join("team/.venv/bin/componentize-py"), "#!/bin/sh\n").unwrap();
        let found = find_tool(&plugin, "PAVED_TEST_NO_SUCH_VARIABLE", &[".venv/bin"], "componentize-py");
        assert_eq!(found, shared.join("team/.venv/bin/componentize-py"));
        let _ = std::fs::remove_dir_all(&shared);
    }
}
