//! Confluence REST v1 (`/wiki/rest/api/…`): CQL search (`/search`,
//! `/content/search`) and the content operations client libraries call
//! (`atlassian-python-api`'s `create_page`, `update_page`,
//! `get_page_by_id`, `history`, `cql`). Not in the shared specs: shapes
//! follow Atlassian's published v1 reference (`Content`, `ContentArray`,
//! `SearchPageResponseSearchResult`), checked by the client-library test.
//!
//! Errors are v1's `{"statusCode", "data": {"authorized", "valid",
//! "errors", "successful"}, "message"}`; a CQL problem is a 400 whose
//! message starts "Could not parse cql : " (*guess* at the exact wording
//! after the query).

use axum::extract::{Path, RawQuery};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::pages_write::{self, NewPage, PageEdit, WriteError};
use super::{cql, decode_cursor, encode_cursor, iso, IdPath};
use crate::errors::ApiError;
use crate::gateway::Ctx;
use crate::jira::{query_one, query_pairs};
use crate::model::{Page, Site, User};

const DEFAULT_LIMIT: usize = 25;
/// *Guess*: the v1 docs only say limits "may be restricted by fixed system limits".
const MAX_LIMIT: usize = 250;

/// A v1 error answer.
#[derive(Debug)]
pub struct V1Error {
    status: StatusCode,
    message: String,
}

impl V1Error {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        V1Error {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let authorized = self.status != StatusCode::UNAUTHORIZED;
        let valid = self.status != StatusCode::BAD_REQUEST;
        (
            self.status,
            Json(json!({
                "statusCode": self.status.as_u16(),
                "data": {"authorized": authorized, "valid": valid, "errors": [], "successful": false},
                "message": self.message,
            })),
        )
            .into_response()
    }
}

impl From<WriteError> for V1Error {
    fn from(e: WriteError) -> Self {
        let message = match &e {
            WriteError::Conflict { .. } => format!(
                "com.atlassian.confluence.api.service.exceptions.api.ConflictException: {}",
                e.message()
            ),
            _ => e.message(),
        };
        V1Error::new(e.status(), message)
    }
}

impl From<ApiError> for V1Error {
    fn from(e: ApiError) -> Self {
        V1Error::new(StatusCode::NOT_FOUND, e.to_string())
    }
}

type V1Result<T> = Result<T, V1Error>;

fn cql_error(cql: &str, e: &cql::CqlError) -> V1Error {
    V1Error::bad(format!(
        "com.atlassian.confluence.api.service.exceptions.BadRequestException: Could not parse cql : {cql} ({})",
        e.message
    ))
}

/// Which properties to expand (`expand=body.storage,version,…`).
struct Expand(Vec<String>);

