//! EKS tokens from an AWS connection's credentials: the documented format, reused for ten
//! minutes, never built from nothing.

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use base64::Engine;
use paved_aws::{Aws, AwsSettings, EksTokens};
use paved_core::secrecy::ExposeSecret;

#[tokio::test]
async fn tokens_are_signed_with_the_connections_credentials_and_reused() {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("AKIDPAVEDTEST", "secret-key-canary", None, None, "test"))
        .load()
        .await;
    let tokens = EksTokens::new(Aws::from_sdk_config(AwsSettings::default(), config), "platform", None);
    let first = tokens.token().await.unwrap();
    let text = first.expose_secret().strip_prefix("k8s-aws-v1.").unwrap().to_string();
    let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap();
    assert!(url.starts_with("https://sts.eu-central-1.amazonaws.com/?Action=GetCallerIdentity"), "{url}");
    assert!(url.contains("AKIDPAVEDTEST%2F") && !url.contains("secret-key-canary"), "{url}");
    assert_eq!(tokens.token().await.unwrap().expose_secret(), first.expose_secret(), "reused");
    assert!(!format!("{tokens:?}").contains("k8s-aws"));
}

#[tokio::test]
async fn the_signature_is_the_one_botocore_makes_for_aws_eks_get_token() {
    // The reference implementation: botocore's SigV4 query signer on the same request (what
    // `aws eks get-token` presigns), with the same credentials, time and cluster header.
    let Some(python) = paved_testkit::tool("python", paved_testkit::Moto::INSTALL_HINT) else { return };
    let script = r#"
import datetime, json
from unittest import mock
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
now = datetime.datetime(2023, 11, 14, 22, 13, 20)
with mock.patch("botocore.auth.get_current_datetime", return_value=now):
    req = AWSRequest(method="GET", url="https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
                     headers={"x-k8s-aws-id": "platform-prod"})
    SigV4QueryAuth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-tok"), "sts", "eu-west-1", expires=60).add_auth(req)
print(json.dumps(req.url))
"#;
    let out = std::process::Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let botocore: String = serde_json::from_slice(&out.stdout).unwrap();
    let signature = |url: &str| {
        url.split(['?', '&']).find_map(|p| p.strip_prefix("X-Amz-Signature=")).map(str::to_string).expect("a signature")
    };
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-tok".into()),
        None,
        "test",
    );
    let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let token = paved_aws::eks::token(&credentials, "eu-west-1", "platform-prod", time).unwrap();
    let ours = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.expose_secret().strip_prefix("k8s-aws-v1.").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(signature(&ours), signature(&botocore), "paved: {ours}\nbotocore: {botocore}");
}

#[tokio::test]
async fn no_credentials_is_a_denial_naming_where_they_would_come_from() {
    let config = aws_config::SdkConfig::builder()
        .region(Region::new("eu-central-1"))
        .behavior_version(BehaviorVersion::latest())
        .build();
    let tokens = EksTokens::new(Aws::from_sdk_config(AwsSettings::default(), config), "platform", None);
    let e = tokens.token().await.unwrap_err();
    assert_eq!(e.kind(), paved_core::ErrorKind::Denied, "{e}");
    assert!(e.hint().unwrap().contains("the credentials come from"), "{e:?}");
}
