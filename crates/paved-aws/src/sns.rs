//! [`SnsNotifier`]: team notifications published to an SNS topic.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use paved_core::{Notification, Notifier, Result};

use crate::aws::{Aws, Client};

/// The notifier's name.
pub(crate) const BACKEND: &str = "sns";

/// A [`Notifier`] that publishes each notification to an SNS topic: the message is the
/// notification's text, the subject its first line (at most 100 characters), and the message
/// attributes `team`, `app`, `environment` and `kind` let each team subscribe with a filter
/// policy to its own notifications (`{"team": ["payments"]}`).
pub struct SnsNotifier {
    client: Client<aws_sdk_sns::Client>,
    topic_arn: String,
}

impl std::fmt::Debug for SnsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsNotifier").field("topic_arn", &self.topic_arn).finish_non_exhaustive()
    }
}

impl SnsNotifier {
    /// Publishes to the topic `topic_arn` on `aws`.
    pub fn new(aws: Aws, topic_arn: impl Into<String>) -> Self {
        SnsNotifier { client: Client::new(aws, BACKEND), topic_arn: topic_arn.into() }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn name(&self) -> &str {
        BACKEND
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        // The topic's own region (`arn:aws:sns:REGION:ACCOUNT:NAME`), whatever [aws] region says.
        let region = self.topic_arn.split(':').nth(3).filter(|r| !r.is_empty()).map(str::to_string);
        let sns = self
            .client
            .get(|config| {
                let mut builder = aws_sdk_sns::config::Builder::from(config);
                if let Some(r) = region {
                    builder = builder.region(aws_sdk_sns::config::Region::new(r));
                }
                aws_sdk_sns::Client::from_conf(builder.build())
            })
            .await?;
        let text = notification.text();
        let subject: String =
            text.lines().next().unwrap_or("paved").chars().filter(|c| !c.is_control()).take(99).collect();
        let attribute = |value: &str| MessageAttributeValue::builder().data_type("String").string_value(value).build();
        let mut publish = sns.publish().topic_arn(&self.topic_arn).message(&text).subject(subject);
        for (name, value) in [
            ("team", notification.team.as_str()),
            ("app", notification.app.as_str()),
            ("environment", notification.environment.as_str()),
            ("kind", notification.kind.as_str()),
        ] {
            // SNS refuses empty attribute values.
            if !value.is_empty() {
                publish = publish.message_attributes(
                    name,
                    attribute(value).map_err(|e| {
                        paved_core::Error::backend(BACKEND, format!("message attribute {name}: {e}"), None)
                    })?,
                );
            }
        }
        publish
            .send()
            .await
            .map_err(|e| self.client.fail(&format!("publish to the SNS topic {}", self.topic_arn), e))?;
        Ok(())
    }
}
