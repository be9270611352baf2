//! What differs between database engines for [`VaultDbProvisioner`](super::VaultDbProvisioner):
//! the admin connection to the registered server (creating, finding and dropping a service's
//! database) and what Vault gets (the connection URL, the username template and the role's
//! creation and revocation statements).
//!
//! PostgreSQL through `tokio-postgres`, MySQL and MariaDB through `mysql_async`; both without
//! TLS (the admin connection goes to the registered server). Error messages name users and
//! databases, never passwords.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use paved_core::DbEngine;
use secrecy::ExposeSecret;

use super::{DbServer, DbTls, Names};
use crate::error::{Error, Result};

/// The admin-only database where paved keeps the ownership markers of the databases it
/// creates on MySQL (which has no database comments). Never a service's database: those names
/// hold `__`.
const MYSQL_REGISTRY: &str = "`paved_registry`";

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The usernames Vault generates on MySQL and MariaDB: `v-`, the first 13 characters of the
/// role, `-` and 16 random letters and digits (32 characters at most, the limit of MySQL 5.7+;
/// MariaDB allows 80). The plugin's default would keep only 8 random characters for long names.
const MYSQL_USERNAME_TEMPLATE: &str = r#"{{ printf "v-%s-%s" (.RoleName | truncate 13) (random 16) | truncate 32 }}"#;

/// The SQL dialect of the registered server. MySQL and MariaDB share the Vault plugin; MariaDB
/// (told apart by `VERSION()`) can also end the open sessions of a user when its lease is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL (or a server that does not say it is MariaDB).
    Mysql,
    /// MariaDB.
    MariaDb,
}

impl Dialect {
    /// The connection URL Vault uses, templated with the admin credentials, with the TLS of
    /// the server: PostgreSQL `sslmode=verify-full` (and `sslrootcert`, a path on the Vault
    /// server) or `sslmode=disable`; MySQL `tls=true` when verifying against the system's roots
    /// (a configured CA goes in the connection's `tls_ca` instead).
    pub(super) fn connection_url(self, server: &DbServer, database: &str) -> String {
        let host = url_host(&server.host);
        let tls = server.tls();
        match self {
            Dialect::Postgres => {
                let ssl = match (&tls, server.vault_ca_path()) {
                    (DbTls::Plain, _) => "sslmode=disable".to_string(),
                    (DbTls::Verify { .. }, Some(ca)) => {
                        format!("sslmode=verify-full&sslrootcert={}", query_escape(&ca))
                    }
                    (DbTls::Verify { .. }, None) => "sslmode=verify-full".to_string(),
                };
                format!("postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{}/{database}?{ssl}", server.port)
            }
            // go-sql-driver DSN; no default database, the statements name it.
            Dialect::Mysql | Dialect::MariaDb => {
                let ssl = match tls {
                    DbTls::Verify { ca_cert: None } => "?tls=true",
                    _ => "",
                };
                format!("{{{{username}}}}:{{{{password}}}}@tcp({host}:{})/{ssl}", server.port)
            }
        }
    }

