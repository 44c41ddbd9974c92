//! Admission of a partition batch (docs/DESIGN.md, "Admission"): records → deliveries in
//! PostgreSQL, claimed for a lane with room or queued, in one statement per batch.
//!
//! A record that cannot be processed (undecodable, unknown version, notification gone, refused by
//! the database, or panicking the code that processes it) is parked, found by bisecting the batch,
//! so it never stops its partition. Only an unavailable database makes the batch wait and retry.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use herald_domain::preferences::Verdict;
use herald_domain::{DeliveryStatus, NotificationEnvelope};
use herald_store::deliveries::{self, DeliveryKey, NewDelivery};
use herald_store::StoreError;
use herald_telemetry::supervise::catch_panic;
use rdkafka::message::{Message, OwnedMessage};
use tracing::Instrument;
use uuid::Uuid;

use crate::content::LoadedContent;
use crate::context::WorkerContext;
use crate::held::{DeliveryPlan, HeldDelivery, Reservation};
use crate::lane::Lane;
use crate::metrics;
use crate::parking::{park, ParkReason, Parking};
use crate::recipients::RecipientKey;
use crate::traces::{self, RecordSpan};
use crate::work::{contact_for, delivery_id, preference_verdict};

enum BatchError {
    /// Retry the same batch later.
    Unavailable(StoreError),
    /// Something in the batch cannot be stored or read (the database refused its data, or an
    /// answer could not be understood): bisect, and park the record it comes down to.
    Refused(StoreError),
}

impl From<StoreError> for BatchError {
    fn from(error: StoreError) -> BatchError {
        match error {
            // A statement timeout is a slow database (records are small and batches bounded),
            // never a reason to park a record.
            StoreError::Unavailable(_) | StoreError::StatementTimeout => {
                BatchError::Unavailable(error)
            }
            StoreError::Refused { .. } | StoreError::Other(_) => BatchError::Refused(error),
        }
    }
}

/// Admits the records; parks those that cannot be processed. An error means the database is
/// unavailable: retry the same records later.
pub async fn admit_records(
    context: &WorkerContext,
    records: &[OwnedMessage],
) -> Result<(), StoreError> {
    admit_bisecting(context, records.iter().collect())
        .instrument(traces::batch_span(records, &context.consumer_group))
        .await
}

fn admit_bisecting<'a>(
    context: &'a WorkerContext,
    records: Vec<&'a OwnedMessage>,
) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
    Box::pin(async move {
        let (reason, detail) = match catch_panic("admission", admit_batch(context, &records)).await
        {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(BatchError::Unavailable(error))) => return Err(error),
            Ok(Err(BatchError::Refused(error))) => (ParkReason::Refused, error.to_string()),
            Err(panic) => (
                ParkReason::Panicked,
                format!("processing it panicked: {panic}"),
            ),
        };
        if records.len() > 1 {
            tracing::warn!(records = records.len(), %detail, "admission failed on some record; bisecting the batch");
            let mut first_half = records;
            let second_half = first_half.split_off(first_half.len() / 2);
            admit_bisecting(context, first_half).await?;
            return admit_bisecting(context, second_half).await;
        }
        park(
            &context.database,
            vec![Parking::new(records[0], reason, detail)],
        )
        .await
    })
}

/// A sendable delivery of the batch, with the lane room reserved for it (if there was any).
struct Planned {
    lane: Arc<Lane>,
    reservation: Option<Reservation>,
    plan: DeliveryPlan,
}

/// Admits one batch in four steps: decode its records, plan their deliveries (reserving lane
/// room), admit the plan in one statement, hand the claimed deliveries over to their lanes.
async fn admit_batch(context: &WorkerContext, records: &[&OwnedMessage]) -> Result<(), BatchError> {
    // Open until the batch is admitted; `admit_records` runs this inside the batch's span.
    let batch_span = tracing::Span::current();
    let decoded = decode(context, records, &batch_span);
    let batch_plan = plan(
        context,
        decoded.envelopes,
        decoded.parkings,
        &decoded.record_spans,
    )
    .await?;
    let session = context.session.id();
    let send_batch = Uuid::now_v7();
    let admitted = deliveries::admit(
        &context.database,
        session,
        send_batch,
        &batch_plan.new_deliveries,
    )
    .await?;
    count_admitted(&admitted, batch_plan.new_deliveries.len());
    hand_over(
        context,
        admitted.sending,
        batch_plan.planned,
        session,
        send_batch,
    )
    .await;
    for lane in batch_plan.lanes_with_queued_work {
        lane.note_queued_work();
    }
    // The record spans end here, with the batch admitted.
    drop(decoded.record_spans);
    Ok(())
}

