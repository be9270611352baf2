//! Telling the owning team what happened: the [`Notifier`] trait and the [`Notification`] it
//! sends.
//!
//! A notification is best effort: a receiver that is down or slow never fails or blocks a
//! deploy. [`notify_best_effort`] bounds the wait and turns a failure into a warning; the
//! HTTP notifiers (Slack-compatible and JSON webhooks) live in `paved-notify`, so this crate
//! stays free of HTTP clients.
//!
//! ```
//! use paved_core::{Notification, NotificationKind};
//! let n = Notification::new(NotificationKind::Deployed, "payments", "my-service", "production")
//!     .with_revision(3)
//!     .with_url("https://my-service.production.example.com");
//! assert_eq!(n.text(), "✅ my-service deployed to production (revision 3) https://my-service.production.example.com");
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::release::{ReleaseRecord, Revision};

/// What happened, from the owning team's point of view.
///
/// Serialized in `snake_case` (`"deployed"`, `"rollout_failed"`, …); the names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationKind {
    /// A release was applied (and, where the target watches rollouts, is live).
    Deployed,
    /// An earlier revision was restored as a new revision.
    RolledBack,
    /// A release was applied but its rollout failed or timed out in the target.
    RolloutFailed,
    /// A deploy failed before or while applying (validation, policy, secrets, target).
    DeployFailed,
    /// A rollback failed.
    RollbackFailed,
    /// A database was provisioned for a service.
    DatabaseProvisioned,
    /// A service's database was deprovisioned.
    DatabaseDeprovisioned,
}

impl NotificationKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [NotificationKind] = &[
        NotificationKind::Deployed,
        NotificationKind::RolledBack,
        NotificationKind::RolloutFailed,
        NotificationKind::DeployFailed,
        NotificationKind::RollbackFailed,
        NotificationKind::DatabaseProvisioned,
        NotificationKind::DatabaseDeprovisioned,
    ];

    /// The stable name, as serialized: `deployed`, `rolled_back`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Deployed => "deployed",
            NotificationKind::RolledBack => "rolled_back",
            NotificationKind::RolloutFailed => "rollout_failed",
            NotificationKind::DeployFailed => "deploy_failed",
            NotificationKind::RollbackFailed => "rollback_failed",
            NotificationKind::DatabaseProvisioned => "database_provisioned",
            NotificationKind::DatabaseDeprovisioned => "database_deprovisioned",
        }
    }

    /// `true` for the kinds that report a failure.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            NotificationKind::RolloutFailed | NotificationKind::DeployFailed | NotificationKind::RollbackFailed
        )
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message for the team that owns a service.
///
/// Serialized (by the JSON webhook of `paved-notify`, for example) with these field names,
/// which are stable: `kind`, `team`, `app`, `environment`, `revision`, `url`, `actor`,
/// `detail` (absent values are `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// What happened.
    pub kind: NotificationKind,
    /// The owning team, who is notified (e.g. `payments`).
    pub team: String,
    /// The app or service it happened to (e.g. `my-service`).
    pub app: String,
    /// The environment (e.g. `production`).
    pub environment: String,
    /// The revision deployed or restored, when there is one.
    pub revision: Option<Revision>,
    /// The app's public URL (or a link to more detail), when there is one.
    pub url: Option<String>,
    /// Who did it (a user or a CI job), when known.
    pub actor: Option<String>,
    /// More detail, e.g. why it failed; never a secret.
    pub detail: Option<String>,
}

impl Notification {
    /// A notification of `kind` for `team` about `app` in `environment`; add the rest with
    /// the `with_*` methods.
    pub fn new(
        kind: NotificationKind,
        team: impl Into<String>,
        app: impl Into<String>,
        environment: impl Into<String>,
    ) -> Self {
        Notification {
            kind,
            team: team.into(),
            app: app.into(),
            environment: environment.into(),
            revision: None,
            url: None,
            actor: None,
            detail: None,
        }
    }

