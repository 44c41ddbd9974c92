//! Templates (docs/DESIGN.md, "Templates"): a tenant's messages per channel and locale, written in
//! Jinja syntax and rendered by minijinja in a sandbox.
//!
//! The sandbox, against a hostile tenant whose template every worker renders:
//! - no loader: a template cannot read a file or another template;
//! - a curated set of filters and tests, each of which makes a value no larger than its input
//!   (no `replace`, `join`, `center`, `indent`, `format`, `tojson`, no `range()`): what the
//!   template builds is bounded by `data` and the source;
//! - the operators that build strings (`~`, `+`, `*`, `**`) are refused when the template is
//!   written: `"x" * 100000000` or a doubling `~` in a loop would allocate gigabytes in a few
//!   instructions, and fuel counts instructions, not bytes. Text is joined by writing the
//!   expressions side by side (`{{ a }}{{ b }}`);
//! - so are the blocks that capture output in memory, where the output's bound does not reach
//!   (`filter`, `macro`, `call`, a `set` block), and those that reach another template (`include`,
//!   `extends`, `import`, `from`: a version's parts share one environment);
//! - fuel ([`RENDER_FUEL`] instructions per part) bounds the time of a render;
//! - output bounded in bytes (the same bounds as inline content), checked as it is written;
//! - strict undefined: a missing variable is an error naming it, never a blank.

use std::collections::{BTreeMap, HashSet};
use std::io;

use minijinja::machinery::{tokenize, Token, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::validation::{template_id_problem, MAX_TEMPLATE_ID_CHARS};
use crate::validation::{
    FieldError, MAX_RENDERED_BODY_BYTES, MAX_RENDERED_SUBJECT_BYTES, MAX_SUBJECT_CHARS,
};
use crate::Channel;

/// The largest source of one part (a subject, a text, an HTML body).
pub const MAX_PART_SOURCE_BYTES: usize = 64 * 1024;
/// The largest template version, all its parts together.
pub const MAX_TEMPLATE_SOURCE_BYTES: usize = 512 * 1024;
/// Locales besides the default one.
pub const MAX_LOCALES: usize = 50;
/// Instructions one part may execute per render: a typical email takes a few hundred, a loop over
/// a thousand items fits; an endless macro recursion or a loop over a loop does not. At this
/// fuel the worst render a tenant can write (a loop in a loop over 64 KiB of `data`) costs about
/// 3 ms of CPU (`cargo bench -p herald-domain --bench templates`, `hostile_out_of_fuel`).
pub const RENDER_FUEL: u64 = 20_000;
/// `en`, `pt-BR`, `zh-Hant-TW`: BCP 47's shape (a language, then subtags), at most 35 characters.
pub const MAX_LOCALE_CHARS: usize = 35;

/// One channel's message in one locale. `subject` is the email's subject (a chat message shows it
/// above the text); `html` is email only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// A template version as written by `PUT /v1/templates/{template_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDefinition {
    /// The locale of `channels`, used when the recipient's locale (or its language) has no part
    /// of its own. Default `en`.
    #[serde(default = "default_locale")]
    #[schema(example = "en")]
    pub default_locale: String,
    /// The message per channel (`email`, `sms`, `slack`, ...) in the default locale. A
    /// notification using the template may only name channels listed here.
    #[schema(value_type = Object, example = json!({
        "email": {"subject": "Welcome, {{ data.name }}", "text": "Hello {{ data.name }}!",
                  "html": "<p>Hello <b>{{ data.name }}</b>!</p>"},
        "sms": {"text": "Hello {{ data.name }}!"}
    }))]
    pub channels: BTreeMap<String, TemplateParts>,
    /// Other locales (`pt-BR`, `pt`), each with some of the channels. A recipient in `pt-BR` gets
    /// `pt-BR`'s part, else `pt`'s, else the default's.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"pt": {"sms": {"text": "Olá {{ data.name }}!"}}}))]
    pub locales: BTreeMap<String, BTreeMap<String, TemplateParts>>,
}

fn default_locale() -> String {
    "en".to_owned()
}