/// A batch's records, decoded: the envelopes, a span per record (while traces are exported), and
/// the records that cannot be decoded, to park.
struct DecodedBatch<'a> {
    envelopes: Vec<(&'a OwnedMessage, NotificationEnvelope<'a>)>,
    record_spans: HashMap<i64, RecordSpan>,
    parkings: Vec<Parking>,
}

fn decode<'a>(
    context: &WorkerContext,
    records: &[&'a OwnedMessage],
    batch_span: &tracing::Span,
) -> DecodedBatch<'a> {
    let mut decoded = DecodedBatch {
        envelopes: Vec::with_capacity(records.len()),
        record_spans: HashMap::new(),
        parkings: Vec::new(),
    };
    for &record in records {
        match NotificationEnvelope::decode(record.payload().unwrap_or_default()) {
            Ok(envelope) => {
                if herald_telemetry::traces::exporting() {
                    let span =
                        traces::record_span(record, &envelope, &context.consumer_group, batch_span);
                    decoded.record_spans.insert(record.offset(), span);
                }
                decoded.envelopes.push((record, envelope))
            }
            Err(error) => {
                let reason = match error {
                    herald_domain::envelope::EnvelopeError::UnknownVersion(_) => {
                        ParkReason::UnknownVersion
                    }
                    herald_domain::envelope::EnvelopeError::Undecodable(_) => {
                        ParkReason::Undecodable
                    }
                };
                decoded
                    .parkings
                    .push(Parking::new(record, reason, error.to_string()));
            }
        }
    }
    decoded
}

/// What admitting a batch will do: the delivery rows to insert, the sendable deliveries among
/// them with their reserved room, and the lanes that will have queued work.
struct BatchPlan {
    new_deliveries: Vec<NewDelivery>,
    planned: HashMap<DeliveryKey, Planned>,
    lanes_with_queued_work: Vec<Arc<Lane>>,
}

