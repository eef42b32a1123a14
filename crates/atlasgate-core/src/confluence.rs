//! Typed Confluence operations (docs/design.md §3 `/v1/connections/{id}/confluence/…`):
//! spaces and the pages of a space, over the v2 API, following its cursor
//! pagination (`_links.next`) to the end.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atlassian::path::ProxyPath;
use crate::atlassian::{ApiRequest, AtlassianClient, AtlassianError, PageGuard, Product};
use crate::ids::ConnectionId;

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
    connection_id: &ConnectionId,
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
    connection_id: &ConnectionId,
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
    connection_id: &ConnectionId,
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

// ---- search, page reads and writes (docs/design.md §16) -------------------------------

pub use crate::jira::Ctx;

/// How long the site's space list (key ⇄ id) is remembered.
const SPACES_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// Most results [`search`] follows pages to.
pub const MAX_SEARCH_LIMIT: usize = 1000;

/// One CQL search result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchHit {
    /// The content id (a page id for pages).
    pub id: String,
    /// `page`, `blogpost`, …
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub space_key: Option<String>,
    /// Confluence's text excerpt around the match.
    pub excerpt: Option<String>,
    /// The content in the browser.
    pub url: Option<String>,
    /// RFC 3339.
    pub last_modified: Option<String>,
}

/// A page with its body as Markdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageDetail {
    pub id: String,
    pub space_id: String,
    pub space_key: Option<String>,
    pub title: String,
    /// `current`, `draft`, `archived`…
    pub status: Option<String>,
    /// The version number; an update names this one.
    pub version: i64,
    /// When the current version was made (RFC 3339).
    pub updated: Option<String>,
    pub url: Option<String>,
    pub parent_id: Option<String>,
    /// The body (ADF) rendered as Markdown.
    pub markdown: String,
}

/// A page to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPage {
    /// Space key (`ENG`) or id.
    pub space: String,
    pub title: String,
    pub markdown: String,
    /// Under this page (same space); else under the space's homepage.
    pub parent_id: Option<String>,
}

/// A new version of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageUpdate {
    /// `None` keeps the title.
    pub title: Option<String>,
    pub markdown: String,
    /// The version the caller read; atlasgate writes `version + 1`.
    pub version: i64,
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// The site's spaces, cached for a few minutes (ids and keys do not change).
async fn site_spaces(ctx: &Ctx<'_>) -> Result<Vec<Space>, AtlassianError> {
    if let Some(v) = ctx
        .client
        .cache
        .get(ctx.connection_id, "confluence-spaces", SPACES_TTL)
    {
        if let Ok(s) = serde_json::from_value(v) {
            return Ok(s);
        }
    }
    let all = spaces(ctx.client, ctx.app_id, ctx.connection_id, None).await?;
    ctx.client.cache.put(
        ctx.connection_id,
        "confluence-spaces",
        serde_json::to_value(&all).unwrap_or_default(),
    );
    Ok(all)
}

/// The space a key or id names (`Error::Invalid` on `space` when none).
async fn resolve_space(ctx: &Ctx<'_>, space: &str) -> crate::Result<Space> {
    let space = space.trim();
    let find = |all: &[Space]| {
        all.iter()
            .find(|s| s.id == space || s.key.eq_ignore_ascii_case(space))
            .cloned()
    };
    if let Some(s) = find(&site_spaces(ctx).await?) {
        return Ok(s);
    }
    // A space made in the last few minutes is not in the cached list yet.
    let q = if all_digits(space) { "ids" } else { "keys" };
    let first = ApiRequest::get(Product::Confluence, "wiki/api/v2/spaces")
        .query(&[(q, space), ("limit", "1")]);
    let (found, base) = all_results(ctx.client, ctx.app_id, ctx.connection_id, first).await?;
    let found: Vec<Space> = found.iter().map(|v| space_from(&base, v)).collect();
    find(&found)
        .ok_or_else(|| crate::Error::invalid("space", format!("no space {space:?} on this site")))
}

async fn space_key_of(ctx: &Ctx<'_>, space_id: &str) -> Option<String> {
    site_spaces(ctx)
        .await
        .ok()?
        .into_iter()
        .find(|s| s.id == space_id)
        .map(|s| s.key)
}

/// The ADF body a v2 write sends.
fn adf_body(markdown: &str) -> Value {
    serde_json::json!({
        "representation": "atlas_doc_format",
        "value": crate::adf::markdown_to_adf(markdown).to_string(),
    })
}

