//! `VaultDbProvisioner` against a real OpenBao dev server and a real MariaDB server (engine
//! `mysql`), both started by the tests: the `DbProvisioner` behaviour suite, then what only
//! Vault on MySQL shows.

mod common;

use std::sync::Arc;

use common::db::{
    MariaDbProbe, assert_nothing_in_vault, check_vault_bookkeeping, creds, mariadb, mysql_connect, mysql_provisioner,
    mysql_query, mysql_request, run_suite,
};
use common::{bao, error_text, run_bao, store};
use mysql_async::prelude::Queryable;
use paved_core::{DatabaseRequest, DbEngine, DbProvisioner};
use paved_testkit::MariaDb;
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

#[tokio::test]
async fn vault_on_mariadb_passes_the_db_provisioner_suite() {
    let (Some(bao), Some(db)) = (bao(), MariaDb::start()) else { return };
    let (bao, db) = (Arc::new(bao), Arc::new(db));
    let prov = mysql_provisioner(&bao, &db, MariaDb::PASSWORD).await;
    run_suite(prov, DbEngine::Mysql, Arc::new(MariaDbProbe { bao: bao.clone(), db: db.clone() })).await;
}

#[tokio::test]
async fn vault_bookkeeping_and_mysql_users_without_server_rights() {
    let (Some(bao), Some(db)) = (bao(), MariaDb::start()) else { return };
    let prov = mysql_provisioner(&bao, &db, MariaDb::PASSWORD).await;
    let payments = mysql_request("payments", "payment-service", "dev");
    check_vault_bookkeeping(&bao, &prov, &payments, db.port(), MariaDb::PASSWORD).await;
    prov.provision(&payments).await.unwrap();
    prov.provision(&mysql_request("finance", "ledger", "dev")).await.unwrap();
    let role = prov.role_name(&payments).unwrap();

    // The Vault connection: the MySQL plugin as root, a username template, no password shown.
    let out = run_bao(&bao, &["read", "-format=json", &format!("database/config/{role}")]);
    let conn: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(conn["data"]["plugin_name"], "mysql-database-plugin");
    let details = &conn["data"]["connection_details"];
    assert_eq!(details["connection_url"], format!("{{{{username}}}}:{{{{password}}}}@tcp(127.0.0.1:{})/", db.port()));
    assert_eq!(details["username"], "root");
    assert!(details["username_template"].as_str().unwrap().contains("truncate 32"), "{out}");
    assert!(!out.contains(MariaDb::PASSWORD), "{out}");

    // Generated users fit MySQL's 32 characters and have no server-wide rights.
    let first = creds(&bao, &role);
    assert!(first.0.len() <= 32 && first.0.starts_with("v-payments_pay"), "{first:?}");
    let mut client = mysql_connect(&db, "payments__payment_service__dev", &first).await.unwrap();
    let e = mysql_query(&mut client, "SELECT count(*) FROM finance__ledger__dev.no_table").await.unwrap_err();
    assert!(e.contains("denied"), "{e}");
    let e = mysql_query(&mut client, "CREATE DATABASE sneaky").await.unwrap_err();
    assert!(e.contains("Access denied"), "{e}");
    let e = mysql_query(&mut client, "SELECT count(*) FROM mysql.user").await.unwrap_err();
    assert!(e.contains("denied"), "{e}");
    let shown: Vec<String> = client.query("SHOW DATABASES").await.unwrap();
    assert_eq!(shown, ["information_schema", "payments__payment_service__dev"]);
    client.disconnect().await.unwrap();

    // Deprovisioning drops the generated users.
    prov.deprovision(&payments, true).await.unwrap();
    assert_eq!(mariadb(&db, "SELECT count(*) FROM mysql.user WHERE User LIKE 'v-payments\\_%'"), "0");
}

#[tokio::test]
async fn wrong_server_settings_on_a_mysql_server_are_clear_errors_and_create_nothing() {
    let (Some(bao), Some(db)) = (bao(), MariaDb::start()) else { return };
    let prov = mysql_provisioner(&bao, &db, MariaDb::PASSWORD).await;
    let databases =
        mariadb(&db, "SELECT group_concat(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA");
    let users = mariadb(&db, "SELECT count(*) FROM mysql.user");

    // An engine the registered server does not run.
    let postgres = DatabaseRequest::new("payments", "api", "postgres", "dev", "small").unwrap();
    let e = prov.provision(&postgres).await.unwrap_err();
    assert!(error_text(&e).contains("runs mysql"), "{}", error_text(&e));
    assert!(e.hint().unwrap().contains("`engine` mysql"), "{}", error_text(&e));

    // A missing KV mount.
    let server =
        DbServer::new(DbEngine::Mysql, "127.0.0.1", db.port(), "root", SecretString::from(MariaDb::PASSWORD)).unwrap();
    let no_kv = VaultDbProvisioner::new(store(&bao).await.with_mount("no-such-kv"), server);
    let e = no_kv.provision(&mysql_request("payments", "api", "dev")).await.unwrap_err();
    assert!(error_text(&e).contains("no-such-kv"), "{}", error_text(&e));
    assert!(e.hint().unwrap().contains("bao secrets"), "{}", error_text(&e));

    // A wrong admin password: a clear error that never shows the password.
    let wrong = mysql_provisioner(&bao, &db, "wrong-canary-5d2b").await;
    let e = wrong.provision(&mysql_request("payments", "api", "dev")).await.unwrap_err();
    let text = error_text(&e);
    assert!(text.contains("Access denied for user 'root'"), "{text}");
    assert!(text.contains("admin username and password"), "{text}");
    assert!(!text.contains("wrong-canary") && !format!("{wrong:?}").contains("wrong-canary"), "{text}");

    // Nothing was created in Vault or MariaDB.
    assert_nothing_in_vault(&bao);
    assert_eq!(
        mariadb(&db, "SELECT group_concat(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA"),
        databases
    );
    assert_eq!(mariadb(&db, "SELECT count(*) FROM mysql.user"), users);
}

