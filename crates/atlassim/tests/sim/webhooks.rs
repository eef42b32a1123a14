//! Dynamic webhooks: registration rules, and deliveries received by a real
//! HTTP receiver (JWT, headers, retries, JQL filters, ordering).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::common::{CLIENT_ID, CLIENT_SECRET};
use crate::jira::{gw_with, Gw};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub query: String,
    pub body: Value,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once exhausted.
    pub script: Arc<Mutex<Vec<u16>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Json(body): Json<Value>,
) -> StatusCode {
    r.got.lock().unwrap().push(Received {
        headers,
        query: q.unwrap_or_default(),
        body,
    });
    let mut script = r.script.lock().unwrap();
    let status = if script.is_empty() {
        200
    } else {
        script.remove(0)
    };
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Serve on a free port; returns the URL to register.
    pub async fn start(script: Vec<u16>) -> (Receiver, String) {
        let r = Receiver {
            got: Arc::default(),
            script: Arc::new(Mutex::new(script)),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}/hook"))
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.got.lock().unwrap().len() >= n {
                return self.got.lock().unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} deliveries, got {:?}",
            self.got.lock().unwrap().len()
        );
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

async fn fast_gw() -> Gw {
    let mut config = crate::common::config();
    config.webhook_retry_base_ms = 30;
    gw_with(config).await
}

async fn register(g: &Gw, url: &str, hooks: Value) -> crate::jira::Resp {
    g.post(
        &g.jira(0, "/rest/api/3/webhook"),
        json!({"url": url, "webhooks": hooks}),
    )
    .await
}

/// Register `url` for `jira:issue_updated` on site 0's first project: the webhook id.
async fn watch_updates(g: &Gw, url: &str) -> u64 {
    let project = g.project_key(0, 0);
    let hooks =
        json!([{"events": ["jira:issue_updated"], "jqlFilter": format!("project = {project}")}]);
    let r = register(g, url, hooks).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["webhookRegistrationResult"][0]["createdWebhookId"]
        .as_u64()
        .unwrap()
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    exp: i64,
    iat: i64,
}

#[tokio::test]
async fn update_is_delivered_signed_with_the_client_secret() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![]).await;
    let id = watch_updates(&g, &url).await;

    let key = g.some_issue_key(0).await;
    let put = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            json!({"fields": {"summary": "Webhook me"}}),
        )
        .await;
    assert_eq!(put.status, 204);
    let got = rx.wait_for(1).await;
    let d = &got[0];
    assert_eq!(d.body["webhookEvent"], "jira:issue_updated");
    assert_eq!(d.body["issue_event_type_name"], "issue_updated");
    assert_eq!(d.body["issue"]["key"], key);
    assert_eq!(d.body["issue"]["fields"]["summary"], "Webhook me");
    assert_eq!(d.body["matchedWebhookIds"], json!([id]));
    let item = d.body["changelog"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["field"] == "summary")
        .unwrap()
        .clone();
    assert_eq!(item["toString"], "Webhook me");
    assert_eq!(item["fieldId"], "summary");
    assert!(d.body["timestamp"].is_i64());
    let account = g.sim.snapshot()["users"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(d.query, format!("triggeredByUser={account}"));
    assert_eq!(header(d, "x-atlassian-webhook-flow"), Some("Primary"));
    assert!(header(d, "x-atlassian-webhook-identifier").is_some_and(|s| !s.is_empty()));
    assert!(header(d, "x-atlassian-webhook-retry").is_none());

    let jwt = header(d, "authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    let claims = jsonwebtoken::decode::<Claims>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        &validation,
    )
    .expect("JWT verifies with the client secret")
    .claims;
    assert_eq!(claims.iss, CLIENT_ID);
    assert!(claims.exp > claims.iat);
    assert!(jsonwebtoken::decode::<Claims>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(b"wrong"),
        &validation
    )
    .is_err());
    // The delivery is counted once its answer is back, which may be just
    // after the receiver has seen it.
    let mut counted = 0;
    for _ in 0..100 {
        counted = g.sim.stats().webhooks.deliveries;
        if counted > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 1);
}

