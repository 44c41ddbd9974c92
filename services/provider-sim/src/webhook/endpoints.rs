//! The webhook endpoints registered at run time and their signing keys. Bounded: at most
//! `MAX_ENDPOINTS` names of at most `MAX_ENDPOINT_NAME_LENGTH` characters, so a runaway test
//! cannot grow the simulator without limit.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::signature::SigningKey;

pub const MAX_ENDPOINTS: usize = 10_000;
pub const MAX_ENDPOINT_NAME_LENGTH: usize = 128;

#[derive(Default)]
pub struct WebhookEndpoints {
    keys: Mutex<HashMap<String, SigningKey>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    Created,
    /// The endpoint existed: its secret was rotated.
    Replaced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "an endpoint name is 1 to {MAX_ENDPOINT_NAME_LENGTH} letters, digits, `-`, `_`, `.` or `~`"
    )]
    InvalidName,
    #[error("at most {MAX_ENDPOINTS} webhook endpoints can be registered")]
    Full,
}

/// Path-safe names, so `/webhooks/{name}` is the URL as registered.
pub fn is_endpoint_name(name: &str) -> bool {
    (1..=MAX_ENDPOINT_NAME_LENGTH).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte))
}

/// Takes the lock even if a thread panicked while holding it: the map stays consistent.
fn lock(keys: &Mutex<HashMap<String, SigningKey>>) -> MutexGuard<'_, HashMap<String, SigningKey>> {
    keys.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WebhookEndpoints {
    /// Registers `name` with `key`, or gives an existing endpoint its new key.
    pub fn register(&self, name: &str, key: SigningKey) -> Result<Registration, RegistrationError> {
        if !is_endpoint_name(name) {
            return Err(RegistrationError::InvalidName);
        }
        let mut keys = lock(&self.keys);
        if let Some(existing) = keys.get_mut(name) {
            *existing = key;
            return Ok(Registration::Replaced);
        }
        if keys.len() >= MAX_ENDPOINTS {
            return Err(RegistrationError::Full);
        }
        keys.insert(name.to_owned(), key);
        Ok(Registration::Created)
    }

    /// A copy of the endpoint's key, so verifying happens outside the lock.
    pub fn signing_key(&self, name: &str) -> Option<SigningKey> {
        lock(&self.keys).get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::signature::signing_key;

    fn key() -> SigningKey {
        signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn endpoints_are_created_then_replaced_and_looked_up() {
        let endpoints = WebhookEndpoints::default();
        assert!(endpoints.signing_key("orders").is_none());
        assert_eq!(
            endpoints.register("orders", key()),
            Ok(Registration::Created)
        );
        assert_eq!(
            endpoints.register("orders", key()),
            Ok(Registration::Replaced)
        );
        assert!(endpoints.signing_key("orders").is_some());
    }

    #[test]
    fn names_must_be_path_safe_and_short() {
        let endpoints = WebhookEndpoints::default();
        for name in [
            "",
            "a b",
            "a/b",
            "é",
            &"x".repeat(MAX_ENDPOINT_NAME_LENGTH + 1),
        ] {
            assert_eq!(
                endpoints.register(name, key()),
                Err(RegistrationError::InvalidName),
                "{name}"
            );
        }
        assert!(is_endpoint_name("tenant-1.orders_v2~x"));
    }
}