    /// The username template of the connection (`None`: the plugin's default).
    pub(super) fn username_template(self) -> Option<&'static str> {
        match self {
            Dialect::Postgres => None,
            Dialect::Mysql | Dialect::MariaDb => Some(MYSQL_USERNAME_TEMPLATE),
        }
    }

    /// The creation and revocation statements of the role.
    ///
    /// PostgreSQL: a login that acts as the `NOLOGIN` owner role of the database, so the objects
    /// one credential creates belong to the owner and are usable by the next; revocation ends
    /// its sessions and drops it. MySQL/MariaDB: a user at any host with every privilege on the
    /// database and none elsewhere; revocation drops it (on MariaDB also ending its sessions:
    /// MySQL has no statement for that, and a dropped user's open sessions last until they close).
    pub(super) fn statements(self, names: &Names) -> (Vec<String>, Vec<String>) {
        match self {
            Dialect::Postgres => {
                let owner = pg_quote(&names.database);
                let owner_literal = format!("'{}'", names.database);
                // Vault runs these as the admin, in the team's database, whose owner (the team)
                // can set its search_path and create functions in `public`: only pg_catalog is
                // searched, and every function and operator is qualified, so none of the team's
                // objects ever runs with the admin's rights.
                let harden = "SET search_path TO pg_catalog, pg_temp;".to_string();
                let creation = vec![
                    harden.clone(),
                    format!(
                        "CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}' IN ROLE {owner};"
                    ),
                    format!("ALTER ROLE \"{{{{name}}}}\" SET role = {owner_literal};"),
                    format!("GRANT CONNECT, TEMPORARY ON DATABASE {owner} TO \"{{{{name}}}}\";"),
                ];
                let revocation = vec![
                    harden,
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename OPERATOR(pg_catalog.=) '{{name}}';".to_string(),
                    format!("REASSIGN OWNED BY \"{{{{name}}}}\" TO {owner};"),
                    "DROP OWNED BY \"{{name}}\";".to_string(),
                    "DROP ROLE IF EXISTS \"{{name}}\";".to_string(),
                ];
                (creation, revocation)
            }
            Dialect::Mysql | Dialect::MariaDb => {
                // `_` and `%` are wildcards in a database-level grant: escaped, the grant
                // matches this database only, never a lookalike.
                let db = my_grant_database(&names.database);
                let creation = vec![
                    "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';".to_string(),
                    format!("GRANT ALL PRIVILEGES ON {db}.* TO '{{{{name}}}}'@'%';"),
                ];
                // Dropped first, so no new session starts before the open ones are ended.
                let mut revocation = vec!["DROP USER IF EXISTS '{{name}}'@'%';".to_string()];
                if self == Dialect::MariaDb {
                    revocation.push("KILL USER '{{name}}'@'%';".to_string());
                }
                (creation, revocation)
            }
        }
    }
}

/// An admin connection to the registered server.
pub(super) struct Admin<'a> {
    server: &'a DbServer,
    conn: Conn,
}

enum Conn {
    Postgres(tokio_postgres::Client),
    Mysql { conn: mysql_async::Conn, dialect: Dialect },
}

impl<'a> Admin<'a> {
    /// Connects as the admin user to the admin database of `server` (PostgreSQL: `postgres`
    /// unless configured; MySQL: none unless configured).
    pub(super) async fn connect(server: &'a DbServer) -> Result<Self> {
        let conn = match server.engine {
            DbEngine::Mysql => {
                let mut conn = mysql_connect(server, server.admin_database.as_deref()).await?;
                let version: Option<String> =
                    conn.query_first("SELECT VERSION()").await.map_err(|e| my_error(server, e))?;
                let dialect =
                    if version.is_some_and(|v| v.contains("MariaDB")) { Dialect::MariaDb } else { Dialect::Mysql };
                Conn::Mysql { conn, dialect }
            }
            _ => Conn::Postgres(pg_connect(server, server.admin_database.as_deref().unwrap_or("postgres")).await?),
        };
        Ok(Admin { server, conn })
    }

    /// The dialect of the server.
    pub(super) fn dialect(&self) -> Dialect {
        match &self.conn {
            Conn::Postgres(_) => Dialect::Postgres,
            Conn::Mysql { dialect, .. } => *dialect,
        }
    }

