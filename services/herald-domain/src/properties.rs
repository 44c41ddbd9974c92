//! Property tests (proptest) of the domain's rules: the two transition functions under any
//! sequence of events the system can send, the Kafka envelope for any field values, and
//! placeholder rendering for any text and data. The example-based tests beside each module show
//! single cases; these search for the sequence or the input that breaks a rule.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use crate::envelope::NotificationEnvelope;
use crate::placeholders::{placeholder_names, render, rendered_len};
use crate::status::{
    DeliveryEvent, DeliveryProgress, DeliveryStatus, NotificationEvent, NotificationStatus,
    ProviderReport,
};
use crate::Priority;

/// What may happen to a notification with `expected` deliveries, as the system sends it.
#[derive(Debug, Clone, Copy)]
enum NotificationStep {
    /// A scheduled notification became due.
    Released,
    /// One more delivery ended: 0 sent, 1 failed, 2 skipped.
    DeliveryEnded(u8),
    Cancelled,
    /// A failed delivery is replayed (its `failed` count goes down by one).
    Reopened,
}

fn notification_step() -> impl Strategy<Value = NotificationStep> {
    prop_oneof![
        Just(NotificationStep::Released),
        (0u8..3).prop_map(NotificationStep::DeliveryEnded),
        (0u8..3).prop_map(NotificationStep::DeliveryEnded),
        (0u8..3).prop_map(NotificationStep::DeliveryEnded),
        Just(NotificationStep::Cancelled),
        Just(NotificationStep::Reopened),
    ]
}

