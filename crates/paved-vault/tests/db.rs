//! `VaultDbProvisioner` against a real OpenBao dev server and a real PostgreSQL server, both
//! started by the tests: generated credentials work in their own database and nowhere else.

mod common;

use common::db::{connect, creds, database_count, provisioner, psql, request};
use common::{bao, error_text, run_bao, store};
use paved_core::{DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, Error};
use paved_testkit::Postgres;
use paved_vault::{DbServer, VaultDbProvisioner};
use secrecy::SecretString;

#[tokio::test]
async fn provisioned_credentials_work_in_their_own_database_only() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    assert_eq!(prov.name(), "vault");
    let payments = request("payments", "payment-service", "dev");
    let ledger = request("finance", "ledger", "dev");
    let role = "payments-payment-service-dev";
    assert_eq!(prov.role_name(&payments).unwrap(), role);

    assert_eq!(prov.status(&payments).await.unwrap().state, DatabaseState::Absent);
    // Deprovisioning what was never provisioned (no database mount yet) is harmless.
    prov.deprovision(&payments, true).await.unwrap();
    let info = prov.provision(&payments).await.unwrap();
    assert_eq!(info.state, DatabaseState::Available);
    assert_eq!(info.database, "payment_service_dev");
    assert_eq!(info.endpoint, Some(("127.0.0.1".to_string(), pg.port())));
    assert_eq!(info.credentials_path.as_deref(), Some("database/creds/payments-payment-service-dev"));
    assert_eq!(info.connection_info_path.as_deref(), Some("secret/database/payments/payment-service/dev"));
    prov.provision(&ledger).await.unwrap();

    // The connection info in KV, read by the bao CLI: the creds path, never a password.
    let out = run_bao(&bao, &["kv", "get", "-format=json", "secret/database/payments/payment-service/dev"]);
    let kv: serde_json::Value = serde_json::from_str(&out).unwrap();
    let data = kv["data"]["data"].as_object().unwrap();
    assert_eq!(data["host"], "127.0.0.1");
    assert_eq!(data["port"], pg.port().to_string());
    assert_eq!(data["database"], "payment_service_dev");
    assert_eq!(data["credentials_path"], "database/creds/payments-payment-service-dev");
    assert!(!out.contains(Postgres::PASSWORD) && !data.keys().any(|k| k.contains("password")), "{out}");

    // Generated credentials create tables in the service database...
    let first = creds(&bao, role);
    let client = connect(&pg, "payment_service_dev", &first).await.unwrap();
    client
        .batch_execute("CREATE TABLE orders (id int PRIMARY KEY, amount int); INSERT INTO orders VALUES (1, 42)")
        .await
        .unwrap();
    // ...and the next credentials of the same role use them (objects belong to the owner role).
    let second = creds(&bao, role);
    assert_ne!(first.0, second.0);
    let other = connect(&pg, "payment_service_dev", &second).await.unwrap();
    let row = other.query_one("SELECT amount FROM orders WHERE id = 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    other.batch_execute("CREATE TABLE refunds (id int)").await.unwrap();

    // They cannot connect to another service's database, nor can the other service's users
    // connect to this one.
    let e = connect(&pg, "ledger_dev", &first).await.unwrap_err();
    assert!(e.contains("permission denied") || e.contains("CONNECT"), "{e}");
    let ledger_creds = creds(&bao, "finance-ledger-dev");
    let e = connect(&pg, "payment_service_dev", &ledger_creds).await.unwrap_err();
    assert!(e.contains("permission denied") || e.contains("CONNECT"), "{e}");
    connect(&pg, "ledger_dev", &ledger_creds).await.unwrap();

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

    // Deprovision without dropping data: leases revoked (sessions ended, logins fail), the role,
    // connection and connection info gone, the data kept.
    prov.deprovision(&payments, false).await.unwrap();
    assert!(client.query_one("SELECT 1", &[]).await.is_err(), "the open session is ended");
    for c in [&first, &second] {
        let e = connect(&pg, "payment_service_dev", c).await.unwrap_err();
        assert!(e.contains("authentication failed"), "{e}");
    }
    let status = prov.status(&payments).await.unwrap();
    assert_eq!((status.state, status.credentials_path), (DatabaseState::Absent, None));
    let out = bao.command().args(["read", &format!("database/roles/{role}")]).output().unwrap();
    assert!(!out.status.success(), "the role is gone");
    let out = bao.command().args(["kv", "get", "secret/database/payments/payment-service/dev"]).output().unwrap();
    assert!(!out.status.success(), "the connection info is gone");
    assert_eq!(database_count(&pg, "payment_service_dev"), "1");
    // The other service is untouched.
    assert_eq!(prov.status(&ledger).await.unwrap().state, DatabaseState::Available);
    connect(&pg, "ledger_dev", &ledger_creds).await.unwrap();

    // Provisioning again finds the kept data; deprovision with drop_data removes it.
    assert_eq!(prov.provision(&payments).await.unwrap(), info);
    let third = creds(&bao, role);
    let c = connect(&pg, "payment_service_dev", &third).await.unwrap();
    assert_eq!(c.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get::<_, i64>(0), 1);
    drop(c);
    prov.deprovision(&payments, true).await.unwrap();
    assert_eq!(database_count(&pg, "payment_service_dev"), "0");
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_roles WHERE rolname LIKE '%payment%'"), "0");
    assert_eq!(prov.status(&payments).await.unwrap().state, DatabaseState::Absent);
    // Deprovisioning twice is harmless.
    prov.deprovision(&payments, true).await.unwrap();
}

#[tokio::test]
async fn bad_input_is_rejected_and_creates_nothing() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    let databases = psql(&pg, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
    let roles = psql(&pg, "SELECT count(*) FROM pg_roles");

    // An engine this provisioner does not support.
    let mongo = DatabaseRequest::new("payments", "api", "mongodb", "dev", "small").unwrap();
    let e = prov.provision(&mongo).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidInput { field: "engine", .. }), "{e:?}");
    assert!(e.hint().unwrap().contains("postgres"), "{}", error_text(&e));
    let e = DbServer::new(DbEngine::Mongodb, "db", 27017, "admin", SecretString::from("x")).unwrap_err();
    assert!(paved_core::Error::from(e).hint().unwrap().contains("postgres"));
    // An engine the registered server does not run.
    let mysql = DatabaseRequest::new("payments", "api", "mysql", "dev", "small").unwrap();
    let e = prov.provision(&mysql).await.unwrap_err();
    assert!(error_text(&e).contains("runs postgres"), "{}", error_text(&e));

    // Names that are not identifiers.
    for env in ["prod db", "prod;drop", "Prod", "x\"y"] {
        let req = DatabaseRequest::new("payments", "api", "postgres", env, "small").unwrap();
        let e = prov.provision(&req).await.unwrap_err();
        assert!(matches!(&e, Error::InvalidInput { field: "environment", .. }), "{env}: {e:?}");
        assert!(e.hint().is_some());
        assert!(prov.status(&req).await.is_err());
        assert!(prov.deprovision(&req, true).await.is_err());
    }
    assert!(DatabaseRequest::new("Payments!", "api", "postgres", "dev", "small").is_err());

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
    let mounts = run_bao(&bao, &["secrets", "list", "-format=json"]);
    assert!(!mounts.contains("\"database/\""), "{mounts}");
    let out = bao.command().args(["kv", "list", "secret/"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("database"));
    assert_eq!(psql(&pg, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases);
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_roles"), roles);
}
