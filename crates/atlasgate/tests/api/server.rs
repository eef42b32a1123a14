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
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123_x.y")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123_x.y");

    let resp = app.get("/healthz", None).await;
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    // Not sane (spaces, too long): replaced rather than reflected.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b<script>")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "a b<script>");
    assert_eq!(id.len(), 36);
    let long = "x".repeat(300);
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"].to_str().unwrap(), long);
}

#[tokio::test]
async fn request_id_is_in_the_log_span() {
    let app = TestApp::spawn().await;
    let id = format!("trace-{}", uuid::Uuid::new_v4().simple());
    app.client
        .get(app.url("/healthz"))
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    let logs = crate::helpers::captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&id) && l.contains("request finished"));
    assert!(line.is_some(), "no log line with the request id {id}");
}

#[tokio::test]
async fn unknown_route_is_a_problem_404() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "rid-404")
        .send()
        .await
        .unwrap();
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
        assert!(
            body["failing"]
                .as_array()
                .unwrap()
                .contains(&json!("database")),
            "{body}"
        );
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
        .find(|l| {
            l.starts_with("atlasgate_http_requests_total{")
                && l.contains("route=\"/healthz\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no healthz counter in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.contains("route=\"unmatched\""),
        "404s are counted without their raw path"
    );
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
        let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(newest)
            .execute(app.store.pool())
            .await
            .unwrap();
        let resp = app.get("/readyz", None).await;
        assert_eq!(resp.status(), 503, "{backend:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["failing"], json!(["migrations"]), "{body}");
        assert!(body["checks"]["migrations"]["detail"]
            .as_str()
            .unwrap()
            .contains("atlasgate migrate"));
    }
}

/// The value of one sample line of `/metrics` (`name{labels}` exactly).
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_sync_passes_jira_webhooks_and_event_deliveries() {
    use std::sync::atomic::Ordering;

    use crate::events::{events, setup, wait_for};
    use crate::sync::{create_sync, local_issues, project_keys, sim_patch, wait_idle};

    let s = setup(
        atlasgate::store::Backend::Sqlite,
        atlassim::SimConfig {
            sites: 1,
            projects: 1,
            issues: 6,
            ..Default::default()
        },
    )
    .await;
    // The app is down at first: deliveries are retried.
    s.receiver.down.store(true, Ordering::SeqCst);
    let keys = project_keys(&s);
    let created = create_sync(
        &s,
        json!({ "jql": format!("project = {}", keys[0]), "webhooks": true, "interval_s": 3600 }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_idle(&s, &id, 0, 60).await;
    wait_for(20, "a refused delivery", || async {
        (s.receiver.refused.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    s.receiver.down.store(false, Ordering::SeqCst);

    // A change in Jira arrives by webhook; then Jira's retry of it, and a forgery.
    let (_, raw) = local_issues(&s).await;
    let key = raw.values().next().unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    sim_patch(&s, &key, json!({ "summary": "Counted" })).await;
    let (identifier, payload): (String, String) =
        wait_for(20, "the Jira webhook to be stored", || async {
            sqlx::query_as("SELECT identifier, payload FROM jira_webhook_deliveries")
                .fetch_optional(s.app.store.pool())
                .await
                .unwrap()
        })
        .await;
    let jwt = |secret: &str| {
        let now = chrono::Utc::now().timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({ "iss": "atlasgate-dev", "iat": now - 10, "exp": now + 300 }),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    for secret in ["atlasgate-dev-secret", "not-the-client-secret"] {
        let resp = s
            .app
            .client
            .post(s.app.url("/webhooks/jira"))
            .header("X-Atlassian-Webhook-Identifier", &identifier)
            .header("content-type", "application/json")
            .bearer_auth(jwt(secret))
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            if secret == "not-the-client-secret" {
                401
            } else {
                204
            }
        );
    }

    // Every event (connection.created, sync.completed, issue.updated) delivered.
    wait_for(30, "every event delivered", || async {
        let ev = events(&s.app, &s.key).await;
        (ev.len() >= 3 && ev.iter().all(|e| e["delivery_state"] == "delivered")).then_some(())
    })
    .await;
    let delivered = s.receiver.received().len() as u64;
    assert_eq!(delivered, 3);

    let text = s.app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "atlasgate_sync_passes_total{kind=\"full\",outcome=\"ok\"}"
        ),
        1
    );
    assert!(!text.contains("outcome=\"error\""), "{text}");
    assert_eq!(sample(&text, "atlasgate_sync_issues_upserted_total"), 6);
    assert_eq!(
        sample(
            &text,
            "atlasgate_jira_webhooks_received_total{outcome=\"applied\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "atlasgate_jira_webhooks_received_total{outcome=\"duplicate\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "atlasgate_jira_webhooks_received_total{outcome=\"rejected\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "atlasgate_event_deliveries_total{outcome=\"delivered\"}"
        ),
        delivered
    );
    assert_eq!(
        sample(&text, "atlasgate_event_deliveries_total{outcome=\"retry\"}"),
        s.receiver.refused.load(Ordering::SeqCst)
    );
}