fn delivery_event() -> impl Strategy<Value = DeliveryEvent> {
    prop_oneof![
        Just(DeliveryEvent::Claimed),
        Just(DeliveryEvent::Sent),
        any::<bool>().prop_map(|will_retry| DeliveryEvent::RetryableFailure { will_retry }),
        Just(DeliveryEvent::PermanentFailure),
        Just(DeliveryEvent::Released),
        Just(DeliveryEvent::Cancelled),
        Just(DeliveryEvent::Replayed),
        Just(DeliveryEvent::Reported(ProviderReport::Delivered)),
        Just(DeliveryEvent::Reported(ProviderReport::Bounced)),
        Just(DeliveryEvent::Reported(ProviderReport::Failed)),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

proptest! {
    /// Whatever happens, a notification only makes moves the database allows; a move refused
    /// leaves it where it was; once cancelled it stays cancelled; and whenever its counts are all
    /// in, its status is the one they mean.
    #[test]
    fn a_notification_moves_only_as_the_database_allows_and_ends_as_its_counts_say(
        expected in 1i32..12,
        scheduled in any::<bool>(),
        steps in prop::collection::vec(notification_step(), 0..60),
    ) {
        let mut status = NotificationStatus::initial(scheduled);
        let mut progress = DeliveryProgress { expected, ..Default::default() };
        for step in steps {
            let event = match step {
                NotificationStep::Released => NotificationEvent::Released,
                NotificationStep::DeliveryEnded(_) if progress.finished() == expected => continue,
                // Nothing is delivered before the notification is released.
                NotificationStep::DeliveryEnded(_) if status == NotificationStatus::Scheduled => {
                    continue
                }
                NotificationStep::DeliveryEnded(kind) => {
                    match kind {
                        0 => progress.sent += 1,
                        1 => progress.failed += 1,
                        _ => progress.skipped += 1,
                    }
                    NotificationEvent::Progressed(progress)
                }
                NotificationStep::Cancelled => NotificationEvent::Cancelled,
                NotificationStep::Reopened if progress.failed == 0 => continue,
                NotificationStep::Reopened => NotificationEvent::Reopened,
            };
            match status.transition(event) {
                Ok(next) => {
                    prop_assert!(status.may_become(next), "{status:?} -> {next:?} on {event:?}");
                    if status == NotificationStatus::Cancelled {
                        prop_assert_eq!(next, NotificationStatus::Cancelled);
                    }
                    match event {
                        NotificationEvent::Cancelled => {
                            // Every delivery not yet ended is cancelled with it.
                            progress.cancelled = expected - progress.finished();
                        }
                        NotificationEvent::Reopened => progress.failed -= 1,
                        _ => {}
                    }
                    status = next;
                }
                Err(_) => {
                    // Refused: only for what the status cannot do (the caller keeps it).
                    match event {
                        NotificationEvent::Cancelled => prop_assert!(status.is_final()),
                        NotificationEvent::Reopened => prop_assert!(!status.may_reopen()),
                        NotificationEvent::Released => {
                            prop_assert!(status != NotificationStatus::Scheduled)
                        }
                        NotificationEvent::Progressed(_) => {
                            prop_assert!(false, "progress refused in {status:?}: {progress:?}")
                        }
                    }
                }
            }
            if status != NotificationStatus::Cancelled
                && status != NotificationStatus::Scheduled
                && progress.finished() == expected
            {
                prop_assert!(status.is_final(), "{status:?} with every count in: {progress:?}");
                let meant = match (progress.sent > 0, progress.failed > 0) {
                    (true, false) => NotificationStatus::Delivered,
                    (true, true) => NotificationStatus::PartiallyDelivered,
                    (false, _) => NotificationStatus::Failed,
                };
                prop_assert_eq!(status, meant);
            }
        }
    }

    /// Whatever events arrive, in any order: a delivery only makes moves the database allows,
    /// every accepted event moves it, a refused one leaves it, and it is sent at most once per
    /// claim: no event sequence sends it twice without a claim between.
    #[test]
    fn a_delivery_moves_only_as_the_database_allows_and_is_sent_once_per_claim(
        events in prop::collection::vec(delivery_event(), 0..80),
    ) {
        let mut status = DeliveryStatus::Queued;
        let mut claims = 0u32;
        let mut sends = 0u32;
        for event in events {
            match status.transition(event) {
                Ok(next) => {
                    prop_assert!(status.may_become(next) && next != status, "{status:?} -> {next:?}");
                    match event {
                        DeliveryEvent::Claimed => claims += 1,
                        DeliveryEvent::Sent => sends += 1,
                        _ => {}
                    }
                    prop_assert!(sends <= claims, "sent {sends} times with {claims} claims");
                    status = next;
                }
                Err(refused) => {
                    prop_assert_eq!(refused.from, status.as_str());
                }
            }
        }
    }

    /// Any envelope decodes to itself, and its size is what the producer is told to count.
    #[test]
    fn an_envelope_decodes_to_what_was_encoded(
        notification_id in any::<u128>(),
        tenant_id in any::<u128>(),
        user_id in any::<String>(),
        priority in priority(),
        accepted_at_millis in 0i64..4_102_444_800_000,
    ) {
        let accepted_at: DateTime<Utc> = DateTime::from_timestamp_millis(accepted_at_millis).unwrap();
        let envelope = NotificationEnvelope::new(
            Uuid::from_u128(notification_id),
            Uuid::from_u128(tenant_id),
            &user_id,
            priority,
            accepted_at,
        );
        let encoded = envelope.encode();
        let decoded = NotificationEnvelope::decode(&encoded).unwrap();
        prop_assert_eq!(&decoded, &envelope);
        prop_assert_eq!(decoded.user_id, Cow::Borrowed(user_id.as_str()));
        prop_assert!(envelope.record_bytes() > encoded.len());
    }

    /// Rendering text made of literal pieces and `{{name}}` placeholders gives the pieces with each
    /// placeholder replaced by its value; `rendered_len` is the length `render` makes, and a bound
    /// below it refuses with that length instead of building the text.
    #[test]
    fn rendering_replaces_each_placeholder_and_measures_what_it_makes(
        pieces in prop::collection::vec(
            prop_oneof![
                "[^{}]{0,12}".prop_map(|literal| (literal, None)),
                "[a-c]".prop_map(|name| (String::new(), Some(name))),
            ],
            0..20,
        ),
        values in prop::collection::btree_map("[a-c]", any::<String>(), 0..3),
    ) {
        let mut text = String::new();
        let mut expected = String::new();
        for (literal, name) in &pieces {
            match name {
                None => {
                    text.push_str(literal);
                    expected.push_str(literal);
                }
                Some(name) => {
                    text.push_str(&format!("{{{{{name}}}}}"));
                    expected.push_str(values.get(name).map(String::as_str).unwrap_or(""));
                }
            }
        }
        let data: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        let names = placeholder_names(&text).unwrap();
        prop_assert_eq!(names.len(), pieces.iter().filter(|(_, name)| name.is_some()).count());
        prop_assert_eq!(rendered_len(&text, &data), expected.len());
        prop_assert_eq!(render(&text, &data, expected.len()), Ok(expected.clone()));
        if !expected.is_empty() {
            prop_assert_eq!(render(&text, &data, expected.len() - 1), Err(expected.len()));
        }
    }
}
