//! Reading what Herald recorded from a received RFC 5322 message: a few headers (unfolded, RFC
//! 2047 encoded-words decoded) and the text body with its `Content-Transfer-Encoding` undone.
//! For `multipart/*` the first `text/plain` part is the body (else the first part). Everything
//! is lenient: a malformed message still yields what can be read, never an error.

use base64::Engine;

/// The parts of a message the simulator records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedMessage {
    pub delivery_id: Option<String>,
    pub subject: Option<String>,
    pub body: String,
}

/// How deep `multipart` nesting is followed (alternative inside mixed is the usual case).
const MAX_MULTIPART_DEPTH: usize = 4;

pub fn parse(message: &[u8]) -> ParsedMessage {
    let (headers, body) = split_headers(message);
    let headers = parse_headers(headers);
    ParsedMessage {
        delivery_id: header(&headers, "x-herald-delivery-id")
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty()),
        subject: header(&headers, "subject").map(|value| decode_encoded_words(value.trim())),
        body: text_body(&headers, body, 0),
    }
}

/// The header block and the body after the first empty line (all headers when there is none).
fn split_headers(message: &[u8]) -> (&[u8], &[u8]) {
    let mut start = 0;
    while start < message.len() {
        let end = message[start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(message.len(), |offset| start + offset + 1);
        let line = &message[start..end];
        if line == b"\r\n" || line == b"\n" {
            return (&message[..start], &message[end..]);
        }
        start = end;
    }
    (message, &[])
}

/// `(lower-case name, unfolded value)` pairs, in order.
fn parse_headers(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((
                name.trim().to_ascii_lowercase(),
                value.trim_start().to_owned(),
            ));
        }
    }
    headers
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(header_name, _)| header_name == name)
        .map(|(_, value)| value.as_str())
}

/// The `name=value` parameter of a header such as `Content-Type`, unquoted.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn text_body(headers: &[(String, String)], body: &[u8], depth: usize) -> String {
    let content_type = header(headers, "content-type").unwrap_or("text/plain");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type.starts_with("multipart/") && depth < MAX_MULTIPART_DEPTH {
        if let Some(boundary) = parameter(content_type, "boundary") {
            let parts = multipart_parts(body, &boundary);
            let chosen = parts
                .iter()
                .map(|part| {
                    let (part_headers, part_body) = split_headers(part);
                    (parse_headers(part_headers), part_body)
                })
                .enumerate()
                .min_by_key(|(index, (part_headers, _))| {
                    let plain = header(part_headers, "content-type")
                        .unwrap_or("text/plain")
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("text/plain");
                    (!plain, *index)
                });
            if let Some((_, (part_headers, part_body))) = chosen {
                return text_body(&part_headers, part_body, depth + 1);
            }
        }
    }
    let encoding = header(headers, "content-transfer-encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body, false),
        "base64" => decode_base64(body).unwrap_or_else(|| body.to_vec()),
        _ => body.to_vec(),
    };
    let text = String::from_utf8_lossy(&decoded).into_owned();
    text.strip_suffix("\r\n").map(str::to_owned).unwrap_or(text)
}

/// The parts between `--boundary` lines, up to the closing `--boundary--`.
fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut start = 0;
    while start < body.len() {
        let end = body[start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(body.len(), |offset| start + offset + 1);
        let line = String::from_utf8_lossy(&body[start..end]);
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix(delimiter.as_str()) {
            if let Some(part_start) = current {
                // The CRLF before the delimiter belongs to the delimiter.
                let part = &body[part_start..start];
                let part = part.strip_suffix(b"\r\n").unwrap_or(part);
                parts.push(part.strip_suffix(b"\n").unwrap_or(part));
            }
            if rest.starts_with("--") {
                return parts;
            }
            current = Some(end);
        }
        start = end;
    }
    parts
}

fn decode_base64(data: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .ok()
        .or_else(|| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(compact.strip_suffix(b"=").unwrap_or(&compact))
                .ok()
        })
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045 §6.7); `underscore_is_space` for RFC 2047's `Q` encoding. A
/// malformed escape is kept as it is.
fn decode_quoted_printable(data: &[u8], underscore_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut index = 0;
    while index < data.len() {
        let byte = data[index];
        if byte == b'=' {
            let rest = &data[index + 1..];
            if rest.starts_with(b"\r\n") {
                index += 3;
                continue;
            }
            if rest.starts_with(b"\n") {
                index += 2;
                continue;
            }
            if let [high, low, ..] = rest {
                if let (Some(high), Some(low)) = (hex_value(*high), hex_value(*low)) {
                    out.push(high << 4 | low);
                    index += 3;
                    continue;
                }
            }
            out.push(byte);
        } else if byte == b'_' && underscore_is_space {
            out.push(b' ');
        } else {
            out.push(byte);
        }
        index += 1;
    }
    out
}

