//! Test support (feature `testing`): a scripted in-memory Kubernetes API server behind a real
//! [`kube::Client`], the way kube-rs tests its client: a `tower_test::mock::pair` whose handle
//! is served by this module.
//!
//! It is strict where a real API server is strict, so that tests catch what a cluster would
//! reject: server-side apply needs `fieldManager` and the content type
//! `application/apply-patch+yaml` (400/415 otherwise), namespaced objects need their namespace
//! (404 with `details.kind = namespaces`), apply payloads must be minimal (no `status`, no
//! server-set metadata, no `null`s; 400 otherwise), a kind the "cluster" does not serve is a
//! plain-text `404 page not found`, and fields owned by another field manager conflict (409
//! with the manager and fields in `details.causes`) unless the apply forces.
//!
//! Deployments roll out by [`RolloutScript`]: statuses are queued when an apply changes a
//! Deployment and delivered as `MODIFIED` events on the next watch, so watching is exercised
//! through kube-runtime's real watcher (list, then watch, re-watch after a disconnect).
//! Faults (HTTP 5xx, 429, connection resets, watch disconnects) are injected per request.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use paved_kube::testing::MockApiServer;
//! let (client, server) = MockApiServer::start();
//! let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
//! assert!(api.get_opt("missing").await.unwrap().is_none());
//! assert_eq!(server.requests()[0].method, "GET");
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::live::apply::KINDS;

/// The response body type of the mock server.
pub type MockBody = UnsyncBoxBody<Bytes, Infallible>;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `PATCH`, `POST`, `DELETE`.
    pub method: String,
    /// The path, e.g. `/apis/apps/v1/namespaces/a-dev/deployments/a`.
    pub path: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body, parsed as JSON (YAML apply bodies from kube are JSON).
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// `true` for a watch request.
    pub fn is_watch(&self) -> bool {
        self.query.get("watch").is_some_and(|v| v == "true" || v == "1")
    }

    /// `true` for a server-side apply.
    pub fn is_apply(&self) -> bool {
        self.method == "PATCH" && self.content_type.as_deref() == Some(APPLY_CONTENT_TYPE)
    }

    /// The Kubernetes authorization verb: `get`, `list`, `watch`, `create`, `patch`, `update`,
    /// `delete` or `deletecollection`.
    pub fn verb(&self) -> &'static str {
        let named = ApiPath::parse(&self.path).is_some_and(|p| p.name.is_some());
        match (self.method.as_str(), named) {
            ("GET", _) if self.is_watch() => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PATCH", _) => "patch",
            ("PUT", _) => "update",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    }
}

/// The content type of a server-side apply.
pub const APPLY_CONTENT_TYPE: &str = "application/apply-patch+yaml";

/// How a Deployment's rollout goes after an apply that changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloutScript {
    /// One replica after the other is updated and becomes available, then it completes.
    Succeed,
    /// One new replica is created and never becomes available (its pod reports `reason`,
    /// e.g. `ImagePullBackOff`), then `ProgressDeadlineExceeded`.
    DeadlineExceeded {
        /// The waiting reason of the new pod's container.
        reason: String,
        /// Its message.
        message: String,
    },
    /// Nothing ever happens (for timeouts).
    Stall,
}

/// Builds the [`RolloutScript`] of a Deployment from its first container's image.
pub type RolloutFn = Box<dyn Fn(&str) -> RolloutScript + Send>;

#[derive(Debug, Clone)]
enum FaultKind {
    Status(u16),
    Reset,
}

#[derive(Debug, Clone)]
struct Fault {
    method: String,
    path_contains: String,
    kind: FaultKind,
    times: usize,
}

/// A resource discovery lists.
#[derive(Debug, Clone)]
struct Served {
    plural: String,
    kind: String,
    namespaced: bool,
}

/// The group version the scripted server serves a built-in group at.
fn served_version(group: &str) -> &'static str {
    if group == "autoscaling" { "v2" } else { "v1" }
}

/// `v1`, or `group/version`.
fn group_version_of(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

/// The built-in resources: every kind paved knows, and events.
fn built_in_resources() -> BTreeMap<String, Vec<Served>> {
    let mut served: BTreeMap<String, Vec<Served>> = BTreeMap::new();
    let all = KINDS.iter().map(|k| (k.group, k.kind, k.plural, k.namespaced)).chain([("", "Event", "events", true)]);
    for (group, kind, plural, namespaced) in all {
        served.entry(group_version_of(group, served_version(group))).or_default().push(Served {
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
        });
    }
    served
}

/// One field manager's share of an object: the fields (JSON pointers of leaves) it set, as
/// in `metadata.managedFields`.
#[derive(Debug, Clone)]
struct Owner {
    manager: String,
    /// `Apply` (server-side apply) or `Update` (any other write).
    apply: bool,
    /// A write through a subresource (`scale`).
    subresource: Option<String>,
    api_version: String,
    fields: BTreeSet<String>,
}

impl Owner {
    /// How the API server names a manager in a conflict (`printManager` of
    /// k8s.io/apiserver's fieldmanager).
    fn describe(&self) -> String {
        let mut s = format!("\"{}\"", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource \"{sub}\""));
        }
        if !self.apply {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// The leaves of an object as JSON pointers: maps are descended, lists and scalars are
/// atomic (enough for the fields paved sets). The object's identity is no one's field.
fn leaves(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, at: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, c) in m {
                    walk(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            other => {
                out.insert(at, other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    for identity in ["/apiVersion", "/kind", "/metadata/name", "/metadata/namespace"] {
        out.remove(identity);
    }
    out
}

/// Removes the field at a JSON pointer, if it is there.
fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return };
    let last = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        m.remove(&last);
    }
}

/// `metadata.managedFields` of owners (FieldsV1: `{"f:spec":{"f:replicas":{}}}`).
fn managed_fields(owners: &[Owner]) -> Value {
    let entries: Vec<Value> = owners
        .iter()
        .map(|o| {
            let mut tree = json!({});
            for f in &o.fields {
                let mut at = &mut tree;
                for seg in f.trim_start_matches('/').split('/') {
                    let seg = format!("f:{}", seg.replace("~1", "/").replace("~0", "~"));
                    at = at.as_object_mut().expect("a map").entry(seg).or_insert_with(|| json!({}));
                }
            }
            let mut e = json!({"manager": o.manager, "operation": if o.apply { "Apply" } else { "Update" },
                "apiVersion": o.api_version, "fieldsType": "FieldsV1", "fieldsV1": tree});
            if let Some(sub) = &o.subresource {
                e["subresource"] = json!(sub);
            }
            e
        })
        .collect();
    Value::Array(entries)
}

struct State {
    objects: BTreeMap<String, Value>,
    resource_version: u64,
    uid: u64,
    requests: Vec<RecordedRequest>,
    recording: bool,
    served: usize,
    faults: Vec<Fault>,
    rollout: RolloutFn,
    queued: HashMap<String, VecDeque<Value>>,
    disconnect_after: Option<usize>,
    not_served: BTreeSet<String>,
    /// What discovery serves: resources by group version (`v1`, `apps/v1`, `example.com/v1`).
    discoverable: BTreeMap<String, Vec<Served>>,
    /// How many discovery requests of its group version an established CRD's kind waits for.
    discovery_lag: usize,
    /// Kinds of established CRDs not served yet, with the requests they still wait for.
    lagging: BTreeMap<String, (Vec<Served>, usize)>,
    /// A StatefulSet's pod of a failed revision that never got ready: `(pod key, revision)` by
    /// StatefulSet key.
    sts_stuck: HashMap<String, (String, String)>,
    /// StatefulSets whose rollout waits for such a pod to go.
    sts_waiting: BTreeSet<String>,
    /// Objects deleted while the next watch of them was down (see
    /// [`MockApiServer::vanish_during_next_watch`]).
    vanishing: BTreeSet<String>,
    /// Field managers per object key.
    managed: HashMap<String, Vec<Owner>>,
    /// Every value `spec.replicas` took, per Deployment key.
    replicas: HashMap<String, Vec<i64>>,
    /// `(verb, plural, code)`: what RBAC refuses (401 or 403), for good.
    denied: Vec<(String, String, u16)>,
}

/// The mock API server. Dropping it stops serving (the client then sees connection errors).
pub struct MockApiServer {
    state: Arc<Mutex<State>>,
    serving: Serving,
    client: kube::Client,
}

/// How the server runs, and so how it is stopped.
enum Serving {
    /// A task on the caller's runtime, behind the in-process client.
    Task(JoinHandle<()>),
    /// A thread and runtime of its own, also listening on a TCP port ([`MockApiServer::listen`]).
    Thread(Option<tokio::sync::oneshot::Sender<()>>),
}

impl std::fmt::Debug for MockApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockApiServer").finish_non_exhaustive()
    }
}

