//! The Message resource Twilio answers a created message with (`api.v2010.account.message`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::message_request::MessageRequest;

pub const API_VERSION: &str = "2010-04-01";

#[derive(Serialize)]
pub struct MessageResource<'a> {
    pub account_sid: &'a str,
    pub api_version: &'static str,
    pub body: &'a str,
    pub date_created: String,
    /// Set once a carrier has the message; a queued message has none yet.
    pub date_sent: Option<String>,
    pub date_updated: String,
    pub direction: &'static str,
    pub error_code: Option<u32>,
    pub error_message: Option<String>,
    pub from: &'a str,
    /// Herald sends no Messaging Service and no media: always `null` and `"0"`.
    pub messaging_service_sid: Option<&'static str>,
    pub num_media: String,
    pub num_segments: String,
    pub price: Option<String>,
    pub price_unit: &'static str,
    pub sid: &'a str,
    pub status: &'static str,
    pub subresource_uris: SubresourceUris,
    pub to: &'a str,
    pub uri: String,
}

#[derive(Serialize)]
pub struct SubresourceUris {
    pub media: String,
}

/// `SM` + 32 lowercase hex digits, like Twilio's SMS sids.
pub fn generate_message_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

impl<'a> MessageResource<'a> {
    pub fn queued(
        account_sid: &'a str,
        sid: &'a str,
        message: &'a MessageRequest,
        created_at: DateTime<Utc>,
    ) -> Self {
        // RFC 2822, as Twilio writes dates: "Thu, 24 Aug 2023 05:01:45 +0000".
        let date = created_at.to_rfc2822();
        let resource_path = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}");
        MessageResource {
            account_sid,
            api_version: API_VERSION,
            body: &message.body,
            date_created: date.clone(),
            date_sent: None,
            date_updated: date,
            direction: "outbound-api",
            error_code: None,
            error_message: None,
            from: &message.from,
            messaging_service_sid: None,
            num_media: "0".to_owned(),
            num_segments: message.segment_count().to_string(),
            price: None,
            price_unit: "USD",
            sid,
            status: "queued",
            subresource_uris: SubresourceUris {
                media: format!("{resource_path}/Media.json"),
            },
            to: &message.to,
            uri: format!("{resource_path}.json"),
        }
    }
}
