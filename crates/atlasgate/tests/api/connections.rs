//! The connections API: list with filters and cursor pagination, the
//! connection view, choosing the site.

use atlasgate::ids::ConnectionId;
use serde_json::{json, Value};

use crate::connect::{connect, sim_sites};
use crate::helpers::{assert_problem, backends, TestApp};

async fn list_and_paginate(backend: atlasgate::store::Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (_, key) = app.create_app("lister").await;
    let sites = sim_sites(&app);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(connect(&app, &key, &format!("user:{i}"), &sites[..1], None).await);
    }
    // Walk pages of two.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/v1/connections?limit=2&cursor={c}"),
            None => "/v1/connections?limit=2".to_string(),
        };
        let page = app.get_json(&path, &key).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every connection once, in creation order");

    let one = app.get_json("/v1/connections?owner=user:3", &key).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["id"], ids[3].as_str());
    let none = app
        .get_json("/v1/connections?profile=confluence", &key)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let del = app
        .client
        .delete(app.url(&format!("/v1/connections/{}", ids[0])))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let active = app.get_json("/v1/connections?status=active", &key).await;
    assert_eq!(active["items"].as_array().unwrap().len(), 4);
    let gone = app
        .get_json("/v1/connections?status=disconnected", &key)
        .await;
    assert_eq!(gone["items"][0]["id"], ids[0].as_str());
    assert_problem(
        app.get("/v1/connections?status=bogus", Some(&key)).await,
        422,
    )
    .await;
    assert_problem(app.get("/v1/connections?limit=0", Some(&key)).await, 422).await;
    assert_problem(app.get("/v1/connections", None).await, 401).await;
    // Deleting twice is harmless and emits one event.
    let del = app
        .client
        .delete(app.url(&format!("/v1/connections/{}", ids[0])))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let deleted = crate::connect::event_types(&app, &ids[0]).await;
    assert_eq!(
        deleted
            .iter()
            .filter(|t| *t == "connection.deleted")
            .count(),
        1
    );
}

#[tokio::test]
async fn list_filters_and_paginates() {
    for backend in backends() {
        list_and_paginate(backend).await;
    }
}

#[tokio::test]
async fn site_can_be_changed_only_to_a_site_of_the_grant() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("sites").await;
    let sites = sim_sites(&app);
    let id = connect(&app, &key, "s", &sites, Some(&sites[0])).await;
    let put = |cloud_id: &str| {
        app.client
            .put(app.url(&format!("/v1/connections/{id}/site")))
            .bearer_auth(&key)
            .json(&json!({ "cloud_id": cloud_id }))
            .send()
    };
    let resp = put(&sites[1]).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["site"]["cloud_id"], sites[1].as_str());
    let token = app.connection_token(&key, &id).await;
    assert_eq!(token["cloud_id"], sites[1].as_str());
    let body = assert_problem(
        put("11111111-2222-3333-4444-555555555555").await.unwrap(),
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "cloud_id");
    let conn = app.get_json(&format!("/v1/connections/{id}"), &key).await;
    assert_eq!(conn["site"]["cloud_id"], sites[1].as_str());
}

#[tokio::test]
async fn connections_list_command_shows_connections_without_tokens() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("cli-list").await;
    let empty = atlasgate::connections::render_list(&app.store)
        .await
        .unwrap();
    assert!(empty.starts_with("no connections yet"));
    let sites = sim_sites(&app);
    let id = connect(&app, &key, "team:cli", &sites[..1], None).await;
    let token = app.connection_token(&key, &id).await;
    let out = atlasgate::connections::render_list(&app.store)
        .await
        .unwrap();
    let line = out.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("team:cli") && line.contains("active") && line.contains("atlassian.net"),
        "{line}"
    );
    assert!(!out.contains(token["access_token"].as_str().unwrap()));
}

// ---- the in-process token cache ------------------------------------------------
// `/token` is served from a one-second cache (`vault::token_cache`); every
// change this process makes must be visible to the very next call.

async fn token_body(app: &TestApp, key: &str, id: &str) -> Value {
    app.get_ok(&format!("/v1/connections/{id}/token"), key)
        .await
}

