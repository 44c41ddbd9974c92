//! Start-up validation: every rule names the setting it rejects.

use std::path::Path;

use secrecy::SecretString;

use crate::Settings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be loaded: {0}")]
    Load(#[source] config::ConfigError),
    #[error("unknown setting `{setting}` ({source_hint}): no such setting; see config/herald.toml for every one")]
    Unknown {
        setting: String,
        source_hint: String,
    },
    #[error("invalid setting `{setting}`: {problem}")]
    Invalid { setting: String, problem: String },
}

pub(crate) fn invalid(setting: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        problem: problem.into(),
    }
}

impl Settings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        for entry in &self.server.trusted_proxies {
            let entry = entry.trim();
            if entry.parse::<ipnet::IpNet>().is_err() && entry.parse::<std::net::IpAddr>().is_err()
            {
                return Err(invalid(
                    "server.trusted_proxies",
                    format!("`{entry}` is neither an IP address nor a network (10.0.0.0/8)"),
                ));
            }
        }
        if self.server.metrics_port != 0 && self.server.metrics_port == self.server.port {
            return Err(invalid(
                "server.metrics_port",
                "must differ from server.port: metrics and profiles never share the public port",
            ));
        }
        self.validate_groups()?;
        self.validate_templates()?;
        self.validate_unsubscribe()?;
        if self.cache.ttl_seconds == 0 || self.cache.ttl_seconds > 86_400 {
            return Err(invalid("cache.ttl_seconds", "must be between 1 and 86400"));
        }
        if self.cache.local_max_bytes < 1024 * 1024 {
            return Err(invalid(
                "cache.local_max_bytes",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if self.server.body_read_timeout_ms == 0 {
            return Err(invalid("server.body_read_timeout_ms", "must be at least 1"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.server.max_concurrent_reads == 0
            || self.server.max_concurrent_reads >= self.database.max_connections as usize
        {
            return Err(invalid(
                "server.max_concurrent_reads",
                "must be at least 1 and below database.max_connections, so that reads never hold every connection",
            ));
        }
        if self.server.max_concurrent_reads_per_tenant == 0
            || self.server.max_concurrent_reads_per_tenant > self.server.max_concurrent_reads
        {
            return Err(invalid(
                "server.max_concurrent_reads_per_tenant",
                "must be at least 1 and at most server.max_concurrent_reads",
            ));
        }
        if self.database.query_timeout_ms <= self.database.statement_timeout_ms {
            return Err(invalid(
                "database.query_timeout_ms",
                "must exceed database.statement_timeout_ms, so the server cancels a slow statement before the client gives up on it",
            ));
        }
        if !(1024..=900_000).contains(&self.kafka.max_record_bytes) {
            return Err(invalid(
                "kafka.max_record_bytes",
                "must be between 1024 and 900000 (brokers refuse records over about 1 MB by default)",
            ));
        }
        if self.ingest.max_batch_bytes < self.server.max_body_bytes {
            return Err(invalid(
                "ingest.max_batch_bytes",
                "must be at least server.max_body_bytes, so that any request fits one commit batch",
            ));
        }
        if self.ingest.max_bytes_in_flight < self.server.max_body_bytes {
            return Err(invalid(
                "ingest.max_bytes_in_flight",
                "must be at least server.max_body_bytes, or the largest request could never be taken",
            ));
        }
        let share = self.worker.tenant_held_share;
        if !(share > 0.0 && share <= 1.0) {
            return Err(invalid(
                "worker.tenant_held_share",
                "must be above 0 and at most 1 (the part of a lane's max_held one tenant may hold)",
            ));
        }
        if self.retention.days < 3 {
            return Err(invalid(
                "retention.days",
                "must be at least 3 (scheduling is allowed up to days - 2 ahead)",
            ));
        }
        self.status_events.validate()?;
        if self.retention.premake_days < 1 {
            return Err(invalid("retention.premake_days", "must be at least 1"));
        }
        if self.idempotency.window_hours == 0
            || u64::from(self.idempotency.window_hours) >= u64::from(self.retention.days) * 24
        {
            return Err(invalid(
                "idempotency.window_hours",
                "must be at least 1 and shorter than the retention",
            ));
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must not be empty"));
        }
        self.kafka.security.validate()?;
        self.redis.validate()?;
        if self.kafka.topic.trim().is_empty() {
            return Err(invalid("kafka.topic", "must not be empty"));
        }
        let high_priority_topic = self.kafka.high_priority_topic();
        if high_priority_topic == self.kafka.topic
            || high_priority_topic == format!("{}.dead-letter", self.kafka.topic)
        {
            return Err(invalid(
                "kafka.high_priority_topic",
                "must be a topic of its own: neither kafka.topic nor its dead-letter topic",
            ));
        }
        if self.kafka.partitions < 1 {
            return Err(invalid("kafka.partitions", "must be at least 1"));
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.kafka.compression.as_str()) {
            return Err(invalid(
                "kafka.compression",
                format!(
                    "`{}` is not one of none, gzip, snappy, lz4, zstd",
                    self.kafka.compression
                ),
            ));
        }
        if self.kafka.replication_factor == 0 || self.kafka.replication_factor < -1 {
            return Err(invalid(
                "kafka.replication_factor",
                "must be at least 1, or -1 for the brokers' default.replication.factor",
            ));
        }
        if self.kafka.min_insync_replicas < 0
            || (self.kafka.replication_factor > 0
                && self.kafka.min_insync_replicas > self.kafka.replication_factor)
        {
            return Err(invalid(
                "kafka.min_insync_replicas",
                "must be between 0 (the brokers' default) and kafka.replication_factor, or no record could ever be acknowledged",
            ));
        }
        if !(100..=3_600_000).contains(&self.kafka.metadata_refresh_ms) {
            return Err(invalid(
                "kafka.metadata_refresh_ms",
                "must be between 100 and 3600000",
            ));
        }
        if self.ingest.max_batch_rows == 0 {
            return Err(invalid("ingest.max_batch_rows", "must be at least 1"));
        }
        if self.ingest.max_concurrent_writes == 0 {
            return Err(invalid(
                "ingest.max_concurrent_writes",
                "must be at least 1",
            ));
        }
        if self.ingest.queue_capacity == 0 {
            return Err(invalid("ingest.queue_capacity", "must be at least 1"));
        }
        if self.ingest.max_batch_items == 0
            || self.ingest.max_batch_items > self.ingest.max_batch_rows
        {
            return Err(invalid(
                "ingest.max_batch_items",
                "must be between 1 and ingest.max_batch_rows",
            ));
        }
        if self.outbox.grace_ms <= self.kafka.message_timeout_ms {
            return Err(invalid(
                "outbox.grace_ms",
                "must exceed kafka.message_timeout_ms, or the relay races the fast path",
            ));
        }
        let longest_provider_timeout = self
            .providers
            .lanes()
            .iter()
            .map(|(_, lane)| lane.timeout_ms)
            .max()
            .unwrap_or_default();
        if self.worker.lease_ms < 2 * longest_provider_timeout {
            return Err(invalid(
                "worker.lease_ms",
                format!(
                    "must be at least twice the longest provider timeout ({longest_provider_timeout} ms): \
                     a worker stops starting calls well before its claims can be taken over"
                ),
            ));
        }
        if !(6000..=300_000).contains(&self.worker.session_timeout_ms) {
            return Err(invalid(
                "worker.session_timeout_ms",
                "must be between 6000 and 300000 (the brokers' usual group limits)",
            ));
        }
        if self.worker.batch_size == 0 || self.worker.partition_buffer_kbytes == 0 {
            return Err(invalid(
                "worker.batch_size",
                "worker.batch_size and worker.partition_buffer_kbytes must be at least 1",
            ));
        }
        for (provider, lane) in self.providers.lanes() {
            if lane.max_in_flight == 0 || lane.max_held < lane.max_in_flight {
                return Err(invalid(
                    format!("providers.{provider}.max_in_flight"),
                    "max_in_flight must be at least 1 and max_held at least max_in_flight",
                ));
            }
            if lane.requests_per_second == 0 {
                return Err(invalid(
                    format!("providers.{provider}.requests_per_second"),
                    "provider rate limits must be at least 1/s",
                ));
            }
            if lane.timeout_ms == 0 {
                return Err(invalid(
                    format!("providers.{provider}.timeout_ms"),
                    "every provider call needs a timeout of at least 1 ms",
                ));
            }
        }
        if self.worker.max_attempts < 1 {
            return Err(invalid("worker.max_attempts", "must be at least 1"));
        }
        for (setting, url) in self.providers.base_urls() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(setting, format!("`{url}` is not an http(s) URL")));
            }
        }
        // Twilio signs the exact URL it calls: a query or fragment here would be mangled when the
        // callback path is appended (docs/DESIGN.md, "Provider callbacks").
        let callback_base = &self.providers.twilio.status_callback_base_url;
        if !callback_base.is_empty()
            && (!(callback_base.starts_with("http://") || callback_base.starts_with("https://"))
                || callback_base.contains(['?', '#']))
        {
            return Err(invalid(
                "providers.twilio.status_callback_base_url",
                format!("`{callback_base}` is not an http(s) URL without query or fragment"),
            ));
        }
        let circuit = &self.providers.circuit_breaker;
        if !(circuit.failure_rate > 0.0 && circuit.failure_rate <= 1.0) {
            return Err(invalid(
                "providers.circuit_breaker.failure_rate",
                "must be above 0 and at most 1",
            ));
        }
        if circuit.consecutive_failures == 0
            || circuit.window == 0
            || circuit.minimum_calls == 0
            || circuit.minimum_calls > circuit.window
            || circuit.half_open_probes == 0
        {
            return Err(invalid(
                "providers.circuit_breaker",
                "consecutive_failures, window, minimum_calls and half_open_probes must be at least 1, and minimum_calls at most window",
            ));
        }
        if circuit.open_for_ms == 0 || circuit.max_open_for_ms < circuit.open_for_ms {
            return Err(invalid(
                "providers.circuit_breaker.open_for_ms",
                "must be at least 1 ms, and max_open_for_ms at least open_for_ms",
            ));
        }
        let rate_limit = &self.providers.rate_limit;
        let shares = [
            ("fallback_share", rate_limit.fallback_share),
            ("min_share", rate_limit.min_share),
        ];
        for (name, share) in shares {
            if !(share > 0.0 && share <= 1.0) {
                return Err(invalid(
                    format!("providers.rate_limit.{name}"),
                    "must be above 0 and at most 1",
                ));
            }
        }
        if !(rate_limit.decrease_factor > 0.0 && rate_limit.decrease_factor < 1.0) {
            return Err(invalid(
                "providers.rate_limit.decrease_factor",
                "must be above 0 and below 1",
            ));
        }
        if !(rate_limit.recovery_per_second > 0.0 && rate_limit.recovery_per_second <= 1.0) {
            return Err(invalid(
                "providers.rate_limit.recovery_per_second",
                "must be above 0 and at most 1",
            ));
        }
        if rate_limit.max_pause_ms == 0 {
            return Err(invalid(
                "providers.rate_limit.max_pause_ms",
                "must be at least 1 ms",
            ));
        }
        if self.outbox.relay_batch_limit == 0 {
            return Err(invalid("outbox.relay_batch_limit", "must be at least 1"));
        }
        Ok(())
    }
}

impl Settings {
    fn validate_templates(&self) -> Result<(), ConfigError> {
        let templates = &self.templates;
        if templates.max_per_tenant == 0 {
            return Err(invalid("templates.max_per_tenant", "must be at least 1"));
        }
        if templates.max_versions < 1 {
            return Err(invalid("templates.max_versions", "must be at least 1"));
        }
        if templates.compiled_cache_entries == 0 {
            return Err(invalid(
                "templates.compiled_cache_entries",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_unsubscribe(&self) -> Result<(), ConfigError> {
        use herald_domain::unsubscribe::MIN_SIGNING_KEY_BYTES;
        use secrecy::ExposeSecret;
        let unsubscribe = &self.unsubscribe;
        if unsubscribe.base_url.is_empty() {
            return Ok(());
        }
        let base_url_is_http = url::Url::parse(&unsubscribe.base_url).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.query().is_none()
                && url.fragment().is_none()
        });
        if !base_url_is_http {
            return Err(invalid(
                "unsubscribe.base_url",
                "must be an http(s) URL without a query (the API's public address)",
            ));
        }
        if unsubscribe.signing_key.expose_secret().len() < MIN_SIGNING_KEY_BYTES
            || unsubscribe
                .previous_keys()
                .any(|key| key.len() < MIN_SIGNING_KEY_BYTES)
        {
            return Err(invalid(
                "unsubscribe.signing_key",
                format!("every key must be at least {MIN_SIGNING_KEY_BYTES} bytes while unsubscribe.base_url is set"),
            ));
        }
        Ok(())
    }

    fn validate_groups(&self) -> Result<(), ConfigError> {
        let groups = &self.groups;
        if !(1..=10_000).contains(&groups.page_size) {
            return Err(invalid("groups.page_size", "must be 1 to 10000"));
        }
        if groups.max_members == 0 || groups.max_members > i32::MAX as u64 {
            return Err(invalid("groups.max_members", "must be 1 to 2147483647"));
        }
        for (setting, value) in [
            (
                "groups.max_per_notification",
                groups.max_per_notification as u64,
            ),
            ("groups.max_per_tenant", groups.max_per_tenant),
            (
                "groups.max_concurrent_expansions",
                groups.max_concurrent_expansions as u64,
            ),
            (
                "groups.records_per_second",
                u64::from(groups.records_per_second),
            ),
            ("groups.poll_interval_ms", groups.poll_interval_ms),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// `value`, or the contents of `file` when it is named, without the line break `echo` or an
/// editor leaves at the end of a file (a Secret made with `kubectl create secret
/// --from-file`). Errors name the setting and the file, never the secret.
pub(crate) fn secret_value(
    value: &SecretString,
    file: &str,
    setting: &str,
) -> Result<SecretString, ConfigError> {
    if file.is_empty() {
        return Ok(value.clone());
    }
    let contents = std::fs::read_to_string(file).map_err(|error| {
        invalid(
            format!("{setting}_file"),
            format!("`{file}` cannot be read: {error}"),
        )
    })?;
    Ok(SecretString::from(
        contents.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

/// A file a setting names must be there and readable when the process starts, not found missing
/// at the first connection, minutes later, in a librdkafka log line.
pub(crate) fn readable_file(setting: &str, file: &str) -> Result<(), ConfigError> {
    let path = Path::new(file);
    match std::fs::File::open(path) {
        Ok(_) if path.is_file() => Ok(()),
        Ok(_) => Err(invalid(setting, format!("`{file}` is not a file"))),
        Err(error) => Err(invalid(
            setting,
            format!("`{file}` cannot be read: {error}"),
        )),
    }
}

/// The TLS files of a connection (`{section}.ca_file`, `certificate_file`, `key_file`): each one
/// named must be readable, none may be named while the connection is not encrypted
/// (`not_encrypted` says why it is not), and a client certificate comes with its key.
pub(crate) fn validate_tls_files(
    section: &str,
    [ca_file, certificate_file, key_file]: [&str; 3],
    not_encrypted: Option<String>,
) -> Result<(), ConfigError> {
    for (name, file) in [
        ("ca_file", ca_file),
        ("certificate_file", certificate_file),
        ("key_file", key_file),
    ] {
        if file.is_empty() {
            continue;
        }
        let setting = format!("{section}.{name}");
        if let Some(why) = &not_encrypted {
            return Err(invalid(setting, why.clone()));
        }
        readable_file(&setting, file)?;
    }
    if certificate_file.is_empty() != key_file.is_empty() {
        return Err(invalid(
            format!("{section}.certificate_file"),
            format!("a client certificate needs its key: set both {section}.certificate_file and {section}.key_file, or neither"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::ProviderId;

    #[test]
    fn unsubscribe_links_need_a_long_key_and_an_http_base() {
        let load = |pairs: &[(&str, &str)]| Settings::load_with_environment(None, variables(pairs));
        assert!(load(&[]).unwrap().unsubscribe.links().is_none());
        let key = "k".repeat(32);
        let error = load(&[("HERALD_UNSUBSCRIBE__BASE_URL", "https://herald.example.com")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("unsubscribe.signing_key"), "{error}");
        let error = load(&[
            ("HERALD_UNSUBSCRIBE__BASE_URL", "ftp://herald.example.com"),
            ("HERALD_UNSUBSCRIBE__SIGNING_KEY", &key),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("unsubscribe.base_url"), "{error}");
        let error = load(&[
            ("HERALD_UNSUBSCRIBE__BASE_URL", "https://herald.example.com"),
            ("HERALD_UNSUBSCRIBE__SIGNING_KEY", &key),
            ("HERALD_UNSUBSCRIBE__PREVIOUS_SIGNING_KEYS", "short"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("at least 32 bytes"), "{error}");
        let settings = load(&[
            ("HERALD_UNSUBSCRIBE__BASE_URL", "https://herald.example.com"),
            ("HERALD_UNSUBSCRIBE__SIGNING_KEY", &key),
        ])
        .unwrap();
        assert!(
            !format!("{settings:?}").contains(&key),
            "a key in Debug output"
        );
        assert!(settings.unsubscribe.links().is_some());
    }

    #[test]
    fn defaults_are_valid() {
        Settings::load(None).expect("the built-in defaults must validate");
    }

    fn variables(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn unknown_setting_error(
        config_file: Option<&std::path::Path>,
        environment: &[(&str, &str)],
    ) -> String {
        match Settings::load_with_environment(config_file, variables(environment)) {
            Err(error @ ConfigError::Unknown { .. }) => error.to_string(),
            other => panic!("expected an unknown-setting error, got {other:?}"),
        }
    }

    #[test]
    fn settings_and_script_variables_are_read_and_aliases_apply() {
        let settings = Settings::load_with_environment(
            None,
            variables(&[
                ("HERALD_SERVER__PORT", "1234"),
                ("HERALD_PROVIDERS__SENDGRID__REQUESTS_PER_SECOND", "7"),
                ("HERALD_SENDGRID_FROM", "alias@example.com"),
                ("HERALD_LOG_FORMAT", "json"),
                ("HERALD_SIM_LISTEN", "127.0.0.1:1"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .expect("known settings, script variables and aliases load");
        assert_eq!(settings.server.port, 1234);
        assert_eq!(settings.providers.sendgrid.from, "alias@example.com");
    }

    #[test]
    fn each_lane_is_the_one_its_providers_section_configures() {
        let max_held = |index: usize| 5_000 + index;
        let environment: Vec<(String, String)> = ProviderId::ALL
            .iter()
            .enumerate()
            .filter(|(_, provider)| **provider != ProviderId::Smtp)
            .map(|(index, provider)| {
                let variable = format!(
                    "HERALD_PROVIDERS__{}__MAX_HELD",
                    provider.as_str().to_uppercase()
                );
                (variable, max_held(index).to_string())
            })
            .collect();
        let settings = Settings::load_with_environment(None, environment)
            .expect("each provider's max_held set on its own");
        for (index, provider) in ProviderId::ALL.into_iter().enumerate() {
            let lane = settings.providers.lane(provider);
            assert_eq!(lane.is_none(), provider == ProviderId::Smtp, "{provider}");
            if let Some(lane) = lane {
                assert_eq!(
                    lane.max_held,
                    max_held(index),
                    "the lane of {provider} is not providers.{provider}'s"
                );
            }
        }
        assert_eq!(settings.providers.lanes().len(), ProviderId::ALL.len() - 1);
    }

    #[test]
    fn a_moved_setting_in_the_environment_is_an_error_naming_the_variable() {
        let error = unknown_setting_error(None, &[("HERALD_SENDGRID__REQUESTS_PER_SECOND", "50")]);
        assert!(error.contains("`sendgrid`"), "{error}");
        assert!(
            error.contains("HERALD_SENDGRID__REQUESTS_PER_SECOND"),
            "{error}"
        );

        let error = unknown_setting_error(None, &[("HERALD_SERVER__MAX_BODY_BYTE", "50")]);
        assert!(error.contains("`server.max_body_byte`"), "{error}");
    }

    #[test]
    fn a_flat_provider_variable_that_is_no_alias_is_an_error() {
        let error = unknown_setting_error(None, &[("HERALD_SENDGRID_REQUESTS_PER_SECOND", "50")]);
        assert!(
            error.contains("HERALD_SENDGRID_REQUESTS_PER_SECOND"),
            "{error}"
        );
        assert!(
            error.contains("HERALD_SENDGRID_API_KEY"),
            "lists the aliases: {error}"
        );
    }

    #[test]
    fn a_misspelled_key_in_the_configuration_file_is_an_error_naming_it() {
        let file = std::env::temp_dir().join(format!(
            "herald-unknown-setting-{}.toml",
            std::process::id()
        ));
        std::fs::write(&file, "[worker]\nmax_atempts = 3\n").unwrap();
        let error = unknown_setting_error(Some(&file), &[]);
        std::fs::remove_file(&file).unwrap();
        assert!(error.contains("`worker.max_atempts`"), "{error}");
        assert!(error.contains("configuration file"), "{error}");
    }

    #[test]
    fn the_status_callback_base_url_is_an_http_url_without_query_and_builds_callback_urls() {
        let mut settings = Settings::load(None).unwrap();
        assert_eq!(
            settings.providers.twilio.status_callback_url("n", "d"),
            None,
            "empty: no status callbacks"
        );
        settings.providers.twilio.status_callback_base_url = "https://herald.example.com/".into();
        settings.validate().unwrap();
        assert_eq!(
            settings
                .providers
                .twilio
                .status_callback_url("n", "d")
                .unwrap(),
            "https://herald.example.com/v1/providers/twilio/status?notification_id=n&delivery_id=d"
        );
        for mistake in ["herald.example.com", "https://herald.example.com/?x=1"] {
            settings.providers.twilio.status_callback_base_url = mistake.into();
            let error = settings.validate().unwrap_err().to_string();
            assert!(
                error.contains("providers.twilio.status_callback_base_url"),
                "{error}"
            );
        }
    }

    #[test]
    fn grace_shorter_than_message_timeout_is_rejected_by_name() {
        let mut settings = Settings::load(None).unwrap();
        settings.outbox.grace_ms = settings.kafka.message_timeout_ms;
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("outbox.grace_ms"), "{error}");
    }

    #[test]
    fn rate_limit_shares_outside_their_range_are_rejected_by_name() {
        let defaults = Settings::load(None).unwrap();
        type Mistake = (&'static str, fn(&mut crate::RateLimitConfig));
        let mistakes: [Mistake; 5] = [
            ("fallback_share", |limit| limit.fallback_share = 0.0),
            ("min_share", |limit| limit.min_share = 1.5),
            ("decrease_factor", |limit| limit.decrease_factor = 1.0),
            ("recovery_per_second", |limit| {
                limit.recovery_per_second = -0.1
            }),
            ("max_pause_ms", |limit| limit.max_pause_ms = 0),
        ];
        for (name, mistake) in mistakes {
            let mut settings = defaults.clone();
            mistake(&mut settings.providers.rate_limit);
            let error = settings.validate().unwrap_err().to_string();
            assert!(
                error.contains(&format!("providers.rate_limit.{name}")),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn a_lease_shorter_than_two_provider_timeouts_is_rejected_by_name() {
        let mut settings = Settings::load(None).unwrap();
        settings.worker.lease_ms = settings.providers.twilio.timeout_ms;
        let error = settings.validate().unwrap_err().to_string();
        assert!(
            error.starts_with("invalid setting `worker.lease_ms`"),
            "{error}"
        );
    }

    #[test]
    fn the_high_priority_topic_is_derived_and_must_be_a_topic_of_its_own() {
        let mut settings = Settings::load(None).unwrap();
        assert_eq!(
            settings.kafka.high_priority_topic(),
            format!("{}.high", settings.kafka.topic)
        );
        for clash in [
            settings.kafka.topic.clone(),
            format!("{}.dead-letter", settings.kafka.topic),
        ] {
            settings.kafka.high_priority_topic = clash.clone();
            let error = settings.validate().unwrap_err().to_string();
            assert!(
                error.contains("kafka.high_priority_topic"),
                "{clash}: {error}"
            );
        }
        settings.kafka.high_priority_topic = "urgent".into();
        assert_eq!(settings.kafka.high_priority_topic(), "urgent");
        settings.validate().unwrap();
        // Empty (or blank) follows the main topic.
        settings.kafka.high_priority_topic = " ".into();
        settings.kafka.topic = "tenant-events".into();
        assert_eq!(settings.kafka.high_priority_topic(), "tenant-events.high");
    }

    #[test]
    fn replication_settings_that_could_never_acknowledge_are_rejected_by_name() {
        let defaults = Settings::load(None).unwrap();
        type Mistake = (&'static str, fn(&mut crate::KafkaSettings));
        let mistakes: [Mistake; 4] = [
            ("kafka.replication_factor", |kafka| {
                kafka.replication_factor = 0
            }),
            ("kafka.replication_factor", |kafka| {
                kafka.replication_factor = -2
            }),
            ("kafka.min_insync_replicas", |kafka| {
                kafka.replication_factor = 3;
                kafka.min_insync_replicas = 4;
            }),
            ("kafka.min_insync_replicas", |kafka| {
                kafka.min_insync_replicas = -1
            }),
        ];
        for (name, mistake) in mistakes {
            let mut settings = defaults.clone();
            mistake(&mut settings.kafka);
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(name), "{name}: {error}");
        }
        let mut settings = defaults.clone();
        settings.kafka.replication_factor = 3;
        settings.kafka.min_insync_replicas = 2;
        settings.validate().unwrap();
    }

    #[test]
    fn unknown_compression_is_rejected_by_name() {
        let mut settings = Settings::load(None).unwrap();
        settings.kafka.compression = "brotli".into();
        let error = settings.validate().unwrap_err().to_string();
        assert!(
            error.contains("kafka.compression") && error.contains("brotli"),
            "{error}"
        );
    }
}
