//! The event ledger: an append-mostly SQLite database (WAL) in the state directory.
//!
//! Several paved processes may write at once: every write is one `BEGIN IMMEDIATE`
//! transaction with a generous busy timeout (and a retry on top), so events are neither lost
//! nor does a `database is locked` error reach the user.

use std::collections::HashMap;
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
/// deliveries keyed by (service, sha), commit SHAs as JSON, counters kept at write time,
/// survey answers and support tickets.
const SCHEMA_2: &str = "
    ALTER TABLE deployments ADD COLUMN rolled_back_at INTEGER;
    DROP INDEX deployments_by_env_finished;
    CREATE INDEX deployments_by_env_finished ON deployments (environment, finished_at, status, team, service,
        unplanned, rollback, started_at, rolled_back_at, escape_hatch_count);
    WITH g AS (SELECT deployment, json_group_array(sha) AS shas FROM commits GROUP BY deployment)
        UPDATE deployments SET commit_shas = g.shas FROM g WHERE g.deployment = deployments.rowid;
    UPDATE deployments SET commit_shas = NULL WHERE commit_shas IS NOT NULL AND commit_shas NOT LIKE '[%';
    DROP TABLE changes;
    CREATE TABLE changes (
        environment INTEGER NOT NULL,
        service INTEGER NOT NULL,
        sha TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        deployment INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        team INTEGER NOT NULL,
        PRIMARY KEY (environment, service, sha)
    ) WITHOUT ROWID;
    CREATE INDEX changes_by_env_finished ON changes (environment, finished_at, team, service, committed_at);
    INSERT INTO changes (environment, service, sha, committed_at, deployment, finished_at, team)
        SELECT environment, service, sha, committed_at, rowid, finished_at, team FROM (
            SELECT d.environment, d.service, c.sha, c.committed_at, d.rowid, d.finished_at, d.team,
                row_number() OVER (PARTITION BY d.environment, d.service, c.sha ORDER BY d.finished_at, d.rowid) AS n
            FROM commits c JOIN deployments d ON d.rowid = c.deployment
            WHERE d.status = 1 AND d.rollback = 0 AND d.finished_at IS NOT NULL)
        WHERE n = 1;
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
    CREATE INDEX incidents_by_env_resolved ON incidents (environment, resolved_at, opened_at, service);";

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>] = &[
    |tx| tx.execute_batch(SCHEMA_1),
    |tx| {
        tx.execute_batch(SCHEMA_2)?;
        crate::tally::backfill(tx)
    },
];

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
    names: Mutex<[HashMap<String, i64>; 3]>,
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
        let conn = Self::connect(&path, false)?;
        let ledger =
            Ledger { path, conn: Mutex::new(conn), reads: Mutex::new(None), names: Mutex::new(Default::default()) };
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
        }
        // FULL: a committed event survives a power loss, as the documentation promises. In WAL
        // mode that is one fsync of the log per transaction: nothing for an import (one
        // transaction per 20,000 events), about a millisecond per event recorded by a deploy
        // (see BENCHMARKS.md).
        conn.pragma_update(None, "synchronous", "FULL").map_err(wrap)?;
        // Up to 256 MiB of page cache (allocated only as pages are used).
        conn.pragma_update(None, "cache_size", -262_144).map_err(wrap)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(wrap)?;
        Ok(conn)
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
        let mut conn = self.conn.lock().expect("ledger connection lock");
        let mut attempt = 0;
        let tx = loop {
            match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                Err(e) if busy(&e) && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 * attempt));
                }
                other => break other.map_err(self.err())?,
            }
        };
        match f(&tx).map_err(self.err())? {
            Some(value) => {
                tx.commit().map_err(self.err())?;
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// Writes events in one transaction: all of them or none.
    pub fn write(&self, events: &[LedgerEvent]) -> Result<()> {
        self.write_with(|w| {
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
        let mut names = self.names.lock().expect("names lock");
        // A rolled-back transaction may have interned names that do not exist: start over.
        let snapshot = names.clone();
        let result = self.with_write(|tx| {
            let mut w = Writer {
                tx,
                names: &mut names,
                commits: Vec::new(),
                changes: Vec::new(),
                tally: crate::tally::Tally::default(),
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
    names: &'a mut [HashMap<String, i64>; 3],
    /// Commit rows of new deployments, inserted in key order by [`Writer::flush`].
    commits: Vec<(String, i64, i64)>,
    /// First-delivery candidates `(environment, service, sha, committed_at, deployment,
    /// finished_at, team)` of new successful deployments, upserted in key order by `flush`.
    changes: Vec<(i64, i64, String, i64, i64, i64, i64)>,
    /// Counter increments, added to `aggregates` by `flush`.
    tally: Tally,
}

/// A duplicate `id` (not any constraint error: a trigger's or CHECK's abort is a failure).
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The SHAs of a deployment row's `commit_shas` (a JSON array).
fn stored_shas(json: Option<&str>) -> Vec<String> {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default()
}

/// What the ledger held for a deployment id before it was recorded again.
struct Stored {
    rowid: i64,
    status: DeploymentStatus,
    service: i64,
    environment: i64,
    shas: Vec<String>,
    rollback: bool,
}

impl Writer<'_, '_> {
    /// Inserts the deferred rows sorted by key: B-tree inserts in key order touch each page
    /// once instead of once per row, which is most of an import's cost.
    fn flush(&mut self) -> rusqlite::Result<()> {
        if !self.commits.is_empty() {
            self.commits.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            let mut insert = self
                .tx
                .prepare_cached("INSERT OR IGNORE INTO commits (sha, deployment, committed_at) VALUES (?1, ?2, ?3)")?;
            for (sha, deployment, committed_at) in self.commits.drain(..) {
                insert.execute(params![sha, deployment, committed_at])?;
            }
        }
        if !self.changes.is_empty() {
            self.changes.sort_unstable_by(|a, b| (a.0, a.1, &a.2, a.5).cmp(&(b.0, b.1, &b.2, b.5)));
            let mut upsert = self.tx.prepare_cached(
                "INSERT INTO changes (environment, service, sha, committed_at, deployment, finished_at, team)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (environment, service, sha) DO UPDATE SET committed_at = excluded.committed_at,
                    deployment = excluded.deployment, finished_at = excluded.finished_at, team = excluded.team
                 WHERE excluded.finished_at < changes.finished_at",
            )?;
            let mut last: Option<(i64, i64, String)> = None;
            for (env, service, sha, committed_at, deployment, finished_at, team) in self.changes.drain(..) {
                // Sorted by finished_at within a key: the first row is the earliest.
                if last.as_ref().is_some_and(|(e, s, h)| *e == env && *s == service && *h == sha) {
                    continue;
                }
                upsert.execute(params![env, service, sha, committed_at, deployment, finished_at, team])?;
                last = Some((env, service, sha));
            }
        }
        self.tally.flush(self.tx)
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
        let shas: Vec<&str> = d.commits.iter().map(|c| c.sha.as_str()).collect();
        let shas = (!shas.is_empty()).then(|| serde_json::to_string(&shas).expect("strings serialize"));
        // Fast path: a new id (the common case of an import). An existing id takes the
        // update path, which merges and repairs what the old version derived.
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO deployments (id, service, team, environment, status, rollback, started_at, finished_at, unplanned,
                    revision, image, escape_hatches, escape_hatch_count, commit_shas)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                d.id,
                service,
                team,
                env,
                d.status.code(),
                d.rollback,
                d.started_at,
                d.finished_at,
                d.unplanned,
                d.revision,
                d.image,
                hatches,
                d.escape_hatches.len() as i64,
                shas
            ]);
        let (rowid, stored) = match inserted {
            Ok(_) => (self.tx.last_insert_rowid(), None),
            Err(e) if is_unique_violation(&e) => {
                // The update path reads commits and changes: write what is deferred first.
                self.flush()?;
                let stored = self
                    .tx
                    .prepare_cached(
                        "SELECT rowid, status, service, environment, commit_shas, rollback FROM deployments WHERE id = ?1",
                    )?
                    .query_row([&d.id], |r| {
                        Ok(Stored {
                            rowid: r.get(0)?,
                            status: DeploymentStatus::from_code(r.get(1)?).unwrap_or(DeploymentStatus::InProgress),
                            service: r.get(2)?,
                            environment: r.get(3)?,
                            shas: stored_shas(r.get::<_, Option<String>>(4)?.as_deref()),
                            rollback: r.get(5)?,
                        })
                    })?;
                // A late "started" event does not re-open a finished deployment.
                let reopen = d.status == DeploymentStatus::InProgress && stored.status != DeploymentStatus::InProgress;
                self.tx
                    .prepare_cached(
                        "UPDATE deployments SET service = ?2, team = ?3, environment = ?4,
                            status = CASE WHEN ?15 THEN status ELSE ?5 END, rollback = max(rollback, ?6),
                            started_at = ?7, finished_at = CASE WHEN ?15 THEN finished_at ELSE coalesce(?8, finished_at) END,
                            unplanned = max(unplanned, ?9), revision = coalesce(?10, revision),
                            image = coalesce(?11, image), escape_hatches = coalesce(?12, escape_hatches),
                            escape_hatch_count = CASE WHEN ?12 IS NULL THEN escape_hatch_count ELSE ?13 END,
                            commit_shas = coalesce(?14, commit_shas)
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        d.id,
                        service,
                        team,
                        env,
                        d.status.code(),
                        d.rollback,
                        d.started_at,
                        d.finished_at,
                        d.unplanned,
                        d.revision,
                        d.image,
                        hatches,
                        d.escape_hatches.len() as i64,
                        shas,
                        reopen
                    ])?;
                (stored.rowid, Some((stored, reopen)))
            }
            Err(e) => return Err(e),
        };
        let status = match &stored {
            Some((old, true)) => old.status,
            _ => d.status,
        };
        let rollback = d.rollback || stored.as_ref().is_some_and(|(old, _)| old.rollback);
        let first_finish = status != DeploymentStatus::InProgress
            && stored.as_ref().is_none_or(|(old, _)| old.status == DeploymentStatus::InProgress);
        if first_finish {
            let duration = d.finished_at.map(|f| f - d.started_at);
            self.tally.deployment(&d.team, &d.service, &d.environment, status, rollback, duration);
        }
        let delivers = status == DeploymentStatus::Success && !rollback && d.finished_at.is_some();
        match &stored {
            None => {
                self.commits.extend(d.commits.iter().map(|c| (c.sha.clone(), rowid, c.committed_at)));
                if delivers {
                    let finished = d.finished_at.expect("checked by delivers");
                    self.changes.extend(
                        d.commits.iter().map(|c| (env, service, c.sha.clone(), c.committed_at, rowid, finished, team)),
                    );
                }
            }
            Some((old, _)) => {
                if !d.commits.is_empty() {
                    let mut delete =
                        self.tx.prepare_cached("DELETE FROM commits WHERE sha = ?1 AND deployment = ?2")?;
                    for sha in &old.shas {
                        delete.execute(params![sha, rowid])?;
                    }
                    let mut insert = self.tx.prepare_cached(
                        "INSERT OR IGNORE INTO commits (sha, deployment, committed_at) VALUES (?1, ?2, ?3)",
                    )?;
                    for c in &d.commits {
                        insert.execute(params![c.sha, rowid, c.committed_at])?;
                    }
                }
                // First deliveries may have changed: recompute every affected key, old and new.
                let mut keys: Vec<(i64, i64, String)> =
                    old.shas.iter().map(|sha| (old.environment, old.service, sha.clone())).collect();
                let new_shas: Vec<String> = if d.commits.is_empty() {
                    old.shas.clone()
                } else {
                    d.commits.iter().map(|c| c.sha.clone()).collect()
                };
                keys.extend(new_shas.into_iter().map(|sha| (env, service, sha)));
                keys.sort();
                keys.dedup();
                for (e, s, sha) in keys {
                    self.recompute_change(e, s, &sha)?;
                }
            }
        }
        if rollback && first_finish && status == DeploymentStatus::Success {
            // A rollback run marks the deployment it replaced as a failed change: the latest
            // successful deployment of the service before it that no rollback marked yet.
            let finished = d.finished_at.unwrap_or(d.started_at);
            self.tx
                .prepare_cached(
                    "UPDATE deployments SET rolled_back_at = ?5 WHERE rowid = (
                        SELECT rowid FROM deployments WHERE environment = ?2 AND finished_at <= ?5 AND service = ?1
                          AND status = ?3 AND rollback = 0 AND rolled_back_at IS NULL AND rowid != ?4
                        ORDER BY finished_at DESC, rowid DESC LIMIT 1)",
                )?
                .execute(params![service, env, DeploymentStatus::Success.code(), rowid, finished])?;
        }
        Ok(())
    }

    /// Recomputes the first delivery of a commit of a service in an environment: its first
    /// successful deployment that is not a rollback run.
    fn recompute_change(&mut self, env: i64, service: i64, sha: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("DELETE FROM changes WHERE environment = ?1 AND service = ?2 AND sha = ?3")?
            .execute(params![env, service, sha])?;
        self.tx
            .prepare_cached(
                "INSERT INTO changes (environment, service, sha, committed_at, deployment, finished_at, team)
                 SELECT d.environment, d.service, c.sha, c.committed_at, d.rowid, d.finished_at, d.team
                 FROM commits c JOIN deployments d ON d.rowid = c.deployment
                 WHERE c.sha = ?3 AND d.environment = ?1 AND d.service = ?2 AND d.status = ?4 AND d.rollback = 0
                   AND d.finished_at IS NOT NULL
                 ORDER BY d.finished_at, d.rowid LIMIT 1",
            )?
            .execute(params![env, service, sha, DeploymentStatus::Success.code()])?;
        Ok(())
    }

    fn incident(&mut self, i: &IncidentEvent) -> rusqlite::Result<()> {
        let service = self.name(NameKind::Service, &i.service)?;
        let team = self.name(NameKind::Team, &i.team)?;
        let env = self.name(NameKind::Environment, &i.environment)?;
        self.tx
            .prepare_cached(
                "INSERT INTO incidents (id, service, team, environment, deployment_id, opened_at, resolved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET service = excluded.service, team = excluded.team,
                    environment = excluded.environment, deployment_id = coalesce(excluded.deployment_id, deployment_id),
                    opened_at = excluded.opened_at, resolved_at = coalesce(excluded.resolved_at, resolved_at)",
            )?
            .execute(params![i.id, service, team, env, i.deployment_id, i.opened_at, i.resolved_at])?;
        Ok(())
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

    /// Inserts a row, or on a unique `id` updates it; `true` when it was new.
    fn upsert(&mut self, insert: &str, update: &str, values: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<bool> {
        match self.tx.prepare_cached(insert)?.execute(values) {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => {
                self.tx.prepare_cached(update)?.execute(values)?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn survey(&mut self, s: &SurveyEvent) -> rusqlite::Result<()> {
        let team = self.name(NameKind::Team, &s.team)?;
        let service = s.service.as_deref().map(|name| self.name(NameKind::Service, name)).transpose()?;
        let new = self.upsert(
            "INSERT INTO surveys (id, team, service, at, score, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            "UPDATE surveys SET team = ?2, service = coalesce(?3, service), at = ?4, score = ?5,
                comment = coalesce(?6, comment) WHERE id = ?1",
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
            "INSERT INTO support_tickets (id, team, category, opened_at, resolved_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            "UPDATE support_tickets SET team = ?2, category = ?3, opened_at = ?4,
                resolved_at = coalesce(?5, resolved_at) WHERE id = ?1",
            params![t.id, team, t.category, t.opened_at, t.resolved_at],
        )?;
        if new {
            self.tally.count(Family::SupportTickets, &[&t.team, &t.category]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(family, labels, bucket, n)` of the aggregates table.
    type AggregateRow = (i64, String, i64, i64);

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
                       (3, 'c', 1, 2, 3, 2, 300, 400, NULL);
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
                let changes = c.query_row("SELECT count(*) FROM changes", [], |r| r.get(0))?;
                let mut stmt = c.prepare("SELECT family, labels, bucket, n FROM aggregates ORDER BY 1, 2, 3")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                Ok((shas, changes, rows.collect::<rusqlite::Result<_>>()?))
            })
            .unwrap();
        let shas: Vec<String> = serde_json::from_str(&shas).unwrap();
        assert_eq!(shas, ["x", "y"]);
        // x of api, y of api, x of web: a monorepo commit counts per service.
        assert_eq!(changes, 3);
        assert_eq!(
            families,
            [
                (1, r#"["team","api","production","failure"]"#.to_string(), 0, 1),
                (1, r#"["team","api","production","success"]"#.to_string(), 0, 1),
                (1, r#"["team","web","production","success"]"#.to_string(), 0, 1),
                (3, r#"["team","production"]"#.to_string(), 2, 1), // 30 s: le 30
                (3, r#"["team","production"]"#.to_string(), 3, 1), // 60 s: le 60
                (3, r#"["team","production"]"#.to_string(), 4, 1), // 100 s: le 120
                (4, r#"["team","production","allowed"]"#.to_string(), 0, 1),
                (5, r#"["production"]"#.to_string(), 1, 1), // 0.2 ms
            ]
        );
    }
}
