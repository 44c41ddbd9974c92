//! The queue pump of a lane: claims due `delivery_queue` entries (overflow from admission, retries,
//! in-doubt takeovers) for the lane's provider, only as far as the lane has room, so a claim is
//! never taken that cannot be sent soon. `high` entries first, into any room of the lane; then
//! `normal` and `low` ones, highest priority first, into the room they may take (docs/DESIGN.md,
//! "Priority lanes").

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_domain::preferences::Verdict;
use herald_domain::{AttemptOutcome, DeliveryStatus, Priority};
use herald_store::deliveries::{self, ClaimedDelivery, PriorityBand, RecordedAttempt, TenantRoom};
use herald_store::StoreError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::content::LoadedContent;
use crate::context::WorkerContext;
use crate::held::{DeliveryPlan, HeldDelivery};
use crate::lane::Lane;
use crate::metrics;
use crate::outcome::Outcome;
use crate::recipients::RecipientKey;
use crate::session::SendPermission;
use crate::work::{contact_for, preference_verdict};

/// Deliveries claimed per statement, at most.
const CLAIM_BATCH: usize = 500;
/// Claims of one delivery that may die with their worker (taken over, `in_doubt`) before it is
/// failed without another call: a message that kills whoever sends it (memory, a panic abroad)
/// would otherwise go round the workers for ever, and every death puts every other tenant's calls
/// in flight on that worker in doubt. The failure is a dead letter, replayable once understood.
pub const MAX_IN_DOUBT_TAKEOVERS: i32 = 3;
const RELOAD_PAUSE: Duration = Duration::from_millis(500);
/// How soon a pump whose last round claimed something looks again, whatever `sweep_interval_ms`:
/// a tenant holds only its share of the lane (`tenant_shares.rs`), so a backlog is claimed a share
/// at a time, and the lane sends a share faster than a sweep interval.
const BACKLOG_RECHECK: Duration = Duration::from_millis(50);

pub async fn run_pump(
    context: Arc<WorkerContext>,
    lane: Arc<Lane>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut wait = interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = lane.queued_work() => {}
            _ = stop.cancelled() => return,
        }
        let mut claimed_any = false;
        while !stop.is_cancelled() {
            match pump_once(&context, &lane, &stop).await {
                Ok(round) => {
                    claimed_any |= round.claimed > 0;
                    if !round.more {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, provider = %lane.provider(), "claiming queued deliveries failed");
                    break;
                }
            }
        }
        wait = if claimed_any {
            BACKLOG_RECHECK.min(interval)
        } else {
            interval
        };
    }
}

/// What a round of claims did.
#[derive(Debug, Clone, Copy, Default)]
struct ClaimRound {
    /// Deliveries claimed and handed to the lane (or failed without a call).
    claimed: usize,
    /// A claim was full: more may be waiting, and the lane may have room for it.
    more: bool,
}

/// Claims one batch of `high` entries, then one of `normal` and `low` ones.
async fn pump_once(
    context: &WorkerContext,
    lane: &Arc<Lane>,
    stop: &CancellationToken,
) -> Result<ClaimRound, StoreError> {
    let high = claim_band(context, lane, PriorityBand::HIGH, stop).await?;
    let ordinary = claim_band(context, lane, PriorityBand::ORDINARY, stop).await?;
    Ok(ClaimRound {
        claimed: high.claimed + ordinary.claimed,
        more: high.more || ordinary.more,
    })
}

