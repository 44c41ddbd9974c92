//! The tag cache (docs/DESIGN.md, "The tag cache"): a change made through one replica is what the
//! next send through another uses, a fill racing a write never stores the old value, and with
//! Redis gone PostgreSQL answers and nothing fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use herald_config::CacheSettings;
use herald_store::cache::Redis;
use herald_store::metrics::CacheKind;
use herald_store::tag_cache::{Lookup, Tag, TagCaches};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

fn template(text: &str, with_sms: bool) -> Value {
    let mut channels = json!({"email": {"subject": "Hi", "text": text}});
    if with_sms {
        channels["sms"] = json!({"text": text});
    }
    json!({ "channels": channels })
}

fn templated(template_id: &str, channels: &[&str]) -> Value {
    json!({"user_ids": ["u1"], "channels": channels, "template_id": template_id})
}

async fn accepted_version(app: &TestApp, response: reqwest::Response) -> i64 {
    assert_eq!(response.status(), 202, "accepted");
    let id = json(response).await["id"].as_str().unwrap().to_owned();
    let read = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    read["content"]["template_version"].as_i64().unwrap()
}

/// This process's count of lookups of `kind` that ended in `result` (the API tests run one at a
/// time, so what a test reads is its own).
fn lookups(kind: &str, result: &str) -> u64 {
    herald_store::metrics::CACHE_LOOKUPS
        .with_label_values(&[kind, result])
        .get()
}

#[tokio::test]
async fn a_template_changed_through_one_replica_is_what_the_next_send_through_another_uses() {
    let writer = spawn_app().await;
    let sender = start_app(
        writer.settings.clone(),
        Some((writer.tenant_id, writer.api_key.clone())),
    )
    .await;
    let put = writer
        .send(
            Method::PUT,
            "/v1/templates/alert",
            Some(template("v1", true)),
        )
        .await;
    assert_eq!(put.status(), 201);
    let hits_before = lookups("template_reference", "hit");
    for version in 1..=20i64 {
        // Warm the sender's cache with the current version, twice: the second is a hit.
        for _ in 0..2 {
            let sent = sender
                .post_notification(&templated("alert", &["email"]))
                .await;
            assert_eq!(accepted_version(&sender, sent).await, version);
        }
        let put = writer
            .send(
                Method::PUT,
                "/v1/templates/alert",
                Some(template(&format!("v{}", version + 1), true)),
            )
            .await;
        assert_eq!(put.status(), 200);
        // At once, through the other replica: the new version, never the cached one.
        let sent = sender
            .post_notification(&templated("alert", &["email"]))
            .await;
        assert_eq!(
            accepted_version(&sender, sent).await,
            version + 1,
            "a send right after the change uses it"
        );
    }
    assert!(
        lookups("template_reference", "hit") - hits_before >= 20,
        "the warm sends were answered by the cache"
    );

    // A version without an SMS part: SMS sends are refused at once, on the other replica too.
    let put = writer
        .send(
            Method::PUT,
            "/v1/templates/alert",
            Some(template("email only", false)),
        )
        .await;
    assert_eq!(put.status(), 200);
    let refused = sender
        .post_notification(&templated("alert", &["sms"]))
        .await;
    assert_eq!(refused.status(), 422);
    let deleted = writer
        .send(Method::DELETE, "/v1/templates/alert", None)
        .await;
    assert_eq!(deleted.status(), 204);
    let refused = sender
        .post_notification(&templated("alert", &["email"]))
        .await;
    assert_eq!(
        refused.status(),
        422,
        "a deleted template is refused at once"
    );
    sender.stop().await;
    writer.stop().await;
}

#[tokio::test]
async fn a_group_deleted_and_made_again_through_one_replica_is_what_another_expands() {
    let writer = spawn_app().await;
    let sender = start_app(
        writer.settings.clone(),
        Some((writer.tenant_id, writer.api_key.clone())),
    )
    .await;
    let to_group = json!({"group_ids": ["oncall"], "channels": ["email"], "content": {"subject": "Paged", "body": "x"}});
    let group_of = |app: &TestApp, id: String| {
        let database = app.database.clone();
        async move {
            herald_testing::count(
                &database,
                &format!(
                    "SELECT count(*) FROM group_expansions e JOIN groups g ON g.id = e.group_id \
                     WHERE e.notification_id = '{id}' AND g.deleted_at IS NULL"
                ),
            )
            .await
        }
    };
    for round in 0..5 {
        let put = writer
            .send(Method::PUT, "/v1/groups/oncall", Some(json!({})))
            .await;
        assert_eq!(put.status(), 201, "round {round}");
        for _ in 0..2 {
            let sent = sender.post_notification(&to_group).await;
            assert_eq!(sent.status(), 202, "{}", sent.text().await.unwrap());
            let id = json(sent).await["id"].as_str().unwrap().to_owned();
            assert_eq!(group_of(&sender, id).await, 1, "expands the live group");
        }
        let deleted = writer.send(Method::DELETE, "/v1/groups/oncall", None).await;
        assert_eq!(deleted.status(), 204);
        let refused = sender.post_notification(&to_group).await;
        assert_eq!(refused.status(), 422, "a deleted group is refused at once");
        let refused = json(refused).await;
        assert_eq!(refused["error"]["details"][0]["field"], "group_ids[0]");
    }
    sender.stop().await;
    writer.stop().await;
}

