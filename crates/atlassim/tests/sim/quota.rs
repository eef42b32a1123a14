//! The 2026 points quota (`--points-per-hour`): costs, the real headers with
//! and without `Beta-`, denial until the top of the hour on atlassim's
//! clock, per-tenant pools, `/__sim/stats` points, burst per template.

use atlassim::ratelimit::RateLimitSettings;
use chrono::{DurationRound, SecondsFormat};
use serde_json::json;

use crate::jira::{gw_with, Gw, Resp};

async fn quota(points: u64, per_tenant: bool) -> Gw {
    let mut config = crate::common::config();
    config.points_per_hour = Some(points);
    config.points_per_tenant = per_tenant;
    gw_with(config).await
}

fn h<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

async fn points_used(g: &Gw) -> u64 {
    crate::common::sim_get(&g.sim, "/__sim/stats").await["points"]["used"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn points_are_counted_as_documented() {
    let g = quota(10_000, false).await;
    let key = g.some_issue_key(0).await;
    let project = g.project_key(0, 0);
    let cost = |before: u64, after: u64| after - before;

    let p0 = points_used(&g).await;
    let r = g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}"))).await;
    assert_eq!(r.status, 200);
    let p1 = points_used(&g).await;
    // The documented example: GET /issue/ABC-123 = 2 points.
    assert_eq!(cost(p0, p1), 2);

    let jql = crate::jira::urlencode(&format!("project = {project}"));
    let r = g
        .get(&g.jira(0, &format!("/rest/api/3/search/jql?jql={jql}&maxResults=7")))
        .await;
    assert_eq!(r.body["issues"].as_array().unwrap().len(), 7);
    let p2 = points_used(&g).await;
    assert_eq!(cost(p1, p2), 8, "1 + 7 issues");

    let r = g.get(&g.jira(0, "/rest/api/3/myself")).await;
    assert_eq!(r.status, 200);
    let p3 = points_used(&g).await;
    assert_eq!(cost(p2, p3), 3, "1 + 2 for one identity object");

    let r = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            json!({"fields": {"summary": "costs one point"}}),
        )
        .await;
    assert_eq!(r.status, 204);
    let p4 = points_used(&g).await;
    assert_eq!(cost(p3, p4), 1, "a write costs 1 flat");

    // The 200 carries the quota headers; remaining reflects the objects charged.
    let r = g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}"))).await;
    assert_eq!(h(&r, "x-ratelimit-limit"), Some("10000"));
    assert_eq!(
        h(&r, "x-ratelimit-remaining"),
        Some((10_000 - p4 - 2).to_string().as_str())
    );
    for name in ["ratelimit-policy", "beta-ratelimit-policy"] {
        assert_eq!(
            h(&r, name),
            Some("\"global-app-quota\";q=10000;w=3600"),
            "{name}"
        );
    }
    let rl = h(&r, "ratelimit").unwrap();
    assert!(rl.starts_with("\"global-app-quota\";t="), "{rl}");
    assert!(!rl.contains(";r="), "r only near the limit: {rl}");
    assert_eq!(h(&r, "beta-ratelimit"), Some(rl));
    assert!(h(&r, "x-ratelimit-nearlimit").is_none());

    let stats = crate::common::sim_get(&g.sim, "/__sim/stats").await;
    assert_eq!(
        stats["points"]["pools"][0]["pool"],
        atlassim::config::DEFAULT_CLIENT_ID
    );
    assert_eq!(stats["points"]["pools"][0]["used"], p4 + 2);
    // The existing stats fields are still there.
    assert!(stats["tokens"].is_object() && stats["requests"].is_array());
}