    /// Refuses a database (or PostgreSQL owner role) of the request's name that paved did not
    /// create for this request: one without the request's ownership marker ([`Names::owner`]),
    /// owned by another role, or an owner role with privileges or memberships that the
    /// credentials issued in it would inherit (superuser, `CREATEROLE`, `CREATEDB`, `LOGIN`,
    /// replication, `BYPASSRLS`, membership of any role). Reads only.
    pub(super) async fn check_owner(&mut self, names: &Names) -> Result<()> {
        let server = self.server;
        let conflict = |what: &str, message: String| Error::Conflict {
            what: format!("{what} {} on {}", names.database, server.server()),
            message,
            hint: "choose another service name, or remove or rename it on the server; a database paved created under \
                   the names of earlier releases is adopted as the README says (\"Migrating database names\")"
                .into(),
        };
        // The marker's text is not shown: it is whatever the database says.
        let foreign = |marker: Option<&str>| match marker {
            None | Some("") => "exists but was not created by paved for this request".to_string(),
            Some(_) => "is marked as another request's".to_string(),
        };
        match &mut self.conn {
            Conn::Postgres(admin) => {
                let role = admin
                    .query_opt(
                        "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolcanlogin OR r.rolreplication \
                         OR r.rolbypassrls, pg_catalog.shobj_description(r.oid, 'pg_authid'::pg_catalog.name), \
                         EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid) \
                         FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1",
                        &[&names.database],
                    )
                    .await
                    .map_err(|e| pg_error(server, e))?;
                if let Some(row) = role {
                    let (privileged, marker, member): (bool, Option<String>, bool) =
                        (row.get(0), row.get(1), row.get(2));
                    if marker.as_deref() != Some(names.owner.as_str()) {
                        return Err(conflict("role", foreign(marker.as_deref())));
                    }
                    if privileged || member {
                        return Err(conflict(
                            "role",
                            "has privileges or role memberships the issued credentials would inherit".into(),
                        ));
                    }
                }
                let database = admin
                    .query_opt(
                        "SELECT pg_catalog.pg_get_userbyid(d.datdba)::pg_catalog.text, \
                         pg_catalog.shobj_description(d.oid, 'pg_database'::pg_catalog.name) \
                         FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1",
                        &[&names.database],
                    )
                    .await
                    .map_err(|e| pg_error(server, e))?;
                if let Some(row) = database {
                    let (owner, marker): (String, Option<String>) = (row.get(0), row.get(1));
                    // No marker yet is ours when the (marked) owner role owns it: an interrupted
                    // creation, finished by `ensure_database`.
                    if owner != names.database || marker.as_deref().is_some_and(|m| m != names.owner) {
                        return Err(conflict("database", foreign(marker.as_deref())));
                    }
                }
                Ok(())
            }
            Conn::Mysql { conn, dialect } => {
                if !my_exists(server, conn, names).await? {
                    return Ok(());
                }
                let marker = my_marker(server, conn, *dialect, names).await?;
                match marker.as_deref() == Some(names.owner.as_str()) {
                    true => Ok(()),
                    false => Err(conflict("database", foreign(marker.as_deref()))),
                }
            }
        }
    }

    /// Creates the database of the service unless it exists, with the request's ownership
    /// marker.
    ///
    /// PostgreSQL: owned by a `NOLOGIN` role of the same name, both marked with a comment;
    /// `PUBLIC` may neither connect nor create temporary tables, and the owner role may use the
    /// `public` schema. MariaDB: with the `utf8mb4` character set and the marker as its comment;
    /// MySQL (no database comments): the marker in the admin-only `paved_registry.owners`. No
    /// user has rights on a new database until a grant.
    pub(super) async fn ensure_database(&mut self, names: &Names) -> Result<()> {
        let exists = self.exists(names).await?;
        let server = self.server;
        match &mut self.conn {
            Conn::Postgres(admin) => pg_ensure_database(server, admin, names, exists).await,
            Conn::Mysql { conn, dialect } => {
                if !exists {
                    let db = my_quote(&names.database);
                    let marker = sql_literal(&names.owner);
                    let statements = match dialect {
                        Dialect::MariaDb => {
                            vec![format!("CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COMMENT {marker}")]
                        }
                        // MySQL has no database comments: the marker goes to an admin-only
                        // registry, never into the tenant's own database (whose users could
                        // swap a table there for a view that runs their code as the admin).
                        _ => vec![
                            format!("CREATE DATABASE IF NOT EXISTS {MYSQL_REGISTRY} CHARACTER SET utf8mb4"),
                            format!(
                                "CREATE TABLE IF NOT EXISTS {MYSQL_REGISTRY}.owners \
                                 (db VARCHAR(64) NOT NULL PRIMARY KEY, owner VARCHAR(255) NOT NULL)"
                            ),
                            format!(
                                "REPLACE INTO {MYSQL_REGISTRY}.owners (db, owner) VALUES ({}, {marker})",
                                sql_literal(&names.database)
                            ),
                            format!("CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4"),
                        ],
                    };
                    for statement in statements {
                        conn.query_drop(statement).await.map_err(|e| my_error(server, e))?;
                    }
                    tracing::info!(database = %names.database, "created database");
                }
                Ok(())
            }
        }
    }

    /// Whether the database of the service exists.
    pub(super) async fn exists(&mut self, names: &Names) -> Result<bool> {
        let server = self.server;
        match &mut self.conn {
            Conn::Postgres(admin) => Ok(!admin
                .query(
                    "SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1",
                    &[&names.database],
                )
                .await
                .map_err(|e| pg_error(server, e))?
                .is_empty()),
            Conn::Mysql { conn, .. } => my_exists(server, conn, names).await,
        }
    }