impl Expand {
    fn parse(q: &[(String, String)], prefix: &str) -> Expand {
        Expand(
            crate::jira::query_all(q, "expand")
                .iter()
                .flat_map(|s| s.split(','))
                .filter_map(|s| s.trim().strip_prefix(prefix).map(str::to_string))
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    fn with_defaults(mut self, defaults: &[&str]) -> Expand {
        for d in defaults {
            if !self.has(d) {
                self.0.push(d.to_string());
            }
        }
        self
    }

    /// `name` or any sub-expansion of it was asked for.
    fn has(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|e| e == name || e.starts_with(&format!("{name}.")))
    }
}

fn user_json(base: &str, users: &[User], account_id: &str) -> Value {
    let (name, email) = users
        .iter()
        .find(|u| u.account_id == account_id)
        .map(|u| (u.name.clone(), u.email.clone()))
        .unwrap_or_else(|| ("Former user".into(), String::new()));
    json!({
        "type": "known",
        "accountId": account_id,
        "accountType": "atlassian",
        "email": email,
        "publicName": name,
        "displayName": name,
        "isExternalCollaborator": false,
        "profilePicture": {"path": "/wiki/aa-avatar/default.png", "width": 48, "height": 48, "isDefault": true},
        "_links": {"self": format!("{base}/rest/api/user?accountId={account_id}")},
    })
}

fn version_json(base: &str, users: &[User], p: &Page) -> Value {
    json!({
        "by": user_json(base, users, &p.version_author),
        "when": iso(p.version_created_at),
        "friendlyWhen": p.version_created_at.format("%b %d, %Y").to_string(),
        "message": p.version_message,
        "number": p.version,
        "minorEdit": p.minor_edit,
        "contentTypeModified": false,
        "_links": {"self": format!("{base}/rest/api/content/{}/version/{}", p.id, p.version)},
    })
}

fn history_json(base: &str, users: &[User], p: &Page) -> Value {
    json!({
        "latest": true,
        "createdBy": user_json(base, users, &p.author_account_id),
        "ownedBy": user_json(base, users, &p.author_account_id),
        "createdDate": iso(p.created_at),
        "lastUpdated": version_json(base, users, p),
        "_links": {"self": format!("{base}/rest/api/content/{}/history", p.id)},
    })
}

fn space_json(base: &str, site: &Site, space_id: u64) -> Value {
    let Some(s) = site.spaces.iter().find(|s| s.id == space_id) else {
        return Value::Null;
    };
    json!({
        "id": s.id,
        "key": s.key,
        "name": s.name,
        "type": s.space_type,
        "status": s.status,
        "_links": {"webui": format!("/spaces/{}", s.key), "self": format!("{base}/rest/api/space/{}", s.key)},
    })
}

fn webui(site: &Site, p: &Page) -> String {
    let key = super::space_key(site, p.space_id);
    let slug: String = url::form_urlencoded::byte_serialize(p.title.as_bytes()).collect();
    format!("/spaces/{key}/pages/{}/{slug}", p.id)
}

/// v1 `Content` for a page, with the asked-for expansions.
fn content_json(site: &Site, users: &[User], p: &Page, expand: &Expand) -> Value {
    let base = format!("{}/wiki", site.url);
    let mut v = json!({
        "id": p.id.to_string(),
        "type": "page",
        "status": p.status,
        "title": p.title,
        "macroRenderedOutput": {},
        "extensions": {"position": p.id % 1000},
        "_links": {
            "webui": webui(site, p),
            "edit": format!("/pages/resumedraft.action?draftId={}", p.id),
            "tinyui": format!("/x/{}", p.id),
            "self": format!("{base}/rest/api/content/{}", p.id),
        },
    });
    let mut expandable = serde_json::Map::new();
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    let mut add = |name: &str, value: Value, o: &mut serde_json::Map<String, Value>| {
        if expand.has(name) {
            o.insert(name.to_string(), value);
        } else {
            expandable.insert(name.to_string(), json!(""));
        }
    };
    add("space", space_json(&base, site, p.space_id), o);
    add("history", history_json(&base, users, p), o);
    add("version", version_json(&base, users, p), o);
    let ancestors: Vec<Value> = cql::ancestors(site, p)
        .iter()
        .rev()
        .map(|a| json!({"id": a.id.to_string(), "type": "page", "status": a.status, "title": a.title}))
        .collect();
    add("ancestors", json!(ancestors), o);
    add("container", space_json(&base, site, p.space_id), o);
    let mut body = serde_json::Map::new();
    for repr in ["storage", "view", "export_view", "styled_view"] {
        if expand.has(&format!("body.{repr}")) {
            body.insert(
                repr.into(),
                json!({"value": p.body, "representation": repr, "embeddedContent": [], "_expandable": {"content": format!("/rest/api/content/{}", p.id)}}),
            );
        }
    }
    if body.is_empty() {
        expandable.insert("body".into(), json!(""));
    } else {
        o.insert("body".into(), Value::Object(body));
    }
    if expand.has("metadata") {
        let labels: Vec<Value> = p
            .labels
            .iter()
            .map(|l| json!({"prefix": l.prefix, "name": l.name, "id": l.id.to_string(), "label": l.name}))
            .collect();
        o.insert(
            "metadata".into(),
            json!({"labels": {"results": labels, "start": 0, "limit": 200, "size": p.labels.len()}}),
        );
    } else {
        expandable.insert("metadata".into(), json!(""));
    }
    for e in ["children", "descendants", "restrictions", "operations"] {
        expandable.insert(e.into(), json!(format!("/rest/api/content/{}/{e}", p.id)));
    }
    o.insert("_expandable".into(), Value::Object(expandable));
    v
}

struct Window {
    start: usize,
    limit: usize,
}

impl Window {
    fn slice<'a, 'p>(&self, hits: &'a [&'p Page]) -> impl Iterator<Item = &'p Page> + 'a {
        hits.iter().skip(self.start).take(self.limit).copied()
    }

