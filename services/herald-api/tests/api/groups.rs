//! Groups of recipients through the API: their lifecycle, members in pages, the bounds a hostile
//! tenant meets, and a notification to groups being one small commit with one expansion per group.

use serde_json::{json, Value};

use crate::helpers::*;

impl TestApp {
    async fn put_group(&self, group_id: &str, name: &str) -> reqwest::Response {
        self.send(
            reqwest::Method::PUT,
            &format!("/v1/groups/{group_id}"),
            Some(json!({"name": name})),
        )
        .await
    }

    async fn add_members(&self, group_id: &str, user_ids: &[String]) -> reqwest::Response {
        self.send(
            reqwest::Method::POST,
            &format!("/v1/groups/{group_id}/members"),
            Some(json!({ "user_ids": user_ids })),
        )
        .await
    }

    async fn remove_members(&self, group_id: &str, user_ids: &[String]) -> reqwest::Response {
        self.send(
            reqwest::Method::DELETE,
            &format!("/v1/groups/{group_id}/members"),
            Some(json!({ "user_ids": user_ids })),
        )
        .await
    }
}

fn users(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("{prefix}-{index:05}")).collect()
}

/// A notification to `groups` only, no user named.
fn to_groups(groups: Value) -> Value {
    let mut body = notification(&["placeholder"]);
    body["user_ids"] = json!([]);
    body["group_ids"] = groups;
    body
}

