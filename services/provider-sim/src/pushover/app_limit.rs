//! The application's monthly message allowance: Pushover counts the messages an application
//! sends per calendar month, shows the count in the `X-Limit-App-*` headers of every answer,
//! and answers 429 once the month's limit is reached, until the next month starts (here: UTC).
//! `/_sim/reset` starts the count again.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use secrecy::SecretString;

use crate::config::PushoverConfig;

/// `X-Limit-App-Limit` (header names are case-insensitive; these are written lower-case).
pub const LIMIT_HEADER: &str = "x-limit-app-limit";
/// `X-Limit-App-Remaining`.
pub const REMAINING_HEADER: &str = "x-limit-app-remaining";
/// `X-Limit-App-Reset`.
pub const RESET_HEADER: &str = "x-limit-app-reset";

/// What the `X-Limit-App-*` headers show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u64,
    pub remaining: u64,
    /// When the count starts again: the next month's first second, a Unix timestamp.
    pub reset: i64,
}

#[derive(Debug)]
pub struct AppUsage {
    limit: u64,
    month: Mutex<MonthCount>,
}

#[derive(Debug, Default)]
struct MonthCount {
    /// `(year, month)` the count is for.
    month: Option<(i32, u32)>,
    sent: u64,
}

impl MonthCount {
    /// Starts a new count when `now` is in another month than the count.
    fn roll_over(&mut self, now: DateTime<Utc>) {
        let month = Some((now.year(), now.month()));
        if self.month != month {
            *self = MonthCount { month, sent: 0 };
        }
    }
}

/// The first second of the month after `now`'s, as a Unix timestamp.
pub fn next_month_start(now: DateTime<Utc>) -> i64 {
    let (year, month) = match now.month() {
        12 => (now.year() + 1, 1),
        month => (now.year(), month + 1),
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|start| start.and_utc().timestamp())
        .unwrap_or(i64::MAX)
}

impl AppUsage {
    pub fn new(limit: u64) -> Self {
        AppUsage {
            limit,
            month: Mutex::new(MonthCount::default()),
        }
    }

    fn count(&self) -> std::sync::MutexGuard<'_, MonthCount> {
        self.month.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn allowance(&self, sent: u64, now: DateTime<Utc>) -> Allowance {
        Allowance {
            limit: self.limit,
            remaining: self.limit.saturating_sub(sent),
            reset: next_month_start(now),
        }
    }

    /// Takes one message from this month's allowance: `Ok` with what is left after it, or
    /// `Err` (nothing left, nothing taken) when the application is over its limit.
    pub fn take(&self, now: DateTime<Utc>) -> Result<Allowance, Allowance> {
        let mut count = self.count();
        count.roll_over(now);
        if count.sent >= self.limit {
            return Err(self.allowance(count.sent, now));
        }
        count.sent += 1;
        Ok(self.allowance(count.sent, now))
    }

    /// Gives back a message taken for a request that delivered nothing after all (a simulated
    /// fault, an idempotent replay); answers what is left then.
    pub fn give_back(&self, now: DateTime<Utc>) -> Allowance {
        let mut count = self.count();
        count.roll_over(now);
        count.sent = count.sent.saturating_sub(1);
        self.allowance(count.sent, now)
    }

    /// Forgets the month's count (`/_sim/reset`).
    pub fn reset(&self) {
        *self.count() = MonthCount::default();
    }
}

/// What the simulated Pushover keeps besides its simulation: the application token it accepts
/// and the application's count of messages this month.
pub struct PushoverState {
    pub app_token: SecretString,
    pub app_usage: AppUsage,
}

impl PushoverState {
    pub fn new(config: &PushoverConfig) -> Self {
        PushoverState {
            app_token: config.app_token.clone(),
            app_usage: AppUsage::new(config.app_limit),
        }
    }

    /// Forgets the month's count (`/_sim/reset`); the token stays.
    pub fn reset(&self) {
        self.app_usage.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(year: i32, month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_reset_is_the_next_months_first_second() {
        assert_eq!(
            next_month_start(at(2025, 3, 15)),
            Utc.with_ymd_and_hms(2025, 4, 1, 0, 0, 0)
                .unwrap()
                .timestamp()
        );
        assert_eq!(
            next_month_start(at(2025, 12, 31)),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp()
        );
    }

    #[test]
    fn the_limit_is_counted_per_month_and_given_back_messages_count_again() {
        let usage = AppUsage::new(2);
        let march = at(2025, 3, 15);
        assert_eq!(usage.take(march).unwrap().remaining, 1);
        assert_eq!(usage.take(march).unwrap().remaining, 0);
        let over = usage.take(march).unwrap_err();
        assert_eq!((over.limit, over.remaining), (2, 0));
        assert_eq!(usage.give_back(march).remaining, 1);
        assert_eq!(usage.take(march).unwrap().remaining, 0);
        assert_eq!(
            usage.take(at(2025, 4, 1)).unwrap().remaining,
            1,
            "a new month"
        );
        usage.reset();
        assert_eq!(usage.take(at(2025, 4, 1)).unwrap().remaining, 1);
    }

    #[test]
    fn a_limit_of_zero_refuses_everything() {
        let usage = AppUsage::new(0);
        assert_eq!(usage.take(at(2025, 3, 15)).unwrap_err().remaining, 0);
    }
}
