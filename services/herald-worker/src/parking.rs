//! Records that cannot be processed are parked with their reason: counted, visible, replayable
//! (`herald-worker replay-parked`), and never retried at the head of their partition.

use herald_store::parked_records::{self, NewParkedRecord};
use herald_store::{Database, StoreError};
use rdkafka::message::{Message, OwnedMessage};

use crate::metrics;

/// Why a record was parked; the label of `herald_worker_parked_records_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkReason {
    Undecodable,
    UnknownVersion,
    NotificationMissing,
    Refused,
    Panicked,
}

impl ParkReason {
    pub fn label(self) -> &'static str {
        match self {
            ParkReason::Undecodable => "undecodable",
            ParkReason::UnknownVersion => "unknown_version",
            ParkReason::NotificationMissing => "notification_missing",
            ParkReason::Refused => "refused",
            ParkReason::Panicked => "panicked",
        }
    }
}

pub struct Parking {
    pub record: NewParkedRecord,
    pub reason: ParkReason,
}

impl Parking {
    pub fn new(record: &OwnedMessage, reason: ParkReason, detail: String) -> Parking {
        Parking {
            record: NewParkedRecord::new(
                record.topic(),
                record.partition(),
                record.offset(),
                record.key(),
                record.payload(),
                format!("{}: {detail}", reason.label()),
            ),
            reason,
        }
    }
}

pub async fn park(database: &Database, parkings: Vec<Parking>) -> Result<(), StoreError> {
    if parkings.is_empty() {
        return Ok(());
    }
    let records: Vec<NewParkedRecord> = parkings
        .iter()
        .map(|parking| parking.record.clone())
        .collect();
    parked_records::park(database, &records).await?;
    for parking in parkings {
        metrics::PARKED_RECORDS
            .with_label_values(&[parking.reason.label()])
            .inc();
        tracing::error!(
            topic = %parking.record.topic,
            partition = parking.record.partition,
            offset = parking.record.offset,
            reason = %parking.record.reason,
            "record parked"
        );
    }
    Ok(())
}
