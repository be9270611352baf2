//! `pod-security-restricted`: the Pod Security Standards controls (restricted profile, as of
//! Kubernetes v1.33, <https://kubernetes.io/docs/concepts/security/pod-security-standards/>)
//! that the other bundled policies leave:
//!
//! - **HostProcess**: `securityContext.windowsOptions.hostProcess` is unset or false;
//! - **Host Ports**: no container port sets a non-zero `hostPort`;
//! - **AppArmor**: `appArmorProfile.type` is `RuntimeDefault` or `Localhost` (or unset), and
//!   the beta annotations say `runtime/default` or `localhost/…`;
//! - **SELinux**: `seLinuxOptions.type` is one of the container types, and `user`/`role` unset;
//! - **/proc Mount Type**: `procMount` is unset or `Default`;
//! - **Sysctls**: only the safe set;
//! - **Volume Types**: only configMap, csi, downwardAPI, emptyDir, ephemeral, image,
//!   persistentVolumeClaim, projected and secret volumes.
//!
//! Privileged, host namespaces, hostPath, privilege escalation, running as non-root, seccomp
//! and capabilities have their own bundled policies.

use paved_policy_sdk::{Decision, Input, Policy, Value, Violation, pods};

/// The policy.
pub struct PodSecurityRestricted;

/// The sysctls the baseline profile allows.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// The volume types the restricted profile allows.
pub const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The SELinux types the baseline profile allows.
const SELINUX_TYPES: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

fn deny(code: &str, message: String, hint: &str) -> Violation {
    Violation::deny(code, message).hint(hint)
}

impl Policy for PodSecurityRestricted {
    const NAME: &'static str = "pod-security-restricted";
    const DESCRIPTION: &'static str = "The Pod Security Standards controls the other bundled policies leave: no hostProcess, host ports, unconfined AppArmor, custom SELinux options, unmasked /proc, unsafe sysctls, or volume types outside the restricted set.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut d = Decision::allow();
        for pod in pods(&input.objects()?) {
            let o = pod.object;
            // Pod-level security context.
            check_security(
                &mut d,
                o,
                pod.security("windowsOptions"),
                pod.security("appArmorProfile"),
                pod.security("seLinuxOptions"),
                &|f| pod.security_field(f),
                &pod.describe(),
            );
            for (i, sysctl) in pod.security("sysctls").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let name = sysctl.get("name").and_then(Value::as_str).unwrap_or("");
                if !SAFE_SYSCTLS.contains(&name) {
                    d.push(
                        deny("unsafe-sysctl", format!("{} sets the sysctl {name}, which is not in the safe set", pod.describe()), "remove it; only the safe sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, …) are allowed")
                            .at(o, pod.security_field(&format!("sysctls[{i}].name"))),
                    );
                }
            }
            for (i, volume) in pod.spec.get("volumes").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
                let types: Vec<&str> = volume
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| k.as_str() != "name" && !v.is_null())
                    .map(|(k, _)| k.as_str())
                    .collect();
                if let Some(kind) = types.iter().find(|t| !ALLOWED_VOLUMES.contains(t)) {
                    d.push(
                        deny("volume-type", format!("volume {name} is of type {kind}, not allowed by the restricted profile"), "use configMap, secret, emptyDir, projected, downwardAPI, a persistentVolumeClaim, csi, ephemeral or image volumes")
                            .at(o, pod.field(&format!("volumes[{i}].{kind}"))),
                    );
                }
            }
            if let Some(annotations) = pod.metadata.and_then(|m| m.get("annotations")).and_then(Value::as_object) {
                for (key, value) in annotations {
                    let Some(container) = key.strip_prefix("container.apparmor.security.beta.kubernetes.io/") else {
                        continue;
                    };
                    let profile = value.as_str().unwrap_or("");
                    if profile != "runtime/default" && !profile.starts_with("localhost/") {
                        d.push(
                            deny(
                                "apparmor",
                                format!("container {container} runs with the AppArmor profile {profile:?}"),
                                "use runtime/default or a localhost/ profile",
                            )
                            .at(o, format!("{}.annotations.{key}", pod.metadata_path)),
                        );
                    }
                }
            }
            for c in pod.containers() {
                check_security(
                    &mut d,
                    o,
                    c.security("windowsOptions"),
                    c.security("appArmorProfile"),
                    c.security("seLinuxOptions"),
                    &|f| c.security_field(f),
                    &c.describe(),
                );
                if let Some(mount) = c.security("procMount").and_then(Value::as_str)
                    && mount != "Default"
                {
                    d.push(
                        deny(
                            "proc-mount",
                            format!("{} mounts /proc as {mount}", c.describe()),
                            "remove procMount (the default masks /proc)",
                        )
                        .at(o, c.security_field("procMount")),
                    );
                }
                for (i, port) in c.get("ports").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    if let Some(host_port) = port.get("hostPort").and_then(Value::as_u64)
                        && host_port != 0
                    {
                        d.push(
                            deny(
                                "host-port",
                                format!("{} binds port {host_port} of the node (hostPort)", c.describe()),
                                "remove hostPort; expose the port through a Service",
                            )
                            .at(o, c.field(&format!("ports[{i}].hostPort"))),
                        );
                    }
                }
            }
        }
        Ok(d)
    }
}

