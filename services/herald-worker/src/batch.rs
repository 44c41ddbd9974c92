//! One partition batch: records → deliveries → claim → attempt → record → notification statuses.
//! See "Processing one batch" in docs/DESIGN.md.

use std::collections::{HashMap, HashSet};

use herald_domain::NotificationEnvelope;
use herald_store::deliveries::{self, NewDelivery};
use rdkafka::message::{Message, OwnedMessage};
use uuid::Uuid;

use crate::context::WorkerContext;
use crate::metrics;
use crate::recipients::RecipientKey;
use crate::work::{address_for, attempt_and_record, delivery_id, render_message, Content, Work};

pub async fn process_records(
    context: &WorkerContext,
    records: &[OwnedMessage],
) -> anyhow::Result<()> {
    let envelopes: Vec<NotificationEnvelope> = records
        .iter()
        .filter_map(|record| {
            let decoded = record
                .payload()
                .and_then(|payload| serde_json::from_slice::<NotificationEnvelope>(payload).ok());
            if decoded.is_none() {
                metrics::UNDECODABLE_RECORDS.inc();
                tracing::warn!(
                    partition = record.partition(),
                    offset = record.offset(),
                    "skipping a record that is not a notification envelope"
                );
            }
            decoded
        })
        .collect();
    if envelopes.is_empty() {
        return Ok(());
    }

    let keys: Vec<RecipientKey> = envelopes
        .iter()
        .map(|envelope| (envelope.tenant_id, envelope.user_id.to_string()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let recipients = context.recipients.resolve(&keys).await?;

    let mut new_deliveries = Vec::new();
    let mut planned: HashMap<Uuid, Work> = HashMap::new();
    for envelope in &envelopes {
        let recipient = recipients.get(&(envelope.tenant_id, envelope.user_id.to_string()));
        let content = Content {
            subject: envelope.subject.as_deref(),
            body: &envelope.body,
            data: &envelope.data,
        };
        for &channel in envelope.channels.iter() {
            let id = delivery_id(envelope.notification_id, &envelope.user_id, channel);
            let address = address_for(recipient, channel);
            new_deliveries.push(NewDelivery {
                id,
                notification_id: envelope.notification_id,
                tenant_id: envelope.tenant_id,
                user_id: envelope.user_id.to_string(),
                channel: channel.as_str(),
                status: if address.is_ok() {
                    "sending"
                } else {
                    "skipped"
                },
                last_error: address.as_ref().err().cloned(),
            });
            if address.is_err() {
                metrics::DELIVERIES
                    .with_label_values(&[channel.as_str(), "skipped"])
                    .inc();
            }
            planned.insert(
                id,
                Work {
                    delivery_id: id,
                    notification_id: envelope.notification_id,
                    tenant_id: envelope.tenant_id,
                    user_id: envelope.user_id.to_string(),
                    channel,
                    attempt: 0,
                    accepted_at: envelope.accepted_at,
                    message: address.map(|to| render_message(id, to, &content)),
                },
            );
        }
    }

    let claimed = deliveries::claim(&context.database, &new_deliveries, context.lease).await?;
    let work: Vec<Work> = claimed
        .into_iter()
        .filter_map(|claim| {
            let mut work = planned.remove(&claim.id)?;
            work.attempt = claim.attempt;
            Some(work)
        })
        .collect();
    if !work.is_empty() {
        attempt_and_record(context, work).await?;
    }

    let notification_ids: Vec<Uuid> = envelopes
        .iter()
        .map(|envelope| envelope.notification_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    deliveries::refresh_notification_statuses(&context.database, &notification_ids).await?;
    Ok(())
}
