//! Atlassian's endpoint templates (`/rest/api/3/issue/{issueIdOrKey}`), the
//! unit its burst limit counts in (docs/atlassian-behaviour.md §4: "per
//! tenant, per endpoint and HTTP method"), and the matcher that maps a
//! concrete request path to its template.
//!
//! The table is `endpoint_templates.json`, next to this file. It is derived
//! from the published OpenAPI specs (`../shared/specs`: Jira platform v3,
//! Jira Software agile 1.0, Confluence v2) by the rule in [`derive`]: every
//! operation of every path, with the documented burst rate of its method
//! (GET/POST 100/s, PUT/DELETE 50/s) unless [`OVERRIDES`] names it. The test
//! `the_table_is_what_the_specs_say` re-derives it and fails when the file
//! differs; run it with `ATLASGATE_REGENERATE=1` to rewrite the file after
//! re-pinning the specs or changing the rule.
//!
//! Matching runs on every proxied request, so the table is held as a trie of
//! path segments per product, built once: a lookup walks the path's segments
//! once, trying a literal segment before a parameter (so
//! `/rest/api/3/issue/createmeta` is its own template, not
//! `/rest/api/3/issue/{issueIdOrKey}`), and goes back only where a literal
//! branch cannot end at the path's segment count (each node knows which
//! counts it can end at).

use std::collections::HashMap;
use std::sync::OnceLock;

use http::Method;
use serde::Deserialize;

use super::client::Product;

/// The table as kept in the repository.
const TABLE_JSON: &str = include_str!("endpoint_templates.json");

/// Published burst rates that differ from their method's default, as
/// `(method, template, requests per second)` (docs/atlassian-behaviour.md §4:
/// "Some endpoints override this, e.g. `GET /api/{v}/issue/{key}` 150"; the
/// v2 and `latest` forms match the same template).
pub const OVERRIDES: &[(&str, &str, u32)] = &[("GET", "/rest/api/3/issue/{issueIdOrKey}", 150)];

/// The documented default burst rate of a method, requests per second
/// (docs/atlassian-behaviour.md §4). PATCH is not in the specs; it is paced
/// like POST, the other non-idempotent write.
pub fn default_rate(method: &Method) -> u32 {
    match *method {
        Method::PUT | Method::DELETE => 50,
        _ => 100,
    }
}

/// One endpoint template of one method.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// `jira` (platform), `agile` (Jira Software) or `confluence`.
    pub api: String,
    pub method: String,
    /// As the gateway sees it below the site: `/rest/api/3/issue/{issueIdOrKey}`,
    /// `/wiki/api/v2/pages/{id}`.
    pub path: String,
    /// Atlassian's burst rate for it, requests per second.
    pub rate: u32,
    /// Index in the table (a cheap bucket key).
    #[serde(skip)]
    pub id: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(rename = "_about")]
    _about: String,
    templates: Vec<Template>,
}

/// Methods a terminal node can hold a template for.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn method_slot(method: &str) -> Option<usize> {
    // HEAD reads what GET reads; Atlassian documents no HEAD operations.
    let method = if method == "HEAD" { "GET" } else { method };
    METHODS.iter().position(|m| *m == method)
}

/// Paths deeper than this are never a template (the deepest has 10).
const MAX_SEGMENTS: usize = 31;

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<String, u32>,
    param: Option<u32>,
    /// Template ids by [`METHODS`] slot, when a template ends here.
    ends: [Option<u32>; 5],
    /// Bit `k` set: some template ends exactly `k` segments below this node.
    depths: u32,
}

/// The parsed table and one trie per product.
#[derive(Debug)]
pub struct Table {
    pub templates: Vec<Template>,
    nodes: Vec<Node>,
    jira: u32,
    confluence: u32,
}

