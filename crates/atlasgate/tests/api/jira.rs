//! Typed Jira operations against atlassim: pagination followed, atlasgate's
//! issue shape, estimates on both seeded sites (different story-points
//! fields), read back through Jira.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, TestOptions};
use crate::proxy::{connected, fault, proxy_get, sim_count, sim_site};

/// Jira's view of one issue field, through the proxy.
async fn jira_field(app: &TestApp, key: &str, id: &str, issue: &str, field: &str) -> Value {
    let resp = proxy_get(
        app,
        key,
        id,
        &format!("rest/api/3/issue/{issue}?fields={field}"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["fields"][field].clone()
}

fn keys(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

/// Keys (and ranks) of an agile issue list, walked page by page through the proxy.
async fn agile_keys_by_rank(
    app: &TestApp,
    key: &str,
    id: &str,
    path: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let resp = proxy_get(
            app,
            key,
            id,
            &format!(
                "{path}?startAt={}&maxResults=50&fields=customfield_10019",
                out.len()
            ),
        )
        .await;
        let page: Value = resp.json().await.unwrap();
        let issues = page["issues"].as_array().unwrap();
        for i in issues {
            out.push((
                i["key"].as_str().unwrap().to_string(),
                i["fields"]["customfield_10019"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        if issues.is_empty() || out.len() >= page["total"].as_u64().unwrap() as usize {
            break;
        }
    }
    out
}

#[tokio::test]
async fn projects_boards_sprints_issues_and_backlog() {
    // Enough issues that the backlog spans several of Atlassian's pages.
    let sim = atlassim::SimConfig {
        issues: 260,
        ..Default::default()
    };
    let app = TestApp::spawn_with(
        TestOptions {
            sim,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let (key, id) = connected(&app, "jira", 0).await;
    let site = sim_site(&app, 0);
    let site_url = site["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();

    // Projects: every one, with browse links.
    let projects = app
        .get_ok(&format!("/v1/connections/{id}/jira/projects"), &key)
        .await;
    let want: Vec<String> = site["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect();
    let mut got = keys(&projects);
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    let first = &projects["items"][0];
    assert_eq!(
        first["url"],
        format!("{site_url}/browse/{}", first["key"].as_str().unwrap())
    );
    assert!(first["id"].is_string() && first["name"].is_string());

    // Boards of a project.
    let project = &want[0];
    let boards = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/boards?project={project}"),
            &key,
        )
        .await;
    let items = boards["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|b| b["project_key"] == project.as_str()),
        "{boards}"
    );
    let scrum = items.iter().find(|b| b["type"] == "scrum").unwrap()["id"]
        .as_i64()
        .unwrap();

    // Sprints: active and future only.
    let sprints = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/boards/{scrum}/sprints?state=active,future"),
            &key,
        )
        .await;
    let states: Vec<&str> = sprints["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "future", "future"], "{sprints}");
    let resp = app
        .get(
            &format!("/v1/connections/{id}/jira/boards/{scrum}/sprints?state=soon"),
            Some(&key),
        )
        .await;
    assert_problem(resp, 422).await;
    let active = sprints["items"][0]["id"].as_i64().unwrap();

    // Sprint issues in rank order, atlasgate's issue shape.
    let issues = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/sprints/{active}/issues"),
            &key,
        )
        .await;
    let ranked = agile_keys_by_rank(
        &app,
        &key,
        &id,
        &format!("rest/agile/1.0/sprint/{active}/issue"),
    )
    .await;
    assert!(!ranked.is_empty());
    assert_eq!(
        keys(&issues),
        ranked.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
    assert!(ranked.windows(2).all(|w| w[0].1 <= w[1].1), "rank order");
    let one = &issues["items"][0];
    let k = one["key"].as_str().unwrap();
    assert_eq!(one["url"], format!("{site_url}/browse/{k}"));
    assert_eq!(one["sprint"]["id"], active);
    assert_eq!(one["sprint"]["state"], "active");
    for f in ["id", "summary", "status", "type", "updated"] {
        assert!(one[f].is_string(), "{f}: {one}");
    }
    chrono::DateTime::parse_from_rfc3339(one["updated"].as_str().unwrap()).unwrap();
    let sp_field = site["story_points_field"]["id"].as_str().unwrap();
    let jira_sp = jira_field(&app, &key, &id, k, sp_field).await;
    assert_eq!(one["story_points"].as_f64(), jira_sp.as_f64());

    // Backlog: every page, rank order.
    let before = sim_count(&app, "GET", "/backlog");
    let backlog = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/boards/{scrum}/backlog"),
            &key,
        )
        .await;
    // Jira Software pages agile lists by at most 50.
    assert!(
        sim_count(&app, "GET", "/backlog") - before >= 2,
        "pages were followed"
    );
    let ranked = agile_keys_by_rank(
        &app,
        &key,
        &id,
        &format!("rest/agile/1.0/board/{scrum}/backlog"),
    )
    .await;
    assert!(
        ranked.len() > 50,
        "the backlog should span pages: {}",
        ranked.len()
    );
    assert_eq!(
        keys(&backlog),
        ranked.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn search_follows_next_page_tokens_up_to_the_limit() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 1).await;
    let site = sim_site(&app, 1);
    let p: Vec<&str> = site["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    let total: u64 = site["projects"].as_array().unwrap()[..2]
        .iter()
        .map(|p| p["issue_count"].as_u64().unwrap())
        .sum();
    let jql = format!("project in ({}, {}) ORDER BY key ASC", p[0], p[1]);
    let q = |limit: u64| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("jql", &jql)
            .append_pair("limit", &limit.to_string())
            .finish()
    };
    let before = sim_count(&app, "GET", "/rest/api/3/search/jql");
    let found = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/search?{}", q(110)),
            &key,
        )
        .await;
    let got = keys(&found);
    assert_eq!(got.len(), 110.min(total as usize));
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "no duplicates across pages");
    assert!(
        sim_count(&app, "GET", "/rest/api/3/search/jql") - before >= 2,
        "pages were followed"
    );
    // A limit above the match count returns every match.
    let all = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/search?{}", q(5000)),
            &key,
        )
        .await;
    assert_eq!(keys(&all).len() as u64, total);
    // Bad input: empty JQL / bad limit → 422; JQL Jira refuses → 400 with its message.
    let resp = app
        .get(
            &format!("/v1/connections/{id}/jira/search?jql=&limit=0"),
            Some(&key),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    let resp = app
        .get(
            &format!("/v1/connections/{id}/jira/search?jql=nosuchfield%3D1"),
            Some(&key),
        )
        .await;
    let body = assert_problem(resp, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("nosuchfield"),
        "{body}"
    );
}

/// Estimates on one site: without a board (field found by name), with a
/// board (its estimation field), a comment, and the refusals.
async fn estimates_on_site(site_index: usize) {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", site_index).await;
    let site = sim_site(&app, site_index);
    let sp = site["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let project = site["projects"][0]["key"].as_str().unwrap().to_string();
    let issue = format!("{project}-3");
    let url = format!("/v1/connections/{id}/jira/issues/{issue}/estimate");

    // Without a board: the site's field, found by name.
    let resp = app.post_json(&url, Some(&key), &json!({"value": 5})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"field_id": sp, "value": 5.0}));
    assert_eq!(
        jira_field(&app, &key, &id, &issue, &sp).await.as_f64(),
        Some(5.0)
    );

    // With a board: its estimation field, via the agile API, and a comment.
    let boards = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/boards?project={project}"),
            &key,
        )
        .await;
    let scrum = boards["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "scrum")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let before = sim_count(&app, "PUT", "/estimation");
    let resp = app
        .post_json(&url, Some(&key), &json!({"value": "8", "board_id": scrum, "comment": "Estimated in planning.\nVotes: 5, 8, 8"}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"field_id": sp, "value": 8.0}));
    assert_eq!(sim_count(&app, "PUT", "/estimation") - before, 1);
    assert_eq!(
        jira_field(&app, &key, &id, &issue, &sp).await.as_f64(),
        Some(8.0)
    );
    let comments: Value = proxy_get(
        &app,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}/comment"),
    )
    .await
    .json()
    .await
    .unwrap();
    let last = comments["comments"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let paragraphs = last["body"]["content"].as_array().unwrap();
    assert_eq!(paragraphs.len(), 2, "{last}");
    assert_eq!(paragraphs[1]["content"][0]["text"], "Votes: 5, 8, 8");

    // Refusals: not a number (422, nothing sent); a kanban board (422).
    let resp = app
        .post_json(&url, Some(&key), &json!({"value": "lots"}))
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["field"], "value");
    if let Some(kanban) = boards["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "kanban")
    {
        let resp = app
            .post_json(
                &url,
                Some(&key),
                &json!({"value": 3, "board_id": kanban["id"]}),
            )
            .await;
        let body = assert_problem(resp, 422).await;
        assert_eq!(body["errors"][0]["field"], "board_id");
    }
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/jira/issues/{project}-999999/estimate"),
            Some(&key),
            &json!({"value": 1}),
        )
        .await;
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn estimates_on_the_first_site() {
    estimates_on_site(0).await;
}

#[tokio::test]
async fn estimates_on_the_second_site_use_its_own_field() {
    estimates_on_site(1).await;
}

#[tokio::test]
async fn a_site_without_a_story_points_field_is_a_clear_422() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let mut f = fault("GET", "/ex/jira/*/rest/api/3/field", 1);
    f.status = Some(200);
    f.body = Some(json!([{"id": "summary", "name": "Summary", "custom": false}]));
    app.sim.add_fault(f);
    let project = sim_site(&app, 0)["projects"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/jira/issues/{project}-1/estimate"),
            Some(&key),
            &json!({"value": 2}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Story Points"),
        "{body}"
    );
    assert_eq!(
        sim_count(&app, "GET", "/rest/api/3/field"),
        1,
        "the field list was asked for"
    );
    assert_eq!(
        sim_count(&app, "PUT", "/rest/api/3/issue/{issueIdOrKey}"),
        0
    );
}

#[tokio::test]
async fn comments_become_adf_paragraphs() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let project = sim_site(&app, 0)["projects"][1]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let issue = format!("{project}-2");
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/jira/issues/{issue}/comments"),
            Some(&key),
            &json!({"text": "First line\n\nSecond <b>line</b>"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let comment_id = body["id"].as_str().unwrap().to_string();
    let comments: Value = proxy_get(
        &app,
        &key,
        &id,
        &format!("rest/api/3/issue/{issue}/comment"),
    )
    .await
    .json()
    .await
    .unwrap();
    let c = comments["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == comment_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(c["body"]["type"], "doc");
    let texts: Vec<&str> = c["body"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["First line", "Second <b>line</b>"]);
    // Empty text and a malformed key are refused together.
    let resp = app
        .post_json(
            &format!("/v1/connections/{id}/jira/issues/not%20a%20key/comments"),
            Some(&key),
            &json!({"text": "  "}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn typed_operations_are_scoped_to_the_app() {
    let app = TestApp::spawn().await;
    let (_, id) = connected(&app, "jira", 0).await;
    let (_, other) = app.create_app("someone-else").await;
    for path in [
        "jira/projects",
        "jira/boards",
        "jira/search?jql=project%3DACME",
        "confluence/spaces",
    ] {
        let resp = app
            .get(&format!("/v1/connections/{id}/{path}"), Some(&other))
            .await;
        assert_problem(resp, 404).await;
    }
}
