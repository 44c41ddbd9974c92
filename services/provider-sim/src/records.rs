//! What one provider received: counters for every outcome, a count of accepted sends per
//! idempotency reference (kept in full: exactly-once proofs need every one), and the newest
//! accepted messages in full, in a bounded ring so a long benchmark cannot exhaust memory.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::behaviour::FaultKind;
use crate::provider::Provider;

/// One accepted send, as the inspection API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub provider: Provider,
    /// `custom_args.herald_delivery_id` (SendGrid) or `I-Twilio-Idempotency-Token` (Twilio).
    pub reference: Option<String>,
    /// The `to` addresses of the personalization (comma-separated) or the `To` number.
    pub recipient: String,
    pub subject: Option<String>,
    /// The first content block's value (SendGrid) or `Body` (Twilio).
    pub body: Option<String>,
    /// `X-Message-Id` (SendGrid) or the message `sid` (Twilio).
    pub provider_message_id: String,
    pub received_at: DateTime<Utc>,
}

/// Counters for one provider. `requests` = `accepted` + `rejected` + `server_errors` +
/// `rate_limited` + `timeouts`: every request reaching the provider endpoint is counted once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStats {
    pub requests: u64,
    /// Requests answered 2xx.
    pub accepted: u64,
    /// Requests answered 400 or 401.
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
}

pub struct ProviderRecords {
    capacity: usize,
    recent: VecDeque<DeliveryRecord>,
    accepted_per_reference: HashMap<String, u64>,
    /// The provider message id first given to each reference, for idempotent replays.
    first_message_id: HashMap<String, String>,
    stats: ProviderStats,
}

impl ProviderRecords {
    pub fn new(capacity: usize) -> Self {
        ProviderRecords {
            capacity,
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

    /// Records one accepted request and the sends it carried.
    pub fn accept(&mut self, deliveries: Vec<DeliveryRecord>) {
        self.stats.requests += 1;
        self.stats.accepted += 1;
        for delivery in deliveries {
            self.stats.messages += 1;
            if let Some(reference) = &delivery.reference {
                self.count_reference(reference);
                if !self.first_message_id.contains_key(reference) {
                    self.first_message_id
                        .insert(reference.clone(), delivery.provider_message_id.clone());
                }
            }
            self.remember(delivery);
        }
    }

    /// The original message id when every send of the request repeats an accepted reference;
    /// counts the request as an idempotent replay.
    pub fn replay(&mut self, deliveries: &[DeliveryRecord]) -> Option<String> {
        let mut original = None;
        for delivery in deliveries {
            let reference = delivery.reference.as_ref()?;
            original = Some(self.first_message_id.get(reference)?.clone());
        }
        let original = original?;
        self.stats.requests += 1;
        self.stats.accepted += 1;
        self.stats.idempotent_replays += 1;
        Some(original)
    }

    fn count_reference(&mut self, reference: &str) {
        // Look up before inserting: the common case in a benchmark is a new reference, but a
        // lookup by `&str` avoids allocating a key for the duplicates.
        if let Some(count) = self.accepted_per_reference.get_mut(reference) {
            *count += 1;
            self.stats.duplicates += 1;
            return;
        }
        self.accepted_per_reference.insert(reference.to_owned(), 1);
        self.stats.distinct_references += 1;
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
        self.accepted_per_reference.clone()
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

    /// Forgets everything received; the capacity stays.
    pub fn clear(&mut self) {
        *self = ProviderRecords::new(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(reference: Option<&str>, recipient: &str) -> DeliveryRecord {
        DeliveryRecord {
            provider: Provider::Twilio,
            reference: reference.map(str::to_owned),
            recipient: recipient.to_owned(),
            subject: None,
            body: Some("hello".to_owned()),
            provider_message_id: "SM00000000000000000000000000000000".to_owned(),
            received_at: Utc::now(),
        }
    }

    #[test]
    fn duplicates_count_sends_whose_reference_was_accepted_before() {
        let mut records = ProviderRecords::new(10);
        records.accept(vec![delivery(Some("a"), "+15550000001")]);
        records.accept(vec![delivery(Some("a"), "+15550000001")]);
        records.accept(vec![delivery(Some("b"), "+15550000002")]);
        records.accept(vec![delivery(None, "+15550000003")]);
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
        let mut records = ProviderRecords::new(3);
        for number in 0..5 {
            records.accept(vec![delivery(Some(&format!("r{number}")), "+15550000001")]);
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
        let mut records = ProviderRecords::new(3);
        records.accept(vec![delivery(Some("a"), "+15550000001")]);
        records.clear();
        assert_eq!(records.stats(), ProviderStats::default());
        assert!(records.reference_counts().is_empty());
        assert!(records.recent(None, 10).is_empty());
    }
}
