//! The original design's self-service database flow on AWS, end to end through the `paved`
//! binary: `paved db provision --team payments --service payment-service --engine postgres
//! --env staging` with `[databases.rds] backend = "aws-rds"`, against moto (RDS, Secrets
//! Manager, CloudWatch, SNS → SQS) and OpenBao (connection info). Everything is read back
//! through boto3 and the bao CLI.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use paved_testkit::{Moto, OpenBao};

fn paved(dir: &Path, moto: &Moto, bao: Option<&OpenBao>) -> Command {
    let mut cmd = Command::new(cargo_bin("paved"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(moto.env())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null());
    if let Some(bao) = bao {
        cmd.env("VAULT_ADDR", bao.addr()).env("VAULT_TOKEN", bao.token());
    }
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("paved runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn boto3(moto: &Moto, script: &str) -> serde_json::Value {
    let out = moto.python().arg("-c").arg(format!("import boto3, json\n{script}")).output().expect("python runs");
    assert!(out.status.success(), "{}\n{script}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

const DB: [&str; 8] =
    ["--team", "payments", "--service", "payment-service", "--engine", "postgres", "--env", "staging"];

/// An SNS topic with an SQS queue subscribed: where the team's notification can be read.
fn topic_and_queue(moto: &Moto) -> (String, String) {
    let v = boto3(
        moto,
        r#"sns = boto3.client("sns"); sqs = boto3.client("sqs")
t = sns.create_topic(Name="platform")["TopicArn"]
q = sqs.create_queue(QueueName="payments")["QueueUrl"]
qa = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=qa, Attributes={"RawMessageDelivery": "true"})
print(json.dumps([t, q]))"#,
    );
    (v[0].as_str().unwrap().to_string(), v[1].as_str().unwrap().to_string())
}

#[test]
fn the_original_designs_database_request_on_aws_leaves_all_four_things_behind() {
    let Some(moto) = Moto::start() else { return };
    let Some(bao) = OpenBao::start() else { return };
    let (topic, queue) = topic_and_queue(&moto);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        format!(
            "[aws]\nregion = \"us-east-1\"\n\n[aws.sns]\ntopic_arn = \"{topic}\"\n\n[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) =
        run(paved(dir.path(), &moto, Some(&bao)).args(["db", "provision"]).args(DB).args(["--output", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    paved_testkit::assert_json_schema(&paved_testkit::cli_schema(), "db_provision", &out);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The original design's answer.
    assert_eq!(v["status"], "provisioned");
    assert_eq!(v["vault_path"], "database/payments/payment-service/staging");
    let endpoint = v["endpoint"].as_str().unwrap();
    assert!(endpoint.ends_with(".rds.amazonaws.com:5432"), "{endpoint}");
    assert_eq!(v["backend"], "aws-rds");
    assert!(
        v["monitoring"].as_str().unwrap().contains("#dashboards/dashboard/paved-payments-payment-service-staging-"),
        "{v}"
    );
    assert_eq!(v["warnings"], serde_json::json!([]));

    // 1. The RDS instance, 3. the dashboard, 4. the notification, through boto3.
    let seen = boto3(
        &moto,
        &format!(
            r#"rds = boto3.client("rds")
i = rds.describe_db_instances()["DBInstances"]
cw = boto3.client("cloudwatch")
d = cw.list_dashboards()["DashboardEntries"]
body = json.loads(cw.get_dashboard(DashboardName=d[0]["DashboardName"])["DashboardBody"])
m = boto3.client("sqs").receive_message(QueueUrl="{queue}", MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=2).get("Messages", [])
print(json.dumps({{"instances": [(x["DBInstanceIdentifier"], x["DBInstanceStatus"], {{t["Key"]: t["Value"] for t in x["TagList"]}}) for x in i],
  "secret": i[0]["MasterUserSecret"]["SecretArn"],
  "dashboards": [x["DashboardName"] for x in d],
  "metrics": sorted(w["properties"]["metrics"][0][1] for w in body["widgets"] if w["type"] == "metric"),
  "messages": [x["Body"] for x in m], "attributes": [x.get("MessageAttributes", {{}}) for x in m]}}))"#
        ),
    );
    let instances = seen["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{seen}");
    assert_eq!(instances[0][1], "available");
    assert_eq!(instances[0][2]["paved.dev/team"], "payments");
    assert_eq!(seen["dashboards"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(
        seen["metrics"],
        serde_json::json!(["CPUUtilization", "DatabaseConnections", "FreeStorageSpace", "ReadLatency", "WriteLatency"])
    );
    let messages = seen["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{seen}");
    assert!(messages[0].as_str().unwrap().contains("payment-service"), "{seen}");
    assert_eq!(seen["attributes"][0]["team"]["StringValue"], "payments", "{seen}");

    // The managed master password never reaches paved's output.
    let master = boto3(
        &moto,
        &format!(
            r#"print(boto3.client("secretsmanager").get_secret_value(SecretId="{}")["SecretString"])"#,
            seen["secret"].as_str().unwrap()
        ),
    );
    let password = master["password"].as_str().unwrap();
    assert!(!out.contains(password) && !err.contains(password));
    // 2. The connection info in OpenBao: endpoint, database, user, the secret's ARN; no password.
    let info = bao
        .command()
        .args(["kv", "get", "-format=json", "secret/database/payments/payment-service/staging"])
        .output()
        .unwrap();
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let data = &info["data"]["data"];
    assert_eq!(format!("{}:{}", data["host"].as_str().unwrap(), data["port"].as_str().unwrap()), endpoint);
    assert_eq!(data["username"], "paved_admin");
    assert_eq!(data["credentials_path"], seen["secret"]);
    assert!(data.get("password").is_none(), "{data}");

    // Again: idempotent, nothing new (one instance, one dashboard).
    let (code, again, err) =
        run(paved(dir.path(), &moto, Some(&bao)).args(["db", "provision"]).args(DB).args(["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["endpoint"], v["endpoint"]);
    let count = boto3(&moto, r#"print(len(boto3.client("rds").describe_db_instances()["DBInstances"]))"#);
    assert_eq!(count, 1);

    // Deprovision: the dashboard goes, a final snapshot stays.
    let (code, out, err) = run(paved(dir.path(), &moto, Some(&bao)).args(["db", "deprovision"]).args(DB));
    assert_eq!(code, 0, "{out}{err}");
    let left = boto3(
        &moto,
        r#"print(json.dumps([len(boto3.client("rds").describe_db_instances()["DBInstances"]),
  len(boto3.client("cloudwatch").list_dashboards()["DashboardEntries"]),
  [s["DBSnapshotIdentifier"] for s in boto3.client("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]]]))"#,
    );
    assert_eq!(left[0], 0, "{left}");
    assert_eq!(left[1], 0, "{left}");
    assert_eq!(left[2].as_array().unwrap().len(), 1, "{left}");
    // The connection info is gone too.
    let info = bao
        .command()
        .args(["kv", "get", "-format=json", "secret/database/payments/payment-service/staging"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(!info.status.success() || text.contains("\"deletion_time\": \"2"), "{text}");
    assert!(!text.contains("paved_admin"), "{text}");
}

#[test]
fn connection_info_goes_to_secrets_manager_when_paved_toml_says_so() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        "[aws]\nregion = \"us-east-1\"\n\n[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\nconnection_info = \"aws-sm\"\n",
    )
    .unwrap();
    let (code, out, err) = run(paved(dir.path(), &moto, None).args(["db", "provision"]).args(DB).args(["-o", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    let seen = boto3(
        &moto,
        r#"v = boto3.client("secretsmanager").get_secret_value(SecretId="database/payments/payment-service/staging")
print(v["SecretString"])"#,
    );
    assert_eq!(seen["username"], "paved_admin");
    assert!(seen["credentials_path"].as_str().unwrap().starts_with("arn:aws:secretsmanager:"), "{seen}");
    assert!(seen.get("password").is_none());
    // A store that is not configured is refused with a hint.
    std::fs::write(
        dir.path().join("paved.toml"),
        "[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\nconnection_info = \"aws-secretsmanager\"\n",
    )
    .unwrap();
    let (code, _, err) = run(paved(dir.path(), &moto, None).args(["db", "provision"]).args(DB));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean \"aws-sm\""), "{err}");
}

#[test]
fn an_endpoint_that_is_down_fails_in_bounded_time_and_records_nothing() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        "[aws]\nregion = \"us-east-1\"\nmax_attempts = 2\ntimeout_seconds = 10\n\n[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\nconnection_info = \"aws-sm\"\n",
    )
    .unwrap();
    let down = format!("http://127.0.0.1:{}", paved_testkit::free_port());
    let started = Instant::now();
    let (code, out, err) =
        run(paved(dir.path(), &moto, None).env("AWS_ENDPOINT_URL", &down).args(["db", "provision"]).args(DB));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("cannot be reached") && err.contains(&down), "{err}");
    // Bounded by the configured timeout (not a measurement of speed: a hang would fail here).
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    assert!(
        !dir.path().join("state").join("events.db").exists() || {
            let (_, events, _) = run(paved(dir.path(), &moto, None).args(["metrics", "events", "-o", "json"]));
            !events.contains("database_provisioned")
        }
    );
    // Expired credentials: a clear error naming where they come from.
    let (code, _, err) = run(paved(dir.path(), &moto, None)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "nobody")
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["db", "provision"])
        .args(DB));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("AWS credentials") && err.contains("AWS_PROFILE"), "{err}");
}

/// An endpoint that answers the first `failures` requests with `failure` (status, body) and
/// then every request with RDS's "no such instance" error; it counts the requests.
fn flaky_endpoint(
    failures: usize,
    failure: (u16, &'static str),
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let url = paved_testkit::stand_in(move |_| {
        let (status, text) = if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < failures {
            failure
        } else {
            (
                404,
                "<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>DBInstance not found.</Message></Error><RequestId>1</RequestId></ErrorResponse>",
            )
        };
        (status, "text/xml", text.to_string())
    });
    (url, count)
}

#[test]
fn throttling_and_server_errors_are_retried_by_the_sdks_standard_mode() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paved.toml"),
        "[aws]\nregion = \"us-east-1\"\nmax_attempts = 3\n\n[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\n",
    )
    .unwrap();
    let throttled = (
        400,
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
    );
    for failure in [(503, "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>"), throttled] {
        let (url, count) = flaky_endpoint(2, failure);
        let (code, out, err) =
            run(paved(dir.path(), &moto, None).env("AWS_ENDPOINT_URL", &url).args(["db", "status"]).args(DB));
        assert_eq!(code, 0, "{failure:?}: {out}{err}");
        assert!(out.contains("absent"), "{out}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3, "two failures and a retry that got through");
        // More failures than attempts: the service's own error, exit 1.
        let (url, count) = flaky_endpoint(10, failure);
        let (code, _, err) =
            run(paved(dir.path(), &moto, None).env("AWS_ENDPOINT_URL", &url).args(["db", "status"]).args(DB));
        assert_eq!(code, 1, "{err}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3, "max_attempts = 3");
        assert!(err.contains("try again later"), "{err}");
    }
    // Expired credentials: not retried, a denial naming where the credentials came from.
    let expired = (
        403,
        "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error></ErrorResponse>",
    );
    let (url, count) = flaky_endpoint(10, expired);
    let (code, _, err) =
        run(paved(dir.path(), &moto, None).env("AWS_ENDPOINT_URL", &url).args(["db", "status"]).args(DB));
    assert_eq!(code, 1, "{err}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1, "not retried");
    assert!(err.contains("ExpiredToken") && err.contains("expired or not valid"), "{err}");
    assert!(err.contains("the environment (AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn aws_sm_references_sync_into_the_cluster_or_mount_through_the_aws_provider() {
    use base64::Engine;
    const VALUE: &str = "sm-value-never-printed";
    let Some(moto) = Moto::start() else { return };
    boto3(
        &moto,
        &format!(
            r#"boto3.client("secretsmanager").create_secret(Name="payments/api", SecretString=json.dumps({{"token": "{VALUE}"}}))
print("{{}}")"#
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = paved_kube::testing::MockApiServer::listen();
    let kubeconfig = paved_kube::testing::MockApiServer::write_kubeconfig(dir.path(), &url);
    let secret = "--secret=API_TOKEN=aws-sm://payments/api#token";
    let app = ["--app", "shop", "--team", "payments", "--image", "ghcr.io/company/shop:v1", "--env", "production"];
    // Agent mode (the default): the AWS provider's SecretProviderClass, no value anywhere.
    std::fs::write(dir.path().join("paved.toml"), "[aws]\nregion = \"us-east-1\"\n").unwrap();
    let (code, yaml, err) = run(paved(dir.path(), &moto, None).arg("render").args(app).arg(secret));
    assert_eq!(code, 0, "{err}");
    assert!(yaml.contains("kind: SecretProviderClass") && yaml.contains("objectName: payments/api"), "{yaml}");
    assert!(yaml.contains("/mnt/secrets-store/API_TOKEN") && !yaml.contains(VALUE), "{yaml}");
    // Sync mode on the kube target: the value read from Secrets Manager goes into the cluster's
    // Secret, and is never printed.
    std::fs::write(dir.path().join("paved.toml"), "[aws]\nregion = \"us-east-1\"\n[secrets]\nmode = \"sync\"\n")
        .unwrap();
    let (code, out, err) = run(paved(dir.path(), &moto, None).arg("deploy").args(app).args([
        "--no-hpa",
        secret,
        "--target",
        "kube",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(VALUE) && !err.contains(VALUE));
    let applied = server.get("/api/v1/namespaces/shop-production/secrets/shop-secrets").expect("the Secret");
    assert_eq!(applied["data"]["API_TOKEN"], base64::engine::general_purpose::STANDARD.encode(VALUE));
    // Another team's secret is refused before anything is read.
    let (code, _, err) = run(paved(dir.path(), &moto, None)
        .arg("deploy")
        .args(app)
        .args(["--no-hpa", "--secret=API_TOKEN=aws-sm://billing/api#token", "--target", "kube"])
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("outside the secret paths of team payments"), "{err}");
}
