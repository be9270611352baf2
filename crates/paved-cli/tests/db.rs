//! `paved db provision|status|deprovision` against a real OpenBao and a real PostgreSQL or
//! MariaDB (engine `mysql`), with the database server registered in paved.toml and its admin
//! password kept in Vault.

use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;

fn paved(dir: &Path, bao: &paved_testkit::OpenBao) -> Command {
    let mut cmd = Command::new(cargo_bin("paved"));
    cmd.current_dir(dir)
        .env_remove("PAVED_STATE_DIR")
        .env_remove("PAVED_CONFIG")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_ADDR")
        .env("VAULT_TOKEN", bao.token())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("paved runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const DB: [&str; 8] =
    ["--team", "payments", "--service", "payment-service", "--engine", "postgres", "--env", "production"];

#[test]
fn provision_status_deprovision_through_paved_toml() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let Some(pg) = paved_testkit::Postgres::start() else { return };
    // The Vault address comes from paved.toml ([vault]), the token from the environment.
    let dir = db_dir(&bao, "", "postgres", pg.port(), ("postgres", paved_testkit::Postgres::PASSWORD), "");

    let (code, out, err) = run(paved(dir.path(), &bao).args(["db", "provision"]).args(DB).args(["--size", "small"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("database payments__payment_service__production of payment-service in production: available"),
        "{out}"
    );
    assert!(out.contains("database/creds/payments_payment-service_production"), "{out}");
    assert!(!out.contains(paved_testkit::Postgres::PASSWORD) && !err.contains(paved_testkit::Postgres::PASSWORD));
    // Idempotent, and the same answer in JSON.
    let (code, json, _) =
        run(paved(dir.path(), &bao).args(["db", "provision", "--output", "json"]).args(DB).args(["--size", "small"]));
    assert_eq!(code, 0);
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), "db", &json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["state"], "available");
    assert_eq!(v["database"], "payments__payment_service__production");
    // The credentials Vault hands out log in to the service's database.
    let creds = bao
        .command()
        .args(["read", "-format=json", "database/creds/payments_payment-service_production"])
        .output()
        .unwrap();
    let creds: serde_json::Value = serde_json::from_slice(&creds.stdout).unwrap();
    let login = Command::new(pg.psql("payments__payment_service__production").get_program())
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &pg.port().to_string()])
        .args([
            "-U",
            creds["data"]["username"].as_str().unwrap(),
            "-d",
            "payments__payment_service__production",
            "-c",
            "CREATE TABLE t (id int)",
        ])
        .env("PGPASSWORD", creds["data"]["password"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));

    let (code, out, _) = run(paved(dir.path(), &bao).args(["db", "status"]).args(DB));
    assert_eq!(code, 0);
    assert!(out.contains(": available"), "{out}");
    let (code, out, err) = run(paved(dir.path(), &bao).args(["db", "deprovision", "--drop-data"]).args(DB));
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = run(paved(dir.path(), &bao).args(["db", "status"]).args(DB));
    assert!(out.contains(": absent"), "{out}");
    // The provisioning was recorded in the ledger.
    assert!(dir.path().join("state/ledger.sqlite").exists());
}