/// What is wrong with a locale tag, if anything (`en`, `pt-BR`, `zh-Hant-TW`).
pub fn locale_problem(locale: &str) -> Option<String> {
    let mut subtags = locale.split('-');
    let language = subtags.next().unwrap_or_default();
    let language_ok =
        (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_alphabetic());
    let subtags_ok = subtags.all(|subtag| {
        (1..=8).contains(&subtag.len()) && subtag.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !language_ok || !subtags_ok || locale.len() > MAX_LOCALE_CHARS {
        return Some(format!(
            "`{}` is not a locale tag like `en` or `pt-BR` (a 2-3 letter language, then subtags \
             of 1-8 letters or digits, at most {MAX_LOCALE_CHARS} characters)",
            locale.escape_default()
        ));
    }
    None
}

/// The locales to try for `wanted`, most specific first: `pt-BR` → `pt-BR`, `pt`.
fn locale_candidates(wanted: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(wanted);
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current.rfind('-').map(|dash| &current[..dash]);
        Some(current)
    })
}

/// Which part of a channel's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Subject,
    Text,
    Html,
}

impl PartKind {
    fn name(self) -> &'static str {
        match self {
            PartKind::Subject => "subject",
            PartKind::Text => "text",
            PartKind::Html => "html",
        }
    }

    fn max_rendered_bytes(self) -> usize {
        match self {
            PartKind::Subject => MAX_RENDERED_SUBJECT_BYTES,
            PartKind::Text | PartKind::Html => MAX_RENDERED_BODY_BYTES,
        }
    }
}

/// The environment every template is compiled in: no loader, no globals, the curated filters and
/// tests, strict undefined, HTML escaping for `html` parts, fuel.
fn sandbox() -> Environment<'static> {
    use minijinja::{filters, tests};
    let mut environment = Environment::empty();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_fuel(Some(RENDER_FUEL));
    environment.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // Each makes a value no larger than its input (see the module documentation).
    environment.add_filter("upper", filters::upper);
    environment.add_filter("lower", filters::lower);
    environment.add_filter("title", filters::title);
    environment.add_filter("capitalize", filters::capitalize);
    environment.add_filter("trim", filters::trim);
    environment.add_filter("default", filters::default);
    environment.add_filter("d", filters::default);
    environment.add_filter("escape", filters::escape);
    environment.add_filter("e", filters::escape);
    environment.add_filter("safe", filters::safe);
    environment.add_filter("length", filters::length);
    environment.add_filter("count", filters::length);
    environment.add_filter("first", filters::first);
    environment.add_filter("last", filters::last);
    environment.add_filter("round", filters::round);
    environment.add_filter("abs", filters::abs);
    environment.add_filter("int", filters::int);
    environment.add_filter("float", filters::float);
    environment.add_filter("string", filters::string);
    environment.add_filter("bool", filters::bool);
    environment.add_filter("reverse", filters::reverse);
    environment.add_filter("sort", filters::sort);
    environment.add_filter("unique", filters::unique);
    environment.add_filter("min", filters::min);
    environment.add_filter("max", filters::max);
    environment.add_filter("sum", filters::sum);
    environment.add_filter("items", filters::items);
    environment.add_filter("dictsort", filters::dictsort);
    environment.add_filter("selectattr", filters::selectattr);
    environment.add_filter("rejectattr", filters::rejectattr);
    environment.add_filter("select", filters::select);
    environment.add_filter("reject", filters::reject);
    environment.add_filter("map", filters::map);
    environment.add_test("defined", tests::is_defined);
    environment.add_test("undefined", tests::is_undefined);
    environment.add_test("none", tests::is_none);
    environment.add_test("number", tests::is_number);
    environment.add_test("string", tests::is_string);
    environment.add_test("sequence", tests::is_sequence);
    environment.add_test("mapping", tests::is_mapping);
    environment.add_test("true", tests::is_true);
    environment.add_test("false", tests::is_false);
    environment.add_test("even", tests::is_even);
    environment.add_test("odd", tests::is_odd);
    environment.add_test("eq", tests::is_eq);
    environment.add_test("ne", tests::is_ne);
    environment.add_test("lt", tests::is_lt);
    environment.add_test("le", tests::is_le);
    environment.add_test("gt", tests::is_gt);
    environment.add_test("ge", tests::is_ge);
    environment.add_test("in", tests::is_in);
    environment.add_test("startingwith", tests::is_startingwith);
    environment.add_test("endingwith", tests::is_endingwith);
    environment
}

