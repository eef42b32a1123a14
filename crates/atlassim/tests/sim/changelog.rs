//! The stored changelog (`/changelog`, `/changelog/bulkfetch`,
//! `expand=changelog`) and the JQL that reads it (`WAS`, `CHANGED`) or the
//! fields it keeps (`resolution`, `resolved`, `text`, `parent`).

use atlassim::model::Issue;
use serde_json::json;

use crate::jira::{gw, Gw};
use crate::jql::{error, expected, keys, set};
use crate::transitions::{new_issue, transition};

fn status_path(i: &Issue) -> Vec<String> {
    let mut out = Vec::new();
    for h in &i.changelog {
        for it in h.items.iter().filter(|it| it.field_id == "status") {
            if out.is_empty() {
                out.push(it.from_string.clone().unwrap());
            }
            out.push(it.to_string.clone().unwrap());
        }
    }
    if out.is_empty() {
        out.push(i.status.name.clone());
    }
    out
}

#[tokio::test]
async fn seeded_histories_page_and_match_the_issue() {
    let g = gw().await;
    let (key, n) = {
        let world = g.sim.state().world();
        let i = world.sites[0]
            .issues
            .values()
            .max_by_key(|i| i.changelog.len())
            .unwrap();
        (i.key.clone(), i.changelog.len())
    };
    assert!(n >= 2, "some seeded issue walked the workflow");
    let url = g.jira(
        0,
        &format!("/rest/api/3/issue/{key}/changelog?maxResults=1"),
    );
    let first = g.get(&url).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["total"], n);
    assert_eq!(first.body["isLast"], false);
    assert!(first.body["nextPage"]
        .as_str()
        .unwrap()
        .contains("startAt=1"));
    let all = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}/changelog")))
        .await;
    assert_eq!(all.body["values"].as_array().unwrap().len(), n);
    assert_eq!(all.body["values"][0], first.body["values"][0]);
    let issue = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}?expand=changelog")))
        .await;
    assert_eq!(issue.body["changelog"]["total"], n);
    assert_eq!(
        issue.body["changelog"]["histories"], all.body["values"],
        "expand=changelog embeds the same histories"
    );
    // Every seeded walk starts in To Do and ends where the issue is.
    let world = g.sim.state().world();
    for i in world.sites[0].issues.values() {
        let path = status_path(i);
        assert!(path[0] == "To Do" || i.changelog.is_empty(), "{path:?}");
        assert_eq!(path.last().unwrap(), &i.status.name);
        let times: Vec<_> = i.changelog.iter().map(|h| h.created).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|t| *t >= i.created && *t <= i.updated));
    }
}

#[tokio::test]
async fn edits_record_history_and_no_op_edits_do_not() {
    let g = gw().await;
    let key = new_issue(&g, "history of edits").await;
    let issue = g.jira(0, &format!("/rest/api/3/issue/{key}"));
    let log = g.jira(0, &format!("/rest/api/3/issue/{key}/changelog"));
    assert_eq!(g.get(&log).await.body["total"], 0);
    g.put(
        &issue,
        json!({"fields": {"summary": "renamed", "labels": ["a"]}}),
    )
    .await;
    g.put(&issue, json!({"fields": {"summary": "renamed"}}))
        .await;
    let body = g.get(&log).await.body;
    assert_eq!(body["total"], 1);
    let fields: Vec<&str> = body["values"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["summary", "labels"]);
    assert_eq!(
        body["values"][0]["items"][0]["fromString"],
        "history of edits"
    );
    assert_eq!(
        body["values"][0]["author"]["accountId"],
        g.sim.snapshot()["users"][0]["account_id"]
    );
}

