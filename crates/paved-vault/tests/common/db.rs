//! Helpers of the database provisioner tests: a provisioner on the test servers, generated
//! credentials, connections and queries as the superuser (`psql`, `mariadb`).

use paved_core::{DatabaseRequest, DbEngine};
use paved_testkit::{MariaDb, OpenBao, Postgres};
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

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
    let out = run_bao(bao, &["read", "-format=json", &format!("database/creds/{role}")]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let data = &json["data"];
    (data["username"].as_str().unwrap().to_string(), data["password"].as_str().unwrap().to_string())
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
