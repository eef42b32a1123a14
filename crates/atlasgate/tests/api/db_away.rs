//! The database goes away under a running process (issue #13): requests
//! answer 503 problem+json with `Retry-After` inside the request timeout —
//! never a hang, never a 500 — and the same calls answer 200 once it is back,
//! with no grant lost. PostgreSQL only: the outage is made on the shared
//! server without restarting it (`ALLOW_CONNECTIONS false` and its backends
//! terminated), so other tests on that server are untouched.

use atlasgate::request::REQUEST_TIMEOUT;
use atlasgate::store::Backend;
use serde_json::Value;

use crate::helpers::{assert_problem, backends, TestApp};

/// Close the test's database (every backend on it terminated) or open it
/// again, from a connection to the server's own `postgres` database.
async fn allow_connections(app: &TestApp, allow: bool) {
    let admin = std::env::var("ATLASGATE_TEST_POSTGRES_URL").unwrap();
    let name = url::Url::parse(&app.db.url).unwrap().path()[1..].to_string();
    atlasgate::store::stats::set_postgres_database_open(&admin, &name, allow)
        .await
        .unwrap();
}

/// One call, answered before the request timeout (or the test fails).
async fn call(req: reqwest::RequestBuilder, what: &str) -> reqwest::Response {
    tokio::time::timeout(REQUEST_TIMEOUT, req.send())
        .await
        .unwrap_or_else(|_| panic!("{what} hung past the request timeout"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_away_requests_answer_503_and_recover() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping while_the_database_is_away_requests_answer_503_and_recover: ATLASGATE_TEST_POSTGRES_URL is not set");
        return;
    }
    let app = TestApp::spawn_on(Backend::Postgres).await;
    let (key, id) = app.connected_app("app-away", "away").await;
    let sites = crate::connect::sim_sites(&app);
    // A second connection whose token no cache holds: `/token` must read it.
    let cold = crate::connect::connect(&app, &key, "cold", &sites[..1], None).await;
    let token = |conn: &str| {
        app.client
            .get(app.url(&format!("/v1/connections/{conn}/token")))
            .bearer_auth(&key)
    };
    let refresh = || {
        app.client
            .post(app.url(&format!("/v1/connections/{id}/refresh")))
            .bearer_auth(&key)
            .json(&serde_json::json!({}))
    };
    let show = || {
        app.client
            .get(app.url(&format!("/v1/connections/{id}")))
            .bearer_auth(&key)
    };
    // Positive control before the outage: the key is known, the calls work.
    assert_eq!(call(show(), "GET connection").await.status(), 200);

    allow_connections(&app, false).await;
    for (req, what) in [
        (token(&cold), "GET /token"),
        (refresh(), "POST /refresh"),
        (show(), "GET connection"),
    ] {
        let resp = call(req, what).await;
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        let problem = assert_problem(resp, 503).await;
        assert!(
            retry_after.is_some_and(|s| s > 0),
            "{what}: 503 without Retry-After"
        );
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("service-unavailable"),
            "{what}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("database"),
            "{what}: {problem}"
        );
    }

    allow_connections(&app, true).await;
    let resp = call(token(&cold), "GET /token").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        app.sim_me_status(body["access_token"].as_str().unwrap())
            .await,
        200,
        "the token handed out works at Atlassian"
    );
    let resp = call(refresh(), "POST /refresh").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    for conn in [&id, &cold] {
        let view = app.get_json(&format!("/v1/connections/{conn}"), &key).await;
        assert_eq!(view["status"], "active", "{view}");
    }
    assert_eq!(app.sim.stats().tokens.family_revocations, 0);
}