/// The first construct of `source` the sandbox refuses, if any, with its line (see the module
/// documentation): the string-building operators; blocks that capture output into memory, where
/// the output's bound does not reach (`{% filter %}`, `{% macro %}`, `{% call %}`, a `{% set %}`
/// block); and blocks that reach another template (`include`, `extends`, `import`, `from`), since
/// a version's parts share one environment.
fn forbidden_construct(source: &str) -> Result<(), String> {
    let mut tokens = Vec::new();
    for token in tokenize(source, false, SyntaxConfig, WhitespaceConfig::default()) {
        match token {
            Ok(token) => tokens.push(token),
            // Syntax errors are reported by the compiler, with its message.
            Err(_) => return Ok(()),
        }
    }
    for (index, (token, span)) in tokens.iter().enumerate() {
        let line = span.start_line;
        let operator = match token {
            Token::Tilde => Some("~"),
            Token::Plus => Some("+"),
            Token::Mul => Some("*"),
            Token::Pow => Some("**"),
            _ => None,
        };
        if let Some(operator) = operator {
            return Err(format!(
                "line {line}: the `{operator}` operator is not allowed in templates (it can build \
                 strings without bound); write the values side by side instead: `{{{{ a }}}}{{{{ b }}}}`"
            ));
        }
        let Token::BlockStart = token else { continue };
        let Some((Token::Ident(statement), _)) = tokens.get(index + 1) else {
            continue;
        };
        let rest_of_block = tokens[index + 1..]
            .iter()
            .take_while(|(token, _)| !matches!(token, Token::BlockEnd));
        let refused = match *statement {
            "filter" | "macro" | "call" => Some("captures output in memory, beyond the output's bound"),
            "set" if !rest_of_block.clone().any(|(token, _)| matches!(token, Token::Assign)) => {
                Some("captures output in memory, beyond the output's bound (`{% set x = ... %}` is allowed)")
            }
            "include" | "extends" | "import" | "from" => Some("reaches another template"),
            _ => None,
        };
        if let Some(reason) = refused {
            return Err(format!(
                "line {line}: `{{% {statement} %}}` is not allowed in templates: it {reason}"
            ));
        }
    }
    Ok(())
}

