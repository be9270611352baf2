//! Hostile plugins are contained: each attack fails the way its failure policy says, with a
//! clear reason, and the next evaluation of a good plugin still works.

mod support;

use paved_core::{FailurePolicy, Severity};
use paved_policy::{ActionInput, Error, Failure, Outcome, PolicyManifest, PolicySet};
use serde_json::json;
use support::*;

/// Runs one attack (failure policy `fail`), then a good plugin; returns the hostile outcome.
fn attack(attack: &str, extra: serde_json::Value) -> (Outcome, paved_core::PolicyReport) {
    let host = shared_host();
    let mut settings = json!({ "attack": attack });
    settings.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let mut set = PolicySet::new(host.clone());
    set.push(configured(load(&host, "testdata/hostile"), settings));
    let input = ActionInput::objects("production", vec![good_deployment()]);
    let evaluation = set.evaluate(&input);
    let outcome = evaluation.outcomes[0].outcome.clone();
    // The very next evaluation of a good plugin still works.
    let mut good = PolicySet::new(host.clone());
    good.push(configured(load(&host, "disallow-latest-tag"), json!({})));
    let next = good.evaluate(&input);
    assert!(matches!(&next.outcomes[0].outcome, Outcome::Decided(v) if v.is_empty()), "{:?}", next.outcomes[0]);
    (outcome, evaluation.report())
}

/// The failure and the denial the report carries for it.
fn failed(outcome: &Outcome, report: &paved_core::PolicyReport) -> Failure {
    let Outcome::Failed(f) = outcome else { panic!("expected a failure, got {outcome:?}") };
    let denial = report.denials().next().expect("failure_policy fail denies");
    assert_eq!(denial.code, "policy-failure");
    assert!(denial.message.contains(&f.to_string()), "{denial:?}");
    f.clone()
}

#[test]
fn an_infinite_loop_is_stopped_at_the_time_limit() {
    let (o, r) = attack("loop", json!({}));
    assert_eq!(failed(&o, &r), Failure::Timeout { limit_ms: 200 });
    assert!(r.denials().next().unwrap().message.contains("exceeded its time limit of 200 ms"));
}

#[test]
fn sleeping_in_a_host_call_is_stopped_at_the_time_limit() {
    // Woken at the deadline (its clock subscription is cut there), then stopped.
    let (o, r) = attack("sleep", json!({}));
    assert_eq!(failed(&o, &r), Failure::Timeout { limit_ms: 200 });
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let (o, r) = attack("memory", json!({}));
    let f = failed(&o, &r);
    assert!(matches!(f, Failure::MemoryLimit { limit_mib: 32, requested } if requested > 32 << 20), "{f:?}");
    assert!(f.to_string().contains("memory limit of 32 MiB"), "{f}");
}

