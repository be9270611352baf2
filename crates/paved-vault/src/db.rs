//! [`VaultDbProvisioner`]: a [`DbProvisioner`] on the Vault / OpenBao database secrets engine.
//!
//! See [`VaultDbProvisioner`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{DatabaseInfo, DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, SecretMap};
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use secrecy::{ExposeSecret, SecretString};

use crate::client::{Client, Idempotent, op};
use crate::error::{Error, Result};
use crate::kv::VaultSecretStore;

mod admin;
mod tls;

use admin::{Admin, Dialect};

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); MySQL keeps 64.
const MAX_IDENTIFIER: usize = 63;

/// The Vault database plugin for an engine, or an error with a hint for engines this
/// provisioner does not support (`mongodb`).
pub fn plugin_name(engine: DbEngine) -> Result<&'static str> {
    match engine {
        DbEngine::Postgres => Ok("postgresql-database-plugin"),
        DbEngine::Mysql => Ok("mysql-database-plugin"),
        other => Err(Error::UnsupportedEngine {
            engine: other.to_string(),
            reason: "the vault database provisioner supports postgres and mysql only".into(),
            hint: "ask for the `engine` postgres (or mysql), or provision it with a backend that supports it".into(),
        }),
    }
}

/// A database server registered with the provisioner: where it is and how to administer it.
///
/// `Debug` never shows the admin password.
#[derive(Clone)]
pub struct DbServer {
    engine: DbEngine,
    plugin_name: &'static str,
    host: String,
    port: u16,
    admin_username: String,
    admin_password: SecretString,
    admin_database: Option<String>,
    ca_cert: Option<PathBuf>,
    vault_ca_cert: Option<String>,
    allow_plaintext: bool,
    /// The verifying TLS connector for PostgreSQL, made once (reading the CA file or the
    /// system's roots) and shared by every admin connection.
    pg_tls: std::sync::Arc<std::sync::OnceLock<tls::MakeRustls>>,
}

/// How paved and Vault connect to a database server ([`DbServer::tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbTls {
    /// Verified TLS (`sslmode=verify-full`): the certificate must chain to `ca_cert` (a PEM
    /// file; `None`: the system's roots) and name the host.
    Verify {
        /// The CA certificates paved trusts, if not the system's.
        ca_cert: Option<PathBuf>,
    },
    /// No TLS: for a server on this machine, or when allowed explicitly
    /// ([`DbServer::allow_plaintext`]).
    Plain,
}

impl fmt::Debug for DbServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbServer")
            .field("engine", &self.engine)
            .field("plugin_name", &self.plugin_name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_username", &self.admin_username)
            .field("admin_password", &"<redacted>")
            .field("admin_database", &self.admin_database)
            .field("tls", &self.tls())
            .finish()
    }
}

