//! The notifiers of paved-notify against a local HTTP receiver started by the tests, the
//! Notifier behaviour suite on every backend, and configuration with secrets from the
//! environment and from a real OpenBao.

#[path = "notify/receiver.rs"]
mod receiver;

// The suite lives in paved-testkit; it is compiled here from its file so it runs on this
// crate's notifiers.
#[allow(unreachable_pub, dead_code)]
#[path = "notify/config.rs"]
mod config;
#[path = "notify/slack.rs"]
mod slack;
#[path = "notify/suite.rs"]
mod suite;
#[path = "notify/webhook.rs"]
mod webhook;
