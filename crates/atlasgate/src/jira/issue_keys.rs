//! Jira issue keys in free text: PR titles, branch names, commit messages.
//!
//! A key is `PROJECT-123` where `PROJECT` is a key of a project that exists
//! on the site — that is what keeps `UTF-8`, `SHA-256` or `ISO-8601` out.
//! Matching is case-insensitive (`feature/abc-12-login` finds `ABC-12`):
//! branch names are often lower-cased by tools, and since only existing
//! project keys count, lower case adds few false positives. A key must stand
//! on its own: not preceded by a letter or digit (`XABC-1` is not `ABC-1`),
//! and its number not followed by a letter or digit (`ABC-12x` is nothing).
//! `_` counts as a separator before a key (`feat_ABC-12`), since Jira
//! project keys may themselves hold `_`, the longest existing key wins.
//! Results are upper-case, deduplicated, in order of first appearance.

use std::collections::HashSet;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::apps::AppConnection;
use crate::error::ApiError;
use crate::state::AppState;

/// A syntactically valid Jira issue key, upper-case (`ACME-12`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssueKey(String);

impl IssueKey {
    /// `[A-Z][A-Z0-9_]*-[1-9][0-9]*`, any case; numbers up to 10 digits.
    pub fn parse(s: &str) -> Option<IssueKey> {
        let (project, number) = s.rsplit_once('-')?;
        let mut chars = project.chars();
        let first = chars.next()?;
        let ok = first.is_ascii_alphabetic()
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !number.is_empty()
            && number.len() <= 10
            && number.bytes().all(|b| b.is_ascii_digit())
            && !number.starts_with('0');
        ok.then(|| IssueKey(s.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn project(&self) -> &str {
        self.0.rsplit_once('-').map(|(p, _)| p).unwrap_or(&self.0)
    }
}

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The existing project keys as a trie over upper-case bytes: the scanner
/// walks it one text byte at a time, so it never looks back at the text.
struct KeyTrie {
    /// Per node: its children `(byte, node)` sorted by byte, and whether a
    /// project key ends here.
    nodes: Vec<(Vec<(u8, u32)>, bool)>,
}

const ROOT: u32 = 0;

impl KeyTrie {
    fn new(projects: &HashSet<String>) -> KeyTrie {
        let mut t = KeyTrie {
            nodes: vec![(Vec::new(), false)],
        };
        for p in projects {
            // Only keys the scanner could ever see: `[A-Z][A-Z0-9_]*`.
            let p = p.to_ascii_uppercase();
            let ok = p.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && p.bytes().all(word_byte);
            if !ok {
                continue;
            }
            let mut node = ROOT;
            for b in p.bytes() {
                node = match t.child(node, b) {
                    Some(n) => n,
                    None => {
                        let n = t.nodes.len() as u32;
                        t.nodes.push((Vec::new(), false));
                        let kids = &mut t.nodes[node as usize].0;
                        let at = kids.partition_point(|(c, _)| *c < b);
                        kids.insert(at, (b, n));
                        n
                    }
                };
            }
            t.nodes[node as usize].1 = true;
        }
        t
    }

    /// The child of `node` for the upper-case byte `b`.
    fn child(&self, node: u32, b: u8) -> Option<u32> {
        let kids = &self.nodes.get(node as usize)?.0;
        kids.binary_search_by_key(&b, |(c, _)| *c)
            .ok()
            .map(|i| kids[i].1)
    }

    fn is_key(&self, node: u32) -> bool {
        self.nodes.get(node as usize).is_some_and(|n| n.1)
    }
}

#[cfg(test)]
thread_local! {
    /// Units of scanner work (one per byte, one per live candidate moved):
    /// what the linear-time test counts.
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline]
fn step(_n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + _n as u64));
}

/// A project key was read up to a `-`; its number is being read.
struct Pending {
    /// Where the project key starts and where its `-` is.
    start: usize,
    dash: usize,
}

/// Every key of a project in `projects` (upper-case keys) found in `texts`,
/// deduplicated, in order of first appearance.
///
/// One left-to-right pass per text, each byte looked at once (issue 9: the
/// former scanner went back over the word before every `-` and upper-cased
/// every `_`-suffix of it, quadratic on `"a_" * n + "a-1"`). While inside a
/// word (`[A-Za-z0-9_]+`) it keeps the live candidates: the places where a
/// project key may start (the word's start and after each `_`), each with
/// its position in the trie of project keys. A candidate dies when the trie
/// has no next byte for it, so there are never more live candidates than
/// the longest project key has bytes, and the work is at most
/// `text length × (longest key + 1)`, whatever the text. At a `-` the
/// earliest candidate that is a whole project key (the longest key) wins and
/// its number is read as the following bytes arrive.
pub fn find_keys<S: AsRef<str>>(texts: &[S], projects: &HashSet<String>) -> Vec<String> {
    let trie = KeyTrie::new(projects);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // Reused across texts: (start, trie node), earliest start first.
    let mut live: Vec<(usize, u32)> = Vec::new();
    for text in texts {
        let text = text.as_ref();
        let b = text.as_bytes();
        let mut in_word = false;
        let mut pending: Option<Pending> = None;
        live.clear();
        let mut finish = |p: Pending, end: usize, next: Option<u8>| {
            let number = &b[p.dash + 1..end];
            let clean = next.is_none_or(|c| !c.is_ascii_alphanumeric());
            if clean && !number.is_empty() && number.len() <= 10 && number[0] != b'0' {
                let key = format!(
                    "{}-{}",
                    text[p.start..p.dash].to_ascii_uppercase(),
                    &text[p.dash + 1..end]
                );
                if seen.insert(key.clone()) {
                    out.push(key);
                }
            }
        };
        for (i, &c) in b.iter().enumerate() {
            step(1 + live.len());
            if !c.is_ascii_digit() {
                if let Some(p) = pending.take() {
                    finish(p, i, Some(c));
                }
            }
            if word_byte(c) {
                if !in_word {
                    in_word = true;
                    live.clear();
                    live.push((i, ROOT));
                }
                let up = c.to_ascii_uppercase();
                live.retain_mut(|(_, node)| match trie.child(*node, up) {
                    Some(n) => {
                        *node = n;
                        true
                    }
                    None => false,
                });
                if c == b'_' {
                    live.push((i + 1, ROOT));
                }
            } else {
                if c == b'-' && in_word {
                    if let Some(&(start, _)) = live.iter().find(|(_, n)| trie.is_key(*n)) {
                        pending = Some(Pending { start, dash: i });
                    }
                }
                in_word = false;
                live.clear();
            }
        }
        if let Some(p) = pending.take() {
            finish(p, b.len(), None);
        }
    }
    out
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKeysRequest {
    /// PR titles, branch names, commit messages… (at most 1000 texts).
    #[schema(max_items = 1000)]
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssueKeysResponse {
    /// Keys of projects that exist on the site, upper-case, deduplicated,
    /// in order of first appearance.
    pub keys: Vec<String>,
}

/// Find issue keys in text
///
/// Keys in PR titles, branch names and commit messages; only keys of
/// projects that this connection sees on the site (the project list is
/// cached per connection for five minutes), case-insensitive, deduplicated,
/// in order.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/jira/issue-keys",
    tag = "jira",
    params(("id" = String, Path, description = "Connection id")),
    request_body = IssueKeysRequest,
    responses(
        (status = 200, description = "The keys found", body = IssueKeysResponse),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 422, description = "Too many texts", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn find_issue_keys(
    State(state): State<AppState>,
    conn: AppConnection,
    Json(req): Json<IssueKeysRequest>,
) -> Result<Json<IssueKeysResponse>, ApiError> {
    if req.texts.len() > 1000 {
        return Err(ApiError::validation(
            "texts",
            "at most 1000 texts per request",
        ));
    }
    let row = conn.with_site()?;
    let projects = match super::ops::project_keys(&super::ctx(&state, &conn.app, row)).await {
        Ok(p) => p,
        Err(e) => return Err(e.into()),
    };
    let projects: HashSet<String> = projects
        .into_iter()
        .map(|k| k.to_ascii_uppercase())
        .collect();
    Ok(Json(IssueKeysResponse {
        keys: find_keys(&req.texts, &projects),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn projects() -> HashSet<String> {
        ["ACME", "WEB", "OPS", "MY_PROJ"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn examples() {
        let texts = [
            "ACME-12: fix login (see also WEB-3, ACME-12)",
            "feature/acme-14-new-thing",
            "Bump UTF-8 handling, SHA-256, ISO-8601",
            "XACME-1 ACME-0 ACME-1x feat_OPS-7 MY_PROJ-2 [WEB-4]",
        ];
        assert_eq!(
            find_keys(&texts, &projects()),
            vec!["ACME-12", "WEB-3", "ACME-14", "OPS-7", "MY_PROJ-2", "WEB-4"]
        );
    }

    #[test]
    fn issue_key_newtype() {
        assert_eq!(IssueKey::parse("acme-12").unwrap().as_str(), "ACME-12");
        assert_eq!(IssueKey::parse("ACME-12").unwrap().project(), "ACME");
        for bad in [
            "ACME", "ACME-", "-1", "1A-2", "ACME-01", "AC ME-1", "ACME-1/x",
        ] {
            assert!(IssueKey::parse(bad).is_none(), "{bad}");
        }
    }

    /// The scanner before issue 9, kept as the reference the single pass
    /// must agree with: it looked back over the word before every `-` and
    /// tried every `_`-suffix (quadratic on `"a_" * n + "a-1"`).
    fn reference(texts: &[String], projects: &HashSet<String>) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for text in texts {
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] != b'-' {
                    i += 1;
                    continue;
                }
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let number = &b[i + 1..j];
                let ends_clean = j == b.len() || !b[j].is_ascii_alphanumeric();
                let mut s = i;
                while s > 0 && word_byte(b[s - 1]) {
                    s -= 1;
                }
                if !number.is_empty()
                    && number.len() <= 10
                    && number[0] != b'0'
                    && ends_clean
                    && s < i
                {
                    let word = &text[s..i];
                    let mut starts = vec![0];
                    starts.extend(word.match_indices('_').map(|(k, _)| k + 1));
                    let found = starts.into_iter().find_map(|k| {
                        let cand = word[k..].to_ascii_uppercase();
                        let ok = cand
                            .as_bytes()
                            .first()
                            .is_some_and(|c| c.is_ascii_alphabetic())
                            && projects.contains(&cand);
                        ok.then_some(cand)
                    });
                    if let Some(project) = found {
                        let key = format!("{project}-{}", std::str::from_utf8(number).unwrap());
                        if seen.insert(key.clone()) {
                            out.push(key);
                        }
                    }
                }
                i = j.max(i + 1);
            }
        }
        out
    }

    /// Project keys that nest (`A`, `A_A`, `A_A_A_A_A`, `AC`, `ACME`) so that
    /// many candidates are live at once.
    fn nested_projects() -> HashSet<String> {
        [
            "A",
            "AC",
            "ACME",
            "A_A",
            "A_A_A_A_A",
            "MY_PROJ",
            "PROJ",
            "B1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn steps_for(text: &str, projects: &HashSet<String>) -> u64 {
        STEPS.with(|s| s.set(0));
        find_keys(&[text], projects);
        STEPS.with(|s| s.get())
    }

    /// Issue 9: the scanner's work grows linearly with the text, for the
    /// texts that were quadratic before and for others built to keep many
    /// candidates live. A 10× longer text may cost at most 15× the steps.
    #[test]
    fn scanning_work_is_linear_in_the_text_length() {
        let projects = nested_projects();
        type Shape = (&'static str, fn(usize) -> String);
        let shapes: [Shape; 8] = [
            ("a_ * n + a-1", |n| "a_".repeat(n) + "a-1"),
            ("a_a_a_a_a * n + -1", |n| "a_a_a_a_a_".repeat(n) + "-1"),
            ("a- * n", |n| "a-".repeat(n)),
            ("acme-1 * n (no separator)", |n| "acme-1".repeat(n)),
            ("_ * n + acme-1", |n| "_".repeat(n) + "acme-1"),
            ("a * n + -1", |n| "a".repeat(n) + "-1"),
            ("distinct keys", |n| {
                (0..n / 8).map(|i| format!("AC-{} ", i + 1)).collect()
            }),
            ("digits", |n| "1".repeat(n) + "-" + &"1".repeat(n)),
        ];
        for (name, make) in shapes {
            let small = make(2_000);
            let large = make(20_000);
            assert!(large.len() >= 9 * small.len(), "{name}");
            let (s, l) = (steps_for(&small, &projects), steps_for(&large, &projects));
            assert!(s > 0, "{name}: the counter counts");
            assert!(
                l <= 15 * s,
                "{name}: {} bytes took {s} steps, {} bytes took {l}",
                small.len(),
                large.len()
            );
            // And in absolute terms: never more than (longest key + 2)
            // steps per byte.
            assert!(l <= large.len() as u64 * 11, "{name}: {l} steps");
        }
        // The hostile text still finds what it holds.
        let hostile = "a_".repeat(300_000) + "a-1";
        assert_eq!(find_keys(&[hostile], &projects), vec!["A_A_A_A_A-1"]);
    }

    #[test]
    fn nested_keys_pick_the_longest_at_word_and_underscore_starts() {
        let projects = nested_projects();
        let texts = ["a_a-1 x_a_a-2 a_a_a-3 a_a_a_a_a-4 xa_a-5 ac-6 acm-7 b1-8 b1_proj-9"];
        assert_eq!(
            find_keys(&texts, &projects),
            vec![
                "A_A-1",
                "A_A-2",
                "A_A-3",
                "A_A_A_A_A-4",
                "A-5",
                "AC-6",
                "B1-8",
                "PROJ-9"
            ]
        );
    }

    /// A text contains a known key (any case) at a word start.
    fn mentions_known(text: &str) -> bool {
        let up = text.to_ascii_uppercase();
        projects().iter().any(|p| {
            up.match_indices(&format!("{p}-")).any(|(at, m)| {
                up.as_bytes()
                    .get(at + m.len())
                    .is_some_and(|c| (b'1'..=b'9').contains(c))
            })
        })
    }

    proptest! {
        /// The single pass finds exactly what the former scanner found,
        /// on texts made of the bytes that matter (word bytes, `_`, `-`,
        /// digits, separators, a multi-byte character).
        #[test]
        fn the_single_pass_agrees_with_the_former_scanner(
            texts in proptest::collection::vec("[aAcCmMeEpPrRoOjJyYbBx_\\-0-9 /é]{0,60}", 1..4),
        ) {
            for projects in [nested_projects(), projects()] {
                prop_assert_eq!(find_keys(&texts, &projects), reference(&texts, &projects));
            }
        }

        #[test]
        fn text_without_project_keys_yields_nothing(text in "[A-Za-z0-9_ /\\-.:#\\[\\]é]{0,80}") {
            prop_assume!(!mentions_known(&text));
            prop_assert!(find_keys(&[text], &projects()).is_empty());
        }

        #[test]
        fn embedded_keys_are_all_found_in_order(
            keys in proptest::collection::vec((0usize..3, 1u32..100_000, any::<bool>()), 0..8),
            seps in proptest::collection::vec("[a-z0-9 _/\\-.:]{0,12}", 9),
        ) {
            let names = ["ACME", "WEB", "OPS"];
            let mut text = String::new();
            let mut want = Vec::new();
            for (i, (p, n, lower)) in keys.iter().enumerate() {
                let sep = &seps[i];
                prop_assume!(!mentions_known(sep));
                // Separators end and begin with a space so keys stand alone.
                text.push(' ');
                text.push_str(sep);
                text.push(' ');
                let key = format!("{}-{}", names[*p], n);
                text.push_str(&if *lower { key.to_ascii_lowercase() } else { key.clone() });
                if !want.contains(&key) {
                    want.push(key);
                }
            }
            text.push(' ');
            text.push_str(&seps[8]);
            prop_assume!(!mentions_known(&seps[8]));
            prop_assert_eq!(find_keys(&[text], &projects()), want);
        }
    }
}
