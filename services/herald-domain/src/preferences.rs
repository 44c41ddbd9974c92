//! A recipient's preferences (docs/DESIGN.md, "Preferences"): channels and categories they opted
//! out of, and quiet hours in their own time zone. The worker asks [`Preferences::verdict`] for each
//! delivery when it admits it: send it, skip it (with the reason), or hold it until the quiet
//! hours end (deferred, never dropped).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::unsubscribe::OptOut;
use crate::validation::FieldError;
pub use crate::validation::{category_problem, MAX_CATEGORY_CHARS};
use crate::{Channel, Priority};

/// Categories one recipient may opt out of.
pub const MAX_OPTED_OUT_CATEGORIES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Channels the recipient gets nothing on.
    #[serde(default)]
    pub opted_out_channels: Vec<Channel>,
    /// Categories (a notification's `category`) the recipient gets nothing of, on any channel.
    #[serde(default)]
    #[schema(example = json!(["marketing"]))]
    pub opted_out_categories: Vec<String>,
    /// Deliveries admitted within them wait until they end, in the recipient's `timezone` (UTC
    /// without one); `high` ones do not when their tenant allows it.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

/// `start` to `end`, local times `HH:MM`; a window across midnight (`22:00` to `07:00`) is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    #[schema(example = "22:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    #[schema(example = "07:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

/// What [`Preferences::opt_out`] did: the opt-out that now holds (the category, or email when
/// the categories were full) and whether this call recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedOptOut {
    pub recorded: OptOut,
    pub changed: bool,
}

/// What becomes of one delivery, by its recipient's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Not sent, counted `skipped`, for this reason.
    Skip(String),
    /// Sent when the quiet hours end.
    DeferUntil(DateTime<Utc>),
}

/// What a verdict depends on besides the preferences.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryFacts<'a> {
    pub channel: Channel,
    pub category: Option<&'a str>,
    pub priority: Priority,
    /// The tenant lets `high` notifications through quiet hours.
    pub high_priority_overrides_quiet_hours: bool,
    /// The recipient's IANA time zone; UTC when absent or unknown.
    pub timezone: Option<&'a str>,
}

/// What is wrong with a time zone name, if anything: it must be one of the IANA database's.
pub fn timezone_problem(timezone: &str) -> Option<String> {
    match timezone.parse::<Tz>() {
        Ok(_) => None,
        Err(_) => Some(format!(
            "`{}` is not an IANA time zone name (like `America/Sao_Paulo`)",
            timezone.escape_default()
        )),
    }
}

fn local_time(text: &str) -> Option<NaiveTime> {
    let well_formed = text.len() == 5 && text.as_bytes()[2] == b':';
    well_formed
        .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
}

impl Preferences {
    /// Records an unsubscribe link's opt-out. A recipient with every category slot taken is
    /// opted out of email instead: an unsubscribe is always honoured, and never by more than the
    /// limit [`Preferences::validate`] keeps. Says which opt-out holds and whether it is new.
    pub fn opt_out(&mut self, opt_out: &OptOut) -> RecordedOptOut {
        let channel = match opt_out {
            OptOut::Category(category) => {
                let already = self.opted_out_categories.contains(category);
                if already || self.opted_out_categories.len() < MAX_OPTED_OUT_CATEGORIES {
                    if !already {
                        self.opted_out_categories.push(category.clone());
                    }
                    return RecordedOptOut {
                        recorded: opt_out.clone(),
                        changed: !already,
                    };
                }
                Channel::Email
            }
            OptOut::Channel(channel) => *channel,
        };
        let already = self.opted_out_channels.contains(&channel);
        if !already {
            self.opted_out_channels.push(channel);
        }
        RecordedOptOut {
            recorded: OptOut::Channel(channel),
            changed: !already,
        }
    }

