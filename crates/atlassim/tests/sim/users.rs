//! Users: search, assignable search, by id, all, bulk, hidden e-mail, and
//! `PUT issue/{key}/assignee` (v3 and `/rest/api/latest`).

use serde_json::{json, Value};

use crate::jira::gw;

fn account(g: &crate::jira::Gw, n: usize) -> String {
    g.sim.snapshot()["users"][n]["account_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn display_names(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|u| u["displayName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn user_search_matches_names_and_visible_emails_only() {
    let g = gw().await;
    let r = g
        .get(&g.jira(0, "/rest/api/3/user/search?query=noah"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(display_names(&r.body), ["Noah Patel"]);
    assert_eq!(r.body[0]["emailAddress"], "noah@example.com");
    // Last names match too; so does a visible e-mail.
    let r = g
        .get(&g.jira(0, "/rest/api/3/user/search?query=Patel"))
        .await;
    assert_eq!(display_names(&r.body), ["Noah Patel"]);
    let r = g
        .get(&g.jira(0, "/rest/api/3/user/search?query=ava%40example.com"))
        .await;
    assert_eq!(display_names(&r.body), ["Ava Lindqvist"]);
    // Zoe's e-mail is private: it is neither shown nor searchable.
    let r = g.get(&g.jira(0, "/rest/api/3/user/search?query=zoe")).await;
    assert_eq!(display_names(&r.body), ["Zoe Tanaka"]);
    assert!(r.body[0].get("emailAddress").is_none(), "{}", r.body);
    let r = g
        .get(&g.jira(0, "/rest/api/3/user/search?query=zoe%40example.com"))
        .await;
    assert_eq!(r.body, json!([]));
    let r = g.get(&g.jira(0, "/rest/api/3/user/search")).await;
    assert_eq!(r.status, 400);
    assert!(r.body["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("query"));
}

#[tokio::test]
async fn each_site_has_members_of_its_own() {
    let g = gw().await;
    let all0 = g
        .get(&g.jira(0, "/rest/api/3/users/search?maxResults=100"))
        .await;
    let all1 = g
        .get(&g.jira(1, "/rest/api/3/users/search?maxResults=100"))
        .await;
    assert_eq!(all0.body.as_array().unwrap().len(), 8);
    let n0 = display_names(&all0.body);
    let n1 = display_names(&all1.body);
    let only0: Vec<&String> = n0.iter().filter(|n| !n1.contains(n)).collect();
    assert_eq!(only0.len(), 3, "{n0:?} vs {n1:?}");
    let hidden = all0
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get("emailAddress").is_none())
        .count();
    assert_eq!(
        hidden, 3,
        "Zoe and two site members keep their e-mail private"
    );
    let page = g
        .get(&g.jira(0, "/rest/api/3/users/search?startAt=6&maxResults=5"))
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn user_by_account_id_bulk_and_assignable() {
    let g = gw().await;
    let noah = account(&g, 1);
    let r = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/user?accountId={noah}&expand=groups"),
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["displayName"], "Noah Patel");
    assert_eq!(r.body["groups"]["size"], 1);
    let missing = g.get(&g.jira(0, "/rest/api/3/user?accountId=nobody")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body["errorMessages"][0].is_string());

    let mia = account(&g, 0);
    let bulk = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/user/bulk?accountId={mia}&accountId={noah}&accountId=nobody&maxResults=1"),
        ))
        .await;
    assert_eq!(bulk.status, 200);
    assert_eq!(bulk.body["total"], 2);
    assert_eq!(bulk.body["isLast"], false);
    assert_eq!(bulk.body["values"][0]["displayName"], "Mia Krystof");
    assert!(bulk.body["nextPage"]
        .as_str()
        .unwrap()
        .contains("startAt=1"));
    let none = g.get(&g.jira(0, "/rest/api/3/user/bulk")).await;
    assert_eq!(none.status, 400);

    let project = g.project_key(0, 0);
    let assignable = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/user/assignable/search?project={project}&query=oka"),
        ))
        .await;
    assert_eq!(display_names(&assignable.body), ["Liam Okafor"]);
    let need = g
        .get(&g.jira(0, "/rest/api/3/user/assignable/search?query=oka"))
        .await;
    assert_eq!(need.status, 400);
    let unknown = g
        .get(&g.jira(0, "/rest/api/3/user/assignable/search?project=NOPE"))
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn assign_unassign_and_reject_strangers() {
    let g = gw().await;
    let key = crate::transitions::new_issue(&g, "assign me").await;
    let noah = account(&g, 1);
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/assignee"));
    let r = g.put(&url, json!({ "accountId": noah })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let issue = g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}"))).await;
    assert_eq!(issue.body["fields"]["assignee"]["accountId"], noah.as_str());
    // pycontribs `jira` assigns through /rest/api/latest.
    let latest = g.jira(0, &format!("/rest/api/latest/issue/{key}/assignee"));
    assert_eq!(
        g.put(&latest, json!({ "accountId": null })).await.status,
        204
    );
    let issue = g.get(&g.jira(0, &format!("/rest/api/2/issue/{key}"))).await;
    assert_eq!(issue.body["fields"]["assignee"], Value::Null);
    let bad = g.put(&url, json!({"accountId": "nobody"})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["errors"]["assignee"].is_string());
    // A member of the other site cannot be assigned here.
    let other_site: Vec<Value> = g
        .get(&g.jira(1, "/rest/api/3/users/search"))
        .await
        .body
        .as_array()
        .unwrap()
        .clone();
    let stranger = other_site.last().unwrap()["accountId"].as_str().unwrap();
    assert_eq!(
        g.put(&url, json!({ "accountId": stranger })).await.status,
        400
    );
    let log = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}/changelog")))
        .await;
    let items: Vec<&Value> = log.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["items"][0])
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["field"], "assignee");
    assert_eq!(items[0]["toString"], "Noah Patel");
    assert_eq!(items[1]["fromString"], "Noah Patel");
}
