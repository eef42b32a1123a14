//! The issue model's breadth: parent, epics, sub-tasks, due date,
//! components, fix versions, issue and remote links, `update` operations,
//! requested-but-empty fields, `renderedFields`, create/edit metadata, the
//! reference lists and `search/approximate-count`.

use serde_json::{json, Value};

use crate::jira::{gw, Gw};

async fn issue(g: &Gw, key: &str, query: &str) -> Value {
    let r = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}{query}")))
        .await;
    assert_eq!(r.status, 200, "{key}: {:?}", r.body);
    r.body
}

async fn search(g: &Gw, jql: &str, fields: &[&str]) -> Vec<Value> {
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/search/jql"),
            json!({"jql": jql, "fields": fields, "maxResults": 100}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["issues"].as_array().unwrap().clone()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn seeded_hierarchy_and_links_agree_from_both_ends() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let issues = search(
        &g,
        &format!("project = {project}"),
        &["issuetype", "parent", "subtasks", "issuelinks"],
    )
    .await;
    let by_key = |k: &str| {
        issues
            .iter()
            .find(|i| i["key"] == k)
            .unwrap_or_else(|| panic!("{k} in the project"))
    };
    let kinds: Vec<&str> = issues
        .iter()
        .map(|i| i["fields"]["issuetype"]["name"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"Epic") && kinds.contains(&"Subtask"));
    let mut under_epic = 0;
    for i in &issues {
        let f = &i["fields"];
        match f["issuetype"]["name"].as_str().unwrap() {
            "Subtask" => {
                let parent = by_key(
                    f["parent"]["key"]
                        .as_str()
                        .expect("a sub-task has a parent"),
                );
                assert_ne!(parent["fields"]["issuetype"]["name"], "Epic");
                assert!(parent["fields"]["subtasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["key"] == i["key"]));
            }
            "Epic" => assert!(f["parent"].is_null()),
            _ => {
                if let Some(p) = f["parent"]["key"].as_str() {
                    assert_eq!(by_key(p)["fields"]["issuetype"]["name"], "Epic");
                    under_epic += 1;
                }
            }
        }
        for link in f["issuelinks"].as_array().unwrap() {
            // The other end shows the same link from the opposite side.
            let (slot, mirror) = if link["outwardIssue"].is_object() {
                ("outwardIssue", "inwardIssue")
            } else {
                ("inwardIssue", "outwardIssue")
            };
            let other = by_key(link[slot]["key"].as_str().unwrap());
            assert!(
                other["fields"]["issuelinks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["id"] == link["id"] && l[mirror]["key"] == i["key"]),
                "link {} mirrored",
                link["id"]
            );
        }
    }
    assert!(under_epic > 0, "some issues sit under an epic");
}

#[tokio::test]
async fn requested_but_empty_fields_are_null_and_unknown_ones_absent() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    g.put(
        &g.jira(0, &format!("/rest/api/3/issue/{key}")),
        json!({"fields": {"duedate": null, "components": []}}),
    )
    .await;
    let v = issue(
        &g,
        &key,
        "?fields=duedate,customfield_19999,components,resolution,nosuchfield",
    )
    .await;
    let f = v["fields"].as_object().unwrap();
    assert_eq!(f.get("duedate"), Some(&Value::Null));
    assert_eq!(f.get("customfield_19999"), Some(&Value::Null));
    assert_eq!(f.get("components"), Some(&json!([])));
    assert!(f.contains_key("resolution"));
    assert!(!f.contains_key("nosuchfield"));
    assert!(!f.contains_key("summary"), "only what was asked for");
}

#[tokio::test]
async fn update_operations_add_set_remove_components_labels_and_comments() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}"));
    let r = g
        .put(
            &url,
            json!({"update": {"components": [{"set": [{"name": "Backend"}]}, {"add": {"name": "API"}}],
                              "labels": [{"set": ["a", "b"]}, {"remove": "a"}]}}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let f = &issue(&g, &key, "?fields=components,labels").await["fields"];
    assert_eq!(names(&f["components"]), ["Backend", "API"]);
    assert_eq!(f["labels"], json!(["b"]));
    g.put(
        &url,
        json!({"update": {"components": [{"remove": {"name": "Backend"}}]}}),
    )
    .await;
    let f = &issue(&g, &key, "?fields=components").await["fields"];
    assert_eq!(names(&f["components"]), ["API"]);

    // A component the project does not have: 400 and nothing changes.
    let r = g
        .put(
            &url,
            json!({"update": {"components": [{"add": {"name": "Nope"}}], "labels": [{"add": "c"}]}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"]["components"],
        "Component name 'Nope' is not valid"
    );
    let f = &issue(&g, &key, "?fields=components,labels").await["fields"];
    assert_eq!(names(&f["components"]), ["API"]);
    assert_eq!(f["labels"], json!(["b"]));

    // update.comment: add, then edit, then remove.
    let before = issue(&g, &key, "?fields=comment").await["fields"]["comment"]["total"]
        .as_u64()
        .unwrap();
    let doc = |t: &str| json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":t}]}]});
    let r = g
        .put(
            &url,
            json!({"update": {"comment": [{"add": {"body": doc("via update")}}]}}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let comments =
        issue(&g, &key, "?fields=comment").await["fields"]["comment"]["comments"].clone();
    let added = comments.as_array().unwrap().last().unwrap().clone();
    assert_eq!(comments.as_array().unwrap().len() as u64, before + 1);
    assert_eq!(added["body"], doc("via update"));
    assert_eq!(
        added["author"]["accountId"],
        g.sim.snapshot()["users"][0]["account_id"]
    );
    let id = added["id"].as_str().unwrap().to_string();
    g.put(
        &url,
        json!({"update": {"comment": [{"edit": {"id": id, "body": doc("edited")}}]}}),
    )
    .await;
    let comments =
        issue(&g, &key, "?fields=comment").await["fields"]["comment"]["comments"].clone();
    assert!(comments
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id.as_str() && c["body"] == doc("edited")));
    let r = g
        .put(
            &url,
            json!({"update": {"comment": [{"remove": {"id": id}}]}}),
        )
        .await;
    assert_eq!(r.status, 204);
    let total = issue(&g, &key, "?fields=comment").await["fields"]["comment"]["total"]
        .as_u64()
        .unwrap();
    assert_eq!(total, before);
    let r = g
        .put(
            &url,
            json!({"update": {"comment": [{"remove": {"id": "999999"}}]}}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn due_date_fix_versions_and_parent_are_set_and_logged() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let epic = search(
        &g,
        &format!("project = {project} AND issuetype = Epic"),
        &["issuetype"],
    )
    .await[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let create = |fields: Value| {
        let g = &g;
        async move {
            g.post(&g.jira(0, "/rest/api/3/issue"), json!({"fields": fields}))
                .await
        }
    };
    let r = create(
        json!({"project": {"key": project}, "issuetype": {"name": "Story"},
        "summary": "Child", "parent": {"key": epic}, "duedate": "2027-01-31",
        "fixVersions": [{"name": "2.0"}], "components": [{"name": "Frontend"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let story = r.body["key"].as_str().unwrap().to_string();
    let f = &issue(&g, &story, "?fields=parent,duedate,fixVersions,components").await["fields"];
    assert_eq!(f["parent"]["key"], epic.as_str());
    assert_eq!(f["duedate"], "2027-01-31");
    assert_eq!(names(&f["fixVersions"]), ["2.0"]);
    assert_eq!(names(&f["components"]), ["Frontend"]);

    // Sub-tasks need a non-epic parent; stories sit only under epics.
    let r = create(
        json!({"project": {"key": project}, "issuetype": {"name": "Subtask"}, "summary": "S"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"]["parent"],
        "Issue type is a sub-task but parent issue key or id not specified."
    );
    let r = create(
        json!({"project": {"key": project}, "issuetype": {"name": "Subtask"},
        "summary": "S", "parent": {"key": epic}}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = create(
        json!({"project": {"key": project}, "issuetype": {"name": "Subtask"},
        "summary": "S", "parent": {"key": story}}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sub = r.body["key"].as_str().unwrap().to_string();
    let subtasks = &issue(&g, &story, "?fields=subtasks").await["fields"]["subtasks"];
    assert_eq!(subtasks[0]["key"], sub.as_str());
    let r = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{story}")),
            json!({"fields": {"parent": {"key": sub}}}),
        )
        .await;
    assert_eq!(r.status, 400, "a story cannot sit under a sub-task");
    let r = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{story}")),
            json!({"fields": {"duedate": "31/01/2027"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"]["duedate"],
        "Error parsing date string: 31/01/2027"
    );
}

#[tokio::test]
async fn rendered_fields_are_html() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    let description = json!({"type":"doc","version":1,"content":[
        {"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Plan"}]},
        {"type":"paragraph","content":[
            {"type":"text","text":"bold","marks":[{"type":"strong"}]},
            {"type":"text","text":" <x> & "},
            {"type":"text","text":"link","marks":[{"type":"link","attrs":{"href":"https://example.com"}}]}]},
        {"type":"bulletList","content":[{"type":"listItem","content":[
            {"type":"paragraph","content":[{"type":"text","text":"one"}]}]}]}]});
    let r = g
        .put(
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            json!({"fields": {"description": description}}),
        )
        .await;
    assert_eq!(r.status, 204);
    let v = issue(&g, &key, "?expand=renderedFields").await;
    assert_eq!(
        v["renderedFields"]["description"],
        "<h2>Plan</h2><p><b>bold</b> &lt;x&gt; &amp; <a href=\"https://example.com\" class=\"external-link\" rel=\"nofollow noreferrer\">link</a></p><ul><li><p>one</p></li></ul>"
    );
    assert_eq!(v["fields"]["description"], description, "fields stay ADF");
    let plain = issue(&g, &key, "").await;
    assert!(plain.get("renderedFields").is_none());
}

#[tokio::test]
async fn issue_links_are_created_read_and_deleted() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let (a, b) = (format!("{project}-6"), format!("{project}-7"));
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/issueLink"),
            json!({"type": {"name": "Blocks"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let location = r.headers["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    let link = g.get(&location).await;
    assert_eq!(link.status, 200);
    assert_eq!(link.body["type"]["name"], "Blocks");
    assert_eq!(link.body["inwardIssue"]["key"], a.as_str());
    assert_eq!(link.body["outwardIssue"]["key"], b.as_str());
    let on_a = &issue(&g, &a, "?fields=issuelinks").await["fields"]["issuelinks"];
    assert!(on_a
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == id.as_str() && l["outwardIssue"]["key"] == b.as_str()));
    let on_b = &issue(&g, &b, "?fields=issuelinks").await["fields"]["issuelinks"];
    assert!(on_b
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == id.as_str() && l["inwardIssue"]["key"] == a.as_str()));

    let bad = g
        .post(
            &g.jira(0, "/rest/api/3/issueLink"),
            json!({"type": {"name": "Nope"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}}),
        )
        .await;
    assert_eq!(bad.status, 404);
    let own = g
        .post(
            &g.jira(0, "/rest/api/3/issueLink"),
            json!({"type": {"name": "Relates"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": a}}),
        )
        .await;
    assert_eq!(own.status, 400);

    let del = g.send("DELETE", &location, &g.token, None).await;
    assert_eq!(del.status, 204);
    assert_eq!(g.get(&location).await.status, 404);
    let on_b = &issue(&g, &b, "?fields=issuelinks").await["fields"]["issuelinks"];
    assert!(!on_b
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == id.as_str()));
}

#[tokio::test]
async fn remote_links_upsert_by_global_id() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/remotelink"));
    let body = |title: &str| json!({"globalId": "pr-1", "object": {"url": "https://git.example/pr/1", "title": title}});
    let first = g.post(&url, body("PR 1")).await;
    assert_eq!(first.status, 201);
    let again = g.post(&url, body("PR 1 (merged)")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    let list = g.get(&url).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["object"]["title"], "PR 1 (merged)");
    let missing = g
        .post(&url, json!({"object": {"url": "https://x.example"}}))
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["errors"]["title"], "'title' is required.");
    let one = g.get(&format!("{url}?globalId=pr-1")).await;
    assert_eq!(one.body["globalId"], "pr-1");
    let del = g
        .send("DELETE", &format!("{url}?globalId=pr-1"), &g.token, None)
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(g.get(&url).await.body, json!([]));
    let gone = g
        .send(
            "DELETE",
            &format!("{url}/{}", first.body["id"]),
            &g.token,
            None,
        )
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn create_and_edit_metadata_describe_the_screen() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let types = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/issue/createmeta/{project}/issuetypes"),
        ))
        .await;
    assert_eq!(types.status, 200);
    let type_names = names(&types.body["issueTypes"]);
    assert_eq!(type_names, ["Epic", "Story", "Bug", "Task", "Subtask"]);
    assert_eq!(types.body["total"], 5);
    let sub = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/issue/createmeta/{project}/issuetypes/10003"),
        ))
        .await;
    let fields = sub.body["fields"].as_array().unwrap();
    let field = |id: &str| fields.iter().find(|f| f["fieldId"] == id).cloned();
    assert_eq!(field("parent").unwrap()["required"], true);
    assert_eq!(field("summary").unwrap()["required"], true);
    assert!(
        field("comment").is_none(),
        "no comment on the create screen"
    );
    let comps = names(&field("components").unwrap()["allowedValues"]);
    assert_eq!(comps, ["Backend", "Frontend", "API", "Infrastructure"]);
    let too_many = g
        .get(&g.jira(
            0,
            &format!("/rest/api/3/issue/createmeta/{project}/issuetypes?maxResults=201"),
        ))
        .await;
    assert_eq!(too_many.status, 400);
    let unknown = g
        .get(&g.jira(0, "/rest/api/3/issue/createmeta/NOPE/issuetypes"))
        .await;
    assert_eq!(unknown.status, 400);

    let key = g.some_issue_key(0).await;
    let edit = g
        .get(&g.jira(0, &format!("/rest/api/3/issue/{key}/editmeta")))
        .await;
    assert_eq!(edit.status, 200);
    let f = &edit.body["fields"];
    assert_eq!(f["comment"]["operations"], json!(["add", "edit", "remove"]));
    assert_eq!(f["labels"]["operations"], json!(["add", "set", "remove"]));
    assert!(f.get("project").is_none());
    let sp = g.sim.snapshot()["sites"][0]["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(f[&sp]["schema"]["type"], "number");
}

#[tokio::test]
async fn reference_lists_and_project_catalog() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let get = |path: String| {
        let g = &g;
        async move {
            let r = g.get(&g.jira(0, &path)).await;
            assert_eq!(r.status, 200, "{path}: {:?}", r.body);
            r.body
        }
    };
    let priorities = get("/rest/api/3/priority".into()).await;
    assert_eq!(
        names(&priorities),
        ["Highest", "High", "Medium", "Low", "Lowest"]
    );
    let categories = get("/rest/api/3/statuscategory".into()).await;
    let keys: Vec<&str> = categories
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["undefined", "new", "indeterminate", "done"]);
    let statuses = get("/rest/api/3/status".into()).await;
    assert!(names(&statuses).contains(&"In Progress".to_string()));
    let page = get("/rest/api/3/resolution/search?maxResults=2".into()).await;
    assert_eq!(page["values"].as_array().unwrap().len(), 2);
    assert_eq!(page["isLast"], false);
    assert_eq!(page["total"], 4);
    let default = get("/rest/api/3/resolution/search?onlyDefault=true".into()).await;
    assert_eq!(names(&default["values"]), ["Done"]);
    let per_type = get(format!("/rest/api/3/project/{project}/statuses")).await;
    assert_eq!(per_type.as_array().unwrap().len(), 5);
    let versions = get(format!("/rest/api/3/project/{project}/versions")).await;
    assert_eq!(names(&versions), ["1.0", "1.1", "2.0"]);
    assert_eq!(versions[0]["released"], true);
    assert_eq!(versions[2]["released"], false);
    let components = get(format!("/rest/api/3/project/{project}/components")).await;
    assert_eq!(components.as_array().unwrap().len(), 4);
    assert!(components[0]["lead"]["accountId"].is_string());
    let r = g.get(&g.jira(0, "/rest/api/3/project/NOPE/versions")).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn approximate_count_matches_search() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let jql = format!("project = {project} AND status != Done");
    let count = g
        .post(
            &g.jira(0, "/rest/api/3/search/approximate-count"),
            json!({"jql": jql}),
        )
        .await;
    assert_eq!(count.status, 200);
    let found = search(&g, &jql, &["id"]).await.len();
    assert_eq!(count.body, json!({"count": found}));
    let unbounded = g
        .post(
            &g.jira(0, "/rest/api/3/search/approximate-count"),
            json!({"jql": "order by key"}),
        )
        .await;
    assert_eq!(unbounded.status, 400);
}
