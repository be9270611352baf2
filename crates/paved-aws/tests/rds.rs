//! `RdsProvisioner` against moto's RDS: the `DbProvisioner` behaviour suite (moto runs no
//! database, so the scenarios that connect with credentials are skipped and named), what paved
//! leaves in RDS read back through boto3, ownership, production defaults, deletion protection
//! and final snapshots.

mod common;

use std::sync::Arc;

use common::{aws, boto3, moto};
use paved_aws::{AwsDbServerSettings, RdsProvisioner, SecretsManagerStore};
use paved_core::{DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, DeprovisionOptions, ErrorKind};
use paved_testkit::behavior::db_provisioner::{DbProvisionerHarness, run};

/// The settings of a `[databases.rds]` server with `extra` lines.
fn toml_settings(extra: &str) -> AwsDbServerSettings {
    let text = format!("[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\n{extra}");
    let config = paved_core::OrgConfig::parse("paved.toml", &text).unwrap();
    AwsDbServerSettings::from_org_config(&config, "rds").unwrap()
}

fn request(service: &str, env: &str) -> DatabaseRequest {
    DatabaseRequest::new("payments", service, "postgres", env, "small").unwrap()
}

async fn rds(moto: &common::Moto, settings: AwsDbServerSettings) -> RdsProvisioner {
    RdsProvisioner::new(aws(moto).await, "rds", DbEngine::Postgres, settings).unwrap()
}

#[tokio::test]
async fn rds_passes_the_db_provisioner_suite() {
    let Some(moto) = moto() else { return };
    let settings = AwsDbServerSettings::default();
    let store = Arc::new(SecretsManagerStore::new(aws(&moto).await));
    let provisioner = Arc::new(rds(&moto, settings).await.connection_info(store));
    let report = run(&DbProvisionerHarness::new(provisioner, DbEngine::Postgres).refusing(DbEngine::Mongodb)).await;
    assert!(report.failed.is_empty(), "{report}");
    // Only the scenarios that connect to the database itself: moto runs none.
    for (name, why) in &report.skipped {
        assert!(why.contains("Probe"), "{name} skipped: {why}");
    }
    assert!(report.passed.len() >= 6, "{report}");
}

#[tokio::test]
async fn a_provisioned_instance_is_tagged_private_encrypted_with_a_managed_password() {
    let Some(moto) = moto() else { return };
    let p = rds(&moto, AwsDbServerSettings::default()).await;
    let staging = request("payment-service", "staging");
    let info = p.provision(&staging).await.unwrap();
    assert_eq!(info.state, DatabaseState::Available);
    assert_eq!(info.database, paved_aws::naming::database_name(&staging));
    assert_eq!(info.username.as_deref(), Some("paved_admin"));
    let arn = info.credentials_path.clone().expect("the managed master secret's ARN");
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
    let (host, port) = info.endpoint.clone().unwrap();
    assert!(!host.is_empty() && port == 5432, "{host}:{port}");
    // Again: the same answer, nothing new.
    assert_eq!(p.provision(&staging).await.unwrap(), info);
    let id = paved_aws::naming::identifier(&staging);
    let seen = boto3(
        &moto,
        &format!(
            r#"rds = boto3.client("rds")
i = rds.describe_db_instances(DBInstanceIdentifier="{id}")["DBInstances"][0]
n = len(rds.describe_db_instances()["DBInstances"])
sm = boto3.client("secretsmanager")
s = sm.describe_secret(SecretId=i["MasterUserSecret"]["SecretArn"])
print(json.dumps({{"count": n, "class": i["DBInstanceClass"], "storage": i["AllocatedStorage"], "encrypted": i["StorageEncrypted"],
  "public": i["PubliclyAccessible"], "multi_az": i["MultiAZ"], "protected": i["DeletionProtection"],
  "backups": i["BackupRetentionPeriod"], "tags": {{t["Key"]: t["Value"] for t in i["TagList"]}}, "secret": s["ARN"]}}))"#
        ),
    );
    assert_eq!(seen["count"], 1, "{seen}");
    assert_eq!(seen["class"], "db.t4g.micro");
    assert_eq!(seen["storage"], 20);
    assert_eq!(seen["encrypted"], true);
    assert_eq!(seen["public"], false);
    assert_eq!(
        (seen["multi_az"].clone(), seen["protected"].clone(), seen["backups"].clone()),
        (false.into(), false.into(), 1.into())
    );
    assert_eq!(seen["tags"]["managed-by"], "paved");
    assert_eq!(seen["tags"]["paved.dev/team"], "payments");
    assert_eq!(seen["tags"]["paved.dev/service"], "payment-service");
    assert_eq!(seen["tags"]["paved.dev/environment"], "staging");
    assert_eq!(seen["secret"], arn.as_str());

    // Production: Multi-AZ, deletion protection, 7 days of backups.
    let prod = request("payment-service", "production");
    p.provision(&prod).await.unwrap();
    let id = paved_aws::naming::identifier(&prod);
    let seen = boto3(
        &moto,
        &format!(
            r#"i = boto3.client("rds").describe_db_instances(DBInstanceIdentifier="{id}")["DBInstances"][0]
print(json.dumps([i["MultiAZ"], i["DeletionProtection"], i["BackupRetentionPeriod"]]))"#
        ),
    );
    assert_eq!(seen, serde_json::json!([true, true, 7]));
    // Protected: refused without force, nothing deleted; with force, deleted with a final snapshot.
    let e = p.deprovision(&prod, false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.hint().unwrap().contains("force"), "{e:?}");
    assert_eq!(p.status(&prod).await.unwrap().state, DatabaseState::Available);
    p.deprovision_with(&prod, &DeprovisionOptions::new().force(true)).await.unwrap();
    assert_eq!(p.status(&prod).await.unwrap().state, DatabaseState::Absent);
    let snapshots = boto3(
        &moto,
        &format!(
            r#"s = boto3.client("rds").describe_db_snapshots(DBInstanceIdentifier="{id}")["DBSnapshots"]
print(json.dumps([x["DBSnapshotIdentifier"] for x in s]))"#
        ),
    );
    let snapshots = snapshots.as_array().unwrap();
    assert!(snapshots.iter().any(|s| s.as_str().unwrap().starts_with(&format!("{id}-final-"))), "{snapshots:?}");
    // Dropping the data: no final snapshot.
    p.deprovision(&staging, true).await.unwrap();
    let id = paved_aws::naming::identifier(&staging);
    let snapshots = boto3(
        &moto,
        &format!(
            r#"s = boto3.client("rds").describe_db_snapshots(DBInstanceIdentifier="{id}")["DBSnapshots"]
print(json.dumps([x["DBSnapshotIdentifier"] for x in s if x["SnapshotType"] == "manual"]))"#
        ),
    );
    assert_eq!(snapshots, serde_json::json!([]));
}

