//! The `[notify]` section of `paved.toml`, and the notifiers it describes.
//!
//! ```toml
//! [notify]
//! timeout_ms = 5000                                  # per notification; default 5000
//!
//! [notify.slack]                                     # Slack-compatible incoming webhooks
//! webhook_url = "env:SLACK_WEBHOOK_URL"              # the default webhook (optional)
//! default_channel = "#platform"                      # optional; else the webhook's channel
//!
//! [notify.slack.teams.payments]                      # per team, optional
//! channel = "#payments"
//! webhook_url = "vault://secret/payments/slack#url"  # optional; else the default webhook
//!
//! [notify.webhook]                                   # a generic JSON webhook
//! url = "env:PAVED_WEBHOOK_URL"
//! ```
//!
//! Webhook URLs are secrets. Write them as `env:NAME` (an environment variable) or as a
//! secret reference (`vault://MOUNT/PATH#KEY`, `aws-sm://NAME#KEY`) read through the secret
//! store when the notifiers are built; a literal `https://…` URL is accepted but puts the
//! secret in the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use paved_core::{Error, Notifier, Result, SecretRef, SecretScheme, SecretStore, Team};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::http::DEFAULT_TIMEOUT;
use crate::{JsonWebhook, SlackTeam, SlackWebhook};

/// The longest timeout a notification may have: notifications never hold up a deploy for long.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// Where a secret value (a webhook URL) comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum SecretSource {
    /// `env:NAME`: the environment variable `NAME`.
    Env(String),
    /// `vault://…` or `aws-sm://…`: a value in the secret store.
    Ref(SecretRef),
    /// The value itself, written in the file (an `http(s)://` URL).
    Literal(SecretString),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "Env({name:?})"),
            SecretSource::Ref(r) => write!(f, "Ref({r})"),
            SecretSource::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

impl SecretSource {
    /// Parses the value of the configuration key `key` (in `source`).
    pub fn parse(value: &str, key: &str, source: &Path) -> Result<Self> {
        let value = value.trim();
        if let Some(name) = value.strip_prefix("env:") {
            let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(config_error(
                    source,
                    format!("{key}: \"env:{name}\" does not name an environment variable"),
                    "write env:NAME, e.g. env:SLACK_WEBHOOK_URL",
                ));
            }
            return Ok(SecretSource::Env(name.to_string()));
        }
        if value.starts_with("https://") || value.starts_with("http://") {
            return Ok(SecretSource::Literal(SecretString::from(value.to_string())));
        }
        if value.contains("://") {
            let reference = SecretRef::new(value).map_err(|e| {
                let hint = e.hint().unwrap_or("write vault://MOUNT/PATH#KEY or aws-sm://NAME#KEY").to_string();
                config_error(source, format!("{key}: {e}"), &hint)
            })?;
            if reference.scheme() == SecretScheme::Kubernetes {
                return Err(config_error(
                    source,
                    format!("{key}: k8s:// references name a Secret in an app's namespace, which paved cannot read"),
                    "use env:NAME or vault://MOUNT/PATH#KEY",
                ));
            }
            return Ok(SecretSource::Ref(reference));
        }
        Err(config_error(
            source,
            format!("{key} is neither env:NAME, a secret reference nor an http(s):// URL"),
            "write env:SLACK_WEBHOOK_URL or vault://secret/platform/slack#url (the URL is a secret)",
        ))
    }

    /// Reads the value: from `env` (the environment lookup) or through `secrets`.
    pub async fn resolve(
        &self,
        key: &str,
        source: &Path,
        secrets: Option<&dyn SecretStore>,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<SecretString> {
        match self {
            SecretSource::Literal(value) => Ok(value.clone()),
            SecretSource::Env(name) => match env(name).filter(|v| !v.trim().is_empty()) {
                Some(value) => Ok(SecretString::from(value)),
                None => Err(config_error(
                    source,
                    format!("{key}: the environment variable {name} is not set"),
                    &format!("export {name}=https://… (the webhook's URL)"),
                )),
            },
            SecretSource::Ref(reference) => {
                let Some(store) = secrets else {
                    return Err(config_error(
                        source,
                        format!(
                            "{key} is a {}:// reference but no secret store is configured",
                            reference.scheme().as_str()
                        ),
                        "configure the secret store (e.g. [vault] and VAULT_ADDR), or use env:NAME",
                    ));
                };
                let mut data = store.get_ref(reference).await.map_err(|e| match e {
                    Error::NotFound { .. } => Error::NotFound {
                        what: format!("secret {reference} (the value of {key})"),
                        hint: Some(format!(
                            "store the webhook URL there with `SecretStore::put` at {} url=URL",
                            reference.path()
                        )),
                    },
                    other => other,
                })?;
                let found = match reference.key() {
                    Some(k) => data.remove(k),
                    None if data.len() == 1 => data.pop_first().map(|(_, v)| v),
                    None => None,
                };
                found.ok_or_else(|| {
                    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                    Error::NotFound {
                        what: format!(
                            "key \"{}\" of secret {reference} (the value of {key})",
                            reference.key().unwrap_or("")
                        ),
                        hint: Some(format!("the secret has the keys {keys:?}; name one after '#'")),
                    }
                })
            }
        }
    }
}

