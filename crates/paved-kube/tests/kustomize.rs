//! Overlays side by side with `kubectl kustomize`: each case applies one overlay to the objects
//! paved renders for `my-service` in production, and compares paved's result with what
//! kustomize makes of the same base and the overlay as a strategic-merge patch.
//!
//! Where paved deliberately differs (README, "Escape hatches"), the case says why and is
//! compared with `kubectl patch --local --type strategic` (apimachinery's strategic merge
//! patch) instead, or is refused; each case also asserts what kustomize does, so the
//! documented difference is measured, not assumed. Needs kubectl (CI fails without it).

use std::path::Path;
use std::process::Command;

use paved_core::{DeployRequest, Manifest, ManifestFile, Manifests, OrgConfig, Renderer, ResolvedApp};
use paved_kube::KubeRenderer;
use paved_kube::overlay::apply_overlays;
use serde_json::Value;

/// What paved's result is compared with.
enum Paved {
    /// The same objects as `kubectl kustomize`.
    Kustomize,
    /// The same target object as `kubectl patch --local --type strategic`, document by document.
    Smp,
    /// The same target object as `kubectl patch --local --type merge` (RFC 7386).
    JsonMerge,
    /// Refused at plan time, with this in the error.
    Refused(&'static str),
    /// Checked by this function on paved's target object.
    Own(fn(&Value)),
}

/// What kustomize does with the overlay (asserted, so the README's table stays true).
#[derive(Debug, Clone, Copy, PartialEq)]
enum KustomizeDoes {
    /// Gives paved's result.
    Same,
    /// Leaves the target as it was, without an error.
    Unchanged,
    /// Fails.
    Error,
    /// Writes a changed object that the API server would reject, without an error.
    Accepts,
    /// Copies a `$` directive into the object as a field.
    Literal,
}

struct Case {
    name: &'static str,
    overlay: &'static str,
    paved: Paved,
    kustomize: KustomizeDoes,
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n";

fn cases() -> Vec<Case> {
    use KustomizeDoes::*;
    use Paved::*;
    let case = |name, overlay, paved, kustomize| Case { name, overlay, paved, kustomize };
    vec![
        // 1. Container ports merge by containerPort (+ protocol).
        case(
            "a container port is added, matched by containerPort",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        ports:\n        - containerPort: 9090\n          name: metrics\n",
            Paved::Kustomize,
            Same,
        ),
        // 2. volumeMounts merge by mountPath.
        case(
            "a second mount of the tmp volume is added, matched by mountPath",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        volumeMounts:\n        - name: tmp\n          mountPath: /var/cache/nginx\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "another volume mounted at /tmp swaps the mount",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        volumeMounts:\n        - name: cache\n          mountPath: /tmp\n      volumes:\n      - name: cache\n        emptyDir: {}\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "a mount of a volume the pod does not have",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        volumeMounts:\n        - name: cache\n          mountPath: /tmp\n",
            Refused("mounts volume \"cache\", which the pod does not have"),
            Accepts,
        ),
        // 3. Service ports merge by port (+ protocol).
        case(
            "a Service port changed, with its protocol",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  ports:\n  - port: 80\n    protocol: TCP\n    targetPort: 8081\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "a Service port changed, protocol left to its default (TCP)",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  ports:\n  - port: 80\n    targetPort: 8081\n",
            Smp,
            Unchanged,
        ),
        // 4. topologySpreadConstraints merge by topologyKey + whenUnsatisfiable.
        case(
            "the hostname spread constraint changed",
            "spec:\n  template:\n    spec:\n      topologySpreadConstraints:\n      - topologyKey: kubernetes.io/hostname\n        whenUnsatisfiable: ScheduleAnyway\n        maxSkew: 2\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "a spread constraint named by topologyKey alone",
            "spec:\n  template:\n    spec:\n      topologySpreadConstraints:\n      - topologyKey: kubernetes.io/hostname\n        maxSkew: 2\n",
            Smp,
            Unchanged,
        ),
        case(
            "a new spread constraint without maxSkew",
            "spec:\n  template:\n    spec:\n      topologySpreadConstraints:\n      - topologyKey: kubernetes.io/hostname\n        whenUnsatisfiable: DoNotSchedule\n",
            Refused("maxSkew is required"),
            Accepts,
        ),
        // 5. Order: the patch's items first.
        case(
            "env vars added before the existing ones, in the overlay's order",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        env:\n        - name: HOST\n          value: example.com\n        - name: URL\n          value: https://$(HOST)/\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "a sidecar container comes first",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: proxy\n        image: envoyproxy/envoy:v1.31.0\n        args: [-c, /etc/envoy/envoy.yaml]\n",
            Paved::Kustomize,
            Same,
        ),
        // 6. Directives.
        case(
            "$patch: replace on a mapping",
            "spec:\n  template:\n    spec:\n      securityContext:\n        $patch: replace\n        runAsNonRoot: true\n        runAsUser: 20000\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "$patch: replace as a list element replaces the list",
            "spec:\n  template:\n    spec:\n      topologySpreadConstraints:\n      - $patch: replace\n      - topologyKey: topology.kubernetes.io/zone\n        whenUnsatisfiable: DoNotSchedule\n        maxSkew: 1\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            // kubectl patch takes any item with `$patch: replace` for the list's replace marker
            // and drops the item (containers: []); kustomize keeps the old item.
            "$patch: replace on a list item replaces the item",
            "spec:\n  template:\n    spec:\n      containers:\n      - $patch: replace\n        name: my-service\n        image: ghcr.io/company/my-service:v1.2.4\n        ports:\n        - containerPort: 8080\n          name: http\n",
            Own(|d| {
                let containers = &d["spec"]["template"]["spec"]["containers"];
                assert_eq!(
                    containers,
                    &serde_json::json!([{"name": "my-service", "image": "ghcr.io/company/my-service:v1.2.4",
                        "ports": [{"containerPort": 8080, "name": "http"}]}])
                );
            }),
            Unchanged,
        ),
        case(
            "$patch: delete of a volume and its mount, matched by mountPath",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        volumeMounts:\n        - mountPath: /tmp\n          $patch: delete\n      volumes:\n      - name: tmp\n        $patch: delete\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "$patch: delete of the port the probes use",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        ports:\n        - containerPort: 8080\n          protocol: TCP\n          $patch: delete\n",
            Refused("httpGet names the port \"http\", which the container does not have"),
            Accepts,
        ),
        case(
            "$patch: delete on a mapping",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        startupProbe:\n          $patch: delete\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "$patch: merge at the top is the strategic merge",
            "$patch: merge\nspec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        env:\n        - name: LOG_LEVEL\n          value: debug\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "$patch: json-merge at the top is an RFC 7386 merge patch",
            "$patch: json-merge\nspec:\n  template:\n    spec:\n      topologySpreadConstraints:\n      - topologyKey: kubernetes.io/hostname\n        whenUnsatisfiable: DoNotSchedule\n        maxSkew: 1\n",
            JsonMerge,
            Error,
        ),
        case(
            "$patch: replace at the top replaces the object, keeping namespace and ownership labels",
            "$patch: replace\nspec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: my-service\n      app.kubernetes.io/instance: my-service-production\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: my-service\n        app.kubernetes.io/instance: my-service-production\n    spec:\n      containers:\n      - name: my-service\n        image: ghcr.io/company/my-service:v1.2.3\n",
            Own(|d| {
                assert_eq!(d["metadata"]["namespace"], "my-service-production");
                assert_eq!(d["metadata"]["labels"]["paved.dev/team"], "platform");
                assert!(d["spec"].get("strategy").is_none(), "replaced, not merged");
                assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
                assert!(d["spec"]["template"]["spec"]["containers"][0].get("securityContext").is_none());
                assert!(d.get("$patch").is_none());
            }),
            Unchanged,
        ),
        case(
            "$retainKeys switches the strategy to Recreate",
            "spec:\n  strategy:\n    $retainKeys: [type]\n    type: Recreate\n",
            Smp,
            Literal,
        ),
        case(
            "strategy Recreate with rollingUpdate: null",
            "spec:\n  strategy:\n    type: Recreate\n    rollingUpdate: null\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "strategy Recreate alone keeps rollingUpdate, which Recreate forbids",
            "spec:\n  strategy:\n    type: Recreate\n",
            Refused("rollingUpdate may not be set when type is Recreate"),
            Accepts,
        ),
        case(
            "$setElementOrder puts the sidecar last",
            "spec:\n  template:\n    spec:\n      $setElementOrder/containers:\n      - name: my-service\n      - name: proxy\n      containers:\n      - name: proxy\n        image: envoyproxy/envoy:v1.31.0\n",
            Smp,
            Literal,
        ),
        case(
            "$deleteFromPrimitiveList removes a finalizer",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n  finalizers: [example.com/a, example.com/b]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n  $deleteFromPrimitiveList/finalizers: [example.com/a]\n",
            Smp,
            Literal,
        ),
        // 7. Empty lists change nothing.
        case(
            "an empty list leaves the list alone",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        volumeMounts: []\n        ports: []\n      imagePullSecrets: []\n",
            Paved::Kustomize,
            Same,
        ),
        // 8. Wrong shapes.
        case(
            "a missing dash turns the list into a mapping",
            "spec:\n  template:\n    spec:\n      containers:\n        name: my-service\n        image: ghcr.io/company/my-service:v1.2.4\n",
            Refused("spec.template.spec.containers: is a mapping, but this field is a list"),
            Error,
        ),
        case(
            "a non-string $patch",
            "spec:\n  template:\n    spec:\n      securityContext:\n        $patch: true\n",
            Refused("unknown $patch directive true"),
            Error,
        ),
        case(
            "an item without its merge key",
            "spec:\n  template:\n    spec:\n      containers:\n      - image: ghcr.io/company/my-service:v1.2.4\n",
            Refused("has no name, which items of this list are matched by"),
            Accepts,
        ),
        case(
            "a directive in a list that is replaced whole",
            "spec:\n  template:\n    spec:\n      tolerations:\n      - key: dedicated\n        $patch: delete\n",
            Refused("has $patch, but this list is replaced whole"),
            Literal,
        ),
        case(
            "a misspelt field",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        resource:\n          limits:\n            cpu: '2'\n",
            Refused("unknown field"),
            Accepts,
        ),
        case(
            "YAML merge keys are resolved",
            "spec:\n  template:\n    spec:\n      containers:\n      - &app\n        name: my-service\n        env:\n        - name: MODE\n          value: web\n      initContainers:\n      - <<: *app\n        name: migrate\n        image: ghcr.io/company/my-service:v1.2.3\n        args: [migrate]\n",
            Paved::Kustomize,
            Same,
        ),
        // 9 and more: env, volumes, imagePullSecrets and containers added and deleted.
        case(
            "imagePullSecrets added, then one deleted and one added",
            "spec:\n  template:\n    spec:\n      imagePullSecrets: [{name: a}, {name: b}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n      imagePullSecrets:\n      - name: c\n      - name: a\n        $patch: delete\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "a container added, then deleted",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: proxy\n        image: envoyproxy/envoy:v1.31.0\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n      containers:\n      - name: proxy\n        $patch: delete\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "an env var changed and one removed with null",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        env:\n        - {name: A, value: '1'}\n        - {name: B, value: '2'}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        env:\n        - {name: B, value: '3'}\n        - {name: A, $patch: delete}\n        livenessProbe:\n          timeoutSeconds: null\n",
            Paved::Kustomize,
            Same,
        ),
        case(
            "a custom resource's list is replaced whole",
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: my-service\nspec:\n  endpoints:\n  - port: http\n    interval: 15s\n",
            Paved::Kustomize,
            Same,
        ),
    ]
}

fn base() -> Vec<Manifest> {
    let request =
        DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production").unwrap().with_replicas(3);
    let app = ResolvedApp::resolve(&OrgConfig::default(), &request).unwrap();
    KubeRenderer.render(&app).unwrap().iter().cloned().collect()
}

/// The overlay's documents, each with `apiVersion` and `kind` (Deployment when left out).
fn documents(overlay: &str) -> Vec<Value> {
    let text = if overlay.starts_with("apiVersion:") { overlay.to_string() } else { format!("{DEPLOYMENT}{overlay}") };
    ManifestFile::parse("overlay.yaml", &text).unwrap().documents.into_iter().map(|d| d.value).collect()
}

fn target_of(doc: &Value) -> (String, String) {
    (doc["kind"].as_str().unwrap().to_string(), doc["metadata"]["name"].as_str().unwrap().to_string())
}

fn find<'a>(objects: &'a [Value], (kind, name): &(String, String)) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind.as_str() && o["metadata"]["name"] == name.as_str())
}

