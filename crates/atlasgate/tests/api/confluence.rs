//! Typed Confluence operations: spaces and pages, cursor pagination followed.

use atlasgate::atlassian::{ApiRequest, Product};
use atlasgate::ids::ConnectionId;
use serde_json::Value;

use crate::helpers::{assert_problem, TestApp};
use crate::proxy::{connected, sim_site};

#[tokio::test]
async fn spaces_and_pages_with_every_cursor_followed() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "atlassian", 0).await;
    let site = sim_site(&app, 0);
    let site_url = site["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();

    let spaces = app
        .get_ok(&format!("/v1/connections/{id}/confluence/spaces"), &key)
        .await;
    let mut got: Vec<&str> = spaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want: Vec<&str> = site["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(
        spaces["items"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&site_url),
        "{spaces}"
    );

    let mut total = 0;
    for space in &want {
        let pages = app
            .get_ok(
                &format!("/v1/connections/{id}/confluence/pages?space={space}"),
                &key,
            )
            .await;
        let items = pages["items"].as_array().unwrap();
        assert!(!items.is_empty());
        for p in items {
            assert!(p["id"].is_string() && p["title"].is_string(), "{p}");
            assert!(p["version"].as_i64().unwrap() >= 1, "{p}");
            assert!(p["status"].is_string() && p["updated"].is_string(), "{p}");
            assert!(
                p["url"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{site_url}/wiki")),
                "{p}"
            );
        }
        total += items.len();
    }
    assert_eq!(total as u64, site["page_count"].as_u64().unwrap());

    // The same walk in small pages follows `_links.next` to the same end.
    let space_id = spaces["items"][0]["id"].as_str().unwrap().to_string();
    let space_key = spaces["items"][0]["key"].as_str().unwrap().to_string();
    let first = ApiRequest::get(
        Product::Confluence,
        format!("wiki/api/v2/spaces/{space_id}/pages"),
    )
    .query(&[("limit", "3")]);
    let (all, base) = atlasgate::confluence::all_results(
        &app.state.atlassian,
        None,
        &ConnectionId::new(&id),
        first,
    )
    .await
    .unwrap();
    assert!(base.unwrap().starts_with(&site_url));
    let resp = app
        .get(
            &format!("/v1/connections/{id}/confluence/pages?space={space_key}"),
            Some(&key),
        )
        .await;
    let pages: Value = resp.json().await.unwrap();
    assert!(all.len() > 3);
    assert_eq!(all.len(), pages["items"].as_array().unwrap().len());

    // An unknown space is a 404 problem.
    let resp = app
        .get(
            &format!("/v1/connections/{id}/confluence/pages?space=NOPE"),
            Some(&key),
        )
        .await;
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn a_jira_only_grant_cannot_read_confluence() {
    let app = TestApp::spawn().await;
    let (key, id) = connected(&app, "jira", 0).await;
    let resp = app
        .get(
            &format!("/v1/connections/{id}/confluence/spaces"),
            Some(&key),
        )
        .await;
    let status = resp.status().as_u16();
    assert!(status == 403 || status == 404, "{status}");
    assert_problem(resp, status).await;
}
