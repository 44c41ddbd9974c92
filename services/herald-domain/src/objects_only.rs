//! serde reads a struct from a JSON array as readily as from an object (its fields in order), so
//! `"channel_data": [null, null]` was accepted as empty contacts. The API's documents are objects:
//! these refuse anything else where a struct is nested (the top level is checked by the API's
//! body parser). They read the object through the caller's deserializer, so an error inside it
//! still names its field's whole path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// For a field whose value is a struct: an object, or an error naming the JSON type found.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// For an optional struct field: `null`, absent (with `#[serde(default)]`) or an object.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionalObjectVisitor(PhantomData))
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

struct OptionalObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OptionalObjectVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object or null")
    }

    fn visit_none<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        object(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Webhook {
        #[allow(dead_code)]
        webhook_url: String,
    }

    /// Shaped as the contacts are (`herald_channels::ChannelData`), without depending on them.
    #[derive(Debug, Deserialize)]
    struct Contacts {
        #[serde(default, deserialize_with = "super::optional_object")]
        slack: Option<Webhook>,
        #[serde(default, deserialize_with = "super::optional_object")]
        discord: Option<Webhook>,
    }

    #[test]
    fn contacts_given_as_arrays_are_refused_and_objects_taken() {
        let error = serde_json::from_str::<Contacts>(r#"{"slack": ["https://hooks.slack.com/x"]}"#)
            .unwrap_err();
        assert!(
            error.to_string().contains("sequence, expected an object"),
            "{error}"
        );
        let contacts: Contacts = serde_json::from_str(
            r#"{"slack": {"webhook_url": "https://hooks.slack.com/x"}, "discord": null}"#,
        )
        .unwrap();
        assert!(contacts.slack.is_some() && contacts.discord.is_none());
    }
}
