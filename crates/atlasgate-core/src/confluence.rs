//! Typed Confluence operations (docs/design.md §3 `/v1/connections/{id}/confluence/…`):
//! spaces and the pages of a space, over the v2 API, following its cursor
//! pagination (`_links.next`) to the end.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atlassian::path::ProxyPath;
use crate::atlassian::{ApiRequest, AtlassianClient, AtlassianError, PageGuard, Product};

/// A Confluence space.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Space {
    pub id: String,
    pub key: String,
    pub name: String,
    /// `global` or `personal`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<String>,
    pub url: Option<String>,
}

/// A Confluence page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Page {
    pub id: String,
    pub title: String,
    /// `current`, `draft`, `archived`…
    pub status: Option<String>,
    /// Version number.
    pub version: Option<i64>,
    /// When the current version was made (RFC 3339).
    pub updated: Option<String>,
    /// The page in the browser.
    pub url: Option<String>,
}

/// Follow `_links.next` from `first` until the end; returns every result
/// and the `_links.base` (site wiki URL) of the first page.
pub async fn all_results(
    client: &AtlassianClient,
    app_id: Option<&str>,
    connection_id: &str,
    first: ApiRequest,
) -> Result<(Vec<Value>, Option<String>), AtlassianError> {
    let mut out = Vec::new();
    let mut base = None;
    let mut req = first;
    // Bounded: 1000 pages of 250 is more than any space holds.
    let mut guard = PageGuard::with_cap("Confluence list", 1000);
    loop {
        let (page, _): (Value, _) = client.json(app_id, connection_id, req).await?;
        if base.is_none() {
            base = page["_links"]["base"].as_str().map(String::from);
        }
        out.extend(page["results"].as_array().cloned().unwrap_or_default());
        let Some(next) = page["_links"]["next"].as_str() else {
            break;
        };
        guard.follow(next)?;
        // The next link is relative to the site (`/wiki/api/v2/…?cursor=…`);
        // it must stay below the site's base like any proxied path.
        let next = next.trim_start_matches('/');
        let (path, query) = next.split_once('?').unwrap_or((next, ""));
        let path = ProxyPath::parse(path)
            .map_err(|e| AtlassianError::Decode(format!("unusable next link: {e}")))?;
        let mut r = ApiRequest::get(Product::Confluence, path.as_str());
        r.query = (!query.is_empty()).then(|| query.to_string());
        req = r;
    }
    Ok((out, base))
}

fn link(base: &Option<String>, v: &Value) -> Option<String> {
    let webui = v["_links"]["webui"].as_str()?;
    Some(format!(
        "{}{}",
        base.as_deref().unwrap_or("").trim_end_matches('/'),
        webui
    ))
}

fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn space_from(base: &Option<String>, v: &Value) -> Space {
    Space {
        id: id_of(&v["id"]),
        key: v["key"].as_str().unwrap_or_default().to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        type_: v["type"].as_str().map(String::from),
        status: v["status"].as_str().map(String::from),
        url: link(base, v),
    }
}

pub async fn spaces(
    client: &AtlassianClient,
    app_id: Option<&str>,
    connection_id: &str,
    keys: Option<&str>,
) -> Result<Vec<Space>, AtlassianError> {
    let mut q = vec![("limit", "250".to_string())];
    if let Some(k) = keys {
        q.push(("keys", k.to_string()));
    }
    let first = ApiRequest::get(Product::Confluence, "wiki/api/v2/spaces").query(&q);
    let (all, base) = all_results(client, app_id, connection_id, first).await?;
    Ok(all.iter().map(|v| space_from(&base, v)).collect())
}

pub async fn pages(
    client: &AtlassianClient,
    app_id: Option<&str>,
    connection_id: &str,
    space_id: &str,
) -> Result<Vec<Page>, AtlassianError> {
    let first = ApiRequest::get(
        Product::Confluence,
        format!("wiki/api/v2/spaces/{space_id}/pages"),
    )
    .query(&[("limit", "250")]);
    let (all, base) = all_results(client, app_id, connection_id, first).await?;
    Ok(all
        .iter()
        .map(|v| Page {
            id: id_of(&v["id"]),
            title: v["title"].as_str().unwrap_or_default().to_string(),
            status: v["status"].as_str().map(String::from),
            version: v["version"]["number"].as_i64(),
            updated: v["version"]["createdAt"]
                .as_str()
                .or_else(|| v["createdAt"].as_str())
                .map(String::from),
            url: link(&base, v),
        })
        .collect())
}
