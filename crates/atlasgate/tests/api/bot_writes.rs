//! Typed writes for bots and agents (docs/design.md §16) against atlassim:
//! the bot flow create → transition → assign → comment through the REST
//! endpoints, checked in what atlassim stored; the 409s a caller can recover
//! from (unreachable status, ambiguous user, stale page version); bad input
//! that changes nothing; another app's connection.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp};
use crate::proxy::{connected, sim_site};

/// A request with the app key and an optional JSON body.
pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

fn cloud(app: &TestApp) -> String {
    sim_site(app, 0)["cloud_id"].as_str().unwrap().to_string()
}

/// An issue as atlassim holds it.
fn sim_issue(app: &TestApp, key: &str) -> atlassim::model::Issue {
    let cloud = cloud(app);
    let world = app.sim.state().world();
    world
        .site(&cloud)
        .unwrap()
        .issue(key)
        .unwrap_or_else(|| panic!("atlassim has no {key}"))
        .clone()
}

fn sim_issue_count(app: &TestApp) -> usize {
    let cloud = cloud(app);
    app.sim.state().world().site(&cloud).unwrap().issues.len()
}

fn sim_page_count(app: &TestApp) -> usize {
    let cloud = cloud(app);
    app.sim.state().world().site(&cloud).unwrap().pages.len()
}

/// (account id, display name, e-mail) of the people on site 0.
fn sim_people(app: &TestApp) -> Vec<(String, String, String)> {
    let cloud = cloud(app);
    let world = app.sim.state().world();
    let site = world.site(&cloud).unwrap();
    site.users
        .iter()
        .filter_map(|id| world.users.iter().find(|u| &u.account_id == id))
        .map(|u| (u.account_id.clone(), u.name.clone(), u.email.clone()))
        .collect()
}

async fn first_project(app: &TestApp, key: &str, id: &str) -> String {
    let projects = app
        .get_ok(&format!("/v1/connections/{id}/jira/projects"), key)
        .await;
    projects["items"][0]["key"].as_str().unwrap().to_string()
}

/// Every node of an ADF tree, depth first.
fn nodes(v: &Value) -> Vec<&Value> {
    let mut out = vec![v];
    for c in v["content"].as_array().into_iter().flatten() {
        out.extend(nodes(c));
    }
    out
}

