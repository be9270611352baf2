//! Write paved policy plugins in Rust.
//!
//! A policy is a type implementing [`Policy`], exported with [`export_policy!`]. The SDK
//! holds the WIT bindings of `paved:policy@0.2.0` ([`bindings`]), parses the request
//! ([`Input`]) and walks the pod-bearing Kubernetes objects ([`pods`]): Pod, Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job (via `spec.template`) and CronJob (via
//! `spec.jobTemplate.spec.template`), with every container list (containers, initContainers,
//! ephemeralContainers).
//!
//! ```ignore
//! use paved_policy_sdk::{Action, Decision, Input, Policy, Violation, export_policy, pods};
//!
//! struct RequireProbes;
//! impl Policy for RequireProbes {
//!     const NAME: &'static str = "require-probes";
//!     const DESCRIPTION: &'static str = "every container has a probe";
//!     fn evaluate(input: &Input) -> Result<Decision, String> {
//!         let mut d = Decision::allow();
//!         for pod in pods(&input.objects()?) {
//!             for c in pod.containers() { /* ... */ }
//!         }
//!         Ok(d)
//!     }
//! }
//! export_policy!(RequireProbes);
//! ```
//!
//! The feature `testing` (for `[dev-dependencies]`) adds the module `testing`: a request
//! builder and checks of a plugin's manifest, YAML fixtures and the golden path's output, for
//! native unit tests.

use std::collections::BTreeMap;

#[cfg(feature = "testing")]
pub mod testing;

/// serde, for typed views of objects ([`Input::objects_as`]): derive with
/// `#[serde(crate = "paved_policy_sdk::serde")]`.
pub use serde;
use serde::de::DeserializeOwned;
pub use serde_json::{self, Value, json};

/// The generated bindings of the `plugin` world (`crates/paved-policy/wit`, the host's contract).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../crates/paved-policy/wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "::paved_policy_sdk::bindings",
    });
}

use bindings::paved::policy::types as wit;
pub use bindings::paved::policy::types::{Action, Admission, Database, Operation, Severity, UserInfo};

/// The WIT `request`, with the settings and objects parsed on demand.
pub struct Input {
    /// The raw request.
    pub request: wit::Request,
    settings: Value,
    /// The objects already parsed by the caller (a native host evaluating several policies on
    /// the same objects parses them once).
    parsed: Option<std::sync::Arc<[Value]>>,
}

