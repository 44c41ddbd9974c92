//! A circuit breaker per provider: when a provider keeps failing, stop calling it for a while
//! instead of spending every delivery's attempts, the lane's in-flight slots and the provider's
//! recovery on calls that will fail anyway.
//!
//! Three states, changed by one transition function ([`Machine::step`]):
//!
//! - **Closed**: calls go through. It opens on either `consecutive_failures` failures in a row, or
//!   a failure rate of at least `failure_rate` over the last `window` outcomes, once at least
//!   `minimum_calls` of them are known (so a handful of calls after a quiet night cannot open it).
//!   The rate is evaluated after every outcome, like resilience4j does.
//! - **Open**: calls are refused ([`CircuitOpen`]) without reaching the provider, for `open_for`.
//! - **HalfOpen**: once `open_for` has passed, up to `half_open_probes` probe calls may be in
//!   flight at once; others are refused. The **first probe success closes** the circuit (with a
//!   fresh window: the closed state judges again from new outcomes); a probe failure opens it
//!   again, for twice as long as the last time, up to `max_open_for`. Closing resets that time.
//!
//! Every admitted call holds a [`CallPermit`], to complete with [`CallPermit::record`]. A permit
//! dropped without an outcome (the send was cancelled, the worker is shutting down) counts as
//! neither success nor failure, and gives its probe slot back.
//!
//! Outcomes count only in the state period that admitted their call: a call admitted while
//! closed that ends after the circuit opened, or a second probe that ends after the first one
//! closed the circuit, is stale: the state that followed was decided on fresher evidence.
//!
//! **What counts as a failure is the caller's decision.** It should be what says the provider is
//! unhealthy: timeouts, connection errors, 5xx answers. Not 4xx answers (a bad request is the
//! request's fault: the provider is answering fine), and not 429 (rate limiting is the provider
//! working as designed, which the lane's rate limiter and `Retry-After` handle). Those, and
//! successes, are [`CallOutcome::Success`] as far as the breaker is concerned; an SSRF refusal
//! never reaches the provider and records nothing (drop the permit).
//!
//! The breaker holds a `std::sync::Mutex` only for a few field updates (no allocation but on
//! closing, never across an `.await`), and reads time from `tokio::time::Instant`, so tests can
//! pause and advance it. It publishes no metric: [`CircuitBreaker::state`] and the transitions
//! [`CallPermit::record`] returns are for the caller to publish. It logs its transitions.
//!
//! Why not a crate: `failsafe` and `recloser` have no permit that frees a probe slot when
//! dropped, admit any number of calls in half-open, and read `std::time::Instant` (no
//! `tokio::time::pause` in tests); `failsafe`'s policies are consecutive failures or a success
//! rate over a time window, not both over a count window with a minimum.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use herald_domain::ProviderId;
use tokio::time::Instant;

/// The longest a circuit stays open at once, whatever the settings say: a breaker must probe
/// again some day, and `Instant + Duration` must not overflow.
const LONGEST_OPEN_FOR: Duration = Duration::from_secs(24 * 3600);

/// When a circuit opens and for how long; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerSettings {
    /// Failures in a row that open the circuit.
    pub consecutive_failures: u32,
    /// The failure rate over the window (0.0 to 1.0) that opens the circuit.
    pub failure_rate: f64,
    /// How many of the last outcomes the failure rate is computed over.
    pub window: usize,
    /// How many outcomes the window must hold before its failure rate counts.
    pub minimum_calls: usize,
    /// How long the circuit stays open the first time.
    pub open_for: Duration,
    /// The cap of the open time, which doubles on every failed probe.
    pub max_open_for: Duration,
    /// Probe calls in flight at once while half-open.
    pub half_open_probes: u32,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        CircuitBreakerSettings {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: 20,
            minimum_calls: 10,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(300),
            half_open_probes: 1,
        }
    }
}