impl TemplateDefinition {
    /// Checks every rule and compiles every part; each problem names its field
    /// (`channels.email.subject`, `locales.pt-BR.sms.text`).
    pub fn validate(&self) -> Result<CompiledTemplate, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut source_bytes = 0usize;
        if let Some(problem) = locale_problem(&self.default_locale) {
            errors.push(FieldError::new("default_locale", problem));
        }
        if self.channels.is_empty() {
            errors.push(FieldError::new(
                "channels",
                "must have a part for at least one channel",
            ));
        }
        if self.locales.len() > MAX_LOCALES {
            errors.push(FieldError::new(
                "locales",
                format!("at most {MAX_LOCALES} locales besides the default"),
            ));
        }
        if self.locales.contains_key(&self.default_locale) {
            errors.push(FieldError::new(
                format!("locales.{}", self.default_locale),
                "is the default locale: its parts go in `channels`",
            ));
        }
        let mut environment = sandbox();
        let mut parts = Vec::new();
        let all_locales = std::iter::once((
            self.default_locale.as_str(),
            "channels".to_owned(),
            &self.channels,
        ))
        .chain(
            self.locales
                .iter()
                .map(|(locale, channels)| (locale.as_str(), format!("locales.{locale}"), channels)),
        );
        for (locale, path, channels) in all_locales {
            if path != "channels" {
                if let Some(problem) = locale_problem(locale) {
                    errors.push(FieldError::new(path.clone(), problem));
                    continue;
                }
            }
            for (channel_name, channel_parts) in channels {
                let channel_path = format!("{path}.{channel_name}");
                let Some(channel) = Channel::parse(channel_name) else {
                    errors.push(FieldError::new(
                        channel_path,
                        format!(
                            "unknown channel `{}` (known: {})",
                            channel_name.escape_default(),
                            Channel::known_names()
                        ),
                    ));
                    continue;
                };
                if path != "channels" && !self.channels.contains_key(channel_name) {
                    errors.push(FieldError::new(
                        channel_path,
                        format!("the default locale has no `{channel_name}` part: add it to `channels` first"),
                    ));
                    continue;
                }
                if channel == Channel::Email && channel_parts.subject.is_none() {
                    errors.push(FieldError::new(
                        format!("{channel_path}.subject"),
                        "is required for email",
                    ));
                }
                if channel != Channel::Email && channel_parts.html.is_some() {
                    errors.push(FieldError::new(
                        format!("{channel_path}.html"),
                        "only email has an HTML part",
                    ));
                }
                let sources = [
                    (PartKind::Subject, channel_parts.subject.as_deref()),
                    (PartKind::Text, Some(channel_parts.text.as_str())),
                    (PartKind::Html, channel_parts.html.as_deref()),
                ];
                for (kind, source) in sources {
                    let Some(source) = source else { continue };
                    let part_path = format!("{channel_path}.{}", kind.name());
                    source_bytes = source_bytes.saturating_add(source.len());
                    if let Some(problem) = part_source_problem(kind, source) {
                        errors.push(FieldError::new(part_path, problem));
                        continue;
                    }
                    let name = part_name(locale, channel, kind);
                    match environment.add_template_owned(name.clone(), source.to_owned()) {
                        Ok(()) => parts.push(name),
                        Err(error) => errors.push(FieldError::new(
                            part_path,
                            format!("does not compile: {}", compile_error_text(&error)),
                        )),
                    }
                }
            }
        }
        if source_bytes > MAX_TEMPLATE_SOURCE_BYTES {
            errors.push(FieldError::new(
                "channels",
                format!("all parts together are at most {MAX_TEMPLATE_SOURCE_BYTES} bytes, got {source_bytes}"),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let referenced = parts
            .iter()
            .map(|name| {
                let template = environment
                    .get_template(name)
                    .expect("every part was added above");
                (name.clone(), template.undeclared_variables(true))
            })
            .collect();
        Ok(CompiledTemplate {
            environment,
            default_locale: self.default_locale.clone(),
            locales: self.locales.keys().cloned().collect(),
            referenced,
        })
    }
}

fn part_source_problem(kind: PartKind, source: &str) -> Option<String> {
    if source.contains('\u{0}') {
        return Some("must not contain the NUL character (U+0000)".into());
    }
    if source.len() > MAX_PART_SOURCE_BYTES {
        return Some(format!("at most {MAX_PART_SOURCE_BYTES} bytes"));
    }
    if kind == PartKind::Subject && source.chars().count() > MAX_SUBJECT_CHARS {
        return Some(format!("at most {MAX_SUBJECT_CHARS} characters"));
    }
    if kind != PartKind::Subject && source.trim().is_empty() {
        return Some("must not be empty".into());
    }
    forbidden_construct(source).err()
}

/// `pt-BR/email.subject`; an HTML part ends in `.html`, which turns on HTML escaping.
fn part_name(locale: &str, channel: Channel, kind: PartKind) -> String {
    format!("{locale}/{}.{}", channel.as_str(), kind.name())
}

/// minijinja's message for a template that does not compile, with its line, without the name we
/// gave the part.
fn compile_error_text(error: &minijinja::Error) -> String {
    let detail = error
        .detail()
        .map_or_else(|| error.kind().to_string(), str::to_owned);
    match error.line() {
        Some(line) => format!("{detail} (line {line})"),
        None => detail,
    }
}

/// A template version compiled once, rendered for many recipients.
pub struct CompiledTemplate {
    environment: Environment<'static>,
    default_locale: String,
    /// The other locales, for the fallback.
    locales: HashSet<String>,
    /// Per part, the variables it reads (`data.name`), to name the missing one.
    referenced: BTreeMap<String, HashSet<String>>,
}

/// What a template renders for one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RenderedMessage {
    /// The locale whose part was used.
    pub locale: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// Why a part could not be rendered: recorded as the delivery's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the template has no `{0}` part")]
    NoPart(String),
    #[error("{part}: missing variable {}", .variables.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", "))]
    MissingVariables {
        part: String,
        variables: Vec<String>,
    },
    #[error("{part}: renders to more than {max_bytes} bytes")]
    TooLarge { part: String, max_bytes: usize },
    #[error("{part}: used more than {RENDER_FUEL} steps")]
    OutOfFuel { part: String },
    #[error("{part}: {message}")]
    Failed { part: String, message: String },
}

impl RenderError {
    /// A short, fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RenderError::NoPart(_) => "no_part",
            RenderError::MissingVariables { .. } => "missing_variable",
            RenderError::TooLarge { .. } => "too_large",
            RenderError::OutOfFuel { .. } => "out_of_fuel",
            RenderError::Failed { .. } => "failed",
        }
    }
}