/// Decodes RFC 2047 encoded-words (`=?charset?B|Q?text?=`) in a header value. Adjacent words are
/// joined without the whitespace between them, and their bytes are decoded together, so a
/// character split across two words survives. UTF-8, US-ASCII and ISO-8859-1 are understood;
/// a word in another charset is left as it is.
pub fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    // Bytes of consecutive encoded words of one charset, not yet turned into text.
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_latin1 = false;
    let mut rest = value;
    let mut previous_was_word = false;
    loop {
        let Some(start) = rest.find("=?") else {
            flush(&mut out, &mut pending, pending_latin1);
            out.push_str(rest);
            return out;
        };
        let between = &rest[..start];
        let Some((word_len, charset, bytes)) = encoded_word(&rest[start..]) else {
            flush(&mut out, &mut pending, pending_latin1);
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            previous_was_word = false;
            continue;
        };
        let latin1 = charset == Charset::Latin1;
        let joins = previous_was_word && between.chars().all(char::is_whitespace);
        if !joins || latin1 != pending_latin1 {
            flush(&mut out, &mut pending, pending_latin1);
        }
        if !joins {
            out.push_str(between);
        }
        pending.extend_from_slice(&bytes);
        pending_latin1 = latin1;
        previous_was_word = true;
        rest = &rest[start + word_len..];
    }
}

#[derive(PartialEq, Eq)]
enum Charset {
    Utf8,
    Latin1,
}

fn flush(out: &mut String, pending: &mut Vec<u8>, latin1: bool) {
    if latin1 {
        out.extend(pending.iter().map(|&byte| char::from(byte)));
    } else {
        out.push_str(&String::from_utf8_lossy(pending));
    }
    pending.clear();
}

/// `=?charset?enc?text?=` at the start of `text`: its length, charset and decoded bytes.
fn encoded_word(text: &str) -> Option<(usize, Charset, Vec<u8>)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let encoded = &inner[..end];
    if encoded.contains(char::is_whitespace) {
        return None;
    }
    // An RFC 2231 language suffix: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or_default();
    let charset = match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "us-ascii" => Charset::Utf8,
        "iso-8859-1" | "latin1" => Charset::Latin1,
        _ => return None,
    };
    let bytes = match encoding {
        "B" | "b" => decode_base64(encoded.as_bytes())?,
        "Q" | "q" => decode_quoted_printable(encoded.as_bytes(), true),
        _ => return None,
    };
    // `inner` is a suffix of `text`: what precedes it, the text and `?=`.
    let length = text.len() - inner.len() + end + 2;
    Some((length, charset, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_in_base64_and_q_are_decoded_and_adjacent_ones_joined() {
        assert_eq!(decode_encoded_words("Plain subject"), "Plain subject");
        assert_eq!(
            decode_encoded_words("=?utf-8?b?Q2Fmw6kgb3JkZXI=?="),
            "Café order"
        );
        assert_eq!(
            decode_encoded_words("=?UTF-8?Q?Caf=C3=A9_order?= shipped"),
            "Café order shipped"
        );
        // A character split across two words, folded with whitespace between them.
        assert_eq!(
            decode_encoded_words("=?utf-8?b?Q2Fmw6k=?=\r\n =?utf-8?b?IG9yZGVy?="),
            "Café order"
        );
        assert_eq!(
            decode_encoded_words("=?utf-8?q?a=C3?= =?utf-8?q?=A9?="),
            "aé"
        );
        assert_eq!(
            decode_encoded_words("Re: =?iso-8859-1?q?caf=E9?="),
            "Re: café"
        );
        for malformed in [
            "=?utf-8?x?abc?=",
            "=?utf-8?b?abc",
            "=?",
            "a =? b ?= c",
            "=?koi8-r?b?QQ==?=",
        ] {
            assert_eq!(decode_encoded_words(malformed), malformed);
        }
    }

    #[test]
    fn headers_are_unfolded_and_the_body_follows_the_blank_line() {
        let message = b"Subject: Your order\r\n shipped\r\nX-Herald-Delivery-Id: d-1\r\n\r\nHello\r\nthere\r\n";
        let parsed = parse(message);
        assert_eq!(parsed.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(parsed.subject.as_deref(), Some("Your order shipped"));
        assert_eq!(parsed.body, "Hello\r\nthere");
    }

    #[test]
    fn quoted_printable_and_base64_bodies_are_decoded() {
        let quoted = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 a very long=\r\n line\r\n";
        assert_eq!(parse(quoted).body, "Café a very long line");
        let base64 = b"Content-Transfer-Encoding: base64\r\n\r\nQ2Fmw6kg\r\nb3JkZXI=\r\n";
        assert_eq!(parse(base64).body, "Café order");
    }

    #[test]
    fn the_text_part_of_a_multipart_message_is_the_body() {
        let message = b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nH=C3=A9\r\n--b1--\r\n";
        assert_eq!(parse(message).body, "Hé");
    }

    #[test]
    fn garbage_never_panics() {
        for message in [
            &b""[..],
            b"\r\n",
            b"no colon",
            b"=",
            b"\xff\xfe: \xff\r\n\r\n\xff",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--",
        ] {
            let _ = parse(message);
        }
        let _ = decode_quoted_printable(b"=\r=4=zz=", false);
    }
}