fn detail_fields(error: &Value) -> Vec<String> {
    error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|detail| detail["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_group_is_created_renamed_read_and_deleted_and_its_id_names_a_new_group_after() {
    let app = spawn_app().await;
    let created = app.put_group("on-call", "On call").await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["id"], "on-call");
    assert_eq!(created["member_count"], 0);

    let renamed = app.put_group("on-call", "On-call engineers").await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(json(renamed).await["name"], "On-call engineers");

    let added = app.add_members("on-call", &users("u", 0..3)).await;
    assert_eq!(added.status(), 200);
    assert_eq!(json(added).await, json!({"changed": 3, "member_count": 3}));
    let read = json(app.get("/v1/groups/on-call").await).await;
    assert_eq!(read["member_count"], 3);
    assert_eq!(read["created_at"], created["created_at"]);

    let deleted = app
        .send(reqwest::Method::DELETE, "/v1/groups/on-call", None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get("/v1/groups/on-call").await.status(), 404);
    let again = app
        .send(reqwest::Method::DELETE, "/v1/groups/on-call", None)
        .await;
    assert_eq!(again.status(), 404);
    assert_eq!(
        app.add_members("on-call", &users("u", 3..4)).await.status(),
        404
    );

    // The same id now names a new, empty group: the deleted one's members do not come back.
    let recreated = app.put_group("on-call", "On call again").await;
    assert_eq!(recreated.status(), 201);
    assert_eq!(json(recreated).await["member_count"], 0);
    let members = json(app.get("/v1/groups/on-call/members").await).await;
    assert_eq!(members["data"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn members_are_added_and_removed_in_pages_and_listed_by_cursor() {
    let app = spawn_app().await;
    app.put_group("plant", "Plant").await;
    for page in 0..3 {
        let response = app
            .add_members("plant", &users("u", page * 1000..(page + 1) * 1000))
            .await;
        assert_eq!(response.status(), 200);
    }
    // Members already in are left as they are, and not counted twice.
    let overlapping = json(app.add_members("plant", &users("u", 2990..3010)).await).await;
    assert_eq!(overlapping, json!({"changed": 10, "member_count": 3010}));
    let removed = json(app.remove_members("plant", &users("u", 0..1000)).await).await;
    assert_eq!(removed, json!({"changed": 1000, "member_count": 2010}));
    let removed_again = json(app.remove_members("plant", &users("u", 0..10)).await).await;
    assert_eq!(removed_again, json!({"changed": 0, "member_count": 2010}));

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(after) => format!("/v1/groups/plant/members?limit=1000&after={after}"),
            None => "/v1/groups/plant/members?limit=1000".to_owned(),
        };
        let page = json(app.get(&path).await).await;
        listed.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|member| member.as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        listed,
        users("u", 1000..3010),
        "every current member once, in order"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM group_members WHERE removed_at IS NOT NULL")
            .await,
        1000,
        "removals close rows: notifications accepted before still reach those members"
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_group_writes_get_clear_errors_and_change_nothing() {
    let app = spawn_app_with(|settings| {
        settings.groups.max_members = 5;
        settings.groups.max_per_tenant = 2;
        settings.groups.page_size = 4;
    })
    .await;
    assert_eq!(app.put_group("a", "A").await.status(), 201);
    assert_eq!(app.put_group("b", "B").await.status(), 201);
    let third = app.put_group("c", "C").await;
    assert_eq!(third.status(), 409);
    assert_eq!(json(third).await["error"]["code"], "limit_reached");

    let too_long = "g".repeat(129);
    let response = app.put_group(&too_long, "x").await;
    assert_eq!(response.status(), 422);
    assert_eq!(detail_fields(&json(response).await), vec!["group_id"]);

    // More than a page per request, a NUL, a duplicate, an empty id: each named.
    let response = app.add_members("a", &users("u", 0..5)).await;
    assert_eq!(response.status(), 422);
    assert_eq!(detail_fields(&json(response).await), vec!["user_ids"]);
    let bad = vec![
        "ok".to_owned(),
        "nul\u{0}".to_owned(),
        "ok".to_owned(),
        String::new(),
    ];
    let response = app.add_members("a", &bad).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        detail_fields(&json(response).await),
        vec!["user_ids[1]", "user_ids[2]", "user_ids[3]"]
    );
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/groups/a/members",
            Some(json!({"user_ids": "u1"})),
        )
        .await;
    assert_eq!(response.status(), 422, "a string is not a list");

    // Past max_members: refused whole, nothing added.
    assert_eq!(app.add_members("a", &users("u", 0..4)).await.status(), 200);
    let response = app.add_members("a", &users("u", 3..5)).await;
    assert_eq!(response.status(), 200, "one new member fits");
    let response = app.add_members("a", &users("v", 0..2)).await;
    assert_eq!(response.status(), 409);
    let error = json(response).await;
    assert_eq!(error["error"]["code"], "limit_reached");
    assert_eq!(error["error"]["details"]["limit"], 5);
    assert_eq!(json(app.get("/v1/groups/a").await).await["member_count"], 5);
    assert_eq!(app.count("SELECT count(*) FROM group_members").await, 5);

    assert_eq!(
        app.add_members("nope", &users("u", 0..1)).await.status(),
        404
    );
    assert_eq!(app.get("/v1/groups/nope/members").await.status(), 404);
    // An id no group can have is "no such group" to reads and deletes, and a cursor no member
    // can have is a 400: never a 500 from the database refusing a NUL.
    for (path, expected) in [
        ("/v1/groups/bad%00id", 404),
        ("/v1/groups/bad%00id/members", 404),
        ("/v1/groups/a/members?after=x%00", 400),
    ] {
        assert_eq!(app.get(path).await.status(), expected, "{path}");
    }
    let deleted = app
        .send(reqwest::Method::DELETE, "/v1/groups/bad%00id", None)
        .await;
    assert_eq!(deleted.status(), 404);
    assert_eq!(
        app.add_members("bad%01id", &users("u", 0..1))
            .await
            .status(),
        422
    );
    let response = app.get("/v1/groups/a/members?limit=0").await;
    assert_eq!(response.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_group_cannot_be_read_changed_or_named() {
    let app = spawn_app().await;
    let (_, other_key) = create_tenant(&app.settings, &app.database, "other").await;
    let other = reqwest::Client::new();
    let response = other
        .put(format!("{}/v1/groups/shared", app.address))
        .bearer_auth(&other_key)
        .json(&json!({"name": "theirs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    assert_eq!(app.get("/v1/groups/shared").await.status(), 404);
    assert_eq!(
        app.add_members("shared", &users("u", 0..1)).await.status(),
        404
    );
    let response = app.post_notification(&to_groups(json!(["shared"]))).await;
    assert_eq!(response.status(), 422);
    assert_eq!(detail_fields(&json(response).await), vec!["group_ids[0]"]);
    app.stop().await;
}

#[tokio::test]
async fn a_notification_to_groups_is_one_small_commit_with_one_expansion_per_group() {
    let app = spawn_app().await;
    for group in ["north", "south"] {
        app.put_group(group, group).await;
        app.add_members(group, &users(group, 0..1000)).await;
    }
    let mut body = notification(&["direct-1"]);
    body["group_ids"] = json!(["north", "south"]);
    let response = app.post_notification(&body).await;
    assert_eq!(response.status(), 202);
    let id = json(response).await["id"].as_str().unwrap().to_owned();

    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM group_expansions WHERE notification_id = '{id}'"
        ))
        .await,
        2
    );
    let view = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(view["group_ids"], json!(["north", "south"]));
    assert_eq!(view["status"], "accepted");
    assert_eq!(view["delivery_summary"]["expansions_pending"], 2);
    assert_eq!(
        view["delivery_summary"]["expected"], 2,
        "only the named recipient's deliveries are known before the expansion"
    );
    // The API produced the named recipient's record only: the members are the worker's to produce.
    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        2,
        std::time::Duration::from_secs(5),
    )
    .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].envelope.user_id, "direct-1");

    // Only groups, no named recipient, is a notification too.
    let only = app.post_notification(&to_groups(json!(["north"]))).await;
    let status = only.status();
    assert_eq!(status, 202, "{}", only.text().await.unwrap());
    app.stop().await;
}

