//! Connecting to PostgreSQL with the configured pool bounds and a server-side statement timeout,
//! so no query can hold a connection forever.

use std::time::Duration;

use herald_config::DatabaseSettings;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use secrecy::ExposeSecret;

pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut url = settings.url.expose_secret().to_owned();
    if !url.contains("statement_timeout") {
        let separator = if url.contains('?') { '&' } else { '?' };
        url.push_str(&format!(
            "{separator}options=-c%20statement_timeout%3D{}",
            settings.statement_timeout_ms
        ));
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .sqlx_logging(false);
    Database::connect(options).await
}
