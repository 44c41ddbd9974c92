//! Tenants' routing rule sets (docs/DESIGN.md, "Routing rules"): each write is a new immutable
//! version, its number taken under the tenant's head row (so versions are in order across
//! replicas); the group commit's insert stamps each notification with its tenant's head version,
//! and the workers evaluate that version, which never changes.

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, Finish, StoreError};
use crate::statement;

/// A version of a tenant's rules, as written (`{"rules": [...]}`).
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct StoredRuleSet {
    pub version: i32,
    pub rules: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// What writing a rule set came to.
#[derive(Debug)]
pub enum RuleSetWrite {
    Written(StoredRuleSet),
    /// The tenant has written `max_versions` already.
    TooManyVersions,
}

/// Writes `rules` (already validated, templates resolved) as the tenant's next version.
pub async fn put_rule_set(
    database: &Database,
    tenant_id: Uuid,
    rules: serde_json::Value,
    max_versions: i32,
) -> Result<RuleSetWrite, StoreError> {
    database
        .transaction("routing_rules.put", async |transaction| {
            #[derive(FromQueryResult)]
            struct Head {
                version: i32,
            }
            // Takes the head row's lock until the commit: writes of one tenant queue here.
            let head = Head::find_by_statement(statement(
                "INSERT INTO routing_rule_heads (tenant_id, version) VALUES ($1, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET version = routing_rule_heads.version + 1 \
                 RETURNING version",
                [Value::from(tenant_id)],
            ))
            .one(transaction)
            .await?
            .ok_or(DbErr::RecordNotInserted)?;
            if head.version > max_versions {
                return Ok((RuleSetWrite::TooManyVersions, Finish::RollBack));
            }
            let stored = StoredRuleSet::find_by_statement(statement(
                "INSERT INTO routing_rule_sets (tenant_id, version, rules) VALUES ($1, $2, $3) \
                 RETURNING version, rules, created_at",
                [
                    Value::from(tenant_id),
                    Value::from(head.version),
                    Value::from(rules.clone()),
                ],
            ))
            .one(transaction)
            .await?
            .ok_or(DbErr::RecordNotInserted)?;
            Ok((RuleSetWrite::Written(stored), Finish::Commit))
        })
        .await
}

/// The tenant's current rules, if it ever wrote some.
pub async fn current_rule_set(
    database: &Database,
    tenant_id: Uuid,
) -> Result<Option<StoredRuleSet>, StoreError> {
    database
        .run(
            "routing_rules.current",
            StoredRuleSet::find_by_statement(statement(
                "SELECT s.version, s.rules, s.created_at FROM routing_rule_heads h \
                 JOIN routing_rule_sets s ON s.tenant_id = h.tenant_id AND s.version = h.version \
                 WHERE h.tenant_id = $1",
                [Value::from(tenant_id)],
            ))
            .one(database.connection()),
        )
        .await
}

/// One version of the tenant's rules (a notification's), if it exists.
pub async fn load_rule_set(
    database: &Database,
    tenant_id: Uuid,
    version: i32,
) -> Result<Option<StoredRuleSet>, StoreError> {
    database
        .run(
            "routing_rules.load",
            StoredRuleSet::find_by_statement(statement(
                "SELECT version, rules, created_at FROM routing_rule_sets \
                 WHERE tenant_id = $1 AND version = $2",
                [Value::from(tenant_id), Value::from(version)],
            ))
            .one(database.connection()),
        )
        .await
}