#[tokio::test]
async fn a_client_that_ignores_the_quota_is_denied_until_the_top_of_the_hour() {
    let g = quota(30, false).await;
    let url = g.jira(0, "/rest/api/3/serverInfo");
    let mut near = None;
    let mut refused = None;
    for _ in 0..40 {
        let r = g.get(&url).await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200);
        assert_eq!(
            h(&r, "x-ratelimit-limit"),
            Some("30"),
            "the hourly quota, not a rate"
        );
        if near.is_none() && h(&r, "x-ratelimit-nearlimit") == Some("true") {
            near = Some(r);
        }
    }
    let near = near.expect("X-RateLimit-NearLimit under 20 %");
    let remaining: u64 = h(&near, "x-ratelimit-remaining").unwrap().parse().unwrap();
    assert!(remaining < 6, "{remaining}");
    let rl = h(&near, "ratelimit").unwrap();
    assert!(rl.contains(&format!(";r={remaining};")), "{rl}");

    let r = refused.expect("a quota 429");
    let now = g.sim.now();
    let top = now.duration_trunc(chrono::Duration::hours(1)).unwrap() + chrono::Duration::hours(1);
    let wait = (top - now).num_seconds();
    assert_eq!(h(&r, "ratelimit-reason"), Some("jira-quota-global-based"));
    assert_eq!(h(&r, "x-ratelimit-limit"), Some("30"));
    assert_eq!(h(&r, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        h(&r, "x-ratelimit-reset"),
        Some(top.to_rfc3339_opts(SecondsFormat::Secs, true).as_str())
    );
    let retry: i64 = h(&r, "retry-after").unwrap().parse().unwrap();
    assert!((retry - wait).abs() <= 2, "{retry} vs {wait}");
    assert_eq!(h(&r, "beta-retry-after"), h(&r, "retry-after"));
    assert!(h(&r, "ratelimit").unwrap().contains(";r=0;"));
    assert!(
        h(&r, "ratelimit-policy").is_none(),
        "no policy header at r=0"
    );
    assert_eq!(r.body["errorMessages"], json!(["Rate limit exceeded."]));

    // Everything is denied, not just that endpoint: another route, another
    // site, Confluence, a fresh token of the same app.
    let token = g
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    for u in [
        g.jira(0, "/rest/api/3/myself"),
        g.jira(1, "/rest/api/3/serverInfo"),
        g.confluence(0, "/wiki/api/v2/spaces"),
    ] {
        assert_eq!(g.send("GET", &u, &token, None).await.status, 429, "{u}");
    }
    // Still denied a little before the reset …
    let (status, _) =
        crate::common::sim_post(&g.sim, "/__sim/clock/advance", json!({"seconds": wait - 5})).await;
    assert_eq!(status, 200);
    if (g.sim.now() - now).num_seconds() < wait - 1 {
        assert_eq!(g.get(&url).await.status, 429);
    }
    // … and served again after it.
    crate::common::sim_post(&g.sim, "/__sim/clock/advance", json!({"seconds": 10})).await;
    let r = g.get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-remaining"), Some("29"));
}

#[tokio::test]
async fn per_tenant_pools_are_separate() {
    let g = quota(5, true).await;
    for _ in 0..5 {
        assert_eq!(
            g.get(&g.jira(0, "/rest/api/3/serverInfo")).await.status,
            200
        );
    }
    let r = g.get(&g.jira(0, "/rest/api/3/serverInfo")).await;
    assert_eq!(r.status, 429);
    assert_eq!(h(&r, "ratelimit-reason"), Some("jira-quota-tenant-based"));
    let other = g.get(&g.jira(1, "/rest/api/3/serverInfo")).await;
    assert_eq!(other.status, 200);
    assert_eq!(
        h(&other, "ratelimit-policy"),
        Some("\"tenant-app-quota\";q=5;w=3600")
    );
}

#[tokio::test]
async fn quota_is_off_without_the_flag() {
    let g = crate::jira::gw().await;
    let r = g.get(&g.jira(0, "/rest/api/3/serverInfo")).await;
    assert!(h(&r, "ratelimit-policy").is_none());
    assert!(h(&r, "x-ratelimit-limit").is_none());
    assert_eq!(points_used(&g).await, 0);
}

#[tokio::test]
async fn burst_buckets_are_per_endpoint_template() {
    let mut config = crate::common::config();
    config.rate_limits = true;
    config.rate_limit = RateLimitSettings {
        get_rps: 2.0,
        ..Default::default()
    };
    let g = gw_with(config).await;
    let (a, b) = (g.project_key(0, 0), g.project_key(0, 1));
    // Two different projects, one template: one bucket.
    assert_eq!(
        g.get(&g.jira(0, &format!("/rest/api/3/project/{a}")))
            .await
            .status,
        200
    );
    assert_eq!(
        g.get(&g.jira(0, &format!("/rest/api/3/project/{b}")))
            .await
            .status,
        200
    );
    let r = g.get(&g.jira(0, &format!("/rest/api/3/project/{a}"))).await;
    assert_eq!(r.status, 429);
    assert_eq!(h(&r, "ratelimit-reason"), Some("jira-burst-based"));
    // The v2 form of the same operation shares the bucket too.
    assert_eq!(
        g.get(&g.jira(0, &format!("/rest/api/2/project/{b}")))
            .await
            .status,
        429
    );
    // GET issue has its own documented rate (150/s), far above 2.
    let key = g.some_issue_key(0).await;
    for _ in 0..5 {
        assert_eq!(
            g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}")))
                .await
                .status,
            200
        );
    }
}
