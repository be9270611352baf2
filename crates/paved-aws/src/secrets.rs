//! [`SecretsManagerStore`]: a [`SecretStore`] on AWS Secrets Manager, for `aws-sm://NAME#KEY`
//! references.

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use paved_core::secrecy::{ExposeSecret, SecretString};
use paved_core::{Error, Result, SecretMap, SecretRef, SecretStore};

use crate::aws::{Aws, Client};
use crate::naming::MANAGED_BY;

/// The store's name (and the scheme of its references, `aws-sm://`).
pub(crate) const BACKEND: &str = "aws-sm";

/// The version id paved gives version `n` of a secret (Secrets Manager's client request
/// token, 32 to 64 characters): numbered versions like Vault's, which `?version=N` pins.
fn version_token(n: u64) -> String {
    format!("paved-v{n:026}")
}

/// The number of a version id paved gave ([`version_token`]).
fn version_number(id: &str) -> Option<u64> {
    id.strip_prefix("paved-v")?.parse().ok()
}

/// One version of a Secrets Manager secret, as [`SecretsManagerStore::versions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SecretVersion {
    /// paved's version number (`None` for a version another tool wrote).
    pub version: Option<u64>,
    /// When it was created (RFC 3339).
    pub created: Option<String>,
    /// Its staging labels (`AWSCURRENT`, `AWSPREVIOUS`, …).
    pub stages: Vec<String>,
}

/// A [`SecretStore`] on AWS Secrets Manager.
///
/// - A secret is a JSON object of string values (`{"username": "app", "password": "…"}`);
///   a key of an `aws-sm://NAME#KEY` reference selects one. Numbers and booleans are read as
///   their text. A binary secret, a string that is not a JSON object, or nested values are
///   reported as such (never with the value).
/// - `put` makes a new version whose id is `paved-v` and its number, so versions count up
///   like Vault's and `aws-sm://NAME?version=N` pins one; the `AWSCURRENT` stage moves to it.
///   Two writers racing for the same number: the second gets a conflict, never a silent
///   overwrite. [`SecretsManagerStore::get_stage`] reads another stage (`AWSPREVIOUS`).
/// - New secrets are tagged `managed-by = paved` (and `[aws.secrets] tags`) and encrypted with
///   `[aws.secrets] kms_key_id` when set.
/// - `delete` schedules the deletion (`recovery_window_days`, default 30): a deleted secret
///   reads as not found, and a `put` restores it with the new value.
/// - Values are [`SecretString`]s from the moment they are parsed; they never appear in
///   `Debug`, errors or logs.
pub struct SecretsManagerStore {
    client: Client<aws_sdk_secretsmanager::Client>,
}

impl std::fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerStore").finish_non_exhaustive()
    }
}

impl SecretsManagerStore {
    /// The store on `aws`.
    pub fn new(aws: Aws) -> Self {
        SecretsManagerStore { client: Client::new(aws, BACKEND) }
    }

    async fn sm(&self) -> Result<&aws_sdk_secretsmanager::Client> {
        self.client.get(aws_sdk_secretsmanager::Client::new).await
    }

    /// Reads paved's version `version` of the secret `name` (as `aws-sm://NAME?version=N`).
    pub async fn get_version(&self, name: &str, version: u64) -> Result<SecretMap> {
        self.read(name, Some(version), None).await
    }

    /// Reads the version of `name` that has the staging label `stage` (`AWSCURRENT`,
    /// `AWSPREVIOUS`, `AWSPENDING`, or one of your own).
    pub async fn get_stage(&self, name: &str, stage: &str) -> Result<SecretMap> {
        self.read(name, None, Some(stage)).await
    }

    async fn read(&self, name: &str, version: Option<u64>, stage: Option<&str>) -> Result<SecretMap> {
        check_name(name)?;
        let sm = self.sm().await?;
        let mut call = sm.get_secret_value().secret_id(name);
        if let Some(v) = version {
            call = call.version_id(version_token(v));
        }
        if let Some(s) = stage {
            call = call.version_stage(s);
        }
        let what = || match (version, stage) {
            (Some(v), _) => format!("version {v} of AWS Secrets Manager secret {name}"),
            (None, Some(s)) => format!("stage {s} of AWS Secrets Manager secret {name}"),
            _ => format!("AWS Secrets Manager secret {name}"),
        };
        let out = match call.send().await {
            Ok(out) => out,
            Err(e) => {
                if gone(&e) {
                    return Err(Error::NotFound {
                        what: what(),
                        hint: Some(format!(
                            "write it first (SecretStore::put, or `aws secretsmanager create-secret --name {name}`), or check the name and the region"
                        )),
                    });
                }
                return Err(self.client.fail(&format!("read {}", what()), e));
            }
        };
        if out.secret_binary().is_some() && out.secret_string().is_none() {
            return Err(not_a_map(name, "is a binary secret"));
        }
        let Some(text) = out.secret_string() else { return Err(not_a_map(name, "has no value")) };
        parse_map(name, SecretString::from(text.to_string()))
    }

