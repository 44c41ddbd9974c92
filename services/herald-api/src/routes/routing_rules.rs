//! A tenant's routing rules (docs/DESIGN.md, "Routing rules"): `GET` and `PUT /v1/routing-rules`,
//! the whole ordered set written at once as a new version. Notifications accepted from then on
//! carry that version; the workers evaluate it.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_domain::routing::{RuleSet, MAX_RULE_SET_VERSIONS};
use herald_domain::FieldError;
use herald_store::routing_rules::{self, RuleSetWrite, StoredRuleSet};
use herald_store::templates::resolve_templates;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_json_within_budget;
use crate::read_permits::PermitUse;
use crate::state::AppState;

/// The tenant's rules and their version (0 and no rules before the first `PUT`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetResponse {
    pub version: i32,
    #[schema(value_type = Vec<herald_domain::routing::Rule>)]
    pub rules: serde_json::Value,
    /// When the version was written; absent before the first `PUT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<StoredRuleSet> for RuleSetResponse {
    fn from(stored: StoredRuleSet) -> RuleSetResponse {
        RuleSetResponse {
            version: stored.version,
            rules: stored.rules["rules"].clone(),
            updated_at: Some(stored.created_at),
        }
    }
}

/// The tenant's current routing rules.
#[utoipa::path(get, path = "/v1/routing-rules", tag = "routing",
    responses(
        (status = 200, body = RuleSetResponse),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn get_routing_rules(
    tenant: Tenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let current = routing_rules::current_rule_set(&state.database, tenant.id).await?;
    Ok(HttpResponse::Ok().json(current.map_or(
        RuleSetResponse {
            version: 0,
            rules: serde_json::json!([]),
            updated_at: None,
        },
        RuleSetResponse::from,
    )))
}

/// Replaces the tenant's routing rules with a new version: tried in order on each notification's
/// `data`, the first whose conditions all hold chooses the channels its deliveries go to (its
/// deliveries on its other channels are `skipped`, the rule named) and, optionally, the template
/// they render (the latest version now, unless `template_version` names one). `{"rules": []}`
/// turns routing off. Notifications accepted before keep the version of their time.
#[utoipa::path(put, path = "/v1/routing-rules", tag = "routing",
    request_body = RuleSet,
    responses(
        (status = 200, body = RuleSetResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the tenant wrote its rules too many times (limit_reached)"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a problem with a rule, each naming its field (`rules[0].when[1].value`); a template that does not exist or has no part for one of the rule's channels"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn put_routing_rules(
    tenant: Tenant,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (mut rule_set, _bytes): (RuleSet, _) =
        read_json_within_budget(&request, payload, &state).await?;
    rule_set.compile().map_err(ApiError::Validation)?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    resolve_rule_templates(&state, tenant.id, &mut rule_set).await?;
    let rules = serde_json::to_value(&rule_set)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("a rule set as JSON: {error}")))?;
    match routing_rules::put_rule_set(&state.database, tenant.id, rules, MAX_RULE_SET_VERSIONS)
        .await?
    {
        RuleSetWrite::Written(stored) => Ok(HttpResponse::Ok().json(RuleSetResponse::from(stored))),
        RuleSetWrite::TooManyVersions => Err(ApiError::LimitReached {
            what: format!(
                "a tenant may write its routing rules at most {MAX_RULE_SET_VERSIONS} times"
            ),
            limit: MAX_RULE_SET_VERSIONS as u64,
        }),
    }
}

/// Fills in each rule's template version (the latest when none is named) and checks that the
/// template has a part for every channel the rule routes to: a 422 naming the rule otherwise.
async fn resolve_rule_templates(
    state: &AppState,
    tenant_id: uuid::Uuid,
    rule_set: &mut RuleSet,
) -> Result<(), ApiError> {
    let wanted: Vec<(String, Option<i32>)> = rule_set
        .rules
        .iter()
        .filter_map(|rule| Some((rule.template_id.clone()?, rule.template_version)))
        .collect();
    let resolved = resolve_templates(&state.database, tenant_id, &wanted).await?;
    let mut problems = Vec::new();
    for (index, rule) in rule_set.rules.iter_mut().enumerate() {
        let Some(template_id) = rule.template_id.clone() else {
            continue;
        };
        let Some(template) = resolved.get(&(template_id.clone(), rule.template_version)) else {
            let (field, problem) = match rule.template_version {
                None => (
                    "template_id",
                    format!("the tenant has no template `{template_id}`"),
                ),
                Some(version) => (
                    "template_version",
                    format!("template `{template_id}` has no version {version}"),
                ),
            };
            problems.push(FieldError::new(format!("rules[{index}].{field}"), problem));
            continue;
        };
        for (position, channel) in rule.channels.iter().enumerate() {
            if !template.channels.contains(channel) {
                problems.push(FieldError::new(
                    format!("rules[{index}].channels[{position}]"),
                    format!(
                        "template `{template_id}` version {} has no {} part",
                        template.version,
                        channel.as_str()
                    ),
                ));
            }
        }
        rule.template_version = Some(template.version);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(problems))
    }
}
