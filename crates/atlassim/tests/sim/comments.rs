//! Comments by id: get, edit, delete (own comments only), the list's page
//! size and order, and the `comment_*` webhooks.

use serde_json::{json, Value};

use crate::jira::{gw, gw_with, Gw};
use crate::webhooks::Receiver;

fn doc(text: &str) -> Value {
    json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":text}]}]})
}

async fn add(g: &Gw, key: &str, text: &str) -> String {
    let r = g
        .post(
            &g.jira(0, &format!("/rest/api/3/issue/{key}/comment")),
            json!({"body": doc(text)}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn get_edit_and_delete_a_comment() {
    let g = gw().await;
    let key = crate::transitions::new_issue(&g, "talk about it").await;
    let id = add(&g, &key, "first words").await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/comment/{id}"));
    let got = g.get(&url).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["body"], doc("first words"));
    g.sim.advance_clock(30);
    let edited = g.put(&url, json!({"body": doc("better words")})).await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["body"], doc("better words"));
    assert_eq!(edited.body["created"], got.body["created"]);
    assert_ne!(edited.body["updated"], got.body["updated"]);
    let v2 = g
        .get(&g.jira(0, &format!("/rest/api/2/issue/{key}/comment/{id}")))
        .await;
    assert_eq!(v2.body["body"], "better words");
    let empty = g.put(&url, json!({"body": null})).await;
    assert_eq!(empty.status, 400);
    assert_eq!(g.get(&url).await.body["body"], doc("better words"));

    let del = g.send("DELETE", &url, &g.token, None).await;
    assert_eq!(del.status, 204);
    let gone = g.get(&url).await;
    assert_eq!(gone.status, 404);
    assert!(gone.body["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains(&id));
    let missing_issue = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/NOPE-1/comment/{id}")))
        .await;
    assert_eq!(missing_issue.status, 404);
}

#[tokio::test]
async fn only_the_author_edits_or_deletes() {
    let g = gw().await;
    let key = crate::transitions::new_issue(&g, "mine").await;
    let id = add(&g, &key, "by mia").await;
    let noah = g.sim.mint_token(atlassim::MintTokenRequest {
        account_id: Some(
            g.sim.snapshot()["users"][1]["account_id"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
        ..Default::default()
    });
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/comment/{id}"));
    let r = g
        .send(
            "PUT",
            &url,
            &noah.access_token,
            Some(json!({"body": doc("by noah")})),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = g.send("DELETE", &url, &noah.access_token, None).await;
    assert_eq!(r.status, 403);
    assert_eq!(g.get(&url).await.body["body"], doc("by mia"));
}

#[tokio::test]
async fn the_list_pages_by_100_and_orders_by_created() {
    let g = gw().await;
    let key = crate::transitions::new_issue(&g, "chatty").await;
    for n in 0..103 {
        add(&g, &key, &format!("comment {n}")).await;
    }
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/comment"));
    let first = g.get(&url).await;
    assert_eq!(first.body["maxResults"], 100);
    assert_eq!(first.body["total"], 103);
    assert_eq!(first.body["comments"].as_array().unwrap().len(), 100);
    let newest = g.get(&format!("{url}?orderBy=-created&maxResults=1")).await;
    assert_eq!(newest.body["comments"][0]["body"], doc("comment 102"));
    let bad = g.get(&format!("{url}?orderBy=author")).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn comment_webhooks_carry_the_comment() {
    let mut config = crate::common::config();
    config.webhook_retry_base_ms = 30;
    let g = gw_with(config).await;
    let key = crate::transitions::new_issue(&g, "hooked").await;
    let (rx, hook) = Receiver::start(vec![]).await;
    let project = g.project_key(0, 0);
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/webhook"),
            json!({"url": hook, "webhooks": [{"events": ["comment_created", "comment_updated", "comment_deleted"], "jqlFilter": format!("project = {project}")}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let id = add(&g, &key, "hello").await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/comment/{id}"));
    g.put(&url, json!({"body": doc("hello again")})).await;
    g.send("DELETE", &url, &g.token, None).await;
    let got = rx.wait_for(3).await;
    let events: Vec<&str> = got
        .iter()
        .map(|d| d.body["webhookEvent"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["comment_created", "comment_updated", "comment_deleted"]
    );
    assert_eq!(got[0].body["comment"]["id"], id.as_str());
    assert_eq!(got[0].body["comment"]["body"], "hello");
    assert_eq!(got[1].body["comment"]["body"], "hello again");
    assert_eq!(got[2].body["issue"]["key"], key.as_str());
    assert!(got[0].body.get("changelog").is_none());
}
