//! `/openapi.json` is generated from the handlers and snapshot-tested.
//! After an intended API change, regenerate the snapshot with:
//!
//! `UPDATE_SNAPSHOTS=1 cargo test -p atlasgate --test api openapi`

use serde_json::Value;

use crate::helpers::TestApp;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/snapshots/openapi.json"
);

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = TestApp::spawn().await;
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        expected == pretty,
        "/openapi.json differs from tests/api/snapshots/openapi.json.\n\
         If the API change is intended, regenerate the snapshot:\n\
         \n    UPDATE_SNAPSHOTS=1 cargo test -p atlasgate --test api openapi\n\
         \nand review the diff."
    );
}

#[tokio::test]
async fn openapi_documents_the_platform_routes_and_security() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/admin/api/apps", "get"),
        ("/admin/api/apps", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["app_key"]["scheme"], "bearer");
    assert_eq!(schemes["admin_token"]["scheme"], "bearer");
    assert_eq!(
        doc["paths"]["/admin/api/apps"]["post"]["security"][0]["admin_token"],
        serde_json::json!([])
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // The library function and the served document agree.
    assert_eq!(
        serde_json::to_value(atlasgate::server::openapi()).unwrap(),
        doc
    );
}

/// utoipa names a schema after its Rust type, so two `ToSchema` types of
/// one name collapse into one schema in `/openapi.json` (as two `SprintRef`s
/// once did). Every `ToSchema` type of the edge must have its own name.
#[test]
fn every_schema_type_has_its_own_name() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut names: Vec<(String, String)> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut in_derive = false;
        let mut pending = false;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("#[derive(") {
                in_derive = true;
            }
            if in_derive && t.contains("ToSchema") {
                pending = true;
            }
            if in_derive && t.contains(")]") {
                in_derive = false;
            }
            if let Some(rest) = t.strip_prefix("impl ToSchema for ") {
                names.push((
                    rest.trim_end_matches(" {}").to_string(),
                    file.display().to_string(),
                ));
            }
            if pending {
                for kw in ["pub struct ", "pub enum ", "struct ", "enum "] {
                    if let Some(rest) = t.strip_prefix(kw) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        names.push((name, file.display().to_string()));
                        pending = false;
                        break;
                    }
                }
            }
        }
    }
    for control in [
        "ConnectionView",
        "ConnectionStatus",
        "SprintRef",
        "SyncedSprintRef",
        "Problem",
    ] {
        assert!(
            names.iter().any(|(n, _)| n == control),
            "positive control: {control} was not found"
        );
    }
    let mut seen = std::collections::HashMap::new();
    for (name, file) in &names {
        if let Some(first) = seen.insert(name.clone(), file.clone()) {
            panic!("two ToSchema types named {name}: {first} and {file}");
        }
    }
}

/// Every `$ref` of the served document names a schema it defines.
#[tokio::test]
async fn every_schema_reference_resolves() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let defined = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    let refs: Vec<&str> = text
        .split("\"#/components/schemas/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(
        refs.len() > 20,
        "positive control: the document has references"
    );
    for r in refs {
        assert!(defined.contains_key(r), "$ref to undefined schema {r}");
    }
}

/// What `openapi.rs::complete` guarantees (and schemathesis checks from
/// outside, `tests/contract/run.py`): on the JSON API every error answer is
/// `application/problem+json` (the proxy may also relay Atlassian's own),
/// every secured operation documents 401, every templated path 404, every
/// JSON body its 400 / 413 / 415 / 422, and operation ids are unique.
#[test]
fn every_error_is_a_documented_problem() {
    let doc = serde_json::to_value(atlasgate::server::openapi()).unwrap();
    let mut ops = 0;
    let mut errors = 0;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let api = ["/v1/", "/admin/api/", "/webhooks/"]
            .iter()
            .any(|p| path.starts_with(p));
        for (method, op) in item.as_object().unwrap() {
            let label = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(ids.insert(id.clone()), "{label}: operationId {id} repeats");
            if !api {
                continue;
            }
            ops += 1;
            let responses = op["responses"].as_object().unwrap();
            let proxy = path.contains("/proxy/");
            for (status, resp) in responses {
                if !status.starts_with(['4', '5']) {
                    continue;
                }
                let content = resp["content"].as_object();
                let types: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
                // The MCP endpoint's 400 is rmcp's JSON-RPC error.
                if path.ends_with("/mcp") && status == "400" {
                    assert_eq!(types, ["application/json"], "{label} {status}");
                    continue;
                }
                errors += 1;
                assert!(
                    types.iter().any(|t| *t == "application/problem+json"),
                    "{label} {status}: {types:?} has no application/problem+json"
                );
                assert!(
                    proxy || types.len() == 1,
                    "{label} {status}: a problem only, not {types:?}"
                );
                assert_eq!(
                    resp["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{label} {status}"
                );
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(responses.contains_key("401"), "{label} documents no 401");
            }
            if path.contains('{') {
                assert!(responses.contains_key("404"), "{label} documents no 404");
            }
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            if json_body && !path.ends_with("/mcp") && path != "/webhooks/jira" {
                for s in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(s), "{label} documents no {s}");
                }
            }
        }
    }
    // Positive controls: the walk saw the API.
    assert!(ops > 50, "only {ops} operations");
    assert!(errors > 300, "only {errors} error answers");
    let token = &doc["paths"]["/v1/connections/{id}/token"]["get"]["responses"];
    for s in ["401", "404", "409", "503"] {
        assert!(token[s].is_object(), "/token documents no {s}");
    }
}

/// A finding of the contract run: rmcp refused an MCP request without
/// `Accept` with 406. No `Accept` (or `*/*`) accepts any answer (RFC 9110
/// §12.5.1), so it is answered; an `Accept` that names neither of the MCP
/// media types is still refused 406, as a problem.
#[tokio::test]
async fn an_mcp_request_without_accept_is_answered() {
    let app = TestApp::spawn().await;
    let (key, id) = app.connected_app("contract-mcp", "team:1").await;
    let url = app.url(&format!("/v1/connections/{id}/mcp"));
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    for accept in [None, Some("*/*")] {
        let mut req = app.client.post(&url).bearer_auth(&key).json(&list);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "accept {accept:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["result"]["tools"]
                .as_array()
                .is_some_and(|t| t.len() > 10),
            "accept {accept:?}: {body}"
        );
    }
    let refused = app
        .client
        .post(&url)
        .bearer_auth(&key)
        .header("accept", "text/html")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 406);
    assert_eq!(
        refused.headers()["content-type"],
        atlasgate::error::PROBLEM_JSON
    );
}
