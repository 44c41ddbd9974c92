//! `POST /v1/notifications` and `POST /v1/notifications/batch`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use std::collections::HashMap;

use herald_domain::{
    AcceptedNotification, FieldError, NotificationRequest, NotificationStatus,
    ValidatedNotification,
};
use herald_store::templates::ResolvedTemplate;
use herald_telemetry::traces::current_traceparent;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::ingest::CommitOutcome;
use crate::json_body::{parse_json_at, read_json_within_budget, JsonProblem};
use crate::state::AppState;

const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {
    pub id: Uuid,
    /// `accepted`, or `scheduled` when `scheduled_for` is in the future; a repeat with an
    /// idempotency key gets the original's current status.
    pub status: NotificationStatus,
}

/// The answer to one notification, or the error that stands for it.
fn accepted_or_error(outcome: CommitOutcome) -> Result<AcceptedResponse, ApiError> {
    match outcome {
        CommitOutcome::Created { id, status } | CommitOutcome::AlreadyAccepted { id, status } => {
            Ok(AcceptedResponse { id, status })
        }
        CommitOutcome::IdempotencyConflict { existing_id } => {
            Err(ApiError::IdempotencyConflict { existing_id })
        }
        CommitOutcome::Refused { reason } => Err(ApiError::RefusedByDatabase(reason)),
        CommitOutcome::Undetermined => Err(ApiError::Overloaded(
            "the idempotency key could not be resolved now",
        )),
        CommitOutcome::Unavailable { reason } => {
            Err(ApiError::Unavailable(anyhow::anyhow!(reason)))
        }
    }
}

/// Accepts one notification. `202` means it is stored durably and will be delivered.
#[utoipa::path(post, path = "/v1/notifications", tag = "notifications",
    request_body = NotificationRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "same as `idempotency_key`")),
    responses(
        (status = 202, body = AcceptedResponse),
        (status = 400, body = ErrorBody, description = "malformed JSON"),
        (status = 401, body = ErrorBody, description = "missing or invalid API key"),
        (status = 409, body = ErrorBody, description = "idempotency key reused with another request"),
        (status = 413, body = ErrorBody, description = "body over the size limit"),
        (status = 415, body = ErrorBody, description = "body is not JSON"),
        (status = 422, body = ErrorBody, description = "validation failed; details name each field"),
        (status = 429, body = ErrorBody, description = "`rate_limited`: the tenant is over its notifications per second (`details.retry_after_ms`), or too many unknown API keys from this client; `quota_exceeded`: the tenant's notifications per UTC day are used up until the next UTC midnight (`details.retry_after_ms`, `quota_per_day`, `used_today`); see Retry-After"),
        (status = 503, body = ErrorBody, description = "durability cannot be guaranteed now; see Retry-After"),
    ),
    security(("api_key" = [])))]
