//! Confluence v2 page writes (create, update with the version check, delete
//! to the trash), child pages, labels and `sort` on page lists. The write
//! rules live in [`create`], [`edit`] and [`trash`] so that the v1 content
//! API (`super::v1`) applies exactly the same ones.

use axum::extract::{Path, RawQuery};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::{bad, cursor, list_of, not_found, page_json, paged, site_of, IdPath};
use crate::errors::{ApiError, ApiResult};
use crate::gateway::Ctx;
use crate::jira::{query_one, query_pairs};
use crate::model::{Page, Site, Timestamp};

/// Why a write was refused; each API renders it in its own error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    NotFound,
    /// The version number was not the current one + 1.
    Conflict {
        current: u32,
    },
    Invalid(String),
}

impl WriteError {
    pub fn status(&self) -> StatusCode {
        match self {
            WriteError::NotFound => StatusCode::NOT_FOUND,
            WriteError::Conflict { .. } => StatusCode::CONFLICT,
            WriteError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(&self) -> String {
        match self {
            WriteError::NotFound => "No content found with the given id".into(),
            // Confluence's wording (both APIs).
            WriteError::Conflict { current } => {
                format!("Version must be incremented on update. Current version is: {current}")
            }
            WriteError::Invalid(m) => m.clone(),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound => not_found(),
            other => ApiError::confluence(other.status(), Some(other.message())),
        }
    }
}

/// A page to create, API-neutral.
pub struct NewPage {
    pub space_id: u64,
    pub title: String,
    /// Storage-format body.
    pub body: String,
    /// The ADF document as sent, for a body in `atlas_doc_format`.
    pub adf: Option<String>,
    pub parent_id: Option<u64>,
    /// `parent_id` absent and this false: the page goes under the space homepage.
    pub root_level: bool,
    /// "current" or "draft".
    pub status: String,
}

/// An update, API-neutral. `None` keeps the current value.
pub struct PageEdit {
    pub version: u32,
    pub title: Option<String>,
    pub body: Option<String>,
    /// With `body`: the ADF document as sent (`None` for other formats).
    pub adf: Option<String>,
    pub parent_id: Option<u64>,
    pub status: String,
    pub message: String,
    pub minor_edit: bool,
}

const DUPLICATE_TITLE: &str =
    "A page with this title already exists: A page already exists with the same TITLE in this space";

fn title_taken(site: &Site, space_id: u64, title: &str, except: Option<u64>) -> bool {
    site.pages.iter().any(|p| {
        p.space_id == space_id
            && p.status == "current"
            && Some(p.id) != except
            && p.title.eq_ignore_ascii_case(title)
    })
}

fn check_parent(
    site: &Site,
    space_id: u64,
    parent: u64,
    child: Option<u64>,
) -> Result<(), WriteError> {
    let Some(p) = site
        .pages
        .iter()
        .find(|p| p.id == parent && p.status == "current")
    else {
        return Err(WriteError::Invalid(format!(
            "Parent page {parent} not found"
        )));
    };
    if p.space_id != space_id {
        return Err(WriteError::Invalid(
            "The parent page must be in the same space".into(),
        ));
    }
    // Moving a page under itself or one of its descendants would make a cycle.
    let mut cursor = Some(parent);
    while let (Some(c), Some(me)) = (cursor, child) {
        if c == me {
            return Err(WriteError::Invalid(
                "A page cannot be moved under itself or its descendants".into(),
            ));
        }
        cursor = site
            .pages
            .iter()
            .find(|p| p.id == c)
            .and_then(|p| p.parent_id);
    }
    Ok(())
}

/// Create a page; answers its id.
pub fn create(
    site: &mut Site,
    new: NewPage,
    author: &str,
    now: Timestamp,
) -> Result<u64, WriteError> {
    let space = site
        .spaces
        .iter()
        .find(|s| s.id == new.space_id)
        .ok_or(WriteError::NotFound)?;
    let homepage = space.homepage_id;
    if new.status != "current" && new.status != "draft" {
        return Err(WriteError::Invalid(format!(
            "Invalid status: {}",
            new.status
        )));
    }
    if new.status == "current" && new.title.trim().is_empty() {
        return Err(WriteError::Invalid(
            "Title is required for a page that is not a draft".into(),
        ));
    }
    if new.status == "current" && title_taken(site, new.space_id, &new.title, None) {
        return Err(WriteError::Invalid(DUPLICATE_TITLE.into()));
    }
    let parent_id = match (new.parent_id, new.root_level) {
        (Some(_), true) => {
            return Err(WriteError::Invalid(
                "parentId may not be given for a root-level page".into(),
            ))
        }
        (Some(p), false) => {
            check_parent(site, new.space_id, p, None)?;
            Some(p)
        }
        (None, true) => None,
        (None, false) => homepage,
    };
    let id = site.pages.iter().map(|p| p.id).max().unwrap_or(1_000_000) + 1;
    site.pages.push(Page {
        id,
        space_id: new.space_id,
        title: new.title,
        status: new.status,
        parent_id,
        author_account_id: author.to_string(),
        created_at: now,
        version: 1,
        version_created_at: now,
        body: new.body,
        adf: new.adf,
        labels: Vec::new(),
        version_author: author.to_string(),
        version_message: String::new(),
        minor_edit: false,
    });
    Ok(id)
}

/// Update a page: the version must be the current one + 1 (else 409). A
/// trashed page given status "current" is restored, its content unchanged.
pub fn edit(
    site: &mut Site,
    id: u64,
    e: PageEdit,
    author: &str,
    now: Timestamp,
) -> Result<(), WriteError> {
    let page = site
        .pages
        .iter()
        .find(|p| p.id == id)
        .ok_or(WriteError::NotFound)?;
    if e.status != "current" && e.status != "draft" && e.status != "archived" {
        return Err(WriteError::Invalid(format!("Invalid status: {}", e.status)));
    }
    if page.status == "trashed" {
        if e.status != "current" {
            return Err(WriteError::NotFound);
        }
        if let Some(p) = site.pages.iter_mut().find(|p| p.id == id) {
            p.status = "current".into();
        }
        return Ok(());
    }
    if e.version != page.version + 1 {
        return Err(WriteError::Conflict {
            current: page.version,
        });
    }
    let space_id = page.space_id;
    if let Some(t) = &e.title {
        if t.trim().is_empty() {
            return Err(WriteError::Invalid("Title cannot be empty".into()));
        }
        if title_taken(site, space_id, t, Some(id)) {
            return Err(WriteError::Invalid(DUPLICATE_TITLE.into()));
        }
    }
    if let Some(p) = e.parent_id {
        check_parent(site, space_id, p, Some(id))?;
    }
    let Some(page) = site.pages.iter_mut().find(|p| p.id == id) else {
        return Err(WriteError::NotFound);
    };
    if let Some(t) = e.title {
        page.title = t;
    }
    if let Some(b) = e.body {
        page.body = b;
        page.adf = e.adf;
    }
    if e.parent_id.is_some() {
        page.parent_id = e.parent_id;
    }
    page.status = e.status;
    page.version = e.version;
    page.version_created_at = now;
    page.version_author = author.to_string();
    page.version_message = e.message;
    page.minor_edit = e.minor_edit;
    Ok(())
}

/// Move a current page to the trash (its children move up to its parent,
/// *guess*), or with `purge` remove a trashed page for good.
pub fn trash(site: &mut Site, id: u64, purge: bool) -> Result<(), WriteError> {
    let page = site
        .pages
        .iter()
        .find(|p| p.id == id)
        .ok_or(WriteError::NotFound)?;
    match (page.status.as_str(), purge) {
        ("trashed", true) => {
            site.pages.retain(|p| p.id != id);
            Ok(())
        }
        ("trashed", false) | (_, true) => Err(WriteError::NotFound),
        _ => {
            let parent = page.parent_id;
            for p in site.pages.iter_mut() {
                if p.parent_id == Some(id) {
                    p.parent_id = parent;
                }
                if p.id == id {
                    p.status = "trashed".into();
                }
            }
            Ok(())
        }
    }
}

/// The storage-format body of a write: `{representation, value}` or
/// `{storage: {…}}` (also `wiki` and `atlas_doc_format`, converted).
pub fn body_of(body: &Value) -> Result<Option<String>, WriteError> {
    let Some(o) = body.as_object() else {
        return Ok(None);
    };
    let (repr, value) = if let Some(r) = o.get("representation").and_then(Value::as_str) {
        (
            r.to_string(),
            o.get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    } else if let Some((r, inner)) = o.iter().next() {
        (
            r.clone(),
            inner
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    } else {
        return Ok(None);
    };
    match repr.as_str() {
        "storage" => Ok(Some(value)),
        // Wiki markup and ADF are stored as paragraphs of their text (*guess*:
        // Confluence converts both to storage format; atlassim keeps the words).
        "wiki" => Ok(Some(paragraphs(&value))),
        "atlas_doc_format" => {
            let doc: Value = serde_json::from_str(&value)
                .map_err(|_| WriteError::Invalid("Invalid atlas_doc_format body".into()))?;
            Ok(Some(paragraphs(&adf_text(&doc))))
        }
        other => Err(WriteError::Invalid(format!(
            "Invalid body representation: {other}"
        ))),
    }
}

/// The ADF document of a body written in `atlas_doc_format`
/// (`{representation, value}` or `{atlas_doc_format: {value}}`), as sent.
pub fn adf_of(body: &Value) -> Option<String> {
    let o = body.as_object()?;
    let inner = match o.get("representation").and_then(Value::as_str) {
        Some("atlas_doc_format") => body,
        Some(_) => return None,
        None => o.get("atlas_doc_format")?,
    };
    inner.get("value")?.as_str().map(str::to_string)
}

fn paragraphs(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let escaped = l
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!("<p>{escaped}</p>")
        })
        .collect()
}

/// The text of an ADF document, one line per block.
fn adf_text(v: &Value) -> String {
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    let parts: Vec<String> = v
        .get("content")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(adf_text).collect())
        .unwrap_or_default();
    let block = v.get("type").and_then(Value::as_str) == Some("doc");
    parts.join(if block { "\n" } else { "" })
}

/// A `sort` parameter (`field` or `-field`, `default` when absent):
/// (descending, field, the value as given).
fn sort_order(sort: Option<String>, default: &str) -> (bool, String, String) {
    let sort = sort
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string());
    match sort.strip_prefix('-') {
        Some(f) => (true, f.to_string(), sort.clone()),
        None => (false, sort.clone(), sort),
    }
}

