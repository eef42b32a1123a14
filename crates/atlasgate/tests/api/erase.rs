//! Owner erase (docs/design.md §13): `DELETE /v1/owners/{owner}` removes
//! every trace of an owner of the calling app — on SQLite down to the bytes
//! of the database file and its WAL, on PostgreSQL from every table — and
//! touches nothing of another app's owner of the same name.

use atlasgate::store::Backend;
use serde_json::json;

use crate::events::{record_issue_updated, setup};
use crate::helpers::{assert_problem, backends, TestApp};
use crate::lifecycle::{audit, connect_profile, kinds};

/// Whether any byte sequence in the SQLite database file or its WAL is `needle`.
fn sqlite_files_contain(app: &TestApp, needle: &str) -> bool {
    let path = app
        .db
        .url
        .strip_prefix("sqlite://")
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    [path.clone(), format!("{path}-wal")].iter().any(|p| {
        std::fs::read(p)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

/// How many rows of any table hold `needle` anywhere in their text form.
async fn postgres_rows_containing(app: &TestApp, needle: &str) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert!(tables.len() >= 10, "{tables:?}");
    let mut hits = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM \"{t}\" AS r WHERE r::text LIKE $1"
        ))
        .bind(format!("%{needle}%"))
        .fetch_one(app.store.pool())
        .await
        .unwrap();
        if n > 0 {
            hits.push((t, n));
        }
    }
    hits
}

async fn traces(app: &TestApp, owner: &str) -> bool {
    match app.backend {
        Backend::Sqlite => {
            // What is in the WAL counts too; nothing is checkpointed for the scan.
            sqlite_files_contain(app, owner)
        }
        Backend::Postgres => !postgres_rows_containing(app, owner).await.is_empty(),
    }
}

async fn erase(backend: Backend) {
    use crate::sync::project_keys;

    let s = setup(backend, atlassim::SimConfig::default()).await;
    let app = &s.app;
    // One owner string, used by two apps. Events-app holds two profiles of it.
    let owner = format!("leaving-team-{}", uuid::Uuid::new_v4().simple());
    let site = std::slice::from_ref(&s.cloud_id);
    let jira = crate::connect::connect(app, &s.key, &owner, site, Some(&s.cloud_id)).await;
    let confluence = connect_profile(app, &s.key, &owner, "confluence", &s.cloud_id).await;
    let keys = project_keys(&s);
    let sync = create_sync_for(&s, &jira, &keys[0]).await;
    wait_idle_for(&s, &jira, &sync).await;
    record_issue_updated(&s, 1).await;
    let webhooks_before = app.sim_webhooks(&s.cloud_id).await["total"]
        .as_i64()
        .unwrap();
    assert!(webhooks_before >= 1);
    let (other_id, other_key) = app.create_app("other-app").await;
    let theirs = crate::connect::connect(app, &other_key, &owner, site, Some(&s.cloud_id)).await;
    // A pending connect session of the owner, never followed.
    crate::connect::new_session(app, &s.key, json!({ "owner": owner })).await;

    // The other app erases the owner first: only its own connection goes.
    let resp = app.delete(&format!("/v1/owners/{owner}"), &other_key).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "connections_erased": 1 })
    );
    assert_problem(
        app.get(&format!("/v1/connections/{theirs}"), Some(&other_key))
            .await,
        404,
    )
    .await;
    for id in [&jira, &confluence] {
        assert_eq!(
            app.get(&format!("/v1/connections/{id}"), Some(&s.key))
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        app.get(&format!("/v1/connections/{jira}/token"), Some(&s.key))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(
            &format!("/v1/connections/{jira}/syncs/{sync}"),
            Some(&s.key)
        )
        .await
        .status(),
        200
    );
    // Positive control for the scan: the owner is in the stored bytes now.
    assert!(
        traces(app, &owner).await,
        "the scan cannot see the owner before the erase"
    );

    let resp = app.delete(&format!("/v1/owners/{owner}"), &s.key).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "connections_erased": 2 })
    );

    // Every route for those ids answers 404.
    for id in [&jira, &confluence] {
        for path in [
            format!("/v1/connections/{id}"),
            format!("/v1/connections/{id}/token"),
            format!("/v1/connections/{id}/syncs"),
            format!("/v1/connections/{id}/syncs/{sync}"),
            format!("/v1/connections/{id}/issues"),
        ] {
            assert_problem(app.get(&path, Some(&s.key)).await, 404).await;
        }
    }
    // Its Jira webhook was deleted while the token still worked.
    assert_eq!(
        app.sim_webhooks(&s.cloud_id).await["total"]
            .as_i64()
            .unwrap(),
        webhooks_before - 1
    );
    // No row, no freed page and no WAL frame holds the owner string.
    match backend {
        Backend::Sqlite => assert!(
            !sqlite_files_contain(app, &owner),
            "the owner is still in the SQLite files"
        ),
        Backend::Postgres => {
            let hits = postgres_rows_containing(app, &owner).await;
            assert!(hits.is_empty(), "rows still hold the owner: {hits:?}");
        }
    }
    for table in ["events", "audit"] {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE connection_id = $1 OR connection_id = $2"
        ))
        .bind(&jira)
        .bind(&confluence)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
        assert_eq!(n, 0, "{table} still holds rows of the erased connections");
    }
    // Recorded without naming the owner; erasing again erases nothing.
    let records = audit(app, "kind=owner.erased").await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["detail"]["connections_erased"], 2);
    assert_eq!(
        kinds(&audit(app, &format!("app={other_id}&kind=owner.erased")).await).len(),
        1
    );
    let again = app.delete(&format!("/v1/owners/{owner}"), &s.key).await;
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap(),
        json!({ "connections_erased": 0 })
    );
    // The app and its key live on.
    assert_eq!(app.get("/v1/connections", Some(&s.key)).await.status(), 200);
    assert_problem(
        app.delete(&format!("/v1/owners/{}", "x".repeat(201)), &s.key)
            .await,
        422,
    )
    .await;
    assert_problem(
        app.client
            .delete(app.url("/v1/owners/x"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

async fn create_sync_for(s: &crate::events::Setup, connection: &str, project: &str) -> String {
    let resp = s
        .app
        .post_json(
            &format!("/v1/connections/{connection}/syncs"),
            Some(&s.key),
            &json!({ "jql": format!("project = {project}"), "webhooks": true, "interval_s": 3600 }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_idle_for(s: &crate::events::Setup, connection: &str, sync: &str) {
    crate::helpers::wait_for(60, "the sync's first pass", || async {
        let v = s
            .app
            .get_ok(
                &format!("/v1/connections/{connection}/syncs/{sync}"),
                &s.key,
            )
            .await;
        (v["passes"].as_i64().unwrap_or(0) >= 1 && v["webhook"]["id"].is_i64()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn erasing_an_owner_leaves_no_trace_and_spares_other_apps() {
    for backend in backends() {
        erase(backend).await;
    }
}