impl Input {
    /// Wraps a request; the settings (a JSON object) are parsed here.
    pub fn new(request: wit::Request) -> Result<Self, String> {
        let settings = if request.settings.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(&request.settings).map_err(|e| format!("settings are not JSON: {e}"))?
        };
        Ok(Input { request, settings, parsed: None })
    }

    /// Wraps a request whose objects the caller has parsed already (`parsed[i]` is
    /// `request.objects[i]`): [`objects`](Self::objects) and [`objects_as`](Self::objects_as)
    /// read them instead of parsing the text again, and a native host may leave the texts
    /// empty (a policy reads objects through those two).
    pub fn with_parsed(request: wit::Request, parsed: std::sync::Arc<[Value]>) -> Result<Self, String> {
        if parsed.len() != request.objects.len() {
            return Err(format!("{} parsed objects for {} in the request", parsed.len(), request.objects.len()));
        }
        let mut input = Input::new(request)?;
        input.parsed = Some(parsed);
        Ok(input)
    }

    /// The action.
    pub fn action(&self) -> Action {
        self.request.action
    }

    /// The admission request the check came from (`paved admission serve`); `None` at plan
    /// time.
    pub fn admission(&self) -> Option<&Admission> {
        self.request.admission.as_ref()
    }

    /// The object before an admission `UPDATE` or `DELETE`, parsed.
    pub fn old_object(&self) -> Result<Option<Value>, String> {
        self.admission()
            .and_then(|a| a.old_object.as_deref())
            .map(|text| serde_json::from_str(text).map_err(|e| format!("old object is not JSON: {e}")))
            .transpose()
    }

    /// The environment name.
    pub fn environment(&self) -> &str {
        &self.request.environment
    }

    /// The settings object.
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// One setting, `None` when absent or null.
    pub fn setting(&self, key: &str) -> Option<&Value> {
        self.settings.get(key).filter(|v| !v.is_null())
    }

    /// A setting that is a list of strings (absent → empty).
    pub fn string_list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.setting(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| format!("setting {key}: expected a list of strings"))
                })
                .collect(),
            Some(_) => Err(format!("setting {key}: expected a list of strings")),
        }
    }

    /// A list-of-strings setting, or `default` when it is absent or null (an explicit empty
    /// list stays empty: the policy decides what that means).
    pub fn string_list_or(&self, key: &str, default: &[&str]) -> Result<Vec<String>, String> {
        match self.setting(key) {
            None => Ok(default.iter().map(|s| s.to_string()).collect()),
            Some(_) => self.string_list(key),
        }
    }

    /// A setting deserialised into `T` (e.g. a `BTreeMap<String, u32>`), `None` when absent or
    /// null; a value of the wrong shape is an error naming the setting.
    pub fn setting_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        self.setting(key).map(|v| T::deserialize(v).map_err(|e| format!("setting {key}: {e}"))).transpose()
    }

    /// A setting deserialised into `T`, or `default()` when absent or null.
    pub fn setting_or<T: DeserializeOwned>(&self, key: &str, default: impl FnOnce() -> T) -> Result<T, String> {
        Ok(self.setting_as(key)?.unwrap_or_else(default))
    }

    /// Every object, parsed (borrowed when the host parsed them already).
    pub fn objects(&self) -> Result<std::borrow::Cow<'_, [Value]>, String> {
        if let Some(parsed) = &self.parsed {
            return Ok(std::borrow::Cow::Borrowed(parsed));
        }
        self.request
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| serde_json::from_str(o).map_err(|e| format!("object {i} is not JSON: {e}")))
            .collect::<Result<Vec<Value>, String>>()
            .map(std::borrow::Cow::Owned)
    }

    /// Every object deserialised into `T`, which may borrow strings from the request: in the
    /// sandbox (objects as JSON text) a minimal `#[derive(Deserialize)]` view of the fields a
    /// policy reads is several times cheaper than [`objects`](Self::objects), as the rest of
    /// each object is only skipped over, never allocated; from objects a native host parsed
    /// ([`with_parsed`](Self::with_parsed)) it reads them in place. An object that does not fit `T` is an error (a policy can fall back to
    /// [`objects`](Self::objects) to judge it).
    pub fn objects_as<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<Vec<T>, String> {
        if let Some(parsed) = &self.parsed {
            return parsed
                .iter()
                .enumerate()
                .map(|(i, o)| T::deserialize(o).map_err(|e| format!("object {i} does not fit: {e}")))
                .collect();
        }
        self.request
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| serde_json::from_str(o).map_err(|e| format!("object {i} does not fit: {e}")))
            .collect()
    }
}

/// A policy's answer under construction.
#[derive(Default)]
pub struct Decision {
    /// The violations found so far.
    pub violations: Vec<wit::Violation>,
    /// The mutated objects (mutating policies only).
    pub mutated: Option<Vec<Value>>,
}

impl Decision {
    /// No violations (yet).
    pub fn allow() -> Self {
        Decision::default()
    }

    /// Adds a violation.
    pub fn push(&mut self, violation: Violation) {
        self.violations.push(violation.0);
    }

    /// Whether nothing was found.
    pub fn is_allowed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A violation under construction: `Violation::deny("latest-tag", "…").hint("…").at(obj, path)`.
pub struct Violation(pub wit::Violation);

impl Violation {
    /// A denying violation.
    pub fn deny(code: &str, message: impl Into<String>) -> Self {
        Self::new(code, message, Severity::Deny)
    }

