//! The state machines of notifications and deliveries. Each status type has **one transition
//! function**; PostgreSQL holds the same sets as enum types and its triggers allow exactly the moves
//! `may_become` allows (a test compares them pair by pair). See docs/DESIGN.md, "Typed states".

use crate::vocabulary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} cannot move from `{from}` to `{to}`")]
pub struct InvalidTransition {
    pub kind: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}

vocabulary! {
    /// Where a notification stands, as the API shows it.
    pub enum NotificationStatus {
        Scheduled = "scheduled",
        Accepted = "accepted",
        Processing = "processing",
        Delivered = "delivered",
        PartiallyDelivered = "partially_delivered",
        Failed = "failed",
        /// The tenant cancelled it before it was final: every delivery not yet sent is `cancelled`.
        Cancelled = "cancelled",
    }
}

/// What happens to a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationEvent {
    /// A scheduled notification became due.
    Released,
    /// Some of its deliveries became final; the counts are the new totals.
    Progressed(DeliveryProgress),
    /// The tenant cancelled it (`POST /v1/notifications/{id}/cancel`).
    Cancelled,
    /// A failed delivery of it is sent again (dead-letter replay): it is in progress once more.
    Reopened,
}

/// How many of a notification's deliveries are final, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryProgress {
    /// Recipients × channels: the named recipients' when the notification is accepted, plus each
    /// group member's as its group is expanded.
    pub expected: i32,
    pub sent: i32,
    pub failed: i32,
    pub skipped: i32,
    /// Deliveries cancelled with their notification before they were sent.
    pub cancelled: i32,
    /// Groups of the notification not yet expanded: deliveries `expected` does not count yet.
    pub expansions_pending: i32,
}

impl DeliveryProgress {
    pub fn finished(&self) -> i32 {
        self.sent + self.failed + self.skipped + self.cancelled
    }

    /// The status these counts mean.
    fn status(&self) -> NotificationStatus {
        debug_assert!(
            self.finished() <= self.expected,
            "more final deliveries than expected: {self:?}"
        );
        if self.cancelled > 0 {
            // Only a cancelled notification has cancelled deliveries; it stays cancelled.
            return NotificationStatus::Cancelled;
        }
        let more_to_come = self.expansions_pending > 0;
        if self.finished() == 0 && (self.expected > 0 || more_to_come) {
            return NotificationStatus::Accepted;
        }
        if self.finished() < self.expected || more_to_come {
            return NotificationStatus::Processing;
        }
        // Every delivery is final and every group expanded. With none sent (all skipped, failed,
        // or groups without members and no one named), nobody got it: failed.
        match (self.sent > 0, self.failed > 0) {
            (true, false) => NotificationStatus::Delivered,
            (true, true) => NotificationStatus::PartiallyDelivered,
            (false, _) => NotificationStatus::Failed,
        }
    }
}

impl NotificationStatus {
    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    /// Forward order; equal ranks are alternatives (the three final outcomes).
    fn rank(self) -> u8 {
        match self {
            NotificationStatus::Scheduled => 0,
            NotificationStatus::Accepted => 1,
            NotificationStatus::Processing => 2,
            NotificationStatus::Delivered
            | NotificationStatus::PartiallyDelivered
            | NotificationStatus::Failed
            | NotificationStatus::Cancelled => 3,
        }
    }

    /// Whether a failed delivery of a notification in this status may be sent again: it has one
    /// (failed or partially delivered) and was not cancelled.
    pub fn may_reopen(self) -> bool {
        matches!(
            self,
            NotificationStatus::Failed | NotificationStatus::PartiallyDelivered
        )
    }

    /// The moves the database allows too: forward only, except that a notification with a failed
    /// delivery is in progress again when that delivery is replayed; staying is no move.
    pub fn may_become(self, next: NotificationStatus) -> bool {
        next == self
            || next.rank() > self.rank()
            || (self.may_reopen() && next == NotificationStatus::Processing)
    }

