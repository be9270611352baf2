//! A generic JSON webhook: the notification as JSON, for any receiver.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{Notification, Notifier};
use secrecy::SecretString;
use serde::Serialize;

use crate::error::{Result, Webhook};
use crate::http::{DEFAULT_TIMEOUT, Poster, WebhookUrl};

/// The configuration key of the URL.
const KEY: &str = "notify.webhook.url";

/// POSTs every notification as JSON to one URL, with these stable fields (absent values are
/// `null`):
///
/// ```json
/// {"text": "✅ my-service deployed to production (revision 3) https://…",
///  "kind": "deployed", "team": "payments", "app": "my-service", "environment": "production",
///  "revision": 3, "url": "https://…", "actor": "ci", "detail": null}
/// ```
///
/// `kind` is one of the [`NotificationKind`](paved_core::NotificationKind) names
/// (`deployed`, `rolled_back`, `rollout_failed`, `deploy_failed`, `rollback_failed`,
/// `database_provisioned`, `database_deprovisioned`; more may come). The URL is treated as a
/// secret: it never appears in `Debug`, logs or errors.
#[derive(Clone)]
pub struct JsonWebhook {
    url: WebhookUrl,
    http: Poster,
}

/// The body: the one-line text, then the notification's fields.
#[derive(Serialize)]
struct Body<'a> {
    text: String,
    #[serde(flatten)]
    notification: &'a Notification,
}

impl JsonWebhook {
    /// The notifier's name.
    pub const NAME: &'static str = "webhook";

    /// A webhook POSTing to `url` (checked: `http(s)://` with a host), with a 5 s timeout.
    pub fn new(url: impl Into<SecretString>) -> Result<Self> {
        let url = WebhookUrl::new(url.into(), &Webhook::new(Self::NAME, None, KEY))?;
        Ok(JsonWebhook { url, http: Poster::new(Self::NAME, DEFAULT_TIMEOUT)? })
    }

    /// Sets the timeout of each notification (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http.set_timeout(timeout);
        self
    }

    /// The timeout of each notification.
    pub fn timeout(&self) -> Duration {
        self.http.timeout()
    }

    /// The JSON body sent for `notification`.
    pub fn body(notification: &Notification) -> Vec<u8> {
        let body = Body { text: notification.text(), notification };
        serde_json::to_vec(&body).expect("a notification serializes")
    }

    /// Sends `notification`. The typed form of [`Notifier::notify`].
    pub async fn send(&self, notification: &Notification) -> Result<()> {
        let webhook = Webhook::new(Self::NAME, Some(&notification.team), KEY);
        self.http.post_json(&self.url, Self::body(notification), &webhook).await
    }
}

impl fmt::Debug for JsonWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonWebhook").field("url", &self.url).field("timeout", &self.http.timeout()).finish()
    }
}

#[async_trait]
impl Notifier for JsonWebhook {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn notify(&self, notification: &Notification) -> paved_core::Result<()> {
        Ok(self.send(notification).await?)
    }
}