    /// Charge the page's objects; (size, offset of the next page if any).
    fn settle(&self, ctx: &Ctx, size: usize, total: usize) -> (usize, Option<usize>) {
        ctx.charge(size);
        (
            size,
            (self.start + size < total).then_some(self.start + size),
        )
    }
}

/// `cursor` (from a `next` link) wins over `start`.
fn window(q: &[(String, String)]) -> V1Result<Window> {
    let start = match query_one(q, "cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(&c).map_err(|_| V1Error::bad("Invalid cursor"))?,
        None => match query_one(q, "start") {
            Some(s) if !s.is_empty() => s
                .parse()
                .map_err(|_| V1Error::bad(format!("Invalid start: {s}")))?,
            _ => 0,
        },
    };
    let limit = match query_one(q, "limit") {
        Some(l) if !l.is_empty() => l
            .parse::<usize>()
            .map_err(|_| V1Error::bad(format!("Invalid limit: {l}")))?
            .min(MAX_LIMIT),
        _ => DEFAULT_LIMIT,
    };
    Ok(Window { start, limit })
}

/// `_links` of a v1 collection: `next` is relative to `base` (`/rest/api/…`).
fn links(site: &Site, uri: &Uri, q: &[(String, String)], next: Option<usize>) -> Value {
    let base = format!("{}/wiki", site.url);
    let rel = uri
        .path()
        .find("/rest/api/")
        .map(|i| uri.path()[i..].to_string())
        .unwrap_or_default();
    let query = |extra: Option<usize>| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter().filter(|(k, _)| k != "cursor" && k != "start") {
            ser.append_pair(k, v);
        }
        if let Some(n) = extra {
            ser.append_pair("cursor", &encode_cursor(n));
        }
        ser.finish()
    };
    let mut l =
        json!({"base": base, "context": "/wiki", "self": format!("{base}{rel}?{}", query(None))});
    if let (Some(n), Some(o)) = (next, l.as_object_mut()) {
        o.insert("next".into(), json!(format!("{rel}?{}", query(Some(n)))));
    }
    l
}

fn parse_cql(q: &[(String, String)]) -> V1Result<(String, cql::Query)> {
    let text = query_one(q, "cql").unwrap_or_default();
    if text.trim().is_empty() {
        return Err(V1Error::bad("CQL query parameter is required"));
    }
    let parsed = cql::parse(&text).map_err(|e| cql_error(&text, &e))?;
    Ok((text, parsed))
}

/// `GET /wiki/rest/api/search?cql=…`: `SearchPageResponseSearchResult`.
pub async fn search(ctx: Ctx, uri: Uri, RawQuery(raw): RawQuery) -> V1Result<Json<Value>> {
    let q = query_pairs(&raw);
    let (text, parsed) = parse_cql(&q)?;
    let w = window(&q)?;
    let expand = Expand::parse(&q, "content.");
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let hits = cql::run(&parsed, site, ctx.state.clock.now());
    let total = hits.len();
    let results: Vec<Value> = w
        .slice(&hits)
        .map(|p| {
            let space = site.spaces.iter().find(|s| s.id == p.space_id);
            let excerpt = cql::excerpt(&p.body);
            json!({
                "content": content_json(site, &world.users, p, &expand),
                "title": p.title,
                "excerpt": excerpt,
                "url": webui(site, p),
                "resultGlobalContainer": {
                    "title": space.map(|s| s.name.clone()).unwrap_or_default(),
                    "displayUrl": format!("/spaces/{}", space.map(|s| s.key.clone()).unwrap_or_default()),
                },
                "breadcrumbs": [],
                "entityType": "content",
                "iconCssClass": "aui-icon content-type-page",
                "lastModified": iso(p.version_created_at),
                "friendlyLastModified": p.version_created_at.format("%b %d, %Y").to_string(),
                "score": 0.0,
            })
        })
        .collect();
    let (size, next) = w.settle(&ctx, results.len(), total);
    Ok(Json(json!({
        "results": results,
        "start": w.start,
        "limit": w.limit,
        "size": size,
        "totalSize": total,
        "cqlQuery": text,
        "searchDuration": 7,
        "_links": links(site, &uri, &q, next),
    })))
}