/// Claims one batch of the entries in `band` and hands them to the lane.
async fn claim_band(
    context: &WorkerContext,
    lane: &Arc<Lane>,
    band: PriorityBand,
    stop: &CancellationToken,
) -> Result<ClaimRound, StoreError> {
    let session = context.session.id();
    if context.session.permission(session) != SendPermission::Yes {
        return Ok(ClaimRound::default());
    }
    // The room of the band's highest priority: all of it for `high`, the ordinary share else.
    let priority: Priority = band.highest;
    let held = lane.try_reserve_held(priority, lane.room(priority).min(CLAIM_BATCH));
    if held.is_empty() {
        return Ok(ClaimRound::default());
    }
    let wanted = held.len();
    let send_batch = Uuid::now_v7();
    let rooms = lane.tenant_rooms();
    let mut claimed = deliveries::claim_queued(
        &context.database,
        session,
        lane.provider(),
        band,
        wanted,
        send_batch,
        &TenantRoom {
            tenants: &rooms.tenants,
            rooms: &rooms.rooms,
            unlisted: rooms.max_per_tenant,
        },
    )
    .await?;
    if claimed.is_empty() {
        return Ok(ClaimRound::default());
    }
    if claimed.len() > wanted {
        // Never meant to happen (the claim takes at most `wanted`); if it does, what the lane has no
        // room for would stay claimed and never be sent: it goes back to the queue at once.
        let extra = claimed.split_off(wanted);
        tracing::error!(
            claimed = wanted + extra.len(),
            wanted,
            provider = %lane.provider(),
            "the claim took more than the lane has room for; returning the rest to the queue"
        );
        let returned: Vec<_> = extra
            .iter()
            .map(|delivery| (delivery.key(), delivery.attempts))
            .collect();
        deliveries::release_unsent(&context.database, session, &returned, &[], Duration::ZERO)
            .await?;
    }
    metrics::QUEUE_CLAIMED
        .with_label_values(&[lane.provider()])
        .inc_by(claimed.len() as u64);

    // These deliveries are ours now: keep trying to load what they need (the heartbeat keeps them
    // ours meanwhile), unless the worker stops (then the session's takeover returns them).
    let (contents, recipients) = loop {
        match load_for(context, &claimed).await {
            Ok(loaded) => break loaded,
            Err(error) if !stop.is_cancelled() => {
                tracing::warn!(%error, "loading claimed deliveries failed; retrying");
                tokio::time::sleep(RELOAD_PAUSE).await;
            }
            Err(error) => return Err(error),
        }
    };
    debug_assert!(claimed.len() <= held.len());
    let mut plans = Vec::with_capacity(claimed.len());
    let mut deferred = Vec::new();
    for (delivery, mut held_slot) in claimed.into_iter().zip(held) {
        lane.hold_for_tenant(&mut held_slot, delivery.tenant_id);
        let plan = plan_claimed(lane, &delivery, &contents, &recipients, &mut held_slot);
        match plan {
            ClaimPlan::Defer => deferred.push((delivery.key(), delivery.attempts)),
            plan => plans.push((delivery, held_slot, plan)),
        }
    }
    let any_deferred = !deferred.is_empty();
    if any_deferred {
        // Its destination holds its share of the lane: back to the queue, due once a call to it
        // can have ended, without counting an attempt. The send batch is complete if nothing else
        // of it is sent.
        let completed: Vec<Uuid> = if plans.is_empty() {
            vec![send_batch]
        } else {
            Vec::new()
        };
        let due_in = lane.timeout();
        // Ours until released: keep trying, as for loading, unless the worker stops.
        while let Err(error) =
            deliveries::release_unsent(&context.database, session, &deferred, &completed, due_in)
                .await
        {
            if stop.is_cancelled() {
                return Err(error);
            }
            tracing::warn!(%error, "returning deferred deliveries to the queue failed; retrying");
            tokio::time::sleep(RELOAD_PAUSE).await;
        }
    }
    if plans.is_empty() {
        return Ok(ClaimRound::default());
    }
    let claimed = plans.len();
    context.recorder.expect(send_batch, claimed).await;
    for (delivery, held_slot, plan) in plans {
        let plan = match plan {
            ClaimPlan::Send(plan) => plan,
            ClaimPlan::Fail(reason) => {
                let outcome = AttemptOutcome::PermanentError;
                finish_without_call(
                    context, lane, &delivery, session, send_batch, outcome, &reason,
                )
                .await;
                continue;
            }
            ClaimPlan::Skip(reason) => {
                let outcome = AttemptOutcome::OptedOut;
                finish_without_call(
                    context, lane, &delivery, session, send_batch, outcome, &reason,
                )
                .await;
                continue;
            }
            ClaimPlan::Defer => unreachable!("deferred deliveries were released above"),
        };
        let reservation = lane
            .complete_reservation(held_slot, plan.content.weight())
            .await;
        lane.hand_over(HeldDelivery {
            key: delivery.key(),
            attempt: delivery.attempts,
            attempt_budget_start: delivery.attempt_budget_start,
            session,
            send_batch,
            plan,
            reservation,
        });
    }
    // A claim that deferred some stops this round: claiming again at once would take the same
    // destination's deliveries again before anything of it has ended.
    Ok(ClaimRound {
        claimed,
        more: wanted == CLAIM_BATCH && !any_deferred,
    })
}

/// What becomes of one claimed delivery.
enum ClaimPlan {
    Send(DeliveryPlan),
    /// Failed without a call, for this reason.
    Fail(String),
    /// Skipped without a call: its recipient opted out of its channel or category since it was
    /// deferred to the end of their quiet hours.
    Skip(String),
    /// Back to the queue for a while: its destination holds its share of the lane.
    Defer,
}

