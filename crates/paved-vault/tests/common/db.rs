//! Helpers of the database provisioner tests: a provisioner on the test servers, generated
//! credentials, connections and queries as the superuser (`psql`, `mariadb`), the probes that
//! let the `DbProvisioner` behaviour suite reach each engine, and the checks of what the
//! provisioner keeps in Vault (the same on every engine).

use std::sync::Arc;

use async_trait::async_trait;
use paved_core::{DatabaseInfo, DatabaseRequest, DbEngine, DbProvisioner};
use paved_testkit::behavior::db_provisioner::{DbCredentials, DbProbe, DbSession};
use paved_testkit::{MariaDb, OpenBao, Postgres};
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::{ExposeSecret, SecretString};

use super::{run_bao, store};

pub async fn provisioner(bao: &OpenBao, pg: &Postgres, password: &str) -> VaultDbProvisioner {
    let server =
        DbServer::new(DbEngine::Postgres, "127.0.0.1", pg.port(), "postgres", SecretString::from(password.to_string()))
            .unwrap();
    VaultDbProvisioner::new(store(bao).await, server)
}

pub fn request(team: &str, service: &str, env: &str) -> DatabaseRequest {
    DatabaseRequest::new(team, service, "postgres", env, "small").unwrap()
}

/// Credentials from `database/creds/{role}` via the `bao` CLI: (username, password).
pub fn creds(bao: &OpenBao, role: &str) -> (String, String) {
    creds_at(bao, &format!("database/creds/{role}")).unwrap()
}

/// Credentials read from a creds path via the `bao` CLI, or its error.
fn creds_at(bao: &OpenBao, path: &str) -> Result<(String, String), String> {
    let out = bao.command().args(["read", "-format=json", path]).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let field = |k: &str| json["data"][k].as_str().map(str::to_string).ok_or_else(|| format!("no {k} in {path}"));
    Ok((field("username")?, field("password")?))
}

pub async fn connect(
    pg: &Postgres,
    database: &str,
    (user, password): &(String, String),
) -> Result<tokio_postgres::Client, String> {
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(pg.port()).user(user).password(password.as_str()).dbname(database);
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Ok(client)
        }
        Err(e) => Err(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())),
    }
}

/// One value from `psql` as the superuser.
pub fn psql(pg: &Postgres, sql: &str) -> String {
    let out = pg.psql("postgres").args(["-At", "-c", sql]).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn database_count(pg: &Postgres, name: &str) -> String {
    psql(pg, &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"))
}

/// A provisioner on the MariaDB test server, administered as root with `password`.
pub async fn mysql_provisioner(bao: &OpenBao, db: &MariaDb, password: &str) -> VaultDbProvisioner {
    let server =
        DbServer::new(DbEngine::Mysql, "127.0.0.1", db.port(), "root", SecretString::from(password.to_string()))
            .unwrap();
    VaultDbProvisioner::new(store(bao).await, server)
}

pub fn mysql_request(team: &str, service: &str, env: &str) -> DatabaseRequest {
    DatabaseRequest::new(team, service, "mysql", env, "small").unwrap()
}

/// A MySQL connection over TCP as `user` to `database` (empty: none), or the server's message.
pub async fn mysql_connect(
    db: &MariaDb,
    database: &str,
    (user, password): &(String, String),
) -> Result<mysql_async::Conn, String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(db.port())
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(database).filter(|d| !d.is_empty()))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.map_err(|e| e.to_string())
}

/// Runs `sql` on a connection, answering the first column of the first row, or the error.
pub async fn mysql_query(conn: &mut mysql_async::Conn, sql: &str) -> Result<Option<String>, String> {
    use mysql_async::prelude::Queryable;
    conn.query_first::<mysql_async::Value, _>(sql)
        .await
        .map(|v| {
            v.map(|v| match v {
                mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                other => other.as_sql(true),
            })
        })
        .map_err(|e| e.to_string())
}