pub async fn create_notification(
    tenant: Tenant,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (notification_request, _bytes): (NotificationRequest, _) =
        read_json_within_budget(&request, payload, &state).await?;
    let now = Utc::now();
    let validated = notification_request
        .validate(
            state.limits.validation,
            idempotency_key_header(&request)?,
            now,
        )
        .map_err(ApiError::Validation)?;
    let references = resolve_references(&state, tenant.id, &[&validated]).await?;
    let (groups, template_version) = references.of(&validated).map_err(ApiError::Validation)?;
    admit_for_tenant(&state, tenant.id, 1).await?;
    let accepted = AcceptedNotification::new(tenant.id, validated, now, current_traceparent())
        .with_groups(groups)
        .with_template_version(template_version);
    let outcome = state
        .ingest
        .commit(vec![accepted])
        .await
        .map_err(ApiError::from)?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("commit returned no outcome")))?;
    Ok(HttpResponse::Accepted().json(accepted_or_error(outcome)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to 1000 notifications; each is validated on its own.
    #[schema(value_type = Vec<NotificationRequest>)]
    pub notifications: Vec<Box<RawValue>>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    pub accepted: usize,
    pub rejected: usize,
    /// One entry per submitted notification, in order.
    pub results: Vec<BatchItemResult>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchItemResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<NotificationStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl BatchItemResult {
    fn rejected(index: usize, error: ApiError) -> BatchItemResult {
        BatchItemResult {
            index,
            id: None,
            status: None,
            error: Some(error.body().error),
        }
    }
}

/// Accepts up to 1000 notifications in one request. Each gets its own result; an invalid one does
/// not keep the others from being accepted. `202` when at least one was accepted. An
/// `Idempotency-Key` header gives item *i* without its own key the key `"{header}:{i}"`.
#[utoipa::path(post, path = "/v1/notifications/batch", tag = "notifications",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "item i without its own key gets `{key}:{i}`")),
    responses(
        (status = 202, body = BatchResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "empty, over 1000 items, or every item invalid"),
        (status = 429, body = ErrorBody, description = "`rate_limited`: the tenant is over its notifications per second (every valid item counts; `details.retry_after_ms`), or too many unknown API keys from this client; `quota_exceeded`: the batch's valid items do not fit in what is left of the tenant's notifications per UTC day, until the next UTC midnight (`details.retry_after_ms`, `quota_per_day`, `used_today`); see Retry-After"),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn create_notification_batch(
    tenant: Tenant,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (batch, _bytes): (BatchRequest, _) =
        read_json_within_budget(&request, payload, &state).await?;
    let batch_key = idempotency_key_header(&request)?;
    let item_count = batch.notifications.len();
    if item_count == 0 {
        return Err(ApiError::Validation(vec![FieldError::new(
            "notifications",
            "must contain at least one notification",
        )]));
    }
    if item_count > state.limits.max_batch_items {
        return Err(ApiError::Validation(vec![FieldError::new(
            "notifications",
            format!(
                "at most {} notifications per batch, got {item_count}",
                state.limits.max_batch_items
            ),
        )]));
    }

    let now = Utc::now();
    let trace_parent = current_traceparent();
    let mut results: Vec<Option<BatchItemResult>> = (0..item_count).map(|_| None).collect();
    let mut valid_items = Vec::with_capacity(item_count);
    for (index, raw_item) in batch.notifications.iter().enumerate() {
        let path = format!("notifications[{index}]");
        let parsed: Result<NotificationRequest, ApiError> =
            parse_json_at(raw_item.get().as_bytes(), &path).map_err(|problem| match problem {
                JsonProblem::Syntax(message) => ApiError::MalformedJson(message),
                JsonProblem::Shape(field_error) => ApiError::Validation(vec![field_error]),
            });
        let validated = parsed.and_then(|mut item| {
            if item.idempotency_key.is_none() {
                item.idempotency_key = batch_key.map(|key| format!("{key}:{index}"));
            }
            item.validate(state.limits.validation, None, now)
                .map_err(|errors| ApiError::Validation(prefix_fields(&path, errors)))
        });
        match validated {
            Ok(validated) => valid_items.push((index, validated)),
            Err(error) => results[index] = Some(BatchItemResult::rejected(index, error)),
        }
    }

    let valid_notifications: Vec<&ValidatedNotification> =
        valid_items.iter().map(|(_, validated)| validated).collect();
    let references = resolve_references(&state, tenant.id, &valid_notifications).await?;
    let mut to_commit = Vec::with_capacity(valid_items.len());
    let mut to_commit_indexes = Vec::with_capacity(valid_items.len());
    for (index, validated) in valid_items {
        match references.of(&validated) {
            Ok((groups, template_version)) => {
                to_commit.push(
                    AcceptedNotification::new(tenant.id, validated, now, trace_parent.clone())
                        .with_groups(groups)
                        .with_template_version(template_version),
                );
                to_commit_indexes.push(index);
            }
            Err(errors) => {
                let error =
                    ApiError::Validation(prefix_fields(&format!("notifications[{index}]"), errors));
                results[index] = Some(BatchItemResult::rejected(index, error));
            }
        }
    }

    if !to_commit.is_empty() {
        admit_for_tenant(&state, tenant.id, to_commit.len()).await?;
        let outcomes = state
            .ingest
            .commit(to_commit)
            .await
            .map_err(ApiError::from)?;
        for (index, outcome) in to_commit_indexes.into_iter().zip(outcomes) {
            results[index] = Some(match accepted_or_error(outcome) {
                Ok(accepted) => BatchItemResult {
                    index,
                    id: Some(accepted.id),
                    status: Some(accepted.status),
                    error: None,
                },
                Err(error) => BatchItemResult::rejected(index, error),
            });
        }
    }

    let results: Vec<BatchItemResult> = results.into_iter().flatten().collect();
    debug_assert_eq!(
        results.len(),
        item_count,
        "every item has exactly one result"
    );
    let accepted = results.iter().filter(|result| result.id.is_some()).count();
    let response = BatchResponse {
        accepted,
        rejected: item_count - accepted,
        results,
    };
    if accepted == 0 {
        return Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "error": {
                "code": "validation_failed",
                "message": "no notification of the batch was accepted",
                "details": response.results,
            }
        })));
    }
    Ok(HttpResponse::Accepted().json(response))
}

