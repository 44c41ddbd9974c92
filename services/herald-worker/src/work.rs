//! What a delivery is derived from, and how its message is rendered: shared by admission, the
//! queue pump and the lanes.

use chrono::{DateTime, Utc};
use herald_channels::{Contact, OutgoingMessage};
use herald_domain::placeholders::render;
use herald_domain::preferences::{DeliveryFacts, Verdict};
use herald_domain::templates::{
    CompiledTemplate, NotificationContext, RecipientContext, RenderContext,
};
use herald_domain::unsubscribe::{UnsubscribeLinks, UnsubscribeToken};
use herald_domain::validation::{MAX_RENDERED_BODY_BYTES, MAX_RENDERED_SUBJECT_BYTES};
use herald_domain::Channel;
use herald_store::notifications::NotificationContent;
use herald_store::users::Recipient;
use uuid::Uuid;

use crate::held::DeliveryPlan;

/// The stable id (and provider reference) of a delivery: the same on every worker, every time.
pub fn delivery_id(notification_id: Uuid, user_id: &str, channel: Channel) -> Uuid {
    let name = format!("{user_id}\u{0}{}", channel.as_str());
    Uuid::new_v5(&notification_id, name.as_bytes())
}

/// Where this recipient is reached on this channel, or why they cannot be.
pub fn contact_for(recipient: Option<&Recipient>, channel: Channel) -> Result<Contact, String> {
    let Some(recipient) = recipient else {
        return Err("unknown recipient: no user with this id (PUT /v1/users/{id} first)".into());
    };
    let contact = match channel {
        Channel::Email => recipient.email.clone().map(Contact::Email),
        Channel::Sms => recipient.phone.clone().map(Contact::Phone),
        kind => recipient.channel_data.contact(kind),
    };
    contact.ok_or_else(|| match channel {
        Channel::Email => "recipient has no email address".to_owned(),
        Channel::Sms => "recipient has no phone number".to_owned(),
        other => format!("recipient has no `channel_data.{}`", other.as_str()),
    })
}

/// What the recipient's preferences make of a delivery of `content` on `channel` at `now`
/// (docs/DESIGN.md, "Preferences"): sent, skipped with the reason, or held until quiet hours end.
pub fn preference_verdict(
    recipient: Option<&Recipient>,
    content: &NotificationContent,
    channel: Channel,
    now: DateTime<Utc>,
) -> Verdict {
    let Some(recipient) = recipient else {
        return Verdict::Send;
    };
    recipient.preferences.verdict(
        DeliveryFacts {
            channel,
            category: content.category.as_deref(),
            priority: content.priority,
            high_priority_overrides_quiet_hours: content.high_priority_overrides_quiet_hours,
            timezone: recipient.timezone.as_deref(),
        },
        now,
    )
}

/// Why a delivery's message could not be rendered: never sent, recorded failed.
#[derive(Debug)]
pub struct NotRendered {
    pub problem: String,
    /// For a template's failure, its reason's metric label.
    pub template_reason: Option<&'static str>,
}

/// The message for one delivery, rendered from its notification's inline content or from its
/// template (`template`, the compiled version the notification was accepted with), or why it
/// cannot be sent: content that renders beyond the bounds the API enforces at ingest (a row
/// accepted before they existed), or a template part with a missing variable, is never sent.
///
/// `unsubscribe_url` is the recipient's link, given for email when links are on: the template
/// may show it, and the provider sends it as `List-Unsubscribe`.
pub fn render_message(
    delivery_id: Uuid,
    plan: &DeliveryPlan,
    template: Option<&CompiledTemplate>,
    unsubscribe_url: Option<String>,
) -> Result<OutgoingMessage, NotRendered> {
    debug_assert!(unsubscribe_url.is_none() || plan.channel() == Channel::Email);
    let content = &plan.content;
    let empty = serde_json::Map::new();
    let data = content.data.as_object().unwrap_or(&empty);
    let (subject, body, html) = match template {
        Some(template) => {
            let context = RenderContext {
                data,
                recipient: RecipientContext {
                    id: &plan.user_id,
                    locale: plan.locale.as_deref(),
                },
                notification: NotificationContext { id: content.id },
                unsubscribe_url: unsubscribe_url.as_deref(),
            };
            let rendered = template
                .render(plan.channel(), plan.locale.as_deref(), &context)
                .map_err(|error| NotRendered {
                    template_reason: Some(error.label()),
                    problem: format!(
                        "template `{}` version {}: {error}",
                        content.template_id.as_deref().unwrap_or_default(),
                        content.template_version.unwrap_or_default()
                    ),
                })?;
            (rendered.subject, rendered.text, rendered.html)
        }
        None => {
            let inline = |problem: String| NotRendered {
                problem,
                template_reason: None,
            };
            let subject = match content.subject.as_deref() {
                None => None,
                Some(subject) => Some(render(subject, data, MAX_RENDERED_SUBJECT_BYTES).map_err(
                    |rendered_bytes| {
                        inline(format!("the subject renders to {rendered_bytes} bytes, over {MAX_RENDERED_SUBJECT_BYTES}"))
                    },
                )?),
            };
            let body = render(&content.body, data, MAX_RENDERED_BODY_BYTES).map_err(|rendered_bytes| {
                inline(format!("the body renders to {rendered_bytes} bytes, over {MAX_RENDERED_BODY_BYTES}"))
            })?;
            (subject, body, None)
        }
    };
    Ok(OutgoingMessage {
        delivery_id,
        notification_id: content.id,
        user_id: plan.user_id.clone(),
        contact: plan.contact.clone(),
        subject,
        body,
        html,
        unsubscribe_url,
    })
}

/// The recipient's one-click unsubscribe link for this delivery: for email only, when links are
/// on; it opts out of the notification's category, or of email without one.
pub fn unsubscribe_url_for(
    plan: &DeliveryPlan,
    links: Option<&UnsubscribeLinks>,
) -> Option<String> {
    let links = links?;
    if plan.channel() != Channel::Email {
        return None;
    }
    let token = UnsubscribeToken::for_email(
        plan.tenant_id(),
        &plan.user_id,
        plan.content.category.as_deref(),
    );
    Some(links.url(&token))
}
