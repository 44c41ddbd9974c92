//! Groups of recipients (docs/DESIGN.md, "Groups: fan-out in the worker"): `PUT`, `GET` and
//! `DELETE /v1/groups/{group_id}`, members added (`POST`) and removed (`DELETE`) in pages at
//! `/v1/groups/{group_id}/members`, and listed there (`GET`) page by page. A notification names
//! groups in `group_ids`; the workers expand them into their members as of its acceptance.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_domain::validation::{group_id_problem, user_id_problem};
use herald_domain::FieldError;
use herald_store::groups::{self, GroupView, GroupWrite, MembersWrite};
use herald_store::tag_cache::Tag;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::{parse_json, read_body_within_budget, read_json_within_budget};
use crate::read_permits::PermitUse;
use crate::routes::pagination::{keyset_page, page_size, parse_query, DEFAULT_PAGE_SIZE};
use crate::state::AppState;

/// Most members one page of `GET /v1/groups/{group_id}/members` lists.
const MAX_MEMBERS_PAGE: u64 = 1000;
/// Members per add or remove request in the document: `groups.page_size`'s default.
const DEFAULT_MEMBERS_PER_REQUEST: usize = 1000;
/// Most characters of a group's name.
const MAX_NAME_CHARS: usize = 256;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    /// A name for people; the group is addressed by its id.
    #[schema(
        example = "On-call engineers",
        max_length = 256,
        pattern = r"^[^\x00]*$"
    )]
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupResponse {
    /// The tenant's id for the group (the path's `group_id`).
    pub id: String,
    pub name: Option<String>,
    /// Its current members.
    pub member_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<GroupView> for GroupResponse {
    fn from(view: GroupView) -> GroupResponse {
        GroupResponse {
            id: view.id,
            name: view.name,
            member_count: view.member_count,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersRequest {
    /// Distinct user ids, 1 to `groups.page_size` (1,000 by default) per request.
    #[schema(schema_with = member_ids_schema)]
    pub user_ids: Vec<String>,
}

/// `user_ids` of a members request: 1 to 1,000 distinct ids (the default `groups.page_size`) of 1
/// to 128 characters, none a control character.
fn member_ids_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(
            herald_domain::request::identifier_schema(herald_domain::validation::MAX_USER_ID_CHARS),
        ))
        .min_items(Some(1))
        .max_items(Some(DEFAULT_MEMBERS_PER_REQUEST))
        .unique_items(true)
        .examples([serde_json::json!(["u-1", "u-2"])])
        .into()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembersChanged {
    /// Members added (or removed) by this request; those that already were (or were not) members
    /// are not counted.
    pub changed: u64,
    pub member_count: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembersPage {
    /// Current members in id order.
    pub data: Vec<String>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// 404 for an id no group can have (empty, too long, a control character): reads and deletes
/// answer "no such group" for it, as for any id the tenant did not create.
fn named_group(group_id: &str) -> Result<(), ApiError> {
    match group_id_problem(group_id) {
        Some(_) => Err(ApiError::NotFound("group")),
        None => Ok(()),
    }
}

/// Creates a group or renames it.
#[utoipa::path(put, path = "/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the group, 1 to 128 characters")),
    request_body = GroupRequest,
    responses(
        (status = 200, body = GroupResponse, description = "renamed"),
        (status = 201, body = GroupResponse, description = "created"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the tenant has `groups.max_per_tenant` groups (`limit_reached`)"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn put_group(
    tenant: Tenant,
    group_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (group, _bytes): (GroupRequest, _) =
        read_json_within_budget(&request, payload, &state).await?;
    let mut problems = Vec::new();
    if let Some(problem) = group_id_problem(&group_id) {
        problems.push(FieldError::new("group_id", problem));
    }
    if let Some(name) = &group.name {
        if name.chars().count() > MAX_NAME_CHARS || name.contains('\u{0}') {
            problems.push(FieldError::new(
                "name",
                format!("at most {MAX_NAME_CHARS} characters, without NUL"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    // A short transaction holding a connection: bounded with the reads, so commits keep theirs.
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let max_per_tenant = state.groups.max_per_tenant;
    match groups::put_group(
        &state.database,
        tenant.id,
        &group_id,
        group.name.as_deref(),
        max_per_tenant,
    )
    .await?
    {
        GroupWrite::Created(view) => {
            // The id may have named a group deleted a moment ago.
            state
                .cache_invalidator
                .invalidate(&[Tag::group(tenant.id, &group_id)])
                .await;
            Ok(HttpResponse::Created().json(GroupResponse::from(view)))
        }
        GroupWrite::Updated(view) => Ok(HttpResponse::Ok().json(GroupResponse::from(view))),
        GroupWrite::TooManyGroups => Err(ApiError::LimitReached {
            what: format!(
                "a tenant may have at most {max_per_tenant} groups (groups.max_per_tenant); \
                 delete one first"
            ),
            limit: max_per_tenant,
        }),
    }
}

/// A group and its member count.
#[utoipa::path(get, path = "/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the group")),
    responses(
        (status = 200, body = GroupResponse),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn get_group(
    tenant: Tenant,
    group_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    named_group(&group_id)?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let group = groups::find_group(&state.database, tenant.id, &group_id)
        .await?
        .ok_or(ApiError::NotFound("group"))?;
    Ok(HttpResponse::Ok().json(GroupResponse::from(group)))
}

/// Deletes a group. Notifications accepted before still reach its members of their time; its id
/// may name a new group at once.
#[utoipa::path(delete, path = "/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the group")),
    responses(
        (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn delete_group(
    tenant: Tenant,
    group_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    named_group(&group_id)?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    if groups::delete_group(&state.database, tenant.id, &group_id).await? {
        state
            .cache_invalidator
            .invalidate(&[Tag::group(tenant.id, &group_id)])
            .await;
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("group"))
    }
}

/// A members request's valid members, and the read permit its one short transaction holds (it
/// takes a connection like a read, so it is bounded with the reads and commits keep theirs).
async fn members_request(
    tenant: &Tenant,
    group_id: &str,
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Vec<String>, crate::read_permits::ReadPermit), ApiError> {
    let (body, _bytes) = read_body_within_budget(request, payload, state).await?;
    if let Some(problem) = group_id_problem(group_id) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "group_id", problem,
        )]));
    }
    let members = members_of(parse_json(&body)?, state.groups.page_size)?;
    let permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    Ok((members, permit))
}

/// The request's members, checked: 1 to `page_size` distinct valid user ids.
fn members_of(request: MembersRequest, page_size: usize) -> Result<Vec<String>, ApiError> {
    let mut problems = Vec::new();
    if request.user_ids.is_empty() || request.user_ids.len() > page_size {
        problems.push(FieldError::new(
            "user_ids",
            format!(
                "must list 1 to {page_size} members per request (groups.page_size), got {}",
                request.user_ids.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(request.user_ids.len());
    for (index, user_id) in request.user_ids.iter().enumerate() {
        if let Some(problem) = user_id_problem(user_id) {
            problems.push(FieldError::new(format!("user_ids[{index}]"), problem));
        } else if !seen.insert(user_id.as_str()) {
            problems.push(FieldError::new(
                format!("user_ids[{index}]"),
                format!("`{user_id}` is listed twice"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(request.user_ids)
    } else {
        Err(ApiError::Validation(problems))
    }
}

fn members_changed(write: MembersWrite, max_members: u64) -> Result<HttpResponse, ApiError> {
    match write {
        MembersWrite::Changed {
            changed,
            member_count,
        } => Ok(HttpResponse::Ok().json(MembersChanged {
            changed,
            member_count,
        })),
        MembersWrite::TooManyMembers { member_count } => Err(ApiError::LimitReached {
            what: format!(
                "a group may have at most {max_members} members (groups.max_members); it has \
                 {member_count}, and this request's new members do not fit: none was added"
            ),
            limit: max_members,
        }),
        MembersWrite::NoSuchGroup => Err(ApiError::NotFound("group")),
    }
}

/// Adds members (up to `groups.page_size` per request; those already members are left as they
/// are). Notifications accepted from now on reach them.
#[utoipa::path(post, path = "/v1/groups/{group_id}/members", tag = "groups",
    params(("group_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the group")),
    request_body = MembersRequest,
    responses(
        (status = 200, body = MembersChanged),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the group would pass `groups.max_members` (`limit_reached`); nothing was added"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn add_members(
    tenant: Tenant,
    group_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (members, _permit) = members_request(&tenant, &group_id, &request, payload, &state).await?;
    let max_members = state.groups.max_members;
    let write =
        groups::add_members(&state.database, tenant.id, &group_id, &members, max_members).await?;
    members_changed(write, max_members)
}

/// Removes members (up to `groups.page_size` per request; ids that are not members are ignored).
/// Notifications accepted before still reach them.
#[utoipa::path(delete, path = "/v1/groups/{group_id}/members", tag = "groups",
    params(("group_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the group")),
    request_body = MembersRequest,
    responses(
        (status = 200, body = MembersChanged),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn remove_members(
    tenant: Tenant,
    group_id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (members, _permit) = members_request(&tenant, &group_id, &request, payload, &state).await?;
    let write = groups::remove_members(&state.database, tenant.id, &group_id, &members).await?;
    members_changed(write, state.groups.max_members)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// A page of the group's current members in id order.
#[utoipa::path(get, path = "/v1/groups/{group_id}/members", tag = "groups",
    params(
        ("group_id" = String, Path, min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "the tenant's id for the group"),
        ("after" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
        ("limit" = Option<String>, Query, description = "members per page, 1 to 1000 (default 50)"),
    ),
    responses(
        (status = 200, body = MembersPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn list_members(
    tenant: Tenant,
    group_id: web::Path<String>,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: MembersQuery = parse_query(&request)?;
    let limit = page_size(
        query.limit.as_deref(),
        "limit",
        DEFAULT_PAGE_SIZE,
        MAX_MEMBERS_PAGE,
    )?;
    named_group(&group_id)?;
    if let Some(after) = &query.after {
        // A cursor this API gave is a member's id; another could not be stored (a NUL).
        if user_id_problem(after).is_some() {
            return Err(ApiError::InvalidQuery(
                "`after` is not a cursor this API returned".into(),
            ));
        }
    }
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let members = groups::list_members(
        &state.database,
        tenant.id,
        &group_id,
        query.after.as_deref(),
        limit + 1,
    )
    .await?
    .ok_or(ApiError::NotFound("group"))?;
    let (members, next_cursor) = keyset_page(members, limit, |member| member.clone());
    Ok(HttpResponse::Ok().json(MembersPage {
        data: members,
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_members_per_request_is_the_configured_default() {
        let settings = herald_config::Settings::load_with_environment(None, Vec::new()).unwrap();
        assert_eq!(settings.groups.page_size, DEFAULT_MEMBERS_PER_REQUEST);
    }
}