#[tokio::test]
async fn with_redis_gone_postgresql_answers_writes_succeed_and_no_stale_value_is_used_after() {
    let mut redis = herald_testing::RedisServer::start().await;
    let network = herald_testing::TcpProxy::start(redis.port).await;
    let mut settings = fresh_settings(&env("HERALD_TEST_KAFKA_BROKERS")).await;
    settings.redis.url =
        secrecy::SecretString::from(format!("redis://127.0.0.1:{}/0", network.port));
    settings.redis.timeout_ms = 200;
    let app = start_app(settings, None).await;
    let put = |text: String| {
        app.send(
            Method::PUT,
            "/v1/templates/alert",
            Some(template(&text, true)),
        )
    };
    let send_version = || async {
        let sent = app.post_notification(&templated("alert", &["sms"])).await;
        accepted_version(&app, sent).await
    };
    assert_eq!(put("v1".into()).await.status(), 201);
    let mut version = 1;
    for outage in ["cut off: Redis keeps its data", "restarted: Redis loses it"] {
        // Warm: the current version is in Redis and in process.
        let hits_before = lookups("template_reference", "hit");
        for _ in 0..3 {
            assert_eq!(send_version().await, version, "{outage}");
        }
        assert!(lookups("template_reference", "hit") > hits_before);

        let errors_before = lookups("template_reference", "error");
        if outage.starts_with("cut") {
            network.cut();
        } else {
            redis.kill().await;
        }
        version += 1;
        assert!(
            put(format!("v{version}")).await.status().is_success(),
            "{outage}: a write does not need Redis"
        );
        for _ in 0..3 {
            assert_eq!(
                send_version().await,
                version,
                "{outage}: PostgreSQL answers"
            );
        }
        assert!(lookups("template_reference", "error") > errors_before);

        // Back: a Redis that was cut off still holds the entry of the version before, under the
        // stamp the write could not replace. The sends right after must not use it.
        if outage.starts_with("cut") {
            network.restore();
        } else {
            redis.start_again().await;
        }
        let back = tokio::time::Instant::now();
        while back.elapsed() < Duration::from_secs(2) {
            assert_eq!(
                send_version().await,
                version,
                "{outage}: in the seconds after"
            );
        }
        let hits_after = lookups("template_reference", "hit");
        assert!(
            eventually(Duration::from_secs(10), || async {
                send_version().await == version && lookups("template_reference", "hit") > hits_after
            })
            .await,
            "{outage}: the cache answers again once the invalidation landed"
        );
    }
    app.stop().await;
}

/// The race the stamps exist for: a write lands between a miss's reading of the stamps and its
/// reading of PostgreSQL, which answers the value before the write. That value must never be used.
#[tokio::test]
async fn a_fill_racing_a_write_never_stores_the_old_value() {
    let redis = Redis::new(&herald_config::RedisSettings::new(
        secrecy::SecretString::from(env("HERALD_TEST_REDIS_URL")),
        1000,
    ))
    .unwrap();
    let tag_caches = TagCaches::new(redis.clone(), CacheSettings::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(tag_caches.clone().run(shutdown.clone()));
    assert!(eventually(Duration::from_secs(5), || redis.ping()).await);
    let cache = tag_caches.cache::<String>(CacheKind::TemplateReference);
    let tag = Tag::Template {
        tenant_id: Uuid::new_v4(),
        template_id: "race".into(),
    };
    let lookup = [Lookup {
        key: format!("race-{}", Uuid::new_v4()),
        tags: vec![tag.clone()],
    }];
    let loads = Arc::new(AtomicUsize::new(0));
    let read = |value: &'static str, write_meanwhile: bool| {
        let (cache, lookup, loads, tag_caches, tag) = (
            cache.clone(),
            lookup.clone(),
            loads.clone(),
            tag_caches.clone(),
            tag.clone(),
        );
        async move {
            cache
                .get_many(&lookup, |_| async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    if write_meanwhile {
                        tag_caches.invalidator().invalidate(&[tag]).await;
                    }
                    Ok(vec![Some(value.to_owned())])
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(read("old", true).await, vec![Some("old".to_owned())]);
    assert_eq!(
        read("new", false).await,
        vec![Some("new".to_owned())],
        "the entry filled under the stamp the write replaced is not used"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    assert_eq!(read("unused", false).await, vec![Some("new".to_owned())]);
    assert_eq!(loads.load(Ordering::SeqCst), 2, "the new value is cached");

    // The subscription dropped (a Redis failover, a network cut): reads go on, from Redis, and a
    // change made meanwhile is seen; the subscription comes back by itself.
    let killer = redis::Client::open(env("HERALD_TEST_REDIS_URL")).unwrap();
    let mut connection = killer.get_multiplexed_async_connection().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            tag_caches.is_subscribed()
        })
        .await
    );
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            !tag_caches.is_subscribed()
        })
        .await,
        "the drop is noticed"
    );
    assert_eq!(read("unused", false).await, vec![Some("new".to_owned())]);
    tag_caches
        .invalidator()
        .invalidate(std::slice::from_ref(&tag))
        .await;
    assert_eq!(read("newer", false).await, vec![Some("newer".to_owned())]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            tag_caches.is_subscribed()
        })
        .await
    );
    assert_eq!(read("unused", false).await, vec![Some("newer".to_owned())]);
    shutdown.cancel();
}