    /// A notification of `kind` about a release: team, app, environment, revision, URL and
    /// actor are taken from the record.
    pub fn for_release(kind: NotificationKind, record: &ReleaseRecord) -> Self {
        let mut n = Notification::new(kind, &record.team, &record.app, &record.environment)
            .with_revision(record.revision)
            .with_actor(&record.deployed_by);
        n.url = record.url.clone();
        n
    }

    /// Sets the revision.
    pub fn with_revision(mut self, revision: Revision) -> Self {
        self.revision = Some(revision);
        self
    }

    /// Sets the URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets who did it.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the detail (e.g. an error message; kept on one line in [`Notification::text`]).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The one-line text for humans, e.g.
    /// `✅ my-service deployed to production (revision 3) by alice https://…`.
    pub fn text(&self) -> String {
        let (app, env) = (&self.app, &self.environment);
        let mut text = match self.kind {
            NotificationKind::Deployed => format!("✅ {app} deployed to {env}"),
            NotificationKind::RolledBack => format!("↩️ {app} rolled back in {env}"),
            NotificationKind::RolloutFailed => format!("❌ {app} rollout failed in {env}"),
            NotificationKind::DeployFailed => format!("❌ {app} deploy to {env} failed"),
            NotificationKind::RollbackFailed => format!("❌ {app} rollback in {env} failed"),
            NotificationKind::DatabaseProvisioned => format!("🗄️ database of {app} provisioned in {env}"),
            NotificationKind::DatabaseDeprovisioned => format!("🗑️ database of {app} deprovisioned in {env}"),
        };
        if let Some(revision) = self.revision {
            text.push_str(&format!(" (revision {revision})"));
        }
        if let Some(actor) = self.actor.as_deref().filter(|a| !a.trim().is_empty()) {
            text.push_str(&format!(" by {}", one_line(actor)));
        }
        if let Some(detail) = self.detail.as_deref().map(one_line).filter(|d| !d.is_empty()) {
            text.push_str(": ");
            text.push_str(&detail);
        }
        if let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            text.push(' ');
            text.push_str(&one_line(url));
        }
        text
    }
}

/// `text` with its lines trimmed and joined by single spaces.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Tells a team what happened (chat, webhook, …).
///
/// Implementations bound their own wait (a per-request timeout) and never show secrets
/// (webhook URLs, tokens) in errors or `Debug`. The platform calls them through
/// [`notify_best_effort`], so a failing notifier never fails a deploy.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The notifier's name, for messages (`slack`, `webhook`).
    fn name(&self) -> &str;

    /// Sends one notification to the team it names.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}

/// A [`Notifier`] that sends nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    fn name(&self) -> &str {
        "none"
    }

    async fn notify(&self, _notification: &Notification) -> Result<()> {
        Ok(())
    }
}

/// A [`Notifier`] that keeps what it is sent, in memory: the reference backend of the
/// behaviour suite and a stand-in for tests of code that notifies.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    received: Mutex<Vec<Notification>>,
}

impl MemoryNotifier {
    /// An empty notifier.
    pub fn new() -> Self {
        MemoryNotifier::default()
    }

    /// Every notification received so far, in order.
    pub fn received(&self) -> Vec<Notification> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    fn name(&self) -> &str {
        "memory"
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(notification.clone());
        Ok(())
    }
}

/// Several notifiers as one: [`Notifier::notify`] sends to all of them at once and fails only
/// after every one has had its try (with the error of the one that failed, or a summary of
/// all failures).
#[derive(Clone, Default)]
pub struct Notifiers {
    notifiers: Vec<Arc<dyn Notifier>>,
    name: String,
}

impl Notifiers {
    /// Fans out to `notifiers`.
    pub fn new(notifiers: Vec<Arc<dyn Notifier>>) -> Self {
        let mut all = Notifiers { notifiers, name: String::new() };
        all.name = all.notifiers.iter().map(|n| n.name()).collect::<Vec<_>>().join("+");
        all
    }

