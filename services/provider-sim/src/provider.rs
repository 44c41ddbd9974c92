//! The providers the simulator stands in for, named as they appear in URLs and JSON, and
//! [`PerProvider`], one value for each of them.
//!
//! The list below is the one place a provider is registered: the enum, [`Provider::ALL`] and the
//! names all come from it, and everything that covers every provider (the simulations in
//! the simulator's state, `/_sim/stats`, `/_sim/config`,
//! `/_sim/reset`, the start-up log) iterates [`Provider::ALL`].

use std::collections::HashMap;
use std::ops::Index;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`Provider`] with one variant per `Variant => "name"` line, in this order, and its
/// `ALL` and `name()` from the same lines, so they cannot disagree.
macro_rules! providers {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Provider {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl Provider {
            /// Every provider, in declaration order (the order `/_sim/stats` and
            /// `/_sim/config` list them in).
            pub const ALL: [Provider; [$($name),+].len()] = [$(Provider::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $(Provider::$variant => $name,)+
                }
            }
        }
    };
}

providers! {
    /// Email, `POST /v3/mail/send`.
    SendGrid => "sendgrid",
    /// SMS, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
    Twilio => "twilio",
    /// Slack incoming webhooks, `POST /slack/services/{T}/{B}/{secret}`.
    Slack => "slack",
    /// Discord webhooks, `POST /discord/api/webhooks/{id}/{token}`.
    Discord => "discord",
    /// Telegram Bot API, `POST /telegram/bot{token}/sendMessage`.
    Telegram => "telegram",
    /// Pushover Message API, `POST /pushover/1/messages.json`.
    Pushover => "pushover",
    /// A customer's endpoint receiving Standard Webhooks, `POST /webhooks/{endpoint}`.
    Webhook => "webhook",
    /// Plain SMTP (RFC 5321) on its own listener, the email fallback.
    Smtp => "smtp",
}

impl Provider {
    /// How many providers there are.
    pub const COUNT: usize = Provider::ALL.len();

    /// The provider's position in [`Provider::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.name() == name)
    }

    /// `` `sendgrid`, `twilio`, … `` for error messages that list the valid names.
    pub fn all_names() -> String {
        Provider::ALL
            .into_iter()
            .map(|provider| format!("`{}`", provider.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One `T` for every provider, indexed by [`Provider`]; in JSON an object keyed by the
/// providers' names, in [`Provider::ALL`] order (`{"sendgrid": …, "twilio": …, …}`).
#[derive(Clone, Debug, PartialEq)]
pub struct PerProvider<T>([T; Provider::COUNT]);

impl<T> PerProvider<T> {
    /// `value(provider)` for each provider, called in [`Provider::ALL`] order.
    pub fn from_fn(value: impl FnMut(Provider) -> T) -> Self {
        PerProvider(Provider::ALL.map(value))
    }

    /// Each provider with its value, in [`Provider::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Provider, &T)> {
        Provider::ALL.into_iter().zip(self.0.iter())
    }
}

impl<T> Index<Provider> for PerProvider<T> {
    type Output = T;

    fn index(&self, provider: Provider) -> &T {
        &self.0[provider.index()]
    }
}

impl<T: Serialize> Serialize for PerProvider<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.iter()
                .map(|(provider, value)| (provider.name(), value)),
        )
    }
}

/// Every provider must be present; an unknown name is refused.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for PerProvider<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut values = HashMap::<Provider, T>::deserialize(deserializer)?;
        let mut in_order = Vec::with_capacity(Provider::COUNT);
        for provider in Provider::ALL {
            let value = values
                .remove(&provider)
                .ok_or_else(|| D::Error::missing_field(provider.name()))?;
            in_order.push(value);
        }
        match in_order.try_into() {
            Ok(values) => Ok(PerProvider(values)),
            Err(_) => unreachable!("one value was taken for each provider"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_serde_names() {
        for provider in Provider::ALL {
            assert_eq!(Provider::from_name(provider.name()), Some(provider));
            assert_eq!(
                serde_json::to_value(provider).unwrap(),
                serde_json::json!(provider.name())
            );
        }
        assert_eq!(Provider::from_name("mailgun"), None);
        assert_eq!(Provider::from_name("pushover"), Some(Provider::Pushover));
    }

    #[test]
    fn each_provider_is_at_its_index_in_all() {
        for (position, provider) in Provider::ALL.into_iter().enumerate() {
            assert_eq!(provider.index(), position, "{provider:?}");
        }
    }

    #[test]
    fn per_provider_values_are_a_json_object_in_declaration_order() {
        let lengths = PerProvider::from_fn(|provider| provider.name().len());
        assert_eq!(lengths[Provider::Pushover], "pushover".len());
        let json = serde_json::to_string(&lengths).unwrap();
        assert!(json.starts_with(r#"{"sendgrid":8,"twilio":6,"#), "{json}");
        assert!(json.ends_with(r#""webhook":7,"smtp":4}"#), "{json}");
        let back: PerProvider<usize> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, lengths);
        let mut missing: serde_json::Value = serde_json::from_str(&json).unwrap();
        missing.as_object_mut().unwrap().remove("pushover");
        assert!(serde_json::from_value::<PerProvider<usize>>(missing).is_err());
    }
}
