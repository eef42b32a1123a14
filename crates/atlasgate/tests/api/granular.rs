//! A granular-only app: atlassim's default client is registered for every
//! scope the specs name, so a consent asking only for granular scopes (no
//! classic `read:jira-work`) completes, and the connection reads an issue
//! through the proxy. Granular sets stay "all of": an operation whose
//! granular set the grant does not cover is still refused.

use atlasgate::config::Profile;
use serde_json::Value;

use crate::helpers::{TestApp, TestOptions};
use crate::proxy::{connect_with, sim_site};

/// `GET /rest/api/3/issue/{issueIdOrKey}`'s granular set in the platform
/// spec, plus identity and refresh.
const GRANULAR: &[&str] = &[
    "offline_access",
    "read:me",
    "read:issue-meta:jira",
    "read:issue-security-level:jira",
    "read:issue.vote:jira",
    "read:issue.changelog:jira",
    "read:avatar:jira",
    "read:issue:jira",
    "read:status:jira",
    "read:user:jira",
    "read:field-configuration:jira",
];

#[tokio::test]
async fn a_granular_only_consent_works_and_reads_an_issue_through_the_proxy() {
    let app = TestApp::spawn_with(TestOptions::default(), |c| {
        c.profiles.insert(
            "granular".into(),
            Profile {
                scopes: GRANULAR.iter().map(|s| s.to_string()).collect(),
            },
        );
    })
    .await;
    let (_, key) = app.create_app("granular-only").await;
    let id = connect_with(&app, &key, "team:granular", "granular", 0).await;

    let site = sim_site(&app, 0);
    let issue = format!("{}-1", site["projects"][0]["key"].as_str().unwrap());
    let resp = app
        .get(
            &format!("/v1/connections/{id}/proxy/jira/rest/api/3/issue/{issue}"),
            Some(&key),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["key"], issue.as_str());
    assert!(body["fields"]["summary"].as_str().is_some());

    // Positive control: listing projects needs read:jira-work or its own
    // (larger) granular set, which this grant lacks — Atlassian's 401 relayed.
    let resp = app
        .get(
            &format!("/v1/connections/{id}/proxy/jira/rest/api/3/project"),
            Some(&key),
        )
        .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Unauthorized; scope does not match");
}