/// The Markdown of a v2 page's `body.atlas_doc_format` (empty when absent).
pub fn page_markdown(v: &Value) -> String {
    v["body"]["atlas_doc_format"]["value"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .map(|doc| markdown_of(&doc))
        .unwrap_or_default()
}

/// An ADF document as Markdown, without the trailing newline.
fn markdown_of(doc: &Value) -> String {
    let mut md = crate::adf::adf_to_markdown(doc);
    md.truncate(md.trim_end_matches('\n').len());
    md
}

/// A [`PageDetail`] from a v2 page; `base` is the site's wiki URL.
pub fn page_detail(base: Option<&str>, v: &Value, space_key: Option<String>) -> PageDetail {
    let base = base.map(String::from);
    PageDetail {
        id: id_of(&v["id"]),
        space_id: id_of(&v["spaceId"]),
        space_key,
        title: v["title"].as_str().unwrap_or_default().to_string(),
        status: v["status"].as_str().map(String::from),
        version: v["version"]["number"].as_i64().unwrap_or(0),
        updated: v["version"]["createdAt"]
            .as_str()
            .or_else(|| v["createdAt"].as_str())
            .map(String::from),
        url: link(&base, v),
        parent_id: match &v["parentId"] {
            Value::Null => None,
            p => Some(id_of(p)),
        },
        markdown: page_markdown(v),
    }
}

fn check_page_id(page_id: &str) -> crate::Result<()> {
    if all_digits(page_id) {
        Ok(())
    } else {
        Err(crate::Error::invalid("page", "must be a page id (digits)"))
    }
}

fn check_title(title: &str) -> crate::Result<()> {
    if title.trim().is_empty() {
        return Err(crate::Error::invalid("title", "must not be empty"));
    }
    // Confluence's limit on a page title.
    if title.chars().count() > 255 {
        return Err(crate::Error::invalid(
            "title",
            "must be at most 255 characters",
        ));
    }
    Ok(())
}

/// The results of a v1 collection (`/wiki/rest/api/…`), following
/// `_links.next` (relative to the wiki base) until `limit` results or the
/// end; also the `_links.base` (site wiki URL) of the first page.
pub async fn v1_results(
    ctx: &Ctx<'_>,
    first: ApiRequest,
    limit: usize,
) -> Result<(Vec<Value>, Option<String>), AtlassianError> {
    let mut out = Vec::new();
    let mut base = None;
    let mut req = first;
    while out.len() < limit {
        let (page, _): (Value, _) = ctx.client.json(ctx.app_id, ctx.connection_id, req).await?;
        if base.is_none() {
            base = page["_links"]["base"].as_str().map(String::from);
        }
        let results = page["results"].as_array().cloned().unwrap_or_default();
        let empty = results.is_empty();
        out.extend(results);
        let Some(next) = page["_links"]["next"].as_str() else {
            break;
        };
        if empty {
            break;
        }
        // `/rest/api/search?…&cursor=…`: below the wiki base, like any proxied path.
        let next = next.trim_start_matches('/');
        let (path, query) = next.split_once('?').unwrap_or((next, ""));
        let path = ProxyPath::parse(&format!("wiki/{path}"))
            .map_err(|e| AtlassianError::Decode(format!("unusable next link: {e}")))?;
        let mut r = ApiRequest::get(Product::Confluence, path.as_str());
        r.query = (!query.is_empty()).then(|| query.to_string());
        req = r;
    }
    out.truncate(limit);
    Ok((out, base))
}

/// CQL search (`GET /wiki/rest/api/search`), following `_links.next` up to `limit`.
pub async fn search(ctx: &Ctx<'_>, cql: &str, limit: usize) -> crate::Result<Vec<SearchHit>> {
    if cql.trim().is_empty() {
        return Err(crate::Error::invalid("cql", "must not be empty"));
    }
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(crate::Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_SEARCH_LIMIT}"),
        ));
    }
    let first = ApiRequest::get(Product::Confluence, "wiki/rest/api/search").query(&[
        ("cql", cql.to_string()),
        ("limit", limit.min(100).to_string()),
        ("expand", "content.space".to_string()),
    ]);
    let (results, base) = v1_results(ctx, first, limit).await?;
    let base = base.unwrap_or_default();
    let mut out = Vec::new();
    for r in &results {
        let c = &r["content"];
        out.push(SearchHit {
            id: id_of(&c["id"]),
            type_: c["type"].as_str().unwrap_or("page").to_string(),
            title: r["title"]
                .as_str()
                .or_else(|| c["title"].as_str())
                .unwrap_or_default()
                .to_string(),
            space_key: c["space"]["key"].as_str().map(String::from).or_else(|| {
                r["resultGlobalContainer"]["displayUrl"]
                    .as_str()
                    .and_then(|u| u.strip_prefix("/spaces/"))
                    .map(String::from)
            }),
            excerpt: r["excerpt"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(String::from),
            url: r["url"]
                .as_str()
                .map(|u| format!("{}{u}", base.trim_end_matches('/'))),
            last_modified: r["lastModified"].as_str().map(String::from),
        });
    }
    out.truncate(limit);
    Ok(out)
}

