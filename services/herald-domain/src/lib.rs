//! Herald's domain vocabulary, shared by the API and the worker: what a notification request is,
//! the rules it must satisfy, the record that travels through Kafka, and the placeholder syntax.

pub mod accepted;
pub mod channel;
pub mod envelope;
pub mod objects_only;
pub mod outbound_url;
pub mod placeholders;
pub mod preferences;
pub mod provider;
pub mod request;
pub mod routing;
pub mod status;
pub mod status_events;
pub mod templates;
pub mod tenant_url;
pub mod unsubscribe;
pub mod validation;
pub mod vocabulary;

#[cfg(test)]
mod properties;

pub use accepted::AcceptedNotification;
pub use channel::{Channel, Priority};
pub use envelope::NotificationEnvelope;
pub use provider::ProviderId;
pub use request::{ContentRequest, NotificationRequest, TemplateReference, ValidatedNotification};
pub use status::{
    AttemptOutcome, DeliveryEvent, DeliveryProgress, DeliveryStatus, InvalidTransition,
    NotificationEvent, NotificationStatus, ProviderReport,
};
pub use validation::{FieldError, ValidationLimits};
pub use vocabulary::Vocabulary;