/// What a template sees: `data` (the notification's), `recipient` (`id`, `locale`) and
/// `notification` (`id`).
#[derive(Debug, Serialize)]
pub struct RenderContext<'a> {
    pub data: &'a serde_json::Map<String, serde_json::Value>,
    pub recipient: RecipientContext<'a>,
    pub notification: NotificationContext,
    /// The recipient's one-click unsubscribe link, for email when links are on; undefined
    /// otherwise (`{% if unsubscribe_url is defined %}` guards a footer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct RecipientContext<'a> {
    pub id: &'a str,
    pub locale: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct NotificationContext {
    pub id: uuid::Uuid,
}

impl CompiledTemplate {
    /// Whether the default locale has a part for `channel` (every locale falls back to it).
    pub fn has_channel(&self, channel: Channel) -> bool {
        self.referenced
            .contains_key(&part_name(&self.default_locale, channel, PartKind::Text))
    }

    /// The channels of the default locale.
    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|channel| self.has_channel(*channel))
            .collect()
    }

    /// The locale whose part `channel` uses for a recipient in `wanted`: `pt-BR`, else `pt`,
    /// else the default. Tags compare without regard to case.
    pub fn locale_for(&self, wanted: Option<&str>, channel: Channel) -> &str {
        let chosen = wanted
            .into_iter()
            .flat_map(locale_candidates)
            .find_map(|candidate| {
                self.locales
                    .iter()
                    .find(|locale| locale.eq_ignore_ascii_case(candidate))
                    .filter(|locale| {
                        self.referenced
                            .contains_key(&part_name(locale, channel, PartKind::Text))
                    })
            });
        chosen.map_or(self.default_locale.as_str(), String::as_str)
    }

    /// Renders `channel`'s message for a recipient in `locale`.
    pub fn render(
        &self,
        channel: Channel,
        locale: Option<&str>,
        context: &RenderContext<'_>,
    ) -> Result<RenderedMessage, RenderError> {
        if !self.has_channel(channel) {
            return Err(RenderError::NoPart(channel.as_str().to_owned()));
        }
        let chosen_locale = self.locale_for(locale, channel);
        let context = minijinja::Value::from_serialize(context);
        let subject = self.render_part(chosen_locale, channel, PartKind::Subject, &context)?;
        let text = self
            .render_part(chosen_locale, channel, PartKind::Text, &context)?
            .expect("every channel has a text part");
        let html = self.render_part(chosen_locale, channel, PartKind::Html, &context)?;
        Ok(RenderedMessage {
            locale: chosen_locale.to_owned(),
            subject,
            text,
            html,
        })
    }

    fn render_part(
        &self,
        locale: &str,
        channel: Channel,
        kind: PartKind,
        context: &minijinja::Value,
    ) -> Result<Option<String>, RenderError> {
        let name = part_name(locale, channel, kind);
        let Ok(template) = self.environment.get_template(&name) else {
            return Ok(None);
        };
        let part = format!("{locale} {}.{}", channel.as_str(), kind.name());
        let max_bytes = kind.max_rendered_bytes();
        let mut output = BoundedOutput {
            written: Vec::new(),
            max_bytes,
            exceeded: false,
        };
        match template.render_captured_to(context, &mut output) {
            Ok(_) => Ok(Some(
                String::from_utf8(output.written).expect("minijinja writes UTF-8"),
            )),
            Err(_) if output.exceeded => Err(RenderError::TooLarge { part, max_bytes }),
            Err(error) => Err(match error.kind() {
                ErrorKind::UndefinedError => RenderError::MissingVariables {
                    variables: self.missing_variables(&name, context),
                    part,
                },
                ErrorKind::OutOfFuel => RenderError::OutOfFuel { part },
                _ => RenderError::Failed {
                    part,
                    message: compile_error_text(&error),
                },
            }),
        }
    }

    /// The variables `name` reads that `context` does not have; the whole error when the missing
    /// one is looked up dynamically (`data[key]`).
    fn missing_variables(&self, name: &str, context: &minijinja::Value) -> Vec<String> {
        let mut missing: Vec<String> = self
            .referenced
            .get(name)
            .into_iter()
            .flatten()
            .filter(|path| {
                let mut value = context.clone();
                path.split('.')
                    .any(|segment| match value.get_attr(segment) {
                        Ok(next) if !next.is_undefined() => {
                            value = next;
                            false
                        }
                        _ => true,
                    })
            })
            .cloned()
            .collect();
        missing.sort();
        if missing.is_empty() {
            missing.push("(looked up by a computed name)".to_owned());
        }
        missing
    }
}

