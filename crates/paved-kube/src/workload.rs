//! What a workload file (Score) adds to the golden path's objects: more containers, command
//! and arguments, variables, files (a ConfigMap), volumes (PersistentVolumeClaims), probes,
//! Service ports, Ingress paths, NetworkPolicy egress to the workloads it calls, and the
//! provisioners' objects. Applied to the rendered defaults, before escape hatches, so
//! overlays and policy see the result.

use paved_core::workload::{ContainerSettings, EnvValue, FileData, ProbeSpec};
use paved_core::{Error, Manifest, ResolvedApp, Result};
use serde_json::{Map, Value, json};

use crate::render::common_labels;

/// The name of the ConfigMap that holds a workload's files.
pub fn files_name(app: &ResolvedApp) -> String {
    format!("{}-files", app.app)
}

const FILES_VOLUME: &str = "paved-files";

/// An error about the workload file `source` (`score:PATH`).
fn invalid(source: &str, message: String, hint: &str) -> Error {
    Error::Manifest {
        path: source.split_once(':').map_or(source, |(_, p)| p).into(),
        line: None,
        message,
        hint: Some(hint.to_string()).filter(|h| !h.is_empty()),
    }
}

fn find<'a>(objects: &'a mut [Manifest], kind: &str, name: &str) -> Option<&'a mut Value> {
    objects.iter_mut().find(|o| o.kind() == kind && o.name() == name).map(Manifest::value_mut)
}

/// An IANA service name (what a container port's name must be), or `None`.
fn port_name(name: &str) -> Option<&str> {
    (name.len() <= 15 && name.bytes().any(|b| b.is_ascii_lowercase()) && !name.contains("--")).then_some(name)
}

fn probe(p: &ProbeSpec, period: u32, failures: u32) -> Value {
    let mut v = match (&p.exec, &p.http) {
        // Score: exec is preferred when both are given.
        (Some(command), _) => json!({ "exec": { "command": command } }),
        (None, Some(h)) => {
            let mut get = json!({ "path": h.path, "port": h.port });
            if let Some(s) = &h.scheme {
                get["scheme"] = s.as_str().into();
            }
            if let Some(host) = &h.host {
                get["host"] = host.as_str().into();
            }
            if !h.headers.is_empty() {
                get["httpHeaders"] = h.headers.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect();
            }
            json!({ "httpGet": get })
        }
        (None, None) => json!({}),
    };
    v["periodSeconds"] = period.into();
    v["timeoutSeconds"] = 2.into();
    v["failureThreshold"] = failures.into();
    v
}

