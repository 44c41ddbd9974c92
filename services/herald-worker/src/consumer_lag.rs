//! Consumer lag as each of the worker's consumers sees it, from librdkafka's statistics (every
//! `herald_kafka::STATISTICS_INTERVAL_MS`): the notifications consumers (`consumer.rs`,
//! `herald_consumer_lag`) and the status-events consumer (`status_events/consumer.rs`,
//! `herald_status_events_consumer_lag`) publish theirs the same way, each in a gauge of its own
//! labelled by topic and partition.
//!
//! A consumer sets `statistics.interval.ms` and calls [`publish_lag`] from its context's
//! `ClientContext::stats`; one that needs no other callback uses [`LagReportingContext`].

use prometheus::IntGaugeVec;
use rdkafka::consumer::ConsumerContext;
use rdkafka::{ClientContext, Statistics};

/// Sets `gauge{topic, partition}` to the lag of every partition the consumer holds, and removes
/// the series of those it does not hold (any more), so a partition's lag is reported by its
/// owner only.
pub fn publish_lag(gauge: &IntGaugeVec, statistics: &Statistics) {
    for (name, topic) in &statistics.topics {
        for partition in topic.partitions.values() {
            if partition.partition < 0 {
                continue; // librdkafka's internal "unassigned" partition
            }
            let label = partition.partition.to_string();
            let lag = partition_lag(
                partition.desired,
                partition.consumer_lag,
                partition.hi_offset,
                partition.lo_offset,
            );
            match lag {
                Some(lag) => gauge.with_label_values(&[name, &label]).set(lag),
                None => {
                    let _ = gauge.remove_label_values(&[name, &label]);
                }
            }
        }
    }
}

/// Records behind on one partition, from librdkafka's statistics; `None` when the partition is not
/// this consumer's or its watermarks are not known yet. Before the group's first commit librdkafka
/// reports no lag (-1), yet every record from the low watermark on is still to be processed
/// (`auto.offset.reset` is `earliest`): that is the lag then, 0 on an empty partition.
fn partition_lag(
    assigned: bool,
    consumer_lag: i64,
    high_watermark: i64,
    low_watermark: i64,
) -> Option<i64> {
    if !assigned || high_watermark < 0 {
        return None;
    }
    if consumer_lag >= 0 {
        return Some(consumer_lag);
    }
    Some(high_watermark - low_watermark.max(0))
}

/// The context of a consumer that wants no librdkafka callback but the statistics: publishes its
/// lag in `gauge`.
pub struct LagReportingContext {
    gauge: &'static IntGaugeVec,
}

impl LagReportingContext {
    pub fn new(gauge: &'static IntGaugeVec) -> LagReportingContext {
        LagReportingContext { gauge }
    }
}

impl ClientContext for LagReportingContext {
    fn stats(&self, statistics: Statistics) {
        publish_lag(self.gauge, &statistics);
    }
}

impl ConsumerContext for LagReportingContext {}

#[cfg(test)]
mod tests {
    use super::partition_lag;

    #[test]
    fn lag_is_known_from_the_first_statistics_of_an_assigned_partition() {
        // After a commit: librdkafka's own figure.
        assert_eq!(partition_lag(true, 7, 100, 0), Some(7));
        // Before the group's first commit: everything from the low watermark on.
        assert_eq!(partition_lag(true, -1, 100, 40), Some(60));
        assert_eq!(partition_lag(true, -1, 0, 0), Some(0));
        // Watermarks not fetched yet, or not this consumer's partition: no series.
        assert_eq!(partition_lag(true, -1, -1, -1), None);
        assert_eq!(partition_lag(false, 5, 100, 0), None);
    }
}
