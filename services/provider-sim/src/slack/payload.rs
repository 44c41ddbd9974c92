//! The JSON an incoming webhook takes, as far as Herald uses it: `text`, and `blocks` (Block
//! Kit), either of which makes a message. Other members (`attachments`, `username`, …) are
//! accepted and ignored, as Slack ignores what a webhook cannot change.

use serde_json::Value;

/// Slack refuses a message with more blocks.
pub const MAX_BLOCKS: usize = 50;

/// Slack's plain-text error code for each kind of bad payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadProblem {
    /// Not JSON, not an object, or `text` that is not a string.
    InvalidPayload,
    /// No text and no blocks.
    NoText,
    /// `blocks` not an array of objects with a `type`, or more than 50 of them.
    InvalidBlocks,
}

impl PayloadProblem {
    pub fn code(self) -> &'static str {
        match self {
            PayloadProblem::InvalidPayload => "invalid_payload",
            PayloadProblem::NoText => "no_text",
            PayloadProblem::InvalidBlocks => "invalid_blocks",
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct SlackMessage {
    /// `None` when absent or blank.
    pub text: Option<String>,
    /// Empty when absent.
    pub blocks: Vec<Value>,
}

impl SlackMessage {
    /// What the inspection API shows as the body: the text, or the blocks as JSON when the
    /// message is blocks only.
    pub fn recorded_body(&self) -> String {
        match &self.text {
            Some(text) => text.clone(),
            None => Value::Array(self.blocks.clone()).to_string(),
        }
    }
}

pub fn validate_message(body: &[u8]) -> Result<SlackMessage, PayloadProblem> {
    let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(body) else {
        return Err(PayloadProblem::InvalidPayload);
    };
    let text = match document.remove("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text).filter(|text| !text.trim().is_empty()),
        Some(_) => return Err(PayloadProblem::InvalidPayload),
    };
    let blocks = match document.remove("blocks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(blocks)) => blocks,
        Some(_) => return Err(PayloadProblem::InvalidBlocks),
    };
    if blocks.len() > MAX_BLOCKS || !blocks.iter().all(is_block) {
        return Err(PayloadProblem::InvalidBlocks);
    }
    if text.is_none() && blocks.is_empty() {
        return Err(PayloadProblem::NoText);
    }
    Ok(SlackMessage { text, blocks })
}

/// A Block Kit block names its `type`; the simulator does not check each type's own fields.
fn is_block(block: &Value) -> bool {
    block
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| !kind.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem_of(body: Value) -> PayloadProblem {
        validate_message(body.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn text_or_blocks_make_a_message() {
        let text_only = validate_message(br#"{"text": "Disk full"}"#).unwrap();
        assert_eq!(text_only.recorded_body(), "Disk full");
        let herald = json!({
            "text": "Disk full\n\nOn press-4",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Disk full"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "On press-4"}}
            ]
        });
        let message = validate_message(herald.to_string().as_bytes()).unwrap();
        assert_eq!(message.blocks.len(), 2);
        assert_eq!(message.recorded_body(), "Disk full\n\nOn press-4");
        let blocks_only = json!({"blocks": [{"type": "divider"}]});
        let message = validate_message(blocks_only.to_string().as_bytes()).unwrap();
        assert_eq!(message.recorded_body(), r#"[{"type":"divider"}]"#);
    }

    #[test]
    fn slacks_error_codes_for_bad_payloads() {
        assert_eq!(
            validate_message(b"text=hello").unwrap_err(),
            PayloadProblem::InvalidPayload
        );
        assert_eq!(problem_of(json!(["text"])), PayloadProblem::InvalidPayload);
        assert_eq!(
            problem_of(json!({"text": 5})),
            PayloadProblem::InvalidPayload
        );
        assert_eq!(problem_of(json!({})), PayloadProblem::NoText);
        assert_eq!(problem_of(json!({"text": "  "})), PayloadProblem::NoText);
        assert_eq!(
            problem_of(json!({"text": "", "blocks": []})),
            PayloadProblem::NoText
        );
        assert_eq!(
            problem_of(json!({"text": "x", "blocks": "header"})),
            PayloadProblem::InvalidBlocks
        );
        assert_eq!(
            problem_of(json!({"text": "x", "blocks": [{"text": "no type"}]})),
            PayloadProblem::InvalidBlocks
        );
        let too_many = vec![json!({"type": "divider"}); MAX_BLOCKS + 1];
        assert_eq!(
            problem_of(json!({"text": "x", "blocks": too_many})),
            PayloadProblem::InvalidBlocks
        );
    }
}
