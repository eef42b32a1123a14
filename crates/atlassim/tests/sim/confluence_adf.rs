//! Confluence pages written in `atlas_doc_format` read back in that format
//! as written (marks, code blocks, tables kept), in v2 and v1; a later
//! write in storage format replaces it.

use serde_json::{json, Value};

use crate::jira::gw;

fn adf_doc() -> Value {
    json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "ship "},
            {"type": "text", "text": "today", "marks": [{"type": "strong"}]}
        ]},
        {"type": "codeBlock", "attrs": {"language": "rust"}, "content": [{"type": "text", "text": "fn main() {}"}]}
    ]})
}

fn adf_body(doc: &Value) -> Value {
    json!({"representation": "atlas_doc_format", "value": doc.to_string()})
}

fn read_adf(v: &Value) -> Value {
    serde_json::from_str(v["body"]["atlas_doc_format"]["value"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_page_written_in_adf_reads_back_as_written() {
    let g = gw().await;
    let spaces = g.get(&g.confluence(0, "/wiki/api/v2/spaces")).await;
    let space = spaces.body["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = g
        .post(
            &g.confluence(0, "/wiki/api/v2/pages"),
            json!({"spaceId": space, "status": "current", "title": "ADF page", "body": adf_body(&adf_doc())}),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let page_url = g.confluence(0, &format!("/wiki/api/v2/pages/{id}"));

    let read = g
        .get(&format!("{page_url}?body-format=atlas_doc_format"))
        .await;
    assert_eq!(read_adf(&read.body), adf_doc());
    // Storage format still has the words.
    let storage = g.get(&format!("{page_url}?body-format=storage")).await;
    assert!(storage.body["body"]["storage"]["value"]
        .as_str()
        .unwrap()
        .contains("ship today"));

    // An update in ADF replaces the document; the list answers it too.
    let second = json!({"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Plan"}]}
    ]});
    let r = g
        .put(
            &page_url,
            json!({"id": id, "status": "current", "title": "ADF page", "version": {"number": 2}, "body": adf_body(&second)}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let list = g
        .get(&g.confluence(
            0,
            &format!("/wiki/api/v2/pages?id={id}&body-format=atlas_doc_format"),
        ))
        .await;
    assert_eq!(read_adf(&list.body["results"][0]), second);

    // A write in storage format drops the ADF: the read is the storage text.
    let r = g
        .put(
            &page_url,
            json!({"id": id, "status": "current", "title": "ADF page", "version": {"number": 3},
                   "body": {"representation": "storage", "value": "<p>plain words</p>"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let read = g
        .get(&format!("{page_url}?body-format=atlas_doc_format"))
        .await;
    assert_eq!(
        read_adf(&read.body),
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "plain words"}]}
        ]})
    );
}
