//! A workload described in a file (a Score `score.yaml`): what it adds to the golden path's
//! one app container. The renderer reads it; [`crate::DeployRequest::workload`] carries it.
//!
//! Everything here is already validated and resolved: images are [`ImageRef`]s, secrets are
//! names of the request's [`crate::secret::SecretBinding`]s (never values), provisioned objects
//! are [`ManifestFile`]s checked like extra manifests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::ImageRef;
use crate::request::ManifestFile;

/// What a workload file adds to a deploy request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Workload {
    /// Where the request came from, as the release records it (e.g. `score:deploy/score.yaml`).
    pub source: String,
    /// Settings of the app container (its image is the request's).
    pub main: ContainerSettings,
    /// More containers of the pod, in order.
    pub sidecars: Vec<Sidecar>,
    /// The Service's ports; the golden path's `http` port when empty.
    pub ports: Vec<ServicePort>,
    /// Annotations of the Deployment and its pods.
    pub annotations: BTreeMap<String, String>,
    /// Labels of the Deployment and its pods (never the selector's).
    pub labels: BTreeMap<String, String>,
    /// PersistentVolumeClaims the workload mounts.
    pub claims: Vec<VolumeClaim>,
    /// The Ingress paths (the golden path's `/` when empty).
    pub routes: Vec<RoutePath>,
    /// Other workloads this one calls: the NetworkPolicy allows egress to exactly these.
    pub dependencies: Vec<Dependency>,
    /// Objects added by resource provisioners.
    pub objects: Vec<ManifestFile>,
}

/// A container's settings beyond image and resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContainerSettings {
    /// The container's name in the workload file.
    pub name: String,
    /// Overrides the image's entrypoint.
    pub command: Option<Vec<String>>,
    /// Overrides the image's arguments.
    pub args: Option<Vec<String>>,
    /// Environment variables, in order.
    pub env: Vec<EnvVar>,
    /// Files mounted from a ConfigMap of the app.
    pub files: Vec<FileMount>,
    /// Volumes mounted from the workload's claims.
    pub mounts: Vec<VolumeMount>,
    /// The liveness probe (the golden path's when `None`).
    pub liveness: Option<ProbeSpec>,
    /// The readiness probe (the golden path's when `None`).
    pub readiness: Option<ProbeSpec>,
}

/// One more container of the pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sidecar {
    /// Its settings.
    pub settings: ContainerSettings,
    /// Its image.
    pub image: ImageRef,
    /// CPU request, limit, memory request, limit (the environment's defaults where `None`).
    pub resources: [Option<String>; 4],
}

/// An environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnvVar {
    /// The name.
    pub name: String,
    /// The value.
    pub value: EnvValue,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnvValue {
    /// Plain text (a literal `$(` is escaped for Kubernetes when rendered).
    Text(String),
    /// Text with `$(NAME)` references to the request's secret bindings, which Kubernetes
    /// expands in the container: the value never leaves the secret store's path.
    Composed(String),
    /// Exactly the value of the request's secret binding of this name.
    Secret(String),
}

/// A file mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileMount {
    /// The path in the container.
    pub target: String,
    /// The file mode (`0o600`), or the ConfigMap volume's default.
    pub mode: Option<u32>,
    /// The content.
    pub data: FileData,
}

/// A file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileData {
    /// UTF-8 text.
    Text(String),
    /// Standard base64 of binary content.
    Base64(String),
}

/// A claim mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VolumeMount {
    /// The claim's name (one of [`Workload::claims`]).
    pub claim: String,
    /// The path in the container.
    pub target: String,
    /// A sub path in the volume.
    pub sub_path: Option<String>,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeSpec {
    /// An HTTP GET probe.
    pub http: Option<HttpGet>,
    /// A command probe (preferred when both are given, as Score says).
    pub exec: Option<Vec<String>>,
}

/// An HTTP GET probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HttpGet {
    /// The container port.
    pub port: u16,
    /// The path.
    pub path: String,
    /// `HTTP` or `HTTPS`.
    pub scheme: Option<String>,
    /// The Host header.
    pub host: Option<String>,
    /// More headers.
    pub headers: Vec<(String, String)>,
}

