//! `find_keys`, the scanner behind `POST /v1/connections/{id}/jira/issue-keys`.
//! Input: the first line lists project keys (space-separated), the rest is
//! texts (one per line). Never panics; every key found is `PROJECT-N` of a
//! listed project, upper-case, standing on its own in some text (case-
//! insensitively), and keys are not repeated.
#![no_main]

use std::collections::HashSet;

use atlasgate::jira::issue_keys::{find_keys, IssueKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = s.split_once('\n').unwrap_or((s, ""));
    let projects: HashSet<String> = first
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let texts: Vec<&str> = rest.split('\n').collect();
    let keys = find_keys(&texts, &projects);
    let upper: HashSet<String> = projects.iter().map(|p| p.to_ascii_uppercase()).collect();
    let mut seen = HashSet::new();
    for k in &keys {
        assert!(seen.insert(k.clone()), "{k} twice");
        let parsed = IssueKey::parse(k).unwrap_or_else(|| panic!("{k:?} is not an issue key"));
        assert_eq!(parsed.as_str(), k, "not upper-case");
        assert!(upper.contains(parsed.project()), "{k}: project not listed");
        let found = texts.iter().any(|t| {
            let t = t.to_ascii_uppercase();
            t.match_indices(k.as_str()).any(|(at, m)| {
                let before = t[..at].bytes().next_back();
                let after = t[at + m.len()..].bytes().next();
                before.is_none_or(|b| !b.is_ascii_alphanumeric())
                    && after.is_none_or(|b| !b.is_ascii_alphanumeric())
            })
        });
        assert!(found, "{k} is in no text on its own");
    }
});
