//! Sync: full pass, incremental passes, checkpoints that survive an
//! interrupted pass, deletions, and two processes sharing one database.

use std::collections::BTreeMap;
use std::time::Duration;

use atlasgate::jobs::{Counters, Tuning};
use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::events::{events, setup, wait_for, Setup};
use crate::helpers::backends;

// ---------------------------------------------------------------- helpers

/// The fields we compare, from either side.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    pub key: String,
    pub summary: Option<String>,
    pub status: Option<String>,
    pub issue_type: Option<String>,
    pub story_points: Option<f64>,
    pub sprint: Option<(i64, String, String)>,
    pub updated_ms: i64,
}

fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .unwrap()
        .timestamp_millis()
}

/// `(id, name, state)` of a sprint object, as Jira and atlasgate both spell it.
fn sprint_of(s: &Value) -> (i64, String, String) {
    (
        s["id"].as_i64().unwrap(),
        s["name"].as_str().unwrap().to_string(),
        s["state"].as_str().unwrap().to_string(),
    )
}

/// What atlassim holds for `jql`, read through its own REST API.
pub async fn sim_truth(s: &Setup, jql: &str) -> BTreeMap<String, Fields> {
    let snap = s.app.sim.snapshot();
    let site = snap["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["cloud_id"] == s.cloud_id.as_str())
        .unwrap()
        .clone();
    let sp = site["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = s
        .app
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/ex/jira/{}/rest/api/3/search/jql",
        s.app.sim.base_url(),
        s.cloud_id
    );
    let mut out = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let mut q = vec![
            ("jql".to_string(), jql.to_string()),
            ("maxResults".into(), "100".into()),
            (
                "fields".into(),
                format!("summary,status,issuetype,updated,{sp},customfield_10020"),
            ),
        ];
        if let Some(t) = &next {
            q.push(("nextPageToken".into(), t.clone()));
        }
        let v: Value = client
            .get(&url)
            .bearer_auth(&token)
            .query(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for i in v["issues"].as_array().unwrap() {
            let f = &i["fields"];
            let sprint = f["customfield_10020"].as_array().and_then(|a| {
                a.iter()
                    .find(|s| s["state"] == "active")
                    .or_else(|| a.last())
                    .cloned()
            });
            out.insert(
                i["id"].as_str().unwrap().to_string(),
                Fields {
                    key: i["key"].as_str().unwrap().to_string(),
                    summary: f["summary"].as_str().map(String::from),
                    status: f["status"]["name"].as_str().map(String::from),
                    issue_type: f["issuetype"]["name"].as_str().map(String::from),
                    story_points: f[&sp].as_f64(),
                    sprint: sprint.as_ref().map(sprint_of),
                    updated_ms: ms(f["updated"].as_str().unwrap()),
                },
            );
        }
        match v["nextPageToken"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => return out,
        }
    }
}

/// Every synced issue through `GET /v1/connections/{id}/issues` (all pages).
pub async fn local_issues(s: &Setup) -> (BTreeMap<String, Fields>, BTreeMap<String, Value>) {
    let mut fields = BTreeMap::new();
    let mut raw = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut seen = 0usize;
    loop {
        let mut path = format!("/v1/connections/{}/issues?limit=1000", s.connection);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let body = s.app.get_ok(&path, &s.key).await;
        for i in body["items"].as_array().unwrap() {
            seen += 1;
            let id = i["id"].as_str().unwrap().to_string();
            raw.insert(id.clone(), i.clone());
            if i["deleted"] == true {
                continue;
            }
            fields.insert(
                id,
                Fields {
                    key: i["key"].as_str().unwrap().to_string(),
                    summary: i["summary"].as_str().map(String::from),
                    status: i["status"].as_str().map(String::from),
                    issue_type: i["type"].as_str().map(String::from),
                    story_points: i["story_points"].as_f64(),
                    sprint: i["sprint"].is_object().then(|| sprint_of(&i["sprint"])),
                    updated_ms: ms(i["updated"].as_str().unwrap()),
                },
            );
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // The pages never repeat an issue.
    assert_eq!(seen, raw.len(), "an issue appeared on two pages");
    (fields, raw)
}

pub async fn create_sync(s: &Setup, body: Value) -> Value {
    let resp = s
        .app
        .post_json(
            &format!("/v1/connections/{}/syncs", s.connection),
            Some(&s.key),
            &body,
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

pub async fn get_sync(s: &Setup, id: &str) -> Value {
    s.app
        .get_ok(
            &format!("/v1/connections/{}/syncs/{id}", s.connection),
            &s.key,
        )
        .await
}

/// `POST …/syncs/{id}/run`, asserting 202.
pub async fn run_sync(s: &Setup, id: &str) {
    let path = format!("/v1/connections/{}/syncs/{id}/run", s.connection);
    let resp = s.app.post_json(&path, Some(&s.key), &json!({})).await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
}

/// `DELETE …/syncs/{id}`, asserting 204.
pub async fn delete_sync(s: &Setup, id: &str) {
    let resp = s
        .app
        .delete(
            &format!("/v1/connections/{}/syncs/{id}", s.connection),
            &s.key,
        )
        .await;
    assert_eq!(resp.status(), 204);
}

/// Wait until the sync finished more than `after` passes.
pub async fn wait_idle(s: &Setup, id: &str, after: i64, secs: u64) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = get_sync(s, id).await;
        if v["state"] == "idle" && v["passes"].as_i64().unwrap() > after && v["pass"].is_null() {
            return v;
        }
        *last.lock().unwrap() = v;
        if tokio::time::Instant::now() > deadline {
            panic!(
                "the sync pass did not finish in {secs} s: {:#}",
                last.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn project_keys(s: &Setup) -> Vec<String> {
    let snap = s.app.sim.snapshot();
    let site = snap["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["cloud_id"] == s.cloud_id.as_str())
        .unwrap()
        .clone();
    site["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect()
}

pub async fn sim_patch(s: &Setup, key: &str, fields: Value) {
    let resp = reqwest::Client::new()
        .patch(format!(
            "{}/__sim/issues/{}/{key}",
            s.app.sim.base_url(),
            s.cloud_id
        ))
        .json(&json!({ "fields": fields }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

pub async fn sim_delete(s: &Setup, key: &str) {
    let resp = reqwest::Client::new()
        .delete(format!(
            "{}/__sim/issues/{}/{key}",
            s.app.sim.base_url(),
            s.cloud_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

fn search_requests(s: &Setup, status: u16) -> u64 {
    s.app
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| {
            r.route.ends_with("/rest/api/3/search/jql") && r.status == status && r.method == "GET"
        })
        .map(|r| r.count)
        .sum()
}

fn sim_config(projects: usize, issues: usize) -> atlassim::SimConfig {
    atlassim::SimConfig {
        sites: 1,
        projects,
        issues,
        ..Default::default()
    }
}

// ---------------------------------------------------------------- tests

async fn full_then_incremental(backend: Backend) {
    let s = setup(backend, sim_config(3, 40)).await;
    Tuning::set(&s.app.state.jobs.tuning.sync_reconcile_s, 0);
    let keys = project_keys(&s);
    let jql = format!("project in ({}) ORDER BY key DESC", keys.join(", "));
    let created = create_sync(&s, json!({ "jql": jql, "interval_s": 3600 })).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["state"], "pending");
    let done = wait_idle(&s, &id, 0, 60).await;
    let truth = sim_truth(&s, &jql).await;
    assert_eq!(truth.len(), 120);
    let (local, raw) = local_issues(&s).await;
    assert_eq!(local, truth, "the store matches atlassim");
    assert_eq!(done["issues_synced"], 120);
    assert!(
        done["cursor"].is_string() && done["last_error"].is_null(),
        "{done}"
    );
    let status = atlasgate::sync::render_status(&s.app.store).await.unwrap();
    let line = status.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains("idle") && line.contains(" 120 "), "{status}");
    let any = raw.values().next().unwrap();
    assert!(any["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/browse/{}", any["key"].as_str().unwrap())));
    // The full pass announced itself, not each issue.
    let types: Vec<String> = events(&s.app, &s.key)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, vec!["sync.completed", "connection.created"]);

    // Webhooks off: a change in Jira shows after an incremental pass.
    let changed = truth.values().next().unwrap().key.clone();
    sim_patch(&s, &changed, json!({ "summary": "Changed in Jira" })).await;
    let gone = truth.values().last().unwrap().key.clone();
    sim_delete(&s, &gone).await;
    run_sync(&s, &id).await;
    let second = wait_idle(&s, &id, 1, 60).await;
    assert_eq!(second["issues_synced"], 119);
    let truth = sim_truth(&s, &jql).await;
    let (local, raw) = local_issues(&s).await;
    assert_eq!(local, truth);
    assert_eq!(
        local
            .values()
            .find(|f| f.key == changed)
            .unwrap()
            .summary
            .as_deref(),
        Some("Changed in Jira")
    );
    assert!(raw
        .values()
        .any(|i| i["key"] == gone.as_str() && i["deleted"] == true));
    let ev = events(&s.app, &s.key).await;
    let issue_events: Vec<(String, String)> = ev
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("issue."))
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["data"]["issue"]["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(issue_events.len(), 2, "{issue_events:?}");
    assert!(issue_events.contains(&("issue.updated".into(), changed.clone())));
    assert!(issue_events.contains(&("issue.deleted".into(), gone.clone())));
    // Filters of the issues list.
    let resp = s
        .app
        .get(
            &format!(
                "/v1/connections/{}/issues?project={}&limit=5",
                s.connection, keys[0]
            ),
            Some(&s.key),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 5);
    assert!(body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["project"]["key"] == keys[0].as_str()));
    let since = "2100-01-01T00:00:00Z";
    let resp = s
        .app
        .get(
            &format!(
                "/v1/connections/{}/issues?updated_since={since}",
                s.connection
            ),
            Some(&s.key),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert!(body["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pass_matches_jira_and_incremental_picks_up_changes_without_webhooks() {
    for b in backends() {
        full_then_incremental(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_syncs_are_refused() {
    let s = setup(Backend::Sqlite, sim_config(1, 5)).await;
    let path = format!("/v1/connections/{}/syncs", s.connection);
    let resp = s
        .app
        .post_json(
            &path,
            Some(&s.key),
            &json!({ "jql": "ORDER BY key", "interval_s": 0 }),
        )
        .await;
    let body = crate::helpers::assert_problem(resp, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    let resp = s
        .app
        .post_json(&path, Some(&s.key), &json!({ "jql": "project = NOPE" }))
        .await;
    let body = crate::helpers::assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["field"], "jql");
    let (_, other) = s.app.create_app("other").await;
    let resp = s
        .app
        .post_json(&path, Some(&other), &json!({ "jql": "project = ACME" }))
        .await;
    crate::helpers::assert_problem(resp, 404).await;
}

async fn interrupted(backend: Backend) {
    let s = setup(backend, sim_config(2, 1500)).await;
    let keys = project_keys(&s);
    let jql = format!("project in ({})", keys.join(", "));
    // Fail fast once Jira errors (the client's own retries are tested elsewhere).
    let mut policy = s.app.state.atlassian.policy();
    policy.retry_base = Duration::from_millis(5);
    policy.retry_cap = Duration::from_millis(20);
    policy.max_retries = 1;
    s.app.state.atlassian.set_policy(policy);
    let search = "/ex/jira/*/rest/api/3/search/jql";
    // Slow pages so the pass can be cut off mid-way.
    s.app.sim.add_fault(atlassim::Fault {
        method: None,
        path: search.into(),
        count: 10_000,
        status: None,
        body: None,
        headers: None,
        latency_ms: Some(100),
        drop: false,
    });
    let created = create_sync(&s, json!({ "jql": jql, "interval_s": 3600 })).await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_for(60, "a third of the pass stored", || async {
        let v = get_sync(&s, &id).await;
        (v["pass"]["stored"].as_i64().unwrap_or(0) >= 1000).then_some(())
    })
    .await;
    s.app.sim.clear_faults();
    s.app.sim.add_fault(atlassim::Fault {
        method: None,
        path: search.into(),
        count: 10_000,
        status: Some(500),
        body: None,
        headers: None,
        latency_ms: None,
        drop: false,
    });
    let failed = wait_for(60, "the pass to fail", || async {
        let v = get_sync(&s, &id).await;
        (v["state"] == "failed").then_some(v)
    })
    .await;
    assert!(
        failed["last_error"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    let stored_before = failed["pass"]["stored"].as_i64().unwrap();
    assert!((1000..3000).contains(&stored_before), "{failed}");
    let pages_before = search_requests(&s, 200);
    s.app.sim.clear_faults();
    run_sync(&s, &id).await;
    let done = wait_idle(&s, &id, 0, 120).await;
    // The resumed pass started at the checkpoints, not from scratch.
    let pages_after = search_requests(&s, 200) - pages_before;
    let remaining_pages = (3000 - stored_before as u64).div_ceil(100);
    assert!(
        pages_after <= remaining_pages + 4,
        "resumed with {pages_after} pages for {remaining_pages} pages of work"
    );
    assert_eq!(done["issues_synced"], 3000);
    let truth = sim_truth(&s, &jql).await;
    let (local, _) = local_issues(&s).await;
    assert_eq!(local.len(), 3000);
    assert_eq!(local, truth, "no gaps, no duplicates, same fields");
    let ev = events(&s.app, &s.key).await;
    let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec!["sync.completed", "sync.failed", "connection.created"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pass_resumes_without_duplicates_or_gaps() {
    for b in backends() {
        interrupted(b).await;
    }
}

async fn twenty_thousand(backend: Backend) {
    let s = setup(backend, sim_config(4, 5000)).await;
    let keys = project_keys(&s);
    let jql = format!("project in ({})", keys.join(", "));
    let created = create_sync(&s, json!({ "jql": jql, "interval_s": 3600 })).await;
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_idle(&s, &id, 0, 600).await;
    assert_eq!(done["issues_synced"], 20_000);
    let truth = sim_truth(&s, &jql).await;
    assert_eq!(truth.len(), 20_000);
    let (local, _) = local_issues(&s).await;
    assert_eq!(local.len(), 20_000);
    assert!(local == truth, "the store differs from atlassim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_issues_sync_exactly() {
    for b in backends() {
        twenty_thousand(b).await;
    }
}

async fn two_processes(backend: Backend) {
    let s = setup(backend, sim_config(3, 200)).await;
    let keys = project_keys(&s);
    // A second atlasgate process on the same database.
    let mut other = s.app.spawn_other(s.app.keyring.clone()).await;
    let other_state = other.state.clone();
    for st in [&s.app.state, &other_state] {
        let t = &st.jobs.tuning;
        Tuning::set(&t.events_poll_ms, 20);
        Tuning::set(&t.events_backoff_base_ms, 200);
        Tuning::set(&t.sync_poll_ms, 20);
    }
    let mut ids = Vec::new();
    for jql in [
        format!("project = {}", keys[0]),
        format!("project = {}", keys[1]),
        format!("project = {}", keys[2]),
        format!("project in ({}, {})", keys[0], keys[1]),
        format!("project in ({}, {}) AND issuetype = Bug", keys[1], keys[2]),
        format!("project = {} AND status = Done", keys[0]),
    ] {
        ids.push(
            create_sync(&s, json!({ "jql": jql, "interval_s": 3600 })).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        wait_idle(&s, id, 0, 120).await;
    }
    let all = wait_for(30, "every event delivered", || async {
        let ev = events(&s.app, &s.key).await;
        ev.iter()
            .all(|e| e["delivery_state"] == "delivered")
            .then_some(ev)
    })
    .await;
    let passes = Counters::read(&s.app.state.jobs.counters.sync_passes)
        + Counters::read(&other_state.jobs.counters.sync_passes);
    assert_eq!(passes, ids.len() as u64, "each sync ran exactly one pass");
    let delivered = Counters::read(&s.app.state.jobs.counters.events_delivered)
        + Counters::read(&other_state.jobs.counters.events_delivered);
    assert_eq!(delivered, all.len() as u64, "each event delivered once");
    let got = s.receiver.bodies();
    assert_eq!(got.len(), all.len(), "the receiver saw each event once");
    let pages = Counters::read(&s.app.state.jobs.counters.sync_pages)
        + Counters::read(&other_state.jobs.counters.sync_pages);
    // Besides pages: per sync, the JQL check at creation and the full pass's id probe.
    assert_eq!(
        pages + 2 * ids.len() as u64,
        search_requests(&s, 200),
        "no page fetched twice"
    );
    // Both processes did work (otherwise this proves little).
    let mine = Counters::read(&s.app.state.jobs.counters.sync_passes);
    eprintln!("passes: this process {mine}, the other {}", passes - mine);
    other.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_syncs_and_deliveries_without_double_work() {
    for b in backends() {
        two_processes(b).await;
    }
}

async fn handover(backend: Backend) {
    let mut s = setup(backend, sim_config(2, 1000)).await;
    let keys = project_keys(&s);
    let jql = format!("project in ({})", keys.join(", "));
    Tuning::set(&s.app.state.jobs.tuning.sync_lease_s, 2);
    s.app.sim.add_fault(atlassim::Fault {
        method: None,
        path: "/ex/jira/*/rest/api/3/search/jql".into(),
        count: 100_000,
        status: None,
        body: None,
        headers: None,
        latency_ms: Some(100),
        drop: false,
    });
    let id = create_sync(&s, json!({ "jql": jql, "interval_s": 3600 })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(60, "part of the pass stored", || async {
        let v = get_sync(&s, &id).await;
        (v["pass"]["stored"].as_i64().unwrap_or(0) >= 400).then_some(())
    })
    .await;
    // The first process goes away mid-pass.
    s.app.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first_pages = Counters::read(&s.app.state.jobs.counters.sync_pages);
    let stored_before: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(stored), 0) AS BIGINT) FROM sync_partitions WHERE sync_id = $1",
    )
    .bind(&id)
    .fetch_one(s.app.store.pool())
    .await
    .unwrap();
    assert!(stored_before < 2000, "the pass finished before the stop");

    // Another process on the same database takes over once the lease runs out.
    let mut other = s.app.spawn_other(s.app.keyring.clone()).await;
    let base = other.address.clone();
    let other_state = other.state.clone();
    Tuning::set(&other_state.jobs.tuning.sync_lease_s, 2);
    Tuning::set(&other_state.jobs.tuning.sync_poll_ms, 50);
    let url = format!("{base}/v1/connections/{}/syncs/{id}", s.connection);
    let done = wait_for(120, "the other process to finish the pass", || async {
        let v: Value = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["passes"] == 1).then_some(v)
    })
    .await;
    assert_eq!(done["issues_synced"], 2000);
    assert_eq!(
        Counters::read(&s.app.state.jobs.counters.sync_pages),
        first_pages,
        "the stopped process did no more work"
    );
    let taken_over = Counters::read(&other_state.jobs.counters.sync_pages);
    let remaining = (2000 - stored_before as u64).div_ceil(100);
    assert!(
        taken_over <= remaining + 4,
        "resumed with {taken_over} pages for {remaining} pages of work"
    );
    s.app.sim.clear_faults();
    let truth = sim_truth(&s, &jql).await;
    let local: BTreeMap<String, Fields> = {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT issue_id, issue_key FROM synced_issues WHERE connection_id = $1 AND deleted = 0",
        )
        .bind(&s.connection)
        .fetch_all(s.app.store.pool())
        .await
        .unwrap();
        rows.into_iter()
            .map(|(id, key)| (id, truth.values().find(|f| f.key == key).cloned().unwrap()))
            .collect()
    };
    assert_eq!(local, truth, "every issue once, none missing");
    other.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_cut_off_by_a_stopped_process_is_resumed_by_another() {
    for b in backends() {
        handover(b).await;
    }
}
