//! Closed sets of names (channels, priorities, statuses, outcomes, providers), each name written
//! once. [`vocabulary!`] declares the enum with its spelling per variant and derives from that one
//! spelling everything that names it: JSON (serde), the OpenAPI schema (utoipa), `as_str`,
//! `parse`, `ALL`, `Display` and the [`Vocabulary`] trait, through which herald-store reads and
//! binds the same spellings in PostgreSQL (the domain knows no persistence library).

/// A closed set declared with [`vocabulary!`]: what code generic over vocabularies (the store's
/// columns, tests) needs of one.
pub trait Vocabulary: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// Every value, in the order declared.
    const VALUES: &'static [Self];

    /// The one spelling: JSON's, PostgreSQL's, the metrics'.
    fn spelling(self) -> &'static str;

    /// The value spelt `name` exactly, if any.
    fn from_spelling(name: &str) -> Option<Self>;
}

/// Declares a closed set: an enum whose variants are written `Variant = "spelling"`.
///
/// The enum's own attributes (its doc, extra derives) and each variant's (its doc, `#[default]`)
/// are kept as written.
#[macro_export]
macro_rules! vocabulary {
    (
        $(#[$enum_attribute:meta])*
        $visibility:vis enum $name:ident {
            $(
                $(#[$variant_attribute:meta])*
                // `tt`, not `literal`: a `literal` fragment reaches the derives wrapped, and
                // utoipa's ignores it (serde's does not); the test below checks the schema.
                $variant:ident = $spelling:tt
            ),+ $(,)?
        }
    ) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::utoipa::ToSchema,
        )]
        $(#[$enum_attribute])*
        $visibility enum $name {
            $(
                $(#[$variant_attribute])*
                #[serde(rename = $spelling)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];

            /// The one spelling: JSON's, PostgreSQL's, the metrics'.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling,)+
                }
            }

            /// The value spelt `name` exactly, if any.
            pub fn parse(name: &str) -> Option<$name> {
                match name {
                    $($spelling => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl $crate::vocabulary::Vocabulary for $name {
            const VALUES: &'static [$name] = &$name::ALL;

            fn spelling(self) -> &'static str {
                self.as_str()
            }

            fn from_spelling(name: &str) -> Option<$name> {
                $name::parse(name)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        /// For metric labels (`with_label_values(&[value])`).
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Vocabulary;
    use crate::{
        AttemptOutcome, Channel, DeliveryStatus, NotificationStatus, Priority, ProviderId,
    };

    /// Each value's spelling is the same in `as_str`, `parse`, the [`Vocabulary`] trait, JSON, the
    /// OpenAPI schema and `Display`, and `ALL` lists each value once. (The database's spellings are
    /// compared with `ALL` by herald-store's tests.)
    fn spelt_once_everywhere<T>(all: &[T])
    where
        T: Vocabulary + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Display,
        T: AsRef<str> + std::hash::Hash + utoipa::PartialSchema,
    {
        assert_eq!(all, T::VALUES);
        let distinct: HashSet<T> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "ALL lists each value once");
        let spellings: Vec<&str> = all.iter().map(AsRef::as_ref).collect();
        // A spelling passed to the derives as a `literal` fragment was ignored by utoipa's (the
        // schema said `SendGrid`) while serde's took it: the schema is checked, not assumed.
        let schema = serde_json::to_value(T::schema()).unwrap();
        assert_eq!(
            schema["enum"],
            serde_json::json!(spellings),
            "the OpenAPI schema"
        );
        for value in all {
            let spelling = value.as_ref();
            assert!(!spelling.is_empty());
            assert_eq!(value.spelling(), spelling);
            assert_eq!(T::from_spelling(spelling), Some(*value));
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(spelling)).unwrap(),
                *value
            );
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::json!(spelling)
            );
            assert_eq!(value.to_string(), spelling);
        }
    }

    #[test]
    fn every_vocabulary_is_spelt_once_everywhere() {
        spelt_once_everywhere(&Channel::ALL);
        spelt_once_everywhere(&Priority::ALL);
        spelt_once_everywhere(&NotificationStatus::ALL);
        spelt_once_everywhere(&DeliveryStatus::ALL);
        spelt_once_everywhere(&AttemptOutcome::ALL);
        spelt_once_everywhere(&ProviderId::ALL);
    }

    #[test]
    fn parse_takes_exactly_the_spellings() {
        assert_eq!(Channel::parse("email"), Some(Channel::Email));
        assert_eq!(Channel::parse("Email"), None);
        assert_eq!(Channel::parse(""), None);
        assert_eq!(
            NotificationStatus::parse("partially_delivered"),
            Some(NotificationStatus::PartiallyDelivered)
        );
        assert_eq!(ProviderId::parse("sendgrid"), Some(ProviderId::SendGrid));
        assert_eq!(ProviderId::parse("mailgun"), None);
    }
}