/// What the notifications of a request name, resolved in one query per kind: the tenant's live
/// groups by their ids, and the template versions by (id, version asked for).
struct References {
    groups: HashMap<String, Uuid>,
    templates: HashMap<(String, Option<i32>), ResolvedTemplate>,
}

async fn resolve_references(
    state: &AppState,
    tenant_id: Uuid,
    notifications: &[&ValidatedNotification],
) -> Result<References, ApiError> {
    let mut named_groups: Vec<String> = notifications
        .iter()
        .flat_map(|notification| notification.group_ids.iter().cloned())
        .collect();
    named_groups.sort_unstable();
    named_groups.dedup();
    let groups = state
        .references
        .groups(&state.database, tenant_id, &named_groups)
        .await?;
    let mut named_templates: Vec<(String, Option<i32>)> = notifications
        .iter()
        .filter_map(|notification| notification.template.as_ref())
        .map(|template| (template.id.clone(), template.version))
        .collect();
    named_templates.sort_unstable();
    named_templates.dedup();
    let templates = state
        .references
        .templates(&state.database, tenant_id, &named_templates)
        .await?;
    Ok(References { groups, templates })
}

impl References {
    /// The groups a notification expands (in the order of its `group_ids`) and the template
    /// version it renders, or a problem naming each group the tenant does not have, a template
    /// (version) it does not have, or a channel the template has no part for.
    fn of(
        &self,
        notification: &ValidatedNotification,
    ) -> Result<(Vec<Uuid>, Option<i32>), Vec<FieldError>> {
        let mut groups = Vec::with_capacity(notification.group_ids.len());
        let mut problems = Vec::new();
        for (index, group_id) in notification.group_ids.iter().enumerate() {
            match self.groups.get(group_id) {
                Some(group) => groups.push(*group),
                None => problems.push(FieldError::new(
                    format!("group_ids[{index}]"),
                    format!("the tenant has no group `{group_id}` (PUT /v1/groups/{{group_id}} creates one)"),
                )),
            }
        }
        let mut template_version = None;
        if let Some(template) = &notification.template {
            match self.templates.get(&(template.id.clone(), template.version)) {
                None => problems.push(match template.version {
                    None => FieldError::new(
                        "template_id",
                        format!("the tenant has no template `{}` (PUT /v1/templates/{{template_id}} creates one)", template.id),
                    ),
                    Some(version) => FieldError::new(
                        "template_version",
                        format!("the tenant's template `{}` has no version {version}", template.id),
                    ),
                }),
                Some(resolved) => {
                    for (index, channel) in notification.channels.iter().enumerate() {
                        if !resolved.channels.contains(channel) {
                            problems.push(FieldError::new(
                                format!("channels[{index}]"),
                                format!(
                                    "template `{}` version {} has no `{}` part",
                                    template.id,
                                    resolved.version,
                                    channel.as_str()
                                ),
                            ));
                        }
                    }
                    template_version = Some(resolved.version);
                }
            }
        }
        if problems.is_empty() {
            Ok((groups, template_version))
        } else {
            Err(problems)
        }
    }
}

fn prefix_fields(prefix: &str, errors: Vec<FieldError>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|error| FieldError::new(format!("{prefix}.{}", error.field), error.problem))
        .collect()
}

fn idempotency_key_header(request: &HttpRequest) -> Result<Option<&str>, ApiError> {
    match request.headers().get(IDEMPOTENCY_KEY_HEADER) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            ApiError::Validation(vec![FieldError::new(
                "Idempotency-Key",
                "must be visible ASCII",
            )])
        }),
    }
}

/// The tenant's ingest limits (`tenant_limits.rs`, its rate and its daily quota): `notifications`
/// more now, or a 429 saying which and when. Counted after validation, so invalid items cost
/// nothing, and before the commit.
async fn admit_for_tenant(
    state: &AppState,
    tenant_id: Uuid,
    notifications: usize,
) -> Result<(), ApiError> {
    state
        .tenant_limits
        .admit(tenant_id, notifications)
        .await
        .map_err(ApiError::from)
}
