//! The baseline: bundled policies compiled into paved as trusted built-ins.
//!
//! With no `[[policies]]` configured a golden path would check nothing; the baseline holds the
//! Pod Security Standards *restricted* rules and three best practices on every action, the way
//! Pod Security Admission does in a namespace. Its members are the bundled plugins' own Rust
//! sources (`plugins/<name>`), compiled natively into this crate: the user's machine needs no
//! wasm toolchain, nothing is compiled at first use, and an evaluation costs microseconds. They
//! are trusted like the rest of the binary (they are paved's code, not a repository's), so they
//! run without the sandbox. The same sources, built as components, are what the plugin tests
//! and `paved policy check --policy plugins/<name>` run.

use std::path::Path;
use std::sync::Arc;

use paved_policy_sdk::bindings::paved::policy::types as guest;

use crate::error::Result;
use crate::host::{Database, Decision, Failure, Operation, Request, WitAction, WitSeverity, WitViolation};
use crate::manifest::PolicyManifest;
use serde_json::Value;

/// The members of the baseline, in evaluation order: the Pod Security Standards restricted
/// profile (seven Kyverno-style rules and `pod-security-restricted` for the other controls),
/// then `disallow-latest-tag`, `require-pod-requests-limits` and `require-probes`.
pub const BASELINE: &[&str] = &[
    "disallow-privileged-containers",
    "disallow-host-namespaces",
    "disallow-host-path",
    "disallow-privilege-escalation",
    "require-run-as-nonroot",
    "restrict-seccomp-strict",
    "disallow-capabilities-strict",
    "pod-security-restricted",
    "disallow-latest-tag",
    "require-pod-requests-limits",
    "require-probes",
];

type Evaluate = fn(guest::Request, Arc<[Value]>) -> std::result::Result<guest::Decision, String>;

/// One built-in policy: its manifest (the plugin's `policy.toml`) and its native code.
pub struct Builtin {
    manifest: PolicyManifest,
    evaluate: Evaluate,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin").field("name", &self.manifest.name).finish_non_exhaustive()
    }
}

macro_rules! builtins {
    ($($name:literal => $krate:ident :: $policy:ident),* $(,)?) => {
        /// The source of a built-in by name: its manifest text and its code.
        fn source(name: &str) -> Option<(&'static str, Evaluate)> {
            match name {
                $($name => Some((
                    include_str!(concat!("../../../plugins/", $name, "/policy.toml")),
                    paved_policy_sdk::__evaluate_parsed::<$krate::$policy> as Evaluate,
                )),)*
                _ => None,
            }
        }
    };
}

builtins! {
    "disallow-privileged-containers" => disallow_privileged_containers::DisallowPrivilegedContainers,
    "disallow-host-namespaces" => disallow_host_namespaces::DisallowHostNamespaces,
    "disallow-host-path" => disallow_host_path::DisallowHostPath,
    "disallow-privilege-escalation" => disallow_privilege_escalation::DisallowPrivilegeEscalation,
    "require-run-as-nonroot" => require_run_as_nonroot::RequireRunAsNonroot,
    "restrict-seccomp-strict" => restrict_seccomp_strict::RestrictSeccompStrict,
    "disallow-capabilities-strict" => disallow_capabilities_strict::DisallowCapabilitiesStrict,
    "pod-security-restricted" => pod_security_restricted::PodSecurityRestricted,
    "disallow-latest-tag" => disallow_latest_tag::DisallowLatestTag,
    "require-pod-requests-limits" => require_pod_requests_limits::RequirePodRequestsLimits,
    "require-probes" => require_probes::RequireProbes,
}