/// One cursor page of `items`, charged as that many objects.
fn paged_items<T>(
    ctx: &Ctx,
    uri: &Uri,
    q: &[(String, String)],
    site: &Site,
    items: &[T],
    render: impl Fn(&T) -> Value,
) -> ApiResult<Response> {
    let c = cursor(q)?;
    let results: Vec<Value> = items
        .iter()
        .skip(c.offset)
        .take(c.limit)
        .map(render)
        .collect();
    ctx.charge(results.len());
    Ok(paged(uri, q, site, &c, items.len(), results))
}

/// `sort` of `GET /pages` and `/spaces/{id}/pages` (PageSortOrder); default id.
pub fn sort_pages(pages: &mut [&Page], sort: Option<&str>) -> ApiResult<()> {
    let (desc, field, sort) = sort_order(sort.map(str::to_string), "id");
    match field.as_str() {
        "id" => pages.sort_by_key(|p| p.id),
        "created-date" => pages.sort_by_key(|p| (p.created_at, p.id)),
        "modified-date" => pages.sort_by_key(|p| (p.version_created_at, p.id)),
        "title" => pages.sort_by(|a, b| {
            a.title
                .to_lowercase()
                .cmp(&b.title.to_lowercase())
                .then(a.id.cmp(&b.id))
        }),
        _ => return Err(bad(&format!("Invalid sort: {sort}"))),
    }
    if desc {
        pages.reverse();
    }
    Ok(())
}

fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|_| bad("Request body is not valid JSON"))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn id_field(v: &Value, name: &str) -> ApiResult<Option<u64>> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(&format!("Invalid {name}: {s}"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(&format!("Invalid {name}"))),
        Some(_) => Err(bad(&format!("Invalid {name}"))),
    }
}

fn page_id(p: &IdPath) -> ApiResult<u64> {
    p.id.parse()
        .map_err(|_| bad(&format!("Invalid page id: {}", p.id)))
}

fn flag(q: &[(String, String)], name: &str) -> bool {
    query_one(q, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// One page as createPage / updatePage answer it (storage body, base link).
fn page_single(site: &Site, id: u64) -> ApiResult<Json<Value>> {
    let page = site
        .pages
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(not_found)?;
    let mut v = page_json(page, site, Some("storage"));
    if let Some(links) = v.get_mut("_links").and_then(Value::as_object_mut) {
        links.insert("base".into(), json!(format!("{}/wiki", site.url)));
    }
    Ok(Json(v))
}

/// `POST /pages`.
pub async fn create_page(
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&raw);
    let v = parse_json(&body)?;
    let space_id = id_field(&v, "spaceId")?.ok_or_else(|| bad("spaceId is required"))?;
    let new = NewPage {
        space_id,
        title: str_field(&v, "title").unwrap_or_default().to_string(),
        body: v
            .get("body")
            .map(body_of)
            .transpose()?
            .flatten()
            .unwrap_or_default(),
        adf: v.get("body").and_then(adf_of),
        parent_id: id_field(&v, "parentId")?,
        root_level: flag(&q, "root-level"),
        status: str_field(&v, "status").unwrap_or("current").to_string(),
    };
    let now = ctx.state.clock.now();
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    let id = create(site, new, &ctx.access.account_id, now)?;
    page_single(site, id)
}

/// `PUT /pages/{id}`.
pub async fn update_page(
    ctx: Ctx,
    Path(p): Path<IdPath>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let id = page_id(&p)?;
    let v = parse_json(&body)?;
    if let Some(body_id) = id_field(&v, "id")? {
        if body_id != id {
            return Err(bad(
                "The id in the body does not match the page id in the path",
            ));
        }
    }
    let status = str_field(&v, "status").ok_or_else(|| bad("status is required"))?;
    let version = v
        .get("version")
        .and_then(|x| x.get("number"))
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("version.number is required"))?;
    let edit_req = PageEdit {
        version: u32::try_from(version).map_err(|_| bad("Invalid version number"))?,
        title: Some(
            str_field(&v, "title")
                .ok_or_else(|| bad("title is required"))?
                .to_string(),
        ),
        body: v.get("body").map(body_of).transpose()?.flatten(),
        adf: v.get("body").and_then(adf_of),
        parent_id: id_field(&v, "parentId")?,
        status: status.to_string(),
        message: v
            .get("version")
            .and_then(|x| str_field(x, "message"))
            .unwrap_or_default()
            .to_string(),
        minor_edit: false,
    };
    let now = ctx.state.clock.now();
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    edit(site, id, edit_req, &ctx.access.account_id, now)?;
    page_single(site, id)
}