    /// Drops the database of the service (its sessions ended first on PostgreSQL) and, on
    /// PostgreSQL, its owner role.
    pub(super) async fn drop_database(&mut self, names: &Names) -> Result<()> {
        let server = self.server;
        match &mut self.conn {
            Conn::Postgres(admin) => {
                let db = pg_quote(&names.database);
                admin
                    .query(
                        "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
                         WHERE datname OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()",
                        &[&names.database],
                    )
                    .await
                    .map_err(|e| pg_error(server, e))?;
                // One statement each: DROP DATABASE cannot run in the implicit transaction of a batch.
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await
                    .map_err(|e| pg_error(server, e))?;
                admin.batch_execute(&format!("DROP ROLE IF EXISTS {db}")).await.map_err(|e| pg_error(server, e))?;
            }
            Conn::Mysql { conn, dialect } => {
                conn.query_drop(format!("DROP DATABASE IF EXISTS {}", my_quote(&names.database)))
                    .await
                    .map_err(|e| my_error(server, e))?;
                if *dialect == Dialect::Mysql {
                    conn.exec_drop(
                        format!("DELETE FROM {MYSQL_REGISTRY}.owners WHERE db = ?"),
                        (names.database.as_str(),),
                    )
                    .await
                    .map_err(|e| my_error(server, e))?;
                }
            }
        }
        tracing::info!(database = %names.database, "dropped database");
        Ok(())
    }

    /// Closes the connection (MySQL says goodbye; PostgreSQL's closes when dropped).
    pub(super) async fn close(self) {
        if let Conn::Mysql { conn, .. } = self.conn
            && let Err(e) = conn.disconnect().await
        {
            tracing::debug!(error = %e, "closing the database admin connection");
        }
    }
}

/// MySQL/MariaDB: whether the database of the service exists.
async fn my_exists(server: &DbServer, conn: &mut mysql_async::Conn, names: &Names) -> Result<bool> {
    let found: Option<u8> = conn
        .exec_first("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (names.database.as_str(),))
        .await
        .map_err(|e| my_error(server, e))?;
    Ok(found.is_some())
}

/// MySQL/MariaDB: the ownership marker of an existing database (`None`: it has none).
async fn my_marker(
    server: &DbServer,
    conn: &mut mysql_async::Conn,
    dialect: Dialect,
    names: &Names,
) -> Result<Option<String>> {
    if dialect == Dialect::MariaDb {
        let comment: Option<String> = conn
            .exec_first(
                "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (names.database.as_str(),),
            )
            .await
            .map_err(|e| my_error(server, e))?;
        return Ok(comment.filter(|c| !c.is_empty()));
    }
    let registry: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'owners' \
             AND TABLE_TYPE = 'BASE TABLE'",
            (MYSQL_REGISTRY.trim_matches('`'),),
        )
        .await
        .map_err(|e| my_error(server, e))?;
    if registry.is_none() {
        return Ok(None);
    }
    conn.exec_first(format!("SELECT owner FROM {MYSQL_REGISTRY}.owners WHERE db = ?"), (names.database.as_str(),))
        .await
        .map_err(|e| my_error(server, e))
}