    /// Adds a notifier.
    pub fn push(&mut self, notifier: Arc<dyn Notifier>) {
        if !self.name.is_empty() {
            self.name.push('+');
        }
        self.name.push_str(notifier.name());
        self.notifiers.push(notifier);
    }

    /// The notifiers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Notifier>> {
        self.notifiers.iter()
    }

    /// How many notifiers there are.
    pub fn len(&self) -> usize {
        self.notifiers.len()
    }

    /// `true` when there is none (sending is then a no-op).
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }
}

impl fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Notifiers").field(&self.notifiers.iter().map(|n| n.name()).collect::<Vec<_>>()).finish()
    }
}

#[async_trait]
impl Notifier for Notifiers {
    fn name(&self) -> &str {
        if self.name.is_empty() { "none" } else { &self.name }
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        let results = futures::future::join_all(self.notifiers.iter().map(|n| n.notify(notification))).await;
        let mut failures: Vec<Error> = results.into_iter().filter_map(Result::err).collect();
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            n => {
                let hint = failures.iter().find_map(|e| e.hint().map(str::to_string));
                let all: Vec<String> = failures.iter().map(ToString::to_string).collect();
                Err(Error::backend(
                    "notify",
                    format!("{n} of {} notifiers failed: {}", self.notifiers.len(), all.join("; ")),
                    hint,
                ))
            }
        }
    }
}