/// `DELETE /pages/{id}` (`purge=true` removes a trashed page for good).
pub async fn delete_page(
    ctx: Ctx,
    Path(p): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let id = page_id(&p)?;
    let q = query_pairs(&raw);
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    trash(site, id, flag(&q, "purge"))?;
    Ok(StatusCode::NO_CONTENT)
}

fn current_page<'a>(site: &'a Site, p: &IdPath) -> ApiResult<&'a Page> {
    site.pages
        .iter()
        .find(|x| x.id.to_string() == p.id && x.status == "current")
        .ok_or_else(not_found)
}

/// `GET /pages/{id}/children`: current child pages, by child position
/// (creation order, *guess*) unless `sort` says otherwise.
pub async fn list_children(
    ctx: Ctx,
    uri: Uri,
    Path(p): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = query_pairs(&raw);
    let world = ctx.state.world();
    let site = site_of(&ctx, &world)?;
    let parent = current_page(site, &p)?;
    let mut children: Vec<(usize, &Page)> = {
        let mut v: Vec<&Page> = site
            .pages
            .iter()
            .filter(|x| x.parent_id == Some(parent.id) && x.status == "current")
            .collect();
        v.sort_by_key(|x| x.id);
        v.into_iter().enumerate().collect()
    };
    let (desc, field, sort) = sort_order(query_one(&q, "sort"), "child-position");
    match field.as_str() {
        "child-position" | "id" => {}
        "created-date" => children.sort_by_key(|(i, x)| (x.created_at, *i)),
        "modified-date" => children.sort_by_key(|(i, x)| (x.version_created_at, *i)),
        _ => return Err(bad(&format!("Invalid sort: {sort}"))),
    }
    if desc {
        children.reverse();
    }
    paged_items(&ctx, &uri, &q, site, &children, |(pos, x)| {
        json!({
            "id": x.id.to_string(),
            "status": x.status,
            "title": x.title,
            "spaceId": x.space_id.to_string(),
            "childPosition": pos,
        })
    })
}

/// `GET /pages/{id}/labels` (`prefix` filter; `sort` by name or id).
pub async fn list_labels(
    ctx: Ctx,
    uri: Uri,
    Path(p): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = query_pairs(&raw);
    let prefixes = list_of(&q, "prefix");
    let world = ctx.state.world();
    let site = site_of(&ctx, &world)?;
    let page = current_page(site, &p)?;
    let mut labels: Vec<_> = page
        .labels
        .iter()
        .filter(|l| prefixes.is_empty() || prefixes.contains(&l.prefix))
        .collect();
    let (desc, field, sort) = sort_order(query_one(&q, "sort"), "id");
    match field.as_str() {
        // Seeded labels were all created with the page: creation order is id order.
        "id" | "created-date" => labels.sort_by_key(|l| l.id),
        "name" => labels.sort_by(|a, b| a.name.cmp(&b.name)),
        _ => return Err(bad(&format!("Invalid sort: {sort}"))),
    }
    if desc {
        labels.reverse();
    }
    paged_items(
        &ctx,
        &uri,
        &q,
        site,
        &labels,
        |l| json!({"id": l.id.to_string(), "name": l.name, "prefix": l.prefix}),
    )
}
