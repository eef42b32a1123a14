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

/// Every key of a project in `projects` (upper-case keys) found in `texts`,
/// deduplicated, in order of first appearance.
pub fn find_keys<S: AsRef<str>>(texts: &[S], projects: &HashSet<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for text in texts {
        let b = text.as_ref().as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'-' {
                i += 1;
                continue;
            }
            // Digits after the dash.
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let number = &b[i + 1..j];
            let ends_clean = j == b.len() || !b[j].is_ascii_alphanumeric();
            // The word before the dash.
            let mut s = i;
            while s > 0 && word_byte(b[s - 1]) {
                s -= 1;
            }
            if !number.is_empty() && number.len() <= 10 && number[0] != b'0' && ends_clean && s < i
            {
                let word = &text.as_ref()[s..i];
                // Longest suffix of the word (at `_` boundaries) that is a project key.
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
                    let key = format!("{project}-{}", std::str::from_utf8(number).unwrap_or(""));
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKeysRequest {
    /// PR titles, branch names, commit messages… (at most 1000 texts).
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
/// projects that exist on the site (the project list is cached per site for
/// five minutes), case-insensitive, deduplicated, in order.
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
