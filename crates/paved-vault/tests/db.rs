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

/// Issue 18, hole 1: a database or role of the request's name that paved did not create for
/// this request is never taken over, and nothing is created around it.
#[tokio::test]
async fn foreign_databases_and_roles_are_never_taken_over() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    let api = request("payments", "api", "dev");
    let expect_conflict = |e: paved_core::Error, what: &str| {
        assert_eq!(e.kind(), paved_core::ErrorKind::Conflict, "{what}: {}", error_text(&e));
        assert!(e.to_string().contains("payments__api__dev"), "{what}: {}", error_text(&e));
        assert!(e.hint().is_some_and(|h| h.contains("another service name")), "{what}: {}", error_text(&e));
    };
    let attacks = [
        // A role of that name that paved did not create (it would be adopted with its rights).
        ("CREATE ROLE payments__api__dev NOLOGIN", "DROP ROLE payments__api__dev", "an unmarked role"),
        // Marked by a forger, but privileged: issued credentials would inherit superuser.
        (
            "CREATE ROLE payments__api__dev NOLOGIN SUPERUSER; \
             COMMENT ON ROLE payments__api__dev IS 'paved:team=payments;service=api;env=dev'",
            "DROP ROLE payments__api__dev",
            "a privileged role",
        ),
        // A member of another role: issued credentials would inherit its rights.
        (
            "CREATE ROLE payments__api__dev NOLOGIN IN ROLE pg_read_all_data; \
             COMMENT ON ROLE payments__api__dev IS 'paved:team=payments;service=api;env=dev'",
            "DROP ROLE payments__api__dev",
            "a role in pg_read_all_data",
        ),
        // A database that paved did not create.
        ("CREATE DATABASE payments__api__dev", "DROP DATABASE payments__api__dev", "an unmarked database"),
        // Marked as another request's.
        (
            "CREATE DATABASE payments__api__dev; \
             COMMENT ON DATABASE payments__api__dev IS 'paved:team=search;service=api;env=dev'",
            "DROP DATABASE payments__api__dev",
            "another request's database",
        ),
    ];
    for (setup, cleanup, what) in attacks {
        for statement in setup.split("; ") {
            psql(&pg, statement);
        }
        let databases = psql(&pg, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
        let roles = psql(&pg, "SELECT string_agg(rolname || rolsuper, ',' ORDER BY rolname) FROM pg_roles");
        expect_conflict(prov.provision(&api).await.unwrap_err(), what);
        assert_nothing_in_vault(&bao);
        assert_eq!(psql(&pg, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases, "{what}");
        assert_eq!(psql(&pg, "SELECT string_agg(rolname || rolsuper, ',' ORDER BY rolname) FROM pg_roles"), roles);
        // Nor is it dropped by a deprovisioning with drop_data.
        if what.contains("database") {
            expect_conflict(prov.deprovision(&api, true).await.unwrap_err(), what);
            assert_eq!(psql(&pg, "SELECT count(*) FROM pg_database WHERE datname = 'payments__api__dev'"), "1");
        }
        psql(&pg, cleanup);
    }

    // paved's own database is found again, also after a creation interrupted before its comment.
    prov.provision(&api).await.unwrap();
    psql(&pg, "COMMENT ON DATABASE payments__api__dev IS NULL");
    prov.provision(&api).await.unwrap();
    assert_eq!(
        psql(&pg, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'payments__api__dev'"),
        "paved:team=payments;service=api;env=dev"
    );
    prov.deprovision(&api, true).await.unwrap();
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_database WHERE datname = 'payments__api__dev'"), "0");
}

/// Issue 18, hole 3: a Vault connection or role of the request's name that reaches another
/// database is never overwritten.
#[tokio::test]
async fn foreign_vault_connections_and_roles_are_never_overwritten() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    let api = request("payments", "api", "dev");
    common::run_bao(&bao, &["secrets", "enable", "database"]);
    let foreign_url = format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres", pg.port());
    common::run_bao(
        &bao,
        &[
            "write",
            "database/config/payments_api_dev",
            "plugin_name=postgresql-database-plugin",
            &format!("connection_url={foreign_url}"),
            "allowed_roles=payments_api_dev",
            "username=postgres",
            &format!("password={}", Postgres::PASSWORD),
            "verify_connection=false",
        ],
    );
    let before = common::run_bao(&bao, &["read", "-format=json", "database/config/payments_api_dev"]);
    let e = prov.provision(&api).await.unwrap_err();
    assert_eq!(e.kind(), paved_core::ErrorKind::Conflict, "{}", error_text(&e));
    assert!(e.to_string().contains("database/config/payments_api_dev"), "{}", error_text(&e));
    assert!(e.hint().unwrap().contains("bao delete database/config/payments_api_dev"), "{}", error_text(&e));
    let after = common::run_bao(&bao, &["read", "-format=json", "database/config/payments_api_dev"]);
    let details = |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap()["data"].clone();
    assert_eq!(details(&after), details(&before), "the foreign connection is unchanged");
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_database WHERE datname = 'payments__api__dev'"), "0");
}
