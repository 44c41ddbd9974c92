//! Tenants' templates and their immutable versions (docs/DESIGN.md, "Templates").
//!
//! `template_heads` has one row per template: every write of a version locks it first, so version
//! numbers are taken in order across replicas. A new template locks its tenant's row before
//! counting, so two creations cannot both pass `max_per_tenant`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use herald_domain::Channel;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, Finish, StoreError};
use crate::statement;

/// A template version as the API shows it.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct TemplateVersion {
    pub template_id: String,
    pub version: i32,
    pub definition: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A live template in the tenant's list.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct TemplateSummary {
    pub template_id: String,
    pub latest_version: i32,
    pub updated_at: DateTime<Utc>,
}

/// What writing a version came to.
#[derive(Debug)]
pub enum TemplateWrite {
    /// `created` is true for the first version of a template (or the first since its delete).
    Written {
        version: TemplateVersion,
        created: bool,
    },
    TooManyTemplates,
    TooManyVersions,
}

/// The bounds of one tenant's templates.
#[derive(Debug, Clone, Copy)]
pub struct TemplateLimits {
    pub max_per_tenant: u64,
    pub max_versions: i32,
}

#[derive(FromQueryResult)]
struct Head {
    latest_version: i32,
    deleted: bool,
}

const LOCK_HEAD: &str = "SELECT latest_version, deleted FROM template_heads \
                         WHERE tenant_id = $1 AND template_id = $2 FOR UPDATE";

/// Writes `definition` (already validated) as the next version of the tenant's template
/// `template_id`.
pub async fn put_template(
    database: &Database,
    tenant_id: Uuid,
    template_id: &str,
    definition: serde_json::Value,
    channels: &[Channel],
    limits: TemplateLimits,
) -> Result<TemplateWrite, StoreError> {
    let channel_names: Vec<String> = channels
        .iter()
        .map(|channel| channel.as_str().to_owned())
        .collect();
    database
        .transaction("templates.put", async |transaction| {
            let key = [Value::from(tenant_id), Value::from(template_id)];
            let mut head = Head::find_by_statement(statement(LOCK_HEAD, key.clone()))
                .one(transaction)
                .await?;
            if head.as_ref().is_none_or(|head| head.deleted) {
                // A template (re)created: counted against the tenant's bound, under its row's lock.
                transaction
                    .execute(statement(
                        "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
                        [Value::from(tenant_id)],
                    ))
                    .await?;
                head = Head::find_by_statement(statement(LOCK_HEAD, key.clone()))
                    .one(transaction)
                    .await?;
                #[derive(FromQueryResult)]
                struct Count {
                    count: i64,
                }
                let live = Count::find_by_statement(statement(
                    "SELECT count(*)::bigint AS count FROM template_heads \
                     WHERE tenant_id = $1 AND NOT deleted",
                    [Value::from(tenant_id)],
                ))
                .one(transaction)
                .await?
                .map_or(0, |row| row.count);
                let recreating_a_live_one = head.as_ref().is_some_and(|head| !head.deleted);
                if !recreating_a_live_one && live >= limits.max_per_tenant as i64 {
                    return Ok((TemplateWrite::TooManyTemplates, Finish::RollBack));
                }
            }
            let created = head.as_ref().is_none_or(|head| head.deleted);
            let next_version = head.as_ref().map_or(1, |head| head.latest_version + 1);
            if next_version > limits.max_versions {
                return Ok((TemplateWrite::TooManyVersions, Finish::RollBack));
            }
            transaction
                .execute(statement(
                    "INSERT INTO template_heads (tenant_id, template_id, latest_version) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, template_id) DO UPDATE \
                     SET latest_version = EXCLUDED.latest_version, deleted = false, updated_at = now()",
                    [
                        Value::from(tenant_id),
                        Value::from(template_id),
                        Value::from(next_version),
                    ],
                ))
                .await?;
            let version = TemplateVersion::find_by_statement(statement(
                "INSERT INTO templates (tenant_id, template_id, version, definition, channels) \
                 VALUES ($1, $2, $3, $4, $5::text[]::channel[]) \
                 RETURNING template_id, version, definition, created_at",
                [
                    Value::from(tenant_id),
                    Value::from(template_id),
                    Value::from(next_version),
                    Value::from(definition.clone()),
                    Value::from(channel_names.clone()),
                ],
            ))
            .one(transaction)
            .await?
            .ok_or(DbErr::RecordNotInserted)?;
            Ok((TemplateWrite::Written { version, created }, Finish::Commit))
        })
        .await
}

