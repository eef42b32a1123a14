//! Connect sessions and the happy paths of the connect flow, driven over HTTP
//! with a cookie-keeping client. Shared helpers for the other connect tests.

use atlasgate::ids::ConnectionId;
use atlasgate::store::Backend;
use atlasgate_testkit::{Browser, SitePickerForm};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, backends, TestApp, TestOptions};

// ---------------------------------------------------------------- helpers

pub fn browser(app: &TestApp) -> Browser {
    Browser::new(app.client.clone())
}

/// Cloud ids of atlassim's sites, in order.
pub fn sim_sites(app: &TestApp) -> Vec<String> {
    app.sim.snapshot()["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cloud_id"].as_str().unwrap().to_string())
        .collect()
}

pub fn first_account(app: &TestApp) -> String {
    app.sim.snapshot()["users"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn consent(app: &TestApp, sites: &[String]) {
    app.sim.set_next_consent(atlassim::ConsentDecision {
        account_id: None,
        sites: Some(sites.to_vec()),
        deny: false,
    });
}

/// Follow `connect_url` through atlassim's consent (preset beforehand) up to
/// our callback: the callback URL with `code` and `state`, not yet visited.
pub async fn callback_url(app: &TestApp, b: &Browser, connect_url: &str) -> String {
    let r1 = b.send_once(app.client.get(connect_url)).await.unwrap();
    assert_eq!(r1.status(), 302);
    let r2 = b
        .send_once(app.client.get(r1.headers()["location"].to_str().unwrap()))
        .await
        .unwrap();
    assert!(
        r2.status().is_redirection(),
        "atlassim answered {}",
        r2.status()
    );
    r2.headers()["location"].to_str().unwrap().to_string()
}

/// Submit the site picker at `url` with this CSRF token and cloud id.
pub async fn choose_site(
    b: &mut Browser,
    url: &str,
    csrf: &str,
    cloud_id: &str,
) -> atlasgate_testkit::Page {
    b.post_form(url, &[("csrf", csrf), ("cloud_id", cloud_id)])
        .await
        .unwrap()
}

/// `POST /v1/connect-sessions`, asserting 201.
pub async fn new_session(app: &TestApp, key: &str, body: Value) -> Value {
    let resp = app
        .post_json("/v1/connect-sessions", Some(key), &body)
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

/// Run the whole connect flow for `owner`: consent to `sites`, and when the
/// picker shows, choose `choose`. Returns the connection id.
pub async fn connect(
    app: &TestApp,
    key: &str,
    owner: &str,
    sites: &[String],
    choose: Option<&str>,
) -> String {
    connect_as(app, key, owner, sites, choose, None).await
}

/// [`connect`], consenting as atlassim's `account_id` (else its first user).
pub async fn connect_as(
    app: &TestApp,
    key: &str,
    owner: &str,
    sites: &[String],
    choose: Option<&str>,
    account_id: Option<String>,
) -> String {
    let session = new_session(app, key, json!({ "owner": owner })).await;
    let mut b = browser(app);
    app.sim.set_next_consent(atlassim::ConsentDecision {
        account_id,
        sites: Some(sites.to_vec()),
        deny: false,
    });
    let page = b
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
    if page.url.ends_with("/site") {
        let form = SitePickerForm::parse(&page.body).unwrap();
        let chosen = choose.expect("the site picker showed; choose a site");
        let done = choose_site(&mut b, &page.url, &form.csrf, chosen).await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.body.contains("Connected"), "{}", done.body);
    } else {
        assert!(page.body.contains("Connected"), "{}", page.body);
    }
    connection_of(app, key, owner).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn connection_of(app: &TestApp, key: &str, owner: &str) -> Value {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("owner", owner)
        .finish();
    let body = app.get_ok(&format!("/v1/connections?{q}"), key).await;
    body["items"][0].clone()
}

/// Make the stored access token look expired so the next `/token` refreshes.
pub async fn expire_access_token(app: &TestApp, id: &str) {
    sqlx::query("UPDATE connections SET access_expires_at = $1 WHERE id = $2")
        .bind(atlasgate::store::now() - 10)
        .bind(id)
        .execute(app.store.pool())
        .await
        .unwrap();
    // Real expiry is time passing, which the process's token cache honours
    // (it never serves past `expires_at - margin`); a jump in the row is not
    // something it can see, so drop its entry as time passing would.
    app.state
        .refresher
        .token_cache()
        .invalidate(&ConnectionId::new(id));
}

pub async fn event_types(app: &TestApp, connection_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT type FROM events WHERE connection_id = $1 ORDER BY seq")
        .bind(connection_id)
        .fetch_all(app.store.pool())
        .await
        .unwrap()
}

/// Every row of the connect flow's tables (and events), as text.
pub async fn dump(app: &TestApp) -> Vec<String> {
    use atlasgate::store::sessions::{SessionRow, StateRow};
    let pool = app.store.pool();
    let mut out = Vec::new();
    let sessions: Vec<SessionRow> = sqlx::query_as(
        "SELECT id, app_id, owner, profile, scopes, return_to, status, browser_hash, connection_id, \
         created_at, expires_at, completed_at FROM connect_sessions ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(sessions.iter().map(|s| format!("{s:?}")));
    let states: Vec<StateRow> = sqlx::query_as(
        "SELECT state_hash, session_id, browser_hash, created_at, expires_at, used_at FROM connect_states ORDER BY state_hash",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(states.iter().map(|s| format!("{s:?}")));
    for r in atlasgate::store::connections::list_all(pool).await.unwrap() {
        out.push(format!(
            "{:?}",
            (
                &r.id,
                &r.status,
                &r.owner,
                &r.access_token,
                &r.refresh_token,
                r.token_version,
                &r.site_cloud_id,
                &r.sites,
                &r.refresh_inflight_token,
                r.connected_at,
                r.updated_at,
            )
        ));
    }
    let events: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, type, payload FROM events ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap();
    out.extend(events.iter().map(|e| format!("{e:?}")));
    out
}

// ---------------------------------------------------------------- sessions

#[tokio::test]
async fn connect_session_is_created_with_a_link() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("sessions").await;
    let body = new_session(&app, &key, json!({ "owner": "team:42" })).await;
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("cs_") && id.len() > 40, "{id}");
    assert_eq!(body["connect_url"], format!("{}/connect/{id}", app.address));
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let in_secs = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((1790..=1800).contains(&in_secs), "{in_secs}");
    // Two sessions never share an id.
    let other = new_session(&app, &key, json!({ "owner": "team:42" })).await;
    assert_ne!(other["id"], body["id"]);
}

#[tokio::test]
async fn connect_session_lists_every_invalid_field() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("invalid").await;
    let resp = app
        .post_json(
            "/v1/connect-sessions",
            Some(&key),
            &json!({ "owner": "", "profile": "nope", "return_to": "https://evil.example.com/x" }),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["owner", "profile", "return_to"]);
    let long = "x".repeat(201);
    let resp = app
        .post_json(
            "/v1/connect-sessions",
            Some(&key),
            &json!({ "owner": long }),
        )
        .await;
    assert_problem(resp, 422).await;
    let resp = app
        .post_json("/v1/connect-sessions", None, &json!({ "owner": "a" }))
        .await;
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn return_to_must_use_an_allowed_origin() {
    let app = TestApp::spawn().await;
    let key = &app
        .create_app_returning_to("origins", "https://app.example.com")
        .await;
    new_session(
        &app,
        key,
        json!({ "owner": "u", "return_to": "https://app.example.com/done?x=1" }),
    )
    .await;
    for bad in [
        "https://app.example.com.evil.io/",
        "http://app.example.com/",
        "/relative",
        "javascript:alert(1)",
    ] {
        let resp = app
            .post_json(
                "/v1/connect-sessions",
                Some(key),
                &json!({ "owner": "u", "return_to": bad }),
            )
            .await;
        let body = assert_problem(resp, 422).await;
        assert_eq!(body["errors"][0]["field"], "return_to", "{bad}");
    }
}

// ---------------------------------------------------------------- /connect/{session}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn connect_link_binds_the_browser_and_redirects_to_consent() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("redirect").await;
    let session = new_session(&app, &key, json!({ "owner": "u:1" })).await;
    let resp = app
        .client
        .get(session["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/authorize?", app.sim.auth_url())),
        "{location}"
    );
    let q = query_of(&location);
    assert_eq!(q["audience"], "api.atlassian.com");
    assert_eq!(q["client_id"], "atlasgate-dev");
    assert_eq!(q["redirect_uri"], format!("{}/oauth/callback", app.address));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["prompt"], "consent");
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(
        scopes.contains(&"offline_access")
            && scopes.contains(&"read:me")
            && scopes.contains(&"read:jira-work")
    );
    assert!(
        location.contains("scope=offline_access%20"),
        "scopes are %20-separated: {location}"
    );
    let state = &q["state"];
    assert_eq!(state.len(), 64);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("atlasgate_connect="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/;"),
        "{cookie}"
    );
    // Only hashes are stored: neither the state nor the cookie value.
    let dumped = dump(&app).await.join("\n");
    let cookie_value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(!dumped.contains(state.as_str()));
    assert!(!dumped.contains(cookie_value));
    // A second visit hands out a different state.
    let again = app
        .client
        .get(session["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let q2 = query_of(again.headers()["location"].to_str().unwrap());
    assert_ne!(&q2["state"], state);
}

#[tokio::test]
async fn connect_link_pages_for_unknown_expired_and_used_sessions() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("pages").await;
    let resp = app.get("/connect/cs_doesnotexist", None).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("not valid"));

    let session = new_session(&app, &key, json!({ "owner": "u" })).await;
    let id = session["id"].as_str().unwrap();
    sqlx::query("UPDATE connect_sessions SET expires_at = $1 WHERE id = $2")
        .bind(atlasgate::store::now() - 1)
        .bind(id)
        .execute(app.store.pool())
        .await
        .unwrap();
    let resp = app.get(&format!("/connect/{id}"), None).await;
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("expired"));

    let sites = sim_sites(&app);
    let conn = connect(&app, &key, "used", &sites[..1], None).await;
    assert!(conn.starts_with("con_"));
    let used: String =
        sqlx::query_scalar("SELECT id FROM connect_sessions WHERE status = 'completed'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let resp = app.get(&format!("/connect/{used}"), None).await;
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn public_url_path_prefix_is_respected() {
    let app = TestApp::spawn_with(TestOptions::default(), |c| {
        c.public_url = url::Url::parse(&format!(
            "{}/gate",
            c.public_url.as_str().trim_end_matches('/')
        ))
        .unwrap();
    })
    .await;
    let (_, key) = app.create_app("prefix").await;
    let session = new_session(&app, &key, json!({ "owner": "u" })).await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        session["connect_url"],
        format!("{}/gate/connect/{id}", app.address)
    );
    // A reverse proxy would strip `/gate`; talk to the inner path directly.
    let resp = app.get(&format!("/connect/{id}"), None).await;
    assert_eq!(resp.status(), 302);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(
        q["redirect_uri"],
        format!("{}/gate/oauth/callback", app.address)
    );
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Path=/gate/;"));
}

