//! Every pagination loop stops on a repeated cursor or a page cap
//! (docs/design.md §12): a 502 problem with the reason on the API, a failed
//! pass with the reason on a sync. atlassim misbehaves through its fault
//! knob (`POST /__sim/faults` with a canned 200 page).

use atlasgate::store::Backend;
use serde_json::{json, Value};

use crate::events::{setup, wait_for};
use crate::helpers::{assert_problem, backends, TestApp};
use crate::proxy::connected;
use crate::sync::{create_sync, get_sync, project_keys, run_sync, wait_idle};

/// Answer the next `count` requests to `path` with this page.
fn canned_page(app_sim: &atlassim::Sim, path: &str, page: Value, count: u32) {
    app_sim.add_fault(
        serde_json::from_value(json!({
            "method": "GET",
            "path": path,
            "count": count,
            "status": 200,
            "body": page,
        }))
        .unwrap(),
    );
}

fn repeating_search() -> Value {
    json!({
        "issues": [{ "id": "1", "key": "LOOP-1", "fields": {} }],
        "nextPageToken": "the-same-token",
        "isLast": false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeating_upstream_is_a_502_with_the_reason() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;

    // `startAt` ignored: every page is the first one, and never the last.
    canned_page(
        &app.sim,
        "/ex/jira/*/rest/api/3/project/search",
        json!({
            "startAt": 0, "maxResults": 100, "total": 500, "isLast": false,
            "values": [{ "id": "1", "key": "LOOP", "name": "Loop" }],
        }),
        50,
    );
    let path = format!("/v1/connections/{id}/jira/projects");
    let problem = assert_problem(app.get(&path, Some(&key)).await, 502).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("project search") && detail.contains("repeated the page cursor"),
        "{problem}"
    );

    // A `nextPageToken` that comes back again.
    canned_page(
        &app.sim,
        "/ex/jira/*/rest/api/3/search/jql",
        repeating_search(),
        50,
    );
    let project = app.sim.snapshot()["sites"][0]["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let search =
        format!("/v1/connections/{id}/jira/search?jql=project%20%3D%20{project}&limit=1000");
    let problem = assert_problem(app.get(&search, Some(&key)).await, 502).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("issue search") && detail.contains("the-same-token"),
        "{problem}"
    );

    // Positive control: with a well-behaved Jira both answer.
    app.sim.clear_faults();
    assert_eq!(app.get(&path, Some(&key)).await.status(), 200);
    assert_eq!(app.get(&search, Some(&key)).await.status(), 200);
}

async fn sync_pass_fails(backend: Backend) {
    let s = setup(
        backend,
        atlassim::SimConfig {
            sites: 1,
            projects: 2,
            issues: 5,
            ..Default::default()
        },
    )
    .await;
    canned_page(
        &s.app.sim,
        "/ex/jira/*/rest/api/3/search/jql",
        repeating_search(),
        1000,
    );
    let jql = format!("project = {}", project_keys(&s)[0]);
    let created = create_sync(&s, json!({ "jql": jql, "interval_s": 3600 })).await;
    let id = created["id"].as_str().unwrap().to_string();
    let failed = wait_for(60, "the pass to fail", || async {
        let v = get_sync(&s, &id).await;
        (v["state"] == "failed").then_some(v)
    })
    .await;
    let error = failed["last_error"].as_str().unwrap();
    assert!(
        error.contains("issue search: Atlassian repeated the page cursor `the-same-token`"),
        "{failed}"
    );
    // Positive control: the next pass against a well-behaved Jira completes.
    s.app.sim.clear_faults();
    run_sync(&s, &id).await;
    let done = wait_idle(&s, &id, 0, 60).await;
    assert!(done["issues_synced"].as_i64().unwrap() > 0, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeating_upstream_fails_the_sync_pass_with_the_reason() {
    for b in backends() {
        sync_pass_fails(b).await;
    }
}