    /// A warning.
    pub fn warn(code: &str, message: impl Into<String>) -> Self {
        Self::new(code, message, Severity::Warn)
    }

    fn new(code: &str, message: impl Into<String>, severity: Severity) -> Self {
        Violation(wit::Violation {
            code: code.to_string(),
            message: message.into(),
            hint: None,
            object: None,
            path: None,
            severity,
        })
    }

    /// How to fix it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// The offending object (index into the request's objects) and field.
    pub fn at(mut self, object: u32, path: impl Into<String>) -> Self {
        self.0.object = Some(object);
        self.0.path = Some(path.into());
        self
    }

    /// The severity, e.g. from a setting.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.0.severity = severity;
        self
    }
}

/// A policy. Implement it and export it with [`export_policy!`].
pub trait Policy {
    /// The policy's name, e.g. `disallow-latest-tag`.
    const NAME: &'static str;
    /// Its version.
    const VERSION: &'static str = "0.1.0";
    /// One line on what it checks.
    const DESCRIPTION: &'static str;
    /// The actions it handles.
    const ACTIONS: &'static [Action] = &[Action::Deploy, Action::Rollback];

    /// Evaluates one request.
    fn evaluate(input: &Input) -> Result<Decision, String>;
}

#[doc(hidden)]
pub fn __metadata<P: Policy>() -> wit::Info {
    wit::Info {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        description: P::DESCRIPTION.to_string(),
        actions: P::ACTIONS.to_vec(),
    }
}

#[doc(hidden)]
pub fn __evaluate<P: Policy>(request: wit::Request) -> Result<wit::Decision, String> {
    answer(P::evaluate(&Input::new(request)?)?)
}

/// [`__evaluate`] with the objects parsed by a native host (the baseline's built-ins).
#[doc(hidden)]
pub fn __evaluate_parsed<P: Policy>(
    request: wit::Request,
    parsed: std::sync::Arc<[Value]>,
) -> Result<wit::Decision, String> {
    answer(P::evaluate(&Input::with_parsed(request, parsed)?)?)
}

fn answer(decision: Decision) -> Result<wit::Decision, String> {
    let mutated = match decision.mutated {
        None => None,
        Some(objects) => Some(
            objects
                .iter()
                .map(|o| serde_json::to_string(o).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(wit::Decision { violations: decision.violations, mutated })
}

/// Exports a [`Policy`] as the component's `paved:policy/policy` interface.
///
/// The exports only link into a WebAssembly component: a `cdylib` built for the host target
/// (as `cargo test --target x86_64-unknown-linux-gnu` does) fails to link them. To unit-test a
/// policy natively, export it for wasm only and call [`Policy::evaluate`] in the tests:
///
/// ```ignore
/// #[cfg(target_arch = "wasm32")]
/// paved_policy_sdk::export_policy!(RequireProbes);
/// ```
#[macro_export]
macro_rules! export_policy {
    ($policy:ident) => {
        impl $crate::bindings::exports::paved::policy::policy::Guest for $policy {
            fn metadata() -> $crate::bindings::paved::policy::types::Info {
                $crate::__metadata::<$policy>()
            }
            fn evaluate(
                request: $crate::bindings::paved::policy::types::Request,
            ) -> ::core::result::Result<$crate::bindings::paved::policy::types::Decision, ::std::string::String> {
                $crate::__evaluate::<$policy>(request)
            }
        }
        $crate::bindings::__export_plugin!($policy with_types_in $crate::bindings);
    };
}

/// Writes a log line through the host.
pub fn log(level: bindings::paved::policy::log::Level, message: &str) {
    bindings::paved::policy::log::log(level, message);
}

/// The kinds whose objects carry a pod template.
pub const POD_BEARING_KINDS: &[&str] =
    &["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"];

/// A pod inside an object: the pod itself, or a workload's pod template.
pub struct Pod<'a> {
    /// The index of the object in the request.
    pub object: u32,
    /// The object's kind.
    pub kind: &'a str,
    /// The object itself.
    pub owner: &'a Value,
    /// The pod's metadata (the template's, for workloads), if present.
    pub metadata: Option<&'a Value>,
    /// The path of the pod's metadata, e.g. `spec.template.metadata`.
    pub metadata_path: &'static str,
    /// The pod spec.
    pub spec: &'a Value,
    /// The path of the pod spec, e.g. `spec.template.spec`.
    pub spec_path: &'static str,
}

/// A container of a pod.
pub struct Container<'a> {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub list: &'static str,
    /// Its index in that list.
    pub index: usize,
    /// The container.
    pub value: &'a Value,
    /// Its path, e.g. `spec.template.spec.containers[0]`.
    pub path: String,
}

impl Container<'_> {
    /// The container's name (or `""`).
    pub fn name(&self) -> &str {
        self.value.get("name").and_then(Value::as_str).unwrap_or("")
    }

    /// A field of the container.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key)
    }

    /// The path of one of its fields.
    pub fn field(&self, path: &str) -> String {
        format!("{}.{path}", self.path)
    }
}