impl Drop for MockApiServer {
    fn drop(&mut self) {
        match &mut self.serving {
            Serving::Task(task) => task.abort(),
            Serving::Thread(stop) => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
        }
    }
}

/// A parsed API path.
#[derive(Debug, Clone)]
struct ApiPath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
}

impl ApiPath {
    fn parse(path: &str) -> Option<ApiPath> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
            ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
            _ => return None,
        };
        let (namespace, plural, name) = match rest {
            ["namespaces", ns, plural, rest @ ..] => (Some(ns.to_string()), plural.to_string(), rest.first()),
            ["namespaces", rest @ ..] => (None, "namespaces".to_string(), rest.first()),
            [plural, rest @ ..] => (None, plural.to_string(), rest.first()),
            [] => return None,
        };
        Some(ApiPath { group, version, plural, namespace, name: name.map(|s| s.to_string()) })
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{}/{}/{}", self.group, self.plural, self.namespace.as_deref().unwrap_or(""), name)
    }

    fn prefix(&self) -> String {
        format!("{}/{}/{}/", self.group, self.plural, self.namespace.as_deref().unwrap_or(""))
    }

    fn kind(&self) -> String {
        KINDS.iter().find(|k| k.plural == self.plural).map(|k| k.kind.to_string()).unwrap_or_else(|| "Object".into())
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> (u16, Value) {
    let mut s = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if !details.is_null() {
        s["details"] = details;
    }
    (code, s)
}

fn not_found(p: &ApiPath, name: &str) -> (u16, Value) {
    let group = if p.group.is_empty() { String::new() } else { format!(".{}", p.group) };
    status(
        404,
        "NotFound",
        &format!("{}{group} \"{name}\" not found", p.plural),
        json!({"name": name, "group": p.group, "kind": p.plural}),
    )
}

enum Reply {
    Json(u16, Value),
    Text(u16, &'static str),
    Watch(Vec<Value>, bool),
    Reset,
}

impl MockApiServer {
    /// Starts serving on the current tokio runtime; returns a client whose default namespace is
    /// `default`, and the server. Every Deployment rolls out successfully until
    /// [`set_rollout`](Self::set_rollout) says otherwise.
    pub fn start() -> (kube::Client, MockApiServer) {
        let (service, mut handle) = tower_test::mock::pair::<Request<kube::client::Body>, Response<MockBody>>();
        let state = Arc::new(Mutex::new(State {
            objects: BTreeMap::new(),
            resource_version: 100,
            uid: 0,
            requests: Vec::new(),
            recording: true,
            served: 0,
            faults: Vec::new(),
            rollout: Box::new(|_| RolloutScript::Succeed),
            queued: HashMap::new(),
            disconnect_after: None,
            not_served: BTreeSet::new(),
            discoverable: built_in_resources(),
            discovery_lag: 0,
            lagging: BTreeMap::new(),
            managed: HashMap::new(),
            vanishing: BTreeSet::new(),
            sts_stuck: HashMap::new(),
            sts_waiting: BTreeSet::new(),
            replicas: HashMap::new(),
            denied: Vec::new(),
        }));
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let reply = serving.lock().expect("not poisoned").handle(&parts, &bytes);
                match reply {
                    Reply::Reset => send.send_error(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "connection reset by peer",
                    )),
                    reply => send.send_response(response(reply)),
                }
            }
        });
        let client = kube::Client::new(service, "default");
        (client.clone(), MockApiServer { state, serving: Serving::Task(task), client })
    }

    /// Starts a server that also listens on `127.0.0.1` (plain HTTP, a port of its own), on a
    /// thread and runtime of its own, for clients in other processes: the `paved` binary with a
    /// kubeconfig whose `server` is the returned URL (`http://127.0.0.1:PORT`). Scripted faults
    /// that reset a connection answer 502 there. Dropping the server stops it.
    pub fn listen() -> (String, MockApiServer) {
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let (client, server) = MockApiServer::start();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
                let url = format!("http://{}", listener.local_addr().expect("an address"));
                let state = server.state.clone();
                ready.send((url, state.clone(), client)).expect("the caller waits");
                let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
                    let state = state.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
                        let reply = state.lock().expect("not poisoned").handle(&parts, &bytes);
                        let reply = match reply {
                            Reply::Reset => Reply::Text(502, "connection reset (scripted)"),
                            other => other,
                        };
                        response(reply).map(axum::body::Body::new)
                    }
                });
                let _ = axum::serve(listener, app).with_graceful_shutdown(async move { drop(stopped.await) }).await;
                drop(server);
            });
        });
        let (url, state, client) = started.recv().expect("the server starts");
        (url, MockApiServer { state, serving: Serving::Thread(Some(stop)), client })
    }

    /// Writes `dir/kubeconfig`, whose one context points at `url` (from
    /// [`listen`](Self::listen)) with a bearer token, for the `paved` binary; returns its path.
    pub fn write_kubeconfig(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: scripted\n  cluster:\n    server: {url}\ncontexts:\n- name: scripted\n  context:\n    cluster: scripted\n    user: ci\ncurrent-context: scripted\nusers:\n- name: ci\n  user:\n    token: t0ken\n"
        );
        std::fs::write(&path, config).expect("the kubeconfig is written");
        path
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("not poisoned"))
    }

    /// Another client of this server (as another machine would have).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.with(|s| s.requests.clone())
    }

    /// How many requests were served (recorded or not).
    pub fn served(&self) -> usize {
        self.with(|s| s.served)
    }

    /// Turns recording requests on or off (on by default; benches turn it off).
    pub fn record_requests(&self, on: bool) {
        self.with(|s| s.recording = on);
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.with(|s| s.requests.clear());
    }

    /// How Deployments roll out, by image.
    pub fn set_rollout(&self, f: impl Fn(&str) -> RolloutScript + Send + 'static) {
        self.with(|s| s.rollout = Box::new(f));
    }

    /// The next `times` requests with this method whose path contains `path_contains` get
    /// HTTP `code` with a realistic Status body (500 `InternalError`, 429 `TooManyRequests`, …).
    pub fn fail_next(&self, method: &str, path_contains: &str, code: u16, times: usize) {
        self.with(|s| {
            s.faults.push(Fault {
                method: method.into(),
                path_contains: path_contains.into(),
                kind: FaultKind::Status(code),
                times,
            })
        });
    }

    /// The next `times` matching requests fail with a connection reset (no HTTP answer).
    pub fn reset_next(&self, method: &str, path_contains: &str, times: usize) {
        self.with(|s| {
            s.faults.push(Fault {
                method: method.into(),
                path_contains: path_contains.into(),
                kind: FaultKind::Reset,
                times,
            })
        });
    }

    /// The next watch delivers at most `events` events, then the connection drops (EOF).
    pub fn disconnect_next_watch_after(&self, events: usize) {
        self.with(|s| s.disconnect_after = Some(events));
    }

    /// RBAC refuses `verb` (`watch`, `list`, `patch`, …, see [`RecordedRequest::verb`]) on
    /// `plural` from now on: 403 `Forbidden` with the API server's message, or 401
    /// `Unauthorized` for `code` 401.
    pub fn deny(&self, verb: &str, plural: &str, code: u16) {
        self.with(|s| s.denied.push((verb.to_string(), plural.to_string(), code)));
    }

    /// RBAC lets `verb` on `plural` through again (undoes [`MockApiServer::deny`]).
    pub fn allow(&self, verb: &str, plural: &str) {
        self.with(|s| s.denied.retain(|(v, p, _)| !(v == verb && p == plural)));
    }

    /// The next watch of the object at `path` expires (an `ERROR` event, 410 `Expired`, as
    /// when the watch cache moved on), and the object is deleted meanwhile: the client relists
    /// and does not find it, and never sees a `DELETED` event.
    pub fn vanish_during_next_watch(&self, path: &str) {
        let p = ApiPath::parse(path).expect("an API path");
        let key = p.key(p.name.as_deref().expect("a path with a name"));
        self.with(|s| s.vanishing.insert(key));
    }

    /// The "cluster" does not serve this resource (a CRD that is not installed): discovery
    /// does not list it and its paths answer 404.
    pub fn not_served(&self, plural: &str) {
        self.with(|s| {
            s.not_served.insert(plural.to_string());
            for resources in s.discoverable.values_mut() {
                resources.retain(|r| r.plural != plural);
            }
            s.discoverable.retain(|_, resources| !resources.is_empty());
        });
    }

    /// An established CRD's kind is served only after `requests` discovery requests of its
    /// group version (as an API server's discovery may lag behind `Established`).
    pub fn crd_discovery_lag(&self, requests: usize) {
        self.with(|s| s.discovery_lag = requests);
    }

    /// Serves a custom resource (as if its CRD were installed and established).
    pub fn serve(&self, group_version: &str, plural: &str, kind: &str, namespaced: bool) {
        self.with(|s| s.serve(group_version, plural, kind, namespaced));
    }

    /// Another field manager owns these fields (JSON pointers such as `/spec/replicas`, with
    /// its values) of the object at `path`: a non-forced apply that sets them to other values
    /// conflicts. It is a write of its own
    /// (`kubectl edit`, an `Update`): it sets them on the live object and takes them over from
    /// their other managers, as an update does.
    pub fn set_foreign_owner(&self, path: &str, manager: &str, fields: Vec<(String, Value)>) {
        let p = ApiPath::parse(path).expect("an API path");
        let key = p.key(p.name.as_deref().expect("a path with a name"));
        let api_version = p.api_version();
        self.with(|s| s.update(&key, manager, None, &api_version, fields));
    }

    /// The autoscaler sets a Deployment's replicas through its `scale` subresource, as
    /// `kube-controller-manager`: it owns `spec.replicas` from then on, and a rollout starts.
    pub fn scale(&self, path: &str, replicas: i64) {
        self.scale_as(path, "kube-controller-manager", replicas);
    }

    /// [`MockApiServer::scale`] by another writer of the `scale` subresource (`kubectl` for
    /// `kubectl scale`).
    pub fn scale_as(&self, path: &str, manager: &str, replicas: i64) {
        let p = ApiPath::parse(path).expect("an API path");
        let key = p.key(p.name.as_deref().expect("a path with a name"));
        let field = vec![("/spec/replicas".to_string(), json!(replicas))];
        self.with(|s| s.update(&key, manager, Some("scale"), "apps/v1", field));
    }

    /// Every value a Deployment's `spec.replicas` took, in order (from its creation).
    pub fn replica_history(&self, path: &str) -> Vec<i64> {
        let p = ApiPath::parse(path).expect("an API path");
        let key = p.key(p.name.as_deref().expect("a path with a name"));
        self.with(|s| s.replicas.get(&key).cloned().unwrap_or_default())
    }

    /// Stores an object as if someone else had created it (`kubectl create`, an `Update` that
    /// owns its fields; server metadata is added).
    pub fn insert(&self, path: &str, mut object: Value) {
        let p = ApiPath::parse(path).expect("an API path");
        let key = p.key(&p.name.clone().expect("a path with a name"));
        self.with(|s| {
            let fields = leaves(&object).into_keys().collect();
            let creator = Owner {
                manager: "kubectl-create".into(),
                apply: false,
                subresource: None,
                api_version: p.api_version(),
                fields,
            };
            s.managed.insert(key.clone(), vec![creator]);
            s.stamp_new(&mut object);
            s.store(&key, object);
        });
    }

    /// The stored object at an API path (`/apis/apps/v1/namespaces/ns/deployments/name`).
    pub fn get(&self, path: &str) -> Option<Value> {
        let p = ApiPath::parse(path)?;
        let key = p.key(p.name.as_deref()?);
        self.with(|s| s.objects.get(&key).cloned())
    }

    /// `Kind/name` of every stored object in a namespace (Secrets included), sorted.
    pub fn objects_in(&self, namespace: &str) -> Vec<String> {
        self.with(|s| {
            s.objects
                .values()
                .filter(|o| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace))
                .map(|o| {
                    format!("{}/{}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?"))
                })
                .collect()
        })
    }

    /// `true` when the namespace object exists.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.with(|s| s.objects.contains_key(&format!("/namespaces//{namespace}")))
    }
}

