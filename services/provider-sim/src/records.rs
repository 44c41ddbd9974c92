//! What one provider received: counters for every outcome, a count of accepted sends per
//! idempotency reference, and the newest accepted messages in full, in a bounded ring.
//!
//! Memory is bounded in every part. Exactly-once proofs need a count for every reference, so
//! the per-reference table is kept compact rather than sampled: a reference that is a UUID (as
//! Herald's delivery ids are) costs a 16-byte key and a 4-byte count: 48 bytes an entry, about
//! 80 with the table's spare capacity (measured: 675K references in a 30-minute soak, 58 MB), and the provider's first message id is kept only while the provider
//! honours idempotency references (the only time it is read back). Past `max_references`
//! distinct references new ones are no longer tracked and `untracked_references` says so, so a
//! proof can tell a complete count from a truncated one instead of silently trusting it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::behaviour::FaultKind;
use crate::provider::Provider;

/// One accepted send, as the inspection API shows it. Build one with
/// `DeliveryRecord { …, ..DeliveryRecord::new(provider, reference, recipient, received_at) }`:
/// the fields only some providers have then stay empty for the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub provider: Provider,
    /// `custom_args.herald_delivery_id` (SendGrid), `I-Twilio-Idempotency-Token` (Twilio),
    /// `X-Herald-Delivery-Id` (Slack, Discord, Telegram, Pushover, SMTP) or `webhook-id`
    /// (webhook receiver).
    pub reference: Option<String>,
    /// The `to` addresses of the personalization (comma-separated), the `To` number, the Slack
    /// `T…/B…` webhook (never its secret), the Discord webhook id, the Telegram `chat_id`, the
    /// Pushover `user` key or the webhook endpoint's name.
    pub recipient: String,
    /// The email's subject, or Pushover's `title`.
    pub subject: Option<String>,
    /// The first content block's value (SendGrid), `Body` (Twilio), `text` (Slack, Telegram;
    /// Slack's `blocks` as JSON when there is no text), `content` (Discord), `message`
    /// (Pushover), or the raw request body (webhook receiver).
    pub body: Option<String>,
    /// `X-Message-Id` (SendGrid), the message `sid` (Twilio), the message snowflake (Discord),
    /// `message_id` (Telegram) or the answered `request` id (Pushover); `None` where the
    /// provider answers no id (Slack, webhooks).
    pub provider_message_id: Option<String>,
    pub received_at: DateTime<Utc>,
    /// SendGrid's `custom_args` (the personalization's, where Herald puts them): what SendGrid
    /// would copy into every event of the message.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_args: BTreeMap<String, String>,
    /// Twilio's `StatusCallback`: where Twilio would report the message's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback: Option<String>,
    /// Pushover's `device`: the user's devices the message is for (comma-separated, as sent);
    /// `None` for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Pushover's `priority`, -2 to 2, when the request gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i8>,
    /// SendGrid's `text/html` content block, when the mail has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// SendGrid's message `headers` (the `List-Unsubscribe` pair), when the mail has some.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl DeliveryRecord {
    /// A record with what every provider records, and nothing else: no subject, body or
    /// message id, and none of the fields only some providers have.
    pub fn new(
        provider: Provider,
        reference: Option<String>,
        recipient: String,
        received_at: DateTime<Utc>,
    ) -> Self {
        DeliveryRecord {
            provider,
            reference,
            recipient,
            subject: None,
            body: None,
            provider_message_id: None,
            received_at,
            custom_args: BTreeMap::new(),
            status_callback: None,
            device: None,
            html: None,
            headers: BTreeMap::new(),
            priority: None,
        }
    }
}

