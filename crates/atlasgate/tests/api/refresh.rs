//! The refresh engine against atlassim's rotating refresh tokens: single
//! flight in one process and across processes, lost answers, revoked grants,
//! transient failures, keep-alive.

use atlasgate::ids::ConnectionId;
use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::connect::{connect, event_types, expire_access_token, first_account, sim_sites};
use crate::helpers::{assert_problem, backends, TestApp};
use crate::proxy::fault;

async fn connected(app: &TestApp, owner: &str) -> (String, String) {
    app.connected_app(&format!("app-{owner}"), owner).await
}

/// The stored refresh token is the live one of its family: a forced refresh
/// works and atlassim revoked no family.
async fn assert_refresh_token_still_live(app: &TestApp, key: &str, id: &str) {
    let resp = app.refresh_connection(key, id).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(app.sim.stats().tokens.family_revocations, 0);
}

async fn token(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.get(&format!("/v1/connections/{id}/token"), Some(key))
        .await
}

async fn concurrent_tokens(app: &TestApp, key: &str, id: &str, n: usize) -> Vec<String> {
    let client = app.client.clone();
    let url = app.url(&format!("/v1/connections/{id}/token"));
    let calls = (0..n).map(|_| {
        let client = client.clone();
        let url = url.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            let resp = client.get(&url).bearer_auth(&key).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
            let body: Value = resp.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

async fn single_flight(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (key, id) = connected(&app, "busy").await;
    let old: Value = token(&app, &key, &id).await.json().await.unwrap();
    expire_access_token(&app, &id).await;
    let tokens = concurrent_tokens(&app, &key, &id, 200).await;
    assert_eq!(
        app.sim.stats().tokens.refreshes,
        1,
        "exactly one refresh at Atlassian"
    );
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "every caller got the same new token"
    );
    assert_ne!(tokens[0], old["access_token"].as_str().unwrap());
    assert_eq!(app.sim.stats().tokens.reuse_in_window, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_calls_cause_one_refresh() {
    for backend in backends() {
        single_flight(backend).await;
    }
}

async fn two_processes(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (key, id) = connected(&app, "shared").await;
    // A second atlasgate process: same database, key and Atlassian.
    let mut second = app.spawn_other(app.keyring.clone()).await;
    let second_addr = second.address.clone();
    expire_access_token(&app, &id).await;
    let calls = (0..200).map(|i| {
        let url = if i % 2 == 0 {
            app.url(&format!("/v1/connections/{id}/token"))
        } else {
            format!("{second_addr}/v1/connections/{id}/token")
        };
        let client = app.client.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let resp = client.get(&url).bearer_auth(&key).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        })
    });
    let tokens: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    second.stop();
    assert_eq!(
        app.sim.stats().tokens.refreshes,
        1,
        "exactly one refresh across both processes"
    );
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_database_refresh_once() {
    // PostgreSQL is the multi-process deployment (docs/design.md §10); SQLite's
    // `BEGIN IMMEDIATE` gives the same guarantee to processes sharing a file.
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping the PostgreSQL half of two_processes_on_one_database_refresh_once: ATLASGATE_TEST_POSTGRES_URL is not set");
    }
    for backend in backends() {
        two_processes(backend).await;
    }
}

#[tokio::test]
async fn a_lost_refresh_answer_is_recovered_inside_the_reuse_window() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (key, id) = connected(&app, "lossy").await;
        expire_access_token(&app, &id).await;
        app.sim.add_fault(atlassim::Fault {
            drop: true,
            ..fault("POST", "/oauth/token", 1)
        });
        let resp = token(&app, &key, &id).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let body: Value = resp.json().await.unwrap();
        let stats = app.sim.stats().tokens;
        assert_eq!(
            stats.reuse_in_window, 1,
            "the retry reused the old refresh token"
        );
        assert_eq!(stats.family_revocations, 0);
        assert_eq!(
            app.sim_me_status(body["access_token"].as_str().unwrap())
                .await,
            200
        );
        let conn = app.get_json(&format!("/v1/connections/{id}"), &key).await;
        assert_eq!(conn["status"], "active");
        // The stored refresh token is the newest one: the next refresh works.
        assert_refresh_token_still_live(&app, &key, &id).await;
    }
}

