//! The registration of the channel kinds: [`channel_kinds!`](crate::channel_kinds), which `lib.rs`
//! invokes once with every kind, generates each type and function that lists the channels.

/// Registers the channel kinds: `Variant(field) => kind::Type,` per kind, where `field` is both
/// the `channel_data` key and the `[providers.<field>]` section (a test checks that it is the
/// kind's channel and provider name) and `Variant` the [`Contact`](crate::Contact) variant.
///
/// Generates `ChannelData` (validated, and its answered view), `Contact` with its channel and
/// destination, the channel policies, `ProvidersSettings` and the kinds' lanes.
#[macro_export]
macro_rules! channel_kinds {
    ($( $variant:ident($field:ident) => $kind:ty ),+ $(,)?) => {
        /// A recipient's contacts on the channels that are not email or SMS; each is optional.
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ChannelData {
            $(
                #[serde(
                    default,
                    skip_serializing_if = "Option::is_none",
                    deserialize_with = "herald_domain::objects_only::optional_object"
                )]
                pub $field: Option<<$kind as $crate::kind::ChannelKind>::Contact>,
            )+
        }

        /// `channel_data` as the API answers it: secrets are never given back.
        #[derive(Debug, serde::Serialize)]
        pub struct ChannelDataView {
            $(
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<<$kind as $crate::kind::ChannelKind>::ContactView>,
            )+
        }

        impl ChannelData {
            /// Every problem, each naming its field below `channel_data`.
            pub fn problems(&self, allow_private_networks: bool) -> Vec<herald_domain::FieldError> {
                let mut problems = Vec::new();
                $(
                    if let Some(contact) = &self.$field {
                        problems.extend(
                            <$kind as $crate::kind::ChannelKind>::contact_problems(
                                contact,
                                allow_private_networks,
                            )
                            .into_iter()
                            .map(|problem| problem.below(concat!("channel_data.", stringify!($field)))),
                        );
                    }
                )+
                problems
            }

            /// The recipient's contact on `channel`, if it is a kind's and they have one.
            pub fn contact(&self, channel: herald_domain::Channel) -> Option<Contact> {
                $(
                    if channel == <$kind as $crate::kind::ChannelKind>::CHANNEL {
                        return self.$field.clone().map(Contact::$variant);
                    }
                )+
                None
            }

            pub fn view(&self) -> ChannelDataView {
                ChannelDataView {
                    $(
                        $field: self
                            .$field
                            .as_ref()
                            .map(<$kind as $crate::kind::ChannelKind>::view),
                    )+
                }
            }
        }

        $crate::object_schema!(ChannelData, "ChannelData", Contact, $($field => $kind),+);
        $crate::object_schema!(ChannelDataView, "ChannelDataView", ContactView, $($field => $kind),+);

        /// Where one delivery goes: the recipient's contact on the delivery's channel.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Contact {
            Email(String),
            /// E.164.
            Phone(String),
            $( $variant(<$kind as $crate::kind::ChannelKind>::Contact), )+
        }

        impl Contact {
            pub fn channel(&self) -> herald_domain::Channel {
                match self {
                    Contact::Email(_) => herald_domain::Channel::Email,
                    Contact::Phone(_) => herald_domain::Channel::Sms,
                    $( Contact::$variant(_) => <$kind as $crate::kind::ChannelKind>::CHANNEL, )+
                }
            }

            /// Where the delivery goes when the tenant chose it; `None` for a provider's own API.
            pub fn destination_key(&self) -> Option<String> {
                match self {
                    Contact::Email(_) | Contact::Phone(_) => None,
                    $(
                        Contact::$variant(contact) => {
                            <$kind as $crate::kind::ChannelKind>::destination_key(contact)
                        }
                    )+
                }
            }
        }

        /// Do the tenants choose where this channel's deliveries go (a URL in the contact)?
        pub fn channel_has_tenant_destinations(channel: herald_domain::Channel) -> bool {
            $(
                if channel == <$kind as $crate::kind::ChannelKind>::CHANNEL {
                    return <$kind as $crate::kind::ChannelKind>::TENANT_DESTINATIONS;
                }
            )+
            false
        }

        /// What a 429 on this channel limits: the account for email and SMS, else the kind's.
        pub fn rate_limit_scope(channel: herald_domain::Channel) -> $crate::kind::RateLimitScope {
            $(
                if channel == <$kind as $crate::kind::ChannelKind>::CHANNEL {
                    return <$kind as $crate::kind::ChannelKind>::RATE_LIMIT_SCOPE;
                }
            )+
            $crate::kind::RateLimitScope::Account
        }

        /// `[providers]`: the shared circuit-breaker and rate-limit settings, the email and SMS
        /// providers, and one section per kind.
        #[derive(Debug, Clone, serde::Deserialize)]
        pub struct ProvidersSettings {
            pub circuit_breaker: $crate::settings::CircuitBreakerConfig,
            pub rate_limit: $crate::settings::RateLimitConfig,
            pub sendgrid: $crate::sendgrid::SendGridSettings,
            pub twilio: $crate::twilio::TwilioSettings,
            /// Plain SMTP, the email failover when SendGrid's circuit is open.
            pub smtp: $crate::smtp::SmtpSettings,
            $( pub $field: <$kind as $crate::kind::ChannelKind>::Settings, )+
        }

        impl ProvidersSettings {
            /// A provider's lane (`providers.<id>`); SMTP has none: it sends within SendGrid's.
            pub fn lane(&self, provider: herald_domain::ProviderId) -> Option<$crate::settings::LaneSettings> {
                use $crate::settings::ProviderSection;
                match provider {
                    herald_domain::ProviderId::SendGrid => return Some(self.sendgrid.lane()),
                    herald_domain::ProviderId::Twilio => return Some(self.twilio.lane()),
                    herald_domain::ProviderId::Smtp => return None,
                    _ => {}
                }
                $(
                    if provider == <$kind as $crate::kind::ChannelKind>::PROVIDER {
                        return Some(self.$field.lane());
                    }
                )+
                None
            }

            /// The base URLs of the providers that have one, by setting name.
            pub fn base_urls(&self) -> Vec<(&'static str, &str)> {
                use $crate::settings::ProviderSection;
                let mut base_urls = vec![
                    ("providers.sendgrid.base_url", self.sendgrid.base_url.as_str()),
                    ("providers.twilio.base_url", self.twilio.base_url.as_str()),
                ];
                $(
                    if let Some(base_url) = self.$field.base_url() {
                        base_urls.push((concat!("providers.", stringify!($field), ".base_url"), base_url));
                    }
                )+
                base_urls
            }

            /// Every provider's call timeout set to `timeout_ms` (tests shorten them all).
            pub fn set_timeouts_ms(&mut self, timeout_ms: u64) {
                use $crate::settings::ProviderSection;
                self.sendgrid.set_timeout_ms(timeout_ms);
                self.twilio.set_timeout_ms(timeout_ms);
                self.smtp.timeout_ms = timeout_ms;
                $( self.$field.set_timeout_ms(timeout_ms); )+
            }

            /// The base URLs of the kinds at a configured URL, by provider name (tests point them
            /// at a simulator).
            pub fn kind_base_urls_mut(&mut self) -> Vec<(&'static str, &mut String)> {
                let mut base_urls = Vec::new();
                $(
                    if let Some(base_url) = $crate::settings::ProviderSection::base_url_mut(&mut self.$field) {
                        base_urls.push((stringify!($field), base_url));
                    }
                )+
                base_urls
            }

            /// Each kind's sender with its lane's settings.
            pub(crate) fn kind_lanes(
                &self,
                clients: &$crate::kind::HttpClients,
            ) -> anyhow::Result<Vec<$crate::provider::ProviderLane>> {
                use $crate::settings::ProviderSection;
                Ok(vec![$(
                    $crate::provider::ProviderLane {
                        provider: <$kind as $crate::kind::ChannelKind>::sender(&self.$field, clients)?,
                        lane: self.$field.lane(),
                        failover: None,
                    },
                )+])
            }
        }

        /// The registered kinds' names as `channel_data` and `[providers.*]` spell them, with the
        /// channel and provider they declare (a test checks that all three agree).
        pub const KINDS: &[(&str, herald_domain::Channel, herald_domain::ProviderId)] = &[$(
            (
                stringify!($field),
                <$kind as $crate::kind::ChannelKind>::CHANNEL,
                <$kind as $crate::kind::ChannelKind>::PROVIDER,
            ),
        )+];
    };
}

