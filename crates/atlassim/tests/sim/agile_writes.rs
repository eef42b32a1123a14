//! Jira Software writes: the sprint lifecycle (future → active → closed),
//! moving issues to a sprint or the backlog, ranking; board, epic lists.

use serde_json::{json, Value};

use crate::jira::{gw, Gw};

async fn scrum_board(g: &Gw) -> u64 {
    let r = g.get(&g.jira(0, "/rest/agile/1.0/board?type=scrum")).await;
    r.body["values"][0]["id"].as_u64().unwrap()
}

async fn sprints(g: &Gw, board: u64, state: &str) -> Vec<Value> {
    let r = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/sprint?state={state}"),
        ))
        .await;
    r.body["values"].as_array().unwrap().clone()
}

async fn keys(g: &Gw, path: &str) -> Vec<String> {
    let r = g.get(&g.jira(0, path)).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sprint_lifecycle_goes_future_active_closed_only() {
    let g = gw().await;
    let board = scrum_board(&g).await;
    let sprint_url = |id: u64| g.jira(0, &format!("/rest/agile/1.0/sprint/{id}"));
    let created = g
        .post(
            &g.jira(0, "/rest/agile/1.0/sprint"),
            json!({"name": "Hardening", "originBoardId": board, "goal": "No new bugs"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["state"], "future");
    let id = created.body["id"].as_u64().unwrap();
    assert!(sprints(&g, board, "future")
        .await
        .iter()
        .any(|s| s["id"] == id));

    // Bad input: a precise 400, nothing stored.
    let nameless = g
        .post(
            &g.jira(0, "/rest/agile/1.0/sprint"),
            json!({"originBoardId": board}),
        )
        .await;
    assert_eq!(nameless.status, 400);
    assert_eq!(
        nameless.body["errors"]["name"],
        "The sprint name must be specified."
    );
    let kanban = g.get(&g.jira(0, "/rest/agile/1.0/board?type=kanban")).await;
    let kanban = kanban.body["values"][0]["id"].as_u64().unwrap();
    let r = g
        .post(
            &g.jira(0, "/rest/agile/1.0/sprint"),
            json!({"name": "K", "originBoardId": kanban}),
        )
        .await;
    assert_eq!(r.status, 400);

    // Starting needs dates, and the board's active sprint must close first.
    let r = g.post(&sprint_url(id), json!({"state": "active"})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let dates = json!({"state": "active", "startDate": "2026-03-02T09:00:00.000Z", "endDate": "2026-03-16T09:00:00.000Z"});
    let r = g.post(&sprint_url(id), dates.clone()).await;
    assert_eq!(r.status, 400, "one active sprint per board");
    let active = sprints(&g, board, "active").await[0].clone();
    let active_id = active["id"].as_u64().unwrap();
    let unfinished = keys(
        &g,
        &format!("/rest/agile/1.0/sprint/{active_id}/issue?jql=statusCategory%20!%3D%20Done&maxResults=50"),
    )
    .await;
    assert!(!unfinished.is_empty());
    let r = g
        .post(&sprint_url(active_id), json!({"state": "future"}))
        .await;
    assert_eq!(r.status, 400, "active never goes back to future");
    let closed = g
        .post(&sprint_url(active_id), json!({"state": "closed"}))
        .await;
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    assert_eq!(closed.body["state"], "closed");
    assert!(closed.body["completeDate"].is_string());
    // Its unfinished issues are back in the backlog.
    let backlog = keys(
        &g,
        &format!("/rest/agile/1.0/board/{board}/backlog?maxResults=50"),
    )
    .await;
    let all_backlog = {
        let mut v = backlog.clone();
        let mut start = 50;
        loop {
            let more = keys(
                &g,
                &format!("/rest/agile/1.0/board/{board}/backlog?maxResults=50&startAt={start}"),
            )
            .await;
            if more.is_empty() {
                break v;
            }
            v.extend(more);
            start += 50;
        }
    };
    for k in &unfinished {
        assert!(all_backlog.contains(k), "{k} back in the backlog");
    }
    let r = g
        .post(&sprint_url(active_id), json!({"goal": "rewrite history"}))
        .await;
    assert_eq!(r.status, 400, "a closed sprint is final");

    let started = g.post(&sprint_url(id), dates).await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    assert_eq!(started.body["state"], "active");
    assert_eq!(started.body["goal"], "No new bugs");
    // PUT is a full update: the goal left out is cleared.
    let put = g
        .put(
            &sprint_url(id),
            json!({"name": "Hardening 2", "state": "active",
                   "startDate": "2026-03-02T09:00:00.000Z", "endDate": "2026-03-20T09:00:00.000Z"}),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["name"], "Hardening 2");
    assert_eq!(put.body["goal"], "");
    let future = sprints(&g, board, "future").await;
    let future_id = future[0]["id"].as_u64().unwrap();
    let r = g
        .post(&sprint_url(future_id), json!({"state": "closed"}))
        .await;
    assert_eq!(r.status, 400, "future never jumps to closed");
}

#[tokio::test]
async fn issues_move_to_a_sprint_and_back_to_the_backlog() {
    let g = gw().await;
    let board = scrum_board(&g).await;
    let future = sprints(&g, board, "future").await[0]["id"]
        .as_u64()
        .unwrap();
    let backlog = keys(
        &g,
        &format!("/rest/agile/1.0/board/{board}/backlog?maxResults=5"),
    )
    .await;
    let pick: Vec<String> = backlog.iter().take(2).cloned().collect();
    let r = g
        .post(
            &g.jira(0, &format!("/rest/agile/1.0/sprint/{future}/issue")),
            json!({"issues": pick}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let in_sprint = keys(
        &g,
        &format!("/rest/agile/1.0/sprint/{future}/issue?maxResults=50"),
    )
    .await;
    for k in &pick {
        assert!(in_sprint.contains(k));
    }
    // The sprint field moved with it (one edit path).
    let issue = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/issue/{}?fields=customfield_10020", pick[0]),
        ))
        .await;
    assert_eq!(issue.body["fields"]["customfield_10020"][0]["id"], future);

    let r = g
        .post(
            &g.jira(0, "/rest/agile/1.0/backlog/issue"),
            json!({"issues": [pick[0]]}),
        )
        .await;
    assert_eq!(r.status, 204);
    let in_sprint = keys(
        &g,
        &format!("/rest/agile/1.0/sprint/{future}/issue?maxResults=50"),
    )
    .await;
    assert!(!in_sprint.contains(&pick[0]));
    assert!(in_sprint.contains(&pick[1]));

    let closed = sprints(&g, board, "closed").await[0]["id"]
        .as_u64()
        .unwrap();
    let r = g
        .post(
            &g.jira(0, &format!("/rest/agile/1.0/sprint/{closed}/issue")),
            json!({"issues": [pick[1]]}),
        )
        .await;
    assert_eq!(r.status, 400, "no moves into a closed sprint");
    let r = g
        .post(
            &g.jira(0, "/rest/agile/1.0/backlog/issue"),
            json!({"issues": ["NOPE-1"]}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn rank_before_and_after_reorders_and_survives_rebalancing() {
    let g = gw().await;
    let board = scrum_board(&g).await;
    let url = format!("/rest/agile/1.0/board/{board}/issue?maxResults=50&fields=summary");
    let before = keys(&g, &url).await;
    let (first, second, last) = (before[0].clone(), before[1].clone(), before[40].clone());
    let r = g
        .put(
            &g.jira(0, "/rest/agile/1.0/issue/rank"),
            json!({"issues": [last], "rankBeforeIssue": first}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let now = keys(&g, &url).await;
    assert_eq!(&now[..3], &[last.clone(), first.clone(), second.clone()]);

    // Squeeze many issues into the one gap between `first` and `second`:
    // ranks run out and get re-spaced, the order stays as asked.
    let movers: Vec<String> = before[10..20].to_vec();
    for m in &movers {
        let r = g
            .put(
                &g.jira(0, "/rest/agile/1.0/issue/rank"),
                json!({"issues": [m], "rankAfterIssue": first}),
            )
            .await;
        assert_eq!(r.status, 204);
    }
    let now = keys(&g, &url).await;
    let mut expected = vec![last.clone(), first.clone()];
    expected.extend(movers.iter().rev().cloned());
    expected.push(second.clone());
    assert_eq!(&now[..expected.len()], expected.as_slice());

    // Ranking relative to itself: 207 naming the issue.
    let r = g
        .put(
            &g.jira(0, "/rest/agile/1.0/issue/rank"),
            json!({"issues": [first], "rankBeforeIssue": first}),
        )
        .await;
    assert_eq!(r.status, 207);
    assert_eq!(r.body["entries"][0]["issueKey"], first.as_str());
    assert_eq!(r.body["entries"][0]["status"], 400);
    let r = g
        .put(
            &g.jira(0, "/rest/agile/1.0/issue/rank"),
            json!({"issues": [first]}),
        )
        .await;
    assert_eq!(r.status, 400, "an anchor is required");
}

#[tokio::test]
async fn board_issues_epics_and_epic_issues() {
    let g = gw().await;
    let board = scrum_board(&g).await;
    let project = g.project_key(0, 0);
    let all = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/issue?maxResults=1"),
        ))
        .await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["total"], 60, "every issue of the board's project");
    assert!(all.body["issues"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with(&project));
    let bugs = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/issue?jql=issuetype%20%3D%20Bug&maxResults=50"),
        ))
        .await;
    assert!(bugs.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["fields"]["issuetype"]["name"] == "Bug"));

    let epics = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/board/{board}/epic")))
        .await;
    assert_eq!(epics.status, 200);
    let values = epics.body["values"].as_array().unwrap();
    assert_eq!(values.len(), 3, "every 20th of 60 issues is an epic");
    let epic = values[0]["key"].as_str().unwrap().to_string();
    let children = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/epic/{epic}/issue?fields=parent&maxResults=50"),
        ))
        .await;
    assert_eq!(children.status, 200);
    let issues = children.body["issues"].as_array().unwrap();
    assert!(!issues.is_empty());
    assert!(issues
        .iter()
        .all(|i| i["fields"]["parent"]["key"] == epic.as_str()));
    let not_epic = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/epic/{project}-1/issue")))
        .await;
    assert_eq!(not_epic.status, 404);
}
