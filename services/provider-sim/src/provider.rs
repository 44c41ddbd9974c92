//! The providers the simulator stands in for, named as they appear in URLs and JSON.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Email, `POST /v3/mail/send`.
    SendGrid,
    /// SMS, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
    Twilio,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::SendGrid, Provider::Twilio];

    pub fn name(self) -> &'static str {
        match self {
            Provider::SendGrid => "sendgrid",
            Provider::Twilio => "twilio",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.name() == name)
    }
}