impl Builtin {
    /// The built-in of that name (one of [`BASELINE`]).
    pub fn get(name: &str) -> Result<Self> {
        let (text, evaluate) = source(name).ok_or_else(|| crate::error::Error::Load {
            policy: name.to_string(),
            message: "is not a built-in policy".into(),
            hint: Some(paved_core::suggest::hint_for(name, BASELINE.iter().copied())),
        })?;
        let mut manifest = PolicyManifest::parse(&Path::new("<built-in>").join(name).join("policy.toml"), text)?;
        manifest.dir = Path::new("<built-in>").join(name);
        Ok(Builtin { manifest, evaluate })
    }

    /// Every member of the baseline, in order.
    pub fn baseline() -> Vec<Self> {
        BASELINE.iter().map(|name| Self::get(name).expect("the baseline's manifests parse")).collect()
    }

    /// Its manifest.
    pub fn manifest(&self) -> &PolicyManifest {
        &self.manifest
    }

    /// Evaluates a request; a panic is a [`Failure::Trap`], as it would be in the sandbox.
    pub fn evaluate(&self, request: &Request) -> std::result::Result<Decision, Failure> {
        let parsed = request
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| serde_json::from_str(o).map_err(|e| format!("object {i} is not JSON: {e}")))
            .collect::<std::result::Result<Vec<Value>, String>>()
            .map_err(|message| Failure::Error { message })?;
        self.evaluate_parsed(request, parsed.into())
    }

    /// [`evaluate`](Self::evaluate) with the request's objects already parsed (`parsed[i]` is
    /// `request.objects[i]`): the built-ins of one evaluation share one parse.
    pub fn evaluate_parsed(&self, request: &Request, parsed: Arc<[Value]>) -> std::result::Result<Decision, Failure> {
        let request = to_guest(request);
        let evaluate = self.evaluate;
        match std::panic::catch_unwind(move || evaluate(request, parsed)) {
            Ok(Ok(decision)) => Ok(from_guest(decision)),
            Ok(Err(message)) => Err(Failure::Error { message }),
            Err(panic) => Err(Failure::Trap {
                reason: panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".into()),
            }),
        }
    }
}

fn to_guest(r: &Request) -> guest::Request {
    guest::Request {
        action: match r.action {
            WitAction::Deploy => guest::Action::Deploy,
            WitAction::Rollback => guest::Action::Rollback,
            WitAction::ProvisionDatabase => guest::Action::ProvisionDatabase,
            WitAction::DeprovisionDatabase => guest::Action::DeprovisionDatabase,
        },
        app: r.app.clone(),
        team: r.team.clone(),
        environment: r.environment.clone(),
        image: r.image.clone(),
        replicas: r.replicas,
        escape_hatches: r.escape_hatches.clone(),
        database: r
            .database
            .as_ref()
            .map(|Database { engine, size }| guest::Database { engine: engine.clone(), size: size.clone() }),
        settings: r.settings.clone(),
        objects: r.objects.clone(),
        admission: r.admission.as_ref().map(|a| guest::Admission {
            uid: a.uid.clone(),
            operation: match a.operation {
                Operation::Create => guest::Operation::Create,
                Operation::Update => guest::Operation::Update,
                Operation::Delete => guest::Operation::Delete,
                Operation::Connect => guest::Operation::Connect,
            },
            kind: a.kind.clone(),
            sub_resource: a.sub_resource.clone(),
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            user_info: guest::UserInfo {
                username: a.user_info.username.clone(),
                uid: a.user_info.uid.clone(),
                groups: a.user_info.groups.clone(),
            },
            old_object: a.old_object.clone(),
            dry_run: a.dry_run,
        }),
    }
}

fn from_guest(d: guest::Decision) -> Decision {
    Decision {
        violations: d
            .violations
            .into_iter()
            .map(|v| WitViolation {
                code: v.code,
                message: v.message,
                hint: v.hint,
                object: v.object,
                path: v.path,
                severity: match v.severity {
                    guest::Severity::Deny => WitSeverity::Deny,
                    guest::Severity::Warn => WitSeverity::Warn,
                },
            })
            .collect(),
        mutated: d.mutated,
    }
}
