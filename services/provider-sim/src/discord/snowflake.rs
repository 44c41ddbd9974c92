//! Discord's ids: snowflakes, 64-bit numbers written as decimal strings, whose top 42 bits are
//! milliseconds since the Discord epoch (2015-01-01), so they sort by creation time.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};

const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;
/// The low 22 bits: worker, process and increment on Discord's side.
const SEQUENCE_BITS: u32 = 22;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;

/// A new id created at `now`; the low bits are random, so two ids of one millisecond differ.
pub fn generate(now: DateTime<Utc>) -> String {
    let milliseconds = now
        .timestamp_millis()
        .saturating_sub(DISCORD_EPOCH_MS)
        .max(0) as u64;
    let sequence = rand::random::<u64>() & SEQUENCE_MASK;
    ((milliseconds << SEQUENCE_BITS) | sequence).to_string()
}

/// The same made-up id every time for the same `seed` (a channel per webhook), within a run.
pub fn stable(seed: &str) -> String {
    /// 2020-01-01, Discord time: old enough to be an existing channel.
    const CREATED_MS: u64 = 157_766_400_000;
    let mut hasher = DefaultHasher::new();
    seed.hash(&mut hasher);
    ((CREATED_MS << SEQUENCE_BITS) | (hasher.finish() & SEQUENCE_MASK)).to_string()
}

/// A decimal 64-bit number, as Discord's path parameters must be.
pub fn is_snowflake(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && text.parse::<u64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_creation_time() {
        let now = Utc::now();
        let id: u64 = generate(now).parse().unwrap();
        let milliseconds = (id >> SEQUENCE_BITS) as i64 + DISCORD_EPOCH_MS;
        assert_eq!(milliseconds, now.timestamp_millis());
        assert_ne!(generate(now), generate(now));
        assert_eq!(stable("1234"), stable("1234"));
        assert!(is_snowflake(&stable("1234")));
    }

    #[test]
    fn only_decimal_64_bit_numbers_are_snowflakes() {
        assert!(is_snowflake("1187472135431069716"));
        assert!(!is_snowflake(""));
        assert!(!is_snowflake("12a"));
        assert!(!is_snowflake("-5"));
        assert!(!is_snowflake("99999999999999999999"));
    }
}
