//! The tokens a lane was granted by the shared limiter and has not used yet: the fast path of
//! every send. They expire soon after the grant, because a token counts against the provider's
//! rate at the moment Redis granted it: kept for long, tokens of several replicas could be spent
//! together, later, as a burst above the rate.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

#[derive(Default)]
pub struct LocalGrant {
    state: Mutex<GrantState>,
}

#[derive(Default)]
struct GrantState {
    tokens: u32,
    expires_at: Option<Instant>,
}

impl LocalGrant {
    /// Takes one token if one is left and not expired.
    pub fn try_take(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = state.expires_at.is_some_and(|expires_at| now < expires_at);
        if !fresh || state.tokens == 0 {
            state.tokens = 0;
            return false;
        }
        state.tokens -= 1;
        true
    }

    /// Replaces what is left (expired or not: a refill is asked for only when nothing usable is
    /// left) with `tokens` usable until `expires_at`.
    pub fn refill(&self, tokens: u32, expires_at: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tokens = tokens;
        state.expires_at = Some(expires_at);
    }

    /// Drops every token: the provider asked us to pause.
    pub fn clear(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokens_are_taken_one_by_one_until_none_or_expired() {
        let grant = LocalGrant::default();
        assert!(!grant.try_take(Instant::now()), "nothing granted yet");
        grant.refill(3, Instant::now() + Duration::from_millis(50));
        assert!(grant.try_take(Instant::now()));
        assert!(grant.try_take(Instant::now()));
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(!grant.try_take(Instant::now()), "the third token expired");
        grant.refill(1, Instant::now() + Duration::from_millis(50));
        assert!(grant.try_take(Instant::now()));
        assert!(!grant.try_take(Instant::now()), "used up");
        grant.refill(5, Instant::now() + Duration::from_millis(50));
        grant.clear();
        assert!(!grant.try_take(Instant::now()), "cleared by a pause");
    }

    #[derive(Debug, Clone)]
    enum Step {
        Refill { tokens: u32, lifetime_ms: u64 },
        Take,
        Clear,
        Wait { ms: u64 },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            1 => (0u32..20, 1u64..100)
                .prop_map(|(tokens, lifetime_ms)| Step::Refill { tokens, lifetime_ms }),
            4 => Just(Step::Take),
            1 => Just(Step::Clear),
            2 => (0u64..60).prop_map(|ms| Step::Wait { ms }),
        ]
    }

    proptest::proptest! {
        /// Whatever the order of grants, sends, pauses and waits, a lane spends at most the tokens
        /// of its latest grant, none once that grant has expired or a pause cleared it, and every
        /// one it holds while the grant lasts (a token refused is a send delayed for nothing).
        #[test]
        fn a_lane_spends_its_grant_while_it_lasts_and_never_more(
            steps in proptest::collection::vec(step(), 1..200)
        ) {
            let grant = LocalGrant::default();
            let mut now = Instant::now();
            let mut granted = 0u32;
            let mut spent = 0u32;
            let mut usable_until: Option<Instant> = None;
            for step in steps {
                match step {
                    Step::Refill { tokens, lifetime_ms } => {
                        let expires_at = now + Duration::from_millis(lifetime_ms);
                        grant.refill(tokens, expires_at);
                        (granted, spent, usable_until) = (tokens, 0, Some(expires_at));
                    }
                    Step::Take => {
                        let lasts = usable_until.is_some_and(|until| now < until);
                        let took = grant.try_take(now);
                        proptest::prop_assert_eq!(took, lasts && spent < granted);
                        if took {
                            spent += 1;
                        } else {
                            // Refused once, the grant is gone until the next one.
                            usable_until = None;
                        }
                        proptest::prop_assert!(spent <= granted);
                    }
                    Step::Clear => {
                        grant.clear();
                        usable_until = None;
                    }
                    Step::Wait { ms } => now += Duration::from_millis(ms),
                }
            }
        }
    }
}
