//! The audit trail (docs/design.md §14) and retention (§15).

use atlasgate::config::TrustedProxies;
use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, backends, TestApp, TestOptions};
use crate::lifecycle::{audit, dashboard_session, kinds};

async fn behind_proxy(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        TestOptions {
            backend,
            ..Default::default()
        },
        |c| c.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap(),
    )
    .await
}

/// `GET path` as if from `client` behind the trusted proxy.
async fn get_from(app: &TestApp, path: &str, key: &str, client: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(key)
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
}

async fn trail(backend: Backend) {
    let app = behind_proxy(backend).await;
    let created = app
        .client
        .post(app.url("/admin/api/apps"))
        .bearer_auth(&app.admin_token)
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "name": "audited", "webhook_url": "https://hooks.example.com/x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let (app_id, key) = (
        created["id"].as_str().unwrap().to_string(),
        created["api_key"].as_str().unwrap().to_string(),
    );
    let secret = created["webhook_secret"].as_str().unwrap().to_string();
    let sites = crate::connect::sim_sites(&app);
    let conn = crate::connect::connect(&app, &key, "team:audit", &sites[..1], None).await;
    let key_id = app
        .admin_get(&format!("/admin/api/apps/{app_id}/keys"))
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Five tokens from one client: counted in memory, not yet a row.
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let resp = get_from(
            &app,
            &format!("/v1/connections/{conn}/token"),
            &key,
            "198.51.100.7",
        )
        .await;
        assert_eq!(resp.status(), 200);
        tokens.push(
            resp.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(audit(&app, "kind=token.served").await.is_empty());
    let written = app.state.token_served.flush_all(&app.store).await;
    assert_eq!(written, 1);
    let served = audit(&app, "kind=token.served").await;
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(served[0]["detail"], json!({ "count": 5 }));
    assert_eq!(served[0]["connection_id"], conn.as_str());
    assert_eq!(served[0]["key_id"], key_id.as_str());
    assert_eq!(served[0]["client_ip"], "198.51.100.7");
    assert!(
        served[0]["at"].as_str().unwrap().ends_with(":00Z"),
        "{}",
        served[0]
    );

    // A refresh, a disconnect, logins.
    let r = app.refresh_connection(&key, &conn).await;
    assert_eq!(r.status(), 200);
    tokens.push(
        app.connection_token(&key, &conn).await["access_token"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let d = app.delete(&format!("/v1/connections/{conn}"), &key).await;
    assert_eq!(d.status(), 200);
    let (_cookie, _csrf, html) = dashboard_session(&app).await;
    let bad = app
        .client
        .post(app.url("/admin/login"))
        .header("x-forwarded-for", "192.0.2.66")
        .form(&[("token", "not-the-admin-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_problem(
        app.get("/admin/api/apps", Some("wrong-admin-token-0000"))
            .await,
        401,
    )
    .await;

    let all = audit(&app, "limit=200").await;
    let k = kinds(&all);
    for want in [
        "app.created",
        "connection.created",
        "token.served",
        "token.refreshed",
        "connection.disconnected",
        "admin.login",
        "admin.login_failed",
    ] {
        assert!(k.iter().any(|x| x == want), "{want} missing from {k:?}");
    }
    let app_created = all.iter().find(|r| r["kind"] == "app.created").unwrap();
    assert_eq!(app_created["client_ip"], "203.0.113.9");
    assert_eq!(app_created["app_id"], app_id.as_str());
    let failed: Vec<&Value> = all
        .iter()
        .filter(|r| r["kind"] == "admin.login_failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .any(|r| r["client_ip"] == "192.0.2.66" && r["detail"]["via"] == "dashboard"));
    assert!(failed.iter().any(|r| r["detail"]["via"] == "api"));
    // The dashboard section lists them.
    assert!(
        html.contains("id=\"audit\"") && html.contains("app.created"),
        "{html}"
    );

    // Filters and pages: newest first, no record twice, every record once.
    let of_conn = audit(&app, &format!("connection={conn}")).await;
    assert!(of_conn.iter().all(|r| r["connection_id"] == conn.as_str()));
    assert_eq!(kinds(&of_conn)[0], "connection.disconnected");
    let by_name = audit(&app, "app=audited&kind=token.refreshed").await;
    assert_eq!(by_name.len(), 1);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/admin/api/audit?limit=2&cursor={c}"),
            None => "/admin/api/audit?limit=2".into(),
        };
        let body: Value = app.admin_get(&q).await.json().await.unwrap();
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let problem = assert_problem(
        app.admin_get("/admin/api/audit?kind=nope&limit=0&cursor=x")
            .await,
        422,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["limit", "kind", "cursor"], "{problem}");

    // Never a secret: not the key, the webhook secret, a token or the admin token.
    let raw: Vec<String> = sqlx::query_scalar("SELECT detail FROM audit")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let text = format!("{} {}", serde_json::to_string(&all).unwrap(), raw.join(" "));
    let mut secrets = vec![
        key[4..].to_string(),
        secret[6..].to_string(),
        app.admin_token.clone(),
    ];
    secrets.extend(tokens);
    for s in &secrets {
        assert!(s.len() >= 16);
        assert!(!text.contains(s.as_str()), "a secret in the audit trail");
    }
}

#[tokio::test]
async fn the_audit_trail_records_each_kind_with_its_client_and_no_secret() {
    for backend in backends() {
        trail(backend).await;
    }
}

#[test]
fn the_audit_table_is_append_only() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../atlasgate-core/src");
    let mut seen = 0;
    for entry in walk(std::path::Path::new(dir)) {
        let text = std::fs::read_to_string(&entry).unwrap().to_lowercase();
        seen += 1;
        assert!(
            !text.contains("update audit"),
            "{} updates audit records",
            entry.display()
        );
    }
    assert!(seen > 20);
    let store = std::fs::read_to_string(format!("{dir}/store/audit.rs")).unwrap();
    assert!(store.contains("INSERT INTO audit"), "positive control");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

const DAY: i64 = 86_400;

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

async fn exec(app: &TestApp, sql: &str, binds: &[i64]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(app.store.pool()).await.unwrap();
}

async fn retention(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (app_id, _key) = app.create_app("kept").await;
    let now = atlasgate::store::now();
    let old = now - 31 * DAY;
    let recent = now - 29 * DAY;
    // 2,500 old delivered events (three batches), and one old event in each other state.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) \
         INSERT INTO events (id, app_id, type, payload, created_at, delivery_state, next_attempt_at) \
         SELECT 'old-' || i, $1, 'issue.updated', '{}', $2, 'delivered', 0 FROM n",
    )
    .bind(&app_id)
    .bind(old)
    .execute(app.store.pool())
    .await
    .unwrap();
    // The pending event waits for its next attempt a day from now: the app's
    // own outbox worker runs beside this test and would otherwise finish it
    // (skipped: the app has no webhook URL) before the pass looks.
    for (id, state, at, next) in [
        ("old-failed", "failed", old, 0),
        ("old-skipped", "skipped", old, 0),
        ("old-pending", "pending", old, now + DAY),
        ("recent-delivered", "delivered", recent, 0),
    ] {
        sqlx::query(
            "INSERT INTO events (id, app_id, type, payload, created_at, delivery_state, next_attempt_at) \
             VALUES ($1, $2, 'issue.updated', '{}', $3, $4, $5)",
        )
        .bind(id)
        .bind(&app_id)
        .bind(at)
        .bind(state)
        .bind(next)
        .execute(app.store.pool())
        .await
        .unwrap();
    }
    // The waiting delivery is held by a claim until tomorrow, so the app's
    // inbox worker (beside this test) leaves it waiting for the pass to see.
    for (id, state, at, locked_until) in [
        ("d-applied", "applied", old, None),
        ("d-ignored", "ignored", old, None),
        ("d-received", "received", old, Some(now + DAY)),
        ("d-recent", "applied", recent, None),
    ] {
        sqlx::query(
            "INSERT INTO jira_webhook_deliveries (identifier, received_at, event, payload, state, locked_until) \
             VALUES ($1, $2, 'jira:issue_updated', '{}', $3, $4)",
        )
        .bind(id)
        .bind(at)
        .bind(state)
        .bind(locked_until)
        .execute(app.store.pool())
        .await
        .unwrap();
    }
    // Expiry times stay within the last day: the app's own keep-alive pass
    // forgets sessions that expired more than a day ago, and it runs beside
    // this test; only the retention pass may remove these.
    for (id, status, at, expires) in [
        ("cs_old_done", "completed", old, now + 1800),
        ("cs_old_expired", "pending", old, now - 3600),
        ("cs_recent", "completed", recent, now + 1800),
    ] {
        sqlx::query(
            "INSERT INTO connect_sessions (id, app_id, owner, profile, scopes, status, created_at, expires_at) \
             VALUES ($1, $2, 'o', 'jira', '[]', $3, $4, $5)",
        )
        .bind(id)
        .bind(&app_id)
        .bind(status)
        .bind(at)
        .bind(expires)
        .execute(app.store.pool())
        .await
        .unwrap();
    }
    exec(&app, "INSERT INTO connect_states (state_hash, session_id, browser_hash, created_at, expires_at) VALUES ('h1', 'cs_old_done', 'b', $1, $2)", &[old, now + 1800]).await;
    exec(
        &app,
        "INSERT INTO audit (at, kind, detail) VALUES ($1, 'admin.login', '{}')",
        &[now - 366 * DAY],
    )
    .await;
    exec(
        &app,
        "INSERT INTO audit (at, kind, detail) VALUES ($1, 'admin.login', '{}')",
        &[now - 364 * DAY],
    )
    .await;
    let audit_before = count(&app, "SELECT COUNT(*) FROM audit").await;

    atlasgate::retention::run_at(&app.state.core, now)
        .await
        .unwrap();

    // What was old and finished is gone; pending, waiting and recent rows stay.
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM events WHERE id LIKE 'old-%' OR id LIKE 'recent-%' ORDER BY id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(ids, ["old-pending", "recent-delivered"]);
    let deliveries: Vec<String> =
        sqlx::query_scalar("SELECT identifier FROM jira_webhook_deliveries ORDER BY identifier")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(deliveries, ["d-received", "d-recent"]);
    let sessions: Vec<String> =
        sqlx::query_scalar("SELECT id FROM connect_sessions WHERE id LIKE 'cs_%' ORDER BY id")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(sessions, ["cs_recent"]);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM connect_states").await, 0);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM audit").await,
        audit_before - 1
    );

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for (table, n) in [
        ("events", 2502),
        ("jira_webhook_deliveries", 2),
        ("connect_sessions", 2),
        ("audit", 1),
    ] {
        let line = format!("atlasgate_retention_rows_removed_total{{table=\"{table}\"}} {n}");
        assert!(metrics.contains(&line), "no `{line}` in\n{metrics}");
    }
    // A second pass finds nothing more.
    let again = atlasgate::retention::run_at(&app.state.core, now)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn retention_removes_old_finished_rows_in_batches_and_keeps_the_rest() {
    for backend in backends() {
        retention(backend).await;
    }
}
