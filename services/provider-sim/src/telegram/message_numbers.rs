//! Telegram's `message_id`: a small increasing integer. Telegram numbers messages per chat; one
//! counter for all chats is enough for a client, which only stores the number.

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct MessageNumbers {
    last: AtomicI64,
}

impl MessageNumbers {
    /// 1, 2, 3, … across all chats; never reused while the simulator runs, not even after a
    /// reset, so a number identifies one message.
    pub fn next(&self) -> i64 {
        self.last.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_start_at_one_and_increase() {
        let numbers = MessageNumbers::default();
        assert_eq!(numbers.next(), 1);
        assert_eq!(numbers.next(), 2);
    }
}