/// Sets a container's settings; `main_env` holds the main container's rendered env (for the
/// secret bindings' `valueFrom`).
fn settings(
    source: &str,
    c: &mut Value,
    s: &ContainerSettings,
    main_env: &[Value],
    file_keys: &[(String, String)],
) -> Result<()> {
    if let Some(command) = &s.command {
        c["command"] = json!(command);
    }
    if let Some(args) = &s.args {
        c["args"] = json!(args);
    }
    let mut env: Vec<Value> = c.get("env").and_then(Value::as_array).cloned().unwrap_or_default();
    for var in &s.env {
        let entry = match &var.value {
            // Kubernetes reads `$$` as `$` and expands `$(X)`: every `$` of plain text is doubled.
            EnvValue::Text(t) => json!({ "name": var.name, "value": t.replace('$', "$$") }),
            EnvValue::Composed(t) => json!({ "name": var.name, "value": t }),
            // The app container's own binding: rendered by the golden path in its secret mode.
            EnvValue::Secret(binding)
                if *binding == var.name
                    && main_env.iter().any(|e| {
                        e["name"] == var.name.as_str() || e["name"] == format!("{}_FILE", var.name).as_str()
                    }) =>
            {
                continue;
            }
            EnvValue::Secret(binding) => {
                let from = main_env
                    .iter()
                    .find(|e| e["name"] == binding.as_str())
                    .and_then(|e| e.get("valueFrom"))
                    .ok_or_else(|| {
                        invalid(source, format!("variable {} of container {} needs a secret as an environment variable", var.name, s.name),
                            "set secret_mode = \"sync\" for the environment ([secrets] in paved.toml): in agent mode secrets are files",
                        )
                    })?;
                json!({ "name": var.name, "valueFrom": from })
            }
            _ => return Err(invalid(source, format!("variable {} has a value paved cannot render", var.name), "")),
        };
        env.retain(|e| e["name"] != var.name.as_str());
        env.push(entry);
    }
    // Every `$(NAME)` a value uses must be a variable defined before it with the secret's
    // `valueFrom` (Kubernetes expands only those); sidecars get copies of the app container's.
    let mut texts: Vec<String> = env.iter().filter_map(|e| e["value"].as_str().map(str::to_string)).collect();
    texts.extend(
        c["command"]
            .as_array()
            .into_iter()
            .chain(c["args"].as_array())
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string)),
    );
    let mut needed: Vec<Value> = Vec::new();
    for m in main_env.iter().filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("PAVED_SECRET_"))) {
        let name = m["name"].as_str().expect("filtered");
        let (plain, file) = (name.strip_suffix("_FILE").unwrap_or(name), name.ends_with("_FILE"));
        if !texts.iter().any(|t| t.contains(&format!("$({plain})"))) {
            continue;
        }
        if file || m.get("valueFrom").is_none() {
            return Err(invalid(
                source,
                format!("container {} composes a value from a secret that agent mode delivers as a file", s.name),
                "set secret_mode = \"sync\" for the environment ([secrets] in paved.toml), or use the whole secret output as one variable",
            ));
        }
        if !env.iter().any(|e| e["name"] == name) {
            needed.push(m.clone());
        }
    }
    // Bindings first: a composed value may only name variables defined before it.
    let (mut bindings, rest): (Vec<Value>, Vec<Value>) =
        env.into_iter().partition(|e| e["name"].as_str().is_some_and(|n| n.starts_with("PAVED_SECRET_")));
    bindings.append(&mut needed);
    bindings.extend(rest);
    if !bindings.is_empty() {
        c["env"] = Value::Array(bindings);
    }
    let mounts = c["volumeMounts"].as_array_mut().expect("containers have mounts");
    for (key, target) in file_keys {
        mounts.push(json!({ "name": FILES_VOLUME, "mountPath": target, "subPath": key, "readOnly": true }));
    }
    for m in &s.mounts {
        let mut mount = json!({ "name": m.claim, "mountPath": m.target });
        if let Some(p) = &m.sub_path {
            mount["subPath"] = p.as_str().into();
        }
        if m.read_only {
            mount["readOnly"] = true.into();
        }
        mounts.push(mount);
    }
    if let Some(p) = &s.liveness {
        c["livenessProbe"] = probe(p, 10, 3);
    }
    if let Some(p) = &s.readiness {
        c["readinessProbe"] = probe(p, 10, 3);
    }
    // The startup probe follows the app's own health check once it has one.
    if let Some(p) = s.liveness.as_ref().or(s.readiness.as_ref()) {
        c["startupProbe"] = probe(p, 5, 30);
    }
    Ok(())
}

