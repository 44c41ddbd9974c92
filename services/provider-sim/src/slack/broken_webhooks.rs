//! The knob for a webhook that no longer works: its secret path segment. Slack answers these for
//! good, so a client must not retry them; the simulator counts them as rejected.

use actix_web::HttpResponse;

use super::responses;

/// Secrets that stand for a broken webhook; any other secret is a working one.
pub const NO_SERVICE_SECRET: &str = "invalid";
pub const ACTION_PROHIBITED_SECRET: &str = "prohibited";
pub const CHANNEL_ARCHIVED_SECRET: &str = "archived";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenWebhook {
    /// Revoked or never existed: 404 `no_service`, before the payload is even read.
    NoService,
    /// A workspace admin restricted posting: 403 `action_prohibited`.
    ActionProhibited,
    /// The channel was archived: 410 `channel_is_archived`.
    ChannelArchived,
}

impl BrokenWebhook {
    pub fn from_secret(secret: &str) -> Option<BrokenWebhook> {
        match secret {
            NO_SERVICE_SECRET => Some(BrokenWebhook::NoService),
            ACTION_PROHIBITED_SECRET => Some(BrokenWebhook::ActionProhibited),
            CHANNEL_ARCHIVED_SECRET => Some(BrokenWebhook::ChannelArchived),
            _ => None,
        }
    }

    pub fn response(self) -> HttpResponse {
        match self {
            BrokenWebhook::NoService => responses::no_service(),
            BrokenWebhook::ActionProhibited => responses::action_prohibited(),
            BrokenWebhook::ChannelArchived => responses::channel_is_archived(),
        }
    }
}
