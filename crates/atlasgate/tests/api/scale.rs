//! What `atlasgate-bench scale` relies on, on both backends: the keep-alive
//! pass's statements still find what is due (and only that) through their
//! indexes, the watched statements explain with bound parameters, and
//! connection use is written in batches, never backwards.

use atlasgate::ids::ConnectionId;
use atlasgate::store::connections as rows;
use atlasgate::store::{stats, Backend};
use serde_json::Value;

use crate::connect::{connect, expire_access_token, sim_sites};
use crate::helpers::{backends, TestApp};
use crate::proxy::fault;

async fn token_version(app: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar("SELECT token_version FROM connections WHERE id = $1")
        .bind(id)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

async fn keepalive_pass_finds_due_and_stale_only(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (key, due) = app.connected_app("scale-keepalive", "idle").await;
    let sites = sim_sites(&app);
    let fresh = connect(&app, &key, "busy", &sites[..1], None).await;
    let stale = connect(&app, &key, "crashed", &sites[..1], None).await;
    let leased = connect(&app, &key, "refreshing", &sites[..1], None).await;
    let now = atlasgate::store::now();
    // Within 7 days of Atlassian's 90-day inactivity expiry.
    sqlx::query("UPDATE connections SET refresh_issued_at = $1 WHERE id = $2")
        .bind(now - 84 * 24 * 3600)
        .bind(&due)
        .execute(app.store.pool())
        .await
        .unwrap();
    // A refresh whose every answer was lost: the mark stays, its lease released.
    expire_access_token(&app, &stale).await;
    app.sim.add_fault(atlassim::Fault {
        drop: true,
        ..fault("POST", "/oauth/token", 3)
    });
    let resp = app
        .get(&format!("/v1/connections/{stale}/token"), Some(&key))
        .await;
    assert_eq!(resp.status(), 503);
    // Another process holds a live lease on this one: not the pass's to take.
    sqlx::query(
        "UPDATE connections SET refresh_inflight_token = refresh_token, refresh_started_at = $1, \
         refresh_lease_until = $2 WHERE id = $3",
    )
    .bind(now)
    .bind(now + 600)
    .bind(&leased)
    .execute(app.store.pool())
    .await
    .unwrap();
    let before: Vec<i64> = [&due, &fresh, &stale, &leased]
        .iter()
        .map(|id| token_version(&app, id))
        .collect::<futures::future::JoinAll<_>>()
        .await;

    let report = atlasgate::vault::keepalive::run_once(&app.store, &app.state.refresher, now)
        .await
        .unwrap();
    assert_eq!(report.refreshed, 2, "{backend:?}: {report:?}");
    assert_eq!(report.failed, 0, "{backend:?}");
    let after: Vec<i64> = [&due, &fresh, &stale, &leased]
        .iter()
        .map(|id| token_version(&app, id))
        .collect::<futures::future::JoinAll<_>>()
        .await;
    assert_eq!(
        after[0],
        before[0] + 1,
        "{backend:?}: the due one is refreshed"
    );
    assert_eq!(
        after[1], before[1],
        "{backend:?}: the fresh one is left alone"
    );
    assert_eq!(
        after[2],
        before[2] + 1,
        "{backend:?}: the stale mark is resumed"
    );
    assert_eq!(
        after[3], before[3],
        "{backend:?}: a live lease is left to its owner"
    );
    let mark: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT refresh_inflight_token FROM connections WHERE id = $1")
            .bind(&stale)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(mark.is_none(), "{backend:?}: the resumed mark is cleared");
    // The resumed refresh used the old token inside the reuse window: no
    // family was revoked, and the stored token is the live one.
    assert_eq!(app.sim.stats().tokens.family_revocations, 0);
    assert_eq!(app.refresh_connection(&key, &stale).await.status(), 200);
    let again = atlasgate::vault::keepalive::run_once(&app.store, &app.state.refresher, now)
        .await
        .unwrap();
    assert_eq!(again.refreshed, 0, "{backend:?}: nothing left to do");
}

#[tokio::test]
async fn keepalive_refreshes_due_and_stale_marks_and_skips_fresh_and_leased() {
    for backend in backends() {
        keepalive_pass_finds_due_and_stale_only(backend).await;
    }
}

async fn watched_plans(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (app_id, _) = app.create_app("scale-plans").await;
    // Rows as the bench seeds them (the tokens are never opened here).
    let now = atlasgate::store::now();
    let mut tx = app.store.begin_write().await.unwrap();
    for i in 0..500 {
        let grant = rows::NewGrant {
            account_id: "seeded",
            account_email: None,
            account_name: None,
            scopes: &[],
            sites: &[],
            site_cloud_id: None,
            site_url: None,
            access_token: b"sealed-access",
            refresh_token: Some(b"sealed-refresh"),
            access_expires_at: now + 3600,
        };
        let id = rows::new_id();
        rows::insert(
            &mut tx,
            &id,
            &app_id,
            &format!("seed:{i}").into(),
            "jira",
            &grant,
            now - i * 3600,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    stats::analyze(&app.store).await.unwrap();
    for q in stats::watched() {
        let plan = stats::explain(&app.store, &q).await.unwrap();
        assert!(!plan.is_empty(), "{backend:?}: {} has no plan", q.name);
        // SQLite's planner ignores table size for this choice: with the
        // 0010 index on (refresh_lease_until) it searched
        // `connections_keepalive (status=?)`, every active row, already here.
        if backend == Backend::Sqlite && q.name.starts_with("connections::stale_refresh_marks") {
            assert_eq!(
                plan,
                vec!["SEARCH connections USING INDEX connections_refresh_marks (status=?)"],
                "{}",
                q.sql
            );
        }
        if backend == Backend::Sqlite && q.name.starts_with("connections::keepalive_candidates") {
            assert!(
                plan[0].contains("connections_keepalive (status=? AND refresh_issued_at<?)"),
                "{plan:?}"
            );
        }
    }
}

#[tokio::test]
async fn watched_statements_explain_with_bound_parameters() {
    for backend in backends() {
        watched_plans(backend).await;
    }
}

async fn last_used_at(app: &TestApp, id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT last_used_at FROM connections WHERE id = $1")
        .bind(id)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

async fn use_is_batched(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (key, id) = app.connected_app("scale-used", "user").await;
    let sites = sim_sites(&app);
    let other = connect(&app, &key, "never-used", &sites[..1], None).await;
    let started = atlasgate::store::now();
    let token: Value = app.connection_token(&key, &id).await;
    assert!(token["access_token"].is_string());
    // Noted in memory, written by a flush (the worker's every 5 s; here, now).
    app.state.last_used.flush(&app.store).await;
    let used = last_used_at(&app, &id).await.expect("last_used_at written");
    assert!(used >= started, "{backend:?}");
    assert_eq!(last_used_at(&app, &other).await, None, "{backend:?}");
    let view = app.get_json(&format!("/v1/connections/{id}"), &key).await;
    assert!(view["last_used_at"].is_string(), "{view}");
    // Within the minute a second use is not noted again.
    app.state
        .refresher
        .token_cache()
        .invalidate(&ConnectionId::new(&id));
    app.connection_token(&key, &id).await;
    assert_eq!(app.state.last_used.pending(), 0, "{backend:?}");
    // A late flush from another process never moves it backwards.
    let changed = atlasgate::store::connections::touch_used(
        app.store.pool(),
        std::slice::from_ref(&ConnectionId::new(&id)),
        used - 100,
    )
    .await
    .unwrap();
    assert_eq!(changed, 0, "{backend:?}");
    assert_eq!(last_used_at(&app, &id).await, Some(used));
    // More ids than one statement names: every one is written.
    let ids: Vec<String> = std::iter::once(other.clone())
        .chain(
            (0..atlasgate::store::connections::TOUCH_USED_CHUNK).map(|i| format!("con_missing{i}")),
        )
        .collect();
    for id in &ids {
        app.state.last_used.note(&ConnectionId::new(id), used + 1);
    }
    app.state.last_used.flush(&app.store).await;
    assert_eq!(app.state.last_used.pending(), 0, "{backend:?}");
    assert_eq!(
        last_used_at(&app, &other).await,
        Some(used + 1),
        "{backend:?}"
    );
}

#[tokio::test]
async fn connection_use_is_written_in_batches_never_backwards() {
    for backend in backends() {
        use_is_batched(backend).await;
    }
}
