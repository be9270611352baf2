//! The behaviour suite of [`Notifier`]: scenarios every notifier passes, run on every backend
//! (the in-memory reference `MemoryNotifier`, the Slack-compatible and the JSON webhooks of
//! `paved-notify`), the way opendal runs one suite on every storage service.
//!
//! A backend's test starts the receiver behind its notifier and calls:
//! - [`run`] with a notifier whose receiver answers, and a closure that returns the one-line
//!   texts the receiver got so far (decoded from whatever the backend sends);
//! - [`run_unreachable`] with a notifier whose receiver is down;
//! - [`run_slow`] with a notifier whose receiver never answers, and the notifier's own timeout.

use std::time::Duration;

use paved_core::{Notification, NotificationKind, Notifier, notify_best_effort};

/// The texts the receiver behind a notifier got so far, in order.
pub type Received<'a> = &'a (dyn Fn() -> Vec<String> + Sync);

/// The notification most scenarios send.
pub fn sample() -> Notification {
    Notification::new(NotificationKind::Deployed, "payments", "my-service", "production")
        .with_revision(3)
        .with_actor("ci")
        .with_url("https://my-service.production.example.com")
}

/// Runs every scenario for a notifier whose receiver answers.
pub async fn run(notifier: &dyn Notifier, received: Received<'_>) {
    name_is_a_label(notifier);
    delivers_one_message_per_notification(notifier, received).await;
    delivers_every_kind_with_its_text(notifier, received).await;
    delivers_a_minimal_notification(notifier, received).await;
    best_effort_delivers_without_a_warning(notifier, received).await;
}

/// The name is a short, stable label for messages.
pub fn name_is_a_label(notifier: &dyn Notifier) {
    let name = notifier.name();
    assert!(!name.is_empty() && !name.contains(char::is_whitespace), "name {name:?}");
    assert_eq!(notifier.name(), name, "the name is stable");
}

/// One call, one message, with the notification's text.
pub async fn delivers_one_message_per_notification(notifier: &dyn Notifier, received: Received<'_>) {
    let before = received().len();
    let n = sample();
    notifier.notify(&n).await.unwrap_or_else(|e| panic!("{}: {e}", notifier.name()));
    let after = received();
    assert_eq!(after.len(), before + 1, "{}: one message per notification", notifier.name());
    assert_eq!(after.last(), Some(&n.text()));
}

/// Every kind arrives, in order, each with its own text.
pub async fn delivers_every_kind_with_its_text(notifier: &dyn Notifier, received: Received<'_>) {
    let before = received().len();
    let mut expected = Vec::new();
    for kind in NotificationKind::ALL {
        let mut n = Notification::new(*kind, "payments", "my-service", "staging").with_revision(7);
        if kind.is_failure() {
            n = n.with_detail("kube: rollout of <my-service> timed out & was stopped");
        }
        notifier.notify(&n).await.unwrap_or_else(|e| panic!("{} ({kind}): {e}", notifier.name()));
        expected.push(n.text());
    }
    assert_eq!(received()[before..], expected[..], "{}", notifier.name());
}

/// A notification with only the required fields is delivered.
pub async fn delivers_a_minimal_notification(notifier: &dyn Notifier, received: Received<'_>) {
    let n = Notification::new(NotificationKind::DatabaseProvisioned, "search", "indexer", "dev");
    notifier.notify(&n).await.unwrap_or_else(|e| panic!("{}: {e}", notifier.name()));
    assert_eq!(received().last(), Some(&"🗄️ database of indexer provisioned in dev".to_string()));
}

/// Best effort on a working receiver: delivered, no warning.
pub async fn best_effort_delivers_without_a_warning(notifier: &dyn Notifier, received: Received<'_>) {
    let before = received().len();
    let n = sample().with_detail("best effort");
    assert_eq!(notify_best_effort(notifier, &n, Duration::from_secs(30)).await, None, "{}", notifier.name());
    assert_eq!(received().len(), before + 1);
    assert_eq!(received().last(), Some(&n.text()));
}

/// A receiver that is down: an error with a hint that shows none of `secrets` (the webhook
/// URL and its parts), and a warning from best effort that names the team.
pub async fn run_unreachable(notifier: &dyn Notifier, secrets: &[&str]) {
    let n = sample();
    // Best effort first: it bounds the wait, so a notifier that hangs fails here, not forever.
    let warning = notify_best_effort(notifier, &n, Duration::from_secs(30)).await;
    let warning = warning.unwrap_or_else(|| panic!("{}: no warning for a receiver that is down", notifier.name()));
    assert!(warning.contains("team payments was not notified"), "{warning}");
    assert!(!warning.contains("did not finish within 30000 ms"), "the notifier gave up by itself: {warning}");
    assert_no_secret(&warning, secrets);

    let e = notifier.notify(&n).await.expect_err("a receiver that is down is an error");
    assert!(!e.is_user_error(), "{e}");
    assert!(e.hint().is_some(), "{e} has a hint");
    assert_no_secret(&format!("{e} {e:?} {}", e.hint().unwrap_or_default()), secrets);
}

/// A receiver that never answers: the notifier gives up by itself after `timeout` (its own
/// setting) with an error that says so, and best effort with a shorter bound cuts it there.
pub async fn run_slow(notifier: &dyn Notifier, timeout: Duration, secrets: &[&str]) {
    let n = sample();
    let guard = timeout * 10 + Duration::from_secs(10);
    let warning = notify_best_effort(notifier, &n, guard).await;
    let warning =
        warning.unwrap_or_else(|| panic!("{}: no warning for a receiver that never answers", notifier.name()));
    assert!(
        warning.contains(&format!("{} ms", timeout.as_millis())) && !warning.contains("did not finish"),
        "the notifier's own timeout fired: {warning}"
    );
    assert_no_secret(&warning, secrets);

    let e = notifier.notify(&n).await.expect_err("a receiver that never answers is an error");
    assert!(e.hint().is_some(), "{e} has a hint");
    assert_no_secret(&format!("{e} {e:?}"), secrets);

    // A caller's shorter bound wins.
    let short = timeout / 4;
    let warning = notify_best_effort(notifier, &n, short).await.expect("cut by the caller's bound");
    assert!(warning.ends_with(&format!("did not finish within {} ms", short.as_millis())), "{warning}");
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
    }
}
