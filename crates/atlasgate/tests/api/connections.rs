//! The connections API: list with filters and cursor pagination, the
//! connection view, choosing the site.

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
        let page: Value = app.get(&path, Some(&key)).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every connection once, in creation order");

    let one: Value = app
        .get("/v1/connections?owner=user:3", Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["id"], ids[3].as_str());
    let none: Value = app
        .get("/v1/connections?profile=confluence", Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert!(none["items"].as_array().unwrap().is_empty());
    let del = app
        .client
        .delete(app.url(&format!("/v1/connections/{}", ids[0])))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let active: Value = app
        .get("/v1/connections?status=active", Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["items"].as_array().unwrap().len(), 4);
    let gone: Value = app
        .get("/v1/connections?status=disconnected", Some(&key))
        .await
        .json()
        .await
        .unwrap();
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
    let token: Value = app
        .get(&format!("/v1/connections/{id}/token"), Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token["cloud_id"], sites[1].as_str());
    let body = assert_problem(
        put("11111111-2222-3333-4444-555555555555").await.unwrap(),
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "cloud_id");
    let conn: Value = app
        .get(&format!("/v1/connections/{id}"), Some(&key))
        .await
        .json()
        .await
        .unwrap();
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
    let token: Value = app
        .get(&format!("/v1/connections/{id}/token"), Some(&key))
        .await
        .json()
        .await
        .unwrap();
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
