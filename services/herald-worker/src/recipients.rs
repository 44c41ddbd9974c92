//! Recipient lookup through the tag cache (docs/DESIGN.md, "The tag cache"): in process and in
//! Redis, each recipient under its user's tag, checked in one MGET per batch; PostgreSQL for the
//! misses (one query). The API invalidates the tag whenever the user or their preferences change,
//! so the next notification to them reads the change. Redis trouble costs speed only: every lookup
//! falls back to PostgreSQL.

use std::collections::HashMap;

use herald_store::tag_cache::{Lookup, Tag, TagCache};
use herald_store::users::{find_recipients, Recipient};
use herald_store::{Database, StoreError};
use uuid::Uuid;

pub type RecipientKey = (Uuid, String);

#[derive(Clone)]
pub struct Recipients {
    database: Database,
    cache: TagCache<Recipient>,
}

impl Recipients {
    pub fn new(database: Database, cache: TagCache<Recipient>) -> Recipients {
        Recipients { database, cache }
    }

    /// The recipients that exist among `keys`.
    pub async fn resolve(
        &self,
        keys: &[RecipientKey],
    ) -> Result<HashMap<RecipientKey, Recipient>, StoreError> {
        let lookup = |(tenant_id, user_id): &RecipientKey| Lookup {
            key: format!("{tenant_id}:{user_id}"),
            tags: vec![Tag::user(*tenant_id, user_id)],
        };
        self.cache
            .get_map(keys, lookup, |wanted| async move {
                let wanted: Vec<(Uuid, &str)> = wanted
                    .iter()
                    .map(|(tenant_id, user_id)| (*tenant_id, user_id.as_str()))
                    .collect();
                Ok(find_recipients(&self.database, &wanted)
                    .await?
                    .into_iter()
                    .map(|recipient| ((recipient.tenant_id, recipient.id.clone()), recipient))
                    .collect())
            })
            .await
    }
}