/// The checks shared by the pod's and each container's security context.
fn check_security(
    d: &mut Decision,
    object: u32,
    windows: Option<&Value>,
    apparmor: Option<&Value>,
    selinux: Option<&Value>,
    field: &dyn Fn(&str) -> String,
    who: &str,
) {
    if windows.and_then(|w| w.get("hostProcess")).and_then(Value::as_bool) == Some(true) {
        d.push(
            deny("host-process", format!("{who} runs as a Windows HostProcess"), "remove windowsOptions.hostProcess")
                .at(object, field("windowsOptions.hostProcess")),
        );
    }
    if let Some(kind) = apparmor.and_then(|a| a.get("type")).and_then(Value::as_str)
        && kind != "RuntimeDefault"
        && kind != "Localhost"
    {
        d.push(
            deny(
                "apparmor",
                format!("{who} runs with the AppArmor profile type {kind}"),
                "use RuntimeDefault or Localhost",
            )
            .at(object, field("appArmorProfile.type")),
        );
    }
    if let Some(selinux) = selinux {
        if let Some(kind) = selinux.get("type").and_then(Value::as_str)
            && !SELINUX_TYPES.contains(&kind)
        {
            d.push(
                deny("selinux", format!("{who} sets the SELinux type {kind}"), "use container_t (or leave it out)")
                    .at(object, field("seLinuxOptions.type")),
            );
        }
        for key in ["user", "role"] {
            if selinux.get(key).and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
                d.push(
                    deny(
                        "selinux",
                        format!("{who} sets a custom SELinux {key}"),
                        "remove seLinuxOptions.user and .role",
                    )
                    .at(object, field(&format!("seLinuxOptions.{key}"))),
                );
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(PodSecurityRestricted);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, spec_path, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(object: Value) -> testing::Outcome {
        let out = TestRequest::for_plugin(DIR).object(object).evaluate::<PodSecurityRestricted>();
        out.assert_well_formed();
        out
    }

    paved_policy_sdk::policy_tests!(PodSecurityRestricted);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<PodSecurityRestricted>(DIR);
    }

    #[test]
    fn every_control_in_every_kind() {
        let spec = json!({
            "securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}],
                                "seLinuxOptions": {"type": "spc_t"}},
            "volumes": [{"name": "ok", "emptyDir": {}}, {"name": "nfs", "nfs": {"server": "x", "path": "/"}}],
            "containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 80, "hostPort": 80}],
                            "securityContext": {"procMount": "Unmasked", "appArmorProfile": {"type": "Unconfined"},
                                                "windowsOptions": {"hostProcess": true}, "seLinuxOptions": {"user": "root"}}}],
        });
        for kind in POD_BEARING_KINDS {
            let out = eval(workload(kind, spec.clone()));
            let mut codes = out.codes();
            codes.sort_unstable();
            assert_eq!(
                codes,
                [
                    "apparmor",
                    "host-port",
                    "host-process",
                    "proc-mount",
                    "selinux",
                    "selinux",
                    "unsafe-sysctl",
                    "volume-type"
                ],
                "{kind}"
            );
            let p = spec_path(kind);
            assert!(out.paths().iter().any(|x| *x == format!("{p}.volumes[1].nfs")), "{:?}", out.paths());
        }
    }

    #[test]
    fn the_allowed_values_pass() {
        let spec = json!({
            "securityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
                                "seLinuxOptions": {"type": "container_t"}, "appArmorProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "a", "configMap": {"name": "c"}}, {"name": "b", "projected": {"sources": []}}],
            "containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 80}],
                            "securityContext": {"procMount": "Default", "appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}],
        });
        assert!(eval(workload("Deployment", spec)).codes().is_empty());
    }
}