impl From<&herald_config::CircuitBreakerConfig> for CircuitBreakerSettings {
    fn from(config: &herald_config::CircuitBreakerConfig) -> CircuitBreakerSettings {
        CircuitBreakerSettings {
            consecutive_failures: config.consecutive_failures,
            failure_rate: config.failure_rate,
            window: config.window,
            minimum_calls: config.minimum_calls,
            open_for: Duration::from_millis(config.open_for_ms),
            max_open_for: Duration::from_millis(config.max_open_for_ms),
            half_open_probes: config.half_open_probes,
        }
    }
}

impl CircuitBreakerSettings {
    /// The same settings within their meaningful ranges. They come from configuration: a zero or
    /// a NaN there must make a working breaker, not a panic or a circuit that never closes.
    fn normalized(self) -> CircuitBreakerSettings {
        let window = self.window.max(1);
        let failure_rate = if self.failure_rate.is_nan() {
            1.0
        } else {
            // A rate of 0 would open on the first call past the minimum, success or not.
            self.failure_rate.clamp(f64::EPSILON, 1.0)
        };
        let open_for = self.open_for.min(LONGEST_OPEN_FOR);
        CircuitBreakerSettings {
            consecutive_failures: self.consecutive_failures.max(1),
            failure_rate,
            window,
            minimum_calls: self.minimum_calls.clamp(1, window),
            open_for,
            max_open_for: self.max_open_for.clamp(open_for, LONGEST_OPEN_FOR),
            half_open_probes: self.half_open_probes.max(1),
        }
    }
}

/// The state of a circuit, as metrics and readiness show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// Every state, to declare a metric's series up front.
    pub const ALL: [CircuitState; 3] = [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What a call told about the provider's health; see the module documentation for what is a
/// failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Success,
    Failure,
}

/// A change of state, for the caller to log or publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitTransition {
    pub from: CircuitState,
    pub to: CircuitState,
}

/// A call refused without reaching the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    pub provider: ProviderId,
    /// Open, or half-open with every probe slot taken.
    pub state: CircuitState,
    /// When an open circuit starts probing; `None` while half-open: the probes in flight decide.
    pub retry_in: Option<Duration>,
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_in {
            Some(retry_in) => write!(
                formatter,
                "the circuit breaker of {} is {}: calls are refused for another {:.3}s",
                self.provider,
                self.state,
                retry_in.as_secs_f64()
            ),
            None => write!(
                formatter,
                "the circuit breaker of {} is {}: its probe calls are in flight",
                self.provider, self.state
            ),
        }
    }
}

impl std::error::Error for CircuitOpen {}

/// The last `capacity` outcomes of a closed circuit and how many of them are failures.
#[derive(Debug)]
struct OutcomeWindow {
    failed: VecDeque<bool>,
    failures: usize,
    capacity: usize,
}

impl OutcomeWindow {
    fn new(capacity: usize) -> OutcomeWindow {
        debug_assert!(capacity >= 1);
        OutcomeWindow {
            failed: VecDeque::with_capacity(capacity),
            failures: 0,
            capacity,
        }
    }

    fn push(&mut self, outcome: CallOutcome) {
        if self.failed.len() == self.capacity && self.failed.pop_front() == Some(true) {
            self.failures -= 1;
        }
        let failed = outcome == CallOutcome::Failure;
        self.failed.push_back(failed);
        self.failures += usize::from(failed);
        debug_assert!(self.failed.len() <= self.capacity);
        debug_assert!(self.failures <= self.failed.len());
    }

    fn len(&self) -> usize {
        self.failed.len()
    }

    fn failure_rate(&self) -> f64 {
        if self.failed.is_empty() {
            return 0.0;
        }
        self.failures as f64 / self.failed.len() as f64
    }
}