fn response(reply: Reply) -> Response<MockBody> {
    let full = |code: u16, ct: &str, bytes: Vec<u8>| {
        let body = StreamBody::new(futures::stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from(bytes)))]));
        Response::builder()
            .status(StatusCode::from_u16(code).expect("valid code"))
            .header("content-type", ct)
            .body(BodyExt::boxed_unsync(body))
            .expect("valid response")
    };
    match reply {
        Reply::Json(code, v) => full(code, "application/json", serde_json::to_vec(&v).expect("JSON")),
        Reply::Text(code, t) => full(code, "text/plain; charset=utf-8", t.as_bytes().to_vec()),
        Reply::Watch(events, end) => {
            let lines: Vec<Result<Frame<Bytes>, Infallible>> = events
                .into_iter()
                .map(|e| {
                    let mut line = serde_json::to_vec(&e).expect("JSON");
                    line.push(b'\n');
                    Ok(Frame::data(Bytes::from(line)))
                })
                .collect();
            let stream = futures::stream::iter(lines);
            let body = if end {
                BodyExt::boxed_unsync(StreamBody::new(stream))
            } else {
                BodyExt::boxed_unsync(StreamBody::new(stream.chain(futures::stream::pending())))
            };
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(body)
                .expect("valid response")
        }
        Reply::Reset => unreachable!("resets are sent as errors"),
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Why an apply payload is not minimal, if it is not.
fn not_minimal(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Null => Some(format!("{path} is null (a defaulted empty field)")),
        Value::Object(m) => m.iter().find_map(|(k, v)| not_minimal(v, &format!("{path}.{k}"))),
        Value::Array(a) => a.iter().enumerate().find_map(|(i, v)| not_minimal(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn selector_matches(labels: Option<&Value>, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v)
    })
}

fn field_matches(o: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        let pointer = format!("/{}", k.replace('.', "/"));
        o.pointer(&pointer).and_then(Value::as_str) == Some(v)
    })
}