/// Sends `notification` through `notifier`, waiting at most `timeout`: returns `None` when
/// it was sent, else a warning for the user (which team was not told, and why). Never fails
/// and never waits longer than `timeout` (needs a Tokio runtime with its time driver).
pub async fn notify_best_effort(
    notifier: &dyn Notifier,
    notification: &Notification,
    timeout: Duration,
) -> Option<String> {
    let why = match tokio::time::timeout(timeout, notifier.notify(notification)).await {
        Ok(Ok(())) => return None,
        Ok(Err(e)) => match e.hint() {
            Some(hint) => format!("{e} ({hint})"),
            None => e.to_string(),
        },
        Err(_) => format!("{} did not finish within {} ms", notifier.name(), timeout.as_millis()),
    };
    let warning = format!(
        "team {} was not notified ({} of {} in {}): {why}",
        notification.team, notification.kind, notification.app, notification.environment
    );
    tracing::warn!(team = %notification.team, kind = %notification.kind, "{warning}");
    Some(warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{ReleaseCause, ReleaseRecord};

    fn deployed() -> Notification {
        Notification::new(NotificationKind::Deployed, "payments", "my-service", "production")
    }

    #[test]
    fn texts_are_one_line() {
        let n = deployed().with_revision(3).with_url("https://my-service.production.example.com");
        assert_eq!(
            n.text(),
            "✅ my-service deployed to production (revision 3) https://my-service.production.example.com"
        );
        let n = deployed().with_revision(3).with_actor("alice");
        assert_eq!(n.text(), "✅ my-service deployed to production (revision 3) by alice");
        let n = Notification::new(NotificationKind::DeployFailed, "payments", "my-service", "staging")
            .with_detail("kube: rollout timed out\n  after 300 s\n");
        assert_eq!(n.text(), "❌ my-service deploy to staging failed: kube: rollout timed out after 300 s");
        let n =
            Notification::new(NotificationKind::RolledBack, "payments", "my-service", "production").with_revision(5);
        assert_eq!(n.text(), "↩️ my-service rolled back in production (revision 5)");
        let n = Notification::new(NotificationKind::DatabaseProvisioned, "payments", "my-service", "dev");
        assert_eq!(n.text(), "🗄️ database of my-service provisioned in dev");
        for kind in NotificationKind::ALL {
            let n = Notification::new(*kind, "t", "a", "e").with_detail("x\ny").with_actor("b\nc");
            let text = n.text();
            assert!(!text.contains('\n') && text.contains(" a ") && text.contains("x y"), "{text}");
            assert_eq!(kind.is_failure(), text.starts_with('❌'), "{text}");
        }
    }

    #[test]
    fn serializes_with_stable_names() {
        let n = deployed().with_revision(3).with_actor("alice");
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "deployed", "team": "payments", "app": "my-service", "environment": "production",
                "revision": 3, "url": null, "actor": "alice", "detail": null
            })
        );
        assert_eq!(serde_json::from_value::<Notification>(json).unwrap(), n);
        for kind in NotificationKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn from_a_release_record() {
        let record = ReleaseRecord {
            revision: 7,
            app: "my-service".into(),
            environment: "production".into(),
            team: "payments".into(),
            image: "ghcr.io/acme/my-service:v1".into(),
            replicas: 3,
            digest: "d".into(),
            deployed_at: time::OffsetDateTime::UNIX_EPOCH,
            deployed_by: "ci".into(),
            escape_hatches: Vec::new(),
            cause: ReleaseCause::Deploy,
            url: Some("https://my-service.production.example.com".into()),
            namespace: "my-service-production".into(),
            objects: 4,
            state: None,
            source: None,
        };
        let n = Notification::for_release(NotificationKind::Deployed, &record);
        assert_eq!(
            n.text(),
            "✅ my-service deployed to production (revision 7) by ci https://my-service.production.example.com"
        );
        assert_eq!(n.team, "payments");
    }

    /// Fails, or never answers.
    struct Broken {
        hang: bool,
    }

    #[async_trait]
    impl Notifier for Broken {
        fn name(&self) -> &str {
            if self.hang { "hanging" } else { "broken" }
        }

        async fn notify(&self, _n: &Notification) -> Result<()> {
            if self.hang {
                std::future::pending::<()>().await;
            }
            Err(Error::backend(self.name(), "receiver answered HTTP 500", Some("try later".to_string())))
        }
    }

    #[tokio::test]
    async fn fan_out_sends_to_all_and_reports_failures() {
        let (a, b) = (Arc::new(MemoryNotifier::new()), Arc::new(MemoryNotifier::new()));
        let mut all = Notifiers::new(vec![a.clone(), Arc::new(Broken { hang: false }), b.clone()]);
        assert_eq!(all.name(), "memory+broken+memory");
        let e = all.notify(&deployed()).await.unwrap_err();
        assert_eq!(e.to_string(), "broken: receiver answered HTTP 500");
        assert_eq!((a.received(), b.received()), (vec![deployed()], vec![deployed()]));
        all.push(Arc::new(Broken { hang: false }));
        assert_eq!(all.len(), 4);
        let e = all.notify(&deployed()).await.unwrap_err();
        assert!(e.to_string().starts_with("notify: 2 of 4 notifiers failed: broken: "), "{e}");
        assert_eq!(e.hint(), Some("try later"));
        assert_eq!(a.received().len(), 2);
        assert!(Notifiers::default().notify(&deployed()).await.is_ok());
        assert_eq!(format!("{all:?}"), r#"Notifiers(["memory", "broken", "memory", "broken"])"#);
    }

    #[tokio::test]
    async fn best_effort_turns_failures_into_warnings() {
        let n = deployed();
        assert_eq!(notify_best_effort(&NoNotifier, &n, Duration::from_secs(1)).await, None);
        let memory = MemoryNotifier::new();
        assert_eq!(notify_best_effort(&memory, &n, Duration::from_secs(1)).await, None);
        assert_eq!(memory.received(), vec![n.clone()]);
        let warning = notify_best_effort(&Broken { hang: false }, &n, Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            warning,
            "team payments was not notified (deployed of my-service in production): broken: receiver answered HTTP 500 (try later)"
        );
        // A notifier that never answers is cut at the timeout.
        let warning = notify_best_effort(&Broken { hang: true }, &n, Duration::from_millis(20)).await.unwrap();
        assert!(warning.ends_with("hanging did not finish within 20 ms"), "{warning}");
    }
}
