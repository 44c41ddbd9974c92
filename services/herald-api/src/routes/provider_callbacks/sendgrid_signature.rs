//! SendGrid's signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` is base64 of a DER
//! ECDSA P-256 signature over SHA-256 of the `X-Twilio-Email-Event-Webhook-Timestamp` header's
//! bytes followed by the raw body; the verification key is the base64 DER public key SendGrid's
//! settings show. A timestamp far from now is refused, so a captured batch cannot be replayed
//! later.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};

pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";
/// How far a batch's timestamp may be from now (either way: clocks drift).
pub const MAX_TIMESTAMP_SKEW: Duration = Duration::from_secs(10 * 60);

/// Checks SendGrid's signatures with the configured public key.
#[derive(Clone)]
pub struct SendGridEventVerifier {
    key: VerifyingKey,
}

/// Why a batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The signature is not base64 DER, or does not verify.
    BadSignature,
    /// The timestamp is not a Unix time within [`MAX_TIMESTAMP_SKEW`] of now.
    Stale,
}

impl SendGridEventVerifier {
    /// The key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo (whitespace ignored).
    pub fn from_base64_der(text: &str) -> Result<SendGridEventVerifier, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(compact)
            .map_err(|error| format!("not base64: {error}"))?;
        let key = VerifyingKey::from_public_key_der(&der)
            .map_err(|error| format!("not a DER ECDSA P-256 public key: {error}"))?;
        Ok(SendGridEventVerifier { key })
    }

    /// What can be checked before the body is read (so that a request failing it reserves no
    /// bytes): the timestamp is a Unix time near `now_unix` and the signature is DER ECDSA.
    pub fn check_headers(
        &self,
        timestamp: &str,
        signature_base64: &str,
        now_unix: i64,
    ) -> Result<Signature, SignatureProblem> {
        let signed_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureProblem::Stale)?;
        if signed_at.abs_diff(now_unix) > MAX_TIMESTAMP_SKEW.as_secs() {
            return Err(SignatureProblem::Stale);
        }
        let der = STANDARD
            .decode(signature_base64.trim())
            .map_err(|_| SignatureProblem::BadSignature)?;
        Signature::from_der(&der).map_err(|_| SignatureProblem::BadSignature)
    }

    /// Verifies one batch as received: the timestamp header's text, the signature header's text
    /// and the raw body; `now_unix` is the current Unix time in seconds.
    pub fn verify(
        &self,
        timestamp: &str,
        signature_base64: &str,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureProblem> {
        let signature = self.check_headers(timestamp, signature_base64, now_unix)?;
        // The digest is fed in pieces: a batch of several MiB is not copied to be signed.
        let digest = Sha256::new()
            .chain_update(timestamp.as_bytes())
            .chain_update(body);
        self.key
            .verify_digest(digest, &signature)
            .map_err(|_| SignatureProblem::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;

    const NOW: i64 = 1_764_136_800;
    const BODY: &[u8] = br#"[{"event":"delivered","herald_delivery_id":"x"}]"#;

    fn key_pair() -> (SigningKey, SendGridEventVerifier) {
        let signing = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let der = signing.verifying_key().to_public_key_der().unwrap();
        let verifier =
            SendGridEventVerifier::from_base64_der(&STANDARD.encode(der.as_bytes())).unwrap();
        (signing, verifier)
    }

    fn sign(signing: &SigningKey, timestamp: &str, body: &[u8]) -> Signature {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        signing.sign(&signed)
    }

    fn der_base64(signature: &Signature) -> String {
        STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn a_signed_batch_verifies_and_anything_changed_does_not() {
        let (signing, verifier) = key_pair();
        let timestamp = NOW.to_string();
        let signature = der_base64(&sign(&signing, &timestamp, BODY));
        assert_eq!(verifier.verify(&timestamp, &signature, BODY, NOW), Ok(()));
        let mut tampered = BODY.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verifier.verify(&timestamp, &signature, &tampered, NOW),
            Err(SignatureProblem::BadSignature)
        );
        let other_time = (NOW + 1).to_string();
        assert_eq!(
            verifier.verify(&other_time, &signature, BODY, NOW),
            Err(SignatureProblem::BadSignature)
        );
        assert_eq!(
            verifier.verify(&timestamp, "not base64", BODY, NOW),
            Err(SignatureProblem::BadSignature)
        );
        assert_eq!(
            verifier.verify(&timestamp, "AAAA", BODY, NOW),
            Err(SignatureProblem::BadSignature)
        );
    }

    #[test]
    fn old_or_future_timestamps_are_stale() {
        let (signing, verifier) = key_pair();
        let limit = MAX_TIMESTAMP_SKEW.as_secs() as i64;
        for signed_at in [NOW - limit - 1, NOW + limit + 1] {
            let timestamp = signed_at.to_string();
            let signature = der_base64(&sign(&signing, &timestamp, BODY));
            assert_eq!(
                verifier.verify(&timestamp, &signature, BODY, NOW),
                Err(SignatureProblem::Stale)
            );
        }
        let timestamp = (NOW - limit).to_string();
        let signature = der_base64(&sign(&signing, &timestamp, BODY));
        assert_eq!(verifier.verify(&timestamp, &signature, BODY, NOW), Ok(()));
        assert_eq!(
            verifier.verify("yesterday", &signature, BODY, NOW),
            Err(SignatureProblem::Stale)
        );
    }

    /// SendGrid signs with Java, which does not normalise `s` to the lower half of the curve
    /// order: both forms of one signature must verify.
    #[test]
    fn signatures_with_a_high_s_verify_too() {
        let (signing, verifier) = key_pair();
        let timestamp = NOW.to_string();
        let signature = sign(&signing, &timestamp, BODY);
        let (r, s) = signature.split_scalars();
        let mirrored = Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(mirrored, signature);
        for form in [signature, mirrored] {
            assert_eq!(
                verifier.verify(&timestamp, &der_base64(&form), BODY, NOW),
                Ok(())
            );
        }
    }

    /// A key and signature made by OpenSSL (`openssl ecparam -name prime256v1 -genkey`,
    /// `openssl ec -pubout -outform DER | base64`, `openssl dgst -sha256 -sign`), as SendGrid's
    /// settings page and its signer produce them: nothing here comes from the p256 crate.
    #[test]
    fn a_signature_made_by_openssl_verifies() {
        const OPENSSL_PUBLIC_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2aHI4eZS7pzVKdSSl2yl6F2JMM3j31fwnRZb4rHfv5xNS4RJVfM4+11ustt6Nb//nDDbblr2ksXbyV2V7CQs5A==";
        const OPENSSL_SIGNATURE: &str = "MEUCIHKoDql22/1JZVyMrBbV36bYFqQnoonx6eAZSzmIJ8sBAiEA0l6N+qFgZcTz0zLHDIbSG1Ykhc2eD9yNKWwZtr7A9LQ=";
        let body = br#"[{"email":"a@example.com","event":"delivered","herald_delivery_id":"d"}]"#;
        let verifier = SendGridEventVerifier::from_base64_der(OPENSSL_PUBLIC_KEY).unwrap();
        assert_eq!(
            verifier.verify("1764136800", OPENSSL_SIGNATURE, body, NOW),
            Ok(())
        );
        assert_eq!(
            verifier.verify("1764136801", OPENSSL_SIGNATURE, body, NOW),
            Err(SignatureProblem::BadSignature)
        );
    }

    #[test]
    fn keys_that_are_not_p256_public_keys_are_refused() {
        assert!(SendGridEventVerifier::from_base64_der("not base64").is_err());
        assert!(SendGridEventVerifier::from_base64_der(&STANDARD.encode(b"short")).is_err());
    }
}
