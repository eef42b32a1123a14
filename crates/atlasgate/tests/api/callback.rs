//! Every way `/oauth/callback` refuses, each leaving the database unchanged.

use atlasgate::store::Backend;
use atlasgate_testkit::Browser;
use serde_json::json;

use crate::connect::{browser, callback_url, connect, consent, dump, new_session, sim_sites};
use crate::helpers::{backends, TestApp};

/// Walk a browser up to the callback URL Atlassian would send it to,
/// without calling it.
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    u.to_string()
}

async fn html_page(b: &Browser, app: &TestApp, url: &str) -> (u16, String) {
    let resp = b.send_once(app.client.get(url)).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    (status, resp.text().await.unwrap())
}

async fn rejections(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (_, key) = app.create_app("callback").await;
    let sites = sim_sites(&app);
    // Some existing data, so "unchanged" means something.
    connect(&app, &key, "existing", &sites[..1], None).await;

    let session = new_session(&app, &key, json!({ "owner": "victim" })).await;
    let connect_url = session["connect_url"].as_str().unwrap();
    let b = browser(&app);
    consent(&app, &sites[..1]);
    let good = callback_url(&app, &b, connect_url).await;
    let before = dump(&app).await;
    let exchanges = app.sim.stats().tokens.code_exchanges;

    // Missing state.
    let (status, body) = html_page(&b, &app, &with_param(&good, "state", None)).await;
    assert_eq!(status, 400);
    assert!(body.contains("missing its state"), "{body}");
    // Unknown state.
    let (status, body) = html_page(
        &b,
        &app,
        &with_param(&good, "state", Some(&"ab".repeat(32))),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown"), "{body}");
    // Another browser (no cookie, or someone else's cookie).
    let stranger = browser(&app);
    let (status, body) = html_page(&stranger, &app, &good).await;
    assert_eq!(status, 403);
    assert!(body.contains("another browser"), "{body}");
    stranger.set_cookie("atlasgate_connect", &"c".repeat(64));
    let (status, _) = html_page(&stranger, &app, &good).await;
    assert_eq!(status, 403);
    // Atlassian says the person declined.
    // Atlassian's error answers carry `error` instead of `code`.
    let with_error =
        |error: &str| with_param(&with_param(&good, "code", None), "error", Some(error));
    let declined = with_error("access_denied");
    let (status, body) = html_page(&b, &app, &declined).await;
    assert_eq!(status, 403);
    assert!(body.contains("You declined"), "{body}");
    // Another error from Atlassian.
    let other = with_error("server_error");
    let (status, _) = html_page(&b, &app, &other).await;
    assert_eq!(status, 400);
    // A code Atlassian refuses: the exchange fails.
    let (status, body) = html_page(&b, &app, &with_param(&good, "code", Some("forged-code"))).await;
    assert_eq!(status, 502);
    assert!(body.contains("could not complete"), "{body}");
    // Atlassian down during the exchange.
    app.sim.add_fault(atlassim::Fault {
        method: Some("POST".into()),
        path: "/oauth/token".into(),
        count: 1,
        status: Some(503),
        body: None,
        headers: None,
        latency_ms: None,
        drop: false,
    });
    let (status, _) = html_page(&b, &app, &good).await;
    assert_eq!(status, 502);
    assert_eq!(
        dump(&app).await,
        before,
        "a refused callback changed the database"
    );
    assert!(app.sim.stats().tokens.code_exchanges <= exchanges + 2);

    // Expired state: (expiry moved back by hand) refused, nothing else changes.
    let state_hash = atlasgate_sha(
        &url::Url::parse(&good)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1,
    );
    sqlx::query("UPDATE connect_states SET expires_at = $1 WHERE state_hash = $2")
        .bind(atlasgate::store::now() - 1)
        .bind(&state_hash)
        .execute(app.store.pool())
        .await
        .unwrap();
    let expired_before = dump(&app).await;
    let (status, body) = html_page(&b, &app, &good).await;
    assert_eq!(status, 410);
    assert!(body.contains("expired"), "{body}");
    assert_eq!(dump(&app).await, expired_before);

    // The legitimate browser with a fresh state completes, once; a replay is refused.
    consent(&app, &sites[..1]);
    let fresh = callback_url(&app, &b, connect_url).await;
    let (status, body) = html_page(&b, &app, &fresh).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Connected"));
    let after_success = dump(&app).await;
    let (status, body) = html_page(&b, &app, &fresh).await;
    assert_eq!(status, 400);
    assert!(body.contains("already"), "{body}");
    assert_eq!(dump(&app).await, after_success);
}

fn atlasgate_sha(v: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(v.as_bytes()))
}

#[tokio::test]
async fn callback_rejections_leave_the_database_unchanged() {
    for backend in backends() {
        rejections(backend).await;
    }
}

#[tokio::test]
async fn errors_redirect_to_return_to_when_the_browser_is_known() {
    let app = TestApp::spawn().await;
    let key = &app
        .create_app_returning_to("errors", "http://localhost:3000")
        .await;
    let session = new_session(
        &app,
        key,
        json!({ "owner": "d", "return_to": "http://localhost:3000/cb" }),
    )
    .await;
    let b = browser(&app);
    app.sim.set_next_consent(atlassim::ConsentDecision {
        account_id: None,
        sites: None,
        deny: true,
    });
    let denied = callback_url(&app, &b, session["connect_url"].as_str().unwrap()).await;
    assert!(denied.contains("error=access_denied"), "{denied}");
    let before = dump(&app).await;
    let resp = b.send_once(app.client.get(&denied)).await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "http://localhost:3000/cb?status=error&error=access_denied"
    );
    // A foreign browser still gets a page, never a redirect.
    let stranger = browser(&app);
    let resp = stranger.send_once(app.client.get(&denied)).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("location").is_none());
    assert_eq!(dump(&app).await, before);
}