/// PostgreSQL: the owner role and the database unless they exist (the role also when the
/// database is kept from before), both marked as the request's, `PUBLIC` kept out of the
/// database, the owner role's rights on the `public` schema.
async fn pg_ensure_database(
    server: &DbServer,
    admin: &tokio_postgres::Client,
    names: &Names,
    exists: bool,
) -> Result<()> {
    let db = pg_quote(&names.database);
    let role_exists = !admin
        .query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1", &[&names.database])
        .await
        .map_err(|e| pg_error(server, e))?
        .is_empty();
    let marker = sql_literal(&names.owner);
    if !role_exists {
        // One batch, one implicit transaction: no unmarked role is ever left behind.
        admin
            .batch_execute(&format!("CREATE ROLE {db} NOLOGIN; COMMENT ON ROLE {db} IS {marker}"))
            .await
            .map_err(|e| pg_error(server, e))?;
    }
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE {db} OWNER {db}")).await.map_err(|e| pg_error(server, e))?;
        tracing::info!(database = %names.database, "created database");
    }
    // Also finishes a creation interrupted between the two statements (`check_owner` allows it).
    admin.batch_execute(&format!("COMMENT ON DATABASE {db} IS {marker}")).await.map_err(|e| pg_error(server, e))?;
    admin.batch_execute(&format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC")).await.map_err(|e| pg_error(server, e))?;
    // PostgreSQL 15: `public` belongs to pg_database_owner (the owner role) and PUBLIC may not
    // CREATE there; the grant makes the owner role's rights explicit on older servers too,
    // where PUBLIC could CREATE.
    let in_db = pg_connect(server, &names.database).await?;
    in_db
        .batch_execute(&format!("GRANT ALL ON SCHEMA public TO {db}; REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        .await
        .map_err(|e| pg_error(server, e))?;
    Ok(())
}

/// A PostgreSQL connection as the admin user to `database`: verified TLS (required, never
/// downgraded) or, for a server on this machine or when allowed, none.
async fn pg_connect(server: &DbServer, database: &str) -> Result<tokio_postgres::Client> {
    use tokio_postgres::config::SslMode;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&server.host)
        .port(server.port)
        .user(&server.admin_username)
        .password(server.admin_password.expose_secret())
        .dbname(database)
        .application_name("paved")
        // Only pg_catalog: the admin also connects to a team's database, whose owner could
        // set a search_path with functions of its own (a client setting wins over the
        // database's).
        .options("-c search_path=pg_catalog,pg_temp")
        .connect_timeout(CONNECT_TIMEOUT);
    let client = match server.tls() {
        DbTls::Plain => {
            config.ssl_mode(SslMode::Disable);
            let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| pg_error(server, e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "database admin connection closed");
                }
            });
            client
        }
        DbTls::Verify { ca_cert } => {
            config.ssl_mode(SslMode::Require);
            let connector = server.pg_tls(ca_cert.as_deref()).map_err(|message| tls_config_error(server, message))?;
            let (client, connection) = config.connect(connector).await.map_err(|e| pg_error(server, e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "database admin connection closed");
                }
            });
            client
        }
    };
    Ok(client)
}

/// The CA of a server's TLS settings cannot be used.
fn tls_config_error(server: &DbServer, message: String) -> Error {
    Error::Database {
        server: server.server(),
        message: format!("cannot set up TLS: {message}"),
        hint:
            "set ca_cert of the database server to a readable PEM file with the CA that signed the server's certificate"
                .into(),
    }
}

/// A value for a URL query (`&`, `#`, `%`, space and the like escaped).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A MySQL connection as the admin user (to `database`, if any), over TCP only.
async fn mysql_connect(server: &DbServer, database: Option<&str>) -> Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(server.host.clone())
        .tcp_port(server.port)
        .user(Some(server.admin_username.clone()))
        .pass(Some(server.admin_password.expose_secret().to_string()))
        .db_name(database.filter(|d| !d.is_empty()).map(str::to_string))
        // Never switch to the server's Unix socket: the registered endpoint is the one used.
        .prefer_socket(false)
        .ssl_opts(match server.tls() {
            DbTls::Plain => None,
            // Required once set: a server without TLS is refused, never downgraded to.
            DbTls::Verify { ca_cert: Some(ca) } => {
                Some(mysql_async::SslOpts::default().with_root_certs(vec![ca.into()]).with_disable_built_in_roots(true))
            }
            DbTls::Verify { ca_cert: None } => Some(mysql_async::SslOpts::default()),
        });
    match tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts)).await {
        Ok(result) => result.map_err(|e| my_error(server, e)),
        Err(_) => Err(Error::Database {
            server: server.server(),
            message: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            hint: format!("check that MySQL runs at {} and accepts connections from here", server.server()),
        }),
    }
}

