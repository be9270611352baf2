//! # paved-notify
//!
//! Notifications for [paved](https://docs.rs/paved): HTTP implementations of
//! [`paved_core::Notifier`] that tell the owning team what happened (deployed, rolled back,
//! rollout failed, database provisioned, …).
//!
//! - [`SlackWebhook`]: Slack-compatible incoming webhooks, `{"channel": "#payments", "text": "…"}`,
//!   with a channel and optionally a webhook per team;
//! - [`JsonWebhook`]: the [`Notification`](paved_core::Notification) as JSON, for any receiver;
//! - [`NotifyConfig`]: the `[notify]` section of `paved.toml`, and [`notifiers_from_config`],
//!   which reads the webhook URLs (secrets) from the environment or the secret store.
//!
//! Every request is bounded by a timeout (5 s by default); only a refused connection is tried
//! once more, within the same bound. Webhook URLs are secrets: they never appear in `Debug`,
//! logs or errors, which name the team and the configuration key instead. The platform sends
//! notifications best effort ([`paved_core::notify_best_effort`]): a receiver that is down or
//! slow costs a warning, never a deploy.

pub mod config;
pub mod error;
mod http;
pub mod slack;
pub mod webhook;

pub use config::{NotifyConfig, SecretSource, notifiers_from_config};
pub use error::{Error, Result, Webhook};
pub use http::DEFAULT_TIMEOUT;
pub use slack::{SlackTeam, SlackWebhook, SlackWebhookBuilder};
pub use webhook::JsonWebhook;