/// `GET /wiki/rest/api/content/search?cql=…`: `ContentArray` (content with
/// the default expansions of `GET /content`: space, history, version).
pub async fn content_search(ctx: Ctx, uri: Uri, RawQuery(raw): RawQuery) -> V1Result<Json<Value>> {
    let q = query_pairs(&raw);
    let (_, parsed) = parse_cql(&q)?;
    let w = window(&q)?;
    let expand = Expand::parse(&q, "").with_defaults(&["space", "history", "version"]);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let hits = cql::run(&parsed, site, ctx.state.clock.now());
    let total = hits.len();
    let results: Vec<Value> = w
        .slice(&hits)
        .map(|p| content_json(site, &world.users, p, &expand))
        .collect();
    let (size, next) = w.settle(&ctx, results.len(), total);
    Ok(Json(json!({
        "results": results,
        "start": w.start,
        "limit": w.limit,
        "size": size,
        "_links": links(site, &uri, &q, next),
    })))
}

fn id_of(p: &IdPath) -> V1Result<u64> {
    p.id.parse().map_err(|_| {
        V1Error::new(
            StatusCode::NOT_FOUND,
            "No content found with id : ".to_string() + &p.id,
        )
    })
}

fn not_found(id: u64) -> V1Error {
    V1Error::new(
        StatusCode::NOT_FOUND,
        format!("No content found with id : ContentId{{id={id}}}"),
    )
}

/// The page and its JSON with `GET /content`'s default expansions plus `expand`.
fn content_answer(
    ctx: &Ctx,
    id: u64,
    q: &[(String, String)],
    statuses: &[String],
) -> V1Result<Json<Value>> {
    let expand = Expand::parse(q, "").with_defaults(&["space", "history", "version"]);
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let page = site
        .pages
        .iter()
        .find(|p| p.id == id)
        .filter(|p| {
            p.status == "current"
                || statuses.contains(&p.status)
                || statuses.iter().any(|s| s == "any")
        })
        .ok_or_else(|| not_found(id))?;
    Ok(Json(content_json(site, &world.users, page, &expand)))
}

/// `GET /wiki/rest/api/content/{id}` (`expand`, `status`).
pub async fn get_content(
    ctx: Ctx,
    Path(p): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> V1Result<Json<Value>> {
    let id = id_of(&p)?;
    let q = query_pairs(&raw);
    let statuses: Vec<String> = crate::jira::query_all(&q, "status")
        .iter()
        .flat_map(|s| s.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let answer = content_answer(&ctx, id, &q, &statuses)?;
    ctx.charge(1);
    Ok(answer)
}

/// `GET /wiki/rest/api/content/{id}/history`.
pub async fn content_history(ctx: Ctx, Path(p): Path<IdPath>) -> V1Result<Json<Value>> {
    let id = id_of(&p)?;
    let world = ctx.state.world();
    let site = world.site(&ctx.cloud_id).ok_or(ApiError::SiteNotFound)?;
    let page = site
        .pages
        .iter()
        .find(|x| x.id == id && x.status == "current")
        .ok_or_else(|| not_found(id))?;
    let v = history_json(&format!("{}/wiki", site.url), &world.users, page);
    ctx.charge(1);
    Ok(Json(v))
}

fn parse_json(bytes: &[u8]) -> V1Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|_| V1Error::bad("Could not parse the request body as JSON"))
}

fn check_type(v: &Value) -> V1Result<()> {
    match v.get("type").and_then(Value::as_str) {
        Some("page") => Ok(()),
        Some(other) => Err(V1Error::bad(format!(
            "atlassim emulates content of type page only, not {other}"
        ))),
        None => Err(V1Error::bad("Content type is required")),
    }
}