impl DbServer {
    /// A server running `engine` at `host:port`, administered as `admin_username`.
    ///
    /// `engine` is `postgres` or `mysql` (MySQL or MariaDB); fails for engines without a Vault
    /// database plugin here (`mongodb`).
    pub fn new(
        engine: DbEngine,
        host: impl Into<String>,
        port: u16,
        admin_username: impl Into<String>,
        admin_password: SecretString,
    ) -> Result<Self> {
        let plugin_name = plugin_name(engine)?;
        let host = host.into();
        // A host name, an IPv4 address or an IPv6 address: nothing that means something in a
        // URL or in Vault's `{{…}}` templates.
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c)) {
            return Err(Error::Config {
                message: format!("database server host {host:?} is not a host name or address"),
                hint: "give the host alone, e.g. db.internal or 10.0.0.5, and the port separately".into(),
            });
        }
        Ok(DbServer {
            engine,
            plugin_name,
            host,
            port,
            admin_username: admin_username.into(),
            admin_password,
            admin_database: None,
            ca_cert: None,
            vault_ca_cert: None,
            allow_plaintext: false,
            pg_tls: Default::default(),
        })
    }

    /// The verifying TLS connector for PostgreSQL (see [`DbServer::tls`]), made on first use.
    fn pg_tls(&self, ca_cert: Option<&std::path::Path>) -> std::result::Result<tls::MakeRustls, String> {
        if let Some(made) = self.pg_tls.get() {
            return Ok(made.clone());
        }
        let made = tls::roots(ca_cert).and_then(tls::connector)?;
        Ok(self.pg_tls.get_or_init(|| made).clone())
    }

    /// Verifies the server's certificate against the CA certificates of this PEM file (default:
    /// the system's roots). Also turns TLS on for a server on this machine.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Where the Vault server finds the CA file for PostgreSQL connections (its plugin reads
    /// `sslrootcert` as a path on the Vault server; default: the [`DbServer::ca_cert`] path).
    /// MySQL connections get the CA's contents instead.
    pub fn vault_ca_cert(mut self, path: impl Into<String>) -> Self {
        self.vault_ca_cert = Some(path.into());
        self
    }

    /// Connects without TLS to a server that is not on this machine (default `false`: the
    /// admin password would cross the network in clear text).
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.allow_plaintext = allow;
        self
    }

    /// How connections to the server are secured: verified TLS, unless the server is on this
    /// machine (`localhost`, `127.0.0.0/8`, `::1`) or plain connections are allowed, and no
    /// CA is configured.
    pub fn tls(&self) -> DbTls {
        let loopback = self.host.eq_ignore_ascii_case("localhost")
            || self.host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match (&self.ca_cert, loopback || self.allow_plaintext) {
            (None, true) => DbTls::Plain,
            (ca_cert, _) => DbTls::Verify { ca_cert: ca_cert.clone() },
        }
    }

    /// The CA path the Vault server reads for PostgreSQL connections.
    fn vault_ca_path(&self) -> Option<String> {
        self.vault_ca_cert.clone().or_else(|| self.ca_cert.as_ref().map(|p| p.display().to_string()))
    }

    /// The database the admin connects to for server-wide statements (default: `postgres` on
    /// PostgreSQL, none on MySQL).
    pub fn admin_database(mut self, database: impl Into<String>) -> Self {
        self.admin_database = Some(database.into()).filter(|d| !d.is_empty());
        self
    }

    /// The engine.
    pub fn engine(&self) -> DbEngine {
        self.engine
    }

    /// The Vault database plugin, e.g. `postgresql-database-plugin`.
    pub fn plugin_name(&self) -> &str {
        self.plugin_name
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The names a request maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names {
    /// The database, also the name of its `NOLOGIN` owner role on PostgreSQL:
    /// `{team}__{service}__{env}` with `-` as `_`.
    database: String,
    /// The Vault role and connection name, `{team}_{service}_{env}`.
    role: String,
    /// The KV path of the connection info, relative to the KV mount.
    info_path: String,
    /// The ownership marker paved puts on the database (and PostgreSQL owner role) it creates,
    /// `paved:team={team};service={service};env={env}`, checked before anything is reused.
    owner: String,
}

/// Checks a name from the request: lowercase letters, digits and `-`, starting with a letter.
fn check_label(field: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        Some("is empty".to_string())
    } else if value.len() > MAX_IDENTIFIER {
        Some(format!("is {} characters long; the limit is {MAX_IDENTIFIER}", value.len()))
    } else if !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Some("may only contain lowercase letters, digits and `-`".to_string())
    } else if !value.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase letter".to_string())
    } else if value.ends_with('-') {
        Some("must not end with `-`".to_string())
    } else if value.contains("--") {
        // `-` becomes `_` in database names, whose parts are joined with `__`.
        Some("must not contain `--`".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { field, value: value.to_string(), reason }),
        None => Ok(()),
    }
}

fn names(request: &DatabaseRequest) -> Result<Names> {
    let (team, service, env) = (request.team.as_str(), request.service.as_str(), request.environment.as_str());
    check_label("team", team)?;
    check_label("service", service)?;
    check_label("environment", env)?;
    // Unambiguous: no part contains `_` or `--`, or starts or ends with `-`, so `__` only ever
    // separates parts; in the role, `_` does.
    let database = [team, service, env].map(|p| p.replace('-', "_")).join("__");
    if database.len() > MAX_IDENTIFIER {
        return Err(Error::InvalidName {
            field: "database name",
            reason: format!(
                "is {} characters long; the limit is {MAX_IDENTIFIER} (PostgreSQL's): shorten the team, service or environment name",
                database.len()
            ),
            value: database,
        });
    }
    Ok(Names {
        database,
        role: format!("{team}_{service}_{env}"),
        info_path: format!("database/{team}/{service}/{env}"),
        owner: format!("paved:team={team};service={service};env={env}"),
    })
}