#[tokio::test]
async fn bulkfetch_filters_fields_and_pages_with_a_token() {
    let g = gw().await;
    let a = new_issue(&g, "bulk a").await;
    let b = new_issue(&g, "bulk b").await;
    for k in [&a, &b] {
        transition(&g, k, "11", json!({})).await;
        g.put(
            &g.jira(0, &format!("/rest/api/3/issue/{k}")),
            json!({"fields": {"summary": format!("{k} renamed")}}),
        )
        .await;
        transition(&g, k, "51", json!({})).await;
    }
    let url = g.jira(0, "/rest/api/3/changelog/bulkfetch");
    let r = g
        .post(
            &url,
            json!({"issueIdsOrKeys": [a, b, "NOPE-1"], "fieldIds": ["status"], "maxResults": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let logs = r.body["issueChangeLogs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["changeHistories"].as_array().unwrap().len(), 2);
    assert_eq!(logs[1]["changeHistories"].as_array().unwrap().len(), 1);
    for l in logs {
        for h in l["changeHistories"].as_array().unwrap() {
            for it in h["items"].as_array().unwrap() {
                assert_eq!(it["fieldId"], "status");
            }
        }
    }
    let token = r.body["nextPageToken"].as_str().unwrap();
    let rest = g
        .post(
            &url,
            json!({"issueIdsOrKeys": [a, b], "fieldIds": ["status"], "nextPageToken": token}),
        )
        .await;
    assert_eq!(rest.body["issueChangeLogs"].as_array().unwrap().len(), 1);
    assert_eq!(
        rest.body["issueChangeLogs"][0]["changeHistories"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(rest.body.get("nextPageToken").is_none());
    let bad = g.post(&url, json!({"issueIdsOrKeys": []})).await;
    assert_eq!(bad.status, 400);
}

async fn history_keys(g: &Gw, clause: &str) -> std::collections::BTreeSet<String> {
    let p = g.project_key(0, 0);
    set(keys(g, &format!("project = {p} AND {clause}")).await)
}

fn project_issues(g: &Gw, pred: impl Fn(&Issue) -> bool) -> std::collections::BTreeSet<String> {
    let p = g.project_key(0, 0);
    expected(g, |i, site| {
        site.project_by_id(i.project_id).is_some_and(|x| x.key == p) && pred(i)
    })
}

#[tokio::test]
async fn was_and_changed_read_the_history() {
    let g = gw().await;
    let was_in_progress = history_keys(&g, "status WAS \"In Progress\"").await;
    let want = project_issues(&g, |i| status_path(i).iter().any(|s| s == "In Progress"));
    assert!(!want.is_empty());
    assert_eq!(was_in_progress, want);
    let not = history_keys(&g, "status WAS NOT \"In Progress\"").await;
    assert!(not.is_disjoint(&was_in_progress));
    let was_in = history_keys(&g, "status WAS IN (\"In Review\", Done)").await;
    let want = project_issues(&g, |i| {
        status_path(i)
            .iter()
            .any(|s| s == "In Review" || s == "Done")
    });
    assert_eq!(was_in, want);

    let changed = history_keys(&g, "status CHANGED FROM \"In Progress\" TO Done").await;
    let want = project_issues(&g, |i| {
        status_path(i)
            .windows(2)
            .any(|w| w[0] == "In Progress" && w[1] == "Done")
    });
    assert_eq!(changed, want);
    let any_change = history_keys(&g, "status CHANGED").await;
    assert!(any_change.is_superset(&changed));

    // A change made now, by me: found with BY currentUser() AFTER, not BEFORE.
    let key = new_issue(&g, "changed just now").await;
    let before_change = history_keys(&g, "status CHANGED BY currentUser() AFTER -1h").await;
    assert!(!before_change.contains(&key));
    g.sim.advance_clock(5);
    transition(&g, &key, "11", json!({})).await;
    let mine = history_keys(&g, "status CHANGED BY currentUser() AFTER -1h").await;
    assert!(mine.contains(&key), "{mine:?}");
    let old = history_keys(&g, "status CHANGED BEFORE -1h").await;
    assert!(!old.contains(&key));
    let today = history_keys(&g, "status CHANGED ON startOfDay() TO \"In Progress\"").await;
    assert!(today.contains(&key));
    let during = history_keys(&g, "status CHANGED DURING (-1h, now())").await;
    assert!(during.contains(&key));
    let me = g.sim.snapshot()["users"][0]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let by_mail = history_keys(&g, &format!("status WAS \"In Progress\" BY \"{me}\"")).await;
    assert!(by_mail.contains(&key));

    // assignee history: EMPTY at creation, then someone.
    let noah = g.sim.snapshot()["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}/assignee")),
        json!({ "accountId": noah }),
    )
    .await;
    assert!(history_keys(&g, "assignee WAS EMPTY").await.contains(&key));
    assert!(
        history_keys(&g, "assignee CHANGED FROM EMPTY TO \"Noah Patel\"")
            .await
            .contains(&key)
    );
    assert!(history_keys(&g, &format!("assignee WAS {noah}"))
        .await
        .contains(&key));
}

#[tokio::test]
async fn history_clause_errors_are_jira_shaped() {
    let g = gw().await;
    let e = error(&g, "summary WAS x").await;
    assert_eq!(
        e[0],
        "The operator 'was' is not supported by the 'summary' field."
    );
    let e = error(&g, "status WAS Done FROM x").await;
    assert!(
        e[0].as_str()
            .unwrap()
            .starts_with("Error in the JQL Query: "),
        "{e}"
    );
    let e = error(&g, "status CHANGED AFTER \"next tuesday\"").await;
    assert!(e[0].as_str().unwrap().contains("AFTER"), "{e}");
    let e = error(&g, "status WAS Nonsense").await;
    assert_eq!(
        e[0],
        "The value 'Nonsense' does not exist for the field 'status'."
    );
}

#[tokio::test]
async fn resolution_resolved_text_labels_and_parent() {
    let g = gw().await;
    let unresolved = history_keys(&g, "resolution = Unresolved").await;
    assert_eq!(unresolved, project_issues(&g, |i| i.resolution.is_none()));
    assert_eq!(unresolved, history_keys(&g, "resolution IS EMPTY").await);
    let wont = history_keys(&g, "resolution = \"Won't Do\"").await;
    assert_eq!(
        wont,
        project_issues(&g, |i| i.resolution.as_deref() == Some("Won't Do"))
    );
    let done = history_keys(&g, "resolution = Done").await;
    assert!(done.is_disjoint(&wont));
    let resolved = history_keys(&g, "resolved >= -3650d").await;
    assert_eq!(
        resolved,
        project_issues(&g, |i| i.resolution_date.is_some())
    );
    assert!(error(&g, "resolution = Maybe").await[0]
        .as_str()
        .unwrap()
        .contains("Maybe"));
    // Ordered by resolution date, resolved issues first.
    let ordered = keys(
        &g,
        &format!("project = {} ORDER BY resolved ASC", g.project_key(0, 0)),
    )
    .await;
    let first_unresolved = ordered.iter().position(|k| unresolved.contains(k)).unwrap();
    assert!(ordered[..first_unresolved]
        .iter()
        .all(|k| resolved.contains(k)));

    // text ~ searches comments too.
    let key = new_issue(&g, "quiet summary").await;
    g.post(
        &g.jira(0, &format!("/rest/api/3/issue/{key}/comment")),
        json!({"body": {"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"zanzibar mentioned"}]}]}}),
    )
    .await;
    assert_eq!(
        history_keys(&g, "text ~ zanzibar").await,
        [key.clone()].into()
    );
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}")),
        json!({"fields": {"labels": ["zed"]}}),
    )
    .await;
    assert_eq!(history_keys(&g, "labels = zed").await, [key.clone()].into());
    assert_eq!(
        history_keys(&g, "labels IN (zed, nothing)").await,
        [key.clone()].into()
    );
    let reporter = history_keys(&g, "reporter = currentUser() AND labels = zed").await;
    assert_eq!(reporter, [key.clone()].into());

    // No seeded issue has a parent; an unknown parent key is Jira's error.
    assert!(history_keys(&g, &format!("parent = {key}"))
        .await
        .is_empty());
    assert!(error(&g, "parent = NOPE-1").await[0]
        .as_str()
        .unwrap()
        .contains("NOPE-1"));
}
