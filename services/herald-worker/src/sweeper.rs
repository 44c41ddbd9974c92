//! The retry sweeper: claims due retries and deliveries whose lease expired (their worker died
//! mid-send), and attempts them again with the same reference. Retries never wait in a partition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use herald_domain::Channel;
use herald_store::{deliveries, notifications};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::WorkerContext;
use crate::recipients::RecipientKey;
use crate::work::{address_for, attempt_and_record, render_message, Content, Work};

const SWEEP_LIMIT: u64 = 500;

pub async fn run_sweeper(
    context: Arc<WorkerContext>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        loop {
            match sweep_once(&context).await {
                Ok(swept) if swept as u64 >= SWEEP_LIMIT && !shutdown.is_cancelled() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(error = ?error, "retry sweep failed");
                    break;
                }
            }
        }
    }
}

/// One sweep; returns how many deliveries it claimed.
async fn sweep_once(context: &WorkerContext) -> anyhow::Result<usize> {
    let swept = deliveries::claim_due(&context.database, context.lease, SWEEP_LIMIT).await?;
    if swept.is_empty() {
        return Ok(0);
    }
    let notification_ids: Vec<Uuid> = swept
        .iter()
        .map(|delivery| delivery.notification_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let notifications: HashMap<Uuid, notifications::NotificationRow> =
        notifications::load_by_ids(&context.database, &notification_ids)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
    let keys: Vec<RecipientKey> = swept
        .iter()
        .map(|delivery| (delivery.tenant_id, delivery.user_id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let recipients = context.recipients.resolve(&keys).await?;
    let empty_data = serde_json::Map::new();

    let count = swept.len();
    let work: Vec<Work> = swept
        .into_iter()
        .filter_map(|delivery| {
            // A notification deleted meanwhile (tenant removed) cascades its deliveries away.
            let notification = notifications.get(&delivery.notification_id)?;
            let channel = Channel::parse(&delivery.channel)?;
            let data = notification.data.as_object().unwrap_or(&empty_data);
            let content = Content {
                subject: notification.subject.as_deref(),
                body: &notification.body,
                data,
            };
            let recipient = recipients.get(&(delivery.tenant_id, delivery.user_id.clone()));
            let message =
                address_for(recipient, channel).map(|to| render_message(delivery.id, to, &content));
            Some(Work {
                delivery_id: delivery.id,
                notification_id: delivery.notification_id,
                tenant_id: delivery.tenant_id,
                user_id: delivery.user_id,
                channel,
                attempt: delivery.attempt,
                accepted_at: notification.created_at,
                message,
            })
        })
        .collect();
    tracing::info!(
        deliveries = work.len(),
        "retrying due and in-doubt deliveries"
    );
    attempt_and_record(context, work).await?;
    deliveries::refresh_notification_statuses(&context.database, &notification_ids).await?;
    Ok(count)
}
