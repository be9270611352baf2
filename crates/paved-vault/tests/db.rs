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

/// A CA and a server certificate for `names`, signed by it: (CA PEM, certificate PEM, key PEM).
fn certificates(names: &[&str]) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "paved test database CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "postgres");
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Issue 18, hole 6: against a PostgreSQL that accepts TLS connections only, paved and Vault
/// connect with verified TLS (`sslmode=verify-full` against the configured CA); without the CA
/// (plain) or with another CA, nothing is sent in clear text, nothing is created, and the error
/// says what to configure.
#[tokio::test]
async fn a_tls_only_server_is_reached_with_verified_tls_and_never_in_plain_text() {
    let Some(bao) = bao() else { return };
    let (ca, cert, key) = certificates(&["127.0.0.1", "localhost"]);
    let Some(pg) = Postgres::start_tls(&cert, &key) else { return };
    let dir = std::env::temp_dir().join(format!("paved-db-tls-{}-{}", std::process::id(), pg.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &ca).unwrap();
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, certificates(&["127.0.0.1"]).0).unwrap();
    let server = || {
        DbServer::new(DbEngine::Postgres, "127.0.0.1", pg.port(), "postgres", SecretString::from(Postgres::PASSWORD))
            .unwrap()
    };
    let api = request("payments", "api", "dev");

    // Plain (the default for a server on this machine without a CA): the server refuses it.
    let plain = VaultDbProvisioner::new(store(&bao).await, server());
    let e = plain.provision(&api).await.unwrap_err();
    assert!(
        e.hint().unwrap().contains("TLS connections only") && e.hint().unwrap().contains("ca_cert"),
        "{}",
        error_text(&e)
    );
    // Another CA: the certificate does not verify.
    let wrong = VaultDbProvisioner::new(store(&bao).await, server().ca_cert(&other_ca));
    let e = wrong.provision(&api).await.unwrap_err();
    assert!(error_text(&e).to_lowercase().contains("certificate"), "{}", error_text(&e));
    assert!(e.hint().unwrap().contains("ca_cert"), "{}", error_text(&e));
    assert_nothing_in_vault(&bao);
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_database WHERE datname = 'payments__api__dev'"), "0");

    // The right CA: provisioned end to end; Vault's own connection verifies the server too.
    let prov = VaultDbProvisioner::new(store(&bao).await, server().ca_cert(&ca_path));
    let info = prov.provision(&api).await.unwrap();
    let conn =
        common::run_bao(&bao, &["read", "-format=json", &format!("database/config/{}", prov.role_name(&api).unwrap())]);
    let url = serde_json::from_str::<serde_json::Value>(&conn).unwrap()["data"]["connection_details"]["connection_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.ends_with(&format!("?sslmode=verify-full&sslrootcert={}", ca_path.display())), "{url}");
    // Vault creates users over its verified connection; they connect over TLS only (the server
    // rejects anything else; libpq verifies the certificate and host name here).
    let (user, password) = common::db::creds(&bao, &prov.role_name(&api).unwrap());
    let login = pg
        .psql(&info.database)
        .args(["-U", &user, "-At", "-c", "SELECT 40 + 2"])
        .env("PGPASSWORD", &password)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &ca_path)
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "42");
    prov.deprovision(&api, true).await.unwrap();

    // A certificate for another name than the one connected to: host-name verification fails.
    let (ca2, cert2, key2) = certificates(&["db.example.com"]);
    let Some(pg2) = Postgres::start_tls(&cert2, &key2) else { return };
    let ca2_path = dir.join("ca2.pem");
    std::fs::write(&ca2_path, ca2).unwrap();
    let misnamed =
        DbServer::new(DbEngine::Postgres, "127.0.0.1", pg2.port(), "postgres", SecretString::from(Postgres::PASSWORD))
            .unwrap()
            .ca_cert(&ca2_path);
    let e = VaultDbProvisioner::new(store(&bao).await, misnamed).provision(&api).await.unwrap_err();
    assert!(error_text(&e).to_lowercase().contains("certificate"), "{}", error_text(&e));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review of issue 18: a team owns its database, so it can set the database's search_path and
/// create functions in `public`. Vault runs the revocation statements there as the admin: they
/// must never call the team's function in place of pg_catalog's.
#[tokio::test]
async fn vaults_statements_never_run_the_teams_functions() {
    let (Some(bao), Some(pg)) = (bao(), Postgres::start()) else { return };
    let prov = provisioner(&bao, &pg, Postgres::PASSWORD).await;
    let api = request("payments", "api", "dev");
    let info = prov.provision(&api).await.unwrap();
    let (user, password) = common::db::creds(&bao, &prov.role_name(&api).unwrap());
    let attack = pg
        .psql(&info.database)
        .args(["-U", &user])
        .env("PGPASSWORD", &password)
        .args([
            "-c",
            "ALTER DATABASE payments__api__dev SET search_path = public, pg_catalog",
            "-c",
            "CREATE FUNCTION public.pg_terminate_backend(pid integer, timeout bigint DEFAULT 0) RETURNS boolean \
             LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'CREATE ROLE pwned_by_payments SUPERUSER'; RETURN true; END $$",
        ])
        .output()
        .unwrap();
    assert!(
        attack.status.success(),
        "the team may do this in its own database: {}",
        String::from_utf8_lossy(&attack.stderr)
    );
    // Vault's next session in the database gets the team's search_path.
    common::run_bao(&bao, &["write", "-f", &format!("database/reset/{}", prov.role_name(&api).unwrap())]);
    // A session of the team's user is open: revoking its lease makes Vault end it, as the admin.
    let session = common::db::connect(&pg, &info.database, &(user.clone(), password.clone())).await.unwrap();
    prov.deprovision(&api, false).await.unwrap();
    drop(session);
    prov.provision(&api).await.unwrap();
    common::db::creds(&bao, &prov.role_name(&api).unwrap());
    prov.deprovision(&api, true).await.unwrap();
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_roles WHERE rolname = 'pwned_by_payments'"), "0");
}