#[test]
fn deep_recursion_is_a_contained_crash() {
    let (o, r) = attack("recursion", json!({}));
    match failed(&o, &r) {
        Failure::StackOverflow => {}
        Failure::Trap { reason } => assert!(reason.contains("out of bounds memory access"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_1_gib_output_cannot_be_built() {
    let (o, r) = attack("big-output", json!({}));
    let f = failed(&o, &r);
    assert!(matches!(f, Failure::MemoryLimit { limit_mib: 32, requested } if requested > 32 << 20), "{f:?}");
}

#[test]
fn flooding_stdout_is_bounded() {
    let (o, r) = attack("stdout-flood", json!({}));
    assert_eq!(failed(&o, &r), Failure::OutputLimit { limit_kib: 64 });
}

#[test]
fn etc_passwd_is_not_readable() {
    let (o, r) = attack("read-file", json!({}));
    let f = failed(&o, &r);
    let Failure::Error { message } = &f else { panic!("{f:?}") };
    assert!(message.starts_with("read /etc/passwd:"), "{message}");
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let first = passwd.lines().next().unwrap();
    assert!(!format!("{o:?}{r:?}").contains(first), "the file's content leaked");
}

#[test]
fn nothing_can_be_written_and_granted_dirs_are_read_only() {
    let (o, _) = attack("write-outside", json!({}));
    let Outcome::Decided(violations) = o else { panic!("{o:?}") };
    let writes: Vec<_> = violations.iter().filter(|v| v.code == "write").collect();
    assert_eq!(writes.len(), 4, "{violations:?}");
    for w in writes {
        assert!(w.message.contains(": failed:"), "a write succeeded: {}", w.message);
    }
    let read = violations.iter().find(|v| v.code == "read-granted").expect("the granted read");
    assert!(read.message.contains("granted read-only data"), "{}", read.message);
    for escaped in ["escape.txt", "new.txt"] {
        assert!(!plugin_dir("testdata").join(escaped).exists());
        assert!(!plugin_dir("testdata/hostile/data").join(escaped).exists());
    }
    assert!(!std::path::Path::new("/tmp/escape.txt").exists());
}

#[test]
fn the_environment_and_arguments_are_empty() {
    // SAFETY of the test: a variable the plugin must not see.
    let (o, _) = attack("env", json!({}));
    let Outcome::Decided(violations) = o else { panic!("{o:?}") };
    assert_eq!(violations[0].message, "vars=[] args=[]");
}

#[test]
fn sockets_are_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (o, r) = attack("socket", json!({ "port": port }));
    let f = failed(&o, &r);
    let Failure::Error { message } = &f else { panic!("{f:?}") };
    assert!(message.contains("tcp connect") && message.contains("lookup example.com"), "{message}");
    assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "the plugin connected");
}

#[test]
fn a_panic_is_a_crash_with_its_message() {
    let (o, r) = attack("panic", json!({}));
    let Failure::Trap { reason } = failed(&o, &r) else { panic!() };
    assert!(reason.contains("hostile panic"), "{reason}");
}

#[test]
fn a_trap_is_a_crash() {
    let (o, r) = attack("trap", json!({}));
    let Failure::Trap { reason } = failed(&o, &r) else { panic!() };
    assert!(reason.contains("unreachable"), "{reason}");
}

#[test]
fn a_mutation_from_a_plugin_not_marked_mutating_is_refused() {
    let (o, r) = attack("mutate", json!({}));
    assert_eq!(failed(&o, &r), Failure::UndeclaredMutation);
    assert!(r.patch.is_none() && r.mutated.is_none());
}

#[test]
fn failure_policy_ignore_warns_and_lets_the_action_go_on() {
    let host = shared_host();
    let mut c = paved_core::config::PolicyConfig::new(".");
    c.failure_policy = Some(FailurePolicy::Ignore);
    c.settings = json!({ "attack": "trap" }).as_object().cloned().unwrap();
    let mut set = PolicySet::new(host.clone());
    set.push(paved_policy::ConfiguredPolicy::with(load(&host, "testdata/hostile"), &c));
    let report = set.evaluate(&ActionInput::objects("production", vec![good_deployment()])).report();
    assert_eq!(report.denials().count(), 0);
    let w = report.warnings().next().expect("a warning");
    assert_eq!((w.code.as_str(), w.severity), ("policy-failure", Severity::Warn));
}

#[test]
fn an_import_the_host_does_not_provide_is_refused_at_load() {
    let host = shared_host();
    let e = host.load(manifest("testdata/hostile-import")).unwrap_err();
    assert!(matches!(e, Error::Load { .. }), "{e:?}");
    assert!(e.to_string().contains("imports `evil:host/shell"), "{e}");
    assert!(e.hint().unwrap().contains("paved:policy/log"));
}

/// A plugin directory holding `bytes` as its component, pinned to `pin` (or its own hash).
fn fake_plugin(bytes: &[u8], pin: Option<&str>) -> (tempfile::TempDir, PolicyManifest) {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.wasm"), bytes).unwrap();
    let sha = pin
        .map(str::to_string)
        .unwrap_or_else(|| sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect());
    std::fs::write(
        dir.path().join("policy.toml"),
        format!("name = \"fake\"\nversion = \"0.1.0\"\nlanguage = \"rust\"\ncomponent = \"policy.wasm\"\nsha256 = \"{sha}\"\n"),
    )
    .unwrap();
    let m = PolicyManifest::load(dir.path()).unwrap();
    (dir, m)
}

#[test]
fn malformed_bytes_are_refused_at_load() {
    let host = shared_host();
    let (_dir, m) = fake_plugin(b"\0asm\x0d\0\x01\0 definitely not a component", None);
    let e = host.load(m).unwrap_err();
    assert!(e.to_string().contains("not a valid WebAssembly component"), "{e}");
    assert!(e.hint().unwrap().contains("`paved_policy::toolchain::build`"));
}

#[test]
fn a_component_that_does_not_match_its_pin_is_refused() {
    let host = shared_host();
    let good = std::fs::read(manifest("disallow-latest-tag").component_path()).unwrap();
    let (_dir, m) = fake_plugin(&good, Some(&"0".repeat(64)));
    let e = host.load(m).unwrap_err();
    assert!(matches!(e, Error::PinMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("does not match its pin"), "{e}");
    // Unpinned manifests are refused too: only a bare .wasm file named directly needs no pin.
    let (_dir, mut m) = fake_plugin(&good, None);
    m.sha256.clear();
    let e = host.load(m).unwrap_err();
    assert!(e.to_string().contains("no sha256 pin"), "{e}");
}

// Issue 14, item 6: four sandbox holes.

/// A copy of the hostile plugin (manifest, pinned component, granted `data/`) in a directory
/// of its own, `<tmp>/hostile`, with `edit` applied to its policy.toml.
fn hostile_copy(edit: impl Fn(String) -> String) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hostile");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let source = plugin_dir("testdata/hostile");
    std::fs::copy(manifest("testdata/hostile").component_path(), dir.join("policy.wasm")).unwrap();
    std::fs::copy(source.join("data/allowed.txt"), dir.join("data/allowed.txt")).unwrap();
    let text = std::fs::read_to_string(source.join("policy.toml")).unwrap();
    std::fs::write(dir.join("policy.toml"), edit(text)).unwrap();
    (tmp, dir)
}

/// Runs `f` on the thread of a tokio runtime, as an `async fn` of a front end would.
fn on_a_runtime<T>(multi_thread: bool, f: impl FnOnce() -> T) -> T {
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
    .unwrap();
    runtime.block_on(async { f() })
}

/// Issue 14, item 6, "the host aborts": every attack that makes a blocking WASI call (a write
/// to stderr, a panic's message, opening a file, sockets, a sleep) is evaluated from inside a
/// tokio runtime, as a validating and as a mutating policy, and reported as its outcome; the
/// host used to panic ("Cannot start a runtime from within a runtime").
#[test]
fn blocking_wasi_calls_work_from_inside_a_tokio_runtime() {
    let host = shared_host();
    let (_tmp, mutating) = hostile_copy(|t| t.replace("mutating = false", "mutating = true"));
    let input = ActionInput::objects("production", vec![good_deployment()]);
    for multi_thread in [false, true] {
        for dir in [plugin_dir("testdata/hostile"), mutating.clone()] {
            // Loaded and evaluated on the runtime's thread.
            let outcome = |attack: &str| {
                on_a_runtime(multi_thread, || {
                    let mut set = PolicySet::new(host.clone());
                    let plugin = host.load(PolicyManifest::load(&dir).unwrap()).unwrap();
                    set.push(configured(plugin, json!({ "attack": attack })));
                    set.evaluate(&input).outcomes[0].outcome.clone()
                })
            };
            let at = format!("{} (multi-thread: {multi_thread})", dir.display());
            let o = outcome("stderr");
            assert!(matches!(&o, Outcome::Decided(v) if v.is_empty()), "{at}: {o:?}");
            let o = outcome("panic");
            assert!(
                matches!(&o, Outcome::Failed(Failure::Trap { reason }) if reason.contains("hostile panic")),
                "{at}: {o:?}"
            );
            let o = outcome("read-file");
            assert!(
                matches!(&o, Outcome::Failed(Failure::Error { message }) if message.starts_with("read /etc/passwd:")),
                "{at}: {o:?}"
            );
            let o = outcome("socket");
            assert!(
                matches!(&o, Outcome::Failed(Failure::Error { message }) if message.contains("tcp connect")),
                "{at}: {o:?}"
            );
            let o = outcome("sleep");
            assert!(matches!(&o, Outcome::Failed(Failure::Timeout { limit_ms: 200 })), "{at}: {o:?}");
        }
    }
}

/// Issue 14, item 6: `metadata()`, called at load, may make blocking WASI calls too (the
/// fixture opens `/data/metadata-attack` at every load): loading from inside a tokio runtime
/// works, and a `metadata()` that fails is a load error naming why.
#[test]
fn metadata_at_load_works_from_inside_a_tokio_runtime() {
    let host = shared_host();
    for multi_thread in [false, true] {
        let (_tmp, dir) = hostile_copy(|t| t);
        std::fs::write(dir.join("data/metadata-attack"), "stderr").unwrap();
        let plugin = on_a_runtime(multi_thread, || host.load(PolicyManifest::load(&dir).unwrap())).unwrap();
        assert_eq!(plugin.info().name, "hostile");
        std::fs::write(dir.join("data/metadata-attack"), "panic").unwrap();
        let e = on_a_runtime(multi_thread, || host.load(PolicyManifest::load(&dir).unwrap())).unwrap_err();
        assert!(matches!(e, Error::Load { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("metadata() failed: crashed") && text.contains("hostile metadata panic"), "{text}");
    }
}

/// Issue 14, item 6: a plugin that sleeps past its deadline (the sleep is cut there) and then
/// answers "allow" is a timeout, not a pass; so is a `metadata()` that answers late.
#[test]
fn an_answer_after_the_deadline_is_a_timeout() {
    let (o, r) = attack("sleep-then-allow", json!({}));
    assert_eq!(failed(&o, &r), Failure::Timeout { limit_ms: 200 });
    // Control: a short sleep well inside the limit is answered.
    let (o, _) = attack("sleep-then-allow", json!({ "sleep_ms": 1 }));
    assert!(matches!(&o, Outcome::Decided(v) if v.is_empty()), "{o:?}");
    let host = shared_host();
    let (_tmp, dir) = hostile_copy(|t| t);
    std::fs::write(dir.join("data/metadata-attack"), "sleep").unwrap();
    let started = std::time::Instant::now();
    let e = host.load(PolicyManifest::load(&dir).unwrap()).unwrap_err();
    assert!(e.to_string().contains("metadata() failed: exceeded its time limit of 200 ms"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

/// Issue 14, item 6: a `read_only_dirs` directory that is a symlink out of the plugin's
/// directory is refused when the manifest is read and when the plugin is loaded; the files it
/// leads to are never shown to the plugin.
#[test]
#[cfg(unix)]
fn a_read_only_dir_that_is_a_symlink_out_of_the_plugin_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("allowed.txt"), "a secret outside the plugin").unwrap();
    let (_tmp, dir) = hostile_copy(|t| t);
    std::fs::remove_dir_all(dir.join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("data")).unwrap();
    let e = PolicyManifest::load(&dir).unwrap_err();
    assert!(matches!(e, Error::Manifest { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("read_only_dirs \"/data\" = \"data\" resolves to"), "{text}");
    assert!(text.contains("outside the plugin's directory"), "{text}");
    assert!(e.hint().unwrap().contains("not a symlink out of it"), "{:?}", e.hint());
    // A manifest read before the link was made is refused by the host.
    std::fs::remove_file(dir.join("data")).unwrap();
    std::fs::create_dir(dir.join("data")).unwrap();
    let m = PolicyManifest::load(&dir).unwrap();
    std::fs::remove_dir(dir.join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("data")).unwrap();
    let host = shared_host();
    let e = host.load(m).unwrap_err();
    assert!(e.to_string().contains("outside the plugin's directory"), "{e}");
    // A symlink inside the plugin's directory is followed; a missing directory is refused at load.
    std::fs::remove_file(dir.join("data")).unwrap();
    std::fs::create_dir(dir.join("real")).unwrap();
    std::fs::write(dir.join("real/allowed.txt"), "granted read-only data, through a link").unwrap();
    std::os::unix::fs::symlink("real", dir.join("data")).unwrap();
    let mut set = PolicySet::new(host.clone());
    set.push(configured(host.load(PolicyManifest::load(&dir).unwrap()).unwrap(), json!({"attack": "write-outside"})));
    let Outcome::Decided(vs) = &set.evaluate(&ActionInput::objects("dev", vec![good_deployment()])).outcomes[0].outcome
    else {
        panic!()
    };
    assert!(vs.iter().any(|v| v.message.contains("granted read-only data, through a link")), "{vs:?}");
    std::fs::remove_file(dir.join("data")).unwrap();
    let m = PolicyManifest::load(&dir).unwrap();
    let e = host.load(m).unwrap_err();
    assert!(e.to_string().contains("read_only_dirs \"/data\" = \"data\": cannot open"), "{e}");
}

/// Issue 14, item 6: `component = "/dev/zero"` (or any path out of the plugin's directory)
/// is refused as the manifest is read, never read.
#[test]
fn a_component_outside_the_plugin_directory_is_refused() {
    for component in ["/dev/zero", "../disallow-latest-tag/policy.wasm", ""] {
        let (_tmp, dir) =
            hostile_copy(|t| t.replace("component = \"policy.wasm\"", &format!("component = {component:?}")));
        let e = PolicyManifest::load(&dir).unwrap_err();
        assert!(e.to_string().contains(&format!("component {component:?} leaves the plugin's directory")), "{e}");
        assert!(e.hint().unwrap().contains("component = \"policy.wasm\""), "{:?}", e.hint());
    }
    // A symlink out of the directory, to a real component, is refused by the host.
    #[cfg(unix)]
    {
        let (_tmp, dir) = hostile_copy(|t| t);
        std::fs::remove_file(dir.join("policy.wasm")).unwrap();
        std::os::unix::fs::symlink(manifest("testdata/hostile").component_path(), dir.join("policy.wasm")).unwrap();
        let e = shared_host().load(PolicyManifest::load(&dir).unwrap()).unwrap_err();
        assert!(e.to_string().contains("outside the plugin's directory"), "{e}");
    }
}

/// Issue 14, item 6: a component that is not a regular file (a FIFO here; `/dev/zero` in the
/// issue) is refused without being read: a FIFO fed 80 MiB would otherwise be read whole.
#[test]
#[cfg(unix)]
fn a_component_that_is_not_a_regular_file_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo.wasm");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    // A writer of a bounded amount (detached: after the fix nobody ever opens the FIFO).
    let writer = fifo.clone();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(writer).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..80 {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let e = shared_host().load(PolicyManifest::for_component(&fifo)).unwrap_err();
    assert!(e.to_string().contains("is a FIFO, not a regular file, and was not read"), "{e}");
    // Named in a manifest too (the component's name is kept, the file is a FIFO).
    let (_tmp, dir) = hostile_copy(|t| t);
    std::fs::remove_file(dir.join("policy.wasm")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(dir.join("policy.wasm")).status().unwrap().success());
    let e = shared_host().load(PolicyManifest::load(&dir).unwrap()).unwrap_err();
    assert!(e.to_string().contains("is a FIFO, not a regular file"), "{e}");
    assert!(e.is_user_error());
}

/// Issue 14, item 6: a component larger than `HostOptions::max_component_bytes` (64 MiB by
/// default) is refused before it is read.
#[test]
fn a_component_larger_than_the_maximum_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let small = paved_policy::PolicyHost::new(paved_policy::HostOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        max_component_bytes: 64 << 10,
        ..paved_policy::HostOptions::default()
    })
    .unwrap();
    let e = small.load(manifest("disallow-latest-tag")).unwrap_err();
    assert!(e.to_string().contains("is larger than the maximum of 0.1 MiB"), "{e}");
    assert!(e.hint().unwrap().contains("`HostOptions::max_component_bytes`"), "{:?}", e.hint());
    // The default: 64 MiB (a sparse file of 65 MiB costs no disk and is never read).
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.wasm");
    std::fs::File::create(&big).unwrap().set_len(65 << 20).unwrap();
    let e = shared_host().load(PolicyManifest::for_component(&big)).unwrap_err();
    assert!(e.to_string().contains("is larger than the maximum of 64 MiB (65 MiB) and was not read"), "{e}");
    // The largest bundled component (the Python runtime's, ~18 MiB) is well under it.
    assert!(shared_host().load(manifest("restrict-service-types")).is_ok());
}
