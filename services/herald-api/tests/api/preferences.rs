//! Recipients' preferences through the API: read and replaced whole, each problem a 422 naming
//! its field, a version bump so the cached recipient is replaced; a notification's category; a
//! user's time zone from the IANA database.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn preferences_are_replaced_whole_and_read_back_and_each_problem_names_its_field() {
    let app = spawn_app().await;
    let path = "/v1/users/ana/preferences";
    let unknown = app.send(Method::PUT, path, Some(json!({}))).await;
    assert_eq!(unknown.status(), 404, "a user's preferences need the user");
    assert_eq!(app.get(path).await.status(), 404);
    let created = app
        .send(
            Method::PUT,
            "/v1/users/ana",
            Some(json!({"phone": "+14155550101", "timezone": "America/Sao_Paulo"})),
        )
        .await;
    assert_eq!(created.status(), 200);
    let none = json(app.get(path).await).await;
    assert_eq!(
        none,
        json!({"opted_out_channels": [], "opted_out_categories": [], "quiet_hours": null})
    );

    let wanted = json!({
        "opted_out_channels": ["email"],
        "opted_out_categories": ["marketing"],
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    });
    let version = || app.count("SELECT version FROM users WHERE id = 'ana'");
    let before = version().await;
    let replaced = app.send(Method::PUT, path, Some(wanted.clone())).await;
    assert_eq!(replaced.status(), 200);
    assert_eq!(json(replaced).await, wanted);
    assert_eq!(json(app.get(path).await).await, wanted);
    assert_eq!(
        version().await,
        before + 1,
        "a new version replaces the cached recipient"
    );
    // The user's own PUT keeps them.
    app.send(
        Method::PUT,
        "/v1/users/ana",
        Some(json!({"phone": "+14155550102"})),
    )
    .await;
    assert_eq!(json(app.get(path).await).await, wanted);

    let cases = [
        (
            json!({"opted_out_channels": ["fax"]}),
            "opted_out_channels[0]",
        ),
        (
            json!({"opted_out_categories": [""]}),
            "opted_out_categories[0]",
        ),
        (
            json!({"opted_out_categories": ["a\u{0}b"]}),
            "opted_out_categories[0]",
        ),
        (
            json!({"quiet_hours": {"start": "25:00", "end": "07:00"}}),
            "quiet_hours.start",
        ),
        (
            json!({"quiet_hours": {"start": "7:00", "end": "08:00"}}),
            "quiet_hours.start",
        ),
        (
            json!({"quiet_hours": {"start": "08:00", "end": "08:00"}}),
            "quiet_hours.end",
        ),
        (json!({"quiet_hours": {"start": "08:00"}}), "quiet_hours"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let response = app.send(Method::PUT, path, Some(body.clone())).await;
        assert_eq!(response.status(), 422, "{body}");
        let error = json(response).await;
        let fields: Vec<&str> = error["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|detail| detail["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|found| found.starts_with(field)),
            "{field}: {error}"
        );
    }
    let too_many: Vec<String> = (0..101).map(|index| format!("c{index}")).collect();
    let response = app
        .send(
            Method::PUT,
            path,
            Some(json!({"opted_out_categories": too_many})),
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        json(app.get(path).await).await,
        wanted,
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn a_category_and_a_time_zone_are_checked_and_kept() {
    let app = spawn_app().await;
    let mut body = notification(&["u1"]);
    body["category"] = json!("security");
    let accepted = app.post_notification(&body).await;
    assert_eq!(accepted.status(), 202);
    let id = json(accepted).await["id"].as_str().unwrap().to_owned();
    let read = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(read["category"], "security");
    for category in [json!(""), json!("x".repeat(65)), json!("a\u{7}b")] {
        body["category"] = category.clone();
        let response = app.post_notification(&body).await;
        assert_eq!(response.status(), 422, "{category}");
        assert_eq!(
            json(response).await["error"]["details"][0]["field"],
            "category"
        );
    }

    let unknown_zone = app
        .send(
            Method::PUT,
            "/v1/users/u1",
            Some(json!({"timezone": "Mars/Olympus_Mons"})),
        )
        .await;
    assert_eq!(unknown_zone.status(), 422);
    assert_eq!(
        json(unknown_zone).await["error"]["details"][0]["field"],
        "timezone"
    );
    let known_zone = app
        .send(
            Method::PUT,
            "/v1/users/u1",
            Some(json!({"timezone": "Asia/Kolkata"})),
        )
        .await;
    assert_eq!(known_zone.status(), 200);
}