#[derive(Debug)]
enum Phase {
    Closed {
        recent: OutcomeWindow,
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
        /// How long it was opened for: a failed probe doubles it.
        open_for: Duration,
    },
    HalfOpen {
        probes_in_flight: u32,
        /// How long it was last open for.
        open_for: Duration,
    },
}

impl Phase {
    fn state(&self) -> CircuitState {
        match self {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn closed(settings: &CircuitBreakerSettings) -> Phase {
        Phase::Closed {
            recent: OutcomeWindow::new(settings.window),
            consecutive_failures: 0,
        }
    }

    fn open(now: Instant, open_for: Duration) -> Phase {
        debug_assert!(open_for <= LONGEST_OPEN_FOR);
        Phase::Open {
            // Settings are capped at a day, so this never falls back; if it did, probing
            // right away beats a panic.
            until: now.checked_add(open_for).unwrap_or(now),
            open_for,
        }
    }
}

/// What the state machine is told.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A caller wants to call the provider now.
    CallRequested,
    /// A call admitted in `period` ended with `outcome`.
    CallFinished {
        period: u64,
        probe: bool,
        outcome: CallOutcome,
    },
    /// A probe admitted in `period` was dropped without an outcome.
    ProbeAbandoned { period: u64 },
    /// Nothing but the time passing (for reading the state).
    Observed,
}

/// What the state machine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Admitted { period: u64, probe: bool },
    Refused { retry_in: Option<Duration> },
    Noted,
}

#[derive(Debug)]
struct Machine {
    phase: Phase,
    /// Counts changes of phase: an outcome from an earlier period is stale.
    period: u64,
}

impl Machine {
    fn new(settings: &CircuitBreakerSettings) -> Machine {
        Machine {
            phase: Phase::closed(settings),
            period: 0,
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.period += 1;
    }

    /// The one transition function: the time first (an open circuit whose time is up is
    /// half-open for whatever comes next), then the event.
    fn step(&mut self, event: Event, now: Instant, settings: &CircuitBreakerSettings) -> Verdict {
        if let Phase::Open { until, open_for } = self.phase {
            if now >= until {
                self.enter(Phase::HalfOpen {
                    probes_in_flight: 0,
                    open_for,
                });
            }
        }
        match event {
            Event::Observed => Verdict::Noted,
            Event::CallRequested => self.admit(now, settings),
            Event::CallFinished {
                period,
                probe,
                outcome,
            } => {
                if period != self.period {
                    return Verdict::Noted;
                }
                self.finish(probe, outcome, now, settings);
                Verdict::Noted
            }
            Event::ProbeAbandoned { period } => {
                if period != self.period {
                    return Verdict::Noted;
                }
                match &mut self.phase {
                    Phase::HalfOpen {
                        probes_in_flight, ..
                    } => {
                        debug_assert!(*probes_in_flight > 0, "a probe of this period is in flight");
                        *probes_in_flight = probes_in_flight.saturating_sub(1);
                    }
                    _ => debug_assert!(false, "a probe's period is a half-open one"),
                }
                Verdict::Noted
            }
        }
    }

    fn admit(&mut self, now: Instant, settings: &CircuitBreakerSettings) -> Verdict {
        match &mut self.phase {
            Phase::Closed { .. } => Verdict::Admitted {
                period: self.period,
                probe: false,
            },
            Phase::Open { until, .. } => Verdict::Refused {
                retry_in: Some(until.saturating_duration_since(now)),
            },
            Phase::HalfOpen {
                probes_in_flight, ..
            } => {
                if *probes_in_flight >= settings.half_open_probes {
                    return Verdict::Refused { retry_in: None };
                }
                *probes_in_flight += 1;
                Verdict::Admitted {
                    period: self.period,
                    probe: true,
                }
            }
        }
    }

    /// An outcome of a call admitted in the current period.
    fn finish(
        &mut self,
        probe: bool,
        outcome: CallOutcome,
        now: Instant,
        settings: &CircuitBreakerSettings,
    ) {
        match &mut self.phase {
            Phase::Closed {
                recent,
                consecutive_failures,
            } => {
                debug_assert!(!probe, "no probe is admitted while closed");
                recent.push(outcome);
                *consecutive_failures = match outcome {
                    CallOutcome::Success => 0,
                    CallOutcome::Failure => consecutive_failures.saturating_add(1),
                };
                let too_many_in_a_row = *consecutive_failures >= settings.consecutive_failures;
                let too_high_a_rate = recent.len() >= settings.minimum_calls
                    && recent.failure_rate() >= settings.failure_rate;
                if too_many_in_a_row || too_high_a_rate {
                    self.enter(Phase::open(now, settings.open_for));
                }
            }
            Phase::Open { .. } => {
                // Nothing is admitted while open, and opening starts a new period.
                debug_assert!(false, "an outcome of the open period");
            }
            Phase::HalfOpen { open_for, .. } => {
                debug_assert!(probe, "only probes are admitted while half-open");
                match outcome {
                    CallOutcome::Success => self.enter(Phase::closed(settings)),
                    CallOutcome::Failure => {
                        let open_for = open_for.saturating_mul(2).min(settings.max_open_for);
                        self.enter(Phase::open(now, open_for));
                    }
                }
            }
        }
    }
}

/// A circuit breaker for one provider; cheap to clone (clones share the circuit).
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    provider: ProviderId,
    settings: CircuitBreakerSettings,
    machine: Mutex<Machine>,
}

