//! Provider callbacks signed the way SendGrid and Twilio sign them, written out here on their own
//! (not through the API's verification code), so a test proves the two agree.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use rand::RngCore;
use sha1::Sha1;

/// SendGrid's Event Webhook signing key pair, fresh per test.
pub struct SendGridSigner {
    key: SigningKey,
}

impl SendGridSigner {
    pub fn generate() -> SendGridSigner {
        loop {
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            // A random 256-bit value is a valid scalar but for a chance of about 2^-32.
            if let Ok(key) = SigningKey::from_slice(&secret) {
                return SendGridSigner { key };
            }
        }
    }

    /// The verification key as SendGrid's settings show it: base64 of the DER public key.
    pub fn public_key_base64(&self) -> String {
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .expect("a P-256 public key encodes");
        STANDARD.encode(der.as_bytes())
    }

    /// `X-Twilio-Email-Event-Webhook-Signature` for `body` sent at `timestamp`: base64 DER ECDSA
    /// over SHA-256 of the timestamp followed by the body.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let signature: Signature = self.key.sign(&signed);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// `X-Twilio-Signature`: base64 HMAC-SHA1, keyed by the auth token, of the URL followed by each
/// parameter's name and value in name order.
pub fn twilio_signature(auth_token: &str, url: &str, parameters: &[(&str, &str)]) -> String {
    let mut sorted = parameters.to_vec();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(signed.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's published example (its security documentation).
    #[test]
    fn twilio_signatures_match_twilios_example() {
        let parameters = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &parameters
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