/// `POST sys/leases/revoke-prefix/{prefix}` (not in vaultrs).
struct RevokePrefix {
    prefix: String,
}

impl rustify::Endpoint for RevokePrefix {
    type Response = ();
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("sys/leases/revoke-prefix/{}", self.prefix)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }
}

/// `GET {mount}/config/{name}` with every connection detail: vaultrs' answer type keeps only
/// the URL and the username, not the username template.
struct ReadConnection {
    mount: String,
    name: String,
}

/// `POST {mount}/config/{name}`: configures a connection with any plugin's fields (the body
/// holds the admin password: never logged, no `Debug`).
struct WriteConnection {
    mount: String,
    name: String,
    body: serde_json::Value,
}

impl rustify::Endpoint for WriteConnection {
    type Response = ();
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("{}/config/{}", self.mount, self.name)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }

    fn body(&self) -> std::result::Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(Some(self.body.to_string().into_bytes()))
    }
}

/// The answer of [`ReadConnection`] (the password is never part of it).
#[derive(serde::Deserialize)]
struct ConnectionConfig {
    plugin_name: String,
    #[serde(default)]
    allowed_roles: Vec<String>,
    #[serde(default)]
    connection_details: serde_json::Map<String, serde_json::Value>,
}

impl rustify::Endpoint for ReadConnection {
    type Response = ConnectionConfig;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("{}/config/{}", self.mount, self.name)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::GET
    }
}

/// A [`DbProvisioner`] on the Vault / OpenBao database secrets engine and a registered
/// PostgreSQL, MySQL or MariaDB server.
///
/// For a request `(team, service, engine, environment)` on a registered server of that engine:
///
/// * the database `{team}__{service}__{environment}` (`-` becomes `_`; team, service and
///   environment may not contain `--`, so no two requests share a name) is created unless it
///   exists, marked as the request's (`paved:team=…;service=…;env=…`: a comment on PostgreSQL
///   and MariaDB, a row of the admin-only `paved_registry.owners` on MySQL). PostgreSQL: owned by a `NOLOGIN` role of the
///   same name (marked too), with `CONNECT` and `TEMPORARY` on it revoked from `PUBLIC`, so the
///   users of other services cannot connect. MySQL/MariaDB: `utf8mb4`; no user has rights on it
///   but those the role grants, on that database only (`_` escaped in the grant). A database or
///   role of that name that paved did not create for this request (no marker, another owner, a
///   role with privileges or memberships) is never taken over: that is a conflict error and
///   nothing is changed;
/// * a connection and a role, both named `{team}_{service}_{environment}`, are configured in
///   the database secrets engine (plugin `postgresql-database-plugin` or
///   `mysql-database-plugin`, connecting as the admin user). Each credential read from
///   `{mount}/creds/{role}` is, on PostgreSQL, a login role that is a member of the owner role
///   and acts as it (`SET role`), so the tables one credential creates are usable by the next;
///   on MySQL/MariaDB, a user `'v-{role, 13 characters}-{16 random}'@'%'` (32 characters at
///   most) with `ALL PRIVILEGES` on that database and nothing else. Revoking a lease drops the
///   user and ends its sessions (PostgreSQL and MariaDB; MySQL has no statement for that);
/// * the connection info (engine, host, port, database, role, the creds path: never a
///   password) is written to `database/{team}/{service}/{environment}` on the KV v2 mount of
///   the store.
///
/// The database secrets engine is enabled at its mount (default `database`) when missing.
/// A connection or role of that name in Vault that reaches another database is never
/// overwritten either (a conflict), unless paved's connection info says it is this request's.
/// `deprovision` revokes every lease of the role (`sys/leases/revoke-prefix`), deletes the
/// role, the connection and the connection info, and with `drop_data` drops the database (on
/// PostgreSQL its sessions terminated, and its owner role too), after checking its marker. Every step is idempotent:
/// re-provisioning changes nothing and answers the same.
///
/// Every name is validated before the first call to Vault or the database server, and the KV
/// mount and the admin login are checked before anything is created: bad input creates
/// nothing. MongoDB is refused.
///
/// Uses the HTTP client, login, retries and KV v2 mount of a [`VaultSecretStore`]. Neither the
/// admin password nor generated credentials appear in `Debug` output, errors or logs.
///
/// ```no_run
/// use paved_core::{DatabaseRequest, DbEngine, DbProvisioner};
/// use paved_vault::{DbServer, VaultConfig, VaultDbProvisioner, VaultSecretStore};
/// use secrecy::SecretString;
/// # async fn run(admin_password: SecretString) -> paved_core::Result<()> {
/// let store = VaultSecretStore::connect(VaultConfig::from_env()?).await?;
/// let server = DbServer::new(DbEngine::Postgres, "db.internal", 5432, "vault-admin", admin_password)?;
/// let provisioner = VaultDbProvisioner::new(store, server);
/// let request = DatabaseRequest::new("payments", "payment-service", "postgres", "production", "large")?;
/// let info = provisioner.provision(&request).await?;
/// // database/creds/payments_payment-service_production
/// println!("{:?}", info.credentials_path);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct VaultDbProvisioner {
    /// Sends the calls to the database secrets engine and `sys/` (the store's client).
    client: Client,
    /// Keeps the connection info.
    store: VaultSecretStore,
    mount: String,
    server: DbServer,
    default_ttl: Duration,
    max_ttl: Duration,
}

