//! The event ledger: an append-mostly SQLite database (WAL) in the state directory.
//!
//! Several paved processes may write at once: every write is one `BEGIN IMMEDIATE`
//! transaction with a generous busy timeout (and a retry on top), so events are neither lost
//! nor does a `database is locked` error reach the user.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::model::{
    ActivityEvent, ActivityKind, DeploymentEvent, DeploymentStatus, IncidentEvent, LedgerEvent, SupportTicketEvent,
    SurveyEvent,
};
use crate::tally::{Family, Tally};

/// The ledger's file name inside the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// The initial schema (migration 1).
const SCHEMA_1: &str = "CREATE TABLE names (
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (kind, name)
    );
    CREATE TABLE deployments (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        service INTEGER NOT NULL,
        team INTEGER NOT NULL,
        environment INTEGER NOT NULL,
        status INTEGER NOT NULL,
        rollback INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        unplanned INTEGER NOT NULL DEFAULT 0,
        revision INTEGER,
        image TEXT,
        escape_hatches TEXT,
        escape_hatch_count INTEGER NOT NULL DEFAULT 0,
        commit_shas TEXT
    );
    CREATE INDEX deployments_by_env_finished ON deployments (environment, finished_at, status, team, service, unplanned);
    CREATE TABLE commits (
        sha TEXT NOT NULL,
        deployment INTEGER NOT NULL,
        committed_at INTEGER NOT NULL,
        PRIMARY KEY (sha, deployment)
    ) WITHOUT ROWID;
    CREATE TABLE changes (
        environment INTEGER NOT NULL,
        sha TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        deployment INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        service INTEGER NOT NULL,
        team INTEGER NOT NULL,
        PRIMARY KEY (environment, sha)
    ) WITHOUT ROWID;
    CREATE INDEX changes_by_env_finished ON changes (environment, finished_at, team, service, committed_at);
    CREATE TABLE incidents (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        service INTEGER NOT NULL,
        team INTEGER NOT NULL,
        environment INTEGER NOT NULL,
        deployment_id TEXT,
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER
    );
    CREATE INDEX incidents_by_env_opened ON incidents (environment, opened_at);
    CREATE INDEX incidents_by_deployment ON incidents (deployment_id);
    CREATE TABLE activity (
        rowid INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        service INTEGER NOT NULL,
        team INTEGER NOT NULL,
        environment INTEGER NOT NULL,
        at INTEGER NOT NULL,
        result TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX activity_by_kind_at ON activity (kind, at);";

/// Migration 2 (DORA version 2): rollback marks apart from a deployment's own status, first
/// deliveries keyed by (environment, service, sha) and flagged in the commit rows themselves
/// (one B-tree fewer per commit than a table of their own), commit SHAs as JSON, counters kept
/// at write time, survey answers and support tickets.
const SCHEMA_2: &str = "
    DROP INDEX deployments_by_env_finished;
    CREATE INDEX deployments_by_env_finished ON deployments (environment, finished_at, status, team, service,
        unplanned, rollback, started_at, rolled_back_at, escape_hatch_count);
    WITH g AS (SELECT deployment, json_group_array(sha) AS shas FROM commits GROUP BY deployment)
        UPDATE deployments SET commit_shas = g.shas FROM g WHERE g.deployment = deployments.rowid;
    UPDATE deployments SET commit_shas = NULL WHERE commit_shas IS NOT NULL AND commit_shas NOT LIKE '[%';
    DROP TABLE changes;
    ALTER TABLE commits RENAME TO commits_1;
    CREATE TABLE commits (
        sha TEXT NOT NULL,
        deployment INTEGER NOT NULL,
        committed_at INTEGER NOT NULL,
        environment INTEGER NOT NULL,
        service INTEGER NOT NULL,
        team INTEGER NOT NULL,
        delivered_at INTEGER,
        first INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sha, deployment)
    ) WITHOUT ROWID;
    INSERT INTO commits (sha, deployment, committed_at, environment, service, team, delivered_at)
        SELECT c.sha, c.deployment, c.committed_at, d.environment, d.service, d.team,
            CASE WHEN d.status = 1 AND d.rollback = 0 THEN d.finished_at END
        FROM commits_1 c JOIN deployments d ON d.rowid = c.deployment;
    DROP TABLE commits_1;
    UPDATE commits SET first = 1 WHERE (sha, deployment) IN (
        SELECT sha, deployment FROM (
            SELECT sha, deployment, row_number() OVER (
                PARTITION BY environment, service, sha ORDER BY delivered_at, deployment) AS n
            FROM commits WHERE delivered_at IS NOT NULL)
        WHERE n = 1);
    CREATE INDEX deliveries ON commits (environment, delivered_at, team, service, committed_at) WHERE first = 1;
    CREATE TABLE aggregates (
        family INTEGER NOT NULL,
        labels TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL,
        sum REAL NOT NULL,
        PRIMARY KEY (family, labels, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE surveys (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        team INTEGER NOT NULL,
        service INTEGER,
        at INTEGER NOT NULL,
        score INTEGER NOT NULL,
        comment TEXT
    );
    CREATE INDEX surveys_by_at ON surveys (at, team, score);
    CREATE TABLE support_tickets (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        team INTEGER NOT NULL,
        category TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER
    );
    CREATE INDEX support_tickets_by_opened ON support_tickets (opened_at, team);
    CREATE INDEX incidents_by_env_resolved ON incidents (environment, resolved_at, opened_at, service);
    ALTER TABLE incidents ADD COLUMN deployment_row INTEGER;
    UPDATE incidents SET deployment_row = (SELECT d.rowid FROM deployments d WHERE d.id = incidents.deployment_id)
        WHERE deployment_id IS NOT NULL;
    DROP INDEX incidents_by_deployment;
    CREATE INDEX incidents_by_deployment_row ON incidents (deployment_row, opened_at, resolved_at)
        WHERE deployment_row IS NOT NULL;
    CREATE INDEX incidents_dangling ON incidents (deployment_id)
        WHERE deployment_id IS NOT NULL AND deployment_row IS NULL;
    CREATE INDEX deployments_rollback_runs ON deployments (environment, service, finished_at) WHERE rollback = 1;
    CREATE INDEX deployments_marked ON deployments (environment, service) WHERE rolled_back_at IS NOT NULL;";

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>] = &[
    |tx| tx.execute_batch(SCHEMA_1),
    |tx| {
        tx.execute_batch("ALTER TABLE deployments ADD COLUMN rolled_back_at INTEGER")?;
        unmark_version_1(tx)?;
        tx.execute_batch(SCHEMA_2)?;
        crate::tally::backfill(tx)
    },
];

/// Schema 1 marked the deployment a rollback run replaced by setting its status to
/// `rolled_back`, which version 2 reads as an automatic rollback. Each successful rollback run
/// gets its mark back the way schema 1 chose it (the latest deployment of the service finished
/// by the run's end), now as the deployment's `success` and the run's end in `rolled_back_at`.
fn unmark_version_1(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let runs: Vec<(i64, i64, i64)> = tx
        .prepare(
            "SELECT environment, service, finished_at FROM deployments
             WHERE rollback = 1 AND status = 1 AND finished_at IS NOT NULL ORDER BY finished_at, rowid",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut unmark = tx.prepare(
        "UPDATE deployments SET status = 1, rolled_back_at = ?3 WHERE rowid = (
            SELECT rowid FROM deployments WHERE environment = ?1 AND service = ?2 AND status = 3 AND rollback = 0
              AND rolled_back_at IS NULL AND finished_at <= ?3
            ORDER BY finished_at DESC, rowid DESC LIMIT 1)",
    )?;
    for (env, service, finished) in runs {
        unmark.execute(params![env, service, finished])?;
    }
    Ok(())
}

