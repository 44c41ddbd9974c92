//! A message's parameters and Pushover's checks on them, in a fixed order: the first problem
//! found is the one answered (the token is checked before, in `mod.rs`). `user` and `message`
//! are required; `title`, `device`, `priority` (with `retry` and `expire` for priority 2),
//! `html`, `url`, `url_title`, `timestamp` and `ttl` are checked when present; `sound` and
//! anything else (`monospace`, `callback`, attachments, …) is accepted and ignored.

use super::keys::is_pushover_key;
use super::parameters::Parameters;
use super::responses::PushoverError;

/// Longest `message`, in characters.
pub const MAX_MESSAGE_CHARACTERS: usize = 1024;
/// Longest `title`, in characters.
pub const MAX_TITLE_CHARACTERS: usize = 250;
/// Longest `url`, in characters.
pub const MAX_URL_CHARACTERS: usize = 512;
/// Longest `url_title`, in characters.
pub const MAX_URL_TITLE_CHARACTERS: usize = 100;
/// Longest device name, in characters (`device` lists one or more, comma-separated).
pub const MAX_DEVICE_NAME_CHARACTERS: usize = 25;
/// Emergency priority: the shortest `retry` Pushover takes, in seconds.
pub const MIN_EMERGENCY_RETRY_SECONDS: i64 = 30;
/// Emergency priority: the longest `expire` Pushover takes, in seconds (3 hours).
pub const MAX_EMERGENCY_EXPIRE_SECONDS: i64 = 10_800;
/// A well-formed user key that starts with this stands for a user Pushover does not know
/// (`invalid00000000000000000000000`): answered `user identifier is invalid` like a malformed
/// one.
pub const UNKNOWN_USER_PREFIX: &str = "invalid";
/// `priority=2`: repeated until acknowledged, answered with a `receipt`.
pub const EMERGENCY_PRIORITY: i8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushoverMessage {
    /// The user or group key.
    pub user: String,
    /// The devices, comma-separated as sent; `None` for all the user's devices.
    pub device: Option<String>,
    pub title: Option<String>,
    pub message: String,
    /// As sent; `None` when absent (Pushover's default, 0).
    pub priority: Option<i8>,
}

impl PushoverMessage {
    pub fn is_emergency(&self) -> bool {
        self.priority == Some(EMERGENCY_PRIORITY)
    }
}

pub fn validate_message(parameters: &Parameters) -> Result<PushoverMessage, PushoverError> {
    let user = match parameters.get("user") {
        Some(user) if is_pushover_key(user) && !user.starts_with(UNKNOWN_USER_PREFIX) => user,
        _ => return Err(PushoverError::invalid_user()),
    };
    let message = match parameters.get("message") {
        Some(message) if !message.trim().is_empty() => message,
        _ => return Err(PushoverError::blank_message()),
    };
    check_length(parameters, "message", MAX_MESSAGE_CHARACTERS)?;
    check_length(parameters, "title", MAX_TITLE_CHARACTERS)?;
    check_length(parameters, "url", MAX_URL_CHARACTERS)?;
    check_length(parameters, "url_title", MAX_URL_TITLE_CHARACTERS)?;
    let device = parameters.get("device");
    if device.is_some_and(|device| !device.split(',').all(is_device_name)) {
        return Err(PushoverError::invalid("device"));
    }
    let priority = match parameters.get("priority") {
        None => None,
        Some(text) => match text.parse::<i8>() {
            Ok(priority) if (-2..=EMERGENCY_PRIORITY).contains(&priority) => Some(priority),
            _ => return Err(PushoverError::invalid("priority")),
        },
    };
    if priority == Some(EMERGENCY_PRIORITY) {
        check_emergency(parameters)?;
    }
    if !matches!(parameters.get("html"), None | Some("0" | "1")) {
        return Err(PushoverError::invalid("html"));
    }
    check_integer(parameters, "timestamp", 0)?;
    check_integer(parameters, "ttl", 1)?;
    Ok(PushoverMessage {
        user: user.to_owned(),
        device: device.map(str::to_owned),
        title: parameters.get("title").map(str::to_owned),
        message: message.to_owned(),
        priority,
    })
}

fn check_length(
    parameters: &Parameters,
    name: &'static str,
    max_characters: usize,
) -> Result<(), PushoverError> {
    match parameters.get(name) {
        Some(value) if value.chars().count() > max_characters => {
            Err(PushoverError::too_long(name, max_characters))
        }
        _ => Ok(()),
    }
}

