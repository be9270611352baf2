//! The `DbProvisioner` suite: the lifecycle every provisioner must follow, written once; the
//! engine-specific part (do the generated credentials connect, and only to their own database)
//! goes through a [`DbProbe`] that each backend's test implements for its engine.

use std::sync::Arc;

use async_trait::async_trait;
use paved_core::secrecy::SecretString;
use paved_core::{DatabaseInfo, DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, Error};

use super::{Failure, Harness, Outcome, Report, Scenario, error_text};

/// What a backend may lack; scenarios that need it are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbProvisionerCapability {
    /// The test can reach the database server itself (a [`DbProbe`]).
    Probe,
    /// The provisioner refuses some engine ([`DbProvisionerHarness::unsupported_engine`]).
    RefusesAnEngine,
}

/// Credentials generated for a provisioned database.
#[derive(Debug, Clone)]
pub struct DbCredentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: SecretString,
}

/// A connection to a database server made with generated credentials.
#[async_trait]
pub trait DbSession: Send {
    /// Runs a statement that returns no rows.
    async fn execute(&mut self, sql: &str) -> Result<(), String>;

    /// Runs a query and answers the first column of the first row as text (`None`: no row).
    async fn query_one(&mut self, sql: &str) -> Result<Option<String>, String>;
}

/// The database server behind a provisioner, as the test reaches it: implemented once per
/// engine by the test of a backend (PostgreSQL, MariaDB, …).
#[async_trait]
pub trait DbProbe: Send + Sync {
    /// New credentials for a provisioned database, obtained the way an app obtains them (from
    /// [`DatabaseInfo::credentials_path`]).
    async fn issue(&self, info: &DatabaseInfo) -> Result<DbCredentials, String>;

    /// Connects to `database` with `credentials`; the server's message when it refuses.
    async fn connect(&self, credentials: &DbCredentials, database: &str) -> Result<Box<dyn DbSession>, String>;

    /// Everything a provisioner can create on the server and in its own bookkeeping
    /// (databases, users or roles, …), one entry a line, sorted: compared before and after.
    async fn inventory(&self) -> Result<Vec<String>, String>;
}

/// The provisioner under test, the engine its requests ask for, and its probe.
#[non_exhaustive]
pub struct DbProvisionerHarness {
    /// The provisioner.
    pub provisioner: Arc<dyn DbProvisioner>,
    /// The engine the suite's requests ask for.
    pub engine: DbEngine,
    /// An engine the provisioner refuses, if any.
    pub unsupported_engine: Option<DbEngine>,
    /// How the test reaches the database server, if it can.
    pub probe: Option<Arc<dyn DbProbe>>,
    /// The backend's name in reports (`vault+postgres`).
    pub label: String,
}

impl DbProvisionerHarness {
    /// A harness for a provisioner serving `engine`, without a probe.
    pub fn new(provisioner: Arc<dyn DbProvisioner>, engine: DbEngine) -> Self {
        let label = format!("{}+{engine}", provisioner.name());
        DbProvisionerHarness { provisioner, engine, unsupported_engine: None, probe: None, label }
    }

    /// The same harness with an engine the provisioner refuses.
    pub fn refusing(mut self, engine: DbEngine) -> Self {
        self.unsupported_engine = Some(engine);
        self
    }

    /// The same harness with a probe of the database server.
    pub fn with_probe(mut self, probe: Arc<dyn DbProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// A valid request of the suite's engine.
    ///
    /// # Panics
    /// When the names are not valid (the suite's are).
    pub fn request(&self, team: &str, service: &str, environment: &str) -> DatabaseRequest {
        DatabaseRequest::new(team, service, &self.engine.to_string(), environment, "small").expect("a valid request")
    }

    fn probe(&self) -> Result<&dyn DbProbe, Failure> {
        self.probe.as_deref().ok_or_else(|| Failure::new("the scenario needs a probe"))
    }
}

impl Harness for DbProvisionerHarness {
    type Capability = DbProvisionerCapability;