/// Loads what the envelopes name (contents, recipients), parks the records that could not be
/// decoded (`parkings`) with those whose notification is gone, and plans one delivery per
/// recipient and channel: skipped without a contact, sending when its lane has room (reserved
/// here), queued otherwise.
async fn plan(
    context: &WorkerContext,
    mut envelopes: Vec<(&OwnedMessage, NotificationEnvelope<'_>)>,
    mut parkings: Vec<Parking>,
    record_spans: &HashMap<i64, RecordSpan>,
) -> Result<BatchPlan, BatchError> {
    let notification_ids: Vec<Uuid> = envelopes
        .iter()
        .map(|(_, envelope)| envelope.notification_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let contents = context.contents.load(&notification_ids).await?;
    // A record is admitted only for its notification's own tenant: one naming another tenant's
    // notification would look its recipients up in one tenant and send the other's content.
    envelopes.retain(|(record, envelope)| {
        let detail = match contents.get(&envelope.notification_id) {
            Some(loaded) if loaded.content.tenant_id == envelope.tenant_id => return true,
            Some(_) => format!(
                "notification {} is not tenant {}'s",
                envelope.notification_id, envelope.tenant_id
            ),
            None => format!(
                "notification {} does not exist (past the retention, or another database)",
                envelope.notification_id
            ),
        };
        parkings.push(Parking::new(
            record,
            ParkReason::NotificationMissing,
            detail,
        ));
        false
    });
    park(&context.database, parkings).await?;

    let keys: Vec<RecipientKey> = envelopes
        .iter()
        .map(|(_, envelope)| (envelope.tenant_id, envelope.user_id.to_string()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let recipients = context.recipients.resolve(&keys).await?;

    for loaded in contents.values() {
        if loaded.content.routing_rules_version.is_some() {
            let result = if loaded.routing.is_some() {
                "matched"
            } else {
                "unmatched"
            };
            metrics::ROUTING_DECISIONS
                .with_label_values(&[result])
                .inc();
        }
    }

    // One instant for the batch: every delivery's preferences are judged at the same time.
    let admitted_at = chrono::Utc::now();
    let mut new_deliveries = Vec::new();
    let mut planned: HashMap<DeliveryKey, Planned> = HashMap::new();
    let mut lanes_with_queued_work: Vec<Arc<Lane>> = Vec::new();
    for (record, envelope) in &envelopes {
        let LoadedContent { content, routing } = &contents[&envelope.notification_id];
        // Same tenant (checked above); the plan takes the acceptance time from the row, which
        // PostgreSQL keeps to the µs.
        let trace_parent = record_spans
            .get(&record.offset())
            .and_then(|span| span.traceparent.clone());
        let recipient = recipients.get(&(envelope.tenant_id, envelope.user_id.to_string()));
        for &channel in &content.channels {
            let key = DeliveryKey {
                notification_id: envelope.notification_id,
                id: delivery_id(envelope.notification_id, &envelope.user_id, channel),
            };
            if planned.contains_key(&key) {
                // The same record twice in one batch (a republished outbox batch).
                continue;
            }
            let Some(lane) = context.lanes.for_channel(channel) else {
                tracing::error!(
                    channel = channel.as_str(),
                    "no provider serves this channel"
                );
                continue;
            };
            // The first of its routing rules that held chooses its channels.
            let routed_elsewhere = routing
                .as_ref()
                .and_then(|decision| decision.skip_reason(channel));
            let contact = match routed_elsewhere {
                Some(reason) => Err(reason),
                None => {
                    contact_for(recipient, channel).and_then(|contact| {
                        match preference_verdict(recipient, content, channel, admitted_at) {
                            Verdict::Send => Ok((contact, None)),
                            Verdict::DeferUntil(due_at) => Ok((contact, Some(due_at))),
                            Verdict::Skip(reason) => Err(reason),
                        }
                    })
                }
            };
            let (status, last_error, contact, due_at) = match contact {
                Err(reason) => (DeliveryStatus::Skipped, Some(reason), None, None),
                // In the recipient's quiet hours: queued until they end, holding no lane room.
                Ok((contact, Some(due_at))) => {
                    metrics::DEFERRED_BY_QUIET_HOURS.inc();
                    (DeliveryStatus::Queued, None, Some(contact), Some(due_at))
                }
                Ok((contact, None)) => {
                    let reservation = lane.try_reserve(
                        content.tenant_id,
                        content.priority,
                        content.weight(),
                        &contact,
                    );
                    let status = if reservation.is_some() {
                        DeliveryStatus::Sending
                    } else {
                        DeliveryStatus::Queued
                    };
                    if status == DeliveryStatus::Queued
                        && !lanes_with_queued_work
                            .iter()
                            .any(|queued| Arc::ptr_eq(queued, lane))
                    {
                        lanes_with_queued_work.push(lane.clone());
                    }
                    planned.insert(
                        key,
                        Planned {
                            lane: lane.clone(),
                            reservation,
                            plan: DeliveryPlan {
                                user_id: envelope.user_id.to_string(),
                                content: content.clone(),
                                contact: contact.clone(),
                                trace_parent: trace_parent.clone(),
                                locale: recipient
                                    .and_then(|recipient| recipient.locale.as_deref())
                                    .map(Arc::from),
                            },
                        },
                    );
                    (status, None, Some(contact), None)
                }
            };
            debug_assert_eq!(contact.is_some(), status != DeliveryStatus::Skipped);
            new_deliveries.push(NewDelivery {
                notification_id: key.notification_id,
                id: key.id,
                tenant_id: envelope.tenant_id,
                user_id: envelope.user_id.to_string(),
                channel,
                provider: lane.provider(),
                priority: content.priority,
                status,
                last_error,
                due_at,
            });
        }
    }

    Ok(BatchPlan {
        new_deliveries,
        planned,
        lanes_with_queued_work,
    })
}

fn count_admitted(admitted: &deliveries::Admitted, planned_rows: usize) {
    let existing = planned_rows
        - admitted.sending.len()
        - admitted.queued
        - admitted.skipped
        - admitted.cancelled;
    for (label, count) in [
        ("sending", admitted.sending.len()),
        ("queued", admitted.queued),
        ("skipped", admitted.skipped),
        ("cancelled", admitted.cancelled),
        ("existing", existing),
    ] {
        metrics::ADMITTED
            .with_label_values(&[label])
            .inc_by(count as u64);
    }
}

/// Hands the deliveries this batch claimed (`sending`) over to their lanes. What is left of
/// `planned` already existed or was queued: its reservations are given back when it drops.
async fn hand_over(
    context: &WorkerContext,
    sending: Vec<DeliveryKey>,
    mut planned: HashMap<DeliveryKey, Planned>,
    session: Uuid,
    send_batch: Uuid,
) {
    context.recorder.expect(send_batch, sending.len()).await;
    for key in sending {
        let Some(Planned {
            lane,
            reservation,
            plan,
        }) = planned.remove(&key)
        else {
            continue;
        };
        let Some(reservation) = reservation else {
            debug_assert!(false, "a sending delivery always has its reservation");
            continue;
        };
        debug_assert_eq!(plan.channel(), lane.channel());
        lane.hand_over(HeldDelivery {
            key,
            attempt: 1,
            attempt_budget_start: 0,
            session,
            send_batch,
            plan,
            reservation,
        });
    }
}
