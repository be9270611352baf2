//! [`MemoryDbProvisioner`]: databases as entries of a map, named and validated as a real
//! provisioner names and validates them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use paved_core::{DatabaseInfo, DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, Error, Result};

use super::lock;

/// The longest environment name accepted (the identifier limit of PostgreSQL).
const MAX_LABEL: usize = 63;

/// A database provisioner in memory for one engine, named like the Vault provisioner: a
/// database is `{team}__{service}__{env}` (`-` as `_`; no part may contain `--`), its
/// credentials are at `memory/creds/{team}_{service}_{env}`; deprovisioning
/// without dropping data keeps the database for the next provisioning.
#[derive(Debug)]
pub struct MemoryDbProvisioner {
    engine: DbEngine,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Provisioned requests (access granted).
    provisioned: BTreeMap<(String, String, String), DatabaseInfo>,
    /// Databases that exist, provisioned or kept after a deprovisioning.
    databases: BTreeSet<String>,
}

impl MemoryDbProvisioner {
    /// A provisioner for `engine`.
    pub fn new(engine: DbEngine) -> Self {
        MemoryDbProvisioner { engine, state: Mutex::new(State::default()) }
    }

    /// The databases that exist (provisioned, or kept after deprovisioning), sorted.
    pub fn databases(&self) -> Vec<String> {
        lock(&self.state).databases.iter().cloned().collect()
    }

    /// Validates a request; answers its key and database name.
    fn check(&self, request: &DatabaseRequest) -> Result<((String, String, String), String)> {
        if request.engine != self.engine {
            return Err(Error::invalid(
                "engine",
                request.engine.to_string(),
                format!("this provisioner creates {} databases only", self.engine),
                Some(format!("ask for engine {}", self.engine)),
            ));
        }
        let env = &request.environment;
        if env.is_empty()
            || env.len() > MAX_LABEL
            || !env.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::invalid(
                "environment",
                env.clone(),
                format!("must be 1 to {MAX_LABEL} lowercase letters, digits or `-`"),
                Some("use an environment name such as dev or production".to_string()),
            ));
        }
        let (team, service) = (request.team.to_string(), request.service.to_string());
        for (field, part) in [("team", &team), ("service", &service), ("environment", env)] {
            if part.contains("--") {
                return Err(Error::invalid(field, part.clone(), "must not contain `--`", None));
            }
        }
        let database = [&team, &service, env].map(|p| p.replace('-', "_")).join("__");
        Ok(((team, service, env.clone()), database))
    }
}

#[async_trait]
impl DbProvisioner for MemoryDbProvisioner {
    fn name(&self) -> &str {
        "memory"
    }

    async fn provision(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        let (key, database) = self.check(request)?;
        let mut state = lock(&self.state);
        if let Some(info) = state.provisioned.get(&key) {
            return Ok(info.clone());
        }
        let (team, service, env) = &key;
        let mut info = DatabaseInfo::new(DatabaseState::Available, database.clone());
        let port = if self.engine == DbEngine::Mysql { 3306 } else { 5432 };
        info.endpoint = Some(("memory.invalid".to_string(), port));
        info.credentials_path = Some(format!("memory/creds/{team}_{service}_{env}"));
        info.connection_info_path = Some(format!("memory/database/{team}/{service}/{env}"));
        state.databases.insert(database);
        state.provisioned.insert(key, info.clone());
        Ok(info)
    }

    async fn status(&self, request: &DatabaseRequest) -> Result<DatabaseInfo> {
        let (key, database) = self.check(request)?;
        let state = lock(&self.state);
        Ok(state.provisioned.get(&key).cloned().unwrap_or_else(|| DatabaseInfo::new(DatabaseState::Absent, database)))
    }

    async fn deprovision(&self, request: &DatabaseRequest, drop_data: bool) -> Result<()> {
        let (key, database) = self.check(request)?;
        let mut state = lock(&self.state);
        state.provisioned.remove(&key);
        if drop_data {
            state.databases.remove(&database);
        }
        Ok(())
    }
}
