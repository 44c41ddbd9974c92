//! Pushover's identifiers: application tokens, user and group keys and emergency receipts are
//! all 30 letters and digits; every answer carries a `request` id, a random (version 4) UUID.

use rand::distr::Alphanumeric;
use rand::Rng;

/// The length of tokens, user and group keys and receipts.
pub const KEY_LENGTH: usize = 30;

/// 30 characters of `A-Z`, `a-z` and `0-9`: an application token or a user or group key.
pub fn is_pushover_key(key: &str) -> bool {
    key.len() == KEY_LENGTH && key.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// A new emergency-priority receipt: 30 random letters and digits.
pub fn generate_receipt() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(KEY_LENGTH)
        .map(char::from)
        .collect()
}

/// A new `request` id: a random UUID (version 4), lower-case and hyphenated.
pub fn generate_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_thirty_letters_and_digits() {
        assert!(is_pushover_key("azGDORePK8gMaC0QOYAMyEEuzJnyUi"));
        assert!(is_pushover_key(&generate_receipt()));
        for key in [
            "",
            "azGDORePK8gMaC0QOYAMyEEuzJnyU",
            "azGDORePK8gMaC0QOYAMyEEuzJnyUi1",
            "azGDORePK8gMaC0QOYAMyEEuzJny_i",
            "azGDORePK8gMaC0QOYAMyEEuzJny i",
            "azGDORePK8gMaC0QOYAMyEEuzJnyé",
        ] {
            assert!(!is_pushover_key(key), "{key}");
        }
    }

    #[test]
    fn request_ids_are_version_4_uuids() {
        let first = generate_request_id();
        let parsed = uuid::Uuid::parse_str(&first).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(parsed.hyphenated().to_string(), first);
        assert_ne!(generate_request_id(), first);
    }
}
