//! Gateway hygiene: the token before routing, Jira's 404 for paths no spec
//! has, 501 naming an operation the specs have but atlassim does not
//! emulate, `/rest/api/latest` served as v2.

use serde_json::json;

use crate::common::http;
use crate::jira::gw;

#[tokio::test]
async fn the_token_is_checked_before_routing() {
    let g = gw().await;
    for path in [
        "/rest/api/3/no/such/thing",
        "/rest/api/3/dashboard",
        "/rest/api/3/issue/X-1/transitions",
    ] {
        let r = http().get(g.jira(0, path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = g.send("GET", &g.jira(0, path), "not-a-token", None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.body, json!({"code": 401, "message": "Unauthorized"}));
    }
    // A real token on a site outside the grant is the site 404, not a route 404.
    let r = g
        .get(&format!(
            "{}/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/no/such/thing",
            g.sim.api_url()
        ))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["errorMessages"][0], "Site temporarily unavailable");
}

#[tokio::test]
async fn a_path_no_spec_has_is_jiras_404_error_collection() {
    let g = gw().await;
    let r = g.get(&g.jira(0, "/rest/api/3/no/such/thing")).await;
    assert_eq!(r.status, 404);
    assert!(r.body["errorMessages"][0].is_string(), "{:?}", r.body);
    assert_eq!(r.body["errors"], json!({}));
    let r = g
        .send("PATCH", &g.jira(0, "/rest/api/3/myself"), &g.token, None)
        .await;
    assert_eq!(r.status, 404, "a method the spec lacks for the path");
}

#[tokio::test]
async fn an_operation_the_specs_have_but_atlassim_lacks_is_501_naming_it() {
    let g = gw().await;
    let r = g.get(&g.jira(0, "/rest/api/3/dashboard")).await;
    assert_eq!(r.status, 501);
    let msg = r.body["errorMessages"][0].as_str().unwrap();
    assert!(msg.contains("getAllDashboards"), "{msg}");
    assert!(msg.contains("GET /rest/api/3/dashboard"), "{msg}");
    // Served path, other method: DELETE /user is `removeUser`.
    let r = g
        .send(
            "DELETE",
            &g.jira(0, "/rest/api/3/user?accountId=x"),
            &g.token,
            None,
        )
        .await;
    assert_eq!(r.status, 501);
    assert!(r.body["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("removeUser"));
    // v2 and latest forms name the v3 operation; agile and Confluence too.
    let r = g
        .get(&g.jira(0, "/rest/api/latest/issue/X-1/worklog"))
        .await;
    assert_eq!(r.status, 501);
    assert!(r.body["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("getIssueWorklog"));
    let r = g
        .get(&g.jira(0, "/rest/agile/1.0/board/1/quickfilter"))
        .await;
    assert_eq!(r.status, 501);
    assert!(r.body["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("getAllQuickFilters"));
    let r = g.get(&g.confluence(0, "/wiki/api/v2/blogposts")).await;
    assert_eq!(r.status, 501);
    assert!(r.body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("getBlogPosts"));
}

#[tokio::test]
async fn rest_api_latest_serves_as_v2() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    let latest = g
        .get(&g.jira(0, &format!("/rest/api/latest/issue/{key}")))
        .await;
    let v2 = g.get(&g.jira(0, &format!("/rest/api/2/issue/{key}"))).await;
    assert_eq!(latest.status, 200);
    assert_eq!(latest.body, v2.body);
    let info = g.get(&g.jira(0, "/rest/api/latest/serverInfo")).await;
    assert_eq!(info.body["deploymentType"], "Cloud");
}
