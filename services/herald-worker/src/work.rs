//! What a delivery is derived from, and how its message is rendered: shared by admission, the
//! queue pump and the lanes.

use herald_domain::placeholders::render;
use herald_domain::Channel;
use herald_store::notifications::NotificationContent;
use herald_store::users::Recipient;
use uuid::Uuid;

use crate::providers::OutgoingMessage;

/// The stable id (and provider reference) of a delivery: the same on every worker, every time.
pub fn delivery_id(notification_id: Uuid, user_id: &str, channel: Channel) -> Uuid {
    let name = format!("{user_id}\u{0}{}", channel.as_str());
    Uuid::new_v5(&notification_id, name.as_bytes())
}

/// Where this recipient is reached on this channel, or why they cannot be.
pub fn address_for(recipient: Option<&Recipient>, channel: Channel) -> Result<String, String> {
    let Some(recipient) = recipient else {
        return Err("unknown recipient: no user with this id (PUT /v1/users/{id} first)".into());
    };
    let address = match channel {
        Channel::Email => recipient.email.as_ref(),
        Channel::Sms => recipient.phone.as_ref(),
    };
    address.cloned().ok_or_else(|| match channel {
        Channel::Email => "recipient has no email address".to_owned(),
        Channel::Sms => "recipient has no phone number".to_owned(),
    })
}

/// The message for one delivery, rendered from the notification's content.
pub fn render_message(
    delivery_id: Uuid,
    to: &str,
    content: &NotificationContent,
) -> OutgoingMessage {
    let empty = serde_json::Map::new();
    let data = content.data.as_object().unwrap_or(&empty);
    OutgoingMessage {
        delivery_id,
        to: to.to_owned(),
        subject: content
            .subject
            .as_deref()
            .map(|subject| render(subject, data)),
        body: render(&content.body, data),
    }
}