    /// The one transition function.
    pub fn transition(
        self,
        event: NotificationEvent,
    ) -> Result<NotificationStatus, InvalidTransition> {
        let next = match event {
            NotificationEvent::Released => NotificationStatus::Accepted,
            // Deliveries still in flight when it was cancelled end as they end; it stays cancelled.
            NotificationEvent::Progressed(_) if self == NotificationStatus::Cancelled => self,
            NotificationEvent::Progressed(progress) => progress.status(),
            NotificationEvent::Cancelled if self.is_final() => {
                return Err(self.refused(NotificationStatus::Cancelled))
            }
            NotificationEvent::Cancelled => NotificationStatus::Cancelled,
            NotificationEvent::Reopened if !self.may_reopen() => {
                return Err(self.refused(NotificationStatus::Processing))
            }
            NotificationEvent::Reopened => NotificationStatus::Processing,
        };
        if self.may_become(next) {
            Ok(next)
        } else {
            Err(self.refused(next))
        }
    }

    fn refused(self, to: NotificationStatus) -> InvalidTransition {
        InvalidTransition {
            kind: "notification",
            from: self.as_str(),
            to: to.as_str(),
        }
    }

    /// The status a freshly accepted notification starts in.
    pub fn initial(scheduled_in_future: bool) -> NotificationStatus {
        if scheduled_in_future {
            NotificationStatus::Scheduled
        } else {
            NotificationStatus::Accepted
        }
    }
}

vocabulary! {
    /// Where one delivery (notification × recipient × channel) stands.
    pub enum DeliveryStatus {
        /// Waiting in `delivery_queue` for a provider lane with room.
        Queued = "queued",
        /// Owned by one worker session; a provider call may be in flight.
        Sending = "sending",
        /// An attempt failed and may succeed later; due at `next_attempt_at`.
        Retrying = "retrying",
        Sent = "sent",
        Failed = "failed",
        /// Nothing to send: unknown recipient or no address for the channel.
        Skipped = "skipped",
        /// Its notification was cancelled before it was sent.
        Cancelled = "cancelled",
        /// Sent, and the provider reported it delivered (SendGrid's event webhook, Twilio's status
        /// callback).
        Delivered = "delivered",
        /// Sent, and the provider reported that the recipient's server refused it.
        Bounced = "bounced",
    }
}

/// What a provider reported later about a delivery it had accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderReport {
    Delivered,
    Bounced,
    /// Dropped or undeliverable for another reason than a bounce.
    Failed,
}

/// What happens to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEvent {
    /// A worker session claims it to send it.
    Claimed,
    /// The provider accepted it.
    Sent,
    /// The attempt failed in a way that may pass; `will_retry` is false on the last allowed attempt.
    RetryableFailure { will_retry: bool },
    /// The provider refused it, or there is nothing left to render it from.
    PermanentFailure,
    /// The claim returns unsent (graceful shutdown) or in doubt (its owner died).
    Released,
    /// Its notification was cancelled before it was claimed, or before its claim's provider call
    /// started (a worker holding it learnt of the cancellation in time).
    Cancelled,
    /// The provider reported what became of a sent delivery (a signed callback).
    Reported(ProviderReport),
    /// A failed delivery is sent again from the dead letters, with the same reference.
    Replayed,
    /// Claimed when it came due, its recipient had opted out of its channel or category since it
    /// was deferred: not sent.
    OptedOut,
}

