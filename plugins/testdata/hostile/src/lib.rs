//! `hostile`: a test fixture of the paved policy host — one component, many attacks.
//!
//! The attack is picked by the string setting `attack` (in the request's settings JSON).
//! Without it (or with an unknown value) the component is a well-behaved policy that
//! allows everything, so the same component also serves as a "good" plugin.
//!
//! Each attack, and what the host is expected to do about it:
//!
//! - `loop`: spins forever on a `black_box`ed counter (the optimiser cannot remove it).
//!   Host: interrupts it at the epoch deadline (`limits.timeout_ms`) and reports a timeout.
//! - `memory`: allocates 1 MiB chunks (`try_reserve_exact`), writes every 4 KiB page, keeps
//!   them all, until the allocator fails; then returns
//!   `Err("memory: the allocator failed after N MiB: …")`.
//!   Host: caps linear memory with `StoreLimits` (`limits.memory_mib`), so `memory.grow`
//!   fails and N < memory_mib. (With `trap_on_grow_failure(true)` the guest traps instead.)
//! - `recursion`: non-tail recursion with a `black_box`ed frame, without end.
//!   Host: a trap — "out of bounds memory access" when the 64 KiB shadow stack (laid out
//!   first in linear memory) runs past address 0, or "call stack exhausted" if wasmtime's
//!   `max_wasm_stack` is hit first. Either way a plugin failure, never a host crash.
//! - `big-output`: builds a string of `size_mib` MiB (setting, default 1024 = 1 GiB) with
//!   infallible allocation and returns it as a deny violation's message.
//!   Host: 1 GiB cannot be allocated under the memory cap, so Rust aborts ("memory allocation
//!   of 1073741824 bytes failed" on stderr) and the guest traps (`unreachable`). With a
//!   small `size_mib` the output really comes back: the host must bound what it reports.
//! - `stdout-flood`: writes `size_mib` MiB (default 1024) to stdout in 64 KiB `write_all`s.
//!   A failed write returns `Err("stdout-flood: write failed after N bytes: …")`; finishing
//!   returns a warn violation `stdout-flood: wrote N bytes`.
//!   Host: captures stdout into a bounded buffer (the pipe errors or traps when full) and/or
//!   times out; it never buffers 1 GiB.
//! - `read-file`: `std::fs::read_to_string("/etc/passwd")`. Success → a deny violation
//!   (code `read-file`) whose message contains the file; failure →
//!   `Err("read /etc/passwd: …")`.
//!   Host: no preopen covers `/etc`, so the read fails and the content never appears.
//! - `write-outside`: `std::fs::write`s, in order, `/data/../escape.txt`, `/tmp/escape.txt`,
//!   `/escape.txt` and `/data/new.txt`, one deny violation each (code `write`, message
//!   `write <path>: succeeded` or `write <path>: failed: <error>`); then reads
//!   `/data/allowed.txt` into a warn violation (code `read-granted`, message
//!   `read /data/allowed.txt: <content>` or `read /data/allowed.txt: failed: <error>`).
//!   Host: every write fails (no escape from the preopen, no other preopen, the granted dir
//!   is read-only); the read of the granted dir succeeds.
//! - `env`: one deny violation, code `env`, message `vars=[K=V, …] args=[A, …]`.
//!   Host: no env vars and no args, so the message is exactly `vars=[] args=[]`.
//! - `socket`: TCP connect to `127.0.0.1:<port>` (setting `port`, default 80) with std's
//!   `TcpStream` (wasi-libc over `wasi:sockets/tcp`), a name lookup of `example.com`
//!   (`wasi:sockets/ip-name-lookup`), and a UDP `send_to` the same address
//!   (`wasi:sockets/udp`). All refused → `Err("tcp connect …: …; lookup example.com: …;
//!   udp send_to …: …")`. Anything that works → one deny violation each (`connected`,
//!   `resolved`, `udp-sent`) plus a warn `refused` listing the errors of the others.
//!   Host: denies TCP, UDP and name lookup, so the result is the `Err`.
//! - `panic`: `panic!("hostile panic")`; the plugins' release profile has `panic = "abort"`.
//!   Host: the panic hook writes `hostile panic` to stderr, then the guest traps
//!   (`unreachable`); a plugin failure.
//! - `trap`: `core::arch::wasm32::unreachable()`.
//!   Host: a trap (`unreachable`); a plugin failure.
//! - `sleep`: sleeps an hour in a host call (a clock subscription and a poll), then returns
//!   `Err("woke up")`.
//!   Host: cuts the clock subscription at the deadline and reports a timeout.
//! - `sleep-then-allow`: sleeps `sleep_ms` (setting, default one hour) in a host call, then
//!   allows: the answer comes back after the deadline, without any wasm code running long
//!   enough to be interrupted.
//!   Host: an answer that arrives after the deadline is a timeout, whatever it says.
//! - `stderr`: writes a line to stderr (a blocking WASI write and flush, as every Rust panic
//!   message is), then allows.
//!   Host: the write works from any caller, also one inside a tokio runtime; allows.
//! - `mutate`: returns every object with an extra label, although its manifest does not say
//!   `mutating = true`.
//!   Host: refuses the mutation as a plugin failure. (With `mutating = true` in a copy of the
//!   manifest, it is an accepted mutation.)
//!
//! `metadata()`, which the host calls at load, takes no settings: its attack is the content of
//! the file `/data/metadata-attack` of the granted directory (a test writes it into a copy of
//! this plugin): `panic`, `stderr` (writes a line to stderr, then answers), `sleep` (sleeps an
//! hour, then answers) or `loop`; no file (the repository's copy), or anything else, answers
//! normally. Reading that file is itself a blocking WASI call (an open), at every load.
//! Host: a load from any caller (also inside a tokio runtime) survives it; a failing
//! `metadata()` is a load error naming the failure.
//! - anything else (or no `attack`): allows, no violations.

