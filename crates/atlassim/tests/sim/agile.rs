//! Jira Software agile 1.0: boards, configuration, sprints, backlog, estimation.

use serde_json::{json, Value};

use crate::jira::{gw, urlencode};

#[tokio::test]
async fn boards_filter_by_project_and_type() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let r = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board?projectKeyOrId={project}"),
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let boards = r.body["values"].as_array().unwrap();
    assert!(!boards.is_empty());
    assert!(boards
        .iter()
        .all(|b| b["location"]["projectKey"] == project.as_str()));
    assert_eq!(r.body["total"].as_u64().unwrap() as usize, boards.len());
    let scrum = g.get(&g.jira(0, "/rest/agile/1.0/board?type=scrum")).await;
    assert!(scrum.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["type"] == "scrum"));
    let paged = g
        .get(&g.jira(0, "/rest/agile/1.0/board?maxResults=1"))
        .await;
    assert_eq!(paged.body["values"].as_array().unwrap().len(), 1);
    assert_eq!(paged.body["isLast"], false);
}

async fn board_ids(g: &crate::jira::Gw, site: usize, kind: &str) -> Vec<u64> {
    let r = g
        .get(&g.jira(site, &format!("/rest/agile/1.0/board?type={kind}")))
        .await;
    r.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn configuration_names_the_estimation_field_per_site() {
    let g = gw().await;
    for site in 0..2 {
        let sp = g.sim.snapshot()["sites"][site]["story_points_field"].clone();
        let board = board_ids(&g, site, "scrum").await[0];
        let r = g
            .get(&g.jira(
                site,
                &format!("/rest/agile/1.0/board/{board}/configuration"),
            ))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["estimation"],
            json!({"type": "field", "field": {"fieldId": sp["id"], "displayName": sp["name"]}})
        );
        assert!(r.body["ranking"]["rankCustomFieldId"].is_i64());
        assert!(!r.body["columnConfig"]["columns"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let kanban = board_ids(&g, 0, "kanban").await[0];
    let r = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/board/{kanban}/configuration")))
        .await;
    assert_eq!(r.body["estimation"], json!({"type": "issueCount"}));
}

#[tokio::test]
async fn sprints_are_ordered_closed_active_future_and_kanban_has_none() {
    let g = gw().await;
    let board = board_ids(&g, 0, "scrum").await[0];
    let r = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/board/{board}/sprint")))
        .await;
    let states: Vec<&str> = r.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["closed", "closed", "active", "future", "future"]
    );
    let r = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/sprint?state=active,future"),
        ))
        .await;
    let states: Vec<&str> = r.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["active", "future", "future"]);
    let active = r.body["values"][0]["id"].as_u64().unwrap();
    let one = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/sprint/{active}")))
        .await;
    assert_eq!(one.body["state"], "active");
    assert_eq!(one.body["originBoardId"], board);
    let kanban = board_ids(&g, 0, "kanban").await[0];
    let r = g
        .get(&g.jira(0, &format!("/rest/agile/1.0/board/{kanban}/sprint")))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errorMessages"],
        json!(["The board does not support sprints"])
    );
}

fn ranks(body: &Value, rank_field: &str) -> Vec<String> {
    body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["fields"][rank_field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sprint_issues_and_backlog_come_in_rank_order() {
    let g = gw().await;
    let board = board_ids(&g, 0, "scrum").await[0];
    let sprints = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/sprint?state=active"),
        ))
        .await;
    let active = sprints.body["values"][0]["id"].as_u64().unwrap();
    let r = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/sprint/{active}/issue?maxResults=50"),
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rank_field = "customfield_10019";
    let got = ranks(&r.body, rank_field);
    assert!(!got.is_empty());
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(r.body["total"].as_u64().unwrap() as usize, got.len());
    let sprint_field = "customfield_10020";
    assert!(r.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["fields"][sprint_field][0]["id"] == active));

    let backlog = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/board/{board}/backlog?maxResults=50"),
        ))
        .await;
    assert_eq!(backlog.status, 200);
    let got = ranks(&backlog.body, rank_field);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    for i in backlog.body["issues"].as_array().unwrap() {
        assert_ne!(i["fields"]["status"]["statusCategory"]["key"], "done");
        let state = i["fields"][sprint_field][0]["state"].as_str();
        assert!(state.is_none() || state == Some("closed"));
    }
    // `jql` narrows.
    let jql = urlencode("status = \"To Do\"");
    let narrowed = g
        .get(&g.jira(
            0,
            &format!("/rest/agile/1.0/sprint/{active}/issue?jql={jql}"),
        ))
        .await;
    assert!(narrowed.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["fields"]["status"]["name"] == "To Do"));
}

#[tokio::test]
async fn estimation_write_and_read_back_on_both_sites() {
    let g = gw().await;
    for site in 0..2 {
        let sp_id = g.sim.snapshot()["sites"][site]["story_points_field"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let board = board_ids(&g, site, "scrum").await[0];
        let key = g.some_issue_key(site).await;
        let url = g.jira(
            site,
            &format!("/rest/agile/1.0/issue/{key}/estimation?boardId={board}"),
        );
        let r = g.put(&url, json!({"value": "8.0"})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body, json!({"fieldId": sp_id, "value": 8.0}));
        let r = g.get(&url).await;
        assert_eq!(r.body, json!({"fieldId": sp_id, "value": 8.0}));
        let issue = g
            .get(&g.jira(site, &format!("/rest/api/3/issue/{key}")))
            .await;
        assert_eq!(issue.body["fields"][&sp_id], 8.0);
    }
    let ids: Vec<String> = (0..2)
        .map(|s| {
            g.sim.snapshot()["sites"][s]["story_points_field"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_ne!(
        ids[0], ids[1],
        "seeded sites use different story points fields"
    );
}

#[tokio::test]
async fn agile_needs_granular_scopes() {
    let g = gw().await;
    let classic = g.mint(&["read:jira-work", "write:jira-work"]);
    let r = g
        .send("GET", &g.jira(0, "/rest/agile/1.0/board"), &classic, None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["message"], "Unauthorized; scope does not match");
    let granular = g.mint(&["read:board-scope:jira-software", "read:project:jira"]);
    let r = g
        .send("GET", &g.jira(0, "/rest/agile/1.0/board"), &granular, None)
        .await;
    assert_eq!(r.status, 200);
}
