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
}