#[tokio::test]
async fn connect_pages_are_rate_limited_per_ip() {
    let app = TestApp::spawn().await;
    let mut limited = None;
    for _ in 0..200 {
        let resp = app.get("/connect/cs_nothing", None).await;
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 404);
    }
    let resp = limited.expect("no 429 after 200 requests");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // The app API is not affected.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

// ---------------------------------------------------------------- the full flow

async fn full_flow(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (_, key) = app.create_app("flow").await;
    let sites = sim_sites(&app);
    assert_eq!(sites.len(), 2);
    let session = new_session(&app, &key, json!({ "owner": "team:42" })).await;
    let mut b = browser(&app);
    consent(&app, &sites);
    let picker = b
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(picker.status, 200);
    assert_eq!(
        picker.url,
        format!(
            "{}/connect/{}/site",
            app.address,
            session["id"].as_str().unwrap()
        )
    );
    // The picker shows each site's name, URL, avatar and products, and
    // preselects nothing.
    let snapshot = app.sim.snapshot();
    for site in snapshot["sites"].as_array().unwrap() {
        assert!(
            picker.body.contains(site["name"].as_str().unwrap()),
            "{}",
            picker.body
        );
        assert!(picker.body.contains(site["url"].as_str().unwrap()));
    }
    assert!(picker.body.contains("<img src="));
    assert!(picker.body.contains("jira"));
    assert!(!picker.body.contains("checked"));
    let form = SitePickerForm::parse(&picker.body).unwrap();
    assert_eq!(form.cloud_ids, sites);
    // Nothing is final before the choice: no event yet.
    let pending = connection_of(&app, &key, "team:42").await;
    let id = pending["id"].as_str().unwrap().to_string();
    assert!(pending["site"].is_null());
    assert!(event_types(&app, &id).await.is_empty());

    let done = choose_site(&mut b, &picker.url, &form.csrf, &sites[1]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Connected"));

    let conn = app.get_json(&format!("/v1/connections/{id}"), &key).await;
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["authenticated"], true);
    assert_eq!(conn["owner"], "team:42");
    assert_eq!(conn["profile"], "jira");
    assert_eq!(conn["site"]["cloud_id"], sites[1].as_str());
    assert_eq!(conn["sites"].as_array().unwrap().len(), 2);
    assert!(conn["sites"][0]["products"]
        .as_array()
        .unwrap()
        .contains(&json!("jira")));
    assert_eq!(conn["account"]["email"], snapshot["users"][0]["email"]);
    assert!(conn["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("offline_access")));
    assert!(conn["expires_at"].is_string() && conn["connected_at"].is_string());
    assert!(conn.get("access_token").is_none() && !conn.to_string().contains("token\":\""));
    assert_eq!(event_types(&app, &id).await, vec!["connection.created"]);

    let token = app.connection_token(&key, &id).await;
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["cloud_id"], sites[1].as_str());
    assert_eq!(token["site_url"], snapshot["sites"][1]["url"]);
    assert_eq!(token["account_id"], snapshot["users"][0]["account_id"]);
    let first = token["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.sim_me_status(&first).await, 200);
    // Use is noted in memory and written in a batch within 5 s
    // (`atlasgate_core::last_used`); the flush here stands in for the worker.
    app.state.last_used.flush(&app.store).await;
    let used = app.get_json(&format!("/v1/connections/{id}"), &key).await;
    assert!(used["last_used_at"].is_string());

    let refreshed = app.refresh_connection(&key, &id).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert!(refreshed["last_refreshed_at"].is_string());
    assert_eq!(app.sim.stats().tokens.refreshes, 1);
    let token = app.connection_token(&key, &id).await;
    assert_ne!(token["access_token"].as_str().unwrap(), first);

    let deleted = app.delete(&format!("/v1/connections/{id}"), &key).await;
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["status"], "disconnected");
    assert_eq!(deleted["authenticated"], false);
    let wiped: (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT access_token, refresh_token FROM connections WHERE id = $1")
            .bind(&id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(wiped, (None, None));
    assert_eq!(
        event_types(&app, &id).await,
        vec!["connection.created", "connection.deleted"]
    );
    let resp = app
        .get(&format!("/v1/connections/{id}/token"), Some(&key))
        .await;
    assert_problem(resp, 409).await;
}

#[tokio::test]
async fn full_connect_flow_with_site_picker() {
    for backend in backends() {
        full_flow(backend).await;
    }
}

#[tokio::test]
async fn one_site_finishes_at_return_to_without_a_picker() {
    let app = TestApp::spawn().await;
    let key = &app
        .create_app_returning_to("return", "https://app.example.com")
        .await;
    let session = new_session(
        &app,
        key,
        json!({ "owner": "u:9", "return_to": "https://app.example.com/back?keep=1" }),
    )
    .await;
    let sites = sim_sites(&app);
    consent(&app, &sites[..1]);
    let b = browser(&app);
    // Follow by hand until we would leave for return_to.
    let callback = callback_url(&app, &b, session["connect_url"].as_str().unwrap()).await;
    assert!(callback.starts_with(&format!("{}/oauth/callback?", app.address)));
    let r3 = b.send_once(app.client.get(&callback)).await.unwrap();
    assert_eq!(r3.status(), 303);
    let back = url::Url::parse(r3.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.host_str(), Some("app.example.com"));
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["keep"], "1");
    assert_eq!(q["status"], "connected");
    let conn = connection_of(&app, key, "u:9").await;
    assert_eq!(q["connection_id"], conn["id"].as_str().unwrap());
    assert_eq!(conn["site"]["cloud_id"], sites[0].as_str());
}

#[tokio::test]
async fn site_picker_refuses_foreign_sites_bad_csrf_and_other_browsers() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("picker").await;
    let sites = sim_sites(&app);
    let session = new_session(&app, &key, json!({ "owner": "p" })).await;
    let mut b = browser(&app);
    consent(&app, &sites);
    let picker = b
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    let form = SitePickerForm::parse(&picker.body).unwrap();

    // Going back to the connect link resumes at the picker (same browser only).
    let back = b
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((back.status, back.url.as_str()), (200, picker.url.as_str()));
    let elsewhere = browser(&app)
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(elsewhere.status, 410);
    let foreign = choose_site(&mut b, &picker.url, &form.csrf, "not-a-site").await;
    assert_eq!(foreign.status, 422);
    assert!(foreign.body.contains("Choose one of the listed sites"));
    let forged = b
        .post_form(
            &picker.url,
            &[("csrf", &"0".repeat(64)), ("cloud_id", &sites[0])],
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 403);
    let mut stranger = browser(&app);
    let theirs = choose_site(&mut stranger, &picker.url, &form.csrf, &sites[0]).await;
    assert_eq!(theirs.status, 403);
    let theirs = stranger.get(&picker.url).await.unwrap();
    assert_eq!(theirs.status, 403);
    let conn = connection_of(&app, &key, "p").await;
    assert!(conn["site"].is_null(), "nothing was chosen yet");

    let ok = choose_site(&mut b, &picker.url, &form.csrf, &sites[0]).await;
    assert_eq!(ok.status, 200);
    let again = choose_site(&mut b, &picker.url, &form.csrf, &sites[1]).await;
    assert_eq!(again.status, 410);
    assert_eq!(
        connection_of(&app, &key, "p").await["site"]["cloud_id"],
        sites[0].as_str()
    );
}

#[tokio::test]
async fn reconnect_replaces_tokens_and_keeps_the_id() {
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("reconnect").await;
    let sites = sim_sites(&app);
    let first = connect(&app, &key, "same", &sites[..1], None).await;
    let t1 = app.connection_token(&key, &first).await;
    // atlassim adds sites to the existing grant, so the reconnect covers both.
    let second = connect(&app, &key, "same", &sites, Some(&sites[1])).await;
    assert_eq!(first, second);
    let t2 = app.connection_token(&key, &first).await;
    assert_ne!(t1["access_token"], t2["access_token"]);
    assert_eq!(t2["cloud_id"], sites[1].as_str());
    let list = app.get_json("/v1/connections", &key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Another profile is another connection.
    let session = new_session(
        &app,
        &key,
        json!({ "owner": "same", "profile": "confluence" }),
    )
    .await;
    assert!(session["id"].is_string());
}
