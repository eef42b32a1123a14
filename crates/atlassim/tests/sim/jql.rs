//! JQL evaluated through `/search/jql`, checked against the world itself.

use std::collections::BTreeSet;

use atlassim::model::{Issue, SprintState};
use chrono::Duration;
use serde_json::json;

use crate::jira::{gw, urlencode, Gw};

/// Every key the query returns, in order, following `nextPageToken`.
pub async fn keys(g: &Gw, jql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!(
            "{}?jql={}&fields=key&maxResults=100",
            g.jira(0, "/rest/api/3/search/jql"),
            urlencode(jql)
        );
        if let Some(t) = &token {
            url.push_str(&format!("&nextPageToken={t}"));
        }
        let r = g.get(&url).await;
        assert_eq!(r.status, 200, "{jql}: {:?}", r.body);
        out.extend(
            r.body["issues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["key"].as_str().unwrap().to_string()),
        );
        match r.body["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// Keys of the first site's issues that satisfy `pred`.
pub fn expected(g: &Gw, pred: impl Fn(&Issue, &atlassim::model::Site) -> bool) -> BTreeSet<String> {
    let world = g.sim.state().world();
    let site = &world.sites[0];
    site.issues
        .values()
        .filter(|i| pred(i, site))
        .map(|i| i.key.clone())
        .collect()
}

pub fn set(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

pub async fn error(g: &Gw, jql: &str) -> serde_json::Value {
    let r = g
        .get(&format!(
            "{}?jql={}",
            g.jira(0, "/rest/api/3/search/jql"),
            urlencode(jql)
        ))
        .await;
    assert_eq!(r.status, 400, "{jql}");
    r.body["errorMessages"].clone()
}

#[tokio::test]
async fn and_binds_tighter_than_or() {
    let g = gw().await;
    let (p1, p2) = (g.project_key(0, 0), g.project_key(0, 1));
    let got = set(keys(
        &g,
        &format!("project = {p1} OR project = {p2} AND status = Done"),
    )
    .await);
    let want = expected(&g, |i, s| {
        let key = &s.project_by_id(i.project_id).unwrap().key;
        *key == p1 || (*key == p2 && i.status.name == "Done")
    });
    assert_eq!(got, want);
    let got = set(keys(
        &g,
        &format!("(project = {p1} OR project = {p2}) AND status = Done"),
    )
    .await);
    let want = expected(&g, |i, s| {
        let key = &s.project_by_id(i.project_id).unwrap().key;
        (*key == p1 || *key == p2) && i.status.name == "Done"
    });
    assert_eq!(got, want);
}

#[tokio::test]
async fn sprint_functions_and_empty() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let open = set(keys(
        &g,
        &format!("project = {project} AND sprint in openSprints()"),
    )
    .await);
    let want = expected(&g, |i, s| {
        s.project_by_id(i.project_id).unwrap().key == project
            && i.sprint_id
                .and_then(|id| s.sprint(id))
                .is_some_and(|sp| sp.state != SprintState::Closed)
    });
    assert_eq!(open, want);
    assert!(!open.is_empty());
    let closed = set(keys(
        &g,
        &format!("project = {project} AND sprint in closedSprints()"),
    )
    .await);
    assert!(closed.is_disjoint(&open) && !closed.is_empty());
    let none = set(keys(&g, &format!("project = {project} AND sprint is EMPTY")).await);
    assert_eq!(
        none,
        expected(&g, |i, s| s.project_by_id(i.project_id).unwrap().key
            == project
            && i.sprint_id.is_none())
    );
    let by_name = set(keys(&g, &format!("sprint = \"{project} Sprint 3\"")).await);
    let by_id = {
        let world = g.sim.state().world();
        world.sites[0]
            .sprints
            .iter()
            .find(|s| s.name == format!("{project} Sprint 3"))
            .unwrap()
            .id
    };
    assert_eq!(by_name, set(keys(&g, &format!("sprint = {by_id}")).await));
}

#[tokio::test]
async fn dates_absolute_and_relative() {
    let g = gw().await;
    let now = g.sim.now();
    let cut = now - Duration::days(30);
    let text = cut.format("%Y-%m-%d %H:%M").to_string();
    let got = set(keys(&g, &format!("updated >= \"{text}\"")).await);
    let minute = cut.format("%Y-%m-%d %H:%M").to_string();
    let cut_minute = chrono::NaiveDateTime::parse_from_str(&minute, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc();
    assert_eq!(got, expected(&g, |i, _| i.updated >= cut_minute));
    let slash = set(keys(&g, &format!("created < \"{}\"", cut.format("%Y/%m/%d"))).await);
    let day = chrono::NaiveDate::parse_from_str(&cut.format("%Y-%m-%d").to_string(), "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(slash, expected(&g, |i, _| i.created < day));
    // Relative values: edit one issue now, and it is the only one updated in the last 15 minutes.
    g.sim.advance_clock(3600 * 24 * 400);
    let token = g
        .sim
        .mint_token(atlassim::MintTokenRequest::default())
        .access_token;
    let key = g.some_issue_key(0).await;
    let r = g
        .send(
            "PUT",
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            &token,
            Some(json!({"fields": {"summary": "fresh"}})),
        )
        .await;
    assert_eq!(r.status, 204);
    let g2 = Gw {
        sim: g.sim,
        token,
        sites: g.sites,
    };
    for rel in ["-15m", "\"-2h\"", "-1d", "-1w", "\"-30d\""] {
        assert_eq!(
            keys(&g2, &format!("updated >= {rel}")).await,
            vec![key.clone()],
            "{rel}"
        );
    }
    assert!(keys(&g2, "updated >= startOfDay()").await.contains(&key));
    assert!(keys(&g2, "updated > now()").await.is_empty());
}

#[tokio::test]
async fn assignee_labels_text_and_categories() {
    let g = gw().await;
    let me = g.sim.snapshot()["users"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = set(keys(&g, "assignee = currentUser()").await);
    assert_eq!(
        mine,
        expected(&g, |i, _| i.assignee.as_deref() == Some(me.as_str()))
    );
    let unassigned = set(keys(&g, "assignee is EMPTY").await);
    assert_eq!(unassigned, expected(&g, |i, _| i.assignee.is_none()));
    let has = set(keys(&g, "assignee is not EMPTY").await);
    assert!(has.is_disjoint(&unassigned));
    let label = {
        let world = g.sim.state().world();
        world.sites[0]
            .issues
            .values()
            .find_map(|i| i.labels.first().cloned())
            .unwrap()
    };
    assert_eq!(
        set(keys(&g, &format!("labels = {label}")).await),
        expected(&g, |i, _| i.labels.contains(&label))
    );
    let done = set(keys(&g, "statusCategory = Done").await);
    assert_eq!(done, expected(&g, |i, _| i.status.category_key == "done"));
    assert_eq!(
        set(keys(&g, "statusCategory != Done").await),
        expected(&g, |i, _| i.status.category_key != "done")
    );
    assert_eq!(
        set(keys(&g, "NOT statusCategory = Done").await),
        expected(&g, |i, _| i.status.category_key != "done")
    );
    let types = set(keys(&g, "issuetype IN (Bug, Task)").await);
    assert_eq!(
        types,
        expected(&g, |i, _| i.issue_type.name == "Bug"
            || i.issue_type.name == "Task")
    );
    assert_eq!(
        set(keys(&g, "type NOT IN (Bug, Task)").await),
        expected(&g, |i, _| i.issue_type.name != "Bug"
            && i.issue_type.name != "Task")
    );
    // summary ~ text
    let key = g.some_issue_key(0).await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}")),
        json!({"fields": {"summary": "Zebra crossing repaint"}}),
    )
    .await;
    assert_eq!(keys(&g, "summary ~ \"zebra\"").await, vec![key.clone()]);
    assert_eq!(keys(&g, &format!("key = {key}")).await, vec![key.clone()]);
    assert_eq!(keys(&g, &format!("issuekey in ({key})")).await, vec![key]);
}

#[tokio::test]
async fn order_by_several_fields() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let got = keys(
        &g,
        &format!("project = {project} ORDER BY status ASC, created DESC"),
    )
    .await;
    let want: Vec<String> = {
        let world = g.sim.state().world();
        let mut v: Vec<&Issue> = world.sites[0]
            .issues
            .values()
            .filter(|i| world.sites[0].project_by_id(i.project_id).unwrap().key == project)
            .collect();
        v.sort_by(|a, b| {
            a.status
                .name
                .to_lowercase()
                .cmp(&b.status.name.to_lowercase())
                .then(b.created.cmp(&a.created))
                .then(a.id.cmp(&b.id))
        });
        v.iter().map(|i| i.key.clone()).collect()
    };
    assert_eq!(got, want);
    let ranked = keys(&g, &format!("project = {project} ORDER BY rank")).await;
    let want: Vec<String> = {
        let world = g.sim.state().world();
        let mut v: Vec<&Issue> = world.sites[0]
            .issues
            .values()
            .filter(|i| world.sites[0].project_by_id(i.project_id).unwrap().key == project)
            .collect();
        v.sort_by(|a, b| a.rank.cmp(&b.rank));
        v.iter().map(|i| i.key.clone()).collect()
    };
    assert_eq!(ranked, want);
}

#[tokio::test]
async fn errors_are_worded_like_jira() {
    let g = gw().await;
    assert_eq!(
        error(&g, "foo = 1").await,
        json!(["Field 'foo' does not exist or you do not have permission to view it."])
    );
    assert_eq!(
        error(&g, "project = A status = B").await,
        json!(["Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'status'. (line 1, character 13)"])
    );
    assert_eq!(
        error(&g, "updated > \"yesterday\"").await,
        json!(["Date value 'yesterday' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."])
    );
    assert_eq!(
        error(&g, "summary = x").await,
        json!(["The operator '=' is not supported by the 'summary' field."])
    );
    assert_eq!(
        error(&g, "project in fooBar()").await,
        json!(["Unable to find JQL function 'fooBar()'."])
    );
}
