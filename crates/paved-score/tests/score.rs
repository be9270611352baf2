//! Score workloads end to end in the library: validated, translated, rendered by the golden
//! path, and strictly valid Kubernetes (kubernetes-validate, 1.29 and 1.37).

use std::path::{Path, PathBuf};
use std::process::Command;

use paved_core::workload::EnvValue;
use paved_core::{ErrorKind, OrgConfig, Renderer, ResolvedApp};
use paved_kube::KubeRenderer;
use paved_score::{ScoreFlags, ScoreWorkload, translate};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// An organisation with a Vault PostgreSQL server and Redis provisioners: in-cluster for dev
/// and staging, from the secret store in production.
fn config() -> OrgConfig {
    OrgConfig::parse(
        "paved.toml",
        r#"
[databases.main]
backend = "vault"
engine = "postgres"
host = "db.internal"
port = 5432
admin_username = "vault_admin"
admin_password = "vault://secret/platform/db-admin#password"

[[provisioners]]
type = "redis"
environments = ["dev", "staging"]
outputs = { host = "${name}.${namespace}.svc.cluster.local", port = "6379", password = "k8s://${name}#password" }
objects = """
apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  selector: {redis.example.com/instance: "${name}"}
  ports: [{port: 6379, targetPort: 6379, name: redis}]
"""

[[provisioners]]
type = "redis"
environments = ["production"]
outputs = { host = "vault://secret/${team}/redis#host", port = "6379" }

[[provisioners]]
type = "Resource-One"
outputs = { thing = "${params.extra.data}" }

[[provisioners]]
type = "Type-Three"
objects = """
apiVersion: v1
kind: ConfigMap
metadata: {name: "${name}"}
data: {class: "${class}", team: "${team}"}
"""
"#,
    )
    .unwrap()
}

fn load(name: &str) -> ScoreWorkload {
    ScoreWorkload::load(&data(name)).unwrap()
}

fn objects(name: &str, env: &str, flags: &ScoreFlags) -> Vec<Value> {
    let config = config();
    let deploy = translate(&load(name), &config, env, flags).unwrap();
    let app = ResolvedApp::resolve(&config, &deploy.request).unwrap();
    KubeRenderer.render(&app).unwrap().iter().map(|m| m.value().clone()).collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

fn env_of(container: &Value) -> Vec<(String, Value)> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.get("value").or(e.get("valueFrom")).cloned().unwrap()))
        .collect()
}

