//! The `wait` query parameter: whether Discord answers 200 with the created message (`true`)
//! or 204 No Content (absent or `false`, Discord's default).

use serde_json::json;

use super::responses::DiscordError;

/// `Err` is Discord's answer to a value that is not a boolean.
pub fn wait_parameter(query: &str) -> Result<bool, DiscordError> {
    // A query string that does not even decode carries no usable `wait`, as Discord reads it.
    let parameters: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let Some((_, value)) = parameters.iter().find(|(name, _)| name == "wait") else {
        return Ok(false);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(DiscordError::invalid_form_body(json!({
            "wait": {"_errors": [{
                "code": "BOOLEAN_TYPE_CONVERT",
                "message": format!("Value \"{value}\" is not a valid boolean.")
            }]}
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_false_unless_asked_for() {
        assert_eq!(wait_parameter("").ok(), Some(false));
        assert_eq!(wait_parameter("thread_id=5").ok(), Some(false));
        assert_eq!(wait_parameter("wait=true").ok(), Some(true));
        assert_eq!(wait_parameter("thread_id=5&wait=True").ok(), Some(true));
        assert_eq!(wait_parameter("wait=false").ok(), Some(false));
        let refused = wait_parameter("wait=maybe").unwrap_err();
        assert_eq!(refused.status, 400);
        assert_eq!(
            refused.body["errors"]["wait"]["_errors"][0]["code"],
            "BOOLEAN_TYPE_CONVERT"
        );
    }
}