impl State {
    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn stamp_new(&mut self, o: &mut Value) {
        self.uid += 1;
        let rv = self.next_rv();
        let meta = &mut o["metadata"];
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", self.uid));
        meta["resourceVersion"] = json!(rv);
        meta["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        meta["generation"] = json!(1);
    }

    fn handle(&mut self, parts: &http::request::Parts, body: &[u8]) -> Reply {
        let method = parts.method.as_str().to_string();
        let path = parts.uri.path().to_string();
        let query: BTreeMap<String, String> = parts
            .uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                    .map(|(k, v)| (k.to_string(), percent_decode(v)))
                    .collect()
            })
            .unwrap_or_default();
        let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let json_body: Option<Value> = (!body.is_empty()).then(|| serde_json::from_slice(body).ok()).flatten();
        let recorded = RecordedRequest { method, path, query, content_type, body: json_body };
        let reply = self.respond(&recorded);
        self.served += 1;
        if self.recording {
            self.requests.push(recorded);
        }
        reply
    }

    fn respond(&mut self, recorded: &RecordedRequest) -> Reply {
        if let Some(i) = self
            .faults
            .iter()
            .position(|f| f.times > 0 && f.method == recorded.method && recorded.path.contains(&f.path_contains))
        {
            self.faults[i].times -= 1;
            let kind = self.faults[i].kind.clone();
            if self.faults[i].times == 0 {
                self.faults.remove(i);
            }
            return match kind {
                FaultKind::Reset => Reply::Reset,
                FaultKind::Status(429) => {
                    let (c, s) = status(
                        429,
                        "TooManyRequests",
                        "the server has received too many requests and has asked us to try again later",
                        json!({"retryAfterSeconds": 1}),
                    );
                    Reply::Json(c, s)
                }
                FaultKind::Status(code) => {
                    let (c, s) = status(
                        code,
                        "InternalError",
                        "Internal error occurred: etcdserver: request timed out",
                        Value::Null,
                    );
                    Reply::Json(c, s)
                }
            };
        }
        if recorded.method == "GET"
            && let Some(answer) = self.discovery(&recorded.path)
        {
            return answer;
        }
        let Some(p) = ApiPath::parse(&recorded.path) else { return Reply::Text(404, "404 page not found") };
        let verb = recorded.verb();
        if let Some((_, _, code)) = self.denied.iter().find(|(v, plural, _)| v == verb && *plural == p.plural) {
            let (c, s) = if *code == 401 {
                status(401, "Unauthorized", "Unauthorized", Value::Null)
            } else {
                // The API server's wording (k8s.io/apiserver's authorization filter).
                let group = if p.group.is_empty() { String::new() } else { format!(".{}", p.group) };
                let subject = match &p.name {
                    Some(name) => format!("{}{group} \"{name}\"", p.plural),
                    None => format!("{}{group}", p.plural),
                };
                let scope = match &p.namespace {
                    Some(ns) => format!(" in the namespace \"{ns}\""),
                    None => " at the cluster scope".to_string(),
                };
                let message = format!(
                    "{subject} is forbidden: User \"system:serviceaccount:ci:paved\" cannot {verb} resource \"{}\" in API group \"{}\"{scope}",
                    p.plural, p.group
                );
                let mut details = json!({"group": p.group, "kind": p.plural});
                if let Some(name) = &p.name {
                    details["name"] = json!(name);
                }
                status(403, "Forbidden", &message, details)
            };
            return Reply::Json(c, s);
        }
        if self.not_served.contains(&p.plural) || !self.routes(&p) {
            return Reply::Text(404, "404 page not found");
        }
        let r = recorded;
        let (code, v) = match (r.method.as_str(), p.name.clone()) {
            ("GET", _) if r.is_watch() => return self.watch(&p, r),
            ("GET", Some(name)) => match self.objects.get(&p.key(&name)) {
                Some(o) => (200, o.clone()),
                None => not_found(&p, &name),
            },
            ("GET", None) => self.list(&p, r),
            ("PATCH", Some(name)) if r.content_type.as_deref() == Some(APPLY_CONTENT_TYPE) => self.apply(&p, &name, r),
            ("PATCH", Some(name)) if r.content_type.as_deref() == Some("application/merge-patch+json") => {
                let key = p.key(&name);
                let rv = self.next_rv();
                match self.objects.get_mut(&key) {
                    Some(o) => {
                        merge(o, r.body.as_ref().unwrap_or(&Value::Null));
                        o["metadata"]["resourceVersion"] = json!(rv);
                        (200, o.clone())
                    }
                    None => not_found(&p, &name),
                }
            }
            ("PATCH", _) => {
                status(415, "UnsupportedMediaType", "the body of the request was in an unknown format", Value::Null)
            }
            ("POST", None) => self.create(&p, r),
            ("DELETE", Some(name)) => self.delete(&p, &name, r),
            _ => status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                Value::Null,
            ),
        };
        Reply::Json(code, v)
    }

    fn list(&self, p: &ApiPath, r: &RecordedRequest) -> (u16, Value) {
        let labels = r.query.get("labelSelector").cloned().unwrap_or_default();
        let fields = r.query.get("fieldSelector").cloned().unwrap_or_default();
        let prefix = match &p.namespace {
            Some(_) => p.prefix(),
            None => format!("{}/{}/", p.group, p.plural),
        };
        // Pages as the API server cuts them: at most `limit` items, and an opaque `continue`
        // token (here the last key, hex-encoded) when more remain.
        let limit = r.query.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
        let after = r.query.get("continue").filter(|c| !c.is_empty()).map(|c| unhex(c));
        let start = match &after {
            Some(Some(key)) if key.starts_with(&prefix) => key.clone(),
            Some(_) => return status(400, "BadRequest", "continue key is not valid", Value::Null),
            None => prefix.clone(),
        };
        let mut matching = self
            .objects
            .range(start..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| after.as_ref().is_none_or(|a| a.as_deref() != Some(k.as_str())))
            .filter(|(_, o)| selector_matches(o.pointer("/metadata/labels"), &labels) && field_matches(o, &fields));
        let mut items = Vec::new();
        let mut last = None;
        for (key, object) in matching.by_ref().take(limit.unwrap_or(usize::MAX)) {
            items.push(object.clone());
            last = Some(key.clone());
        }
        let mut metadata = json!({ "resourceVersion": self.resource_version.to_string() });
        if matching.next().is_some() {
            let token: String = last.unwrap_or_default().bytes().map(|b| format!("{b:02x}")).collect();
            metadata["continue"] = json!(token);
        }
        let list = json!({
            "kind": format!("{}List", p.kind()),
            "apiVersion": p.api_version(),
            "metadata": metadata,
            "items": items,
        });
        (200, list)
    }

    fn namespace_missing(&self, p: &ApiPath) -> Option<(u16, Value)> {
        let ns = p.namespace.as_deref()?;
        (!self.objects.contains_key(&format!("/namespaces//{ns}"))).then(|| {
            status(
                404,
                "NotFound",
                &format!("namespaces \"{ns}\" not found"),
                json!({"name": ns, "kind": "namespaces"}),
            )
        })
    }

    fn apply(&mut self, p: &ApiPath, name: &str, r: &RecordedRequest) -> (u16, Value) {
        if r.query.get("fieldManager").is_none_or(String::is_empty) {
            return status(400, "BadRequest", "PATCH requests require fieldManager for apply", Value::Null);
        }
        let Some(body) = r.body.clone() else {
            return status(400, "BadRequest", "the apply body is not JSON/YAML", Value::Null);
        };
        if body.get("status").is_some() {
            return status(400, "BadRequest", "invalid apply payload: status is set by the cluster", Value::Null);
        }
        if let Some(k) = ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"]
            .iter()
            .find(|k| body["metadata"].get(**k).is_some())
        {
            return status(
                400,
                "BadRequest",
                &format!("invalid apply payload: metadata.{k} is set by the cluster"),
                Value::Null,
            );
        }
        if let Some(why) = not_minimal(&body, "") {
            return status(400, "BadRequest", &format!("invalid apply payload: {why}"), Value::Null);
        }
        if body["metadata"]["name"].as_str() != Some(name) {
            return status(400, "BadRequest", "the name of the object does not match the name on the URL", Value::Null);
        }
        if let Some(e) = self.namespace_missing(p) {
            return e;
        }
        let key = p.key(name);
        let force = r.query.get("force").is_some_and(|v| v == "true");
        let manager = r.query.get("fieldManager").cloned().unwrap_or_default();
        let applied = leaves(&body);
        let live = self.objects.get(&key).unwrap_or(&Value::Null);
        let mut owners = self.managed.get(&key).cloned().unwrap_or_default();
        let mine = |o: &Owner| o.apply && o.manager == manager && o.subresource.is_none();
        // A field another manager owns, applied with another value than the live one.
        let mut conflicts: Vec<(String, String)> = Vec::new();
        for o in owners.iter().filter(|o| !mine(o)) {
            for f in o.fields.iter().filter(|f| applied.get(*f).is_some_and(|v| live.pointer(f) != Some(v))) {
                conflicts.push((o.describe(), f.clone()));
            }
        }
        if !conflicts.is_empty() && !force {
            let field = |f: &str| f.replace('/', ".").replace("~1", "/").replace("~0", "~");
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|(who, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {who}"), "field": field(f)}))
                .collect();
            let mut by_owner: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (who, f) in &conflicts {
                by_owner.entry(who).or_default().push(field(f));
            }
            let parts: Vec<String> =
                by_owner.iter().map(|(who, fields)| format!("conflict with {who}: {}", fields.join(", "))).collect();
            let message = format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                parts.join("; ")
            );
            return status(
                409,
                "Conflict",
                &message,
                json!({"name": name, "group": p.group, "kind": p.plural, "causes": causes}),
            );
        }
        if force {
            for o in owners.iter_mut().filter(|o| !mine(o)) {
                o.fields.retain(|f| !applied.contains_key(f));
            }
        }
        // Fields this manager applied before and no longer does, that no one else owns, are
        // removed (and defaulted again): a real server does not keep them.
        let before: BTreeSet<String> = owners.iter().filter(|o| mine(o)).flat_map(|o| o.fields.clone()).collect();
        let removed: Vec<String> = before
            .into_iter()
            .filter(|f| !applied.contains_key(f) && !owners.iter().any(|o| !mine(o) && o.fields.contains(f)))
            .collect();
        match owners.iter_mut().find(|o| mine(o)) {
            Some(o) => o.fields = applied.keys().cloned().collect(),
            None => owners.push(Owner {
                manager: manager.clone(),
                apply: true,
                subresource: None,
                api_version: p.api_version(),
                fields: applied.keys().cloned().collect(),
            }),
        }
        owners.retain(|o| !o.fields.is_empty());
        if p.plural == "jobs"
            && let Some(o) = self.objects.get(&key)
            && body.pointer("/spec/template").is_some_and(|t| Some(t) != o.pointer("/spec/template"))
        {
            return status(
                422,
                "Invalid",
                &format!("Job.batch \"{name}\" is invalid: spec.template: Invalid value: field is immutable"),
                json!({"name": name, "group": "batch", "kind": "Job",
                    "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: field is immutable", "field": "spec.template"}]}),
            );
        }
        let rv = self.next_rv();
        // Taken out (not cloned): the stored object is merged in place, and stored again.
        let old = self.objects.remove(&key);
        let existed = old.is_some();
        let before = old.as_ref().map(|o| (o.get("spec").cloned(), o["metadata"]["generation"].as_i64().unwrap_or(1)));
        let mut object = match old {
            Some(mut merged) => {
                merge(&mut merged, &body);
                for f in &removed {
                    remove_pointer(&mut merged, f);
                }
                merged
            }
            None => {
                self.uid += 1;
                let mut created = body;
                created["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", self.uid));
                created["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
                if p.plural == "deployments" {
                    created["status"] = json!({});
                }
                created
            }
        };
        if p.plural == "secrets" {
            // `stringData` is write-only: merged into `data`, never stored. A key left out
            // of a later `stringData` stays in `data` (kubernetes#108008).
            if let Some(Value::Object(plain)) = object.as_object_mut().and_then(|o| o.remove("stringData")) {
                for (k, v) in plain {
                    let bytes = k8s_openapi::ByteString(v.as_str().unwrap_or_default().as_bytes().to_vec());
                    object["data"][k] = serde_json::to_value(bytes).expect("base64");
                }
            }
        }
        // The API server's defaults for what paved leaves out.
        if p.plural == "deployments" && object.pointer("/spec/replicas").is_none() {
            object["spec"]["replicas"] = json!(1);
        }
        if p.plural == "statefulsets" {
            if object.pointer("/spec/replicas").is_none() {
                object["spec"]["replicas"] = json!(1);
            }
            if object.pointer("/spec/updateStrategy").is_none() {
                object["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
            }
            if object.pointer("/spec/updateStrategy/type") == Some(&json!("RollingUpdate"))
                && object.pointer("/spec/updateStrategy/rollingUpdate/partition").is_none()
            {
                object["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0);
            }
            if object.pointer("/spec/podManagementPolicy").is_none() {
                object["spec"]["podManagementPolicy"] = json!("OrderedReady");
            }
        }
        let (changed, generation) = match before {
            Some((spec, generation)) => {
                let changed = spec.as_ref() != object.get("spec");
                (changed, generation + i64::from(changed))
            }
            None => (true, 1),
        };
        object["metadata"]["resourceVersion"] = json!(rv);
        object["metadata"]["generation"] = json!(generation);
        if let Some(ns) = &p.namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        if changed {
            self.schedule(&key, &object, generation);
            // A StatefulSet's controller takes a new template at once (its first status).
            if p.plural == "statefulsets"
                && let Some(first) = self.queued.get_mut(&key).and_then(VecDeque::pop_front)
            {
                object["status"] = first;
            }
        }
        self.managed.insert(key.clone(), owners);
        let object = self.store(&key, object);
        (if existed { 200 } else { 201 }, object)
    }

    /// Stores an object with its managed fields, noting every new `spec.replicas`.
    fn store(&mut self, key: &str, mut object: Value) -> Value {
        let owners = self.managed.get(key).map(Vec::as_slice).unwrap_or_default();
        if owners.is_empty() {
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        } else {
            object["metadata"]["managedFields"] = managed_fields(owners);
        }
        if let Some(n) = object.pointer("/spec/replicas").and_then(Value::as_i64)
            && key.starts_with("apps/deployments/")
        {
            let history = self.replicas.entry(key.to_string()).or_default();
            if history.last() != Some(&n) {
                history.push(n);
            }
        }
        self.objects.insert(key.to_string(), object.clone());
        object
    }

    /// A write that is not an apply (`kubectl edit`, the autoscaler through `scale`): sets the
    /// fields, and takes over the ones whose value it changes from their other managers.
    fn update(
        &mut self,
        key: &str,
        manager: &str,
        subresource: Option<&str>,
        api_version: &str,
        fields: Vec<(String, Value)>,
    ) {
        let mut object = self.objects.get(key).cloned().unwrap_or_else(|| panic!("no object at {key}"));
        let owners = self.managed.entry(key.to_string()).or_default();
        for (f, v) in &fields {
            if object.pointer(f) != Some(v) {
                for o in owners.iter_mut() {
                    o.fields.remove(f);
                }
            }
            let (parent, last) = f.rsplit_once('/').expect("a JSON pointer");
            let mut at = &mut object;
            for seg in parent.split('/').filter(|s| !s.is_empty()) {
                at = &mut at[seg];
            }
            at[last] = v.clone();
        }
        let names = fields.iter().map(|(f, _)| f.clone());
        match owners.iter_mut().find(|o| o.manager == manager && !o.apply && o.subresource.as_deref() == subresource) {
            Some(o) => o.fields.extend(names),
            None => owners.push(Owner {
                manager: manager.into(),
                apply: false,
                subresource: subresource.map(str::to_string),
                api_version: api_version.into(),
                fields: names.collect(),
            }),
        }
        owners.retain(|o| !o.fields.is_empty());
        let old_spec = self.objects.get(key).and_then(|o| o.get("spec").cloned());
        if old_spec.as_ref() != object.get("spec") {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            object["metadata"]["generation"] = json!(generation);
            self.schedule(key, &object, generation);
        }
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv);
        self.store(key, object);
    }

    /// Queues the statuses of a rollout of generation `generation`.
    /// Queues the statuses an object's controller would write after a change, by kind (what
    /// the watch then delivers), following the rollout script of its first container's image.
    fn schedule(&mut self, key: &str, o: &Value, generation: i64) {
        let plural = key.split('/').nth(1).unwrap_or_default();
        let image = o.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str).unwrap_or_default();
        let script = (self.rollout)(image);
        let stuck = !matches!(script, RolloutScript::Succeed);
        let queue: VecDeque<Value> = match plural {
            "deployments" => return self.schedule_deployment(key, o, generation),
            "statefulsets" => return self.schedule_statefulset(key, o, generation, &script),
            "daemonsets" => {
                // Two nodes.
                let st = |updated: i64, available: i64| {
                    json!({"observedGeneration": generation, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                        "updatedNumberScheduled": updated, "numberAvailable": available, "numberReady": available,
                        "numberMisscheduled": 0})
                };
                if stuck { VecDeque::from([st(1, 0)]) } else { VecDeque::from([st(1, 1), st(2, 2)]) }
            }
            "jobs" => match script {
                RolloutScript::Succeed => VecDeque::from([
                    json!({"active": 1}),
                    json!({"succeeded": 1,
                    "conditions": [{"type": "Complete", "status": "True"}]}),
                ]),
                RolloutScript::DeadlineExceeded { .. } => VecDeque::from([json!({"failed": 6, "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})]),
                RolloutScript::Stall => VecDeque::new(),
            },
            "customresourcedefinitions" => VecDeque::from([json!({"conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]})]),
            "persistentvolumeclaims" if !stuck => VecDeque::from([json!({"phase": "Bound"})]),
            "persistentvolumeclaims" => VecDeque::from([json!({"phase": "Pending"})]),
            "services" if o.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") && !stuck => {
                VecDeque::from([json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}})])
            }
            _ => return,
        };
        self.queued.insert(key.to_string(), queue);
        if let RolloutScript::DeadlineExceeded { reason, message } = script {
            self.plant_failing_pod(o, image, &reason, &message);
        }
    }

    /// A StatefulSet's statuses, as its controller writes them. Pods come up one at a time
    /// (`OrderedReady`); one of a new revision that never gets ready stops the rollout. It
    /// also holds back a rollout of the template that replaces it: the controller waits for it
    /// to be ready, so a rollback must delete it (Kubernetes' "forced rollback").
    fn schedule_statefulset(&mut self, key: &str, o: &Value, generation: i64, script: &RolloutScript) {
        let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let n = o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let update = format!("{name}-{generation}");
        // The status it had (kept on the object through the change).
        let current =
            o.pointer("/status/currentRevision").and_then(Value::as_str).map_or_else(|| update.clone(), str::to_string);
        let st = |ready: i64, updated: i64, current: &str| {
            json!({"observedGeneration": generation, "replicas": n, "readyReplicas": ready, "currentReplicas": ready,
                "updatedReplicas": updated, "currentRevision": current, "updateRevision": update})
        };
        let blocked = self.sts_stuck.get(key).is_some_and(|(pod, _)| self.objects.contains_key(pod));
        let queue = if blocked {
            self.sts_waiting.insert(key.to_string());
            VecDeque::from([st(0, 0, &current)])
        } else if !matches!(script, RolloutScript::Succeed) {
            let pod = format!("{name}-0");
            let (reason, message) = match script {
                RolloutScript::DeadlineExceeded { reason, message } => (reason.clone(), message.clone()),
                _ => ("ContainerCreating".to_string(), String::new()),
            };
            let image = o.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str).unwrap_or_default();
            let container = o.pointer("/spec/template/spec/containers/0/name").and_then(Value::as_str).unwrap_or("app");
            let mut labels = o.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({}));
            labels["controller-revision-hash"] = json!(update);
            self.plant_pod(&ns, &pod, labels, (container, image), &reason, &message);
            self.sts_stuck.insert(key.to_string(), (format!("/pods/{ns}/{pod}"), update.clone()));
            VecDeque::from([st(0, 1, &current)])
        } else {
            (1..=n).map(|i| st(i, i, if i == n { &update } else { &current })).collect()
        };
        self.queued.insert(key.to_string(), queue);
    }

    /// A Deployment's statuses, as its controller writes them.
    fn schedule_deployment(&mut self, key: &str, d: &Value, generation: i64) {
        let image = d.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str).unwrap_or_default();
        let n = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let script = (self.rollout)(image);
        let st = |replicas: i64, updated: i64, available: i64, conditions: Value| {
            json!({
                "observedGeneration": generation, "replicas": replicas, "updatedReplicas": updated,
                "readyReplicas": available, "availableReplicas": available,
                "unavailableReplicas": (replicas - available).max(0), "conditions": conditions,
            })
        };
        let progressing = json!([{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "ReplicaSet is progressing."}]);
        let queue: VecDeque<Value> = match &script {
            RolloutScript::Succeed => {
                let mut q: VecDeque<Value> =
                    (1..=n).map(|i| st(n + i64::from(i < n), i, i - 1, progressing.clone())).collect();
                q.push_back(st(n, n, n, json!([
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed."}
                ])));
                q
            }
            RolloutScript::DeadlineExceeded { .. } => VecDeque::from([
                st(n + 1, 1, n.saturating_sub(1).max(0), progressing.clone()),
                st(
                    n + 1,
                    1,
                    n.saturating_sub(1).max(0),
                    json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": format!("ReplicaSet \"{}-7d4b9c\" has timed out progressing.", d["metadata"]["name"].as_str().unwrap_or(""))}]),
                ),
            ]),
            RolloutScript::Stall => VecDeque::new(),
        };
        self.queued.insert(key.to_string(), queue);
        if let RolloutScript::DeadlineExceeded { reason, message } = script {
            self.plant_failing_pod(d, image, &reason, &message);
        }
    }

    /// A pod of a workload, not ready for `reason`, and its Warning event.
    fn plant_failing_pod(&mut self, d: &Value, image: &str, reason: &str, message: &str) {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let name = format!("{}-7d4b9c-x2k8p", d["metadata"]["name"].as_str().unwrap_or(""));
        let labels = d.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({}));
        let container = d.pointer("/spec/template/spec/containers/0/name").and_then(Value::as_str).unwrap_or("app");
        self.plant_pod(&ns, &name, labels, (container, image), reason, message);
    }

    /// A pod that is not ready for `reason`, and its Warning event.
    fn plant_pod(
        &mut self,
        ns: &str,
        name: &str,
        labels: Value,
        (container, image): (&str, &str),
        reason: &str,
        message: &str,
    ) {
        {
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "status": {
                    "phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                    "containerStatuses": [{"name": container, "ready": false, "restartCount": 0, "image": image, "imageID": "",
                        "state": {"waiting": {"reason": reason, "message": message}}}],
                },
            });
            self.stamp_new(&mut pod);
            self.objects.insert(format!("/pods/{ns}/{name}"), pod);
            let mut event = json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{name}.1"), "namespace": ns},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": ns},
                "reason": "Unhealthy", "type": "Warning",
                "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            });
            self.stamp_new(&mut event);
            self.objects.insert(format!("/events/{ns}/{name}.1"), event);
        }
    }

    fn watch(&mut self, p: &ApiPath, r: &RecordedRequest) -> Reply {
        let fields = r.query.get("fieldSelector").cloned().unwrap_or_default();
        let name = fields.strip_prefix("metadata.name=").map(str::to_string);
        let mut events = Vec::new();
        let limit = self.disconnect_after.take();
        if let Some(name) = name {
            let key = p.key(&name);
            if self.vanishing.remove(&key) {
                self.objects.remove(&key);
                self.queued.remove(&key);
                let (_, expired) = status(410, "Expired", "too old resource version: 1 (2)", Value::Null);
                return Reply::Watch(vec![json!({"type": "ERROR", "object": expired})], true);
            }
            loop {
                if limit.is_some_and(|l| events.len() >= l) {
                    break;
                }
                let Some(next) = self.queued.get_mut(&key).and_then(VecDeque::pop_front) else { break };
                let rv = self.next_rv();
                let Some(o) = self.objects.get_mut(&key) else { break };
                o["status"] = next;
                o["metadata"]["resourceVersion"] = json!(rv);
                events.push(json!({"type": "MODIFIED", "object": o.clone()}));
                if p.plural == "customresourcedefinitions" {
                    // Established: its kind is served from now on, not before.
                    let crd = o.clone();
                    let spec = &crd["spec"];
                    let group = spec["group"].as_str().unwrap_or_default();
                    let namespaced = spec["scope"].as_str() != Some("Cluster");
                    for v in spec["versions"].as_array().into_iter().flatten().filter(|v| v["served"] != json!(false)) {
                        let gv = group_version_of(group, v["name"].as_str().unwrap_or("v1"));
                        let (plural, kind) = (spec["names"]["plural"].as_str(), spec["names"]["kind"].as_str());
                        let (plural, kind) = (plural.unwrap_or_default(), kind.unwrap_or_default());
                        if self.discovery_lag > 0 {
                            let served = Served { plural: plural.into(), kind: kind.into(), namespaced };
                            self.lagging.entry(gv).or_insert_with(|| (Vec::new(), self.discovery_lag)).0.push(served);
                        } else {
                            self.serve(&gv, plural, kind, namespaced);
                        }
                    }
                }
            }
        }
        Reply::Watch(events, limit.is_some())
    }

    fn serve(&mut self, group_version: &str, plural: &str, kind: &str, namespaced: bool) {
        self.not_served.remove(plural);
        let resources = self.discoverable.entry(group_version.to_string()).or_default();
        resources.retain(|r| r.plural != plural);
        resources.push(Served { plural: plural.into(), kind: kind.into(), namespaced });
    }

    /// Whether a path names a served resource in its scope: a resource discovery does not list
    /// (a custom resource without its CRD), or a namespaced one addressed without its namespace
    /// (or the other way round), is a 404 as on a real server. Lists across namespaces are
    /// fine.
    fn routes(&self, p: &ApiPath) -> bool {
        let gv = group_version_of(&p.group, &p.version);
        let Some(r) = self.discoverable.get(&gv).and_then(|rs| rs.iter().find(|r| r.plural == p.plural)) else {
            return false;
        };
        match (&p.namespace, &p.name) {
            (Some(_), _) => r.namespaced,
            (None, Some(_)) => !r.namespaced,
            (None, None) => true,
        }
    }

    /// The discovery documents: `/api`, `/api/v1`, `/apis`, `/apis/{group}/{version}`.
    fn discovery(&mut self, path: &str) -> Option<Reply> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let ["apis", g, v] = segs.as_slice() {
            let gv = format!("{g}/{v}");
            if let Some((_, left)) = self.lagging.get_mut(&gv) {
                *left -= 1;
                if *left == 0 {
                    let (served, _) = self.lagging.remove(&gv).expect("present");
                    for r in served {
                        self.serve(&gv, &r.plural, &r.kind, r.namespaced);
                    }
                }
            }
        }
        let list = |gv: &str| match self.discoverable.get(gv) {
            Some(resources) => Reply::Json(
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                    "resources": resources.iter().map(|r| json!({"name": r.plural, "singularName": "",
                        "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}))
                        .collect::<Vec<_>>()}),
            ),
            None => Reply::Text(404, "404 page not found"),
        };
        Some(match segs.as_slice() {
            ["api"] => Reply::Json(
                200,
                json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
            ),
            ["api", v] => list(v),
            ["apis"] => {
                let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for gv in self.discoverable.keys().filter_map(|gv| gv.split_once('/')) {
                    groups.entry(gv.0).or_default().push(gv.1);
                }
                let groups: Vec<Value> = groups
                    .into_iter()
                    .map(|(g, versions)| {
                        let vs: Vec<Value> = versions
                            .iter()
                            .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                            .collect();
                        json!({"name": g, "versions": vs, "preferredVersion": vs[0]})
                    })
                    .collect();
                Reply::Json(200, json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
            }
            ["apis", g, v] => list(&format!("{g}/{v}")),
            _ => return None,
        })
    }

    fn create(&mut self, p: &ApiPath, r: &RecordedRequest) -> (u16, Value) {
        let Some(mut body) = r.body.clone() else {
            return status(400, "BadRequest", "the body is not JSON", Value::Null);
        };
        let Some(name) = body.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string) else {
            return status(422, "Invalid", "metadata.name: Required value", Value::Null);
        };
        if let Some(e) = self.namespace_missing(p) {
            return e;
        }
        let key = p.key(&name);
        if self.objects.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                &format!("{} \"{name}\" already exists", p.plural),
                json!({"name": name, "kind": p.plural}),
            );
        }
        if body.get("kind").is_none() {
            body["kind"] = json!(p.kind());
            body["apiVersion"] = json!(p.api_version());
        }
        self.stamp_new(&mut body);
        if let Some(ns) = &p.namespace {
            body["metadata"]["namespace"] = json!(ns);
        }
        self.objects.insert(key, body.clone());
        (201, body)
    }

    fn delete(&mut self, p: &ApiPath, name: &str, r: &RecordedRequest) -> (u16, Value) {
        let key = p.key(name);
        let Some(o) = self.objects.get(&key) else { return not_found(p, name) };
        if let Some(uid) = r.body.as_ref().and_then(|b| b.pointer("/preconditions/uid")).and_then(Value::as_str)
            && o.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}",
                    p.plural
                ),
                Value::Null,
            );
        }
        let o = self.objects.remove(&key).expect("present");
        self.queued.remove(&key);
        // The pod that held a StatefulSet's rollout back is gone: the rollout goes on.
        if let Some(sts) = self.sts_stuck.iter().find(|(_, (pod, _))| *pod == key).map(|(sts, _)| sts.clone()) {
            self.sts_stuck.remove(&sts);
            if self.sts_waiting.remove(&sts)
                && let Some(object) = self.objects.get(&sts).cloned()
            {
                let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
                self.schedule(&sts, &object, generation);
            }
        }
        if p.plural == "namespaces" {
            self.objects.retain(|k, _| k.split('/').nth(2) != Some(name));
        }
        (200, o)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key of a `continue` token (`None`: not one this server made).
fn unhex(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = ApiPath::parse("/apis/apps/v1/namespaces/a-dev/deployments/a").unwrap();
        assert_eq!(
            (p.group.as_str(), p.plural.as_str(), p.namespace.as_deref(), p.name.as_deref()),
            ("apps", "deployments", Some("a-dev"), Some("a"))
        );
        let p = ApiPath::parse("/api/v1/namespaces/a-dev").unwrap();
        assert_eq!((p.plural.as_str(), p.namespace, p.name.as_deref()), ("namespaces", None, Some("a-dev")));
        let p = ApiPath::parse("/api/v1/secrets").unwrap();
        assert_eq!((p.plural.as_str(), p.namespace, p.name), ("secrets", None, None));
        assert_eq!(percent_decode("a%3Db%2Cc"), "a=b,c");
    }
}
