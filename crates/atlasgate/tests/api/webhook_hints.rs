//! Jira webhook deliveries are hints (docs/design.md §12): the harvest-and-
//! forge attack of another tenant changes nothing and emits nothing; a
//! genuine delivery still updates the copy; a burst of deliveries for one
//! issue is answered by one re-read; a 404 from Jira alone marks deleted.

use atlasgate::jobs::Tuning;
use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::connect::{connect_as, sim_sites};
use crate::events::{events, setup, wait_for, Receiver, Setup};
use crate::helpers::backends;
use crate::sync::{create_sync, local_issues, project_keys, sim_patch, wait_idle};

const CLIENT_ID: &str = "atlasgate-dev";
const CLIENT_SECRET: &str = "atlasgate-dev-secret";

fn sim() -> atlassim::SimConfig {
    atlassim::SimConfig {
        sites: 2,
        projects: 2,
        issues: 10,
        webhook_retry_base_ms: 500,
        ..Default::default()
    }
}

/// A webhook sync of the victim (the setup's app) on its first project.
async fn victim_sync(s: &Setup) -> String {
    let keys = project_keys(s);
    let created = create_sync(
        s,
        json!({ "jql": format!("project = {}", keys[0]), "webhooks": true, "interval_s": 3600 }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let v = wait_idle(s, &id, 0, 60).await;
    assert!(v["webhook"]["id"].is_i64(), "{v}");
    id
}

async fn delivery_states(s: &Setup) -> Vec<String> {
    sqlx::query_scalar("SELECT state FROM jira_webhook_deliveries ORDER BY received_at, identifier")
        .fetch_all(s.app.store.pool())
        .await
        .unwrap()
}

/// Wait until `n` deliveries are stored and none is waiting any more.
async fn all_handled(s: &Setup, n: usize) {
    wait_for(30, "the deliveries to be handled", || async {
        let d = delivery_states(s).await;
        (d.len() >= n && d.iter().all(|x| x != "received")).then_some(())
    })
    .await;
}

fn gateway_requests(s: &Setup, method: &str, route_end: &str) -> u64 {
    s.app
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.method == method && r.route.ends_with(route_end))
        .map(|r| r.count)
        .sum()
}

async fn post_delivery(s: &Setup, jwt: &str, body: &Value) -> reqwest::Response {
    s.app
        .client
        .post(s.app.url("/webhooks/jira"))
        .header(
            "X-Atlassian-Webhook-Identifier",
            uuid::Uuid::new_v4().to_string(),
        )
        .bearer_auth(jwt)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn own_jwt() -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "iss": CLIENT_ID, "sub": "someone", "iat": now - 10, "exp": now + 300 }),
        &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The attacker: another app with its own connection to the second site,
