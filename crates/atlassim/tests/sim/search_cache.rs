//! `/search/jql` pages through a query's kept ids: every matching issue
//! exactly once over a large site, later pages served from the page cache
//! (counted in `/__sim/stats`), snapshot semantics under writes.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::jira::{gw_with, Gw};

/// Issues per project of the large site.
const PER_PROJECT: usize = 1500;

async fn large() -> Gw {
    gw_with(atlassim::SimConfig {
        sites: 1,
        projects: 2,
        issues: PER_PROJECT,
        ..crate::common::config()
    })
    .await
}

async fn page(g: &Gw, jql: &str, token: Option<&str>, max: u64) -> Value {
    let mut body = json!({"jql": jql, "fields": ["key", "summary"], "maxResults": max});
    if let Some(t) = token {
        body["nextPageToken"] = json!(t);
    }
    let r = g.post(&g.jira(0, "/rest/api/3/search/jql"), body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Page a query to its end: the keys in order and the number of pages.
async fn page_all(g: &Gw, jql: &str, max: u64) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = page(g, jql, token.as_deref(), max).await;
        pages += 1;
        for i in body["issues"].as_array().unwrap() {
            keys.push(i["key"].as_str().unwrap().to_string());
        }
        match body["nextPageToken"].as_str() {
            Some(t) => {
                assert_eq!(body["isLast"], false);
                token = Some(t.to_string());
            }
            None => {
                assert_eq!(body["isLast"], true);
                break;
            }
        }
    }
    (keys, pages)
}

#[tokio::test]
async fn paging_a_large_site_returns_every_match_once_from_the_cache() {
    let g = large().await;
    let (a, b) = (g.project_key(0, 0), g.project_key(0, 1));
    let jql = format!("project in ({a}, {b}) ORDER BY created DESC");
    let before = g.sim.stats().search_cache;
    let (keys, pages) = page_all(&g, &jql, 100).await;
    assert_eq!(keys.len(), 2 * PER_PROJECT);
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), 2 * PER_PROJECT, "no issue twice");
    assert_eq!(pages, 2 * PER_PROJECT / 100);
    let after = g.sim.stats().search_cache;
    // One evaluation of the query; every later page sliced its kept ids.
    assert_eq!(after.misses - before.misses, 1);
    assert_eq!(after.hits - before.hits, pages as u64 - 1);
    // The same counters through the control plane.
    let stats = crate::common::sim_get(&g.sim, "/__sim/stats").await;
    assert_eq!(stats["search_cache"]["hits"], after.hits);

    // The order is the query's: the same as one big id-only page.
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/search/jql"),
            json!({"jql": jql, "fields": ["key"], "maxResults": 5000}),
        )
        .await;
    let first: Vec<String> = r.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first[..], keys[..]);
}

#[tokio::test]
async fn a_single_page_query_keeps_nothing() {
    let g = large().await;
    let a = g.project_key(0, 0);
    let before = g.sim.stats().search_cache;
    let body = page(&g, &format!("key = {a}-1"), None, 50).await;
    assert_eq!(body["isLast"], true);
    assert!(body.get("nextPageToken").is_none());
    let after = g.sim.stats().search_cache;
    assert_eq!(after.misses - before.misses, 1);
    assert_eq!(after.hits, before.hits);
}

#[tokio::test]
async fn paging_is_a_snapshot_edits_do_not_reorder_and_deletes_are_skipped() {
    let g = large().await;
    let a = g.project_key(0, 0);
    let jql = format!("project = {a} ORDER BY summary ASC, key ASC");
    let first = page(&g, &jql, None, 100).await;
    let token = first["nextPageToken"].as_str().unwrap().to_string();
    let seen: Vec<String> = first["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    // Renaming a seen issue so it would sort last does not bring it back.
    let r = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{}", seen[0])),
            json!({"fields": {"summary": "zzzz renamed during paging"}}),
        )
        .await;
    assert_eq!(r.status, 204);
    // Deleting an issue of the next page: skipped, the page comes back shorter.
    let second_full = {
        let mut t = token.clone();
        let mut out = Vec::new();
        loop {
            let p = page(&g, &jql, Some(&t), 100).await;
            out.extend(
                p["issues"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["key"].as_str().unwrap().to_string()),
            );
            match p["nextPageToken"].as_str() {
                Some(n) => t = n.to_string(),
                None => break out,
            }
        }
    };
    assert_eq!(seen.len() + second_full.len(), PER_PROJECT);
    let victim = second_full[0].clone();
    let r = g
        .send(
            "DELETE",
            &g.jira(0, &format!("/rest/api/3/issue/{victim}")),
            &g.token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let again = page(&g, &jql, Some(&token), 100).await;
    let keys: Vec<&str> = again["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 99);
    assert!(!keys.contains(&victim.as_str()));
    assert!(!keys.contains(&seen[0].as_str()), "no issue twice");
    assert_eq!(keys[0], second_full[1]);
}

#[tokio::test]
async fn a_snapshot_belongs_to_its_site() {
    let g = crate::jira::gw().await;
    let jql = "issuetype = Bug ORDER BY key ASC";
    let first = g
        .post(
            &g.jira(0, "/rest/api/3/search/jql"),
            json!({"jql": jql, "fields": ["key"], "maxResults": 5}),
        )
        .await;
    let token = first.body["nextPageToken"].as_str().unwrap().to_string();
    let before = g.sim.stats().search_cache;
    // The same caller and query on the other site: evaluated there afresh.
    let other = g
        .post(
            &g.jira(1, "/rest/api/3/search/jql"),
            json!({"jql": jql, "fields": ["key"], "maxResults": 5, "nextPageToken": token}),
        )
        .await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    let after = g.sim.stats().search_cache;
    assert_eq!((after.hits, after.misses), (before.hits, before.misses + 1));
    let site1: Vec<String> = (0..3).map(|n| g.project_key(1, n)).collect();
    for i in other.body["issues"].as_array().unwrap() {
        let key = i["key"].as_str().unwrap();
        assert!(
            site1.iter().any(|p| key.starts_with(&format!("{p}-"))),
            "{key}"
        );
    }
}
