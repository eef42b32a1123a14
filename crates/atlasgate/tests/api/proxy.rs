//! The authenticated proxy against atlassim: pass-through, path safety,
//! re-consent, unreachable/slow Atlassian. Shared helpers for the client,
//! Jira and Confluence tests.

use std::time::{Duration, Instant};

use atlasgate::atlassian::ClientPolicy;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connect::{
    browser, consent, expire_access_token, first_account, new_session, sim_sites,
};
use crate::helpers::{assert_problem, TestApp};

// ---------------------------------------------------------------- helpers

/// Connect `owner` with `profile` to the `site`-th atlassim site: `(key, id)`.
pub async fn connected(app: &TestApp, profile: &str, site: usize) -> (String, String) {
    let (_, key) = app
        .create_app(&format!("app-{}", uuid::Uuid::new_v4().simple()))
        .await;
    let id = connect_with(app, &key, "team:1", profile, site).await;
    (key, id)
}

pub async fn connect_with(
    app: &TestApp,
    key: &str,
    owner: &str,
    profile: &str,
    site: usize,
) -> String {
    let sites = sim_sites(app);
    let session = new_session(app, key, json!({ "owner": owner, "profile": profile })).await;
    let mut b = browser(app);
    consent(app, &sites[site..site + 1]);
    let page = b
        .get(session["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
    assert!(page.body.contains("Connected"), "{}", page.body);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("owner", owner)
        .append_pair("profile", profile)
        .finish();
    let list = app.get_json(&format!("/v1/connections?{q}"), key).await;
    list["items"][0]["id"].as_str().unwrap().to_string()
}

/// Short delays so fault tests run quickly.
pub fn fast_policy(app: &TestApp) {
    app.state.atlassian.set_policy(ClientPolicy {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        ..ClientPolicy::default()
    });
}

/// atlassim's site `i` as in `/__sim/state`.
pub fn sim_site(app: &TestApp, i: usize) -> Value {
    app.sim.snapshot()["sites"][i].clone()
}

/// Requests atlassim saw for `method` on a gateway route ending in `suffix`.
pub fn sim_count(app: &TestApp, method: &str, suffix: &str) -> u64 {
    app.sim
        .stats()
        .requests
        .iter()
        .filter(|r| {
            r.method.eq_ignore_ascii_case(method)
                && r.route.starts_with("/ex/")
                && r.route.ends_with(suffix)
        })
        .map(|r| r.count)
        .sum()
}

/// Every request atlassim's gateway (`/ex/…`) saw.
pub fn gateway_requests(app: &TestApp) -> u64 {
    app.sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route.starts_with("/ex/") || r.route == "<unmatched>")
        .map(|r| r.count)
        .sum()
}

pub fn fault(method: &str, path: &str, count: u32) -> atlassim::Fault {
    atlassim::Fault::new(method, path, count)
}

pub fn proxy_url(app: &TestApp, id: &str, rest: &str) -> String {
    app.url(&format!("/v1/connections/{id}/proxy/jira/{rest}"))
}

pub async fn proxy_get(app: &TestApp, key: &str, id: &str, rest: &str) -> reqwest::Response {
    app.client
        .get(proxy_url(app, id, rest))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// `method` through the Jira proxy with a JSON body.
pub async fn proxy_json(
    app: &TestApp,
    method: reqwest::Method,
    key: &str,
    id: &str,
    rest: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .request(method, proxy_url(app, id, rest))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Send a request line exactly as written (reqwest would normalise `..`).
async fn raw_get(app: &TestApp, key: &str, target: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        app.port
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

// ---------------------------------------------------------------- pass-through

#[tokio::test]
async fn proxy_swaps_the_key_for_the_token_and_passes_requests_through() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let account = first_account(&app);

    // GET: the app key never reaches Atlassian, the connection's token does.
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["accountId"], account.as_str());
    // Gateway links in the answer point back at the proxy, not at Atlassian.
    let own = proxy_url(&app, &id, "rest/api/3/user?accountId=");
    assert!(me["self"].as_str().unwrap().starts_with(&own), "{me}");

    // Query strings pass untouched.
    let site = sim_site(&app, 0);
    let project = site["projects"][0]["key"].as_str().unwrap().to_string();
    let resp = proxy_get(
        &app,
        &key,
        &id,
        &format!("rest/api/3/search/jql?jql=project%20%3D%20{project}&fields=key&maxResults=3"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["issues"].as_array().unwrap().len(), 3);
    assert!(page["issues"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{project}-")));

    // A body and method pass: POST a comment, PUT a field.
    let issue = page["issues"][0]["key"].as_str().unwrap().to_string();
    let body = json!({"body": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "via proxy"}]}]}});
    let resp = proxy_json(
        &app,
        reqwest::Method::POST,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}/comment"),
        &body,
    )
    .await;
    assert_eq!(resp.status(), 201);
    let renamed = json!({"fields": {"summary": "renamed through the proxy"}});
    let resp = proxy_json(
        &app,
        reqwest::Method::PUT,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}"),
        &renamed,
    )
    .await;
    assert_eq!(resp.status(), 204);
    let got: Value = proxy_get(
        &app,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}?fields=summary"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(got["fields"]["summary"], "renamed through the proxy");

    // Atlassian's own errors are relayed untouched (Jira's ErrorCollection).
    let resp = proxy_get(&app, &key, &id, "rest/api/3/issue/NOPE-999999").await;
    assert_eq!(resp.status(), 404);
    assert!(!resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("problem"));
    let err: Value = resp.json().await.unwrap();
    assert!(err["errorMessages"].is_array(), "{err}");

    // Without the app key: 401 problem, nothing sent.
    let before = gateway_requests(&app);
    let resp = app
        .client
        .get(proxy_url(&app, &id, "rest/api/3/myself"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
    assert_eq!(gateway_requests(&app), before);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let site = sim_site(&app, 0);
    let project = site["projects"][0]["key"].as_str().unwrap().to_string();
    // A 1.5 MiB request body (over the replay buffer) is streamed and reaches Jira intact.
    let issue = format!("{project}-1");
    let text = "x".repeat(1536 * 1024);
    let body = json!({"fields": {"summary": "big body", "customfield_19999": text}});
    let resp = proxy_json(
        &app,
        reqwest::Method::PUT,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}"),
        &body,
    )
    .await;
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    // And comes back in a response larger than the app API's body limit.
    let resp = proxy_get(
        &app,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}?fields=summary,customfield_19999"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["fields"]["summary"], "big body");
    assert_eq!(
        got["fields"]["customfield_19999"].as_str().unwrap().len(),
        text.len()
    );
}

