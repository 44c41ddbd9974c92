use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_channels::{ChannelData, ChannelDataView};
use herald_domain::validation::{user_id_problem, MAX_USER_ID_CHARS};
use herald_domain::FieldError;
use herald_store::tag_cache::Tag;
use herald_store::users::{find_user, upsert_user, StoredUser, UserContact};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_json_within_budget;
use crate::read_permits::PermitUse;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    /// One `@`, a dotted domain, no whitespace (deliverability is the provider's business).
    #[schema(
        example = "ops@example.com",
        max_length = 254,
        pattern = r"^[^\s@]+@[^\s@.]([^\s@]*[^\s@.])?\.[^\s@.]([^\s@]*[^\s@.])?$"
    )]
    pub email: Option<String>,
    /// E.164, e.g. `+14155550100`.
    #[schema(example = "+14155550100", pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
    /// A BCP 47 language tag.
    #[schema(
        example = "en-US",
        max_length = 35,
        pattern = r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"
    )]
    pub locale: Option<String>,
    /// An IANA time zone name.
    #[schema(
        example = "Europe/Berlin",
        max_length = 64,
        pattern = r"^[A-Za-z0-9/_+-]+$"
    )]
    pub timezone: Option<String>,
    /// Contacts on the chat and webhook channels, each optional.
    #[serde(default, deserialize_with = "herald_domain::objects_only::object")]
    pub channel_data: ChannelData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub channel_data: ChannelDataView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredUser> for UserResponse {
    fn from(stored: &StoredUser) -> UserResponse {
        UserResponse {
            id: stored.id.clone(),
            email: stored.email.clone(),
            phone: stored.phone.clone(),
            locale: stored.locale.clone(),
            timezone: stored.timezone.clone(),
            channel_data: stored.channel_data.view(),
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        }
    }
}

/// Creates or replaces a recipient's contact data.
#[utoipa::path(put, path = "/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "the tenant's id for the user")),
    request_body = UserRequest,
    responses(
        (status = 200, body = UserResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn put_user(
    tenant: Tenant,
    user_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (user, _bytes): (UserRequest, _) =
        read_json_within_budget(&request, payload, &state).await?;
    let mut problems = user_problems(&user_id, &user);
    problems.extend(user.channel_data.problems(state.allow_private_networks));
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let contact = UserContact {
        email: user.email,
        phone: user.phone,
        locale: user.locale,
        timezone: user.timezone,
        channel_data: user.channel_data,
    };
    let stored = upsert_user(&state.database, tenant.id, &user_id, contact).await?;
    user_changed(&state, tenant.id, &user_id).await;
    Ok(HttpResponse::Ok().json(UserResponse::from(&stored)))
}

/// A recipient's contact data, without secrets.
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "the tenant's id for the user")),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn get_user(
    tenant: Tenant,
    user_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let stored = read_user(&tenant, &user_id, &state).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&stored)))
}

/// The tenant's user `user_id`, read under a read permit, or 404.
pub(crate) async fn read_user(
    tenant: &Tenant,
    user_id: &str,
    state: &AppState,
) -> Result<StoredUser, ApiError> {
    // An id no user can have (a NUL, which PostgreSQL cannot even compare) names no user.
    if user_id_problem(user_id).is_some() {
        return Err(ApiError::NotFound("user"));
    }
    let _read_permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    find_user(&state.database, tenant.id, user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))
}

/// After a change to a user (contacts or preferences) committed: the next notification to them
/// reads it, on every worker (docs/DESIGN.md, "The tag cache").
pub(crate) async fn user_changed(state: &AppState, tenant_id: Uuid, user_id: &str) {
    state
        .cache_invalidator
        .invalidate(&[Tag::user(tenant_id, user_id)])
        .await;
}

fn user_problems(user_id: &str, user: &UserRequest) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if user_id.is_empty() || user_id.chars().count() > MAX_USER_ID_CHARS {
        problems.push(FieldError::new(
            "user_id",
            format!("must be 1 to {MAX_USER_ID_CHARS} characters"),
        ));
    } else if let Some(problem) = user_id_problem(user_id) {
        problems.push(FieldError::new("user_id", problem));
    }
    if let Some(email) = &user.email {
        if !is_plausible_email(email) {
            problems.push(FieldError::new(
                "email",
                format!("`{email}` is not an email address"),
            ));
        }
    }
    if let Some(phone) = &user.phone {
        if !is_e164(phone) {
            problems.push(FieldError::new(
                "phone",
                format!("`{phone}` is not an E.164 number (`+` then 2 to 15 digits, no leading 0)"),
            ));
        }
    }
    if let Some(locale) = &user.locale {
        let well_formed = !locale.is_empty()
            && locale.len() <= 35
            && locale
                .split('-')
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
        if !well_formed {
            problems.push(FieldError::new(
                "locale",
                format!("`{locale}` is not a BCP 47 language tag"),
            ));
        }
    }
    if let Some(timezone) = &user.timezone {
        // One of the IANA database's names: quiet hours are kept in it.
        if let Some(problem) = herald_domain::preferences::timezone_problem(timezone) {
            problems.push(FieldError::new("timezone", problem));
        }
    }
    problems
}

/// E.164: `+`, a non-zero digit, then 1 to 14 more digits.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

/// The syntax check the providers apply: one `@`, a non-empty local part, a dotted domain, no
/// whitespace. Deliverability is the provider's business.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1415555010012345"));
        assert!(!is_e164("+1 415"));
    }

    #[test]
    fn email_syntax() {
        assert!(is_plausible_email("ops@example.com"));
        assert!(!is_plausible_email("ops@example"));
        assert!(!is_plausible_email("@example.com"));
        assert!(!is_plausible_email("a b@example.com"));
    }
}