/// Kinds of interned names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NameKind {
    Service = 0,
    Team = 1,
    Environment = 2,
}

/// The event ledger.
///
/// ```
/// use paved_metrics::{DeploymentEvent, DeploymentStatus, Ledger, LedgerEvent};
/// let dir = tempfile::tempdir().unwrap();
/// let ledger = Ledger::open(dir.path().join("ledger.sqlite")).unwrap();
/// let d = DeploymentEvent::new("d-1", "checkout", "shop", "production", DeploymentStatus::Success, 0, 60);
/// ledger.write(&[LedgerEvent::Deployment(d)]).unwrap();
/// assert_eq!(ledger.count_deployments().unwrap(), 1);
/// ```
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Reports read on their own connection, so that a scrape or a DORA query never holds up
    /// the recorder (WAL lets readers and the writer run at once).
    reads: Mutex<Option<Connection>>,
    names: Mutex<Interned>,
}

fn busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

impl Ledger {
    /// Opens (creating and migrating when needed) the ledger at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        }
        // Processes opening a new ledger at once race to set it up (WAL mode, the schema): a
        // step SQLite refuses with "busy" without waiting (a lock upgrade) is tried again.
        let mut attempt = 0u64;
        loop {
            match Self::open_once(&path) {
                Err(Error::Ledger { source, .. }) if busy(&source) && attempt < 50 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20 * attempt.min(10)));
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Self> {
        let conn = Self::connect(path, false)?;
        let ledger = Ledger {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            reads: Mutex::new(None),
            names: Mutex::new(Default::default()),
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens the ledger of a state directory (`<state>/ledger.sqlite`), which gets a
    /// `.gitignore` keeping the ledger out of git ([`paved_core::state::ignore_local_state`]).
    pub fn open_in(state_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = state_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        paved_core::state::ignore_local_state(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        Self::open(dir.join(LEDGER_FILE))
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Ledger { path: self.path.clone(), source }
    }

    fn connect(path: &Path, read_only: bool) -> Result<Connection> {
        // Never through a symbolic link: a committed `.paved/ledger.sqlite -> ~/.bashrc` is
        // refused, not written to.
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW
        };
        let wrap = |source| Error::Ledger { path: path.to_path_buf(), source };
        let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let conn = Connection::open_with_flags(path, flags).map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(wrap)?;
        if !read_only {
            if new {
                // Larger pages: fewer page splits and shallower trees for the ledger's indexes.
                conn.pragma_update(None, "page_size", 8192).map_err(wrap)?;
            }
            conn.pragma_update(None, "journal_mode", "WAL").map_err(wrap)?;
            // `rarray(?)`: a batch's SHAs looked up in one statement.
            rusqlite::vtab::array::load_module(&conn).map_err(wrap)?;
        }
        // FULL: a committed event survives a power loss, as the documentation promises. In WAL
        // mode that is one fsync of the log per transaction: nothing for an import (one
        // transaction per 50,000 events), 0.13 ms more per event a deploy records (BENCHMARKS.md).
        conn.pragma_update(None, "synchronous", "FULL").map_err(wrap)?;
        // Up to 256 MiB of page cache (allocated only as pages are used).
        conn.pragma_update(None, "cache_size", -262_144).map_err(wrap)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(wrap)?;
        Ok(conn)
    }

    /// Runs `f`, a series of write transactions (an import's batches), with the log copied into
    /// the database file on another thread: a connection of its own checkpoints whenever `f`
    /// calls the function it is given (after a commit), so the writer never waits for a
    /// checkpoint. Batches can then commit as [`Commit::Batch`]: the checkpoints (FULL) sync
    /// what they copy, and a last [`Commit::Durable`] commit syncs the whole log, so everything
    /// is durable when the last batch is. Whatever `f` returns, automatic checkpoints are back
    /// on and one last checkpoint has synced what was written.
    pub(crate) fn in_batches<T>(&self, f: impl FnOnce(&dyn Fn()) -> Result<T>) -> Result<T> {
        let autocheckpoint = |pages: i64| {
            let conn = self.conn.lock().expect("ledger connection lock");
            conn.pragma_update(None, "wal_autocheckpoint", pages).map_err(self.err())
        };
        let apart = Self::connect(&self.path, false)?;
        autocheckpoint(0)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let result = std::thread::scope(|scope| {
            scope.spawn(move || {
                // Passive: never waits for, nor blocks, the writer. A failed one is harmless
                // (the next, or the writer's own, copies those pages).
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    if let Err(e) = apart.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::debug!(error = %e, "background checkpoint failed");
                    }
                }
            });
            let result = f(&|| {
                let _ = tx.try_send(());
            });
            drop(tx);
            result
        });
        let restored = autocheckpoint(DEFAULT_AUTOCHECKPOINT);
        // TRUNCATE: the log, which grew by the whole import, is emptied once everything in it
        // is synced into the database file (waiting for readers of it, up to the busy timeout).
        let synced = {
            let conn = self.conn.lock().expect("ledger connection lock");
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(self.err())
        };
        let value = result?;
        restored?;
        synced?;
        Ok(value)
    }