impl fmt::Debug for VaultDbProvisioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultDbProvisioner")
            .field("store", &self.store)
            .field("mount", &self.mount)
            .field("server", &self.server)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .finish()
    }
}

impl VaultDbProvisioner {
    /// The default mount of the database secrets engine.
    pub const DEFAULT_MOUNT: &'static str = "database";

    /// A provisioner on `server`, talking to Vault through `store` (whose KV v2 mount receives
    /// the connection info), with the database secrets engine at `database/`, credentials
    /// valid for 1 h (renewable up to 24 h).
    pub fn new(store: VaultSecretStore, server: DbServer) -> Self {
        VaultDbProvisioner {
            client: store.client().clone(),
            store,
            mount: Self::DEFAULT_MOUNT.into(),
            server,
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Sets the mount of the database secrets engine (default `database`).
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_string();
        self
    }

    /// Sets the default and maximum lifetime of generated credentials (whole seconds).
    pub fn ttl(mut self, default: Duration, max: Duration) -> Self {
        self.default_ttl = default;
        self.max_ttl = max;
        self
    }

    /// The registered server.
    pub fn server(&self) -> &DbServer {
        &self.server
    }

    /// The Vault role (and connection) name of a request, `{team}_{service}_{env}`.
    pub fn role_name(&self, request: &DatabaseRequest) -> Result<String> {
        Ok(names(request)?.role)
    }

    /// Validates a request: names, and an engine the registered server runs and this
    /// provisioner can create databases on.
    fn check(&self, request: &DatabaseRequest) -> Result<Names> {
        plugin_name(request.engine)?;
        if request.engine != self.server.engine {
            return Err(Error::UnsupportedEngine {
                engine: request.engine.to_string(),
                reason: format!("the registered database server {} runs {}", self.server.server(), self.server.engine),
                hint: format!("ask for the `engine` {}, or register a {} server", self.server.engine, request.engine),
            });
        }
        names(request)
    }

    fn info(&self, names: &Names, state: DatabaseState) -> DatabaseInfo {
        let mut info = DatabaseInfo::new(state, names.database.clone());
        if state == DatabaseState::Available {
            info.endpoint = Some((self.server.host.clone(), self.server.port));
            info.credentials_path = Some(self.creds_path(names));
            info.connection_info_path = Some(format!("{}/{}", self.store.mount(), names.info_path));
        }
        info
    }

    fn creds_path(&self, names: &Names) -> String {
        format!("{}/creds/{}", self.mount, names.role)
    }

    /// What goes to KV: nothing secret.
    fn connection_info(&self, names: &Names) -> SecretMap {
        [
            ("engine", self.server.engine.to_string()),
            ("host", self.server.host.clone()),
            ("port", self.server.port.to_string()),
            ("database", names.database.clone()),
            ("role", names.role.clone()),
            ("credentials_path", self.creds_path(names)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v)))
        .collect()
    }

