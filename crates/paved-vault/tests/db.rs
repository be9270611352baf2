//! `VaultDbProvisioner` against a real OpenBao dev server and a real PostgreSQL server, both
//! started by the tests: the `DbProvisioner` behaviour suite, then what only Vault on
//! PostgreSQL shows.

mod common;

use std::sync::Arc;

use common::db::{PgProbe, assert_nothing_in_vault, check_vault_bookkeeping, provisioner, psql, request, run_suite};
use common::{bao, error_text, store};
use paved_core::{DatabaseRequest, DbEngine, DbProvisioner};
use paved_testkit::Postgres;
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

#[tokio::test]
async fn vault_on_postgres_passes_the_db_provisioner_suite() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let (bao, pg) = (Arc::new(bao), Arc::new(pg));
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    assert_eq!(prov.name(), "vault");
    run_suite(prov, DbEngine::Postgres, Arc::new(PgProbe { bao: bao.clone(), pg: pg.clone() })).await;
}

#[tokio::test]
async fn vault_bookkeeping_on_postgres() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    let payments = request("payments", "payment-service", "dev");
    check_vault_bookkeeping(&bao, &prov, &payments, pg.port(), Postgres::PASSWORD).await;
}

#[tokio::test]
async fn wrong_server_settings_are_clear_errors_and_create_nothing() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    let databases = psql(&pg, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
    let roles = psql(&pg, "SELECT count(*) FROM pg_roles");

    // An engine the provisioner cannot create databases on, and one the server does not run.
    let e = DbServer::new(DbEngine::Mongodb, "db", 27017, "admin", SecretString::from("x")).unwrap_err();
    assert!(paved_core::Error::from(e).hint().unwrap().contains("postgres"));
    let mongo = DatabaseRequest::new("payments", "api", "mongodb", "dev", "small").unwrap();
    assert!(prov.provision(&mongo).await.unwrap_err().hint().unwrap().contains("postgres"));
    let mysql = DatabaseRequest::new("payments", "api", "mysql", "dev", "small").unwrap();
    let e = prov.provision(&mysql).await.unwrap_err();
    assert!(error_text(&e).contains("runs postgres"), "{}", error_text(&e));

    // A missing KV mount.
    let server =
        DbServer::new(DbEngine::Postgres, "127.0.0.1", pg.port(), "postgres", SecretString::from(Postgres::PASSWORD))
            .unwrap();
    let no_kv = VaultDbProvisioner::new(store(&bao).await.with_mount("no-such-kv"), server);
    let e = no_kv.provision(&request("payments", "api", "dev")).await.unwrap_err();
    assert!(error_text(&e).contains("no-such-kv"), "{}", error_text(&e));
    assert!(e.hint().unwrap().contains("bao secrets"), "{}", error_text(&e));

    // A wrong admin password: a clear error that never shows the password.
    let wrong = provisioner(&bao, &pg, "wrong-canary-7c1e").await;
    let e = wrong.provision(&request("payments", "api", "dev")).await.unwrap_err();
    let text = error_text(&e);
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("admin username and password"), "{text}");
    assert!(!text.contains("wrong-canary") && !format!("{wrong:?}").contains("wrong-canary"), "{text}");

    // Nothing was created in Vault or PostgreSQL.
    assert_nothing_in_vault(&bao);
    assert_eq!(psql(&pg, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases);
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_roles"), roles);
}
