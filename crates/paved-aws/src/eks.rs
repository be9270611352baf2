//! The token an EKS cluster accepts, signed here: what `aws eks get-token` prints, without the
//! `aws` CLI.
//!
//! The token is `k8s-aws-v1.` followed by the unpadded base64url of a presigned STS
//! `GetCallerIdentity` URL (`https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15`
//! with SigV4 in its query, valid 60 s, the header `x-k8s-aws-id: {cluster}` signed along). The
//! cluster's authenticator calls that URL to learn who is asking; EKS accepts a token for 15
//! minutes, and [`EksTokens`] makes a new one after 10.
//!
//! The kube target uses it when `[aws.eks] cluster` is set, or when the kubeconfig's user runs
//! `aws eks get-token --cluster-name NAME` ([`cluster_of_exec`]).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use paved_core::secrecy::SecretString;
use paved_core::{Error, Result};

use crate::aws::Aws;

/// The prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid (the authenticator's limit is 60 s for the signature;
/// the token it yields is accepted for 15 minutes).
const URL_LIFETIME: Duration = Duration::from_secs(60);
/// When paved makes a new token.
const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// Signs the token for `cluster` in `region` with `credentials`, at `time`.
pub fn token(credentials: &Credentials, region: &str, cluster: &str, time: SystemTime) -> Result<SecretString> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::backend("eks", format!("could not sign the EKS token for cluster {cluster}: {what}: {e}"), None)
    };
    // The China partition has its own domain.
    let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    let host = format!("sts.{region}.{domain}");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_LIFETIME);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| fail("signing parameters", &e))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_HEADER, cluster)];
    let signable = SignableRequest::new("GET", url.as_str(), headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| fail("request", &e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| fail("signature", &e))?.into_parts();
    let mut request = http::Request::get(&url).body(()).map_err(|e| fail("request", &e))?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = request.uri().to_string();
    Ok(SecretString::from(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed.as_bytes())
    )))
}

/// The cluster (and region, when given) of a kubeconfig exec entry that runs
/// `aws eks get-token --cluster-name NAME [--region REGION]` (or `--cluster-id`), which paved
/// replaces by signing the token itself with the default chain's credentials. Entries that ask
/// for another identity (`--profile`, `--role-arn`, or `AWS_*` variables other than the region
/// in their environment) or run any other command are left to run as configured.
pub fn cluster_of_exec(command: &str, args: &[String], env: &[(String, String)]) -> Option<(String, Option<String>)> {
    let program = std::path::Path::new(command).file_name()?.to_str()?;
    if program != "aws" || !args.windows(2).any(|w| w[0] == "eks" && w[1] == "get-token") {
        return None;
    }
    let value = |flag: &str| {
        args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix(flag) {
            Some("") => args.get(i + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        })
    };
    let region_var = |name: &str| matches!(name, "AWS_REGION" | "AWS_DEFAULT_REGION");
    if value("--role-arn").is_some()
        || value("--profile").is_some()
        || env.iter().any(|(name, _)| name.starts_with("AWS_") && !region_var(name))
    {
        return None;
    }
    let cluster = value("--cluster-name").or_else(|| value("--cluster-id"))?;
    let region = value("--region").or_else(|| env.iter().find(|(n, _)| region_var(n)).map(|(_, v)| v.clone()));
    Some((cluster, region))
}

/// Tokens for one EKS cluster, from the credentials of an [`Aws`] connection, made anew every
/// 10 minutes.
pub struct EksTokens {
    aws: Aws,
    cluster: String,
    region: Option<String>,
    cached: Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for EksTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksTokens")
            .field("cluster", &self.cluster)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl EksTokens {
    /// Tokens for `cluster` in `region` (default: the connection's region).
    pub fn new(aws: Aws, cluster: impl Into<String>, region: Option<String>) -> Self {
        EksTokens { aws, cluster: cluster.into(), region, cached: Mutex::new(None) }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// A token, made anew when the last is 10 minutes old.
    pub async fn token(&self) -> Result<SecretString> {
        if let Some((token, made)) = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && made.elapsed() < REFRESH_AFTER
        {
            return Ok(token.clone());
        }
        let config = self.aws.sdk_config().await?;
        let errors = self.aws.errors("eks");
        let provider = config.credentials_provider().ok_or_else(|| Error::Denied {
            backend: "eks".into(),
            message: "no AWS credentials provider is configured".into(),
            hint: Some(format!("the credentials come from {}", errors.credentials)),
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| Error::Denied {
            backend: "eks".into(),
            message: format!(
                "could not sign a token for EKS cluster {}: no usable AWS credentials ({e})",
                self.cluster
            ),
            hint: Some(format!(
                "the credentials come from {}; refresh them (e.g. `aws sso login`) or set another source",
                errors.credentials
            )),
        })?;
        let region = match &self.region {
            Some(r) => r.clone(),
            None => self.aws.region().await?,
        };
        let token = token(&credentials, &region, &self.cluster, SystemTime::now())?;
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_core::secrecy::ExposeSecret;

    fn decode(token: &SecretString) -> String {
        let text = token.expose_secret();
        let body = text.strip_prefix(TOKEN_PREFIX).expect("the documented prefix");
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).expect("unpadded base64url"))
            .unwrap()
    }

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_url_bound_to_the_cluster() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-tok".into()),
            None,
            "test",
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = token(&creds, "eu-west-1", "platform-prod", time).unwrap();
        assert!(!token.expose_secret().contains('='), "no padding");
        let url = decode(&token);
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20231114T221320Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=session-tok",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        let signature = url.split("X-Amz-Signature=").nth(1).expect("a signature").split('&').next().unwrap();
        assert_eq!(signature.len(), 64, "{signature}");
        assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
        // Deterministic for the same inputs; another cluster, another signature.
        assert_eq!(decode(&super::token(&creds, "eu-west-1", "platform-prod", time).unwrap()), url);
        assert_ne!(decode(&super::token(&creds, "eu-west-1", "other", time).unwrap()), url);
        // Never the secret key, in the token or its Debug.
        assert!(!url.contains("wJalrXUtnFEMI") && !format!("{token:?}").contains("k8s-aws-v1"));
    }

    #[test]
    fn the_aws_cli_exec_entry_is_recognised_and_others_are_left_alone() {
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let none: &[(String, String)] = &[];
        let of = |command: &str, a: &str, env: &[(String, String)]| cluster_of_exec(command, &args(a), env);
        let region = [("AWS_REGION".to_string(), "us-west-2".to_string())];
        let profile = [("AWS_PROFILE".to_string(), "ops".to_string())];
        assert_eq!(
            of("aws", "--region eu-west-1 eks get-token --cluster-name prod --output json", none),
            Some(("prod".into(), Some("eu-west-1".into())))
        );
        assert_eq!(of("/usr/local/bin/aws", "eks get-token --cluster-name=prod", none), Some(("prod".into(), None)));
        assert_eq!(
            of("aws", "eks get-token --cluster-name prod", &region),
            Some(("prod".into(), Some("us-west-2".into())))
        );
        // Another identity than the default chain's: the command runs as configured.
        assert_eq!(of("aws", "eks get-token --cluster-name prod --role-arn arn:aws:iam::1:role/x", none), None);
        assert_eq!(of("aws", "--profile ops eks get-token --cluster-name prod", none), None);
        assert_eq!(of("aws", "eks get-token --cluster-name prod", &profile), None);
        assert_eq!(of("aws-iam-authenticator", "token -i prod", none), None);
        assert_eq!(of("aws", "sts get-caller-identity", none), None);
    }
}