#[test]
fn samples_render_to_strictly_valid_objects() {
    let dir = tempfile::tempdir().unwrap();
    let image = ScoreFlags::new().image("ghcr.io/company/app:v1.0.0");
    let mut files = Vec::new();
    for (sample, env, flags) in [
        ("full.yaml", "staging", image.clone()),
        ("deprecated.yaml", "dev", ScoreFlags::new()),
        ("hello.yaml", "production", ScoreFlags::new()),
        ("service.yaml", "staging", ScoreFlags::new()),
        ("backend.yaml", "staging", ScoreFlags::new()),
        ("backend.yaml", "production", ScoreFlags::new()),
    ] {
        let config = config();
        let deploy = translate(&load(sample), &config, env, &flags).unwrap();
        let app = ResolvedApp::resolve(&config, &deploy.request).unwrap();
        let path = dir.path().join(format!("{sample}-{env}.yaml"));
        std::fs::write(&path, KubeRenderer.render(&app).unwrap().to_yaml()).unwrap();
        files.push(path);
    }
    let Some(tool) = paved_testkit::tool("kubernetes-validate", "pip install kubernetes-validate (into .venv)") else {
        return;
    };
    let out =
        Command::new(tool).args(["-k", "1.29", "-k", "1.37", "--strict", "--quiet"]).args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Custom resources have no schema in kubernetes-validate; they are the only lines allowed.
    let unexpected: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            !(l.starts_with("WARN ") && (l.contains("kind ServiceMonitor") || l.contains("kind VaultDynamicSecret")))
        })
        .collect();
    assert!(out.status.success() && unexpected.is_empty(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_full_sample_renders_every_field() {
    let o = objects("full.yaml", "staging", &ScoreFlags::new().image("ghcr.io/company/app:v1.0.0"));
    let d = find(&o, "Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let main = &pod["containers"][0];
    // The first container is the app container (no container is named after the workload).
    assert_eq!(main["name"], "example-workload-name123");
    assert_eq!(main["image"], "ghcr.io/company/app:v1.0.0", "the flags' image overrides the file");
    assert_eq!(main["command"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(main["args"], serde_json::json!(["hello", "world", "extra-value"]));
    let env = env_of(main);
    assert!(env.contains(&("WORKLOAD".into(), "example-workload-name123".into())), "{env:?}");
    assert!(env.contains(&("OWNER".into(), "something else".into())), "{env:?}");
    // `$${…}` is a literal `${…}`; Kubernetes reads `$$` as `$`, so it is written doubled.
    assert!(env.contains(&("LITERAL".into(), "$${not-a-placeholder}".into())), "{env:?}");
    assert_eq!(main["resources"]["requests"], serde_json::json!({"cpu": "1000m", "memory": "10Gi"}));
    assert_eq!(main["resources"]["limits"], serde_json::json!({"cpu": "1.5", "memory": "12Gi"}));
    assert_eq!(
        main["readinessProbe"]["httpGet"]["httpHeaders"][0],
        serde_json::json!({"name": "SOME_HEADER", "value": "some-value-here"})
    );
    // Score's `host` "is equivalent to a Host HTTP header"; Kubernetes' `host` would probe
    // another machine.
    assert_eq!(
        main["readinessProbe"]["httpGet"]["httpHeaders"][1],
        serde_json::json!({"name": "Host", "value": "127.0.0.1"})
    );
    assert!(main["readinessProbe"]["httpGet"].get("host").is_none());
    assert_eq!(main["livenessProbe"]["httpGet"]["path"], "/livez");
    // The second container: the image given on the command line (`image: .`), exec probes.
    let second = &pod["containers"][1];
    assert_eq!(second["name"], "container-two2");
    assert_eq!(second["image"], "ghcr.io/company/app:v1.0.0");
    assert_eq!(second["readinessProbe"]["exec"]["command"][0], "/bin/check");
    assert_eq!(second["securityContext"], main["securityContext"], "sidecars are as restricted as the app");
    // Files: one ConfigMap, mounted by sub path, modes kept, binary content as binaryData.
    let cm = o
        .iter()
        .find(|x| x["kind"] == "ConfigMap" && x["metadata"]["name"] == "example-workload-name123-files")
        .unwrap();
    assert_eq!(cm["data"]["container-one1-0"], "file content for the workload\n");
    assert_eq!(cm["data"]["container-one1-1"], "some multiline\ncontent for example-workload-name123\n");
    assert_eq!(cm["binaryData"]["container-one1-2"], "aGVsbG8=");
    let files = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "paved-files").unwrap();
    assert_eq!(files["configMap"]["items"][0]["mode"], 0o600);
    let mounts = main["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&serde_json::json!({"name": "paved-files", "mountPath": "/my/file", "subPath": "container-one1-0", "readOnly": true})));
    // Volumes: claims, mounted with sub path and read-only.
    assert!(mounts.contains(&serde_json::json!({"name": "example-workload-name123-volume-name", "mountPath": "/mnt/something", "subPath": "sub/path"})));
    assert!(mounts.contains(&serde_json::json!({"name": "example-workload-name123-volume-two", "mountPath": "/mnt/something-else", "readOnly": true})));
    let pvc = o
        .iter()
        .find(|x| {
            x["kind"] == "PersistentVolumeClaim" && x["metadata"]["name"] == "example-workload-name123-volume-name"
        })
        .unwrap();
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "2Gi");
    // Service ports, and the container ports behind them.
    let svc = o.iter().find(|x| x["kind"] == "Service" && x["metadata"]["name"] == "example-workload-name123").unwrap();
    assert_eq!(
        svc["spec"]["ports"][0],
        serde_json::json!({"name": "port-one", "port": 1000, "targetPort": 10000, "protocol": "TCP"})
    );
    assert!(main["ports"].as_array().unwrap().iter().any(|p| p["containerPort"] == 10000));
    // Metadata: annotations and labels on the Deployment and its pods; paved's labels stay.
    assert_eq!(d["metadata"]["annotations"]["prefix.com/Another-Key_Annotation.2"], "something else");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["tier"], "backend");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"], "example-workload-name123");
    // Provisioned: the resource's id names the object; placeholders filled inside values.
    let three = o
        .iter()
        .find(|x| x["kind"] == "ConfigMap" && x["metadata"]["name"] == "example-workload-name123-shared-type-three")
        .unwrap();
    assert_eq!(three["data"], serde_json::json!({"class": "default", "team": "platform"}));
    assert_eq!(three["metadata"]["namespace"], "example-workload-name123-staging");
}

#[test]
fn resources_give_the_golden_path_its_dependencies() {
    let config = config();
    let staging = translate(&load("backend.yaml"), &config, "staging", &ScoreFlags::new()).unwrap();
    // The database goes through paved's database path.
    assert_eq!(staging.databases.len(), 1);
    let db = &staging.databases[0];
    assert_eq!(
        (db.team.as_str(), db.service.as_str(), db.environment.as_str(), db.engine.as_str()),
        ("platform", "backend", "staging", "postgres")
    );
    // Its outputs are references, never values.
    let secrets: Vec<String> = staging.request.secrets.iter().map(|b| format!("{}={}", b.env, b.reference)).collect();
    assert_eq!(
        secrets,
        [
            "DB_HOST=vault://secret/database/platform/backend/staging#host",
            "DB_PORT=vault://secret/database/platform/backend/staging#port",
            "DB_NAME=vault://secret/database/platform/backend/staging#database",
            "DB_USER=k8s://backend-db-credentials#username",
            "DB_PASSWORD=k8s://backend-db-credentials#password",
        ]
    );
    let o = objects("backend.yaml", "staging", &ScoreFlags::new());
    let dyn_secret = find(&o, "VaultDynamicSecret");
    assert_eq!(dyn_secret["spec"]["path"], "creds/platform_backend_staging");
    assert_eq!(dyn_secret["spec"]["destination"]["name"], "backend-db-credentials");
    let main = &find(&o, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let env = env_of(main);
    // Whole-secret variables reach the app as `--secret NAME=REF` would.
    assert!(
        env.contains(&(
            "DB_PASSWORD".into(),
            serde_json::json!({"secretKeyRef": {"name": "backend-db-credentials", "key": "password"}})
        )),
        "{env:?}"
    );
    assert!(env.iter().any(|(n, _)| n == "DB_HOST_FILE"), "agent mode: {env:?}");
    assert!(env.contains(&("REDIS_HOST".into(), "backend-cache.backend-staging.svc.cluster.local".into())), "{env:?}");
    assert!(env.contains(&("FRONTEND_URL".into(), "https://backend.staging.example.com".into())), "{env:?}");
    assert!(env.contains(&("ORDERS_URL".into(), "http://orders.orders-staging.svc.cluster.local".into())), "{env:?}");
    // route → the Ingress path to the Service port.
    let ing = find(&o, "Ingress");
    assert_eq!(ing["spec"]["rules"][0]["host"], "backend.staging.example.com");
    assert_eq!(ing["spec"]["rules"][0]["http"]["paths"][0]["path"], "/api");
    assert_eq!(ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"], 8080);
    // service → egress to exactly that workload.
    let np = find(&o, "NetworkPolicy");
    let egress = np["spec"]["egress"].as_array().unwrap();
    assert!(egress.iter().any(|r| r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "orders"
        && r["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "orders-staging"));
    // redis in staging: in-cluster objects; in production: values from the secret store.
    assert!(o.iter().any(|x| x["kind"] == "Service" && x["metadata"]["name"] == "backend-cache"));
    let production = translate(&load("backend.yaml"), &config, "production", &ScoreFlags::new()).unwrap();
    let redis = production.request.secrets.iter().find(|b| b.env == "REDIS_HOST").unwrap();
    assert_eq!(redis.reference.to_string(), "vault://secret/platform/redis#host");
    // The release will record where the request came from.
    assert!(staging.request.workload.as_ref().unwrap().source.ends_with("tests/data/backend.yaml"));
}

fn score(body: &str) -> String {
    format!(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\n  annotations: {{team.example.com/owner: pay}}\n{body}"
    )
}

fn try_translate(body: &str, env: &str) -> paved_core::Result<paved_score::ScoreDeploy> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("score.yaml");
    let w = ScoreWorkload::parse(&path, &score(body))?;
    translate(&w, &config(), env, &ScoreFlags::new())
}

fn main_env(body: &str) -> Vec<(String, EnvValue)> {
    let d = try_translate(body, "staging").unwrap();
    d.request.workload.unwrap().main.env.into_iter().map(|v| (v.name, v.value)).collect()
}

#[test]
fn placeholder_forms() {
    let body = |var: &str| {
        format!(
            "containers:\n  web:\n    image: nginx:1.27\n    variables:\n      X: \"{var}\"\nresources:\n  db: {{type: postgres}}\n  cache: {{type: redis}}\n  dns: {{type: dns}}\n  vol: {{type: volume}}\n"
        )
    };
    let text = |s: &str| EnvValue::Text(s.into());
    let cases: &[(&str, EnvValue)] = &[
        ("${metadata.name}", text("web")),
        (r"${metadata.annotations.team\\.example\\.com/owner}", text("pay")),
        ("a-${metadata.name}-b", text("a-web-b")),
        ("$${metadata.name}", text("${metadata.name}")),
        ("$$", text("$")),
        ("${resources.cache.host}:${resources.cache.port}", text("web-cache.web-staging.svc.cluster.local:6379")),
        ("${resources.dns.host}", text("web.staging.example.com")),
        ("${resources.vol}", text("web-vol")),
        ("${resources.db.host}", EnvValue::Secret("X".into())),
        (
            "postgres://${resources.db.username}@${resources.db.host}",
            EnvValue::Composed("postgres://$(PAVED_SECRET_1)@$(PAVED_SECRET_2)".into()),
        ),
        ("$(HOME)-${resources.db.host}", EnvValue::Composed("$$(HOME)-$(PAVED_SECRET_1)".into())),
    ];
    for (var, want) in cases {
        let env = main_env(&body(var));
        assert_eq!(&env[0].1, want, "{var}");
    }
    let bad: &[(&str, &str)] = &[
        ("${metadata.nam}", "${metadata.nam} does not exist"),
        ("${resources.dbs.host}", "the workload has no resource \"dbs\""),
        ("${resources.db.hots}", "resource \"db\" has no output \"hots\""),
        ("${resources.db}", "${resources.db} needs an output"),
        ("${resources.db.host.x}", "goes deeper than an output"),
        ("${env.HOME}", "is neither metadata nor a resource"),
        ("${unclosed", "has no closing"),
    ];
    for (var, want) in bad {
        let e = try_translate(&body(var), "staging").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(want), "{var}: {e}");
        assert!(e.to_string().contains("score.yaml:9: containers.web.variables.X"), "{var}: {e}");
    }
    let e = try_translate(&body("${resources.db.hots}"), "staging").unwrap_err();
    assert!(e.hint().unwrap().contains("did you mean \"host\"?"), "{:?}", e.hint());
}

#[test]
fn unknown_and_malformed_resources_are_refused_with_a_fix() {
    let e = try_translate("containers: {web: {image: nginx:1.27}}\nresources:\n  qq: {type: amqp}\n", "staging")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("resources.qq.type: no provisioner for resource type \"amqp\""), "{e}");
    let hint = e.hint().unwrap();
    assert!(hint.contains("[[provisioners]]\ntype = \"amqp\"\nenvironments = [\"staging\"]"), "{hint}");
    // A provisioner for other environments only.
    let e =
        try_translate("containers: {web: {image: nginx:1.27}}\nresources:\n  qq: {type: redis}\n", "qa").unwrap_err();
    assert!(
        e.to_string().contains("is not an environment") || e.to_string().contains("only in dev, staging, production"),
        "{e}"
    );
    // A typo of a type paved knows.
    let e = try_translate("containers: {web: {image: nginx:1.27}}\nresources:\n  qq: {type: postgress}\n", "staging")
        .unwrap_err();
    assert!(e.hint().unwrap().starts_with("did you mean \"postgres\"?"), "{:?}", e.hint());
    // A database engine without a server in paved.toml.
    let e = try_translate("containers: {web: {image: nginx:1.27}}\nresources:\n  qq: {type: mysql}\n", "staging")
        .unwrap_err();
    assert!(e.to_string().contains("no database server of paved.toml runs mysql for staging"), "{e}");
    // `image: .` without --image.
    let e = try_translate("containers: {web: {image: .}}\n", "staging").unwrap_err();
    assert_eq!(e.hint(), Some("set the `image` of `ScoreFlags`, e.g. ghcr.io/company/my-service:v1.2.3"));
    let cases: &[(&str, &str)] = &[
        ("  rr: {type: route, params: {port: 0}}\n", "resources.rr.params.port: 0 is not a port"),
        ("  rr: {type: route, params: {path: api}}\n", "\"api\" is not a plain absolute path"),
        ("  vv: {type: volume, params: {size: lots}}\n", "resources.vv.params.size"),
        ("  vv: {type: volume, params: {access_mode: ReadWriteSome}}\n", "\"ReadWriteSome\" is not an access mode"),
        ("  ss: {type: service, params: {workload: Not_A_Name}}\n", "resources.ss.params.workload"),
    ];
    for (resource, want) in cases {
        let e =
            try_translate(&format!("containers: {{web: {{image: nginx:1.27}}}}\nresources:\n{resource}"), "staging")
                .unwrap_err();
        assert!(e.to_string().contains(want), "{resource}: {e}");
    }
}

/// What another team could try through a Score file.
#[test]
fn a_score_file_cannot_reach_beyond_its_app() {
    // Another app's host.
    let e = try_translate("containers: {web: {image: nginx:1.27}}\nresources:\n  rr: {type: route, params: {host: shop.staging.example.com}}\n", "staging").unwrap_err();
    assert!(e.to_string().contains("is not this app's host"), "{e}");
    // Files from outside the Score file's directory, or through a link.
    for source in ["../secrets.txt", "/etc/passwd"] {
        let e = try_translate(
            &format!("containers:\n  web:\n    image: nginx:1.27\n    files:\n      /x: {{source: \"{source}\"}}\n"),
            "staging",
        )
        .unwrap_err();
        assert!(e.to_string().contains("is outside the Score file's directory"), "{source}: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.txt")).unwrap();
    let w = ScoreWorkload::parse(
        &dir.path().join("score.yaml"),
        &score("containers:\n  web:\n    image: nginx:1.27\n    files:\n      /x: {source: link.txt}\n"),
    )
    .unwrap();
    let e = translate(&w, &config(), "staging", &ScoreFlags::new()).unwrap_err();
    assert!(e.to_string().contains("is not a regular file"), "{e}");
    // A secret output would be written into a ConfigMap.
    let e = try_translate("containers:\n  web:\n    image: nginx:1.27\n    files:\n      /x: {content: \"${resources.db.password}\"}\nresources:\n  db: {type: postgres}\n", "staging").unwrap_err();
    assert!(e.to_string().contains("uses a secret output, which would be written into a ConfigMap"), "{e}");
    // A volume path out of the volume.
    let e = try_translate("containers:\n  web:\n    image: nginx:1.27\n    volumes:\n      /data: {source: \"${resources.vv}\", path: ../other}\nresources:\n  vv: {type: volume}\n", "staging").unwrap_err();
    assert!(e.to_string().contains("leaves the volume"), "{e}");
    // A mount of something that is not one of its volumes (another app's claim).
    let e = try_translate(
        "containers:\n  web:\n    image: nginx:1.27\n    volumes:\n      /data: {source: shop-data}\n",
        "staging",
    )
    .unwrap_err();
    assert!(e.to_string().contains("is not a volume resource of this workload"), "{e}");
    // Provisioner params fill string values only: no YAML structure can be added, and the
    // objects land in the app's namespace.
    let body = "containers: {web: {image: nginx:1.27}}\nresources:\n  tt:\n    type: Type-Three\n    class: \"x\\nkind: ClusterRole\"\n";
    assert!(try_translate(body, "staging").is_err(), "the class pattern refuses a newline");
    let d = try_translate(
        "containers: {web: {image: nginx:1.27}}\nresources:\n  tt: {type: Type-Three, class: large}\n",
        "staging",
    )
    .unwrap();
    let obj = &d.request.workload.unwrap().objects[0].documents[0].value;
    assert_eq!(obj["kind"], "ConfigMap");
    assert_eq!(obj["data"]["class"], "large");
}

/// A Score file's ports in an environment with a mesh: the mesh's metrics port, scrape
/// endpoint and narrow Prometheus rule stay as the environment renders them.
#[test]
fn score_ports_keep_what_the_environment_adds() {
    let config = OrgConfig::parse(
        "paved.toml",
        "[environments.production]\nmonitoring = true\nmesh = \"istio\"\n[environments.production.tracing]\nenabled = true\nendpoint = \"http://otel-collector.observability:4317\"\n",
    )
    .unwrap();
    let w = ScoreWorkload::parse(
        Path::new("score.yaml"),
        "apiVersion: score.dev/v1b1\nmetadata: {name: web}\nservice:\n  ports:\n    www: {port: 80, targetPort: 9000}\ncontainers:\n  web:\n    image: nginx:1.27\n    variables: {MODE: prod}\n",
    )
    .unwrap();
    let deploy = translate(&w, &config, "production", &ScoreFlags::new()).unwrap();
    let app = ResolvedApp::resolve(&config, &deploy.request).unwrap();
    let o: Vec<Value> = KubeRenderer.render(&app).unwrap().iter().map(|m| m.value().clone()).collect();
    let svc = find(&o, "Service");
    let names: Vec<&str> =
        svc["spec"]["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["www", "istio-metrics"], "{svc}");
    assert_eq!(find(&o, "ServiceMonitor")["spec"]["endpoints"][0]["port"], "istio-metrics");
    let np = find(&o, "NetworkPolicy");
    for rule in np["spec"]["ingress"].as_array().unwrap() {
        let ports = rule["ports"].as_array().unwrap();
        let app_rule = ports.iter().any(|p| p["port"] == "http");
        assert_eq!(
            app_rule,
            ports.iter().any(|p| p["port"] == 9000),
            "only the app's rules admit its Score port: {rule}"
        );
    }
    // Tracing's variables and the file's both reach the app container.
    let env = env_of(&find(&o, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert!(
        env.iter().any(|(n, _)| n == "OTEL_SERVICE_NAME") && env.contains(&("MODE".into(), "prod".into())),
        "{env:?}"
    );
}

/// What the review of this issue found, each as the input that showed it.
#[test]
fn review_findings_stay_fixed() {
    // Annotations and labels that paved or the platform's controllers own are refused.
    for key in
        ["vault.hashicorp.com/agent-inject", "paved.dev/escape-hatches", "sidecar.istio.io/inject", "linkerd.io/inject"]
    {
        let text = format!(
            "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\n  annotations: {{\"{key}\": \"x\"}}\ncontainers: {{web: {{image: nginx:1.27}}}}\n"
        );
        let e = ScoreWorkload::parse(Path::new("score.yaml"), &text).unwrap_err();
        assert!(e.to_string().contains("which paved or the platform's controllers own"), "{key}: {e}");
    }
    // A directory link on the way out of the Score file's directory.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("config"), "kubeconfig").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("conf")).unwrap();
    let w = ScoreWorkload::parse(
        &dir.path().join("score.yaml"),
        &score("containers:\n  web:\n    image: nginx:1.27\n    files:\n      /x: {source: conf/config}\n"),
    )
    .unwrap();
    let e = translate(&w, &config(), "staging", &ScoreFlags::new()).unwrap_err();
    assert!(e.to_string().contains("leads outside the Score file's directory through a link"), "{e}");
    // Every `$` of plain text is doubled for Kubernetes, in variables and arguments.
    let d = try_translate("containers:\n  web:\n    image: nginx:1.27\n    args: [sh, -c, \"echo $$$$\"]\n    variables: {PRICE: \"$$5 $$(X)\"}\n", "staging").unwrap();
    let config = config();
    let app = ResolvedApp::resolve(&config, &d.request).unwrap();
    let o: Vec<Value> = KubeRenderer.render(&app).unwrap().iter().map(|m| m.value().clone()).collect();
    let main = &find(&o, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(main["args"][2], "echo $$$$", "Kubernetes shows `echo $$`");
    assert!(env_of(main).contains(&("PRICE".into(), "$$5 $$(X)".into())), "Kubernetes shows `$5 $(X)`");
    // Another container's resources are recorded as escape hatches (the organisation's bounds
    // see them), and a limit below its request is refused.
    let d = try_translate("containers:\n  web: {image: nginx:1.27}\n  side:\n    image: busybox:1.36\n    resources: {requests: {cpu: \"16\"}, limits: {cpu: \"16\"}}\n", "staging").unwrap();
    let app = ResolvedApp::resolve(&config, &d.request).unwrap();
    assert!(app.escape_hatches.iter().any(|h| h.to_string() == "cpu-request=16"), "{:?}", app.escape_hatches);
    let e = try_translate("containers:\n  web: {image: nginx:1.27}\n  side:\n    image: busybox:1.36\n    resources: {requests: {memory: 2Gi}, limits: {memory: 1Gi}}\n", "staging").unwrap_err();
    assert!(e.to_string().contains("the memory limit 1Gi is below the request 2Gi"), "{e}");
    // Route paths an API server or an ingress controller would choke on.
    for path in ["/a//b", "/%2f", "/a/../b", "/x;y", "/{x}"] {
        let e = try_translate(&format!("containers: {{web: {{image: nginx:1.27}}}}\nresources:\n  rr: {{type: route, params: {{path: \"{path}\"}}}}\n"), "staging").unwrap_err();
        assert!(e.to_string().contains("is not a plain absolute path"), "{path}: {e}");
    }
    // Names made from ids are DNS labels; a provisioned resource is not a volume.
    let d = try_translate("containers:\n  web:\n    image: nginx:1.27\n    volumes: {/data: {source: \"${resources.vv}\"}}\nresources:\n  vv: {type: volume, id: shared.data}\n", "staging").unwrap();
    assert_eq!(d.request.workload.unwrap().claims[0].name, "web-shared-data");
    let e = try_translate(
        &format!(
            "containers: {{web: {{image: nginx:1.27}}}}\nresources:\n  vv: {{type: volume, id: {}}}\n",
            "a".repeat(62)
        ),
        "staging",
    )
    .unwrap_err();
    assert!(e.to_string().contains("longer than a DNS label"), "{e}");
    let e = try_translate("containers:\n  web:\n    image: nginx:1.27\n    volumes: {/data: {source: \"${resources.tt}\"}}\nresources:\n  tt: {type: Type-Three}\n", "staging").unwrap_err();
    assert!(e.to_string().contains("is not a volume resource of this workload"), "{e}");
    // Without probes of its own, the golden path probes the port the workload publishes.
    let d = try_translate(
        "service: {ports: {web: {port: 80, targetPort: 3000}}}\ncontainers: {web: {image: nginx:1.27}}\n",
        "staging",
    )
    .unwrap();
    let app = ResolvedApp::resolve(&config, &d.request).unwrap();
    let o: Vec<Value> = KubeRenderer.render(&app).unwrap().iter().map(|m| m.value().clone()).collect();
    let main = &find(&o, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(main[probe]["httpGet"]["port"], 3000, "{probe}");
    }
}