/// One page with its body as Markdown (`GET /pages/{id}?body-format=atlas_doc_format`).
pub async fn get_page(ctx: &Ctx<'_>, page_id: &str) -> crate::Result<PageDetail> {
    check_page_id(page_id)?;
    let req = ApiRequest::get(Product::Confluence, format!("wiki/api/v2/pages/{page_id}"))
        .query(&[("body-format", "atlas_doc_format")]);
    let (v, _): (Value, _) = ctx.client.json(ctx.app_id, ctx.connection_id, req).await?;
    let space_key = space_key_of(ctx, &id_of(&v["spaceId"])).await;
    Ok(page_detail(v["_links"]["base"].as_str(), &v, space_key))
}

/// Create a page (`POST /pages`, body in ADF); answers it as stored.
pub async fn create_page(ctx: &Ctx<'_>, new: &NewPage) -> crate::Result<PageDetail> {
    check_title(&new.title)?;
    if let Some(p) = &new.parent_id {
        check_page_id(p).map_err(|_| crate::Error::invalid("parent_id", "must be a page id"))?;
    }
    let space = resolve_space(ctx, &new.space).await?;
    let mut body = serde_json::json!({
        "spaceId": space.id,
        "status": "current",
        "title": new.title.trim(),
        "body": adf_body(&new.markdown),
    });
    if let Some(p) = &new.parent_id {
        body["parentId"] = Value::String(p.clone());
    }
    let req =
        ApiRequest::new(Product::Confluence, http::Method::POST, "wiki/api/v2/pages").json(&body);
    let (v, _): (Value, _) = ctx.client.json(ctx.app_id, ctx.connection_id, req).await?;
    let mut page = page_detail(v["_links"]["base"].as_str(), &v, Some(space.key));
    // The answer's body is in storage format; the page holds what was sent.
    page.markdown = markdown_of(&crate::adf::markdown_to_adf(&new.markdown));
    Ok(page)
}

/// Write version `version + 1` of a page. A page no longer at `version` is
/// [`crate::Error::VersionConflict`] with its current version, and nothing is written.
pub async fn update_page(
    ctx: &Ctx<'_>,
    page_id: &str,
    upd: &PageUpdate,
) -> crate::Result<PageDetail> {
    check_page_id(page_id)?;
    if upd.version < 1 {
        return Err(crate::Error::invalid(
            "version",
            "must be the version number you read (1 or more)",
        ));
    }
    if let Some(t) = &upd.title {
        check_title(t)?;
    }
    let current = current_version(ctx, page_id).await?;
    if current.0 != upd.version {
        return Err(crate::Error::VersionConflict {
            page_id: page_id.to_string(),
            current: current.0,
        });
    }
    let title = upd.title.as_deref().map(str::trim).unwrap_or(&current.1);
    let body = serde_json::json!({
        "id": page_id,
        "status": "current",
        "title": title,
        "version": { "number": upd.version + 1 },
        "body": adf_body(&upd.markdown),
    });
    let req = ApiRequest::new(
        Product::Confluence,
        http::Method::PUT,
        format!("wiki/api/v2/pages/{page_id}"),
    )
    .json(&body);
    let v: Value = match ctx.client.json(ctx.app_id, ctx.connection_id, req).await {
        Ok((v, _)) => v,
        // Someone else wrote between our read and our write.
        Err(AtlassianError::Status { status, .. }) if status == http::StatusCode::CONFLICT => {
            let (now, _) = current_version(ctx, page_id).await?;
            return Err(crate::Error::VersionConflict {
                page_id: page_id.to_string(),
                current: now,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let space_key = space_key_of(ctx, &id_of(&v["spaceId"])).await;
    let mut page = page_detail(v["_links"]["base"].as_str(), &v, space_key);
    page.markdown = markdown_of(&crate::adf::markdown_to_adf(&upd.markdown));
    Ok(page)
}

/// A page's current (version, title).
async fn current_version(ctx: &Ctx<'_>, page_id: &str) -> crate::Result<(i64, String)> {
    let req = ApiRequest::get(Product::Confluence, format!("wiki/api/v2/pages/{page_id}"));
    let (v, _): (Value, _) = ctx.client.json(ctx.app_id, ctx.connection_id, req).await?;
    let version = v["version"]["number"]
        .as_i64()
        .ok_or_else(|| crate::Error::Decode("page without a version".into()))?;
    Ok((version, v["title"].as_str().unwrap_or_default().to_string()))
}