/// A writer that refuses to grow past `max_bytes`, which stops the render at once.
struct BoundedOutput {
    written: Vec<u8>,
    max_bytes: usize,
    exceeded: bool,
}

impl io::Write for BoundedOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.written.len() + bytes.len() > self.max_bytes {
            self.exceeded = true;
            return Err(io::Error::other("the rendered part is over its bound"));
        }
        self.written.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definition(value: serde_json::Value) -> TemplateDefinition {
        serde_json::from_value(value).unwrap()
    }

    fn compiled(value: serde_json::Value) -> CompiledTemplate {
        definition(value).validate().unwrap()
    }

    fn render(
        template: &CompiledTemplate,
        channel: Channel,
        locale: Option<&str>,
        data: serde_json::Value,
    ) -> Result<RenderedMessage, RenderError> {
        let data = data.as_object().unwrap().clone();
        let context = RenderContext {
            data: &data,
            recipient: RecipientContext {
                id: "user-1",
                locale,
            },
            notification: NotificationContext {
                id: uuid::Uuid::nil(),
            },
            unsubscribe_url: None,
        };
        template.render(channel, locale, &context)
    }

    fn welcome() -> CompiledTemplate {
        compiled(json!({
            "channels": {
                "email": {"subject": "Welcome, {{ data.name }}", "text": "Hello {{ data.name }}",
                          "html": "<p>Hello {{ data.name }}</p>"},
                "sms": {"text": "Hi {{ data.name }} ({{ recipient.id }})"}
            },
            "locales": {
                "pt": {"sms": {"text": "Olá {{ data.name }}"}},
                "pt-BR": {"email": {"subject": "Bem-vindo, {{ data.name }}", "text": "Oi {{ data.name }}"}}
            }
        }))
    }

    #[test]
    fn renders_each_part_and_escapes_only_html() {
        let message = render(&welcome(), Channel::Email, None, json!({"name": "<Ana>"})).unwrap();
        assert_eq!(message.locale, "en");
        assert_eq!(message.subject.as_deref(), Some("Welcome, <Ana>"));
        assert_eq!(message.text, "Hello <Ana>");
        assert_eq!(message.html.as_deref(), Some("<p>Hello &lt;Ana&gt;</p>"));
        let sms = render(&welcome(), Channel::Sms, None, json!({"name": "Ana"})).unwrap();
        assert_eq!(sms.text, "Hi Ana (user-1)");
        assert_eq!(sms.subject, None);
    }

    #[test]
    fn the_locale_falls_back_region_then_language_then_default_per_channel() {
        let template = welcome();
        let data = json!({"name": "Ana"});
        let email = |locale| render(&template, Channel::Email, locale, data.clone()).unwrap();
        let sms = |locale| render(&template, Channel::Sms, locale, data.clone()).unwrap();
        assert_eq!(email(Some("pt-BR")).text, "Oi Ana");
        assert_eq!(email(Some("pt-br")).locale, "pt-BR");
        // pt has no email part: the default's.
        assert_eq!(email(Some("pt-PT")).locale, "en");
        // pt-BR has no sms part: pt's.
        assert_eq!(sms(Some("pt-BR")).text, "Olá Ana");
        assert_eq!(sms(Some("pt-PT")).text, "Olá Ana");
        assert_eq!(sms(Some("de-DE")).locale, "en");
        assert_eq!(sms(None).locale, "en");
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_it_never_a_blank() {
        let error = render(&welcome(), Channel::Email, None, json!({})).unwrap_err();
        assert_eq!(
            error,
            RenderError::MissingVariables {
                part: "en email.subject".into(),
                variables: vec!["data.name".into()]
            }
        );
        assert_eq!(
            error.to_string(),
            "en email.subject: missing variable `data.name`"
        );
        let with_default = compiled(
            json!({"channels": {"sms": {"text": "{{ data.x | default('none') }} {% if data.y is defined %}y{% endif %}"}}}),
        );
        assert_eq!(
            render(&with_default, Channel::Sms, None, json!({}))
                .unwrap()
                .text,
            "none "
        );
    }

    #[test]
    fn output_time_and_the_string_building_operators_are_bounded() {
        // Output: a loop over data writes past the bound and stops there.
        let big = compiled(
            json!({"channels": {"sms": {"text": "{% for item in data.items %}{{ data.chunk }}{% endfor %}"}}}),
        );
        let data = json!({"items": vec![0; 1000], "chunk": "x".repeat(1000)});
        assert_eq!(
            render(&big, Channel::Sms, None, data).unwrap_err().label(),
            "too_large"
        );
        // Time: a loop within a loop runs out of fuel.
        let slow = compiled(
            json!({"channels": {"sms": {"text": "{% for a in data.items %}{% for b in data.items %}{% endfor %}{% endfor %}"}}}),
        );
        let data = json!({"items": vec![0; 1000]});
        assert_eq!(
            render(&slow, Channel::Sms, None, data).unwrap_err().label(),
            "out_of_fuel"
        );
        // Memory: refused when written.
        for source in [
            "{{ 'x' * 100000000 }}",
            "{{ data.a ~ data.a }}",
            "{{ data.a + data.a }}",
            "{{ 2 ** 8 }}",
        ] {
            let errors = definition(json!({"channels": {"sms": {"text": source}}}))
                .validate()
                .err()
                .unwrap();
            assert_eq!(errors[0].field, "channels.sms.text", "{source}");
            assert!(
                errors[0].problem.contains("operator is not allowed"),
                "{source}: {errors:?}"
            );
        }
        // Blocks that capture output, or reach another part: refused when written.
        for source in [
            "{% filter upper %}{% for i in data.items %}{{ data.chunk }}{% endfor %}{% endfilter %}",
            "{% set captured %}{{ data.a }}{% endset %}",
            "{% macro m() %}x{% endmacro %}{{ m() }}",
            "{% call m() %}x{% endcall %}",
            "{% include 'en/sms.text' %}",
            "{% from 'x' import y %}",
        ] {
            let errors = definition(json!({"channels": {"sms": {"text": source}}}))
                .validate()
                .err()
                .unwrap_or_else(|| panic!("{source} was accepted"));
            assert!(errors[0].problem.contains("is not allowed"), "{source}: {errors:?}");
        }
        compiled(
            json!({"channels": {"sms": {"text": "{% set name = data.a | upper %}{{ name }}"}}}),
        );
        // Not an operator inside a string or plain text.
        compiled(json!({"channels": {"sms": {"text": "1 + 1 ~ {{ '*' }}"}}}));
        // No filter that multiplies, no range().
        for source in [
            "{{ data.a | replace('a', data.a) }}",
            "{{ range(10) }}",
            "{{ data.l | join(data.a) }}",
        ] {
            let template = compiled(json!({"channels": {"sms": {"text": source}}}));
            let data = json!({"a": "a", "l": [1, 2]});
            assert!(
                render(&template, Channel::Sms, None, data).is_err(),
                "{source}"
            );
        }
    }

    #[test]
    fn every_problem_names_its_field() {
        let errors = definition(json!({
            "default_locale": "english!",
            "channels": {
                "email": {"text": "{{ unclosed"},
                "fax": {"text": "x"},
                "sms": {"text": "ok", "html": "<p>no</p>"}
            },
            "locales": {
                "pt_BR": {"sms": {"text": "x"}},
                "pt": {"slack": {"text": "x"}, "sms": {"text": "a\u{0}b"}}
            }
        }))
        .validate()
        .err()
        .unwrap();
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "default_locale",
                "channels.email.subject",
                "channels.email.text",
                "channels.fax",
                "channels.sms.html",
                "locales.pt.slack",
                "locales.pt.sms.text",
                "locales.pt_BR",
            ],
            "{errors:?}"
        );
        assert!(
            errors[2].problem.starts_with("does not compile"),
            "{errors:?}"
        );
    }

    #[test]
    fn locale_tags() {
        for good in ["en", "pt-BR", "zh-Hant-TW", "es-419"] {
            assert_eq!(locale_problem(good), None, "{good}");
        }
        for bad in ["", "e", "english", "pt_BR", "pt-", "-BR", "pt-BRAZILIANO"] {
            assert!(locale_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(
            locale_candidates("zh-Hant-TW").collect::<Vec<_>>(),
            vec!["zh-Hant-TW", "zh-Hant", "zh"]
        );
    }
}