use std::hint::black_box;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};

use paved_policy_sdk::{Action, Decision, Input, Policy, Violation};

/// The component.
pub struct Hostile;

const MIB: usize = 1 << 20;

/// The size setting of `big-output` and `stdout-flood`, in MiB (default 1 GiB).
fn size_mib(input: &Input) -> usize {
    input.setting("size_mib").and_then(|v| v.as_u64()).map_or(1024, |n| n as usize)
}

/// Spins forever; `black_box` keeps the optimiser from proving the loop side-effect free.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB chunks until the allocator fails.
fn exhaust_memory() -> Result<Decision, String> {
    // Room for 4 GiB of chunk handles up front, so the bookkeeping never reallocates.
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(4096);
    loop {
        let mut chunk = Vec::new();
        if let Err(e) = chunk.try_reserve_exact(MIB) {
            let held = chunks.len();
            drop(chunks);
            return Err(format!("memory: the allocator failed after {held} MiB: {e}"));
        }
        chunk.resize(MIB, 0);
        for page in (0..MIB).step_by(4096) {
            chunk[page] = black_box(0xa5);
        }
        chunks.push(black_box(chunk));
    }
}

/// Recurses without end; the frame is `black_box`ed and used after the call, so the call is
/// neither a tail call nor turned into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 8]);
    // Never true (the depth cannot reach it before the stack runs out); it keeps the
    // `unconditional_recursion` lint quiet.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(black_box(depth + 1));
    black_box(frame)[(depth % 8) as usize].wrapping_add(below)
}

/// Returns a `size_mib` string as a violation's message (infallible allocation).
fn big_output(input: &Input) -> Result<Decision, String> {
    let message = "x".repeat(size_mib(input).saturating_mul(MIB));
    let mut decision = Decision::allow();
    decision.push(Violation::deny("big-output", message));
    Ok(decision)
}

/// Writes `size_mib` MiB to stdout in 64 KiB writes.
fn stdout_flood(input: &Input) -> Result<Decision, String> {
    let total = size_mib(input).saturating_mul(MIB);
    let mut chunk = vec![b'x'; 64 * 1024];
    *chunk.last_mut().expect("non-empty") = b'\n';
    let mut stdout = std::io::stdout().lock();
    let mut written = 0usize;
    while written < total {
        stdout.write_all(&chunk).map_err(|e| format!("stdout-flood: write failed after {written} bytes: {e}"))?;
        written += chunk.len();
    }
    stdout.flush().map_err(|e| format!("stdout-flood: flush failed after {written} bytes: {e}"))?;
    let mut decision = Decision::allow();
    decision.push(Violation::warn("stdout-flood", format!("stdout-flood: wrote {written} bytes")));
    Ok(decision)
}

/// Reads `/etc/passwd`, which no preopen covers.
fn read_file() -> Result<Decision, String> {
    let content = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("read /etc/passwd: {e}"))?;
    let mut decision = Decision::allow();
    decision.push(Violation::deny("read-file", format!("read /etc/passwd:\n{content}")));
    Ok(decision)
}

