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
