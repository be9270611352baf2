//! The sandbox: one wasmtime engine, plugins loaded once, a fresh store and instance for every
//! evaluation.
//!
//! A plugin call may come from any thread, also one driving a tokio runtime (a front end's
//! `async fn`): wasmtime-wasi's synchronous WASI calls (a write to stdout or stderr, opening a
//! file, a socket, a sleep) block on a tokio runtime of their own, which panics on such a thread,
//! so there the instance runs on rayon's pool and the caller waits for it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::cache::{CacheStatus, ComponentCache};
use crate::error::{Error, Result};
use crate::manifest::{MAX_MEMORY_MIB, PolicyManifest};

/// The WIT contract `paved:policy@0.2.0` (world `plugin`) this host implements, as in
/// `crates/paved-policy/wit/policy.wit`: for plugins built outside this repository.
pub const WIT: &str = include_str!("../wit/policy.wit");

/// The earlier contract `paved:policy@0.1.0` (`crates/paved-policy/wit-0.1.0/policy.wit`),
/// which the host still runs: such a plugin sees `deprovision-database` as
/// `provision-database` and never sees the admission context.
pub const WIT_0_1: &str = include_str!("../wit-0.1.0/policy.wit");

/// The contract versions a plugin can be built against, newest first.
pub const CONTRACTS: [&str; 2] = ["0.2.0", "0.1.0"];

/// The generated host bindings of [`WIT`] (`paved:policy@0.2.0`, world `plugin`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "plugin",
    });
}

/// The generated host bindings of [`WIT_0_1`] (`paved:policy@0.1.0`, world `plugin`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod bindings_0_1 {
    wasmtime::component::bindgen!({
        path: "wit-0.1.0",
        world: "plugin",
    });
}

pub(crate) use bindings::paved::policy::types::{
    Action as WitAction, Admission, Database, Decision, Info, Operation, Request, Severity as WitSeverity,
    Violation as WitViolation,
};
use bindings::{Plugin as PluginBindings, PluginPre};

/// How often the epoch ticker advances: the granularity of wall-clock limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Log lines a plugin may write per evaluation (more are dropped).
const MAX_LOG_LINES: usize = 100;
/// Bytes of one log line kept.
const MAX_LOG_LINE: usize = 1024;
/// Host resources (file handles, streams, pollables) one evaluation may hold at once.
const MAX_HANDLES: usize = 1024;

/// Options of a [`PolicyHost`].
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where precompiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// The file holding the cache's MAC key, outside the cache directory; `None`:
    /// [`ComponentCache::default_key_path`].
    pub cache_key: Option<PathBuf>,
    /// Enforce fuel limits (`limits.fuel` in manifests). Fuel makes execution deterministic
    /// but costs ~10–20% speed, so it is off unless asked for.
    pub fuel: bool,
    /// Evaluations that may run at once (the pooling allocator's instance slots).
    pub max_concurrent: u32,
    /// The largest component file loaded, in bytes (default 64 MiB; the JavaScript and Python
    /// runtimes make components of 12 and 18 MiB). A larger file is refused before it is read.
    pub max_component_bytes: u64,
}

/// The default [`HostOptions::max_component_bytes`].
const MAX_COMPONENT_BYTES: u64 = 64 << 20;

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            cache_dir: Some(ComponentCache::default_dir()),
            cache_key: None,
            fuel: false,
            max_concurrent: 64,
            max_component_bytes: MAX_COMPONENT_BYTES,
        }
    }
}

/// The policy host: one engine and linker, the component cache, the epoch ticker.
pub struct PolicyHost {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<ComponentCache>,
    fuel: bool,
    max_component_bytes: u64,
    loaded: Mutex<HashMap<String, Component>>,
    ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for PolicyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHost").field("cache", &self.cache).field("fuel", &self.fuel).finish_non_exhaustive()
    }
}