#[test]
fn mysql_provision_status_deprovision_through_paved_toml() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let Some(db) = paved_testkit::MariaDb::start() else { return };
    let password = paved_testkit::MariaDb::PASSWORD;
    let put = bao
        .command()
        .args(["kv", "put", "secret/platform/mysql-admin", &format!("password={password}")])
        .output()
        .unwrap();
    assert!(put.status.success());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        format!(
            "[vault]\naddress = \"{}\"\n\n[databases.orders]\nengine = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\nadmin_username = \"root\"\nadmin_password = \"vault://secret/platform/mysql-admin#password\"\n",
            bao.addr(),
            db.port()
        ),
    )
    .unwrap();
    let mysql: [&str; 8] =
        ["--team", "payments", "--service", "payment-service", "--engine", "mysql", "--env", "production"];

    let (code, out, err) = run(paved(dir.path(), &bao).args(["db", "provision"]).args(mysql).args(["--size", "small"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "mysql database payments__payment_service__production of payment-service in production: available"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("endpoint:        127.0.0.1:{}", db.port())), "{out}");
    assert!(out.contains("database/creds/payments_payment-service_production"), "{out}");
    assert!(!out.contains(password) && !err.contains(password));
    // Idempotent, and the same answer in JSON.
    let (code, json, _) = run(paved(dir.path(), &bao)
        .args(["db", "provision", "--output", "json"])
        .args(mysql)
        .args(["--size", "small"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["state"], "available");
    assert_eq!(v["database"], "payments__payment_service__production");
    // The credentials Vault hands out log in to the service's database, and to no other.
    let creds = bao
        .command()
        .args(["read", "-format=json", "database/creds/payments_payment-service_production"])
        .output()
        .unwrap();
    let creds: serde_json::Value = serde_json::from_slice(&creds.stdout).unwrap();
    let (user, pass) = (creds["data"]["username"].as_str().unwrap(), creds["data"]["password"].as_str().unwrap());
    let login = db
        .client_as(user, pass, "payments__payment_service__production")
        .args(["-e", "CREATE TABLE t (id int); INSERT INTO t VALUES (7); SELECT id FROM t"])
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "7");
    let elsewhere = db.client_as(user, pass, "mysql").args(["-e", "SELECT 1"]).output().unwrap();
    assert!(!elsewhere.status.success());
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("Access denied"));

    let (code, out, _) = run(paved(dir.path(), &bao).args(["db", "status"]).args(mysql));
    assert_eq!(code, 0);
    assert!(out.contains(": available"), "{out}");
    let (code, out, err) = run(paved(dir.path(), &bao).args(["db", "deprovision", "--drop-data"]).args(mysql));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed (database dropped)"), "{out}");
    // The lease is revoked: the login fails; the database is gone.
    let revoked = db.client_as(user, pass, "").args(["-e", "SELECT 1"]).output().unwrap();
    assert!(!revoked.status.success());
    assert!(String::from_utf8_lossy(&revoked.stderr).contains("Access denied"));
    let out = db
        .client("")
        .args([
            "-e",
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'payments__payment_service__production'",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let (_, out, _) = run(paved(dir.path(), &bao).args(["db", "status"]).args(mysql));
    assert!(out.contains(": absent"), "{out}");
}

#[test]
fn bad_input_is_rejected_before_anything_is_created() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        format!("[vault]\naddress = \"{}\"\n\n[databases.main]\nengine = \"postgres\"\nhost = \"127.0.0.1\"\nadmin_username = \"postgres\"\nadmin_password = \"vault://secret/x#password\"\n", bao.addr()),
    )
    .unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--team", "payments", "--service", "svc", "--engine", "mongo", "--env", "production", "--size", "small"],
            "[possible values: postgres, mysql]",
        ),
        (
            &[
                "--team",
                "payments",
                "--service",
                "svc",
                "--engine",
                "postgres",
                "--env",
                "production",
                "--size",
                "huge",
            ],
            "expected one of \"small\", \"medium\", \"large\"",
        ),
        (
            &[
                "--team",
                "Pay_ments",
                "--service",
                "svc",
                "--engine",
                "postgres",
                "--env",
                "production",
                "--size",
                "small",
            ],
            "use \"pay-ments\"",
        ),
        (
            &["--team", "payments", "--service", "svc", "--engine", "postgres", "--env", "prod", "--size", "small"],
            "did you mean \"production\"?",
        ),
        (
            &["--team", "payments", "--service", "svc", "--engine", "mysql", "--env", "production", "--size", "small"],
            "register one in paved.toml",
        ),
    ];
    for (args, hint) in cases {
        let (code, _, err) = run(paved(dir.path(), &bao).args(["db", "provision"]).args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
    }
    // Nothing was created in Vault: no database secrets engine was enabled.
    let mounts = bao.command().args(["secrets", "list", "-format=json"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&mounts.stdout).contains("\"database/\""));
    assert!(!dir.path().join("state").exists());
}