impl<'a> Container<'a> {
    /// A field by dotted path, e.g. `resources.limits.memory`; JSON `null` counts as absent.
    pub fn lookup(&self, path: &str) -> Option<&'a Value> {
        lookup(self.value, path)
    }

    /// A field of its `securityContext` by dotted path, e.g. `seccompProfile.type`.
    pub fn security(&self, path: &str) -> Option<&'a Value> {
        self.value.get("securityContext").and_then(|sc| lookup(sc, path))
    }

    /// The path of a field of its `securityContext`, e.g.
    /// `spec.template.spec.containers[0].securityContext.privileged`.
    pub fn security_field(&self, path: &str) -> String {
        format!("{}.securityContext.{path}", self.path)
    }

    /// The capabilities in `securityContext.capabilities.<which>` (`"add"` or `"drop"`), with
    /// their index in that list; entries that are not strings are skipped.
    pub fn capabilities(&self, which: &str) -> impl Iterator<Item = (usize, &'a str)> + use<'a> {
        let list = self.security("capabilities").and_then(|c| c.get(which)).and_then(Value::as_array);
        list.into_iter().flatten().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
    }

    /// Whether `securityContext.capabilities.drop` lists `ALL` (exactly, as the Pod Security
    /// Standards compare; or in any case with `ignore_case`).
    pub fn drops_all_capabilities(&self, ignore_case: bool) -> bool {
        self.capabilities("drop").any(|(_, c)| if ignore_case { c.eq_ignore_ascii_case("ALL") } else { c == "ALL" })
    }

    /// The container for a person: `container app`, `init container migrate` or
    /// `ephemeral container debugger`.
    pub fn describe(&self) -> String {
        let kind = match self.list {
            "initContainers" => "init container",
            "ephemeralContainers" => "ephemeral container",
            _ => "container",
        };
        format!("{kind} {}", self.name())
    }
}

/// A container's security setting after the pod-level fallback: the container's own
/// `securityContext` field when set, else the pod's `securityContext` field (Kubernetes applies
/// the pod-level value to every container that does not set its own).
pub struct Effective<'a> {
    /// The value in force.
    pub value: &'a Value,
    /// The path of the field it comes from.
    pub path: String,
    /// Whether it comes from the pod-level `securityContext`.
    pub from_pod: bool,
}

/// The container lists of a pod spec, in Kubernetes' order.
pub const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

impl<'a> Pod<'a> {
    /// Every container of every list.
    pub fn containers(&self) -> impl Iterator<Item = Container<'a>> + '_ {
        let spec = self.spec;
        let spec_path = self.spec_path;
        CONTAINER_LISTS.iter().flat_map(move |list| {
            spec.get(*list).and_then(Value::as_array).into_iter().flatten().enumerate().map(move |(index, value)| {
                Container { list, index, value, path: format!("{spec_path}.{list}[{index}]") }
            })
        })
    }

