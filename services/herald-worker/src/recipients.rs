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
        let lookups: Vec<Lookup> = keys
            .iter()
            .map(|(tenant_id, user_id)| Lookup {
                key: format!("{tenant_id}:{user_id}"),
                tags: vec![Tag::user(*tenant_id, user_id)],
            })
            .collect();
        let found = self
            .cache
            .get_many(&lookups, |indexes| async move {
                let wanted: Vec<(Uuid, &str)> = indexes
                    .iter()
                    .map(|index| (keys[*index].0, keys[*index].1.as_str()))
                    .collect();
                let mut loaded: HashMap<RecipientKey, Recipient> =
                    find_recipients(&self.database, &wanted)
                        .await?
                        .into_iter()
                        .map(|recipient| ((recipient.tenant_id, recipient.id.clone()), recipient))
                        .collect();
                Ok(indexes
                    .iter()
                    .map(|index| loaded.remove(&keys[*index]))
                    .collect())
            })
            .await?;
        Ok(keys
            .iter()
            .zip(found)
            .filter_map(|(key, recipient)| Some((key.clone(), recipient?)))
            .collect())
    }
}
