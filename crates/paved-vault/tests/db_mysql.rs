//! `VaultDbProvisioner` against a real OpenBao dev server and a real MariaDB server (engine
//! `mysql`), both started by the tests: generated credentials work in their own database and
//! nowhere else.

mod common;

use common::db::{creds, mariadb, mysql_connect, mysql_provisioner, mysql_query, mysql_request, schema_count};
use common::{bao, error_text, run_bao, store};
use mysql_async::prelude::Queryable;
use paved_core::{DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, Error};
use paved_testkit::MariaDb;
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

#[tokio::test]
async fn provisioned_mysql_credentials_work_in_their_own_database_only() {
    let (Some(bao), Some(db)) = (bao(), MariaDb::start()) else { return };
    let prov = mysql_provisioner(&bao, &db, MariaDb::PASSWORD).await;
    let payments = mysql_request("payments", "payment-service", "dev");
    let ledger = mysql_request("finance", "ledger", "dev");
    let role = "payments-payment-service-dev";
    assert_eq!(prov.role_name(&payments).unwrap(), role);

    assert_eq!(prov.status(&payments).await.unwrap().state, DatabaseState::Absent);
    // Deprovisioning what was never provisioned (no database mount yet) is harmless.
    prov.deprovision(&payments, true).await.unwrap();
    let info = prov.provision(&payments).await.unwrap();
    assert_eq!(info.state, DatabaseState::Available);
    assert_eq!(info.database, "payment_service_dev");
    assert_eq!(info.endpoint, Some(("127.0.0.1".to_string(), db.port())));
    assert_eq!(info.credentials_path.as_deref(), Some("database/creds/payments-payment-service-dev"));
    assert_eq!(info.connection_info_path.as_deref(), Some("secret/database/payments/payment-service/dev"));
    prov.provision(&ledger).await.unwrap();
    assert_eq!(schema_count(&db, "payment_service_dev"), "1");

    // The connection info in KV, read by the bao CLI: the creds path, never a password.
    let out = run_bao(&bao, &["kv", "get", "-format=json", "secret/database/payments/payment-service/dev"]);
    let kv: serde_json::Value = serde_json::from_str(&out).unwrap();
    let data = kv["data"]["data"].as_object().unwrap();
    assert_eq!(data["engine"], "mysql");
    assert_eq!(data["host"], "127.0.0.1");
    assert_eq!(data["port"], db.port().to_string());
    assert_eq!(data["database"], "payment_service_dev");
    assert_eq!(data["role"], role);
    assert_eq!(data["credentials_path"], "database/creds/payments-payment-service-dev");
    assert!(!out.contains(MariaDb::PASSWORD) && !data.keys().any(|k| k.contains("password")), "{out}");

    // The Vault connection: the MySQL plugin as root, a username template, no password shown.
    let out = run_bao(&bao, &["read", "-format=json", &format!("database/config/{role}")]);
    let conn: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(conn["data"]["plugin_name"], "mysql-database-plugin");
    let details = &conn["data"]["connection_details"];
    assert_eq!(details["connection_url"], format!("{{{{username}}}}:{{{{password}}}}@tcp(127.0.0.1:{})/", db.port()));
    assert_eq!(details["username"], "root");
    assert!(details["username_template"].as_str().unwrap().contains("truncate 32"), "{out}");
    assert!(!out.contains(MariaDb::PASSWORD), "{out}");

    // Generated credentials: a short MySQL username, tables in the service database...
    let first = creds(&bao, role);
    assert!(first.0.len() <= 32 && first.0.starts_with("v-payments-pay"), "{first:?}");
    let mut client = mysql_connect(&db, "payment_service_dev", &first).await.unwrap();
    client.query_drop("CREATE TABLE orders (id int PRIMARY KEY, amount int)").await.unwrap();
    client.query_drop("INSERT INTO orders VALUES (1, 42)").await.unwrap();
    // ...that the next credentials of the same role use.
    let second = creds(&bao, role);
    assert_ne!(first.0, second.0);
    let mut other = mysql_connect(&db, "payment_service_dev", &second).await.unwrap();
    assert_eq!(mysql_query(&mut other, "SELECT amount FROM orders WHERE id = 1").await.unwrap().as_deref(), Some("42"));
    other.query_drop("CREATE TABLE refunds (id int)").await.unwrap();

    // Nothing else: not another service's database, no server-wide rights, and the other
    // service's users cannot get into this one.
    let e = mysql_connect(&db, "ledger_dev", &first).await.err().unwrap();
    assert!(e.contains("Access denied") && e.contains("ledger_dev"), "{e}");
    let e = mysql_query(&mut client, "SELECT count(*) FROM ledger_dev.no_table").await.unwrap_err();
    assert!(e.contains("denied"), "{e}");
    let e = mysql_query(&mut client, "CREATE DATABASE sneaky").await.unwrap_err();
    assert!(e.contains("Access denied"), "{e}");
    let e = mysql_query(&mut client, "SELECT count(*) FROM mysql.user").await.unwrap_err();
    assert!(e.contains("denied"), "{e}");
    let shown: Vec<String> = client.query("SHOW DATABASES").await.unwrap();
    assert_eq!(shown, ["information_schema", "payment_service_dev"]);
    let ledger_creds = creds(&bao, "finance-ledger-dev");
    let e = mysql_connect(&db, "payment_service_dev", &ledger_creds).await.err().unwrap();
    assert!(e.contains("Access denied"), "{e}");
    let mut ledger_conn = mysql_connect(&db, "ledger_dev", &ledger_creds).await.unwrap();
    ledger_conn.query_drop("CREATE TABLE entries (id int)").await.unwrap();
    ledger_conn.disconnect().await.unwrap();

    // Re-provisioning changes nothing and answers the same.
    let role_before = run_bao(&bao, &["read", "-format=json", &format!("database/roles/{role}")]);
    let conn_before = run_bao(&bao, &["read", "-format=json", &format!("database/config/{role}")]);
    let kv_store = store(&bao).await;
    let version = kv_store.metadata("database/payments/payment-service/dev").await.unwrap().current_version;
    assert_eq!(prov.provision(&payments).await.unwrap(), info);
    let strip = |s: String| {
        let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v["data"].take()
    };
    assert_eq!(strip(run_bao(&bao, &["read", "-format=json", &format!("database/roles/{role}")])), strip(role_before));
    assert_eq!(strip(run_bao(&bao, &["read", "-format=json", &format!("database/config/{role}")])), strip(conn_before));
    assert_eq!(kv_store.metadata("database/payments/payment-service/dev").await.unwrap().current_version, version);
    assert_eq!(prov.status(&payments).await.unwrap(), info);
    assert_eq!(mysql_query(&mut client, "SELECT count(*) FROM orders").await.unwrap().as_deref(), Some("1"));

    // Deprovision without dropping data: leases revoked (users dropped, their open sessions
    // ended: MariaDB), the role, connection and connection info gone, the data kept.
    prov.deprovision(&payments, false).await.unwrap();
    assert!(mysql_query(&mut client, "SELECT 1").await.is_err(), "the open session is ended");
    for c in [&first, &second] {
        let e = mysql_connect(&db, "payment_service_dev", c).await.err().unwrap();
        assert!(e.contains("Access denied"), "{e}");
    }
    assert_eq!(mariadb(&db, "SELECT count(*) FROM mysql.user WHERE User LIKE 'v-payments%'"), "0");
    let status = prov.status(&payments).await.unwrap();
    assert_eq!((status.state, status.credentials_path), (DatabaseState::Absent, None));
    let out = bao.command().args(["read", &format!("database/roles/{role}")]).output().unwrap();
    assert!(!out.status.success(), "the role is gone");
    let out = bao.command().args(["read", &format!("database/config/{role}")]).output().unwrap();
    assert!(!out.status.success(), "the connection is gone");
    let out = bao.command().args(["kv", "get", "secret/database/payments/payment-service/dev"]).output().unwrap();
    assert!(!out.status.success(), "the connection info is gone");
    assert_eq!(schema_count(&db, "payment_service_dev"), "1");
    // The other service is untouched.
    assert_eq!(prov.status(&ledger).await.unwrap().state, DatabaseState::Available);
    mysql_connect(&db, "ledger_dev", &ledger_creds).await.unwrap().disconnect().await.unwrap();

    // Provisioning again finds the kept data; deprovision with drop_data removes it.
    assert_eq!(prov.provision(&payments).await.unwrap(), info);
    let third = creds(&bao, role);
    let mut c = mysql_connect(&db, "payment_service_dev", &third).await.unwrap();
    assert_eq!(mysql_query(&mut c, "SELECT count(*) FROM orders").await.unwrap().as_deref(), Some("1"));
    c.disconnect().await.unwrap();
    prov.deprovision(&payments, true).await.unwrap();
    assert_eq!(schema_count(&db, "payment_service_dev"), "0");
    assert_eq!(mariadb(&db, "SELECT count(*) FROM mysql.user WHERE User LIKE 'v-payments%'"), "0");
    assert_eq!(prov.status(&payments).await.unwrap().state, DatabaseState::Absent);
    // Deprovisioning twice is harmless, and the other service still works.
    prov.deprovision(&payments, true).await.unwrap();
    assert_eq!(schema_count(&db, "ledger_dev"), "1");
    mysql_connect(&db, "ledger_dev", &ledger_creds).await.unwrap().disconnect().await.unwrap();
}