/// An object schema whose properties are the kinds' `$part` types (`Contact` or `ContactView`),
/// each by reference or `null`, with no other property allowed: what `#[derive(ToSchema)]` would write, which
/// cannot read a kind's associated types.
#[doc(hidden)]
#[macro_export]
macro_rules! object_schema {
    ($type:ident, $name:literal, $part:ident, $($field:ident => $kind:ty),+) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::ToSchema;
                utoipa::openapi::schema::ObjectBuilder::new()
                    $(
                        // Optional and nullable: `null` is taken as absent.
                        .property(
                            stringify!($field),
                            utoipa::openapi::schema::OneOfBuilder::new()
                                .item(utoipa::openapi::schema::Object::with_type(
                                    utoipa::openapi::schema::Type::Null,
                                ))
                                .item(utoipa::openapi::Ref::from_schema_name(
                                    <<$kind as $crate::kind::ChannelKind>::$part>::name(),
                                )),
                        )
                    )+
                    .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }

            fn schemas(
                schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
            ) {
                use utoipa::PartialSchema;
                $(
                    schemas.push((
                        <<$kind as $crate::kind::ChannelKind>::$part>::name().into_owned(),
                        <<$kind as $crate::kind::ChannelKind>::$part>::schema(),
                    ));
                    <<$kind as $crate::kind::ChannelKind>::$part>::schemas(schemas);
                )+
            }
        }
    };
}
