//! The error type of `paved-notify`.
//!
//! Errors name the notifier, the team whose webhook was called, the configuration key of that
//! webhook and the HTTP status; never the webhook URL (it is a secret: whoever has it can
//! post to the channel), and never a transport error's own text (reqwest's includes the URL).

use std::fmt;
use std::time::Duration;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which webhook a request went to, for messages: the notifier, the team and the
/// configuration key its URL comes from. Never the URL itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Webhook {
    /// The notifier's name: `slack` or `webhook`.
    pub notifier: String,
    /// The team the notification was for, if any.
    pub team: Option<String>,
    /// The configuration key of the URL, e.g. `notify.slack.teams.payments.webhook_url`.
    pub key: String,
}

impl Webhook {
    pub(crate) fn new(notifier: &str, team: Option<&str>, key: impl Into<String>) -> Self {
        Webhook { notifier: notifier.to_string(), team: team.map(str::to_string), key: key.into() }
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.team {
            Some(team) => write!(f, "{}: the webhook for team {team:?}", self.notifier),
            None => write!(f, "{}: the webhook", self.notifier),
        }
    }
}

/// What can go wrong sending a notification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A webhook URL is not an `http(s)://` URL (the URL itself is not shown).
    #[error("{webhook} has an invalid URL: {reason}")]
    InvalidUrl {
        /// Which webhook.
        webhook: Webhook,
        /// What is wrong with it.
        reason: String,
    },
    /// The notifier's settings are incomplete or contradictory.
    #[error("{notifier}: {message}")]
    Config {
        /// The notifier's name.
        notifier: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("{notifier}: cannot build the HTTP client: {reason}")]
    Client {
        /// The notifier's name.
        notifier: String,
        /// What failed.
        reason: String,
    },
    /// The receiver could not be reached (connection refused, DNS, TLS).
    #[error("{webhook} is unreachable: {reason}")]
    Unreachable {
        /// Which webhook.
        webhook: Webhook,
        /// What the connection attempt reported (never the URL).
        reason: String,
    },
    /// The receiver did not answer within the timeout.
    #[error("{webhook} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// Which webhook.
        webhook: Webhook,
        /// The timeout of the request.
        timeout: Duration,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("{webhook} answered HTTP {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// Which webhook.
        webhook: Webhook,
        /// The HTTP status.
        status: u16,
        /// The first line of the answer (Slack's error code, e.g. `channel_not_found`), when
        /// it is short and does not repeat the URL.
        detail: Option<String>,
    },
}

impl Error {
    /// How to fix the error.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::InvalidUrl { webhook, .. } => {
                format!("set {} to an https:// URL (or env:NAME, vault://PATH#KEY)", webhook.key)
            }
            Error::Config { hint, .. } => hint.clone(),
            Error::Client { .. } => "check the system's TLS setup (CA certificates)".into(),
            Error::Unreachable { .. } => {
                "check that the webhook's host is reachable from here (DNS, proxy, firewall)".into()
            }
            Error::Timeout { .. } => {
                "check the receiver; raise notify.timeout_ms if it is just slow (notifications never hold up a deploy)"
                    .into()
            }
            Error::Status { webhook, status: 400, .. } if webhook.notifier == "slack" => format!(
                "check the channel configured for {} and that the webhook may post to it",
                webhook.team.as_deref().map_or("notify.slack".to_string(), |t| format!("notify.slack.teams.{t}"))
            ),
            Error::Status { webhook, status: 401 | 403 | 404 | 410, .. } => {
                format!("the webhook URL is wrong or revoked: create a new one and update {}", webhook.key)
            }
            Error::Status { status: 429, .. } => "the receiver rate-limits: send fewer notifications".into(),
            Error::Status { status, .. } if *status >= 500 => "the receiver failed: check it and try later".into(),
            Error::Status { webhook, .. } => format!("check the receiver behind {}", webhook.key),
        })
    }

    fn notifier(&self) -> &str {
        match self {
            Error::InvalidUrl { webhook, .. }
            | Error::Unreachable { webhook, .. }
            | Error::Timeout { webhook, .. }
            | Error::Status { webhook, .. } => &webhook.notifier,
            Error::Config { notifier, .. } | Error::Client { notifier, .. } => notifier,
        }
    }
}

impl From<Error> for paved_core::Error {
    fn from(e: Error) -> Self {
        let hint = e.hint();
        let backend = e.notifier().to_string();
        // Shown as "slack: MESSAGE": the message says everything, so no source is kept.
        let text = e.to_string();
        let message = text.strip_prefix(&format!("{backend}: ")).map_or_else(|| text.clone(), str::to_string);
        paved_core::Error::Backend { backend, message, hint, source: None }
    }
}
