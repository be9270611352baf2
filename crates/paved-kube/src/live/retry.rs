//! Retries with jittered exponential backoff, and turning `kube` errors into paved errors.

use std::future::Future;
use std::time::Duration;

use paved_core::Error;

use super::TARGET_NAME;

/// How API requests are retried on throttling (429), server errors (5xx) and connection
/// failures (refused, reset, timed out). Other errors are returned at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (default 5).
    pub attempts: u32,
    /// The delay before the first retry; doubled on each retry (default 200 ms).
    pub base_delay: Duration,
    /// The longest delay between two attempts (default 5 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// A policy with `attempts` attempts and the given delays.
    pub fn new(attempts: u32, base_delay: Duration, max_delay: Duration) -> Self {
        RetryPolicy { attempts: attempts.max(1), base_delay, max_delay }
    }

    /// The delay before retry number `retry` (0-based): exponential, capped, with "equal
    /// jitter" (a random point in the upper half), so that many clients do not retry in step.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter_nanos = fastrand::u64(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_nanos(jitter_nanos)
    }
}

/// `true` for errors worth retrying: throttling, server errors, and connection failures
/// (but not TLS failures: a certificate the client refuses stays refused).
pub(crate) fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            !is_tls_failure(&root_cause(e))
        }
        _ => false,
    }
}

/// `true` when the innermost error of a connection failure is about TLS (certificates,
/// handshakes), which retrying cannot fix.
pub(crate) fn is_tls_failure(root_cause: &str) -> bool {
    let lower = root_cause.to_ascii_lowercase();
    ["certificate", "handshake", "tls", "unknownissuer", "bad signature"].iter().any(|w| lower.contains(w))
}

/// `true` when the error is a connection-level failure (no HTTP answer at all).
pub(crate) fn is_connection(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_))
}

/// Runs `f` until it succeeds, fails with a non-transient error, or runs out of attempts.
pub(crate) async fn retry<T, F, Fut>(policy: &RetryPolicy, mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt + 1 < policy.attempts && is_transient(&e) => {
                let delay = policy.delay(attempt);
                tracing::debug!(error = %e, attempt, ?delay, "transient Kubernetes API error, retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The HTTP status code of an API error, if the server answered.
pub(crate) fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Turns a `kube` error into a paved error that says what was being done, where, and how to
/// fix it. `server` names the cluster (`context kind-dev at https://127.0.0.1:6443`).
pub(crate) fn to_error(server: &str, doing: &str, e: kube::Error) -> Error {
    let (message, hint) = match &e {
        kube::Error::Api(s) if s.code == 401 => (
            format!("{doing}: unauthorized by the API server ({server}): {}", s.message),
            "your credentials were refused; refresh them (e.g. log in again) or check the `context`".to_string(),
        ),
        kube::Error::Api(s) if s.code == 403 => (
            format!("{doing}: forbidden ({server}): {}", s.message),
            "paved needs get/list/watch/create/patch/delete on the app's objects and Secrets in its namespace; ask your cluster admin for that role".to_string(),
        ),
        kube::Error::Api(s) => (
            format!("{doing}: {} ({}, HTTP {})", s.message, if s.reason.is_empty() { "error" } else { &s.reason }, s.code),
            match s.code {
                429 | 500..=599 => "the API server kept failing after retries; check the cluster's health and try again".to_string(),
                422 | 400 => "the object was rejected by the API server; check the escape hatches (`custom_manifests`, `extra_manifests`) that changed it".to_string(),
                _ => format!("check the cluster ({server})"),
            },
        ),
        e if is_connection(e) && is_tls_failure(&root_cause(e)) => (
            format!("{doing}: the TLS connection to the Kubernetes API server ({server}) failed: {}", root_cause(e)),
            "check the cluster's CA (certificate-authority-data in the kubeconfig) and the `context`; the server name must match its certificate".to_string(),
        ),
        e if is_connection(e) => (
            format!("{doing}: cannot reach the Kubernetes API server ({server}): {}", root_cause(e)),
            "check the `context` (`kubectl config current-context`) and the `kubeconfig` (or KUBECONFIG), and that the cluster is running and reachable".to_string(),
        ),
        other => (format!("{doing}: {other}"), format!("check the cluster ({server})")),
    };
    Error::Backend { backend: TARGET_NAME.into(), message, hint: Some(hint), source: Some(Box::new(e)) }
}

/// The innermost error message (e.g. `Connection refused (os error 111)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_told_apart_from_unreachable_servers() {
        assert!(is_tls_failure("invalid peer certificate: UnknownIssuer"));
        assert!(is_tls_failure("received fatal alert: HandshakeFailure"));
        assert!(!is_tls_failure("Connection refused (os error 111)"));
        assert!(!is_tls_failure("connection reset by peer"));
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        for retry in 0..10 {
            let d = p.delay(retry);
            let full = (p.base_delay * 2u32.pow(retry.min(10))).min(p.max_delay);
            assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
    }

    #[test]
    fn classification() {
        let status = |code| {
            kube::Error::Api(
                kube::core::Status { code, message: "x".into(), ..kube::core::Status::failure("x", "y") }.boxed(),
            )
        };
        assert!(is_transient(&status(500)));
        assert!(is_transient(&status(429)));
        assert!(!is_transient(&status(409)));
        assert!(!is_transient(&status(404)));
        let e = to_error("context c at https://127.0.0.1:1", "applying Deployment/a", status(403));
        assert!(e.to_string().contains("forbidden"), "{e}");
        assert!(e.hint().is_some());
    }
}
