//! One-click unsubscribe links (RFC 8058): a POST to a link Herald signed records its opt-out, once;
//! a visit (GET) changes nothing; a link Herald did not sign, or any link while links are off,
//! is a 404 that names it, and a body no mail client sends is refused.

use herald_domain::unsubscribe::{OptOut, UnsubscribeToken};
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const SIGNING_KEY: &str = "an unsubscribe signing key of 32+ bytes, for tests";

async fn spawn_app_with_links() -> TestApp {
    spawn_app_with(|settings| {
        settings.unsubscribe.base_url = "https://herald.example.com".into();
        settings.unsubscribe.signing_key = SIGNING_KEY.to_owned().into();
    })
    .await
}

/// The path of the link for `user_id`'s opt-out, as a worker signs it.
fn link_path(app: &TestApp, user_id: &str, opt_out: OptOut) -> String {
    let links = app.settings.unsubscribe.links().expect("links are on");
    let url = links.url(&UnsubscribeToken {
        tenant_id: app.tenant_id,
        user_id: user_id.into(),
        opt_out,
    });
    url.strip_prefix("https://herald.example.com")
        .unwrap()
        .to_owned()
}

async fn one_click(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_link_opts_its_recipient_out_once_and_a_visit_changes_nothing() {
    let app = spawn_app_with_links().await;
    let created = app
        .send(
            Method::PUT,
            "/v1/users/ana",
            Some(json!({"email": "ana@example.com"})),
        )
        .await;
    assert_eq!(created.status(), 200);
    let preferences = || async { json(app.get("/v1/users/ana/preferences").await).await };
    let marketing = link_path(&app, "ana", OptOut::Category("marketing".into()));

    let page = app
        .client
        .get(format!("{}{marketing}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\">"));
    assert_eq!(
        preferences().await["opted_out_categories"],
        json!([]),
        "a visit (a mail scanner's) opts nobody out"
    );

    let version = || app.count("SELECT version FROM users WHERE id = 'ana'");
    let before = version().await;
    let recorded = one_click(&app, &marketing).await;
    assert_eq!(recorded.status(), 200);
    assert_eq!(
        json(recorded).await,
        json!({"user_id": "ana", "category": "marketing", "changed": true})
    );
    assert_eq!(
        preferences().await["opted_out_categories"],
        json!(["marketing"])
    );
    assert_eq!(
        version().await,
        before + 1,
        "the cached recipient is replaced"
    );
    let again = one_click(&app, &marketing).await;
    assert_eq!(
        json(again).await,
        json!({"user_id": "ana", "category": "marketing", "changed": false})
    );
    assert_eq!(version().await, before + 1, "a second click writes nothing");

    let email = link_path(&app, "ana", OptOut::Channel(herald_domain::Channel::Email));
    let recorded = one_click(&app, &email).await;
    assert_eq!(
        json(recorded).await,
        json!({"user_id": "ana", "channel": "email", "changed": true})
    );
    let after = preferences().await;
    assert_eq!(after["opted_out_channels"], json!(["email"]));
    assert_eq!(after["opted_out_categories"], json!(["marketing"]));
}

#[tokio::test]
async fn a_link_herald_did_not_sign_or_for_nobody_is_a_404_and_writes_nothing() {
    let app = spawn_app_with_links().await;
    app.send(
        Method::PUT,
        "/v1/users/ana",
        Some(json!({"email": "ana@example.com"})),
    )
    .await;
    let genuine = link_path(&app, "ana", OptOut::Category("marketing".into()));
    let (payload, tag) = genuine.rsplit_once('.').unwrap();
    let first = tag.chars().next().unwrap();
    let tampered = format!(
        "{payload}.{}{}",
        if first == 'A' { 'B' } else { 'A' },
        &tag[1..]
    );
    // Another tenant's user, named in a payload signed by someone without the key.
    let forged = {
        let other_key = herald_domain::unsubscribe::UnsubscribeSigner::new(&[7; 32], &[]);
        format!(
            "/v1/unsubscribe/{}",
            other_key.sign(&UnsubscribeToken::for_email(app.tenant_id, "ana", None))
        )
    };
    for path in [
        tampered.as_str(),
        forged.as_str(),
        "/v1/unsubscribe/not-a-token",
        "/v1/unsubscribe/%00.%00",
    ] {
        for method in [Method::GET, Method::POST] {
            let response = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{method} {path}");
            let body = json(response).await;
            assert_eq!(body["error"]["code"], "not_found", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("unsubscribe link"),
                "{body}"
            );
        }
    }
    let nobody = link_path(
        &app,
        "nobody",
        OptOut::Channel(herald_domain::Channel::Email),
    );
    let response = one_click(&app, &nobody).await;
    assert_eq!(response.status(), 404);
    assert!(json(response).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("user"));
    // A body no mail client sends: refused before anything is written.
    let oversized = app
        .client
        .post(format!("{}{genuine}", app.address))
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    assert_eq!(
        json(app.get("/v1/users/ana/preferences").await).await["opted_out_categories"],
        json!([])
    );

    // Links off: even a link signed with the same key is nobody's.
    let without_links = spawn_app().await;
    let response = one_click(&without_links, &genuine).await;
    assert_eq!(response.status(), 404);
}

/// Links of several categories followed at once for one user: each write is a compare-and-set on
/// the user's version, so none overwrites another. Every opt-out answered 200 is in the
/// preferences at the end; one refused (429, 503) is to retry, never a lost 200.
#[tokio::test]
async fn links_followed_at_once_lose_no_opt_out() {
    let app = spawn_app_with_links().await;
    app.send(
        Method::PUT,
        "/v1/users/ana",
        Some(json!({"email": "ana@example.com"})),
    )
    .await;
    let categories: Vec<String> = (0..8).map(|index| format!("list-{index}")).collect();
    let paths: Vec<String> = categories
        .iter()
        .map(|category| link_path(&app, "ana", OptOut::Category(category.clone())))
        .collect();
    let responses = futures::future::join_all(paths.iter().map(|path| one_click(&app, path))).await;
    let mut recorded = Vec::new();
    for (category, response) in categories.iter().zip(responses) {
        match response.status().as_u16() {
            200 => recorded.push(category.clone()),
            // 429: the tenant's share of concurrent reads (a flood of one tenant's links waits on
            // that tenant alone); 503: every compare-and-set lost. Both to retry.
            429 | 503 => assert!(response.headers().contains_key("retry-after")),
            other => panic!("{category}: {other}"),
        }
    }
    assert!(!recorded.is_empty());
    let kept = json(app.get("/v1/users/ana/preferences").await).await["opted_out_categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|category| category.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    for category in &recorded {
        assert!(
            kept.contains(category),
            "{category} answered 200 but was lost: {kept:?}"
        );
    }
}