/// The last of `ancestors` is the parent (v1 writes).
fn parent_of(v: &Value) -> V1Result<Option<u64>> {
    let Some(last) = v
        .get("ancestors")
        .and_then(Value::as_array)
        .and_then(|a| a.last())
    else {
        return Ok(None);
    };
    match last.get("id") {
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| V1Error::bad(format!("Invalid ancestor id: {s}"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| V1Error::bad("Invalid ancestor id")),
        _ => Err(V1Error::bad("An ancestor needs an id")),
    }
}

fn body_of(v: &Value) -> V1Result<Option<String>> {
    v.get("body")
        .map(pages_write::body_of)
        .transpose()
        .map(Option::flatten)
        .map_err(V1Error::from)
}

/// `POST /wiki/rest/api/content` (pages: `{type, title, space:{key}, body, ancestors?, status?}`).
pub async fn create_content(ctx: Ctx, body: axum::body::Bytes) -> V1Result<Json<Value>> {
    let v = parse_json(&body)?;
    check_type(&v)?;
    let key = v
        .get("space")
        .and_then(|s| s.get("key"))
        .and_then(Value::as_str)
        .ok_or_else(|| V1Error::bad("Space key is required"))?
        .to_string();
    let id = {
        let now = ctx.state.clock.now();
        let mut world = ctx.state.world();
        let site = world
            .site_mut(&ctx.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        let space_id = site
            .spaces
            .iter()
            .find(|s| s.key.eq_ignore_ascii_case(&key))
            .map(|s| s.id)
            .ok_or_else(|| {
                V1Error::new(StatusCode::NOT_FOUND, format!("No space with key : {key}"))
            })?;
        let new = NewPage {
            space_id,
            title: v
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            body: body_of(&v)?.unwrap_or_default(),
            adf: v.get("body").and_then(pages_write::adf_of),
            parent_id: parent_of(&v)?,
            root_level: false,
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("current")
                .to_string(),
        };
        pages_write::create(site, new, &ctx.access.account_id, now)?
    };
    content_answer(&ctx, id, &[], &["draft".to_string()])
}

/// `PUT /wiki/rest/api/content/{id}`: `version.number` must be the current + 1.
pub async fn update_content(
    ctx: Ctx,
    Path(p): Path<IdPath>,
    body: axum::body::Bytes,
) -> V1Result<Json<Value>> {
    let id = id_of(&p)?;
    let v = parse_json(&body)?;
    check_type(&v)?;
    let version = v
        .get("version")
        .and_then(|x| x.get("number"))
        .and_then(Value::as_u64)
        .ok_or_else(|| V1Error::bad("Must supply a version number"))?;
    let edit = PageEdit {
        version: u32::try_from(version).map_err(|_| V1Error::bad("Invalid version number"))?,
        title: v.get("title").and_then(Value::as_str).map(str::to_string),
        body: body_of(&v)?,
        adf: v.get("body").and_then(pages_write::adf_of),
        parent_id: parent_of(&v)?,
        status: v
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("current")
            .to_string(),
        message: v
            .get("version")
            .and_then(|x| x.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        minor_edit: v
            .get("version")
            .and_then(|x| x.get("minorEdit"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    {
        let now = ctx.state.clock.now();
        let mut world = ctx.state.world();
        let site = world
            .site_mut(&ctx.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        pages_write::edit(site, id, edit, &ctx.access.account_id, now)?;
    }
    content_answer(&ctx, id, &[], &[])
}

/// `DELETE /wiki/rest/api/content/{id}` (to the trash; `status=trashed` purges).
pub async fn delete_content(
    ctx: Ctx,
    Path(p): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> V1Result<StatusCode> {
    let id = id_of(&p)?;
    let q = query_pairs(&raw);
    let purge = query_one(&q, "status").as_deref() == Some("trashed");
    let mut world = ctx.state.world();
    let site = world
        .site_mut(&ctx.cloud_id)
        .ok_or(ApiError::SiteNotFound)?;
    pages_write::trash(site, id, purge).map_err(|e| match e {
        WriteError::NotFound => not_found(id),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}