/// A port of the app's Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServicePort {
    /// The port's name.
    pub name: String,
    /// The Service port.
    pub port: u16,
    /// The container port.
    pub target_port: u16,
    /// `TCP` or `UDP`.
    pub protocol: String,
}

/// A PersistentVolumeClaim of the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VolumeClaim {
    /// The claim's name.
    pub name: String,
    /// The requested size (a memory quantity, e.g. `1Gi`).
    pub size: String,
    /// The storage class (the cluster's default when `None`).
    pub storage_class: Option<String>,
    /// The access mode, e.g. `ReadWriteOnce`.
    pub access_mode: String,
}

/// A path of the app's Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoutePath {
    /// The path prefix.
    pub path: String,
    /// The Service port it goes to.
    pub port: u16,
}

/// Another workload this one calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dependency {
    /// Its app name (`app.kubernetes.io/name`).
    pub app: String,
    /// Its namespace.
    pub namespace: String,
    /// The container port egress is allowed to (every port when `None`).
    pub port: Option<u16>,
}

/// Builders for the types above (they are `#[non_exhaustive]`, so other crates build them here).
impl Workload {
    /// An empty workload from `source`.
    pub fn new(source: impl Into<String>) -> Self {
        Workload { source: source.into(), ..Default::default() }
    }
}

impl ContainerSettings {
    /// Settings of the container `name`, everything else unset.
    pub fn named(name: impl Into<String>) -> Self {
        ContainerSettings { name: name.into(), ..Default::default() }
    }
}

impl Sidecar {
    /// A sidecar with its image and resources.
    pub fn new(settings: ContainerSettings, image: ImageRef, resources: [Option<String>; 4]) -> Self {
        Sidecar { settings, image, resources }
    }
}

impl EnvVar {
    /// A variable.
    pub fn new(name: impl Into<String>, value: EnvValue) -> Self {
        EnvVar { name: name.into(), value }
    }
}

impl FileMount {
    /// A file.
    pub fn new(target: impl Into<String>, mode: Option<u32>, data: FileData) -> Self {
        FileMount { target: target.into(), mode, data }
    }
}

impl VolumeMount {
    /// A mount of `claim` at `target`.
    pub fn new(claim: impl Into<String>, target: impl Into<String>, sub_path: Option<String>, read_only: bool) -> Self {
        VolumeMount { claim: claim.into(), target: target.into(), sub_path, read_only }
    }
}

impl ProbeSpec {
    /// A probe.
    pub fn new(http: Option<HttpGet>, exec: Option<Vec<String>>) -> Self {
        ProbeSpec { http, exec }
    }
}

impl HttpGet {
    /// An HTTP GET probe.
    pub fn new(
        port: u16,
        path: impl Into<String>,
        scheme: Option<String>,
        host: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Self {
        HttpGet { port, path: path.into(), scheme, host, headers }
    }
}

impl ServicePort {
    /// A Service port.
    pub fn new(name: impl Into<String>, port: u16, target_port: u16, protocol: impl Into<String>) -> Self {
        ServicePort { name: name.into(), port, target_port, protocol: protocol.into() }
    }
}

impl VolumeClaim {
    /// A claim.
    pub fn new(
        name: impl Into<String>,
        size: impl Into<String>,
        storage_class: Option<String>,
        access_mode: impl Into<String>,
    ) -> Self {
        VolumeClaim { name: name.into(), size: size.into(), storage_class, access_mode: access_mode.into() }
    }
}

impl RoutePath {
    /// A path to a Service port.
    pub fn new(path: impl Into<String>, port: u16) -> Self {
        RoutePath { path: path.into(), port }
    }
}

impl Dependency {
    /// A dependency.
    pub fn new(app: impl Into<String>, namespace: impl Into<String>, port: Option<u16>) -> Self {
        Dependency { app: app.into(), namespace: namespace.into(), port }
    }
}