/// 1 to 25 of `A-Z a-z 0-9 _ -`.
fn is_device_name(name: &str) -> bool {
    (1..=MAX_DEVICE_NAME_CHARACTERS).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// An integer of at least `minimum`, when present.
fn check_integer(
    parameters: &Parameters,
    name: &'static str,
    minimum: i64,
) -> Result<Option<i64>, PushoverError> {
    match parameters.get(name) {
        None => Ok(None),
        Some(text) => match text.parse::<i64>() {
            Ok(value) if value >= minimum => Ok(Some(value)),
            _ => Err(PushoverError::invalid(name)),
        },
    }
}

/// Priority 2 needs `retry` (at least 30 seconds) and `expire` (at most 10,800 seconds).
fn check_emergency(parameters: &Parameters) -> Result<(), PushoverError> {
    let Some(retry) = check_integer(parameters, "retry", 0)? else {
        return Err(PushoverError::required_for_emergency("retry"));
    };
    if retry < MIN_EMERGENCY_RETRY_SECONDS {
        return Err(PushoverError::parameter(
            "retry",
            "is invalid",
            format!("retry must be at least {MIN_EMERGENCY_RETRY_SECONDS} seconds"),
        ));
    }
    let Some(expire) = check_integer(parameters, "expire", 0)? else {
        return Err(PushoverError::required_for_emergency("expire"));
    };
    if expire > MAX_EMERGENCY_EXPIRE_SECONDS {
        return Err(PushoverError::parameter(
            "expire",
            "is invalid",
            format!("expire must be at most {MAX_EMERGENCY_EXPIRE_SECONDS} seconds"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pushover::parameters::read_parameters;
    use actix_web::http::header::CONTENT_TYPE;
    use actix_web::test::TestRequest;

    const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

    fn parameters(form: &str) -> Parameters {
        let request = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        read_parameters(&request, form.as_bytes()).unwrap()
    }

    fn problem(form: &str) -> (Option<(&'static str, &'static str)>, String) {
        let error = validate_message(&parameters(form)).unwrap_err();
        (error.parameter, error.error)
    }

    #[test]
    fn a_valid_message_is_its_user_device_title_text_and_priority() {
        let message = validate_message(&parameters(&format!(
            "user={USER}&message=Disk+full&title=Alert&device=phone,tablet_2&priority=1\
             &html=1&sound=siren&timestamp=1700000000&ttl=60&url=https://x.example&url_title=x\
             &unknown=ignored"
        )))
        .unwrap();
        assert_eq!(
            message,
            PushoverMessage {
                user: USER.to_owned(),
                device: Some("phone,tablet_2".to_owned()),
                title: Some("Alert".to_owned()),
                message: "Disk full".to_owned(),
                priority: Some(1),
            }
        );
        assert!(!message.is_emergency());
        let minimal = validate_message(&parameters(&format!("user={USER}&message=hi"))).unwrap();
        assert_eq!(
            (minimal.device, minimal.title, minimal.priority),
            (None, None, None)
        );
    }

    #[test]
    fn problems_name_their_parameter_in_order() {
        let invalid_user = Some(("user", "invalid"));
        assert_eq!(problem("message=hi").0, invalid_user);
        assert_eq!(problem("user=short&message=hi").0, invalid_user);
        assert_eq!(
            problem("user=invalid00000000000000000000000&message=hi").0,
            invalid_user,
            "a well-formed but unknown user"
        );
        assert_eq!(
            problem(&format!("user={USER}")),
            (
                Some(("message", "cannot be blank")),
                "message cannot be blank".to_owned()
            )
        );
        assert_eq!(
            problem(&format!("user={USER}&message=+++")).0,
            Some(("message", "cannot be blank"))
        );
        assert_eq!(
            problem(&format!("user={USER}&message={}", "x".repeat(1025))),
            (
                Some(("message", "is too long")),
                "message is more than 1024 characters".to_owned()
            )
        );
        assert_eq!(
            problem(&format!("user={USER}&message=hi&title={}", "x".repeat(251))),
            (
                Some(("title", "is too long")),
                "title is more than 250 characters".to_owned()
            )
        );
        assert_eq!(
            problem(&format!("user={USER}&message=hi&url={}", "x".repeat(513))).0,
            Some(("url", "is too long"))
        );
        assert_eq!(
            problem(&format!(
                "user={USER}&message=hi&url_title={}",
                "x".repeat(101)
            ))
            .0,
            Some(("url_title", "is too long"))
        );
        for device in ["a,,b", "phone!", &"d".repeat(26), ",phone"] {
            assert_eq!(
                problem(&format!("user={USER}&message=hi&device={device}")),
                (
                    Some(("device", "is invalid")),
                    "device is invalid".to_owned()
                ),
                "{device}"
            );
        }
        for priority in ["3", "-3", "high", "1.5"] {
            assert_eq!(
                problem(&format!("user={USER}&message=hi&priority={priority}")).0,
                Some(("priority", "is invalid")),
                "{priority}"
            );
        }
        assert_eq!(
            problem(&format!("user={USER}&message=hi&html=2")).0,
            Some(("html", "is invalid"))
        );
        assert_eq!(
            problem(&format!("user={USER}&message=hi&timestamp=soon")).0,
            Some(("timestamp", "is invalid"))
        );
        assert_eq!(
            problem(&format!("user={USER}&message=hi&ttl=0")).0,
            Some(("ttl", "is invalid"))
        );
    }

    #[test]
    fn limits_are_counted_in_characters() {
        let exactly = format!(
            "user={USER}&message={}&title={}",
            "é".repeat(MAX_MESSAGE_CHARACTERS),
            "é".repeat(MAX_TITLE_CHARACTERS)
        );
        assert!(validate_message(&parameters(&exactly)).is_ok());
    }

    #[test]
    fn emergency_priority_needs_retry_and_expire() {
        let base = format!("user={USER}&message=hi&priority=2");
        assert_eq!(
            problem(&base),
            (
                Some(("retry", "must be supplied with priority=2")),
                "retry must be supplied with priority=2".to_owned()
            )
        );
        assert_eq!(
            problem(&format!("{base}&retry=30")).0,
            Some(("expire", "must be supplied with priority=2"))
        );
        assert_eq!(
            problem(&format!("{base}&retry=29&expire=60")).1,
            "retry must be at least 30 seconds"
        );
        assert_eq!(
            problem(&format!("{base}&retry=30&expire=10801")).1,
            "expire must be at most 10800 seconds"
        );
        let emergency =
            validate_message(&parameters(&format!("{base}&retry=30&expire=10800"))).unwrap();
        assert!(emergency.is_emergency());
    }
}