/// Maps a PostgreSQL error (its message names users and databases, never passwords).
fn pg_error(server: &DbServer, e: tokio_postgres::Error) -> Error {
    let at = server.server();
    let message = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => with_sources(&e),
    };
    let hint = if message.contains("no encryption") {
        "the server accepts TLS connections only: set ca_cert of the database server (verified TLS)".to_string()
    } else if message.contains("password authentication failed") || message.starts_with("28") {
        format!("check the admin username and password registered for {at}")
    } else if ["certificate", "TLS", "tls", "SSL", "ssl"].iter().any(|w| message.contains(w)) {
        format!(
            "TLS to {at} failed: check that the server offers TLS with a certificate for {} signed by ca_cert",
            server.host
        )
    } else if message.contains("onnect") || e.as_db_error().is_none() {
        format!("check that PostgreSQL runs at {at} and accepts connections from here")
    } else {
        "the admin user needs CREATEDB and CREATEROLE (or superuser) on the server".to_string()
    };
    Error::Database { server: at, message, hint }
}

/// Maps a MySQL error (server messages name users and databases, never passwords).
fn my_error(server: &DbServer, e: mysql_async::Error) -> Error {
    let at = server.server();
    let (message, hint) = match &e {
        mysql_async::Error::Server(s) => {
            let message = format!("{} ({}): {}", s.code, s.state, s.message);
            // 1045: access denied (wrong user or password); 28000: invalid authorization.
            let hint = if s.code == 1045 || s.state == "28000" {
                format!("check the admin username and password registered for {at}")
            } else {
                "the admin user needs CREATE, DROP, CREATE USER and GRANT OPTION on the server (e.g. ALL PRIVILEGES ON *.* WITH GRANT OPTION)".to_string()
            };
            (message, hint)
        }
        _ => (with_sources(&e), format!("check that MySQL runs at {at} and accepts connections from here")),
    };
    Error::Database { server: at, message, hint }
}

/// An error's message followed by those of its sources.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = s.source();
    }
    text
}