#[tokio::test]
async fn failed_delivery_is_retried_with_the_same_identifier() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![500, 503]).await;
    watch_updates(&g, &url).await;
    let key = g.some_issue_key(0).await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}")),
        json!({"fields": {"labels": ["retry"]}}),
    )
    .await;
    let got = rx.wait_for(3).await;
    let id = header(&got[0], "x-atlassian-webhook-identifier").unwrap();
    assert!(got
        .iter()
        .all(|d| header(d, "x-atlassian-webhook-identifier") == Some(id)));
    assert_eq!(header(&got[0], "x-atlassian-webhook-retry"), None);
    assert_eq!(header(&got[1], "x-atlassian-webhook-retry"), Some("1"));
    assert_eq!(header(&got[2], "x-atlassian-webhook-retry"), Some("2"));
    let stats = g.sim.stats().webhooks;
    assert_eq!(stats.failures, 2);
    assert_eq!(stats.deliveries, 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![400]).await;
    watch_updates(&g, &url).await;
    let key = g.some_issue_key(0).await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}")),
        json!({"fields": {"labels": ["once"]}}),
    )
    .await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}")),
        json!({"fields": {"labels": ["twice"]}}),
    )
    .await;
    // Deliveries of one registration are in order: the second arrives after
    // the first was given up, never a retry of it.
    let got = rx.wait_for(2).await;
    assert!(header(&got[1], "x-atlassian-webhook-retry").is_none());
    assert_ne!(
        header(&got[0], "x-atlassian-webhook-identifier"),
        header(&got[1], "x-atlassian-webhook-identifier")
    );
    assert_eq!(got[1].body["issue"]["fields"]["labels"], json!(["twice"]));
}

