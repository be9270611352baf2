//! Shared setup of the AWS backend's tests: a moto server per test and an [`Aws`] pointed at it.

#![allow(dead_code, unreachable_pub)]

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use paved_aws::{Aws, AwsSettings};
pub use paved_testkit::Moto;

/// A moto server, or `None` (skip) outside CI when moto is not installed.
pub fn moto() -> Option<Moto> {
    Moto::start()
}

/// The SDK configuration of `moto`: its endpoint, region and test credentials.
pub async fn sdk_config(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(Moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// paved's AWS connection to `moto`.
pub async fn aws(moto: &Moto) -> Aws {
    Aws::from_sdk_config(AwsSettings::default(), sdk_config(moto).await)
}

/// Runs a Python snippet with boto3 against `moto` and answers its stdout (parsed as JSON).
pub fn boto3(moto: &Moto, script: &str) -> serde_json::Value {
    let prelude = "import boto3, json, sys\n";
    let out = moto.python().arg("-c").arg(format!("{prelude}{script}")).output().expect("run python");
    assert!(out.status.success(), "boto3 script failed: {}\n{script}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("boto3 script printed no JSON ({e}): {text}"))
}
