//! SendGrid's `X-Message-Id`: 22 URL-safe characters, the unpadded base64 of 16 random bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub fn generate_message_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_22_url_safe_characters_and_differ() {
        let first = generate_message_id();
        assert_eq!(first.len(), 22);
        assert!(first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(first, generate_message_id());
    }
}
