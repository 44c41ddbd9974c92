//! Templates (docs/DESIGN.md, "Templates"): `PUT /v1/templates/{template_id}` writes a new
//! version, `GET` reads the latest or `?version=`, `DELETE` deletes the template, `GET
//! /v1/templates` lists them, and `POST /v1/templates/{template_id}/preview` renders one for a
//! user without sending. A notification names a template in `template_id` (and optionally
//! `template_version`) instead of `content`.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_domain::templates::{
    locale_problem, template_id_problem, NotificationContext, RecipientContext, RenderContext,
    RenderedMessage, TemplateDefinition,
};
use herald_domain::unsubscribe::UnsubscribeToken;
use herald_domain::validation::{user_id_problem, MAX_DATA_BYTES};
use herald_domain::{Channel, FieldError};
use herald_store::tag_cache::Tag;
use herald_store::templates::{self, TemplateLimits, TemplateVersion, TemplateWrite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_json_within_budget;
use crate::read_permits::PermitUse;
use crate::routes::pagination::{
    keyset_page, page_size, parse_query, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateResponse {
    pub template_id: String,
    /// Versions count from 1; each `PUT` writes the next.
    pub version: i32,
    pub definition: TemplateDefinition,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<TemplateVersion> for TemplateResponse {
    type Error = ApiError;

    fn try_from(stored: TemplateVersion) -> Result<TemplateResponse, ApiError> {
        let definition = serde_json::from_value(stored.definition).map_err(|error| {
            ApiError::Internal(anyhow::anyhow!("a stored template does not parse: {error}"))
        })?;
        Ok(TemplateResponse {
            template_id: stored.template_id,
            version: stored.version,
            definition,
            created_at: stored.created_at,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateSummaryResponse {
    pub template_id: String,
    pub latest_version: i32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplatesPage {
    /// Live templates in id order.
    pub data: Vec<TemplateSummaryResponse>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Render as for this user: their locale, their id as `recipient.id`.
    #[serde(default)]
    #[schema(schema_with = preview_user_schema)]
    pub user_id: Option<String>,
    /// The locale to render in (over the user's).
    #[serde(default)]
    #[schema(example = "pt-BR", max_length = 35)]
    pub locale: Option<String>,
    /// The notification's `data`.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"name": "Ana"}))]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// Default the latest.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<i32>,
}

fn preview_user_schema() -> utoipa::openapi::schema::Schema {
    herald_domain::request::identifier_schema(herald_domain::validation::MAX_USER_ID_CHARS)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    pub template_id: String,
    pub version: i32,
    /// The message of each of the template's channels, as a delivery to the user would send it.
    #[schema(value_type = Object)]
    pub messages: BTreeMap<Channel, RenderedMessage>,
}

/// 404 for an id no template can have: reads and deletes answer "no such template" for it.
fn named_template(template_id: &str) -> Result<(), ApiError> {
    match template_id_problem(template_id) {
        Some(_) => Err(ApiError::NotFound("template")),
        None => Ok(()),
    }
}

/// Writes the template's next version (its first creates it). Every part is compiled first: a
/// syntax error, an unknown channel or locale, a NUL or a refused operator is a 422 naming it.
#[utoipa::path(put, path = "/v1/templates/{template_id}", tag = "templates",
    params(("template_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the template, 1 to 128 characters")),
    request_body = TemplateDefinition,
    responses(
        (status = 200, body = TemplateResponse, description = "a new version of an existing template"),
        (status = 201, body = TemplateResponse, description = "created (version 1)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`limit_reached`: the tenant has `templates.max_per_tenant` templates, or the template `templates.max_versions` versions"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn put_template(
    tenant: Tenant,
    template_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (definition, _bytes): (TemplateDefinition, _) =
        read_json_within_budget(&request, payload, &state).await?;
    if let Some(problem) = template_id_problem(&template_id) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "template_id",
            problem,
        )]));
    }
    // Compiling is CPU work bounded by the sources' size (512 KiB at most): off the event loop.
    let checked = definition.clone();
    let compiled = web::block(move || checked.validate())
        .await
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("template compile task: {error}")))?
        .map_err(ApiError::Validation)?;
    let channels = compiled.channels();
    let stored = serde_json::to_value(&definition)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("template to JSON: {error}")))?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let limits = TemplateLimits {
        max_per_tenant: state.templates.max_per_tenant,
        max_versions: state.templates.max_versions,
    };
    match templates::put_template(
        &state.database,
        tenant.id,
        &template_id,
        stored,
        &channels,
        limits,
    )
    .await?
    {
        TemplateWrite::Written { version, created } => {
            state
                .cache_invalidator
                .invalidate(&[Tag::template(tenant.id, &template_id)])
                .await;
            let response = TemplateResponse::try_from(version)?;
            if created {
                Ok(HttpResponse::Created().json(response))
            } else {
                Ok(HttpResponse::Ok().json(response))
            }
        }
        TemplateWrite::TooManyTemplates => Err(ApiError::LimitReached {
            what: format!(
                "a tenant may have at most {} templates (templates.max_per_tenant); delete one first",
                limits.max_per_tenant
            ),
            limit: limits.max_per_tenant,
        }),
        TemplateWrite::TooManyVersions => Err(ApiError::LimitReached {
            what: format!(
                "a template may have at most {} versions (templates.max_versions); write it under a new id",
                limits.max_versions
            ),
            limit: limits.max_versions as u64,
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionQuery {
    version: Option<String>,
}

/// `?version=`: a positive integer, or 400.
fn parse_version(text: Option<&str>) -> Result<Option<i32>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    match text.parse::<i32>() {
        Ok(version) if version >= 1 => Ok(Some(version)),
        _ => Err(ApiError::InvalidQuery(format!(
            "`version` must be a positive integer, got `{}`",
            text.escape_default()
        ))),
    }
}

/// A version of a template: the latest, or `?version=`.
#[utoipa::path(get, path = "/v1/templates/{template_id}", tag = "templates",
    params(
        ("template_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the template"),
        ("version" = Option<String>, Query, description = "a version number (default the latest)"),
    ),
    responses(
        (status = 200, body = TemplateResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn get_template(
    tenant: Tenant,
    template_id: web::Path<String>,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: VersionQuery = parse_query(&request)?;
    let version = parse_version(query.version.as_deref())?;
    named_template(&template_id)?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let stored = templates::find_template(&state.database, tenant.id, &template_id, version)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    Ok(HttpResponse::Ok().json(TemplateResponse::try_from(stored)?))
}

/// Deletes a template: new notifications may no longer name it; accepted ones still render their
/// version. A `PUT` of the same id later starts it again (at the next version number).
#[utoipa::path(delete, path = "/v1/templates/{template_id}", tag = "templates",
    params(("template_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the template")),
    responses(
        (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn delete_template(
    tenant: Tenant,
    template_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    named_template(&template_id)?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    if templates::delete_template(&state.database, tenant.id, &template_id).await? {
        state
            .cache_invalidator
            .invalidate(&[Tag::template(tenant.id, &template_id)])
            .await;
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("template"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// A page of the tenant's live templates, in id order.
#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    params(
        ("after" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
        ("limit" = Option<String>, Query, description = "templates per page, 1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, body = TemplatesPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn list_templates(
    tenant: Tenant,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = parse_query(&request)?;
    let limit = page_size(
        query.limit.as_deref(),
        "limit",
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
    )?;
    if let Some(after) = &query.after {
        if template_id_problem(after).is_some() {
            return Err(ApiError::InvalidQuery(
                "`after` is not a cursor this API returned".into(),
            ));
        }
    }
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let rows = templates::list_templates(
        &state.database,
        tenant.id,
        query.after.as_deref(),
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = keyset_page(rows, limit, |row| row.template_id.clone());
    let data = rows
        .into_iter()
        .map(|row| TemplateSummaryResponse {
            template_id: row.template_id,
            latest_version: row.latest_version,
            updated_at: row.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(TemplatesPage { data, next_cursor }))
}

/// Renders every channel of a template as a delivery to the user (or in the locale) would, and
/// sends nothing. What would fail a delivery (a missing variable, output over its bound, a render
/// out of fuel) is a 422 naming the channel and the variable.
#[utoipa::path(post, path = "/v1/templates/{template_id}/preview", tag = "templates",
    params(("template_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the template")),
    request_body = PreviewRequest,
    responses(
        (status = 200, body = PreviewResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such template or version"),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a field is invalid, the user unknown, or a part does not render"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn preview_template(
    tenant: Tenant,
    template_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (preview, _bytes): (PreviewRequest, _) =
        read_json_within_budget(&request, payload, &state).await?;
    named_template(&template_id)?;
    let mut problems = Vec::new();
    if let Some(problem) = preview.user_id.as_deref().and_then(user_id_problem) {
        problems.push(FieldError::new("user_id", problem));
    }
    if let Some(problem) = preview.locale.as_deref().and_then(locale_problem) {
        problems.push(FieldError::new("locale", problem));
    }
    if preview.version.is_some_and(|version| version < 1) {
        problems.push(FieldError::new("version", "must be at least 1"));
    }
    let data = preview.data.unwrap_or_default();
    let data_bytes = serde_json::to_vec(&data).map_or(0, |json| json.len());
    if data_bytes > MAX_DATA_BYTES {
        problems.push(FieldError::new(
            "data",
            format!("at most {MAX_DATA_BYTES} bytes as JSON, got {data_bytes}"),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let stored =
        templates::find_template(&state.database, tenant.id, &template_id, preview.version)
            .await?
            .ok_or(ApiError::NotFound("template"))?;
    let user_locale = match preview.user_id.as_deref() {
        None => None,
        Some(user_id) => {
            let user = herald_store::users::find_user(&state.database, tenant.id, user_id)
                .await?
                .ok_or_else(|| {
                    ApiError::Validation(vec![FieldError::new(
                        "user_id",
                        format!("the tenant has no user `{user_id}` (PUT /v1/users/{{user_id}})"),
                    )])
                })?;
            user.locale
        }
    };
    let locale = preview.locale.or(user_locale);
    // The link the recipient's emails carry (opting out of email: a preview has no category).
    let unsubscribe_url = match (&state.unsubscribe_links, &preview.user_id) {
        (Some(links), Some(user_id)) => {
            Some(links.url(&UnsubscribeToken::for_email(tenant.id, user_id, None)))
        }
        _ => None,
    };
    let recipient_id = preview.user_id.unwrap_or_default();
    let version = stored.version;
    let rendered = web::block(move || {
        render_every_channel(
            stored,
            &data,
            &recipient_id,
            locale,
            unsubscribe_url.as_deref(),
        )
    })
    .await
    .map_err(|error| ApiError::Internal(anyhow::anyhow!("template render task: {error}")))??;
    Ok(HttpResponse::Ok().json(PreviewResponse {
        template_id: template_id.into_inner(),
        version,
        messages: rendered,
    }))
}

/// Every channel's message; the problems of those that do not render, each naming its channel.
fn render_every_channel(
    stored: TemplateVersion,
    data: &serde_json::Map<String, serde_json::Value>,
    recipient_id: &str,
    locale: Option<String>,
    unsubscribe_url: Option<&str>,
) -> Result<BTreeMap<Channel, RenderedMessage>, ApiError> {
    let definition: TemplateDefinition = serde_json::from_value(stored.definition)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("a stored template: {error}")))?;
    let compiled = definition
        .validate()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a stored template no longer compiles")))?;
    let context = RenderContext {
        data,
        recipient: RecipientContext {
            id: recipient_id,
            locale: locale.as_deref(),
        },
        notification: NotificationContext {
            id: uuid::Uuid::nil(),
        },
        unsubscribe_url,
    };
    let mut messages = BTreeMap::new();
    let mut problems = Vec::new();
    for channel in compiled.channels() {
        match compiled.render(channel, locale.as_deref(), &context) {
            Ok(message) => {
                messages.insert(channel, message);
            }
            Err(error) => problems.push(FieldError::new(
                "data",
                format!("{}: {error}", channel.as_str()),
            )),
        }
    }
    if problems.is_empty() {
        Ok(messages)
    } else {
        Err(ApiError::Validation(problems))
    }
}
