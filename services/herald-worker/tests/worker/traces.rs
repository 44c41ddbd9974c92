//! One notification, one trace: the API's request span, the group commit that stored it (linked),
//! its publication to Kafka, the worker's processing of its record and the provider call, exported
//! over both OTLP transports (the API over gRPC, the worker over HTTP/protobuf) to an in-process
//! receiver. The context crosses Kafka in a record header.

use std::time::Duration;

use herald_testing::otlp::{OtlpReceiver, ReceivedSpan, SpanKind};

use opentelemetry_semantic_conventions::attribute as semconv;

use crate::helpers::*;

/// The caller's trace, which the API continues.
const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

fn otel_environment(
    endpoint: &str,
    protocol: &str,
    service_name: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        ("OTEL_SERVICE_NAME", service_name.to_owned()),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        // Quiet logs must not mean no traces.
        ("RUST_LOG", "warn".to_owned()),
    ]
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    matches: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|span| matches(span)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {what}, found {found:#?}"
    );
    found[0]
}

fn attribute<'a>(span: &'a ReceivedSpan, key: &str) -> &'a str {
    span.attributes.get(key).unwrap_or_else(|| {
        panic!(
            "{} has no attribute {key}: {:?}",
            span.name, span.attributes
        )
    })
}

#[tokio::test]
async fn a_notification_is_one_trace_across_kafka_with_the_context_in_a_record_header() {
    let receiver = OtlpReceiver::start().await;
    let mut stack = prepare_stack(None, None, |_| {}).await;
    let api_port = free_port();
    let _api = api_process_with(
        &stack.settings,
        api_port,
        &otel_environment(&receiver.grpc_endpoint, "grpc", "herald-api-under-test"),
    );
    let metrics_port = free_port();
    let _worker = worker_process_with(
        &stack.settings,
        metrics_port,
        &otel_environment(
            &receiver.http_endpoint,
            "http/protobuf",
            "herald-worker-under-test",
        ),
    );
    wait_for_port(api_port).await;
    stack.api = format!("http://127.0.0.1:{api_port}");
    wait_until_ready(metrics_port).await;

    stack
        .put_user("traced", serde_json::json!({"email": "traced@example.com"}))
        .await;
    let response = stack
        .client
        .post(format!("{}/v1/notifications", stack.api))
        .bearer_auth(&stack.api_key)
        .header(
            "traceparent",
            format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"),
        )
        .json(&alert(&["traced"], &["email"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let notification_id = response.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let final_state = stack
        .wait_until_final(&notification_id, Duration::from_secs(60))
        .await;
    assert_eq!(final_state["status"], "delivered", "{final_state}");

    let spans = receiver
        .wait_for(Duration::from_secs(30), |spans| {
            spans.iter().any(|span| span.kind == SpanKind::Client)
                && spans
                    .iter()
                    .any(|span| span.name.starts_with("herald.commit_batch"))
        })
        .await;
    let in_trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == CALLER_TRACE_ID)
        .cloned()
        .collect();

    // The API: its server span continues the caller's trace.
    let request = one(&in_trace, "request span", |span| {
        span.kind == SpanKind::Server
    });
    assert_eq!(request.parent_span_id, CALLER_SPAN_ID);
    assert_eq!(request.service_name, "herald-api-under-test");
    assert_eq!(request.transport, "grpc");
    assert_eq!(attribute(request, semconv::HTTP_ROUTE), "/v1/notifications");
    assert_eq!(attribute(request, semconv::HTTP_REQUEST_METHOD), "POST");
    assert_eq!(
        attribute(request, semconv::HTTP_RESPONSE_STATUS_CODE),
        "202"
    );
    assert_eq!(attribute(request, semconv::URL_PATH), "/v1/notifications");
    assert_eq!(request.name, "POST /v1/notifications");

    // The group commit serves many traces: a span of its own, linked to the request.
    let commit = one(&spans, "commit batch span", |span| {
        span.name == "herald.commit_batch"
            && span
                .links
                .contains(&(CALLER_TRACE_ID.to_owned(), request.span_id.clone()))
    });
    assert_ne!(commit.trace_id, CALLER_TRACE_ID);

    // The publication: a producer span, child of the request.
    let topic = &stack.settings.kafka.topic;
    let publication = one(&in_trace, "producer span", |span| {
        span.kind == SpanKind::Producer
    });
    assert_eq!(publication.parent_span_id, request.span_id);
    assert_eq!(publication.name, format!("send {topic}"));
    assert_eq!(attribute(publication, semconv::MESSAGING_SYSTEM), "kafka");
    assert_eq!(
        attribute(publication, semconv::MESSAGING_OPERATION_TYPE),
        "send"
    );
    assert_eq!(
        attribute(publication, semconv::MESSAGING_DESTINATION_NAME),
        topic
    );

    // Across Kafka: the worker's record span is the publication's child.
    let record = one(&in_trace, "record span", |span| {
        span.kind == SpanKind::Consumer && span.parent_span_id == publication.span_id
    });
    assert_eq!(record.service_name, "herald-worker-under-test");
    assert_eq!(record.transport, "http/protobuf");
    assert_eq!(record.name, format!("process {topic}"));
    assert_eq!(
        attribute(record, semconv::MESSAGING_OPERATION_TYPE),
        "process"
    );
    assert_eq!(
        attribute(record, semconv::MESSAGING_DESTINATION_NAME),
        topic
    );
    assert_eq!(
        attribute(record, semconv::MESSAGING_CONSUMER_GROUP_NAME),
        stack.settings.worker.group_id
    );
    let partition: i32 = attribute(record, semconv::MESSAGING_DESTINATION_PARTITION_ID)
        .parse()
        .unwrap();
    assert!((0..stack.settings.kafka.partitions).contains(&partition));
    assert!(
        attribute(record, semconv::MESSAGING_KAFKA_OFFSET)
            .parse::<i64>()
            .unwrap()
            >= 0
    );

    // The batch it was admitted in: its own trace, linked to the record's producer and the record.
    let batch = one(&spans, "batch span", |span| {
        span.kind == SpanKind::Consumer
            && span
                .links
                .contains(&(CALLER_TRACE_ID.to_owned(), publication.span_id.clone()))
    });
    assert!(record
        .links
        .contains(&(batch.trace_id.clone(), batch.span_id.clone())));
    assert_eq!(
        attribute(batch, semconv::MESSAGING_BATCH_MESSAGE_COUNT),
        "1"
    );

    // The provider call: a client span, child of the record's.
    let call = one(&in_trace, "provider call span", |span| {
        span.kind == SpanKind::Client
    });
    assert_eq!(call.parent_span_id, record.span_id);
    assert_eq!(call.service_name, "herald-worker-under-test");
    assert_eq!(attribute(call, semconv::HTTP_REQUEST_METHOD), "POST");
    assert_eq!(attribute(call, semconv::HTTP_RESPONSE_STATUS_CODE), "202");
    assert_eq!(attribute(call, semconv::SERVER_ADDRESS), "127.0.0.1");
    assert_eq!(
        attribute(call, semconv::URL_FULL),
        format!("{}/v3/mail/send", stack.simulator)
    );
    assert_eq!(attribute(call, "herald.provider"), "sendgrid");
    assert!(!call.is_error);
}
