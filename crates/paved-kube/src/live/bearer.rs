//! Bearer tokens the live target issues itself ([`TokenSource`]), e.g. an EKS token signed by
//! the AWS backend instead of running `aws eks get-token`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::{HeaderValue, Request, header::AUTHORIZATION};
use kube::client::Body;
use paved_core::Result;
use secrecy::{ExposeSecret, SecretString};

/// Where the live target gets the bearer token of each request. The source caches as it
/// sees fit; the target asks again at most every minute.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A valid token.
    async fn token(&self) -> Result<SecretString>;
}

/// Decides from a kubeconfig user's `exec` entry (command, arguments, environment) whether
/// paved issues the token itself, and with which source (`aws eks get-token --cluster-name NAME`
/// → an EKS token source). Answer `None` to run the command as configured.
pub type ExecReplacement =
    Arc<dyn Fn(&str, &[String], &[(String, String)]) -> Option<Arc<dyn TokenSource>> + Send + Sync>;

/// How long a token is reused before the source is asked again.
const REUSE: Duration = Duration::from_secs(60);

type Cached = Arc<Mutex<Option<(HeaderValue, Instant)>>>;
type Pending = Pin<Box<dyn Future<Output = Result<SecretString>> + Send>>;

/// The layer that puts `Authorization: Bearer …` on every request.
#[derive(Clone)]
pub(crate) struct BearerLayer {
    source: Arc<dyn TokenSource>,
    cached: Cached,
}

impl BearerLayer {
    pub(crate) fn new(source: Arc<dyn TokenSource>) -> Self {
        BearerLayer { source, cached: Arc::new(Mutex::new(None)) }
    }
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer { inner, source: self.source.clone(), cached: self.cached.clone(), pending: None, failed: None }
    }
}

/// The service of [`BearerLayer`]: readiness waits for a fresh token, then the request gets it.
/// A failed fetch fails the next request (never readiness: kube's `Buffer` would keep that
/// error for good), and the next readiness asks the source again; a 401 answer drops the
/// cached token.
pub(crate) struct Bearer<S> {
    inner: S,
    source: Arc<dyn TokenSource>,
    cached: Cached,
    pending: Option<Pending>,
    failed: Option<paved_core::Error>,
}

impl<S> Bearer<S> {
    fn fresh(&self) -> bool {
        let cached = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.as_ref().is_some_and(|(_, at)| at.elapsed() < REUSE)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> tower_service::Service<Request<Body>> for Bearer<S>
where
    S: tower_service::Service<Request<Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<http::Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        if self.failed.is_none() && !self.fresh() {
            let pending = self.pending.get_or_insert_with(|| {
                let source = self.source.clone();
                Box::pin(async move { source.token().await })
            });
            let token = match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(token) => token,
            };
            self.pending = None;
            let header = token.and_then(|t| {
                HeaderValue::from_str(&format!("Bearer {}", t.expose_secret())).map_err(|_| {
                    paved_core::Error::backend(
                        super::TARGET_NAME,
                        "the token source gave a token that is not a valid header value",
                        None,
                    )
                })
            });
            match header {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((value, Instant::now()));
                }
                Err(e) => self.failed = Some(e),
            }
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        if let Some(e) = self.failed.take() {
            return Box::pin(async move { Err(Box::new(e) as BoxError) });
        }
        let cached =
            self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|(v, _)| v.clone());
        if let Some(value) = cached {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let future = self.inner.call(request);
        let cache = self.cached.clone();
        Box::pin(async move {
            let response = future.await.map_err(Into::into)?;
            if response.status() == http::StatusCode::UNAUTHORIZED {
                *cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
            Ok(response)
        })
    }
}