    /// A label of the pod, if set.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.metadata?.get("labels")?.get(key)?.as_str()
    }

    /// The path of one of the pod spec's fields.
    pub fn field(&self, path: &str) -> String {
        format!("{}.{path}", self.spec_path)
    }

    /// `Kind/name` of the owning object.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.kind, object_name(self.owner))
    }

    /// The path of one of the pod's labels, e.g. `spec.template.metadata.labels["app"]`.
    pub fn label_path(&self, key: &str) -> String {
        label_path(self.metadata_path, key)
    }

    /// A field of the pod-level `securityContext` by dotted path, e.g. `runAsNonRoot`.
    pub fn security(&self, path: &str) -> Option<&'a Value> {
        self.spec.get("securityContext").and_then(|sc| lookup(sc, path))
    }

    /// The path of a field of the pod-level `securityContext`, e.g.
    /// `spec.template.spec.securityContext.runAsNonRoot`.
    pub fn security_field(&self, path: &str) -> String {
        format!("{}.securityContext.{path}", self.spec_path)
    }

    /// A container's `securityContext` field (dotted path) with the pod-level fallback;
    /// `None` when neither sets it.
    pub fn effective_security(&self, container: &Container<'a>, path: &str) -> Option<Effective<'a>> {
        match container.security(path) {
            Some(value) => Some(Effective { value, path: container.security_field(path), from_pod: false }),
            None => {
                self.security(path).map(|value| Effective { value, path: self.security_field(path), from_pod: true })
            }
        }
    }
}

/// A field by dotted path (`securityContext.seccompProfile.type`); JSON `null` counts as absent.
/// Keys containing dots cannot be reached this way: use `Value::get`.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key)).filter(|v| !v.is_null())
}

/// The path of a label under a metadata path, e.g.
/// `label_path("metadata", "app.kubernetes.io/name")` is `metadata.labels["app.kubernetes.io/name"]`.
pub fn label_path(metadata_path: &str, key: &str) -> String {
    format!("{metadata_path}.labels[{key:?}]")
}

/// The entry of a per-environment setting (a map from environment name) for `environment`:
/// its own entry, else the `"*"` entry (any other environment), else `None`.
pub fn for_environment<'m, T>(map: &'m BTreeMap<String, T>, environment: &str) -> Option<&'m T> {
    map.get(environment).or_else(|| map.get("*"))
}

/// The object's `metadata.name` (or `""`).
pub fn object_name(object: &Value) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// The object's kind (or `""`).
pub fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// The pod of one object, when it is pod-bearing.
pub fn pod_of(index: usize, object: &Value) -> Option<Pod<'_>> {
    let kind = kind(object);
    let (meta_ptr, spec_ptr, metadata_path, spec_path) = match kind {
        "Pod" => ("/metadata", "/spec", "metadata", "spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            ("/spec/template/metadata", "/spec/template/spec", "spec.template.metadata", "spec.template.spec")
        }
        "CronJob" => (
            "/spec/jobTemplate/spec/template/metadata",
            "/spec/jobTemplate/spec/template/spec",
            "spec.jobTemplate.spec.template.metadata",
            "spec.jobTemplate.spec.template.spec",
        ),
        _ => return None,
    };
    let spec = object.pointer(spec_ptr)?;
    Some(Pod {
        object: index as u32,
        kind,
        owner: object,
        metadata: object.pointer(meta_ptr),
        metadata_path,
        spec,
        spec_path,
    })
}

/// Every pod of the objects.
pub fn pods(objects: &[Value]) -> impl Iterator<Item = Pod<'_>> {
    objects.iter().enumerate().filter_map(|(i, o)| pod_of(i, o))
}

/// A boolean field, `None` when absent.
pub fn bool_at(value: &Value, pointer: &str) -> Option<bool> {
    value.pointer(pointer).and_then(Value::as_bool)
}
