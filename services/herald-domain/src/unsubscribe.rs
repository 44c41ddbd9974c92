//! Signed one-click unsubscribe links for email (RFC 8058; docs/DESIGN.md, "Unsubscribe links").
//!
//! A link names what it opts out of (the notification's category, or email when it has none),
//! whose (tenant and user), and carries an HMAC-SHA256 tag over those under Herald's signing key:
//! the API that receives `POST /v1/unsubscribe/{token}` trusts what the token says only because
//! nobody without the key can write one. Nothing is stored per link: a link in an email read a
//! year later still works, as long as its key is the signing key or one of the previous ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::Channel;

/// A signing key shorter than this is refused at start-up: the tag is only as strong as the key.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;
/// The tag's bytes: HMAC-SHA256 cut to 128 bits, ample against forgery and short in a URL.
const TAG_BYTES: usize = 16;
/// A token longer than any Herald writes is refused before it is decoded.
const MAX_TOKEN_CHARS: usize = 1024;
/// The path the links point at, below the configured base URL.
pub const UNSUBSCRIBE_PATH: &str = "/v1/unsubscribe";

/// What a link opts its recipient out of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOut {
    /// The notification's category, on every channel.
    Category(String),
    /// A channel: email, for a notification without a category.
    Channel(Channel),
}

/// Whose opt-out a link records, and of what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeToken {
    #[serde(rename = "t")]
    pub tenant_id: Uuid,
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "o")]
    pub opt_out: OptOut,
}

impl UnsubscribeToken {
    /// The opt-out an email of `category` offers: that category, or email itself without one.
    pub fn for_email(tenant_id: Uuid, user_id: &str, category: Option<&str>) -> UnsubscribeToken {
        UnsubscribeToken {
            tenant_id,
            user_id: user_id.to_owned(),
            opt_out: match category {
                Some(category) => OptOut::Category(category.to_owned()),
                None => OptOut::Channel(Channel::Email),
            },
        }
    }
}

/// A token that is not one Herald signed (or no longer: its key was retired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the unsubscribe link is not valid")]
pub struct InvalidToken;

type HmacSha256 = Hmac<Sha256>;

/// Signs tokens with the signing key; accepts those of the signing key and the previous ones, so
/// a key can be rotated without breaking the links in emails already sent.
#[derive(Clone)]
pub struct UnsubscribeSigner {
    signing_key: Vec<u8>,
    previous_keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for UnsubscribeSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("UnsubscribeSigner { keys: [redacted] }")
    }
}

impl UnsubscribeSigner {
    pub fn new(signing_key: &[u8], previous_keys: &[&[u8]]) -> UnsubscribeSigner {
        debug_assert!(signing_key.len() >= MIN_SIGNING_KEY_BYTES);
        UnsubscribeSigner {
            signing_key: signing_key.to_vec(),
            previous_keys: previous_keys.iter().map(|key| key.to_vec()).collect(),
        }
    }

    /// `payload.tag`, both base64url without padding: safe in a URL path as it is.
    pub fn sign(&self, token: &UnsubscribeToken) -> String {
        let payload = serde_json::to_vec(token).expect("a token serializes");
        let tag = tag_of(&self.signing_key, &payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// The token `text` carries, if one of the keys signed it (compared in constant time).
    pub fn verify(&self, text: &str) -> Result<UnsubscribeToken, InvalidToken> {
        if text.len() > MAX_TOKEN_CHARS {
            return Err(InvalidToken);
        }
        let (payload, tag) = text.split_once('.').ok_or(InvalidToken)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| InvalidToken)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidToken)?;
        if tag.len() != TAG_BYTES {
            return Err(InvalidToken);
        }
        let signed_by_a_key = std::iter::once(&self.signing_key)
            .chain(&self.previous_keys)
            .any(|key| tag_of(key, &payload).verify_truncated_left(&tag).is_ok());
        if !signed_by_a_key {
            return Err(InvalidToken);
        }
        serde_json::from_slice(&payload).map_err(|_| InvalidToken)
    }
}

fn tag_of(key: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(payload);
    mac
}

