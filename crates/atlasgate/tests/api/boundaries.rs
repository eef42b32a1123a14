//! The boundary invariants of ARCHITECTURE.md, checked over the source tree
//! so that a change which breaks one fails here and names the file.

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

#[test]
fn core_depends_on_no_http_server_crate() {
    let manifest = std::fs::read_to_string(crates_dir().join("atlasgate-core/Cargo.toml")).unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    let deps = doc["dependencies"].as_table().unwrap();
    assert!(
        deps.contains_key("sqlx"),
        "positive control: the core's deps were read"
    );
    for forbidden in [
        "axum",
        "tower-http",
        "utoipa",
        "utoipa-axum",
        "utoipa-swagger-ui",
    ] {
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
