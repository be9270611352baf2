//! One AWS connection ([`Aws`]): the SDK configuration, loaded on first use, and the clients
//! of the services paved calls.

use std::fmt;
use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use paved_core::{Error, Result};
use tokio::sync::OnceCell;

use crate::config::AwsSettings;
use crate::error::{ErrorContext, credential_source};

/// Where the environment's values come from.
type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// An AWS account and region as paved reaches it: the `[aws]` settings over the SDK's standard
/// chain (credentials, region, `AWS_ENDPOINT_URL`). The configuration is loaded on first use,
/// so building an `Aws` never dials anything (not even the instance metadata service).
#[derive(Clone)]
pub struct Aws {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AwsSettings,
    lookup: Lookup,
    config: OnceCell<SdkConfig>,
    /// An endpoint and fixed credentials given in code ([`Aws::at_endpoint`]).
    fixed: Option<(String, aws_credential_types::Credentials)>,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws").field("region", &self.inner.settings.region).finish_non_exhaustive()
    }
}

impl Aws {
    /// AWS as `settings` and the process environment describe it.
    pub fn new(settings: AwsSettings) -> Self {
        Self::with_lookup(settings, Arc::new(|k| std::env::var(k).ok()))
    }

    /// AWS as `settings` describe it; `lookup` reads the environment for hints (the SDK itself
    /// reads the process environment).
    pub fn with_lookup(settings: AwsSettings, lookup: Lookup) -> Self {
        Aws { inner: Arc::new(Inner { settings, lookup, config: OnceCell::new(), fixed: None }) }
    }

    /// AWS at `endpoint` (LocalStack, moto, a VPC endpoint) with fixed `credentials`, and the
    /// `[aws]` settings' region, retries and timeouts; what an embedding service or a test uses
    /// instead of the environment.
    pub fn at_endpoint(
        settings: AwsSettings,
        endpoint: impl Into<String>,
        credentials: aws_credential_types::Credentials,
    ) -> Self {
        let lookup: Lookup = Arc::new(|k| std::env::var(k).ok());
        let fixed = Some((endpoint.into(), credentials));
        Aws { inner: Arc::new(Inner { settings, lookup, config: OnceCell::new(), fixed }) }
    }

    /// AWS with an SDK configuration made elsewhere (tests, or an application that already has one).
    pub fn from_sdk_config(settings: AwsSettings, config: SdkConfig) -> Self {
        let aws = Self::new(settings);
        aws.inner.config.set(config).expect("a new cell is empty");
        aws
    }

    /// The `[aws]` settings.
    pub fn settings(&self) -> &AwsSettings {
        &self.inner.settings
    }

    /// The SDK configuration, loaded on first use. Fails when no region is configured.
    pub async fn sdk_config(&self) -> Result<&SdkConfig> {
        let settings = &self.inner.settings;
        let config = self
            .inner
            .config
            .get_or_init(|| async {
                let retry = RetryConfig::standard().with_max_attempts(settings.max_attempts.unwrap_or(3).max(1));
                let timeout = TimeoutConfig::builder()
                    .operation_timeout(settings.timeout())
                    .connect_timeout(settings.connect_timeout())
                    .build();
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).retry_config(retry).timeout_config(timeout);
                if let Some(region) = &settings.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some((endpoint, credentials)) = &self.inner.fixed {
                    loader = loader.endpoint_url(endpoint).credentials_provider(credentials.clone());
                }
                loader.load().await
            })
            .await;
        if config.region().is_none() {
            return Err(Error::Config {
                path: "[aws]".into(),
                line: None,
                message: "no AWS region is configured".into(),
                hint: Some("set [aws] region in paved.toml, or AWS_REGION".into()),
            });
        }
        Ok(config)
    }

    /// The region calls go to.
    pub async fn region(&self) -> Result<String> {
        Ok(self.sdk_config().await?.region().map(ToString::to_string).unwrap_or_default())
    }

    /// How errors of `backend` are reported.
    pub(crate) fn errors(&self, backend: &'static str) -> ErrorContext {
        let endpoint = match (self.inner.config.get(), &self.inner.fixed) {
            (Some(c), _) => c.endpoint_url().map(str::to_string),
            (None, Some((endpoint, _))) => Some(endpoint.clone()),
            (None, None) => (self.inner.lookup)("AWS_ENDPOINT_URL"),
        };
        ErrorContext {
            backend,
            credentials: credential_source(self.inner.lookup.as_ref()),
            endpoint,
            timeout: self.inner.settings.timeout(),
        }
    }
}

/// A service client made on first use from an [`Aws`].
pub(crate) struct Client<C> {
    aws: Aws,
    client: OnceCell<C>,
    backend: &'static str,
}

impl<C: Clone> Client<C> {
    pub(crate) fn new(aws: Aws, backend: &'static str) -> Self {
        Client { aws, client: OnceCell::new(), backend }
    }

    /// A client given ready-made (an application's own).
    pub(crate) fn ready(aws: Aws, backend: &'static str, client: C) -> Self {
        let cell = OnceCell::new();
        cell.set(client).ok();
        Client { aws, client: cell, backend }
    }

    pub(crate) async fn get(&self, make: impl FnOnce(&SdkConfig) -> C) -> Result<&C> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let config = self.aws.sdk_config().await?;
        Ok(self.client.get_or_init(|| async { make(config) }).await)
    }

    pub(crate) fn errors(&self) -> ErrorContext {
        self.aws.errors(self.backend)
    }

    /// Maps a failed call of this client; `doing` says what paved was doing.
    pub(crate) fn fail<E>(&self, doing: &str, e: crate::error::SdkFailure<E>) -> Error
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.errors().map(doing, e)
    }

    pub(crate) fn aws(&self) -> &Aws {
        &self.aws
    }
}