/// One value (or nothing) from the `mariadb` client as root.
pub fn mariadb(db: &MariaDb, sql: &str) -> String {
    let out = db.client("").args(["-e", sql]).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn schema_count(db: &MariaDb, name: &str) -> String {
    mariadb(db, &format!("SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"))
}

/// Credentials an app gets for `info`: read from its creds path, as an app reads them.
fn issue(bao: &OpenBao, info: &DatabaseInfo) -> Result<DbCredentials, String> {
    let path = info.credentials_path.as_deref().ok_or("no credentials path")?;
    let (username, password) = creds_at(bao, path)?;
    Ok(DbCredentials { username, password: SecretString::from(password) })
}

fn pair(c: &DbCredentials) -> (String, String) {
    (c.username.clone(), c.password.expose_secret().to_string())
}

/// Secrets engine roles and connections, as `role:NAME` and `connection:NAME` (none when the
/// database mount does not exist yet).
fn vault_inventory(bao: &OpenBao) -> Vec<String> {
    let mut entries = Vec::new();
    for (kind, path) in [("role", "database/roles"), ("connection", "database/config")] {
        let out = bao.command().args(["list", "-format=json", path]).output().unwrap();
        if out.status.success() {
            let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
            entries.extend(names.into_iter().map(|n| format!("{kind}:{n}")));
        }
    }
    entries
}

/// The `DbProvisioner` suite's view of Vault and a PostgreSQL server.
pub struct PgProbe {
    pub bao: Arc<OpenBao>,
    pub pg: Arc<Postgres>,
}

struct PgSession(tokio_postgres::Client);

#[async_trait]
impl DbSession for PgSession {
    async fn execute(&mut self, sql: &str) -> Result<(), String> {
        self.0
            .batch_execute(sql)
            .await
            .map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))
    }

    async fn query_one(&mut self, sql: &str) -> Result<Option<String>, String> {
        let messages = self.0.simple_query(sql).await.map_err(|e| e.to_string())?;
        Ok(messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or_default().to_string()),
            _ => None,
        }))
    }
}

#[async_trait]
impl DbProbe for PgProbe {
    async fn issue(&self, info: &DatabaseInfo) -> Result<DbCredentials, String> {
        issue(&self.bao, info)
    }

    async fn connect(&self, credentials: &DbCredentials, database: &str) -> Result<Box<dyn DbSession>, String> {
        Ok(Box::new(PgSession(connect(&self.pg, database, &pair(credentials)).await?)))
    }

    async fn inventory(&self) -> Result<Vec<String>, String> {
        let rows = psql(
            &self.pg,
            "SELECT 'database:' || datname FROM pg_database UNION ALL SELECT 'role:' || rolname FROM pg_roles",
        );
        let mut entries: Vec<String> = rows.lines().map(str::to_string).collect();
        entries.extend(vault_inventory(&self.bao));
        entries.sort();
        Ok(entries)
    }
}

/// The `DbProvisioner` suite's view of Vault and a MariaDB server.
pub struct MariaDbProbe {
    pub bao: Arc<OpenBao>,
    pub db: Arc<MariaDb>,
}

struct MariaDbSession(mysql_async::Conn);

#[async_trait]
impl DbSession for MariaDbSession {
    async fn execute(&mut self, sql: &str) -> Result<(), String> {
        use mysql_async::prelude::Queryable;
        self.0.query_drop(sql).await.map_err(|e| e.to_string())
    }

    async fn query_one(&mut self, sql: &str) -> Result<Option<String>, String> {
        mysql_query(&mut self.0, sql).await
    }
}

#[async_trait]
impl DbProbe for MariaDbProbe {
    async fn issue(&self, info: &DatabaseInfo) -> Result<DbCredentials, String> {
        issue(&self.bao, info)
    }

    async fn connect(&self, credentials: &DbCredentials, database: &str) -> Result<Box<dyn DbSession>, String> {
        Ok(Box::new(MariaDbSession(mysql_connect(&self.db, database, &pair(credentials)).await?)))
    }

    async fn inventory(&self) -> Result<Vec<String>, String> {
        let rows = mariadb(
            &self.db,
            "SELECT concat('database:', SCHEMA_NAME) FROM information_schema.SCHEMATA \
             UNION ALL SELECT concat('user:', User, '@', Host) FROM mysql.user",
        );
        let mut entries: Vec<String> = rows.lines().map(str::to_string).collect();
        entries.extend(vault_inventory(&self.bao));
        entries.sort();
        Ok(entries)
    }
}

