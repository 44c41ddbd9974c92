//! The database handle every store function takes: the sea-orm connection pool plus a client-side
//! deadline on every call, a duration metric per operation, and one error type that says what the
//! caller can do about a failure.

use std::future::Future;
use std::time::{Duration, Instant};

use herald_config::DatabaseSettings;
use sea_orm::sqlx::Error as SqlxError;
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    Statement, TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::metrics;

#[derive(Clone)]
pub struct Database {
    connection: DatabaseConnection,
    query_timeout: Duration,
}

/// Why a database call failed, sorted by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, overloaded, restarting, out of disk, or no answer within the client deadline:
    /// retry later (the API's 503).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The server cancelled the statement after `statement_timeout`: possibly the rows are too many
    /// or too large, possibly the server is slow.
    #[error("the statement ran past the database's statement timeout")]
    StatementTimeout,
    /// The server refused the data itself (SQLSTATE classes 22, 23 and 54): retrying the same rows
    /// cannot succeed, other rows may.
    #[error("the database refused the data: {message} (SQLSTATE {code})")]
    Refused { code: String, message: String },
    /// Anything else is a bug in Herald.
    #[error("database error: {0}")]
    Other(#[source] DbErr),
}

impl StoreError {
    /// Whether the failure may be caused by some of the rows of a statement (worth bisecting).
    pub fn may_be_caused_by_rows(&self) -> bool {
        matches!(
            self,
            StoreError::Refused { .. } | StoreError::StatementTimeout
        )
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> StoreError {
        let Some(sqlx_error) = sqlx_error(&error) else {
            return match error {
                DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                    StoreError::Unavailable(error.to_string())
                }
                _ => StoreError::Other(error),
            };
        };
        match sqlx_error {
            SqlxError::Database(database_error) => {
                let code = database_error
                    .code()
                    .map(|code| code.into_owned())
                    .unwrap_or_default();
                classify_sqlstate(&code, database_error.message())
                    .unwrap_or(StoreError::Other(error))
            }
            SqlxError::Io(_)
            | SqlxError::Tls(_)
            | SqlxError::PoolTimedOut
            | SqlxError::PoolClosed
            | SqlxError::WorkerCrashed
            | SqlxError::Protocol(_) => StoreError::Unavailable(sqlx_error.to_string()),
            _ => StoreError::Other(error),
        }
    }
}

/// The driver's error inside sea-orm's, if the failure came from the driver.
fn sqlx_error(error: &DbErr) -> Option<&SqlxError> {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(sqlx_error))
        | DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_error)) => Some(sqlx_error),
        _ => None,
    }
}

/// How a transaction run by [`Database::transaction`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Commit,
    RollBack,
}

/// Runs of one transaction, the first included, when PostgreSQL rolls it back to break a conflict.
pub const MAX_CONFLICT_RUNS: u32 = 3;

/// Whether PostgreSQL rolled the transaction back to break a deadlock or a serialization conflict
/// (SQLSTATE 40P01, 40001): nothing of it was kept, and running it again is safe and usually
/// succeeds at once.
fn is_transaction_conflict(error: &DbErr) -> bool {
    let Some(SqlxError::Database(database_error)) = sqlx_error(error) else {
        return false;
    };
    matches!(database_error.code().as_deref(), Some("40P01" | "40001"))
}

/// The SQLSTATE classes Herald treats specially (PostgreSQL appendix A).
fn classify_sqlstate(code: &str, message: &str) -> Option<StoreError> {
    let class = code.get(..2)?;
    Some(match (class, code) {
        (_, "57014") => StoreError::StatementTimeout,
        // Connection exceptions, insufficient resources (disk full, too many connections), operator
        // intervention (shutdown, restart), deadlock and serialization failures: all pass.
        ("08" | "53" | "57" | "40", _) => {
            StoreError::Unavailable(format!("{message} (SQLSTATE {code})"))
        }
        ("22" | "23" | "54", _) => StoreError::Refused {
            code: code.to_owned(),
            message: message.to_owned(),
        },
        _ => return None,
    })
}

