//! The API's one error type and its one mapping to HTTP. Every error body has the shape
//! `{"error": {"code", "message", "details"}}`; 5xx causes are logged, never shown.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use herald_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client should wait after a 503.
const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("missing `Authorization: Bearer <api key>` header")]
    MissingApiKey,
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// A provider callback without a valid signature (docs/DESIGN.md, "Provider callbacks").
    #[error("the callback is not signed by the provider: {0}")]
    UnsignedCallback(&'static str),
    /// A well-signed provider callback whose body is not the provider's shape.
    #[error("the callback body is not the provider's shape: {0}")]
    MalformedCallback(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict { existing_id: uuid::Uuid },
    /// The tenant holds as many of something as it may (webhook subscriptions): a valid request
    /// that the tenant's state refuses until it deletes one.
    #[error("{what}")]
    LimitReached { what: String, limit: u64 },
    #[error("the notification is `{}` already: there is nothing left to cancel", status.as_str())]
    NotificationFinal {
        status: herald_domain::NotificationStatus,
    },
    #[error("the notification was cancelled: none of its deliveries is sent any more")]
    NotificationCancelled,
    #[error("the delivery is `{}`, not `failed`: only a failed delivery is replayed", status.as_str())]
    DeliveryNotFailed {
        status: herald_domain::DeliveryStatus,
    },
    #[error("the request body exceeds {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyReadTimeout { timeout_ms: u64 },
    #[error("the request body must be `application/json`")]
    UnsupportedMediaType,
    #[error("{0}; retry later")]
    Overloaded(&'static str),
    #[error("too many requests with unknown API keys from this client; retry later")]
    TooManyRequests,
    #[error("this client's request bodies in progress hold its whole share of the byte budget; retry later")]
    ClientBytesExhausted,
    #[error("too many of this tenant's reads are in flight; retry later")]
    TenantBusy,
    /// One export per tenant at a time (`GET /v1/notifications/export`).
    #[error("an export of this tenant's notifications is in progress; retry when it ends")]
    ExportInProgress,
    /// The request's `Accept` names no format the route answers in.
    #[error("the route answers in {0}; the request's Accept names none of them")]
    NotAcceptable(&'static str),
    #[error("this tenant submits more notifications per second than its limit; retry after {} ms", retry_after.as_millis())]
    TenantRateLimited { retry_after: std::time::Duration },
    #[error("this tenant's quota of {quota_per_day} notifications per day is used up ({used_today} today, and this request's do not fit in the rest); it resets at the next UTC midnight, in {} s", whole_seconds(*retry_after))]
    TenantQuotaExceeded {
        quota_per_day: u64,
        used_today: u64,
        retry_after: std::time::Duration,
    },
    #[error("the database refused this notification: {0}")]
    RefusedByDatabase(String),
    #[error("a dependency is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `malformed_json`, `validation_failed`, `invalid_query`,
    /// `unauthorized`, `invalid_signature`, `malformed_callback`, `not_found`,
    /// `method_not_allowed`, `idempotency_conflict`, `limit_reached`, `payload_too_large`, `unsupported_media_type`, `rate_limited`, `quota_exceeded`, `export_in_progress`, `not_acceptable`, `overloaded`, `unavailable`,
    /// `notification_final`, `notification_cancelled`, `delivery_not_failed`, `internal`.
    pub code: &'static str,
    pub message: String,
    /// `null`, or what the code says more: the offending fields (`validation_failed`), each
    /// item's result (a batch's `validation_failed`), or an object of named values
    /// (`retry_after_ms`, `quota_per_day` and `used_today`, `limit_bytes`, `existing_id`, `status`).
    #[schema(schema_with = error_details_schema)]
    pub details: serde_json::Value,
}

/// The schema of [`ErrorDetail::details`], as [`ApiError::details`] and the batch route fill it.
fn error_details_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{
        AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
    };
    use utoipa::openapi::Ref;
    let array_item = AnyOfBuilder::new()
        .item(Ref::from_schema_name("FieldError"))
        .item(Ref::from_schema_name("BatchItemResult"));
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)))
        .item(ArrayBuilder::new().items(array_item))
        .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object)))
        .into()
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::MissingApiKey | ApiError::InvalidApiKey => "unauthorized",
            ApiError::UnsignedCallback(_) => "invalid_signature",
            ApiError::MalformedCallback(_) => "malformed_callback",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::IdempotencyConflict { .. } => "idempotency_conflict",
            ApiError::LimitReached { .. } => "limit_reached",
            ApiError::NotificationFinal { .. } => "notification_final",
            ApiError::NotificationCancelled => "notification_cancelled",
            ApiError::DeliveryNotFailed { .. } => "delivery_not_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::BodyReadTimeout { .. } => "body_timeout",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::TooManyRequests
            | ApiError::TenantBusy
            | ApiError::TenantRateLimited { .. }
            | ApiError::ClientBytesExhausted => "rate_limited",
            ApiError::TenantQuotaExceeded { .. } => "quota_exceeded",
            ApiError::ExportInProgress => "export_in_progress",
            ApiError::NotAcceptable(_) => "not_acceptable",
            ApiError::RefusedByDatabase(_) => "validation_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn details(&self) -> serde_json::Value {
        match self {
            ApiError::Validation(errors) => serde_json::json!(errors),
            ApiError::LimitReached { limit, .. } => serde_json::json!({ "limit": limit }),
            ApiError::IdempotencyConflict { existing_id } => {
                serde_json::json!({ "existing_id": existing_id })
            }
            ApiError::PayloadTooLarge { limit_bytes } => {
                serde_json::json!({ "limit_bytes": limit_bytes })
            }
            ApiError::NotificationFinal { status } => serde_json::json!({ "status": status }),
            ApiError::TenantRateLimited { retry_after } => {
                serde_json::json!({ "retry_after_ms": retry_after.as_millis() as u64 })
            }
            ApiError::TenantQuotaExceeded {
                quota_per_day,
                used_today,
                retry_after,
            } => serde_json::json!({
                "retry_after_ms": retry_after.as_millis() as u64,
                "quota_per_day": quota_per_day,
                "used_today": used_today,
            }),
            ApiError::DeliveryNotFailed { status } => serde_json::json!({ "status": status }),
            ApiError::RefusedByDatabase(reason) => {
                serde_json::json!([{ "field": "$", "problem": format!("the database refused it: {reason}") }])
            }
            _ => serde_json::Value::Null,
        }
    }

    /// The wait this refusal knows exactly (a tenant's rate or quota), rather than the generic one.
    fn known_wait(&self) -> Option<std::time::Duration> {
        match self {
            ApiError::TenantRateLimited { retry_after }
            | ApiError::TenantQuotaExceeded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                details: self.details(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::InvalidQuery(_)
            | ApiError::MalformedCallback(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::RefusedByDatabase(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::TooManyRequests
            | ApiError::TenantBusy
            | ApiError::TenantRateLimited { .. }
            | ApiError::TenantQuotaExceeded { .. }
            | ApiError::ExportInProgress
            | ApiError::ClientBytesExhausted => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::MissingApiKey | ApiError::InvalidApiKey | ApiError::UnsignedCallback(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::IdempotencyConflict { .. }
            | ApiError::LimitReached { .. }
            | ApiError::NotificationFinal { .. }
            | ApiError::NotificationCancelled
            | ApiError::DeliveryNotFailed { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyReadTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "request failed: dependency unavailable")
            }
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(retry_after) = self.known_wait() {
            let seconds = whole_seconds(retry_after);
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        } else if matches!(
            self.status_code(),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS)));
        }
        if matches!(self, ApiError::MissingApiKey | ApiError::InvalidApiKey) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(self.body())
    }
}