/// Writes outside the sandbox and into the read-only granted dir; reads the granted dir.
fn write_outside() -> Result<Decision, String> {
    let mut decision = Decision::allow();
    for path in ["/data/../escape.txt", "/tmp/escape.txt", "/escape.txt", "/data/new.txt"] {
        let result = match std::fs::write(path, b"written by the hostile paved policy fixture\n") {
            Ok(()) => "succeeded".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        decision.push(Violation::deny("write", format!("write {path}: {result}")));
    }
    let read = std::fs::read_to_string("/data/allowed.txt").unwrap_or_else(|e| format!("failed: {e}"));
    decision.push(Violation::warn("read-granted", format!("read /data/allowed.txt: {read}")));
    Ok(decision)
}

/// Reports the environment variables and arguments.
fn env() -> Result<Decision, String> {
    let vars: Vec<String> =
        std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect();
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut decision = Decision::allow();
    decision.push(Violation::deny("env", format!("vars=[{}] args=[{}]", vars.join(", "), args.join(", "))));
    Ok(decision)
}

/// Tries TCP, a name lookup and UDP.
fn socket(input: &Input) -> Result<Decision, String> {
    let port = input.setting("port").and_then(|v| v.as_u64()).map_or(80, |p| p as u16);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut decision = Decision::allow();
    let mut errors = Vec::new();

    match TcpStream::connect(target) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"hostile paved policy fixture\n");
            decision.push(Violation::deny("connected", format!("connected to {target}")));
        }
        Err(e) => errors.push(format!("tcp connect {target}: {e}")),
    }

    match ("example.com", 80).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<String> = addrs.map(|a| a.to_string()).collect();
            decision.push(Violation::deny("resolved", format!("resolved example.com to [{}]", addrs.join(", "))));
        }
        Err(e) => errors.push(format!("lookup example.com: {e}")),
    }

    let udp = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))).and_then(|s| s.send_to(b"hostile", target));
    match udp {
        Ok(n) => decision.push(Violation::deny("udp-sent", format!("sent {n} bytes over UDP to {target}"))),
        Err(e) => errors.push(format!("udp send_to {target}: {e}")),
    }

    if decision.is_allowed() {
        return Err(errors.join("; "));
    }
    if !errors.is_empty() {
        decision.push(Violation::warn("refused", errors.join("; ")));
    }
    Ok(decision)
}

impl Policy for Hostile {
    const NAME: &'static str = "hostile";
    const DESCRIPTION: &'static str =
        "Test fixture: attacks the host when the `attack` setting asks it to; allows otherwise.";
    const ACTIONS: &'static [Action] = &[Action::Deploy, Action::Rollback, Action::ProvisionDatabase];

    fn evaluate(input: &Input) -> Result<Decision, String> {
        match input.setting("attack").and_then(|v| v.as_str()).unwrap_or("") {
            "loop" => spin(),
            "memory" => exhaust_memory(),
            "recursion" => Err(format!("recursion returned {}", recurse(0))),
            "big-output" => big_output(input),
            "stdout-flood" => stdout_flood(input),
            "read-file" => read_file(),
            "write-outside" => write_outside(),
            "env" => env(),
            "socket" => socket(input),
            "panic" => panic!("hostile panic"),
            // `unreachable` is a safe intrinsic: the `unreachable` instruction, an immediate trap.
            "trap" => core::arch::wasm32::unreachable(),
            "mutate" => mutate(input),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Err("woke up".into())
            }
            "sleep-then-allow" => {
                let ms = input.setting("sleep_ms").and_then(|v| v.as_u64()).unwrap_or(3_600_000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(Decision::allow())
            }
            "stderr" => {
                eprintln!("hostile: a line on stderr");
                Ok(Decision::allow())
            }
            _ => Ok(Decision::allow()),
        }
    }
}

// `export_policy!` by hand, with a `metadata()` that attacks too (see the crate's docs).
impl paved_policy_sdk::bindings::exports::paved::policy::policy::Guest for Hostile {
    fn metadata() -> paved_policy_sdk::bindings::paved::policy::types::Info {
        let attack = std::fs::read_to_string("/data/metadata-attack").unwrap_or_default();
        match attack.trim() {
            "panic" => panic!("hostile metadata panic"),
            "stderr" => eprintln!("hostile: metadata writes to stderr"),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "loop" => spin(),
            _ => {}
        }
        paved_policy_sdk::__metadata::<Hostile>()
    }

    fn evaluate(
        request: paved_policy_sdk::bindings::paved::policy::types::Request,
    ) -> Result<paved_policy_sdk::bindings::paved::policy::types::Decision, String> {
        paved_policy_sdk::__evaluate::<Hostile>(request)
    }
}

paved_policy_sdk::bindings::__export_plugin!(Hostile with_types_in paved_policy_sdk::bindings);

/// `mutate`: an undeclared mutation (a label on every object).
fn mutate(input: &Input) -> Result<Decision, String> {
    let mut objects = input.objects()?.into_owned();
    for o in &mut objects {
        if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.insert("labels".into(), paved_policy_sdk::json!({"hostile": "was-here"}));
        }
    }
    Ok(Decision { mutated: Some(objects), ..Decision::allow() })
}
