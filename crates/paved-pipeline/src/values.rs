//! The values a pipeline template can use.
//!
//! | value | what | example |
//! |---|---|---|
//! | `app` | the app's name (`.platform.yaml` `app`, else its directory's name) | `checkout` |
//! | `team` | the owning team | `payments` |
//! | `pipeline` | the template's name | `nodejs-service` |
//! | `tests` | `.platform.yaml` `tests` as a double-quoted YAML scalar; empty when absent (`<% if tests %>`) | `"npm test"` |
//! | `paved_version` | the version of paved that generates the pipeline (to install the same) | `0.1.0` |
//! | `deploy_to` | the environments of `deploy_to`, separated by spaces (a shell word list) | `staging production` |
//! | `deploy` | a list, one item per environment of `deploy_to` in order: | |
//! | — `env` | the environment | `staging` |
//! | — `job` | its deploy job's name | `deploy-staging` |
//! | — `previous` | the job it waits for: `policy` for the first, else the previous deploy job | `policy` |
//! | — `first`, `last` | non-empty for the first and the last environment | `true` |
//! | `databases` | a list, one item per `.platform.yaml` database: `engine`, `size` | `postgres`, `small` |
//!
//! Every value is a DNS label, a list of them, a version, or a double-quoted scalar, so no
//! value can end a YAML scalar or begin a shell word of its own where a template puts it.

use paved_core::{OrgConfig, PlatformFile, Result};

use crate::engine::{Scope, Value};

/// The values of `file` under `config`.
pub fn scope(file: &PlatformFile, config: &OrgConfig) -> Result<Scope> {
    let app = file.app_name()?;
    let team = file.team(config)?;
    let flag = |on: bool| Value::Text(if on { "true".into() } else { String::new() });
    let n = file.deploy_to.len();
    let deploy = file
        .deploy_to
        .iter()
        .enumerate()
        .map(|(i, env)| -> Result<Scope> {
            let previous = if i == 0 { "policy".to_string() } else { format!("deploy-{}", file.deploy_to[i - 1]) };
            Ok(Scope::from([
                ("env", Value::name(env)?),
                ("job", Value::name(&format!("deploy-{env}"))?),
                ("previous", Value::name(&previous)?),
                ("first", flag(i == 0)),
                ("last", flag(i + 1 == n)),
            ]))
        })
        .collect::<Result<Vec<_>>>()?;
    let databases = file
        .databases
        .iter()
        .map(|d| -> Result<Scope> {
            Ok(Scope::from([("engine", Value::name(d.engine.as_str())?), ("size", Value::name(d.size.as_str())?)]))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Scope::from([
        ("app", Value::name(app.as_str())?),
        ("team", Value::name(team.as_str())?),
        ("pipeline", Value::name(&file.pipeline)?),
        ("tests", file.tests.as_deref().map_or(Value::Text(String::new()), Value::quoted)),
        ("paved_version", Value::version(env!("CARGO_PKG_VERSION"))?),
        ("deploy_to", Value::names(file.deploy_to.iter().map(String::as_str))?),
        ("deploy", Value::List(deploy)),
        ("databases", Value::List(databases)),
    ]))
}