#[tokio::test]
async fn unknown_deleted_repeated_or_too_many_groups_are_a_422_naming_each() {
    let app = spawn_app_with(|settings| settings.groups.max_per_notification = 2).await;
    app.put_group("live", "live").await;
    app.put_group("gone", "gone").await;
    app.send(reqwest::Method::DELETE, "/v1/groups/gone", None)
        .await;

    let with_groups = to_groups;
    let response = app
        .post_notification(&with_groups(json!(["live", "nope", "gone"])))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        detail_fields(&json(response).await),
        vec!["group_ids"],
        "three is over two"
    );
    let response = app
        .post_notification(&with_groups(json!(["nope", "gone"])))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        detail_fields(&json(response).await),
        vec!["group_ids[0]", "group_ids[1]"]
    );
    let response = app
        .post_notification(&with_groups(json!(["live", "live"])))
        .await;
    assert_eq!(detail_fields(&json(response).await), vec!["group_ids[1]"]);
    let response = app
        .post_notification(&with_groups(json!(["bad\u{0}"])))
        .await;
    assert_eq!(detail_fields(&json(response).await), vec!["group_ids[0]"]);
    let response = app.post_notification(&with_groups(json!([]))).await;
    assert_eq!(
        detail_fields(&json(response).await),
        vec!["user_ids"],
        "no recipient at all"
    );

    // In a batch, the item naming an unknown group is refused and the others are accepted.
    let batch =
        json!({"notifications": [with_groups(json!(["live"])), with_groups(json!(["nope"]))]});
    let response = app.post_json("/v1/notifications/batch", &batch).await;
    assert_eq!(response.status(), 202);
    let results = json(response).await;
    assert_eq!(results["accepted"], 1);
    assert_eq!(
        results["results"][1]["error"]["details"][0]["field"],
        "notifications[1].group_ids[0]"
    );
    assert_eq!(app.count("SELECT count(*) FROM group_expansions").await, 1);
    app.stop().await;
}
