//! `{{name}}` placeholders in notification content. The API checks at ingest that every
//! placeholder has a value in `data`; the worker renders with the same parser.

/// The placeholder names in `text`, in order of appearance, or an error describing the first
/// malformed one (an unclosed `{{` or an empty or non-identifier name).
pub fn placeholder_names(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            return Err("`{{` without a closing `}}`".to_string());
        };
        let name = after_open[..close].trim();
        let is_identifier = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !is_identifier {
            return Err(format!(
                "`{{{{{}}}}}` is not a placeholder name (letters, digits, `_`, `.`, `-`)",
                &after_open[..close]
            ));
        }
        names.push(name);
        rest = &after_open[close + 2..];
    }
    Ok(names)
}

/// `text` with every `{{name}}` replaced by `data[name]`: strings as they are, other values as
/// JSON, missing names as nothing (the API rejects those at ingest; old rows are rendered anyway).
pub fn render(text: &str, data: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut rendered = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            break;
        };
        rendered.push_str(&rest[..open]);
        match data.get(after_open[..close].trim()) {
            Some(serde_json::Value::String(value)) => rendered.push_str(value),
            Some(serde_json::Value::Null) | None => {}
            Some(other) => rendered.push_str(&other.to_string()),
        }
        rest = &after_open[close + 2..];
    }
    rendered.push_str(rest);
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_strings_numbers_and_missing_values() {
        let data = serde_json::json!({"value": 7, "machine": "press-4", "none": null});
        let data = data.as_object().unwrap();
        assert_eq!(
            render(
                "Pressure {{value}} on {{ machine }}{{none}}{{missing}}!",
                data
            ),
            "Pressure 7 on press-4!"
        );
        assert_eq!(render("no placeholders", data), "no placeholders");
        assert_eq!(render("open {{value", data), "open {{value");
    }

    #[test]
    fn finds_names_in_order_and_trims_spaces() {
        assert_eq!(
            placeholder_names("Pressure {{value}} on {{ machine }}").unwrap(),
            vec!["value", "machine"]
        );
    }

    #[test]
    fn text_without_placeholders_has_none() {
        assert!(placeholder_names("plain { text }").unwrap().is_empty());
    }

    #[test]
    fn unclosed_and_empty_placeholders_are_errors() {
        assert!(placeholder_names("a {{value").is_err());
        assert!(placeholder_names("a {{ }} b").is_err());
        assert!(placeholder_names("a {{x y}} b").is_err());
    }
}