impl CircuitBreaker {
    /// A closed circuit. Out-of-range settings are brought into range (see
    /// [`CircuitBreaker::settings`] for what is in force).
    pub fn new(provider: ProviderId, settings: CircuitBreakerSettings) -> CircuitBreaker {
        let settings = settings.normalized();
        let machine = Mutex::new(Machine::new(&settings));
        CircuitBreaker {
            shared: Arc::new(Shared {
                provider,
                settings,
                machine,
            }),
        }
    }

    pub fn provider(&self) -> ProviderId {
        self.shared.provider
    }

    /// The settings in force, after normalization.
    pub fn settings(&self) -> &CircuitBreakerSettings {
        &self.shared.settings
    }

    /// Permission for one call now, or the refusal: the call must not reach the provider.
    pub fn try_acquire(&self) -> Result<CallPermit, CircuitOpen> {
        let stepped = self.step(Event::CallRequested);
        match stepped.verdict {
            Verdict::Admitted { period, probe } => Ok(CallPermit {
                breaker: self.clone(),
                period,
                probe,
                recorded: false,
            }),
            Verdict::Refused { retry_in } => Err(CircuitOpen {
                provider: self.shared.provider,
                state: stepped.state,
                retry_in,
            }),
            Verdict::Noted => {
                debug_assert!(false, "a call request is admitted or refused");
                Err(CircuitOpen {
                    provider: self.shared.provider,
                    state: stepped.state,
                    retry_in: None,
                })
            }
        }
    }

