//! Twilio's request signature (`X-Twilio-Signature`): base64 of HMAC-SHA1, keyed by the account's
//! auth token, of the full URL Twilio called followed by every POST parameter's name and value,
//! sorted by name. Twilio's own libraries call this the request validator.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The HMAC-SHA1 Twilio computes over `url` and `parameters` (`None` only if the MAC refused the
/// key, which HMAC never does: it takes keys of any length).
fn signature_mac(
    auth_token: &SecretString,
    url: &str,
    parameters: &[(String, String)],
) -> Option<Hmac<Sha1>> {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.expose_secret().as_bytes()).ok()?;
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = parameters.iter().collect();
    // By name; a repeated name by value, as Twilio's libraries do.
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    Some(mac)
}

/// Whether `signature_base64` is Twilio's signature of `url` and `parameters`, compared in
/// constant time.
pub fn is_valid_signature(
    auth_token: &SecretString,
    url: &str,
    parameters: &[(String, String)],
    signature_base64: &str,
) -> bool {
    let Ok(signature) = STANDARD.decode(signature_base64.trim()) else {
        return false;
    };
    signature_mac(auth_token, url, parameters)
        .is_some_and(|mac| mac.verify_slice(&signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(caller: &str) -> Vec<(String, String)> {
        // Out of order on purpose: the signature sorts them.
        [
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", caller),
            ("Caller", caller),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// Twilio's published examples (its security documentation and its libraries' tests).
    #[test]
    fn twilios_own_examples_verify() {
        let token = SecretString::from("12345");
        assert!(is_valid_signature(
            &token,
            URL,
            &parameters("+12349013030"),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(is_valid_signature(
            &token,
            URL,
            &parameters("+14158675309"),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn anything_changed_fails() {
        let token = SecretString::from("12345");
        let good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert!(!is_valid_signature(
            &SecretString::from("12346"),
            URL,
            &parameters("+12349013030"),
            good
        ));
        assert!(!is_valid_signature(
            &token,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &parameters("+12349013030"),
            good
        ));
        assert!(!is_valid_signature(
            &token,
            URL,
            &parameters("+12349013031"),
            good
        ));
        assert!(!is_valid_signature(
            &token,
            URL,
            &parameters("+12349013030"),
            ""
        ));
        assert!(!is_valid_signature(
            &token,
            URL,
            &parameters("+12349013030"),
            "not base64!"
        ));
    }
}
