//! Confluence v2 page writes with the version check, children, labels,
//! `sort`; the v1 content API and CQL search (`/search`, `/content/search`).

use serde_json::{json, Value};

use crate::jira::{gw, urlencode, Gw};

async fn first_space(g: &Gw) -> (String, String, String) {
    let spaces = g.get(&g.confluence(0, "/wiki/api/v2/spaces")).await;
    let s = &spaces.body["results"][0];
    (
        s["id"].as_str().unwrap().to_string(),
        s["key"].as_str().unwrap().to_string(),
        s["homepageId"].as_str().unwrap().to_string(),
    )
}

fn storage(value: &str) -> Value {
    json!({"representation": "storage", "value": value})
}

#[tokio::test]
async fn create_update_with_version_check_and_delete_to_trash() {
    let g = gw().await;
    let (space, _, home) = first_space(&g).await;
    let url = g.confluence(0, "/wiki/api/v2/pages");
    let created = g
        .post(
            &url,
            json!({"spaceId": space, "status": "current", "title": "Release plan", "body": storage("<p>v1</p>")}),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["version"]["number"], 1);
    // Without parentId the page goes under the space homepage.
    assert_eq!(created.body["parentId"], home.as_str());

    // Same title in the same space: refused, nothing stored.
    let dup = g
        .post(
            &url,
            json!({"spaceId": space, "title": "release PLAN", "body": storage("x")}),
        )
        .await;
    assert_eq!(dup.status, 400);
    assert!(dup.body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("same TITLE"));

    let page_url = g.confluence(0, &format!("/wiki/api/v2/pages/{id}"));
    let update = |n: u64, text: &str| json!({"id": id, "status": "current", "title": "Release plan", "body": storage(text), "version": {"number": n, "message": "edit"}});
    // The same version again, or skipping one: 409, page unchanged.
    for n in [1, 3] {
        let r = g.put(&page_url, update(n, "<p>lost</p>")).await;
        assert_eq!(r.status, 409, "version {n}: {:?}", r.body);
        assert_eq!(r.body["errors"][0]["status"], 409);
        assert!(r.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Current version is: 1"));
    }
    let ok = g.put(&page_url, update(2, "<p>v2</p>")).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["version"]["number"], 2);
    assert_eq!(ok.body["version"]["message"], "edit");
    let read = g.get(&format!("{page_url}?body-format=storage")).await;
    assert_eq!(read.body["body"]["storage"]["value"], "<p>v2</p>");

    // Missing version: 400.
    let r = g
        .put(
            &page_url,
            json!({"id": id, "status": "current", "title": "T", "body": storage("x")}),
        )
        .await;
    assert_eq!(r.status, 400);

    // Delete moves it to the trash: gone from GET and lists, visible with status=trashed.
    let del = g.send("DELETE", &page_url, &g.token, None).await;
    assert_eq!(del.status, 204);
    assert_eq!(g.get(&page_url).await.status, 404);
    let trashed = g.get(&format!("{page_url}?status=trashed")).await;
    assert_eq!(trashed.body["status"], "trashed");
    let listed = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/pages?id={id}")))
        .await;
    assert!(listed.body["results"].as_array().unwrap().is_empty());
    // Deleting again without purge: 404; purge removes it for good.
    assert_eq!(
        g.send("DELETE", &page_url, &g.token, None).await.status,
        404
    );
    let purge = g
        .send("DELETE", &format!("{page_url}?purge=true"), &g.token, None)
        .await;
    assert_eq!(purge.status, 204);
    assert_eq!(
        g.get(&format!("{page_url}?status=trashed")).await.status,
        404
    );
}

