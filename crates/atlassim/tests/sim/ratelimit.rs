//! Rate limits (on by flag): burst, per-issue writes, hourly quota, with headers.

use atlassim::ratelimit::RateLimitSettings;
use serde_json::json;

use crate::jira::{gw_with, Gw, Resp};

async fn limited(settings: RateLimitSettings) -> Gw {
    let mut config = crate::common::config();
    config.rate_limits = true;
    config.rate_limit = settings;
    gw_with(config).await
}

fn h<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

fn assert_429(r: &Resp, reason: &str) {
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(h(r, "ratelimit-reason"), Some(reason));
    assert_eq!(h(r, "x-ratelimit-remaining"), Some("0"));
    assert!(h(r, "retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(h(r, "x-ratelimit-limit").unwrap().parse::<u64>().is_ok());
    let reset = h(r, "x-ratelimit-reset").unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(reset).is_ok(),
        "{reset}"
    );
    assert_eq!(r.body["errorMessages"], json!(["Rate limit exceeded."]));
}

#[tokio::test]
async fn off_by_default() {
    let g = crate::jira::gw().await;
    for _ in 0..120 {
        let r = g.get(&g.jira(0, "/rest/api/3/myself")).await;
        assert_eq!(r.status, 200);
        assert!(h(&r, "x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn burst_bucket_per_endpoint_then_refills() {
    let g = limited(RateLimitSettings {
        get_rps: 2.0,
        ..Default::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..6 {
        let r = g.get(&g.jira(0, "/rest/api/3/myself")).await;
        statuses.push(r.status);
        if r.status == 429 {
            last = Some(r);
        }
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    let r = last.expect("a burst 429");
    assert_429(&r, "jira-burst-based");
    // Another endpoint has its own bucket.
    assert_eq!(
        g.get(&g.jira(0, "/rest/api/3/serverInfo")).await.status,
        200
    );
    g.sim.advance_clock(5);
    assert_eq!(g.get(&g.jira(0, "/rest/api/3/myself")).await.status, 200);
}

#[tokio::test]
async fn per_issue_writes() {
    let g = limited(RateLimitSettings {
        issue_writes_short: (3, 2),
        ..Default::default()
    })
    .await;
    let key = g.some_issue_key(0).await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}"));
    for n in 0..3 {
        let r = g
            .put(&url, json!({"fields": {"summary": format!("write {n}")}}))
            .await;
        assert_eq!(r.status, 204);
    }
    let r = g
        .put(&url, json!({"fields": {"summary": "one too many"}}))
        .await;
    assert_429(&r, "jira-per-issue-on-write");
    // Reads and other issues are not affected.
    assert_eq!(g.get(&url).await.status, 200);
    let other = format!("{}-2", g.project_key(0, 0));
    assert_eq!(
        g.put(
            &g.jira(0, &format!("/rest/api/3/issue/{other}")),
            json!({"fields": {"summary": "fine"}})
        )
        .await
        .status,
        204
    );
    g.sim.advance_clock(3);
    assert_eq!(
        g.put(&url, json!({"fields": {"summary": "later"}}))
            .await
            .status,
        204
    );
}

/// A comment is a write to its issue (the MCP server's `jira_add_comment`
/// is paced against this), counted with the issue's other writes whether
/// the issue is named by key or by id.
#[tokio::test]
async fn comments_count_as_writes_to_their_issue() {
    let g = limited(RateLimitSettings {
        issue_writes_short: (3, 2),
        ..Default::default()
    })
    .await;
    let key = g.some_issue_key(0).await;
    let issue = g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}"))).await;
    let id = issue.body["id"].as_str().unwrap().to_string();
    let body = json!({"body": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "hi"}]}]}});
    let by_key = g.jira(0, &format!("/rest/api/3/issue/{key}/comment"));
    let by_id = g.jira(0, &format!("/rest/api/3/issue/{id}/comment"));
    assert_eq!(g.post(&by_key, body.clone()).await.status, 201);
    assert_eq!(g.post(&by_id, body.clone()).await.status, 201);
    let summary = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            json!({"fields": {"summary": "third write"}}),
        )
        .await;
    assert_eq!(summary.status, 204);
    assert_429(
        &g.post(&by_id, body.clone()).await,
        "jira-per-issue-on-write",
    );
    // Reading the comments is not a write.
    assert_eq!(g.get(&by_key).await.status, 200);
    g.sim.advance_clock(3);
    assert_eq!(g.post(&by_key, body).await.status, 201);
}

#[tokio::test]
async fn hourly_quota_with_near_limit_warning() {
    let g = limited(RateLimitSettings {
        hourly_points: 10,
        ..Default::default()
    })
    .await;
    let url = g.jira(0, "/rest/api/3/serverInfo");
    let first = g.get(&url).await;
    assert_eq!(first.status, 200);
    assert_eq!(h(&first, "x-ratelimit-limit"), Some("10"));
    assert!(h(&first, "x-ratelimit-nearlimit").is_none());
    let mut near = false;
    let mut refused = None;
    for _ in 0..12 {
        let r = g.get(&url).await;
        if h(&r, "x-ratelimit-nearlimit") == Some("true") {
            near = true;
        }
        if r.status == 429 {
            refused = Some(r);
            break;
        }
    }
    assert!(near, "X-RateLimit-NearLimit before the quota ran out");
    let r = refused.expect("quota 429");
    assert_429(&r, "jira-quota-global-based");
    assert!(h(&r, "retry-after").unwrap().parse::<u64>().unwrap() <= 3600);
    // The quota resets at the top of the UTC hour.
    g.sim.advance_clock(3600);
    let token = g
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    assert_eq!(g.send("GET", &url, &token, None).await.status, 200);
}
