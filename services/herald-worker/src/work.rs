//! A claimed delivery and what happens to it: render, send, classify, record. Shared by the
//! partition tasks and the retry sweeper.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use herald_domain::placeholders::render;
use herald_domain::Channel;
use herald_store::deliveries::{self, AttemptResult};
use herald_store::users::Recipient;
use uuid::Uuid;

use crate::context::WorkerContext;
use crate::dead_letter::DeadLetter;
use crate::metrics;
use crate::providers::{OutgoingMessage, SendOutcome};
use crate::sender::Sender;

/// The content a delivery renders from.
pub struct Content<'a> {
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub data: &'a serde_json::Map<String, serde_json::Value>,
}

/// The stable id (and provider reference) of a delivery: the same on every worker, every time.
pub fn delivery_id(notification_id: Uuid, user_id: &str, channel: Channel) -> Uuid {
    let name = format!("{user_id}\u{0}{}", channel.as_str());
    Uuid::new_v5(&notification_id, name.as_bytes())
}

/// Where this recipient is reached on this channel, or why they cannot be.
pub fn address_for(recipient: Option<&Recipient>, channel: Channel) -> Result<String, String> {
    let Some(recipient) = recipient else {
        return Err("unknown recipient: no user with this id (PUT /v1/users/{id} first)".into());
    };
    let address = match channel {
        Channel::Email => recipient.email.as_ref(),
        Channel::Sms => recipient.phone.as_ref(),
    };
    address.cloned().ok_or_else(|| match channel {
        Channel::Email => "recipient has no email address".to_owned(),
        Channel::Sms => "recipient has no phone number".to_owned(),
    })
}

pub fn render_message(delivery_id: Uuid, to: String, content: &Content<'_>) -> OutgoingMessage {
    OutgoingMessage {
        delivery_id,
        to,
        subject: content.subject.map(|subject| render(subject, content.data)),
        body: render(content.body, content.data),
    }
}

/// A delivery this worker claimed and will now attempt.
pub struct Work {
    pub delivery_id: Uuid,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub channel: Channel,
    pub attempt: i32,
    pub accepted_at: DateTime<Utc>,
    /// `Err` when, at claim time, there turned out to be nothing to send (recorded as skipped).
    pub message: Result<OutgoingMessage, String>,
}

/// Attempts every claimed delivery concurrently (bounded by the sender), records the results in
/// one statement, dead-letters the final failures. Returns the results.
pub async fn attempt_and_record(
    context: &WorkerContext,
    work: Vec<Work>,
) -> anyhow::Result<Vec<AttemptResult>> {
    let results: Vec<AttemptResult> =
        join_all(work.iter().map(|item| attempt(context, item))).await;
    deliveries::record(&context.database, &results).await?;
    let mut letters = Vec::new();
    for (item, result) in work.iter().zip(&results) {
        metrics::DELIVERIES
            .with_label_values(&[item.channel.as_str(), result.status])
            .inc();
        if result.status == "failed" {
            letters.push(DeadLetter {
                delivery_id: item.delivery_id,
                notification_id: item.notification_id,
                tenant_id: item.tenant_id,
                user_id: &item.user_id,
                channel: item.channel.as_str(),
                attempts: item.attempt,
                error: result.error.as_deref().unwrap_or(""),
            });
        }
    }
    // Concurrently, each bounded by its produce timeout: a broker outage costs one timeout, not
    // one per failed delivery.
    join_all(
        letters
            .iter()
            .map(|letter| context.dead_letters.publish(letter)),
    )
    .await;
    Ok(results)
}

async fn attempt(context: &WorkerContext, work: &Work) -> AttemptResult {
    let provider = Sender::provider_of(work.channel);
    let started_at = Utc::now();
    let result =
        |status, outcome, provider_message_id, http_status, error, next_attempt_at| AttemptResult {
            id: work.delivery_id,
            attempt: work.attempt,
            status,
            outcome,
            provider,
            provider_message_id,
            http_status,
            error,
            next_attempt_at,
            started_at,
            finished_at: Utc::now(),
        };
    let message = match &work.message {
        Ok(message) => message,
        Err(reason) => return result("skipped", "skipped", None, None, Some(reason.clone()), None),
    };
    match context.sender.send(work.channel, message).await {
        SendOutcome::Sent {
            provider_message_id,
            http_status,
        } => {
            let accepted_for = (Utc::now() - work.accepted_at).to_std().unwrap_or_default();
            metrics::ACCEPT_TO_SENT_SECONDS.observe(accepted_for.as_secs_f64());
            result(
                "sent",
                "sent",
                provider_message_id,
                Some(http_status),
                None,
                None,
            )
        }
        SendOutcome::Permanent { error, http_status } => result(
            "failed",
            "permanent_error",
            None,
            http_status,
            Some(error),
            None,
        ),
        SendOutcome::Retryable {
            error,
            http_status,
            retry_after,
        } => match context.retry_policy.delay_after(work.attempt, retry_after) {
            Some(delay) => {
                let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                result(
                    "pending",
                    "retryable_error",
                    None,
                    http_status,
                    Some(error),
                    Some(next),
                )
            }
            None => {
                let error = format!("gave up after {} attempts: {error}", work.attempt);
                result("failed", "gave_up", None, http_status, Some(error), None)
            }
        },
    }
}
