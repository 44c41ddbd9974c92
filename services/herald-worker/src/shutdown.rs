//! The worker's shutdown as one ordered set of phases (`startup.rs` runs them; docs/DESIGN.md,
//! "The in-doubt set"). Each phase has a token its tasks watch; entering a phase cancels
//! its token and every earlier one, so no task can see a later phase without the earlier ones
//! (a lane told to abandon has been told to drain, and nothing takes new work while it does).

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The phases, in the order they begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// No new records or claims: the consumers, queue pumps, sweeper and status events stop.
    StopIntake,
    /// The lanes send what they hold and stop once nothing waits.
    Drain,
    /// The drain deadline passed: the lanes stop at once; what they hold goes back unsent.
    Abandon,
    /// Every outcome is submitted: the recorder writes them all and stops.
    FinishRecording,
    /// Nothing is held any more: the heartbeat and the cancellation watch stop, the session ends.
    EndSession,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::StopIntake,
        Phase::Drain,
        Phase::Abandon,
        Phase::FinishRecording,
        Phase::EndSession,
    ];
}

/// One token per [`Phase`]; cloned into the tasks that watch them.
#[derive(Debug, Clone, Default)]
pub struct ShutdownPhases {
    tokens: [CancellationToken; 5],
}

impl ShutdownPhases {
    pub fn new() -> ShutdownPhases {
        ShutdownPhases::default()
    }

    /// The token cancelled when `phase` begins.
    pub fn token(&self, phase: Phase) -> &CancellationToken {
        &self.tokens[phase as usize]
    }

    /// Begins `phase`, and every earlier phase not yet begun.
    pub fn begin(&self, phase: Phase) {
        for earlier_or_this in Phase::ALL.into_iter().filter(|each| *each <= phase) {
            self.token(earlier_or_this).cancel();
        }
    }

    pub fn has_begun(&self, phase: Phase) -> bool {
        self.token(phase).is_cancelled()
    }

    /// Begins [`Phase::Abandon`] at `drain_deadline`, unless the returned task is aborted first
    /// (the lanes stopped in time).
    pub fn abandon_at(&self, drain_deadline: Instant) -> JoinHandle<()> {
        let phases = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(drain_deadline).await;
            phases.begin(Phase::Abandon);
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_phase_begins_with_every_earlier_one_and_no_later_one() {
        for phase in Phase::ALL {
            let phases = ShutdownPhases::new();
            phases.begin(phase);
            for other in Phase::ALL {
                assert_eq!(
                    phases.has_begun(other),
                    other <= phase,
                    "began {phase:?}; {other:?}"
                );
            }
        }
    }

    #[test]
    fn the_tokens_are_in_the_order_of_the_phases() {
        for (index, phase) in Phase::ALL.into_iter().enumerate() {
            assert_eq!(phase as usize, index);
        }
    }

    /// Phases draining, with the lanes abandoned 5 s from now unless the task is aborted.
    fn draining_for_five_seconds() -> (ShutdownPhases, JoinHandle<()>) {
        let phases = ShutdownPhases::new();
        phases.begin(Phase::Drain);
        let deadline = phases.abandon_at(Instant::now() + Duration::from_secs(5));
        (phases, deadline)
    }

    #[tokio::test(start_paused = true)]
    async fn the_lanes_are_abandoned_at_the_drain_deadline_and_not_before() {
        let (phases, _deadline) = draining_for_five_seconds();
        tokio::time::sleep(Duration::from_millis(4_999)).await;
        assert!(
            !phases.has_begun(Phase::Abandon),
            "abandoned before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert!(
            phases.has_begun(Phase::Abandon),
            "not abandoned at the deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lanes_that_stop_in_time_are_never_abandoned() {
        let (phases, deadline) = draining_for_five_seconds();
        tokio::time::sleep(Duration::from_secs(1)).await;
        deadline.abort();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!phases.has_begun(Phase::Abandon));
    }

    #[tokio::test]
    async fn a_clone_watches_the_same_phases() {
        let phases = ShutdownPhases::new();
        let watched = phases.token(Phase::Drain).clone();
        let waiter = tokio::spawn(async move { watched.cancelled().await });
        phases.begin(Phase::Abandon);
        waiter
            .await
            .expect("the drain token was cancelled with the abandon phase");
    }
}
