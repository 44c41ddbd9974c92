//! `sendMessage`'s parameters and Telegram's checks on them, in Telegram's order: the first
//! problem found is the one answered, with Telegram's description. Only `chat_id` and `text`,
//! which Herald sends, are read; the rest (`parse_mode`, `disable_web_page_preview`, …) is
//! accepted and ignored.

use serde_json::{Map, Value};

use super::chat::{look_up, Chat, ChatLookup};
use super::telegram_error::TelegramError;

/// Telegram refuses a longer `text`, counted in characters.
pub const MAX_TEXT_CHARACTERS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMessage {
    pub chat: Chat,
    pub text: String,
}

pub fn validate_send_message(
    parameters: &Map<String, Value>,
) -> Result<SendMessage, TelegramError> {
    let Some(lookup) = look_up(parameters.get("chat_id")) else {
        return Err(TelegramError::bad_request("Bad Request: chat_id is empty"));
    };
    let text = match parameters.get("text") {
        Some(Value::String(text)) if !text.trim().is_empty() => text,
        _ => {
            return Err(TelegramError::bad_request(
                "Bad Request: message text is empty",
            ))
        }
    };
    let chat = match lookup {
        ChatLookup::NotFound => {
            return Err(TelegramError::bad_request("Bad Request: chat not found"))
        }
        ChatLookup::Blocked => None,
        ChatLookup::Found(chat) => Some(chat),
    };
    if text.chars().count() > MAX_TEXT_CHARACTERS {
        return Err(TelegramError::bad_request(
            "Bad Request: message is too long",
        ));
    }
    let Some(chat) = chat else {
        return Err(TelegramError::forbidden(
            "Forbidden: bot was blocked by the user",
        ));
    };
    Ok(SendMessage {
        chat,
        text: text.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn description_of(parameters: Value) -> String {
        let Value::Object(parameters) = parameters else {
            panic!("parameters are an object");
        };
        validate_send_message(&parameters).unwrap_err().description
    }

    #[test]
    fn a_valid_message_is_its_chat_and_text() {
        let Value::Object(parameters) = json!({"chat_id": 42, "text": "Disk full"}) else {
            unreachable!()
        };
        let message = validate_send_message(&parameters).unwrap();
        assert_eq!(message.chat, Chat::Id(42));
        assert_eq!(message.text, "Disk full");
    }

    #[test]
    fn problems_are_answered_in_telegrams_order() {
        assert_eq!(
            description_of(json!({"text": "hi"})),
            "Bad Request: chat_id is empty"
        );
        assert_eq!(
            description_of(json!({"chat_id": 42})),
            "Bad Request: message text is empty"
        );
        assert_eq!(
            description_of(json!({"chat_id": "missing", "text": "x".repeat(5000)})),
            "Bad Request: chat not found"
        );
        assert_eq!(
            description_of(json!({"chat_id": 42, "text": "x".repeat(MAX_TEXT_CHARACTERS + 1)})),
            "Bad Request: message is too long"
        );
        assert_eq!(
            description_of(json!({"chat_id": -1, "text": "hi"})),
            "Forbidden: bot was blocked by the user"
        );
        let Value::Object(exactly) =
            json!({"chat_id": 42, "text": "é".repeat(MAX_TEXT_CHARACTERS)})
        else {
            unreachable!()
        };
        assert!(validate_send_message(&exactly).is_ok());
    }
}
