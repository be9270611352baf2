//! Secret values, secret keys and signed EKS tokens never show up in tracing output (TRACE,
//! the SDK's own events included), `Debug` output or errors, on success and error paths.

mod common;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use common::{boto3, moto};
use paved_aws::{Aws, AwsDbServerSettings, AwsSettings, EksTokens, RdsProvisioner, SecretsManagerStore};
use paved_core::secrecy::{ExposeSecret, SecretString};
use paved_core::{DatabaseRequest, DbEngine, DbProvisioner, SecretMap, SecretStore};

const VALUE: &str = "canary-value-3f9a7d1e";
const SECRET_KEY: &str = "canary-secret-key-8b2c4e6a";

#[tokio::test]
async fn secret_values_keys_and_tokens_never_leak() {
    let Some(moto) = moto() else { return };
    let capture = paved_testkit::CapturedLogs::start();

    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(common::Moto::REGION))
        .credentials_provider(Credentials::new("AKIDLEAKTEST", SECRET_KEY, None, None, "test"))
        .load()
        .await;
    let aws = Aws::from_sdk_config(AwsSettings::default(), config);
    let store = SecretsManagerStore::new(aws.clone());
    let mut shown = Vec::<String>::new();
    let mut show_err = |e: paved_core::Error| shown.push(format!("{e}\n{e:?}\n{:?}", e.hint()));
    let map = |v: &str| -> SecretMap { [("password".to_string(), SecretString::from(v.to_string()))].into() };

    // Success paths: write, write again, read, read a pinned version, read what boto3 wrote.
    store.put("leak/db", map(VALUE)).await.unwrap();
    store.put("leak/db", map(VALUE)).await.unwrap();
    let got = store.get("leak/db").await.unwrap();
    assert_eq!(got["password"].expose_secret(), VALUE);
    let pinned = store.get_ref(&"aws-sm://leak/db#password?version=1".parse().unwrap()).await.unwrap();
    boto3(
        &moto,
        &format!(
            r#"boto3.client("secretsmanager").create_secret(Name="leak/plain", SecretString="{VALUE}")
print("{{}}")"#
        ),
    );
    let mut debug_views = format!("{store:?}\n{got:?}\n{pinned:?}\n{aws:?}");
    // Error paths: not JSON, deleted, a bad name.
    show_err(store.get("leak/plain").await.unwrap_err());
    store.delete("leak/db").await.unwrap();
    show_err(store.get("leak/db").await.unwrap_err());
    show_err(store.put("leak//bad name", map(VALUE)).await.unwrap_err());

    // A database: the managed master password exists in moto, never in paved's hands.
    let rds = RdsProvisioner::new(aws.clone(), "rds", DbEngine::Postgres, AwsDbServerSettings::default()).unwrap();
    let request = DatabaseRequest::new("payments", "api", "postgres", "dev", "small").unwrap();
    let info = rds.provision(&request).await.unwrap();
    let master = boto3(
        &moto,
        &format!(
            r#"print(boto3.client("secretsmanager").get_secret_value(SecretId="{}")["SecretString"])"#,
            info.credentials_path.clone().unwrap()
        ),
    );
    let master_password = master["password"].as_str().unwrap().to_string();
    debug_views.push_str(&format!("\n{info:?}\n{rds:?}"));

    // An EKS token.
    let tokens = EksTokens::new(aws.clone(), "platform", None);
    let token = tokens.token().await.unwrap();
    debug_views.push_str(&format!("\n{tokens:?}\n{token:?}"));

    let logs = capture.stop();
    // The capture saw the SDK's work at TRACE.
    assert!(logs.contains("TRACE") && logs.contains("PutSecretValue"), "{}", &logs[..logs.len().min(2000)]);
    assert_eq!(shown.len(), 3);
    let errors = shown.join("\n");
    for (name, text) in [("logs", &logs), ("debug", &debug_views), ("errors", &errors)] {
        assert!(!text.contains(VALUE), "the secret value leaked into {name}");
        assert!(!text.contains(SECRET_KEY), "the secret access key leaked into {name}");
        assert!(!text.contains(&master_password), "the master password leaked into {name}");
        assert!(!text.contains(token.expose_secret()), "the EKS token leaked into {name}");
    }
}
