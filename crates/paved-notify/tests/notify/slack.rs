//! `SlackWebhook`: the exact payload, per-team channels and webhooks, and errors that never
//! show the URL.

use std::time::Duration;

use paved_core::{Notification, NotificationKind, Notifier};
use paved_notify::{Error, SlackTeam, SlackWebhook};
use secrecy::SecretString;

use crate::receiver::{Answer, Receiver, down_url};

const SECRET: &str = "T0001/B0001/s3cret-token";

fn deployed(team: &str) -> Notification {
    Notification::new(NotificationKind::Deployed, team, "my-service", "production")
        .with_revision(3)
        .with_url("https://my-service.production.example.com")
}

fn hook(receiver: &Receiver) -> SecretString {
    SecretString::from(receiver.url(&format!("/services/{SECRET}")))
}

#[tokio::test]
async fn posts_the_exact_payload_to_each_teams_channel_and_webhook() {
    let (default, payments) = (Receiver::start(Answer::Status(200, "ok")), Receiver::start(Answer::Status(200, "ok")));
    let slack = SlackWebhook::builder()
        .webhook_url(hook(&default))
        .default_channel("#platform")
        .team("payments", SlackTeam::new().channel("#payments").webhook_url(hook(&payments)))
        .team("search", SlackTeam::new().channel("#search"))
        .build()
        .unwrap();
    for team in ["payments", "search", "checkout"] {
        slack.notify(&deployed(team)).await.unwrap();
    }
    let text = "✅ my-service deployed to production (revision 3) https://my-service.production.example.com";
    assert_eq!(payments.bodies(), [serde_json::json!({"channel": "#payments", "text": text})]);
    assert_eq!(
        default.bodies(),
        [
            serde_json::json!({"channel": "#search", "text": text}),
            serde_json::json!({"channel": "#platform", "text": text})
        ]
    );
    let request = &payments.requests()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/services/T0001/B0001/s3cret-token"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    // The body is exactly the two keys, in this order.
    assert_eq!(
        String::from_utf8(request.body.clone()).unwrap(),
        format!(r##"{{"channel":"#payments","text":"{text}"}}"##)
    );
}

#[tokio::test]
async fn without_a_channel_the_webhooks_own_is_used_and_markup_is_escaped() {
    let receiver = Receiver::start(Answer::Status(200, "ok"));
    let slack = SlackWebhook::builder().webhook_url(hook(&receiver)).build().unwrap();
    let n = Notification::new(NotificationKind::DeployFailed, "payments", "my-service", "staging")
        .with_detail("policy <no-latest> & <resources> denied it");
    slack.send(&n).await.unwrap();
    assert_eq!(
        receiver.bodies(),
        [serde_json::json!({
            "text": "❌ my-service deploy to staging failed: policy &lt;no-latest&gt; &amp; &lt;resources&gt; denied it"
        })]
    );
}

#[tokio::test]
async fn a_team_without_a_webhook_is_skipped_when_there_is_no_default() {
    let payments = Receiver::start(Answer::Status(200, "ok"));
    let slack = SlackWebhook::builder()
        .team("payments", SlackTeam::new().channel("#payments").webhook_url(hook(&payments)))
        .build()
        .unwrap();
    slack.send(&deployed("search")).await.unwrap();
    assert!(payments.requests().is_empty());
}

#[tokio::test]
async fn an_error_names_the_team_and_status_never_the_url() {
    let receiver = Receiver::start(Answer::Status(404, "no_service"));
    let slack = SlackWebhook::builder()
        .webhook_url(SecretString::from(receiver.url("/default")))
        .team("payments", SlackTeam::new().webhook_url(hook(&receiver)))
        .build()
        .unwrap();
    let e = slack.send(&deployed("payments")).await.unwrap_err();
    assert!(matches!(e, Error::Status { status: 404, .. }), "{e:?}");
    assert_eq!(e.to_string(), r#"slack: the webhook for team "payments" answered HTTP 404: no_service"#);
    assert_eq!(
        e.hint().as_deref(),
        Some(
            "the webhook URL is wrong or revoked: create a new one and update notify.slack.teams.payments.webhook_url"
        )
    );
    let core: paved_core::Error = e.into();
    assert_eq!(core.to_string(), r#"slack: the webhook for team "payments" answered HTTP 404: no_service"#);
    for text in [format!("{core} {core:?}"), format!("{slack:?}")] {
        assert!(!text.contains("s3cret") && !text.contains("/default") && !text.contains("127.0.0.1"), "{text}");
    }
    // The default webhook is named by its own key.
    let e = slack.send(&deployed("search")).await.unwrap_err();
    assert!(e.hint().unwrap().ends_with("update notify.slack.webhook_url"), "{e:?}");
    // A 400 (Slack's channel_not_found) points at the channel.
    let receiver = Receiver::start(Answer::Status(400, "channel_not_found"));
    let slack = SlackWebhook::builder().webhook_url(hook(&receiver)).default_channel("#gone").build().unwrap();
    let e = slack.send(&deployed("payments")).await.unwrap_err();
    assert_eq!(e.to_string(), r#"slack: the webhook for team "payments" answered HTTP 400: channel_not_found"#);
    assert!(e.hint().unwrap().contains("notify.slack.teams.payments"), "{e:?}");
}

#[tokio::test]
async fn a_receiver_that_is_down_is_an_error_without_the_url() {
    let url = down_url(&format!("/services/{SECRET}"));
    let slack = SlackWebhook::builder().webhook_url(SecretString::from(url.clone())).build().unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), slack.send(&deployed("payments")))
        .await
        .expect("a refused connection fails at once")
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().starts_with(r#"slack: the webhook for team "payments" is unreachable: "#), "{e}");
    let text = format!("{e} {e:?} {}", e.hint().unwrap());
    assert!(!text.contains(&url) && !text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn a_slow_receiver_times_out_within_the_bound() {
    let receiver = Receiver::start(Answer::Never);
    let slack =
        SlackWebhook::builder().webhook_url(hook(&receiver)).timeout(Duration::from_millis(300)).build().unwrap();
    assert_eq!(slack.timeout(), Duration::from_millis(300));
    let e = tokio::time::timeout(Duration::from_secs(30), slack.send(&deployed("payments")))
        .await
        .expect("the request is cut at its timeout")
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(e.to_string(), r#"slack: the webhook for team "payments" did not answer within 300 ms"#);
    assert!(e.hint().unwrap().contains("notify.timeout_ms"));
    assert_eq!(receiver.requests().len(), 1, "a request that may have arrived is not sent again");
}
