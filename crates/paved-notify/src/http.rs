//! POSTing a JSON body to a webhook: one bounded request, one retry when the connection was
//! refused, and errors that never show the URL.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result, Webhook};

/// The default timeout of a request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest answer text kept as an error's detail.
const MAX_DETAIL: usize = 200;

/// A webhook URL, checked once: `http(s)://` with a host. Never shown.
#[derive(Clone)]
pub(crate) struct WebhookUrl(SecretString);

impl WebhookUrl {
    /// Checks `url`; errors describe the problem without the URL.
    pub(crate) fn new(url: SecretString, webhook: &Webhook) -> Result<Self> {
        let reason = match reqwest::Url::parse(url.expose_secret().trim()) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!("the scheme is {:?}", u.scheme())),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("it has no host".to_string()),
            Ok(_) => None,
            // The parser's messages name no part of the URL ("relative URL without a base").
            Err(e) => Some(e.to_string()),
        };
        match reason {
            Some(reason) => Err(Error::InvalidUrl { webhook: webhook.clone(), reason }),
            None => Ok(WebhookUrl(SecretString::from(url.expose_secret().trim().to_string()))),
        }
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An HTTP client that POSTs JSON with a bounded wait.
#[derive(Debug, Clone)]
pub(crate) struct Poster {
    client: reqwest::Client,
    timeout: Duration,
}

impl Poster {
    /// A client for `notifier` whose requests take at most `timeout` in all.
    pub(crate) fn new(notifier: &str, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("paved/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects is misconfigured; a POST turned into a GET would
            // "succeed" without delivering anything.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Client { notifier: notifier.to_string(), reason: innermost(&e) })?;
        Ok(Poster { client, timeout })
    }

    /// The timeout of each notification.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the timeout.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// POSTs `body` (JSON) to `url`. Takes at most the timeout in all: a refused connection is
    /// tried once more within what is left of it; nothing else is retried.
    pub(crate) async fn post_json(&self, url: &WebhookUrl, body: Vec<u8>, webhook: &Webhook) -> Result<()> {
        let secret = url.0.expose_secret();
        let parsed = reqwest::Url::parse(secret)
            .map_err(|e| Error::InvalidUrl { webhook: webhook.clone(), reason: e.to_string() })?;
        let deadline = Instant::now() + self.timeout;
        let mut retried = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout { webhook: webhook.clone(), timeout: self.timeout });
            }
            let sent = self
                .client
                .post(parsed.clone())
                .timeout(left)
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if e.is_timeout() => {
                    return Err(Error::Timeout { webhook: webhook.clone(), timeout: self.timeout });
                }
                Err(e) if e.is_connect() && !retried => {
                    retried = true;
                    tracing::debug!(webhook = %webhook, reason = %innermost(&e), "connection failed; trying once more");
                    continue;
                }
                Err(e) => return Err(Error::Unreachable { webhook: webhook.clone(), reason: innermost(&e) }),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            // The answer is read within the same deadline; an unreadable one leaves no detail.
            let text = response.bytes().await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            return Err(Error::Status {
                webhook: webhook.clone(),
                status: status.as_u16(),
                detail: detail(&text, secret, parsed.path()),
            });
        }
    }
}

/// The first line of an answer, when it is short and does not repeat the URL or its path
/// (a Slack webhook's path is its secret).
fn detail(text: &str, url: &str, path: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let leaks = line.contains(url) || (path.len() > 1 && line.contains(path));
    if leaks || line.chars().any(char::is_control) {
        return None;
    }
    Some(match line.char_indices().nth(MAX_DETAIL) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    })
}

/// The innermost cause of a transport error (`Connection refused (os error 111)`): reqwest's
/// own text includes the URL.
fn innermost(e: &reqwest::Error) -> String {
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    if std::ptr::addr_eq(inner, e as &(dyn std::error::Error + 'static)) {
        // No cause: describe the kind of failure only.
        return if e.is_connect() { "connection failed".into() } else { "the request failed".into() };
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Webhook {
        Webhook::new("slack", Some("payments"), "notify.slack.teams.payments.webhook_url")
    }

    #[test]
    fn urls_are_checked_without_being_shown() {
        for (url, reason) in [
            ("hooks.slack.com/services/T0/B0/s3cret", "relative URL without a base"),
            ("ftp://hooks.slack.com/services/T0/B0/s3cret", "the scheme is \"ftp\""),
        ] {
            let e = WebhookUrl::new(SecretString::from(url), &webhook()).unwrap_err();
            assert_eq!(e.to_string(), format!("slack: the webhook for team \"payments\" has an invalid URL: {reason}"));
            assert!(!format!("{e:?}").contains("s3cret"));
        }
        let ok = WebhookUrl::new(SecretString::from(" https://hooks.slack.com/services/T0/B0/s3cret "), &webhook());
        assert_eq!(format!("{:?}", ok.unwrap()), "<redacted>");
    }

    #[test]
    fn details_never_repeat_the_url() {
        let url = "https://hooks.example.com/services/T0/B0/s3cret";
        let path = "/services/T0/B0/s3cret";
        assert_eq!(detail("\nchannel_not_found\nmore", url, path).as_deref(), Some("channel_not_found"));
        assert_eq!(detail("no hook at /services/T0/B0/s3cret", url, path), None);
        assert_eq!(detail(&format!("bad {url}"), url, path), None);
        assert_eq!(detail("  ", url, path), None);
        let long = "x".repeat(500);
        assert_eq!(detail(&long, url, path).unwrap().chars().count(), MAX_DETAIL + 1);
    }
}
