//! `JsonWebhook`: the notification as JSON with stable field names.

use paved_core::{Notification, NotificationKind, Notifier};
use paved_notify::{Error, JsonWebhook};

use crate::receiver::{Answer, Receiver};

#[tokio::test]
async fn posts_the_notification_as_json() {
    let receiver = Receiver::start(Answer::Status(204, ""));
    let webhook = JsonWebhook::new(receiver.url("/paved?token=s3cret")).unwrap();
    let n = Notification::new(NotificationKind::RolloutFailed, "payments", "my-service", "production")
        .with_revision(4)
        .with_actor("ci")
        .with_detail("kube: 0 of 3 replicas ready after 300 s");
    webhook.notify(&n).await.unwrap();
    let request = &receiver.requests()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/paved?token=s3cret"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        serde_json::json!({
            "text": "❌ my-service rollout failed in production (revision 4) by ci: kube: 0 of 3 replicas ready after 300 s",
            "kind": "rollout_failed",
            "team": "payments",
            "app": "my-service",
            "environment": "production",
            "revision": 4,
            "url": null,
            "actor": "ci",
            "detail": "kube: 0 of 3 replicas ready after 300 s"
        })
    );
    assert_eq!(request.body, JsonWebhook::body(&n));
}

#[tokio::test]
async fn a_failing_receiver_is_an_error_without_the_url() {
    let receiver = Receiver::start(Answer::Status(500, "internal error"));
    let webhook = JsonWebhook::new(receiver.url("/paved?token=s3cret")).unwrap();
    let n = Notification::new(NotificationKind::Deployed, "payments", "my-service", "production");
    let e = webhook.send(&n).await.unwrap_err();
    assert!(matches!(e, Error::Status { status: 500, .. }), "{e:?}");
    assert_eq!(e.to_string(), r#"webhook: the webhook for team "payments" answered HTTP 500: internal error"#);
    assert_eq!(e.hint().as_deref(), Some("the receiver failed: check it and try later"));
    let text = format!("{e} {e:?} {webhook:?}");
    assert!(!text.contains("s3cret") && !text.contains("/paved"), "{text}");
    assert!(JsonWebhook::new("ftp://example.com/s3cret").unwrap_err().to_string().contains("\"ftp\""));
}