/// Counters for one provider. `requests` = `accepted` + `rejected` + `server_errors` +
/// `rate_limited` + `timeouts`: every request reaching the provider endpoint is counted once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStats {
    pub requests: u64,
    /// Requests answered 2xx.
    pub accepted: u64,
    /// Requests refused for their credentials, address or content: 4xx other than 429
    /// (400, 401, 403, 404, 410, 413 as the provider answers them).
    pub rejected: u64,
    pub server_errors: u64,
    pub rate_limited: u64,
    pub timeouts: u64,
    /// Sends recorded: one per accepted Twilio request, one per personalization for SendGrid.
    pub messages: u64,
    /// Accepted sends whose reference had already been accepted before.
    pub duplicates: u64,
    /// References with at least one accepted send.
    pub distinct_references: u64,
    /// Repeats of an accepted reference answered with the original result and not delivered
    /// (only with `honour_idempotency_reference`).
    pub idempotent_replays: u64,
    /// Accepted sends whose reference arrived after `max_references` distinct ones were
    /// tracked: they are not in the per-reference counts, which are then incomplete.
    pub untracked_references: u64,
}

/// A reference as the table stores it: a UUID in 16 bytes, anything else as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ReferenceKey {
    Uuid(u128),
    Text(Box<str>),
}

impl ReferenceKey {
    fn new(reference: &str) -> Self {
        match parse_hyphenated_uuid(reference) {
            Some(uuid) => ReferenceKey::Uuid(uuid),
            None => ReferenceKey::Text(reference.into()),
        }
    }