/// The links of one deployment: its public base URL and its signer.
#[derive(Debug, Clone)]
pub struct UnsubscribeLinks {
    base_url: String,
    pub signer: UnsubscribeSigner,
}

impl UnsubscribeLinks {
    pub fn new(base_url: &str, signer: UnsubscribeSigner) -> UnsubscribeLinks {
        UnsubscribeLinks {
            base_url: base_url.trim_end_matches('/').to_owned(),
            signer,
        }
    }

    /// `{base_url}/v1/unsubscribe/{token}`: where both the `List-Unsubscribe` header and a
    /// template's `unsubscribe_url` point.
    pub fn url(&self, token: &UnsubscribeToken) -> String {
        format!(
            "{}{UNSUBSCRIBE_PATH}/{}",
            self.base_url,
            self.signer.sign(token)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER_KEY: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn token(category: Option<&str>) -> UnsubscribeToken {
        UnsubscribeToken::for_email(Uuid::from_u128(7), "user-1", category)
    }

    #[test]
    fn a_signed_token_verifies_to_what_was_signed() {
        let signer = UnsubscribeSigner::new(KEY, &[]);
        for original in [token(Some("marketing")), token(None)] {
            let signed = signer.sign(&original);
            assert!(signed
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte)));
            assert_eq!(signer.verify(&signed), Ok(original));
        }
        assert_eq!(token(None).opt_out, OptOut::Channel(Channel::Email));
    }

    /// A change of any one character of the payload or of the tag is refused: the recipient, the
    /// tenant and the opt-out are what the key signed, nothing else.
    #[test]
    fn a_tampered_token_is_refused() {
        let signer = UnsubscribeSigner::new(KEY, &[]);
        let signed = signer.sign(&token(Some("marketing")));
        for index in 0..signed.len() {
            let mut bytes = signed.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == signed {
                continue;
            }
            assert_eq!(signer.verify(&tampered), Err(InvalidToken), "{tampered}");
        }
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&UnsubscribeToken::for_email(
                Uuid::from_u128(8),
                "user-1",
                None,
            ))
            .unwrap(),
        );
        let (_, tag) = signed.split_once('.').unwrap();
        assert_eq!(
            signer.verify(&format!("{forged_payload}.{tag}")),
            Err(InvalidToken)
        );
    }

    #[test]
    fn another_key_s_token_is_refused_and_a_previous_key_s_accepted() {
        let old = UnsubscribeSigner::new(OTHER_KEY, &[]);
        let signed_before_rotation = old.sign(&token(None));
        assert_eq!(
            UnsubscribeSigner::new(KEY, &[]).verify(&signed_before_rotation),
            Err(InvalidToken)
        );
        let rotated = UnsubscribeSigner::new(KEY, &[OTHER_KEY]);
        assert_eq!(rotated.verify(&signed_before_rotation), Ok(token(None)));
        assert_eq!(rotated.verify(&rotated.sign(&token(None))), Ok(token(None)));
    }

    #[test]
    fn garbage_is_refused_without_a_panic() {
        let signer = UnsubscribeSigner::new(KEY, &[]);
        let long = "a".repeat(MAX_TOKEN_CHARS + 1);
        for garbage in [
            "",
            ".",
            "..",
            "abc",
            "abc.",
            ".abc",
            "%%%.%%%",
            "\0.\0",
            "é.é",
            &long,
            // A correctly tagged payload that is not a token.
            &{
                let payload = b"[1,2,3]";
                let tag = tag_of(KEY, payload).finalize().into_bytes();
                format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(payload),
                    URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
                )
            },
        ] {
            assert_eq!(signer.verify(garbage), Err(InvalidToken), "{garbage:?}");
        }
    }

    #[test]
    fn the_url_is_the_base_and_the_path() {
        let links = UnsubscribeLinks::new(
            "https://herald.example.com/",
            UnsubscribeSigner::new(KEY, &[]),
        );
        let url = links.url(&token(None));
        let signed = url
            .strip_prefix("https://herald.example.com/v1/unsubscribe/")
            .unwrap();
        assert_eq!(links.signer.verify(signed), Ok(token(None)));
    }
}