    /// Runs a read-only query on a connection of its own, beside other readers.
    pub(crate) fn read_apart<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.reader()?).map_err(self.err())
    }

    /// A separate read connection (for parallel readers).
    pub(crate) fn reader(&self) -> Result<Connection> {
        Self::connect(&self.path, true)
    }

    fn migrate(&self) -> Result<()> {
        let supported = MIGRATIONS.len() as i64;
        // Up to date (the usual case): no write lock, so opening never waits for an import.
        let current: i64 = {
            let conn = self.conn.lock().expect("ledger connection lock");
            conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err())?
        };
        if current == supported {
            return Ok(());
        }
        let found = self.with_write(|tx| {
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version <= supported {
                for (i, migrate) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                    migrate(tx)?;
                    tx.pragma_update(None, "user_version", (i + 1) as i64)?;
                }
            }
            Ok(Some(version))
        })?;
        match found {
            Some(found) if found > supported => Err(Error::SchemaTooNew { path: self.path.clone(), found, supported }),
            _ => Ok(()),
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction. Taking the write lock waits for other
    /// writers (busy timeout, then retries); once taken, nothing else can make the transaction
    /// fail with `SQLITE_BUSY`. `f` returning `Ok(None)` rolls the transaction back.
    pub(crate) fn with_write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Option<T>>,
    ) -> Result<Option<T>> {
        self.with_write_as(Commit::Durable, f)
    }

    /// [`Ledger::with_write`], committing as `commit` says.
    pub(crate) fn with_write_as<T>(
        &self,
        commit: Commit,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Option<T>>,
    ) -> Result<Option<T>> {
        let mut conn = self.conn.lock().expect("ledger connection lock");
        if commit == Commit::Batch {
            // Set and reset under the connection's lock: no other transaction commits this way.
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(self.err())?;
            let result = Self::transact(&mut conn, &self.path, f);
            conn.pragma_update(None, "synchronous", "FULL").map_err(self.err())?;
            return result;
        }
        Self::transact(&mut conn, &self.path, f)
    }

    fn transact<T>(
        conn: &mut Connection,
        path: &Path,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Option<T>>,
    ) -> Result<Option<T>> {
        let err = |source| Error::Ledger { path: path.to_path_buf(), source };
        let mut attempt = 0;
        let tx = loop {
            match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                Err(e) if busy(&e) && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 * attempt));
                }
                other => break other.map_err(err)?,
            }
        };
        // An event refused by the writer (an id of someone else's) is the caller's error, typed: it
        // travels as a boxed error through rusqlite's result type.
        let value = f(&tx).map_err(|e| match e {
            rusqlite::Error::ToSqlConversionFailure(inner) => match inner.downcast::<Error>() {
                Ok(refused) => *refused,
                Err(other) => err(rusqlite::Error::ToSqlConversionFailure(other)),
            },
            other => err(other),
        })?;
        match value {
            Some(value) => {
                tx.commit().map_err(err)?;
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// Writes events in one transaction: all of them or none.
    pub fn write(&self, events: &[LedgerEvent]) -> Result<()> {
        self.write_as(Commit::Durable, events)
    }

    /// [`Ledger::write`], committing as `commit` says.
    pub(crate) fn write_as(&self, commit: Commit, events: &[LedgerEvent]) -> Result<()> {
        self.write_with_as(commit, |w| {
            for e in events {
                w.event(e)?;
            }
            Ok(Some(()))
        })
        .map(drop)
    }

    /// Runs `f` with a [`Writer`] in one write transaction (`Ok(None)` rolls back).
    pub(crate) fn write_with<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_, '_>) -> rusqlite::Result<Option<T>>,
    ) -> Result<Option<T>> {
        self.write_with_as(Commit::Durable, f)
    }

    /// [`Ledger::write_with`], committing as `commit` says.
    pub(crate) fn write_with_as<T>(
        &self,
        commit: Commit,
        f: impl FnOnce(&mut Writer<'_, '_>) -> rusqlite::Result<Option<T>>,
    ) -> Result<Option<T>> {
        let mut names = self.names.lock().expect("names lock");
        // A rolled-back transaction may have interned names that do not exist: start over.
        let snapshot = names.clone();
        let result = self.with_write_as(commit, |tx| {
            let mut w = Writer {
                tx,
                names: &mut names,
                commits: Vec::new(),
                commit_text: String::new(),
                json: Vec::new(),
                insert_deployment: None,
                tally: crate::tally::Tally::default(),
                rollbacks: None,
                dangling: None,
            };
            let value = f(&mut w)?;
            if value.is_some() {
                w.flush()?;
            }
            Ok(value)
        });
        if !matches!(result, Ok(Some(_))) {
            *names = snapshot;
        }
        result
    }

    /// Runs a read-only query on the ledger's read connection (never the writer's).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut reads = self.reads.lock().expect("ledger read connection lock");
        let conn = match &mut *reads {
            Some(conn) => conn,
            empty => empty.insert(Self::connect(&self.path, true)?),
        };
        f(conn).map_err(self.err())
    }

    /// Number of deployments in the ledger (any status).
    pub fn count_deployments(&self) -> Result<u64> {
        self.read(|c| c.query_row("SELECT count(*) FROM deployments", [], |r| r.get::<_, i64>(0))).map(|n| n as u64)
    }

    /// Number of incidents in the ledger.
    pub fn count_incidents(&self) -> Result<u64> {
        self.read(|c| c.query_row("SELECT count(*) FROM incidents", [], |r| r.get::<_, i64>(0))).map(|n| n as u64)
    }

    /// The environments of the recorded events.
    pub fn environments(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.read(|c| Self::names(c, NameKind::Environment))?.into_values().collect();
        names.sort();
        Ok(names)
    }

    /// Checks the environment of a metrics query: one of `configured` (the configuration's
    /// environments) or of the recorded events, else invalid input with the nearest name.
    pub fn check_environment<'a>(
        &self,
        env: &str,
        configured: impl IntoIterator<Item = &'a str>,
    ) -> paved_core::Result<()> {
        let mut known: std::collections::BTreeSet<String> = configured.into_iter().map(str::to_string).collect();
        known.extend(self.environments()?);
        if known.contains(env) {
            return Ok(());
        }
        Err(paved_core::Error::invalid(
            "env",
            env,
            "is neither an environment of the configuration nor of any recorded event",
            Some(paved_core::suggest::hint_for(env, known.iter().map(String::as_str))),
        ))
    }

    /// The id of an interned name, if the ledger knows it.
    pub(crate) fn name_id(conn: &Connection, kind: NameKind, name: &str) -> rusqlite::Result<Option<i64>> {
        conn.query_row("SELECT id FROM names WHERE kind = ?1 AND name = ?2", params![kind as i64, name], |r| r.get(0))
            .optional()
    }

    /// Every interned name of a kind, by id.
    pub(crate) fn names(conn: &Connection, kind: NameKind) -> rusqlite::Result<HashMap<i64, String>> {
        let mut stmt = conn.prepare_cached("SELECT id, name FROM names WHERE kind = ?1")?;
        let rows = stmt.query_map([kind as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }
}

/// Writes inside one transaction, interning names.
///
/// Re-recording an id merges: a field the new event gives replaces the stored one, a field it
/// leaves out keeps the stored value. A finished deployment is not re-opened by a late "started"
/// event, an incident is not re-opened (nor unlinked) by an event without `resolved_at` (or
/// `deployment_id`), `unplanned` and `rollback` once true stay true, and the mark a later
/// rollback set is kept.
pub(crate) struct Writer<'a, 't> {
    tx: &'a rusqlite::Transaction<'t>,
    names: &'a mut Interned,
    /// Commit rows of new deployments, inserted in key order by [`Writer::flush`].
    commits: Vec<CommitRow>,
    /// The SHAs of `commits`, one after another.
    commit_text: String,
    /// A deployment's commit SHAs as JSON (a buffer used again for every deployment).
    json: Vec<u8>,
    /// The insert of a new deployment, prepared once a transaction (not looked up an event).
    insert_deployment: Option<rusqlite::CachedStatement<'a>>,
    /// Counter increments, added to `aggregates` by `flush`.
    tally: Tally,
    /// Whether the ledger holds rollback runs (asked once per transaction).
    rollbacks: Option<bool>,
    /// Whether incidents link to deployments not recorded yet (asked once per transaction).
    dangling: Option<bool>,
}

/// A duplicate `id` (not any constraint error: a trigger's or CHECK's abort is a failure).
/// The error of an event reusing an id another owner's event has.
fn taken(kind: &str, id: &str, owner: &str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Error::invalid(
        "id",
        id,
        format!("is already the id of a {kind} of {owner}"),
        Some("ids are unique in the ledger: give this event its own id, e.g. prefixed with its service".into()),
    )))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The SHAs of a deployment row's `commit_shas` (a JSON array).
