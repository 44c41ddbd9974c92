//! A held delivery's turn in its lane, from the last checks before its call to the outcome to
//! record: cancelled, refused by its destination's open circuit, routed (the provider or its
//! failover), called, and classified into the attempt the recorder stores. The lane's room and
//! its run loop are in `mod.rs`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_channels::SendOutcome;
use herald_domain::{AttemptOutcome, DeliveryEvent, DeliveryStatus, ProviderId};
use herald_store::deliveries::RecordedAttempt;
use herald_telemetry::supervise::catch_panic;
use tracing::Instrument;

use super::{Lane, Route, SendServices};
use crate::backoff::RetryPolicy;
use crate::circuit_breaker::{CallOutcome, CircuitTransition};
use crate::held::HeldDelivery;
use crate::metrics;
use crate::outcome::Outcome;
use crate::rate_limit::rate_limited_answer;
use crate::templates::{TemplateCache, TemplateUnavailable};
use crate::traces;
use crate::work::{render_message, unsubscribe_url_for};
use herald_domain::unsubscribe::UnsubscribeLinks;

/// How often a lane whose half-open circuit has its probes in flight looks again.
const HALF_OPEN_RECHECK: Duration = Duration::from_millis(50);
/// The longest a lane sleeps on an open circuit before looking again.
const MAX_CIRCUIT_WAIT: Duration = Duration::from_secs(5);

impl Lane {
    /// The outcome of a delivery whose destination's circuit is open: a retryable failure without
    /// a call, due again when the circuit probes (or later, by the retry schedule). Holding it
    /// until then would hold the lane's room for one tenant's broken endpoint.
    pub(super) fn refused_by_destination(
        &self,
        delivery: HeldDelivery,
        open: crate::circuit_breaker::CircuitOpen,
        retry_policy: RetryPolicy,
    ) -> Outcome {
        metrics::DESTINATION_REFUSALS
            .with_label_values(&[self.provider.id().as_str(), "circuit_open"])
            .inc();
        let started_at = Utc::now();
        let destination = delivery
            .destination()
            .map(|destination| destination.key().to_owned())
            .unwrap_or_default();
        let outcome = SendOutcome::Retryable {
            error: format!(
                "not called: the circuit of the destination {destination} is {}",
                open.state
            ),
            http_status: None,
            retry_after: open.retry_in,
        };
        let provider = self.provider.id();
        let mut outcome =
            self.finish_attempt(delivery, provider, outcome, retry_policy, started_at);
        // No call was made: nothing of it is in doubt, its room goes back at once.
        drop(outcome.lane_room.take());
        outcome
    }

    /// The delivery, unless its notification was cancelled: then it is recorded cancelled (no
    /// call) and `None` comes back (the caller's in-flight slot is given back as it drops).
    pub(super) async fn unless_cancelled(
        &self,
        delivery: HeldDelivery,
        services: &SendServices,
    ) -> Option<HeldDelivery> {
        if !services.cancelled.contains(delivery.key.notification_id) {
            return Some(delivery);
        }
        services
            .recorder
            .submit(self.cancelled_before_call(delivery))
            .await;
        None
    }

    /// The outcome of a held delivery whose notification was cancelled before its call: recorded
    /// `cancelled` (counted with the notification's cancelled deliveries), with an attempt saying
    /// so. No call was made, so nothing of it is in doubt: its room goes back at once.
    fn cancelled_before_call(&self, delivery: HeldDelivery) -> Outcome {
        let now = Utc::now();
        let status = DeliveryStatus::Sending
            .transition(DeliveryEvent::Cancelled)
            .expect("a held delivery may be cancelled");
        let provider = self.provider.id();
        metrics::DELIVERIES
            .with_label_values(&[
                delivery.plan.channel().as_str(),
                provider.as_str(),
                status.as_str(),
            ])
            .inc();
        Outcome {
            session: delivery.session,
            send_batch: delivery.send_batch,
            tenant_id: delivery.plan.tenant_id(),
            channel: delivery.plan.channel(),
            attempt: RecordedAttempt {
                notification_id: delivery.key.notification_id,
                id: delivery.key.id,
                attempt: delivery.attempt,
                status,
                outcome: AttemptOutcome::Cancelled,
                provider,
                provider_message_id: None,
                http_status: None,
                error: Some("cancelled with its notification before its call".to_owned()),
                retry_delay_ms: None,
                started_at: now,
                finished_at: now,
            },
            user_id: delivery.plan.user_id,
            lane_room: None,
        }
    }