impl Table {
    fn parse(json: &str) -> Result<Table, String> {
        let file: TableFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut t = Table {
            templates: Vec::with_capacity(file.templates.len()),
            nodes: vec![Node::default(), Node::default()],
            jira: 0,
            confluence: 1,
        };
        for (i, mut tpl) in file.templates.into_iter().enumerate() {
            tpl.id = i as u32;
            let root = match tpl.api.as_str() {
                "jira" | "agile" => t.jira,
                "confluence" => t.confluence,
                other => return Err(format!("unknown api `{other}`")),
            };
            let slot = method_slot(&tpl.method)
                .ok_or_else(|| format!("unknown method `{}`", tpl.method))?;
            let segs: Vec<&str> = tpl.path.trim_start_matches('/').split('/').collect();
            if segs.len() > MAX_SEGMENTS {
                return Err(format!("`{}` is too deep", tpl.path));
            }
            let mut node = root;
            let mut trail = vec![node];
            for seg in &segs {
                let is_param = seg.starts_with('{') && seg.ends_with('}');
                let next = if is_param {
                    t.nodes[node as usize].param
                } else {
                    t.nodes[node as usize].literal.get(*seg).copied()
                };
                node = match next {
                    Some(n) => n,
                    None => {
                        let n = t.nodes.len() as u32;
                        t.nodes.push(Node::default());
                        let parent = &mut t.nodes[node as usize];
                        if is_param {
                            parent.param = Some(n);
                        } else {
                            parent.literal.insert((*seg).to_string(), n);
                        }
                        n
                    }
                };
                trail.push(node);
            }
            t.nodes[node as usize].ends[slot] = Some(tpl.id);
            for (depth, n) in trail.iter().enumerate() {
                t.nodes[*n as usize].depths |= 1 << (segs.len() - depth);
            }
            t.templates.push(tpl);
        }
        Ok(t)
    }

    /// The template `method path` is an instance of, if any. `path` is below
    /// the site base, with or without a leading `/`, without the query.
    pub fn template_for(&self, product: Product, method: &Method, path: &str) -> Option<&Template> {
        let slot = method_slot(method.as_str())?;
        let mut segs: [&str; MAX_SEGMENTS] = [""; MAX_SEGMENTS];
        let mut n = 0;
        for seg in path.strip_prefix('/').unwrap_or(path).split('/') {
            if n == MAX_SEGMENTS {
                return None;
            }
            segs[n] = seg;
            n += 1;
        }
        let segs = &mut segs[..n];
        // `/rest/api/2/…` and `/rest/api/latest/…` are the v3 operations
        // under older names (the platform spec documents v3 only); the same
        // for the agile API's `latest`.
        if let ["rest", api, version, ..] = segs {
            match (*api, *version) {
                ("api", "2" | "latest") => segs[2] = "3",
                ("agile", "latest") => segs[2] = "1.0",
                _ => {}
            }
        }
        let root = match product {
            Product::Jira => self.jira,
            Product::Confluence => self.confluence,
        };
        let id = self.walk(root, segs, slot)?;
        self.templates.get(id as usize)
    }

    /// Depth-first, literal before parameter; a branch is entered only when
    /// a template ends exactly at the path's depth below it.
    fn walk(&self, node: u32, segs: &[&str], slot: usize) -> Option<u32> {
        let n = self.nodes.get(node as usize)?;
        if n.depths & (1 << segs.len()) == 0 {
            return None;
        }
        let Some((seg, rest)) = segs.split_first() else {
            return n.ends[slot];
        };
        if let Some(&lit) = n.literal.get(*seg) {
            if let Some(found) = self.walk(lit, rest, slot) {
                return Some(found);
            }
        }
        match n.param {
            Some(p) if !seg.is_empty() => self.walk(p, rest, slot),
            _ => None,
        }
    }
}

/// The table in the repository, parsed on first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        Table::parse(TABLE_JSON).unwrap_or_else(|e| {
            // The file is checked by a unit test; a broken one must not take
            // the client down, it only loses per-template pacing.
            tracing::error!(error = %e, "endpoint_templates.json is unusable; pacing by method only");
            Table {
                templates: Vec::new(),
                nodes: vec![Node::default(), Node::default()],
                jira: 0,
                confluence: 1,
            }
        })
    })
}

/// [`Table::template_for`] on the repository's table.
pub fn template_for(product: Product, method: &Method, path: &str) -> Option<&'static Template> {
    table().template_for(product, method, path)
}

