//! `src/schema.rs` documents the core's answer types by schema-only twins
//! (the core has no utoipa). These tests keep each twin equal to the type
//! it mirrors, as `/openapi.json` publishes it: a sample built from the
//! twin's schema (every property, with a value of its type) is read by the
//! core type and written back, and the written keys are exactly the
//! schema's properties, nested objects included; a sample of only the
//! `required` properties is read too. A field added to one side and not
//! the other fails here.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

fn document() -> Value {
    serde_json::to_value(atlasgate::server::openapi()).unwrap()
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "/openapi.json has no schema {name}");
    s
}

/// The schema a property points at, through `$ref` and the
/// `oneOf: [null, $ref]` utoipa writes for an `Option` of a named type.
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return resolve(doc, schema(doc, name));
    }
    if let Some(alts) = s["oneOf"].as_array() {
        if let Some(one) = alts.iter().find(|a| a["type"] != "null") {
            return resolve(doc, one);
        }
    }
    s
}

/// A value of schema `s`: every property when `all`, else only the required.
fn sample(doc: &Value, s: &Value, all: bool) -> Value {
    let s = resolve(doc, s);
    if let Some(values) = s["enum"].as_array() {
        return values[0].clone();
    }
    let ty = match &s["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "object",
    };
    match ty {
        "string" => json!("x"),
        "integer" => json!(7),
        "number" => json!(2.5),
        "boolean" => json!(true),
        "array" => json!([sample(doc, &s["items"], all)]),
        "object" => {
            let required: BTreeSet<&str> = s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut out = Map::new();
            for (name, p) in s["properties"].as_object().into_iter().flatten() {
                if all || required.contains(name.as_str()) {
                    out.insert(name.clone(), sample(doc, p, all));
                }
            }
            Value::Object(out)
        }
        other => panic!("no sample for schema type {other}: {s}"),
    }
}

/// The keys of `written` are the properties of `s`, at every depth
/// `sample` filled.
fn same_keys(doc: &Value, s: &Value, written: &Value, path: &str) {
    let s = resolve(doc, s);
    match written {
        Value::Object(obj) => {
            let Some(props) = s["properties"].as_object() else {
                return; // a free-form object
            };
            let want: BTreeSet<&String> = props.keys().collect();
            let got: BTreeSet<&String> = obj.keys().collect();
            assert_eq!(
                got, want,
                "{path}: the core type writes the left keys, its schema twin documents the right"
            );
            for (k, v) in obj {
                same_keys(doc, &props[k], v, &format!("{path}.{k}"));
            }
        }
        Value::Array(items) => {
            for v in items {
                same_keys(doc, &s["items"], v, &format!("{path}[]"));
            }
        }
        _ => {}
    }
}

/// Twin `name` and core type `T` agree.
fn check<T: DeserializeOwned + Serialize>(doc: &Value, name: &str) {
    let s = schema(doc, name);
    let full = sample(doc, s, true);
    let read: T = serde_json::from_value(full.clone())
        .unwrap_or_else(|e| panic!("{name}: the core type does not read {full}: {e}"));
    same_keys(doc, s, &serde_json::to_value(&read).unwrap(), name);
    let minimal = sample(doc, s, false);
    serde_json::from_value::<T>(minimal.clone()).unwrap_or_else(|e| {
        panic!("{name}: the core type needs more than the schema's required properties ({minimal}): {e}")
    });
}

/// The twins checked here; `every_twin_is_checked` compares the list with
/// the structs of `src/schema.rs`.
const CHECKED: &[&str] = &[
    "Account",
    "AccessibleSite",
    "Board",
    "CommentView",
    "ConnectionView",
    "CreatedIssue",
    "Issue",
    "IssueDetail",
    "IssueView",
    "Page",
    "PageDetail",
    "PageView",
    "Project",
    "ProjectRef",
    "SearchHit",
    "Space",
    "Sprint",
    "SprintRef",
    "SyncedSprintRef",
    "TransitionDone",
    "TransitionOption",
    "UserRef",
];

/// Twins of *inputs* the core reads and never writes (no `Serialize`):
/// checked in one direction, below.
const INPUTS: &[&str] = &["ImportConnectionRequest"];

#[test]
fn each_schema_twin_has_the_keys_its_core_type_writes() {
    use atlasgate_core::{confluence, connections, jira, sync};
    let doc = document();
    check::<connections::Account>(&doc, "Account");
    check::<atlasgate_core::atlassian::AccessibleSite>(&doc, "AccessibleSite");
    check::<jira::ops::Board>(&doc, "Board");
    check::<jira::writes::CommentView>(&doc, "CommentView");
    check::<connections::ConnectionView>(&doc, "ConnectionView");
    check::<jira::writes::CreatedIssue>(&doc, "CreatedIssue");
    check::<jira::ops::Issue>(&doc, "Issue");
    check::<jira::writes::IssueDetail>(&doc, "IssueDetail");
    check::<sync::IssueView>(&doc, "IssueView");
    check::<confluence::Page>(&doc, "Page");
    check::<confluence::PageDetail>(&doc, "PageDetail");
    check::<sync::confluence::PageView>(&doc, "PageView");
    check::<jira::ops::Project>(&doc, "Project");
    check::<sync::ProjectRef>(&doc, "ProjectRef");
    check::<confluence::SearchHit>(&doc, "SearchHit");
    check::<confluence::Space>(&doc, "Space");
    check::<jira::ops::Sprint>(&doc, "Sprint");
    check::<jira::ops::SprintRef>(&doc, "SprintRef");
    check::<sync::SyncedSprintRef>(&doc, "SyncedSprintRef");
    check::<jira::writes::TransitionDone>(&doc, "TransitionDone");
    check::<jira::writes::TransitionOption>(&doc, "TransitionOption");
    check::<jira::writes::UserRef>(&doc, "UserRef");
}

#[test]
fn input_twins_are_read_by_their_core_type() {
    let doc = document();
    let s = schema(&doc, "ImportConnectionRequest");
    for all in [true, false] {
        let body = sample(&doc, s, all);
        serde_json::from_value::<atlasgate_core::import::ImportInput>(body.clone())
            .unwrap_or_else(|e| panic!("ImportInput does not read {body}: {e}"));
    }
}

/// The check catches drift: a twin with one property more than the core
/// type writes fails it.
#[test]
#[should_panic(expected = "the core type writes the left keys")]
fn a_drifted_twin_fails_the_check() {
    let mut doc = document();
    doc["components"]["schemas"]["SprintRef"]["properties"]["goal"] = json!({"type": "string"});
    check::<atlasgate_core::jira::ops::SprintRef>(&doc, "SprintRef");
}

#[test]
fn every_twin_is_checked() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema.rs")).unwrap();
    let twins: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub struct "))
        // A unit struct (`pub struct AuditKind;`) is a schema written by
        // hand from one of the core's lists (its enum's variants, the tool
        // names, a pattern), not a twin of a core type.
        .filter(|rest| !rest.trim_end().ends_with(';'))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    let covered: BTreeSet<String> = CHECKED
        .iter()
        .chain(INPUTS)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(twins, covered, "a twin of src/schema.rs without a check");
}
