//! The JSON an Execute Webhook request takes, as far as Herald uses it: `content` (at most
//! 2,000 characters) or `embeds` (at most 10), and Discord's checks on them. Other members
//! (`allowed_mentions`, `username`, …) are accepted and ignored.

use serde_json::{json, Map, Value};

use super::responses::DiscordError;

/// Discord refuses longer `content`, counted in characters.
pub const MAX_CONTENT_CHARACTERS: usize = 2000;
/// Discord refuses more embeds in one message.
pub const MAX_EMBEDS: usize = 10;

#[derive(Debug, PartialEq)]
pub struct DiscordMessage {
    /// `None` when absent or blank.
    pub content: Option<String>,
    pub embeds: Vec<Value>,
    /// The name the message is posted under, when the request overrides the webhook's.
    pub username: Option<String>,
}

impl DiscordMessage {
    /// What the inspection API shows as the body: the content, or the embeds as JSON.
    pub fn recorded_body(&self) -> String {
        match &self.content {
            Some(content) => content.clone(),
            None => Value::Array(self.embeds.clone()).to_string(),
        }
    }
}

/// One entry of Discord's `errors` tree: `{"_errors": [{"code", "message"}]}`.
fn field_error(code: &str, message: String) -> Value {
    json!({"_errors": [{"code": code, "message": message}]})
}

/// `Err` is Discord's answer: 50109 for a body that is not a JSON object, 50035 with an error
/// per field, 50006 for a message with nothing to show.
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
    let embeds = match document.remove("embeds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(embeds)) => {
            check_embeds(&embeds, &mut errors);
            embeds
        }
        Some(_) => {
            errors.insert(
                "embeds".into(),
                field_error(
                    "LIST_TYPE_CONVERT",
                    "Only iterables may be used in a ListType".to_owned(),
                ),
            );
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(DiscordError::invalid_form_body(Value::Object(errors)));
    }
    if content.is_none() && embeds.is_empty() {
        return Err(DiscordError::empty_message());
    }
    let username = document
        .get("username")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(DiscordMessage {
        content,
        embeds,
        username,
    })
}

fn check_embeds(embeds: &[Value], errors: &mut Map<String, Value>) {
    if embeds.len() > MAX_EMBEDS {
        errors.insert(
            "embeds".into(),
            field_error(
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {MAX_EMBEDS} or fewer in length."),
            ),
        );
        return;
    }
    let mut per_embed = Map::new();
    for (index, embed) in embeds.iter().enumerate() {
        if !embed.is_object() {
            per_embed.insert(
                index.to_string(),
                field_error(
                    "MODEL_TYPE_CONVERT",
                    "Only dictionaries may be used in a ModelType".to_owned(),
                ),
            );
        }
    }
    if !per_embed.is_empty() {
        errors.insert("embeds".into(), Value::Object(per_embed));
    }
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
    fn content_or_embeds_make_a_message() {
        let herald = json!({"content": "Disk full", "allowed_mentions": {"parse": []}});
        let message = validate_message(herald.to_string().as_bytes()).unwrap();
        assert_eq!(message.recorded_body(), "Disk full");
        let embeds_only = json!({"embeds": [{"title": "Disk full"}]});
        let message = validate_message(embeds_only.to_string().as_bytes()).unwrap();
        assert_eq!(message.recorded_body(), r#"[{"title":"Disk full"}]"#);
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
        assert_eq!(
            refusal(json!({"content": " ", "embeds": []}))["code"],
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
        let both = refusal(json!({"content": 5, "embeds": [{}, "x"]}));
        assert_eq!(both["code"], 50035);
        assert!(both["errors"]["content"]["_errors"].is_array());
        assert!(both["errors"]["embeds"]["1"]["_errors"].is_array());
        let many = refusal(json!({"content": "x", "embeds": vec![json!({}); MAX_EMBEDS + 1]}));
        assert_eq!(
            many["errors"]["embeds"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
    }
}
