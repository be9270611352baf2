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
use crate::model::{ActivityEvent, DeploymentEvent, DeploymentStatus, IncidentEvent, LedgerEvent};

/// The ledger's file name inside the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE names (
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
    CREATE INDEX activity_by_kind_at ON activity (kind, at);",
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
        let ledger = Ledger { path, conn: Mutex::new(conn), names: Mutex::new(Default::default()) };
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
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(wrap)?;
        // Up to 256 MiB of page cache (allocated only as pages are used).
        conn.pragma_update(None, "cache_size", -262_144).map_err(wrap)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(wrap)?;
        Ok(conn)
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
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                    tx.execute_batch(sql)?;
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
            let mut w = Writer { tx, names: &mut names, commits: Vec::new(), changes: Vec::new() };
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

    /// Runs a read-only query on the writer's connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().expect("ledger connection lock");
        f(&conn).map_err(self.err())
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
pub(crate) struct Writer<'a, 't> {
    tx: &'a rusqlite::Transaction<'t>,
    names: &'a mut [HashMap<String, i64>; 3],
    /// Commit rows of new deployments, inserted in key order by [`Writer::flush`].
    commits: Vec<(String, i64, i64)>,
    /// First-success candidates `(environment, sha, committed_at, deployment, finished_at,
    /// service, team)` of new successful deployments, upserted in key order by `flush`.
    changes: Vec<(i64, String, i64, i64, i64, i64, i64)>,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation))
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
            self.changes.sort_unstable_by(|a, b| (a.0, &a.1, a.4).cmp(&(b.0, &b.1, b.4)));
            let mut upsert = self.tx.prepare_cached(
                "INSERT INTO changes (environment, sha, committed_at, deployment, finished_at, service, team)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (environment, sha) DO UPDATE SET committed_at = excluded.committed_at,
                    deployment = excluded.deployment, finished_at = excluded.finished_at,
                    service = excluded.service, team = excluded.team
                 WHERE excluded.finished_at < changes.finished_at",
            )?;
            let mut last: Option<(i64, String)> = None;
            for (env, sha, committed_at, deployment, finished_at, service, team) in self.changes.drain(..) {
                // Sorted by finished_at within a key: the first row is the earliest.
                if last.as_ref().is_some_and(|(e, s)| *e == env && *s == sha) {
                    continue;
                }
                upsert.execute(params![env, sha, committed_at, deployment, finished_at, service, team])?;
                last = Some((env, sha));
            }
        }
        Ok(())
    }

    /// Writes one event.
    pub(crate) fn event(&mut self, e: &LedgerEvent) -> rusqlite::Result<()> {
        match e {
            LedgerEvent::Deployment(d) => self.deployment(d),
            LedgerEvent::Incident(i) => self.incident(i),
            LedgerEvent::Activity(a) => self.activity(a),
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
        let shas =
            (!d.commits.is_empty()).then(|| d.commits.iter().map(|c| c.sha.as_str()).collect::<Vec<_>>().join(" "));
        let values = params![
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
        ];
        // Fast path: a new id (the common case of an import). An existing id takes the
        // update path, which also repairs what the old version derived.
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO deployments (id, service, team, environment, status, rollback, started_at, finished_at, unplanned,
                    revision, image, escape_hatches, escape_hatch_count, commit_shas)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(values);
        let (rowid, old) = match inserted {
            Ok(_) => (self.tx.last_insert_rowid(), None),
            Err(e) if is_unique_violation(&e) => {
                // The update path reads commits and changes: write what is deferred first.
                self.flush()?;
                let (rowid, status, old_shas): (i64, i64, Option<String>) = self
                    .tx
                    .prepare_cached("SELECT rowid, status, commit_shas FROM deployments WHERE id = ?1")?
                    .query_row([&d.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                // A "finished" event after a "started" one keeps what the start recorded.
                self.tx
                    .prepare_cached(
                        "UPDATE deployments SET service = ?2, team = ?3, environment = ?4, status = ?5, rollback = ?6,
                            started_at = ?7, finished_at = ?8, unplanned = ?9, revision = coalesce(?10, revision),
                            image = coalesce(?11, image), escape_hatches = coalesce(?12, escape_hatches),
                            escape_hatch_count = max(?13, escape_hatch_count), commit_shas = coalesce(?14, commit_shas)
                         WHERE id = ?1",
                    )?
                    .execute(values)?;
                (rowid, Some((status, old_shas)))
            }
            Err(e) => return Err(e),
        };
        if let Some((_, Some(old_shas))) = &old
            && !d.commits.is_empty()
        {
            let mut delete = self.tx.prepare_cached("DELETE FROM commits WHERE sha = ?1 AND deployment = ?2")?;
            for sha in old_shas.split(' ') {
                delete.execute(params![sha, rowid])?;
            }
        }
        if old.is_none() {
            self.commits.extend(d.commits.iter().map(|c| (c.sha.clone(), rowid, c.committed_at)));
        } else {
            let mut insert = self
                .tx
                .prepare_cached("INSERT OR IGNORE INTO commits (sha, deployment, committed_at) VALUES (?1, ?2, ?3)")?;
            for c in &d.commits {
                insert.execute(params![c.sha, rowid, c.committed_at])?;
            }
        }
        let is_success = d.status == DeploymentStatus::Success && d.finished_at.is_some();
        match &old {
            // First successful deployments may have changed: recompute the affected commits.
            Some((old_status, old_shas))
                if *old_status == DeploymentStatus::Success.code() || !d.commits.is_empty() =>
            {
                let mut shas: Vec<String> = old_shas.iter().flat_map(|s| s.split(' ')).map(str::to_string).collect();
                shas.extend(d.commits.iter().map(|c| c.sha.clone()));
                shas.sort();
                shas.dedup();
                for sha in shas {
                    self.recompute_change(env, &sha)?;
                }
            }
            Some(_) if is_success => {
                let shas: Option<String> = self
                    .tx
                    .prepare_cached("SELECT commit_shas FROM deployments WHERE rowid = ?1")?
                    .query_row([rowid], |r| r.get(0))?;
                for sha in shas.iter().flat_map(|s| s.split(' ')) {
                    self.recompute_change(env, sha)?;
                }
            }
            _ if is_success => {
                let finished = d.finished_at.expect("checked by is_success");
                self.changes.extend(
                    d.commits.iter().map(|c| (env, c.sha.clone(), c.committed_at, rowid, finished, service, team)),
                );
            }
            _ => {}
        }
        if d.rollback && d.status == DeploymentStatus::Success {
            self.flush()?;
            // A rollback means the deployment it replaced was a failed change.
            let replaced: Option<(i64, Option<String>)> = self
                .tx
                .prepare_cached(
                    "SELECT rowid, commit_shas FROM deployments WHERE environment = ?2 AND finished_at <= ?5 AND service = ?1
                       AND status = ?3 AND rollback = 0 AND rowid != ?4 ORDER BY finished_at DESC, rowid DESC LIMIT 1",
                )?
                .query_row(params![service, env, DeploymentStatus::Success.code(), rowid, d.finished_at], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((replaced, shas)) = replaced {
                self.tx
                    .prepare_cached("UPDATE deployments SET status = ?1 WHERE rowid = ?2")?
                    .execute(params![DeploymentStatus::RolledBack.code(), replaced])?;
                for sha in shas.iter().flat_map(|s| s.split(' ')) {
                    self.recompute_change(env, sha)?;
                }
            }
        }
        Ok(())
    }

    /// Recomputes the first successful deployment of a commit in an environment.
    fn recompute_change(&mut self, env: i64, sha: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("DELETE FROM changes WHERE environment = ?1 AND sha = ?2")?
            .execute(params![env, sha])?;
        self.tx
            .prepare_cached(
                "INSERT INTO changes (environment, sha, committed_at, deployment, finished_at, service, team)
                 SELECT d.environment, c.sha, c.committed_at, d.rowid, d.finished_at, d.service, d.team
                 FROM commits c JOIN deployments d ON d.rowid = c.deployment
                 WHERE c.sha = ?2 AND d.environment = ?1 AND d.status = ?3 AND d.finished_at IS NOT NULL
                 ORDER BY d.finished_at, d.rowid LIMIT 1",
            )?
            .execute(params![env, sha, DeploymentStatus::Success.code()])?;
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
                    environment = excluded.environment, deployment_id = excluded.deployment_id,
                    opened_at = excluded.opened_at, resolved_at = excluded.resolved_at",
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
        Ok(())
    }
}