impl Database {
    /// Connects with the configured pool bounds, a server-side statement timeout and a client-side
    /// deadline for every call.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Database, StoreError> {
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
        let query_timeout = Duration::from_millis(settings.query_timeout_ms);
        let connection = tokio::time::timeout(query_timeout, sea_orm::Database::connect(options))
            .await
            .map_err(|_| {
                StoreError::Unavailable("no connection within the query timeout".into())
            })??;
        Ok(Database {
            connection,
            query_timeout,
        })
    }

    /// For code that needs the sea-orm connection itself (entities, migrations). Wrap its calls in
    /// [`Database::run`].
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// Runs `body` in a transaction within the client deadline, committed when `body` says so
    /// (`Finish::Commit`) and rolled back otherwise. When PostgreSQL rolls it back to break a
    /// deadlock or a serialization conflict, it runs again, up to [`MAX_CONFLICT_RUNS`] runs:
    /// nothing of the failed run was kept, and a request bound to succeed should not fail (503)
    /// because another transaction locked the same rows in the other order.
    pub async fn transaction<T>(
        &self,
        operation: &'static str,
        mut body: impl AsyncFnMut(&DatabaseTransaction) -> Result<(T, Finish), DbErr>,
    ) -> Result<T, StoreError> {
        self.run(operation, async {
            let mut run = 1;
            loop {
                let attempt = async {
                    let transaction = self.connection.begin().await?;
                    let (value, finish) = body(&transaction).await?;
                    match finish {
                        Finish::Commit => transaction.commit().await?,
                        Finish::RollBack => transaction.rollback().await?,
                    }
                    Ok(value)
                };
                match attempt.await {
                    Err(error) if is_transaction_conflict(&error) && run < MAX_CONFLICT_RUNS => {
                        run += 1;
                    }
                    result => return result,
                }
            }
        })
        .await
    }

    /// Runs one database operation (a statement or a transaction) within the client deadline,
    /// timing it under `operation`.
    pub async fn run<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.query_timeout, call).await;
        // The deadline counter is touched on every call, so an operation's series is listed (at
        // zero) from its first statement on, not from its first missed deadline.
        let deadlines = metrics::STATEMENT_DEADLINES.with_label_values(&[operation]);
        metrics::STATEMENT_SECONDS
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => {
                deadlines.inc();
                Err(StoreError::Unavailable(format!(
                    "{operation}: no answer within {:?}",
                    self.query_timeout
                )))
            }
        }
    }
}

impl Database {
    /// Runs a statement whose answer is one bigint (a count, a sum); no row counts as 0.
    pub async fn scalar(
        &self,
        operation: &'static str,
        statement: Statement,
    ) -> Result<i64, StoreError> {
        let row = self
            .run(operation, self.connection.query_one(statement))
            .await?;
        match row {
            Some(row) => row.try_get_by_index::<i64>(0).map_err(StoreError::from),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_sorted_by_what_the_caller_can_do() {
        assert!(matches!(
            classify_sqlstate("22P05", "unsupported Unicode escape sequence"),
            Some(StoreError::Refused { .. })
        ));
        assert!(matches!(
            classify_sqlstate(
                "54000",
                "total size of jsonb array elements exceeds the maximum"
            ),
            Some(StoreError::Refused { .. })
        ));
        assert!(matches!(
            classify_sqlstate("57014", "canceling statement"),
            Some(StoreError::StatementTimeout)
        ));
        assert!(matches!(
            classify_sqlstate("57P01", "terminating connection"),
            Some(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            classify_sqlstate("53100", "disk full"),
            Some(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            classify_sqlstate("40P01", "deadlock detected"),
            Some(StoreError::Unavailable(_))
        ));
        assert!(
            classify_sqlstate("42601", "syntax error").is_none(),
            "a bug, not the client's rows"
        );
        assert!(StoreError::StatementTimeout.may_be_caused_by_rows());
        assert!(!StoreError::Unavailable("down".into()).may_be_caused_by_rows());
    }
}