    fn backend(&self) -> String {
        self.label.clone()
    }

    fn supports(&self, capability: DbProvisionerCapability) -> bool {
        match capability {
            DbProvisionerCapability::Probe => self.probe.is_some(),
            DbProvisionerCapability::RefusesAnEngine => self.unsupported_engine.is_some(),
        }
    }
}

/// Every scenario of the suite, in the order [`run`] runs them. The first runs on a backend
/// that has never provisioned anything.
pub fn scenarios() -> Vec<Scenario<DbProvisionerHarness>> {
    use DbProvisionerCapability::{Probe, RefusesAnEngine};
    vec![
        scenario!(deprovisioning_what_was_never_provisioned_is_harmless),
        scenario!(status_before_provisioning_is_absent),
        scenario!(provisioning_makes_an_available_database),
        scenario!(provisioning_twice_answers_the_same),
        scenario!(deprovisioning_makes_it_absent),
        scenario!(services_get_separate_databases),
        scenario!(teams_never_share_a_database),
        scenario!(bad_names_are_rejected_and_create_nothing),
        scenario!(an_unsupported_engine_is_rejected, [RefusesAnEngine]),
        scenario!(rejected_requests_leave_the_server_untouched, [Probe]),
        scenario!(generated_credentials_work_in_their_database, [Probe]),
        scenario!(credentials_reach_only_their_own_database, [Probe]),
        scenario!(another_team_of_the_same_service_cannot_reach_the_data, [Probe]),
        scenario!(deprovisioning_revokes_access_and_keeps_data_unless_dropped, [Probe]),
    ]
}

/// Runs the suite on `harness`.
///
/// # Panics
/// When a scenario fails (see [`super::run`]).
pub async fn run(harness: &DbProvisionerHarness) -> Report {
    super::run("DbProvisioner", harness, &scenarios()).await
}

/// Environment names no provisioner may accept: they are not identifiers, and quotes or
/// semicolons would break out of SQL statements.
pub const BAD_ENVIRONMENTS: [&str; 6] = ["prod db", "prod;drop", "Prod", "x'y", "x\"y", "x`y"];

async fn status_of(h: &DbProvisionerHarness, request: &DatabaseRequest) -> Result<DatabaseInfo, Failure> {
    h.provisioner.status(request).await.map_err(|e| Failure::from(e).context("status"))
}

fn expect_absent(info: &DatabaseInfo, what: &str) -> Outcome {
    ensure_eq!(info.state, DatabaseState::Absent, "state {what}");
    ensure_eq!(info.credentials_path, None, "credentials path {what}");
    Ok(())
}

async fn deprovisioning_what_was_never_provisioned_is_harmless(h: &DbProvisionerHarness) -> Outcome {
    let request = h.request("suite", "never", "dev");
    h.provisioner.deprovision(&request, true).await?;
    h.provisioner.deprovision(&request, false).await?;
    expect_absent(&status_of(h, &request).await?, "after deprovisioning a database never provisioned")
}

async fn status_before_provisioning_is_absent(h: &DbProvisionerHarness) -> Outcome {
    expect_absent(&status_of(h, &h.request("suite", "fresh", "dev")).await?, "before provisioning")
}

/// Checks that `info` describes an available database, and answers it.
fn expect_available(info: DatabaseInfo, what: &str) -> Result<DatabaseInfo, Failure> {
    ensure_eq!(info.state, DatabaseState::Available, "state {what}");
    ensure!(info.endpoint.as_ref().is_some_and(|(host, _)| !host.is_empty()), "no endpoint {what}: {info:?}");
    ensure!(!info.database.is_empty(), "no database name {what}: {info:?}");
    ensure!(info.credentials_path.as_ref().is_some_and(|p| !p.is_empty()), "no credentials path {what}: {info:?}");
    ensure!(
        info.connection_info_path.as_ref().is_some_and(|p| !p.is_empty()),
        "no connection info path {what}: {info:?}"
    );
    Ok(info)
}

async fn provisioning_makes_an_available_database(h: &DbProvisionerHarness) -> Outcome {
    let request = h.request("suite", "shop", "dev");
    let info = expect_available(h.provisioner.provision(&request).await?, "after provisioning")?;
    ensure_eq!(status_of(h, &request).await?, info, "status after provisioning");
    h.provisioner.deprovision(&request, true).await?;
    Ok(())
}

async fn provisioning_twice_answers_the_same(h: &DbProvisionerHarness) -> Outcome {
    let request = h.request("suite", "twice", "dev");
    let first = h.provisioner.provision(&request).await?;
    let second = h.provisioner.provision(&request).await?;
    ensure_eq!(second, first, "the second provisioning of the same request");
    ensure_eq!(status_of(h, &request).await?, first, "status after provisioning twice");
    h.provisioner.deprovision(&request, true).await?;
    Ok(())
}

async fn deprovisioning_makes_it_absent(h: &DbProvisionerHarness) -> Outcome {
    let request = h.request("suite", "gone", "dev");
    let info = h.provisioner.provision(&request).await?;
    h.provisioner.deprovision(&request, false).await?;
    expect_absent(&status_of(h, &request).await?, "after deprovisioning (data kept)")?;
    // The same database again; a backend that makes it anew (a cloud instance) may issue new
    // credentials, so where they are is not compared.
    let again = h.provisioner.provision(&request).await?;
    let same = |i: &DatabaseInfo| (i.state, i.endpoint.clone(), i.database.clone(), i.connection_info_path.clone());
    ensure_eq!(same(&again), same(&info), "provisioning again after deprovisioning");
    h.provisioner.deprovision(&request, true).await?;
    expect_absent(&status_of(h, &request).await?, "after deprovisioning (data dropped)")?;
    h.provisioner.deprovision(&request, true).await.map_err(|e| Failure::from(e).context("deprovisioning twice"))
}

async fn services_get_separate_databases(h: &DbProvisionerHarness) -> Outcome {
    let requests =
        [h.request("suite", "cart", "dev"), h.request("other", "ledger", "dev"), h.request("suite", "cart", "staging")];
    let mut infos = Vec::new();
    for request in &requests {
        infos.push(expect_available(h.provisioner.provision(request).await?, "after provisioning")?);
    }
    for (i, a) in infos.iter().enumerate() {
        for b in &infos[i + 1..] {
            ensure!(a.database != b.database, "two requests share database {}", a.database);
            ensure!(
                a.credentials_path != b.credentials_path,
                "two requests share credentials {:?}",
                a.credentials_path
            );
            ensure!(
                a.connection_info_path != b.connection_info_path,
                "two requests share connection info {:?}",
                a.connection_info_path
            );
        }
    }
    // Deprovisioning one leaves the others as they were.
    h.provisioner.deprovision(&requests[0], true).await?;
    for (request, info) in requests.iter().zip(&infos).skip(1) {
        ensure_eq!(status_of(h, request).await?, *info, "status of another service after deprovisioning one");
    }
    for request in &requests[1..] {
        h.provisioner.deprovision(request, true).await?;
    }
    Ok(())
}

/// Requests that look alike: two teams with one service name, hyphens that move between team,
/// service and environment, and names that differ only where another has `-` (`_` in a
/// database name, a wildcard in MySQL grants).
fn lookalikes(h: &DbProvisionerHarness) -> Vec<DatabaseRequest> {
    vec![
        h.request("suite", "shop", "dev"),
        h.request("other", "shop", "dev"),
        h.request("suite-a", "b", "dev"),
        h.request("suite", "a-b", "dev"),
        h.request("suite", "a", "b-dev"),
        h.request("suitexa", "b", "dev"),
        // Its Vault role name starts with that of the first request.
        h.request("suite", "shop", "dev-eu"),
    ]
}

async fn teams_never_share_a_database(h: &DbProvisionerHarness) -> Outcome {
    let requests = lookalikes(h);
    let mut infos = Vec::new();
    for request in &requests {
        infos.push(expect_available(h.provisioner.provision(request).await?, "after provisioning")?);
    }
    for (i, a) in infos.iter().enumerate() {
        for b in &infos[i + 1..] {
            ensure!(a.database != b.database, "two teams' requests share database {}", a.database);
            ensure!(
                a.credentials_path != b.credentials_path,
                "two requests share credentials {:?}",
                a.credentials_path
            );
        }
    }
    // Another team's deprovisioning, data dropped, leaves the first team's database as it was.
    h.provisioner.deprovision(&requests[1], true).await?;
    ensure_eq!(status_of(h, &requests[0]).await?, infos[0], "the first team's database after the other's drop");
    for request in &requests {
        h.provisioner.deprovision(request, true).await?;
    }
    Ok(())
}

async fn another_team_of_the_same_service_cannot_reach_the_data(h: &DbProvisionerHarness) -> Outcome {
    let requests = lookalikes(h);
    // The same service of another team, and every hyphen lookalike...
    cannot_reach(h, &requests[0], &requests[1..]).await?;
    // ...and `suite-a` (database `suite_a__b__dev`, a MySQL grant pattern that would match
    // `suitexa__b__dev` if `_` were not escaped) against `suitexa`.
    cannot_reach(h, &requests[5], &requests[2..3]).await?;
    // Deprovisioning `suite/shop/dev` revokes the leases of its role only, not those of
    // `suite/shop/dev-eu`, whose role name it begins.
    cannot_reach(h, &requests[6], &requests[..1]).await
}

/// Provisions `owner`, writes a row, then checks that the credentials of each of `others`
/// neither connect to the owner's database nor read its table, and that their deprovisioning
/// (data dropped) leaves the row.
async fn cannot_reach(h: &DbProvisionerHarness, owner: &DatabaseRequest, others: &[DatabaseRequest]) -> Outcome {
    let probe = h.probe()?;
    let info = h.provisioner.provision(owner).await?;
    let mut session = connect(probe, &issue(probe, &info).await?, &info.database).await?;
    run_sql(&mut *session, "CREATE TABLE payments (id int PRIMARY KEY, amount int)").await?;
    run_sql(&mut *session, "INSERT INTO payments VALUES (1, 42)").await?;
    for other in others {
        let theirs = h.provisioner.provision(other).await?;
        let creds = issue(probe, &theirs).await?;
        ensure!(
            probe.connect(&creds, &info.database).await.is_err(),
            "{} (of {}) connected to {}",
            creds.username,
            theirs.database,
            info.database
        );
        let mut own = connect(probe, &creds, &theirs.database).await?;
        let qualified = format!("SELECT amount FROM {}.payments", info.database);
        ensure!(query(&mut *own, &qualified).await.is_err(), "{} read {qualified}", creds.username);
        drop(own);
        h.provisioner.deprovision(other, true).await?;
    }
    ensure_eq!(
        query(&mut *session, "SELECT amount FROM payments WHERE id = 1").await?.as_deref(),
        Some("42"),
        "the owner's row after the other teams came and went"
    );
    drop(session);
    h.provisioner.deprovision(owner, true).await?;
    Ok(())
}

/// Expects a rejection of bad input: a user error with a hint.
fn expect_rejected<T: std::fmt::Debug>(result: paved_core::Result<T>, what: &str) -> Outcome {
    match result {
        Err(e) => {
            ensure!(e.is_user_error(), "{what}: not reported as bad input: {}", error_text(&e));
            ensure!(e.hint().is_some_and(|h| !h.is_empty()), "{what}: rejected without a hint: {}", error_text(&e));
            Ok(())
        }
        Ok(v) => Err(Failure::new(format!("{what}: accepted: {v:?}"))),
    }
}

async fn bad_names_are_rejected_and_create_nothing(h: &DbProvisionerHarness) -> Outcome {
    for env in BAD_ENVIRONMENTS {
        let request = DatabaseRequest::new("suite", "bad", &h.engine.to_string(), env, "small")?;
        let result = h.provisioner.provision(&request).await;
        if let Err(e) = &result {
            ensure!(
                matches!(e, Error::InvalidInput { field, .. } if field == "environment"),
                "environment {env:?}: expected invalid environment, got {}",
                error_text(e)
            );
        }
        expect_rejected(result, &format!("provision in environment {env:?}"))?;
        ensure!(h.provisioner.status(&request).await.is_err(), "status in environment {env:?} was answered");
        ensure!(
            h.provisioner.deprovision(&request, true).await.is_err(),
            "deprovision in environment {env:?} was accepted"
        );
    }
    Ok(())
}

async fn an_unsupported_engine_is_rejected(h: &DbProvisionerHarness) -> Outcome {
    let engine = h.unsupported_engine.ok_or_else(|| Failure::new("no unsupported engine"))?;
    let request = DatabaseRequest::new("suite", "other-engine", &engine.to_string(), "dev", "small")?;
    expect_rejected(h.provisioner.provision(&request).await, &format!("provision of a {engine} database"))?;
    let same_names = h.request("suite", "other-engine", "dev");
    expect_absent(&status_of(h, &same_names).await?, "of the same names after the rejection")
}

async fn rejected_requests_leave_the_server_untouched(h: &DbProvisionerHarness) -> Outcome {
    let probe = h.probe()?;
    let before = probe.inventory().await.map_err(Failure::new)?;
    let mut requests: Vec<DatabaseRequest> = BAD_ENVIRONMENTS
        .iter()
        .map(|env| DatabaseRequest::new("suite", "untouched", &h.engine.to_string(), env, "small"))
        .collect::<Result<_, _>>()?;
    if let Some(engine) = h.unsupported_engine {
        requests.push(DatabaseRequest::new("suite", "untouched", &engine.to_string(), "dev", "small")?);
    }
    for request in &requests {
        ensure!(h.provisioner.provision(request).await.is_err(), "{request:?} was accepted");
    }
    ensure_eq!(probe.inventory().await.map_err(Failure::new)?, before, "the server after rejected requests");
    Ok(())
}

async fn issue(probe: &dyn DbProbe, info: &DatabaseInfo) -> Result<DbCredentials, Failure> {
    probe.issue(info).await.map_err(|e| Failure::new(format!("credentials for {}: {e}", info.database)))
}

async fn connect(
    probe: &dyn DbProbe,
    credentials: &DbCredentials,
    database: &str,
) -> Result<Box<dyn DbSession>, Failure> {
    probe
        .connect(credentials, database)
        .await
        .map_err(|e| Failure::new(format!("{} could not connect to {database}: {e}", credentials.username)))
}

async fn run_sql(session: &mut dyn DbSession, sql: &str) -> Outcome {
    session.execute(sql).await.map_err(|e| Failure::new(format!("{sql}: {e}")))
}

async fn query(session: &mut dyn DbSession, sql: &str) -> Result<Option<String>, Failure> {
    session.query_one(sql).await.map_err(|e| Failure::new(format!("{sql}: {e}")))
}

async fn generated_credentials_work_in_their_database(h: &DbProvisionerHarness) -> Outcome {
    let probe = h.probe()?;
    let request = h.request("suite", "orders", "dev");
    let info = h.provisioner.provision(&request).await?;
    // The first credentials create tables in the service's database...
    let first = issue(probe, &info).await?;
    let mut session = connect(probe, &first, &info.database).await?;
    run_sql(&mut *session, "CREATE TABLE orders (id int PRIMARY KEY, amount int)").await?;
    run_sql(&mut *session, "INSERT INTO orders VALUES (1, 42)").await?;
    // ...that the next credentials of the same database use and extend.
    let second = issue(probe, &info).await?;
    ensure!(first.username != second.username, "two issues gave the same user {}", first.username);
    let mut other = connect(probe, &second, &info.database).await?;
    ensure_eq!(
        query(&mut *other, "SELECT amount FROM orders WHERE id = 1").await?.as_deref(),
        Some("42"),
        "a row written with the first credentials, read with the second"
    );
    run_sql(&mut *other, "CREATE TABLE refunds (id int)").await?;
    run_sql(&mut *session, "INSERT INTO refunds VALUES (7)").await?;
    drop((session, other));
    h.provisioner.deprovision(&request, true).await?;
    Ok(())
}

async fn credentials_reach_only_their_own_database(h: &DbProvisionerHarness) -> Outcome {
    let probe = h.probe()?;
    let (a, b) = (h.request("suite", "payments", "dev"), h.request("other", "ledger", "dev"));
    let (info_a, info_b) = (h.provisioner.provision(&a).await?, h.provisioner.provision(&b).await?);
    let (creds_a, creds_b) = (issue(probe, &info_a).await?, issue(probe, &info_b).await?);
    for (creds, own, foreign) in [(&creds_a, &info_a, &info_b), (&creds_b, &info_b, &info_a)] {
        ensure!(
            probe.connect(creds, &foreign.database).await.is_err(),
            "{} (of {}) connected to {}",
            creds.username,
            own.database,
            foreign.database
        );
        let mut session = connect(probe, creds, &own.database).await?;
        ensure_eq!(query(&mut *session, "SELECT 40 + 2").await?.as_deref(), Some("42"), "a query in {}", own.database);
    }
    h.provisioner.deprovision(&a, true).await?;
    h.provisioner.deprovision(&b, true).await?;
    Ok(())
}

async fn deprovisioning_revokes_access_and_keeps_data_unless_dropped(h: &DbProvisionerHarness) -> Outcome {
    let probe = h.probe()?;
    let before = probe.inventory().await.map_err(Failure::new)?;
    let request = h.request("suite", "kept", "dev");
    let info = h.provisioner.provision(&request).await?;
    let creds = issue(probe, &info).await?;
    let mut session = connect(probe, &creds, &info.database).await?;
    run_sql(&mut *session, "CREATE TABLE orders (id int PRIMARY KEY, amount int)").await?;
    run_sql(&mut *session, "INSERT INTO orders VALUES (1, 42)").await?;

    // Without dropping data: open sessions end, the credentials stop working, the data stays.
    h.provisioner.deprovision(&request, false).await?;
    ensure!(session.query_one("SELECT 1").await.is_err(), "a session stayed open after deprovisioning");
    ensure!(probe.connect(&creds, &info.database).await.is_err(), "credentials still connect after deprovisioning");
    let kept = probe.inventory().await.map_err(Failure::new)?;
    ensure!(
        kept.iter().any(|e| e.contains(&info.database)),
        "database {} is gone after deprovisioning without dropping data: {kept:?}",
        info.database
    );

    // Provisioning again finds the data; deprovisioning with drop_data removes everything.
    ensure_eq!(h.provisioner.provision(&request).await?, info, "provisioning again");
    let mut again = connect(probe, &issue(probe, &info).await?, &info.database).await?;
    ensure_eq!(
        query(&mut *again, "SELECT count(*) FROM orders").await?.as_deref(),
        Some("1"),
        "rows kept across deprovisioning"
    );
    drop(again);
    h.provisioner.deprovision(&request, true).await?;
    ensure_eq!(
        probe.inventory().await.map_err(Failure::new)?,
        before,
        "the server after deprovisioning with drop_data"
    );
    Ok(())
}
