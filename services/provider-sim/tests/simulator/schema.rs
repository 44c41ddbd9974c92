//! The simulator against the providers' official OpenAPI documents (in `shared/provider-specs`
//! beside the repository, or `HERALD_PROVIDER_SPECS_DIR`): the body the SendGrid tests send is
//! one the real API's schema accepts, and Twilio's 201 answer is a valid Message resource.

use std::path::PathBuf;

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};

use crate::helpers::{mail_with_reference, sms_form, spawn_simulator};

fn specs_directory() -> Option<PathBuf> {
    let directory = std::env::var_os("HERALD_PROVIDER_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/provider-specs")
        });
    if directory.is_dir() {
        return Some(directory);
    }
    eprintln!(
        "SKIPPED: provider specs not found at {}; set HERALD_PROVIDER_SPECS_DIR",
        directory.display()
    );
    None
}

fn load_spec(name: &str) -> Option<Value> {
    let path = specs_directory()?.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    Some(serde_json::from_str(&text).expect("the spec is JSON"))
}

/// A validator for the schema at `pointer` inside an OpenAPI `document`: the whole document is
/// the root, so its internal `$ref`s resolve, and a root `$ref` selects the schema.
fn validator_for(mut document: Value, pointer: &str, validate_formats: bool) -> Validator {
    document["$ref"] = json!(format!("#{pointer}"));
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(validate_formats)
        .build(&document)
        .expect("the schema compiles")
}

fn assert_valid(validator: &Validator, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
}

/// OpenAPI 3.0's `nullable: true` is not JSON Schema: turn `{"type": T, "nullable": true}` into
/// `{"type": [T, "null"]}`, and a nullable `$ref` into `anyOf`.
fn nullable_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(kind)) = object.get("type").cloned() {
                    object.insert("type".into(), json!([kind, "null"]));
                } else if let Some(reference) = object.remove("$ref") {
                    object.insert(
                        "anyOf".into(),
                        json!([{"$ref": reference}, {"type": "null"}]),
                    );
                }
            }
            object.values_mut().for_each(nullable_to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

#[tokio::test]
async fn the_mail_herald_sends_satisfies_sendgrids_request_schema_and_is_accepted() {
    let Some(spec) = load_spec("sendgrid_mail_v3.json") else {
        return;
    };
    let validator = validator_for(
        spec,
        "/components/requestBodies/PostMailSend/content/application~1json/schema",
        true,
    );
    let mail = mail_with_reference("schema-check");
    assert_valid(&validator, &mail);
    // The schema itself rejects what the simulator rejects for its required fields.
    let mut without_from = mail.clone();
    without_from.as_object_mut().unwrap().remove("from");
    assert!(!validator.is_valid(&without_from));

    let simulator = spawn_simulator().await;
    assert_eq!(simulator.send_mail(&mail).await.status(), 202);
    assert_eq!(simulator.send_mail(&without_from).await.status(), 400);
}

#[tokio::test]
async fn twilios_created_message_satisfies_the_message_resource_schema() {
    let Some(mut spec) = load_spec("twilio_api_v2010_messages.json") else {
        return;
    };
    let schema_properties =
        spec["components"]["schemas"]["api.v2010.account.message"]["properties"].clone();
    nullable_to_json_schema(&mut spec);
    let validator = validator_for(spec, "/components/schemas/api.v2010.account.message", false);

    let simulator = spawn_simulator().await;
    let response = simulator.send_sms(&sms_form("Schema check"), None).await;
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    assert_valid(&validator, &message);
    // Every property the schema declares is present, as in Twilio's own examples.
    let properties = schema_properties
        .as_object()
        .expect("the Message schema lists its properties");
    for property in properties.keys() {
        assert!(message.get(property).is_some(), "missing `{property}`");
    }
}
