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