/// A wait in whole seconds for `Retry-After`, rounded up (a client that waits that long is
/// admitted), and at least one.
fn whole_seconds(wait: std::time::Duration) -> u32 {
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

impl From<crate::tenant_limits::IngestRefusal> for ApiError {
    fn from(refusal: crate::tenant_limits::IngestRefusal) -> ApiError {
        use crate::tenant_limits::IngestRefusal;
        match refusal {
            IngestRefusal::RateLimited { retry_after } => {
                ApiError::TenantRateLimited { retry_after }
            }
            IngestRefusal::QuotaExceeded {
                quota_per_day,
                used_today,
                retry_after,
            } => ApiError::TenantQuotaExceeded {
                quota_per_day,
                used_today,
                retry_after,
            },
        }
    }
}

impl From<crate::ingest::IngestError> for ApiError {
    fn from(error: crate::ingest::IngestError) -> ApiError {
        use crate::ingest::IngestError;
        match error {
            IngestError::QueueFull => {
                ApiError::Overloaded("too many notifications are waiting to be stored")
            }
            IngestError::OutboxFull => {
                ApiError::Overloaded("the broker is behind and the outbox is full")
            }
            IngestError::BytesExhausted => {
                ApiError::Overloaded("too many request bytes are being processed")
            }
            IngestError::ClientBytesExhausted => ApiError::ClientBytesExhausted,
            IngestError::ShuttingDown => ApiError::Overloaded("the service is shutting down"),
            IngestError::CommitTimedOut => {
                ApiError::Unavailable(anyhow::anyhow!("no commit within the commit timeout"))
            }
        }
    }
}

impl From<herald_store::StoreError> for ApiError {
    fn from(error: herald_store::StoreError) -> ApiError {
        use herald_store::StoreError;
        // A database that cannot be reached, answers too slowly or cancels a slow statement is a
        // 503 the client may retry; anything else is a bug on our side.
        match error {
            StoreError::Unavailable(_) | StoreError::StatementTimeout => {
                ApiError::Unavailable(error.into())
            }
            StoreError::Refused { .. } | StoreError::Other(_) => ApiError::Internal(error.into()),
        }
    }
}
