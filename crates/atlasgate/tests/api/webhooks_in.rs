//! Jira webhooks in: registration with the sync, JWT verification, dedupe,
//! durable storage before the answer, application to the synced issues,
//! retries after our own 500, refresh before expiry, removal on disconnect.

use std::sync::atomic::Ordering;

use atlasgate::jobs::Counters;
use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::events::{events, setup, wait_for, Setup};
use crate::helpers::backends;
use crate::sync::{
    create_sync, delete_sync, get_sync, local_issues, project_keys, run_sync, sim_delete,
    sim_patch, wait_idle,
};

const CLIENT_SECRET: &str = "atlasgate-dev-secret";

fn sim() -> atlassim::SimConfig {
    atlassim::SimConfig {
        sites: 1,
        projects: 2,
        issues: 15,
        webhook_retry_base_ms: 500,
        ..Default::default()
    }
}

fn jwt(secret: &str, exp_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "iss": "atlasgate-dev", "sub": "someone", "iat": now - 10, "exp": now + exp_in }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn post_webhook(
    s: &Setup,
    token: Option<&str>,
    identifier: &str,
    body: &Value,
) -> reqwest::Response {
    let mut req = s
        .app
        .client
        .post(s.app.url("/webhooks/jira"))
        .header("X-Atlassian-Webhook-Identifier", identifier)
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn deliveries(s: &Setup) -> Vec<(String, i64, String, String)> {
    sqlx::query_as("SELECT identifier, retry, state, payload FROM jira_webhook_deliveries ORDER BY received_at, identifier")
        .fetch_all(s.app.store.pool())
        .await
        .unwrap()
}

fn issue_events(ev: &[Value], t: &str, key: &str) -> usize {
    ev.iter()
        .filter(|e| e["type"] == t && e["data"]["issue"]["key"] == key)
        .count()
}

async fn local_summary(s: &Setup, key: &str) -> Option<String> {
    let (_, raw) = local_issues(s).await;
    raw.values()
        .find(|i| i["key"] == key)
        .and_then(|i| i["summary"].as_str().map(String::from))
}

/// The key of some issue in the local copy.
async fn first_local_key(s: &Setup) -> String {
    let (_, raw) = local_issues(s).await;
    raw.values().next().unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Change an issue's summary in Jira and wait for the webhook to bring it to the local copy.
async fn change_summary_and_wait(s: &Setup, key: &str, summary: &str, what: &str) {
    sim_patch(s, key, json!({ "summary": summary })).await;
    wait_for(20, what, || async {
        (local_summary(s, key).await.as_deref() == Some(summary)).then_some(())
    })
    .await;
}

/// A webhook sync on the first project, its first pass done.
async fn webhook_sync(backend: Backend) -> (Setup, String, Vec<String>) {
    let s = setup(backend, sim()).await;
    let keys = project_keys(&s);
    let created = create_sync(
        &s,
        json!({ "jql": format!("project = {}", keys[0]), "webhooks": true, "interval_s": 3600 }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let v = wait_idle(&s, &id, 0, 60).await;
    assert!(v["webhook"]["id"].is_i64(), "{v}");
    assert_eq!(v["webhook"]["filter"], format!("project = {}", keys[0]));
    assert_eq!(v["webhook"]["local_filter"], false);
    (s, id, keys)
}

async fn change_arrives_and_forgeries_do_not(backend: Backend) {
    let (s, id, keys) = webhook_sync(backend).await;
    let (_, raw) = local_issues(&s).await;
    let key = raw.values().next().unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();

    // Change in Jira → delivery → local copy, without a sync pass.
    change_summary_and_wait(
        &s,
        &key,
        "Changed via webhook",
        "the webhook to update the local copy",
    )
    .await;
    assert_eq!(
        get_sync(&s, &id).await["passes"],
        1,
        "no pass ran: the webhook did it"
    );
    let ev = events(&s.app, &s.key).await;
    assert_eq!(issue_events(&ev, "issue.updated", &key), 1);
    let stored = deliveries(&s).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].2, "applied");
    let applied = Counters::read(&s.app.state.jobs.counters.jira_webhooks_applied);

    // The same delivery again (Jira retries are at-least-once): ignored.
    let payload: Value = serde_json::from_str(&stored[0].3).unwrap();
    let resp = post_webhook(&s, Some(&jwt(CLIENT_SECRET, 300)), &stored[0].0, &payload).await;
    assert_eq!(resp.status(), 204);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(deliveries(&s).await.len(), 1);
    assert_eq!(
        Counters::read(&s.app.state.jobs.counters.jira_webhooks_applied),
        applied
    );
    assert_eq!(
        issue_events(&events(&s.app, &s.key).await, "issue.updated", &key),
        1
    );

    // Forged, expired and missing JWTs: 401, nothing stored or changed.
    let mut forged = payload.clone();
    forged["issue"]["fields"]["summary"] = json!("Forged");
    forged["issue"]["fields"]["updated"] = json!("2099-01-01T00:00:00.000+0000");
    for token in [
        Some(jwt("not-the-secret", 300)),
        Some(jwt(CLIENT_SECRET, -120)),
        Some("not.a.jwt".to_string()),
        None,
    ] {
        let resp = post_webhook(
            &s,
            token.as_deref(),
            &uuid::Uuid::new_v4().to_string(),
            &forged,
        )
        .await;
        crate::helpers::assert_problem(resp, 401).await;
    }
    assert_eq!(deliveries(&s).await.len(), 1);
    assert_eq!(
        local_summary(&s, &key).await.as_deref(),
        Some("Changed via webhook")
    );

    // A deletion arrives the same way.
    let gone = raw.values().nth(1).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    sim_delete(&s, &gone).await;
    wait_for(20, "the webhook to mark the issue deleted", || async {
        let (_, raw) = local_issues(&s).await;
        raw.values()
            .any(|i| i["key"] == gone.as_str() && i["deleted"] == true)
            .then_some(())
    })
    .await;
    assert_eq!(
        issue_events(&events(&s.app, &s.key).await, "issue.deleted", &gone),
        1
    );

    // An issue of another project matches no registration: not stored.
    let other = format!("{}-1", keys[1]);
    sim_patch(&s, &other, json!({ "summary": "Elsewhere" })).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(local_summary(&s, &other).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_updates_the_local_copy_once_and_forgeries_change_nothing() {
    for b in backends() {
        change_arrives_and_forgeries_do_not(b).await;
    }
}

async fn retry_after_our_500(backend: Backend) {
    let (s, _id, _keys) = webhook_sync(backend).await;
    let key = first_local_key(&s).await;
    // Make atlasgate fail to store deliveries: it answers 500.
    let pool = s.app.store.pool();
    sqlx::query("ALTER TABLE jira_webhook_deliveries RENAME TO jira_webhook_deliveries_off")
        .execute(pool)
        .await
        .unwrap();
    let failures = s.app.sim.stats().webhooks.failures;
    sim_patch(&s, &key, json!({ "summary": "After a retry" })).await;
    wait_for(20, "atlassim to see our 500", || async {
        (s.app.sim.stats().webhooks.failures > failures).then_some(())
    })
    .await;
    assert_ne!(
        local_summary(&s, &key).await.as_deref(),
        Some("After a retry")
    );
    sqlx::query("ALTER TABLE jira_webhook_deliveries_off RENAME TO jira_webhook_deliveries")
        .execute(pool)
        .await
        .unwrap();
    wait_for(30, "the retried delivery to apply", || async {
        (local_summary(&s, &key).await.as_deref() == Some("After a retry")).then_some(())
    })
    .await;
    let stored = deliveries(&s).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].1 >= 1, "stored from a retry: {:?}", stored[0].1);
    assert_eq!(
        issue_events(&events(&s.app, &s.key).await, "issue.updated", &key),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_retry_after_our_500_is_applied_once() {
    for b in backends() {
        retry_after_our_500(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jql_outside_the_webhook_subset_registers_projects_and_filters_locally() {
    let s = setup(Backend::Sqlite, sim()).await;
    let keys = project_keys(&s);
    let jql = format!("project = {} AND issuetype = Bug", keys[0]);
    // `issuetype` is in the subset; `summary ~` is not.
    let jql = format!("{jql} AND summary !~ \"zzzz\"");
    let created = create_sync(
        &s,
        json!({ "jql": jql, "webhooks": true, "interval_s": 3600 }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let v = wait_idle(&s, &id, 0, 60).await;
    assert_eq!(v["webhook"]["local_filter"], true, "{v}");
    assert!(
        v["webhook"]["filter"]
            .as_str()
            .unwrap()
            .starts_with("project IN ("),
        "{v}"
    );
    let bug = first_local_key(&s).await;
    change_summary_and_wait(&s, &bug, "A bug, changed", "the checked delivery to apply").await;
    // A story of the same project is delivered (project filter) but is not in the sync.
    let story = format!("{}-2", keys[0]);
    let before = deliveries(&s).await.len();
    sim_patch(
        &s,
        &story,
        json!({ "summary": "Maybe not mine", "issuetype": { "name": "Story" } }),
    )
    .await;
    wait_for(20, "the delivery to be handled", || async {
        let d = deliveries(&s).await;
        (d.len() > before && d.iter().all(|x| x.2 != "received")).then_some(())
    })
    .await;
    assert!(local_summary(&s, &story).await.is_none());
}

async fn upkeep_and_removal(backend: Backend) {
    let (s, id, _keys) = webhook_sync(backend).await;
    let list = || async {
        s.app.sim_webhooks(&s.cloud_id).await["values"]
            .as_array()
            .unwrap()
            .clone()
    };
    let first = get_sync(&s, &id).await;
    let hooks = list().await;
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0]["url"]
        .as_str()
        .unwrap()
        .ends_with("/webhooks/jira"));
    // 25 days later (Jira's clock, and the expiry as we recorded it) a pass
    // refreshes it before the 30-day expiry.
    s.app.sim.advance_clock(25 * 24 * 3600);
    sqlx::query("UPDATE syncs SET webhook_expires_at = webhook_expires_at - $1 WHERE id = $2")
        .bind(25i64 * 24 * 3600)
        .bind(&id)
        .execute(s.app.store.pool())
        .await
        .unwrap();
    run_sync(&s, &id).await;
    let after = wait_idle(&s, &id, 1, 60).await;
    let t = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["webhook"]["expires_at"].as_str().unwrap()).unwrap()
    };
    assert!(
        t(&after) - t(&first) >= chrono::Duration::days(24),
        "{first} → {after}"
    );
    assert_eq!(after["webhook"]["id"], first["webhook"]["id"]);
    // Disconnecting deletes it while the token still works, and stops the sync.
    let resp = s
        .app
        .delete(&format!("/v1/connections/{}", s.connection), &s.key)
        .await;
    assert_eq!(resp.status(), 200);
    assert!(list().await.is_empty());
    assert_eq!(get_sync(&s, &id).await["state"], "stopped");
    s.receiver.down.store(false, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_refreshed_before_expiry_and_deleted_on_disconnect() {
    for b in backends() {
        upkeep_and_removal(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_sync_deletes_its_webhook() {
    let (s, id, _keys) = webhook_sync(Backend::Sqlite).await;
    delete_sync(&s, &id).await;
    let v = s.app.sim_webhooks(&s.cloud_id).await;
    assert_eq!(v["total"], 0, "{v}");
    let resp = s
        .app
        .get(
            &format!("/v1/connections/{}/syncs/{id}", s.connection),
            Some(&s.key),
        )
        .await;
    crate::helpers::assert_problem(resp, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_with_the_same_filter_share_one_registration() {
    let (s, first, keys) = webhook_sync(Backend::Sqlite).await;
    let jql = format!("project = {}", keys[0]);
    let second = create_sync(
        &s,
        json!({ "jql": jql, "webhooks": true, "interval_s": 3600 }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = wait_idle(&s, &second, 0, 60).await;
    let hooks = || async {
        s.app.sim_webhooks(&s.cloud_id).await["total"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(hooks().await, 1);
    assert_eq!(
        v["webhook"]["id"],
        get_sync(&s, &first).await["webhook"]["id"]
    );
    // Removing one sync keeps the registration the other still uses.
    delete_sync(&s, &first).await;
    assert_eq!(hooks().await, 1);
    let key = first_local_key(&s).await;
    change_summary_and_wait(
        &s,
        &key,
        "Still listening",
        "the shared webhook to update the copy",
    )
    .await;
    delete_sync(&s, &second).await;
    assert_eq!(hooks().await, 0);
}