impl Drop for PolicyHost {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

impl PolicyHost {
    /// A host with the given options.
    pub fn new(options: HostOptions) -> Result<Self> {
        let n = options.max_concurrent.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 32)
            .total_memories(n * 4)
            .total_tables(n * 32)
            .total_stacks(n)
            .max_core_instances_per_component(64)
            .max_memories_per_component(4)
            .max_tables_per_component(64)
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            .table_elements(100_000)
            .max_memory_size((MAX_MEMORY_MIB as usize) << 20)
            // Reset the first pages of a slot by memset instead of unmapping them: a fresh
            // instance then starts without page faults on its stack and data.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            // With Linux's PAGEMAP_SCAN (6.7+), reset only the pages the evaluation dirtied
            // instead of the whole first MiB: 12.9 → 11.2 µs per evaluation of a small Rust
            // policy, 1.3 → 0.9 ms for the JavaScript one. Older kernels keep the memset.
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(options.fuel)
            .max_wasm_stack(1 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| host_error(&e))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| host_error(&e))?;
        cap_clock_subscriptions(&mut linker).map_err(|e| host_error(&e))?;
        PluginBindings::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| host_error(&e))?;
        bindings_0_1::Plugin::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| host_error(&e))?;
        // A cache directory that cannot be used safely is skipped (compiling is only slower).
        let key = options.cache_key.unwrap_or_else(ComponentCache::default_key_path);
        let cache = options.cache_dir.and_then(|dir| match ComponentCache::open_with_key(&dir, &key) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "policy cache disabled");
                None
            }
        });
        let ticker = Arc::new(AtomicBool::new(true));
        spawn_ticker(engine.clone(), ticker.clone());
        Ok(PolicyHost {
            engine,
            linker,
            cache,
            fuel: options.fuel,
            max_component_bytes: options.max_component_bytes,
            loaded: Mutex::new(HashMap::new()),
            ticker,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the plugin of a manifest: reads the component, checks its pin, takes the
    /// precompiled artifact from the cache (or compiles it), resolves its imports and asks it
    /// for its metadata.
    ///
    /// The component must be a regular file of at most [`HostOptions::max_component_bytes`]
    /// inside the plugin's directory (symlinks resolved; only a `.wasm` file named directly,
    /// [`PolicyManifest::for_component`], may lie anywhere), and every `read_only_dirs`
    /// directory must resolve inside it ([`PolicyManifest::resolve_data_dirs`]).
    pub fn load(&self, manifest: PolicyManifest) -> Result<Plugin> {
        self.load_with(manifest).map(|(plugin, _)| plugin)
    }

    /// [`load`](Self::load), also saying where the compiled component came from.
    pub fn load_with(&self, mut manifest: PolicyManifest) -> Result<(Plugin, CacheStatus)> {
        let data_dirs = manifest.resolve_data_dirs()?;
        let (path, bytes) = self.read_component(&manifest)?;
        let sha256 = hex(&Sha256::digest(&bytes));
        if manifest.sha256.is_empty() {
            // Only a `.wasm` file named directly needs no pin: its user chose those bytes.
            if !manifest.named_by_file {
                return Err(Error::Load {
                    policy: manifest.name.clone(),
                    message: "policy.toml has no sha256 pin".into(),
                    hint: Some(format!(
                        "build and pin it with `paved_policy::toolchain::build` ({})",
                        manifest.dir.display()
                    )),
                });
            }
        } else if !manifest.sha256.eq_ignore_ascii_case(&sha256) {
            return Err(Error::PinMismatch {
                policy: manifest.name.clone(),
                path,
                expected: manifest.sha256.clone(),
                actual: sha256,
            });
        }
        let (component, status) = self.component(&bytes, &sha256).map_err(|e| match e {
            Error::Load { message, hint, .. } => Error::Load { policy: manifest.name.clone(), message, hint },
            other => other,
        })?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| import_error(&manifest.name, &e))?;
        // The newest contract the component exports.
        let pre = match PluginPre::new(pre.clone()) {
            Ok(current) => Pre::Current(current),
            Err(current) => Pre::Legacy(bindings_0_1::PluginPre::new(pre).map_err(|_| Error::Load {
                policy: manifest.name.clone(),
                message: format!("does not export paved:policy/policy@0.2.0 (or 0.1.0): {current:#}"),
                hint: Some(
                    "implement the `plugin` world of paved:policy@0.2.0 (`paved_policy::WIT`; the plugin template has it)"
                        .into(),
                ),
            })?),
        };
        let named_only_by_file = manifest.named_by_file;
        let mut plugin = Plugin { manifest: manifest.clone(), pre, info: None, sha256, fuel: self.fuel, data_dirs };
        let info = plugin.metadata().map_err(|failure| Error::Load {
            policy: manifest.name.clone(),
            message: format!("metadata() failed: {failure}"),
            hint: None,
        })?;
        if named_only_by_file {
            manifest.name = info.name.clone();
            manifest.version = info.version.clone();
            manifest.description = info.description.clone();
        } else if info.name != manifest.name {
            return Err(Error::Load {
                policy: manifest.name.clone(),
                message: format!("the component says it is {:?}, but policy.toml names {:?}", info.name, manifest.name),
                hint: Some("point `component` at the right file, or fix `name`".into()),
            });
        }
        plugin.manifest = manifest;
        plugin.info = Some(info);
        Ok((plugin, status))
    }

    /// Reads the component of a manifest: a regular file, inside the plugin's directory unless
    /// named directly, of at most `max_component_bytes`; its path and bytes.
    fn read_component(&self, manifest: &PolicyManifest) -> Result<(PathBuf, Vec<u8>)> {
        let path = manifest.component_path();
        let refuse = |message: String, hint: String| Error::Load {
            policy: manifest.name.clone(),
            message: format!("component {} {message}", path.display()),
            hint: Some(hint),
        };
        let rebuild = || format!("build it with `paved_policy::toolchain::build` ({})", manifest.dir.display());
        let real = match std::fs::canonicalize(&path) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Load {
                    policy: manifest.name.clone(),
                    message: format!("component {} does not exist", path.display()),
                    hint: Some(rebuild()),
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if !manifest.named_by_file {
            let root = std::fs::canonicalize(&manifest.dir).map_err(|e| Error::io(&manifest.dir, e))?;
            if !real.starts_with(&root) {
                return Err(refuse(
                    format!("resolves to {}, outside the plugin's directory {}", real.display(), root.display()),
                    format!(
                        "keep the component in the plugin's directory (a file, not a symlink out of it); {}",
                        rebuild()
                    ),
                ));
            }
        }
        let max = self.max_component_bytes;
        match crate::manifest::read_bounded(&real, max) {
            Ok(bytes) => Ok((path, bytes)),
            Err(crate::manifest::ReadError::Io(e)) => Err(Error::io(&path, e)),
            Err(crate::manifest::ReadError::NotRegular(what)) => Err(refuse(
                format!("is {what}, not a regular file, and was not read"),
                if manifest.named_by_file {
                    "name the .wasm file of a component".into()
                } else {
                    format!("point `component` at the .wasm file the toolchain wrote; {}", rebuild())
                },
            )),
            Err(crate::manifest::ReadError::TooLarge(size)) => Err(refuse(
                format!(
                    "is larger than the maximum of {} ({}) and was not read",
                    mib(max),
                    if size > max { mib(size) } else { "it grew while being read".into() }
                ),
                "policy components are a few MiB at most (the JavaScript and Python runtimes 12 and 18 MiB); \
                 `HostOptions::max_component_bytes` raises the maximum"
                    .into(),
            )),
        }
    }

    fn component(&self, bytes: &[u8], sha256: &str) -> Result<(Component, CacheStatus)> {
        if let Some(c) = self.loaded.lock().expect("component memo").get(sha256) {
            return Ok((c.clone(), CacheStatus::Hit));
        }
        let (component, status) = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes, sha256)?,
            None => (crate::cache::compile(&self.engine, bytes, sha256)?, CacheStatus::Uncached),
        };
        self.loaded.lock().expect("component memo").insert(sha256.to_string(), component.clone());
        Ok((component, status))
    }
}