fn plan_claimed(
    lane: &Lane,
    delivery: &ClaimedDelivery,
    contents: &std::collections::HashMap<Uuid, LoadedContent>,
    recipients: &std::collections::HashMap<RecipientKey, herald_store::users::Recipient>,
    held_slot: &mut crate::held::HeldSlot,
) -> ClaimPlan {
    if delivery.in_doubt_takeovers >= MAX_IN_DOUBT_TAKEOVERS {
        metrics::DELIVERIES_GIVEN_UP_AFTER_TAKEOVERS
            .with_label_values(&[lane.provider()])
            .inc();
        return ClaimPlan::Fail(format!(
            "given up: the worker sending it stopped {} times before recording an outcome",
            delivery.in_doubt_takeovers
        ));
    }
    let Some(LoadedContent { content, .. }) = contents.get(&delivery.notification_id) else {
        return ClaimPlan::Fail("nothing to send: the notification no longer exists".to_owned());
    };
    let recipient = recipients.get(&(delivery.tenant_id, delivery.user_id.clone()));
    let contact = match contact_for(recipient, delivery.channel) {
        Ok(contact) => contact,
        Err(reason) => return ClaimPlan::Fail(format!("nothing to send: {reason}")),
    };
    // Opted out since it was admitted (and deferred): not sent. Quiet hours are not judged again:
    // a deferred delivery comes due as they end, and one queued or retried for another reason was
    // begun before them (docs/DESIGN.md, "Preferences").
    if let Verdict::Skip(reason) =
        preference_verdict(recipient, content, delivery.channel, Utc::now())
    {
        return ClaimPlan::Skip(format!("not sent: {reason}"));
    }
    if !lane.hold_for_destination(held_slot, &contact) {
        return ClaimPlan::Defer;
    }
    debug_assert_eq!(content.tenant_id, delivery.tenant_id);
    ClaimPlan::Send(DeliveryPlan {
        user_id: delivery.user_id.clone(),
        content: content.clone(),
        // A queued or retried delivery has no record: its call continues the request's trace.
        trace_parent: content.trace_parent.as_deref().map(Arc::from),
        contact,
        locale: recipient
            .and_then(|recipient| recipient.locale.as_deref())
            .map(Arc::from),
    })
}

type Loaded = (
    std::collections::HashMap<Uuid, LoadedContent>,
    std::collections::HashMap<RecipientKey, herald_store::users::Recipient>,
);

async fn load_for(
    context: &WorkerContext,
    claimed: &[ClaimedDelivery],
) -> Result<Loaded, StoreError> {
    let ids: Vec<Uuid> = claimed
        .iter()
        .map(|delivery| delivery.notification_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let keys: Vec<RecipientKey> = claimed
        .iter()
        .map(|delivery| (delivery.tenant_id, delivery.user_id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let contents = context.contents.load(&ids).await?;
    let recipients = context.recipients.resolve(&keys).await?;
    Ok((contents, recipients))
}

/// A claimed delivery that will not be sent (nothing left to send it from, or given up): failed,
/// without a provider call, with `reason` as its error.
/// Records a claimed delivery's end without a provider call: failed (`PermanentError`) or skipped
/// (`OptedOut`), for `reason`.
async fn finish_without_call(
    context: &WorkerContext,
    lane: &Lane,
    delivery: &ClaimedDelivery,
    session: Uuid,
    send_batch: Uuid,
    outcome: AttemptOutcome,
    reason: &str,
) {
    debug_assert!(matches!(
        outcome,
        AttemptOutcome::PermanentError | AttemptOutcome::OptedOut
    ));
    let now = Utc::now();
    let status = DeliveryStatus::Sending
        .transition(outcome.event(false))
        .unwrap_or(DeliveryStatus::Failed);
    let channel = delivery.channel;
    metrics::DELIVERIES
        .with_label_values(&[channel.as_str(), lane.provider().as_str(), status.as_str()])
        .inc();
    context
        .recorder
        .submit(Outcome {
            session,
            send_batch,
            tenant_id: delivery.tenant_id,
            user_id: delivery.user_id.clone(),
            channel,
            attempt: RecordedAttempt {
                notification_id: delivery.notification_id,
                id: delivery.id,
                attempt: delivery.attempts,
                status,
                outcome,
                provider: lane.provider(),
                provider_message_id: None,
                http_status: None,
                error: Some(reason.to_owned()),
                retry_delay_ms: None,
                started_at: now,
                finished_at: now,
            },
            // No call was made: nothing is in doubt, the room can go at once.
            lane_room: None,
        })
        .await;
}