/// The rule that makes the table from the specs: `(api, spec JSON, path
/// prefix)` → every operation, sorted by api, path and method, with its rate.
pub fn derive(specs: &[(&str, &serde_json::Value, &str)]) -> Vec<Template> {
    let mut out = Vec::new();
    for (api, spec, prefix) in specs {
        let Some(paths) = spec["paths"].as_object() else {
            continue;
        };
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for method in METHODS {
                if !item.contains_key(&method.to_ascii_lowercase()) {
                    continue;
                }
                let full = format!("{prefix}{path}");
                let rate = OVERRIDES
                    .iter()
                    .find(|(m, p, _)| *m == method && *p == full)
                    .map(|(_, _, r)| *r)
                    .unwrap_or_else(|| {
                        default_rate(&Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
                    });
                out.push(Template {
                    api: api.to_string(),
                    method: method.to_string(),
                    path: full,
                    rate,
                    id: 0,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.api.as_str(), a.path.as_str(), method_slot(&a.method)).cmp(&(
            b.api.as_str(),
            b.path.as_str(),
            method_slot(&b.method),
        ))
    });
    out
}

/// The file text for a derived table: one template a line, so a re-pinned
/// spec shows up as a readable diff.
pub fn render(templates: &[Template]) -> String {
    let mut s = String::from(
        "{\n  \"_about\": \"Atlassian endpoint templates and burst rates (requests/s), derived from ../shared/specs by atlassian/templates.rs `derive`; regenerate with ATLASGATE_REGENERATE=1 cargo test -p atlasgate --lib templates\",\n  \"templates\": [\n",
    );
    for (i, t) in templates.iter().enumerate() {
        let line = serde_json::json!({
            "api": t.api,
            "method": t.method,
            "path": t.path,
            "rate": t.rate,
        });
        s.push_str("    ");
        s.push_str(&line.to_string());
        if i + 1 < templates.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s.push_str("  ]\n}\n");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn specs_dir() -> PathBuf {
        std::env::var("ATLASGATE_SPECS_DIR")
            .or_else(|_| std::env::var("ATLASSIM_SPECS_DIR"))
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs")
            })
    }

    fn read_spec(file: &str) -> serde_json::Value {
        let path = specs_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "read {}: {e} (set ATLASGATE_SPECS_DIR to the shared specs)",
                path.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    }

    /// The generator: the file must be exactly what the specs say.
    #[test]
    fn the_table_is_what_the_specs_say() {
        let (jira, agile, confluence) = (
            read_spec("jira-platform-v3.json"),
            read_spec("jira-software.json"),
            read_spec("confluence-v2.json"),
        );
        let derived = derive(&[
            ("jira", &jira, ""),
            ("agile", &agile, ""),
            // Confluence v2's server URL is `https://{your-domain}/wiki/api/v2`.
            ("confluence", &confluence, "/wiki/api/v2"),
        ]);
        let text = render(&derived);
        if std::env::var("ATLASGATE_REGENERATE").is_ok_and(|v| v == "1") {
            let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("src/atlassian/endpoint_templates.json");
            std::fs::write(&out, &text).unwrap();
            return;
        }
        assert!(
            text == TABLE_JSON,
            "endpoint_templates.json differs from the specs; regenerate with \
             ATLASGATE_REGENERATE=1 cargo test -p atlasgate --lib templates"
        );
        // Every operation of the three specs is in it (619 + 105 + 218).
        assert_eq!(table().templates.len(), 942);
        // Overrides name templates that exist.
        for (m, p, _) in OVERRIDES {
            assert!(
                table()
                    .templates
                    .iter()
                    .any(|t| t.method == *m && t.path == *p),
                "override {m} {p}"
            );
        }
    }

    fn path_of(product: Product, method: Method, path: &str) -> Option<String> {
        template_for(product, &method, path).map(|t| format!("{} {}", t.method, t.path))
    }

    #[test]
    fn concrete_paths_find_their_templates() {
        use Product::{Confluence, Jira};
        let cases: &[(Product, Method, &str, Option<&str>)] = &[
            // Keys and ids fold into the template; a leading slash is optional.
            (
                Jira,
                Method::GET,
                "rest/api/3/issue/ABC-1",
                Some("GET /rest/api/3/issue/{issueIdOrKey}"),
            ),
            (
                Jira,
                Method::GET,
                "/rest/api/3/issue/ABC-2",
                Some("GET /rest/api/3/issue/{issueIdOrKey}"),
            ),
            (
                Jira,
                Method::PUT,
                "rest/api/3/issue/10001",
                Some("PUT /rest/api/3/issue/{issueIdOrKey}"),
            ),
            // Literal segments beat parameters.
            (
                Jira,
                Method::GET,
                "rest/api/3/issue/createmeta",
                Some("GET /rest/api/3/issue/createmeta"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/3/issue/picker",
                Some("GET /rest/api/3/issue/picker"),
            ),
            (
                Jira,
                Method::POST,
                "rest/api/3/issue/bulk",
                Some("POST /rest/api/3/issue/bulk"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/3/issue/ABC-1/comment",
                Some("GET /rest/api/3/issue/{issueIdOrKey}/comment"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/3/issue/ABC-1/comment/10",
                Some("GET /rest/api/3/issue/{issueIdOrKey}/comment/{id}"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/3/search/jql",
                Some("GET /rest/api/3/search/jql"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/3/myself",
                Some("GET /rest/api/3/myself"),
            ),
            // Only the method's own template: there is no DELETE createmeta,
            // so it is the issue a DELETE names.
            (
                Jira,
                Method::DELETE,
                "rest/api/3/issue/createmeta",
                Some("DELETE /rest/api/3/issue/{issueIdOrKey}"),
            ),
            // The v2 and `latest` forms are the v3 templates.
            (
                Jira,
                Method::GET,
                "rest/api/2/issue/ABC-1",
                Some("GET /rest/api/3/issue/{issueIdOrKey}"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/latest/issue/ABC-1",
                Some("GET /rest/api/3/issue/{issueIdOrKey}"),
            ),
            (
                Jira,
                Method::GET,
                "rest/api/2/issue/createmeta",
                Some("GET /rest/api/3/issue/createmeta"),
            ),
            (
                Jira,
                Method::HEAD,
                "rest/api/3/myself",
                Some("GET /rest/api/3/myself"),
            ),
            // The agile API, its `latest` form.
            (
                Jira,
                Method::GET,
                "rest/agile/1.0/board/7/sprint",
                Some("GET /rest/agile/1.0/board/{boardId}/sprint"),
            ),
            (
                Jira,
                Method::GET,
                "rest/agile/latest/board/7",
                Some("GET /rest/agile/1.0/board/{boardId}"),
            ),
            // Confluence v2 only through the Confluence gateway.
            (
                Confluence,
                Method::GET,
                "wiki/api/v2/pages/123",
                Some("GET /wiki/api/v2/pages/{id}"),
            ),
            (
                Confluence,
                Method::GET,
                "wiki/api/v2/spaces",
                Some("GET /wiki/api/v2/spaces"),
            ),
            (Jira, Method::GET, "wiki/api/v2/pages/123", None),
            (Confluence, Method::GET, "rest/api/3/myself", None),
            // Not templates: unknown paths, a version that does not exist,
            // an empty parameter, one segment too many or too few, a
            // trailing slash, a method with no operation, a path too deep.
            (Jira, Method::GET, "rest/api/3/nothing-here", None),
            (Jira, Method::GET, "rest/api/4/myself", None),
            (Jira, Method::GET, "rest/api/3/issue//comment", None),
            (Jira, Method::GET, "rest/api/3/myself/x", None),
            (Jira, Method::GET, "rest/api", None),
            (Jira, Method::GET, "rest/api/3/myself/", None),
            (Jira, Method::PATCH, "rest/api/3/myself", None),
            (Jira, Method::OPTIONS, "rest/api/3/myself", None),
            (Jira, Method::GET, &"a/".repeat(40), None),
            (Jira, Method::GET, "", None),
        ];
        for (product, method, path, want) in cases {
            assert_eq!(
                path_of(*product, method.clone(), path).as_deref(),
                *want,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn rates_follow_the_method_and_the_overrides() {
        let rate = |m: Method, p: &str| template_for(Product::Jira, &m, p).unwrap().rate;
        assert_eq!(rate(Method::GET, "rest/api/3/issue/ABC-1"), 150);
        assert_eq!(rate(Method::GET, "rest/api/2/issue/ABC-1"), 150);
        assert_eq!(rate(Method::PUT, "rest/api/3/issue/ABC-1"), 50);
        assert_eq!(rate(Method::DELETE, "rest/api/3/issue/ABC-1"), 50);
        assert_eq!(rate(Method::GET, "rest/api/3/issue/ABC-1/comment"), 100);
        assert_eq!(rate(Method::POST, "rest/api/3/search/jql"), 100);
        // The agile API's issue endpoint is not the platform one.
        assert_eq!(rate(Method::GET, "rest/agile/1.0/issue/ABC-1"), 100);
    }

    /// Where a literal branch cannot end at the path's depth, the
    /// parameter branch beside it is taken.
    #[test]
    fn a_dead_literal_branch_falls_back_to_the_parameter() {
        let json = r#"{"_about": "", "templates": [
            {"api": "jira", "method": "GET", "path": "/a/{x}/c/d", "rate": 100},
            {"api": "jira", "method": "GET", "path": "/a/b/c", "rate": 100},
            {"api": "jira", "method": "GET", "path": "/a/b/{y}/e", "rate": 100}
        ]}"#;
        let t = Table::parse(json).unwrap();
        let find = |p: &str| {
            t.template_for(Product::Jira, &Method::GET, p)
                .map(|t| t.path.clone())
        };
        assert_eq!(find("a/b/c").as_deref(), Some("/a/b/c"));
        assert_eq!(find("a/b/c/d").as_deref(), Some("/a/{x}/c/d"));
        assert_eq!(find("a/b/c/e").as_deref(), Some("/a/b/{y}/e"));
        assert_eq!(find("a/z/c/d").as_deref(), Some("/a/{x}/c/d"));
        assert_eq!(find("a/b/c/f"), None);
    }
}