#[tokio::test]
async fn an_interrupted_refresh_is_resumed_by_the_next_caller() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "crashy").await;
    expire_access_token(&app, &id).await;
    // Every attempt of this call loses its answer (as if the process died).
    app.sim.add_fault(atlassim::Fault {
        drop: true,
        ..fault("POST", "/oauth/token", 3)
    });
    let resp = token(&app, &key, &id).await;
    let problem = assert_problem(resp, 503).await;
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .ends_with("service-unavailable"));
    let mark: (Option<Vec<u8>>, Option<i64>) = sqlx::query_as(
        "SELECT refresh_inflight_token, next_attempt_at FROM connections WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert!(
        mark.0.is_some(),
        "the in-flight mark survives a lost answer"
    );
    // Whoever comes next (here: a forced refresh, as the keep-alive pass does)
    // finishes it with the same old refresh token, inside the reuse window.
    assert_refresh_token_still_live(&app, &key, &id).await;
    assert!(app.sim.stats().tokens.reuse_in_window >= 1);
    let resp = token(&app, &key, &id).await;
    assert_eq!(resp.status(), 200);
    let cleared: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT refresh_inflight_token FROM connections WHERE id = $1")
            .bind(&id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(cleared.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_grant_needs_reauth_exactly_once() {
    for backend in backends() {
        let app = TestApp::spawn_on(backend).await;
        let (key, id) = connected(&app, "revoked").await;
        app.sim.revoke_grants(&first_account(&app));
        expire_access_token(&app, &id).await;
        let calls = (0..20).map(|_| {
            let client = app.client.clone();
            let url = app.url(&format!("/v1/connections/{id}/token"));
            let key = key.clone();
            tokio::spawn(async move { client.get(&url).bearer_auth(&key).send().await.unwrap() })
        });
        for resp in futures::future::join_all(calls).await {
            let resp = resp.unwrap();
            let body = assert_problem(resp, 409).await;
            assert!(
                body["type"].as_str().unwrap().ends_with("reauth-required"),
                "{body}"
            );
            assert!(body["connect_url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/connect/cs_", app.address)));
        }
        let conn = app.get_json(&format!("/v1/connections/{id}"), &key).await;
        assert_eq!(conn["status"], "needs_reauth");
        assert_eq!(conn["authenticated"], false);
        let events = event_types(&app, &id).await;
        assert_eq!(
            events
                .iter()
                .filter(|t| *t == "connection.needs_reauth")
                .count(),
            1,
            "{events:?}"
        );
        // Bounded: one refused attempt, no retry loop.
        let attempts: u64 = app
            .sim
            .stats()
            .requests
            .iter()
            .filter(|r| r.route.ends_with("/oauth/token") && r.status == 403)
            .map(|r| r.count)
            .sum();
        assert!(
            (1..=2).contains(&attempts),
            "{attempts} refused refresh attempts"
        );
        // Forcing does not call Atlassian again either.
        let resp = app.refresh_connection(&key, &id).await;
        assert_problem(resp, 409).await;
        // The fresh connect_url works: reconnecting makes the connection active again.
        let sites = sim_sites(&app);
        let again = connect(&app, &key, "revoked", &sites[..1], None).await;
        assert_eq!(again, id);
        assert_eq!(token(&app, &key, &id).await.status(), 200);
    }
}

#[tokio::test]
async fn transient_failures_back_off_and_never_kill_the_connection() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "flaky").await;
    expire_access_token(&app, &id).await;
    app.sim.add_fault(atlassim::Fault {
        status: Some(503),
        ..fault("POST", "/oauth/token", 10)
    });
    let resp = token(&app, &key, &id).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    // While backing off, callers do not hammer Atlassian.
    let before: u64 = app
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route.ends_with("/oauth/token"))
        .map(|r| r.count)
        .sum();
    assert_eq!(token(&app, &key, &id).await.status(), 503);
    let after: u64 = app
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route.ends_with("/oauth/token"))
        .map(|r| r.count)
        .sum();
    assert_eq!(before, after);
    let conn = app.get_json(&format!("/v1/connections/{id}"), &key).await;
    assert_eq!(conn["status"], "active");
    app.sim.clear_faults();
    let resp = app.refresh_connection(&key, &id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(token(&app, &key, &id).await.status(), 200);
    assert!(event_types(&app, &id)
        .await
        .iter()
        .all(|t| t != "connection.needs_reauth"));
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"atlasgate_refreshes_total{outcome="transient_error"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"atlasgate_refreshes_total{outcome="success"} 1"#));
}

#[tokio::test]
async fn a_refresh_answer_without_refresh_token_keeps_the_old_one() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "norotate").await;
    let refresh_before: Vec<u8> =
        sqlx::query_scalar("SELECT refresh_token FROM connections WHERE id = $1")
            .bind(&id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let plain_before = atlasgate::vault::token::open(
        &app.state.cipher,
        &ConnectionId::new(&id),
        "refresh_token",
        &refresh_before,
    )
    .unwrap();
    app.sim.add_fault(atlassim::Fault {
        status: Some(200),
        body: Some(json!({ "access_token": "handed-out-without-rotation", "expires_in": 3600, "scope": "read:me offline_access", "token_type": "Bearer" })),
        ..fault("POST", "/oauth/token", 1)
    });
    let resp = app.refresh_connection(&key, &id).await;
    assert_eq!(resp.status(), 200);
    let t: Value = token(&app, &key, &id).await.json().await.unwrap();
    assert_eq!(t["access_token"], "handed-out-without-rotation");
    let refresh_after: Vec<u8> =
        sqlx::query_scalar("SELECT refresh_token FROM connections WHERE id = $1")
            .bind(&id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let plain_after = atlasgate::vault::token::open(
        &app.state.cipher,
        &ConnectionId::new(&id),
        "refresh_token",
        &refresh_after,
    )
    .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(plain_before.expose_secret(), plain_after.expose_secret());
    // The kept refresh token still works at atlassim.
    assert_refresh_token_still_live(&app, &key, &id).await;
}

#[tokio::test]
async fn keepalive_refreshes_connections_near_the_inactivity_limit() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "idle").await;
    let sites = sim_sites(&app);
    let fresh_id = connect(&app, &key, "busy-one", &sites[..1], None).await;
    let now = atlasgate::store::now();
    // 84 days old: within 7 days of Atlassian's 90-day inactivity expiry.
    sqlx::query("UPDATE connections SET refresh_issued_at = $1 WHERE id = $2")
        .bind(now - 84 * 24 * 3600)
        .bind(&id)
        .execute(app.store.pool())
        .await
        .unwrap();
    let report = atlasgate::vault::keepalive::run_once(&app.store, &app.state.refresher, now)
        .await
        .unwrap();
    assert_eq!(report.refreshed, 1);
    assert_eq!(app.sim.stats().tokens.refreshes, 1);
    let issued: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, refresh_issued_at FROM connections ORDER BY id")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    for (cid, at) in issued {
        assert!(at >= now - 5, "{cid} was not refreshed recently");
    }
    assert!(!fresh_id.is_empty());
    // Nothing left to do on a second pass.
    let report = atlasgate::vault::keepalive::run_once(&app.store, &app.state.refresher, now)
        .await
        .unwrap();
    assert_eq!(report.refreshed, 0);
}
