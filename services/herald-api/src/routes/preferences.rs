//! A recipient's preferences (docs/DESIGN.md, "Preferences"): `GET` and `PUT
//! /v1/users/{user_id}/preferences`. They live with the user (read with the recipient, cached with
//! it), so a change is written through to the recipient cache like the user's own: the very next
//! delivery honours it.

use actix_web::{web, HttpRequest, HttpResponse};
use herald_domain::preferences::Preferences;
use herald_domain::validation::user_id_problem;
use herald_store::users::set_preferences;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_json_within_budget;
use crate::read_permits::PermitUse;
use crate::routes::users::{read_user, user_changed};
use crate::state::AppState;

/// A user's preferences (`{}` fields empty when none were set).
#[utoipa::path(get, path = "/v1/users/{user_id}/preferences", tag = "users",
    params(("user_id" = String, Path, description = "the tenant's id for the user")),
    responses(
        (status = 200, body = Preferences),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn get_preferences(
    tenant: Tenant,
    user_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let stored = read_user(&tenant, &user_id, &state).await?;
    Ok(HttpResponse::Ok().json(&stored.preferences))
}

/// Replaces a user's preferences: channels and categories they opted out of (their deliveries
/// are `skipped`, the reason recorded) and quiet hours in their `timezone` (deliveries wait until
/// the quiet hours end; `high` ones do not, unless their tenant says otherwise).
#[utoipa::path(put, path = "/v1/users/{user_id}/preferences", tag = "users",
    params(("user_id" = String, Path, description = "the tenant's id for the user")),
    request_body = Preferences,
    responses(
        (status = 200, body = Preferences),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user (`PUT /v1/users/{user_id}` first)"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn put_preferences(
    tenant: Tenant,
    user_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (preferences, _bytes): (Preferences, _) =
        read_json_within_budget(&request, payload, &state).await?;
    if user_id_problem(&user_id).is_some() {
        return Err(ApiError::NotFound("user"));
    }
    preferences.validate().map_err(ApiError::Validation)?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let stored = set_preferences(&state.database, tenant.id, &user_id, &preferences, None)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    user_changed(&state, tenant.id, &user_id).await;
    Ok(HttpResponse::Ok().json(&stored.preferences))
}
