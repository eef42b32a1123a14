//! The OpenAPI document's frame: info, tags and security schemes. The paths
//! come from each handler's `#[utoipa::path]` via the routers (`server.rs`);
//! [`complete`] then adds, in this one place, the answers every operation of
//! a kind can give (RFC 9457 problems from the extractors and layers every
//! such route runs through), so no handler has to repeat them and none can
//! forget one (`tests/api/openapi.rs`, and the schemathesis run of
//! `tests/contract/run.py`, see RELIABILITY.md).

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_JSON;

/// The security scheme name of the app API key (`Authorization: Bearer agk_…`).
pub const APP_KEY: &str = "app_key";
/// The security scheme name of the admin token.
pub const ADMIN_TOKEN: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "atlasgate",
        description = "A self-hosted broker between your applications and Atlassian Cloud (Jira, Confluence). Errors are RFC 9457 `application/problem+json`."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "admin", description = "Administration (ATLASGATE_ADMIN_TOKEN)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            APP_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("agk_…")
                    .description(Some(
                        "The app's API key, shown once when the app is created",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("ATLASGATE_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// Operations whose body axum's `Json` extractor does not read (raw bytes:
/// the Jira webhook's JWT is checked first; the MCP endpoint hands the body
/// to rmcp), so they answer none of its 400 / 415 / 422 rejections.
const RAW_BODY: &[&str] = &["receive_jira_webhook", "mcp_endpoint"];

/// Tags of the operations that call Atlassian's REST APIs with the
/// connection's grant: they can answer every mapping of an Atlassian
/// failure in `From<core::Error> for ApiError` (`error.rs`).
const ATLASSIAN_TAGS: &[&str] = &["jira", "confluence", "proxy"];

/// Operations that need a usable grant without calling Atlassian's REST
/// APIs: the refresh path's answers (409 dead grant, 502 refused, 503 with
/// `Retry-After`) but no REST ones.
const GRANT_ONLY: &[&str] = &["get_connection_token", "refresh_connection"];

/// The facts about one operation that decide which answers it can give.
struct Kind {
    /// Answers problem+json (the JSON API, not the health routes or the
    /// HTML pages of the connect flow).
    api: bool,
    app_key: bool,
    admin: bool,
    templated: bool,
    json_body: bool,
    any_body: bool,
    parses_params: bool,
    atlassian: bool,
    grant: bool,
    proxy: bool,
}

impl Kind {
    fn of(path: &str, op: &Operation) -> Kind {
        let id = op.operation_id.as_deref().unwrap_or_default();
        let tags = op.tags.as_deref().unwrap_or_default();
        let has_tag = |names: &[&str]| tags.iter().any(|t| names.contains(&t.as_str()));
        let schemes = op
            .security
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_default())
            .unwrap_or_default();
        let params = op.parameters.as_deref().unwrap_or_default();
        let any_body = op.request_body.is_some();
        let json_body = any_body
            && !RAW_BODY.contains(&id)
            && op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.keys().any(|c| c.starts_with("application/json")));
        // A query string or a non-string path parameter is parsed by axum's
        // `Query` / `Path`, whose rejection is a 400.
        let parses_params = params.iter().any(|p| {
            p.parameter_in == ParameterIn::Query
                || (p.parameter_in == ParameterIn::Path
                    && p.schema.as_ref().is_some_and(|s| {
                        !serde_json::to_value(s)
                            .map(|v| v["type"] == "string")
                            .unwrap_or(true)
                    }))
        });
        let atlassian = has_tag(ATLASSIAN_TAGS);
        Kind {
            api: path.starts_with("/v1/")
                || path.starts_with("/admin/api/")
                || path.starts_with("/webhooks/"),
            app_key: schemes.contains(&format!("\"{APP_KEY}\"")),
            admin: schemes.contains(&format!("\"{ADMIN_TOKEN}\"")),
            templated: path.contains('{'),
            json_body,
            any_body,
            parses_params,
            atlassian,
            grant: atlassian || GRANT_ONLY.contains(&id),
            proxy: has_tag(&["proxy"]),
        }
    }

    /// The statuses this kind of operation can answer with a problem, and
    /// why (each row is a path through the extractors, layers and
    /// `From<core::Error> for ApiError`).
    fn statuses(&self) -> Vec<(u16, &'static str)> {
        let mut out = Vec::new();
        let mut add = |on: bool, status: u16, why: &'static str| {
            if on {
                out.push((status, why));
            }
        };
        add(
            self.json_body || self.parses_params,
            400,
            "Malformed request: the body is not JSON, or a parameter does not parse",
        );
        add(
            self.app_key,
            401,
            "Missing, malformed or unknown app key (`WWW-Authenticate: Bearer`)",
        );
        add(
            self.admin,
            401,
            "Missing or wrong admin token (`WWW-Authenticate: Bearer`)",
        );
        add(
            self.templated,
            404,
            "No such resource (for this app); a path that names none",
        );
        add(
            self.admin,
            404,
            "Admin routes are off (no ATLASGATE_ADMIN_TOKEN)",
        );
        add(
            self.any_body && !self.proxy,
            413,
            "The body is larger than the limit",
        );
        add(
            self.json_body,
            415,
            "The body is not `Content-Type: application/json`",
        );
        add(
            self.json_body,
            422,
            "Well-formed JSON of the wrong shape, or invalid fields (`errors`)",
        );
        add(
            self.admin,
            429,
            "Too many admin requests, or failed authentications, from this address (`Retry-After`)",
        );
        add(
            self.grant,
            409,
            "`reauth-required` (with `connect_url`), disconnected, or no site selected",
        );
        add(self.grant, 502, "Atlassian refused or failed the call");
        add(
            self.grant,
            503,
            "Atlassian could not refresh the token right now, or the database is away (`Retry-After`)",
        );
        // `core::Error::StoreUnavailable`: every API route reads or writes the database.
        add(
            self.api && !self.grant,
            503,
            "The database is away right now (`Retry-After`)",
        );
        add(
            self.atlassian,
            400,
            "Atlassian refused the request (its message in `detail`)",
        );
        add(
            self.atlassian,
            403,
            "Atlassian refused the connection's token for this",
        );
        add(self.atlassian, 404, "No such object at Atlassian");
        add(
            self.atlassian,
            429,
            "Atlassian's rate limit or the points budget asks for a longer pause (`Retry-After`)",
        );
        add(self.atlassian, 504, "Atlassian did not answer in time");
        add(
            self.api && !self.proxy,
            504,
            "The request took longer than the server's time limit",
        );
        out
    }
}

