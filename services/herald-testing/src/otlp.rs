//! An in-process OTLP trace receiver, for tests of what Herald's processes export: both transports
//! of the specification, gRPC (`TraceService/Export`) and HTTP (`POST /v1/traces`, protobuf), on
//! ports of their own. It keeps every span it receives, flattened into `ReceivedSpan`s.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as ProtoValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

/// One received span, with ids in lowercase hex as W3C `traceparent` writes them.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The `service.name` of the resource that sent it.
    pub service_name: String,
    /// `grpc` or `http/protobuf`.
    pub transport: &'static str,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: SpanKind,
    /// Attribute values rendered as strings (ints and bools in their usual text form).
    pub attributes: HashMap<String, String>,
    /// (trace id, span id) of every link.
    pub links: Vec<(String, String)>,
    /// `true` when its status is `Error`.
    pub is_error: bool,
}

#[derive(Clone, Default)]
pub struct OtlpReceiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    pub grpc_endpoint: String,
    pub http_endpoint: String,
}

impl OtlpReceiver {
    /// Starts both transports on free loopback ports, on the current Tokio runtime.
    pub async fn start() -> OtlpReceiver {
        let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();

        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_endpoint = format!("http://{}", grpc_listener.local_addr().unwrap());
        let grpc_service = TraceServiceServer::new(GrpcReceiver {
            spans: spans.clone(),
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(grpc_service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                    grpc_listener,
                )),
        );

        let http_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let http_endpoint = format!("http://{}", http_listener.local_addr().unwrap());
        let http_spans = web::Data::new(spans.clone());
        let http_server = HttpServer::new(move || {
            App::new()
                .app_data(http_spans.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/v1/traces", web::post().to(receive_http))
        })
        .workers(1)
        .disable_signals()
        .listen(http_listener)
        .unwrap()
        .run();
        tokio::spawn(http_server);

        OtlpReceiver {
            spans,
            grpc_endpoint,
            http_endpoint,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `condition` holds over the received spans, or `timeout` passes; returns the
    /// spans at that moment.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if condition(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct GrpcReceiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.spans, request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn receive_http(
    body: web::Bytes,
    spans: web::Data<Arc<Mutex<Vec<ReceivedSpan>>>>,
) -> HttpResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            keep(&spans, request, "http/protobuf");
            HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .body(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(error) => HttpResponse::BadRequest().body(error.to_string()),
    }
}

fn keep(
    spans: &Mutex<Vec<ReceivedSpan>>,
    request: ExportTraceServiceRequest,
    transport: &'static str,
) {
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .and_then(|mut attributes| attributes.remove("service.name"))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    transport,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    attributes: attributes(&span.attributes),
                    links: span
                        .links
                        .iter()
                        .map(|link| (hex(&link.trace_id), hex(&link.span_id)))
                        .collect(),
                    is_error: span.status.is_some_and(|status| status.code == 2),
                    name: span.name,
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
}

fn attributes(key_values: &[KeyValue]) -> HashMap<String, String> {
    key_values
        .iter()
        .map(|key_value| {
            let value = match key_value
                .value
                .as_ref()
                .and_then(|value| value.value.as_ref())
            {
                Some(ProtoValue::StringValue(text)) => text.clone(),
                Some(ProtoValue::IntValue(number)) => number.to_string(),
                Some(ProtoValue::BoolValue(flag)) => flag.to_string(),
                Some(ProtoValue::DoubleValue(number)) => number.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (key_value.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