fn stored_shas(json: Option<&str>) -> Vec<String> {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default()
}

/// A row of `commits`: a commit shipped by a deployment, with what DORA needs of the
/// deployment (`delivered_at`: its end when it delivered, i.e. succeeded and is no rollback run).
#[derive(Debug)]
struct CommitRow {
    /// Where the SHA is in the writer's `commit_text` (one buffer, not a string a row).
    sha: std::ops::Range<usize>,
    deployment: i64,
    committed_at: i64,
    environment: i64,
    service: i64,
    team: i64,
    delivered_at: Option<i64>,
}

/// The interned ids of each [`NameKind`], by name (Fx: hashed three times an event).
pub(crate) type Interned = [FxHashMap<String, i64>; 3];

/// How a write transaction commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Synced to disk before the commit returns (`synchronous = FULL`): it survives a power loss.
    Durable,
    /// One of a series of batches ([`Ledger::in_batches`]): not synced by the commit itself
    /// (`synchronous = NORMAL`) but by the checkpoints and the series' last, durable, commit.
    Batch,
}

/// SQLite's default `wal_autocheckpoint` (pages).
const DEFAULT_AUTOCHECKPOINT: i64 = 1000;

/// A first delivery stored before a batch: `((environment, service), (delivered_at, deployment))`.
type StoredFirst = ((i64, i64), (i64, i64));

/// Commit rows inserted by one statement.
const COMMITS_PER_INSERT: usize = 64;

/// `INSERT OR IGNORE` of `rows` commit rows.
fn insert_commits(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR IGNORE INTO commits (sha, deployment, committed_at, environment, service, team, delivered_at, first) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?)");
    }
    sql
}

/// Binds commit rows to an [`insert_commits`] statement of as many rows.
fn bind_commits(
    stmt: &mut rusqlite::CachedStatement<'_>,
    text: &str,
    rows: &[CommitRow],
    firsts: &[bool],
) -> rusqlite::Result<()> {
    for (i, (row, first)) in rows.iter().zip(firsts).enumerate() {
        let at = i * 8;
        stmt.raw_bind_parameter(at + 1, &text[row.sha.clone()])?;
        stmt.raw_bind_parameter(at + 2, row.deployment)?;
        stmt.raw_bind_parameter(at + 3, row.committed_at)?;
        stmt.raw_bind_parameter(at + 4, row.environment)?;
        stmt.raw_bind_parameter(at + 5, row.service)?;
        stmt.raw_bind_parameter(at + 6, row.team)?;
        stmt.raw_bind_parameter(at + 7, row.delivered_at)?;
        stmt.raw_bind_parameter(at + 8, *first)?;
    }
    Ok(())
}

/// What the ledger held for a deployment id before it was recorded again.
struct Stored {
    rowid: i64,
    status: DeploymentStatus,
    service: i64,
    environment: i64,
    team: i64,
    shas: Vec<String>,
    rollback: bool,
    finished_at: Option<i64>,
}

impl Stored {
    /// When the stored version delivered its commits (see [`CommitRow`]).
    fn delivered_at(&self) -> Option<i64> {
        self.finished_at.filter(|_| self.status == DeploymentStatus::Success && !self.rollback)
    }
}

impl Writer<'_, '_> {
    /// Inserts the deferred rows sorted by key: B-tree inserts in key order touch each page
    /// once instead of once per row, which is most of an import's cost.
    pub(crate) fn flush(&mut self) -> rusqlite::Result<()> {
        self.flush_commits()?;
        self.tally.flush(self.tx, self.names)
    }