/// The header an answer of this status carries (`error.rs`, `ratelimit.rs`).
fn header_of(status: &str) -> Option<(&'static str, Type, &'static str)> {
    match status {
        "401" => Some(("WWW-Authenticate", Type::String, "`Bearer`")),
        "429" | "503" => Some((
            "Retry-After",
            Type::Integer,
            "Seconds to wait before trying again, when known",
        )),
        _ => None,
    }
}

/// The schema without `null` among its types.
fn not_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    let Ok(mut v) = serde_json::to_value(&schema) else {
        return schema;
    };
    if let Some(types) = v.get_mut("type").and_then(|t| t.as_array_mut()) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            v["type"] = types[0].clone();
        }
    }
    serde_json::from_value(v).unwrap_or(schema)
}

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

fn is_problem(content: &Content) -> bool {
    matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

/// Completes the generated document: every problem is
/// `application/problem+json`, and every operation documents the problem
/// statuses its kind can answer ([`Kind::statuses`]). The proxy's errors are
/// either ours or Atlassian's own answer relayed unchanged (`default`).
/// Operation ids are made unique (one proxy handler serves five methods).
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    let mut seen = std::collections::HashSet::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ] {
            let Some(op) = op else { continue };
            let kind = Kind::of(path, op);
            if let Some(id) = op.operation_id.clone() {
                if !seen.insert(id.clone()) {
                    let unique = format!("{id}_{method}");
                    seen.insert(unique.clone());
                    op.operation_id = Some(unique);
                }
            }
            // A query string has no null: an `Option` parameter is optional, not nullable.
            for p in op.parameters.iter_mut().flatten() {
                if p.parameter_in == ParameterIn::Query {
                    p.schema = p.schema.take().map(not_null);
                }
            }
            if !kind.api {
                continue;
            }
            let responses = &mut op.responses.responses;
            for (status, resp) in responses.iter_mut() {
                let RefOr::T(resp) = resp else { continue };
                if !status.starts_with(['4', '5']) {
                    continue;
                }
                if let Some(json) = resp.content.shift_remove("application/json") {
                    if is_problem(&json) {
                        resp.content.insert(PROBLEM_JSON.to_string(), json);
                    } else {
                        resp.content.insert("application/json".to_string(), json);
                    }
                }
            }
            for (status, why) in kind.statuses() {
                match responses.entry(status.to_string()) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        let mut r = Response::new(why);
                        r.content
                            .insert(PROBLEM_JSON.to_string(), problem_content());
                        v.insert(RefOr::T(r));
                    }
                    // A handler's own description is the more precise one.
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        if let RefOr::T(r) = o.get_mut() {
                            if r.content.is_empty() {
                                r.content
                                    .insert(PROBLEM_JSON.to_string(), problem_content());
                            }
                        }
                    }
                }
            }
            for (status, resp) in responses.iter_mut() {
                let RefOr::T(resp) = resp else { continue };
                if let Some((name, ty, why)) = header_of(status) {
                    resp.headers.entry(name.to_string()).or_insert_with(|| {
                        utoipa::openapi::header::HeaderBuilder::new()
                            .schema(ObjectBuilder::new().schema_type(ty))
                            .description(Some(why))
                            .build()
                    });
                }
            }
            if kind.proxy {
                for (status, resp) in responses.iter_mut() {
                    let RefOr::T(resp) = resp else { continue };
                    if status.starts_with(['4', '5']) {
                        resp.description =
                            format!("{}; or Atlassian's own answer, relayed", resp.description);
                        resp.content.insert("*/*".to_string(), Content::default());
                    }
                }
                responses.insert(
                    "default".to_string(),
                    RefOr::T(Response::new(
                        "Atlassian's answer, status, headers and body relayed unchanged",
                    )),
                );
            }
        }
    }
}
