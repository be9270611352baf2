//! Helpers of the database provisioner tests: a provisioner on the test servers, generated
//! credentials, connections and `psql` queries.

use paved_core::{DatabaseRequest, DbEngine};
use paved_testkit::{OpenBao, Postgres};
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
