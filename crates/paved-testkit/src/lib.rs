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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A throw-away PostgreSQL server on 127.0.0.1 and a free port, stopped and deleted on drop.
///
/// Uses the PostgreSQL binaries of the machine (`/usr/lib/postgresql/*/bin`, else `PATH`).
/// `initdb` refuses to run as root, so as root the data directory is owned by the
/// `postgres` user and the server runs as that user (`runuser`). Local connections use
/// password authentication with the superuser `postgres` / [`Postgres::PASSWORD`].
#[derive(Debug)]
pub struct Postgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl Postgres {
    /// The superuser password.
    pub const PASSWORD: &'static str = "paved-test";

    fn find_bin() -> Option<std::path::PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop().or_else(|| find_tool("initdb").and_then(|p| p.parent().map(Path::to_path_buf)))
    }

    /// Starts a server, or returns `None` (skip) when PostgreSQL is not installed outside CI.
    ///
    /// # Panics
    /// When the server cannot start, or in CI when PostgreSQL is missing.
    pub fn start() -> Option<Self> {
        let Some(bin) = Self::find_bin() else {
            if in_ci() {
                panic!("PostgreSQL is required in CI: apt-get install postgresql-15");
            }
            eprintln!("SKIPPED: PostgreSQL binaries not found; CI=true makes this a failure");
            return None;
        };
        let root = std::env::temp_dir().join(format!("paved-pg-{}-{}", std::process::id(), free_port()));
        let data = root.join("data");
        std::fs::create_dir_all(&data).expect("create the data directory");
        let as_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, Self::PASSWORD).expect("write the password file");
        if as_root {
            let status = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(&root).status();
            assert!(status.is_ok_and(|s| s.success()), "chown of {} to postgres failed", root.display());
        }
        let port = free_port();
        let pg = Postgres { dir: root, bin, port };
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                pwfile.to_str().expect("utf-8 path"),
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.dir.display()
        );
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-l",
                pg.dir.join("log").to_str().expect("utf-8"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        Some(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let as_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut cmd = if as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap_or_else(|e| panic!("{tool} did not start: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres://` URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/{database}", Self::PASSWORD, self.port)
    }

    /// A `psql` command connected to `database` (quiet, stop on the first error).
    pub fn psql(&self, database: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin.join("psql"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", database])
            .env("PGPASSWORD", Self::PASSWORD);
        cmd
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = std::panic::catch_unwind(|| {
            self.run("pg_ctl", &["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"])
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_starts_and_answers() {
        let Some(pg) = Postgres::start() else { return };
        let out = pg.psql("postgres").args(["-At", "-c", "SELECT 40 + 2"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        // Password authentication is on: a wrong password is refused.
        let denied = pg.psql("postgres").env("PGPASSWORD", "wrong").args(["-c", "SELECT 1"]).output().unwrap();
        assert!(!denied.status.success());
    }
}
