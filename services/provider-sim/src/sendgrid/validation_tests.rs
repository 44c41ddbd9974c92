//! Unit tests of the Mail Send validation: which fields are reported, and what is extracted.

use serde_json::{json, Value};

use super::validation::validate_mail;

/// The shape Herald's worker sends: one personalization with one recipient and its custom args,
/// `from`, `subject` and one text/plain block.
fn valid_mail() -> Value {
    json!({
        "personalizations": [{
            "to": [{"email": "alex@example.com"}],
            "custom_args": {"herald_delivery_id": "d-1", "herald_notification_id": "n-1"}
        }],
        "from": {"email": "noreply@herald.example"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi Alex"}]
    })
}

fn fields_of(document: &Value) -> Vec<String> {
    validate_mail(document)
        .expect_err("the body should be invalid")
        .into_iter()
        .map(|error| error.field.unwrap_or_default())
        .collect()
}

#[test]
fn a_valid_mail_yields_recipients_subject_body_reference_and_custom_args() {
    let document = valid_mail();
    let mail = validate_mail(&document).unwrap();
    assert_eq!(mail.personalizations.len(), 1);
    let personalization = &mail.personalizations[0];
    assert_eq!(personalization.recipients, ["alex@example.com"]);
    assert_eq!(personalization.reference, Some("d-1"));
    assert_eq!(
        personalization.recorded_custom_args()["herald_notification_id"],
        "n-1"
    );
    assert_eq!(mail.subject, Some("Hello"));
    assert_eq!(mail.body, Some("Hi Alex"));
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
fn a_subject_in_every_personalization_waives_the_message_subject() {
    let mut document = valid_mail();
    document.as_object_mut().unwrap().remove("subject");
    assert_eq!(fields_of(&document), ["subject"]);
    document["personalizations"][0]["subject"] = json!("Per copy");
    let mail = validate_mail(&document).unwrap();
    assert_eq!(mail.personalizations[0].subject, Some("Per copy"));
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
}

/// SendGrid features Herald never sends are not modelled: a template does not stand in for
/// `content`, and the other members are ignored rather than checked.
#[test]
fn unmodelled_members_are_ignored_and_a_template_does_not_replace_content() {
    let mut document = valid_mail();
    let root = document.as_object_mut().unwrap();
    root.insert("send_at".into(), json!("soon"));
    root.insert("attachments".into(), json!(7));
    root.insert("custom_args".into(), json!({"herald_delivery_id": "top"}));
    let mail = validate_mail(&document).unwrap();
    assert_eq!(mail.personalizations[0].reference, Some("d-1"));

    document.as_object_mut().unwrap().remove("content");
    document["template_id"] = json!("d-0123456789abcdef");
    assert_eq!(fields_of(&document), ["content"]);
}

#[test]
fn custom_args_values_must_be_strings_and_are_bounded() {
    let mut document = valid_mail();
    document["personalizations"][0]["custom_args"] = json!({"herald_delivery_id": 7});
    assert_eq!(
        fields_of(&document),
        ["personalizations.0.custom_args.herald_delivery_id"]
    );
    document["personalizations"][0]["custom_args"] = json!("not an object");
    assert_eq!(fields_of(&document), ["personalizations.0.custom_args"]);
    document["personalizations"][0]["custom_args"] = json!({"big": "x".repeat(10_000)});
    assert_eq!(fields_of(&document), ["personalizations.0.custom_args"]);
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
fn a_body_that_is_not_an_object_is_refused() {
    assert_eq!(validate_mail(&json!([1, 2])).unwrap_err().len(), 1);
}

#[test]
fn headers_are_recorded_and_reserved_or_non_string_ones_refused() {
    let mut document = valid_mail();
    document["headers"] = json!({
        "List-Unsubscribe": "<https://herald.example/v1/unsubscribe/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"
    });
    let mail = validate_mail(&document).unwrap();
    assert_eq!(
        mail.headers["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    document["headers"] = json!({"Subject": "x", "X-Count": 3});
    assert_eq!(fields_of(&document), ["headers.Subject", "headers.X-Count"]);
    document["headers"] = json!(["List-Unsubscribe"]);
    assert_eq!(fields_of(&document), ["headers"]);
}
