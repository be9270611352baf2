//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, …).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::{Notification, Notifier};
use secrecy::SecretString;
use serde::Serialize;

use crate::error::{Error, Result, Webhook};
use crate::http::{DEFAULT_TIMEOUT, Poster, WebhookUrl};

/// The configuration key of the default webhook URL.
const DEFAULT_KEY: &str = "notify.slack.webhook_url";

/// Where one team's notifications go: its channel and, optionally, its own webhook.
/// `Debug` never shows the webhook URL.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SlackTeam {
    /// The channel, e.g. `#payments`; else the default channel.
    pub channel: Option<String>,
    /// The team's own incoming webhook; else the default webhook.
    pub webhook_url: Option<SecretString>,
}

impl SlackTeam {
    /// A team that uses the default channel and webhook until told otherwise.
    pub fn new() -> Self {
        SlackTeam::default()
    }

    /// Posts to `channel` (e.g. `#payments`).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Posts through this incoming webhook instead of the default one.
    pub fn webhook_url(mut self, url: impl Into<SecretString>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }
}

impl fmt::Debug for SlackTeam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackTeam")
            .field("channel", &self.channel)
            .field("webhook_url", &self.webhook_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Builds a [`SlackWebhook`]; see [`SlackWebhook::builder`].
#[derive(Debug, Clone)]
pub struct SlackWebhookBuilder {
    webhook_url: Option<SecretString>,
    default_channel: Option<String>,
    teams: BTreeMap<String, SlackTeam>,
    timeout: Duration,
}

impl SlackWebhookBuilder {
    /// The default incoming webhook, for teams without their own.
    pub fn webhook_url(mut self, url: impl Into<SecretString>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// The channel of teams without their own (else the webhook's own channel).
    pub fn default_channel(mut self, channel: impl Into<String>) -> Self {
        self.default_channel = Some(channel.into());
        self
    }

    /// Where the notifications of `team` go.
    pub fn team(mut self, team: impl Into<String>, settings: SlackTeam) -> Self {
        self.teams.insert(team.into(), settings);
        self
    }

    /// The timeout of each notification (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the settings (URLs, channels) and builds the notifier.
    pub fn build(self) -> Result<SlackWebhook> {
        let config = |message: String, hint: &str| Error::Config {
            notifier: SlackWebhook::NAME.into(),
            message,
            hint: hint.to_string(),
        };
        if self.webhook_url.is_none() && self.teams.values().all(|t| t.webhook_url.is_none()) {
            return Err(config(
                "no incoming webhook: neither a default one nor one for a team".into(),
                "set notify.slack.webhook_url (or notify.slack.teams.TEAM.webhook_url)",
            ));
        }
        let check_channel = |channel: &Option<String>, key: String| match channel {
            Some(c) if c.trim().is_empty() || c.chars().any(char::is_whitespace) => Err(config(
                format!("{key} {c:?} is not a channel name"),
                "write a channel as \"#payments\" (or a channel ID)",
            )),
            _ => Ok(()),
        };
        check_channel(&self.default_channel, "notify.slack.default_channel".into())?;
        let default_url = match self.webhook_url {
            Some(url) => Some(WebhookUrl::new(url, &Webhook::new(SlackWebhook::NAME, None, DEFAULT_KEY))?),
            None => None,
        };
        let mut teams = BTreeMap::new();
        for (team, settings) in self.teams {
            check_channel(&settings.channel, format!("notify.slack.teams.{team}.channel"))?;
            let url = match settings.webhook_url {
                Some(url) => {
                    let webhook = Webhook::new(SlackWebhook::NAME, Some(&team), team_key(&team));
                    Some(WebhookUrl::new(url, &webhook)?)
                }
                None => None,
            };
            teams.insert(team, Route { channel: settings.channel, url });
        }
        Ok(SlackWebhook {
            default_url,
            default_channel: self.default_channel,
            teams,
            http: Poster::new(SlackWebhook::NAME, self.timeout)?,
        })
    }
}

/// One team's resolved route.
#[derive(Debug, Clone)]
struct Route {
    channel: Option<String>,
    url: Option<WebhookUrl>,
}

/// Notifies teams through Slack-compatible incoming webhooks: a POST of
/// `{"channel": "#payments", "text": "…"}` (no `channel` when none is configured, so the
/// webhook's own channel is used) to the team's webhook, else the default one.
///
/// A team with neither its own webhook nor a default one is not notified. Webhook URLs are
/// secrets: they never appear in `Debug`, logs or errors; an error names the team and the
/// configuration key of its webhook.
///
/// ```
/// use paved_notify::{SlackTeam, SlackWebhook};
/// use secrecy::SecretString;
/// let slack = SlackWebhook::builder()
///     .webhook_url(SecretString::from("https://hooks.slack.com/services/T0/B0/XXXX"))
///     .default_channel("#platform")
///     .team("payments", SlackTeam::new().channel("#payments"))
///     .build()?;
/// assert!(!format!("{slack:?}").contains("XXXX"));
/// # Ok::<(), paved_notify::Error>(())
/// ```
#[derive(Clone)]
pub struct SlackWebhook {
    default_url: Option<WebhookUrl>,
    default_channel: Option<String>,
    teams: BTreeMap<String, Route>,
    http: Poster,
}

/// The body Slack expects.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    text: &'a str,
}

impl SlackWebhook {
    /// The notifier's name.
    pub const NAME: &'static str = "slack";

    /// A builder with no webhook yet, no channels and a 5 s timeout.
    pub fn builder() -> SlackWebhookBuilder {
        SlackWebhookBuilder {
            webhook_url: None,
            default_channel: None,
            teams: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The timeout of each notification.
    pub fn timeout(&self) -> Duration {
        self.http.timeout()
    }

    /// Sets the timeout of each notification.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.http.set_timeout(timeout);
    }

    /// The channel `team`'s notifications go to (`None`: the webhook's own channel).
    pub fn channel_for(&self, team: &str) -> Option<&str> {
        self.teams.get(team).and_then(|r| r.channel.as_deref()).or(self.default_channel.as_deref())
    }

    /// Sends `notification` to its team's channel; `Ok` without sending when the team has no
    /// webhook. The typed form of [`Notifier::notify`].
    pub async fn send(&self, notification: &Notification) -> Result<()> {
        let team = notification.team.as_str();
        let (url, key) = match self.teams.get(team).and_then(|r| r.url.as_ref()) {
            Some(url) => (url, team_key(team)),
            None => match &self.default_url {
                Some(url) => (url, DEFAULT_KEY.to_string()),
                None => {
                    tracing::debug!(team, "no Slack webhook for this team and no default one: not notified");
                    return Ok(());
                }
            },
        };
        let text = escape(&notification.text());
        let payload = Payload { channel: self.channel_for(team), text: &text };
        let body = serde_json::to_vec(&payload).expect("a payload of strings serializes");
        self.http.post_json(url, body, &Webhook::new(Self::NAME, Some(team), key)).await
    }
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let teams: BTreeMap<&str, (Option<&str>, bool)> =
            self.teams.iter().map(|(t, r)| (t.as_str(), (r.channel.as_deref(), r.url.is_some()))).collect();
        f.debug_struct("SlackWebhook")
            .field("webhook_url", &self.default_url.as_ref().map(|_| "<redacted>"))
            .field("default_channel", &self.default_channel)
            .field("teams (channel, own webhook)", &teams)
            .field("timeout", &self.http.timeout())
            .finish()
    }
}

#[async_trait]
impl Notifier for SlackWebhook {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn notify(&self, notification: &Notification) -> paved_core::Result<()> {
        Ok(self.send(notification).await?)
    }
}

/// The configuration key of `team`'s webhook URL.
fn team_key(team: &str) -> String {
    format!("notify.slack.teams.{team}.webhook_url")
}

/// Escapes the three characters Slack reads as markup (`&`, `<`, `>`).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_checks() {
        let slack = SlackWebhook::builder()
            .webhook_url(SecretString::from("https://hooks.example.com/default-s3cret"))
            .default_channel("#platform")
            .team("payments", SlackTeam::new().channel("#payments"))
            .team("search", SlackTeam::new().webhook_url(SecretString::from("https://hooks.example.com/search-s3cret")))
            .build()
            .unwrap();
        assert_eq!(slack.channel_for("payments"), Some("#payments"));
        assert_eq!(slack.channel_for("search"), Some("#platform"));
        assert_eq!(slack.channel_for("other"), Some("#platform"));
        let debug = format!("{slack:?}");
        assert!(!debug.contains("s3cret") && debug.contains("#payments"), "{debug}");

        let e = SlackWebhook::builder().default_channel("#platform").build().unwrap_err();
        assert_eq!(e.to_string(), "slack: no incoming webhook: neither a default one nor one for a team");
        let e = SlackWebhook::builder()
            .team("payments", SlackTeam::new().channel("pay ments").webhook_url(SecretString::from("https://h/x")))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("notify.slack.teams.payments.channel"), "{e}");
        let e = SlackWebhook::builder()
            .team("payments", SlackTeam::new().webhook_url(SecretString::from("hooks/s3cret")))
            .build()
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cret"));
        assert_eq!(
            e.hint().as_deref(),
            Some("set notify.slack.teams.payments.webhook_url to an https:// URL (or env:NAME, vault://PATH#KEY)")
        );
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
