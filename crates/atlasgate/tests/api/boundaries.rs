//! The boundary invariants of ARCHITECTURE.md, checked over the source tree
//! so that a change which breaks one fails here and names the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crates/*/src/**.rs` of atlasgate's own crates, relative to `crates/`.
fn sources() -> Vec<(String, String)> {
    let root = crates_dir();
    let mut files = Vec::new();
    for krate in ["atlasgate", "atlasgate-core", "atlasgate-bench"] {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The HTTP-server crates the core may not depend on, directly or through
/// another crate.
const HTTP_SERVER_CRATES: [&str; 5] = [
    "axum",
    "tower-http",
    "utoipa",
    "utoipa-axum",
    "utoipa-swagger-ui",
];

#[test]
fn core_depends_on_no_http_server_crate() {
    let manifest = std::fs::read_to_string(crates_dir().join("atlasgate-core/Cargo.toml")).unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    let deps = doc["dependencies"].as_table().unwrap();
    assert!(
        deps.contains_key("sqlx"),
        "positive control: the core's deps were read"
    );
    for forbidden in HTTP_SERVER_CRATES {
        assert!(
            !deps.contains_key(forbidden),
            "atlasgate-core must not depend on {forbidden}"
        );
    }
    for (file, text) in sources() {
        if file.starts_with("atlasgate-core/") {
            for word in ["axum::", "utoipa::", "tower_http::"] {
                assert!(!text.contains(word), "{file} uses {word}");
            }
        }
    }
    // Nor through another crate (reqwest 0.12.16 and later would bring
    // tower-http; the workspace pins an older one, see Cargo.toml).
    let names = core_normal_dependency_tree();
    for present in ["atlasgate-core", "reqwest", "sqlx", "tokio"] {
        assert!(
            names.contains(present),
            "positive control: the tree lists {present}"
        );
    }
    for forbidden in HTTP_SERVER_CRATES {
        assert!(
            !names.contains(forbidden),
            "atlasgate-core depends on {forbidden} through another crate \
             (`cargo tree -p atlasgate-core -e normal -i {forbidden}` shows which)"
        );
    }
}

/// The crates of the core's resolved normal dependency tree, as Cargo.lock
/// pins it (`cargo tree -p atlasgate-core -e normal`).
fn core_normal_dependency_tree() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-p", "atlasgate-core"])
        .args(["-e", "normal", "--prefix", "none", "--manifest-path"])
        .arg(crates_dir().join("../Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn only_store_writes_sql() {
    let with_sql: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| text.contains("sqlx::query"))
        .map(|(file, _)| file)
        .collect();
    assert!(
        with_sql.iter().any(|f| f.contains("/store/")),
        "positive control: store/ holds SQL"
    );
    for file in &with_sql {
        assert!(file.contains("/store/"), "{file} writes SQL outside store/");
    }
    assert!(
        !with_sql.iter().any(|f| f.starts_with("atlasgate/")),
        "the edge never writes SQL"
    );
}

#[test]
fn only_the_edge_builds_problem_json_or_html() {
    let mut edge_has = false;
    for (file, text) in sources() {
        let builds = text.contains("problem+json") || text.contains("text/html");
        if file.starts_with("atlasgate-core/") {
            assert!(!builds, "{file} builds problem+json or HTML");
        } else if file.starts_with("atlasgate/") {
            edge_has |= builds;
        }
    }
    assert!(edge_has, "positive control: the edge does build them");
}

// ---- the core's import graph ------------------------------------------------

/// The core's top-level modules (a file or directory of
/// `atlasgate-core/src`, without `lib.rs`), each with the modules its
/// non-test code names through `crate::…` and the files that do.
type Imports = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn core_imports() -> Imports {
    let reexports = core_root_reexports();
    assert_eq!(
        reexports.get("Error").map(String::as_str),
        Some("error"),
        "positive control: the root's re-exports were read"
    );
    let mut out = Imports::new();
    for (file, text) in sources() {
        let Some(rel) = file.strip_prefix("atlasgate-core/src/") else {
            continue;
        };
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let edges = out.entry(module.clone()).or_default();
        for path in crate_paths(&code_of(&text)) {
            // `crate::Error` and the like: the module the crate root re-exports it from.
            let target = match path.starts_with(|c: char| c.is_ascii_uppercase()) {
                true => match reexports.get(&path) {
                    Some(m) => m.clone(),
                    None => continue,
                },
                false => path,
            };
            if target != module {
                edges.entry(target).or_default().insert(file.clone());
            }
        }
    }
    out
}

/// The core's `lib.rs` re-exports (`pub use error::{Error, Result};`):
/// item name → the module it comes from.
fn core_root_reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(crates_dir().join("atlasgate-core/src/lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.trim_end_matches(';').split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            out.insert(item.trim().to_string(), module.to_string());
        }
    }
    out
}

/// `text` without comment lines and without its `#[cfg(test)]` module
/// (tests may reach anywhere).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if !t.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// The first segment of every `crate::…` path in `code`, including each
/// item of a `crate::{a, b::c}` group (nested groups too). A segment that
/// starts upper-case (`crate::Error`) is one of the crate root's re-exports.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `atlasgate_core::…` and the like
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level items: split at depth-0 commas.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// ARCHITECTURE.md's table of the core's imports: module → (imports, kind).
/// Rows look like ``| `sync` | feature | `events`, `jira` | why |``.
fn documented_imports() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let doc = std::fs::read_to_string(crates_dir().join("../ARCHITECTURE.md")).unwrap();
    let start = doc
        .find(IMPORT_TABLE_HEADING)
        .expect("ARCHITECTURE.md has the import table");
    let mut out = BTreeMap::new();
    for line in doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let names = |cell: &str| -> BTreeSet<String> { backticked(cell).into_iter().collect() };
        let module = names(cells[1]).into_iter().next().unwrap();
        out.insert(module, (cells[2].to_string(), names(cells[3])));
    }
    out
}