/// What the provisioner keeps in Vault for `request` on a server at 127.0.0.1:`port` (whose
/// admin password must never show), the
/// same on every engine: its names, the connection info in KV (the creds path, never a
/// password), nothing rewritten when provisioning again, everything removed on deprovisioning.
pub async fn check_vault_bookkeeping(
    bao: &OpenBao,
    prov: &VaultDbProvisioner,
    request: &DatabaseRequest,
    port: u16,
    admin_password: &str,
) {
    let role = "payments_payment-service_dev";
    assert_eq!(
        (request.team.as_str(), request.service.as_str(), request.environment.as_str()),
        ("payments", "payment-service", "dev")
    );
    assert_eq!(prov.role_name(request).unwrap(), role);
    let info = prov.provision(request).await.unwrap();
    assert_eq!(info.database, "payments__payment_service__dev");
    assert_eq!(info.endpoint, Some(("127.0.0.1".to_string(), port)));
    assert_eq!(info.credentials_path.as_deref(), Some("database/creds/payments_payment-service_dev"));
    assert_eq!(info.connection_info_path.as_deref(), Some("secret/database/payments/payment-service/dev"));

    // The connection info in KV, read by the bao CLI: the creds path, never a password.
    let out = run_bao(bao, &["kv", "get", "-format=json", "secret/database/payments/payment-service/dev"]);
    let kv: serde_json::Value = serde_json::from_str(&out).unwrap();
    let data = kv["data"]["data"].as_object().unwrap();
    assert_eq!(data["engine"], request.engine.to_string());
    assert_eq!(data["host"], "127.0.0.1");
    assert_eq!(data["port"], port.to_string());
    assert_eq!(data["database"], "payments__payment_service__dev");
    assert_eq!(data["role"], role);
    assert_eq!(data["credentials_path"], "database/creds/payments_payment-service_dev");
    assert!(!out.contains(admin_password) && !data.keys().any(|k| k.contains("password")), "{out}");

    // Provisioning again rewrites nothing: role, connection and connection info as they were.
    let read = |path: String| {
        let mut v: serde_json::Value = serde_json::from_str(&run_bao(bao, &["read", "-format=json", &path])).unwrap();
        v["data"].take()
    };
    let (role_before, conn_before) = (read(format!("database/roles/{role}")), read(format!("database/config/{role}")));
    let kv_store = store(bao).await;
    let version = kv_store.metadata("database/payments/payment-service/dev").await.unwrap().current_version;
    assert_eq!(prov.provision(request).await.unwrap(), info);
    assert_eq!(read(format!("database/roles/{role}")), role_before);
    assert_eq!(read(format!("database/config/{role}")), conn_before);
    assert_eq!(kv_store.metadata("database/payments/payment-service/dev").await.unwrap().current_version, version);

    // Deprovisioning removes the role, the connection and the connection info.
    prov.deprovision(request, true).await.unwrap();
    for path in [format!("database/roles/{role}"), format!("database/config/{role}")] {
        let out = bao.command().args(["read", &path]).output().unwrap();
        assert!(!out.status.success(), "{path} is still there");
    }
    let out = bao.command().args(["kv", "get", "secret/database/payments/payment-service/dev"]).output().unwrap();
    assert!(!out.status.success(), "the connection info is still there");
}

/// Nothing the provisioner creates exists in Vault: no database mount, no connection info.
pub fn assert_nothing_in_vault(bao: &OpenBao) {
    let mounts = run_bao(bao, &["secrets", "list", "-format=json"]);
    assert!(!mounts.contains("\"database/\""), "{mounts}");
    let out = bao.command().args(["kv", "list", "secret/"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("database"));
}

/// The `DbProvisioner` behaviour suite on `prov`, reaching the server through `probe`.
pub async fn run_suite(prov: VaultDbProvisioner, engine: DbEngine, probe: Arc<dyn DbProbe>) {
    use paved_testkit::behavior::db_provisioner::{DbProvisionerHarness, run};
    let prov: Arc<dyn DbProvisioner> = Arc::new(prov);
    let harness = DbProvisionerHarness::new(prov, engine).refusing(DbEngine::Mongodb).with_probe(probe);
    let report = run(&harness).await;
    assert!(report.skipped.is_empty(), "{report}");
}
