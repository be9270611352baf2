//! `[notify]` from a paved.toml: webhook URLs from the environment and from a real OpenBao,
//! and unknown keys with hints.

use std::path::Path;
use std::time::Duration;

use paved_core::{Notification, NotificationKind, SecretStore};
use paved_notify::{NotifyConfig, notifiers_from_config};
use paved_testkit::OpenBao;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::SecretString;

use crate::receiver::{Answer, Receiver};

fn notify_section(text: &str) -> paved_core::Result<NotifyConfig> {
    let doc: toml::Table = toml::from_str(text).unwrap();
    NotifyConfig::from_toml(&doc["notify"], Path::new("/etc/paved/paved.toml"))
}

#[tokio::test]
async fn webhooks_from_the_environment_and_openbao() {
    let Some(bao) = OpenBao::start() else { return };
    let store = VaultSecretStore::connect(VaultConfig::new(bao.addr(), SecretString::from(bao.token())))
        .await
        .expect("connects to the dev server");
    let (default, payments, json) = (
        Receiver::start(Answer::Status(200, "ok")),
        Receiver::start(Answer::Status(200, "ok")),
        Receiver::start(Answer::Status(202, "")),
    );
    let team_url = payments.url("/services/payments-s3cret");
    store.put("payments/slack", [("url".to_string(), SecretString::from(team_url))].into()).await.unwrap();

    let config = notify_section(
        r##"
domain = "apps.example.com"
[notify]
timeout_ms = 2000
[notify.slack]
webhook_url = "env:TEST_SLACK_WEBHOOK_URL"
default_channel = "#platform"
[notify.slack.teams.payments]
channel = "#payments"
webhook_url = "vault://secret/payments/slack#url"
[notify.webhook]
url = "env:TEST_PAVED_WEBHOOK_URL"
"##,
    )
    .unwrap();
    let (slack_url, json_url) = (default.url("/services/default-s3cret"), json.url("/events"));
    let env = |name: &str| match name {
        "TEST_SLACK_WEBHOOK_URL" => Some(slack_url.clone()),
        "TEST_PAVED_WEBHOOK_URL" => Some(json_url.clone()),
        _ => None,
    };
    let notifiers = config.notifiers(Some(&store as &dyn SecretStore), &env).await.unwrap();
    assert_eq!(notifiers.iter().map(|n| n.name()).collect::<Vec<_>>(), ["slack", "webhook"]);
    let all = paved_core::Notifiers::new(notifiers);
    for team in ["payments", "search"] {
        let n = Notification::new(NotificationKind::DatabaseProvisioned, team, "ledger", "production");
        assert_eq!(paved_core::notify_best_effort(&all, &n, Duration::from_secs(10)).await, None);
    }
    let text = "🗄️ database of ledger provisioned in production";
    assert_eq!(payments.bodies(), [serde_json::json!({"channel": "#payments", "text": text})]);
    assert_eq!(default.bodies(), [serde_json::json!({"channel": "#platform", "text": text})]);
    let teams: Vec<String> = json.bodies().iter().map(|b| b["team"].as_str().unwrap().to_string()).collect();
    assert_eq!(teams, ["payments", "search"]);

    // A reference to a secret that does not exist names the key it was for.
    let config = notify_section("[notify.webhook]\nurl = \"vault://secret/nothing/here#url\"\n").unwrap();
    let e = config.notifiers(Some(&store as &dyn SecretStore), &env).await.err().unwrap();
    assert!(e.to_string().contains("(the value of notify.webhook.url) not found"), "{e}");
    assert!(e.hint().is_some());
}

#[tokio::test]
async fn literal_urls_and_unknown_keys() {
    let receiver = Receiver::start(Answer::Status(200, ""));
    let config = notify_section(&format!("[notify.webhook]\nurl = \"{}\"\n", receiver.url("/hook"))).unwrap();
    let notifiers = notifiers_from_config(&config, None).await.unwrap();
    let n = Notification::new(NotificationKind::RolledBack, "payments", "my-service", "production").with_revision(5);
    notifiers[0].notify(&n).await.unwrap();
    assert_eq!(receiver.bodies()[0]["text"], "↩️ my-service rolled back in production (revision 5)");
    assert!(notifiers_from_config(&NotifyConfig::default(), None).await.unwrap().is_empty());

    let e = notify_section("[notify.slack]\nwebhook_url = \"env:X\"\ndefault_chanel = \"#p\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/paved/paved.toml: [notify.slack]: unknown field `default_chanel`, expected one of `webhook_url`, `default_channel`, `teams`"
    );
    assert_eq!(e.hint(), Some("did you mean \"default_channel\"? (or remove the key)"));
}
