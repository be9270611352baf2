//! The admin password of a database server and the credentials generated for it never show
//! up in tracing output (at TRACE), `Debug` output or errors of `VaultDbProvisioner`.
//! (Alone in its test binary: no concurrent test touches the tracing callsites.)

mod common;

use common::db::{connect, creds, psql, request};
use common::{bao, error_text, store};
use paved_core::{DbEngine, DbProvisioner};
use paved_testkit::Postgres;
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn admin_password_and_generated_credentials_never_leak() {
    const ADMIN_PASSWORD: &str = "admin-canary-3f9a0d";
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    psql(&pg, &format!("CREATE ROLE vault_admin SUPERUSER LOGIN PASSWORD '{ADMIN_PASSWORD}'"));

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server =
        DbServer::new(DbEngine::Postgres, "127.0.0.1", pg.port(), "vault_admin", SecretString::from(ADMIN_PASSWORD))
            .unwrap();
    let prov = VaultDbProvisioner::new(store(&bao).await, server.clone());
    let req = request("payments", "api", "dev");
    let mut shown = format!("{server:?}\n{prov:?}\n{:?}", prov.provision(&req).await.unwrap());
    let (user, password) = creds(&bao, "payments-api-dev");
    connect(&pg, "api_dev", &(user.clone(), password.clone())).await.unwrap();
    shown += &format!("{:?}", prov.status(&req).await.unwrap());
    prov.deprovision(&req, true).await.unwrap();
    // Error paths: a wrong admin password, a server that is gone.
    let wrong =
        DbServer::new(DbEngine::Postgres, "127.0.0.1", pg.port(), "vault_admin", SecretString::from("nope")).unwrap();
    let e = VaultDbProvisioner::new(store(&bao).await, wrong).provision(&req).await.unwrap_err();
    shown += &error_text(&e);
    let port = pg.port();
    drop(pg);
    let gone = DbServer::new(DbEngine::Postgres, "127.0.0.1", port, "vault_admin", SecretString::from(ADMIN_PASSWORD))
        .unwrap();
    let e = VaultDbProvisioner::new(store(&bao).await, gone).provision(&req).await.unwrap_err();
    let text = error_text(&e);
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("PostgreSQL runs"), "{text}");
    shown += &text;

    drop(_guard);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("database provisioned") && logs.contains("vault.db.deprovision"), "{logs}");
    for (name, text) in [("logs", &logs), ("debug and errors", &shown)] {
        assert!(!text.contains(ADMIN_PASSWORD), "the admin password leaked into {name}:\n{text}");
        assert!(!text.contains(&password), "a generated password leaked into {name}:\n{text}");
    }
}
