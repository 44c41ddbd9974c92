//! Unit tests of the Mail Send validation: which fields are reported, and what is extracted.

use serde_json::{json, Value};

use super::validation::validate_mail;

const NOW: i64 = 1_750_000_000;

fn valid_mail() -> Value {
    json!({
        "personalizations": [{
            "to": [{"email": "alex@example.com", "name": "Alex"}],
            "custom_args": {"herald_delivery_id": "d-1"}
        }],
        "from": {"email": "noreply@herald.example"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi Alex"}]
    })
}

fn fields_of(document: &Value) -> Vec<String> {
    validate_mail(document, NOW)
        .expect_err("the body should be invalid")
        .into_iter()
        .map(|error| error.field.unwrap_or_default())
        .collect()
}

#[test]
fn a_valid_mail_yields_recipients_subject_body_and_reference() {
    let document = valid_mail();
    let mail = validate_mail(&document, NOW).unwrap();
    assert_eq!(mail.personalizations.len(), 1);
    let personalization = &mail.personalizations[0];
    assert_eq!(personalization.recipients, ["alex@example.com"]);
    assert_eq!(mail.reference_of(personalization), Some("d-1"));
    assert_eq!(mail.subject, Some("Hello"));
    assert_eq!(mail.body, Some("Hi Alex"));
}

#[test]
fn the_message_level_reference_applies_where_a_personalization_has_none() {
    let mut document = valid_mail();
    document["custom_args"] = json!({"herald_delivery_id": "top"});
    document["personalizations"] = json!([
        {"to": [{"email": "a@example.com"}], "custom_args": {"herald_delivery_id": "own"}},
        {"to": [{"email": "b@example.com"}]}
    ]);
    let mail = validate_mail(&document, NOW).unwrap();
    let references: Vec<_> = mail
        .personalizations
        .iter()
        .map(|personalization| mail.reference_of(personalization))
        .collect();
    assert_eq!(references, [Some("own"), Some("top")]);
}

#[test]
fn every_problem_is_reported_with_its_field() {
    let document = json!({
        "personalizations": [{"to": [{"email": "not-an-address"}, {"name": "no email"}]}],
        "content": [{"type": "", "value": "x"}]
    });
    assert_eq!(
        fields_of(&document),
        [
            "personalizations.0.to.0.email",
            "personalizations.0.to.1.email",
            "from.email",
            "subject",
            "content.0.type"
        ]
    );
}

#[test]
fn missing_or_empty_personalizations_and_to_are_reported() {
    let mut document = valid_mail();
    document["personalizations"] = json!([]);
    assert_eq!(fields_of(&document), ["personalizations"]);
    document["personalizations"] = json!([{"to": []}]);
    assert_eq!(fields_of(&document), ["personalizations.0.to"]);
    document.as_object_mut().unwrap().remove("personalizations");
    assert_eq!(fields_of(&document), ["personalizations"]);
    document.as_object_mut().unwrap().remove("subject");
    assert_eq!(fields_of(&document), ["personalizations", "subject"]);
}

#[test]
fn a_subject_in_every_personalization_or_a_template_waives_the_message_subject() {
    let mut document = valid_mail();
    document.as_object_mut().unwrap().remove("subject");
    assert_eq!(fields_of(&document), ["subject"]);
    document["personalizations"][0]["subject"] = json!("Per copy");
    let mail = validate_mail(&document, NOW).unwrap();
    assert_eq!(mail.personalizations[0].subject, Some("Per copy"));

    let mut templated = valid_mail();
    let root = templated.as_object_mut().unwrap();
    root.remove("subject");
    root.remove("content");
    root.insert("template_id".into(), json!("d-0123456789abcdef"));
    let mail = validate_mail(&templated, NOW).unwrap();
    assert_eq!(mail.body, None);
}

#[test]
fn content_must_be_a_non_empty_array_of_non_empty_type_and_value() {
    let mut document = valid_mail();
    document["content"] = json!([]);
    assert_eq!(fields_of(&document), ["content"]);
    document["content"] = json!([{"type": "text/plain", "value": ""}]);
    assert_eq!(fields_of(&document), ["content.0.value"]);
    document["content"] = json!("text");
    assert_eq!(fields_of(&document), ["content"]);
    document["content"] = json!([
        {"type": "text/html", "value": "<p>x</p>"},
        {"type": "text/plain", "value": "x"}
    ]);
    assert_eq!(fields_of(&document), ["content.1.type"]);
}

#[test]
fn custom_args_values_must_be_strings() {
    let mut document = valid_mail();
    document["personalizations"][0]["custom_args"] = json!({"herald_delivery_id": 7});
    assert_eq!(
        fields_of(&document),
        ["personalizations.0.custom_args.herald_delivery_id"]
    );
    let mut document = valid_mail();
    document["custom_args"] = json!("not an object");
    assert_eq!(fields_of(&document), ["custom_args"]);
}

#[test]
fn an_address_may_appear_once_across_to_cc_and_bcc() {
    let mut document = valid_mail();
    document["personalizations"][0]["bcc"] = json!([{"email": "ALEX@example.com"}]);
    assert_eq!(fields_of(&document), ["personalizations.0.bcc.0.email"]);
}

#[test]
fn recipient_limits_are_enforced() {
    let mut document = valid_mail();
    let many: Vec<Value> = (0..1001)
        .map(|number| json!({"email": format!("user{number}@example.com")}))
        .collect();
    document["personalizations"][0]["to"] = Value::Array(many);
    let fields = fields_of(&document);
    assert!(fields.contains(&"personalizations.0.to".to_owned()));
    assert!(fields.contains(&"personalizations".to_owned()));
}

#[test]
fn send_at_must_be_an_integer_at_most_72_hours_ahead() {
    let mut document = valid_mail();
    document["send_at"] = json!(NOW + 3600);
    assert!(validate_mail(&document, NOW).is_ok());
    document["send_at"] = json!(NOW + 73 * 3600);
    assert_eq!(fields_of(&document), ["send_at"]);
    document["send_at"] = json!("soon");
    assert_eq!(fields_of(&document), ["send_at"]);
}

#[test]
fn a_body_that_is_not_an_object_is_refused() {
    assert_eq!(validate_mail(&json!([1, 2]), NOW).unwrap_err().len(), 1);
}

#[test]
fn custom_args_merge_message_then_personalization_and_are_bounded() {
    let mut document = valid_mail();
    document["custom_args"] = json!({"herald_delivery_id": "top", "herald_notification_id": "n-1"});
    let mail = validate_mail(&document, NOW).unwrap();
    let merged = mail.custom_args_of(&mail.personalizations[0]);
    assert_eq!(
        merged["herald_delivery_id"], "d-1",
        "the personalization's wins"
    );
    assert_eq!(merged["herald_notification_id"], "n-1");

    document["personalizations"][0]["custom_args"] = json!({"big": "x".repeat(10_000)});
    assert_eq!(fields_of(&document), ["personalizations.0.custom_args"]);
}
