//! `paved secrets …`: read and write secrets in Vault / OpenBao KV v2.
//!
//! Paths are `MOUNT/PATH` (`secret/payments/db`), as in `vault://` references and
//! `bao kv get`; `--mount` makes them relative to another mount. Values are masked unless
//! `--field` or `--reveal` asks for them.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use paved::secrecy::{ExposeSecret, SecretString};
use paved::{Assembly, Error, OrgConfig, Result, SecretMap, SecretStore};
use serde_json::{Map, Value, json};

use crate::args::Format;
use crate::output::{document, raw};

/// What a masked value shows (the same for every value: no length is given away).
const MASK: &str = "********";

/// `paved secrets`.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Read a secret; values are masked unless --field or --reveal.
    #[command(after_help = "Examples:
  paved secrets get secret/payments/db
  paved secrets get secret/payments/db --field password")]
    Get {
        /// MOUNT/PATH, e.g. secret/payments/db.
        path: String,
        /// Print only this key's value (unmasked).
        #[arg(long, value_name = "KEY")]
        field: Option<String>,
        /// Print the values instead of masks.
        #[arg(long)]
        reveal: bool,
        /// Read this version instead of the latest.
        #[arg(long, value_name = "N")]
        version: Option<u64>,
        #[command(flatten)]
        mount: MountArg,
    },
    /// Write a new version of a secret from KEY=VALUE, KEY=- (standard input) and --from-file.
    #[command(after_help = "Examples:
  paved secrets put secret/payments/db username=app password=-
  paved secrets put secret/payments/tls --from-file cert=tls.crt --from-file key=tls.key")]
    Put {
        /// MOUNT/PATH, e.g. secret/payments/db.
        path: String,
        /// KEY=VALUE, or KEY=- to read the value from standard input (one trailing newline is
        /// dropped), so that values need not sit in shell history.
        #[arg(value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        /// KEY=FILE: the value is the file's content, byte for byte (repeatable).
        #[arg(long = "from-file", value_name = "KEY=FILE")]
        from_file: Vec<String>,
        #[command(flatten)]
        mount: MountArg,
    },
    /// List the secrets and folders (ending in /) under a prefix.
    #[command(after_help = "Examples:
  paved secrets list secret/payments")]
    List {
        /// MOUNT[/PREFIX], e.g. secret/payments.
        prefix: String,
        #[command(flatten)]
        mount: MountArg,
    },
    /// Soft-delete the latest version of a secret (`bao kv undelete` restores it).
    #[command(after_help = "Examples:
  paved secrets delete secret/payments/old-token")]
    Delete {
        /// MOUNT/PATH, e.g. secret/payments/db.
        path: String,
        #[command(flatten)]
        mount: MountArg,
    },
}

/// The KV mount, when paths should not start with it.
#[derive(Debug, Args)]
pub(crate) struct MountArg {
    /// The KV v2 mount; PATH is then relative to it [default: PATH's first segment].
    #[arg(long, value_name = "MOUNT")]
    mount: Option<String>,
}

impl MountArg {
    /// Splits `MOUNT/PATH` (or uses `--mount`): `(mount, path inside it)`.
    fn split(&self, path: &str, allow_empty: bool) -> Result<(String, String)> {
        let trimmed = path.trim_matches('/');
        let (mount, rest) = match &self.mount {
            Some(m) => (m.trim_matches('/').to_string(), trimmed.to_string()),
            None => match trimmed.split_once('/') {
                Some((m, rest)) => (m.to_string(), rest.to_string()),
                None => (trimmed.to_string(), String::new()),
            },
        };
        if mount.is_empty() || (rest.is_empty() && !allow_empty) {
            return Err(Error::invalid(
                "secret path",
                path,
                "names no secret inside a mount",
                Some("write MOUNT/PATH, e.g. secret/payments/db (or --mount MOUNT PATH)".to_string()),
            ));
        }
        Ok((mount, rest))
    }
}

