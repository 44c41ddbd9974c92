//! The JSON an Execute Webhook request takes, as far as Herald uses it: `content` (at most 2,000
//! characters), and Discord's checks on it. Other members (`allowed_mentions`, which Herald sends
//! to suppress pings; `embeds`, `username`, …, which it does not) are accepted and ignored, so a
//! message without `content` is refused as empty (50006) even if it has embeds.

use serde_json::{json, Map, Value};

use super::responses::DiscordError;

/// Discord refuses longer `content`, counted in characters.
pub const MAX_CONTENT_CHARACTERS: usize = 2000;

#[derive(Debug, PartialEq)]
pub struct DiscordMessage {
    /// Never blank.
    pub content: String,
}

fn field_error(code: &str, message: String) -> Value {
    json!({"_errors": [{"code": code, "message": message}]})
}

pub fn validate_message(body: &[u8]) -> Result<DiscordMessage, DiscordError> {
    let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(body) else {
        return Err(DiscordError::invalid_json());
    };
    let mut errors = Map::new();
    let content = match document.remove("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(content)) => {
            if content.chars().count() > MAX_CONTENT_CHARACTERS {
                errors.insert(
                    "content".into(),
                    field_error(
                        "BASE_TYPE_MAX_LENGTH",
                        format!("Must be {MAX_CONTENT_CHARACTERS} or fewer in length."),
                    ),
                );
            }
            Some(content).filter(|content| !content.trim().is_empty())
        }
        Some(other) => {
            errors.insert(
                "content".into(),
                field_error(
                    "STRING_TYPE_CONVERT",
                    format!("Could not interpret \"{other}\" as string."),
                ),
            );
            None
        }
    };
    if !errors.is_empty() {
        return Err(DiscordError::invalid_form_body(Value::Object(errors)));
    }
    let Some(content) = content else {
        return Err(DiscordError::empty_message());
    };
    Ok(DiscordMessage { content })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: Value) -> Value {
        let error = validate_message(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(error.status, 400);
        error.body
    }

    #[test]
    fn content_makes_a_message_up_to_2000_characters() {
        let herald = json!({"content": "Disk full", "allowed_mentions": {"parse": []}});
        let message = validate_message(herald.to_string().as_bytes()).unwrap();
        assert_eq!(message.content, "Disk full");
        let exactly = json!({"content": "é".repeat(MAX_CONTENT_CHARACTERS)});
        assert!(validate_message(exactly.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn discords_error_codes_for_bad_messages() {
        assert_eq!(refusal(json!("content"))["code"], 50109);
        assert_eq!(
            refusal(json!({})),
            json!({"message": "Cannot send an empty message", "code": 50006})
        );
        assert_eq!(refusal(json!({"content": " "}))["code"], 50006);
        // Embeds are not modelled: Herald never sends them.
        assert_eq!(
            refusal(json!({"embeds": [{"title": "Disk full"}]}))["code"],
            50006
        );
        let too_long = refusal(json!({"content": "x".repeat(MAX_CONTENT_CHARACTERS + 1)}));
        assert_eq!(
            too_long,
            json!({
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {"content": {"_errors": [{
                    "code": "BASE_TYPE_MAX_LENGTH",
                    "message": "Must be 2000 or fewer in length."
                }]}}
            })
        );
        let not_text = refusal(json!({"content": 5}));
        assert_eq!(not_text["code"], 50035);
        assert!(not_text["errors"]["content"]["_errors"].is_array());
    }
}