    /// Where the next call goes: the lane's provider once its circuit lets a call through
    /// (closed, or a probe slot of a half-open circuit), else the failover if there is one. Without
    /// one an open circuit is waited out, not failed: the delivery keeps its attempts, and what the
    /// lane cannot take meanwhile is queued in PostgreSQL.
    pub(super) async fn route(&self) -> Route {
        loop {
            match self.circuit.try_acquire() {
                Ok(call) => return Route::Primary(call),
                Err(_) if self.failover.is_some() => return Route::Failover,
                Err(open) => {
                    let wait = open
                        .retry_in
                        .unwrap_or(HALF_OPEN_RECHECK)
                        .clamp(HALF_OPEN_RECHECK, MAX_CIRCUIT_WAIT);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Publishes what the circuit did, if anything.
    fn note_circuit_transition(&self, transition: Option<CircuitTransition>) {
        let Some(transition) = transition else {
            return;
        };
        metrics::publish_circuit_state(self.provider.id(), transition.to);
    }

    /// One provider call and what it means for the delivery.
    pub(super) async fn send(
        &self,
        delivery: HeldDelivery,
        route: Route,
        retry_policy: RetryPolicy,
        templates: &TemplateCache,
        unsubscribe_links: Option<&UnsubscribeLinks>,
    ) -> Outcome {
        let (called, server_address, call) = match (route, &self.failover) {
            (Route::Primary(call), _) => (&self.provider, self.server_address.as_str(), Some(call)),
            (Route::Failover, Some(failover)) => {
                (&failover.provider, failover.server_address.as_str(), None)
            }
            (Route::Failover, None) => unreachable!("a failover route needs a failover provider"),
        };
        let provider = called.id();
        let started_at = Utc::now();
        let template = match template_of(&delivery, templates).await {
            Ok(template) => template,
            Err(unavailable) => {
                // Refused before any call: the circuit permit (if any) goes back unused.
                drop(call);
                metrics::TEMPLATE_RENDER_FAILURES
                    .with_label_values(&["unavailable"])
                    .inc();
                let outcome = match unavailable {
                    TemplateUnavailable::Retryable(error) => SendOutcome::Retryable {
                        error: format!("not sent: the template could not be read: {error}"),
                        http_status: None,
                        retry_after: None,
                    },
                    TemplateUnavailable::Permanent(error) => SendOutcome::Permanent {
                        error: format!("not sent: {error}"),
                        http_status: None,
                    },
                };
                return self.finish_attempt(delivery, provider, outcome, retry_policy, started_at);
            }
        };
        let unsubscribe_url = unsubscribe_url_for(&delivery.plan, unsubscribe_links);
        let message = match render(&delivery, template, unsubscribe_url).await {
            Ok(message) => message,
            Err(not_rendered) => {
                // Refused before any call: the circuit permit (if any) goes back unused.
                drop(call);
                if let Some(reason) = not_rendered.template_reason {
                    metrics::TEMPLATE_RENDER_FAILURES
                        .with_label_values(&[reason])
                        .inc();
                }
                let outcome = SendOutcome::Permanent {
                    error: format!("not sent: {}", not_rendered.problem),
                    http_status: None,
                };
                return self.finish_attempt(delivery, provider, outcome, retry_policy, started_at);
            }
        };
        let started = Instant::now();
        let span = traces::provider_call_span(
            provider,
            called.endpoint(),
            server_address,
            delivery.attempt,
            delivery.plan.trace_parent.as_deref(),
        );
        let outcome = catch_panic("provider_send", called.send(&message, self.timeout))
            .instrument(span.clone())
            .await
            .unwrap_or_else(|panic| SendOutcome::Retryable {
                error: format!("the {provider} client panicked: {panic}"),
                http_status: None,
                retry_after: None,
            });
        traces::record_provider_outcome(&span, &outcome);
        // A 429 from the lane's own provider slows every replica's lane (`rate_limit/`).
        if let (Some(retry_after), Some(_)) = (rate_limited_answer(&outcome), &call) {
            self.rate.note_rate_limited(retry_after);
        }
        // Only the lane's own provider has a circuit; a failover call reports to none.
        if let Some(call) = call {
            match circuit_verdict(&outcome) {
                Some(verdict) => match delivery.destination() {
                    Some(destination) => {
                        destination.note_circuit_transition(call.record(verdict));
                    }
                    None => self.note_circuit_transition(call.record(verdict)),
                },
                // Neither health nor sickness (a 429, a refused URL): the permit is given back.
                None => drop(call),
            }
        }
        metrics::PROVIDER_REQUEST_SECONDS
            .with_label_values(&[provider])
            .observe(started.elapsed().as_secs_f64());
        metrics::PROVIDER_REQUESTS
            .with_label_values(&[provider.as_str(), outcome.label()])
            .inc();
        self.finish_attempt(delivery, provider, outcome, retry_policy, started_at)
    }

    /// The delivery's attempt and outcome from what its call (or its refusal before one) came to.
    fn finish_attempt(
        &self,
        delivery: HeldDelivery,
        provider: ProviderId,
        outcome: SendOutcome,
        retry_policy: RetryPolicy,
        started_at: chrono::DateTime<Utc>,
    ) -> Outcome {
        let attempt = attempt_record(&delivery, provider, outcome, retry_policy, started_at);
        metrics::DELIVERIES
            .with_label_values(&[
                delivery.plan.channel().as_str(),
                provider.as_str(),
                attempt.status.as_str(),
            ])
            .inc();
        if attempt.status == DeliveryStatus::Sent {
            let since_accept = (Utc::now() - delivery.plan.accepted_at())
                .to_std()
                .unwrap_or_default();
            metrics::ACCEPT_TO_SENT_SECONDS.observe(since_accept.as_secs_f64());
        }
        Outcome {
            session: delivery.session,
            send_batch: delivery.send_batch,
            tenant_id: delivery.plan.tenant_id(),
            channel: delivery.plan.channel(),
            user_id: delivery.plan.user_id,
            attempt,
            lane_room: Some(delivery.reservation.into_held_slot()),
        }
    }
}

/// What an outcome says about the provider's health: it failed when it could not answer
/// (timeout, connection error) or answered 5xx; any other answer, 4xx included, is it working.
/// A rate limit (429) and a failure without a call (a refused URL) say nothing.
fn circuit_verdict(outcome: &SendOutcome) -> Option<CallOutcome> {
    match outcome {
        SendOutcome::Sent { .. } => Some(CallOutcome::Success),
        SendOutcome::Retryable {
            http_status: Some(429),
            ..
        } => None,
        SendOutcome::Retryable {
            http_status: None, ..
        } => Some(CallOutcome::Failure),
        SendOutcome::Retryable {
            http_status: Some(status),
            ..
        } if *status >= 500 => Some(CallOutcome::Failure),
        SendOutcome::Retryable { .. } => Some(CallOutcome::Success),
        SendOutcome::Permanent {
            http_status: Some(_),
            ..
        } => Some(CallOutcome::Success),
        SendOutcome::Permanent {
            http_status: None, ..
        } => None,
    }
}

/// A rate-limited answer (429) is retried longer than other failures: see
/// [`crate::backoff::RATE_LIMITED_ATTEMPTS_FACTOR`].
fn retry_delay(
    retry_policy: RetryPolicy,
    attempt: i32,
    http_status: Option<u16>,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if http_status == Some(429) {
        return retry_policy.delay_after_rate_limit(attempt, retry_after);
    }
    retry_policy.delay_after(attempt, retry_after)
}

/// The attempt to record for a provider's answer, with the delivery's next status from the
/// domain's transition function.
fn attempt_record(
    delivery: &HeldDelivery,
    provider: ProviderId,
    outcome: SendOutcome,
    retry_policy: RetryPolicy,
    started_at: DateTime<Utc>,
) -> RecordedAttempt {
    let (outcome_kind, event, provider_message_id, http_status, error, retry_delay) = match outcome
    {
        SendOutcome::Sent {
            provider_message_id,
            http_status,
        } => (
            AttemptOutcome::Sent,
            DeliveryEvent::Sent,
            provider_message_id,
            Some(i32::from(http_status)),
            None,
            None,
        ),
        SendOutcome::Permanent { error, http_status } => (
            AttemptOutcome::PermanentError,
            DeliveryEvent::PermanentFailure,
            None,
            http_status.map(i32::from),
            Some(error),
            None,
        ),
        SendOutcome::Retryable {
            error,
            http_status,
            retry_after,
        } => match retry_delay(
            retry_policy,
            delivery.attempt - delivery.attempt_budget_start,
            http_status,
            retry_after,
        ) {
            Some(delay) => (
                AttemptOutcome::RetryableError,
                DeliveryEvent::RetryableFailure { will_retry: true },
                None,
                http_status.map(i32::from),
                Some(error),
                Some(delay),
            ),
            None => (
                AttemptOutcome::GaveUp,
                DeliveryEvent::RetryableFailure { will_retry: false },
                None,
                http_status.map(i32::from),
                Some(format!(
                    "gave up after {} attempts: {error}",
                    delivery.attempt
                )),
                None,
            ),
        },
    };
    let status = DeliveryStatus::Sending
        .transition(event)
        .expect("every attempt outcome moves a sending delivery");
    RecordedAttempt {
        notification_id: delivery.key.notification_id,
        id: delivery.key.id,
        attempt: delivery.attempt,
        status,
        outcome: outcome_kind,
        provider,
        provider_message_id,
        http_status,
        error,
        retry_delay_ms: retry_delay.map(|delay| delay.as_millis().min(i64::MAX as u128) as i64),
        started_at,
        finished_at: Utc::now(),
    }
}

/// The compiled template the delivery's notification renders, if it names one.
async fn template_of(
    delivery: &HeldDelivery,
    templates: &TemplateCache,
) -> Result<Option<std::sync::Arc<herald_domain::templates::CompiledTemplate>>, TemplateUnavailable>
{
    let content = &delivery.plan.content;
    let (Some(template_id), Some(version)) = (&content.template_id, content.template_version)
    else {
        return Ok(None);
    };
    templates
        .get(content.tenant_id, template_id, version)
        .await
        .map(Some)
}

/// The delivery's message. A template is rendered on the blocking pool: its fuel bounds a render
/// to about 3 ms of CPU (a hostile loop over 64 KiB of `data`, measured by the `templates`
/// bench), far over what a task may hold the runtime for. Inline content renders in place (its
/// cost is a copy of the text).
async fn render(
    delivery: &HeldDelivery,
    template: Option<std::sync::Arc<herald_domain::templates::CompiledTemplate>>,
    unsubscribe_url: Option<String>,
) -> Result<herald_channels::OutgoingMessage, crate::work::NotRendered> {
    let Some(template) = template else {
        return render_message(delivery.key.id, &delivery.plan, None, unsubscribe_url);
    };
    let (delivery_id, plan) = (delivery.key.id, delivery.plan.clone());
    tokio::task::spawn_blocking(move || {
        render_message(delivery_id, &plan, Some(&template), unsubscribe_url)
    })
    .await
    .unwrap_or_else(|error| {
        Err(crate::work::NotRendered {
            problem: format!("the template's render stopped: {error}"),
            template_reason: Some("failed"),
        })
    })
}