    /// The state now (an open circuit whose time is up reads half-open).
    pub fn state(&self) -> CircuitState {
        self.step(Event::Observed).state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Machine> {
        // Nothing panics while holding it but a debug assertion; the machine stays consistent
        // field by field, so a poisoned lock is still a usable one.
        self.shared
            .machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Steps the machine under the lock, and logs a transition once the lock is released.
    fn step(&self, event: Event) -> Stepped {
        let now = Instant::now();
        let (verdict, from, to) = {
            let mut machine = self.lock();
            let from = machine.phase.state();
            let verdict = machine.step(event, now, &self.shared.settings);
            (verdict, from, machine.phase.state())
        };
        if from == to {
            return Stepped {
                verdict,
                state: to,
                transition: None,
            };
        }
        let provider = self.shared.provider.as_str();
        match to {
            CircuitState::Open => {
                tracing::warn!(provider, from = from.as_str(), "circuit breaker opened")
            }
            CircuitState::HalfOpen => tracing::info!(provider, "circuit breaker half-open"),
            CircuitState::Closed => tracing::info!(provider, "circuit breaker closed"),
        }
        Stepped {
            verdict,
            state: to,
            transition: Some(CircuitTransition { from, to }),
        }
    }
}

/// What one step did: the verdict, the state it left, and the transition it made, if any.
struct Stepped {
    verdict: Verdict,
    state: CircuitState,
    transition: Option<CircuitTransition>,
}

/// Permission for one call. Complete it with [`CallPermit::record`]; dropped without an outcome,
/// it counts as neither success nor failure and gives its probe slot back.
#[must_use = "record the call's outcome; a dropped permit counts as neither success nor failure"]
#[derive(Debug)]
pub struct CallPermit {
    breaker: CircuitBreaker,
    period: u64,
    probe: bool,
    recorded: bool,
}

impl CallPermit {
    /// Whether this call is a half-open probe (worth a log line, or a span attribute).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the call's outcome; returns the transition it caused, if any.
    pub fn record(mut self, outcome: CallOutcome) -> Option<CircuitTransition> {
        self.recorded = true;
        let stepped = self.breaker.step(Event::CallFinished {
            period: self.period,
            probe: self.probe,
            outcome,
        });
        debug_assert_eq!(stepped.verdict, Verdict::Noted);
        stepped.transition
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if self.recorded || !self.probe {
            return;
        }
        self.breaker.step(Event::ProbeAbandoned {
            period: self.period,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::CallOutcome::{Failure, Success};
    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(10);

    /// Only `consecutive` failures in a row open it: the rate needs more calls than any test makes.
    fn by_consecutive(consecutive: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            ProviderId::Webhook,
            CircuitBreakerSettings {
                consecutive_failures: consecutive,
                failure_rate: 1.0,
                window: 1000,
                minimum_calls: 1000,
                open_for: OPEN_FOR,
                max_open_for: Duration::from_secs(25),
                half_open_probes: 1,
            },
        )
    }

    /// Only the failure rate opens it.
    fn by_rate(failure_rate: f64, window: usize, minimum_calls: usize) -> CircuitBreaker {
        CircuitBreaker::new(
            ProviderId::Webhook,
            CircuitBreakerSettings {
                consecutive_failures: u32::MAX,
                failure_rate,
                window,
                minimum_calls,
                open_for: OPEN_FOR,
                max_open_for: OPEN_FOR,
                half_open_probes: 1,
            },
        )
    }

    fn call(breaker: &CircuitBreaker, outcome: CallOutcome) -> Option<CircuitTransition> {
        breaker
            .try_acquire()
            .expect("the circuit admits calls")
            .record(outcome)
    }

    fn trip(breaker: &CircuitBreaker) {
        while breaker.state() == CircuitState::Closed {
            call(breaker, Failure);
        }
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    const OPENED: Option<CircuitTransition> = Some(CircuitTransition {
        from: CircuitState::Closed,
        to: CircuitState::Open,
    });

    #[test]
    fn states_are_named_for_metrics() {
        let names: Vec<&str> = CircuitState::ALL
            .iter()
            .map(|state| state.as_str())
            .collect();
        assert_eq!(names, ["closed", "open", "half_open"]);
    }

    #[test]
    fn breakers_and_permits_cross_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<CircuitBreaker>();
        send_and_sync::<CallPermit>();
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures() {
        let breaker = by_consecutive(3);
        assert_eq!(call(&breaker, Failure), None);
        assert_eq!(call(&breaker, Failure), None);
        assert_eq!(call(&breaker, Success), None, "a success resets the count");
        assert_eq!(call(&breaker, Failure), None);
        assert_eq!(call(&breaker, Failure), None);
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert_eq!(call(&breaker, Failure), OPENED);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_the_failure_rate() {
        let breaker = by_rate(0.5, 10, 10);
        for index in 0..9 {
            let outcome = if index % 2 == 0 { Success } else { Failure };
            assert_eq!(call(&breaker, outcome), None, "call {index}");
        }
        // 4 failures of 9: below the minimum anyway. The tenth makes 5 of 10.
        assert_eq!(call(&breaker, Failure), OPENED);
    }

    #[tokio::test(start_paused = true)]
    async fn stays_closed_below_the_minimum_calls() {
        let breaker = by_rate(0.5, 20, 10);
        for _ in 0..9 {
            assert_eq!(call(&breaker, Failure), None);
        }
        assert_eq!(
            breaker.state(),
            CircuitState::Closed,
            "9 failures of 9, below 10 calls"
        );
        assert_eq!(call(&breaker, Failure), OPENED);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_over_a_rolling_window() {
        let breaker = by_rate(0.75, 4, 4);
        for outcome in [Failure, Failure, Success, Success, Success, Success] {
            assert_eq!(call(&breaker, outcome), None);
        }
        // The window holds 4 successes: the early failures are forgotten.
        assert_eq!(call(&breaker, Failure), None);
        assert_eq!(call(&breaker, Failure), None, "2 failures of 4");
        assert_eq!(call(&breaker, Failure), OPENED, "3 failures of 4");
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_while_open() {
        let breaker = by_consecutive(1);
        trip(&breaker);
        let refusal = breaker.try_acquire().unwrap_err();
        assert_eq!(
            refusal,
            CircuitOpen {
                provider: ProviderId::Webhook,
                state: CircuitState::Open,
                retry_in: Some(OPEN_FOR),
            }
        );
        assert_eq!(
            refusal.to_string(),
            "the circuit breaker of webhook is open: calls are refused for another 10.000s"
        );
        tokio::time::advance(OPEN_FOR - Duration::from_millis(1)).await;
        let refusal = breaker.try_acquire().unwrap_err();
        assert_eq!(refusal.retry_in, Some(Duration::from_millis(1)));
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_once_open_for_has_passed() {
        let breaker = by_consecutive(1);
        trip(&breaker);
        tokio::time::advance(OPEN_FOR).await;
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        let probe = breaker.try_acquire().expect("a probe is admitted");
        assert!(probe.is_probe());
        drop(probe);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_call_after_open_for_is_a_probe_even_unobserved() {
        // No `state()` in between: the transition happens in `try_acquire`.
        let breaker = by_consecutive(1);
        trip(&breaker);
        tokio::time::advance(OPEN_FOR).await;
        let probe = breaker.try_acquire().unwrap();
        assert!(probe.is_probe());
        let refusal = breaker.try_acquire().unwrap_err();
        assert_eq!(refusal.state, CircuitState::HalfOpen);
        assert_eq!(refusal.retry_in, None);
        drop(probe);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_success_closes_with_a_fresh_window() {
        let breaker = by_consecutive(2);
        trip(&breaker);
        tokio::time::advance(OPEN_FOR).await;
        let transition = breaker.try_acquire().unwrap().record(Success);
        assert_eq!(
            transition,
            Some(CircuitTransition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Closed,
            })
        );
        assert_eq!(breaker.state(), CircuitState::Closed);
        let permit = breaker.try_acquire().unwrap();
        assert!(!permit.is_probe());
        assert_eq!(
            permit.record(Failure),
            None,
            "the old failures are forgotten"
        );
        assert_eq!(call(&breaker, Failure), OPENED);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_failure_reopens_for_longer_up_to_the_cap() {
        let breaker = by_consecutive(1);
        trip(&breaker);
        // 10 s, then 20 s, then 40 s capped at 25 s.
        for (open_for, next_open_for) in [(10, 20), (20, 25), (25, 25)] {
            tokio::time::advance(Duration::from_secs(open_for)).await;
            let transition = breaker.try_acquire().unwrap().record(Failure);
            assert_eq!(
                transition,
                Some(CircuitTransition {
                    from: CircuitState::HalfOpen,
                    to: CircuitState::Open,
                })
            );
            let refusal = breaker.try_acquire().unwrap_err();
            assert_eq!(refusal.retry_in, Some(Duration::from_secs(next_open_for)));
        }
        // Closing resets the open time.
        tokio::time::advance(Duration::from_secs(25)).await;
        breaker.try_acquire().unwrap().record(Success);
        trip(&breaker);
        assert_eq!(breaker.try_acquire().unwrap_err().retry_in, Some(OPEN_FOR));
    }

    #[tokio::test(start_paused = true)]
    async fn probes_in_flight_are_limited() {
        let breaker = CircuitBreaker::new(
            ProviderId::Webhook,
            CircuitBreakerSettings {
                consecutive_failures: 1,
                half_open_probes: 2,
                open_for: OPEN_FOR,
                ..CircuitBreakerSettings::default()
            },
        );
        trip(&breaker);
        tokio::time::advance(OPEN_FOR).await;
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert!(first.is_probe() && second.is_probe());
        let refusal = breaker.try_acquire().unwrap_err();
        assert_eq!(refusal.state, CircuitState::HalfOpen);
        assert!(refusal.to_string().contains("probe calls are in flight"));
        // Time passing does not add probe slots.
        tokio::time::advance(OPEN_FOR * 10).await;
        assert!(breaker.try_acquire().is_err());

        // The first success closes; the other probe's late failure is stale.
        assert!(first.record(Success).is_some());
        assert_eq!(second.record(Failure), None);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_its_slot() {
        let breaker = by_consecutive(1);
        trip(&breaker);
        tokio::time::advance(OPEN_FOR).await;
        let probe = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());
        drop(probe);
        assert_eq!(
            breaker.state(),
            CircuitState::HalfOpen,
            "neither success nor failure"
        );
        let probe = breaker.try_acquire().expect("the slot was given back");
        assert!(probe.is_probe());
        assert!(probe.record(Success).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_permit_counts_as_neither() {
        let breaker = by_consecutive(2);
        assert_eq!(call(&breaker, Failure), None);
        drop(breaker.try_acquire().unwrap());
        // Not a success: the failures are still in a row.
        assert_eq!(call(&breaker, Failure), OPENED);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_of_an_earlier_period_are_stale() {
        let breaker = by_consecutive(1);
        let slow = breaker.try_acquire().unwrap();
        let failing = breaker.try_acquire().unwrap();
        assert_eq!(failing.record(Failure), OPENED);
        // A call admitted while closed succeeds after the circuit opened: still open.
        assert_eq!(slow.record(Success), None);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_of_an_earlier_period_frees_no_slot_of_the_next() {
        let breaker = CircuitBreaker::new(
            ProviderId::Webhook,
            CircuitBreakerSettings {
                consecutive_failures: 1,
                open_for: OPEN_FOR,
                max_open_for: OPEN_FOR,
                half_open_probes: 2,
                ..CircuitBreakerSettings::default()
            },
        );
        trip(&breaker);
        tokio::time::advance(OPEN_FOR).await;
        let failing = breaker.try_acquire().unwrap();
        let stale = breaker.try_acquire().unwrap();
        failing.record(Failure);
        assert_eq!(breaker.state(), CircuitState::Open);

        tokio::time::advance(OPEN_FOR).await;
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        drop(stale);
        assert!(
            breaker.try_acquire().is_err(),
            "the stale probe gave back a slot of the new period"
        );
        drop(first);
        let third = breaker
            .try_acquire()
            .expect("a slot of this period was given back");
        assert!(third.is_probe());
        drop((second, third));
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_range_settings_make_a_working_breaker() {
        let breaker = CircuitBreaker::new(
            ProviderId::Webhook,
            CircuitBreakerSettings {
                consecutive_failures: 0,
                failure_rate: f64::NAN,
                window: 0,
                minimum_calls: 0,
                open_for: Duration::MAX,
                max_open_for: Duration::ZERO,
                half_open_probes: 0,
            },
        );
        let settings = breaker.settings();
        assert_eq!(settings.consecutive_failures, 1);
        assert_eq!(settings.failure_rate, 1.0);
        assert_eq!((settings.window, settings.minimum_calls), (1, 1));
        assert_eq!(settings.open_for, LONGEST_OPEN_FOR);
        assert_eq!(settings.max_open_for, LONGEST_OPEN_FOR);
        assert_eq!(settings.half_open_probes, 1);
        assert_eq!(call(&breaker, Success), None);
        assert_eq!(call(&breaker, Failure), OPENED);
        tokio::time::advance(LONGEST_OPEN_FOR).await;
        assert!(breaker.try_acquire().unwrap().record(Success).is_some());
    }

    /// Many tasks on several threads acquire, fail, succeed and drop permits while the circuit
    /// opens and half-opens: probes in flight never exceed the limit, every call is admitted or
    /// refused, and once the calls stop the circuit is whole and closes on the next success.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_use_from_many_tasks_is_consistent() {
        const TASKS: usize = 16;
        const CALLS: usize = 500;
        const PROBES: u32 = 2;
        let breaker = CircuitBreaker::new(
            ProviderId::Webhook,
            CircuitBreakerSettings {
                consecutive_failures: 3,
                failure_rate: 0.5,
                window: 10,
                minimum_calls: 5,
                open_for: Duration::from_millis(1),
                max_open_for: Duration::from_millis(2),
                half_open_probes: PROBES,
            },
        );
        let admitted = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let probes = Arc::new(AtomicUsize::new(0));
        // Probes held now, by period: the breaker's own count is at least this.
        let probes_held: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let breaker = breaker.clone();
            let (admitted, refused, probes, probes_held) = (
                admitted.clone(),
                refused.clone(),
                probes.clone(),
                probes_held.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for index in 0..CALLS {
                    let Ok(permit) = breaker.try_acquire() else {
                        refused.fetch_add(1, Ordering::Relaxed);
                        // Backing off like a caller would, long enough for the circuit to
                        // half-open now and then.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    admitted.fetch_add(1, Ordering::Relaxed);
                    if permit.is_probe() {
                        probes.fetch_add(1, Ordering::Relaxed);
                        let mut held = probes_held.lock().unwrap();
                        let count = held.entry(permit.period).or_default();
                        *count += 1;
                        assert!(
                            *count <= PROBES,
                            "{count} probes in period {}",
                            permit.period
                        );
                    }
                    tokio::task::yield_now().await;
                    if permit.is_probe() {
                        *probes_held.lock().unwrap().get_mut(&permit.period).unwrap() -= 1;
                    }
                    match (task + index) % 5 {
                        0..=2 => {
                            permit.record(Failure);
                        }
                        3 => drop(permit),
                        _ => {
                            permit.record(Success);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("no task panicked");
        }
        let admitted = admitted.load(Ordering::Relaxed);
        let refused = refused.load(Ordering::Relaxed);
        assert_eq!(admitted + refused, TASKS * CALLS);
        assert!(refused > 0, "a 60% failure rate opened the circuit");
        assert!(
            probes.load(Ordering::Relaxed) > 0,
            "the circuit half-opened"
        );

        // Every permit is gone: no probe slot may be left taken.
        {
            let machine = breaker.lock();
            if let Phase::HalfOpen {
                probes_in_flight, ..
            } = machine.phase
            {
                assert_eq!(probes_in_flight, 0, "a probe slot leaked");
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        if breaker.state() != CircuitState::Closed {
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            let probe = breaker.try_acquire().expect("a free probe slot");
            assert!(probe.record(Success).is_some());
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
    }
}