    /// The reference as it was received. A UUID is printed in the lower-case hyphenated form;
    /// only that exact form is stored as a number, so the round trip is lossless.
    fn to_reference(&self) -> String {
        match self {
            ReferenceKey::Uuid(value) => {
                let hex = format!("{value:032x}");
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                )
            }
            ReferenceKey::Text(text) => text.to_string(),
        }
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower-case hexadecimal, as a number; any other
/// spelling (upper case, braces, no hyphens) stays text so that it prints back unchanged.
fn parse_hyphenated_uuid(reference: &str) -> Option<u128> {
    const HYPHEN_POSITIONS: [usize; 4] = [8, 13, 18, 23];
    let bytes = reference.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (position, &byte) in bytes.iter().enumerate() {
        if HYPHEN_POSITIONS.contains(&position) {
            if byte != b'-' {
                return None;
            }
            continue;
        }
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// Distinct references tracked per provider by default: about 80 bytes each, so the table
/// stays under about 160 MB per provider however long a run lasts.
pub const DEFAULT_MAX_REFERENCES: usize = 2_000_000;

pub struct ProviderRecords {
    capacity: usize,
    max_references: usize,
    recent: VecDeque<DeliveryRecord>,
    accepted_per_reference: HashMap<ReferenceKey, u32>,
    /// The provider message id first given to each reference, kept only for references
    /// accepted while the provider honours idempotency references (for their replays). The
    /// inner `None` is a provider that answers no id (Slack): its repeats are still replays.
    first_message_id: HashMap<ReferenceKey, Option<Box<str>>>,
    stats: ProviderStats,
}

impl ProviderRecords {
    pub fn new(capacity: usize, max_references: usize) -> Self {
        ProviderRecords {
            capacity,
            max_references,
            recent: VecDeque::new(),
            accepted_per_reference: HashMap::new(),
            first_message_id: HashMap::new(),
            stats: ProviderStats::default(),
        }
    }

    pub fn count_rejected(&mut self) {
        self.stats.requests += 1;
        self.stats.rejected += 1;
    }

    pub fn count_fault(&mut self, fault: FaultKind) {
        self.stats.requests += 1;
        match fault {
            FaultKind::ServerError => self.stats.server_errors += 1,
            FaultKind::RateLimit => self.stats.rate_limited += 1,
            FaultKind::Timeout => self.stats.timeouts += 1,
        }
    }

    /// Records one accepted request and the sends it carried; `keep_message_ids` when the
    /// provider honours idempotency references and may have to replay them.
    pub fn accept(&mut self, deliveries: Vec<DeliveryRecord>, keep_message_ids: bool) {
        self.stats.requests += 1;
        self.stats.accepted += 1;
        for delivery in deliveries {
            self.stats.messages += 1;
            if let Some(reference) = &delivery.reference {
                let key = ReferenceKey::new(reference);
                let tracked = self.count_reference(&key);
                if tracked && keep_message_ids {
                    self.first_message_id
                        .entry(key)
                        .or_insert_with(|| delivery.provider_message_id.as_deref().map(Into::into));
                }
            }
            self.remember(delivery);
        }
    }

    /// `Some(original message id)` when every send of the request repeats an accepted
    /// reference (the id itself is `None` for providers that answer none); counts the request as
    /// an idempotent replay.
    pub fn replay(&mut self, deliveries: &[DeliveryRecord]) -> Option<Option<String>> {
        let mut original = None;
        for delivery in deliveries {
            let key = ReferenceKey::new(delivery.reference.as_ref()?);
            let first = self.first_message_id.get(&key)?;
            original = Some(first.as_deref().map(str::to_owned));
        }
        let original = original?;
        self.stats.requests += 1;
        self.stats.accepted += 1;
        self.stats.idempotent_replays += 1;
        Some(original)
    }

    /// Counts one accepted send of `key`; false when the table is full and `key` is not in it.
    fn count_reference(&mut self, key: &ReferenceKey) -> bool {
        if let Some(count) = self.accepted_per_reference.get_mut(key) {
            *count = count.saturating_add(1);
            self.stats.duplicates += 1;
            return true;
        }
        if self.accepted_per_reference.len() >= self.max_references {
            self.stats.untracked_references += 1;
            return false;
        }
        self.accepted_per_reference.insert(key.clone(), 1);
        self.stats.distinct_references += 1;
        true
    }

    fn remember(&mut self, delivery: DeliveryRecord) {
        if self.capacity == 0 {
            return;
        }
        if self.recent.len() >= self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(delivery);
    }

    pub fn stats(&self) -> ProviderStats {
        self.stats
    }

    pub fn reference_counts(&self) -> HashMap<String, u64> {
        self.accepted_per_reference
            .iter()
            .map(|(key, count)| (key.to_reference(), u64::from(*count)))
            .collect()
    }

    /// The newest `limit` records (those with `reference` only, when given), oldest first.
    pub fn recent(&self, reference: Option<&str>, limit: usize) -> Vec<DeliveryRecord> {
        let mut newest_first: Vec<DeliveryRecord> = self
            .recent
            .iter()
            .rev()
            .filter(|record| reference.is_none() || record.reference.as_deref() == reference)
            .take(limit)
            .cloned()
            .collect();
        newest_first.reverse();
        newest_first
    }

    /// Forgets everything received; the capacities stay.
    pub fn clear(&mut self) {
        *self = ProviderRecords::new(self.capacity, self.max_references);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(reference: Option<&str>, recipient: &str) -> DeliveryRecord {
        DeliveryRecord {
            body: Some("hello".to_owned()),
            provider_message_id: Some("SM00000000000000000000000000000000".to_owned()),
            ..DeliveryRecord::new(
                Provider::Twilio,
                reference.map(str::to_owned),
                recipient.to_owned(),
                Utc::now(),
            )
        }
    }

    #[test]
    fn duplicates_count_sends_whose_reference_was_accepted_before() {
        let mut records = ProviderRecords::new(10, 100);
        records.accept(vec![delivery(Some("a"), "+15550000001")], false);
        records.accept(vec![delivery(Some("a"), "+15550000001")], false);
        records.accept(vec![delivery(Some("b"), "+15550000002")], false);
        records.accept(vec![delivery(None, "+15550000003")], false);
        records.count_rejected();
        records.count_fault(FaultKind::Timeout);
        let stats = records.stats();
        assert_eq!(stats.requests, 6);
        assert_eq!(stats.accepted, 4);
        assert_eq!(stats.messages, 4);
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.distinct_references, 2);
        assert_eq!(stats.rejected, 1);
        assert_eq!(stats.timeouts, 1);
        assert_eq!(records.reference_counts().get("a"), Some(&2));
        assert_eq!(records.reference_counts().len(), 2);
    }

    #[test]
    fn the_ring_keeps_the_newest_records_but_counts_stay_complete() {
        let mut records = ProviderRecords::new(3, 100);
        for number in 0..5 {
            records.accept(
                vec![delivery(Some(&format!("r{number}")), "+15550000001")],
                false,
            );
        }
        let kept: Vec<_> = records
            .recent(None, 100)
            .into_iter()
            .map(|record| record.reference.unwrap())
            .collect();
        assert_eq!(kept, ["r2", "r3", "r4"]);
        assert_eq!(records.reference_counts().len(), 5);
        assert_eq!(records.recent(Some("r0"), 100).len(), 0);
        assert_eq!(records.recent(Some("r3"), 100).len(), 1);
        let last_two: Vec<_> = records
            .recent(None, 2)
            .into_iter()
            .map(|record| record.reference.unwrap())
            .collect();
        assert_eq!(last_two, ["r3", "r4"]);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut records = ProviderRecords::new(3, 100);
        records.accept(vec![delivery(Some("a"), "+15550000001")], false);
        records.clear();
        assert_eq!(records.stats(), ProviderStats::default());
        assert!(records.reference_counts().is_empty());
        assert!(records.recent(None, 10).is_empty());
    }

    #[test]
    fn uuid_references_are_stored_as_numbers_and_print_back_unchanged() {
        let uuid = "0192f5e1-7c3a-7b21-9a4e-3d5c6b7a8f90";
        assert!(matches!(ReferenceKey::new(uuid), ReferenceKey::Uuid(_)));
        assert_eq!(ReferenceKey::new(uuid).to_reference(), uuid);
        for text in [
            "0192F5E1-7C3A-7B21-9A4E-3D5C6B7A8F90",
            "0192f5e17c3a7b219a4e3d5c6b7a8f90",
            "0192f5e1-7c3a-7b21-9a4e-3d5c6b7a8f9g",
            "0192f5e1+7c3a-7b21-9a4e-3d5c6b7a8f90",
            "delivery-1",
        ] {
            assert!(
                matches!(ReferenceKey::new(text), ReferenceKey::Text(_)),
                "{text}"
            );
            assert_eq!(ReferenceKey::new(text).to_reference(), text);
        }
        let mut records = ProviderRecords::new(0, 100);
        records.accept(vec![delivery(Some(uuid), "+15550000001")], false);
        records.accept(vec![delivery(Some(uuid), "+15550000001")], false);
        assert_eq!(records.reference_counts().get(uuid), Some(&2));
    }

    #[test]
    fn past_the_reference_limit_new_references_are_counted_as_untracked() {
        let mut records = ProviderRecords::new(0, 2);
        for reference in ["a", "b", "c", "a", "c"] {
            records.accept(vec![delivery(Some(reference), "+15550000001")], false);
        }
        let stats = records.stats();
        assert_eq!(stats.distinct_references, 2);
        assert_eq!(stats.duplicates, 1, "the second `a` is a known duplicate");
        assert_eq!(stats.untracked_references, 2, "both `c`s are untracked");
        assert_eq!(records.reference_counts().len(), 2);
    }

    #[test]
    fn message_ids_are_kept_only_while_references_are_honoured() {
        let mut records = ProviderRecords::new(0, 100);
        let first = delivery(Some("a"), "+15550000001");
        records.accept(vec![first.clone()], false);
        assert_eq!(records.replay(std::slice::from_ref(&first)), None);
        let mut honoured = first.clone();
        honoured.provider_message_id = Some("SM11111111111111111111111111111111".to_owned());
        records.accept(vec![honoured.clone()], true);
        assert_eq!(
            records.replay(std::slice::from_ref(&first)),
            Some(Some("SM11111111111111111111111111111111".to_owned()))
        );
        assert_eq!(records.stats().idempotent_replays, 1);
    }

    #[test]
    fn a_provider_without_message_ids_still_replays_a_known_reference() {
        let mut records = ProviderRecords::new(0, 100);
        let mut without_id = delivery(Some("slack-1"), "T1/B1");
        without_id.provider_message_id = None;
        assert_eq!(records.replay(std::slice::from_ref(&without_id)), None);
        records.accept(vec![without_id.clone()], true);
        assert_eq!(
            records.replay(std::slice::from_ref(&without_id)),
            Some(None)
        );
        assert_eq!(records.stats().messages, 1);
    }
}