    /// Inserts the deferred commit rows, deciding which are first deliveries.
    fn flush_commits(&mut self) -> rusqlite::Result<()> {
        if !self.commits.is_empty() {
            let mut rows = std::mem::take(&mut self.commits);
            let text = std::mem::take(&mut self.commit_text);
            let sha = |r: &CommitRow| &text[r.sha.clone()];
            rows.sort_unstable_by(|a, b| {
                // A SHA listed twice by one deployment keeps its earliest commit time.
                (
                    sha(a),
                    a.environment,
                    a.service,
                    a.delivered_at.is_none(),
                    a.delivered_at,
                    a.deployment,
                    a.committed_at,
                )
                    .cmp(&(
                        sha(b),
                        b.environment,
                        b.service,
                        b.delivered_at.is_none(),
                        b.delivered_at,
                        b.deployment,
                        b.committed_at,
                    ))
            });
            // The first deliveries already stored for the batch's SHAs, in one statement (by the
            // primary key, sha first: `+` keeps the planner off the partial index, which would
            // scan every first delivery of the environment).
            let shas: Vec<rusqlite::types::Value> = {
                let mut shas: Vec<&str> = rows.iter().filter(|r| r.delivered_at.is_some()).map(sha).collect();
                shas.dedup();
                shas.into_iter().map(|s| rusqlite::types::Value::Text(s.to_string())).collect()
            };
            // By SHA, then (environment, service): looked up by `&str`, without a key to build.
            let mut stored: FxHashMap<String, Vec<StoredFirst>> = FxHashMap::default();
            if !shas.is_empty() {
                let mut current = self.tx.prepare_cached(
                    "SELECT sha, environment, service, delivered_at, deployment FROM commits
                     WHERE sha IN rarray(?1) AND +first = 1",
                )?;
                let mut found = current.query([std::rc::Rc::new(shas)])?;
                while let Some(r) = found.next()? {
                    stored.entry(r.get(0)?).or_default().push(((r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?)));
                }
            }
            let mut demote =
                self.tx.prepare_cached("UPDATE commits SET first = 0 WHERE sha = ?1 AND deployment = ?2")?;
            let mut last: Option<(&str, i64, i64)> = None;
            let mut firsts = Vec::with_capacity(rows.len());
            for row in &rows {
                let key = (sha(row), row.environment, row.service);
                // Sorted: the first row of a key is its earliest delivery in this batch.
                let first = match (row.delivered_at, last == Some(key)) {
                    (Some(at), false) => {
                        let existing = stored.get(sha(row)).and_then(|keys| {
                            keys.iter().find(|(key, _)| *key == (row.environment, row.service)).map(|(_, at)| *at)
                        });
                        match existing {
                            Some(earlier) if earlier <= (at, row.deployment) => false,
                            Some((_, later)) => {
                                demote.execute(params![sha(row), later])?;
                                true
                            }
                            None => true,
                        }
                    }
                    _ => false,
                };
                last = Some(key);
                firsts.push(first);
            }
            // Many rows a statement: the per-statement cost (bind, step, reset) once per chunk.
            let many = self.tx.prepare_cached(&insert_commits(COMMITS_PER_INSERT))?;
            let mut one = self.tx.prepare_cached(&insert_commits(1))?;
            let mut chunks = rows.chunks_exact(COMMITS_PER_INSERT);
            let mut at = 0;
            let mut many = many;
            for chunk in &mut chunks {
                bind_commits(&mut many, &text, chunk, &firsts[at..at + chunk.len()])?;
                many.raw_execute()?;
                at += chunk.len();
            }
            for (row, first) in chunks.remainder().iter().zip(&firsts[at..]) {
                bind_commits(&mut one, &text, std::slice::from_ref(row), &[*first])?;
                one.raw_execute()?;
            }
            // The buffers keep their capacity for the next batch.
            rows.clear();
            self.commits = rows;
            self.commit_text = text;
            self.commit_text.clear();
        }
        Ok(())
    }

    /// Writes one event.
    pub(crate) fn event(&mut self, e: &LedgerEvent) -> rusqlite::Result<()> {
        match e {
            LedgerEvent::Deployment(d) => self.deployment(d),
            LedgerEvent::Incident(i) => self.incident(i),
            LedgerEvent::Activity(a) => self.activity(a),
            LedgerEvent::Survey(s) => self.survey(s),
            LedgerEvent::SupportTicket(t) => self.ticket(t),
        }
    }

    fn name(&mut self, kind: NameKind, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.names[kind as usize].get(name) {
            return Ok(*id);
        }
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO names (kind, name) VALUES (?1, ?2)")?
            .execute(params![kind as i64, name])?;
        let id: i64 = self
            .tx
            .prepare_cached("SELECT id FROM names WHERE kind = ?1 AND name = ?2")?
            .query_row(params![kind as i64, name], |r| r.get(0))?;
        self.names[kind as usize].insert(name.to_string(), id);
        Ok(id)
    }

