//! `SecretsManagerStore` against moto's Secrets Manager: the `SecretStore` behaviour suite,
//! boto3 interop both ways, versions and stages, and what is not a key/value secret.

mod common;

use std::sync::Arc;

use common::{aws, boto3, moto};
use paved_aws::SecretsManagerStore;
use paved_core::secrecy::{ExposeSecret, SecretString};
use paved_core::{SecretMap, SecretRef, SecretStore};
use paved_testkit::behavior::secret_store::{SecretStoreHarness, run};

fn map(pairs: &[(&str, &str)]) -> SecretMap {
    pairs.iter().map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))).collect()
}

#[tokio::test]
async fn secrets_manager_passes_the_secret_store_suite() {
    let Some(moto) = moto() else { return };
    let store = SecretsManagerStore::new(aws(&moto).await);
    let report = run(&SecretStoreHarness::new(Arc::new(store), "aws-sm://")).await;
    assert!(report.failed.is_empty(), "{report}");
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn boto3_reads_what_paved_wrote_and_paved_reads_what_boto3_wrote() {
    let Some(moto) = moto() else { return };
    let store = SecretsManagerStore::new(aws(&moto).await);
    assert_eq!(store.put("payments/api", map(&[("token", "t-1")])).await.unwrap(), 1);
    assert_eq!(store.put("payments/api", map(&[("token", "t-2")])).await.unwrap(), 2);
    let seen = boto3(
        &moto,
        r#"sm = boto3.client("secretsmanager")
v = sm.get_secret_value(SecretId="payments/api")
d = sm.describe_secret(SecretId="payments/api")
prev = sm.get_secret_value(SecretId="payments/api", VersionStage="AWSPREVIOUS")
print(json.dumps({"value": json.loads(v["SecretString"]), "version": v["VersionId"], "tags": d.get("Tags", []), "previous": json.loads(prev["SecretString"])}))"#,
    );
    assert_eq!(seen["value"]["token"], "t-2");
    assert_eq!(seen["previous"]["token"], "t-1");
    assert!(seen["version"].as_str().unwrap().starts_with("paved-v"), "{seen}");
    assert!(
        seen["tags"].as_array().unwrap().iter().any(|t| t["Key"] == "managed-by" && t["Value"] == "paved"),
        "{seen}"
    );
    // The previous stage through paved too, and a pinned version.
    assert_eq!(store.get_stage("payments/api", "AWSPREVIOUS").await.unwrap()["token"].expose_secret(), "t-1");
    let pinned: SecretRef = "aws-sm://payments/api#token?version=1".parse().unwrap();
    assert_eq!(store.get_ref(&pinned).await.unwrap()["token"].expose_secret(), "t-1");

    boto3(
        &moto,
        r#"sm = boto3.client("secretsmanager")
sm.create_secret(Name="payments/from-boto3", SecretString=json.dumps({"password": "b-1", "port": 5432}))
sm.put_secret_value(SecretId="payments/from-boto3", SecretString=json.dumps({"password": "b-2", "port": 5432}))
sm.create_secret(Name="payments/binary", SecretBinary=b"\x00\x01")
sm.create_secret(Name="payments/plain", SecretString="just-a-string-canary")
print("{}")"#,
    );
    let read = store.get("payments/from-boto3").await.unwrap();
    assert_eq!(read["password"].expose_secret(), "b-2");
    assert_eq!(read["port"].expose_secret(), "5432");
    // A boto3 secret has uuid versions: paved numbers the next one above their count.
    let next = store.put("payments/from-boto3", map(&[("password", "p-3")])).await.unwrap();
    assert_eq!(next, 3);
    // A rotation after paved's version 3 (a uuid version), then AWSCURRENT rolled back to it:
    // paved's next number is still above every version the secret ever had.
    boto3(
        &moto,
        r#"sm = boto3.client("secretsmanager")
sm.put_secret_value(SecretId="payments/from-boto3", SecretString=json.dumps({"password": "rotated"}))
vs = sm.list_secret_version_ids(SecretId="payments/from-boto3", IncludeDeprecated=True)["Versions"]
cur = [v["VersionId"] for v in vs if "AWSCURRENT" in v.get("VersionStages", [])][0]
sm.update_secret_version_stage(SecretId="payments/from-boto3", VersionStage="AWSCURRENT",
  MoveToVersionId="paved-v00000000000000000000000003", RemoveFromVersionId=cur)
print("{}")"#,
    );
    let next = store.put("payments/from-boto3", map(&[("password", "p-5")])).await.unwrap();
    assert_eq!(next, 5, "four versions so far");
    assert_eq!(store.get("payments/from-boto3").await.unwrap()["password"].expose_secret(), "p-5");
    let pinned: SecretRef = "aws-sm://payments/from-boto3#password?version=3".parse().unwrap();
    assert_eq!(store.get_ref(&pinned).await.unwrap()["password"].expose_secret(), "p-3");
    for (name, what) in [("payments/binary", "binary"), ("payments/plain", "not JSON")] {
        let e = store.get(name).await.unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains(what), "{text}");
        assert!(!text.contains("canary"), "{text}");
        assert!(e.hint().unwrap().contains("JSON"), "{e:?}");
    }
}

#[tokio::test]
async fn a_deleted_secret_is_not_found_and_a_put_restores_it() {
    let Some(moto) = moto() else { return };
    let store = SecretsManagerStore::new(aws(&moto).await);
    store.put("billing/db", map(&[("password", "one")])).await.unwrap();
    store.delete("billing/db").await.unwrap();
    let e = store.get("billing/db").await.unwrap_err();
    assert_eq!(e.kind(), paved_core::ErrorKind::NotFound, "{e}");
    assert!(store.list("billing").await.unwrap().is_empty());
    let v = store.put("billing/db", map(&[("password", "two")])).await.unwrap();
    assert_eq!(v, 2);
    assert_eq!(store.get("billing/db").await.unwrap()["password"].expose_secret(), "two");
    assert_eq!(store.delete("billing/never").await.unwrap_err().kind(), paved_core::ErrorKind::NotFound);
}
