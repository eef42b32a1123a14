//! Workflows and transitions: what is offered from each status, moving an
//! issue, resolution and its dates, the changelog and `jira:issue_updated`.

use serde_json::{json, Value};

use crate::jira::{gw, Gw};
use crate::webhooks::Receiver;

/// A fresh issue in "To Do" on site 0's first project.
pub async fn new_issue(g: &Gw, summary: &str) -> String {
    let project = g.project_key(0, 0);
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/issue"),
            json!({"fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["key"].as_str().unwrap().to_string()
}

pub async fn transition(g: &Gw, key: &str, id: &str, extra: Value) -> crate::jira::Resp {
    let mut body = json!({"transition": {"id": id}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    g.post(
        &g.jira(0, &format!("/rest/api/3/issue/{key}/transitions")),
        body,
    )
    .await
}

fn names(body: &Value) -> Vec<String> {
    body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn transitions_offered_depend_on_the_status_and_done_is_one_way() {
    let g = gw().await;
    let key = new_issue(&g, "walk the workflow").await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/transitions"));
    let r = g.get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(names(&r.body), ["Start progress"]);
    assert_eq!(r.body["transitions"][0]["to"]["name"], "In Progress");
    assert_eq!(
        r.body["transitions"][0]["to"]["statusCategory"]["key"],
        "indeterminate"
    );
    assert!(r.body["transitions"][0].get("fields").is_none());

    assert_eq!(transition(&g, &key, "11", json!({})).await.status, 204);
    assert_eq!(
        names(&g.get(&url).await.body),
        ["Stop progress", "Request review", "Done"]
    );
    let fields = g.get(&format!("{url}?expand=transitions.fields")).await;
    let done = &fields.body["transitions"][2];
    assert_eq!(done["hasScreen"], true);
    assert_eq!(done["fields"]["resolution"]["required"], true);
    assert_eq!(
        done["fields"]["resolution"]["allowedValues"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(transition(&g, &key, "51", json!({})).await.status, 204);
    // From Done only "Reopen" (to To Do) is offered: there is no way back to review.
    assert_eq!(names(&g.get(&url).await.body), ["Reopen"]);
    let all = g
        .get(&format!("{url}?includeUnavailableTransitions=true"))
        .await;
    assert_eq!(all.body["transitions"].as_array().unwrap().len(), 6);
    let review = transition(&g, &key, "31", json!({})).await;
    assert_eq!(review.status, 400);
    assert_eq!(
        review.body["errorMessages"][0],
        "Transition id '31' is not valid for this issue."
    );
}

#[tokio::test]
async fn done_sets_resolution_and_dates_and_reopen_clears_them() {
    let g = gw().await;
    let key = new_issue(&g, "resolve me").await;
    let issue_url = g.jira(0, &format!("/rest/api/3/issue/{key}"));
    let before = g.get(&issue_url).await.body;
    assert_eq!(before["fields"]["resolution"], Value::Null);
    assert_eq!(before["fields"]["resolutiondate"], Value::Null);
    let created_category = before["fields"]["statuscategorychangedate"].clone();
    assert!(created_category.is_string());

    g.sim.advance_clock(60);
    transition(&g, &key, "11", json!({})).await;
    let started = g.get(&issue_url).await.body;
    assert_ne!(
        started["fields"]["statuscategorychangedate"],
        created_category
    );
    g.sim.advance_clock(60);
    transition(&g, &key, "31", json!({})).await;
    let in_review = g.get(&issue_url).await.body;
    // In Progress → In Review stays in one category: the date does not move.
    assert_eq!(
        in_review["fields"]["statuscategorychangedate"],
        started["fields"]["statuscategorychangedate"]
    );

    let bad = transition(
        &g,
        &key,
        "51",
        json!({"fields": {"resolution": {"name": "Nope"}}}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["errors"]["resolution"].is_string());
    let off_screen = transition(&g, &key, "51", json!({"fields": {"summary": "x"}})).await;
    assert_eq!(off_screen.status, 400);
    assert_eq!(
        g.get(&issue_url).await.body["fields"]["status"]["name"],
        "In Review",
        "a rejected transition changes nothing"
    );

    let done = transition(
        &g,
        &key,
        "51",
        json!({"fields": {"resolution": {"name": "Won't Do"}}}),
    )
    .await;
    assert_eq!(done.status, 204, "{:?}", done.body);
    let resolved = g.get(&issue_url).await.body;
    assert_eq!(resolved["fields"]["status"]["name"], "Done");
    assert_eq!(resolved["fields"]["resolution"]["name"], "Won't Do");
    assert_eq!(resolved["fields"]["resolution"]["id"], "10001");
    assert!(resolved["fields"]["resolutiondate"].is_string());

    transition(&g, &key, "61", json!({})).await;
    let reopened = g.get(&issue_url).await.body;
    assert_eq!(reopened["fields"]["status"]["name"], "To Do");
    assert_eq!(reopened["fields"]["resolution"], Value::Null);
    assert_eq!(reopened["fields"]["resolutiondate"], Value::Null);

    // Each transition is one history entry; Done carries the resolution too.
    let log = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}/changelog")))
        .await
        .body;
    let histories = log["values"].as_array().unwrap();
    assert_eq!(histories.len(), 4);
    let fields: Vec<Vec<&str>> = histories
        .iter()
        .map(|h| {
            h["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["field"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        fields,
        [
            vec!["status"],
            vec!["status"],
            vec!["resolution", "status"],
            vec!["resolution", "status"]
        ]
    );
    assert_eq!(histories[2]["items"][0]["toString"], "Won't Do");
    assert_eq!(histories[3]["items"][0]["fromString"], "Won't Do");
    assert!(histories[3]["items"][0].get("to").is_none());
}

#[tokio::test]
async fn a_transition_fires_issue_updated_with_its_changelog_and_can_comment() {
    let mut config = crate::common::config();
    config.webhook_retry_base_ms = 30;
    let g = crate::jira::gw_with(config).await;
    let key = new_issue(&g, "watch me move").await;
    let (rx, url) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/webhook"),
            json!({"url": url, "webhooks": [{"events": ["jira:issue_updated", "comment_created"], "jqlFilter": format!("project = {project}")}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let doc = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"starting now"}]}]});
    let t = transition(
        &g,
        &key,
        "11",
        json!({"update": {"comment": [{"add": {"body": doc}}]}}),
    )
    .await;
    assert_eq!(t.status, 204, "{:?}", t.body);
    let got = rx.wait_for(2).await;
    let updated = got
        .iter()
        .find(|d| d.body["webhookEvent"] == "jira:issue_updated")
        .unwrap();
    assert_eq!(updated.body["issue_event_type_name"], "issue_generic");
    assert_eq!(updated.body["issue"]["key"], key.as_str());
    assert_eq!(updated.body["changelog"]["items"][0]["field"], "status");
    assert_eq!(updated.body["changelog"]["items"][0]["fromString"], "To Do");
    assert_eq!(
        updated.body["changelog"]["items"][0]["toString"],
        "In Progress"
    );
    // The changelog id is the stored history's.
    let log = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}/changelog")))
        .await
        .body;
    assert_eq!(updated.body["changelog"]["id"], log["values"][0]["id"]);
    let commented = got
        .iter()
        .find(|d| d.body["webhookEvent"] == "comment_created")
        .unwrap();
    assert_eq!(commented.body["comment"]["body"], "starting now");
    let comments = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}/comment")))
        .await;
    assert_eq!(comments.body["total"], 1);
}

#[tokio::test]
async fn seeded_done_issues_are_resolved_with_a_history_that_got_them_there() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let jql = crate::jira::urlencode(&format!("project = {project} AND status = Done"));
    let r = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/search/jql?jql={jql}&fields=status,resolution,resolutiondate&expand=changelog&maxResults=5"),
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let issues = r.body["issues"].as_array().unwrap();
    assert!(!issues.is_empty());
    for i in issues {
        assert!(i["fields"]["resolution"]["name"].is_string(), "{i}");
        assert!(i["fields"]["resolutiondate"].is_string());
        let histories = i["changelog"]["histories"].as_array().unwrap();
        let last_status = histories
            .iter()
            .rev()
            .flat_map(|h| h["items"].as_array().unwrap())
            .find(|it| it["field"] == "status")
            .unwrap();
        assert_eq!(last_status["toString"], "Done");
    }
}