#[tokio::test]
async fn an_instance_paved_did_not_tag_is_never_adopted_or_deleted() {
    let Some(moto) = moto() else { return };
    let p = rds(&moto, AwsDbServerSettings::default()).await;
    let ours = request("ledger", "dev");
    let id = paved_aws::naming::identifier(&ours);
    // Someone made an instance with exactly that identifier, untagged.
    boto3(
        &moto,
        &format!(
            r#"boto3.client("rds").create_db_instance(DBInstanceIdentifier="{id}", DBInstanceClass="db.t4g.micro", Engine="postgres",
  MasterUsername="someone", MasterUserPassword="not-paved-1234", AllocatedStorage=20)
print("{{}}")"#
        ),
    );
    for e in [
        p.provision(&ours).await.unwrap_err(),
        p.status(&ours).await.unwrap_err(),
        p.deprovision_with(&ours, &DeprovisionOptions::new().drop_data(true).force(true)).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.to_string().contains("never adopted"), "{e}");
    }
    let seen = boto3(
        &moto,
        &format!(
            r#"i = boto3.client("rds").describe_db_instances(DBInstanceIdentifier="{id}")["DBInstances"][0]
print(json.dumps([i["DBInstanceStatus"], i["MasterUsername"]]))"#
        ),
    );
    assert_eq!(seen, serde_json::json!(["available", "someone"]));
    // Another team's instance under this request's identifier (tags of team billing): refused
    // too, naming whose it is.
    let theirs = request("reports", "dev");
    let id = paved_aws::naming::identifier(&theirs);
    boto3(
        &moto,
        &format!(
            r#"boto3.client("rds").create_db_instance(DBInstanceIdentifier="{id}", DBInstanceClass="db.t4g.micro", Engine="postgres",
  MasterUsername="someone", ManageMasterUserPassword=True, AllocatedStorage=20,
  Tags=[{{"Key": "managed-by", "Value": "paved"}}, {{"Key": "paved.dev/team", "Value": "billing"}},
        {{"Key": "paved.dev/service", "Value": "reports"}}, {{"Key": "paved.dev/environment", "Value": "dev"}}])
print("{{}}")"#
        ),
    );
    let e = p.deprovision_with(&theirs, &DeprovisionOptions::new().drop_data(true)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("team billing, service reports"), "{e}");
    let count = boto3(&moto, r#"print(len(boto3.client("rds").describe_db_instances()["DBInstances"]))"#);
    assert_eq!(count, 2, "nothing was deleted");
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_created() {
    let Some(moto) = moto() else { return };
    let p = rds(&moto, toml_settings("subnet_group = \"no-such-group\"\n")).await;
    let e = p.provision(&request("api", "dev")).await.unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert!(e.to_string().contains("no-such-group"), "{e}");
    let mongo = DatabaseRequest::new("payments", "api", "mongodb", "dev", "small").unwrap();
    let e = p.provision(&mongo).await.unwrap_err();
    assert!(e.is_user_error() && e.hint().unwrap().contains("aws-docdb"), "{e:?}");
    let count = boto3(&moto, r#"print(len(boto3.client("rds").describe_db_instances()["DBInstances"]))"#);
    assert_eq!(count, 0);
    // Unknown keys and sizes in the server's settings are errors at their line.
    let config = paved_core::OrgConfig::parse(
        "paved.toml",
        "[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\nsubnet_grup = \"x\"\n",
    )
    .unwrap();
    let e = AwsDbServerSettings::from_org_config(&config, "rds").unwrap_err();
    assert!(e.to_string().starts_with("paved.toml:4"), "{e}");
    assert!(e.hint().unwrap().contains("subnet_group"), "{e:?}");
    let config = paved_core::OrgConfig::parse(
        "paved.toml",
        "[databases.rds]\nbackend = \"aws-rds\"\nengine = \"postgres\"\nsizes.huge = { instance_class = \"db.x\" }\n",
    )
    .unwrap();
    let e = AwsDbServerSettings::from_org_config(&config, "rds").unwrap_err();
    assert!(e.hint().unwrap().contains("did you mean") || e.hint().unwrap().contains("large"), "{e:?}");
}