/// The first `/token` call must have put the connection in the cache, or the
/// tests below would not be testing the cache at all.
fn assert_cached(app: &TestApp, id: &str) {
    assert!(
        app.state
            .refresher
            .token_cache()
            .get(&ConnectionId::new(id))
            .is_some(),
        "the token should be cached after a /token call"
    );
}

#[tokio::test]
async fn token_after_disconnect_is_refused_at_once() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (key, id) = app.connected_app("cache-disconnect", "d").await;
        token_body(&app, &key, &id).await;
        assert_cached(&app, &id);
        let resp = app.delete(&format!("/v1/connections/{id}"), &key).await;
        assert_eq!(resp.status(), 200);
        let resp = app
            .get(&format!("/v1/connections/{id}/token"), Some(&key))
            .await;
        let body = assert_problem(resp, 409).await;
        assert!(
            body["detail"].as_str().unwrap().contains("disconnected"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_forced_refresh_is_served_by_token_at_once() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (key, id) = app.connected_app("cache-refresh", "r").await;
        let old = token_body(&app, &key, &id).await;
        assert_cached(&app, &id);
        let resp = app.refresh_connection(&key, &id).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(app.sim.stats().tokens.refreshes, 1);
        let new = token_body(&app, &key, &id).await;
        assert_ne!(
            new["access_token"], old["access_token"],
            "a stale token was served"
        );
        // And it is the token now stored, not just a different one.
        let again = token_body(&app, &key, &id).await;
        assert_eq!(again["access_token"], new["access_token"]);
        assert_eq!(app.sim.stats().tokens.refreshes, 1);
    }
}

/// A cache hit answers the bytes written for the token once
/// (`FreshToken::answer`): the same answer, as JSON, with every field.
#[tokio::test]
async fn a_cached_token_answer_is_the_answer_written_once() {
    let app = TestApp::spawn().await;
    let (key, id) = app.connected_app("cache-answer", "a").await;
    let path = format!("/v1/connections/{id}/token");
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let resp = app.get(&path, Some(&key)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        bodies.push(resp.text().await.unwrap());
    }
    assert_cached(&app, &id);
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    for field in ["access_token", "token_type", "expires_at", "cloud_id", "site_url", "scopes"] {
        assert!(!body[field].is_null(), "{field} missing: {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    let stored = app
        .state
        .refresher
        .token_cache()
        .get(&ConnectionId::new(&id))
        .unwrap();
    assert_eq!(
        stored.answer.get().map(|b| &b[..]),
        Some(bodies[0].as_bytes()),
        "the cache entry holds the answer it served"
    );
}

#[tokio::test]
async fn a_cached_connection_is_still_404_for_another_app() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("cache-owner").await;
    let (_, other) = app.create_app("cache-other").await;
    let sites = sim_sites(&app);
    let id = connect(&app, &key, "o", &sites[..1], None).await;
    token_body(&app, &key, &id).await;
    assert_cached(&app, &id);
    let foreign = assert_problem(
        app.get(&format!("/v1/connections/{id}/token"), Some(&other))
            .await,
        404,
    )
    .await;
    let missing = assert_problem(
        app.get("/v1/connections/conn_doesnotexist/token", Some(&other))
            .await,
        404,
    )
    .await;
    assert_eq!(foreign["type"], missing["type"]);
    assert_eq!(foreign["title"], missing["title"]);
    assert_eq!(foreign["detail"], missing["detail"]);
    assert!(foreign.get("access_token").is_none());
    // The owner is still served.
    token_body(&app, &key, &id).await;
}

#[tokio::test]
async fn a_site_change_is_served_by_token_at_once() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("cache-site").await;
    let sites = sim_sites(&app);
    let id = connect(&app, &key, "s", &sites, Some(&sites[0])).await;
    assert_eq!(
        token_body(&app, &key, &id).await["cloud_id"],
        sites[0].as_str()
    );
    assert_cached(&app, &id);
    let resp = app
        .client
        .put(app.url(&format!("/v1/connections/{id}/site")))
        .bearer_auth(&key)
        .json(&json!({ "cloud_id": sites[1] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        token_body(&app, &key, &id).await["cloud_id"],
        sites[1].as_str()
    );
}
