//! `POST /v1/connections/{id}/jira/issue-keys`: keys of the site's projects
//! only, in order, deduplicated. (The property tests live beside the parser,
//! `src/jira/issue_keys.rs`.)

use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp};
use crate::proxy::{connected, sim_count, sim_site};

#[tokio::test]
async fn finds_keys_of_existing_projects_only() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let mine: Vec<String> = sim_site(&app, 0)["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect();
    let theirs = sim_site(&app, 1)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (a, b) = (&mine[0], &mine[1]);
    let texts = vec![
        format!("{a}-12: Fix login redirect"),
        format!("feature/{}-7-new-thing", b.to_lowercase()),
        format!("Merge {theirs}-5 and UTF-8 / SHA-256 cleanup; see {a}-12 again"),
        format!("[{b}-7] follow-up, {a}-3"),
    ];
    let url = format!("/v1/connections/{id}/jira/issue-keys");
    let resp = app
        .post_json(&url, Some(&key), &json!({ "texts": texts }))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["keys"],
        json!([format!("{a}-12"), format!("{b}-7"), format!("{a}-3")])
    );

    // The project list is cached per connection: a second call asks Jira nothing.
    let before = sim_count(&app, "GET", "/rest/api/3/project/search");
    let resp = app
        .post_json(&url, Some(&key), &json!({ "texts": ["nothing here"] }))
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["keys"], json!([]));
    assert_eq!(sim_count(&app, "GET", "/rest/api/3/project/search"), before);

    let resp = app
        .post_json(&url, Some(&key), &json!({ "texts": "not a list" }))
        .await;
    assert_problem(resp, 422).await;
}

/// Issue 9: `"a_" * n + "a-1"` was quadratic (600 KB took 33 s of one core,
/// past the request timeout). Now a 600 KB hostile text is one linear pass:
/// it answers 200, with the keys it holds, well inside the 30 s request
/// timeout (the time itself is measured in BENCHMARKS.md, not here).
#[tokio::test]
async fn a_600_kb_hostile_text_answers() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let project = sim_site(&app, 0)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let lower = project.to_lowercase();
    // The text, and the same shape ending in a real project's key.
    let texts = vec![
        "a_".repeat(150_000) + "a-1",
        format!("{lower}_").repeat(300_000 / (lower.len() + 1)) + &format!("{lower}-7"),
    ];
    assert!(texts.iter().map(String::len).sum::<usize>() >= 600_000);
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/jira/issue-keys"),
            Some(&key),
            &json!({ "texts": texts }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["keys"], json!([format!("{project}-7")]));
}