/// Runs `kubectl kustomize` on the base and the overlay's documents as strategic-merge
/// patches; the objects, or None when kustomize fails.
fn kustomize(kubectl: &Path, base: &[Manifest], docs: &[Value]) -> Option<Vec<Value>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), Manifests::new(base.to_vec()).to_yaml()).unwrap();
    let mut kustomization = String::from("resources: [base.yaml]\npatches:\n");
    for (i, doc) in docs.iter().enumerate() {
        let mut doc = doc.clone();
        // kustomize matches a patch to its target by namespace too.
        doc["metadata"]["namespace"] = "my-service-production".into();
        std::fs::write(dir.path().join(format!("patch-{i}.yaml")), serde_json::to_string(&doc).unwrap()).unwrap();
        kustomization.push_str(&format!("- path: patch-{i}.yaml\n"));
    }
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization).unwrap();
    let out = Command::new(kubectl).arg("kustomize").arg(dir.path()).output().unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Some(ManifestFile::parse("kustomize", &text).unwrap().documents.into_iter().map(|d| d.value).collect())
}

/// Runs `kubectl patch --local` with each document in turn on the target object.
fn kubectl_patch(kubectl: &Path, object: &Value, docs: &[Value], kind: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut current = object.clone();
    for doc in docs {
        let file = dir.path().join("object.json");
        std::fs::write(&file, serde_json::to_string(&current).unwrap()).unwrap();
        let mut patch = doc.clone();
        if let Some(map) = patch.as_object_mut() {
            map.remove("$patch");
        }
        let out = Command::new(kubectl)
            .args(["patch", "--local", "-o", "json", "--type", kind, "-f"])
            .arg(&file)
            .arg("-p")
            .arg(serde_json::to_string(&patch).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl patch: {}", String::from_utf8_lossy(&out.stderr));
        current = serde_json::from_slice(&out.stdout).unwrap();
    }
    current
}

/// Where two values differ: `path: paved | reference`, one line each.
fn diff(mine: &Value, theirs: &Value) -> String {
    fn walk(path: String, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let (l, r) = (x.get(key).unwrap_or(&Value::Null), y.get(key).unwrap_or(&Value::Null));
                    walk(format!("{path}.{key}"), l, r, out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (l, r)) in x.iter().zip(y).enumerate() {
                    walk(format!("{path}[{i}]"), l, r, out);
                }
            }
            _ if a != b => out.push(format!("\n  {path}: {a} | {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(String::new(), mine, theirs, &mut out);
    out.concat()
}

fn has_directive(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

#[test]
fn overlays_match_kustomize_or_differ_as_documented() {
    let Some(kubectl) = paved_testkit::tool("kubectl", "install kubectl (it carries kustomize)") else { return };
    let base = base();
    let base_values: Vec<Value> = base.iter().map(|m| m.value().clone()).collect();
    let mut failures = Vec::new();
    // Every result paved accepts, for kubernetes-validate below.
    let accepted = tempfile::tempdir().unwrap();
    let mut accepted_files = Vec::new();
    for case in cases() {
        let docs = documents(case.overlay);
        let target = target_of(&docs[0]);
        let before = find(&base_values, &target).expect("the case targets a rendered object").clone();
        let text = docs.iter().map(|d| serde_json::to_string(d).unwrap()).collect::<Vec<_>>().join("\n---\n");
        let mut objects = base.clone();
        let file = ManifestFile::parse("overlay.yaml", &text).unwrap();
        let paved = apply_overlays(&[file], &mut objects)
            .map(|()| objects.iter().map(|m| m.value().clone()).collect::<Vec<_>>());
        let kustomized = kustomize(&kubectl, &base, &docs);
        if let Ok(objects) = &paved {
            // Core kinds only: kubernetes-validate has no schema for the ServiceMonitor CRD.
            let core: Vec<Manifest> = objects
                .iter()
                .filter(|o| o["kind"] != "ServiceMonitor")
                .map(|o| Manifest::new(o.clone()).unwrap())
                .collect();
            let file = accepted.path().join(format!("case-{}.yaml", accepted_files.len()));
            std::fs::write(&file, Manifests::new(core).to_yaml()).unwrap();
            accepted_files.push((case.name, file));
        }
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(format!("{}: {what}", case.name));
            }
        };
        // What kustomize does, as the table says.
        let kz_target = kustomized.as_ref().and_then(|k| find(k, &target).cloned());
        let same = |k: &Vec<Value>| {
            paved.as_ref().is_ok_and(|p| p.len() == k.len() && p.iter().all(|o| find(k, &target_of(o)) == Some(o)))
        };
        let observed = match (&kustomized, &kz_target) {
            (None, _) => KustomizeDoes::Error,
            (Some(k), _) if same(k) => KustomizeDoes::Same,
            (Some(_), Some(t)) if has_directive(t) => KustomizeDoes::Literal,
            (Some(_), Some(t)) if *t == before => KustomizeDoes::Unchanged,
            (Some(_), _) => KustomizeDoes::Accepts,
        };
        check(observed == case.kustomize, format!("kustomize: expected {:?}, observed {observed:?}", case.kustomize));
        match case.paved {
            Paved::Kustomize => match (&paved, &kustomized) {
                (Ok(p), Some(k)) => {
                    for mine in p {
                        let theirs = find(k, &target_of(mine)).unwrap_or(&Value::Null);
                        check(mine == theirs, format!("differs from kustomize: {}", diff(mine, theirs)));
                    }
                    check(p.len() == k.len(), format!("{} objects, kustomize {}", p.len(), k.len()));
                }
                (Err(e), _) => check(false, format!("paved refused it: {e}")),
                (_, None) => check(false, "kustomize failed".into()),
            },
            Paved::Smp | Paved::JsonMerge => {
                let kind = if matches!(case.paved, Paved::Smp) { "strategic" } else { "merge" };
                let reference = kubectl_patch(&kubectl, &before, &docs, kind);
                match &paved {
                    Ok(p) => {
                        let mine = find(p, &target).unwrap();
                        check(*mine == reference, format!("differs from kubectl patch: {}", diff(mine, &reference)));
                    }
                    Err(e) => check(false, format!("paved refused it: {e}")),
                }
            }
            Paved::Refused(needle) => match &paved {
                Err(e) => check(e.to_string().contains(needle), format!("error {e:?} lacks {needle:?}")),
                Ok(_) => check(false, "paved accepted it".into()),
            },
            Paved::Own(assert) => match &paved {
                Ok(p) => assert(find(p, &target).unwrap()),
                Err(e) => check(false, format!("paved refused it: {e}")),
            },
        }
    }
    assert!(failures.is_empty(), "{} of the cases fail:\n{}", failures.len(), failures.join("\n\n"));
    // What paved accepts, the API's schema accepts too (Kubernetes 1.29 and 1.37, strict).
    let Some(validate) = paved_testkit::tool("kubernetes-validate", "pip install kubernetes-validate (into .venv)")
    else {
        return;
    };
    let out = Command::new(validate)
        .args(["-k", "1.29", "-k", "1.37", "--strict", "--quiet"])
        .args(accepted_files.iter().map(|(_, f)| f))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubernetes-validate refused an overlay result paved accepted ({} results):\n{}",
        accepted_files.len(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn errors_name_the_file_and_line_of_the_field_at_fault() {
    let mut objects = base();
    let text = format!(
        "{DEPLOYMENT}spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        ports:\n        - containerPort: 8080\n          protocol: TCP\n          $patch: delete\n"
    );
    let file = ManifestFile::parse("overlay.yaml", &text).unwrap();
    let e = apply_overlays(&[file], &mut objects).unwrap_err();
    // The probe is not in the overlay: the error points at the overlay's container.
    assert!(e.to_string().starts_with("overlay.yaml:9: the overlay leaves Deployment/my-service invalid"), "{e}");
    let mut objects = base();
    let text = format!(
        "{DEPLOYMENT}spec:\n  template:\n    spec:\n      containers:\n      - name: my-service\n        env:\n          name: A\n"
    );
    let e = apply_overlays(&[ManifestFile::parse("overlay.yaml", &text).unwrap()], &mut objects).unwrap_err();
    assert_eq!(
        e.to_string(),
        "overlay.yaml:10: Deployment/my-service: spec.template.spec.containers[0].env: is a mapping, but this field is a list"
    );
    assert_eq!(e.hint(), Some("start each item of the list with `- ` (a missing dash turns a list into a mapping)"));
    assert_eq!(objects, base(), "nothing is half-applied");
}
