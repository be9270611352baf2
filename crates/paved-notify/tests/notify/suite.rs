//! The Notifier behaviour suite on every backend: the in-memory reference, the Slack webhook
//! and the JSON webhook.

use std::time::Duration;

use paved_core::MemoryNotifier;
use paved_notify::{JsonWebhook, SlackWebhook};
use secrecy::SecretString;

use crate::receiver::{Answer, Receiver, down_url};
use paved_testkit::behavior::notifier as notifier_suite;

const PATH: &str = "/hooks/s3cret-token";

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn texts(receiver: &Receiver, decode: fn(&str) -> String) -> Vec<String> {
    receiver.bodies().iter().map(|b| decode(b["text"].as_str().expect("a text"))).collect()
}

fn slack(url: String, timeout: Duration) -> SlackWebhook {
    SlackWebhook::builder().webhook_url(SecretString::from(url)).timeout(timeout).build().unwrap()
}

fn webhook(url: String, timeout: Duration) -> JsonWebhook {
    JsonWebhook::new(url).unwrap().with_timeout(timeout)
}

#[tokio::test]
async fn memory() {
    let memory = MemoryNotifier::new();
    notifier_suite::run(&memory, &|| memory.received().iter().map(|n| n.text()).collect()).await;
}

#[tokio::test]
async fn slack_webhook() {
    let receiver = Receiver::start(Answer::Status(200, "ok"));
    let notifier = slack(receiver.url(PATH), Duration::from_secs(5));
    notifier_suite::run(&notifier, &|| texts(&receiver, unescape)).await;

    let url = down_url(PATH);
    notifier_suite::run_unreachable(&slack(url.clone(), Duration::from_secs(5)), &[&url, "s3cret"]).await;

    let slow = Receiver::start(Answer::Never);
    let timeout = Duration::from_millis(400);
    notifier_suite::run_slow(&slack(slow.url(PATH), timeout), timeout, &[&slow.url(PATH), "s3cret"]).await;
}

#[tokio::test]
async fn json_webhook() {
    let receiver = Receiver::start(Answer::Status(200, ""));
    let notifier = webhook(receiver.url(PATH), Duration::from_secs(5));
    notifier_suite::run(&notifier, &|| texts(&receiver, str::to_string)).await;

    let url = down_url(PATH);
    notifier_suite::run_unreachable(&webhook(url.clone(), Duration::from_secs(5)), &[&url, "s3cret"]).await;

    let slow = Receiver::start(Answer::Never);
    let timeout = Duration::from_millis(400);
    notifier_suite::run_slow(&webhook(slow.url(PATH), timeout), timeout, &[&slow.url(PATH), "s3cret"]).await;
}
