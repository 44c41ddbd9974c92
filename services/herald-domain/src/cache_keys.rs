//! Redis keys shared by the API (which invalidates) and the worker (which caches).

use uuid::Uuid;

/// A recipient's contact data, cached by the worker, deleted by the API on `PUT /v1/users`.
pub fn user_key(tenant_id: Uuid, user_id: &str) -> String {
    format!("herald:user:{tenant_id}:{user_id}")
}