/// A double-quoted PostgreSQL identifier (names are validated: no quotes inside).
fn pg_quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A backquoted MySQL identifier (names are validated: no backquotes inside).
fn my_quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// The database of a MySQL database-level `GRANT`, where `_` and `%` are wildcards: escaped,
/// so the grant matches this database only.
fn my_grant_database(name: &str) -> String {
    my_quote(&name.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%"))
}

/// A single-quoted SQL string literal (PostgreSQL and MySQL in ANSI and default modes; the
/// markers paved writes hold no backslash).
fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An IPv6 address needs brackets in a URL.
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn names() -> Names {
        Names {
            database: "payments__payment_service__dev".into(),
            role: "payments_payment-service_dev".into(),
            info_path: "database/payments/payment-service/dev".into(),
            owner: "paved:team=payments;service=payment-service;env=dev".into(),
        }
    }

    #[test]
    fn connection_urls_per_engine() {
        // A server elsewhere: verified TLS, against the system's roots or a CA file.
        let pg = DbServer::new(DbEngine::Postgres, "db", 5432, "a", SecretString::from("p")).unwrap();
        assert_eq!(pg.tls(), DbTls::Verify { ca_cert: None });
        assert_eq!(
            Dialect::Postgres.connection_url(&pg, "svc_dev"),
            "postgresql://{{username}}:{{password}}@db:5432/svc_dev?sslmode=verify-full"
        );
        let pg = pg.ca_cert("/etc/ssl/db ca.pem");
        assert_eq!(
            Dialect::Postgres.connection_url(&pg, "svc_dev"),
            "postgresql://{{username}}:{{password}}@db:5432/svc_dev?sslmode=verify-full&sslrootcert=/etc/ssl/db%20ca.pem"
        );
        let pg = pg.vault_ca_cert("/vault/ca.pem");
        assert!(Dialect::Postgres.connection_url(&pg, "svc_dev").ends_with("sslrootcert=/vault/ca.pem"));
        // Plain only on this machine, or when allowed.
        let pg =
            DbServer::new(DbEngine::Postgres, "db", 5432, "a", SecretString::from("p")).unwrap().allow_plaintext(true);
        assert!(Dialect::Postgres.connection_url(&pg, "svc_dev").ends_with("/svc_dev?sslmode=disable"));
        for host in ["127.0.0.1", "localhost", "::1", "127.0.0.2"] {
            let local = DbServer::new(DbEngine::Postgres, host, 5432, "a", SecretString::from("p")).unwrap();
            assert_eq!(local.tls(), DbTls::Plain, "{host}");
            assert!(matches!(local.ca_cert("/ca.pem").tls(), DbTls::Verify { ca_cert: Some(_) }), "{host}");
        }
        let my = DbServer::new(DbEngine::Mysql, "::1", 3306, "a", SecretString::from("p")).unwrap();
        assert_eq!(Dialect::MariaDb.connection_url(&my, "svc_dev"), "{{username}}:{{password}}@tcp([::1]:3306)/");
        let my = DbServer::new(DbEngine::Mysql, "mysql.internal", 3306, "a", SecretString::from("p")).unwrap();
        assert!(Dialect::MariaDb.connection_url(&my, "svc_dev").ends_with("/?tls=true"));
        assert!(Dialect::MariaDb.connection_url(&my.ca_cert("/ca.pem"), "svc_dev").ends_with(":3306)/"));
        assert_eq!(Dialect::Postgres.username_template(), None);
        assert!(Dialect::Mysql.username_template().unwrap().contains("truncate 32"));
    }

    #[test]
    fn mysql_roles_get_their_own_database_only() {
        let (creation, revocation) = Dialect::Mysql.statements(&names());
        assert_eq!(
            creation,
            [
                "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
                "GRANT ALL PRIVILEGES ON `payments\\_\\_payment\\_service\\_\\_dev`.* TO '{{name}}'@'%';"
            ]
        );
        assert_eq!(revocation, ["DROP USER IF EXISTS '{{name}}'@'%';"]);
        // MariaDB also ends the sessions of a revoked user.
        let (_, revocation) = Dialect::MariaDb.statements(&names());
        assert_eq!(revocation, ["DROP USER IF EXISTS '{{name}}'@'%';", "KILL USER '{{name}}'@'%';"]);
        let (creation, _) = Dialect::Postgres.statements(&names());
        assert_eq!(creation[0], "SET search_path TO pg_catalog, pg_temp;");
        assert!(creation[1].contains("IN ROLE \"payments__payment_service__dev\""), "{creation:?}");
    }

    /// MySQL has no database comments: the markers are in the admin-only `paved_registry`.
    /// Run against MariaDB with the MySQL dialect forced (no MySQL server is installed here).
    #[tokio::test]
    async fn the_mysql_registry_tells_paved_databases_from_others() {
        let Some(db) = paved_testkit::MariaDb::start() else { return };
        let server = DbServer::new(
            DbEngine::Mysql,
            "127.0.0.1",
            db.port(),
            "root",
            SecretString::from(paved_testkit::MariaDb::PASSWORD),
        )
        .unwrap();
        let conn = mysql_connect(&server, None).await.unwrap();
        let mut admin = Admin { server: &server, conn: Conn::Mysql { conn, dialect: Dialect::Mysql } };
        let ours = names();
        admin.check_owner(&ours).await.unwrap();
        admin.ensure_database(&ours).await.unwrap();
        admin.check_owner(&ours).await.unwrap();
        // Another request whose database name is the same (a forged or earlier database).
        let theirs = Names { owner: "paved:team=search;service=payment-service;env=dev".into(), ..names() };
        let e = admin.check_owner(&theirs).await.unwrap_err();
        assert!(matches!(e, Error::Conflict { .. }), "{e}");
        // A database the registry does not know is not paved's, whatever it holds.
        let other = Names { database: "unmarked".into(), ..names() };
        let Conn::Mysql { conn, .. } = &mut admin.conn else { unreachable!() };
        conn.query_drop("CREATE DATABASE unmarked").await.unwrap();
        conn.query_drop("CREATE TABLE unmarked.owners (db VARCHAR(64), owner VARCHAR(255))").await.unwrap();
        assert!(matches!(admin.check_owner(&other).await, Err(Error::Conflict { .. })));
        // Dropping removes the marker: the name is free again.
        admin.drop_database(&ours).await.unwrap();
        let Conn::Mysql { conn, .. } = &mut admin.conn else { unreachable!() };
        let left: Option<String> = conn
            .exec_first("SELECT owner FROM paved_registry.owners WHERE db = ?", (ours.database.as_str(),))
            .await
            .unwrap();
        assert_eq!(left, None);
        admin.check_owner(&theirs).await.unwrap();
        admin.close().await;
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(pg_quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(my_quote("a`b"), "`a``b`");
        assert_eq!(my_grant_database("a_b%c"), "`a\\_b\\%c`");
        assert_eq!(sql_literal("it's"), "'it''s'");
    }
}