/// `[notify.slack]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SlackConfig {
    /// `webhook_url`: the default incoming webhook.
    pub webhook_url: Option<SecretSource>,
    /// `default_channel`: the channel of teams without their own.
    pub default_channel: Option<String>,
    /// `[notify.slack.teams.NAME]`: per-team channel and webhook.
    pub teams: BTreeMap<String, SlackTeamConfig>,
}

/// `[notify.slack.teams.NAME]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SlackTeamConfig {
    /// `channel`, e.g. `#payments`.
    pub channel: Option<String>,
    /// `webhook_url`: the team's own incoming webhook.
    pub webhook_url: Option<SecretSource>,
}

/// `[notify.webhook]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// `url`: where the JSON is POSTed.
    pub url: SecretSource,
}

/// The `[notify]` section: which notifiers to build, before their secrets are read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// `timeout_ms`: the timeout of each notification (default 5 s, at most 60 s).
    pub timeout: Duration,
    /// `[notify.slack]`, if configured.
    pub slack: Option<SlackConfig>,
    /// `[notify.webhook]`, if configured.
    pub webhook: Option<WebhookConfig>,
    /// The file the section was read from, for messages.
    pub source: PathBuf,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            timeout: DEFAULT_TIMEOUT,
            slack: None,
            webhook: None,
            source: PathBuf::from("<built-in configuration>"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [notify] table")]
struct RawNotify {
    timeout_ms: Option<u64>,
    slack: Option<toml::Value>,
    webhook: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [notify.slack] table")]
struct RawSlack {
    webhook_url: Option<String>,
    default_channel: Option<String>,
    #[serde(default)]
    teams: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [notify.slack.teams.NAME] table")]
struct RawTeam {
    channel: Option<String>,
    webhook_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [notify.webhook] table")]
struct RawWebhook {
    url: String,
}

impl NotifyConfig {
    /// Parses the contents of the `[notify]` table of `source` (its keys, not the whole
    /// file). Unknown keys are errors with a did-you-mean hint; secrets are not read yet.
    pub fn from_toml(value: &toml::Value, source: &Path) -> Result<NotifyConfig> {
        let raw: RawNotify = section(value, "notify", source)?;
        let timeout = match raw.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(ms @ 1..=MAX_TIMEOUT_MS) => Duration::from_millis(ms),
            Some(ms) => {
                return Err(config_error(
                    source,
                    format!("notify.timeout_ms = {ms} is not between 1 and {MAX_TIMEOUT_MS}"),
                    "use e.g. 5000 (notifications never hold up a deploy for long)",
                ));
            }
        };
        let slack = raw.slack.as_ref().map(|v| slack_config(v, source)).transpose()?;
        let webhook = match raw.webhook.as_ref() {
            Some(v) => {
                let raw: RawWebhook = section(v, "notify.webhook", source)?;
                Some(WebhookConfig { url: SecretSource::parse(&raw.url, "notify.webhook.url", source)? })
            }
            None => None,
        };
        Ok(NotifyConfig { timeout, slack, webhook, source: source.to_path_buf() })
    }

    /// `true` when no notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.slack.is_none() && self.webhook.is_none()
    }

    /// Reads the secrets (`env:` from `env`, references through `secrets`) and builds the
    /// configured notifiers: Slack first, then the JSON webhook.
    pub async fn notifiers(
        &self,
        secrets: Option<&dyn SecretStore>,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Vec<Arc<dyn Notifier>>> {
        let source = self.source.as_path();
        let built = |e: crate::Error| match e {
            e @ (crate::Error::InvalidUrl { .. } | crate::Error::Config { .. }) => {
                let hint = e.hint().unwrap_or_default();
                config_error(source, e.to_string(), &hint)
            }
            other => other.into(),
        };
        let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
        if let Some(slack) = &self.slack {
            let mut builder = SlackWebhook::builder().timeout(self.timeout);
            if let Some(url) = &slack.webhook_url {
                builder = builder.webhook_url(url.resolve("notify.slack.webhook_url", source, secrets, env).await?);
            }
            if let Some(channel) = &slack.default_channel {
                builder = builder.default_channel(channel);
            }
            for (team, settings) in &slack.teams {
                let mut team_settings = SlackTeam::new();
                team_settings.channel = settings.channel.clone();
                if let Some(url) = &settings.webhook_url {
                    let key = format!("notify.slack.teams.{team}.webhook_url");
                    team_settings.webhook_url = Some(url.resolve(&key, source, secrets, env).await?);
                }
                builder = builder.team(team, team_settings);
            }
            notifiers.push(Arc::new(builder.build().map_err(built)?));
        }
        if let Some(webhook) = &self.webhook {
            let url = webhook.url.resolve("notify.webhook.url", source, secrets, env).await?;
            notifiers.push(Arc::new(JsonWebhook::new(url).map_err(built)?.with_timeout(self.timeout)));
        }
        Ok(notifiers)
    }
}

/// Builds the notifiers `config` describes, reading `env:` secrets from the process
/// environment and references through `secrets`.
pub async fn notifiers_from_config(
    config: &NotifyConfig,
    secrets: Option<&dyn SecretStore>,
) -> Result<Vec<Arc<dyn Notifier>>> {
    config.notifiers(secrets, &|name| std::env::var(name).ok()).await
}

fn slack_config(value: &toml::Value, source: &Path) -> Result<SlackConfig> {
    let raw: RawSlack = section(value, "notify.slack", source)?;
    let webhook_url =
        raw.webhook_url.as_deref().map(|v| SecretSource::parse(v, "notify.slack.webhook_url", source)).transpose()?;
    let mut teams = BTreeMap::new();
    for (name, value) in &raw.teams {
        let table = format!("notify.slack.teams.{name}");
        if let Err(e) = Team::new(name.clone()) {
            let hint = e.hint().unwrap_or("use lowercase letters, digits and '-'").to_string();
            return Err(config_error(source, format!("[{table}]: \"{name}\" is not a team name"), &hint));
        }
        let team: RawTeam = section(value, &table, source)?;
        let webhook_url = team
            .webhook_url
            .as_deref()
            .map(|v| SecretSource::parse(v, &format!("{table}.webhook_url"), source))
            .transpose()?;
        teams.insert(name.clone(), SlackTeamConfig { channel: team.channel, webhook_url });
    }
    if webhook_url.is_none() && teams.values().all(|t| t.webhook_url.is_none()) {
        return Err(config_error(
            source,
            "[notify.slack] has no webhook_url, neither a default one nor one for a team".into(),
            "set notify.slack.webhook_url = \"env:SLACK_WEBHOOK_URL\" (or a team's webhook_url)",
        ));
    }
    Ok(SlackConfig { webhook_url, default_channel: raw.default_channel, teams })
}

/// Deserializes the table `table` with paved-core's unknown-key errors and hints.
fn section<T: DeserializeOwned>(value: &toml::Value, table: &str, source: &Path) -> Result<T> {
    value.clone().try_into().map_err(|e: toml::de::Error| {
        let mut error = paved_core::config::toml_error(source, "", &e);
        if let Error::Config { message, line, hint, .. } = &mut error {
            *message = format!("[{table}]: {message}");
            // A parsed value has no positions in the file.
            *line = None;
            if !e.message().starts_with("unknown field") {
                *hint = Some("see the [notify] reference in the paved-notify documentation (module `config`)".into());
            }
        }
        error
    })
}

fn config_error(source: &Path, message: String, hint: &str) -> Error {
    Error::Config { path: source.to_path_buf(), line: None, message, hint: Some(hint.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(text: &str) -> Result<NotifyConfig> {
        let doc: toml::Table = toml::from_str(text).unwrap();
        NotifyConfig::from_toml(&doc["notify"], Path::new("paved.toml"))
    }

    #[test]
    fn parses_the_section() {
        let c = parse(
            r##"
[notify]
timeout_ms = 1500
[notify.slack]
webhook_url = "env:SLACK_WEBHOOK_URL"
default_channel = "#platform"
[notify.slack.teams.payments]
channel = "#payments"
webhook_url = "vault://secret/payments/slack#url"
[notify.slack.teams.search]
channel = "#search"
[notify.webhook]
url = "https://events.example.com/paved?token=s3cret"
"##,
        )
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(1500));
        let slack = c.slack.as_ref().unwrap();
        assert!(matches!(&slack.webhook_url, Some(SecretSource::Env(n)) if n == "SLACK_WEBHOOK_URL"));
        let payments = &slack.teams["payments"];
        assert_eq!(payments.channel.as_deref(), Some("#payments"));
        assert!(matches!(&payments.webhook_url, Some(SecretSource::Ref(r)) if r.path() == "secret/payments/slack"));
        assert!(slack.teams["search"].webhook_url.is_none());
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret") && debug.contains("Literal(<redacted>)"), "{debug}");
        assert!(!c.is_empty() && NotifyConfig::default().is_empty());
    }

    #[test]
    fn unknown_keys_get_hints() {
        let cases = [
            (
                "[notify]\ntimeout = 5\n",
                "[notify]: unknown field `timeout`",
                "did you mean \"timeout_ms\"? (or remove the key)",
            ),
            (
                "[notify.slack]\nwebhook = \"env:X\"\n",
                "[notify.slack]: unknown field `webhook`",
                "did you mean \"webhook_url\"? (or remove the key)",
            ),
            (
                "[notify.slack]\nwebhook_url = \"env:X\"\n[notify.slack.teams.payments]\nchanel = \"#p\"\n",
                "[notify.slack.teams.payments]: unknown field `chanel`",
                "did you mean \"channel\"? (or remove the key)",
            ),
            (
                "[notify.webhook]\nurll = \"env:X\"\n",
                "[notify.webhook]: unknown field `urll`",
                "did you mean \"url\"? (or remove the key)",
            ),
        ];
        for (text, message, hint) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().starts_with(&format!("paved.toml: {message}")), "{e}");
            assert_eq!(e.hint(), Some(hint), "{e}");
            assert!(e.is_user_error());
        }
    }

    #[test]
    fn bad_values_are_explained() {
        for (text, needle) in [
            ("[notify]\ntimeout_ms = 0\n", "notify.timeout_ms = 0"),
            ("[notify]\ntimeout_ms = \"5s\"\n", "[notify]: invalid type"),
            ("[notify.slack]\ndefault_channel = \"#p\"\n", "no webhook_url"),
            ("[notify.slack]\nwebhook_url = \"SLACK_URL\"\n", "notify.slack.webhook_url is neither"),
            ("[notify.slack]\nwebhook_url = \"env:\"\n", "does not name an environment variable"),
            ("[notify.slack]\nwebhook_url = \"k8s://slack#url\"\n", "k8s://"),
            ("[notify.slack]\nwebhook_url = \"vault://secret/slack\"\n", "names no key"),
            ("[notify.slack]\nwebhook_url = \"env:X\"\n[notify.slack.teams.Payments]\n", "is not a team name"),
            ("[notify.webhook]\n", "[notify.webhook]: missing field `url`"),
            (
                "[notify.slack]\nwebhook_url = \"env:X\"\nteams.payments = \"#p\"\n",
                "expected a [notify.slack.teams.NAME] table",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
            assert!(e.hint().is_some(), "{e}");
        }
        let e = NotifyConfig::from_toml(&toml::Value::Integer(5), Path::new("paved.toml")).unwrap_err();
        assert_eq!(e.to_string(), "paved.toml: [notify]: invalid type: integer `5`, expected a [notify] table");
    }

    #[tokio::test]
    async fn secrets_come_from_the_environment() {
        let c = parse("[notify.slack]\nwebhook_url = \"env:SLACK_URL\"\n[notify.webhook]\nurl = \"env:HOOK_URL\"\n")
            .unwrap();
        let env = |name: &str| match name {
            "SLACK_URL" => Some("https://hooks.example.com/services/s3cret".to_string()),
            "HOOK_URL" => Some("http://127.0.0.1:9/hook".to_string()),
            _ => None,
        };
        let notifiers = c.notifiers(None, &env).await.unwrap();
        let names: Vec<&str> = notifiers.iter().map(|n| n.name()).collect();
        assert_eq!(names, ["slack", "webhook"]);

        let e = c.notifiers(None, &|_| None).await.err().unwrap();
        assert_eq!(
            e.to_string(),
            "paved.toml: notify.slack.webhook_url: the environment variable SLACK_URL is not set"
        );
        let bad = |name: &str| (name == "SLACK_URL").then(|| "hooks.example.com/s3cret".to_string());
        let e = c.notifiers(None, &bad).await.err().unwrap();
        assert!(e.to_string().contains("invalid URL") && !e.to_string().contains("s3cret"), "{e}");
        assert!(e.is_user_error());

        let c = parse("[notify.webhook]\nurl = \"vault://secret/hooks#url\"\n").unwrap();
        let e = c.notifiers(None, &env).await.err().unwrap();
        assert!(e.to_string().contains("no secret store is configured"), "{e}");
        assert!(matches!(&c.webhook.as_ref().unwrap().url, SecretSource::Ref(_)));
        let secret = SecretSource::Literal(SecretString::from("https://x/s3cret"));
        let value = secret.resolve("k", Path::new("p"), None, &env).await.unwrap();
        assert_eq!(value.expose_secret(), "https://x/s3cret");
    }
}
