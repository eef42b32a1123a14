//! Confluence v2 spaces and pages, cursor pagination and both URL forms.

use serde_json::Value;

use crate::jira::gw;

#[tokio::test]
async fn spaces_and_pages_page_with_cursor_and_link_header() {
    let g = gw().await;
    for prefix in ["/wiki/api/v2", "/api/v2"] {
        let r = g.get(&g.confluence(0, &format!("{prefix}/spaces"))).await;
        assert_eq!(r.status, 200, "{prefix}: {:?}", r.body);
        assert!(!r.body["results"].as_array().unwrap().is_empty());
        assert!(r.body["_links"]["base"]
            .as_str()
            .unwrap()
            .ends_with("/wiki"));
    }
    // Walk all pages one at a time with the Link header.
    let all = g
        .get(&g.confluence(0, "/wiki/api/v2/pages?limit=250"))
        .await;
    let total = all.body["results"].as_array().unwrap().len();
    assert!(total > 1, "seeded pages");
    let mut url = g.confluence(0, "/wiki/api/v2/pages?limit=1");
    let mut seen: Vec<String> = Vec::new();
    loop {
        let r = g.get(&url).await;
        assert_eq!(r.status, 200);
        for p in r.body["results"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_string());
        }
        match r.headers.get("link") {
            Some(link) => {
                let link = link.to_str().unwrap();
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                let rel = link.trim_start_matches('<').split('>').next().unwrap();
                assert!(rel.starts_with("/wiki/api/v2/pages?"), "{rel}");
                assert_eq!(r.body["_links"]["next"], rel);
                url = format!("{}/ex/confluence/{}{}", g.sim.api_url(), g.sites[0], rel);
            }
            None => {
                assert!(r.body["_links"].get("next").is_none());
                break;
            }
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(seen.len(), total);
    assert_eq!(dedup.len(), total);
}

#[tokio::test]
async fn space_pages_and_single_page_with_body() {
    let g = gw().await;
    let spaces = g.get(&g.confluence(0, "/wiki/api/v2/spaces")).await;
    let space: &Value = &spaces.body["results"][0];
    let id = space["id"].as_str().unwrap();
    let one = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/spaces/{id}")))
        .await;
    assert_eq!(one.body["key"], space["key"]);
    let pages = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/spaces/{id}/pages")))
        .await;
    let first = &pages.body["results"][0];
    assert_eq!(first["spaceId"], id);
    let pid = first["id"].as_str().unwrap();
    let page = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/pages/{pid}?body-format=storage")))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["body"]["storage"]["representation"], "storage");
    assert!(page.body["version"]["number"].as_u64().unwrap() >= 1);
    let missing = g
        .get(&g.confluence(0, "/wiki/api/v2/pages/999999999"))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["errors"][0]["status"], 404);
}

#[tokio::test]
async fn jira_only_site_has_no_confluence() {
    let g = gw().await;
    let r = g.get(&g.confluence(1, "/wiki/api/v2/spaces")).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn confluence_v2_needs_granular_scopes() {
    let g = gw().await;
    let classic = g.mint(&[
        "read:confluence-space.summary",
        "read:confluence-content.all",
    ]);
    let r = g
        .send(
            "GET",
            &g.confluence(0, "/wiki/api/v2/spaces"),
            &classic,
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["message"], "Unauthorized; scope does not match");
}