impl DeliveryStatus {
    /// Whether Herald's work on it is over: it counts in its notification's counters. A sent
    /// delivery may still learn its fate from the provider (`delivered`, `bounced`, `failed`) without
    /// changing its notification's counters; a failed one may be replayed, which reopens them.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            DeliveryStatus::Queued | DeliveryStatus::Sending | DeliveryStatus::Retrying
        )
    }

    /// The moves the database allows too. Staying is no move.
    pub fn may_become(self, next: DeliveryStatus) -> bool {
        use DeliveryStatus::*;
        next == self
            || matches!(
                (self, next),
                (Queued | Retrying, Sending | Cancelled)
                    | (
                        Sending,
                        Sent | Retrying | Failed | Queued | Cancelled | Skipped
                    )
                    | (Sent, Delivered | Bounced | Failed)
                    | (Failed, Queued)
            )
    }

    /// The one transition function.
    pub fn transition(self, event: DeliveryEvent) -> Result<DeliveryStatus, InvalidTransition> {
        use DeliveryStatus::*;
        // Each event names where it may start: the same target reached from elsewhere is refused
        // (a release is only of a claim, a replay only of a failure, a report only of a send).
        // Every event moves: claiming or releasing twice would mean two owners, not a no-op.
        let next = match (self, event) {
            (Queued | Retrying, DeliveryEvent::Claimed) => Some(Sending),
            (Queued | Retrying | Sending, DeliveryEvent::Cancelled) => Some(Cancelled),
            (Sending, DeliveryEvent::Sent) => Some(Sent),
            (Sending, DeliveryEvent::RetryableFailure { will_retry: true }) => Some(Retrying),
            (Sending, DeliveryEvent::RetryableFailure { will_retry: false })
            | (Sending, DeliveryEvent::PermanentFailure) => Some(Failed),
            (Sending, DeliveryEvent::Released) => Some(Queued),
            (Sent, DeliveryEvent::Reported(ProviderReport::Delivered)) => Some(Delivered),
            (Sent, DeliveryEvent::Reported(ProviderReport::Bounced)) => Some(Bounced),
            (Sent, DeliveryEvent::Reported(ProviderReport::Failed)) => Some(Failed),
            (Failed, DeliveryEvent::Replayed) => Some(Queued),
            (Sending, DeliveryEvent::OptedOut) => Some(Skipped),
            _ => None,
        };
        match next {
            Some(next) => {
                debug_assert!(self.may_become(next) && next != self);
                Ok(next)
            }
            None => Err(InvalidTransition {
                kind: "delivery",
                from: self.as_str(),
                to: event.target_name(),
            }),
        }
    }
}

impl DeliveryEvent {
    /// Where the event would lead, for the message of a refused transition.
    fn target_name(self) -> &'static str {
        match self {
            DeliveryEvent::Claimed => "sending",
            DeliveryEvent::Sent => "sent",
            DeliveryEvent::RetryableFailure { will_retry: true } => "retrying",
            DeliveryEvent::RetryableFailure { will_retry: false }
            | DeliveryEvent::PermanentFailure
            | DeliveryEvent::Reported(ProviderReport::Failed) => "failed",
            DeliveryEvent::Released | DeliveryEvent::Replayed => "queued",
            DeliveryEvent::Cancelled => "cancelled",
            DeliveryEvent::Reported(ProviderReport::Delivered) => "delivered",
            DeliveryEvent::Reported(ProviderReport::Bounced) => "bounced",
            DeliveryEvent::OptedOut => "skipped",
        }
    }
}

vocabulary! {
    /// What one provider call came to.
    pub enum AttemptOutcome {
        Sent = "sent",
        RetryableError = "retryable_error",
        PermanentError = "permanent_error",
        /// A retryable error on the last allowed attempt.
        GaveUp = "gave_up",
        /// The worker making the call died before recording its outcome.
        InDoubt = "in_doubt",
        /// No call: the notification was cancelled while the worker held the delivery, before its call
        /// started.
        Cancelled = "cancelled",
        /// No call: the recipient opted out of the channel or category while the delivery was
        /// deferred (docs/DESIGN.md, "Preferences").
        OptedOut = "opted_out",
    }
}