#[tokio::test]
async fn children_labels_and_sort() {
    let g = gw().await;
    let (_, _, home) = first_space(&g).await;
    let kids = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/pages/{home}/children?limit=250")))
        .await;
    assert_eq!(kids.status, 200);
    let kids = kids.body["results"].as_array().unwrap().clone();
    assert!(!kids.is_empty());
    let positions: Vec<u64> = kids
        .iter()
        .map(|k| k["childPosition"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (0..kids.len() as u64).collect::<Vec<_>>());
    let desc = g
        .get(&g.confluence(
            0,
            &format!("/wiki/api/v2/pages/{home}/children?limit=250&sort=-child-position"),
        ))
        .await;
    let mut reversed = kids.clone();
    reversed.reverse();
    assert_eq!(desc.body["results"].as_array().unwrap(), &reversed);
    let bad = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/pages/{home}/children?sort=title")))
        .await;
    assert_eq!(bad.status, 400);

    let labels = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/pages/{home}/labels")))
        .await;
    assert_eq!(labels.status, 200);
    let first = &labels.body["results"][0];
    assert_eq!(first["prefix"], "global");
    assert!(first["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(
        g.get(&g.confluence(0, "/wiki/api/v2/pages/999999/labels"))
            .await
            .status,
        404
    );

    // sort on page lists: by title both ways, and a wrong value is a 400.
    let titles = |r: &crate::jira::Resp| -> Vec<String> {
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_lowercase())
            .collect()
    };
    let asc = g
        .get(&g.confluence(0, "/wiki/api/v2/pages?limit=250&sort=title"))
        .await;
    let t = titles(&asc);
    let mut sorted = t.clone();
    sorted.sort();
    assert_eq!(t, sorted);
    let desc = g
        .get(&g.confluence(0, "/wiki/api/v2/pages?limit=250&sort=-title"))
        .await;
    let mut rev = titles(&desc);
    rev.reverse();
    assert_eq!(rev, sorted);
    assert_eq!(
        g.get(&g.confluence(0, "/wiki/api/v2/pages?sort=size"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn writes_need_write_scopes() {
    let g = gw().await;
    let (space, _, _) = first_space(&g).await;
    let reader = g.mint(&["read:page:confluence", "read:space:confluence"]);
    let r = g
        .send(
            "POST",
            &g.confluence(0, "/wiki/api/v2/pages"),
            &reader,
            Some(json!({"spaceId": space, "title": "Nope", "body": storage("x")})),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["message"], "Unauthorized; scope does not match");
}

async fn cql(g: &Gw, path: &str, q: &str) -> crate::jira::Resp {
    g.get(&g.confluence(0, &format!("/wiki/rest/api/{path}?cql={}", urlencode(q))))
        .await
}

#[tokio::test]
async fn cql_search_subset_and_paging() {
    let g = gw().await;
    let (space, key, _) = first_space(&g).await;
    let all = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/spaces/{space}/pages?limit=250")))
        .await;
    let in_space = all.body["results"].as_array().unwrap().len();

    let r = cql(&g, "search", &format!("type = page AND space = \"{key}\"")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["totalSize"], in_space);
    assert_eq!(r.body["size"], in_space.min(25));
    assert_eq!(r.body["start"], 0);
    assert_eq!(r.body["_links"]["context"], "/wiki");
    let hit = &r.body["results"][0];
    assert_eq!(hit["entityType"], "content");
    assert_eq!(hit["content"]["type"], "page");
    assert!(hit["lastModified"].as_str().is_some());
    assert!(hit["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/spaces/{key}/pages/")));

    // Paging with the `next` link (relative to _links.base, cursor-based) and with start.
    let r = cql(&g, "search", "type = page ORDER BY lastmodified").await;
    let total = r.body["totalSize"].as_u64().unwrap() as usize;
    let mut seen: Vec<String> = Vec::new();
    let mut url = g.confluence(
        0,
        &format!(
            "/wiki/rest/api/search?limit=20&cql={}",
            urlencode("type = page ORDER BY lastmodified")
        ),
    );
    loop {
        let page = g.get(&url).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for h in page.body["results"].as_array().unwrap() {
            seen.push(h["lastModified"].as_str().unwrap().to_string());
        }
        match page.body["_links"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/rest/api/search?"), "{next}");
                url = g.confluence(0, &format!("/wiki{next}"));
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ORDER BY lastmodified ascending");
    let second = g
        .get(&g.confluence(
            0,
            &format!(
                "/wiki/rest/api/search?start=20&limit=20&cql={}",
                urlencode("type = page ORDER BY lastmodified")
            ),
        ))
        .await;
    assert_eq!(second.body["results"][0]["lastModified"], seen[20].as_str());

    // title ~ / text ~ find a page created just now; lastmodified > finds only it.
    let since = (g.sim.now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let created = g
        .post(
            &g.confluence(0, "/wiki/api/v2/pages"),
            json!({"spaceId": space, "title": "Zebra rollout checklist", "body": storage("<p>Quokka migration notes</p>")}),
        )
        .await;
    assert_eq!(created.status, 200);
    let id = created.body["id"].as_str().unwrap();
    for q in [
        "title ~ \"zebra\"".to_string(),
        "title ~ \"rollout check*\"".to_string(),
        "text ~ \"quokka\"".to_string(),
        format!("lastmodified > \"{since}\""),
        format!("space = {key} AND lastmodified >= now(\"-5m\") ORDER BY lastmodified DESC"),
    ] {
        let r = cql(&g, "content/search", &q).await;
        assert_eq!(r.status, 200, "{q}: {:?}", r.body);
        let ids: Vec<&str> = r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![id], "{q}");
        // content/search answers Content with the default expansions.
        assert_eq!(r.body["results"][0]["space"]["key"], key.as_str());
        assert_eq!(r.body["results"][0]["version"]["number"], 1);
    }
    let none = cql(&g, "search", "text ~ \"quokka\" AND NOT space =").await;
    assert_eq!(none.status, 400);
    let not = cql(
        &g,
        "search",
        &format!("text ~ \"quokka\" AND space != {key}"),
    )
    .await;
    assert_eq!(not.body["totalSize"], 0);
    let blog = cql(&g, "search", "type = blogpost").await;
    assert_eq!(blog.body["totalSize"], 0);
}

#[tokio::test]
async fn cql_errors_as_confluence_answers_them() {
    let g = gw().await;
    for q in [
        "type = ",
        "foo = bar",
        "title > x",
        "lastmodified > \"soon\"",
        "(type = page",
    ] {
        let r = cql(&g, "search", q).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.body["statusCode"], 400);
        assert_eq!(r.body["data"]["successful"], false);
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.contains("Could not parse cql : "), "{msg}");
        assert!(msg.contains(q), "{msg}");
    }
    let missing = g
        .get(&g.confluence(0, "/wiki/rest/api/content/search"))
        .await;
    assert_eq!(missing.status, 400);
    // v1 scopes: the classic search scope opens /search, a page-only granular token does not.
    let classic = g.mint(&["search:confluence"]);
    let url = g.confluence(
        0,
        &format!("/wiki/rest/api/search?cql={}", urlencode("type = page")),
    );
    assert_eq!(g.send("GET", &url, &classic, None).await.status, 200);
    let v2_only = g.mint(&["read:page:confluence"]);
    assert_eq!(g.send("GET", &url, &v2_only, None).await.status, 401);
}

#[tokio::test]
async fn v1_content_get_create_update_history() {
    let g = gw().await;
    let (_, key, home) = first_space(&g).await;
    let base = "/wiki/rest/api/content";
    let created = g
        .post(
            &g.confluence(0, base),
            json!({"type": "page", "title": "v1 page", "space": {"key": key},
                   "ancestors": [{"id": home}],
                   "body": {"storage": {"value": "<p>one</p>", "representation": "storage"}}}),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["space"]["key"], key.as_str());
    assert_eq!(created.body["version"]["number"], 1);

    let url = g.confluence(0, &format!("{base}/{id}?expand=body.storage,ancestors"));
    let got = g.get(&url).await;
    assert_eq!(got.body["body"]["storage"]["value"], "<p>one</p>");
    assert_eq!(got.body["ancestors"][0]["id"], home.as_str());
    assert!(got.body["history"]["createdBy"]["accountId"]
        .as_str()
        .is_some());
    assert!(got.body["_links"]["webui"].as_str().unwrap().contains(&id));
    let plain = g.get(&g.confluence(0, &format!("{base}/{id}"))).await;
    assert!(plain.body.get("body").is_none());
    assert_eq!(plain.body["_expandable"]["body"], "");

    let history = g
        .get(&g.confluence(0, &format!("{base}/{id}/history")))
        .await;
    assert_eq!(history.body["lastUpdated"]["number"], 1);

    let put = |n: u64| {
        json!({"id": id, "type": "page", "title": "v1 page", "version": {"number": n},
               "body": {"storage": {"value": format!("<p>v{n}</p>"), "representation": "storage"}}})
    };
    let stale = g
        .put(&g.confluence(0, &format!("{base}/{id}")), put(1))
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.body["statusCode"], 409);
    assert!(stale.body["message"]
        .as_str()
        .unwrap()
        .contains("Version must be incremented"));
    let ok = g
        .put(&g.confluence(0, &format!("{base}/{id}")), put(2))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["version"]["number"], 2);
    // The v2 API sees the same page and version.
    let v2 = g
        .get(&g.confluence(0, &format!("/wiki/api/v2/pages/{id}?body-format=storage")))
        .await;
    assert_eq!(v2.body["version"]["number"], 2);
    assert_eq!(v2.body["body"]["storage"]["value"], "<p>v2</p>");

    let del = g
        .send(
            "DELETE",
            &g.confluence(0, &format!("{base}/{id}")),
            &g.token,
            None,
        )
        .await;
    assert_eq!(del.status, 204);
    let gone = g.get(&g.confluence(0, &format!("{base}/{id}"))).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["statusCode"], 404);
    let other = g
        .post(
            &g.confluence(0, base),
            json!({"type": "blogpost", "title": "b", "space": {"key": key}}),
        )
        .await;
    assert_eq!(other.status, 400);
}