    fn deployment(&mut self, d: &DeploymentEvent) -> rusqlite::Result<()> {
        let service = self.name(NameKind::Service, &d.service)?;
        let team = self.name(NameKind::Team, &d.team)?;
        let env = self.name(NameKind::Environment, &d.environment)?;
        let hatches = (!d.escape_hatches.is_empty())
            .then(|| serde_json::to_string(&d.escape_hatches).expect("strings serialize"));
        // Into the writer's buffer (taken, and given back below): no vector and string to
        // allocate a deployment.
        let mut json = std::mem::take(&mut self.json);
        let shas = (!d.commits.is_empty()).then(|| {
            let json = &mut json;
            json.clear();
            json.push(b'[');
            for (i, c) in d.commits.iter().enumerate() {
                if i > 0 {
                    json.push(b',');
                }
                serde_json::to_writer(&mut *json, &c.sha).expect("strings serialize");
            }
            json.push(b']');
            std::str::from_utf8(json).expect("JSON is UTF-8")
        });
        // Fast path: a new id (the common case of an import). An existing id takes the
        // update path, which merges and repairs what the old version derived. Both take the
        // same values, the update one more.
        let hatch_count = d.escape_hatches.len() as i64;
        let status_code = d.status.code();
        let values = params![
            d.id,
            service,
            team,
            env,
            status_code,
            d.rollback,
            d.started_at,
            d.finished_at,
            d.unplanned,
            d.revision,
            d.image,
            hatches,
            hatch_count,
            shas
        ];
        let insert = match &mut self.insert_deployment {
            Some(insert) => insert,
            empty => empty.insert(self.tx.prepare_cached(
                "INSERT INTO deployments (id, service, team, environment, status, rollback, started_at, finished_at, unplanned,
                    revision, image, escape_hatches, escape_hatch_count, commit_shas)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?),
        };
        let inserted = insert.execute(values);
        let (rowid, stored) = match inserted {
            Ok(_) => {
                let rowid = self.tx.last_insert_rowid();
                self.link_waiting_incidents(&d.id, rowid)?;
                (rowid, None)
            }
            Err(e) if is_unique_violation(&e) => {
                // The update path reads commits: write the deferred ones first.
                self.flush_commits()?;
                let stored = self
                    .tx
                    .prepare_cached(
                        "SELECT rowid, status, service, environment, commit_shas, rollback, finished_at, team
                         FROM deployments WHERE id = ?1",
                    )?
                    .query_row([&d.id], |r| {
                        Ok(Stored {
                            rowid: r.get(0)?,
                            status: DeploymentStatus::from_code(r.get(1)?).unwrap_or(DeploymentStatus::InProgress),
                            service: r.get(2)?,
                            environment: r.get(3)?,
                            shas: stored_shas(r.get::<_, Option<String>>(4)?.as_deref()),
                            rollback: r.get(5)?,
                            finished_at: r.get(6)?,
                            team: r.get(7)?,
                        })
                    })?;
                if (stored.service, stored.team, stored.environment) != (service, team, env) {
                    let owner = self.owner(stored.service, stored.team, Some(stored.environment))?;
                    return Err(taken("deployment", &d.id, &owner));
                }
                // A late "started" event does not re-open a finished deployment.
                let reopen = d.status == DeploymentStatus::InProgress && stored.status != DeploymentStatus::InProgress;
                self.tx
                    .prepare_cached(
                        "UPDATE deployments SET service = ?2, team = ?3, environment = ?4,
                            status = CASE WHEN ?15 THEN status ELSE ?5 END, rollback = max(rollback, ?6),
                            started_at = CASE WHEN ?15 THEN started_at ELSE ?7 END,
                            finished_at = CASE WHEN ?15 THEN finished_at ELSE coalesce(?8, finished_at) END,
                            unplanned = max(unplanned, ?9), revision = coalesce(?10, revision),
                            image = coalesce(?11, image), escape_hatches = coalesce(?12, escape_hatches),
                            escape_hatch_count = CASE WHEN ?12 IS NULL THEN escape_hatch_count ELSE ?13 END,
                            commit_shas = coalesce(?14, commit_shas)
                         WHERE id = ?1",
                    )?
                    .execute(rusqlite::params_from_iter(
                        values.iter().copied().chain([&reopen as &dyn rusqlite::ToSql]),
                    ))?;
                (stored.rowid, Some((stored, reopen)))
            }
            Err(e) => return Err(e),
        };
        self.json = json;
        let status = match &stored {
            Some((old, true)) => old.status,
            _ => d.status,
        };
        let rollback = d.rollback || stored.as_ref().is_some_and(|(old, _)| old.rollback);
        let first_finish = status != DeploymentStatus::InProgress
            && stored.as_ref().is_none_or(|(old, _)| old.status == DeploymentStatus::InProgress);
        if first_finish {
            let duration = d.finished_at.map(|f| f - d.started_at);
            self.tally.deployment([team, service, env], status, rollback, duration);
        }
        // The end as stored now: a late "started" event keeps the stored one.
        let finished_at = match &stored {
            Some((old, true)) => old.finished_at,
            Some((old, false)) => d.finished_at.or(old.finished_at),
            None => d.finished_at,
        };
        let delivered_at = finished_at.filter(|_| status == DeploymentStatus::Success && !rollback);
        let text = &mut self.commit_text;
        let mut row = |sha: &str, committed_at: i64| CommitRow {
            sha: {
                let start = text.len();
                text.push_str(sha);
                start..text.len()
            },
            deployment: rowid,
            committed_at,
            environment: env,
            service,
            team,
            delivered_at,
        };
        match &stored {
            None => self.commits.extend(d.commits.iter().map(|c| row(&c.sha, c.committed_at))),
            Some((old, _)) => {
                // The stored rows, refreshed (or replaced by the new commits); then the first
                // delivery of every affected key, old and new, is recomputed.
                let unchanged =
                    (old.environment, old.service, old.team, old.delivered_at()) == (env, service, team, delivered_at);
                if d.commits.is_empty() && unchanged {
                    // Nothing its commit rows hold changed (a re-import of the same event).
                    return self.mark_replaced(d, rowid, rollback, first_finish, status, service, env);
                }
                let mut keys: Vec<(String, i64, i64)> =
                    old.shas.iter().map(|sha| (sha.clone(), old.environment, old.service)).collect();
                if d.commits.is_empty() {
                    let mut refresh = self.tx.prepare_cached(
                        "UPDATE commits SET environment = ?3, service = ?4, team = ?5, delivered_at = ?6
                         WHERE sha = ?1 AND deployment = ?2",
                    )?;
                    for sha in &old.shas {
                        refresh.execute(params![sha, rowid, env, service, team, delivered_at])?;
                    }
                } else {
                    let mut delete =
                        self.tx.prepare_cached("DELETE FROM commits WHERE sha = ?1 AND deployment = ?2")?;
                    for sha in &old.shas {
                        delete.execute(params![sha, rowid])?;
                    }
                    let mut insert = self.tx.prepare_cached(
                        "INSERT OR IGNORE INTO commits (sha, deployment, committed_at, environment, service, team, delivered_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?;
                    for c in &d.commits {
                        insert.execute(params![c.sha, rowid, c.committed_at, env, service, team, delivered_at])?;
                    }
                }
                let new_shas = if d.commits.is_empty() {
                    old.shas.clone()
                } else {
                    d.commits.iter().map(|c| c.sha.clone()).collect()
                };
                keys.extend(new_shas.into_iter().map(|sha| (sha, env, service)));
                keys.sort();
                keys.dedup();
                for (sha, e, s) in keys {
                    self.recompute_first(&sha, e, s)?;
                }
            }
        }
        self.mark_replaced(d, rowid, rollback, first_finish, status, service, env)
    }

    /// Rollback marks: a successful rollback run marks the deployment it replaced as a failed
    /// change, at the run's end: the latest live deployment (successful, or whose rollout failed
    /// and stayed) of the service that finished
    /// by the time the run started and that no earlier run marked. Events arrive in any order
    /// (an import from CI after paved recorded its own rollback), so the marks of the service
    /// are replayed whenever a rollback run finishes or a deployment lands before one.
    #[allow(clippy::too_many_arguments)]
    fn mark_replaced(
        &mut self,
        d: &DeploymentEvent,
        rowid: i64,
        rollback: bool,
        changed: bool,
        status: DeploymentStatus,
        service: i64,
        env: i64,
    ) -> rusqlite::Result<()> {
        if !changed {
            return Ok(());
        }
        if rollback {
            self.rollbacks = Some(true);
            if status == DeploymentStatus::Success {
                return self.replay_marks(service, env);
            }
            return Ok(());
        }
        // Only a ledger with rollback runs has marks to redo: asked once per transaction.
        let any = match self.rollbacks {
            Some(any) => any,
            None => {
                let any = self
                    .tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM deployments WHERE rollback = 1)")?
                    .query_row([], |r| r.get(0))?;
                self.rollbacks = Some(any);
                any
            }
        };
        if !any {
            return Ok(());
        }
        let later_run: bool = self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deployments WHERE rollback = 1 AND environment = ?1 AND service = ?2
                    AND finished_at >= ?3 AND rowid != ?4)",
            )?
            .query_row(params![env, service, d.finished_at.unwrap_or(d.started_at), rowid], |r| r.get(0))?;
        if later_run { self.replay_marks(service, env) } else { Ok(()) }
    }

    /// Recomputes every rollback mark of a service in an environment, run by run in time order.
    fn replay_marks(&mut self, service: i64, env: i64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE deployments SET rolled_back_at = NULL
                 WHERE rolled_back_at IS NOT NULL AND environment = ?1 AND service = ?2",
            )?
            .execute(params![env, service])?;
        let runs: Vec<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT started_at, finished_at FROM deployments
                 WHERE rollback = 1 AND environment = ?1 AND service = ?2 AND status = ?3 AND finished_at IS NOT NULL
                 ORDER BY finished_at, rowid",
            )?
            .query_map(params![env, service, DeploymentStatus::Success.code()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut mark = self.tx.prepare_cached(
            "UPDATE deployments SET rolled_back_at = ?4 WHERE rowid = (
                SELECT rowid FROM deployments WHERE environment = ?1 AND finished_at <= ?3 AND service = ?2
                  AND status IN (?5, ?6) AND rollback = 0 AND rolled_back_at IS NULL
                ORDER BY finished_at DESC, rowid DESC LIMIT 1)",
        )?;
        // What a run replaced was live: a success, or a rollout that failed and stayed.
        let live = (DeploymentStatus::Success.code(), DeploymentStatus::RolloutFailed.code());
        for (started, finished) in runs {
            mark.execute(params![env, service, started, finished, live.0, live.1])?;
        }
        Ok(())
    }

    /// Recomputes the first delivery of a commit of a service in an environment: its earliest
    /// delivering deployment (successful, not a rollback run).
    fn recompute_first(&mut self, sha: &str, env: i64, service: i64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE commits SET first = 0 WHERE sha = ?1 AND +environment = ?2 AND +service = ?3 AND +first = 1",
            )?
            .execute(params![sha, env, service])?;
        self.tx
            .prepare_cached(
                "UPDATE commits SET first = 1 WHERE sha = ?1 AND deployment = (
                    SELECT deployment FROM commits WHERE sha = ?1 AND +environment = ?2 AND +service = ?3
                      AND +delivered_at IS NOT NULL ORDER BY delivered_at, deployment LIMIT 1)",
            )?
            .execute(params![sha, env, service])?;
        Ok(())
    }

    fn incident(&mut self, i: &IncidentEvent) -> rusqlite::Result<()> {
        let service = self.name(NameKind::Service, &i.service)?;
        let team = self.name(NameKind::Team, &i.team)?;
        let env = self.name(NameKind::Environment, &i.environment)?;
        // The linked deployment's row, so that reports join by rowid; a link to a deployment
        // not recorded yet waits for it (`link_waiting_incidents`).
        let deployment_row: Option<i64> = match &i.deployment_id {
            Some(id) => self
                .tx
                .prepare_cached("SELECT rowid FROM deployments WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?,
            None => None,
        };
        if i.deployment_id.is_some() && deployment_row.is_none() {
            self.dangling = Some(true);
        }
        let written = self
            .tx
            .prepare_cached(
                "INSERT INTO incidents (id, service, team, environment, deployment_id, opened_at, resolved_at, deployment_row)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET service = excluded.service, team = excluded.team,
                    environment = excluded.environment, deployment_id = coalesce(excluded.deployment_id, deployment_id),
                    deployment_row = CASE WHEN excluded.deployment_id IS NULL THEN deployment_row
                        ELSE excluded.deployment_row END,
                    opened_at = excluded.opened_at,
                    resolved_at = CASE WHEN coalesce(excluded.resolved_at, resolved_at) < excluded.opened_at
                        THEN excluded.resolved_at ELSE coalesce(excluded.resolved_at, resolved_at) END
                 WHERE service = excluded.service AND team = excluded.team AND environment = excluded.environment",
            )?
            .execute(params![i.id, service, team, env, i.deployment_id, i.opened_at, i.resolved_at, deployment_row])?;
        if written == 0 {
            let (s, t, e): (i64, i64, i64) = self
                .tx
                .prepare_cached("SELECT service, team, environment FROM incidents WHERE id = ?1")?
                .query_row([&i.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let owner = self.owner(s, t, Some(e))?;
            return Err(taken("incident", &i.id, &owner));
        }
        Ok(())
    }

    /// Links incidents recorded before their deployment to its new row.
    fn link_waiting_incidents(&mut self, id: &str, rowid: i64) -> rusqlite::Result<()> {
        let any = match self.dangling {
            Some(any) => any,
            None => {
                let any = self
                    .tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM incidents WHERE deployment_id IS NOT NULL AND deployment_row IS NULL)",
                    )?
                    .query_row([], |r| r.get(0))?;
                self.dangling = Some(any);
                any
            }
        };
        if any {
            self.tx
                .prepare_cached(
                    "UPDATE incidents SET deployment_row = ?2
                     WHERE deployment_id = ?1 AND deployment_id IS NOT NULL AND deployment_row IS NULL",
                )?
                .execute(params![id, rowid])?;
        }
        Ok(())
    }

    /// "service S (team T) in E", for an error about an id taken by another owner.
    fn owner(&self, service: i64, team: i64, env: Option<i64>) -> rusqlite::Result<String> {
        let name = |id: i64| -> rusqlite::Result<String> {
            self.tx.prepare_cached("SELECT name FROM names WHERE id = ?1")?.query_row([id], |r| r.get(0))
        };
        let mut owner = format!("service {} (team {})", name(service)?, name(team)?);
        if let Some(env) = env {
            owner.push_str(&format!(" in {}", name(env)?));
        }
        Ok(owner)
    }

    fn activity(&mut self, a: &ActivityEvent) -> rusqlite::Result<()> {
        let service = self.name(NameKind::Service, &a.service)?;
        let team = self.name(NameKind::Team, &a.team)?;
        let env = self.name(NameKind::Environment, &a.environment)?;
        self.tx
            .prepare_cached(
                "INSERT INTO activity (kind, service, team, environment, at, result, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![a.kind.code(), service, team, env, a.at, a.result, a.detail.to_string()])?;
        match a.kind {
            ActivityKind::PolicyDecision => {
                self.tally.count(Family::PolicyEvaluations, &[&a.team, &a.environment, &a.result]);
                let seconds = a.detail.get("duration_seconds").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                self.tally.observe(Family::PolicyDuration, &[&a.environment], seconds);
            }
            ActivityKind::DatabaseProvisioned => {
                let engine = a.detail.get("engine").and_then(serde_json::Value::as_str).unwrap_or("unknown");
                self.tally.count(Family::DatabaseProvisions, &[&a.team, &a.environment, engine]);
            }
            _ => {}
        }
        Ok(())
    }

    /// Inserts a row, or on a unique `id` updates it; `true` when it was new. The update's
    /// `WHERE` names the owner (`team = ?2`): an id of another team's event is refused.
    fn upsert(
        &mut self,
        (kind, table, id): (&str, &str, &str),
        insert: &str,
        update: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<bool> {
        match self.tx.prepare_cached(insert)?.execute(values) {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => {
                if self.tx.prepare_cached(update)?.execute(values)? == 0 {
                    let team: i64 = self
                        .tx
                        .prepare_cached(&format!("SELECT team FROM {table} WHERE id = ?1"))?
                        .query_row([id], |r| r.get(0))?;
                    let name: String = self
                        .tx
                        .prepare_cached("SELECT name FROM names WHERE id = ?1")?
                        .query_row([team], |r| r.get(0))?;
                    return Err(taken(kind, id, &format!("team {name}")));
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn survey(&mut self, s: &SurveyEvent) -> rusqlite::Result<()> {
        let team = self.name(NameKind::Team, &s.team)?;
        let service = s.service.as_deref().map(|name| self.name(NameKind::Service, name)).transpose()?;
        let new = self.upsert(
            ("survey answer", "surveys", &s.id),
            "INSERT INTO surveys (id, team, service, at, score, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            "UPDATE surveys SET service = coalesce(?3, service), at = ?4, score = ?5,
                comment = coalesce(?6, comment) WHERE id = ?1 AND team = ?2",
            params![s.id, team, service, s.at, s.score, s.comment],
        )?;
        if new {
            self.tally.count(Family::SurveyResponses, &[&s.team]);
        }
        Ok(())
    }

    fn ticket(&mut self, t: &SupportTicketEvent) -> rusqlite::Result<()> {
        let team = self.name(NameKind::Team, &t.team)?;
        let new = self.upsert(
            ("support ticket", "support_tickets", &t.id),
            "INSERT INTO support_tickets (id, team, category, opened_at, resolved_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            "UPDATE support_tickets SET category = ?3, opened_at = ?4,
                resolved_at = CASE WHEN coalesce(?5, resolved_at) < ?4 THEN ?5 ELSE coalesce(?5, resolved_at) END
             WHERE id = ?1 AND team = ?2",
            params![t.id, team, t.category, t.opened_at, t.resolved_at],
        )?;
        if new {
            self.tally.count(Family::SupportTickets, &[&t.team, crate::tally::ticket_category(&t.category)]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(family, labels, bucket, n)` of the aggregates table.
    type AggregateRow = (i64, String, i64, i64);

    /// `(synchronous, wal_autocheckpoint)` of the writer's connection.
    fn writer_settings(ledger: &Ledger) -> (i64, i64) {
        let conn = ledger.conn.lock().unwrap();
        let get = |pragma: &str| conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0)).unwrap();
        (get("synchronous"), get("wal_autocheckpoint"))
    }

    /// An import's batches commit without syncing and checkpoint on another thread; afterwards,
    /// and after a failed import, the writer is back to syncing every commit (FULL = 2) with
    /// automatic checkpoints, so what is recorded next survives a power loss.
    #[test]
    fn the_writer_syncs_every_commit_again_after_an_import() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join(LEDGER_FILE)).unwrap();
        let full = (2, DEFAULT_AUTOCHECKPOINT);
        assert_eq!(writer_settings(&ledger), full);
        let line = |i: usize| {
            format!(
                r#"{{"type":"deployment","id":"d{i}","service":"api","team":"t","environment":"production","status":"success","started_at":"2026-11-10T10:00:00Z","finished_at":"2026-11-10T10:05:00Z"}}"#
            )
        };
        let input: Vec<String> = (0..100).map(line).collect();
        let options = crate::ImportOptions::default().batch(10);
        let seen = std::cell::RefCell::new(Vec::new());
        ledger
            .import_with(input.join("\n").as_bytes(), options, |_| seen.borrow_mut().push(writer_settings(&ledger)))
            .unwrap();
        // Between batches the writer commits without syncing, and the other thread checkpoints.
        assert_eq!(seen.borrow()[0], (2, 0), "the writer's lock is free between batches: FULL again");
        assert_eq!(writer_settings(&ledger), full);
        // A failing batch leaves the same settings.
        ledger
            .conn
            .lock()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER full_disk BEFORE INSERT ON deployments WHEN NEW.id = 'd1005'
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )
            .unwrap();
        let input: Vec<String> = (1000..1100).map(line).collect();
        ledger.import_with(input.join("\n").as_bytes(), options, |_| {}).unwrap_err();
        assert_eq!(writer_settings(&ledger), full);
        assert_eq!(ledger.count_deployments().unwrap(), 100);
    }

    /// A ledger written by the first schema (SHAs space-separated, a rollback's mark in the
    /// replaced deployment's status) is migrated: deliveries rekeyed, SHAs as JSON, counters
    /// backfilled.
    #[test]
    fn a_version_1_ledger_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_1).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO names (id, kind, name) VALUES (1, 0, 'api'), (2, 1, 'team'), (3, 2, 'production'), (4, 0, 'web');
             INSERT INTO deployments (rowid, id, service, team, environment, status, started_at, finished_at, commit_shas)
                VALUES (1, 'a', 1, 2, 3, 1, 100, 160, 'x y'), (2, 'b', 4, 2, 3, 1, 200, 230, 'x'),
                       (3, 'c', 1, 2, 3, 2, 300, 400, NULL), (4, 'm', 4, 2, 3, 3, 500, 530, NULL);
             INSERT INTO deployments (rowid, id, service, team, environment, status, rollback, started_at, finished_at)
                VALUES (5, 'rb', 4, 2, 3, 1, 1, 600, 620);
             INSERT INTO commits (sha, deployment, committed_at) VALUES ('x', 1, 50), ('y', 1, 60), ('x', 2, 50);
             INSERT INTO activity (kind, service, team, environment, at, result, detail)
                VALUES (2, 1, 2, 3, 100, 'allowed', '{\"duration_seconds\": 0.0002}');",
        )
        .unwrap();
        drop(conn);
        let ledger = Ledger::open(&path).unwrap();
        let (shas, changes, families): (String, i64, Vec<AggregateRow>) = ledger
            .read(|c| {
                let shas = c.query_row("SELECT commit_shas FROM deployments WHERE id = 'a'", [], |r| r.get(0))?;
                let changes = c.query_row("SELECT count(*) FROM commits WHERE first = 1", [], |r| r.get(0))?;
                let mut stmt = c.prepare("SELECT family, labels, bucket, n FROM aggregates ORDER BY 1, 2, 3")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                Ok((shas, changes, rows.collect::<rusqlite::Result<_>>()?))
            })
            .unwrap();
        // Schema 1's mark on `m` (status rolled_back) is a success marked at the run's end.
        let marked: (i64, Option<i64>) = ledger
            .read(|c| {
                c.query_row("SELECT status, rolled_back_at FROM deployments WHERE id = 'm'", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap();
        assert_eq!(marked, (1, Some(620)));
        let shas: Vec<String> = serde_json::from_str(&shas).unwrap();
        assert_eq!(shas, ["x", "y"]);
        // x of api, y of api, x of web: a monorepo commit counts per service.
        assert_eq!(changes, 3);
        assert_eq!(
            families,
            [
                (1, r#"["team","api","production","failure"]"#.to_string(), 0, 1),
                (1, r#"["team","api","production","success"]"#.to_string(), 0, 1),
                (1, r#"["team","web","production","success"]"#.to_string(), 0, 3), // b, m and the run
                (2, r#"["team","web","production"]"#.to_string(), 0, 1),
                (3, r#"["team","production"]"#.to_string(), 2, 3), // 30 s (b, m) and 20 s (the run)
                (3, r#"["team","production"]"#.to_string(), 3, 1), // 60 s: le 60
                (3, r#"["team","production"]"#.to_string(), 4, 1), // 100 s: le 120
                (4, r#"["team","production","allowed"]"#.to_string(), 0, 1),
                (5, r#"["production"]"#.to_string(), 1, 1), // 0.2 ms
            ]
        );
    }
}
