//! The message object Discord answers `?wait=true` with: the created message, as a channel
//! would show it.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::payload::DiscordMessage;
use super::snowflake;

/// The name the webhook posts under (Herald never overrides it with `username`).
const DEFAULT_WEBHOOK_NAME: &str = "Herald";

pub fn created_message(
    message_id: &str,
    webhook_id: &str,
    message: &DiscordMessage,
    created_at: DateTime<Utc>,
) -> Value {
    json!({
        "id": message_id,
        "type": 0,
        "content": message.content,
        "channel_id": snowflake::stable(webhook_id),
        "author": {
            "id": webhook_id,
            "username": DEFAULT_WEBHOOK_NAME,
            "avatar": null,
            "discriminator": "0000",
            "bot": true
        },
        "attachments": [],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "pinned": false,
        "mention_everyone": false,
        "tts": false,
        // Discord's timestamps: ISO 8601 with microseconds and an explicit offset.
        "timestamp": created_at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
        "edited_timestamp": null,
        "flags": 0,
        "components": [],
        "webhook_id": webhook_id
    })
}
