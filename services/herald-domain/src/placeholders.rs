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
/// JSON, missing names as nothing (the API rejects those at ingest; old rows are rendered anyway);
/// or, when the result would exceed `max_bytes`, its length, without building it.
///
/// Bounded because a placeholder is a multiplier: 13,107 `{{a}}` with a 64 KB `a` render 800 MiB
/// from 130 KB of request. The API refuses such content at ingest with [`rendered_len`]; the
/// worker checks again here, for rows accepted before the bound existed.
pub fn render(
    text: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    max_bytes: usize,
) -> Result<String, usize> {
    let rendered_bytes = rendered_len(text, data);
    if rendered_bytes > max_bytes {
        return Err(rendered_bytes);
    }
    let mut rendered = String::with_capacity(rendered_bytes);
    for piece in pieces(text) {
        match piece {
            Piece::Text(literal) => rendered.push_str(literal),
            Piece::Placeholder(name) => match data.get(name) {
                Some(serde_json::Value::String(value)) => rendered.push_str(value),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => rendered.push_str(&other.to_string()),
            },
        }
    }
    debug_assert_eq!(rendered.len(), rendered_bytes);
    Ok(rendered)
}

/// How many bytes `render` makes of `text`, computed without rendering: each distinct name's value
/// is measured once, so the cost is the text's length plus the data's, however often a name
/// repeats. Saturates at `usize::MAX`.
pub fn rendered_len(text: &str, data: &serde_json::Map<String, serde_json::Value>) -> usize {
    let mut value_lengths: std::collections::HashMap<&str, usize> = Default::default();
    let mut total: usize = 0;
    for piece in pieces(text) {
        let piece_len = match piece {
            Piece::Text(literal) => literal.len(),
            Piece::Placeholder(name) => {
                *value_lengths
                    .entry(name)
                    .or_insert_with(|| match data.get(name) {
                        Some(serde_json::Value::String(value)) => value.len(),
                        Some(serde_json::Value::Null) | None => 0,
                        Some(other) => other.to_string().len(),
                    })
            }
        };
        total = total.saturating_add(piece_len);
    }
    total
}

enum Piece<'text> {
    Text(&'text str),
    /// The trimmed name between `{{` and `}}`.
    Placeholder(&'text str),
}

/// `text` as literal text and placeholders, in order; an unclosed `{{` is literal text.
fn pieces(text: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = text;
    let mut pending_placeholder: Option<&str> = None;
    std::iter::from_fn(move || {
        if let Some(name) = pending_placeholder.take() {
            return Some(Piece::Placeholder(name));
        }
        if rest.is_empty() {
            return None;
        }
        let placeholder = rest.find("{{").and_then(|open| {
            let after_open = &rest[open + 2..];
            after_open.find("}}").map(|close| (open, after_open, close))
        });
        match placeholder {
            Some((open, after_open, close)) => {
                let literal = &rest[..open];
                pending_placeholder = Some(after_open[..close].trim());
                rest = &after_open[close + 2..];
                Some(Piece::Text(literal))
            }
            None => {
                let literal = rest;
                rest = "";
                Some(Piece::Text(literal))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_strings_numbers_and_missing_values() {
        let data = serde_json::json!({"value": 7, "machine": "press-4", "none": null});
        let data = data.as_object().unwrap();
        let render = |text: &str| render(text, data, usize::MAX).unwrap();
        assert_eq!(
            render("Pressure {{value}} on {{ machine }}{{none}}{{missing}}!"),
            "Pressure 7 on press-4!"
        );
        assert_eq!(render("no placeholders"), "no placeholders");
        assert_eq!(render("open {{value"), "open {{value");
        assert_eq!(render("{{value}}{{value}} }} {{"), "77 }} {{");
        assert_eq!(render(""), "");
    }

    #[test]
    fn the_rendered_length_is_known_before_rendering_and_bounds_it() {
        let data = serde_json::json!({"a": "x".repeat(65_000), "n": 12345});
        let data = data.as_object().unwrap();
        let bomb = "{{a}}".repeat(13_107);
        assert_eq!(rendered_len(&bomb, data), 13_107 * 65_000);
        assert_eq!(render(&bomb, data, 128 * 1024), Err(13_107 * 65_000));
        assert_eq!(rendered_len("n={{n}}!", data), 8);
        assert_eq!(render("n={{n}}!", data, 8).unwrap(), "n=12345!");
        assert_eq!(render("n={{n}}!", data, 7), Err(8));
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
