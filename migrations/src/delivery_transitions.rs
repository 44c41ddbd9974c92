//! The trigger function that makes PostgreSQL allow exactly the delivery moves of herald-domain's
//! `DeliveryStatus::may_become`. Each migration that changes the moves writes the whole function
//! again (`CREATE OR REPLACE`), from its list here, so the lists are the only thing that differs.

use crate::sql_list::quoted_list;

/// `CREATE OR REPLACE FUNCTION herald_check_delivery_transition()` allowing `moves`, each written
/// `'from>to'`.
pub fn check_delivery_transition_function(moves: &[&str]) -> String {
    let allowed = quoted_list(moves);
    format!(
        r#"
CREATE OR REPLACE FUNCTION herald_check_delivery_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status::text || '>' || NEW.status::text IN ({allowed}) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a delivery cannot move from % to %', OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END
$$;
"#
    )
}

/// The moves before cancellation, reports and replays (migration 000005).
pub const MOVES_000005: &[&str] = &[
    "queued>sending",
    "retrying>sending",
    "sending>sent",
    "sending>retrying",
    "sending>failed",
    "sending>queued",
];

/// Cancellation of waiting deliveries, provider reports and dead-letter replays.
const ADDED_BY_000008: &[&str] = &[
    "queued>cancelled",
    "retrying>cancelled",
    "sent>delivered",
    "sent>bounced",
    "sent>failed",
    "failed>queued",
];

/// A held delivery cancelled before its call.
const ADDED_BY_000012: &[&str] = &["sending>cancelled"];

pub fn moves_000008() -> Vec<&'static str> {
    [MOVES_000005, ADDED_BY_000008].concat()
}

pub fn moves_000012() -> Vec<&'static str> {
    [MOVES_000005, ADDED_BY_000008, ADDED_BY_000012].concat()
}

/// A deferred delivery whose recipient opted out before it came due: skipped when claimed.
const ADDED_BY_000025: &[&str] = &["sending>skipped"];

pub fn moves_000025() -> Vec<&'static str> {
    [
        MOVES_000005,
        ADDED_BY_000008,
        ADDED_BY_000012,
        ADDED_BY_000025,
    ]
    .concat()
}