fn has_mark(doc: &Value, mark: &str, text: &str) -> bool {
    nodes(doc).iter().any(|n| {
        n["text"].as_str() == Some(text)
            && n["marks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["type"] == mark)
    })
}

const DESCRIPTION: &str = "The login page **times out** after a deploy.\n\n\
```rust\nfn main() {\n    login();\n}\n```\n\n- first\n- second\n";

#[tokio::test]
async fn bot_flow_create_transition_assign_comment() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let project = first_project(&app, &key, &id).await;

    // Create with a Markdown description: atlassim stores ADF.
    let resp = send(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/jira/issues"),
        &key,
        Some(&json!({
            "project": project,
            "issue_type": "Task",
            "summary": "Login times out",
            "description_markdown": DESCRIPTION,
            "fields": {"labels": ["bot"]},
        })),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let issue = created["key"].as_str().unwrap().to_string();
    assert!(issue.starts_with(&format!("{project}-")), "{created}");
    assert!(created["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/browse/{issue}")));
    let stored = sim_issue(&app, &issue);
    assert_eq!(stored.summary, "Login times out");
    assert_eq!(stored.issue_type.name, "Task");
    assert_eq!(stored.labels, vec!["bot".to_string()]);
    let doc = stored.description.clone().expect("a description");
    assert!(has_mark(&doc, "strong", "times out"), "{doc}");
    let code = nodes(&doc)
        .into_iter()
        .find(|n| n["type"] == "codeBlock")
        .cloned()
        .expect("a code block");
    assert_eq!(code["attrs"]["language"], "rust");
    assert_eq!(code["content"][0]["text"], "fn main() {\n    login();\n}");
    assert!(nodes(&doc).iter().any(|n| n["type"] == "bulletList"));

    // Read back as Markdown: the same text comes out.
    let read = app
        .get_ok(&format!("/v1/connections/{id}/jira/issues/{issue}"), &key)
        .await;
    assert_eq!(read["key"], issue.as_str());
    assert_eq!(read["status"], "To Do");
    assert_eq!(
        read["description_markdown"].as_str().unwrap().trim_end(),
        DESCRIPTION.trim_end()
    );
    assert_eq!(read["comments"], json!([]));
    assert!(read["assignee"].is_null());

    // Done is not reachable from To Do: 409 listing where it can go; nothing moved.
    let path = format!("/v1/connections/{id}/jira/issues/{issue}/transition");
    let resp = send(
        &app,
        Method::POST,
        &path,
        &key,
        Some(&json!({"to": "Done"})),
    )
    .await;
    let problem = assert_problem(resp, 409).await;
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .ends_with("/no-transition"));
    assert_eq!(problem["reachable"], json!(["In Progress"]));
    assert_eq!(problem["transitions"][0]["to"], "In Progress");
    assert!(problem["detail"].as_str().unwrap().contains("In Progress"));
    assert_eq!(sim_issue(&app, &issue).status.name, "To Do");

    // By status name (any case), then on to Done: a resolution is set.
    let resp = send(
        &app,
        Method::POST,
        &path,
        &key,
        Some(&json!({"to": "in progress"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let moved: Value = resp.json().await.unwrap();
    assert_eq!(moved["status"], "In Progress");
    assert_eq!(sim_issue(&app, &issue).status.name, "In Progress");
    let resp = send(
        &app,
        Method::POST,
        &path,
        &key,
        Some(&json!({"to": "Done"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let stored = sim_issue(&app, &issue);
    assert_eq!(stored.status.name, "Done");
    assert_eq!(stored.resolution.as_deref(), Some("Done"));

    // Assign by e-mail.
    let people = sim_people(&app);
    let (noah_id, _, noah_email) = people
        .iter()
        .find(|(_, n, _)| n == "Noah Patel")
        .cloned()
        .unwrap();
    let assignee_path = format!("/v1/connections/{id}/jira/issues/{issue}/assignee");
    let resp = send(
        &app,
        Method::PUT,
        &assignee_path,
        &key,
        Some(&json!({"email": noah_email})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["assignee"]["account_id"], noah_id.as_str());
    assert_eq!(body["assignee"]["display_name"], "Noah Patel");
    assert_eq!(
        sim_issue(&app, &issue).assignee.as_deref(),
        Some(noah_id.as_str())
    );

    // Comment in Markdown: atlassim stores ADF with the marks.
    let resp = send(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/jira/issues/{issue}/comments"),
        &key,
        Some(&json!({"markdown": "Fixed in `auth.rs`, see [the log](https://ci.example.com/1)."})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let comment: Value = resp.json().await.unwrap();
    let stored = sim_issue(&app, &issue);
    let posted = stored
        .comments
        .iter()
        .find(|c| c.id.to_string() == comment["id"].as_str().unwrap())
        .expect("the comment in atlassim");
    assert!(has_mark(&posted.body, "code", "auth.rs"), "{}", posted.body);
    let link = nodes(&posted.body)
        .into_iter()
        .find(|n| n["text"] == "the log")
        .cloned()
        .unwrap();
    assert_eq!(
        link["marks"][0]["attrs"]["href"],
        "https://ci.example.com/1"
    );

    // The plain-text form still works beside it.
    let resp = send(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/jira/issues/{issue}/comments"),
        &key,
        Some(&json!({"text": "**not bold**"})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let stored = sim_issue(&app, &issue);
    assert_eq!(
        stored.comments.last().unwrap().body["content"][0]["content"][0]["text"],
        "**not bold**"
    );

    // The read shows status, resolution, assignee and the comments as Markdown.
    let read = app
        .get_ok(
            &format!("/v1/connections/{id}/jira/issues/{issue}?comments=1"),
            &key,
        )
        .await;
    assert_eq!(read["status"], "Done");
    assert_eq!(read["resolution"], "Done");
    assert_eq!(read["assignee"]["account_id"], noah_id.as_str());
    let comments = read["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{read}");
    assert_eq!(comments[0]["markdown"], "\\*\\*not bold\\*\\*");
    let read = app
        .get_ok(&format!("/v1/connections/{id}/jira/issues/{issue}"), &key)
        .await;
    assert_eq!(
        read["comments"][0]["markdown"],
        "Fixed in `auth.rs`, see [the log](https://ci.example.com/1)."
    );

    // Update the summary and the description; then unassign.
    let resp = send(
        &app,
        Method::PATCH,
        &format!("/v1/connections/{id}/jira/issues/{issue}"),
        &key,
        Some(&json!({"summary": "Login timed out", "description_markdown": "# Root cause\n\n~~cache~~ DNS"})),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let stored = sim_issue(&app, &issue);
    assert_eq!(stored.summary, "Login timed out");
    let doc = stored.description.unwrap();
    assert_eq!(doc["content"][0]["type"], "heading");
    assert!(has_mark(&doc, "strike", "cache"), "{doc}");
    let resp = send(&app, Method::PUT, &assignee_path, &key, Some(&Value::Null)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.unwrap()["assignee"].is_null());
    assert_eq!(sim_issue(&app, &issue).assignee, None);
}

#[tokio::test]
async fn assignment_by_name_needs_one_match() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let project = first_project(&app, &key, &id).await;
    let created: Value = send(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/jira/issues"),
        &key,
        Some(&json!({"project": project, "issue_type": "Bug", "summary": "Crash"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let issue = created["key"].as_str().unwrap().to_string();
    let path = format!("/v1/connections/{id}/jira/issues/{issue}/assignee");
    let people = sim_people(&app);

    // "l" starts a word of several names: 409 listing exactly them, nobody assigned.
    let mut want: Vec<String> = people
        .iter()
        .filter(|(_, name, email)| {
            name.to_lowercase()
                .split_whitespace()
                .any(|w| w.starts_with('l'))
                || email.starts_with('l')
        })
        .map(|(id, _, _)| id.clone())
        .collect();
    want.sort();
    assert!(
        want.len() >= 2,
        "the seed must have two people matching 'l'"
    );
    let resp = send(&app, Method::PUT, &path, &key, Some(&json!({"query": "l"}))).await;
    let problem = assert_problem(resp, 409).await;
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .ends_with("/ambiguous-user"));
    let mut got: Vec<String> = problem["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["account_id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(sim_issue(&app, &issue).assignee, None);

    // A full name is one person, even where a prefix is several.
    let (ava_id, ava_name, _) = people
        .iter()
        .find(|(_, n, _)| n == "Ava Lindqvist")
        .cloned()
        .unwrap();
    let resp = send(
        &app,
        Method::PUT,
        &path,
        &key,
        Some(&json!({"query": ava_name})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sim_issue(&app, &issue).assignee.as_deref(),
        Some(ava_id.as_str())
    );

    // Nobody: a 422 on the member, nothing changed.
    let resp = send(
        &app,
        Method::PUT,
        &path,
        &key,
        Some(&json!({"query": "Nobody Atall"})),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "query");
    let resp = send(
        &app,
        Method::PUT,
        &path,
        &key,
        Some(&json!({"email": "nobody@example.org"})),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "email");
    // An account id Jira does not know.
    let resp = send(
        &app,
        Method::PUT,
        &path,
        &key,
        Some(&json!({"account_id": "0123456789abcdef01234567"})),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "account_id");
    assert_eq!(
        sim_issue(&app, &issue).assignee.as_deref(),
        Some(ava_id.as_str())
    );

    // By account id.
    let (liam_id, _, _) = people
        .iter()
        .find(|(_, n, _)| n == "Liam Okafor")
        .cloned()
        .unwrap();
    let resp = send(
        &app,
        Method::PUT,
        &path,
        &key,
        Some(&json!({"account_id": liam_id})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sim_issue(&app, &issue).assignee.as_deref(),
        Some(liam_id.as_str())
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_jira_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let project = first_project(&app, &key, &id).await;
    let before = sim_issue_count(&app);
    let issues = format!("/v1/connections/{id}/jira/issues");
    for (body, field) in [
        (
            json!({"project": project, "issue_type": "Task", "summary": "  "}),
            "summary",
        ),
        (
            json!({"project": "", "issue_type": "Task", "summary": "x"}),
            "project",
        ),
        (
            json!({"project": project, "issue_type": "Task", "summary": "two\nlines"}),
            "summary",
        ),
        (
            json!({"project": project, "issue_type": "Task", "summary": "x", "fields": {"summary": "y"}}),
            "fields.summary",
        ),
    ] {
        let resp = send(&app, Method::POST, &issues, &key, Some(&body)).await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    // Unknown members are refused too.
    let resp = send(
        &app,
        Method::POST,
        &issues,
        &key,
        Some(&json!({"project": project, "issue_type": "Task", "summary": "x", "descripton": "typo"})),
    )
    .await;
    assert_problem(resp, 422).await;
    // Jira's own refusal (an issue type the project lacks) is a 400 with its words.
    let resp = send(
        &app,
        Method::POST,
        &issues,
        &key,
        Some(&json!({"project": "NOPE", "issue_type": "Task", "summary": "x"})),
    )
    .await;
    let problem = assert_problem(resp, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("project"),
        "{problem}"
    );
    assert_eq!(sim_issue_count(&app), before);

    let created: Value = send(
        &app,
        Method::POST,
        &issues,
        &key,
        Some(&json!({"project": project, "issue_type": "Task", "summary": "Keep me"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let issue = created["key"].as_str().unwrap().to_string();
    let base = format!("{issues}/{issue}");
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (Method::PATCH, base.clone(), json!({}), "summary"),
        (
            Method::PATCH,
            base.clone(),
            json!({"summary": ""}),
            "summary",
        ),
        (
            Method::POST,
            format!("{base}/transition"),
            json!({"to": " "}),
            "to",
        ),
        (
            Method::POST,
            format!("{base}/comments"),
            json!({"text": "a", "markdown": "b"}),
            "text",
        ),
        (
            Method::POST,
            format!("{base}/comments"),
            json!({"markdown": "  "}),
            "markdown",
        ),
        (
            Method::PUT,
            format!("{base}/assignee"),
            json!({"email": "a@b.co", "query": "x"}),
            "body",
        ),
        (
            Method::PUT,
            format!("{base}/assignee"),
            json!({"name": "x"}),
            "body",
        ),
        (
            Method::PATCH,
            format!("{issues}/not-a-key"),
            json!({"summary": "x"}),
            "key",
        ),
    ];
    for (method, path, body, field) in cases {
        let resp = send(&app, method.clone(), &path, &key, Some(&body)).await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{method} {path} {body}"
        );
    }
    let stored = sim_issue(&app, &issue);
    assert_eq!(stored.summary, "Keep me");
    assert_eq!(stored.status.name, "To Do");
    assert!(stored.comments.is_empty());
    assert_eq!(stored.assignee, None);
    // A missing issue is a 404.
    let resp = send(
        &app,
        Method::GET,
        &format!("{issues}/{project}-99999"),
        &key,
        None,
    )
    .await;
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn another_apps_connection_is_not_found_and_untouched() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let (other_key, _) = connected(&app, "atlassian", 0).await;
    let project = first_project(&app, &key, &id).await;
    let created: Value = send(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/jira/issues"),
        &key,
        Some(&json!({"project": project, "issue_type": "Task", "summary": "Mine"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let issue = created["key"].as_str().unwrap().to_string();
    let before = sim_issue_count(&app);
    let base = format!("/v1/connections/{id}");
    let cases: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            format!("{base}/jira/issues"),
            json!({"project": project, "issue_type": "Task", "summary": "theirs"}),
        ),
        (
            Method::GET,
            format!("{base}/jira/issues/{issue}"),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("{base}/jira/issues/{issue}"),
            json!({"summary": "theirs"}),
        ),
        (
            Method::POST,
            format!("{base}/jira/issues/{issue}/transition"),
            json!({"to": "In Progress"}),
        ),
        (
            Method::PUT,
            format!("{base}/jira/issues/{issue}/assignee"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("{base}/jira/issues/{issue}/comments"),
            json!({"markdown": "hi"}),
        ),
        (
            Method::GET,
            format!("{base}/confluence/search?cql=type%3Dpage"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("{base}/confluence/pages"),
            json!({"space": "X", "title": "t", "markdown": "m"}),
        ),
        (
            Method::PUT,
            format!("{base}/confluence/pages/1"),
            json!({"markdown": "m", "version": 1}),
        ),
    ];
    for (method, path, body) in cases {
        let resp = send(&app, method.clone(), &path, &other_key, Some(&body)).await;
        assert_problem(resp, 404).await;
    }
    assert_eq!(sim_issue_count(&app), before);
    let stored = sim_issue(&app, &issue);
    assert_eq!(stored.summary, "Mine");
    assert_eq!(stored.status.name, "To Do");
    assert!(stored.comments.is_empty());
}

/// A page as atlassim holds it: (version, title, storage body).
fn sim_page(app: &TestApp, page: &str) -> (u32, String, String) {
    let cloud = cloud(app);
    let world = app.sim.state().world();
    let p = world
        .site(&cloud)
        .unwrap()
        .pages
        .iter()
        .find(|p| p.id.to_string() == page)
        .unwrap()
        .clone();
    (p.version, p.title, p.body)
}

#[tokio::test]
async fn confluence_pages_in_markdown_with_the_version_check_and_cql() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let spaces = app
        .get_ok(&format!("/v1/connections/{id}/confluence/spaces"), &key)
        .await;
    let space = spaces["items"][0]["key"].as_str().unwrap().to_string();
    let pages = format!("/v1/connections/{id}/confluence/pages");

    let md = "# Runbook\n\nRestart **both** nodes:\n\n```sh\nsystemctl restart app\n```\n\n| step | who |\n| --- | --- |\n| 1 | ops |\n";
    let resp = send(
        &app,
        Method::POST,
        &pages,
        &key,
        Some(&json!({"space": space, "title": "Quokka runbook", "markdown": md})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let page: Value = resp.json().await.unwrap();
    let page_id = page["id"].as_str().unwrap().to_string();
    assert_eq!(page["version"], 1);
    assert_eq!(page["space_key"], space.as_str());
    assert!(page["url"].as_str().unwrap().contains(&page_id));
    assert_eq!(sim_page(&app, &page_id).0, 1);

    // Read back: the Markdown that went in.
    let read = app.get_ok(&format!("{pages}/{page_id}"), &key).await;
    assert_eq!(read["markdown"].as_str().unwrap().trim_end(), md.trim_end());
    assert_eq!(read["title"], "Quokka runbook");
    assert_eq!(read["version"], 1);

    // Update from the version read: atlasgate writes version 2.
    let resp = send(
        &app,
        Method::PUT,
        &format!("{pages}/{page_id}"),
        &key,
        Some(&json!({"markdown": "Restart _one_ node at a time.", "version": 1})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["title"], "Quokka runbook");
    let (version, title, body) = sim_page(&app, &page_id);
    assert_eq!((version, title.as_str()), (2, "Quokka runbook"));
    assert!(body.contains("one node at a time"), "{body}");

    // The same stale version again: 409 with the current one; nothing written.
    let resp = send(
        &app,
        Method::PUT,
        &format!("{pages}/{page_id}"),
        &key,
        Some(&json!({"markdown": "lost update", "version": 1, "title": "Lost"})),
    )
    .await;
    let problem = assert_problem(resp, 409).await;
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .ends_with("/version-conflict"));
    assert_eq!(problem["current_version"], 2);
    let (version, title, body) = sim_page(&app, &page_id);
    assert_eq!((version, title.as_str()), (2, "Quokka runbook"));
    assert!(!body.contains("lost update"));

    // CQL finds it; the read shows the new text.
    let hits = app
        .get_ok(
            &format!(
                "/v1/connections/{id}/confluence/search?cql={}",
                urlencode(&format!("space = {space} AND title ~ \"Quokka\""))
            ),
            &key,
        )
        .await;
    let items = hits["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{hits}");
    assert_eq!(items[0]["id"], page_id.as_str());
    assert_eq!(items[0]["space_key"], space.as_str());
    let read = app.get_ok(&format!("{pages}/{page_id}"), &key).await;
    assert_eq!(read["markdown"], "Restart _one_ node at a time.");
    assert_eq!(read["version"], 2);

    // Bad input: refused, nothing stored.
    let count = sim_page_count(&app);
    for (body, field) in [
        (
            json!({"space": space, "title": " ", "markdown": "x"}),
            "title",
        ),
        (
            json!({"space": "NOSUCHSPACE", "title": "t", "markdown": "x"}),
            "space",
        ),
        (
            json!({"space": space, "title": "t", "markdown": "x", "parent_id": "../1"}),
            "parent_id",
        ),
    ] {
        let resp = send(&app, Method::POST, &pages, &key, Some(&body)).await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    assert_eq!(sim_page_count(&app), count);
    let resp = send(
        &app,
        Method::PUT,
        &format!("{pages}/{page_id}"),
        &key,
        Some(&json!({"markdown": "x", "version": 0})),
    )
    .await;
    assert_eq!(
        assert_problem(resp, 422).await["errors"][0]["field"],
        "version"
    );
    let resp = send(
        &app,
        Method::GET,
        &format!("/v1/connections/{id}/confluence/search?cql="),
        &key,
        None,
    )
    .await;
    assert_eq!(assert_problem(resp, 422).await["errors"][0]["field"], "cql");
    assert_eq!(sim_page(&app, &page_id).0, 2);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
