//! Group fan-out (docs/DESIGN.md, "Groups: fan-out in the worker"): each worker claims group
//! expansions (at most `groups.max_concurrent_expansions`, one per tenant across all workers) and
//! turns each into ordinary records, one per new recipient, keyed by recipient, page by page:
//! plan (one transaction), produce (every acknowledgement awaited), mark produced. The records go
//! through admission like any other, so a member's deliveries land on the member's partition and
//! admission's `ON CONFLICT DO NOTHING` makes a page produced twice harmless.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use herald_config::{GroupsSettings, KafkaSettings};
use herald_domain::{NotificationEnvelope, Priority};
use herald_kafka::trace_context::producer_headers;
use herald_kafka::{HeraldProducer, ProducerRole};
use herald_store::group_expansions::{self, ClaimedExpansion, Planned};
use herald_store::{Database, StoreError};
use rdkafka::producer::FutureRecord;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::metrics;
use crate::session::Session;

/// How long a record may wait in the producer's queue before its page is produced again.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages one expansion plans in a turn; then it gives its worker back and waits behind the
/// expansions that waited longer (other tenants' first), so a group of 1,000,000 takes turns with a
/// group of 10 instead of holding a worker for minutes.
const PAGES_PER_TURN: usize = 10;
/// How often the backlog gauges are read.
const BACKLOG_READ_INTERVAL: Duration = Duration::from_secs(5);

/// What every expansion of this worker shares.
pub struct GroupExpander {
    pub database: Database,
    pub session: Arc<Session>,
    pub producer: HeraldProducer,
    pub settings: GroupsSettings,
    /// The worker session's lease: an expansion owned by a session without a heartbeat this long
    /// is taken over.
    pub lease: Duration,
    ordinary_topic: Arc<str>,
    high_priority_topic: Arc<str>,
}

impl GroupExpander {
    pub fn new(
        database: Database,
        session: Arc<Session>,
        producer: HeraldProducer,
        settings: GroupsSettings,
        kafka: &KafkaSettings,
        lease: Duration,
    ) -> GroupExpander {
        GroupExpander {
            database,
            session,
            producer,
            settings,
            lease,
            ordinary_topic: kafka.topic.as_str().into(),
            high_priority_topic: kafka.high_priority_topic().into(),
        }
    }

    /// The topic of `priority`'s records, as the API's publisher chooses it.
    fn topic(&self, priority: Priority) -> &str {
        match priority {
            Priority::High => &self.high_priority_topic,
            Priority::Normal | Priority::Low => &self.ordinary_topic,
        }
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.settings.poll_interval_ms)
    }
}