#[tokio::test]
async fn the_confluence_proxy_reaches_the_confluence_base() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let resp = app
        .client
        .get(app.url(&format!(
            "/v1/connections/{id}/proxy/confluence/wiki/api/v2/spaces?limit=2"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert!(sim_count(&app, "GET", "/spaces") >= 1);
}

#[tokio::test]
async fn another_apps_connection_is_404_and_nothing_is_sent() {
    let app = TestApp::spawn().await;
    let (_, id) = connected(&app, "jira", 0).await;
    let (_, other_key) = app.create_app("other").await;
    let before = gateway_requests(&app);
    let resp = proxy_get(&app, &other_key, &id, "rest/api/3/myself").await;
    assert_problem(resp, 404).await;
    assert_eq!(gateway_requests(&app), before);
}

// ---------------------------------------------------------------- path safety

#[tokio::test]
async fn unsafe_paths_are_refused_before_anything_is_sent() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let other_cloud = sim_site(&app, 1)["cloud_id"].as_str().unwrap().to_string();
    let base = format!("/v1/connections/{id}/proxy/jira");
    let before = gateway_requests(&app);
    let forms = [
        format!("{base}/rest/api/3/../../../{other_cloud}/rest/api/3/myself"),
        format!("{base}/../../{id}/token"),
        format!("{base}/rest/%2e%2e/%2E%2E/x"),
        format!("{base}/rest/.%2e/x"),
        format!("{base}/rest/%252e%252e/x"),
        format!("{base}/rest/api%2f3/myself"),
        format!("{base}/rest/api%2F3/myself"),
        format!("{base}/rest%5capi/3/myself"),
        format!("{base}/rest\\api/3/myself"),
        format!("{base}//evil.example/rest/api/3/myself"),
        format!("{base}/http://evil.example/rest"),
        format!("{base}/https:%2f%2fevil.example/rest"),
        format!("{base}/user@evil.example/rest"),
        format!("{base}/rest/%40evil.example"),
        format!("{base}/ex/jira/{other_cloud}/rest/api/3/myself"),
        format!("{base}/ex/confluence/{other_cloud}/wiki/api/v2/spaces"),
        format!("{base}/rest/%00/x"),
        // Path parameters (`..;/` reaches the parent on servers that strip them).
        format!("{base}/rest/api/3/..;/..;/{other_cloud}/rest/api/3/myself"),
        format!("{base}/rest/api;x=1/3/myself"),
        format!("{base}/rest/api/3/%3b/myself"),
        // Unicode look-alikes of `.` and `/` (U+2024, U+FF0E, U+2215, U+FF0F),
        // encoded, double-encoded and raw.
        format!("{base}/rest/api/3/%E2%80%A4%E2%80%A4/%E2%80%A4%E2%80%A4/{other_cloud}"),
        format!("{base}/rest/api/3/%EF%BC%8E%EF%BC%8E/%EF%BC%8E%EF%BC%8E/{other_cloud}"),
        format!("{base}/rest%E2%88%95api%E2%88%953%E2%88%95myself"),
        format!("{base}/rest%EF%BC%8Fapi/3/myself"),
        format!("{base}/rest/%25EF%25BC%258E%25EF%25BC%258E/x"),
        format!("{base}/rest/api/3/\u{ff0e}\u{ff0e}/x"),
        // Overlong UTF-8 for `.`.
        format!("{base}/rest/%c0%ae%c0%ae/x"),
    ];
    for target in &forms {
        let (status, text) = raw_get(&app, &key, target).await;
        assert_eq!(status, 400, "{target}: {text}");
        assert!(
            text.contains("application/problem+json"),
            "{target}: {text}"
        );
    }
    assert_eq!(
        gateway_requests(&app),
        before,
        "nothing may reach Atlassian"
    );
    // The same connection still works for a proper path.
    let (status, _) = raw_get(&app, &key, &format!("{base}/rest/api/3/myself")).await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn a_dead_grant_answers_reauth_required_with_a_connect_url() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    app.sim.revoke_grants(&first_account(&app));
    expire_access_token(&app, &id).await;
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    let body = assert_problem(resp, 409).await;
    assert!(
        body["type"].as_str().unwrap().ends_with("/reauth-required"),
        "{body}"
    );
    assert!(body["connect_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/connect/", app.address)));
}

#[tokio::test]
async fn unreachable_and_slow_atlassian_become_502_and_504() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    app.state.atlassian.set_policy(ClientPolicy {
        retry_base: Duration::from_millis(10),
        max_retries: 1,
        response_timeout: Duration::from_millis(300),
        ..ClientPolicy::default()
    });
    // Every attempt loses its connection.
    let mut f = fault("GET", "/ex/jira/*/rest/api/3/myself", 2);
    f.drop = true;
    app.sim.add_fault(f);
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    let body = assert_problem(resp, 502).await;
    assert!(
        body["type"].as_str().unwrap().ends_with("/bad-gateway"),
        "{body}"
    );

    // Every attempt is slower than the timeout.
    let mut f = fault("GET", "/ex/jira/*/rest/api/3/myself", 2);
    f.latency_ms = Some(1500);
    app.sim.add_fault(f);
    let started = Instant::now();
    let resp = proxy_get(&app, &key, &id, "rest/api/3/myself").await;
    let body = assert_problem(resp, 504).await;
    assert!(
        body["type"].as_str().unwrap().ends_with("/gateway-timeout"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
