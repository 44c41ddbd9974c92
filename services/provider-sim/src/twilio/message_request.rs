//! The form parameters of a Create Message request and Twilio's checks on them, in Twilio's
//! order: the first problem found is the one answered, with its Twilio error code.

use super::errors::TwilioError;
use crate::validation::{is_e164, is_http_url};

/// Longest `Body` Twilio accepts, in characters.
pub const MAX_BODY_CHARACTERS: usize = 1600;
/// Characters per SMS segment (GSM-7, single part).
pub const SEGMENT_CHARACTERS: usize = 160;

/// The parameters Herald sends (`To`, `From`, `Body`, `StatusCallback`). Twilio's others
/// (`MessagingServiceSid`, `MediaUrl`, …) are accepted and ignored: Herald sends none, so their
/// rules are not modelled, and without `From` a request is refused (21603) as for an account
/// that names no sender.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageRequest {
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
}

#[derive(Default)]
struct RawParameters {
    to: Option<String>,
    from: Option<String>,
    body: Option<String>,
    status_callback: Option<String>,
}

/// Parses an `application/x-www-form-urlencoded` body. Parameter names are case-sensitive; the
/// first of a repeated single-valued parameter wins; empty values count as absent.
fn parse_form(body: &[u8]) -> RawParameters {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut parameters = RawParameters::default();
    for (name, value) in pairs {
        if value.is_empty() {
            continue;
        }
        let slot = match name.as_str() {
            "To" => &mut parameters.to,
            "From" => &mut parameters.from,
            "Body" => &mut parameters.body,
            "StatusCallback" => &mut parameters.status_callback,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    parameters
}

/// Parses and validates a form body (`None` when the request was not form-encoded: Twilio then
/// sees no parameters at all).
pub fn validate_message_request(body: Option<&[u8]>) -> Result<MessageRequest, TwilioError> {
    let parameters = body.map(parse_form).unwrap_or_default();
    let Some(to) = parameters.to else {
        return Err(TwilioError::bad_request(
            21604,
            "A 'To' phone number is required.",
        ));
    };
    if !is_e164(&to) {
        return Err(TwilioError::bad_request(
            21211,
            format!("Invalid 'To' Phone Number: {to}"),
        ));
    }
    let Some(from) = parameters.from else {
        return Err(TwilioError::bad_request(
            21603,
            "A 'From' phone number is required.",
        ));
    };
    if !is_e164(&from) {
        return Err(TwilioError::bad_request(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or \
                 alphanumeric sender ID."
            ),
        ));
    }
    if from == to {
        return Err(TwilioError::bad_request(
            21266,
            "'To' and 'From' number cannot be the same.",
        ));
    }
    let Some(body) = parameters.body else {
        return Err(TwilioError::bad_request(21602, "Message body is required."));
    };
    if body.chars().count() > MAX_BODY_CHARACTERS {
        return Err(TwilioError::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if let Some(callback) = &parameters.status_callback {
        if !is_http_url(callback) {
            return Err(TwilioError::bad_request(
                21609,
                format!("Invalid StatusCallback url: {callback}"),
            ));
        }
    }
    Ok(MessageRequest {
        to,
        from,
        body,
        status_callback: parameters.status_callback,
    })
}

impl MessageRequest {
    /// SMS segments: one per started 160 characters, at least one.
    pub fn segment_count(&self) -> usize {
        self.body
            .chars()
            .count()
            .div_ceil(SEGMENT_CHARACTERS)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(form: &str) -> u32 {
        validate_message_request(Some(form.as_bytes()))
            .expect_err("the request should be invalid")
            .code
    }

    #[test]
    fn a_valid_form_is_parsed() {
        let message =
            validate_message_request(Some(b"To=%2B14155552345&From=%2B14155550000&Body=Hi+there"))
                .unwrap();
        assert_eq!(message.to, "+14155552345");
        assert_eq!(message.from, "+14155550000");
        assert_eq!(message.body, "Hi there");
        assert_eq!(message.segment_count(), 1);
    }

    #[test]
    fn errors_follow_twilio_codes_in_twilio_order() {
        assert_eq!(code_of(""), 21604);
        assert_eq!(code_of("From=%2B14155550000&Body=x"), 21604);
        assert_eq!(code_of("To=4155552345&From=%2B14155550000&Body=x"), 21211);
        assert_eq!(code_of("To=%2B14155552345&Body=x"), 21603);
        assert_eq!(code_of("To=%2B14155552345&From=abc&Body=x"), 21212);
        assert_eq!(code_of("To=%2B14155552345&From=%2B14155550000"), 21602);
        assert_eq!(
            code_of("To=%2B14155552345&From=%2B14155552345&Body=x"),
            21266
        );
        // Herald never sends a Messaging Service: it does not stand in for `From`.
        assert_eq!(
            code_of("To=%2B14155552345&MessagingServiceSid=MG12&Body=x"),
            21603
        );
        let long = format!(
            "To=%2B14155552345&From=%2B14155550000&Body={}",
            "a".repeat(1601)
        );
        assert_eq!(code_of(&long), 21617);
        assert_eq!(
            code_of("To=%2B14155552345&From=%2B14155550000&Body=x&StatusCallback=nope"),
            21609
        );
    }

    #[test]
    fn no_form_means_no_parameters() {
        assert_eq!(validate_message_request(None).unwrap_err().code, 21604);
    }

    #[test]
    fn segments_are_started_blocks_of_160_characters() {
        let message = MessageRequest {
            body: "é".repeat(161),
            ..MessageRequest::default()
        };
        assert_eq!(message.segment_count(), 2);
        let exactly = MessageRequest {
            body: "a".repeat(320),
            ..MessageRequest::default()
        };
        assert_eq!(exactly.segment_count(), 2);
    }
}
