//! `GET /v1/notifications/export`: every row once, in order, as NDJSON or CSV, filtered by time and
//! status, resumable by cursor; one export per tenant at a time across replicas; clear errors.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

async fn export(app: &TestApp, query: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/v1/notifications/export{query}", app.address))
        .bearer_auth(&app.api_key);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    request.send().await.unwrap()
}

/// The NDJSON rows of an export that must succeed.
async fn ndjson_rows(app: &TestApp, query: &str) -> Vec<Value> {
    let response = export(app, query, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-ndjson",
        "NDJSON without an Accept"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Posts `count` notifications (1,000 per batch); their ids in acceptance order.
async fn accept_notifications(app: &TestApp, count: usize, subject: &str) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    let indices: Vec<usize> = (0..count).collect();
    for chunk in indices.chunks(1000) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|index| {
                let mut item = notification(&[&format!("u{index}")]);
                item["content"]["subject"] = json!(subject);
                item
            })
            .collect();
        let response = app
            .post_json(
                "/v1/notifications/batch",
                &json!({ "notifications": items }),
            )
            .await;
        assert_eq!(response.status(), 202);
        for result in json(response).await["results"].as_array().unwrap() {
            ids.push(result["id"].as_str().unwrap().parse().unwrap());
        }
    }
    ids.sort();
    ids
}

fn ids_of(rows: &[Value]) -> Vec<Uuid> {
    rows.iter()
        .map(|row| row["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn an_export_gives_every_row_once_in_order_filtered_and_resumable_by_cursor() {
    let app = spawn_app().await;
    let ids = accept_notifications(&app, 2500, "Pressure").await;
    // A fifth of them delivered.
    execute(
        &app.database,
        &format!(
            "UPDATE notification_states SET status = 'delivered' WHERE id IN ({})",
            ids.iter()
                .step_by(5)
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .await;

    let rows = ndjson_rows(&app, "").await;
    assert_eq!(ids_of(&rows), ids, "every row once, oldest first");
    assert_eq!(rows[0]["user_ids"], json!(["u0"]));
    assert_eq!(rows[0]["channels"], json!(["email", "sms"]));
    assert_eq!(rows[0]["deliveries_expected"], 2);

    let delivered = ndjson_rows(&app, "?status=delivered").await;
    assert_eq!(
        ids_of(&delivered),
        ids.iter().step_by(5).copied().collect::<Vec<_>>()
    );
    assert!(delivered.iter().all(|row| row["status"] == "delivered"));

    // Resumed after the 1,000th row: the other 1,500, nothing twice.
    let rest = ndjson_rows(&app, &format!("?cursor={}", ids[999])).await;
    assert_eq!(ids_of(&rest), ids[1000..].to_vec());

    // A window that ends before them, and one that starts after them.
    let earlier = ndjson_rows(&app, "?to=2020-01-01T00:00:00Z").await;
    assert!(earlier.is_empty());
    let later = ndjson_rows(&app, "?from=2999-01-01T00:00:00Z&to=2999-01-02T00:00:00Z").await;
    assert!(later.is_empty());
    let since = rows[1500]["created_at"].as_str().unwrap();
    let recent = ndjson_rows(&app, &format!("?from={}", since.replace('+', "%2B"))).await;
    assert!(
        recent.len() >= 1000 && recent.len() <= 1500,
        "from a row's acceptance millisecond: {} rows",
        recent.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_csv_export_has_a_header_and_keeps_commas_quotes_and_lines_in_their_cells() {
    let app = spawn_app().await;
    let subject = "Pressure, \"high\"\nline two";
    let ids = accept_notifications(&app, 3, subject).await;
    let response = export(&app, "", Some("text/csv")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "id");
    assert_eq!(header[8], "subject");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    for (record, id) in records.iter().zip(&ids) {
        assert_eq!(record[0], id.to_string());
        assert_eq!(&record[8], subject);
        let user_ids: Vec<String> = serde_json::from_str(&record[6]).unwrap();
        assert_eq!(user_ids.len(), 1, "a JSON array in one cell");
    }

    // An empty export is the header alone.
    let empty = export(&app, "?to=2020-01-01T00:00:00Z", Some("text/csv")).await;
    assert_eq!(empty.text().await.unwrap().lines().count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn one_export_per_tenant_at_a_time_across_replicas() {
    let app = spawn_app().await;
    accept_notifications(&app, 10, "Pressure").await;
    // Another replica's export holds the tenant's lease.
    let other_replica = Uuid::new_v4();
    assert!(herald_store::exports::take_lease(
        &app.database,
        app.tenant_id,
        other_replica,
        Duration::from_secs(60)
    )
    .await
    .unwrap());
    let refused = export(&app, "", None).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(json(refused).await["error"]["code"], "export_in_progress");

    // Another tenant is not held up.
    let (_, other_key) = create_tenant(&app.settings, &app.database, "neighbour").await;
    let neighbour = app
        .client
        .get(format!("{}/v1/notifications/export", app.address))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(neighbour.status(), 200);

    // A replica that died mid-export: its lease expires and the next export goes ahead.
    herald_store::exports::release_lease(&app.database, app.tenant_id, other_replica)
        .await
        .unwrap();
    assert!(herald_store::exports::take_lease(
        &app.database,
        app.tenant_id,
        other_replica,
        Duration::from_millis(1)
    )
    .await
    .unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(ndjson_rows(&app, "").await.len(), 10);
    // And a finished export gave its lease back.
    assert_eq!(ndjson_rows(&app, "").await.len(), 10);
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_export_frees_the_tenant_for_the_next_one() {
    let app = spawn_app().await;
    accept_notifications(&app, 5000, &"x".repeat(900)).await;
    let mut response = export(&app, "", None).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(response);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let next = export(&app, "", None).await;
        if next.status() == 200 {
            assert_eq!(next.text().await.unwrap().lines().count(), 5000);
            break;
        }
        assert_eq!(next.status(), 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease was never given back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_export_requests_get_clear_errors() {
    let app = spawn_app().await;
    for (query, expected) in [
        ("?status=bogus", "status"),
        ("?from=yesterday", "from"),
        ("?to=2026-13-01T00:00:00Z", "to"),
        ("?cursor=not-a-cursor", "cursor"),
        (
            "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "before",
        ),
        ("?colour=blue", "colour"),
    ] {
        let response = export(&app, query, None).await;
        assert_eq!(response.status(), 400, "{query}");
        let error = json(response).await;
        assert_eq!(error["error"]["code"], "invalid_query");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{query}: {error}"
        );
    }
    let response = export(&app, "", Some("application/xml")).await;
    assert_eq!(response.status(), 406);
    assert_eq!(json(response).await["error"]["code"], "not_acceptable");
    app.stop().await;
}

#[tokio::test]
async fn an_export_that_stops_before_its_end_is_cut_short_never_ended_as_if_whole() {
    let app = spawn_app().await;
    // 20,000 rows of about 1 KiB: more than the channel, actix and the socket buffers hold, so the
    // export is still running when its lease is taken away.
    accept_notifications(&app, 20_000, &"x".repeat(900)).await;
    let mut response = export(&app, "", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());
    execute(
        &app.database,
        "UPDATE export_leases SET holder = gen_random_uuid()",
    )
    .await;
    let mut received = 0;
    let ending = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    assert!(
        ending.is_err(),
        "the export lost its lease after {received} more bytes, yet the response ended whole"
    );
    app.stop().await;
}
