//! The hostile escape-hatch suite (issue 14): extra manifests and overlays that try to reach
//! beyond the app. Each is refused with nothing written, or allowed only with its grant.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("paved").unwrap();
    cmd.current_dir(dir)
        .env("PAVED_ACTOR", "tester")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir))
        .env_remove("PAVED_CONFIG")
        .env_remove("PAVED_STATE_DIR")
        .env_remove("PAVED_ORG_CONFIG");
    cmd
}

/// How a hostile input must end.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused before rendering: exit 2, the message names this.
    Refused(&'static str),
    /// Denied by the baseline policy: exit 1, this policy's violation.
    Denied(&'static str),
}

/// `(name, flag, YAML, expectation)`.
const CASES: &[(&str, &str, &str, Expect)] = &[
    (
        "a foreign namespace",
        "--extra-manifest",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: kube-system\ndata: {a: b}\n",
        Expect::Refused("ConfigMap/x: metadata.namespace: is \"kube-system\", outside the app's namespace"),
    ),
    (
        "an overlay moving an object out",
        "--custom-manifest",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\n  namespace: default\n",
        Expect::Refused("Service/my-service: metadata.namespace"),
    ),
    (
        "a ClusterRole",
        "--extra-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n",
        Expect::Refused("ClusterRole/reader: kind: ClusterRole is cluster-scoped"),
    ),
    (
        "a ClusterRoleBinding to cluster-admin",
        "--extra-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: own-the-cluster\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n\
         subjects: [{kind: ServiceAccount, name: my-service, namespace: my-service-production}]\n",
        Expect::Refused("ClusterRoleBinding/own-the-cluster: kind: ClusterRoleBinding is cluster-scoped"),
    ),
    (
        "a CustomResourceDefinition",
        "--extra-manifest",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n",
        Expect::Refused("CustomResourceDefinition/widgets.example.com: kind"),
    ),
    (
        "a ValidatingWebhookConfiguration",
        "--extra-manifest",
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: w\n",
        Expect::Refused("ValidatingWebhookConfiguration/w: kind"),
    ),
    (
        "a MutatingWebhookConfiguration",
        "--extra-manifest",
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: w\n",
        Expect::Refused("MutatingWebhookConfiguration/w: kind"),
    ),
    (
        "a Namespace",
        "--extra-manifest",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: sneaky\n",
        Expect::Refused("Namespace/sneaky: kind"),
    ),
    (
        "a PersistentVolume",
        "--extra-manifest",
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv\nspec:\n  hostPath: {path: /}\n",
        Expect::Refused("PersistentVolume/pv: kind"),
    ),
    (
        "a StorageClass",
        "--extra-manifest",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\nprovisioner: x\n",
        Expect::Refused("StorageClass/fast: kind"),
    ),
    (
        "a PriorityClass",
        "--extra-manifest",
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: top\nvalue: 1000000000\n",
        Expect::Refused("PriorityClass/top: kind"),
    ),
    (
        "a RoleBinding to cluster-admin",
        "--extra-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: []\n",
        Expect::Refused("RoleBinding/b: roleRef.name: binds the built-in ClusterRole cluster-admin"),
    ),
    (
        "a RoleBinding to admin",
        "--extra-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\nsubjects: []\n",
        Expect::Refused("binds the built-in ClusterRole admin"),
    ),
    (
        "a RoleBinding to edit",
        "--extra-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects: []\n",
        Expect::Refused("binds the built-in ClusterRole edit"),
    ),
    (
        "a hostPath volume through an overlay",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     volumes: [{name: root, hostPath: {path: /}}]\n",
        Expect::Denied("[disallow-host-path]"),
    ),
    (
        "privileged through an overlay",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     containers: [{name: my-service, securityContext: {privileged: true}}]\n",
        Expect::Denied("[disallow-privileged-containers]"),
    ),
    (
        "hostNetwork through an overlay",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     hostNetwork: true\n",
        Expect::Denied("[disallow-host-namespaces]"),
    ),
    (
        "runAsUser: 0 through an overlay",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     securityContext: {runAsUser: 0}\n",
        Expect::Denied("[require-run-as-nonroot]"),
    ),
    (
        "a Service selecting another app's pods",
        "--custom-manifest",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  selector:\n\
         \x20   app.kubernetes.io/name: payments\n",
        Expect::Refused(
            "Service/my-service: spec.selector.app.kubernetes.io/name: sets app.kubernetes.io/name to \"payments\"",
        ),
    ),
    (
        "an extra object labelled as another app's",
        "--extra-manifest",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: adopt\n  labels:\n    app.kubernetes.io/instance: payments-production\n",
        Expect::Refused("ConfigMap/adopt: metadata.labels.app.kubernetes.io/instance"),
    ),
    (
        "$patch: delete of the NetworkPolicy",
        "--custom-manifest",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: my-service\n$patch: delete\n",
        Expect::Refused("NetworkPolicy/my-service: $patch: an overlay may not delete"),
    ),
    (
        "$patch: delete of the PodDisruptionBudget",
        "--custom-manifest",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: my-service\n$patch: delete\n",
        Expect::Refused("PodDisruptionBudget/my-service: $patch"),
    ),
    (
        "an overlay pointing an extra binding at cluster-admin",
        "--custom-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\nroleRef:\n  name: cluster-admin\n",
        Expect::Refused("RoleBinding/b: roleRef.name: binds the built-in ClusterRole cluster-admin"),
    ),
    (
        "a Role that can escalate",
        "--extra-manifest",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules:\n- {apiGroups: [\"*\"], resources: [\"*\"], verbs: [\"*\"]}\n",
        Expect::Refused("Role/r: rules: grants the verb \"*\""),
    ),
    (
        "a null namespace",
        "--custom-manifest",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\n  namespace: null\n",
        Expect::Refused("Service/my-service: metadata.namespace: is null"),
    ),
    (
        "an ownership label removed",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n  labels:\n    app.kubernetes.io/instance: null\n",
        Expect::Refused("removes app.kubernetes.io/instance"),
    ),
    (
        "a selector expression on another app",
        "--extra-manifest",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\nspec:\n  podSelector:\n    matchExpressions:\n\
         \x20   - {key: app.kubernetes.io/name, operator: In, values: [payments]}\n",
        Expect::Refused("a selector expression on app.kubernetes.io/name"),
    ),
    (
        "another ServiceAccount",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     serviceAccountName: default\n",
        Expect::Refused("serviceAccountName: runs the pods as ServiceAccount"),
    ),
    (
        "Vault Agent annotations",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    metadata:\n\
         \x20     annotations: {vault.hashicorp.com/agent-inject-secret-x: secret/payments/db}\n",
        Expect::Refused("sets vault.hashicorp.com/agent-inject-secret-x"),
    ),
    (
        "a cluster-scoped custom kind",
        "--extra-manifest",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: off\n",
        Expect::Refused("ClusterPolicy/off: kind: ClusterPolicy is cluster-scoped"),
    ),
    (
        "a privileged ReplicationController",
        "--extra-manifest",
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc\nspec:\n  template:\n    spec:\n\
         \x20     containers: [{name: c, image: \"busybox:1.36\", securityContext: {privileged: true}}]\n",
        Expect::Denied("[disallow-privileged-containers]"),
    ),
    (
        "a List",
        "--extra-manifest",
        "apiVersion: v1\nkind: List\nmetadata:\n  name: l\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a, namespace: kube-system}\n",
        Expect::Refused("List/l: kind: a List holds several objects"),
    ),
    (
        "no kind",
        "--extra-manifest",
        "apiVersion: v1\nmetadata:\n  name: nameless\n",
        Expect::Refused("the document has no kind or metadata.name"),
    ),
    // Directives that drop ownership labels without naming them (issue 21).
    (
        "labels replaced with $patch: replace",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n  labels:\n    $patch: replace\n    tier: web\n",
        Expect::Refused(
            "Deployment/my-service: metadata.labels.app.kubernetes.io/instance: the overlay drops or changes",
        ),
    ),
    (
        "a Service selector emptied with $patch: replace",
        "--custom-manifest",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  selector:\n    $patch: replace\n",
        Expect::Refused("Service/my-service: spec.selector.app.kubernetes.io/instance: the overlay drops"),
    ),
    (
        "a pod selector deleted with $patch: delete",
        "--custom-manifest",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: my-service\nspec:\n  podSelector:\n    matchLabels:\n      $patch: delete\n",
        Expect::Refused(
            "NetworkPolicy/my-service: spec.podSelector.matchLabels.app.kubernetes.io/instance: the overlay drops",
        ),
    ),
    (
        "metadata cut down with $retainKeys",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n  $retainKeys: [name]\n",
        Expect::Refused("the overlay drops"),
    ),
    (
        "pod template labels removed with null",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    metadata:\n      labels: null\n",
        Expect::Refused("spec.template.metadata.labels.app.kubernetes.io/instance: the overlay drops"),
    ),
    (
        "labels removed by a JSON merge patch",
        "--custom-manifest",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\n  labels: null\n$patch: json-merge\n",
        Expect::Refused("Service/my-service: metadata.labels.app.kubernetes.io/instance: the overlay drops"),
    ),
    (
        "the pod's ServiceAccount dropped with $retainKeys and swapped through the alias",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     $retainKeys: [containers, securityContext, volumes, topologySpreadConstraints, serviceAccount]\n\
         \x20     serviceAccount: other-app\n",
        Expect::Refused("serviceAccount: runs the pods as ServiceAccount \"other-app\""),
    ),
    (
        "the pod's ServiceAccount dropped with $retainKeys",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     $retainKeys: [containers, securityContext, volumes, topologySpreadConstraints]\n",
        Expect::Refused("spec.template.spec.serviceAccountName: the overlay drops or changes serviceAccountName"),
    ),
    (
        "the escape-hatch record erased with $patch: replace",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\n  annotations:\n    $patch: replace\n",
        Expect::Refused("metadata.annotations.paved.dev/escape-hatches: the overlay drops or changes"),
    ),
    (
        "a spread constraint's selector removed with null",
        "--custom-manifest",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n\
         \x20     topologySpreadConstraints:\n      - topologyKey: kubernetes.io/hostname\n        whenUnsatisfiable: ScheduleAnyway\n\
         \x20       labelSelector: null\n",
        Expect::Refused("removes a selector"),
    ),
    (
        "an overlay re-pointing a token Secret by its annotation alone",
        "--custom-manifest",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: my-token\n  annotations:\n    kubernetes.io/service-account.name: other-app\n",
        Expect::Refused("asks for the token of another ServiceAccount"),
    ),
    (
        "a Service that takes over external IPs",
        "--custom-manifest",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  externalIPs: [10.0.0.1]\n",
        Expect::Refused("Service/my-service: spec.externalIPs: takes over traffic to those addresses"),
    ),
    (
        "a YAML bomb",
        "--extra-manifest",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n\
         d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n\
         f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
        Expect::Refused("repetition limit exceeded"),
    ),
];

fn deploy(dir: &Path, flag: &str) -> Command {
    let mut cmd = paved(dir);
    cmd.args(["--state-dir", "state", "deploy", "--app", "my-service", "--env", "production"]).args([
        "--image",
        "ghcr.io/company/my-service:v1.2.3",
        "--replicas",
        "3",
        flag,
        "input.yaml",
    ]);
    cmd
}

#[test]
fn every_hostile_escape_hatch_is_refused_and_nothing_is_written() {
    assert!(CASES.len() >= 15);
    let mut failures = Vec::new();
    for (name, flag, yaml, expect) in CASES {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.yaml"), yaml).unwrap();
        let out = deploy(dir.path(), flag).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (code, needle) = match expect {
            Expect::Refused(needle) => (2, *needle),
            Expect::Denied(needle) => (1, *needle),
        };
        if out.status.code() != Some(code) || !stderr.contains(needle) {
            failures.push(format!("{name}: exit {:?}, expected {code} with {needle:?}:\n{stderr}", out.status.code()));
        }
        if dir.path().join("state/gitops").exists() || dir.path().join("state/releases").exists() {
            failures.push(format!("{name}: something was written"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_refusal_names_the_grant_and_a_granted_object_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: read-nodes\n\
                   roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: []\n";
    std::fs::write(dir.path().join("input.yaml"), binding).unwrap();
    let out = deploy(dir.path(), "--extra-manifest").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[apps.my-service] team = \"platform\"")
            && stderr.contains("[escape_hatches.grants] platform = [\"ClusterRoleBinding\"]"),
        "{stderr}"
    );
    // A grant reaches only an app bound to the team: a request cannot claim one.
    std::fs::write(
        dir.path().join("paved.toml"),
        "[escape_hatches.grants]\nplatform = [\"ClusterRoleBinding\", \"bind:cluster-admin\"]\n",
    )
    .unwrap();
    deploy(dir.path(), "--extra-manifest").assert().code(2);
    const BOUND: &str = "[apps.my-service]\nteam = \"platform\"\n";
    // Granted the kind, the binding to cluster-admin still needs its own grant.
    std::fs::write(
        dir.path().join("paved.toml"),
        format!("{BOUND}[escape_hatches.grants]\nplatform = [\"ClusterRoleBinding\"]\n"),
    )
    .unwrap();
    let out = deploy(dir.path(), "--extra-manifest").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind:cluster-admin"));
    std::fs::write(
        dir.path().join("paved.toml"),
        format!("{BOUND}[escape_hatches.grants]\nplatform = [\"ClusterRoleBinding\", \"bind:cluster-admin\"]\n"),
    )
    .unwrap();
    deploy(dir.path(), "--extra-manifest").assert().success();
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/releases/production/my-service/000001.json")).unwrap(),
    )
    .unwrap();
    let hatches: Vec<String> = record["record"]["escape_hatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}={}", h["name"].as_str().unwrap(), h["value"].as_str().unwrap_or("")))
        .collect();
    assert!(hatches.contains(&"grant=ClusterRoleBinding:ClusterRoleBinding/read-nodes".to_string()), "{hatches:?}");
    assert!(hatches.contains(&"grant=bind:cluster-admin:ClusterRoleBinding/read-nodes".to_string()), "{hatches:?}");
    // externalIPs with its grant: allowed and recorded.
    std::fs::write(
        dir.path().join("input.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  externalIPs: [10.0.0.1]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        format!("{BOUND}[escape_hatches.grants]\nplatform = [\"service:externalIPs\"]\n"),
    )
    .unwrap();
    deploy(dir.path(), "--custom-manifest").assert().success();
    let record = std::fs::read_to_string(dir.path().join("state/releases/production/my-service/000002.json")).unwrap();
    assert!(record.contains("service:externalIPs:Service/my-service"), "the grant is recorded");
    std::fs::write(dir.path().join("input.yaml"), binding).unwrap();
    // Another team's grant is not this team's.
    std::fs::write(
        dir.path().join("paved.toml"),
        format!("{BOUND}[escape_hatches.grants]\npayments = [\"ClusterRoleBinding\"]\n"),
    )
    .unwrap();
    deploy(dir.path(), "--extra-manifest").assert().code(2);
    // A grant that is not one is a configuration error with a hint.
    std::fs::write(dir.path().join("paved.toml"), "[escape_hatches.grants]\nplatform = [\"ClsterRole\"]\n").unwrap();
    let out = deploy(dir.path(), "--extra-manifest").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"ClusterRole\"?"));
}

#[test]
fn the_first_readme_deploy_passes_the_baseline_and_a_latest_image_is_denied_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = |image: &str| {
        let mut cmd = paved(dir.path());
        cmd.args(["--state-dir", "state", "deploy", "--app", "my-service", "--image", image]).args([
            "--env",
            "production",
            "--replicas",
            "3",
        ]);
        cmd.output().unwrap()
    };
    let out = deploy("ghcr.io/company/my-service:v1.2.3");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let progress = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("policy: allowed by the baseline, 11 policies (0 warnings)"), "{progress}");
    let out = deploy("nginx:latest");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[disallow-latest-tag] validate-image-tag"), "{stderr}");
    assert!(stderr.contains("hint: deploy an immutable version tag"), "{stderr}");
    // `paved render` shows what would be applied, so it is checked too.
    let out = paved(dir.path())
        .args(["render", "--app", "my-service", "--image", "nginx:latest", "--env", "production"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_rollback_restores_nothing_the_bounds_or_the_baseline_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = |image: &str| {
        paved(dir.path())
            .args(["--state-dir", "state", "deploy", "--app", "my-service", "--env", "production"])
            .args(["--image", image, "--replicas", "3"])
            .assert()
            .success();
    };
    deploy("ghcr.io/company/my-service:v1");
    deploy("ghcr.io/company/my-service:v2");
    let record = dir.path().join("state/releases/production/my-service/000001.json");
    let original = std::fs::read_to_string(&record).unwrap();
    let rollback = || {
        paved(dir.path())
            .args(["--state-dir", "state", "rollback", "--app", "my-service", "--env", "production", "--to", "1"])
            .output()
            .unwrap()
    };
    // A committed record edited to carry a cluster-admin binding.
    let mut forged: Value = serde_json::from_str(&original).unwrap();
    forged["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "own-the-cluster"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "my-service", "namespace": "my-service-production"}]
    }));
    std::fs::write(&record, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let out = rollback();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ClusterRoleBinding is cluster-scoped"));
    // One edited to an image the baseline refuses.
    let latest = original.replace("ghcr.io/company/my-service:v1", "ghcr.io/company/my-service:latest");
    std::fs::write(&record, latest).unwrap();
    let out = rollback();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[disallow-latest-tag]"));
    assert!(!dir.path().join("state/releases/production/my-service/000003.json").exists(), "nothing rolled back");
}