/// its own dynamic webhook there pointing at its own receiver, and one
/// edit of its own issue. Returns the JWT atlassim signed for that delivery.
async fn harvest_jwt(s: &Setup) -> String {
    let (_, key) = s.app.create_app("attacker").await;
    let site = sim_sites(&s.app)[1].clone();
    // Another person of the same Atlassian world, consenting to one site.
    let account = s.app.sim.snapshot()["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sites = std::slice::from_ref(&site);
    let conn = connect_as(&s.app, &key, "evil:1", sites, Some(&site), Some(account)).await;
    let token = s.app.connection_token(&key, &conn).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let capture = Receiver::start().await;
    let api = format!("{}/ex/jira/{site}/rest/api/3", s.app.sim.base_url());
    let http = reqwest::Client::new();
    let projects: Value = http
        .get(format!("{api}/project/search"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = projects["values"][0]["key"].as_str().unwrap().to_string();
    let resp = http
        .post(format!("{api}/webhook"))
        .bearer_auth(&token)
        .json(&json!({
            "url": capture.url,
            "webhooks": [{ "events": ["jira:issue_updated"], "jqlFilter": format!("project = {project}") }],
        }))
        .send()
        .await
        .unwrap();
    let registered: Value = resp.json().await.unwrap();
    assert!(
        registered["webhookRegistrationResult"][0]["createdWebhookId"].is_i64(),
        "{registered}"
    );
    let resp = http
        .put(format!("{api}/issue/{project}-1"))
        .bearer_auth(&token)
        .json(&json!({ "fields": { "summary": "the attacker's own edit" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let got = wait_for(20, "the attacker's own delivery", || async {
        capture.received().into_iter().next()
    })
    .await;
    let jwt = got.headers["authorization"]
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    // The harvested JWT is genuine: atlasgate's own client id and secret.
    let claims = atlasgate::webhooks::verify_jwt(&jwt, CLIENT_ID, &CLIENT_SECRET.into()).unwrap();
    assert_eq!(claims["iss"], CLIENT_ID);
    jwt
}

async fn forge_attack(backend: Backend) {
    let s = setup(backend, sim()).await;
    let sync_id = victim_sync(&s).await;
    let (_, raw) = local_issues(&s).await;
    let mut victims: Vec<Value> = raw.values().cloned().collect();
    victims.sort_by_key(|v| v["key"].as_str().unwrap().to_string());
    let (target, doomed) = (victims[0].clone(), victims[1].clone());
    let url = target["url"].as_str().unwrap();
    let site_url = url.split("/browse/").next().unwrap().to_string();
    let other_project = project_keys(&s)[1].clone();
    let events_before = events(&s.app, &s.key).await.len();

    let jwt = harvest_jwt(&s).await;
    let forged = |issue: &Value, event: &str| {
        let id = issue["id"].as_str().unwrap();
        json!({
            "timestamp": chrono::Utc::now().timestamp_millis(),
            "webhookEvent": event,
            "matchedWebhookIds": (1..=50).collect::<Vec<i64>>(),
            "issue": {
                "id": id,
                "key": issue["key"],
                "self": format!("{site_url}/rest/api/2/issue/{id}"),
                "fields": {
                    "summary": "FORGED by another tenant",
                    "project": { "id": "99999", "key": other_project },
                    "status": { "name": "Done" },
                    "issuetype": { "name": "Bug" },
                    "updated": "2099-01-01T00:00:00.000+0000",
                },
            },
        })
    };
    let reads_before = gateway_requests(&s, "GET", "/rest/api/3/search/jql");
    for body in [
        forged(&target, "jira:issue_updated"),
        forged(&target, "jira:issue_created"),
        forged(&doomed, "jira:issue_deleted"),
    ] {
        // The JWT verifies, so the delivery is taken — as a hint only.
        assert_eq!(post_delivery(&s, &jwt, &body).await.status(), 204);
    }
    all_handled(&s, 3).await;
    // Each hint was answered by asking Jira with the victim's own token.
    assert!(gateway_requests(&s, "GET", "/rest/api/3/search/jql") > reads_before);
    let (_, after) = local_issues(&s).await;
    let copy = |i: &Value| after[i["id"].as_str().unwrap()].clone();
    assert_eq!(copy(&target), target, "the victim's copy is unchanged");
    assert_eq!(copy(&doomed), doomed, "not deleted: Jira still has it");
    assert_eq!(
        events(&s.app, &s.key).await.len(),
        events_before,
        "no event emitted"
    );

    // Positive control: a genuine edit of the victim's issue still arrives.
    let key = target["key"].as_str().unwrap();
    sim_patch(&s, key, json!({ "summary": "Genuinely changed" })).await;
    wait_for(20, "the genuine delivery to update the copy", || async {
        let (_, raw) = local_issues(&s).await;
        (raw[target["id"].as_str().unwrap()]["summary"] == "Genuinely changed").then_some(())
    })
    .await;
    let ev = events(&s.app, &s.key).await;
    let updated: Vec<&Value> = ev
        .iter()
        .filter(|e| e["type"] == "issue.updated" && e["data"]["issue"]["key"] == key)
        .collect();
    assert_eq!(updated.len(), 1, "{ev:?}");
    assert_eq!(updated[0]["data"]["sync_id"], sync_id.as_str());
    assert_eq!(
        updated[0]["data"]["issue"]["project"]["key"],
        target["project"]["key"]
    );
    assert!(ev.iter().all(|e| e["type"] != "issue.deleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvested_jwt_with_a_forged_body_changes_nothing_and_emits_nothing() {
    for b in backends() {
        forge_attack(b).await;
    }
}

async fn burst(backend: Backend) {
    let s = setup(backend, sim()).await;
    victim_sync(&s).await;
    let (_, raw) = local_issues(&s).await;
    let target = raw.values().next().unwrap().clone();
    let key = target["key"].as_str().unwrap().to_string();
    // Hold deliveries back while the burst gathers.
    let delay = &s.app.state.jobs.tuning.webhook_hint_delay_ms;
    Tuning::set(delay, 3_600_000);
    let reads_before = gateway_requests(&s, "GET", "/rest/api/3/search/jql");
    // One genuine change (atlassim delivers it) …
    sim_patch(&s, &key, json!({ "summary": "After the burst" })).await;
    wait_for(20, "Jira's delivery to be stored", || async {
        (!delivery_states(&s).await.is_empty()).then_some(())
    })
    .await;
    // … and nine more deliveries naming the same issue.
    let genuine: String = sqlx::query_scalar("SELECT payload FROM jira_webhook_deliveries")
        .fetch_one(s.app.store.pool())
        .await
        .unwrap();
    let genuine: Value = serde_json::from_str(&genuine).unwrap();
    for _ in 0..9 {
        assert_eq!(post_delivery(&s, &own_jwt(), &genuine).await.status(), 204);
    }
    let states = delivery_states(&s).await;
    assert_eq!(states.len(), 10);
    assert!(states.iter().all(|x| x == "received"), "{states:?}");
    assert_eq!(
        gateway_requests(&s, "GET", "/rest/api/3/search/jql"),
        reads_before,
        "nothing read while held back"
    );
    Tuning::set(delay, 0);
    all_handled(&s, 10).await;
    assert_eq!(
        gateway_requests(&s, "GET", "/rest/api/3/search/jql") - reads_before,
        1,
        "ten deliveries for one issue: one read"
    );
    let states = delivery_states(&s).await;
    assert_eq!(states.iter().filter(|x| *x == "applied").count(), 10);
    let (_, raw) = local_issues(&s).await;
    assert_eq!(
        raw[target["id"].as_str().unwrap()]["summary"],
        "After the burst"
    );
    let ev = events(&s.app, &s.key).await;
    assert_eq!(
        ev.iter()
            .filter(|e| e["type"] == "issue.updated" && e["data"]["issue"]["key"] == key.as_str())
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_deliveries_for_one_issue_is_one_read() {
    for b in backends() {
        burst(b).await;
    }
}