/// A version of the tenant's live template: `version`, or the latest.
pub async fn find_template(
    database: &Database,
    tenant_id: Uuid,
    template_id: &str,
    version: Option<i32>,
) -> Result<Option<TemplateVersion>, StoreError> {
    database
        .run(
            "templates.find",
            TemplateVersion::find_by_statement(statement(
                "SELECT t.template_id, t.version, t.definition, t.created_at \
                 FROM template_heads h JOIN templates t \
                   ON t.tenant_id = h.tenant_id AND t.template_id = h.template_id \
                 WHERE h.tenant_id = $1 AND h.template_id = $2 AND NOT h.deleted \
                   AND t.version = coalesce($3, h.latest_version)",
                [
                    Value::from(tenant_id),
                    Value::from(template_id),
                    Value::from(version),
                ],
            ))
            .one(database.connection()),
        )
        .await
}

/// A version as stored, deleted or not: what an accepted notification renders.
pub async fn load_version(
    database: &Database,
    tenant_id: Uuid,
    template_id: &str,
    version: i32,
) -> Result<Option<serde_json::Value>, StoreError> {
    #[derive(FromQueryResult)]
    struct Definition {
        definition: serde_json::Value,
    }
    let row = database
        .run(
            "templates.load_version",
            Definition::find_by_statement(statement(
                "SELECT definition FROM templates \
                 WHERE tenant_id = $1 AND template_id = $2 AND version = $3",
                [
                    Value::from(tenant_id),
                    Value::from(template_id),
                    Value::from(version),
                ],
            ))
            .one(database.connection()),
        )
        .await?;
    Ok(row.map(|row| row.definition))
}

/// The tenant's live templates after `after`, in id order.
pub async fn list_templates(
    database: &Database,
    tenant_id: Uuid,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<TemplateSummary>, StoreError> {
    database
        .run(
            "templates.list",
            TemplateSummary::find_by_statement(statement(
                "SELECT template_id, latest_version, updated_at FROM template_heads \
                 WHERE tenant_id = $1 AND NOT deleted AND ($2::text IS NULL OR template_id > $2) \
                 ORDER BY template_id LIMIT $3",
                [
                    Value::from(tenant_id),
                    Value::from(after),
                    Value::from(limit as i64),
                ],
            ))
            .all(database.connection()),
        )
        .await
}

/// Deletes the tenant's template; `false` if it has no live one by that id. Notifications
/// accepted before still render their version.
pub async fn delete_template(
    database: &Database,
    tenant_id: Uuid,
    template_id: &str,
) -> Result<bool, StoreError> {
    let result = database
        .run(
            "templates.delete",
            database.connection().execute(statement(
                "UPDATE template_heads SET deleted = true, updated_at = now() \
                 WHERE tenant_id = $1 AND template_id = $2 AND NOT deleted",
                [Value::from(tenant_id), Value::from(template_id)],
            )),
        )
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A template version a notification may render: its number and the channels it has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedTemplate {
    pub version: i32,
    pub channels: Vec<Channel>,
}

/// The versions `wanted` (template id, version or the latest) name among the tenant's live
/// templates, in one query: what notifications naming them are accepted with. A pair without an
/// entry names no live template or no such version.
pub async fn resolve_templates(
    database: &Database,
    tenant_id: Uuid,
    wanted: &[(String, Option<i32>)],
) -> Result<HashMap<(String, Option<i32>), ResolvedTemplate>, StoreError> {
    #[derive(FromQueryResult)]
    struct Resolved {
        template_id: String,
        wanted: Option<i32>,
        version: i32,
        channels: Vec<String>,
    }
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = wanted.iter().map(|(id, _)| id.clone()).collect();
    let versions: Vec<i32> = wanted
        .iter()
        .map(|(_, version)| version.unwrap_or(0))
        .collect();
    let rows = database
        .run(
            "templates.resolve",
            Resolved::find_by_statement(statement(
                "SELECT r.template_id, nullif(r.wanted, 0) AS wanted, t.version, \
                        t.channels::text[] AS channels \
                 FROM unnest($2::text[], $3::int4[]) AS r(template_id, wanted) \
                 JOIN template_heads h ON h.tenant_id = $1 AND h.template_id = r.template_id \
                      AND NOT h.deleted \
                 JOIN templates t ON t.tenant_id = h.tenant_id AND t.template_id = h.template_id \
                      AND t.version = coalesce(nullif(r.wanted, 0), h.latest_version)",
                [
                    Value::from(tenant_id),
                    Value::from(ids),
                    // 0 for "the latest": sea-query binds no NULL inside an array.
                    Value::from(versions),
                ],
            ))
            .all(database.connection()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let channels = row
                .channels
                .iter()
                .filter_map(|name| Channel::parse(name))
                .collect();
            (
                (row.template_id, row.wanted),
                ResolvedTemplate {
                    version: row.version,
                    channels,
                },
            )
        })
        .collect())
}
