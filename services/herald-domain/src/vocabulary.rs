//! Closed sets of names (channels, priorities, statuses, outcomes, providers), each name written
//! once. [`vocabulary!`] declares the enum with its spelling per variant and derives from that one
//! spelling everything that names it: JSON (serde), the OpenAPI schema (utoipa), PostgreSQL
//! (sea-orm's active enum), `as_str`, `parse`, `ALL` and `Display`.

/// Declares a closed set: an enum whose variants are written `Variant = "spelling"`.
///
/// The enum's own attributes (its doc, sea-orm's `rs_type`/`db_type`/`enum_name`, extra derives)
/// and each variant's (its doc, `#[default]`) are kept as written.
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
        // The derives first: `#[sea_orm(...)]` among the enum's attributes is their helper.
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
            ::sea_orm::EnumIter,
            ::sea_orm::DeriveActiveEnum,
        )]
        $(#[$enum_attribute])*
        $visibility enum $name {
            $(
                $(#[$variant_attribute])*
                #[serde(rename = $spelling)]
                #[sea_orm(string_value = $spelling)]
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
    use sea_orm::{ActiveEnum, Iterable};

    use crate::{
        AttemptOutcome, Channel, DeliveryStatus, NotificationStatus, Priority, ProviderId,
    };

    /// Each value's spelling is the same in `as_str`, `parse`, JSON, the OpenAPI schema, the
    /// database and `Display`, and `ALL` lists every variant once.
    fn spelt_once_everywhere<T>(all: &[T])
    where
        T: ActiveEnum<Value = String> + Iterable + serde::Serialize + std::fmt::Display + Copy,
        T: AsRef<str> + PartialEq + std::fmt::Debug + utoipa::PartialSchema,
    {
        assert_eq!(all.len(), T::iter().count(), "ALL lists every variant");
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
            assert_eq!(value.to_value(), spelling);
            assert_eq!(T::try_from_value(&spelling.to_owned()).ok(), Some(*value));
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