const IMPORT_TABLE_HEADING: &str = "### Imports between the core's modules";

/// The `code` spans of a line of Markdown, in order.
fn backticked(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// Every `crate::<module>` edge in the core is a row of ARCHITECTURE.md's
/// import table (with its reason), and every row is still true: a new edge
/// between modules is a decision written down, not an accident.
#[test]
fn core_imports_are_the_documented_ones() {
    let actual = core_imports();
    let documented = documented_imports();
    assert!(
        actual["sync"].contains_key("store"),
        "positive control: the graph was read"
    );
    let mut problems = Vec::new();
    for (module, edges) in &actual {
        let Some((_, allowed)) = documented.get(module) else {
            problems.push(format!("module `{module}` has no row in the import table"));
            continue;
        };
        for (target, files) in edges {
            if !allowed.contains(target) {
                problems.push(format!(
                    "`{module}` imports `{target}` ({}), not in the import table",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for target in allowed {
            if !edges.contains_key(target) {
                problems.push(format!(
                    "the import table lets `{module}` import `{target}`, which it no longer does"
                ));
            }
        }
    }
    for module in documented.keys() {
        if !actual.contains_key(module) {
            problems.push(format!(
                "the import table names `{module}`, not a core module"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// No import loop joins feature modules: over the edges between modules
/// the table marks `feature`, the only strongly connected components are
/// the loops ARCHITECTURE.md names (each with its reason). The loops the
/// split was made to end stay ended: `sync` ↔ `webhooks`, `connect` ↔
/// `connections`, and at the edge `error` → `server`.
#[test]
fn feature_modules_form_no_unnamed_import_loop() {
    let actual = core_imports();
    let documented = documented_imports();
    let features: BTreeSet<&String> = documented
        .iter()
        .filter(|(_, (kind, _))| kind == "feature")
        .map(|(m, _)| m)
        .collect();
    assert!(features.len() > 5, "positive control: features are marked");
    let graph: BTreeMap<&str, Vec<&str>> = features
        .iter()
        .map(|m| {
            let to = actual
                .get(*m)
                .map(|e| {
                    e.keys()
                        .filter(|t| features.contains(t))
                        .map(String::as_str)
                        .collect()
                })
                .unwrap_or_default();
            (m.as_str(), to)
        })
        .collect();
    let loops: BTreeSet<BTreeSet<String>> = strongly_connected(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    let doc = std::fs::read_to_string(crates_dir().join("../ARCHITECTURE.md")).unwrap();
    let named: BTreeSet<BTreeSet<String>> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("- **Loop:** "))
        .map(|l| {
            backticked(l.split(':').next().unwrap())
                .into_iter()
                .collect()
        })
        .collect();
    assert_eq!(
        loops, named,
        "the feature loops found (left) are the ones ARCHITECTURE.md names (right)"
    );
    for (from, to) in [
        ("sync", "webhooks"),
        ("connect", "connections"),
        ("connections", "connect"),
    ] {
        assert!(
            !actual[from].contains_key(to),
            "`{from}` imports `{to}` again"
        );
    }
    let edge_error = std::fs::read_to_string(crates_dir().join("atlasgate/src/error.rs")).unwrap();
    assert!(
        !crate_paths(&code_of(&edge_error)).contains("server"),
        "the edge's error.rs imports server"
    );
}

/// Every import loop among the core's modules (foundation, features and
/// roots alike) runs through one of the edges ARCHITECTURE.md names under
/// its import table as a closing edge (`- **Closing edge:** `a` → `b`: why`):
/// without them the graph has no loop, and each one is needed (without it,
/// and with the others out, a loop remains), so a new loop fails here until
/// it is named, and a named loop that is gone fails until the doc drops it.
/// The modules on a loop are the ones the doc lists.
#[test]
fn core_import_loops_are_the_named_ones() {
    let actual = core_imports();
    let doc = std::fs::read_to_string(crates_dir().join("../ARCHITECTURE.md")).unwrap();
    let closing: BTreeSet<(String, String)> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("- **Closing edge:** "))
        .map(|l| {
            let names = backticked(l.split(':').next().unwrap());
            assert_eq!(names.len(), 2, "a closing edge names two modules: {l}");
            (names[0].clone(), names[1].clone())
        })
        .collect();
    assert!(
        closing.len() > 3,
        "positive control: closing edges were read"
    );
    let on_a_loop_doc: BTreeSet<String> = doc
        .lines()
        .find_map(|l| l.strip_prefix("Modules on a loop: "))
        .map(|l| backticked(l).into_iter().collect())
        .expect("ARCHITECTURE.md lists the modules on a loop");

    let without = |cut: &BTreeSet<(String, String)>| -> Vec<BTreeSet<String>> {
        let graph: BTreeMap<&str, Vec<&str>> = actual
            .iter()
            .map(|(m, edges)| {
                let to = edges
                    .keys()
                    .filter(|t| !cut.contains(&(m.clone(), (*t).clone())))
                    .map(String::as_str)
                    .collect();
                (m.as_str(), to)
            })
            .collect();
        strongly_connected(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect()
    };
    let mut problems = Vec::new();
    for (from, to) in &closing {
        if !actual.get(from).is_some_and(|e| e.contains_key(to)) {
            problems.push(format!(
                "the closing edge `{from}` → `{to}` is no longer an import"
            ));
            continue;
        }
        let mut others = closing.clone();
        others.remove(&(from.clone(), to.clone()));
        if without(&others).is_empty() {
            problems.push(format!(
                "the closing edge `{from}` → `{to}` closes no loop the others leave open"
            ));
        }
    }
    for component in without(&closing) {
        problems.push(format!(
            "a loop no closing edge breaks, among {}",
            component.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let on_a_loop: BTreeSet<String> = without(&BTreeSet::new()).into_iter().flatten().collect();
    if on_a_loop != on_a_loop_doc {
        problems.push(format!(
            "the modules on a loop are {on_a_loop:?}, ARCHITECTURE.md lists {on_a_loop_doc:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &BTreeMap<&str, Vec<&str>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for &w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(&w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    comp.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                self.out.push(comp);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
}
