//! Tenants' groups of recipients and their members, as the API writes and reads them
//! (docs/DESIGN.md, "Groups: fan-out in the worker").
//!
//! Members keep history: a removal closes the member's row, an addition writes a new one, so a
//! notification expands its groups as they were when it was accepted. Every write of a group's
//! members locks the group's row first and stamps its rows with `clock_timestamp()` taken after
//! that lock: the writes of one group are ordered, and a member's rows never overlap in time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, Finish, StoreError};
use crate::statement;

/// A live group as the API shows it.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct GroupView {
    /// The tenant's id for the group.
    pub id: String,
    pub name: Option<String>,
    pub member_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const GROUP_VIEW_COLUMNS: &str = "external_id AS id, name, member_count, created_at, updated_at";

/// What writing a group came to.
#[derive(Debug)]
pub enum GroupWrite {
    Created(GroupView),
    Updated(GroupView),
    /// The tenant already has as many groups as it may.
    TooManyGroups,
}

/// What a change of members came to.
#[derive(Debug, PartialEq, Eq)]
pub enum MembersWrite {
    /// `changed` members were added or removed (the others were members already, or were not).
    Changed {
        changed: u64,
        member_count: i32,
    },
    /// The additions would take the group past `max_members`: nothing was added.
    TooManyMembers {
        member_count: i32,
    },
    NoSuchGroup,
}

/// Creates the tenant's group `external_id`, or renames it if it exists, unless the tenant has
/// `max_per_tenant` groups already. The tenant's row is locked first, so two creations cannot both
/// pass the count.
pub async fn put_group(
    database: &Database,
    tenant_id: Uuid,
    external_id: &str,
    name: Option<&str>,
    max_per_tenant: u64,
) -> Result<GroupWrite, StoreError> {
    database
        .transaction("groups.put", async |transaction| {
            transaction
                .execute(statement(
                    "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
                    [Value::from(tenant_id)],
                ))
                .await?;
            let updated = GroupView::find_by_statement(statement(
                &format!(
                    "UPDATE groups SET name = $3, updated_at = now() \
                     WHERE tenant_id = $1 AND external_id = $2 AND deleted_at IS NULL \
                     RETURNING {GROUP_VIEW_COLUMNS}"
                ),
                [
                    Value::from(tenant_id),
                    Value::from(external_id),
                    Value::from(name),
                ],
            ))
            .one(transaction)
            .await?;
            if let Some(updated) = updated {
                return Ok((GroupWrite::Updated(updated), Finish::Commit));
            }
            let live_groups = count(
                transaction,
                "SELECT count(*)::bigint AS count FROM groups \
                 WHERE tenant_id = $1 AND deleted_at IS NULL",
                tenant_id,
            )
            .await?;
            if live_groups >= max_per_tenant as i64 {
                return Ok((GroupWrite::TooManyGroups, Finish::RollBack));
            }
            let created = GroupView::find_by_statement(statement(
                &format!(
                    "INSERT INTO groups (id, tenant_id, external_id, name) VALUES ($1, $2, $3, $4) \
                     RETURNING {GROUP_VIEW_COLUMNS}"
                ),
                [
                    Value::from(Uuid::now_v7()),
                    Value::from(tenant_id),
                    Value::from(external_id),
                    Value::from(name),
                ],
            ))
            .one(transaction)
            .await?
            .ok_or_else(|| DbErr::RecordNotInserted)?;
            Ok((GroupWrite::Created(created), Finish::Commit))
        })
        .await
}

async fn count(
    transaction: &DatabaseTransaction,
    sql: &str,
    tenant_id: Uuid,
) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Count {
        count: i64,
    }
    Ok(
        Count::find_by_statement(statement(sql, [Value::from(tenant_id)]))
            .one(transaction)
            .await?
            .map_or(0, |row| row.count),
    )
}

/// The tenant's live group `external_id`.
pub async fn find_group(
    database: &Database,
    tenant_id: Uuid,
    external_id: &str,
) -> Result<Option<GroupView>, StoreError> {
    database
        .run(
            "groups.find",
            GroupView::find_by_statement(statement(
                &format!(
                    "SELECT {GROUP_VIEW_COLUMNS} FROM groups \
                     WHERE tenant_id = $1 AND external_id = $2 AND deleted_at IS NULL"
                ),
                [Value::from(tenant_id), Value::from(external_id)],
            ))
            .one(database.connection()),
        )
        .await
}

/// Deletes the tenant's group `external_id`; `false` if it has none by that id. Notifications
/// accepted before the delete still expand it; its id is free for a new group at once.
pub async fn delete_group(
    database: &Database,
    tenant_id: Uuid,
    external_id: &str,
) -> Result<bool, StoreError> {
    let result = database
        .run(
            "groups.delete",
            database.connection().execute(statement(
                "UPDATE groups SET deleted_at = clock_timestamp(), updated_at = now() \
                 WHERE tenant_id = $1 AND external_id = $2 AND deleted_at IS NULL",
                [Value::from(tenant_id), Value::from(external_id)],
            )),
        )
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The tenant's live groups among `external_ids`, by id: what a notification naming them expands.
pub async fn resolve_live_groups(
    database: &Database,
    tenant_id: Uuid,
    external_ids: &[String],
) -> Result<HashMap<String, Uuid>, StoreError> {
    #[derive(FromQueryResult)]
    struct Resolved {
        external_id: String,
        id: Uuid,
    }
    if external_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = database
        .run(
            "groups.resolve",
            Resolved::find_by_statement(statement(
                "SELECT external_id, id FROM groups \
                 WHERE tenant_id = $1 AND external_id = ANY($2) AND deleted_at IS NULL",
                [Value::from(tenant_id), Value::from(external_ids.to_vec())],
            ))
            .all(database.connection()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.external_id, row.id))
        .collect())
}