/// Issue 18, reproduced as it was reported, now refused: team `search` provisions the same
/// service name as team `payments` and gets credentials of its own database, which cannot reach
/// the payments team's data; a team outside `teams` is refused; `search`'s drop leaves payments'
/// data.
#[test]
fn another_team_with_the_same_service_name_cannot_reach_the_data() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let Some(pg) = paved_testkit::Postgres::start() else { return };
    let teams = "teams = [\"payments\", \"search\"]\n\n";
    let dir = db_dir(&bao, teams, "postgres", pg.port(), ("postgres", paved_testkit::Postgres::PASSWORD), "");
    let request = |team: &str| {
        ["--team", team, "--service", "payment-service", "--engine", "postgres", "--env", "staging"].map(String::from)
    };
    let provision = |team: &str| -> serde_json::Value {
        let (code, out, err) = run(paved(dir.path(), &bao)
            .args(["db", "provision", "--size", "small", "--output", "json"])
            .args(request(team)));
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str(&out).unwrap()
    };
    let sql = |creds_path: &str, database: &str, statement: &str| {
        let creds = bao.command().args(["read", "-format=json", creds_path]).output().unwrap();
        let creds: serde_json::Value = serde_json::from_slice(&creds.stdout).unwrap();
        Command::new(pg.psql(database).get_program())
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &pg.port().to_string()])
            .args(["-U", creds["data"]["username"].as_str().unwrap(), "-d", database, "-c", statement])
            .env("PGPASSWORD", creds["data"]["password"].as_str().unwrap())
            .output()
            .unwrap()
    };
    let payments = provision("payments");
    let (payments_db, payments_creds) =
        (payments["database"].as_str().unwrap(), payments["credentials_path"].as_str().unwrap());
    let out = sql(payments_creds, payments_db, "CREATE TABLE cards (number text); INSERT INTO cards VALUES ('4111')");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let search = provision("search");
    let (search_db, search_creds) =
        (search["database"].as_str().unwrap(), search["credentials_path"].as_str().unwrap());
    assert_ne!(search_db, payments_db);
    assert_ne!(search_creds, payments_creds);
    let attack = sql(search_creds, payments_db, "SELECT number FROM cards");
    assert!(!attack.status.success(), "search read payments' data: {}", String::from_utf8_lossy(&attack.stdout));
    assert!(String::from_utf8_lossy(&attack.stderr).contains("permission denied"), "{attack:?}");
    assert!(sql(search_creds, search_db, "SELECT 1").status.success(), "search reaches its own database");

    // A team outside `teams`: refused with a did-you-mean, exit 2.
    let (code, _, err) =
        run(paved(dir.path(), &bao).args(["db", "provision", "--size", "small"]).args(request("paymentz")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean \"payments\"?"), "{err}");

    // search drops its own database; the payments team's row is still there.
    let (code, out, err) =
        run(paved(dir.path(), &bao).args(["db", "deprovision", "--drop-data"]).args(request("search")));
    assert_eq!(code, 0, "{out}{err}");
    let row = sql(payments_creds, payments_db, "SELECT number FROM cards");
    assert_eq!(String::from_utf8_lossy(&row.stdout).trim(), "4111", "{}", String::from_utf8_lossy(&row.stderr));
}

/// A paved.toml with `top` (top-level keys), the Vault address (the token comes from the
/// environment) and one database server `main` with `extra` lines in its table, its admin
/// password stored in OpenBao; returns the directory.
fn db_dir(
    bao: &paved_testkit::OpenBao,
    top: &str,
    engine: &str,
    port: u16,
    admin: (&str, &str),
    extra: &str,
) -> tempfile::TempDir {
    let put = bao.command().args(["kv", "put", "secret/platform/db-admin", &format!("password={}", admin.1)]).output();
    assert!(put.unwrap().status.success());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        format!(
            "{top}[vault]\naddress = \"{}\"\n\n[databases.main]\nengine = \"{engine}\"\nhost = \"127.0.0.1\"\nport = {port}\nadmin_username = \"{}\"\nadmin_password = \"vault://secret/platform/db-admin#password\"\n{extra}",
            bao.addr(),
            admin.0
        ),
    )
    .unwrap();
    dir
}

