//! AWS SDK errors as [`paved_core::Error`]s of the right kind, with a hint.
//!
//! Throttling, 5xx and transient network errors are retried by the SDK's standard retry mode
//! before they get here. Credentials that cannot be found or have expired become
//! [`Error::Denied`] naming the credential source the chain would use; an endpoint that does
//! not answer becomes [`Error::Unavailable`] naming it. Messages are the service's own (they
//! never carry secret values: paved sends none that could be echoed).

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use paved_core::Error;

/// Where the SDK's default chain takes credentials from, described for a hint.
pub fn credential_source(lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let set = |k: &str| lookup(k).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") {
        "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)".into()
    } else if let Some(profile) = lookup("AWS_PROFILE").filter(|p| !p.is_empty()) {
        format!("the profile {profile} (AWS_PROFILE) of ~/.aws/config and ~/.aws/credentials")
    } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, e.g. IRSA)".into()
    } else if set("AWS_CONTAINER_CREDENTIALS_FULL_URI") || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        "the container credentials endpoint (ECS, EKS Pod Identity)".into()
    } else {
        "the default profile of ~/.aws/config and ~/.aws/credentials, then the instance metadata service (IMDS)".into()
    }
}

/// A failed SDK call.
pub(crate) type SdkFailure<E> = SdkError<E, HttpResponse>;

/// What paved knows about the connection when it maps an error.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    /// The backend's name (`aws-rds`, `aws-sm`, …).
    pub backend: &'static str,
    /// The credential source, for hints ([`credential_source`]).
    pub credentials: String,
    /// The endpoint override, if any (`AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The time one operation may take.
    pub timeout: std::time::Duration,
}

/// A service error's code (`DBInstanceNotFound`, `ResourceNotFoundException`), if the service
/// answered with one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

impl ErrorContext {
    /// Maps a failed call; `doing` says what paved was doing ("create the RDS instance x").
    pub(crate) fn map<E>(&self, doing: &str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let backend = self.backend.to_string();
        let endpoint = || self.endpoint.clone().unwrap_or_else(|| "the regional AWS endpoint".into());
        if let Some(e) = credentials_error(&err) {
            return Error::Denied {
                backend,
                message: format!("could not {doing}: no usable AWS credentials ({e})"),
                hint: Some(format!(
                    "the credentials come from {}; refresh them (e.g. `aws sso login`) or set another source",
                    self.credentials
                )),
            };
        }
        // No SDK error is kept as a source: a response it holds may carry a secret's body.
        let unknown = "the call may or may not have taken effect: look again (provisioning is idempotent) before retrying by hand";
        match &err {
            SdkError::TimeoutError(_) => Error::Timeout {
                backend,
                operation: doing.to_string(),
                after: self.timeout,
                hint: Some(format!(
                    "{} did not answer in time (check the network, or raise [aws] timeout_seconds); {unknown}",
                    endpoint()
                )),
            },
            SdkError::DispatchFailure(d) if !d.is_timeout() && !d.is_other() => Error::Unavailable {
                backend,
                message: format!("could not {doing}: {} cannot be reached ({})", endpoint(), chain(&err)),
                hint: Some(
                    "check the endpoint (AWS_ENDPOINT_URL), the region and the network; the request was not delivered"
                        .into(),
                ),
                source: None,
            },
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::Unavailable {
                backend,
                message: format!("could not {doing}: no usable answer from {} ({})", endpoint(), chain(&err)),
                hint: Some(unknown.into()),
                source: None,
            },
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("error").to_string();
                let message = format!("could not {doing}: {code}: {}", e.message().unwrap_or("no message"));
                let denied = |hint: String| Error::Denied {
                    backend: backend.clone(),
                    message: message.clone(),
                    hint: Some(hint),
                };
                let unavailable = |hint: &str| Error::Unavailable {
                    backend: backend.clone(),
                    message: message.clone(),
                    hint: Some(hint.into()),
                    source: None,
                };
                let failed = |hint: &str| Error::Backend {
                    backend: backend.clone(),
                    message: message.clone(),
                    hint: Some(hint.into()),
                    source: None,
                };
                match code.as_str() {
                    "ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId" | "UnrecognizedClientException"
                    | "InvalidSignatureException" | "SignatureDoesNotMatch" | "AuthFailure" => denied(format!(
                        "the credentials (from {}) are expired or not valid; refresh them (e.g. `aws sso login`)",
                        self.credentials
                    )),
                    "RequestExpired" | "RequestTimeTooSkewed" => {
                        denied("this machine's clock is off: signed requests are valid for minutes; sync the clock (NTP)".into())
                    }
                    "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError" => {
                        denied("grant the permission to the role paved runs as (README: \"IAM permissions\")".into())
                    }
                    "Throttling" | "ThrottlingException" | "Throttled" | "RequestLimitExceeded" | "TooManyRequestsException" => {
                        unavailable("AWS throttled the calls after every retry; try again later or raise [aws] max_attempts")
                    }
                    "InvalidParameterValue" | "InvalidParameterCombination" | "InvalidParameterException" | "InvalidParameter"
                    | "ValidationException" | "ValidationError" => Error::InvalidInput {
                        field: "paved.toml".into(),
                        value: String::new(),
                        reason: message.clone(),
                        hint: Some(
                            "check the settings of the database server or [aws] (engine_version, sizes' instance_class, kms_key_id, …) against what the region offers".into(),
                        ),
                    },
                    "InvalidDBInstanceState" | "InvalidDBInstanceStateFault" | "InvalidDBClusterStateFault" | "InvalidDBClusterState" => {
                        Error::Conflict {
                            what: backend.clone(),
                            message: message.clone(),
                            hint: Some("the database is busy (being created, modified or deleted); ask again when it is available".into()),
                        }
                    }
                    "InstanceQuotaExceeded" | "StorageQuotaExceeded" | "DBClusterQuotaExceededFault" | "SnapshotQuotaExceeded"
                    | "LimitExceededException" | "LimitExceeded" => {
                        failed("an account quota is reached; remove what is unused or ask AWS for a higher quota (Service Quotas)")
                    }
                    "KMSKeyNotAccessibleFault" | "EncryptionFailure" | "DecryptionFailure" | "KMSKeyNotAccessible" => failed(
                        "the KMS key cannot be used: check kms_key_id, that the key is enabled, and that its policy lets the role paved runs as use it",
                    ),
                    _ if service.raw().status().as_u16() >= 500 => unavailable("the service failed after every retry; try again later"),
                    _ => failed("see the service's message above"),
                }
            }
            _ => Error::Backend {
                backend,
                message: format!("could not {doing}: {}", chain(&err)),
                hint: None,
                source: None,
            },
        }
    }
}

fn credentials_error<E, R>(err: &SdkError<E, R>) -> Option<&aws_credential_types::provider::error::CredentialsError>
where
    E: StdError + 'static,
    R: std::fmt::Debug,
{
    let mut source: Option<&(dyn StdError + 'static)> = StdError::source(err);
    while let Some(e) = source {
        if let Some(c) = e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>() {
            return Some(c);
        }
        source = e.source();
    }
    None
}

/// An error and its sources, joined (the SDK's top-level `Display` is terse).
fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}