impl AttemptOutcome {
    /// The delivery event this outcome is.
    pub fn event(self, will_retry: bool) -> DeliveryEvent {
        match self {
            AttemptOutcome::Sent => DeliveryEvent::Sent,
            AttemptOutcome::RetryableError | AttemptOutcome::GaveUp => {
                DeliveryEvent::RetryableFailure { will_retry }
            }
            AttemptOutcome::PermanentError => DeliveryEvent::PermanentFailure,
            AttemptOutcome::InDoubt => DeliveryEvent::Released,
            AttemptOutcome::Cancelled => DeliveryEvent::Cancelled,
            AttemptOutcome::OptedOut => DeliveryEvent::OptedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(expected: i32, sent: i32, failed: i32, skipped: i32) -> NotificationEvent {
        NotificationEvent::Progressed(DeliveryProgress {
            expected,
            sent,
            failed,
            skipped,
            cancelled: 0,
            expansions_pending: 0,
        })
    }

    #[test]
    fn a_notification_with_groups_still_expanding_is_never_final() {
        use NotificationStatus::*;
        let counts = |expected, sent, expansions_pending| {
            NotificationEvent::Progressed(DeliveryProgress {
                expected,
                sent,
                expansions_pending,
                ..DeliveryProgress::default()
            })
        };
        // Only groups, none expanded yet: nothing expected, nothing final, not failed.
        assert_eq!(Accepted.transition(counts(0, 0, 1)), Ok(Accepted));
        // Every delivery known so far is sent, but a group has more members to come.
        assert_eq!(Accepted.transition(counts(4, 4, 1)), Ok(Processing));
        assert_eq!(Processing.transition(counts(4, 4, 0)), Ok(Delivered));
        // Groups without members and no one named: nobody got it.
        assert_eq!(Accepted.transition(counts(0, 0, 0)), Ok(Failed));
    }

    #[test]
    fn notifications_move_forward_to_the_status_their_counts_mean() {
        use NotificationStatus::*;
        assert_eq!(Accepted.transition(progress(3, 1, 0, 0)), Ok(Processing));
        assert_eq!(Processing.transition(progress(3, 2, 0, 1)), Ok(Delivered));
        assert_eq!(
            Processing.transition(progress(3, 2, 1, 0)),
            Ok(PartiallyDelivered)
        );
        assert_eq!(Accepted.transition(progress(2, 0, 1, 1)), Ok(Failed));
        assert_eq!(Accepted.transition(progress(1, 0, 0, 1)), Ok(Failed));
        assert_eq!(
            Scheduled.transition(NotificationEvent::Released),
            Ok(Accepted)
        );
        assert_eq!(Processing.transition(progress(3, 2, 0, 0)), Ok(Processing));
    }

    #[test]
    fn notifications_never_move_back_or_between_final_outcomes() {
        use NotificationStatus::*;
        assert!(Delivered.transition(progress(3, 1, 0, 0)).is_err());
        assert!(Processing.transition(NotificationEvent::Released).is_err());
        assert!(!Failed.may_become(Delivered));
        assert!(!Delivered.may_become(Accepted));
        assert!(Accepted.may_become(Delivered));
    }

    #[test]
    fn deliveries_follow_their_state_machine() {
        use DeliveryStatus::*;
        assert_eq!(Queued.transition(DeliveryEvent::Claimed), Ok(Sending));
        assert_eq!(Retrying.transition(DeliveryEvent::Claimed), Ok(Sending));
        assert_eq!(Sending.transition(DeliveryEvent::Sent), Ok(Sent));
        assert_eq!(
            Sending.transition(DeliveryEvent::RetryableFailure { will_retry: true }),
            Ok(Retrying)
        );
        assert_eq!(
            Sending.transition(DeliveryEvent::RetryableFailure { will_retry: false }),
            Ok(Failed)
        );
        assert_eq!(Sending.transition(DeliveryEvent::Released), Ok(Queued));
        assert!(
            Sending.transition(DeliveryEvent::Claimed).is_err(),
            "two owners"
        );
        assert!(Sent.transition(DeliveryEvent::Claimed).is_err());
        assert!(Skipped.transition(DeliveryEvent::Sent).is_err());
        assert!(Queued.transition(DeliveryEvent::Sent).is_err());
        assert!(Failed.transition(DeliveryEvent::Released).is_err());
    }

    #[test]
    fn every_allowed_transition_is_reachable_through_an_event_and_no_other() {
        use DeliveryStatus::*;
        let events = [
            DeliveryEvent::Claimed,
            DeliveryEvent::Sent,
            DeliveryEvent::RetryableFailure { will_retry: true },
            DeliveryEvent::RetryableFailure { will_retry: false },
            DeliveryEvent::PermanentFailure,
            DeliveryEvent::Released,
            DeliveryEvent::Cancelled,
            DeliveryEvent::Reported(ProviderReport::Delivered),
            DeliveryEvent::Reported(ProviderReport::Bounced),
            DeliveryEvent::Reported(ProviderReport::Failed),
            DeliveryEvent::Replayed,
            DeliveryEvent::OptedOut,
        ];
        for from in DeliveryStatus::ALL {
            for to in DeliveryStatus::ALL {
                let by_event = events.iter().any(|event| from.transition(*event) == Ok(to));
                let allowed = from != to && from.may_become(to);
                assert_eq!(by_event, allowed, "{from:?} -> {to:?}");
            }
        }
        assert!(!Sent.may_become(Queued) && !Skipped.may_become(Sending));
    }

    #[test]
    fn cancellation_reports_and_replays_start_only_where_they_may() {
        use DeliveryStatus::*;
        assert_eq!(Queued.transition(DeliveryEvent::Cancelled), Ok(Cancelled));
        assert_eq!(Retrying.transition(DeliveryEvent::Cancelled), Ok(Cancelled));
        // Held by a worker that learnt of the cancellation before its call.
        assert_eq!(Sending.transition(DeliveryEvent::Cancelled), Ok(Cancelled));
        assert!(Sent.transition(DeliveryEvent::Cancelled).is_err());
        let bounced = DeliveryEvent::Reported(ProviderReport::Bounced);
        assert_eq!(Sent.transition(bounced), Ok(Bounced));
        assert!(Failed.transition(bounced).is_err());
        assert!(Delivered.transition(bounced).is_err(), "a report is final");
        assert_eq!(
            Sent.transition(DeliveryEvent::Reported(ProviderReport::Failed)),
            Ok(Failed)
        );
        assert_eq!(Failed.transition(DeliveryEvent::Replayed), Ok(Queued));
        assert!(Sending.transition(DeliveryEvent::Replayed).is_err());
        assert!(Cancelled.transition(DeliveryEvent::Replayed).is_err());
        // Released and Replayed both lead to `queued`, each from its own place only.
        assert!(Failed.transition(DeliveryEvent::Released).is_err());
    }

    #[test]
    fn a_cancelled_notification_stays_cancelled_and_only_failures_reopen() {
        use NotificationStatus::*;
        assert_eq!(
            Scheduled.transition(NotificationEvent::Cancelled),
            Ok(Cancelled)
        );
        assert_eq!(
            Processing.transition(NotificationEvent::Cancelled),
            Ok(Cancelled)
        );
        assert!(Delivered.transition(NotificationEvent::Cancelled).is_err());
        assert_eq!(Cancelled.transition(progress(3, 3, 0, 0)), Ok(Cancelled));
        assert_eq!(
            Failed.transition(NotificationEvent::Reopened),
            Ok(Processing)
        );
        assert_eq!(
            PartiallyDelivered.transition(NotificationEvent::Reopened),
            Ok(Processing)
        );
        assert!(Delivered.transition(NotificationEvent::Reopened).is_err());
        assert!(Cancelled.transition(NotificationEvent::Reopened).is_err());
        assert!(!Cancelled.may_become(Processing) && !Failed.may_become(Accepted));
        let with_cancelled = NotificationEvent::Progressed(DeliveryProgress {
            expected: 3,
            sent: 1,
            cancelled: 2,
            ..DeliveryProgress::default()
        });
        assert_eq!(Processing.transition(with_cancelled), Ok(Cancelled));
    }
}