/// `paved db provision --output json` for (team, service, env) on `engine`: the answer.
fn provision(
    dir: &Path,
    bao: &paved_testkit::OpenBao,
    engine: &str,
    (team, service, env): (&str, &str, &str),
) -> serde_json::Value {
    let (code, out, err) = run(paved(dir, bao)
        .args(["db", "provision", "--size", "small", "--output", "json", "--engine", engine])
        .args(["--team", team, "--service", service, "--env", env]));
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

/// Credentials from a creds path: (user, password).
fn issued(bao: &paved_testkit::OpenBao, path: &str) -> (String, String) {
    let out = bao.command().args(["read", "-format=json", path]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["data"]["username"].as_str().unwrap().into(), v["data"]["password"].as_str().unwrap().into())
}

/// Issue 18, holes 2 and 3 through the CLI on MariaDB: lookalike names (`suite-a` and
/// `suitexa`, whose databases differ where one has `_`, a grant wildcard) and hyphens that move
/// between team and service get databases and credentials of their own, none reaching another.
#[test]
fn lookalike_and_hyphen_names_never_share_access() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let Some(db) = paved_testkit::MariaDb::start() else { return };
    let dir = db_dir(&bao, "", "mysql", db.port(), ("root", paved_testkit::MariaDb::PASSWORD), "");
    let victim = provision(dir.path(), &bao, "mysql", ("suitexa", "b", "dev"));
    let (vdb, vcreds) = (victim["database"].as_str().unwrap(), victim["credentials_path"].as_str().unwrap());
    let (user, pass) = issued(&bao, vcreds);
    let write = db
        .client_as(&user, &pass, vdb)
        .args(["-e", "CREATE TABLE cards (n text); INSERT INTO cards VALUES ('4111')"])
        .output();
    assert!(write.unwrap().status.success());
    for attacker in [("suite-a", "b", "dev"), ("suitexa-b", "b", "dev"), ("suitexa", "b-dev", "dev")] {
        let theirs = provision(dir.path(), &bao, "mysql", attacker);
        assert_ne!(theirs["database"], victim["database"], "{attacker:?}");
        assert_ne!(theirs["credentials_path"], victim["credentials_path"], "{attacker:?}");
        let (user, pass) = issued(&bao, theirs["credentials_path"].as_str().unwrap());
        let read =
            db.client_as(&user, &pass, "").args(["-e", &format!("SELECT n FROM `{vdb}`.cards")]).output().unwrap();
        assert!(
            !read.status.success(),
            "{attacker:?} read the victim's table: {}",
            String::from_utf8_lossy(&read.stdout)
        );
        assert!(String::from_utf8_lossy(&read.stderr).contains("denied"), "{}", String::from_utf8_lossy(&read.stderr));
    }
    // The victim's credentials still work: no provisioning repointed its connection or role.
    let (user, pass) = issued(&bao, vcreds);
    let read = db.client_as(&user, &pass, vdb).args(["-e", "SELECT n FROM cards"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "4111", "{}", String::from_utf8_lossy(&read.stderr));
}

/// Issue 18, hole 6 through the CLI: a PostgreSQL that accepts TLS connections only is reached
/// with the `ca_cert` of paved.toml (verified TLS, also for Vault's connection); without it the
/// error says to set it, and nothing is created.
#[test]
fn a_tls_only_server_is_reached_with_the_ca_cert_of_paved_toml() {
    let Some(bao) = paved_testkit::OpenBao::start() else { return };
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "paved test database CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    // Subject and issuer differ, or OpenSSL (libpq) takes the certificate for self-signed.
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "postgres");
    let cert = params.signed_by(&key, &ca).unwrap();
    let Some(pg) = paved_testkit::Postgres::start_tls(&cert.pem(), &key.serialize_pem()) else { return };
    let admin = ("postgres", paved_testkit::Postgres::PASSWORD);
    let request = ["db", "provision", "--size", "small", "--engine", "postgres", "--team", "payments"];
    let service = ["--service", "api", "--env", "dev"];

    let plain = db_dir(&bao, "", "postgres", pg.port(), admin, "");
    let (code, out, err) = run(paved(plain.path(), &bao).args(request).args(service));
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("TLS connections only") && err.contains("ca_cert"), "{err}");
    assert!(!err.contains(paved_testkit::Postgres::PASSWORD));

    let ca_path = plain.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let tls = db_dir(&bao, "", "postgres", pg.port(), admin, &format!("ca_cert = \"{}\"\n", ca_path.display()));
    let (code, out, err) = run(paved(tls.path(), &bao).args(request).args(service).args(["--output", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    let conn = bao.command().args(["read", "-format=json", "database/config/payments_api_dev"]).output().unwrap();
    let conn: serde_json::Value = serde_json::from_slice(&conn.stdout).unwrap();
    let url = conn["data"]["connection_details"]["connection_url"].as_str().unwrap();
    assert!(url.contains("sslmode=verify-full&sslrootcert="), "{url}");
    let (user, pass) = issued(&bao, info["credentials_path"].as_str().unwrap());
    let login = Command::new(pg.psql("").get_program())
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U", &user])
        .args(["-d", info["database"].as_str().unwrap(), "-c", "SELECT 1"])
        .env("PGPASSWORD", pass)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &ca_path)
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
}
