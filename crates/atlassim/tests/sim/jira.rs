//! Jira platform v3 through the gateway: auth, scopes, the removed search,
//! `/search/jql` paging, issues, comments, projects.

use atlassim::{MintTokenRequest, Sim};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::common::{cloud_ids, http};

/// A simulator plus a token for the first user on every site (all scopes).
pub struct Gw {
    pub sim: Sim,
    pub token: String,
    pub sites: Vec<String>,
}

pub async fn gw() -> Gw {
    gw_with(crate::common::config()).await
}

pub async fn gw_with(config: atlassim::SimConfig) -> Gw {
    let sim = crate::common::spawn_sim(config).await;
    let token = sim.mint_token(MintTokenRequest::default()).access_token;
    let sites = cloud_ids(&sim);
    Gw { sim, token, sites }
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Gw {
    pub fn jira(&self, site: usize, path: &str) -> String {
        format!(
            "{}/ex/jira/{}{}",
            self.sim.api_url(),
            self.sites[site],
            path
        )
    }

    pub fn confluence(&self, site: usize, path: &str) -> String {
        format!(
            "{}/ex/confluence/{}{}",
            self.sim.api_url(),
            self.sites[site],
            path
        )
    }

    pub async fn send(&self, method: &str, url: &str, token: &str, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = http().request(m, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.send("GET", url, &self.token, None).await
    }

    pub async fn put(&self, url: &str, body: Value) -> Resp {
        self.send("PUT", url, &self.token, Some(body)).await
    }

    pub async fn post(&self, url: &str, body: Value) -> Resp {
        self.send("POST", url, &self.token, Some(body)).await
    }

    /// Some issue key of the first project of a site.
    pub async fn some_issue_key(&self, site: usize) -> String {
        let project = self.sim.snapshot()["sites"][site]["projects"][0]["key"]
            .as_str()
            .unwrap()
            .to_string();
        format!("{project}-1")
    }

    pub fn project_key(&self, site: usize, n: usize) -> String {
        self.sim.snapshot()["sites"][site]["projects"][n]["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn mint(&self, scopes: &[&str]) -> String {
        self.sim
            .mint_token(MintTokenRequest {
                scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            })
            .access_token
    }
}

#[tokio::test]
async fn missing_or_unknown_token_is_the_gateways_401() {
    let g = gw().await;
    let r = http()
        .get(g.jira(0, "/rest/api/3/myself"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": 401, "message": "Unauthorized"})
    );
    let r = g
        .send("GET", &g.jira(0, "/rest/api/3/myself"), "not-a-token", None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"code": 401, "message": "Unauthorized"}));
}

#[tokio::test]
async fn expired_token_is_401() {
    let g = gw().await;
    g.sim.advance_clock(3601);
    let r = g.get(&g.jira(0, "/rest/api/3/myself")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["message"], "Unauthorized");
}

#[tokio::test]
async fn token_without_the_operations_scope_gets_scope_does_not_match() {
    let g = gw().await;
    let read_only = g.mint(&["read:jira-work", "read:jira-user"]);
    let key = g.some_issue_key(0).await;
    let r = g
        .send(
            "PUT",
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            &read_only,
            Some(json!({"fields": {"summary": "x"}})),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"code": 401, "message": "Unauthorized; scope does not match"})
    );
    // The same token may read.
    let r = g
        .send(
            "GET",
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            &read_only,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn granular_scope_set_satisfies_an_operation_too() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    // `write:issue:jira` is the granular alternative of PUT /issue.
    let granular = g.mint(&["write:issue:jira"]);
    let r = g
        .send(
            "PUT",
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            &granular,
            Some(json!({"fields": {"summary": "Granular"}})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Part of a granular set is not enough.
    let partial = g.mint(&["read:issue-details:jira"]);
    let r = g
        .send(
            "GET",
            &g.jira(0, "/rest/api/3/search/jql?jql=project%20is%20not%20empty"),
            &partial,
            None,
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn unknown_cloud_id_is_404() {
    let g = gw().await;
    let url = format!(
        "{}/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself",
        g.sim.api_url()
    );
    let r = g.get(&url).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["errorMessages"][0], "Site temporarily unavailable");
}

#[tokio::test]
async fn site_outside_the_grant_is_404() {
    let g = gw().await;
    // A grant covers every site its user consented to, so use another user
    // whose only consent is the first site.
    let other = g.sim.snapshot()["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let only_first = g
        .sim
        .mint_token(MintTokenRequest {
            account_id: Some(other),
            cloud_ids: Some(vec![g.sites[0].clone()]),
            ..Default::default()
        })
        .access_token;
    let r = g
        .send("GET", &g.jira(1, "/rest/api/3/myself"), &only_first, None)
        .await;
    assert_eq!(r.status, 404);
    let r = g
        .send("GET", &g.jira(0, "/rest/api/3/myself"), &only_first, None)
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn server_info_says_cloud_with_the_site_url() {
    let g = gw().await;
    for path in ["/rest/api/2/serverInfo", "/rest/api/3/serverInfo"] {
        let r = g.get(&g.jira(0, path)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["deploymentType"], "Cloud");
        assert_eq!(r.body["baseUrl"], g.sim.snapshot()["sites"][0]["url"]);
        assert!(r.body["versionNumbers"].as_array().unwrap().len() == 3);
    }
}

#[tokio::test]
async fn myself_is_the_tokens_user() {
    let g = gw().await;
    let r = g.get(&g.jira(0, "/rest/api/3/myself")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["accountId"],
        g.sim.snapshot()["users"][0]["account_id"]
    );
}

#[tokio::test]
async fn removed_search_answers_410_with_the_exact_body() {
    let g = gw().await;
    let expected = json!({"errorMessages":["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"],"errors":{}});
    for (method, path) in [
        ("GET", "/rest/api/3/search?jql=project=X"),
        ("POST", "/rest/api/3/search"),
        ("GET", "/rest/api/2/search"),
        ("POST", "/rest/api/2/search"),
    ] {
        let r = g
            .send(
                method,
                &g.jira(0, path),
                &g.token,
                (method == "POST").then(|| json!({"jql": "project = X"})),
            )
            .await;
        assert_eq!(r.status, 410, "{method} {path}");
        assert_eq!(r.body, expected);
    }
}

#[tokio::test]
async fn project_search_pages_with_start_at() {
    let mut config = crate::common::config();
    config.projects = 5;
    let g = gw_with(config).await;
    let r = g
        .get(&g.jira(0, "/rest/api/3/project/search?maxResults=2"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"], 5);
    assert_eq!(r.body["isLast"], false);
    assert_eq!(r.body["values"].as_array().unwrap().len(), 2);
    let mut keys: Vec<String> = Vec::new();
    let mut url = g.jira(0, "/rest/api/3/project/search?maxResults=2");
    loop {
        let r = g.get(&url).await;
        for v in r.body["values"].as_array().unwrap() {
            keys.push(v["key"].as_str().unwrap().to_string());
        }
        if r.body["isLast"] == true {
            assert!(r.body.get("nextPage").is_none());
            break;
        }
        url = r.body["nextPage"].as_str().unwrap().to_string();
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "ordered by key, no duplicates");
    assert_eq!(keys.len(), 5);
    // Above 100 falls back to 100.
    let r = g
        .get(&g.jira(0, "/rest/api/3/project/search?maxResults=500"))
        .await;
    assert_eq!(r.body["maxResults"], 100);
}

#[tokio::test]
async fn v2_project_list_is_a_plain_array() {
    let g = gw().await;
    let r = g.get(&g.jira(0, "/rest/api/2/project")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.as_array().is_some_and(|a| !a.is_empty()));
    let key = r.body[0]["key"].as_str().unwrap();
    let one = g
        .get(&g.jira(0, &format!("/rest/api/3/project/{key}")))
        .await;
    assert_eq!(one.body["key"], key);
    let missing = g.get(&g.jira(0, "/rest/api/3/project/NOPE")).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn fields_list_the_sites_story_points_field() {
    let g = gw().await;
    for site in 0..2 {
        let sp = g.sim.snapshot()["sites"][site]["story_points_field"].clone();
        let r = g.get(&g.jira(site, "/rest/api/3/field")).await;
        let f = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == sp["id"])
            .cloned()
            .expect("story points field listed");
        assert_eq!(f["name"], sp["name"]);
        assert_eq!(f["custom"], true);
        assert_eq!(
            f["schema"]["custom"],
            "com.atlassian.jira.plugin.system.customfieldtypes:float"
        );
        assert!(r
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-sprint"));
    }
}

#[tokio::test]
async fn search_jql_walks_every_page_without_duplicates() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let expected = g.sim.snapshot()["sites"][0]["projects"][0]["issue_count"]
        .as_u64()
        .unwrap() as usize;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!(
            "{}?jql={}&maxResults=7",
            g.jira(0, "/rest/api/3/search/jql"),
            urlencode(&format!("project = {project} ORDER BY key ASC"))
        );
        if let Some(t) = &token {
            url.push_str(&format!("&nextPageToken={t}"));
        }
        let r = g.get(&url).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(r.body.get("total").is_none(), "no total on /search/jql");
        for i in r.body["issues"].as_array().unwrap() {
            // Default fields: ids only.
            assert_eq!(
                i.as_object().unwrap().keys().collect::<Vec<_>>(),
                vec!["id"]
            );
            seen.push(i["id"].as_str().unwrap().to_string());
        }
        pages += 1;
        if r.body["isLast"] == true {
            assert!(r.body.get("nextPageToken").is_none());
            break;
        }
        token = Some(r.body["nextPageToken"].as_str().unwrap().to_string());
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len());
    assert_eq!(seen.len(), expected);
    assert_eq!(pages, expected.div_ceil(7));
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn search_jql_post_with_fields_and_ordering() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let r = g
        .post(&g.jira(0, "/rest/api/3/search/jql"), json!({"jql": format!("project = {project} ORDER BY key DESC"), "fields": ["summary", "status"], "maxResults": 3}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let issues = r.body["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 3);
    let fields = issues[0]["fields"].as_object().unwrap();
    assert!(fields.contains_key("summary") && fields.contains_key("status"));
    assert!(!fields.contains_key("assignee"));
    assert!(r.body.get("names").is_none());
    let named = g
        .post(&g.jira(0, "/rest/api/3/search/jql"), json!({"jql": format!("project = {project}"), "fields": ["summary"], "expand": "names", "maxResults": 1}))
        .await;
    assert_eq!(named.body["names"]["summary"], "Summary");
    let n = |i: &Value| {
        i["key"]
            .as_str()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(n(&issues[0]) > n(&issues[1]) && n(&issues[1]) > n(&issues[2]));
}

#[tokio::test]
async fn search_jql_rejects_unbounded_and_bad_queries_like_jira() {
    let g = gw().await;
    let url = |jql: &str| {
        format!(
            "{}?jql={}",
            g.jira(0, "/rest/api/3/search/jql"),
            urlencode(jql)
        )
    };
    let unbounded = json!({"errorMessages":["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."],"errors":{},"warningMessages":[]});
    for jql in ["", "order by key desc"] {
        let r = g.get(&url(jql)).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body, unbounded, "{jql:?}");
    }
    let r = g.get(&url("foo = bar")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errorMessages"],
        json!(["Field 'foo' does not exist or you do not have permission to view it."])
    );
    let r = g.get(&url("project = ")).await;
    assert_eq!(
        r.body["errorMessages"],
        json!(["Error in the JQL Query: Expecting either a value, list or function before the end of the query."])
    );
    let r = g.get(&url("project = NOPE")).await;
    assert_eq!(
        r.body["errorMessages"],
        json!(["The value 'NOPE' does not exist for the field 'project'."])
    );
}

#[tokio::test]
async fn get_issue_has_jira_shaped_fields() {
    let g = gw().await;
    let key = g.some_issue_key(1).await;
    let sp_id = g.sim.snapshot()["sites"][1]["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Keys are case-insensitive; no redirect.
    let r = g
        .get(&g.jira(1, &format!("/rest/api/3/issue/{}", key.to_lowercase())))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["key"], key);
    let f = &r.body["fields"];
    assert!(f.get(&sp_id).is_some(), "story points field present");
    assert!(f["status"]["statusCategory"]["key"].is_string());
    assert!(f["issuetype"]["name"].is_string());
    assert!(f["reporter"]["accountId"].is_string());
    let created = f["created"].as_str().unwrap();
    assert!(regex_like_jira_time(created), "{created}");
    let r = g.get(&g.jira(1, "/rest/api/3/issue/NOPE-999")).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["errorMessages"][0],
        "Issue does not exist or you do not have permission to see it."
    );
}

fn regex_like_jira_time(s: &str) -> bool {
    // 2026-01-01T12:00:00.000+0000
    s.len() == 28 && &s[10..11] == "T" && &s[19..20] == "." && &s[23..24] == "+"
}

#[tokio::test]
async fn edit_issue_sets_fields_bumps_updated_and_rejects_unknown_fields() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    let sp_id = g.sim.snapshot()["sites"][0]["story_points_field"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}"));
    let before = g.get(&url).await.body["fields"]["updated"]
        .as_str()
        .unwrap()
        .to_string();
    g.sim.advance_clock(60);
    let doc = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Hello"}]}]});
    let r = g.put(&url, json!({"fields": {"summary": "New summary", "description": doc, "labels": ["a", "b"], sp_id.clone(): 5}})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let after = g.get(&url).await.body;
    assert_eq!(after["fields"]["summary"], "New summary");
    assert_eq!(after["fields"]["labels"], json!(["a", "b"]));
    assert_eq!(after["fields"][&sp_id], 5.0);
    assert_eq!(after["fields"]["description"], doc);
    assert_ne!(after["fields"]["updated"].as_str().unwrap(), before);

    let r = g.put(&url, json!({"fields": {"foo": 1}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"errorMessages": [], "errors": {"foo": "Field 'foo' cannot be set. It is not on the appropriate screen, or unknown."}})
    );
    let r = g
        .put(&url, json!({"fields": {"description": "plain text"}}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["errors"]["description"]
        .as_str()
        .unwrap()
        .contains("Atlassian Document"));
    // v2 takes plain text.
    let r = g
        .put(
            &g.jira(0, &format!("/rest/api/2/issue/{key}")),
            json!({"fields": {"description": "plain text"}}),
        )
        .await;
    assert_eq!(r.status, 204);
    let v2 = g.get(&g.jira(0, &format!("/rest/api/2/issue/{key}"))).await;
    assert_eq!(v2.body["fields"]["description"], "plain text");
}

#[tokio::test]
async fn create_then_delete_an_issue() {
    let g = gw().await;
    let project = g.project_key(0, 0);
    let r = g
        .post(&g.jira(0, "/rest/api/3/issue"), json!({"fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "Made by a test"}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = r.body["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("{project}-")));
    assert!(r.body["self"]
        .as_str()
        .unwrap()
        .ends_with(r.body["id"].as_str().unwrap()));
    let got = g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}"))).await;
    assert_eq!(got.body["fields"]["summary"], "Made by a test");
    let r = g
        .send(
            "DELETE",
            &g.jira(0, &format!("/rest/api/3/issue/{key}")),
            &g.token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        g.get(&g.jira(0, &format!("/rest/api/3/issue/{key}")))
            .await
            .status,
        404
    );
    let r = g
        .post(
            &g.jira(0, "/rest/api/3/issue"),
            json!({"fields": {"project": {"key": project}}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["errors"]["summary"].is_string() && r.body["errors"]["issuetype"].is_string());
}

#[tokio::test]
async fn comments_need_an_adf_body_and_are_listed() {
    let g = gw().await;
    let key = g.some_issue_key(0).await;
    let url = g.jira(0, &format!("/rest/api/3/issue/{key}/comment"));
    let before = g.get(&url).await.body["total"].as_u64().unwrap();
    let doc = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Estimated: 3"}]}]});
    let r = g.post(&url, json!({"body": doc})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["body"], doc);
    assert!(r.body["author"]["accountId"].is_string());
    let r = g.post(&url, json!({"body": "just text"})).await;
    assert_eq!(r.status, 400);
    let list = g.get(&url).await.body;
    assert_eq!(list["total"].as_u64().unwrap(), before + 1);
    assert_eq!(
        list["comments"].as_array().unwrap().last().unwrap()["body"],
        doc
    );
    // v2 takes and renders plain text.
    let r = g
        .post(
            &g.jira(0, &format!("/rest/api/2/issue/{key}/comment")),
            json!({"body": "from v2"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["body"], "from v2");
}

#[tokio::test]
async fn latency_ms_delays_every_gateway_request() {
    let mut config = crate::common::config();
    config.latency_ms = 250;
    let g = gw_with(config).await;
    let started = std::time::Instant::now();
    let r = g.get(&g.jira(0, "/rest/api/3/serverInfo")).await;
    assert_eq!(r.status, 200);
    // A lower bound only: the delay is a sleep, so it cannot be shorter.
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
}
