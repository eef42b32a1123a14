//! Cross-cutting HTTP behaviour: health, readiness, metrics, request ids,
//! problem+json for errors, body limit.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, backends, TestApp};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let resp = app.get("/healthz", None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123_x.y").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123_x.y");

    let resp = app.get("/healthz", None).await;
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    // Not sane (spaces, too long): replaced rather than reflected.
    let resp = app.client.get(app.url("/healthz")).header("x-request-id", "a b<script>").send().await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "a b<script>");
    assert_eq!(id.len(), 36);
    let long = "x".repeat(300);
    let resp = app.client.get(app.url("/healthz")).header("x-request-id", &long).send().await.unwrap();
    assert_ne!(resp.headers()["x-request-id"].to_str().unwrap(), long);
}

#[tokio::test]
async fn request_id_is_in_the_log_span() {
    let app = TestApp::spawn().await;
    let id = format!("trace-{}", uuid::Uuid::new_v4().simple());
    app.client.get(app.url("/healthz")).header("x-request-id", &id).send().await.unwrap();
    let logs = crate::helpers::captured_logs();
    let line = logs.lines().find(|l| l.contains(&id) && l.contains("request finished"));
    assert!(line.is_some(), "no log line with the request id {id}");
}

#[tokio::test]
async fn unknown_route_is_a_problem_404() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/no/such/route")).header("x-request-id", "rid-404").send().await.unwrap();
    let body = assert_problem(resp, 404).await;
    assert_eq!(body["request_id"], "rid-404");
    assert!(body["type"].as_str().unwrap().ends_with("not-found"));
}

#[tokio::test]
async fn wrong_method_is_a_problem_405() {
    let app = TestApp::spawn().await;
    let resp = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_problem(resp, 405).await;
}

#[tokio::test]
async fn oversized_body_is_a_problem_413() {
    let app = TestApp::spawn().await;
    let big = json!({ "name": "x".repeat(2 * 1024 * 1024) });
    let resp = app.admin_post_json("/admin/api/apps", &big).await;
    let body = assert_problem(resp, 413).await;
    assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
}

#[tokio::test]
async fn malformed_json_is_a_problem_400() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/admin/api/apps"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 400).await;
    assert!(body["detail"].as_str().unwrap().len() > 5, "{body}");
}

#[tokio::test]
async fn readyz_names_every_check_and_fails_when_the_database_is_gone() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let resp = app.get("/readyz", None).await;
        assert_eq!(resp.status(), 200, "{backend:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        for check in ["database", "migrations", "encryption_key"] {
            assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
        }

        app.store.close().await;
        let resp = app.get("/readyz", None).await;
        assert_eq!(resp.status(), 503, "{backend:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["checks"]["database"]["ok"], false);
        assert!(body["failing"].as_array().unwrap().contains(&json!("database")), "{body}");
        assert_eq!(body["checks"]["encryption_key"]["ok"], true);
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/healthz", None).await;
    }
    app.get("/nope", None).await;
    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("atlasgate_http_requests_total{") && l.contains("route=\"/healthz\"") && l.contains("status=\"200\""))
        .unwrap_or_else(|| panic!("no healthz counter in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(text.contains("route=\"unmatched\""), "404s are counted without their raw path");
    assert!(!text.contains("/nope"));
    assert!(text.contains("atlasgate_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn docs_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("cdn"), "assets must not come from a CDN");
    let resp = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn readyz_fails_while_a_migration_is_pending() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(app.store.pool()).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1").bind(newest).execute(app.store.pool()).await.unwrap();
        let resp = app.get("/readyz", None).await;
        assert_eq!(resp.status(), 503, "{backend:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["failing"], json!(["migrations"]), "{body}");
        assert!(body["checks"]["migrations"]["detail"].as_str().unwrap().contains("atlasgate migrate"));
    }
}
