//! Every built-in template × {GitHub, GitLab}, generated from a `.platform.yaml` that uses
//! every key, linted with actionlint (GitHub) and validated against schemastore's schemas with
//! check-jsonschema; and what a generated pipeline holds.

use std::path::Path;

use paved_core::{OrgConfig, PlatformFile};
use paved_pipeline::{BUILT_IN, Ci, generate, write};

const FULL: &str = "\
pipeline: PIPELINE
tests: 'make test TARGET=\"unit: all\" # a comment'
deploy_to: [dev, staging, production]
app: checkout
team: payments
databases:
  - engine: postgres
";

fn full(name: &str, dir: &Path) -> PlatformFile {
    PlatformFile::parse(dir.join(".platform.yaml"), &FULL.replace("PIPELINE", name)).unwrap()
}

#[test]
fn every_built_in_template_lints_and_validates_on_both_ci_systems() {
    for name in BUILT_IN {
        for (i, text) in [FULL.replace("PIPELINE", name), format!("pipeline: {name}\n")].iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path().join("my-repo");
            std::fs::create_dir(&repo).unwrap();
            let file = PlatformFile::parse(repo.join(".platform.yaml"), text).unwrap();
            for ci in Ci::ALL {
                let pipeline = generate(&file, &OrgConfig::default(), ci).unwrap();
                write(&repo, &pipeline, false).unwrap();
                let path = repo.join(&pipeline.path);
                // Also plain YAML that a generic reader takes.
                let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&pipeline.text)
                    .unwrap_or_else(|e| panic!("{name} {ci} ({i}): {e}\n{}", pipeline.text));
                let jobs = if ci == Ci::GitHub { &doc["jobs"] } else { &doc };
                let deploys: Vec<&str> = ["dev", "staging", "production"]
                    .into_iter()
                    .filter(|env| !jobs[format!("deploy-{env}").as_str()].is_null())
                    .collect();
                assert_eq!(deploys.len(), if i == 0 { 3 } else { 0 }, "{name} {ci} ({i})");
                paved_testkit::assert_pipeline_lints(&path, ci == Ci::GitHub);
            }
        }
    }
}

#[test]
fn github_pipeline_pins_actions_and_grants_least_privilege() {
    let dir = tempfile::tempdir().unwrap();
    let file = full("nodejs-service", dir.path());
    let p = generate(&file, &OrgConfig::default(), Ci::GitHub).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&p.text).unwrap();
    // Every action by a full commit SHA with its version.
    for line in p.text.lines().filter(|l| l.contains("uses:")) {
        let (_, used) = line.split_once("uses: ").unwrap();
        let (action, rest) = used.split_once('@').unwrap_or_else(|| panic!("{line}"));
        let sha: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        assert_eq!(sha.len(), 40, "{action} is pinned by a commit SHA: {line}");
        assert!(rest[40..].starts_with(" # v"), "{line}");
    }
    assert_eq!(doc["permissions"], serde_yaml_ng::Value::Mapping(Default::default()), "nothing at the top");
    let perms = |job: &str| serde_yaml_ng::to_string(&doc["jobs"][job]["permissions"]).unwrap();
    assert_eq!(perms("test"), "contents: read\n");
    assert_eq!(perms("policy"), "contents: read\n");
    assert_eq!(perms("build"), "contents: read\npackages: write\n");
    for env in ["dev", "staging", "production"] {
        assert_eq!(perms(&format!("deploy-{env}")), "contents: read\nid-token: write\n");
    }
    // Deploys in order, each behind its environment, the first after the policy check.
    let job = |env: &str| &doc["jobs"][format!("deploy-{env}").as_str()];
    assert_eq!(serde_yaml_ng::to_string(&job("dev")["needs"]).unwrap(), "- build\n- policy\n");
    assert_eq!(serde_yaml_ng::to_string(&job("staging")["needs"]).unwrap(), "- build\n- deploy-dev\n");
    assert_eq!(serde_yaml_ng::to_string(&job("production")["needs"]).unwrap(), "- build\n- deploy-staging\n");
    assert_eq!(job("production")["environment"], "production");
    // The tests command, quoted, never able to add YAML.
    assert_eq!(doc["jobs"]["test"]["steps"][3]["run"], "make test TARGET=\"unit: all\" # a comment");
    // The image: SBOM, provenance, OCI labels; the policy check on rendered objects; the
    // deploy with its commits; the database before it.
    let build = serde_yaml_ng::to_string(&doc["jobs"]["build"]).unwrap();
    for needle in
        ["sbom: true", "provenance: mode=max", "docker/metadata-action@", "org.opencontainers.image.title=checkout"]
    {
        assert!(build.contains(needle), "{needle}: {build}");
    }
    assert!(
        p.text.contains("paved render --image \"$IMAGE\" --env \"$env\" | paved policy check --env \"$env\" --file -")
    );
    assert!(p.text.contains("for env in dev staging production; do"));
    assert!(p.text.contains("paved deploy --env production --image \"$IMAGE\" \"${commits[@]}\""));
    assert!(p.text.contains("--format='%H@%cI'"));
    assert!(p.text.contains(
        "paved db provision --team payments --service checkout --engine postgres --size small --env staging"
    ));
}

#[test]
fn gitlab_pipeline_has_stages_oidc_environments_and_resource_groups() {
    let dir = tempfile::tempdir().unwrap();
    let file = full("go-service", dir.path());
    let p = generate(&file, &OrgConfig::default(), Ci::GitLab).unwrap();
    assert_eq!(p.path, Path::new(".gitlab-ci.yml"));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&p.text).unwrap();
    assert_eq!(serde_yaml_ng::to_string(&doc["stages"]).unwrap(), "- test\n- build\n- policy\n- deploy\n");
    for (env, previous) in [("dev", "policy"), ("staging", "deploy-dev"), ("production", "deploy-staging")] {
        let job = &doc[format!("deploy-{env}").as_str()];
        assert_eq!(job["environment"]["name"], env);
        assert_eq!(job["resource_group"], format!("checkout-{env}").as_str());
        assert_eq!(job["needs"][0], previous);
        assert_eq!(job["id_tokens"]["PAVED_ID_TOKEN"]["aud"], "sts.amazonaws.com");
        assert_eq!(job["rules"][0]["if"], "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH");
    }
    assert!(p.text.contains("--sbom=true --provenance=mode=max"));
    assert_eq!(doc["test"]["script"][0], "make test TARGET=\"unit: all\" # a comment");
}

/// The linters the tests above rely on do find problems (when they are installed).
#[test]
fn the_linters_reject_a_broken_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("broken.yml");
    // A job that needs a job that does not exist, and an unknown context.
    std::fs::write(
        &workflow,
        "on: push\njobs:\n  deploy:\n    needs: [buld]\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .unwrap();
    if let Some(mut lint) = paved_testkit::actionlint() {
        let out = lint.arg(&workflow).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("buld") && text.contains("nope"), "{text}");
    }
    let gitlab = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&gitlab, "stages: [test]\ntest:\n  stage: test\n  script: 3\n  environment: {nam: x}\n").unwrap();
    if let Some(check) = paved_testkit::tool("check-jsonschema", paved_testkit::PIPELINE_LINT_INSTALL_HINT) {
        let out = std::process::Command::new(check)
            .args(["--builtin-schema", "vendor.gitlab-ci"])
            .arg(&gitlab)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}
