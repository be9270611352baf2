//! Release history in the cluster: one Secret per revision in the app's namespace (like Helm),
//! so that every machine sees the same history.
//!
//! A revision's Secret is `paved.<app>.<env>.v<revision>`, of type `paved.dev/release.v1`,
//! labelled with the app's ownership labels plus `paved.dev/record=release`,
//! `paved.dev/revision` and `paved.dev/state` (`pending`, `deployed`, `superseded`, `failed`);
//! its `release` key holds the record and the objects as JSON. A Secret, not a ConfigMap:
//! extra manifests may contain Secrets.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use paved_core::{Error, Manifests, ReleaseRecord, Result, Revision, RevisionState};
use serde::{Deserialize, Serialize};

use super::retry::{self, RetryPolicy};
use super::{MANAGER, TARGET_NAME};
use crate::render::{MANAGED_BY, labels};

/// The label that marks a history record.
pub const RECORD_LABEL: &str = "paved.dev/record";
/// The label with a record's revision.
pub const REVISION_LABEL: &str = "paved.dev/revision";
/// The label with a record's state.
pub const STATE_LABEL: &str = "paved.dev/state";
/// The Secret type of history records.
pub const SECRET_TYPE: &str = "paved.dev/release.v1";
const DATA_KEY: &str = "release";

/// One stored revision.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) record: ReleaseRecord,
    pub(crate) manifests: Manifests,
    /// The namespace of the Secret.
    pub(crate) namespace: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    record: ReleaseRecord,
    manifests: Manifests,
}

impl AsRef<ReleaseRecord> for Stored {
    fn as_ref(&self) -> &ReleaseRecord {
        &self.record
    }
}

impl Stored {
    pub(crate) fn state(&self) -> RevisionState {
        self.record.state.unwrap_or(RevisionState::Deployed)
    }
    pub(crate) fn secret_name(&self) -> String {
        secret_name(&self.record.app, &self.record.environment, self.record.revision)
    }
}

/// `paved.<app>.<env>.v<revision>`.
pub(crate) fn secret_name(app: &str, env: &str, revision: Revision) -> String {
    format!("paved.{app}.{env}.v{revision}")
}

/// The label selector of an app's history records.
pub(crate) fn selector(app: &str, env: &str) -> String {
    format!("{RECORD_LABEL}=release,{}={app},{}={env}", labels::NAME, labels::ENVIRONMENT)
}

/// An app's revisions, oldest first. `namespace: None` searches every namespace (for a
/// namespace template with `{team}`, which `status`/`history` cannot resolve alone).
pub(crate) async fn load(
    client: &Client,
    server: &str,
    namespace: Option<&str>,
    app: &str,
    env: &str,
    policy: &RetryPolicy,
) -> Result<Vec<Stored>> {
    let what = format!("reading the release history of {app} in {env}");
    load_selected(client, server, namespace, &selector(app, env), &what, policy).await
}

/// The deployed revision of every app, in every namespace: one record per app, not its
/// whole history.
pub(crate) async fn load_current(client: &Client, server: &str, policy: &RetryPolicy) -> Result<Vec<Stored>> {
    let selector = format!("{RECORD_LABEL}=release,{STATE_LABEL}=deployed");
    load_selected(client, server, None, &selector, "listing the release histories", policy).await
}

async fn load_selected(
    client: &Client,
    server: &str,
    namespace: Option<&str>,
    selector: &str,
    what: &str,
    policy: &RetryPolicy,
) -> Result<Vec<Stored>> {
    let api: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let lp = ListParams::default().labels(selector);
    let list = retry::retry(policy, || api.list(&lp)).await.map_err(|e| retry::to_error(server, what, e))?;
    let mut out = Vec::with_capacity(list.items.len());
    for secret in list.items {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let ns = secret.metadata.namespace.clone().or_else(|| namespace.map(str::to_string)).unwrap_or_default();
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(DATA_KEY)) else {
            tracing::warn!(secret = %name, "history record without data; ignored");
            continue;
        };
        let payload: Payload = serde_json::from_slice(&bytes.0).map_err(|e| {
            Error::backend(
                TARGET_NAME,
                format!("the history record {ns}/{name} is not readable: {e}"),
                Some(format!(
                    "it was changed by hand; delete it (kubectl -n {ns} delete secret {name}) to drop that revision"
                )),
            )
        })?;
        let mut record = payload.record;
        record.state = secret.metadata.labels.as_ref().and_then(|l| l.get(STATE_LABEL)).and_then(|s| parse_state(s));
        out.push(Stored { record, manifests: payload.manifests, namespace: ns });
    }
    out.sort_by_key(|s| s.record.revision);
    Ok(out)
}