/// Claims and runs expansions until `stop`; then lets each finish the page in hand and gives back
/// what it owns, so another worker goes on at once.
pub async fn run_group_expander(expander: Arc<GroupExpander>, stop: CancellationToken) {
    let mut running: JoinSet<()> = JoinSet::new();
    let mut last_backlog_read: Option<tokio::time::Instant> = None;
    loop {
        while running.try_join_next().is_some() {}
        metrics::GROUP_EXPANSIONS_RUNNING.set(running.len() as i64);
        if last_backlog_read.is_none_or(|read| read.elapsed() >= BACKLOG_READ_INTERVAL) {
            last_backlog_read = Some(tokio::time::Instant::now());
            read_backlog(&expander.database).await;
        }
        let room = expander
            .settings
            .max_concurrent_expansions
            .saturating_sub(running.len());
        if room > 0 && !expander.session.is_fenced() {
            let session = expander.session.id();
            match group_expansions::claim(&expander.database, session, expander.lease, room).await {
                Ok(claimed) => {
                    for expansion in claimed {
                        let span = tracing::info_span!(
                            "group_expansion",
                            notification_id = %expansion.notification_id,
                            group_id = %expansion.group_id,
                        );
                        let (expander, stop) = (expander.clone(), stop.clone());
                        running.spawn(
                            expand_guarded(expander, session, expansion, stop).instrument(span),
                        );
                    }
                }
                Err(error) => {
                    metrics::GROUP_EXPANSION_FAILURES.inc();
                    tracing::warn!(%error, "claiming group expansions failed; retrying");
                }
            }
        }
        metrics::GROUP_EXPANSIONS_RUNNING.set(running.len() as i64);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(expander.poll_interval()) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    while running.join_next().await.is_some() {}
    metrics::GROUP_EXPANSIONS_RUNNING.set(0);
    let session = expander.session.id();
    if let Err(error) = group_expansions::release(&expander.database, session).await {
        tracing::warn!(%error, "giving back group expansions failed; they move on when the session expires");
    }
}

async fn read_backlog(database: &Database) {
    match group_expansions::backlog(database).await {
        Ok(backlog) => {
            metrics::GROUP_EXPANSIONS_WAITING.set(backlog.expansions);
            metrics::GROUP_EXPANSION_OLDEST_AGE_SECONDS.set(backlog.oldest_age_seconds as i64);
        }
        Err(error) => tracing::debug!(%error, "reading the group expansion backlog failed"),
    }
}

/// Why one expansion stopped before it was done.
enum Stopped {
    /// Another session owns it now (this one lapsed), or it is done.
    Lost,
    /// The worker is stopping; it gives the expansion back.
    Stopping,
}

/// [`expand`], with a panic caught: the expansion's turn ends, so that it goes on (here or on
/// another worker) instead of staying owned by a live session that no longer runs it.
async fn expand_guarded(
    expander: Arc<GroupExpander>,
    session: Uuid,
    expansion: ClaimedExpansion,
    stop: CancellationToken,
) {
    use futures::FutureExt;
    let key = expansion.key();
    let run = std::panic::AssertUnwindSafe(expand(expander.clone(), session, expansion, stop));
    if run.catch_unwind().await.is_err() {
        herald_telemetry::metrics::PANICS_CAUGHT
            .with_label_values(&["group_expansion"])
            .inc();
        tracing::error!(notification_id = %key.notification_id, "a group expansion panicked; its turn ends");
        if let Err(error) = group_expansions::end_turn(&expander.database, session, key).await {
            tracing::warn!(%error, "ending a panicked expansion's turn failed; it moves on when the session ends");
        }
    }
}

/// Runs one expansion to its end (or until it is lost or the worker stops), retrying a step that
/// failed for want of the database or the broker.
async fn expand(
    expander: Arc<GroupExpander>,
    session: Uuid,
    expansion: ClaimedExpansion,
    stop: CancellationToken,
) {
    let key = expansion.key();
    let mut unproduced = expansion.unproduced.clone();
    let mut planned_all = expansion.planned_all;
    let mut pages_planned = 0;
    loop {
        // A turn ends between pages, with nothing planned left unproduced.
        if pages_planned >= PAGES_PER_TURN && unproduced.is_empty() && !planned_all {
            match group_expansions::end_turn(&expander.database, session, key).await {
                Ok(_) => return,
                Err(error) => {
                    // Going on is as correct as stopping: the turn ends after the next page.
                    tracing::warn!(%error, "ending a group expansion's turn failed; going on");
                }
            }
        }
        let step = next_step(
            &expander,
            session,
            &expansion,
            &mut unproduced,
            &mut planned_all,
            &stop,
        )
        .await;
        match step {
            Ok(Progress::Planned) => pages_planned += 1,
            Ok(Progress::Continue) => continue,
            Ok(Progress::Done) => {
                metrics::GROUP_EXPANSIONS_FINISHED.inc();
                return;
            }
            Err(Step::Stopped(Stopped::Lost)) => {
                tracing::info!(notification_id = %key.notification_id, "group expansion taken over by another worker");
                return;
            }
            Err(Step::Stopped(Stopped::Stopping)) => return,
            Err(Step::Failed(error)) => {
                metrics::GROUP_EXPANSION_FAILURES.inc();
                tracing::warn!(notification_id = %key.notification_id, %error, "a group expansion step failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(expander.poll_interval() * 5) => {}
                }
            }
        }
    }
}

/// Where an expansion is after a step that succeeded.
enum Progress {
    /// A page was planned (its records are to be produced).
    Planned,
    Continue,
    Done,
}

/// Why a step did not succeed.
enum Step {
    Stopped(Stopped),
    Failed(String),
}

impl From<StoreError> for Step {
    fn from(error: StoreError) -> Step {
        Step::Failed(error.to_string())
    }
}

/// One step: produce what is planned and unproduced, or finish, or plan the next page.
async fn next_step(
    expander: &GroupExpander,
    session: Uuid,
    expansion: &ClaimedExpansion,
    unproduced: &mut Vec<String>,
    planned_all: &mut bool,
    stop: &CancellationToken,
) -> Result<Progress, Step> {
    let key = expansion.key();
    if expander.session.id() != session {
        // The session lapsed and was replaced: its claims are anyone's now.
        return Err(Step::Stopped(Stopped::Lost));
    }
    if expander.session.is_fenced() {
        // The heartbeat is failing: no new step until it is renewed (or the session is replaced),
        // so that nothing is produced under a claim another worker may be taking over.
        return Err(Step::Failed("the worker session is fenced".into()));
    }
    if !unproduced.is_empty() {
        produce_page(expander, expansion, unproduced).await?;
        if !group_expansions::mark_produced(&expander.database, session, key).await? {
            return Err(Step::Stopped(Stopped::Lost));
        }
        unproduced.clear();
        return Ok(Progress::Continue);
    }
    if *planned_all {
        if !group_expansions::finish(&expander.database, session, key).await? {
            return Err(Step::Stopped(Stopped::Lost));
        }
        return Ok(Progress::Done);
    }
    // Between pages is where a stopping worker lets go: what it planned is produced and marked.
    if stop.is_cancelled() {
        return Err(Step::Stopped(Stopped::Stopping));
    }
    let page = group_expansions::plan_page(
        &expander.database,
        session,
        key,
        expander.settings.page_size,
    )
    .await?;
    match page {
        Planned::Page {
            recipients,
            planned_all: last_page,
        } => {
            metrics::GROUP_MEMBERS_PLANNED.inc_by(recipients.len() as u64);
            *unproduced = recipients;
            *planned_all = last_page;
            Ok(Progress::Planned)
        }
        Planned::Lost => Err(Step::Stopped(Stopped::Lost)),
    }
}

/// Produces one record per recipient and waits for every acknowledgement, no faster than
/// `groups.records_per_second`. Any record not acknowledged fails the step: the page is produced
/// again (admission ignores the deliveries that exist already).
async fn produce_page(
    expander: &GroupExpander,
    expansion: &ClaimedExpansion,
    recipients: &[String],
) -> Result<(), Step> {
    let started = tokio::time::Instant::now();
    let topic = expander.topic(expansion.priority);
    let records: Vec<(String, Vec<u8>)> = recipients
        .iter()
        .map(|user_id| {
            let envelope = NotificationEnvelope::new(
                expansion.notification_id,
                expansion.tenant_id,
                user_id,
                expansion.priority,
                expansion.accepted_at,
            );
            (
                NotificationEnvelope::partition_key(expansion.tenant_id, user_id),
                envelope.encode(),
            )
        })
        .collect();
    let sends = records.iter().map(|(key, payload)| {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(traceparent) = &expansion.trace_parent {
            record = record.headers(producer_headers(traceparent));
        }
        expander.producer.send(record, PRODUCE_TIMEOUT)
    });
    let outcomes = join_all(sends).await;
    let mut refused = 0;
    let mut first_error = None;
    for outcome in outcomes {
        ProducerRole::Worker.count_outcome(outcome.is_ok());
        if let Err((error, _)) = outcome {
            refused += 1;
            first_error.get_or_insert(error);
        }
    }
    metrics::GROUP_RECORDS_PRODUCED.inc_by((records.len() - refused) as u64);
    if let Some(error) = first_error {
        return Err(Step::Failed(format!(
            "{refused} of {} records not acknowledged: {error}",
            records.len()
        )));
    }
    // The page's share of a second at `records_per_second`: a large group becomes a steady stream.
    let rate = f64::from(expander.settings.records_per_second.max(1));
    let page_time = Duration::from_secs_f64(records.len() as f64 / rate);
    tokio::time::sleep_until(started + page_time).await;
    Ok(())
}