    /// Every rule, each problem naming its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut problems = Vec::new();
        if self.opted_out_categories.len() > MAX_OPTED_OUT_CATEGORIES {
            problems.push(FieldError::new(
                "opted_out_categories",
                format!("at most {MAX_OPTED_OUT_CATEGORIES} categories"),
            ));
        }
        for (index, category) in self.opted_out_categories.iter().enumerate() {
            if let Some(problem) = category_problem(category) {
                problems.push(FieldError::new(
                    format!("opted_out_categories[{index}]"),
                    problem,
                ));
            }
        }
        if let Some(quiet) = &self.quiet_hours {
            let start = local_time(&quiet.start);
            let end = local_time(&quiet.end);
            for (field, text, parsed) in [("start", &quiet.start, start), ("end", &quiet.end, end)]
            {
                if parsed.is_none() {
                    problems.push(FieldError::new(
                        format!("quiet_hours.{field}"),
                        format!(
                            "`{}` is not a time `HH:MM` (00:00 to 23:59)",
                            text.escape_default()
                        ),
                    ));
                }
            }
            if start.is_some() && start == end {
                problems.push(FieldError::new(
                    "quiet_hours.end",
                    "must differ from `start` (remove `quiet_hours` for none)",
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Send, skip or defer one delivery at `now`.
    pub fn verdict(&self, facts: DeliveryFacts<'_>, now: DateTime<Utc>) -> Verdict {
        if self.opted_out_channels.contains(&facts.channel) {
            return Verdict::Skip(format!(
                "the recipient opted out of {}",
                facts.channel.as_str()
            ));
        }
        if let Some(category) = facts.category {
            if self
                .opted_out_categories
                .iter()
                .any(|opted_out| opted_out == category)
            {
                return Verdict::Skip(format!(
                    "the recipient opted out of the category `{category}`"
                ));
            }
        }
        let Some(quiet) = &self.quiet_hours else {
            return Verdict::Send;
        };
        if facts.priority == Priority::High && facts.high_priority_overrides_quiet_hours {
            return Verdict::Send;
        }
        let timezone = facts
            .timezone
            .and_then(|name| name.parse::<Tz>().ok())
            .unwrap_or(Tz::UTC);
        match quiet_until(quiet, timezone, now) {
            Some(until) => Verdict::DeferUntil(until),
            None => Verdict::Send,
        }
    }
}

/// When the quiet hours that `now` falls in end, or `None` outside them.
fn quiet_until(quiet: &QuietHours, timezone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (start, end) = (local_time(&quiet.start)?, local_time(&quiet.end)?);
    let local = now.with_timezone(&timezone).naive_local();
    let time = local.time();
    let today = local.date();
    let end_date = if start < end {
        if !(start <= time && time < end) {
            return None;
        }
        today
    } else if time >= start {
        today.succ_opt()?
    } else if time < end {
        today
    } else {
        return None;
    };
    Some(first_instant_at_or_after(timezone, end_date.and_time(end)))
}

/// The instant a wall clock in `timezone` shows `local`: the earlier of two in a fold, and the end of
/// the gap when the clock skips it (a quiet hour ending at 02:30 on the night clocks go from 02:00
/// to 03:00 ends at 03:00).
fn first_instant_at_or_after(timezone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut wanted = local;
    for _ in 0..4 {
        match timezone.from_local_datetime(&wanted) {
            LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
                return instant.with_timezone(&Utc)
            }
            LocalResult::None => wanted += Duration::minutes(30),
        }
    }
    // No zone skips two hours: unreachable in the IANA database, but never a panic.
    Utc.from_utc_datetime(&local)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn quiet(start: &str, end: &str) -> Preferences {
        Preferences {
            quiet_hours: Some(QuietHours {
                start: start.into(),
                end: end.into(),
            }),
            ..Preferences::default()
        }
    }

    fn facts(timezone: Option<&str>) -> DeliveryFacts<'_> {
        DeliveryFacts {
            channel: Channel::Sms,
            category: Some("alerts"),
            priority: Priority::Normal,
            high_priority_overrides_quiet_hours: true,
            timezone,
        }
    }

    /// An unsubscribe is recorded once, and still honoured (as email) when the categories are full,
    /// leaving preferences that validate.
    #[test]
    fn an_opt_out_is_recorded_once_and_always_within_the_limits() {
        let mut preferences = Preferences::default();
        let marketing = OptOut::Category("marketing".into());
        assert!(preferences.opt_out(&marketing).changed);
        assert!(!preferences.opt_out(&marketing).changed);
        assert_eq!(preferences.opted_out_categories, ["marketing"]);
        assert!(
            preferences
                .opt_out(&OptOut::Channel(Channel::Email))
                .changed
        );
        assert!(
            !preferences
                .opt_out(&OptOut::Channel(Channel::Email))
                .changed
        );
        let mut full = Preferences {
            opted_out_categories: (0..MAX_OPTED_OUT_CATEGORIES)
                .map(|index| format!("category-{index}"))
                .collect(),
            ..Preferences::default()
        };
        assert!(full.opt_out(&OptOut::Category("one-more".into())).changed);
        assert_eq!(full.opted_out_channels, [Channel::Email]);
        assert_eq!(full.opted_out_categories.len(), MAX_OPTED_OUT_CATEGORIES);
        assert!(full.validate().is_ok());
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn opted_out_channels_and_categories_are_skipped_with_the_reason() {
        let preferences = Preferences {
            opted_out_channels: vec![Channel::Email],
            opted_out_categories: vec!["marketing".into()],
            quiet_hours: None,
        };
        let now = Utc::now();
        let email = DeliveryFacts {
            channel: Channel::Email,
            ..facts(None)
        };
        assert_eq!(
            preferences.verdict(email, now),
            Verdict::Skip("the recipient opted out of email".into())
        );
        let marketing = DeliveryFacts {
            category: Some("marketing"),
            ..facts(None)
        };
        assert_eq!(
            preferences.verdict(marketing, now),
            Verdict::Skip("the recipient opted out of the category `marketing`".into())
        );
        assert_eq!(preferences.verdict(facts(None), now), Verdict::Send);
    }

    #[test]
    fn quiet_hours_across_midnight_defer_to_their_end_in_the_recipients_zone() {
        let night = quiet("22:00", "07:00");
        // 23:30 in São Paulo (UTC−3) is 02:30 UTC: held until 07:00 there, 10:00 UTC.
        assert_eq!(
            night.verdict(
                facts(Some("America/Sao_Paulo")),
                utc("2026-12-08T02:30:00Z")
            ),
            Verdict::DeferUntil(utc("2026-12-08T10:00:00Z"))
        );
        // 05:00 there: the same morning's end.
        assert_eq!(
            night.verdict(
                facts(Some("America/Sao_Paulo")),
                utc("2026-12-08T08:00:00Z")
            ),
            Verdict::DeferUntil(utc("2026-12-08T10:00:00Z"))
        );
        // 12:00 there: sent.
        assert_eq!(
            night.verdict(
                facts(Some("America/Sao_Paulo")),
                utc("2026-12-08T15:00:00Z")
            ),
            Verdict::Send
        );
        // No zone (or an unknown one): UTC.
        assert_eq!(
            night.verdict(facts(Some("Mars/Olympus")), utc("2026-12-08T23:00:00Z")),
            Verdict::DeferUntil(utc("2026-12-09T07:00:00Z"))
        );
        // The end is exclusive, the start inclusive.
        assert_eq!(
            night.verdict(facts(None), utc("2026-12-08T07:00:00Z")),
            Verdict::Send
        );
        assert_eq!(
            night.verdict(facts(None), utc("2026-12-08T22:00:00Z")),
            Verdict::DeferUntil(utc("2026-12-09T07:00:00Z"))
        );
    }

    #[test]
    fn a_daytime_window_and_high_priority() {
        let lunch = quiet("12:00", "13:30");
        assert_eq!(
            lunch.verdict(facts(Some("Europe/Lisbon")), utc("2026-12-08T12:15:00Z")),
            Verdict::DeferUntil(utc("2026-12-08T13:30:00Z"))
        );
        assert_eq!(
            lunch.verdict(facts(None), utc("2026-12-08T11:59:00Z")),
            Verdict::Send
        );
        let high = DeliveryFacts {
            priority: Priority::High,
            ..facts(None)
        };
        assert_eq!(
            lunch.verdict(high, utc("2026-12-08T12:15:00Z")),
            Verdict::Send
        );
        let high_not_allowed = DeliveryFacts {
            high_priority_overrides_quiet_hours: false,
            ..high
        };
        assert_eq!(
            lunch.verdict(high_not_allowed, utc("2026-12-08T12:15:00Z")),
            Verdict::DeferUntil(utc("2026-12-08T13:30:00Z"))
        );
    }

    #[test]
    fn an_end_in_a_skipped_hour_ends_when_the_clock_resumes() {
        // New York, 2027-03-14: 02:00 jumps to 03:00. Quiet until 02:30 ends at 03:00 EDT (07:00 UTC).
        let preferences = quiet("01:00", "02:30");
        let at = chrono_tz::America::New_York
            .with_ymd_and_hms(2027, 3, 14, 1, 15, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            preferences.verdict(facts(Some("America/New_York")), at),
            Verdict::DeferUntil(utc("2027-03-14T07:00:00Z"))
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let preferences = Preferences {
            opted_out_channels: vec![],
            opted_out_categories: vec!["".into(), "ok".into(), "a\u{0}".into()],
            quiet_hours: Some(QuietHours {
                start: "24:00".into(),
                end: "7:00".into(),
            }),
        };
        let fields: Vec<String> = preferences
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|problem| problem.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "opted_out_categories[0]",
                "opted_out_categories[2]",
                "quiet_hours.start",
                "quiet_hours.end"
            ]
        );
        assert!(quiet("22:00", "22:00").validate().is_err());
        assert!(quiet("22:00", "07:00").validate().is_ok());
        assert_eq!(timezone_problem("America/Sao_Paulo"), None);
        assert!(timezone_problem("America/Atlantis").is_some());
    }
}
