//! Per-operation scope requirements, from `data/scopes.json` (generated from
//! the specs; `tests/sim/spec.rs` re-derives it and fails on drift).
//!
//! Rule, read from the specs: an operation lists one or more scope sets —
//! each entry of `x-atlassian-oauth2-scopes` (the classic "Current" set and
//! the granular "Beta" set), or, when that list is absent (Jira Software),
//! the `OAuth2` / `oAuthDefinitions` entry of `security`. A token may call
//! the operation when it holds **every** scope of **at least one** set.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// One row of `data/scopes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeEntry {
    pub method: String,
    pub api: String,
    pub path: String,
    pub scopes: Vec<Vec<String>>,
}

pub const SCOPES_JSON: &str = include_str!("../../data/scopes.json");

/// The Confluence v1 routes' scopes: not in the shared specs, so kept by
/// hand from Atlassian's v1 reference (each operation's "Classic" and
/// "Granular" scopes).
pub const SCOPES_V1_JSON: &str = include_str!("../../data/scopes-confluence-v1.json");

/// (method, api, spec path) → scope alternatives.
type Table = HashMap<(String, String, String), Vec<Vec<String>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rows: Vec<ScopeEntry> = serde_json::from_str(SCOPES_JSON).unwrap_or_default();
        let v1: Vec<ScopeEntry> = serde_json::from_str(SCOPES_V1_JSON).unwrap_or_default();
        rows.extend(v1);
        rows.into_iter()
            .map(|e| ((e.method, e.api, e.path), e.scopes))
            .collect()
    })
}

/// The scope alternatives of an operation; `None` if the table lacks it
/// (then nothing is allowed: a route without a table entry is a bug the
/// spec test catches).
pub fn alternatives(method: &str, api: &str, path: &str) -> Option<&'static Vec<Vec<String>>> {
    table().get(&(method.to_string(), api.to_string(), path.to_string()))
}

pub fn satisfies(granted: &[String], alternatives: &[Vec<String>]) -> bool {
    alternatives
        .iter()
        .any(|alt| alt.iter().all(|s| granted.iter().any(|g| g == s)))
}

/// Every scope any served operation names (for registering the default client).
pub fn all_known_scopes() -> Vec<String> {
    let mut v: Vec<String> = table().values().flatten().flatten().cloned().collect();
    v.sort();
    v.dedup();
    v
}
