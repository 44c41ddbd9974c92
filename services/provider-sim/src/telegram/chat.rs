//! `chat_id`: an integer, the same integer as a string, or a channel's `@username`. Special
//! values stand for chats a real bot cannot reach: `-1`, `blocked` or `@blocked` (the user
//! blocked the bot: 403), and `missing` or `@missing` (no such chat: 400). The `@` forms are
//! there because Herald only lets a recipient's Telegram contact be a number or an `@username`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{json, Value};

/// Chat ids of supergroups and channels start at -100…: -1_000_000_000_000 and below.
const SUPERGROUP_ID_LIMIT: i64 = -1_000_000_000_000;
/// Telegram's public usernames: 5 to 32 letters, digits or underscores.
const USERNAME_LENGTHS: std::ops::RangeInclusive<usize> = 5..=32;

/// Where a message goes, once the chat is known to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chat {
    Id(i64),
    /// A public channel or group, by its username (without `@`).
    Username(String),
}

/// What `chat_id` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatLookup {
    Found(Chat),
    /// The user blocked the bot: 403, `Forbidden: bot was blocked by the user`.
    Blocked,
    /// 400, `Bad Request: chat not found`.
    NotFound,
}

/// `None` when `chat_id` is absent, `null` or empty (`Bad Request: chat_id is empty`).
pub fn look_up(chat_id: Option<&Value>) -> Option<ChatLookup> {
    match chat_id? {
        Value::Null => None,
        Value::Number(number) => Some(match number.as_i64() {
            Some(id) => look_up_id(id),
            None => ChatLookup::NotFound,
        }),
        Value::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            Some(look_up_text(text))
        }
        _ => Some(ChatLookup::NotFound),
    }
}

fn look_up_id(id: i64) -> ChatLookup {
    match id {
        -1 => ChatLookup::Blocked,
        0 => ChatLookup::NotFound,
        id => ChatLookup::Found(Chat::Id(id)),
    }
}

fn look_up_text(text: &str) -> ChatLookup {
    match text {
        "blocked" | "@blocked" => return ChatLookup::Blocked,
        "missing" | "@missing" => return ChatLookup::NotFound,
        _ => {}
    }
    if let Ok(id) = text.parse::<i64>() {
        return look_up_id(id);
    }
    match text.strip_prefix('@') {
        Some(username) if is_username(username) => {
            ChatLookup::Found(Chat::Username(username.to_owned()))
        }
        _ => ChatLookup::NotFound,
    }
}

fn is_username(username: &str) -> bool {
    USERNAME_LENGTHS.contains(&username.len())
        && username
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

impl Chat {
    /// As the inspection API records the recipient: the id, or `@username`.
    pub fn recipient(&self) -> String {
        match self {
            Chat::Id(id) => id.to_string(),
            Chat::Username(username) => format!("@{username}"),
        }
    }

    /// The `chat` object of a sent message. A username is answered with a made-up channel id,
    /// the same for the same username within a run, as Telegram answers the channel's real id.
    pub fn to_json(&self) -> Value {
        match self {
            Chat::Id(id) if *id > 0 => json!({"id": id, "type": "private"}),
            Chat::Id(id) if *id <= SUPERGROUP_ID_LIMIT => json!({"id": id, "type": "supergroup"}),
            Chat::Id(id) => json!({"id": id, "type": "group"}),
            Chat::Username(username) => {
                let mut hasher = DefaultHasher::new();
                username.hash(&mut hasher);
                let id = SUPERGROUP_ID_LIMIT - (hasher.finish() % 10_000_000_000) as i64;
                json!({"id": id, "type": "channel", "title": username, "username": username})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(chat_id: Value) -> Option<ChatLookup> {
        look_up(Some(&chat_id))
    }

    #[test]
    fn ids_numeric_strings_and_usernames_are_chats() {
        assert_eq!(of(json!(42)), Some(ChatLookup::Found(Chat::Id(42))));
        assert_eq!(
            of(json!("-1001234")),
            Some(ChatLookup::Found(Chat::Id(-1001234)))
        );
        assert_eq!(
            of(json!("@herald_alerts")),
            Some(ChatLookup::Found(Chat::Username("herald_alerts".into())))
        );
        assert_eq!(Chat::Id(42).to_json()["type"], "private");
        assert_eq!(Chat::Id(-1_001_234_567_890).to_json()["type"], "supergroup");
        assert_eq!(Chat::Id(-5).to_json()["type"], "group");
        let channel = Chat::Username("herald_alerts".into()).to_json();
        assert_eq!(channel["type"], "channel");
        assert!(channel["id"].as_i64().unwrap() <= SUPERGROUP_ID_LIMIT);
    }

    #[test]
    fn special_and_malformed_ids() {
        for blocked in [json!(-1), json!("-1"), json!("blocked"), json!("@blocked")] {
            assert_eq!(of(blocked.clone()), Some(ChatLookup::Blocked), "{blocked}");
        }
        for missing in [
            json!("missing"),
            json!("@missing"),
            json!(0),
            json!(1.5),
            json!("someone"),
            json!("@abc"),
            json!(true),
        ] {
            assert_eq!(of(missing.clone()), Some(ChatLookup::NotFound), "{missing}");
        }
        assert_eq!(look_up(None), None);
        assert_eq!(of(json!(null)), None);
        assert_eq!(of(json!(" ")), None);
    }
}