/// The epoch deadline interrupts wasm code, not a host call blocking on a clock (`sleep`): a
/// clock subscription is cut at the evaluation's deadline, so a sleeping plugin wakes up then
/// and is interrupted as soon as it runs again.
fn cap_clock_subscriptions(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::clocks::WasiClocksView;
    use wasmtime_wasi::p2::DynPollable;
    use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host;

    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: wasmtime::StoreContextMut<'_, State>,
         (nanos,): (u64,)|
         -> wasmtime::Result<(Resource<DynPollable>,)> {
            let left = store.data().time_left_nanos();
            Ok((WasiClocksView::clocks(store.data_mut()).subscribe_duration(nanos.min(left))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: wasmtime::StoreContextMut<'_, State>,
         (when,): (u64,)|
         -> wasmtime::Result<(Resource<DynPollable>,)> {
            let left = store.data().time_left_nanos();
            let mut clocks = WasiClocksView::clocks(store.data_mut());
            let now = clocks.now()?;
            clocks.subscribe_instant(when.min(now.saturating_add(left))).map(|r| (r,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn spawn_ticker(engine: Engine, alive: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("paved-policy-epoch".into())
        .spawn(move || {
            while alive.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawn the epoch ticker thread");
}

fn host_error(e: &wasmtime::Error) -> Error {
    Error::Load { policy: "<host>".into(), message: format!("cannot set up the wasm engine: {e:#}"), hint: None }
}

/// A component whose imports the host cannot satisfy is refused, naming the import.
fn import_error(policy: &str, e: &wasmtime::Error) -> Error {
    let text = format!("{e:#}");
    let import = text.split('`').nth(1).map(str::to_string);
    let message = match &import {
        Some(name) => format!("imports `{name}`, which the paved host does not provide"),
        None => format!("cannot be linked: {text}"),
    };
    Error::Load {
        policy: policy.to_string(),
        message,
        hint: Some(
            "a policy may import only paved:policy/log (0.2.0 or 0.1.0) and WASI 0.2 (cli, clocks, filesystem, io, random; \
             sockets exist but every address is denied)"
                .into(),
        ),
    }
}

/// A size in MiB for messages, e.g. `64 MiB` or `0.5 MiB`.
fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

/// Hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an evaluation failed (the plugin, not the policy's verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It ran longer than `limits.timeout_ms` (stopped, or answered after the deadline).
    Timeout {
        /// The limit.
        limit_ms: u64,
    },
    /// It used more fuel than `limits.fuel`.
    OutOfFuel {
        /// The limit.
        fuel: u64,
    },
    /// It tried to grow its memory beyond `limits.memory_mib`.
    MemoryLimit {
        /// The limit.
        limit_mib: u32,
        /// The size it asked for.
        requested: usize,
    },
    /// It wrote more than `limits.output_kib` to stdout or stderr.
    OutputLimit {
        /// The limit.
        limit_kib: u32,
    },
    /// Its call stack overflowed.
    StackOverflow,
    /// It trapped (a panic, an abort, an out-of-bounds access…).
    Trap {
        /// The trap and the tail of its stderr.
        reason: String,
    },
    /// It returned an error.
    Error {
        /// The plugin's message.
        message: String,
    },
    /// It returned mutated objects but its manifest does not say `mutating = true`.
    UndeclaredMutation,
    /// Its answer cannot be used (e.g. mutated objects that are not JSON objects).
    InvalidAnswer {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout { limit_ms } => write!(f, "exceeded its time limit of {limit_ms} ms and was stopped"),
            Failure::OutOfFuel { fuel } => write!(f, "ran out of fuel ({fuel}) and was stopped"),
            Failure::MemoryLimit { limit_mib, requested } => write!(
                f,
                "exceeded its memory limit of {limit_mib} MiB (asked for {} MiB) and was stopped",
                requested.div_ceil(1 << 20)
            ),
            Failure::OutputLimit { limit_kib } => {
                write!(f, "wrote more than its output limit of {limit_kib} KiB to stdout/stderr and was stopped")
            }
            Failure::StackOverflow => f.write_str("overflowed its call stack and was stopped"),
            Failure::Trap { reason } => write!(f, "crashed: {reason}"),
            Failure::Error { message } => write!(f, "returned an error: {message}"),
            Failure::UndeclaredMutation => {
                f.write_str("returned mutated objects, but its policy.toml does not say `mutating = true`; the mutation was refused")
            }
            Failure::InvalidAnswer { reason } => write!(f, "gave an unusable answer: {reason}"),
        }
    }
}

/// A component pre-instantiated against the contract it was built for.
enum Pre {
    Current(PluginPre<State>),
    Legacy(bindings_0_1::PluginPre<State>),
}

/// An instance of either contract.
enum Instance {
    Current(PluginBindings),
    Legacy(bindings_0_1::Plugin),
}

/// A loaded plugin: its manifest, metadata and pre-instantiated component.
pub struct Plugin {
    manifest: PolicyManifest,
    pre: Pre,
    info: Option<Info>,
    sha256: String,
    fuel: bool,
    /// The read-only directories, resolved at load: guest path → host directory.
    data_dirs: Vec<(String, PathBuf)>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The manifest.
    pub fn manifest(&self) -> &PolicyManifest {
        &self.manifest
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The component's SHA-256.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The metadata the component reported at load.
    pub fn info(&self) -> &Info {
        self.info.as_ref().expect("metadata is read at load")
    }

    /// Whether the plugin handles an action (its metadata and its manifest agree).
    pub fn handles(&self, action: WitAction) -> bool {
        // A 0.1.0 plugin is shown deprovisioning as `provision-database`.
        let action = match (&self.pre, action) {
            (Pre::Legacy(_), WitAction::DeprovisionDatabase) => WitAction::ProvisionDatabase,
            _ => action,
        };
        self.info.as_ref().is_none_or(|i| i.actions.contains(&action))
    }

    /// The contract version the component was built against: `0.2.0` or `0.1.0`
    /// ([`CONTRACTS`]).
    pub fn contract(&self) -> &'static str {
        match self.pre {
            Pre::Current(_) => CONTRACTS[0],
            Pre::Legacy(_) => CONTRACTS[1],
        }
    }

    /// Calls `metadata()` in a fresh instance.
    pub fn metadata(&self) -> Result<Info, Failure> {
        self.run(|plugin, store| match plugin {
            Instance::Current(p) => p.paved_policy_policy().call_metadata(store).map(Ok),
            Instance::Legacy(p) => p.paved_policy_policy().call_metadata(store).map(|i| Ok(legacy::info(i))),
        })
    }

    /// Calls `evaluate()` in a fresh instance with every limit of the manifest.
    pub fn evaluate(&self, request: &Request) -> Result<Decision, Failure> {
        let decision = self.run(|plugin, store| match plugin {
            Instance::Current(p) => p.paved_policy_policy().call_evaluate(store, request),
            Instance::Legacy(p) => p
                .paved_policy_policy()
                .call_evaluate(store, &legacy::request(request))
                .map(|answer| answer.map(legacy::decision)),
        })?;
        if decision.mutated.is_some() && !self.manifest.mutating {
            return Err(Failure::UndeclaredMutation);
        }
        Ok(decision)
    }

    /// Runs `call` in a fresh instance, on this thread unless it is inside a tokio runtime:
    /// wasmtime-wasi's synchronous WASI calls (stdout/stderr, files, sockets, clocks) block on a
    /// tokio runtime of their own, which panics on a thread inside one ("Cannot start a runtime
    /// from within a runtime"). There the instance runs on rayon's pool (where the platform's
    /// evaluations run anyway), or on a thread of its own when this is one of rayon's threads,
    /// and the caller waits.
    fn run<T: Send>(
        &self,
        call: impl FnOnce(&Instance, &mut Store<State>) -> wasmtime::Result<Result<T, String>> + Send,
    ) -> Result<T, Failure> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.run_here(call);
        }
        if rayon::current_thread_index().is_none() {
            // Not a rayon thread: `scope` runs its body on the pool and blocks until it is done.
            return rayon::scope(|_| self.run_here(call));
        }
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("paved-policy-call".into())
                .spawn_scoped(s, || self.run_here(call))
                .map_err(|e| Failure::Trap { reason: format!("cannot start a thread for the plugin: {e}") })?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn run_here<T>(
        &self,
        call: impl FnOnce(&Instance, &mut Store<State>) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, Failure> {
        let limits = &self.manifest.limits;
        let output = (limits.output_kib as usize) << 10;
        let stdout = MemoryOutputPipe::new(output);
        let stderr = MemoryOutputPipe::new(output);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (guest, host) in &self.data_dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly).map_err(|e| Failure::Trap {
                reason: format!("cannot grant read-only directory {} as {guest}: {e:#}", host.display()),
            })?;
        }
        // Handles a guest may hold (files, streams, pollables): host memory and descriptors
        // that its memory limit does not count.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        let state = State {
            wasi: wasi.build(),
            table,
            limiter: Limiter { memory: (limits.memory_mib as usize) << 20, used: 0, exceeded: None },
            policy: self.manifest.name.clone(),
            log_lines: 0,
            deadline: Instant::now() + Duration::from_millis(limits.timeout_ms),
        };
        let engine = match &self.pre {
            Pre::Current(pre) => pre.engine(),
            Pre::Legacy(pre) => pre.engine(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = Duration::from_millis(limits.timeout_ms).as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        if self.fuel {
            store.set_fuel(limits.fuel.unwrap_or(u64::MAX)).expect("fuel is enabled");
        }
        let started = Instant::now();
        let instance = match &self.pre {
            Pre::Current(pre) => pre.instantiate(&mut store).map(Instance::Current),
            Pre::Legacy(pre) => pre.instantiate(&mut store).map(Instance::Legacy),
        };
        let result = instance.and_then(|plugin| call(&plugin, &mut store));
        let late = store.data().time_left_nanos() == 0;
        match result {
            // An answer that comes back after the deadline is not taken, whatever it says: a
            // plugin woken from a sleep cut at the deadline may answer before the epoch check
            // stops it.
            Ok(Ok(_)) if late => Err(Failure::Timeout { limit_ms: limits.timeout_ms }),
            Ok(Ok(value)) => Ok(value),
            // A plugin that handled a refused allocation itself still hit the memory limit.
            Ok(Err(_)) | Err(_) if store.data().limiter.exceeded.is_some() => Err(Failure::MemoryLimit {
                limit_mib: limits.memory_mib,
                requested: store.data().limiter.exceeded.unwrap_or_default(),
            }),
            // Woken from a capped sleep at the deadline (or interrupted): out of time.
            Ok(Err(_)) | Err(_) if late => Err(Failure::Timeout { limit_ms: limits.timeout_ms }),
            // A full stdout/stderr pipe refuses further writes: the plugin hit its output limit.
            Ok(Err(_)) | Err(_) if [&stdout, &stderr].iter().any(|p| p.contents().len() >= output) => {
                Err(Failure::OutputLimit { limit_kib: limits.output_kib })
            }
            Ok(Err(message)) => Err(Failure::Error { message: truncate(&message, 4096) }),
            Err(e) => Err(self.classify(&e, &stderr, started)),
        }
    }

    fn classify(&self, e: &wasmtime::Error, stderr: &MemoryOutputPipe, started: Instant) -> Failure {
        let limits = &self.manifest.limits;
        let text = format!("{e:#}");
        if text.contains("write beyond capacity of MemoryOutputPipe") {
            return Failure::OutputLimit { limit_kib: limits.output_kib };
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Timeout { limit_ms: limits.timeout_ms },
            Some(Trap::OutOfFuel) => Failure::OutOfFuel { fuel: limits.fuel.unwrap_or(u64::MAX) },
            Some(Trap::StackOverflow) => Failure::StackOverflow,
            other => {
                let trap =
                    other.map(|t| t.to_string()).unwrap_or_else(|| text.lines().next().unwrap_or_default().to_string());
                let err = String::from_utf8_lossy(&stderr.contents()).trim().to_string();
                let tail: String =
                    err.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ");
                tracing::debug!(policy = %self.manifest.name, elapsed = ?started.elapsed(), error = %text, "policy plugin trapped");
                Failure::Trap {
                    reason: if tail.is_empty() { trap } else { format!("{trap}; stderr: {}", truncate(&tail, 1024)) },
                }
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// The state of one evaluation's store.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    policy: String,
    log_lines: usize,
    /// When the evaluation's wall-clock limit runs out.
    deadline: Instant,
}

impl State {
    fn time_left_nanos(&self) -> u64 {
        self.deadline.saturating_duration_since(Instant::now()).as_nanos().try_into().unwrap_or(u64::MAX)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::paved::policy::types::Host for State {}
impl bindings_0_1::paved::policy::types::Host for State {}

impl bindings_0_1::paved::policy::log::Host for State {
    fn log(&mut self, level: bindings_0_1::paved::policy::log::Level, message: String) {
        use bindings::paved::policy::log::Level as Current;
        use bindings_0_1::paved::policy::log::Level;
        let level = match level {
            Level::Trace => Current::Trace,
            Level::Debug => Current::Debug,
            Level::Info => Current::Info,
            Level::Warn => Current::Warn,
            Level::Error => Current::Error,
        };
        bindings::paved::policy::log::Host::log(self, level, message);
    }
}

impl bindings::paved::policy::log::Host for State {
    fn log(&mut self, level: bindings::paved::policy::log::Level, message: String) {
        use bindings::paved::policy::log::Level;
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            return;
        }
        let message = truncate(&message, MAX_LOG_LINE);
        let policy = self.policy.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "paved_policy::plugin", policy, "{message}"),
            Level::Debug => tracing::debug!(target: "paved_policy::plugin", policy, "{message}"),
            Level::Info => tracing::info!(target: "paved_policy::plugin", policy, "{message}"),
            Level::Warn => tracing::warn!(target: "paved_policy::plugin", policy, "{message}"),
            Level::Error => tracing::error!(target: "paved_policy::plugin", policy, "{message}"),
        }
    }
}

/// Memory, table and instance limits of one store; remembers a refused memory growth.
/// The memory limit counts every linear memory of the store together.
struct Limiter {
    memory: usize,
    used: usize,
    exceeded: Option<usize>,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.used + desired.saturating_sub(current);
        if total > self.memory {
            self.exceeded = Some(total);
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        4
    }
}

/// Between the current contract and 0.1.0: what a plugin built against 0.1.0 is shown, and
/// its answers in the current types.
mod legacy {
    use super::bindings::paved::policy::types as current;
    use super::bindings_0_1::paved::policy::types as old;

    fn action(a: current::Action) -> old::Action {
        match a {
            current::Action::Deploy => old::Action::Deploy,
            current::Action::Rollback => old::Action::Rollback,
            // 0.1.0 has no case of its own for it: the same database input.
            current::Action::ProvisionDatabase | current::Action::DeprovisionDatabase => old::Action::ProvisionDatabase,
        }
    }

    /// The request without what 0.1.0 cannot express (the admission context).
    pub(super) fn request(r: &current::Request) -> old::Request {
        old::Request {
            action: action(r.action),
            app: r.app.clone(),
            team: r.team.clone(),
            environment: r.environment.clone(),
            image: r.image.clone(),
            replicas: r.replicas,
            escape_hatches: r.escape_hatches.clone(),
            database: r.database.as_ref().map(|d| old::Database { engine: d.engine.clone(), size: d.size.clone() }),
            settings: r.settings.clone(),
            objects: r.objects.clone(),
        }
    }

    pub(super) fn info(i: old::Info) -> current::Info {
        current::Info {
            name: i.name,
            version: i.version,
            description: i.description,
            actions: i
                .actions
                .into_iter()
                .map(|a| match a {
                    old::Action::Deploy => current::Action::Deploy,
                    old::Action::Rollback => current::Action::Rollback,
                    old::Action::ProvisionDatabase => current::Action::ProvisionDatabase,
                })
                .collect(),
        }
    }

    pub(super) fn decision(d: old::Decision) -> current::Decision {
        current::Decision {
            violations: d
                .violations
                .into_iter()
                .map(|v| current::Violation {
                    code: v.code,
                    message: v.message,
                    hint: v.hint,
                    object: v.object,
                    path: v.path,
                    severity: match v.severity {
                        old::Severity::Deny => current::Severity::Deny,
                        old::Severity::Warn => current::Severity::Warn,
                    },
                })
                .collect(),
            mutated: d.mutated,
        }
    }
}
