//! The admin password of a database server and the credentials generated for it never show
//! up in tracing output (at TRACE), `Debug` output or errors of `VaultDbProvisioner`, on
//! PostgreSQL and on MySQL (MariaDB).
//! (Alone in its test binary: no concurrent test touches the tracing callsites.)

mod common;

use common::db::{connect, creds, mariadb, mysql_connect, psql, request};
use common::{bao, error_text, store};
use paved_core::{DatabaseRequest, DbEngine, DbProvisioner};
use paved_testkit::{MariaDb, OpenBao, Postgres};
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

const ADMIN_PASSWORD: &str = "admin-canary-3f9a0d";

#[tokio::test]
async fn admin_password_and_generated_credentials_never_leak() {
    let Some(bao) = bao() else { return };
    let capture = paved_testkit::CapturedLogs::start();

    // Every path on each engine: provision, credentials, status, deprovision, a wrong admin
    // password, a server that is gone.
    let mut shown = String::new();
    let mut passwords = Vec::new();
    if let Some(pg) = Postgres::start() {
        psql(&pg, &format!("CREATE ROLE vault_admin SUPERUSER LOGIN PASSWORD '{ADMIN_PASSWORD}'"));
        let port = pg.port();
        let req = request("payments", "api", "dev");
        let password = exercise(&bao, DbEngine::Postgres, port, &req, &mut shown).await;
        connect(&pg, "payments__api__dev", &password).await.unwrap();
        passwords.push(password.1);
        finish(&bao, DbEngine::Postgres, port, &req, &mut shown).await;
        drop(pg);
        let text = gone(&bao, DbEngine::Postgres, port, &req, &mut shown).await;
        assert!(text.contains("PostgreSQL runs"), "{text}");
    }
    if let Some(db) = MariaDb::start() {
        mariadb(
            &db,
            &format!(
                "CREATE USER vault_admin@'127.0.0.1' IDENTIFIED BY '{ADMIN_PASSWORD}'; \
                 GRANT ALL PRIVILEGES ON *.* TO vault_admin@'127.0.0.1' WITH GRANT OPTION"
            ),
        );
        let port = db.port();
        let req = DatabaseRequest::new("payments", "api", "mysql", "dev", "small").unwrap();
        let password = exercise(&bao, DbEngine::Mysql, port, &req, &mut shown).await;
        mysql_connect(&db, "payments__api__dev", &password).await.unwrap().disconnect().await.unwrap();
        passwords.push(password.1);
        finish(&bao, DbEngine::Mysql, port, &req, &mut shown).await;
        drop(db);
        let text = gone(&bao, DbEngine::Mysql, port, &req, &mut shown).await;
        assert!(text.contains("MySQL runs"), "{text}");
    }

    let logs = capture.stop();
    if passwords.is_empty() {
        return; // Neither server is installed here (outside CI).
    }
    assert!(logs.contains("database provisioned") && logs.contains("vault.db.deprovision"), "{logs}");
    for (name, text) in [("logs", &logs), ("debug and errors", &shown)] {
        assert!(!text.contains(ADMIN_PASSWORD), "the admin password leaked into {name}:\n{text}");
        for password in &passwords {
            assert!(!text.contains(password.as_str()), "a generated password leaked into {name}:\n{text}");
        }
    }
}

fn server(engine: DbEngine, port: u16, password: &str) -> DbServer {
    DbServer::new(engine, "127.0.0.1", port, "vault_admin", SecretString::from(password.to_string())).unwrap()
}

/// Provisions, reads credentials and the status; returns the credentials.
async fn exercise(
    bao: &OpenBao,
    engine: DbEngine,
    port: u16,
    req: &DatabaseRequest,
    shown: &mut String,
) -> (String, String) {
    let server = server(engine, port, ADMIN_PASSWORD);
    let prov = VaultDbProvisioner::new(store(bao).await, server.clone());
    *shown += &format!("{server:?}\n{prov:?}\n{:?}", prov.provision(req).await.unwrap());
    let credentials = creds(bao, &prov.role_name(req).unwrap());
    *shown += &format!("{:?}", prov.status(req).await.unwrap());
    credentials
}

/// Deprovisions, then fails with a wrong admin password.
async fn finish(bao: &OpenBao, engine: DbEngine, port: u16, req: &DatabaseRequest, shown: &mut String) {
    let prov = VaultDbProvisioner::new(store(bao).await, server(engine, port, ADMIN_PASSWORD));
    prov.deprovision(req, true).await.unwrap();
    let wrong = VaultDbProvisioner::new(store(bao).await, server(engine, port, "nope"));
    let e = wrong.provision(req).await.unwrap_err();
    *shown += &error_text(&e);
}

/// Fails against a server that is gone; returns the error text.
async fn gone(bao: &OpenBao, engine: DbEngine, port: u16, req: &DatabaseRequest, shown: &mut String) -> String {
    let prov = VaultDbProvisioner::new(store(bao).await, server(engine, port, ADMIN_PASSWORD));
    let e = prov.provision(req).await.unwrap_err();
    let text = error_text(&e);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    *shown += &text;
    text
}