/// Runs a `paved secrets` command on the Vault store the library assembles from paved.toml
/// (`[vault]`) and the environment.
pub(crate) async fn secrets(cmd: SecretsCommand, config: OrgConfig, format: Format) -> Result<ExitCode> {
    // The arguments are checked before Vault is dialled: a malformed one is reported first.
    let (path, allow_empty) = match &cmd {
        SecretsCommand::List { prefix, .. } => (prefix, true),
        SecretsCommand::Get { path, .. } | SecretsCommand::Put { path, .. } | SecretsCommand::Delete { path, .. } => {
            (path, false)
        }
    };
    let mount_arg = match &cmd {
        SecretsCommand::Get { mount, .. }
        | SecretsCommand::Put { mount, .. }
        | SecretsCommand::List { mount, .. }
        | SecretsCommand::Delete { mount, .. } => mount,
    };
    let (mount, inner) = mount_arg.split(path, allow_empty)?;
    let data = match &cmd {
        SecretsCommand::Put { pairs, from_file, .. } => Some(read_pairs(pairs, from_file)?),
        _ => None,
    };
    let store = Assembly::new(config).vault_store().await?;
    match cmd {
        SecretsCommand::Get { field, reveal, version, .. } => {
            let store = store.with_mount(&mount);
            let data = match version {
                Some(v) => store.read_version(&inner, v).await?,
                None => store.get(&inner).await?,
            };
            let full = format!("{mount}/{inner}");
            if let Some(key) = field {
                let Some(value) = data.get(&key) else {
                    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                    return Err(Error::NotFound {
                        what: format!("key {key:?} in secret {full}"),
                        hint: Some(format!("the secret has the keys: {}", keys.join(", "))),
                    });
                };
                match format {
                    Format::Text => raw(&format!("{}\n", value.expose_secret())),
                    _ => document(format, &json!({"path": full, "field": key, "value": value.expose_secret()})),
                }
                return Ok(ExitCode::SUCCESS);
            }
            let shown = |v: &SecretString| if reveal { v.expose_secret().to_string() } else { MASK.to_string() };
            match format {
                Format::Text => {
                    let width = data.keys().map(String::len).max().unwrap_or(0);
                    let mut text = String::new();
                    for (k, v) in &data {
                        text.push_str(&format!("{k:<width$}  {}\n", shown(v)));
                    }
                    raw(&text);
                }
                _ => {
                    let values: Map<String, Value> = data.iter().map(|(k, v)| (k.clone(), shown(v).into())).collect();
                    document(format, &json!({"path": full, "version": version, "masked": !reveal, "data": values}));
                }
            }
        }
        SecretsCommand::Put { .. } => {
            let data = data.expect("read above");
            let keys: Vec<String> = data.keys().cloned().collect();
            let version = store.with_mount(&mount).put(&inner, data).await?;
            let full = format!("{mount}/{inner}");
            match format {
                Format::Text => raw(&format!("✓ wrote {full} version {version} (keys: {})\n", keys.join(", "))),
                _ => document(format, &json!({"path": full, "version": version, "keys": keys})),
            }
        }
        SecretsCommand::List { .. } => {
            let keys = store.with_mount(&mount).list(&inner).await?;
            let full = format!("{mount}/{inner}");
            match format {
                Format::Text => raw(&keys.iter().map(|k| format!("{k}\n")).collect::<String>()),
                _ => document(format, &json!({"prefix": full, "keys": keys})),
            }
        }
        SecretsCommand::Delete { .. } => {
            store.with_mount(&mount).delete(&inner).await?;
            let full = format!("{mount}/{inner}");
            match format {
                Format::Text => raw(&format!(
                    "✓ deleted the latest version of {full} (restore it: bao kv undelete -mount={mount} {inner})\n"
                )),
                _ => document(format, &json!({"path": full, "deleted": true})),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `KEY=VALUE`, `KEY=-` (stdin) and `--from-file KEY=FILE` into a secret map.
fn read_pairs(pairs: &[String], files: &[String]) -> Result<SecretMap> {
    let usage = || Some("write KEY=VALUE, KEY=- (value from standard input) or --from-file KEY=FILE".to_string());
    if pairs.is_empty() && files.is_empty() {
        return Err(Error::invalid("secret data", "", "no KEY=VALUE given", usage()));
    }
    let mut data = SecretMap::new();
    let mut seen = BTreeSet::new();
    let mut stdin_used = false;
    let key_of = |arg: &str, what: &'static str| -> Result<(String, String)> {
        // Only the key is ever echoed back in errors: the value may be secret.
        match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok((k.to_string(), v.to_string())),
            Some((k, _)) => Err(Error::invalid(what, k, "is not a valid key", usage())),
            None => Err(Error::invalid(what, "(value hidden)", "is not KEY=VALUE", usage())),
        }
    };
    for arg in pairs {
        let (key, value) = key_of(arg, "secret data")?;
        let value = if value == "-" {
            if stdin_used {
                return Err(Error::invalid(
                    "secret data",
                    key,
                    "a second KEY=- (standard input is read once)",
                    usage(),
                ));
            }
            stdin_used = true;
            let mut buf = String::new();
            std::io::stdin().read_to_string(&mut buf).map_err(|e| Error::io("<stdin>", e))?;
            let trimmed = buf.strip_suffix('\n').map(|b| b.strip_suffix('\r').unwrap_or(b)).unwrap_or(&buf).to_string();
            SecretString::from(trimmed)
        } else {
            SecretString::from(value)
        };
        if !seen.insert(key.clone()) {
            return Err(Error::invalid("secret data", key, "is given twice", usage()));
        }
        data.insert(key, value);
    }
    for arg in files {
        let (key, file) = key_of(arg, "from-file")?;
        let path = PathBuf::from(&file);
        let content = std::fs::read_to_string(&path).map_err(|e| Error::io(path, e))?;
        if !seen.insert(key.clone()) {
            return Err(Error::invalid("from-file", key, "is given twice", usage()));
        }
        data.insert(key, SecretString::from(content));
    }
    Ok(data)
}