    /// The versions of secret `name`, oldest first: paved's number (`None` for a version
    /// another tool wrote), when it was created (RFC 3339), and its staging labels
    /// (`AWSCURRENT`, `AWSPREVIOUS`, …; none for a deprecated version). Values are not read.
    pub async fn versions(&self, name: &str) -> Result<Vec<SecretVersion>> {
        check_name(name)?;
        let sm = self.sm().await?;
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = sm.list_secret_version_ids().secret_id(name).include_deprecated(true).max_results(100);
            if let Some(t) = &token {
                call = call.next_token(t);
            }
            let out = call.send().await.map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) {
                    return Error::NotFound {
                        what: format!("AWS Secrets Manager secret {name}"),
                        hint: Some("check the name and the region".into()),
                    };
                }
                self.client.fail(&format!("list the versions of AWS Secrets Manager secret {name}"), e)
            })?;
            for v in out.versions() {
                let created = v.created_date().and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok());
                versions.push(SecretVersion {
                    version: v.version_id().and_then(version_number),
                    created,
                    stages: v.version_stages().to_vec(),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        versions.sort_by(|a, b| a.created.cmp(&b.created).then(a.version.cmp(&b.version)));
        Ok(versions)
    }

    /// The highest version number `name` has had (paved's numbers, or the count of versions
    /// for a secret others wrote), whether it is scheduled for deletion, or `None` when there
    /// is no such secret. Every version counts, deprecated ones included, so a number is never
    /// given twice: not after a rotation, a rollback of `AWSCURRENT`, or versions written by
    /// others.
    async fn last_version(&self, name: &str) -> Result<Option<(u64, bool)>> {
        let sm = self.sm().await?;
        let deleted = match sm.describe_secret().secret_id(name).send().await {
            Ok(out) => out.deleted_date().is_some(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(self.client.fail(&format!("look up AWS Secrets Manager secret {name}"), e)),
        };
        let (mut highest, mut count) = (0u64, 0u64);
        let mut token: Option<String> = None;
        loop {
            let mut call = sm.list_secret_version_ids().secret_id(name).include_deprecated(true).max_results(100);
            if let Some(t) = &token {
                call = call.next_token(t);
            }
            let out = call
                .send()
                .await
                .map_err(|e| self.client.fail(&format!("list the versions of AWS Secrets Manager secret {name}"), e))?;
            for v in out.versions() {
                count += 1;
                highest = highest.max(v.version_id().and_then(version_number).unwrap_or(0));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(Some((highest.max(count), deleted)))
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    fn name(&self) -> &str {
        BACKEND
    }

    async fn get(&self, path: &str) -> Result<SecretMap> {
        self.read(path, None, None).await
    }

    async fn put(&self, path: &str, data: SecretMap) -> Result<u64> {
        check_name(path)?;
        let body = to_json(&data);
        let sm = self.sm().await?;
        let settings = &self.client.aws().settings().secrets;
        let (number, deleted) = match self.last_version(path).await? {
            Some(found) => found,
            None => {
                let mut create = sm
                    .create_secret()
                    .name(path)
                    .secret_string(body.expose_secret())
                    .client_request_token(version_token(1))
                    .tags(Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build());
                for (k, v) in &settings.tags {
                    create = create.tags(Tag::builder().key(k).value(v).build());
                }
                if let Some(key) = &settings.kms_key_id {
                    create = create.kms_key_id(key);
                }
                match create.send().await {
                    Ok(_) => return Ok(1),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => {
                        return Err(raced(path));
                    }
                    Err(e) => return Err(self.client.fail(&format!("create AWS Secrets Manager secret {path}"), e)),
                }
            }
        };
        if deleted {
            sm.restore_secret()
                .secret_id(path)
                .send()
                .await
                .map_err(|e| self.client.fail(&format!("restore the deleted AWS Secrets Manager secret {path}"), e))?;
        }
        let next = number + 1;
        match sm
            .put_secret_value()
            .secret_id(path)
            .secret_string(body.expose_secret())
            .client_request_token(version_token(next))
            .send()
            .await
        {
            Ok(_) => Ok(next),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => Err(raced(path)),
            Err(e) => Err(self.client.fail(&format!("write AWS Secrets Manager secret {path}"), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let folder = match prefix.trim_end_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let sm = self.sm().await?;
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = sm.list_secrets().max_results(100);
            if !folder.is_empty() {
                call = call.filters(Filter::builder().key(FilterNameStringType::Name).values(&folder).build());
            }
            if let Some(t) = &token {
                call = call.next_token(t);
            }
            let out = call
                .send()
                .await
                .map_err(|e| self.client.fail(&format!("list AWS Secrets Manager secrets under {folder}"), e))?;
            names.extend(
                out.secret_list()
                    .iter()
                    .filter(|s| s.deleted_date().is_none())
                    .filter_map(|s| s.name().map(str::to_string)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(paved_core::secret::list_folder(names.iter().map(String::as_str), &folder))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        check_name(path)?;
        let sm = self.sm().await?;
        let days = self.client.aws().settings().secrets.recovery_window_days.unwrap_or(30);
        match sm.delete_secret().secret_id(path).recovery_window_in_days(days).send().await {
            Ok(_) => Ok(()),
            Err(e) if gone(&e) => Err(Error::NotFound {
                what: format!("AWS Secrets Manager secret {path}"),
                hint: Some("check the name and the region".into()),
            }),
            Err(e) => Err(self.client.fail(&format!("delete AWS Secrets Manager secret {path}"), e)),
        }
    }

    async fn get_ref(&self, reference: &SecretRef) -> Result<SecretMap> {
        self.read(reference.path(), reference.version(), None).await
    }
}

/// Whether an error says the secret does not exist: not found, or scheduled for deletion
/// (Secrets Manager answers `InvalidRequestException` for those).
fn gone<E: ProvideErrorMetadata, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool {
    crate::error::code(e).is_some_and(|c| c == "ResourceNotFoundException")
        || (crate::error::code(e) == Some("InvalidRequestException")
            && e.as_service_error()
                .and_then(|s| s.message())
                .is_some_and(|m| m.contains("deleted") || m.contains("deletion")))
}

/// Refuses a name Secrets Manager would refuse (or that would name another secret): 1 to 512
/// of `A-Z a-z 0-9 / _ + = . @ -`, no empty path parts.
fn check_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    let arn = name.starts_with("arn:aws");
    if name.is_empty()
        || name.len() > 512
        || (!ok_chars && !arn)
        || (!arn && (name.contains("//") || name.starts_with('/')))
    {
        return Err(Error::invalid(
            "path",
            name,
            "is not an AWS Secrets Manager secret name",
            Some("use 1 to 512 of letters, digits and / _ + = . @ -, with no empty parts (e.g. payments/db)".into()),
        ));
    }
    Ok(())
}

fn not_a_map(name: &str, what: &str) -> Error {
    Error::Backend {
        backend: BACKEND.into(),
        message: format!(
            "AWS Secrets Manager secret {name} {what}: paved reads secrets that are JSON objects of key/value pairs"
        ),
        hint: Some(format!(
            "store it as JSON, e.g. {{\"password\": \"…\"}}, and refer to a key: aws-sm://{name}#password"
        )),
        source: None,
    }
}

fn raced(path: &str) -> Error {
    Error::Conflict {
        what: format!("AWS Secrets Manager secret {path}"),
        message: "another writer made the same version at the same time".into(),
        hint: Some("read it again and write once more".into()),
    }
}

/// Parses a secret string into a map; the text is secret, so no error quotes it.
fn parse_map(name: &str, text: SecretString) -> Result<SecretMap> {
    let value: serde_json::Value =
        serde_json::from_str(text.expose_secret()).map_err(|_| not_a_map(name, "is not JSON"))?;
    let serde_json::Value::Object(object) = value else { return Err(not_a_map(name, "is not a JSON object")) };
    let mut map = SecretMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => String::new(),
            _ => return Err(not_a_map(name, &format!("has a nested value under {key:?}"))),
        };
        map.insert(key, SecretString::from(text));
    }
    Ok(map)
}

fn to_json(data: &SecretMap) -> SecretString {
    let object: serde_json::Map<String, serde_json::Value> =
        data.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.expose_secret().to_string()))).collect();
    SecretString::from(serde_json::Value::Object(object).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_tokens_secrets_manager_accepts_and_read_back() {
        let t = version_token(3);
        assert!((32..=64).contains(&t.len()), "{t}");
        assert_eq!(version_number(&t), Some(3));
        assert_eq!(version_number("EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"), None);
    }

    #[test]
    fn only_json_objects_are_maps_and_errors_never_quote_the_value() {
        let m = parse_map("x", SecretString::from(r#"{"password":"p","port":5432,"tls":true}"#.to_string())).unwrap();
        assert_eq!(m.get("port").unwrap().expose_secret(), "5432");
        for bad in ["hunter2-canary", r#"["hunter2-canary"]"#, r#"{"a":{"b":"hunter2-canary"}}"#] {
            let e = parse_map("x", SecretString::from(bad.to_string())).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("hunter2-canary"), "{e}");
            assert!(e.hint().unwrap().contains("aws-sm://x#password"));
        }
    }

    #[test]
    fn names_secrets_manager_refuses_are_bad_input() {
        for bad in ["", "a//b", "/a", "with space", "semi;colon"] {
            assert!(check_name(bad).unwrap_err().is_user_error(), "{bad}");
        }
        check_name("payments/db_1+x=y.z@w-v").unwrap();
        check_name("arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1-AbCdEf").unwrap();
    }
}