/// Locks the tenant's live group `external_id` for a change of members; its id and member count.
async fn lock_group(
    transaction: &DatabaseTransaction,
    tenant_id: Uuid,
    external_id: &str,
) -> Result<Option<(Uuid, i32)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Locked {
        id: Uuid,
        member_count: i32,
    }
    Ok(Locked::find_by_statement(statement(
        "SELECT id, member_count FROM groups \
         WHERE tenant_id = $1 AND external_id = $2 AND deleted_at IS NULL FOR UPDATE",
        [Value::from(tenant_id), Value::from(external_id)],
    ))
    .one(transaction)
    .await?
    .map(|row| (row.id, row.member_count)))
}

/// Sets the group's member count to `member_count` and returns it.
async fn store_member_count(
    transaction: &DatabaseTransaction,
    group_id: Uuid,
    member_count: i64,
) -> Result<i32, DbErr> {
    let member_count = i32::try_from(member_count).unwrap_or(i32::MAX);
    transaction
        .execute(statement(
            "UPDATE groups SET member_count = $2, updated_at = now() WHERE id = $1",
            [Value::from(group_id), Value::from(member_count)],
        ))
        .await?;
    Ok(member_count)
}

/// Adds `user_ids` (distinct, already validated) to the tenant's group `external_id`; those that
/// are members already stay as they are. Refused whole if the group would pass `max_members`.
pub async fn add_members(
    database: &Database,
    tenant_id: Uuid,
    external_id: &str,
    user_ids: &[String],
    max_members: u64,
) -> Result<MembersWrite, StoreError> {
    #[derive(FromQueryResult)]
    struct Added {
        added: i64,
    }
    database
        .transaction("groups.add_members", async |transaction| {
            let Some((group_id, member_count)) =
                lock_group(transaction, tenant_id, external_id).await?
            else {
                return Ok((MembersWrite::NoSuchGroup, Finish::RollBack));
            };
            let added = Added::find_by_statement(statement(
                "WITH added AS ( \
                     INSERT INTO group_members (group_id, user_id, added_at) \
                     SELECT $1, user_id, clock_timestamp() FROM unnest($2::text[]) AS new(user_id) \
                     ON CONFLICT (group_id, user_id) WHERE removed_at IS NULL DO NOTHING \
                     RETURNING 1) \
                 SELECT count(*)::bigint AS added FROM added",
                [Value::from(group_id), Value::from(user_ids.to_vec())],
            ))
            .one(transaction)
            .await?
            .map_or(0, |row| row.added);
            let new_count = i64::from(member_count) + added;
            if new_count > max_members as i64 {
                return Ok((
                    MembersWrite::TooManyMembers { member_count },
                    Finish::RollBack,
                ));
            }
            let member_count = store_member_count(transaction, group_id, new_count).await?;
            Ok((
                MembersWrite::Changed {
                    changed: added as u64,
                    member_count,
                },
                Finish::Commit,
            ))
        })
        .await
}

/// Removes `user_ids` from the tenant's group `external_id`; those that are not members are
/// ignored. Notifications accepted before still reach them.
pub async fn remove_members(
    database: &Database,
    tenant_id: Uuid,
    external_id: &str,
    user_ids: &[String],
) -> Result<MembersWrite, StoreError> {
    database
        .transaction("groups.remove_members", async |transaction| {
            let Some((group_id, member_count)) =
                lock_group(transaction, tenant_id, external_id).await?
            else {
                return Ok((MembersWrite::NoSuchGroup, Finish::RollBack));
            };
            let removed = transaction
                .execute(statement(
                    "UPDATE group_members SET removed_at = clock_timestamp() \
                     WHERE group_id = $1 AND user_id = ANY($2) AND removed_at IS NULL",
                    [Value::from(group_id), Value::from(user_ids.to_vec())],
                ))
                .await?
                .rows_affected();
            let new_count = (i64::from(member_count) - removed as i64).max(0);
            let member_count = store_member_count(transaction, group_id, new_count).await?;
            Ok((
                MembersWrite::Changed {
                    changed: removed,
                    member_count,
                },
                Finish::Commit,
            ))
        })
        .await
}

/// A page of the group's current members in id order, after `after`; `None` if the tenant has no
/// live group `external_id`.
pub async fn list_members(
    database: &Database,
    tenant_id: Uuid,
    external_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Option<Vec<String>>, StoreError> {
    #[derive(FromQueryResult)]
    struct Member {
        user_id: Option<String>,
    }
    // One row per call even for an empty page (the LEFT JOIN), so that "no such group" and "no
    // members after the cursor" are told apart in one statement.
    let rows = database
        .run(
            "groups.list_members",
            Member::find_by_statement(statement(
                "SELECT page.user_id FROM groups g \
                 LEFT JOIN LATERAL ( \
                     SELECT m.user_id FROM group_members m \
                     WHERE m.group_id = g.id AND m.removed_at IS NULL \
                       AND ($3::text IS NULL OR m.user_id > $3) \
                     ORDER BY m.user_id LIMIT $4) page ON true \
                 WHERE g.tenant_id = $1 AND g.external_id = $2 AND g.deleted_at IS NULL \
                 ORDER BY page.user_id",
                [
                    Value::from(tenant_id),
                    Value::from(external_id),
                    Value::from(after),
                    Value::from(limit as i64),
                ],
            ))
            .all(database.connection()),
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter().filter_map(|row| row.user_id).collect(),
    ))
}