#[tokio::test]
async fn jql_filter_decides_what_is_delivered() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![]).await;
    let (p1, p2) = (g.project_key(0, 0), g.project_key(0, 1));
    register(
        &g,
        &url,
        json!([{"events": ["jira:issue_updated"], "jqlFilter": format!("project = {p2}")}]),
    )
    .await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{p1}-1")),
        json!({"fields": {"summary": "not for you"}}),
    )
    .await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{p2}-1")),
        json!({"fields": {"summary": "for you"}}),
    )
    .await;
    let got = rx.wait_for(1).await;
    // Same queue, in order: had the first matched, it would be here first.
    assert_eq!(got[0].body["issue"]["key"], format!("{p2}-1"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn sim_issue_routes_fire_created_updated_deleted() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    register(
        &g,
        &url,
        json!([{"events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"], "jqlFilter": format!("project = {project} AND status != Done")}]),
    )
    .await;
    let cloud = &g.sites[0];
    let (status, created) = crate::common::sim_post(&g.sim, "/__sim/issues", json!({"cloud_id": cloud, "project": project, "fields": {"summary": "From the control plane"}})).await;
    assert_eq!(status, 201, "{created:?}");
    let key = created["key"].as_str().unwrap().to_string();
    let client = crate::common::http();
    let r = client
        .patch(format!("{}/__sim/issues/{cloud}/{key}", g.sim.base_url()))
        .json(&json!({"fields": {"status": "In Progress"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .delete(format!("{}/__sim/issues/{cloud}/{key}", g.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got = rx.wait_for(3).await;
    let events: Vec<&str> = got
        .iter()
        .map(|d| d.body["webhookEvent"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec![
            "jira:issue_created",
            "jira:issue_updated",
            "jira:issue_deleted"
        ]
    );
    assert_eq!(got[0].body["issue_event_type_name"], "issue_created");
    assert_eq!(got[1].body["issue_event_type_name"], "issue_generic");
    assert!(got[0].body.get("changelog").is_none());
    let status_change = &got[1].body["changelog"]["items"][0];
    assert_eq!(status_change["field"], "status");
    assert_eq!(status_change["toString"], "In Progress");
    assert_eq!(
        g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}")))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn registration_reports_unsupported_jql_per_item() {
    let g = fast_gw().await;
    let (_rx, url) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    let r = register(
        &g,
        &url,
        json!([
            {"events": ["jira:issue_updated"], "jqlFilter": "watchCount = 1"},
            {"events": ["jira:issue_updated"], "jqlFilter": format!("project = {project} AND status IN (Done, \"To Do\")")},
            {"events": ["jira:issue_updated"], "jqlFilter": "updated > -1d"},
        ]),
    )
    .await;
    assert_eq!(r.status, 200);
    let results = r.body["webhookRegistrationResult"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"errors": ["The clause watchCount is unsupported"]})
    );
    assert!(results[1]["createdWebhookId"].is_u64());
    assert_eq!(
        results[2],
        json!({"errors": ["The clause updated is unsupported"]})
    );
}

#[tokio::test]
async fn one_url_per_app_and_five_per_user() {
    let g = fast_gw().await;
    let (_rx, url) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    let hook =
        json!({"events": ["jira:issue_updated"], "jqlFilter": format!("project = {project}")});
    let r = register(&g, &url, json!([hook, hook, hook, hook, hook, hook])).await;
    let results = r.body["webhookRegistrationResult"].as_array().unwrap();
    assert!(results[..5].iter().all(|x| x["createdWebhookId"].is_u64()));
    assert!(results[5]["errors"][0]
        .as_str()
        .unwrap()
        .contains("at most 5"));
    let r = register(&g, "http://127.0.0.1:1/other", json!([hook])).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errorMessages"],
        json!(["Only a single URL per app is allowed to be registered."])
    );
}

#[tokio::test]
async fn list_refresh_delete_and_expiry() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    let id = watch_updates(&g, &url).await;
    let list = g.get(&g.jira(0, "/rest/api/3/webhook")).await;
    assert_eq!(list.status, 200);
    let w = &list.body["values"][0];
    assert_eq!(w["id"], id);
    let expires = w["expirationDate"].as_i64().unwrap();
    let thirty_days = 30 * 24 * 3600 * 1000;
    assert!((expires - g.sim.now().timestamp_millis() - thirty_days).abs() < 60_000);

    // Access tokens last an hour; mint fresh ones after moving the clock.
    g.sim.advance_clock(20 * 24 * 3600);
    let token = g
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    let r = g
        .send(
            "PUT",
            &g.jira(0, "/rest/api/3/webhook/refresh"),
            &token,
            Some(json!({"webhookIds": [id]})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["expirationDate"].as_i64().unwrap() > expires);

    // 31 days after the refresh it has expired: nothing is delivered or listed.
    g.sim.advance_clock(31 * 24 * 3600);
    let token = g
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    let r = g
        .send(
            "PUT",
            &g.jira(0, &format!("/rest/api/3/issue/{project}-1")),
            &token,
            Some(json!({"fields": {"summary": "too late"}})),
        )
        .await;
    assert_eq!(r.status, 204);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.count(), 0);
    let list = g
        .send("GET", &g.jira(0, "/rest/api/3/webhook"), &token, None)
        .await;
    assert_eq!(list.body["total"], 0);

    let r = g.send("POST", &g.jira(0, "/rest/api/3/webhook"), &token, Some(json!({"url": url, "webhooks": [{"events": ["jira:issue_updated"], "jqlFilter": format!("project = {project}")}]}))).await;
    let id = r.body["webhookRegistrationResult"][0]["createdWebhookId"]
        .as_u64()
        .unwrap();
    let r = g
        .send(
            "DELETE",
            &g.jira(0, "/rest/api/3/webhook"),
            &token,
            Some(json!({"webhookIds": [id]})),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        g.send("GET", &g.jira(0, "/rest/api/3/webhook"), &token, None)
            .await
            .body["total"],
        0
    );
}

#[tokio::test]
async fn field_ids_filter_limits_updates_to_those_fields() {
    let g = fast_gw().await;
    let (rx, url) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    let sp = g.sim.snapshot()["sites"][0]["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    register(&g, &url, json!([{"events": ["jira:issue_updated"], "jqlFilter": format!("project = {project}"), "fieldIdsFilter": [sp.clone()]}])).await;
    let issue = g.jira(0, &format!("/rest/api/3/issue/{project}-1"));
    g.put(
        &issue,
        json!({"fields": {"summary": "ignored by the filter"}}),
    )
    .await;
    g.put(&issue, json!({"fields": {sp.clone(): 13}})).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].body["changelog"]["items"][0]["fieldId"], sp);
    assert_eq!(got[0].body["changelog"]["items"][0]["toString"], "13");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.count(), 1);
}