#[tokio::test]
async fn bad_input_on_a_mysql_server_is_rejected_and_creates_nothing() {
    let (Some(bao), Some(db)) = (bao(), MariaDb::start()) else { return };
    let prov = mysql_provisioner(&bao, &db, MariaDb::PASSWORD).await;
    let databases =
        mariadb(&db, "SELECT group_concat(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA");
    let users = mariadb(&db, "SELECT count(*) FROM mysql.user");

    // An engine the registered server does not run.
    let postgres = DatabaseRequest::new("payments", "api", "postgres", "dev", "small").unwrap();
    let e = prov.provision(&postgres).await.unwrap_err();
    assert!(error_text(&e).contains("runs mysql"), "{}", error_text(&e));
    assert!(e.hint().unwrap().contains("--engine mysql"), "{}", error_text(&e));
    let mongo = DatabaseRequest::new("payments", "api", "mongodb", "dev", "small").unwrap();
    assert!(matches!(prov.provision(&mongo).await.unwrap_err(), Error::InvalidInput { field: "engine", .. }));

    // Names that are not identifiers (a backquote or quote would break out of the statements).
    for env in ["prod db", "prod;drop", "Prod", "x`y", "x'y"] {
        let req = DatabaseRequest::new("payments", "api", "mysql", env, "small").unwrap();
        let e = prov.provision(&req).await.unwrap_err();
        assert!(matches!(&e, Error::InvalidInput { field: "environment", .. }), "{env}: {e:?}");
        assert!(e.hint().is_some());
        assert!(prov.status(&req).await.is_err());
        assert!(prov.deprovision(&req, true).await.is_err());
    }

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
    let mounts = run_bao(&bao, &["secrets", "list", "-format=json"]);
    assert!(!mounts.contains("\"database/\""), "{mounts}");
    let out = bao.command().args(["kv", "list", "secret/"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("database"));
    assert_eq!(
        mariadb(&db, "SELECT group_concat(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA"),
        databases
    );
    assert_eq!(mariadb(&db, "SELECT count(*) FROM mysql.user"), users);
}