/// Issue 18, hole 1 on MariaDB: a database of the request's name without the request's
/// ownership marker (its comment) is neither taken over nor dropped.
#[tokio::test]
async fn foreign_mariadb_databases_are_never_taken_over_or_dropped() {
    let (Some(bao), Some(db)) = (bao(), MariaDb::start()) else { return };
    let prov = mysql_provisioner(&bao, &db, MariaDb::PASSWORD).await;
    let api = mysql_request("payments", "api", "dev");
    for (setup, what) in [
        ("CREATE DATABASE payments__api__dev", "an unmarked database"),
        (
            "CREATE DATABASE payments__api__dev COMMENT 'paved:team=search;service=api;env=dev'",
            "another request's database",
        ),
    ] {
        mariadb(&db, setup);
        mariadb(
            &db,
            "CREATE TABLE payments__api__dev.secrets (v int); INSERT INTO payments__api__dev.secrets VALUES (7)",
        );
        let e = prov.provision(&api).await.unwrap_err();
        assert_eq!(e.kind(), paved_core::ErrorKind::Conflict, "{what}: {}", error_text(&e));
        assert!(e.to_string().contains("payments__api__dev"), "{what}: {}", error_text(&e));
        assert_nothing_in_vault(&bao);
        let e = prov.deprovision(&api, true).await.unwrap_err();
        assert_eq!(e.kind(), paved_core::ErrorKind::Conflict, "{what}: {}", error_text(&e));
        assert_eq!(mariadb(&db, "SELECT v FROM payments__api__dev.secrets"), "7", "{what}: the data is kept");
        mariadb(&db, "DROP DATABASE payments__api__dev");
    }
    // paved's own database carries the marker and is dropped on request.
    prov.provision(&api).await.unwrap();
    assert_eq!(
        mariadb(&db, "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'payments__api__dev'"),
        "paved:team=payments;service=api;env=dev"
    );
    prov.deprovision(&api, true).await.unwrap();
    assert_eq!(
        mariadb(&db, "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'payments__api__dev'"),
        "0"
    );
}

/// Issue 18, hole 6 on MariaDB: a server that accepts TLS connections only is administered
/// over verified TLS with the configured CA, and Vault's MySQL plugin gets the CA (`tls_ca`)
/// to verify it too; without the CA, or with another, nothing is created.
#[tokio::test]
async fn a_tls_only_mariadb_is_reached_with_verified_tls() {
    let Some(bao) = bao() else { return };
    let certificate = |names: Vec<String>| {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    };
    let (ca, cert, key) = certificate(vec!["127.0.0.1".into()]);
    let Some(db) = MariaDb::start_tls(&cert, &key) else { return };
    let dir = std::env::temp_dir().join(format!("paved-mariadb-tls-{}-{}", std::process::id(), db.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_path, other_path) = (dir.join("ca.pem"), dir.join("other.pem"));
    std::fs::write(&ca_path, &ca).unwrap();
    std::fs::write(&other_path, certificate(vec!["127.0.0.1".into()]).0).unwrap();
    let server = || {
        DbServer::new(DbEngine::Mysql, "127.0.0.1", db.port(), "root", SecretString::from(MariaDb::PASSWORD)).unwrap()
    };
    let api = mysql_request("payments", "api", "dev");
    for (prov, what) in [
        (VaultDbProvisioner::new(store(&bao).await, server()), "plain"),
        (VaultDbProvisioner::new(store(&bao).await, server().ca_cert(&other_path)), "another CA"),
    ] {
        let e = prov.provision(&api).await.unwrap_err();
        assert!(!error_text(&e).contains(MariaDb::PASSWORD), "{what}");
        assert_nothing_in_vault(&bao);
    }
    assert_eq!(
        mariadb(&db, "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'payments__api__dev'"),
        "0"
    );

    let prov = VaultDbProvisioner::new(store(&bao).await, server().ca_cert(&ca_path));
    let info = prov.provision(&api).await.unwrap();
    // Credentials from Vault (which connected with the CA) log in, over TLS only.
    let user = creds(&bao, &prov.role_name(&api).unwrap());
    let cipher =
        db.client_as(&user.0, &user.1, &info.database).args(["-e", "SHOW STATUS LIKE 'Ssl_cipher'"]).output().unwrap();
    assert!(cipher.status.success(), "{}", String::from_utf8_lossy(&cipher.stderr));
    let cipher = String::from_utf8_lossy(&cipher.stdout);
    assert!(cipher.starts_with("Ssl_cipher\t") && cipher.trim().len() > "Ssl_cipher".len(), "{cipher}");
    prov.deprovision(&api, true).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
