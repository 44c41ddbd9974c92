//! Reading rows whose columns hold a vocabulary (a channel, a status, a provider...).
//!
//! herald-domain knows no persistence library, and Rust's orphan rule keeps the store from
//! implementing sea-orm's traits for the domain's enums. So a row type with such a field is
//! declared with [`row!`]: it writes the struct as given and its `FromQueryResult`,
//! which reads every field through [`Column`]. A vocabulary column is selected as `text` (or
//! `text[]`) and read by its one spelling; an unknown spelling is an error naming the column,
//! never a default. Binding goes the other way through [`bind`], with a cast to the column's type
//! in the SQL (`$1::delivery_status`).

use chrono::{DateTime, Utc};
use herald_domain::{
    AttemptOutcome, Channel, DeliveryStatus, NotificationStatus, Priority, ProviderId, Vocabulary,
};
use sea_orm::{DbErr, QueryResult, TryGetable, Value};
use uuid::Uuid;

/// A type a [`row!`] field may have: how to read it from a result row.
pub trait Column: Sized {
    fn read(row: &QueryResult, prefix: &str, column: &str) -> Result<Self, DbErr>;
}

/// The value of a vocabulary column, bound as its spelling.
pub fn bind<T: Vocabulary>(value: T) -> Value {
    Value::from(value.spelling())
}

fn parse<T: Vocabulary>(spelling: &str, column: &str) -> Result<T, DbErr> {
    T::from_spelling(spelling).ok_or_else(|| {
        DbErr::Type(format!(
            "column `{column}` holds `{spelling}`, which is none of {:?}",
            T::VALUES
                .iter()
                .map(|value| value.spelling())
                .collect::<Vec<_>>()
        ))
    })
}

/// Types sea-orm reads itself.
macro_rules! read_by_sea_orm {
    ($($type:ty),+ $(,)?) => {
        $(
            impl Column for $type {
                fn read(row: &QueryResult, prefix: &str, column: &str) -> Result<Self, DbErr> {
                    <$type as TryGetable>::try_get(row, prefix, column).map_err(DbErr::from)
                }
            }
        )+
    };
}

// The types the store's rows have today; a row with another one fails to compile until it is
// added here.
read_by_sea_orm!(
    bool,
    i32,
    i64,
    String,
    Uuid,
    Vec<u8>,
    Vec<String>,
    serde_json::Value,
    DateTime<Utc>,
    Option<String>,
    Option<i32>,
    Option<DateTime<Utc>>,
);

/// Vocabularies, read by their spelling: the value, an optional value, a list. Every vocabulary
/// is here, as every one is a column type in the database.
macro_rules! read_by_spelling {
    ($($vocabulary:ty),+ $(,)?) => {
        $(
            impl Column for $vocabulary {
                fn read(row: &QueryResult, prefix: &str, column: &str) -> Result<Self, DbErr> {
                    parse(&String::read(row, prefix, column)?, column)
                }
            }

            impl Column for Option<$vocabulary> {
                fn read(row: &QueryResult, prefix: &str, column: &str) -> Result<Self, DbErr> {
                    Option::<String>::read(row, prefix, column)?
                        .map(|spelling| parse(&spelling, column))
                        .transpose()
                }
            }

            impl Column for Vec<$vocabulary> {
                fn read(row: &QueryResult, prefix: &str, column: &str) -> Result<Self, DbErr> {
                    Vec::<String>::read(row, prefix, column)?
                        .iter()
                        .map(|spelling| parse(spelling, column))
                        .collect()
                }
            }
        )+
    };
}

read_by_spelling!(
    Channel,
    Priority,
    NotificationStatus,
    DeliveryStatus,
    AttemptOutcome,
    ProviderId,
);

/// Declares a row type read from a query by column name, like `#[derive(FromQueryResult)]`, for
/// structs with vocabulary fields (see the module's doc). Each field's type must be a [`Column`].
macro_rules! row {
    (
        $(#[$struct_attribute:meta])*
        $visibility:vis struct $name:ident {
            $(
                $(#[$field_attribute:meta])*
                $field_visibility:vis $field:ident : $type:ty
            ),+ $(,)?
        }
    ) => {
        $(#[$struct_attribute])*
        $visibility struct $name {
            $(
                $(#[$field_attribute])*
                $field_visibility $field: $type,
            )+
        }

        impl ::sea_orm::FromQueryResult for $name {
            fn from_query_result(
                row: &::sea_orm::QueryResult,
                prefix: &str,
            ) -> Result<Self, ::sea_orm::DbErr> {
                Ok($name {
                    $(
                        $field: <$type as $crate::columns::Column>::read(
                            row,
                            prefix,
                            stringify!($field),
                        )?,
                    )+
                })
            }
        }
    };
}

pub(crate) use row;
