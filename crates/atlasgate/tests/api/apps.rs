//! Apps through the admin API: creation, listing, key handling, app-key
//! authentication, validation.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_problem, backends, captured_logs, TestApp};

#[tokio::test]
async fn create_shows_the_key_once_and_stores_only_its_hash() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let body = app
            .create_app_with(&json!({
                "name": "billing-bot",
                "webhook_url": "https://bot.example.com/hooks/atlasgate",
                "return_origins": ["https://bot.example.com", "http://localhost:3000"]
            }))
            .await;
        let key = body["api_key"].as_str().unwrap().to_string();
        let secret = body["webhook_secret"].as_str().unwrap().to_string();
        assert!(key.starts_with("agk_") && key.len() == 68, "{key}");
        assert!(secret.starts_with("whsec_"), "{secret}");
        assert_eq!(body["name"], "billing-bot");
        assert_eq!(
            body["return_origins"],
            json!(["https://bot.example.com", "http://localhost:3000"])
        );
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

        // The list never shows the key, its hash or the secret.
        let resp = app.admin_get("/admin/api/apps").await;
        assert_eq!(resp.status(), 200);
        let list_text = resp.text().await.unwrap();
        let list: Value = serde_json::from_str(&list_text).unwrap();
        assert_eq!(list["apps"].as_array().unwrap().len(), 1);
        assert_eq!(list["apps"][0]["id"], body["id"]);
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        for leak in [&key, &hash, &secret] {
            assert!(!list_text.contains(leak.as_str()));
        }

        // The database holds the hash, not the key; the secret only encrypted.
        let (stored_hash, ct): (String, Vec<u8>) =
            sqlx::query_as("SELECT api_key_hash, webhook_secret_ct FROM apps WHERE id = $1")
                .bind(body["id"].as_str().unwrap())
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert_eq!(stored_hash, hash);
        assert!(!ct.windows(6).any(|w| w == b"whsec_"));
        let dump: Vec<(String, String, String)> =
            sqlx::query_as("SELECT name, api_key_hash, return_origins FROM apps")
                .fetch_all(app.store.pool())
                .await
                .unwrap();
        assert!(!format!("{dump:?}").contains(&key));

        let logs = captured_logs();
        assert!(
            !logs.contains(&key) && !logs.contains(&secret),
            "a credential reached the logs"
        );
    }
}

#[tokio::test]
async fn without_a_webhook_url_there_is_no_secret() {
    let app = TestApp::spawn().await;
    let body = app.create_app_with(&json!({ "name": "plain" })).await;
    assert!(body["webhook_secret"].is_null());
    assert!(body["webhook_url"].is_null());
    assert_eq!(body["return_origins"], json!([]));
}

#[tokio::test]
async fn the_app_key_authenticates_app_routes() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("reader").await;

    let resp = app.get("/v1/connections", Some(&key)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let body = assert_problem(app.get("/v1/connections", None).await, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("Authorization"),
        "{body}"
    );
    let wrong = format!("agk_{}", "0".repeat(64));
    assert_problem(app.get("/v1/connections", Some(&wrong)).await, 401).await;
    assert_problem(app.get("/v1/connections", Some("not-a-key")).await, 401).await;
    // The admin token is not an app key.
    let admin = app.admin_token.clone();
    assert_problem(app.get("/v1/connections", Some(&admin)).await, 401).await;
    // A 401 names the scheme.
    let resp = app.get("/v1/connections", None).await;
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn invalid_fields_are_all_reported() {
    let app = TestApp::spawn().await;
    let resp = app
        .admin_post_json(
            "/admin/api/apps",
            &json!({ "name": "  ", "webhook_url": "ftp://x", "return_origins": ["https://ok.example", "https://x.example/path", "nope"] }),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "webhook_url",
            "return_origins[1]",
            "return_origins[2]"
        ],
        "{body}"
    );
    assert!(body["type"].as_str().unwrap().ends_with("validation"));

    // Unknown fields are refused too.
    let resp = app
        .admin_post_json("/admin/api/apps", &json!({ "name": "a", "colour": "red" }))
        .await;
    assert!(resp.status().is_client_error());
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
}

#[tokio::test]
async fn a_taken_name_is_a_conflict() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        app.create_app("twin").await;
        let resp = app
            .admin_post_json("/admin/api/apps", &json!({ "name": "twin" }))
            .await;
        let body = assert_problem(resp, 409).await;
        assert!(body["detail"].as_str().unwrap().contains("twin"));
    }
}