/// Applies `app.workload` to the rendered objects.
pub fn apply(app: &ResolvedApp, objects: &mut Vec<Manifest>) -> Result<()> {
    let Some(w) = &app.workload else { return Ok(()) };
    let name = app.app.as_str();
    let labels = Value::Object(common_labels(app));
    let meta = |n: &str| json!({ "name": n, "namespace": app.namespace, "labels": labels.clone() });
    // Files: one ConfigMap, a key per file.
    let mut data = Map::new();
    let mut binary = Map::new();
    let mut items = Vec::new();
    let mut keys_of = |s: &ContainerSettings| -> Vec<(String, String)> {
        s.files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let key = format!("{}-{i}", s.name);
                match &f.data {
                    FileData::Text(t) => data.insert(key.clone(), t.as_str().into()),
                    FileData::Base64(b) => binary.insert(key.clone(), b.as_str().into()),
                    _ => None,
                };
                let mut item = json!({ "key": key, "path": key });
                if let Some(mode) = f.mode {
                    item["mode"] = mode.into();
                }
                items.push(item);
                (key, f.target.clone())
            })
            .collect()
    };
    let main_keys = keys_of(&w.main);
    let sidecar_keys: Vec<_> = w.sidecars.iter().map(|s| keys_of(&s.settings)).collect();
    let has_files = !items.is_empty();
    let env_resources = &app.environment.config.resources;
    let Some(deployment) = find(objects, "Deployment", name) else {
        return Err(invalid(&w.source, "the Deployment is not rendered".into(), ""));
    };
    // Metadata of the Deployment and its pods; paved's own labels win.
    for pointer in ["/metadata", "/spec/template/metadata"] {
        let target = deployment.pointer_mut(pointer).expect("the Deployment has both");
        for (k, v) in &w.labels {
            let labels = target["labels"].as_object_mut().expect("rendered objects have labels");
            labels.entry(k.clone()).or_insert_with(|| v.as_str().into());
        }
        if !w.annotations.is_empty() {
            let a = target.as_object_mut().expect("metadata").entry("annotations").or_insert_with(|| json!({}));
            for (k, v) in &w.annotations {
                a.as_object_mut().expect("annotations").entry(k.clone()).or_insert_with(|| v.as_str().into());
            }
        }
    }
    let pod = &mut deployment["spec"]["template"]["spec"];
    let main_env: Vec<Value> = pod["containers"][0]["env"].as_array().cloned().unwrap_or_default();
    {
        let main = &mut pod["containers"][0];
        settings(&w.source, main, &w.main, &main_env, &main_keys)?;
        // Without probes of its own, the golden path's probes go to the port the workload
        // publishes first, not to the default port the app may not listen on.
        if w.main.liveness.is_none()
            && w.main.readiness.is_none()
            && let Some(first) = w.ports.first().filter(|p| p.target_port != app.defaults.port)
        {
            for key in ["startupProbe", "readinessProbe", "livenessProbe"] {
                if main[key]["httpGet"]["port"] == "http" {
                    main[key]["httpGet"]["port"] = first.target_port.into();
                }
            }
        }
        let ports = main["ports"].as_array_mut().expect("the app container has ports");
        for p in &w.ports {
            if !ports.iter().any(|c| c["containerPort"] == p.target_port && c["protocol"] == p.protocol.as_str()) {
                let mut port = json!({ "containerPort": p.target_port, "protocol": p.protocol });
                if let Some(n) = port_name(&p.name).filter(|n| !ports.iter().any(|c| c["name"] == *n)) {
                    port["name"] = n.into();
                }
                ports.push(port);
            }
        }
    }
    let template = pod["containers"][0].clone();
    for (s, keys) in w.sidecars.iter().zip(&sidecar_keys) {
        if s.settings.name == name
            || pod["containers"].as_array().expect("containers").iter().any(|c| c["name"] == s.settings.name.as_str())
        {
            return Err(invalid(
                &w.source,
                format!("container {} has the name of another container of the pod", s.settings.name),
                "rename the container in the workload file",
            ));
        }
        let [cpu_request, cpu_limit, memory_request, memory_limit] = &s.resources;
        let mut limits = json!({ "memory": memory_limit.as_deref().unwrap_or(env_resources.memory_limit.as_str()) });
        if let Some(cpu) = cpu_limit.as_deref().or(env_resources.cpu_limit.as_ref().map(|c| c.as_str())) {
            limits["cpu"] = cpu.into();
        }
        let mut c = json!({
            "name": s.settings.name,
            "image": s.image.as_str(),
            "imagePullPolicy": "IfNotPresent",
            "resources": {
                "requests": {
                    "cpu": cpu_request.as_deref().unwrap_or(env_resources.cpu_request.as_str()),
                    "memory": memory_request.as_deref().unwrap_or(env_resources.memory_request.as_str()),
                },
                "limits": limits,
            },
            "securityContext": template["securityContext"].clone(),
            "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }],
        });
        settings(&w.source, &mut c, &s.settings, &main_env, keys)?;
        pod["containers"].as_array_mut().expect("containers").push(c);
    }
    let volumes = pod["volumes"].as_array_mut().expect("the pod has volumes");
    if has_files {
        volumes.push(json!({ "name": FILES_VOLUME, "configMap": { "name": files_name(app), "items": items } }));
    }
    for claim in &w.claims {
        volumes.push(json!({ "name": claim.name, "persistentVolumeClaim": { "claimName": claim.name } }));
    }
    // Service ports, Ingress paths, NetworkPolicy.
    if !w.ports.is_empty() {
        if let Some(service) = find(objects, "Service", name) {
            // The workload's ports replace the golden path's `http` port; ports the environment
            // adds (a mesh's metrics port) stay.
            let mut ports: Vec<Value> = w
                .ports
                .iter()
                .map(|p| json!({ "name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": p.protocol }))
                .collect();
            let others = service["spec"]["ports"].as_array().into_iter().flatten().filter(|p| p["name"] != "http");
            ports.extend(
                others
                    .filter(|o| !w.ports.iter().any(|p| o["name"] == p.name.as_str() || o["port"] == p.port))
                    .cloned(),
            );
            service["spec"]["ports"] = Value::Array(ports);
        }
        if let Some(sm) = find(objects, "ServiceMonitor", name)
            && sm["spec"]["endpoints"][0]["port"] == "http"
        {
            let metrics = w.ports.iter().find(|p| p.name == "http" || p.name == "metrics").unwrap_or(&w.ports[0]);
            sm["spec"]["endpoints"][0]["port"] = metrics.name.as_str().into();
        }
    }
    if let Some(ing) = find(objects, "Ingress", name) {
        let default_port = w.ports.first().map(|p| p.port);
        let paths: Vec<Value> = if w.routes.is_empty() {
            match default_port {
                Some(port) => vec![
                    json!({ "path": "/", "pathType": "Prefix", "backend": { "service": { "name": name, "port": { "number": port } } } }),
                ],
                None => ing["spec"]["rules"][0]["http"]["paths"].as_array().cloned().unwrap_or_default(),
            }
        } else {
            w.routes
                .iter()
                .map(|r| {
                    let port = if w.ports.is_empty() { json!({ "name": "http" }) } else { json!({ "number": r.port }) };
                    json!({ "path": r.path, "pathType": "Prefix", "backend": { "service": { "name": name, "port": port } } })
                })
                .collect()
        };
        ing["spec"]["rules"][0]["http"]["paths"] = Value::Array(paths);
    }
    if let Some(np) = find(objects, "NetworkPolicy", name) {
        let extra: Vec<Value> =
            w.ports.iter().map(|p| json!({ "port": p.target_port, "protocol": p.protocol })).collect();
        if let Some(rules) = np["spec"]["ingress"].as_array_mut() {
            // Only the rules that admit the app's own port (not a mesh's or scraper's ports).
            let app_port = json!({ "port": "http", "protocol": "TCP" });
            for rule in rules {
                if let Some(ports) = rule["ports"].as_array_mut().filter(|p| p.contains(&app_port)) {
                    for p in &extra {
                        if !ports.contains(p) {
                            ports.push(p.clone());
                        }
                    }
                }
            }
        }
        if let Some(egress) = np["spec"]["egress"].as_array_mut() {
            for d in &w.dependencies {
                let mut rule = json!({ "to": [{
                    "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": d.namespace } },
                    "podSelector": { "matchLabels": { crate::render::labels::NAME: d.app } },
                }] });
                if let Some(port) = d.port {
                    rule["ports"] = json!([{ "port": port, "protocol": "TCP" }]);
                }
                egress.push(rule);
            }
        }
    }
    // New objects: the files' ConfigMap and the claims.
    let mut added = Vec::new();
    if has_files {
        let mut cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&files_name(app)) });
        if !data.is_empty() {
            cm["data"] = Value::Object(data);
        }
        if !binary.is_empty() {
            cm["binaryData"] = Value::Object(binary);
        }
        added.push(cm);
    }
    for claim in &w.claims {
        let mut pvc = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(&claim.name),
            "spec": { "accessModes": [claim.access_mode], "resources": { "requests": { "storage": claim.size } } },
        });
        if let Some(class) = &claim.storage_class {
            pvc["spec"]["storageClassName"] = class.as_str().into();
        }
        added.push(pvc);
    }
    // Before the Deployment, as Helm orders ConfigMaps and claims.
    let at = objects.iter().position(|o| o.kind() == "Deployment").unwrap_or(objects.len());
    for (i, o) in added.into_iter().enumerate() {
        objects.insert(at + i, Manifest::from_rendered(o));
    }
    crate::overlay::add_manifest_files(app, &w.objects, objects)
}