    async fn provision_db(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        let names = self.check(request)?;
        let names = &names;
        // Reading first also checks the KV mount before anything is created.
        let existing = match self.store.read(&names.info_path).await {
            Ok(map) => Some(map),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        // So is the admin login: a wrong password stops here, before anything is created.
        let mut admin = Admin::connect(&self.server).await?;
        let dialect = admin.dialect();
        // Nothing of the same name that paved did not create for this request is taken over.
        admin.check_owner(names).await?;
        // Read once: checked first, then compared with what this request needs.
        let (connection, role) = (self.read_connection(names).await?, self.read_role(names).await?);
        self.check_vault_objects(names, dialect, existing.as_ref(), connection.as_ref(), role.as_ref())?;
        self.ensure_mount().await?;
        admin.ensure_database(names).await?;
        admin.close().await;
        self.ensure_connection(names, dialect, connection).await?;
        self.ensure_role(names, dialect, role).await?;
        let info = self.connection_info(names);
        if !existing.as_ref().is_some_and(|old| same_map(old, &info)) {
            self.store.write(&names.info_path, &info).await?;
        }
        tracing::info!(database = %names.database, role = %names.role, "database provisioned");
        Ok(self.info(names, DatabaseState::Available))
    }

    async fn database_status(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        let names = self.check(request)?;
        let names = &names;
        let what = format!("{}/roles/{}", self.mount, names.role);
        let role = match self
            .client
            .call(&what, Idempotent::Yes, op!(|c| vaultrs::database::role::read(c, &self.mount, &names.role)))
            .await
        {
            Ok(_) => true,
            Err(Error::Api { status: 404, .. } | Error::MountNotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        let state =
            if role && self.database_exists(names).await? { DatabaseState::Available } else { DatabaseState::Absent };
        Ok(self.info(names, state))
    }

    async fn deprovision_db(&self, request: &DatabaseRequest, drop_data: bool) -> Result<()> {
        let names = self.check(request)?;
        let names = &names;
        // Only a database paved created for this request is dropped: checked before any revocation.
        let admin = match drop_data {
            true => {
                let mut admin = Admin::connect(&self.server).await?;
                admin.check_owner(names).await?;
                Some(admin)
            }
            false => None,
        };
        // Vault and OpenBao revoke the leases under `{prefix}/` only: the leases of a role whose
        // name merely starts with this one stay (tested by the DbProvisioner suite).
        let prefix = format!("{}/creds/{}", self.mount, names.role);
        let what = format!("sys/leases/revoke-prefix/{prefix}");
        let prefix = prefix.as_str();
        self.client
            .call(
                &what,
                Idempotent::Yes,
                op!(|c| vaultrs::api::exec_with_empty(c, RevokePrefix { prefix: prefix.to_string() })),
            )
            .await?;
        let what = format!("{}/roles/{}", self.mount, names.role);
        ignore_missing(
            self.client
                .call(&what, Idempotent::Yes, op!(|c| vaultrs::database::role::delete(c, &self.mount, &names.role)))
                .await,
        )?;
        let what = format!("{}/config/{}", self.mount, names.role);
        ignore_missing(
            self.client
                .call(
                    &what,
                    Idempotent::Yes,
                    op!(|c| vaultrs::database::connection::delete(c, &self.mount, &names.role)),
                )
                .await,
        )?;
        ignore_missing(self.store.destroy_all(&names.info_path).await)?;
        if let Some(mut admin) = admin {
            admin.drop_database(names).await?;
            admin.close().await;
        }
        tracing::info!(database = %names.database, role = %names.role, drop_data, "database deprovisioned");
        Ok(())
    }

    /// Enables the database secrets engine at the mount unless it is there.
    async fn ensure_mount(&self) -> Result<()> {
        let mounts = self.client.call("sys/mounts", Idempotent::Yes, op!(|c| vaultrs::sys::mount::list(c))).await?;
        match mounts.get(&format!("{}/", self.mount)) {
            Some(m) if m.mount_type == "database" => Ok(()),
            Some(m) => Err(Error::Config {
                message: format!("{}/ is a {} mount, not the database secrets engine", self.mount, m.mount_type),
                hint: "choose another mount for the database secrets engine".into(),
            }),
            None => {
                let what = format!("sys/mounts/{}", self.mount);
                self.client
                    .call(
                        &what,
                        Idempotent::Yes,
                        op!(|c| vaultrs::sys::mount::enable(c, &self.mount, "database", None)),
                    )
                    .await?;
                tracing::info!(mount = %self.mount, "enabled the database secrets engine");
                Ok(())
            }
        }
    }

    async fn database_exists(&self, names: &Names) -> Result<bool> {
        let mut admin = Admin::connect(&self.server).await?;
        let exists = admin.exists(names).await?;
        admin.close().await;
        Ok(exists)
    }

    /// The connection `{role}`, if it exists.
    async fn read_connection(&self, names: &Names) -> Result<Option<ConnectionConfig>> {
        let what = format!("{}/config/{}", self.mount, names.role);
        let read = || ReadConnection { mount: self.mount.clone(), name: names.role.clone() };
        match self.client.call(&what, Idempotent::Yes, op!(|c| vaultrs::api::exec_with_result(c, read()))).await {
            Ok(c) => Ok(Some(c)),
            Err(Error::Api { status: 404, .. } | Error::MountNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The role `{role}`, if it exists.
    async fn read_role(&self, names: &Names) -> Result<Option<vaultrs::api::database::responses::ReadRoleResponse>> {
        let what = format!("{}/roles/{}", self.mount, names.role);
        match self
            .client
            .call(&what, Idempotent::Yes, op!(|c| vaultrs::database::role::read(c, &self.mount, &names.role)))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(Error::Api { status: 404, .. } | Error::MountNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Refuses a Vault connection or role of this request's name that reaches another database
    /// than this request's, unless paved's connection info (`existing`) says it is this
    /// request's (then it is updated, e.g. after the server moved). Never overwrites another's.
    fn check_vault_objects(
        &self,
        names: &Names,
        dialect: Dialect,
        existing: Option<&SecretMap>,
        connection: Option<&ConnectionConfig>,
        role: Option<&vaultrs::api::database::responses::ReadRoleResponse>,
    ) -> Result<()> {
        let ours = existing.is_some_and(|info| {
            let field = |k: &str| info.get(k).map(|v| v.expose_secret().to_string());
            field("role").as_deref() == Some(names.role.as_str())
                && field("database").as_deref() == Some(names.database.as_str())
        });
        if ours {
            return Ok(());
        }
        let conflict = |path: String, what: &str| Error::Conflict {
            what: format!("{}/{path}", self.mount),
            message: format!("exists and {what}; paved does not overwrite it"),
            hint: format!(
                "if nothing uses it, remove it (bao delete {}/{path}) and provision again; otherwise choose another service name",
                self.mount
            ),
        };
        if let Some(c) = connection {
            let url = c.connection_details.get("connection_url").and_then(|v| v.as_str());
            if url != Some(dialect.connection_url(&self.server, &names.database).as_str())
                || c.allowed_roles != [names.role.clone()]
            {
                return Err(conflict(
                    format!("config/{}", names.role),
                    &format!("reaches another database than {}", names.database),
                ));
            }
        }
        if let Some(r) = role
            && (r.db_name != names.role || r.creation_statements != dialect.statements(names).0)
        {
            return Err(conflict(
                format!("roles/{}", names.role),
                &format!("issues other credentials than those for {}", names.database),
            ));
        }
        Ok(())
    }

    /// Configures the connection `{role}` unless it (`current`) is configured the same way
    /// already.
    async fn ensure_connection(
        &self,
        names: &Names,
        dialect: Dialect,
        current: Option<ConnectionConfig>,
    ) -> Result<()> {
        let url = dialect.connection_url(&self.server, &names.database);
        // MySQL verifies against a configured CA given inline (PostgreSQL reads a path).
        let tls_ca = match (dialect, self.server.tls()) {
            (Dialect::Mysql | Dialect::MariaDb, DbTls::Verify { ca_cert: Some(path) }) => {
                Some(std::fs::read_to_string(&path).map_err(|e| Error::Config {
                    message: format!("cannot read the CA certificate {} of the database server: {e}", path.display()),
                    hint: "set ca_cert of the database server to a readable PEM file".into(),
                })?)
            }
            _ => None,
        };
        let template = dialect.username_template();
        let what = format!("{}/config/{}", self.mount, names.role);
        let same = current.is_some_and(|c| {
            let detail = |key: &str| c.connection_details.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
            c.plugin_name == self.server.plugin_name
                && detail("connection_url") == Some(url.as_str())
                && detail("username") == Some(self.server.admin_username.as_str())
                && detail("username_template") == template
                && c.allowed_roles == [names.role.clone()]
                && detail("tls_ca").map(str::trim) == tls_ca.as_deref().map(str::trim)
        });
        if same {
            return Ok(());
        }
        // The fields of every SQL plugin, and the MySQL plugin's `tls_ca` (not in vaultrs).
        let mut body = serde_json::json!({
            "plugin_name": self.server.plugin_name,
            "connection_url": url,
            "allowed_roles": [names.role],
            "username": self.server.admin_username,
            "password": self.server.admin_password.expose_secret(),
            "verify_connection": true,
        });
        if let Some(template) = template {
            body["username_template"] = template.into();
        }
        if let Some(ca) = tls_ca {
            body["tls_ca"] = ca.into();
        }
        let write = || WriteConnection { mount: self.mount.clone(), name: names.role.clone(), body: body.clone() };
        self.client.call(&what, Idempotent::Yes, op!(|c| vaultrs::api::exec_with_empty(c, write()))).await?;
        tracing::info!(connection = %names.role, "configured database connection");
        Ok(())
    }

    /// Writes the role `{role}` unless it (`current`) is written the same way already.
    async fn ensure_role(
        &self,
        names: &Names,
        dialect: Dialect,
        current: Option<vaultrs::api::database::responses::ReadRoleResponse>,
    ) -> Result<()> {
        let (creation, revocation) = dialect.statements(names);
        let what = format!("{}/roles/{}", self.mount, names.role);
        let same = current.is_some_and(|r| {
            r.db_name == names.role
                && r.creation_statements == creation
                && r.revocation_statements == revocation
                && r.default_ttl == self.default_ttl.as_secs()
                && r.max_ttl == self.max_ttl.as_secs()
        });
        if same {
            return Ok(());
        }
        let mut opts = vaultrs::api::database::requests::SetRoleRequest::builder();
        opts.db_name(names.role.clone())
            .creation_statements(creation)
            .revocation_statements(revocation)
            .default_ttl(self.default_ttl.as_secs().to_string())
            .max_ttl(self.max_ttl.as_secs().to_string());
        let opts = &opts;
        self.client
            .call(&what, Idempotent::Yes, move |c: std::sync::Arc<vaultrs::client::VaultClient>| async move {
                let mut opts = opts.clone();
                vaultrs::database::role::set(&*c, &self.mount, &names.role, Some(&mut opts)).await
            })
            .await?;
        tracing::info!(role = %names.role, "configured database role");
        Ok(())
    }
}

fn same_map(a: &SecretMap, b: &SecretMap) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| w.expose_secret() == v.expose_secret()))
}

fn ignore_missing(result: Result<()>) -> Result<()> {
    match result {
        Err(Error::Api { status: 404, .. } | Error::NotFound { .. } | Error::MountNotFound { .. }) => Ok(()),
        other => other,
    }
}

#[async_trait]
impl DbProvisioner for VaultDbProvisioner {
    fn name(&self) -> &str {
        "vault"
    }

    #[tracing::instrument(name = "vault.db.provision", skip_all, fields(team = %request.team, service = %request.service, env = %request.environment))]
    async fn provision(&self, request: &DatabaseRequest) -> paved_core::Result<DatabaseInfo> {
        Ok(self.provision_db(request).await?)
    }

    #[tracing::instrument(name = "vault.db.status", skip_all, fields(team = %request.team, service = %request.service, env = %request.environment))]
    async fn status(&self, request: &DatabaseRequest) -> paved_core::Result<DatabaseInfo> {
        Ok(self.database_status(request).await?)
    }

    #[tracing::instrument(name = "vault.db.deprovision", skip_all, fields(team = %request.team, service = %request.service, env = %request.environment))]
    async fn deprovision(&self, request: &DatabaseRequest, drop_data: bool) -> paved_core::Result<()> {
        Ok(self.deprovision_db(request, drop_data).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(env: &str) -> DatabaseRequest {
        DatabaseRequest::new("payments", "payment-service", "postgres", env, "small").unwrap()
    }

    #[test]
    fn names_follow_the_platform_conventions() {
        let n = names(&request("prod-eu")).unwrap();
        assert_eq!(n.database, "payments__payment_service__prod_eu");
        assert_eq!(n.role, "payments_payment-service_prod-eu");
        assert_eq!(n.info_path, "database/payments/payment-service/prod-eu");
        assert_eq!(n.owner, "paved:team=payments;service=payment-service;env=prod-eu");
    }

    /// Hyphens move between parts without two requests ever sharing a name.
    #[test]
    fn names_of_different_requests_never_collide() {
        let of = |team: &str, service: &str, env: &str| {
            names(&DatabaseRequest::new(team, service, "postgres", env, "small").unwrap()).unwrap()
        };
        let pairs = [
            (of("a", "b-c", "dev"), of("a-b", "c", "dev")),
            (of("a", "b", "c-dev"), of("a", "b-c", "dev")),
            (of("payments", "payment-service", "staging"), of("search", "payment-service", "staging")),
        ];
        for (x, y) in pairs {
            assert_ne!(x.database, y.database);
            assert_ne!(x.role, y.role);
            assert_ne!(x.owner, y.owner);
        }
        // `--` would make `__` ambiguous in database names: refused.
        let e = names(&DatabaseRequest::new("a--b", "c", "postgres", "dev", "small").unwrap()).unwrap_err();
        assert!(matches!(e, Error::InvalidName { field: "team", .. }), "{e}");
    }

    #[test]
    fn bad_names_are_rejected() {
        for env in ["", "Prod", "prod db", "prod;drop", "9x", "x-", "prod\"x"] {
            let e = names(&request(env)).unwrap_err();
            assert!(matches!(e, Error::InvalidName { field: "environment", .. }), "{env}: {e}");
            assert!(e.hint().is_some());
        }
        let e = names(&request(&"e".repeat(50))).unwrap_err();
        assert!(matches!(e, Error::InvalidName { field: "database name", .. }), "{e}");
    }

    #[test]
    fn engines_map_to_plugins() {
        assert_eq!(plugin_name(DbEngine::Postgres).unwrap(), "postgresql-database-plugin");
        assert_eq!(plugin_name(DbEngine::Mysql).unwrap(), "mysql-database-plugin");
        let e = plugin_name(DbEngine::Mongodb).unwrap_err();
        let core = paved_core::Error::from(e);
        assert!(core.to_string().contains("mongodb"), "{core}");
        assert!(core.hint().unwrap().contains("postgres"), "{core:?}");
    }

    #[test]
    fn the_admin_password_stays_out_of_debug() {
        let s = DbServer::new(DbEngine::Postgres, "db", 5432, "admin", SecretString::from("pw-canary-1")).unwrap();
        assert!(!format!("{s:?}").contains("pw-canary-1"));
        assert!(DbServer::new(DbEngine::Postgres, "db:5432/x", 5432, "a", SecretString::from("p")).is_err());
        let s = DbServer::new(DbEngine::Mysql, "db", 3306, "admin", SecretString::from("pw-canary-2")).unwrap();
        assert!(!format!("{s:?}").contains("pw-canary-2"));
        assert_eq!(s.plugin_name(), "mysql-database-plugin");
    }
}