fn parse_state(s: &str) -> Option<RevisionState> {
    Some(match s {
        "pending" => RevisionState::Pending,
        "deployed" => RevisionState::Deployed,
        "superseded" => RevisionState::Superseded,
        "failed" => RevisionState::Failed,
        _ => return None,
    })
}

/// How creating a record failed.
pub(crate) enum CreateError {
    /// The revision exists already: another deploy of the app is under way (or just finished).
    Exists,
    /// Anything else.
    Other(Error),
}

/// Creates the record of a new revision in state `pending`. Creation (not apply) makes the
/// revision number a lock: of two concurrent deploys, one gets `AlreadyExists`.
pub(crate) async fn create(
    client: &Client,
    server: &str,
    stored: &Stored,
    policy: &RetryPolicy,
) -> std::result::Result<(), CreateError> {
    let r = &stored.record;
    let api: Api<Secret> = Api::namespaced(client.clone(), &stored.namespace);
    let mut record = r.clone();
    record.state = None;
    let payload = Payload { record, manifests: stored.manifests.clone() };
    let json = serde_json::to_vec(&payload).expect("records serialize");
    let mut label_map = BTreeMap::new();
    label_map.insert(labels::MANAGED_BY.to_string(), MANAGED_BY.to_string());
    label_map.insert(labels::NAME.to_string(), r.app.clone());
    label_map.insert(labels::ENVIRONMENT.to_string(), r.environment.clone());
    label_map.insert(labels::TEAM.to_string(), r.team.clone());
    label_map.insert(RECORD_LABEL.to_string(), "release".to_string());
    label_map.insert(REVISION_LABEL.to_string(), r.revision.to_string());
    label_map.insert(STATE_LABEL.to_string(), RevisionState::Pending.as_str().to_string());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(stored.secret_name()),
            namespace: Some(stored.namespace.clone()),
            labels: Some(label_map),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(json))])),
        ..Secret::default()
    };
    let pp = PostParams { field_manager: Some(MANAGER.to_string()), ..PostParams::default() };
    let mut attempt = 0;
    loop {
        match api.create(&pp, &secret).await {
            Ok(_) => return Ok(()),
            // A retried create whose first attempt reached the server: the record is ours if
            // it holds the same digest and time.
            Err(kube::Error::Api(s)) if s.code == 409 && attempt > 0 => {
                let same = load_one(&api, &stored.secret_name()).await.is_some_and(|p| {
                    p.record.digest == r.digest
                        && p.record.deployed_at == r.deployed_at
                        && p.record.revision == r.revision
                });
                return if same { Ok(()) } else { Err(CreateError::Exists) };
            }
            Err(kube::Error::Api(s)) if s.code == 409 => return Err(CreateError::Exists),
            Err(e) if attempt + 1 < policy.attempts && retry::is_transient(&e) => {
                tokio::time::sleep(policy.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(CreateError::Other(retry::to_error(
                    server,
                    &format!("recording revision {} of {} in {}", r.revision, r.app, r.environment),
                    e,
                )));
            }
        }
    }
}

async fn load_one(api: &Api<Secret>, name: &str) -> Option<Payload> {
    let secret = api.get_opt(name).await.ok()??;
    let bytes = secret.data.as_ref()?.get(DATA_KEY)?;
    serde_json::from_slice(&bytes.0).ok()
}

/// Sets a record's state (a JSON merge patch of one label).
pub(crate) async fn set_state(
    client: &Client,
    server: &str,
    stored: &Stored,
    state: RevisionState,
    policy: &RetryPolicy,
) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &stored.namespace);
    let patch = serde_json::json!({ "metadata": { "labels": { STATE_LABEL: state.as_str() } } });
    let pp = PatchParams { field_manager: Some(MANAGER.to_string()), ..PatchParams::default() };
    let name = stored.secret_name();
    let patch = Patch::Merge(&patch);
    retry::retry(policy, || api.patch(&name, &pp, &patch)).await.map(drop).map_err(|e| {
        retry::to_error(server, &format!("marking revision {} as {}", stored.record.revision, state.as_str()), e)
    })
}

/// Deletes a record (a missing one is fine).
pub(crate) async fn delete(client: &Client, server: &str, stored: &Stored, policy: &RetryPolicy) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &stored.namespace);
    let name = stored.secret_name();
    let dp = DeleteParams::default();
    match retry::retry(policy, || api.delete(&name, &dp)).await {
        Ok(_) => Ok(()),
        Err(e) if retry::code(&e) == Some(404) => Ok(()),
        Err(e) => Err(retry::to_error(server, &format!("deleting the history record {name}"), e)),
    }
}
